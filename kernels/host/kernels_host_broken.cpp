// The lif_exp kernel built with NEUROTWIN_BREAK_FOR_TEST (a deliberately reordered sum), exposed as a second
// entry point so that the conformance test can prove it detects such a change.
#define NEUROTWIN_BREAK_FOR_TEST 1
#include "shim.h"

#include "../cuda/lif_exp.cu"

extern "C" void nt_host_lif_exp_update_broken(unsigned int blocks, unsigned int threads, unsigned int n_neurons,
                                              unsigned int n_channels, double* state, const unsigned short* param_set,
                                              const double* p22, const double* p20, const double* e_l,
                                              const double* theta, const double* reset, const double* i_e,
                                              const unsigned int* refractory_steps, const double* p11,
                                              const double* p21, const double* syn, const double* i_ext,
                                              const unsigned long long* forced, unsigned char* spiked) {
    nt_launch(dim3(blocks), dim3(threads), [&] {
        lif_exp_update(n_neurons, n_channels, state, param_set, p22, p20, e_l, theta, reset, i_e, refractory_steps,
                       p11, p21, syn, i_ext, forced, spiked);
    });
}
