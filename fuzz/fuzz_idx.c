/* fuzz_idx.c - libFuzzer harness: the IDX reader on a buffer (rn_idx_read_mem).
 * A file it accepts must hold exactly the bytes its header announces. */
#include <stdlib.h>

#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rn_idx idx;
    struct rn_error err;
    if (rn_idx_read_mem(data, size, "fuzz.idx", &idx, &err) == 0) {
        size_t total = 1;
        for (int d = 0; d < idx.ndim; d++)
            total *= (size_t)idx.dims[d];
        if (size != 4 + 4 * (size_t)idx.ndim + total ||
            (total && idx.data[total - 1] != data[size - 1]))
            abort();
        rn_idx_free(&idx);
    }
    return 0;
}
