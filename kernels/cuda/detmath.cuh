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

// e^x - 1 without fused multiply-add, mirroring `neurotwin_models::detmath::expm1` bit for bit: for |x| <= ln2/2 the
// Taylor series of nt_exp without its constant term, x (1 + x/2 + ... + x^12/13!) in Horner form, else
// nt_exp(x) - 1. NaN propagates.
static __device__ __forceinline__ double nt_expm1(double x) {
    if (x != x) {
        return x;
    }
    const double half_ln2 = __dmul_rn(0.5, __longlong_as_double(0x3FE62E42FEFA39EFLL));
    const double ax = __longlong_as_double(__double_as_longlong(x) & 0x7FFFFFFFFFFFFFFFLL);
    if (ax > half_ln2) {
        return __dsub_rn(nt_exp(x), 1.0);
    }
    double p = 1.0 / 6227020800.0;
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 479001600.0);
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 39916800.0);
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 3628800.0);
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 362880.0);
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 40320.0);
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 5040.0);
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 720.0);
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 120.0);
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 24.0);
    p = __dadd_rn(__dmul_rn(p, x), 1.0 / 6.0);
    p = __dadd_rn(__dmul_rn(p, x), 0.5);
    p = __dadd_rn(__dmul_rn(p, x), 1.0);
    return __dmul_rn(p, x);
}

// ln x without fused multiply-add, mirroring `neurotwin_models::detmath::ln` bit for bit: x = m 2^k with m in
// (sqrt(1/2), sqrt(2)], ln m = f - s (f - T(s^2)) with f = m - 1, s = f / (2 + f) and T the atanh series to
// degree 11 in s^2; ln x = k ln2_hi + (k ln2_lo + ln m). NaN and negative -> NaN, 0 -> -inf, +inf -> +inf.
static __device__ __forceinline__ double nt_ln(double x) {
    if (x != x || x < 0.0) {
        return __longlong_as_double(0x7FF8000000000000LL);  // NaN
    }
    if (x == 0.0) {
        return __longlong_as_double((long long)0xFFF0000000000000ULL);  // -inf
    }
    if (x == __longlong_as_double(0x7FF0000000000000LL)) {
        return x;
    }
    int k = 0;
    if (x < __longlong_as_double(0x0010000000000000LL)) {  // subnormal: scale by 2^54
        x = __dmul_rn(x, nt_pow2(54));
        k = -54;
    }
    const unsigned long long bits = (unsigned long long)__double_as_longlong(x);
    k += (int)((bits >> 52) & 0x7ffULL) - 1023;
    double m = __longlong_as_double((long long)((bits & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL));
    if (m > __longlong_as_double(0x3FF6A09E667F3BCDLL)) {  // sqrt(2)
        m = __dmul_rn(m, 0.5);
        k += 1;
    }
    const double f = __dsub_rn(m, 1.0);
    const double s = __ddiv_rn(f, __dadd_rn(2.0, f));
    const double z = __dmul_rn(s, s);
    double t = 2.0 / 23.0;
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 21.0);
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 19.0);
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 17.0);
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 15.0);
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 13.0);
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 11.0);
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 9.0);
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 7.0);
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 5.0);
    t = __dadd_rn(__dmul_rn(t, z), 2.0 / 3.0);
    const double ln_m = __dsub_rn(f, __dmul_rn(s, __dsub_rn(f, __dmul_rn(t, z))));
    const double kd = (double)k;
    const double ln2_hi = __longlong_as_double(0x3FE62E42FEE00000LL);
    const double ln2_lo = __longlong_as_double(0x3DEA39EF35793C76LL);
    return __dadd_rn(__dmul_rn(kd, ln2_hi), __dadd_rn(__dmul_rn(kd, ln2_lo), ln_m));
}

// x^y for x >= 0 as e^{y ln x}, mirroring `neurotwin_models::detmath::powf`: exact for y = 0 (1) and y = 1 (x),
// 0 for x = 0 and y > 0.
static __device__ __forceinline__ double nt_powf(double x, double y) {
    if (y == 0.0) {
        return 1.0;
    }
    if (y == 1.0) {
        return x;
    }
    if (x == 0.0 && y > 0.0) {
        return 0.0;
    }
    return nt_exp(__dmul_rn(y, nt_ln(x)));
}

#endif  // NEUROTWIN_DETMATH_CUH
