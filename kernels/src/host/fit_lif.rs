//! Host builds of the LIF fitting kernels of `cuda/fit_lif.cu` (the forward step and the surrogate-gradient
//! BPTT step of `neurotwin_fit::lif`, f64), launched with a 1-D grid of one thread per neuron as on a GPU.
//!
//! The network structure is checked once, when a [`LifGraph`] is made (pointer arrays, index ranges); every
//! launch then checks only slice lengths, so the kernels stay in bounds. Pulses are turned into the kernels'
//! per-neuron form by [`LifPulses`].

use std::ffi::{c_int, c_uint};

pub use super::fit_common::FitPulses as LifPulses;
use super::fit_common::check_ptr;
use super::len_u32;

unsafe extern "C" {
    fn nt_host_lif_alpha(n: c_uint, dt: f64, tau: *const f64, alpha: *mut f64);
    fn nt_host_lif_pulse_input(
        n: c_uint,
        t: u64,
        pulse_ptr: *const u64,
        start: *const u64,
        stop: *const u64,
        amp: *const f64,
        u: *mut f64,
    );
    fn nt_host_lif_spike(n: c_uint, kind: c_int, kappa: f64, v: *const f64, theta: *const f64, s: *mut f64);
    fn nt_host_lif_step(
        n: c_uint,
        beta: f64,
        row_ptr: *const u64,
        pre: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        bias: *const f64,
        gain: *const f64,
        theta: *const f64,
        alpha: *const f64,
        u: *const f64,
        v: *const f64,
        i_syn: *const f64,
        s: *const f64,
        drive: *mut f64,
        v_next: *mut f64,
        i_next: *mut f64,
    );
    fn nt_host_lif_step_broken(
        n: c_uint,
        beta: f64,
        row_ptr: *const u64,
        pre: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        bias: *const f64,
        gain: *const f64,
        theta: *const f64,
        alpha: *const f64,
        u: *const f64,
        v: *const f64,
        i_syn: *const f64,
        s: *const f64,
        drive: *mut f64,
        v_next: *mut f64,
        i_next: *mut f64,
    );
    fn nt_host_lif_adjoint_final(
        n: c_uint,
        kappa: f64,
        v: *const f64,
        theta: *const f64,
        d_s: *const f64,
        lambda: *mut f64,
        g_theta: *mut f64,
    );
    fn nt_host_lif_adjoint_mu(
        n: c_uint,
        kind: c_int,
        kappa: f64,
        alpha: *const f64,
        theta: *const f64,
        v: *const f64,
        drive: *const f64,
        u: *const f64,
        lambda: *const f64,
        s: *mut f64,
        mu: *mut f64,
        g_alpha: *mut f64,
        g_bias: *mut f64,
        g_gain: *mut f64,
    );
    fn nt_host_lif_adjoint_lambda(
        n: c_uint,
        kappa: f64,
        beta: f64,
        out_ptr: *const u64,
        out_conn: *const u32,
        out_post: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        theta: *const f64,
        v: *const f64,
        s: *const f64,
        d_s: *const f64,
        lambda: *const f64,
        nu: *const f64,
        mu: *const f64,
        g_theta: *mut f64,
        lambda_prev: *mut f64,
        nu_prev: *mut f64,
    );
    fn nt_host_lif_grad_edges(
        n: c_uint,
        row_ptr: *const u64,
        pre: *const u32,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        nu: *const f64,
        mu: *const f64,
        s: *const f64,
        v: *const f64,
        g_w: *mut f64,
        g_e: *mut f64,
    );
    fn nt_host_lif_tau_grad(n: c_uint, g_alpha: *const f64, alpha: *const f64, tau: *const f64, g_tau: *mut f64);
}

/// The spike nonlinearity of the forward pass (`neurotwin_fit::lif::SpikeFn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifSpikeFn {
    /// `H(x)`, 1 for `x > 0` (kernel kind 0).
    Heaviside,
    /// `½ (1 + κx / (1 + κ|x|))` (kernel kind 1).
    FastSigmoid,
}

impl LifSpikeFn {
    fn kind(self) -> c_int {
        match self {
            LifSpikeFn::Heaviside => 0,
            LifSpikeFn::FastSigmoid => 1,
        }
    }
}

fn same_len(n: usize, xs: &[(&[f64], &str)]) {
    for (x, what) in xs {
        assert_eq!(x.len(), n, "{what} must have one entry per neuron");
    }
}

