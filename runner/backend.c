/* backend.c - the backend of each device, and the stand-ins used when the
 * binary is built without the CUDA backend. The tables themselves are
 * filled in kernels/cpu/backend_cpu.c and kernels/cuda/backend_cuda.c. */
#include "backend.h"

static const struct rn_backend *test_backend;

void rn_backend_set_test(const struct rn_backend *be)
{
    test_backend = be;
}

const struct rn_backend *rn_backend_of(enum rn_device d)
{
    switch (d) {
    case RN_DEVICE_CPU:
        return rn_backend_cpu();
    case RN_DEVICE_CUDA:
        return rn_backend_cuda();
    case RN_DEVICE_TEST:
        return test_backend;
    }
    return NULL;
}

#ifndef RN_HAVE_CUDA
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
    return rn_errorf(err, "this runner was built without the CUDA backend (cmake found no nvcc "
                          "or cuDNN; see README, -DRUNNER_CUDA=ON to require it)");
}
#endif
