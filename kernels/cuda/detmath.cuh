// Deterministic e^x built only from IEEE-754 + - * and rounding, mirroring `neurotwin_models::detmath::exp`
// bit for bit (Cody-Waite reduction with fdlibm's two-part ln 2, degree-13 Taylor polynomial in Horner
// form, scaling by two powers of two). Every multiply and add goes through __dmul_rn / __dadd_rn /
// __dsub_rn, which CUDA never contracts into FMA, so the result does not depend on NVRTC's `fmad` flag.
// No system headers (NVRTC); `rint` is a CUDA built-in on the device and comes from the shim on the host.
#ifndef NEUROTWIN_DETMATH_CUH
#define NEUROTWIN_DETMATH_CUH

// 2^k as a double for -1022 <= k <= 1023 (exponent field only).
static __device__ __forceinline__ double nt_pow2(int k) {
    return __longlong_as_double((long long)((unsigned long long)(k + 1023) << 52));
}

// e^x without fused multiply-add. Saturates to +inf above 709.78 and to 0 below -745; NaN propagates.
static __device__ __forceinline__ double nt_exp(double x) {
    if (x != x) {
        return x;
    }
    if (x > 709.78) {
        return __longlong_as_double(0x7FF0000000000000LL);  // +inf
    }
    if (x < -745.0) {
        return 0.0;
    }
    const double ln2_hi = __longlong_as_double(0x3FE62E42FEE00000LL);
    const double ln2_lo = __longlong_as_double(0x3DEA39EF35793C76LL);
    const double log2_e = __longlong_as_double(0x3FF71547652B82FELL);
    // x = k ln2 + r, |r| <= ln2/2; rint rounds half to even like Rust's round_ties_even.
    const double k = rint(__dmul_rn(x, log2_e));
    const double r = __dsub_rn(__dsub_rn(x, __dmul_rn(k, ln2_hi)), __dmul_rn(k, ln2_lo));
    double p = 1.0 / 6227020800.0;
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 479001600.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 39916800.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 3628800.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 362880.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 40320.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 5040.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 720.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 120.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 24.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0 / 6.0);
    p = __dadd_rn(__dmul_rn(p, r), 0.5);
    p = __dadd_rn(__dmul_rn(p, r), 1.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0);
    // x * 2^k in two steps so that subnormal results are not flushed early.
    const int ki = (int)k;
    const int half = ki / 2;
    return __dmul_rn(__dmul_rn(p, nt_pow2(half)), nt_pow2(ki - half));
}

#endif  // NEUROTWIN_DETMATH_CUH
