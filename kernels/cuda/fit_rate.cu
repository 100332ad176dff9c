// The leaky rate model of connectome-constrained fitting (`neurotwin_fit::rate`, fit/src/rate.rs): its forward
// step (linearly implicit Euler) and one step of its discrete adjoint (checkpointed BPTT), f64, bit for bit:
// every multiply, add, subtract and divide a separately rounded __dmul_rn / __dadd_rn / __dsub_rn / __ddiv_rn in
// the order and association of the Rust expression (never contracted into FMA), the sigmoid through nt_exp
// (`detmath::sigmoid` = 1 / (1 + exp(-x))). Every output element is owned by one thread, which sums in the
// Rust code's order with a sequential loop, so there are no atomics; no shared memory, no warp intrinsics (the
// host build runs the very same code). No system headers (NVRTC). Each kernel's comment names what it mirrors
// (RateModel::* and Input::* in fit/src/rate.rs).
//
// Network (FitNetwork): chemical connections in CSR by postsynaptic neuron, row_ptr (n + 1, u64) and pre
// (u32); the transpose index by presynaptic neuron, out_ptr (n + 1, u64), out_conn (connection index, u32,
// ascending within a neuron) and out_post (postsynaptic neuron of out_conn[m], u32); gap junctions as a
// symmetric CSR, gap_ptr (n + 1, u64) and gap_nbr (u32). Values: w per connection, e per gap entry, and per
// neuron tau, bias, gain, theta, slope and the step constants alpha = dt / tau, c = 1 + sum e, d = 1 + alpha c.
//
// Activation `kind`: 0 = ReLU f = slope max(0, v - theta); 1 = sigmoid f = sigma(slope (v - theta)).
// Clamp (teacher forcing): clamp_idx[i] = index of neuron i within the clamp's neuron list (the last one
// where a neuron is listed twice, as the sequential Rust loop leaves it), or -1 when i is not clamped.
//
// One forward step: rate_pulse_input, rate_activation, rate_step, rate_clamp. One adjoint step (lambda =
// lambda^{t+1} on entry, then the loss's explicit term is added to lambda_prev on the host):
// rate_pulse_input, rate_adjoint_mu, rate_adjoint_lambda and rate_grad_edges (the last two in any order).
// Once per parameter set: rate_coeffs; once at the end: rate_tau_grad.
//
// Launch: 1-D grid, thread t = blockIdx.x * blockDim.x + threadIdx.x handles neuron t < n (n < 2^32).
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "detmath.cuh"

#define NT_RATE_RELU 0
#define NT_RATE_SIGMOID 1

// (f, df/dv, df/dtheta, df/dslope) at v: fit/src/rate.rs `activation`.
struct NtRateAct {
    double f, df, dtheta, dslope;
};

static __device__ __forceinline__ NtRateAct nt_rate_activation(int kind, double v, double theta, double slope) {
    const double x = __dsub_rn(v, theta);
    NtRateAct r;
    if (kind == NT_RATE_SIGMOID) {
        // s = sigmoid(slope * x) = 1 / (1 + exp(-(slope * x))); ds = s (1 - s); d = slope ds.
        const double s = __ddiv_rn(1.0, __dadd_rn(1.0, nt_exp(-__dmul_rn(slope, x))));
        const double ds = __dmul_rn(s, __dsub_rn(1.0, s));
        const double d = __dmul_rn(slope, ds);
        r.f = s;
        r.df = d;
        r.dtheta = -d;
        r.dslope = __dmul_rn(x, ds);
    } else if (x > 0.0) {
        r.f = __dmul_rn(slope, x);
        r.df = slope;
        r.dtheta = -slope;
        r.dslope = x;
    } else {
        r.f = 0.0;
        r.df = 0.0;
        r.dtheta = 0.0;
        r.dslope = 0.0;
    }
    return r;
}

// Step constants, per neuron: alpha = dt / tau, c = 1 + (sum of the row's e in order from 0), d = 1 + alpha c.
// Mirrors RateModel::coeffs.
NT_KERNEL void rate_coeffs(unsigned int n, double dt, const double* __restrict__ tau,
                           const unsigned long long* __restrict__ gap_ptr, const double* __restrict__ e,
                           double* __restrict__ alpha, double* __restrict__ c, double* __restrict__ d) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    const double a = __ddiv_rn(dt, tau[i]);
    double g = 0.0;
    for (unsigned long long k = gap_ptr[i]; k < gap_ptr[i + 1]; ++k) {
        g = __dadd_rn(g, e[k]);
    }
    const double ci = __dadd_rn(1.0, g);
    alpha[i] = a;
    c[i] = ci;
    d[i] = __dadd_rn(1.0, __dmul_rn(a, ci));
}

