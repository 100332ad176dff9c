// The spiking LIF network of connectome-constrained fitting (`neurotwin_fit::lif`, fit/src/lif.rs): its forward
// step (explicit Euler, reset by subtraction) and one step of its surrogate-gradient BPTT (the body of the
// backward loop of LifModel::loss_and_grad), f64, bit for bit: every multiply, add, subtract and divide a
// separately rounded __dmul_rn / __dadd_rn / __dsub_rn / __ddiv_rn in the order and association of the Rust
// expression (never contracted into FMA). Every output element is owned by one thread, which sums in the Rust
// code's order with a sequential loop, so there are no atomics; no shared memory, no warp intrinsics (the host
// build runs the very same code). No system headers (NVRTC). Each kernel's comment names what it mirrors.
//
// Spike function `kind`: 0 = Heaviside S = (x > 0 ? 1 : 0); 1 = fast sigmoid S = 0.5 (1 + (kappa x) /
// (1 + kappa |x|)), x = v - theta. Surrogate psi(x) = (0.5 kappa) / (d d) with d = 1 + kappa |x| (used by the
// backward pass for both kinds). beta = detmath::exp(-dt / tau_syn) is a kernel argument (computed once on the
// host with the same detmath exp; nt_exp gives the same bits).
//
// Network (FitNetwork), as in fit_rate.cu: chemical connections in CSR by postsynaptic neuron, row_ptr (n + 1,
// u64) and pre (u32); the transpose by presynaptic neuron, out_ptr (n + 1, u64), out_conn (connection index,
// u32) and out_post (postsynaptic neuron of out_conn[m], u32); gap junctions as a symmetric CSR, gap_ptr
// (n + 1, u64) and gap_nbr (u32). Values: w per connection, e per gap entry, per neuron bias, gain, theta and
// alpha = dt / tau.
//
// One forward step (V = V^t, I = I^t): lif_pulse_input, lif_spike (s = S^t), lif_step. One backward step
// (lambda = dL/dV^{t+1}, nu = dL/dI^{t+1} on entry; v = V^t, drive = the step's drive):
// lif_pulse_input, lif_adjoint_mu (also s = S^t), then the loss's explicit term d_s = dL/dS^t on the host,
// then lif_adjoint_lambda and lif_grad_edges (in any order); then swap lambda/lambda_prev and nu/nu_prev.
// Once: lif_alpha; after the forward pass lif_spike of the final state and lif_adjoint_final; at the end
// lif_tau_grad.
//
// Launch: 1-D grid, thread t = blockIdx.x * blockDim.x + threadIdx.x handles neuron t < n (n < 2^32).
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#define NT_LIF_HEAVISIDE 0
#define NT_LIF_FAST_SIGMOID 1

// |x| exactly as f64::abs (clears the sign bit).
static __device__ __forceinline__ double nt_lif_abs(double x) {
    return __longlong_as_double(__double_as_longlong(x) & 0x7fffffffffffffffLL);
}

// LifModel::spike.
static __device__ __forceinline__ double nt_lif_spike(int kind, double kappa, double x) {
    if (kind == NT_LIF_FAST_SIGMOID) {
        const double den = __dadd_rn(1.0, __dmul_rn(kappa, nt_lif_abs(x)));
        return __dmul_rn(0.5, __dadd_rn(1.0, __ddiv_rn(__dmul_rn(kappa, x), den)));
    }
    return x > 0.0 ? 1.0 : 0.0;
}

// lif::surrogate: d = 1 + kappa |x|; (0.5 kappa) / (d d).
static __device__ __forceinline__ double nt_lif_surrogate(double kappa, double x) {
    const double d = __dadd_rn(1.0, __dmul_rn(kappa, nt_lif_abs(x)));
    return __ddiv_rn(__dmul_rn(0.5, kappa), __dmul_rn(d, d));
}

// alpha = dt / tau. Mirrors the `alpha` collect of LifModel::run / loss_and_grad.
NT_KERNEL void lif_alpha(unsigned int n, double dt, const double* __restrict__ tau, double* __restrict__ alpha) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    alpha[i] = __ddiv_rn(dt, tau[i]);
}

// Step input u at step t: u[i] = 0 + the amplitudes of neuron i's pulses active at t (start <= t < stop), in
// the order the pulses are listed (pulses grouped by neuron in CSR, pulse_ptr). Mirrors Input::u_at (the same
// kernel as fit_rate.cu's rate_pulse_input, so that this module is self-contained).
NT_KERNEL void lif_pulse_input(unsigned int n, unsigned long long t, const unsigned long long* __restrict__ pulse_ptr,
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

// s[j] = S(v[j] - theta[j]). Mirrors the first fill of LifModel::step, the final fill of LifModel::run and the
// s_end of loss_and_grad.
NT_KERNEL void lif_spike(unsigned int n, int kind, double kappa, const double* __restrict__ v,
                         const double* __restrict__ theta, double* __restrict__ s) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    s[j] = nt_lif_spike(kind, kappa, __dsub_rn(v[j], theta[j]));
}

