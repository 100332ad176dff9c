// The differentiable graded conductance network of connectome-constrained fitting (`neurotwin_fit::graded`,
// fit/src/graded.rs): its forward step (exact exponential integration with the conductances held) and one
// step of its discrete adjoint (checkpointed BPTT), f64, bit for bit: every multiply, add, subtract and divide
// a separately rounded __dmul_rn / __dadd_rn / __dsub_rn / __ddiv_rn in the order and association of the Rust
// expression (never contracted into FMA), exp through nt_exp (`detmath::exp`) and the sigmoid as
// `detmath::sigmoid` = 1 / (1 + exp(-x)). Every output element is owned by one thread, which sums in the Rust
// code's order with a sequential loop, so there are no atomics; no shared memory, no warp intrinsics (the host
// build runs the very same code). No system headers (NVRTC). Each kernel's comment names what it mirrors
// (GradedModel::* and Input::* in fit/src/graded.rs and fit/src/rate.rs).
//
// Network (FitNetwork + GradedModel's channel index): chemical connections in CSR by postsynaptic neuron,
// row_ptr (n + 1, u64), pre (u32) and receptor (u8, channel of each connection); per (neuron i, channel c) the
// connections of row i on channel c in CSR order, ch_conn[ch_ptr[i n_ch + c] .. ch_ptr[i n_ch + c + 1]]
// (ch_ptr n n_ch + 1 entries, u64; ch_conn u32 connection indices); the transpose by presynaptic neuron,
// out_ptr (n + 1, u64), out_conn (connection index, u32, ascending within a neuron) and out_slot (post n_ch +
// receptor of out_conn[m], u32); gap junctions as a symmetric CSR, gap_ptr (n + 1, u64) and gap_nbr (u32).
// excitatory[c] != 0 when channel c is excitatory (reversal e_exc, else e_inh). Values: w per connection,
// e per gap entry, and per neuron g_l, e_l, theta, slope, bias, gain, e_exc, e_inh; minus_h_over_c = -dt / C
// as computed by GradedModel.
//
// Clamp (teacher forcing): clamp_idx[i] = index of neuron i within the clamp's neuron list (the last one where
// a neuron is listed twice, as the sequential Rust loop leaves it), or -1 when i is not clamped; clamp_idx may
// be null (nothing clamped) where a kernel only zeroes adjoints.
//
// One forward step: graded_fit_pulse_input, graded_fit_activation, graded_fit_step, graded_fit_clamp. One
// adjoint step (lambda = lambda^{t+1} on entry; the loss's explicit term is added to lambda_prev on the host):
// graded_fit_pulse_input, graded_fit_activation, graded_fit_adjoint_terms, graded_fit_adjoint_lambda. At the
// end, when V^0 = E_L: graded_fit_initial_grad.
//
// Launch: 1-D grid, thread t = blockIdx.x * blockDim.x + threadIdx.x handles neuron t < n (n < 2^32).
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "detmath.cuh"

// Step input u at step t: u[i] = 0 + the amplitudes of neuron i's pulses active at t (start <= t < stop), in
// the order the pulses are listed. Pulses grouped by neuron in CSR (pulse_ptr, n + 1) keeping their order
// within a neuron. Mirrors Input::u_at.
NT_KERNEL void graded_fit_pulse_input(unsigned int n, unsigned long long t,
                                      const unsigned long long* __restrict__ pulse_ptr,
                                      const unsigned long long* __restrict__ start,
                                      const unsigned long long* __restrict__ stop, const double* __restrict__ amp,
                                      double* __restrict__ u) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    double acc = 0.0;
    for (unsigned long long k = pulse_ptr[i]; k < pulse_ptr[i + 1]; ++k) {
        if (t >= start[k] && t < stop[k]) {
            acc = __dadd_rn(acc, amp[k]);
        }
    }
    u[i] = acc;
}

// Teacher forcing: v[i] = values[clamp_idx[i]] where clamp_idx[i] >= 0 (values = the clamp's row of this step).
// Mirrors Input::apply_clamp.
NT_KERNEL void graded_fit_clamp(unsigned int n, const int* __restrict__ clamp_idx, const double* __restrict__ values,
                                double* __restrict__ v) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    const int m = clamp_idx[i];
    if (m >= 0) {
        v[i] = values[m];
    }
}

// Activations s[j] = sigmoid(slope (v - theta)) = 1 / (1 + exp(-(slope (v - theta)))). Mirrors the first fill
// of GradedModel::synapses.
NT_KERNEL void graded_fit_activation(unsigned int n, const double* __restrict__ v, const double* __restrict__ theta,
                                     const double* __restrict__ slope, double* __restrict__ s) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    const double x = __dmul_rn(slope[j], __dsub_rn(v[j], theta[j]));
    s[j] = __ddiv_rn(1.0, __dadd_rn(1.0, nt_exp(-x)));
}

