//! Host builds of the rate-model fitting kernels of `cuda/fit_rate.cu` (the forward step and the discrete
//! adjoint of `neurotwin_fit::rate`, f64), launched with a 1-D grid of one thread per neuron as on a GPU.
//!
//! The network structure is checked once, when a [`RateGraph`] is made (pointer arrays, index ranges); every
//! launch then checks only slice lengths, so the kernels stay in bounds. Pulses and clamps are turned into the
//! kernels' per-neuron form by [`RatePulses`] and [`RateClampMap`].

use std::ffi::{c_int, c_uint};

use super::fit_common::check_ptr;
pub use super::fit_common::{FitClampMap as RateClampMap, FitPulses as RatePulses};
use super::len_u32;

unsafe extern "C" {
    fn nt_host_rate_coeffs(
        n: c_uint,
        dt: f64,
        tau: *const f64,
        gap_ptr: *const u64,
        e: *const f64,
        alpha: *mut f64,
        c: *mut f64,
        d: *mut f64,
    );
    fn nt_host_rate_pulse_input(
        n: c_uint,
        t: u64,
        pulse_ptr: *const u64,
        start: *const u64,
        stop: *const u64,
        amp: *const f64,
        u: *mut f64,
    );
    fn nt_host_rate_activation(
        n: c_uint,
        kind: c_int,
        v: *const f64,
        theta: *const f64,
        slope: *const f64,
        fv: *mut f64,
    );
    fn nt_host_rate_step(
        n: c_uint,
        row_ptr: *const u64,
        pre: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        bias: *const f64,
        gain: *const f64,
        alpha: *const f64,
        d: *const f64,
        u: *const f64,
        v: *const f64,
        fv: *const f64,
        drive: *mut f64,
        v_next: *mut f64,
    );
    fn nt_host_rate_step_broken(
        n: c_uint,
        row_ptr: *const u64,
        pre: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        bias: *const f64,
        gain: *const f64,
        alpha: *const f64,
        d: *const f64,
        u: *const f64,
        v: *const f64,
        fv: *const f64,
        drive: *mut f64,
        v_next: *mut f64,
    );
    fn nt_host_rate_clamp(n: c_uint, clamp_idx: *const i32, values: *const f64, v: *mut f64);
    fn nt_host_rate_adjoint_mu(
        n: c_uint,
        kind: c_int,
        clamp_idx: *const i32,
        alpha: *const f64,
        c: *const f64,
        d: *const f64,
        drive: *const f64,
        v: *const f64,
        v_next: *const f64,
        u: *const f64,
        theta: *const f64,
        slope: *const f64,
        lambda: *mut f64,
        mu: *mut f64,
        fv: *mut f64,
        g_alpha: *mut f64,
        g_bias: *mut f64,
        g_gain: *mut f64,
    );
    fn nt_host_rate_adjoint_lambda(
        n: c_uint,
        kind: c_int,
        out_ptr: *const u64,
        out_conn: *const u32,
        out_post: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        d: *const f64,
        v: *const f64,
        theta: *const f64,
        slope: *const f64,
        lambda: *const f64,
        mu: *const f64,
        g_theta: *mut f64,
        g_slope: *mut f64,
        lambda_prev: *mut f64,
    );
    fn nt_host_rate_grad_edges(
        n: c_uint,
        row_ptr: *const u64,
        pre: *const u32,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        mu: *const f64,
        fv: *const f64,
        v: *const f64,
        v_next: *const f64,
        g_w: *mut f64,
        g_e: *mut f64,
    );
    fn nt_host_rate_tau_grad(n: c_uint, g_alpha: *const f64, alpha: *const f64, tau: *const f64, g_tau: *mut f64);
}

/// The output nonlinearity (`neurotwin_fit::rate::Activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateActivation {
    /// `slope · max(0, V − θ)` (kernel kind 0).
    Relu,
    /// `σ(slope · (V − θ))` (kernel kind 1).
    Sigmoid,
}

impl RateActivation {
    fn kind(self) -> c_int {
        match self {
            RateActivation::Relu => 0,
            RateActivation::Sigmoid => 1,
        }
    }
}