// One step from (v, i_syn) = (V^t, I^t) with s = S^t (from lif_spike), per neuron i:
// i_next = beta i_syn + syn, syn = sum over row i (CSR order, from 0) of w s[pre];
// drive = (((-v + bias) + i_syn) + gap) + gain u, gap = sum over gap row i (from 0) of e (v[nbr] - v[i]);
// v_next = (v + alpha drive) - theta s[i]. Mirrors the i_next, drive and v_next fills of LifModel::step.
NT_KERNEL void lif_step(unsigned int n, double beta, const unsigned long long* __restrict__ row_ptr,
                        const unsigned int* __restrict__ pre, const double* __restrict__ w,
                        const unsigned long long* __restrict__ gap_ptr, const unsigned int* __restrict__ gap_nbr,
                        const double* __restrict__ e, const double* __restrict__ bias, const double* __restrict__ gain,
                        const double* __restrict__ theta, const double* __restrict__ alpha,
                        const double* __restrict__ u, const double* __restrict__ v, const double* __restrict__ i_syn,
                        const double* __restrict__ s, double* __restrict__ drive, double* __restrict__ v_next,
                        double* __restrict__ i_next) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    double syn = 0.0;
    for (unsigned long long k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
        syn = __dadd_rn(syn, __dmul_rn(w[k], s[pre[k]]));
    }
    const double vi = v[i];
    const double ii = i_syn[i];
    i_next[i] = __dadd_rn(__dmul_rn(beta, ii), syn);
    double gap = 0.0;
    for (unsigned long long k = gap_ptr[i]; k < gap_ptr[i + 1]; ++k) {
        gap = __dadd_rn(gap, __dmul_rn(e[k], __dsub_rn(v[gap_nbr[k]], vi)));
    }
#ifdef NEUROTWIN_BREAK_FOR_TEST
    // Deliberately wrong association ((-v + bias) + (i_syn + gap)): used only to prove that the conformance
    // test detects a reordering.
    const double p = __dadd_rn(__dadd_rn(__dadd_rn(-vi, bias[i]), __dadd_rn(ii, gap)), __dmul_rn(gain[i], u[i]));
#else
    const double p = __dadd_rn(__dadd_rn(__dadd_rn(__dadd_rn(-vi, bias[i]), ii), gap), __dmul_rn(gain[i], u[i]));
#endif
    drive[i] = p;
    v_next[i] = __dsub_rn(__dadd_rn(vi, __dmul_rn(alpha[i], p)), __dmul_rn(theta[i], s[i]));
}

// The final state's explicit term, per neuron j (v = V^T, d_s = dL/dS^T from the loss, g_theta = 0 on entry):
// psi = surrogate(v - theta); lambda = psi d_s; g_theta -= psi d_s. Mirrors the first block of
// LifModel::loss_and_grad.
NT_KERNEL void lif_adjoint_final(unsigned int n, double kappa, const double* __restrict__ v,
                                 const double* __restrict__ theta, const double* __restrict__ d_s,
                                 double* __restrict__ lambda, double* __restrict__ g_theta) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    const double psi = nt_lif_surrogate(kappa, __dsub_rn(v[j], theta[j]));
    lambda[j] = __dmul_rn(psi, d_s[j]);
    g_theta[j] = __dsub_rn(g_theta[j], __dmul_rn(psi, d_s[j]));
}

// First part of one backward step, per neuron i (lambda = dL/dV^{t+1}; v = V^t, drive and u of step t):
// s = S(v - theta); mu = alpha lambda; g_alpha += lambda drive; g_bias += mu; g_gain += mu u.
// Mirrors the s and mu fills and the per-neuron gradient loop of the backward loop of LifModel::loss_and_grad.
NT_KERNEL void lif_adjoint_mu(unsigned int n, int kind, double kappa, const double* __restrict__ alpha,
                              const double* __restrict__ theta, const double* __restrict__ v,
                              const double* __restrict__ drive, const double* __restrict__ u,
                              const double* __restrict__ lambda, double* __restrict__ s, double* __restrict__ mu,
                              double* __restrict__ g_alpha, double* __restrict__ g_bias,
                              double* __restrict__ g_gain) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    s[i] = nt_lif_spike(kind, kappa, __dsub_rn(v[i], theta[i]));
    const double lam = lambda[i];
    const double m = __dmul_rn(alpha[i], lam);
    mu[i] = m;
    g_alpha[i] = __dadd_rn(g_alpha[i], __dmul_rn(lam, drive[i]));
    g_bias[i] = __dadd_rn(g_bias[i], m);
    g_gain[i] = __dadd_rn(g_gain[i], __dmul_rn(m, u[i]));
}

