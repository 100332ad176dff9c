// Non-spiking graded neuron with conductance synapses (`neurotwin_models::graded::update_block`), one thread
// per neuron, bit for bit: exact one-step relaxation with every multiply, add and divide a separately
// rounded __dmul_rn / __dadd_rn / __dsub_rn / __ddiv_rn in the order of the Rust expression, exponential and
// sigmoid through nt_exp (`detmath::exp` / `detmath::sigmoid`). No system headers (NVRTC).
//
// State is block-major like the CPU backend: for block b = i / 64 and lane l = i % 64, V_m of neuron i is
// state[b * 64 + l] (one variable). syn is [block][channel][lane] (conductance, nS; its magnitude is used).
// Per parameter set s: g_l[s], g_l_e_l[s] (pA), minus_h_over_c[s], beta[s], v_th[s], i_e[s]; per (s, c):
// e_rev[s * n_channels + c] (mV). gap_g / gap_gv (may be null): the gap coupling of neuron i as
// conductance sum (nS) and conductance-weighted partner potentials (pA), treated implicitly (joins g_tot and
// the drive). Writes the transmitted activation of neuron i to activity[i]; the model
// never spikes and has no forced input.
// Pack nt_model_args (packs.cuh): params[0..6] = g_l, g_l_e_l, minus_h_over_c, beta, v_th, i_e, e_rev.
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "detmath.cuh"
#include "philox.cuh"
#include "packs.cuh"
#include "neuron_input.cuh"

#define NT_GRADED_LANES 64u

// |x| by clearing the sign bit, as Rust's f64::abs (also for -0.0 and NaN).
static __device__ __forceinline__ double nt_abs_bits(double x) {
    return __longlong_as_double(__double_as_longlong(x) & 0x7FFFFFFFFFFFFFFFLL);
}

// One thread per neuron: advances neurons 0..n_neurons by one step and writes their activation.
static __device__ __forceinline__ void nt_graded_one(const nt_model_args& a, const unsigned int i) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned int n_channels = a.n_channels;
    double* state = a.state;
    const unsigned short* param_set = a.param_set;
    const double* g_l = (const double*)a.params[0];
    const double* g_l_e_l = (const double*)a.params[1];
    const double* minus_h_over_c = (const double*)a.params[2];
    const double* beta = (const double*)a.params[3];
    const double* v_th = (const double*)a.params[4];
    const double* i_e = (const double*)a.params[5];
    const double* e_rev = (const double*)a.params[6];
    const double* syn = a.syn;
    const double* i_ext = a.i_ext;
    const double* gap_g = a.gap_g;
    const double* gap_gv = a.gap_gv;
    double* activity = a.activity;

    if (i >= n_neurons) {
        return;
    }
    const unsigned int blk = i / NT_GRADED_LANES;
    const unsigned int l = i % NT_GRADED_LANES;
    double* s = state + (unsigned long long)blk * NT_GRADED_LANES;
    const double* in = syn + (unsigned long long)blk * n_channels * NT_GRADED_LANES;
    const unsigned int set = param_set[i];
    const double* set_e_rev = e_rev + (unsigned long long)set * n_channels;

    // Gap junctions as conductances (gap_conductance), or none when the pointers are null.
    const double gg = gap_g ? gap_g[i] : 0.0;
    const double ggv = gap_gv ? gap_gv[i] : 0.0;
    double g_tot = __dadd_rn(g_l[set], gg);
    // ((g_l e_l + i_e) + i_ext) + gap_gv
    double drive = __dadd_rn(__dadd_rn(__dadd_rn(g_l_e_l[set], i_e[set]), i_ext[i]), ggv);
    for (unsigned int ch = 0; ch < n_channels; ++ch) {
        const double g = nt_abs_bits(in[ch * NT_GRADED_LANES + l]);
        g_tot = __dadd_rn(g_tot, g);
        drive = __dadd_rn(drive, __dmul_rn(g, set_e_rev[ch]));
    }
    const double v_inf = __ddiv_rn(drive, g_tot);
    // v_inf + (V - v_inf) * exp(minus_h_over_c * g_tot)
    const double v =
        __dadd_rn(v_inf, __dmul_rn(__dsub_rn(s[l], v_inf), nt_exp(__dmul_rn(minus_h_over_c[set], g_tot))));
    s[l] = v;
    // sigmoid(beta * (v - v_th)) = 1 / (1 + exp(-x))
    const double x = __dmul_rn(beta[set], __dsub_rn(v, v_th[set]));
    activity[i] = __ddiv_rn(1.0, __dadd_rn(1.0, nt_exp(-x)));
}

// 5. One thread per neuron: the model update alone (inputs prepared by the kernels of network.cu).
NT_KERNEL void graded_update(const nt_model_args a) {
    nt_graded_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

// 1–5 fused (the engine's launch): one thread per padded neuron gathers its input, applies its stimuli, gap
// junctions and gains (`nt_neuron_inputs`, neuron_input.cuh) and, for a neuron, updates its state — the same
// operations in the same order as gather_input .. graded_update launched one by one.
NT_KERNEL void graded_step(const nt_neuron_step_args a) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (nt_neuron_inputs(a, i)) {
        nt_graded_one(a.model, i);
    }
}
