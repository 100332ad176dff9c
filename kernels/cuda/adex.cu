// Adaptive exponential integrate-and-fire with exponential current or conductance synapses
// (`neurotwin_models::adex::update_block`), one thread per neuron, bit for bit: Heun substeps with every
// multiply and add a separately rounded __dmul_rn / __dadd_rn / __dsub_rn in the order and association of
// the Rust expression, the exponential through nt_exp (`detmath::exp`). No system headers (NVRTC).
//
// State is block-major like the CPU backend: for block b = i / 64 and lane l = i % 64, variable v of neuron
// i is state[(b * n_state + v) * 64 + l] with v = 0: V_m (mV), 1: w (pA), 2: refractory (steps, as double),
// 3 + c: I_syn of channel c (pA); n_state = 3 + n_channels. syn is [block][channel][lane] (pA).
// forced[b]: bit l = lane l forced to fire this step. Per parameter set s: e_l, g_l, inv_c, v_th,
// g_l_delta_t, inv_delta_t, a, inv_tau_w, b, v_reset, v_peak, i_e, refractory_start, n_sub, h_sub,
// half_h_sub (as `adex::Compiled`); per (s, c): decay_sub[s * n_channels + c]; conductance synapses
// (conductance[s] = 1; NEST aeif_cond_exp): state 3 + c is the conductance g_c (nS), e_rev[s * n_channels + c]
// its reversal potential (mV), the synaptic current sum_c g_c (E_c - min(V, v_peak)), syn's magnitude added.
// Pack nt_model_args (packs.cuh, named args: a is a parameter array): params[0..16] = the 16 per-set arrays
// above in that order, then decay_sub, e_rev, conductance.
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "detmath.cuh"
#include "philox.cuh"
#include "packs.cuh"
#include "neuron_input.cuh"

#define NT_ADEX_LANES 64u

struct nt_adex_rhs {
    double dv, dw;
};

// Right-hand side (`adex::rhs`): V is capped at v_peak before use.
static __device__ __forceinline__ nt_adex_rhs nt_adex_eval(double e_l, double g_l, double inv_c, double v_th,
                                                           double g_l_delta_t, double inv_delta_t, double a,
                                                           double inv_tau_w, double v_peak, double v, double w,
                                                           double cur, double free_) {
    const double vc = v < v_peak ? v : v_peak;
    const double spike_current = __dmul_rn(g_l_delta_t, nt_exp(__dmul_rn(__dsub_rn(vc, v_th), inv_delta_t)));
    nt_adex_rhs r;
    // ((((-g_l) * (v - e_l) + spike_current) - w + i) * inv_c) * free
    r.dv = __dmul_rn(
        __dmul_rn(__dadd_rn(__dsub_rn(__dadd_rn(__dmul_rn(-g_l, __dsub_rn(vc, e_l)), spike_current), w), cur),
                  inv_c),
        free_);
    // (a * (v - e_l) - w) * inv_tau_w
    r.dw = __dmul_rn(__dsub_rn(__dmul_rn(a, __dsub_rn(vc, e_l)), w), inv_tau_w);
    return r;
}