// Second part, per neuron k (after lif_adjoint_mu; d_s = the loss's explicit dL/dS^t):
// ds_total = (a - lambda theta) + d_s with a = sum over k's outputs m (out_ptr order, from 0) of
// w[out_conn[m]] nu[out_post[m]]; psi = surrogate(v - theta);
// g_theta += (-lambda) s - psi ds_total;
// lambda_prev = ((lambda - mu) + psi ds_total) + gap, gap = sum over gap row k (from 0) of e (mu[nbr] - mu[k]);
// nu_prev = beta nu + mu.
// Mirrors the ds_total fill, the theta loop and the lambda_prev and nu_prev fills of LifModel::loss_and_grad.
NT_KERNEL void lif_adjoint_lambda(unsigned int n, double kappa, double beta,
                                  const unsigned long long* __restrict__ out_ptr,
                                  const unsigned int* __restrict__ out_conn, const unsigned int* __restrict__ out_post,
                                  const double* __restrict__ w, const unsigned long long* __restrict__ gap_ptr,
                                  const unsigned int* __restrict__ gap_nbr, const double* __restrict__ e,
                                  const double* __restrict__ theta, const double* __restrict__ v,
                                  const double* __restrict__ s, const double* __restrict__ d_s,
                                  const double* __restrict__ lambda, const double* __restrict__ nu,
                                  const double* __restrict__ mu, double* __restrict__ g_theta,
                                  double* __restrict__ lambda_prev, double* __restrict__ nu_prev) {
    const unsigned int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) {
        return;
    }
    double a = 0.0;
    for (unsigned long long m = out_ptr[k]; m < out_ptr[k + 1]; ++m) {
        a = __dadd_rn(a, __dmul_rn(w[out_conn[m]], nu[out_post[m]]));
    }
    const double lam = lambda[k];
    const double th = theta[k];
    const double ds_total = __dadd_rn(__dsub_rn(a, __dmul_rn(lam, th)), d_s[k]);
    const double psi = nt_lif_surrogate(kappa, __dsub_rn(v[k], th));
    const double psi_ds = __dmul_rn(psi, ds_total);
    g_theta[k] = __dadd_rn(g_theta[k], __dsub_rn(__dmul_rn(-lam, s[k]), psi_ds));
    const double mk = mu[k];
    double gap = 0.0;
    for (unsigned long long m = gap_ptr[k]; m < gap_ptr[k + 1]; ++m) {
        gap = __dadd_rn(gap, __dmul_rn(e[m], __dsub_rn(mu[gap_nbr[m]], mk)));
    }
    lambda_prev[k] = __dadd_rn(__dadd_rn(__dsub_rn(lam, mk), psi_ds), gap);
    nu_prev[k] = __dadd_rn(__dmul_rn(beta, nu[k]), mk);
}

// Connection and gap gradients, one thread per row i (after lif_adjoint_mu): for each connection of row i in
// order, g_w += nu[i] s[pre]; for each gap entry of row i, g_e += mu[i] (v[nbr] - v[i]).
// Mirrors the two for_rows loops of the backward loop of LifModel::loss_and_grad.
NT_KERNEL void lif_grad_edges(unsigned int n, const unsigned long long* __restrict__ row_ptr,
                              const unsigned int* __restrict__ pre, const unsigned long long* __restrict__ gap_ptr,
                              const unsigned int* __restrict__ gap_nbr, const double* __restrict__ nu,
                              const double* __restrict__ mu, const double* __restrict__ s,
                              const double* __restrict__ v, double* __restrict__ g_w, double* __restrict__ g_e) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    const double ni = nu[i];
    for (unsigned long long k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
        g_w[k] = __dadd_rn(g_w[k], __dmul_rn(ni, s[pre[k]]));
    }
    const double m = mu[i];
    const double vi = v[i];
    for (unsigned long long k = gap_ptr[i]; k < gap_ptr[i + 1]; ++k) {
        g_e[k] = __dadd_rn(g_e[k], __dmul_rn(m, __dsub_rn(v[gap_nbr[k]], vi)));
    }
}

// d loss / d tau from d loss / d alpha: g_tau = g_alpha ((-alpha) / tau). Mirrors the last loop of
// LifModel::loss_and_grad.
NT_KERNEL void lif_tau_grad(unsigned int n, const double* __restrict__ g_alpha, const double* __restrict__ alpha,
                            const double* __restrict__ tau, double* __restrict__ g_tau) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    g_tau[i] = __dmul_rn(g_alpha[i], __ddiv_rn(-alpha[i], tau[i]));
}
