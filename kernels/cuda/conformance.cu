// Kernels that expose device functions for conformance tests against the Rust CPU implementation.
// One thread per output element. No system headers (NVRTC); headers are inlined by `nvrtc_source`.
#include "philox.cuh"
#include "detmath.cuh"

#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

// out[4*j .. 4*j+4] = CounterRng::bits(neuron0 + j, step, draw) for j < n, for the generator with 64-bit
// `seed` and stream word `stream`.
NT_KERNEL void philox_fill(unsigned long long seed, unsigned int stream, unsigned long long step,
                           unsigned int draw, unsigned int neuron0, unsigned int n, unsigned int* out) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    const nt_u32x4 b = nt_rng_bits(seed, stream, neuron0 + j, step, draw);
    for (int w = 0; w < 4; ++w) {
        out[4 * (unsigned long long)j + w] = b.w[w];
    }
}

// out[2*j .. 2*j+2] = CounterRng::uniform2(neuron0 + j, step, draw), both in (0, 1).
NT_KERNEL void philox_uniform2_fill(unsigned long long seed, unsigned int stream, unsigned long long step,
                                    unsigned int draw, unsigned int neuron0, unsigned int n, double* out) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    const nt_u32x4 b = nt_rng_bits(seed, stream, neuron0 + j, step, draw);
    out[2 * (unsigned long long)j] = nt_u64_to_open_unit(b.w[0], b.w[1]);
    out[2 * (unsigned long long)j + 1] = nt_u64_to_open_unit(b.w[2], b.w[3]);
}

// out[2j] = detmath ln(x[j]), out[2j + 1] = detmath pow(x[j], y[j]) for j < n.
NT_KERNEL void detmath_ln_pow_fill(unsigned int n, const double* x, const double* y, double* out) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    out[2 * (unsigned long long)j] = nt_ln(x[j]);
    out[2 * (unsigned long long)j + 1] = nt_powf(x[j], y[j]);
}

// out[j] = detmath expm1(x[j]) for j < n.
NT_KERNEL void detmath_expm1_fill(unsigned int n, const double* x, double* out) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    out[j] = nt_expm1(x[j]);
}

// out[j] = detmath exp(x[j]) for j < n.
NT_KERNEL void detmath_exp_fill(unsigned int n, const double* x, double* out) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    out[j] = nt_exp(x[j]);
}