// Channel conductances of neuron i: gch[i n_ch + c] = sum over ch_conn of (i, c) (from 0) of w[m] s[pre[m]].
// Mirrors the second fill of GradedModel::synapses (row i).
static __device__ __forceinline__ void nt_graded_conductances(unsigned int i, unsigned int n_ch,
                                                              const unsigned long long* __restrict__ ch_ptr,
                                                              const unsigned int* __restrict__ ch_conn,
                                                              const unsigned int* __restrict__ pre,
                                                              const double* __restrict__ w,
                                                              const double* __restrict__ s, double* __restrict__ gch) {
    const unsigned long long base = (unsigned long long)i * n_ch;
    for (unsigned int c = 0; c < n_ch; ++c) {
        double acc = 0.0;
        for (unsigned long long k = ch_ptr[base + c]; k < ch_ptr[base + c + 1]; ++k) {
            const unsigned int m = ch_conn[k];
            acc = __dadd_rn(acc, __dmul_rn(w[m], s[pre[m]]));
        }
        gch[base + c] = acc;
    }
}

// g_i, V_inf,i and x_i of neuron i. Mirrors GradedModel::terms.
struct NtGradedTerms {
    double g_tot, v_inf, x;
};

static __device__ __forceinline__ NtGradedTerms nt_graded_terms(
    unsigned int i, unsigned int n_ch, double minus_h_over_c, const unsigned char* __restrict__ excitatory,
    const unsigned long long* __restrict__ gap_ptr, const unsigned int* __restrict__ gap_nbr,
    const double* __restrict__ e, const double* __restrict__ g_l, const double* __restrict__ e_l,
    const double* __restrict__ bias, const double* __restrict__ gain, const double* __restrict__ e_exc,
    const double* __restrict__ e_inh, double u_i, const double* __restrict__ v, const double* __restrict__ gch) {
    double gap_g = 0.0;
    double gap_gv = 0.0;
    for (unsigned long long k = gap_ptr[i]; k < gap_ptr[i + 1]; ++k) {
        gap_g = __dadd_rn(gap_g, e[k]);
        gap_gv = __dadd_rn(gap_gv, __dmul_rn(e[k], v[gap_nbr[k]]));
    }
    double g_tot = __dadd_rn(g_l[i], gap_g);
    // ((g_l e_l + bias) + gain u) + gap_gv
#ifdef NEUROTWIN_BREAK_FOR_TEST
    // Deliberately wrong association ((g_l e_l + bias) + (gain u + gap_gv)): used only to prove that the
    // conformance test detects a reordering.
    double drive = __dadd_rn(__dadd_rn(__dmul_rn(g_l[i], e_l[i]), bias[i]), __dadd_rn(__dmul_rn(gain[i], u_i), gap_gv));
#else
    double drive = __dadd_rn(__dadd_rn(__dadd_rn(__dmul_rn(g_l[i], e_l[i]), bias[i]), __dmul_rn(gain[i], u_i)), gap_gv);
#endif
    const double ee = e_exc[i];
    const double ei = e_inh[i];
    const unsigned long long base = (unsigned long long)i * n_ch;
    for (unsigned int c = 0; c < n_ch; ++c) {
        const double g = gch[base + c];
        g_tot = __dadd_rn(g_tot, g);
        drive = __dadd_rn(drive, __dmul_rn(g, excitatory[c] ? ee : ei));
    }
    NtGradedTerms t;
    t.g_tot = g_tot;
    t.v_inf = __ddiv_rn(drive, g_tot);
    t.x = nt_exp(__dmul_rn(minus_h_over_c, g_tot));
    return t;
}

// One step from v (s = activations of v from graded_fit_activation; gch = scratch of n n_ch): per neuron i,
// the channel conductances (written to gch), then v_next = V_inf + (v - V_inf) x. Mirrors GradedModel::step
// (before teacher forcing).
NT_KERNEL void graded_fit_step(unsigned int n, unsigned int n_ch, double minus_h_over_c,
                               const unsigned char* __restrict__ excitatory,
                               const unsigned long long* __restrict__ ch_ptr, const unsigned int* __restrict__ ch_conn,
                               const unsigned int* __restrict__ pre, const double* __restrict__ w,
                               const unsigned long long* __restrict__ gap_ptr, const unsigned int* __restrict__ gap_nbr,
                               const double* __restrict__ e, const double* __restrict__ g_l,
                               const double* __restrict__ e_l, const double* __restrict__ bias,
                               const double* __restrict__ gain, const double* __restrict__ e_exc,
                               const double* __restrict__ e_inh, const double* __restrict__ u,
                               const double* __restrict__ v, const double* __restrict__ s, double* __restrict__ gch,
                               double* __restrict__ v_next) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    nt_graded_conductances(i, n_ch, ch_ptr, ch_conn, pre, w, s, gch);
    const NtGradedTerms t =
        nt_graded_terms(i, n_ch, minus_h_over_c, excitatory, gap_ptr, gap_nbr, e, g_l, e_l, bias, gain, e_exc, e_inh,
                        u[i], v, gch);
    v_next[i] = __dadd_rn(t.v_inf, __dmul_rn(__dsub_rn(v[i], t.v_inf), t.x));
}