// Step input u at step t: u[i] = 0 + the amplitudes of neuron i's pulses active at t (start <= t < stop), in
// the order the pulses are listed. Pulses grouped by neuron in CSR (pulse_ptr, n + 1) keeping their order
// within a neuron. Mirrors Input::u_at.
NT_KERNEL void rate_pulse_input(unsigned int n, unsigned long long t, const unsigned long long* __restrict__ pulse_ptr,
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

// fv[j] = f(v[j]). Mirrors the `fill(.., &mut s.fv, ..)` at the top of RateModel::step.
NT_KERNEL void rate_activation(unsigned int n, int kind, const double* __restrict__ v, const double* __restrict__ theta,
                               const double* __restrict__ slope, double* __restrict__ fv) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    fv[j] = nt_rate_activation(kind, v[j], theta[j], slope[j]).f;
}

// One step from v (fv = f(v) from rate_activation): per neuron i,
// drive = ((bias + syn) + gap) + gain u with syn = sum over row i (CSR order, from 0) of w fv[pre] and
// gap = sum over gap row i (from 0) of e v[nbr], then v_next = (v + alpha drive) / d.
// Mirrors the drive and v_next fills of RateModel::step.
NT_KERNEL void rate_step(unsigned int n, const unsigned long long* __restrict__ row_ptr,
                         const unsigned int* __restrict__ pre, const double* __restrict__ w,
                         const unsigned long long* __restrict__ gap_ptr, const unsigned int* __restrict__ gap_nbr,
                         const double* __restrict__ e, const double* __restrict__ bias, const double* __restrict__ gain,
                         const double* __restrict__ alpha, const double* __restrict__ d, const double* __restrict__ u,
                         const double* __restrict__ v, const double* __restrict__ fv, double* __restrict__ drive,
                         double* __restrict__ v_next) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    double syn = 0.0;
    for (unsigned long long k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
        syn = __dadd_rn(syn, __dmul_rn(w[k], fv[pre[k]]));
    }
    double gap = 0.0;
    for (unsigned long long k = gap_ptr[i]; k < gap_ptr[i + 1]; ++k) {
        gap = __dadd_rn(gap, __dmul_rn(e[k], v[gap_nbr[k]]));
    }
#ifdef NEUROTWIN_BREAK_FOR_TEST
    // Deliberately wrong association (bias + (syn + gap)): used only to prove that the conformance test
    // detects a reordering.
    const double p = __dadd_rn(__dadd_rn(bias[i], __dadd_rn(syn, gap)), __dmul_rn(gain[i], u[i]));
#else
    const double p = __dadd_rn(__dadd_rn(__dadd_rn(bias[i], syn), gap), __dmul_rn(gain[i], u[i]));
#endif
    drive[i] = p;
    v_next[i] = __ddiv_rn(__dadd_rn(v[i], __dmul_rn(alpha[i], p)), d[i]);
}

// Teacher forcing: v[i] = values[clamp_idx[i]] where clamp_idx[i] >= 0 (values = the clamp's row of this step).
// Mirrors Input::apply_clamp.
NT_KERNEL void rate_clamp(unsigned int n, const int* __restrict__ clamp_idx, const double* __restrict__ values,
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

// First part of one adjoint step, per neuron i (lambda = lambda^{t+1}; v = V^t, v_next = V^{t+1},
// drive = P^t, u = u^t): lambda[i] = 0 if i is clamped (clamp_idx may be null: nothing clamped);
// mu = (alpha lambda) / d; g_alpha += lambda ((drive - c v_next) / d); g_bias += mu; g_gain += mu u;
// fv = f(v) (for rate_grad_edges). Mirrors Input::zero_clamped, the mu fill, the per-neuron gradient loop and
// the fv fill of RateModel::backward_step.
NT_KERNEL void rate_adjoint_mu(unsigned int n, int kind, const int* __restrict__ clamp_idx,
                               const double* __restrict__ alpha, const double* __restrict__ c,
                               const double* __restrict__ d, const double* __restrict__ drive,
                               const double* __restrict__ v, const double* __restrict__ v_next,
                               const double* __restrict__ u, const double* __restrict__ theta,
                               const double* __restrict__ slope, double* __restrict__ lambda, double* __restrict__ mu,
                               double* __restrict__ fv, double* __restrict__ g_alpha, double* __restrict__ g_bias,
                               double* __restrict__ g_gain) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    double lam = lambda[i];
    if (clamp_idx && clamp_idx[i] >= 0) {
        lam = 0.0;
        lambda[i] = 0.0;
    }
    const double di = d[i];
    const double m = __ddiv_rn(__dmul_rn(alpha[i], lam), di);
    mu[i] = m;
    g_alpha[i] = __dadd_rn(g_alpha[i], __dmul_rn(lam, __ddiv_rn(__dsub_rn(drive[i], __dmul_rn(c[i], v_next[i])), di)));
    g_bias[i] = __dadd_rn(g_bias[i], m);
    g_gain[i] = __dadd_rn(g_gain[i], __dmul_rn(m, u[i]));
    fv[i] = nt_rate_activation(kind, v[i], theta[i], slope[i]).f;
}

