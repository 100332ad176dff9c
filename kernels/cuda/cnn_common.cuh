// Device helpers shared by the U-Net inference (`cnn.cu`) and training (`cnn_train.cu`) kernels. Uses nt_exp:
// include "detmath.cuh" before this header (headers include no other header, so that the NVRTC source assembly,
// `neurotwin_kernels::inline_headers`, can inline them one level deep). No system headers (NVRTC).
#ifndef NEUROTWIN_CNN_COMMON_CUH
#define NEUROTWIN_CNN_COMMON_CUH

// The logistic function of one f32 as the Rust `sigmoid_f32`: (float)(1 / (1 + nt_exp(-(double)v))) in f64 with
// the deterministic exponential, rounded once to f32; NaN is returned unchanged (same bits).
static __device__ __forceinline__ float nt_sigmoid_f32(float v) {
    if (v != v) {
        return v;
    }
    const double e = nt_exp(-(double)v);
    return (float)__ddiv_rn(1.0, __dadd_rn(1.0, e));
}

#endif  // NEUROTWIN_CNN_COMMON_CUH
