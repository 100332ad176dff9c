// Host build of the Izhikevich, AdEx and graded kernels: the shim, then the .cu sources unchanged, then
// extern "C" entry points that launch each kernel with the sequential launcher. Linked by build.rs.
#include "shim.h"

#include "../cuda/adex.cu"
#include "../cuda/graded.cu"
#include "../cuda/izhikevich.cu"

extern "C" {

void nt_host_izhikevich_update(unsigned int blocks, unsigned int threads, unsigned int n_neurons,
                               unsigned int n_channels, double* state, const unsigned short* param_set, const double* a,
                               const double* b, const double* c, const double* d, const double* v_peak,
                               const double* i_e, const unsigned int* n_sub, const double* h_sub, const double* syn,
                               const double* i_ext, const unsigned long long* forced, unsigned char* spiked) {
    nt_launch(dim3(blocks), dim3(threads), [&] {
        izhikevich_update(n_neurons, n_channels, state, param_set, a, b, c, d, v_peak, i_e, n_sub, h_sub, syn,
                          i_ext, forced, spiked);
    });
}

void nt_host_adex_update(unsigned int blocks, unsigned int threads, unsigned int n_neurons, unsigned int n_channels,
                         double* state, const unsigned short* param_set, const double* e_l, const double* g_l,
                         const double* inv_c, const double* v_th, const double* g_l_delta_t, const double* inv_delta_t,
                         const double* a, const double* inv_tau_w, const double* b, const double* v_reset,
                         const double* v_peak, const double* i_e, const double* refractory_start,
                         const unsigned int* n_sub, const double* h_sub, const double* half_h_sub,
                         const double* decay_sub, const double* syn, const double* i_ext,
                         const unsigned long long* forced, unsigned char* spiked) {
    nt_launch(dim3(blocks), dim3(threads), [&] {
        adex_update(n_neurons, n_channels, state, param_set, e_l, g_l, inv_c, v_th, g_l_delta_t, inv_delta_t, a,
                    inv_tau_w, b, v_reset, v_peak, i_e, refractory_start, n_sub, h_sub, half_h_sub, decay_sub, syn,
                    i_ext, forced, spiked);
    });
}

void nt_host_graded_update(unsigned int blocks, unsigned int threads, unsigned int n_neurons, unsigned int n_channels,
                           double* state, const unsigned short* param_set, const double* g_l, const double* g_l_e_l,
                           const double* minus_h_over_c, const double* beta, const double* v_th, const double* i_e,
                           const double* e_rev, const double* syn, const double* i_ext, const double* gap_g,
                           const double* gap_gv, double* activity) {
    nt_launch(dim3(blocks), dim3(threads), [&] {
        graded_update(n_neurons, n_channels, state, param_set, g_l, g_l_e_l, minus_h_over_c, beta, v_th, i_e,
                      e_rev, syn, i_ext, gap_g, gap_gv, activity);
    });
}

}  // extern "C"
