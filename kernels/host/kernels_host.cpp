// Host build of the CUDA kernels: the shim, then the .cu sources unchanged, then extern "C" entry points
// that launch each kernel with the sequential launcher. Linked into the crate by build.rs.
#include "shim.h"

#include "../cuda/conformance.cu"
#include "../cuda/lif_exp.cu"

extern "C" {

void nt_host_philox_fill(unsigned long long seed, unsigned int stream, unsigned long long step, unsigned int draw,
                         unsigned int neuron0, unsigned int n, unsigned int* out) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { philox_fill(seed, stream, step, draw, neuron0, n, out); });
}

void nt_host_philox_uniform2_fill(unsigned long long seed, unsigned int stream, unsigned long long step,
                                  unsigned int draw, unsigned int neuron0, unsigned int n, double* out) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { philox_uniform2_fill(seed, stream, step, draw, neuron0, n, out); });
}

void nt_host_philox4x32_10(const unsigned int* counter, const unsigned int* key, unsigned int* out) {
    nt_u32x4 c;
    for (int w = 0; w < 4; ++w) c.w[w] = counter[w];
    const nt_u32x4 r = nt_philox4x32_10(c, key[0], key[1]);
    for (int w = 0; w < 4; ++w) out[w] = r.w[w];
}

void nt_host_detmath_ln_pow_fill(unsigned int n, const double* x, const double* y, double* out) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { detmath_ln_pow_fill(n, x, y, out); });
}

void nt_host_detmath_expm1_fill(unsigned int n, const double* x, double* out) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { detmath_expm1_fill(n, x, out); });
}

void nt_host_detmath_exp_fill(unsigned int n, const double* x, double* out) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { detmath_exp_fill(n, x, out); });
}

}  // extern "C"

NT_HOST_ENTRY(lif_exp_update, nt_model_args)
NT_HOST_ENTRY(lif_exp_step, nt_neuron_step_args)