/// The network structure of a fit (`neurotwin_fit::FitNetwork`), borrowed and checked once: chemical
/// connections in CSR by postsynaptic neuron (`row_ptr`, `pre`), the transpose by presynaptic neuron
/// (`out_ptr`, `out_conn` = connection index, `out_post` = its postsynaptic neuron) and gap junctions
/// (`gap_ptr`, `gap_nbr`).
#[derive(Clone, Copy, Debug)]
pub struct RateGraph<'a> {
    n: usize,
    row_ptr: &'a [u64],
    pre: &'a [u32],
    out_ptr: &'a [u64],
    out_conn: &'a [u32],
    out_post: &'a [u32],
    gap_ptr: &'a [u64],
    gap_nbr: &'a [u32],
}

impl<'a> RateGraph<'a> {
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

    fn check_neurons(&self, x: &[f64], what: &str) {
        assert_eq!(x.len(), self.n, "{what} must have one entry per neuron");
    }
}

/// Parameter values at element level (`neurotwin_fit::rate::RateValues`) and the activation.
#[derive(Clone, Copy, Debug)]
pub struct RateParams<'a> {
    pub activation: RateActivation,
    /// Signed weight of each connection.
    pub w: &'a [f64],
    /// Coupling of each gap entry.
    pub e: &'a [f64],
    pub bias: &'a [f64],
    pub gain: &'a [f64],
    pub theta: &'a [f64],
    pub slope: &'a [f64],
}

impl RateParams<'_> {
    fn check(&self, g: &RateGraph) {
        assert_eq!(self.w.len(), g.n_connections(), "w must have one entry per connection");
        assert_eq!(self.e.len(), g.n_gap_entries(), "e must have one entry per gap entry");
        for (x, what) in [(self.bias, "bias"), (self.gain, "gain"), (self.theta, "theta"), (self.slope, "slope")] {
            g.check_neurons(x, what);
        }
    }
}

/// Per-neuron step constants `α = dt/τ`, `c = 1 + Σ_j e_ij`, `D = 1 + α c` (from [`rate_coeffs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RateCoeffs {
    pub alpha: Vec<f64>,
    pub c: Vec<f64>,
    pub d: Vec<f64>,
}

impl RateCoeffs {
    fn check(&self, g: &RateGraph) {
        g.check_neurons(&self.alpha, "alpha");
        g.check_neurons(&self.c, "c");
        g.check_neurons(&self.d, "d");
    }
}

/// States one adjoint step reads: `v` = `V^t`, `v_next` = `V^{t+1}`, `drive` = `P^t`, `u` = `u^t`.
#[derive(Clone, Copy, Debug)]
pub struct RateAdjointStates<'a> {
    pub v: &'a [f64],
    pub v_next: &'a [f64],
    pub drive: &'a [f64],
    pub u: &'a [f64],
}

impl RateAdjointStates<'_> {
    fn check(&self, g: &RateGraph) {
        for (x, what) in [(self.v, "v"), (self.v_next, "v_next"), (self.drive, "drive"), (self.u, "u")] {
            g.check_neurons(x, what);
        }
    }
}

/// Buffers of the adjoint: `lambda` (`λ^{t+1}` on entry to a step), `lambda_prev` (receives `λ^t` without
/// the loss's explicit term), `mu` and `fv` (scratch).
#[derive(Clone, Debug, PartialEq)]
pub struct RateAdjoint {
    pub lambda: Vec<f64>,
    pub lambda_prev: Vec<f64>,
    pub mu: Vec<f64>,
    pub fv: Vec<f64>,
}

impl RateAdjoint {
    pub fn zeros(n: usize) -> Self {
        Self { lambda: vec![0.0; n], lambda_prev: vec![0.0; n], mu: vec![0.0; n], fv: vec![0.0; n] }
    }

    fn check(&self, g: &RateGraph) {
        g.check_neurons(&self.lambda, "lambda");
        g.check_neurons(&self.lambda_prev, "lambda_prev");
        g.check_neurons(&self.mu, "mu");
        g.check_neurons(&self.fv, "fv");
    }
}

