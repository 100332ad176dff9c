// Vector types and operations of the native CPU code of equation-defined models
// (`neurotwin_models::equations::native_source`), after shim.h and detmath.cuh. The generated body is written once
// for the CUDA kernels and this code: on the GPU `nt_real` is a double and `nt_mask` a bool (prelude of
// `cuda_source`), here `nt_real` holds NT_W lanes (GCC/Clang vector extensions) and `nt_mask` the lanes'
// conditions (all bits set or clear). Every operation is one IEEE-754 operation per lane, never fused (compile
// with -ffp-contract=off), so each lane computes exactly what the scalar code computes.
//
// NT_W: 8 with AVX-512 F/DQ, 4 with AVX, else 2 (set by the build from the CPU's features).
#ifndef NEUROTWIN_NATIVE_H
#define NEUROTWIN_NATIVE_H

#ifndef NT_W
#define NT_W 2
#endif

typedef double nt_real __attribute__((vector_size(8 * NT_W)));
typedef long long nt_mask __attribute__((vector_size(8 * NT_W)));
typedef long long nt_i64 __attribute__((vector_size(8 * NT_W)));

#define NT_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Every lane = k (bit for bit, -0.0 and NaN included).
NT_INLINE nt_real nt_bc(const double k) {
#if NT_W == 8 && defined(__AVX512F__)
    return (nt_real)_mm512_set1_pd(k);
#elif NT_W == 4 && defined(__AVX__)
    return (nt_real)_mm256_set1_pd(k);
#elif NT_W == 2 && defined(__SSE2__)
    return (nt_real)_mm_set1_pd(k);
#else
    nt_real v;
    for (int i = 0; i < NT_W; ++i) {
        v[i] = k;
    }
    return v;
#endif
}

// Bit i = lane i's condition.
NT_INLINE unsigned long long nt_bits(const nt_mask m) {
#if NT_W == 8 && defined(__AVX512DQ__)
    return (unsigned long long)_mm512_movepi64_mask((__m512i)m);
#elif NT_W == 4 && defined(__AVX__)
    return (unsigned long long)(unsigned)_mm256_movemask_pd((__m256d)m);
#elif NT_W == 2 && defined(__SSE2__)
    return (unsigned long long)(unsigned)_mm_movemask_pd((__m128d)m);
#else
    unsigned long long b = 0;
    for (int i = 0; i < NT_W; ++i) {
        b |= (unsigned long long)(m[i] & 1) << i;
    }
    return b;
#endif
}

// Lanes l..l+NT_W of a 64-lane bit set as a mask.
NT_INLINE nt_mask nt_lanes_of(const unsigned long long bits, const unsigned int l) {
    nt_mask m;
    for (int i = 0; i < NT_W; ++i) {
        m[i] = -(long long)((bits >> (l + (unsigned)i)) & 1ull);
    }
    return m;
}

NT_INLINE nt_real nt_load(const double* p) {
    nt_real v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
NT_INLINE void nt_store(double* p, const nt_real v) { __builtin_memcpy(p, &v, sizeof v); }

// A fixed-point ring sum as the engine gathers it, `(double)x * inv_scale` (nearest double, then an exact power
// of two), and the entries cleared.
NT_INLINE nt_real nt_take_ring(long long* p, const double inv_scale) {
    nt_i64 x;
    __builtin_memcpy(&x, p, sizeof x);
    const nt_i64 zero = {};
    __builtin_memcpy(p, &zero, sizeof zero);
    return __builtin_convertvector(x, nt_real) * nt_bc(inv_scale);
}

NT_INLINE nt_real nt_sel(const nt_mask c, const nt_real a, const nt_real b) {
    return (nt_real)(((nt_mask)a & c) | ((nt_mask)b & ~c));
}
NT_INLINE nt_real nt_abs(const nt_real x) {
    const nt_mask m = (nt_mask)nt_bc(__longlong_as_double(0x7FFFFFFFFFFFFFFFLL));
    return (nt_real)((nt_mask)x & m);
}

NT_INLINE nt_real __dadd_rn(const nt_real a, const nt_real b) { return a + b; }
NT_INLINE nt_real __dsub_rn(const nt_real a, const nt_real b) { return a - b; }
NT_INLINE nt_real __dmul_rn(const nt_real a, const nt_real b) { return a * b; }
NT_INLINE nt_real __ddiv_rn(const nt_real a, const nt_real b) { return a / b; }
NT_INLINE nt_real __dsqrt_rn(const nt_real a) {
    nt_real r;
    for (int i = 0; i < NT_W; ++i) {
        r[i] = __dsqrt_rn(a[i]);
    }
    return r;
}
NT_INLINE nt_real nt_exp(const nt_real a) {
    nt_real r;
    for (int i = 0; i < NT_W; ++i) {
        r[i] = nt_exp(a[i]);
    }
    return r;
}

NT_INLINE nt_real nt_ln(const nt_real a) {
    nt_real r;
    for (int i = 0; i < NT_W; ++i) {
        r[i] = nt_ln(a[i]);
    }
    return r;
}

#endif  // NEUROTWIN_NATIVE_H
