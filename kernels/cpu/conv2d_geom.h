/* kernels/cpu/conv2d_geom.h - the shape of one CPU convolution, shared by
 * the reference kernel (conv2d.h) and the oneDNN one (conv2d_onednn.h). */
#ifndef RN_KERNELS_CPU_CONV2D_GEOM_H
#define RN_KERNELS_CPU_CONV2D_GEOM_H

/* Shapes of one conv. n is the batch of the call; it may change between
 * calls (the workspace is per thread, not per image). */
struct rn_conv2d_cpu_geom {
    int n, cin, h, w; /* input (N, Cin, H, W) */
    int cout, k, stride, pad;
    int hout, wout; /* (H + 2*pad - k) / stride + 1, likewise W */
};

#endif