/// Gradient accumulators: d loss / d α, bias, gain, θ, slope (per neuron), w (per connection), e (per gap
/// entry).
#[derive(Clone, Debug, PartialEq)]
pub struct RateGradAcc {
    pub alpha: Vec<f64>,
    pub bias: Vec<f64>,
    pub gain: Vec<f64>,
    pub theta: Vec<f64>,
    pub slope: Vec<f64>,
    pub w: Vec<f64>,
    pub e: Vec<f64>,
}

impl RateGradAcc {
    pub fn zeros(g: &RateGraph) -> Self {
        let n = g.n;
        Self {
            alpha: vec![0.0; n],
            bias: vec![0.0; n],
            gain: vec![0.0; n],
            theta: vec![0.0; n],
            slope: vec![0.0; n],
            w: vec![0.0; g.n_connections()],
            e: vec![0.0; g.n_gap_entries()],
        }
    }

    fn check(&self, g: &RateGraph) {
        for (x, what) in [
            (&self.alpha, "alpha"),
            (&self.bias, "bias"),
            (&self.gain, "gain"),
            (&self.theta, "theta"),
            (&self.slope, "slope"),
        ] {
            g.check_neurons(x, what);
        }
        assert_eq!(self.w.len(), g.n_connections(), "w gradient must have one entry per connection");
        assert_eq!(self.e.len(), g.n_gap_entries(), "e gradient must have one entry per gap entry");
    }
}

/// `rate_coeffs`: the step constants of `tau` (per neuron) and `e` (per gap entry) at step `dt`.
pub fn rate_coeffs(g: &RateGraph, dt: f64, tau: &[f64], e: &[f64]) -> RateCoeffs {
    g.check_neurons(tau, "tau");
    assert_eq!(e.len(), g.n_gap_entries(), "e must have one entry per gap entry");
    let n = g.n;
    let mut k = RateCoeffs { alpha: vec![0.0; n], c: vec![0.0; n], d: vec![0.0; n] };
    // SAFETY: gap_ptr was checked (n + 1 entries within 0..=e.len()); thread i < n reads tau[i], e within
    // gap row i, and writes alpha[i], c[i], d[i] (all of length n).
    unsafe {
        nt_host_rate_coeffs(
            len_u32(n),
            dt,
            tau.as_ptr(),
            g.gap_ptr.as_ptr(),
            e.as_ptr(),
            k.alpha.as_mut_ptr(),
            k.c.as_mut_ptr(),
            k.d.as_mut_ptr(),
        )
    };
    k
}

