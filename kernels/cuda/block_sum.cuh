// block_sum.cuh - the fixed-tree block reduction shared by the backend's, the augmentation's and
// the saliency loss's kernels: the same bits on every run for a given blockDim.x (a power of
// two). The layer kernels keep their warp-shuffle variant (layers/launch.cuh, 32 doubles).
#ifndef RN_BLOCK_SUM_CUH
#define RN_BLOCK_SUM_CUH

// Sums v over the block; every thread gets the total. shared holds blockDim.x values and may be
// reused right after the call. Must be reached by all threads of the block.
template <typename T> static __device__ T block_sum(T v, T *shared)
{
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w)
            shared[threadIdx.x] = shared[threadIdx.x] + shared[threadIdx.x + w];
        __syncthreads();
    }
    const T total = shared[0];
    __syncthreads(); // shared may be written again by a later call
    return total;
}

#endif
