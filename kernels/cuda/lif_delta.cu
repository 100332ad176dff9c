// Leaky integrate-and-fire with delta synapses (`neurotwin_models::lif_delta::update_block`), one thread per
// neuron, bit for bit: every multiply and add is a separately rounded __dmul_rn / __dadd_rn in the order of
// the Rust expression. No system headers (NVRTC).
//
// State is block-major like the CPU backend: for block b = i / 64 and lane l = i % 64, variable v of neuron
// i is state[(b * 3 + v) * 64 + l] with v = 0: V_m (mV), 1: refractory (steps left), 2: refr_input (mV).
// syn is [block][channel][lane] (n_channels per block). Per parameter set s: p22[s] = exp(-h/tau_m),
// p20[s] (mV/pA), e_l[s], theta[s] and reset[s] (mV, relative to E_L), i_e[s] (pA), refractory_steps[s],
// keep_refractory_input[s] (1.0 or 0.0).
// Pack nt_model_args (packs.cuh): params[0..7] = p22, p20, e_l, theta, reset, i_e, refractory_steps,
// keep_refractory_input.
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "philox.cuh"
#include "packs.cuh"
#include "neuron_input.cuh"

#define NT_DELTA_LANES 64u

// One thread per neuron: advances neurons 0..n_neurons by one step and writes spiked[i] = 1 if neuron i
// fired this step, else 0.
static __device__ __forceinline__ void nt_lif_delta_one(const nt_model_args& a, const unsigned int i) {
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
    const double* keep_refractory_input = (const double*)a.params[7];
    const double* syn = a.syn;
    const double* i_ext = a.i_ext;
    const unsigned long long* forced = a.forced;
    unsigned char* spiked = a.spiked;

    if (i >= n_neurons) {
        return;
    }
    const unsigned int b = i / NT_DELTA_LANES;
    const unsigned int l = i % NT_DELTA_LANES;
    double* s = state + (unsigned long long)b * 3u * NT_DELTA_LANES;
    const double* in = syn + (unsigned long long)b * n_channels * NT_DELTA_LANES;
    const unsigned int set = param_set[i];
    const double el = e_l[set];

    // Delta synapses have no kinetics: all channels are summed, in channel order, from 0.0.
    double sum = 0.0;
    for (unsigned int c = 0; c < n_channels; ++c) {
        sum = __dadd_rn(sum, in[c * NT_DELTA_LANES + l]);
    }
    double y = __dsub_rn(s[l], el);
    double refr = s[NT_DELTA_LANES + l];
    double buf = s[2u * NT_DELTA_LANES + l];
    if (refr > 0.0) {
        refr = __dsub_rn(refr, 1.0);
        // (buf + sum * keep) * p22
        buf = __dmul_rn(__dadd_rn(buf, __dmul_rn(sum, keep_refractory_input[set])), p22[set]);
    } else {
        // ((y * p22 + (i_e + i_ext) * p20) + sum) + buf
        y = __dadd_rn(__dmul_rn(y, p22[set]), __dmul_rn(__dadd_rn(i_e[set], i_ext[i]), p20[set]));
        y = __dadd_rn(__dadd_rn(y, sum), buf);
        buf = 0.0;
    }
    unsigned char fired = 0;
    if (y >= theta[set] || ((forced[b] >> l) & 1ull) == 1ull) {
        y = reset[set];
        refr = (double)refractory_steps[set];
        fired = 1;
    }
    s[l] = __dadd_rn(y, el);
    s[NT_DELTA_LANES + l] = refr;
    s[2u * NT_DELTA_LANES + l] = buf;
    spiked[i] = fired;
}

// 5. One thread per neuron: the model update alone (inputs prepared by the kernels of network.cu).
NT_KERNEL void lif_delta_update(const nt_model_args a) {
    nt_lif_delta_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

// 1–5 fused (the engine's launch): one thread per padded neuron gathers its input, applies its stimuli, gap
// junctions and gains (`nt_neuron_inputs`, neuron_input.cuh) and, for a neuron, updates its state — the same
// operations in the same order as gather_input .. lif_delta_update launched one by one.
NT_KERNEL void lif_delta_step(const nt_neuron_step_args a) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (nt_neuron_inputs(a, i)) {
        nt_lif_delta_one(a.model, i);
    }
}
