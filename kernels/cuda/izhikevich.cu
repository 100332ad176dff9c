// Izhikevich's simple model (`neurotwin_models::izhikevich::update_block`), one thread per neuron, bit for
// bit: forward Euler on n_sub substeps, every multiply and add a separately rounded __dmul_rn / __dadd_rn /
// __dsub_rn in the order and association of the Rust expression. No system headers (NVRTC).
//
// State is block-major like the CPU backend: for block b = i / 64 and lane l = i % 64, variable v of neuron
// i is state[(b * 2 + v) * 64 + l] with v = 0: V_m (mV), 1: U_m (mV/ms). syn is [block][channel][lane]
// (voltage jumps, mV, summed over channels). forced[b]: bit l = lane l forced to fire this step.
// Per parameter set s: a[s], b[s], c[s], d[s], v_peak[s], i_e[s], n_sub[s] (substeps), h_sub[s] (ms).
// Pack nt_model_args (packs.cuh, named args: a is a parameter array): params[0..7] = a, b, c, d, v_peak, i_e,
// n_sub, h_sub.
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "philox.cuh"
#include "packs.cuh"
#include "neuron_input.cuh"

#define NT_IZH_LANES 64u

// One thread per neuron: advances neurons 0..n_neurons by one step and writes spiked[i] = 1 if neuron i
// fired this step, else 0.
static __device__ __forceinline__ void nt_izhikevich_one(const nt_model_args& args, const unsigned int i) {
    const unsigned int n_neurons = args.n_neurons;
    const unsigned int n_channels = args.n_channels;
    double* state = args.state;
    const unsigned short* param_set = args.param_set;
    const double* a = (const double*)args.params[0];
    const double* b = (const double*)args.params[1];
    const double* c = (const double*)args.params[2];
    const double* d = (const double*)args.params[3];
    const double* v_peak = (const double*)args.params[4];
    const double* i_e = (const double*)args.params[5];
    const unsigned int* n_sub = (const unsigned int*)args.params[6];
    const double* h_sub = (const double*)args.params[7];
    const double* syn = args.syn;
    const double* i_ext = args.i_ext;
    const unsigned long long* forced = args.forced;
    unsigned char* spiked = args.spiked;

    if (i >= n_neurons) {
        return;
    }
    const unsigned int blk = i / NT_IZH_LANES;
    const unsigned int l = i % NT_IZH_LANES;
    double* s = state + (unsigned long long)blk * 2u * NT_IZH_LANES;
    const double* in = syn + (unsigned long long)blk * n_channels * NT_IZH_LANES;
    const unsigned int set = param_set[i];
    const double sa = a[set];
    const double sb = b[set];
    const double sc = c[set];
    const double sd = d[set];
    const double peak = v_peak[set];
    const double hs = h_sub[set];
    const unsigned int n = n_sub[set];

    const double cur = __dadd_rn(i_e[set], i_ext[i]);
    double v = s[l];
    double u = s[NT_IZH_LANES + l];
    bool fired = false;
    for (unsigned int k = 0; k < n; ++k) {
        // dv = ((((0.04 * v) * v + 5 * v) + 140) - u) + I;  du = a * (b * v - u)
        const double dv = __dadd_rn(
            __dsub_rn(__dadd_rn(__dadd_rn(__dmul_rn(__dmul_rn(0.04, v), v), __dmul_rn(5.0, v)), 140.0), u), cur);
        const double du = __dmul_rn(sa, __dsub_rn(__dmul_rn(sb, v), u));
        v = __dadd_rn(v, __dmul_rn(hs, dv));
        u = __dadd_rn(u, __dmul_rn(hs, du));
        if (v >= peak) {
            v = sc;
            u = __dadd_rn(u, sd);
            fired = true;
        }
    }
    for (unsigned int ch = 0; ch < n_channels; ++ch) {
        v = __dadd_rn(v, in[ch * NT_IZH_LANES + l]);
    }
    const bool is_forced = ((forced[blk] >> l) & 1ull) == 1ull;
    if (v >= peak || (is_forced && !fired)) {
        v = sc;
        u = __dadd_rn(u, sd);
        fired = true;
    }
    s[l] = v;
    s[NT_IZH_LANES + l] = u;
    spiked[i] = fired ? 1 : 0;
}

// 5. One thread per neuron: the model update alone (inputs prepared by the kernels of network.cu).
NT_KERNEL void izhikevich_update(const nt_model_args a) {
    nt_izhikevich_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

// 1–5 fused (the engine's launch): one thread per padded neuron gathers its input, applies its stimuli, gap
// junctions and gains (`nt_neuron_inputs`, neuron_input.cuh) and, for a neuron, updates its state — the same
// operations in the same order as gather_input .. izhikevich_update launched one by one.
NT_KERNEL void izhikevich_step(const nt_neuron_step_args a) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (nt_neuron_inputs(a, i)) {
        nt_izhikevich_one(a.model, i);
    }
}
