/* backend_cuda.c - placeholder until the CUDA backend table lands. */
#include "cuda_common.h"

const struct rn_backend *rn_backend_cuda(void)
{
    return NULL;
}

void rn_cuda_set_deterministic(int on)
{
    (void)on;
}

int rn_cuda_probe(char *desc, size_t len, struct rn_error *err)
{
    if (desc && len)
        desc[0] = '\0';
    return rn_errorf(err, "the CUDA backend is not finished");
}
