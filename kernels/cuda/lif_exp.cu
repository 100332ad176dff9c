// Leaky integrate-and-fire neuron with exponential current synapses (NEST iaf_psc_exp), exact propagator
// integration, mirroring `neurotwin_models::lif_exp::update_block` bit for bit: same operations in the same
// order and association, each multiply/add through __dmul_rn/__dadd_rn/__dsub_rn (never fused into FMA).
// No system headers (NVRTC).
//
// Layout (the engine's block-major layout, NT_LANES = 64 neurons per block):
//   neuron i -> block b = i / 64, lane l = i % 64;
//   state[(b * n_state + var) * 64 + l], vars: 0 = V_m (mV), 1 = refractory (steps left, as double),
//   2 + c = I_syn of channel c (pA); n_state = 2 + n_channels.
//   syn[(b * n_channels + c) * 64 + l]: synaptic input arriving this step (pA), channel-major per block.
//   forced[b]: bit l = lane l forced to fire this step.
// Per parameter set s: p22[s] = exp(-h/tau_m), p20[s] (mV/pA), e_l[s] (mV), theta[s] and reset[s] (mV,
// relative to E_L), i_e[s] (pA), refractory_steps[s]; per (s, c): p11[s * n_channels + c] = exp(-h/tau_c),
// p21[s * n_channels + c] (mV/pA).
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#define NT_LANES 64u

// One thread per neuron: advances neurons 0..n_neurons by one step and writes spiked[i] = 1 if neuron i
// fired this step, else 0.
NT_KERNEL void lif_exp_update(unsigned int n_neurons, unsigned int n_channels, double* state,
                              const unsigned short* param_set, const double* p22, const double* p20,
                              const double* e_l, const double* theta, const double* reset, const double* i_e,
                              const unsigned int* refractory_steps, const double* p11, const double* p21,
                              const double* syn, const double* i_ext, const unsigned long long* forced,
                              unsigned char* spiked) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_neurons) {
        return;
    }
    const unsigned int b = i / NT_LANES;
    const unsigned int l = i % NT_LANES;
    const unsigned int n_state = 2u + n_channels;
    double* s = state + (unsigned long long)b * n_state * NT_LANES;
    const double* in = syn + (unsigned long long)b * n_channels * NT_LANES;
    const unsigned int set = param_set[i];
    const double* set_p11 = p11 + (unsigned long long)set * n_channels;
    const double* set_p21 = p21 + (unsigned long long)set * n_channels;
    const double el = e_l[set];

    double y = __dsub_rn(s[l], el);
    double refr = s[NT_LANES + l];
    if (refr > 0.0) {
        refr = __dsub_rn(refr, 1.0);
    } else {
#ifdef NEUROTWIN_BREAK_FOR_TEST
        // Deliberately wrong association (synaptic terms before the constant-current term): used only to
        // prove that the conformance test detects a reordering.
        y = __dmul_rn(y, p22[set]);
        for (unsigned int c = 0; c < n_channels; ++c) {
            y = __dadd_rn(y, __dmul_rn(s[(2u + c) * NT_LANES + l], set_p21[c]));
        }
        y = __dadd_rn(y, __dmul_rn(__dadd_rn(i_e[set], i_ext[i]), p20[set]));
#else
        // y * p22 + (i_e + i_ext) * p20, then + I_c * p21_c per channel in order.
        y = __dadd_rn(__dmul_rn(y, p22[set]), __dmul_rn(__dadd_rn(i_e[set], i_ext[i]), p20[set]));
        for (unsigned int c = 0; c < n_channels; ++c) {
            y = __dadd_rn(y, __dmul_rn(s[(2u + c) * NT_LANES + l], set_p21[c]));
        }
#endif
    }
    for (unsigned int c = 0; c < n_channels; ++c) {
        double* isyn = &s[(2u + c) * NT_LANES + l];
        *isyn = __dadd_rn(__dmul_rn(*isyn, set_p11[c]), in[c * NT_LANES + l]);
    }
    unsigned char fired = 0;
    if (y >= theta[set] || ((forced[b] >> l) & 1ull) == 1ull) {
        y = reset[set];
        refr = (double)refractory_steps[set];
        fired = 1;
    }
    s[l] = __dadd_rn(y, el);
    s[NT_LANES + l] = refr;
    spiked[i] = fired;
}