// First part of one adjoint step, per neuron i (lambda = lambda^{t+1}, v = V^t, u = u^t, s = activations of
// V^t): lambda[i] = 0 if i is clamped; the channel conductances (gch); the step terms and
// a_d = (lambda (1 - x)) / g, a_g = lambda ((1 - x) ((-V_inf) / g) + (v - V_inf) (k x)) with k = minus_h_over_c;
// rho[i n_ch + c] = a_d E_ic + a_g; the per-neuron gradients g_l += a_d e_l + a_g, e_l += a_d g_l, bias += a_d,
// gain += a_d u, e_exc += a_d (sum of excitatory G), e_inh += a_d (sum of inhibitory G); then row i's
// connection gradients w += rho[i n_ch + receptor] s[pre] and gap gradients e += a_d v[nbr] + a_g.
// Mirrors Input::zero_clamped, the terms and rho fills, the per-neuron loop and the two for_rows loops of
// GradedModel::backward_step (every element is written by its own thread with one add per step, so the
// order of these accumulations between threads does not matter).
NT_KERNEL void graded_fit_adjoint_terms(
    unsigned int n, unsigned int n_ch, double minus_h_over_c, const unsigned char* __restrict__ excitatory,
    const unsigned long long* __restrict__ row_ptr, const unsigned int* __restrict__ pre,
    const unsigned char* __restrict__ receptor, const unsigned long long* __restrict__ ch_ptr,
    const unsigned int* __restrict__ ch_conn, const double* __restrict__ w,
    const unsigned long long* __restrict__ gap_ptr, const unsigned int* __restrict__ gap_nbr,
    const double* __restrict__ e, const double* __restrict__ g_l, const double* __restrict__ e_l,
    const double* __restrict__ bias, const double* __restrict__ gain, const double* __restrict__ e_exc,
    const double* __restrict__ e_inh, const int* __restrict__ clamp_idx, const double* __restrict__ u,
    const double* __restrict__ v, const double* __restrict__ s, double* __restrict__ lambda, double* __restrict__ gch,
    double* __restrict__ a_d_out, double* __restrict__ a_g_out, double* __restrict__ x_out, double* __restrict__ rho,
    double* __restrict__ grad_g_l, double* __restrict__ grad_e_l, double* __restrict__ grad_bias,
    double* __restrict__ grad_gain, double* __restrict__ grad_e_exc, double* __restrict__ grad_e_inh,
    double* __restrict__ grad_w, double* __restrict__ grad_e) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    double lam = lambda[i];
    if (clamp_idx && clamp_idx[i] >= 0) {
        lam = 0.0;
        lambda[i] = 0.0;
    }
    nt_graded_conductances(i, n_ch, ch_ptr, ch_conn, pre, w, s, gch);
    const double ui = u[i];
    const double vi = v[i];
    const NtGradedTerms t = nt_graded_terms(i, n_ch, minus_h_over_c, excitatory, gap_ptr, gap_nbr, e, g_l, e_l,
                                            bias, gain, e_exc, e_inh, ui, v, gch);
    const double one_minus_x = __dsub_rn(1.0, t.x);
    const double a_d = __ddiv_rn(__dmul_rn(lam, one_minus_x), t.g_tot);
    const double a_g =
        __dmul_rn(lam, __dadd_rn(__dmul_rn(one_minus_x, __ddiv_rn(-t.v_inf, t.g_tot)),
                                 __dmul_rn(__dsub_rn(vi, t.v_inf), __dmul_rn(minus_h_over_c, t.x))));
    a_d_out[i] = a_d;
    a_g_out[i] = a_g;
    x_out[i] = t.x;
    const double ee = e_exc[i];
    const double ei = e_inh[i];
    const unsigned long long base = (unsigned long long)i * n_ch;
    double g_exc = 0.0;
    double g_inh = 0.0;
    for (unsigned int c = 0; c < n_ch; ++c) {
        rho[base + c] = __dadd_rn(__dmul_rn(a_d, excitatory[c] ? ee : ei), a_g);
        if (excitatory[c]) {
            g_exc = __dadd_rn(g_exc, gch[base + c]);
        } else {
            g_inh = __dadd_rn(g_inh, gch[base + c]);
        }
    }
    grad_g_l[i] = __dadd_rn(grad_g_l[i], __dadd_rn(__dmul_rn(a_d, e_l[i]), a_g));
    grad_e_l[i] = __dadd_rn(grad_e_l[i], __dmul_rn(a_d, g_l[i]));
    grad_bias[i] = __dadd_rn(grad_bias[i], a_d);
    grad_gain[i] = __dadd_rn(grad_gain[i], __dmul_rn(a_d, ui));
    grad_e_exc[i] = __dadd_rn(grad_e_exc[i], __dmul_rn(a_d, g_exc));
    grad_e_inh[i] = __dadd_rn(grad_e_inh[i], __dmul_rn(a_d, g_inh));
    for (unsigned long long k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
        grad_w[k] = __dadd_rn(grad_w[k], __dmul_rn(rho[base + receptor[k]], s[pre[k]]));
    }
    for (unsigned long long k = gap_ptr[i]; k < gap_ptr[i + 1]; ++k) {
        grad_e[k] = __dadd_rn(grad_e[k], __dadd_rn(__dmul_rn(a_d, v[gap_nbr[k]]), a_g));
    }
}