// Second part, per neuron k (after rate_adjoint_mu; lambda already zeroed where clamped):
// a = sum over k's outputs m (out_ptr order, from 0) of w[out_conn[m]] mu[out_post[m]];
// g_theta += a df/dtheta; g_slope += a df/dslope (at v = V^t);
// lambda_prev = (lambda / d + f'(v) a) + gap with gap = sum over gap row k (from 0) of e mu[nbr].
// Mirrors the a_out fill, the theta/slope loop and the lambda_prev fill of RateModel::backward_step.
NT_KERNEL void rate_adjoint_lambda(unsigned int n, int kind, const unsigned long long* __restrict__ out_ptr,
                                   const unsigned int* __restrict__ out_conn, const unsigned int* __restrict__ out_post,
                                   const double* __restrict__ w, const unsigned long long* __restrict__ gap_ptr,
                                   const unsigned int* __restrict__ gap_nbr, const double* __restrict__ e,
                                   const double* __restrict__ d, const double* __restrict__ v,
                                   const double* __restrict__ theta, const double* __restrict__ slope,
                                   const double* __restrict__ lambda, const double* __restrict__ mu,
                                   double* __restrict__ g_theta, double* __restrict__ g_slope,
                                   double* __restrict__ lambda_prev) {
    const unsigned int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) {
        return;
    }
    double a = 0.0;
    for (unsigned long long m = out_ptr[k]; m < out_ptr[k + 1]; ++m) {
        a = __dadd_rn(a, __dmul_rn(w[out_conn[m]], mu[out_post[m]]));
    }
    const NtRateAct act = nt_rate_activation(kind, v[k], theta[k], slope[k]);
    g_theta[k] = __dadd_rn(g_theta[k], __dmul_rn(a, act.dtheta));
    g_slope[k] = __dadd_rn(g_slope[k], __dmul_rn(a, act.dslope));
    double gap = 0.0;
    for (unsigned long long m = gap_ptr[k]; m < gap_ptr[k + 1]; ++m) {
        gap = __dadd_rn(gap, __dmul_rn(e[m], mu[gap_nbr[m]]));
    }
    lambda_prev[k] = __dadd_rn(__dadd_rn(__ddiv_rn(lambda[k], d[k]), __dmul_rn(act.df, a)), gap);
}

// Connection and gap gradients, one thread per row i (after rate_adjoint_mu): for each connection of row i
// in order, g_w += mu[i] fv[pre]; for each gap entry of row i, g_e += mu[i] (v[nbr] - v_next[i]).
// Mirrors the two for_rows loops of RateModel::backward_step.
NT_KERNEL void rate_grad_edges(unsigned int n, const unsigned long long* __restrict__ row_ptr,
                               const unsigned int* __restrict__ pre, const unsigned long long* __restrict__ gap_ptr,
                               const unsigned int* __restrict__ gap_nbr, const double* __restrict__ mu,
                               const double* __restrict__ fv, const double* __restrict__ v,
                               const double* __restrict__ v_next, double* __restrict__ g_w,
                               double* __restrict__ g_e) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    const double m = mu[i];
    for (unsigned long long k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
        g_w[k] = __dadd_rn(g_w[k], __dmul_rn(m, fv[pre[k]]));
    }
    const double vn = v_next[i];
    for (unsigned long long k = gap_ptr[i]; k < gap_ptr[i + 1]; ++k) {
        g_e[k] = __dadd_rn(g_e[k], __dmul_rn(m, __dsub_rn(v[gap_nbr[k]], vn)));
    }
}

// d loss / d tau from d loss / d alpha: g_tau = g_alpha ((-alpha) / tau). Mirrors the last loop of
// RateModel::loss_and_grad.
NT_KERNEL void rate_tau_grad(unsigned int n, const double* __restrict__ g_alpha, const double* __restrict__ alpha,
                             const double* __restrict__ tau, double* __restrict__ g_tau) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    g_tau[i] = __dmul_rn(g_alpha[i], __ddiv_rn(-alpha[i], tau[i]));
}
