// Leaky integrate-and-fire neuron with exponential synaptic conductances (NEST iaf_cond_exp), mirroring
// `neurotwin_models::lif_cond_exp::update_block` bit for bit: exponential midpoint step of the membrane
// (conductances at the middle of the step, exact relaxation towards the momentary equilibrium), exact
// conductance decay; every multiply, add, subtract and divide a separately rounded __dmul_rn / __dadd_rn /
// __dsub_rn / __ddiv_rn in the order of the Rust expressions, the exponential through nt_exp
// (`detmath::exp`). No system headers (NVRTC).
//
// Layout (the engine's block-major layout, 64 neurons per block):
//   state[(b * n_state + var) * 64 + l], vars: 0 = V_m (mV), 1 = refractory (steps left, as double),
//   2 + c = g_syn of channel c (nS); n_state = 2 + n_channels.
//   syn[(b * n_channels + c) * 64 + l]: synaptic input arriving this step (nS; its magnitude opens the
//   conductance, as NEST takes negative inhibitory weights).
// Per parameter set s: g_l[s] (nS), g_l_e_l_i_e[s] = g_L E_L + I_e (pA), minus_h_over_c[s] (ms/pF), v_th[s],
// v_reset[s] (mV), refractory_steps[s]; per (s, c): p11[s * n_channels + c] = exp(-h/tau_c),
// q_mid[s * n_channels + c] = exp(-h/(2 tau_c)), e_rev[s * n_channels + c] (mV).
// Alpha conductances (alpha[s] = 1, `lif_cond_alpha`, NEST iaf_cond_alpha): state 2 + n_channels + c holds the
// derivative dg of channel c (n_state = 2 + 2 n_channels); g_mid = (g + 0.5 h dg) q_mid, then
// g = (g + h dg) p11, dg = dg p11 + |syn| jump with jump[s * n_channels + c] = e/tau_c and h[s] the step (ms).
// Pack nt_model_args (packs.cuh): params[0..12] = g_l, g_l_e_l_i_e, minus_h_over_c, v_th, v_reset,
// refractory_steps, p11, q_mid, e_rev, alpha, jump, h.
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "detmath.cuh"
#include "philox.cuh"
#include "packs.cuh"
#include "neuron_input.cuh"

#define NT_COND_LANES 64u

// |x| by clearing the sign bit, as Rust's f64::abs.
static __device__ __forceinline__ double nt_cond_abs(double x) {
    return __longlong_as_double(__double_as_longlong(x) & 0x7FFFFFFFFFFFFFFFLL);
}

// One thread per neuron: advances neuron i by one step and writes spiked[i] = 1 if it fired, else 0.
static __device__ __forceinline__ void nt_lif_cond_exp_one(const nt_model_args& a, const unsigned int i) {
    const unsigned int n_channels = a.n_channels;
    const double* g_l = (const double*)a.params[0];
    const double* g_l_e_l_i_e = (const double*)a.params[1];
    const double* minus_h_over_c = (const double*)a.params[2];
    const double* v_th = (const double*)a.params[3];
    const double* v_reset = (const double*)a.params[4];
    const unsigned int* refractory_steps = (const unsigned int*)a.params[5];
    const double* p11 = (const double*)a.params[6];
    const double* q_mid = (const double*)a.params[7];
    const double* e_rev = (const double*)a.params[8];
    const unsigned int* alpha = (const unsigned int*)a.params[9];
    const double* jump = (const double*)a.params[10];
    const double* h = (const double*)a.params[11];

    if (i >= a.n_neurons) {
        return;
    }
    const unsigned int b = i / NT_COND_LANES;
    const unsigned int l = i % NT_COND_LANES;
    const unsigned int set = a.param_set[i];
    const bool is_alpha = alpha[set] != 0u;
    const unsigned int n_state = 2u + (is_alpha ? 2u : 1u) * n_channels;
    double* s = a.state + (unsigned long long)b * n_state * NT_COND_LANES;
    const double* in = a.syn + (unsigned long long)b * n_channels * NT_COND_LANES;
    const unsigned long long base = (unsigned long long)set * n_channels;
    const double hs = h[set];

    double v = s[l];
    double refr = s[NT_COND_LANES + l];
    if (refr > 0.0) {
        refr = __dsub_rn(refr, 1.0);
    } else {
        double g_tot = g_l[set];
        double drive = __dadd_rn(g_l_e_l_i_e[set], a.i_ext[i]);
        for (unsigned int c = 0; c < n_channels; ++c) {
            const double gc = s[(2u + c) * NT_COND_LANES + l];
            // alpha: (g + 0.5 h dg) q_mid; exp: g q_mid
            const double g = is_alpha
                ? __dmul_rn(__dadd_rn(gc, __dmul_rn(__dmul_rn(0.5, hs), s[(2u + n_channels + c) * NT_COND_LANES + l])),
                            q_mid[base + c])
                : __dmul_rn(gc, q_mid[base + c]);
            g_tot = __dadd_rn(g_tot, g);
            drive = __dadd_rn(drive, __dmul_rn(g, e_rev[base + c]));
        }
        const double v_inf = __ddiv_rn(drive, g_tot);
        // v_inf + (v - v_inf) * exp(minus_h_over_c * g_tot)
        v = __dadd_rn(v_inf, __dmul_rn(__dsub_rn(v, v_inf), nt_exp(__dmul_rn(minus_h_over_c[set], g_tot))));
    }
    for (unsigned int c = 0; c < n_channels; ++c) {
        double* g = &s[(2u + c) * NT_COND_LANES + l];
        const double x = nt_cond_abs(in[c * NT_COND_LANES + l]);
        if (is_alpha) {
            double* dg = &s[(2u + n_channels + c) * NT_COND_LANES + l];
            const double g0 = *g;
            const double dg0 = *dg;
            *g = __dmul_rn(__dadd_rn(g0, __dmul_rn(hs, dg0)), p11[base + c]);
            *dg = __dadd_rn(__dmul_rn(dg0, p11[base + c]), __dmul_rn(x, jump[base + c]));
        } else {
            *g = __dadd_rn(__dmul_rn(*g, p11[base + c]), x);
        }
    }
    unsigned char fired = 0;
    if (v >= v_th[set] || ((a.forced[b] >> l) & 1ull) == 1ull) {
        v = v_reset[set];
        refr = (double)refractory_steps[set];
        fired = 1;
    }
    s[l] = v;
    s[NT_COND_LANES + l] = refr;
    a.spiked[i] = fired;
}

// 5. One thread per neuron: the model update alone (inputs prepared by the kernels of network.cu).
NT_KERNEL void lif_cond_exp_update(const nt_model_args a) {
    nt_lif_cond_exp_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

// 1–5 fused (the engine's launch): one thread per padded neuron gathers its input, applies its stimuli, gap
// junctions and gains (`nt_neuron_inputs`, neuron_input.cuh) and, for a neuron, updates its state — the same
// operations in the same order as gather_input .. lif_cond_exp_update launched one by one.
NT_KERNEL void lif_cond_exp_step(const nt_neuron_step_args a) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (nt_neuron_inputs(a, i)) {
        nt_lif_cond_exp_one(a.model, i);
    }
}