// One thread per neuron: advances neurons 0..n_neurons by one step and writes spiked[i] = 1 if neuron i
// fired this step, else 0.
static __device__ __forceinline__ void nt_adex_one(const nt_model_args& args, const unsigned int i) {
    const unsigned int n_neurons = args.n_neurons;
    const unsigned int n_channels = args.n_channels;
    double* state = args.state;
    const unsigned short* param_set = args.param_set;
    const double* e_l = (const double*)args.params[0];
    const double* g_l = (const double*)args.params[1];
    const double* inv_c = (const double*)args.params[2];
    const double* v_th = (const double*)args.params[3];
    const double* g_l_delta_t = (const double*)args.params[4];
    const double* inv_delta_t = (const double*)args.params[5];
    const double* a = (const double*)args.params[6];
    const double* inv_tau_w = (const double*)args.params[7];
    const double* b = (const double*)args.params[8];
    const double* v_reset = (const double*)args.params[9];
    const double* v_peak = (const double*)args.params[10];
    const double* i_e = (const double*)args.params[11];
    const double* refractory_start = (const double*)args.params[12];
    const unsigned int* n_sub = (const unsigned int*)args.params[13];
    const double* h_sub = (const double*)args.params[14];
    const double* half_h_sub = (const double*)args.params[15];
    const double* decay_sub = (const double*)args.params[16];
    const double* e_rev = (const double*)args.params[17];
    const unsigned int* conductance = (const unsigned int*)args.params[18];
    const double* syn = args.syn;
    const double* i_ext = args.i_ext;
    const unsigned long long* forced = args.forced;
    unsigned char* spiked = args.spiked;

    if (i >= n_neurons) {
        return;
    }
    const unsigned int blk = i / NT_ADEX_LANES;
    const unsigned int l = i % NT_ADEX_LANES;
    const unsigned int n_state = 3u + n_channels;
    double* s = state + (unsigned long long)blk * n_state * NT_ADEX_LANES;
    const double* in = syn + (unsigned long long)blk * n_channels * NT_ADEX_LANES;
    const unsigned int set = param_set[i];
    const double* set_decay = decay_sub + (unsigned long long)set * n_channels;
    const double* set_e_rev = e_rev + (unsigned long long)set * n_channels;
    const bool cond = conductance[set] != 0u;
    const double se_l = e_l[set];
    const double sg_l = g_l[set];
    const double sinv_c = inv_c[set];
    const double sv_th = v_th[set];
    const double sg_l_delta_t = g_l_delta_t[set];
    const double sinv_delta_t = inv_delta_t[set];
    const double sa = a[set];
    const double sinv_tau_w = inv_tau_w[set];
    const double sb = b[set];
    const double sv_reset = v_reset[set];
    const double sv_peak = v_peak[set];
    const double srefr_start = refractory_start[set];
    const unsigned int n = n_sub[set];
    const double hs = h_sub[set];
    const double half_hs = half_h_sub[set];

    const double i0 = __dadd_rn(i_e[set], i_ext[i]);
    double v = s[l];
    double w = s[NT_ADEX_LANES + l];
    double r = s[2u * NT_ADEX_LANES + l];
    double i_start = 0.0;
    double ge_start = 0.0;
    for (unsigned int ch = 0; ch < n_channels; ++ch) {
        const double x = s[(3u + ch) * NT_ADEX_LANES + l];
        i_start = __dadd_rn(i_start, x);
        if (cond) {
            ge_start = __dadd_rn(ge_start, __dmul_rn(x, set_e_rev[ch]));
        }
    }
    bool fired = false;
    for (unsigned int k = 0; k < n; ++k) {
        double i_end = 0.0;
        double ge_end = 0.0;
        for (unsigned int ch = 0; ch < n_channels; ++ch) {
            double* x = &s[(3u + ch) * NT_ADEX_LANES + l];
            *x = __dmul_rn(*x, set_decay[ch]);
            i_end = __dadd_rn(i_end, *x);
            if (cond) {
                ge_end = __dadd_rn(ge_end, __dmul_rn(*x, set_e_rev[ch]));
            }
        }
        const double free_ = r > 0.0 ? 0.0 : 1.0;
        // Current synapses: i0 + sum I; conductance synapses: i0 + (sum g E - (sum g) * min(v, v_peak)).
        const double cur1 = cond ? __dadd_rn(i0, __dsub_rn(ge_start, __dmul_rn(i_start, v < sv_peak ? v : sv_peak)))
                                 : __dadd_rn(i0, i_start);
        const nt_adex_rhs k1 = nt_adex_eval(se_l, sg_l, sinv_c, sv_th, sg_l_delta_t, sinv_delta_t, sa, sinv_tau_w,
                                            sv_peak, v, w, cur1, free_);
        const double v_pred = __dadd_rn(v, __dmul_rn(hs, k1.dv));
        const double w_pred = __dadd_rn(w, __dmul_rn(hs, k1.dw));
        const double cur2 =
            cond ? __dadd_rn(i0, __dsub_rn(ge_end, __dmul_rn(i_end, v_pred < sv_peak ? v_pred : sv_peak)))
                 : __dadd_rn(i0, i_end);
        const nt_adex_rhs k2 = nt_adex_eval(se_l, sg_l, sinv_c, sv_th, sg_l_delta_t, sinv_delta_t, sa, sinv_tau_w,
                                            sv_peak, v_pred, w_pred, cur2, free_);
        v = __dadd_rn(v, __dmul_rn(half_hs, __dadd_rn(k1.dv, k2.dv)));
        w = __dadd_rn(w, __dmul_rn(half_hs, __dadd_rn(k1.dw, k2.dw)));
        i_start = i_end;
        ge_start = ge_end;
        if (r <= 0.0 && v >= sv_peak) {
            v = sv_reset;
            w = __dadd_rn(w, sb);
            r = srefr_start;
            fired = true;
        }
    }
    if (((forced[blk] >> l) & 1ull) == 1ull && !fired) {
        v = sv_reset;
        w = __dadd_rn(w, sb);
        r = srefr_start;
        fired = true;
    }
    if (r > 0.0) {
        r = __dsub_rn(r, 1.0);
    }
    for (unsigned int ch = 0; ch < n_channels; ++ch) {
        double* x = &s[(3u + ch) * NT_ADEX_LANES + l];
        const double x_in = in[ch * NT_ADEX_LANES + l];
        *x = __dadd_rn(*x, cond ? __longlong_as_double(__double_as_longlong(x_in) & 0x7FFFFFFFFFFFFFFFLL) : x_in);
    }
    s[l] = v;
    s[NT_ADEX_LANES + l] = w;
    s[2u * NT_ADEX_LANES + l] = r;
    spiked[i] = fired ? 1 : 0;
}

// 5. One thread per neuron: the model update alone (inputs prepared by the kernels of network.cu).
NT_KERNEL void adex_update(const nt_model_args a) {
    nt_adex_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

// 1–5 fused (the engine's launch): one thread per padded neuron gathers its input, applies its stimuli, gap
// junctions and gains (`nt_neuron_inputs`, neuron_input.cuh) and, for a neuron, updates its state — the same
// operations in the same order as gather_input .. adex_update launched one by one.
NT_KERNEL void adex_step(const nt_neuron_step_args a) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (nt_neuron_inputs(a, i)) {
        nt_adex_one(a.model, i);
    }
}