/// The network structure of a fit (`neurotwin_fit::FitNetwork`), borrowed and checked once: chemical
/// connections in CSR by postsynaptic neuron (`row_ptr`, `pre`), the transpose by presynaptic neuron
/// (`out_ptr`, `out_conn` = connection index, `out_post` = its postsynaptic neuron) and gap junctions
/// (`gap_ptr`, `gap_nbr`).
#[derive(Clone, Copy, Debug)]
pub struct LifGraph<'a> {
    n: usize,
    row_ptr: &'a [u64],
    pre: &'a [u32],
    out_ptr: &'a [u64],
    out_conn: &'a [u32],
    out_post: &'a [u32],
    gap_ptr: &'a [u64],
    gap_nbr: &'a [u32],
}

impl<'a> LifGraph<'a> {
    /// Checks the structure (pointer arrays start at 0, never decrease and end at the number of entries;
    /// neuron and connection indices in range); panics when invalid. `out_post[m]` should be the
    /// postsynaptic neuron of `out_conn[m]` (not checked: it changes results, not memory safety).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n: usize,
        row_ptr: &'a [u64],
        pre: &'a [u32],
        out_ptr: &'a [u64],
        out_conn: &'a [u32],
        out_post: &'a [u32],
        gap_ptr: &'a [u64],
        gap_nbr: &'a [u32],
    ) -> Self {
        len_u32(n);
        let nnz = pre.len();
        check_ptr(row_ptr, n, nnz, "row_ptr");
        check_ptr(out_ptr, n, nnz, "out_ptr");
        check_ptr(gap_ptr, n, gap_nbr.len(), "gap_ptr");
        assert_eq!(out_conn.len(), nnz, "out_conn must have one entry per connection");
        assert_eq!(out_post.len(), nnz, "out_post must have one entry per connection");
        assert!(pre.iter().all(|&j| (j as usize) < n), "pre out of range");
        assert!(out_conn.iter().all(|&c| (c as usize) < nnz), "out_conn out of range");
        assert!(out_post.iter().all(|&i| (i as usize) < n), "out_post out of range");
        assert!(gap_nbr.iter().all(|&j| (j as usize) < n), "gap_nbr out of range");
        Self { n, row_ptr, pre, out_ptr, out_conn, out_post, gap_ptr, gap_nbr }
    }

    pub fn n_neurons(&self) -> usize {
        self.n
    }

    pub fn n_connections(&self) -> usize {
        self.pre.len()
    }

    pub fn n_gap_entries(&self) -> usize {
        self.gap_nbr.len()
    }
}

/// Parameter values at element level (`neurotwin_fit::rate::RateValues` as the LIF model reads them), the
/// spike function, the surrogate steepness `kappa`, `alpha = dt/τ_m` (from [`lif_alpha`]) and
/// `beta = e^{−dt/τ_syn}` (computed by the caller with `detmath::exp`).
#[derive(Clone, Copy, Debug)]
pub struct LifParams<'a> {
    pub spike_fn: LifSpikeFn,
    pub kappa: f64,
    pub beta: f64,
    /// Signed weight of each connection.
    pub w: &'a [f64],
    /// Coupling of each gap entry.
    pub e: &'a [f64],
    pub bias: &'a [f64],
    pub gain: &'a [f64],
    pub theta: &'a [f64],
    pub alpha: &'a [f64],
}

impl LifParams<'_> {
    fn check(&self, g: &LifGraph) {
        assert_eq!(self.w.len(), g.n_connections(), "w must have one entry per connection");
        assert_eq!(self.e.len(), g.n_gap_entries(), "e must have one entry per gap entry");
        same_len(g.n, &[(self.bias, "bias"), (self.gain, "gain"), (self.theta, "theta"), (self.alpha, "alpha")]);
    }
}

/// Buffers of the backward pass: `lambda` = dL/dV^{t+1} and `nu` = dL/dI^{t+1} on entry to a step,
/// `lambda_prev`/`nu_prev` (receive dL/dV^t, dL/dI^t), `mu` (scratch), `s` (S^t, written by
/// [`lif_adjoint_mu`]) and `d_s` (the loss's explicit dL/dS^t, written by the caller).
#[derive(Clone, Debug, PartialEq)]
pub struct LifAdjoint {
    pub lambda: Vec<f64>,
    pub nu: Vec<f64>,
    pub lambda_prev: Vec<f64>,
    pub nu_prev: Vec<f64>,
    pub mu: Vec<f64>,
    pub s: Vec<f64>,
    pub d_s: Vec<f64>,
}

