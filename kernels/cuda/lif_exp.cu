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
// Pack nt_model_args (packs.cuh): params[0..8] = p22, p20, e_l, theta, reset, i_e, refractory_steps, p11, p21.
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "philox.cuh"
#include "packs.cuh"
#include "neuron_input.cuh"

#define NT_LANES 64u

// One thread per neuron: advances neurons 0..n_neurons by one step and writes spiked[i] = 1 if neuron i
// fired this step, else 0.
static __device__ __forceinline__ void nt_lif_exp_one(const nt_model_args& a, const unsigned int i) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned int n_channels = a.n_channels;
    double* state = a.state;
    const unsigned short* param_set = a.param_set;
    const double* p22 = (const double*)a.params[0];
    const double* p20 = (const double*)a.params[1];
    const double* e_l = (const double*)a.params[2];
    const double* theta = (const double*)a.params[3];
    const double* reset = (const double*)a.params[4];
    const double* i_e = (const double*)a.params[5];
    const unsigned int* refractory_steps = (const unsigned int*)a.params[6];
    const double* p11 = (const double*)a.params[7];
    const double* p21 = (const double*)a.params[8];
    const double* syn = a.syn;
    const double* i_ext = a.i_ext;
    const unsigned long long* forced = a.forced;
    unsigned char* spiked = a.spiked;

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

// 5. One thread per neuron: the model update alone (inputs prepared by the kernels of network.cu).
NT_KERNEL void lif_exp_update(const nt_model_args a) {
    nt_lif_exp_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

// 1–5 fused (the engine's launch): one thread per padded neuron gathers its input, applies its stimuli, gap
// junctions and gains (`nt_neuron_inputs`, neuron_input.cuh) and, for a neuron, updates its state — the same
// operations in the same order as gather_input .. lif_exp_update launched one by one.
NT_KERNEL void lif_exp_step(const nt_neuron_step_args a) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (nt_neuron_inputs(a, i)) {
        nt_lif_exp_one(a.model, i);
    }
}