// Second part, per neuron k (after graded_fit_adjoint_terms; lambda already zeroed where clamped):
// a = sum over k's outputs m (out_ptr order, from 0) of w[out_conn[m]] rho[out_slot[m]]; ds = s (1 - s);
// theta += -((a slope) ds); slope += (a (v - theta)) ds;
// lambda_prev = (lambda x + (slope ds) a) + gap with gap = sum over gap row k (from 0) of e a_d[nbr].
// Mirrors the a_out fill, the theta/slope lines of the per-neuron loop and the lambda_prev fill of
// GradedModel::backward_step.
NT_KERNEL void graded_fit_adjoint_lambda(
    unsigned int n, const unsigned long long* __restrict__ out_ptr, const unsigned int* __restrict__ out_conn,
    const unsigned int* __restrict__ out_slot, const double* __restrict__ w,
    const unsigned long long* __restrict__ gap_ptr, const unsigned int* __restrict__ gap_nbr,
    const double* __restrict__ e, const double* __restrict__ theta, const double* __restrict__ slope,
    const double* __restrict__ v, const double* __restrict__ s, const double* __restrict__ lambda,
    const double* __restrict__ rho, const double* __restrict__ a_d, const double* __restrict__ x,
    double* __restrict__ grad_theta, double* __restrict__ grad_slope, double* __restrict__ lambda_prev) {
    const unsigned int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) {
        return;
    }
    double a = 0.0;
    for (unsigned long long m = out_ptr[k]; m < out_ptr[k + 1]; ++m) {
        a = __dadd_rn(a, __dmul_rn(w[out_conn[m]], rho[out_slot[m]]));
    }
    const double sk = s[k];
    const double ds = __dmul_rn(sk, __dsub_rn(1.0, sk));
    const double sl = slope[k];
    grad_theta[k] = __dadd_rn(grad_theta[k], -__dmul_rn(__dmul_rn(a, sl), ds));
    grad_slope[k] = __dadd_rn(grad_slope[k], __dmul_rn(__dmul_rn(a, __dsub_rn(v[k], theta[k])), ds));
    double gap = 0.0;
    for (unsigned long long m = gap_ptr[k]; m < gap_ptr[k + 1]; ++m) {
        gap = __dadd_rn(gap, __dmul_rn(e[m], a_d[gap_nbr[m]]));
    }
    lambda_prev[k] = __dadd_rn(__dadd_rn(__dmul_rn(lambda[k], x[k]), __dmul_rn(__dmul_rn(sl, ds), a)), gap);
}

// V^0 = E_L: lambda[i] = 0 where clamped (clamp_idx may be null), then grad_e_l += lambda. Mirrors the end of
// GradedModel::loss_and_grad.
NT_KERNEL void graded_fit_initial_grad(unsigned int n, const int* __restrict__ clamp_idx, double* __restrict__ lambda,
                                       double* __restrict__ grad_e_l) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    double lam = lambda[i];
    if (clamp_idx && clamp_idx[i] >= 0) {
        lam = 0.0;
        lambda[i] = 0.0;
    }
    grad_e_l[i] = __dadd_rn(grad_e_l[i], lam);
}