impl LifAdjoint {
    pub fn zeros(n: usize) -> Self {
        let z = || vec![0.0; n];
        Self { lambda: z(), nu: z(), lambda_prev: z(), nu_prev: z(), mu: z(), s: z(), d_s: z() }
    }

    fn check(&self, n: usize) {
        same_len(
            n,
            &[
                (&self.lambda, "lambda"),
                (&self.nu, "nu"),
                (&self.lambda_prev, "lambda_prev"),
                (&self.nu_prev, "nu_prev"),
                (&self.mu, "mu"),
                (&self.s, "s"),
                (&self.d_s, "d_s"),
            ],
        );
    }
}

/// Gradient accumulators: d loss / d α, bias, gain, θ (per neuron), w (per connection), e (per gap entry).
#[derive(Clone, Debug, PartialEq)]
pub struct LifGradAcc {
    pub alpha: Vec<f64>,
    pub bias: Vec<f64>,
    pub gain: Vec<f64>,
    pub theta: Vec<f64>,
    pub w: Vec<f64>,
    pub e: Vec<f64>,
}

impl LifGradAcc {
    pub fn zeros(g: &LifGraph) -> Self {
        let n = g.n;
        Self {
            alpha: vec![0.0; n],
            bias: vec![0.0; n],
            gain: vec![0.0; n],
            theta: vec![0.0; n],
            w: vec![0.0; g.n_connections()],
            e: vec![0.0; g.n_gap_entries()],
        }
    }

    fn check(&self, g: &LifGraph) {
        same_len(g.n, &[(&self.alpha, "alpha"), (&self.bias, "bias"), (&self.gain, "gain"), (&self.theta, "theta")]);
        assert_eq!(self.w.len(), g.n_connections(), "w gradient must have one entry per connection");
        assert_eq!(self.e.len(), g.n_gap_entries(), "e gradient must have one entry per gap entry");
    }
}

/// `lif_alpha`: `alpha = dt / tau` elementwise.
pub fn lif_alpha(dt: f64, tau: &[f64], alpha: &mut [f64]) {
    let n = tau.len();
    assert_eq!(alpha.len(), n, "tau and alpha must have one length");
    // SAFETY: thread i < n reads tau[i] and writes alpha[i], both of length n.
    unsafe { nt_host_lif_alpha(len_u32(n), dt, tau.as_ptr(), alpha.as_mut_ptr()) };
}

/// `lif_pulse_input`: `u` = the step input at step `t`.
pub fn lif_pulse_input(p: &LifPulses, t: u64, u: &mut [f64]) {
    assert_eq!(u.len(), p.n, "u must have one entry per neuron");
    // SAFETY: ptr has n + 1 entries, non-decreasing from 0 to start.len() = stop.len() = amp.len() (built so
    // by LifPulses::new, fields private); thread i < n writes u[i].
    unsafe {
        nt_host_lif_pulse_input(
            len_u32(p.n),
            t,
            p.ptr.as_ptr(),
            p.start.as_ptr(),
            p.stop.as_ptr(),
            p.amp.as_ptr(),
            u.as_mut_ptr(),
        )
    };
}

/// `lif_spike`: `s = S(v − θ)` elementwise.
pub fn lif_spike(spike_fn: LifSpikeFn, kappa: f64, v: &[f64], theta: &[f64], s: &mut [f64]) {
    let n = v.len();
    assert!(theta.len() == n && s.len() == n, "v, theta and s must have one length");
    // SAFETY: thread j < n reads v[j], theta[j] and writes s[j], all of length n.
    unsafe { nt_host_lif_spike(len_u32(n), spike_fn.kind(), kappa, v.as_ptr(), theta.as_ptr(), s.as_mut_ptr()) };
}

/// The states one forward step reads: `u` = `u^t`, `v` = `V^t`, `i_syn` = `I^t`, `s` = `S^t` (from
/// [`lif_spike`]).
#[derive(Clone, Copy, Debug)]
pub struct LifStepIn<'a> {
    pub u: &'a [f64],
    pub v: &'a [f64],
    pub i_syn: &'a [f64],
    pub s: &'a [f64],
}