/// `rate_pulse_input`: `u` = the step input at step `t`.
pub fn rate_pulse_input(p: &RatePulses, t: u64, u: &mut [f64]) {
    assert_eq!(u.len(), p.n, "u must have one entry per neuron");
    // SAFETY: ptr has n + 1 entries, non-decreasing from 0 to start.len() = stop.len() = amp.len() (built so
    // by RatePulses::new, fields private); thread i < n writes u[i].
    unsafe {
        nt_host_rate_pulse_input(
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

/// `rate_activation`: `fv = f(v)` elementwise.
pub fn rate_activation(activation: RateActivation, v: &[f64], theta: &[f64], slope: &[f64], fv: &mut [f64]) {
    let n = v.len();
    assert!(theta.len() == n && slope.len() == n && fv.len() == n, "v, theta, slope and fv must have one length");
    // SAFETY: thread j < n reads v[j], theta[j], slope[j] and writes fv[j], all of length n.
    unsafe {
        nt_host_rate_activation(
            len_u32(n),
            activation.kind(),
            v.as_ptr(),
            theta.as_ptr(),
            slope.as_ptr(),
            fv.as_mut_ptr(),
        )
    };
}

/// `rate_step`: from `v` (= `V^t`, with `fv = f(v)` from [`rate_activation`]) and the input `u`, writes the
/// explicit inputs `drive` (= `P^t`) and `v_next` (= `V^{t+1}` before teacher forcing).
#[allow(clippy::too_many_arguments)]
pub fn rate_step(
    g: &RateGraph,
    p: &RateParams,
    k: &RateCoeffs,
    u: &[f64],
    v: &[f64],
    fv: &[f64],
    drive: &mut [f64],
    v_next: &mut [f64],
) {
    run_step(false, g, p, k, [u, v, fv], drive, v_next);
}

/// The same kernel built with `NEUROTWIN_BREAK_FOR_TEST` (`bias + (syn + gap)` instead of `(bias + syn) +
/// gap`). Exists only so that tests can prove the conformance check detects a reordered sum; never use it
/// in a fit.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn rate_step_broken_for_test(
    g: &RateGraph,
    p: &RateParams,
    k: &RateCoeffs,
    u: &[f64],
    v: &[f64],
    fv: &[f64],
    drive: &mut [f64],
    v_next: &mut [f64],
) {
    run_step(true, g, p, k, [u, v, fv], drive, v_next);
}

fn run_step(
    broken: bool,
    g: &RateGraph,
    p: &RateParams,
    k: &RateCoeffs,
    [u, v, fv]: [&[f64]; 3],
    drive: &mut [f64],
    v_next: &mut [f64],
) {
    p.check(g);
    k.check(g);
    for (x, what) in [(u, "u"), (v, "v"), (fv, "fv"), (&*drive, "drive"), (&*v_next, "v_next")] {
        g.check_neurons(x, what);
    }
    let f = if broken { nt_host_rate_step_broken } else { nt_host_rate_step };
    // SAFETY: the graph was checked (pointers within 0..=nnz / 0..=n_gap, pre and gap_nbr < n); w and e
    // have nnz / n_gap entries, every per-neuron slice n; thread i < n reads within row i and gap row i and
    // writes drive[i], v_next[i] (exclusively borrowed).
    unsafe {
        f(
            len_u32(g.n),
            g.row_ptr.as_ptr(),
            g.pre.as_ptr(),
            p.w.as_ptr(),
            g.gap_ptr.as_ptr(),
            g.gap_nbr.as_ptr(),
            p.e.as_ptr(),
            p.bias.as_ptr(),
            p.gain.as_ptr(),
            k.alpha.as_ptr(),
            k.d.as_ptr(),
            u.as_ptr(),
            v.as_ptr(),
            fv.as_ptr(),
            drive.as_mut_ptr(),
            v_next.as_mut_ptr(),
        )
    };
}

/// `rate_clamp`: `v[i] = values[m]` for every clamped neuron `i` (`m` its index in the clamp's list);
/// `values` is the clamp's row of this step ([`RateClampMap::width`] entries).
pub fn rate_clamp(c: &RateClampMap, values: &[f64], v: &mut [f64]) {
    assert_eq!(values.len(), c.k, "values must hold one row of the clamp");
    assert_eq!(v.len(), c.idx.len(), "v must have one entry per neuron");
    // SAFETY: idx holds n entries, each −1 or < k = values.len() (built so by RateClampMap::new, fields
    // private); thread i < n writes v[i] only.
    unsafe { nt_host_rate_clamp(len_u32(v.len()), c.idx.as_ptr(), values.as_ptr(), v.as_mut_ptr()) };
}

/// `rate_adjoint_mu`: zeroes `adj.lambda` where clamped, writes `adj.mu` and `adj.fv = f(V^t)`, and adds the
/// step's terms to `acc.alpha`, `acc.bias` and `acc.gain`.
pub fn rate_adjoint_mu(
    g: &RateGraph,
    p: &RateParams,
    k: &RateCoeffs,
    clamp: Option<&RateClampMap>,
    s: RateAdjointStates,
    adj: &mut RateAdjoint,
    acc: &mut RateGradAcc,
) {
    p.check(g);
    k.check(g);
    s.check(g);
    adj.check(g);
    acc.check(g);
    let clamp_idx = match clamp {
        Some(c) => {
            assert_eq!(c.idx.len(), g.n, "the clamp map must be made for the graph's neurons");
            c.idx.as_ptr()
        }
        None => std::ptr::null(),
    };
    // SAFETY: every per-neuron slice (and the clamp map, when given) has n entries, checked above; thread
    // i < n reads and writes index i only.
    unsafe {
        nt_host_rate_adjoint_mu(
            len_u32(g.n),
            p.activation.kind(),
            clamp_idx,
            k.alpha.as_ptr(),
            k.c.as_ptr(),
            k.d.as_ptr(),
            s.drive.as_ptr(),
            s.v.as_ptr(),
            s.v_next.as_ptr(),
            s.u.as_ptr(),
            p.theta.as_ptr(),
            p.slope.as_ptr(),
            adj.lambda.as_mut_ptr(),
            adj.mu.as_mut_ptr(),
            adj.fv.as_mut_ptr(),
            acc.alpha.as_mut_ptr(),
            acc.bias.as_mut_ptr(),
            acc.gain.as_mut_ptr(),
        )
    };
}

/// `rate_adjoint_lambda` (after [`rate_adjoint_mu`]): writes `adj.lambda_prev` (`λ^t` without the loss's
/// explicit term) and adds the step's terms to `acc.theta` and `acc.slope`; `v` = `V^t`.
pub fn rate_adjoint_lambda(
    g: &RateGraph,
    p: &RateParams,
    k: &RateCoeffs,
    v: &[f64],
    adj: &mut RateAdjoint,
    acc: &mut RateGradAcc,
) {
    p.check(g);
    k.check(g);
    g.check_neurons(v, "v");
    adj.check(g);
    acc.check(g);
    // SAFETY: the graph was checked (out_ptr within 0..=nnz, out_conn < nnz = w.len(), out_post < n, gap
    // pointers within 0..=n_gap = e.len(), gap_nbr < n); every per-neuron slice has n entries; thread k < n
    // writes g_theta[k], g_slope[k], lambda_prev[k] only.
    unsafe {
        nt_host_rate_adjoint_lambda(
            len_u32(g.n),
            p.activation.kind(),
            g.out_ptr.as_ptr(),
            g.out_conn.as_ptr(),
            g.out_post.as_ptr(),
            p.w.as_ptr(),
            g.gap_ptr.as_ptr(),
            g.gap_nbr.as_ptr(),
            p.e.as_ptr(),
            k.d.as_ptr(),
            v.as_ptr(),
            p.theta.as_ptr(),
            p.slope.as_ptr(),
            adj.lambda.as_ptr(),
            adj.mu.as_ptr(),
            acc.theta.as_mut_ptr(),
            acc.slope.as_mut_ptr(),
            adj.lambda_prev.as_mut_ptr(),
        )
    };
}

/// `rate_grad_edges` (after [`rate_adjoint_mu`]): adds the step's terms to `acc.w` (per connection) and
/// `acc.e` (per gap entry), from `adj.mu`, `adj.fv` and the states `s.v`, `s.v_next`.
pub fn rate_grad_edges(g: &RateGraph, s: RateAdjointStates, adj: &RateAdjoint, acc: &mut RateGradAcc) {
    s.check(g);
    adj.check(g);
    acc.check(g);
    // SAFETY: the graph was checked (row and gap pointers within 0..=nnz / 0..=n_gap, which are the lengths
    // of acc.w / acc.e; pre and gap_nbr < n); thread i < n writes the entries of row i and gap row i only.
    unsafe {
        nt_host_rate_grad_edges(
            len_u32(g.n),
            g.row_ptr.as_ptr(),
            g.pre.as_ptr(),
            g.gap_ptr.as_ptr(),
            g.gap_nbr.as_ptr(),
            adj.mu.as_ptr(),
            adj.fv.as_ptr(),
            s.v.as_ptr(),
            s.v_next.as_ptr(),
            acc.w.as_mut_ptr(),
            acc.e.as_mut_ptr(),
        )
    };
}

/// `rate_tau_grad`: `g_tau = g_alpha · (−α/τ)` (d loss / d τ from d loss / d α).
pub fn rate_tau_grad(g_alpha: &[f64], alpha: &[f64], tau: &[f64], g_tau: &mut [f64]) {
    let n = g_alpha.len();
    assert!(
        alpha.len() == n && tau.len() == n && g_tau.len() == n,
        "g_alpha, alpha, tau and g_tau must have one length"
    );
    // SAFETY: thread i < n reads index i of the three inputs and writes g_tau[i], all of length n.
    unsafe { nt_host_rate_tau_grad(len_u32(n), g_alpha.as_ptr(), alpha.as_ptr(), tau.as_ptr(), g_tau.as_mut_ptr()) };
}