/// `lif_step`: writes the step's `drive`, `v_next` = `V^{t+1}` and `i_next` = `I^{t+1}`.
pub fn lif_step(g: &LifGraph, p: &LifParams, x: LifStepIn, drive: &mut [f64], v_next: &mut [f64], i_next: &mut [f64]) {
    run_step(false, g, p, x, drive, v_next, i_next);
}

/// The same kernel built with `NEUROTWIN_BREAK_FOR_TEST` (`(−v + bias) + (I + gap)` instead of
/// `((−v + bias) + I) + gap`). Exists only so that tests can prove the conformance check detects a reordered
/// sum; never use it in a fit.
#[doc(hidden)]
pub fn lif_step_broken_for_test(
    g: &LifGraph,
    p: &LifParams,
    x: LifStepIn,
    drive: &mut [f64],
    v_next: &mut [f64],
    i_next: &mut [f64],
) {
    run_step(true, g, p, x, drive, v_next, i_next);
}

fn run_step(
    broken: bool,
    g: &LifGraph,
    p: &LifParams,
    x: LifStepIn,
    drive: &mut [f64],
    v_next: &mut [f64],
    i_next: &mut [f64],
) {
    p.check(g);
    same_len(
        g.n,
        &[
            (x.u, "u"),
            (x.v, "v"),
            (x.i_syn, "i_syn"),
            (x.s, "s"),
            (&*drive, "drive"),
            (&*v_next, "v_next"),
            (&*i_next, "i_next"),
        ],
    );
    let f = if broken { nt_host_lif_step_broken } else { nt_host_lif_step };
    // SAFETY: the graph was checked (pointers within 0..=nnz / 0..=n_gap, pre and gap_nbr < n); w and e
    // have nnz / n_gap entries, every per-neuron slice n; thread i < n reads within row i and gap row i and
    // writes drive[i], v_next[i], i_next[i] (exclusively borrowed, distinct from the inputs).
    unsafe {
        f(
            len_u32(g.n),
            p.beta,
            g.row_ptr.as_ptr(),
            g.pre.as_ptr(),
            p.w.as_ptr(),
            g.gap_ptr.as_ptr(),
            g.gap_nbr.as_ptr(),
            p.e.as_ptr(),
            p.bias.as_ptr(),
            p.gain.as_ptr(),
            p.theta.as_ptr(),
            p.alpha.as_ptr(),
            x.u.as_ptr(),
            x.v.as_ptr(),
            x.i_syn.as_ptr(),
            x.s.as_ptr(),
            drive.as_mut_ptr(),
            v_next.as_mut_ptr(),
            i_next.as_mut_ptr(),
        )
    };
}

/// `lif_adjoint_final`: the final state's explicit term. `v` = `V^T`, `adj.d_s` = dL/dS^T; writes
/// `adj.lambda` and subtracts from `acc.theta`.
pub fn lif_adjoint_final(g: &LifGraph, p: &LifParams, v: &[f64], adj: &mut LifAdjoint, acc: &mut LifGradAcc) {
    p.check(g);
    same_len(g.n, &[(v, "v")]);
    adj.check(g.n);
    acc.check(g);
    // SAFETY: every per-neuron slice has n entries (checked); thread j < n reads and writes index j only.
    unsafe {
        nt_host_lif_adjoint_final(
            len_u32(g.n),
            p.kappa,
            v.as_ptr(),
            p.theta.as_ptr(),
            adj.d_s.as_ptr(),
            adj.lambda.as_mut_ptr(),
            acc.theta.as_mut_ptr(),
        )
    };
}

/// `lif_adjoint_mu`: from `adj.lambda` (dL/dV^{t+1}), `v` = `V^t`, the step's `drive` and `u`: writes
/// `adj.s` = S^t and `adj.mu`, and adds the step's terms to `acc.alpha`, `acc.bias`, `acc.gain`.
#[allow(clippy::too_many_arguments)]
pub fn lif_adjoint_mu(
    g: &LifGraph,
    p: &LifParams,
    v: &[f64],
    drive: &[f64],
    u: &[f64],
    adj: &mut LifAdjoint,
    acc: &mut LifGradAcc,
) {
    p.check(g);
    same_len(g.n, &[(v, "v"), (drive, "drive"), (u, "u")]);
    adj.check(g.n);
    acc.check(g);
    // SAFETY: every per-neuron slice has n entries (checked); thread i < n reads and writes index i only.
    unsafe {
        nt_host_lif_adjoint_mu(
            len_u32(g.n),
            p.spike_fn.kind(),
            p.kappa,
            p.alpha.as_ptr(),
            p.theta.as_ptr(),
            v.as_ptr(),
            drive.as_ptr(),
            u.as_ptr(),
            adj.lambda.as_ptr(),
            adj.s.as_mut_ptr(),
            adj.mu.as_mut_ptr(),
            acc.alpha.as_mut_ptr(),
            acc.bias.as_mut_ptr(),
            acc.gain.as_mut_ptr(),
        )
    };
}

/// `lif_adjoint_lambda` (after [`lif_adjoint_mu`] and with `adj.d_s` = the loss's dL/dS^t): writes
/// `adj.lambda_prev`, `adj.nu_prev` and adds the step's term to `acc.theta`; `v` = `V^t`.
pub fn lif_adjoint_lambda(g: &LifGraph, p: &LifParams, v: &[f64], adj: &mut LifAdjoint, acc: &mut LifGradAcc) {
    p.check(g);
    same_len(g.n, &[(v, "v")]);
    adj.check(g.n);
    acc.check(g);
    // SAFETY: the graph was checked (out_ptr within 0..=nnz, out_conn < nnz = w.len(), out_post < n, gap
    // pointers within 0..=n_gap = e.len(), gap_nbr < n); every per-neuron slice has n entries; thread k < n
    // writes g_theta[k], lambda_prev[k], nu_prev[k] only (buffers distinct from the ones read).
    unsafe {
        nt_host_lif_adjoint_lambda(
            len_u32(g.n),
            p.kappa,
            p.beta,
            g.out_ptr.as_ptr(),
            g.out_conn.as_ptr(),
            g.out_post.as_ptr(),
            p.w.as_ptr(),
            g.gap_ptr.as_ptr(),
            g.gap_nbr.as_ptr(),
            p.e.as_ptr(),
            p.theta.as_ptr(),
            v.as_ptr(),
            adj.s.as_ptr(),
            adj.d_s.as_ptr(),
            adj.lambda.as_ptr(),
            adj.nu.as_ptr(),
            adj.mu.as_ptr(),
            acc.theta.as_mut_ptr(),
            adj.lambda_prev.as_mut_ptr(),
            adj.nu_prev.as_mut_ptr(),
        )
    };
}

/// `lif_grad_edges` (after [`lif_adjoint_mu`]): adds the step's terms to `acc.w` (per connection) and
/// `acc.e` (per gap entry), from `adj.nu`, `adj.mu`, `adj.s` and `v` = `V^t`.
pub fn lif_grad_edges(g: &LifGraph, v: &[f64], adj: &LifAdjoint, acc: &mut LifGradAcc) {
    same_len(g.n, &[(v, "v")]);
    adj.check(g.n);
    acc.check(g);
    // SAFETY: the graph was checked (row and gap pointers within 0..=nnz / 0..=n_gap, which are the lengths
    // of acc.w / acc.e; pre and gap_nbr < n); thread i < n writes the entries of row i and gap row i only.
    unsafe {
        nt_host_lif_grad_edges(
            len_u32(g.n),
            g.row_ptr.as_ptr(),
            g.pre.as_ptr(),
            g.gap_ptr.as_ptr(),
            g.gap_nbr.as_ptr(),
            adj.nu.as_ptr(),
            adj.mu.as_ptr(),
            adj.s.as_ptr(),
            v.as_ptr(),
            acc.w.as_mut_ptr(),
            acc.e.as_mut_ptr(),
        )
    };
}

/// `lif_tau_grad`: `g_tau = g_alpha · (−α/τ)` (d loss / d τ from d loss / d α).
pub fn lif_tau_grad(g_alpha: &[f64], alpha: &[f64], tau: &[f64], g_tau: &mut [f64]) {
    let n = g_alpha.len();
    assert!(
        alpha.len() == n && tau.len() == n && g_tau.len() == n,
        "g_alpha, alpha, tau and g_tau must have one length"
    );
    // SAFETY: thread i < n reads index i of the three inputs and writes g_tau[i], all of length n.
    unsafe { nt_host_lif_tau_grad(len_u32(n), g_alpha.as_ptr(), alpha.as_ptr(), tau.as_ptr(), g_tau.as_mut_ptr()) };
}
