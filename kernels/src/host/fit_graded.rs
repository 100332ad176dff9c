//! Host builds of the graded-model fitting kernels of `cuda/fit_graded.cu` (the forward step and the discrete
//! adjoint of `neurotwin_fit::graded`, f64), launched with a 1-D grid of one thread per neuron as on a GPU.
//!
//! The network structure is checked once, when a [`GradedFitGraph`] is made (pointer arrays, index ranges);
//! every launch then checks only slice lengths, so the kernels stay in bounds. Pulses and clamps are turned
//! into the kernels' per-neuron form by [`GradedFitPulses`] and [`GradedFitClampMap`].

use std::ffi::c_uint;

use super::fit_common::check_ptr;
pub use super::fit_common::{FitClampMap as GradedFitClampMap, FitPulses as GradedFitPulses};
use super::len_u32;

unsafe extern "C" {
    fn nt_host_graded_fit_pulse_input(
        n: c_uint,
        t: u64,
        pulse_ptr: *const u64,
        start: *const u64,
        stop: *const u64,
        amp: *const f64,
        u: *mut f64,
    );
    fn nt_host_graded_fit_clamp(n: c_uint, clamp_idx: *const i32, values: *const f64, v: *mut f64);
    fn nt_host_graded_fit_activation(n: c_uint, v: *const f64, theta: *const f64, slope: *const f64, s: *mut f64);
    fn nt_host_graded_fit_step(
        n: c_uint,
        n_ch: c_uint,
        minus_h_over_c: f64,
        excitatory: *const u8,
        ch_ptr: *const u64,
        ch_conn: *const u32,
        pre: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        g_l: *const f64,
        e_l: *const f64,
        bias: *const f64,
        gain: *const f64,
        e_exc: *const f64,
        e_inh: *const f64,
        u: *const f64,
        v: *const f64,
        s: *const f64,
        gch: *mut f64,
        v_next: *mut f64,
    );
    fn nt_host_graded_fit_step_broken(
        n: c_uint,
        n_ch: c_uint,
        minus_h_over_c: f64,
        excitatory: *const u8,
        ch_ptr: *const u64,
        ch_conn: *const u32,
        pre: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        g_l: *const f64,
        e_l: *const f64,
        bias: *const f64,
        gain: *const f64,
        e_exc: *const f64,
        e_inh: *const f64,
        u: *const f64,
        v: *const f64,
        s: *const f64,
        gch: *mut f64,
        v_next: *mut f64,
    );
    fn nt_host_graded_fit_adjoint_terms(
        n: c_uint,
        n_ch: c_uint,
        minus_h_over_c: f64,
        excitatory: *const u8,
        row_ptr: *const u64,
        pre: *const u32,
        receptor: *const u8,
        ch_ptr: *const u64,
        ch_conn: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        g_l: *const f64,
        e_l: *const f64,
        bias: *const f64,
        gain: *const f64,
        e_exc: *const f64,
        e_inh: *const f64,
        clamp_idx: *const i32,
        u: *const f64,
        v: *const f64,
        s: *const f64,
        lambda: *mut f64,
        gch: *mut f64,
        a_d: *mut f64,
        a_g: *mut f64,
        x: *mut f64,
        rho: *mut f64,
        grad_g_l: *mut f64,
        grad_e_l: *mut f64,
        grad_bias: *mut f64,
        grad_gain: *mut f64,
        grad_e_exc: *mut f64,
        grad_e_inh: *mut f64,
        grad_w: *mut f64,
        grad_e: *mut f64,
    );
    fn nt_host_graded_fit_adjoint_lambda(
        n: c_uint,
        out_ptr: *const u64,
        out_conn: *const u32,
        out_slot: *const u32,
        w: *const f64,
        gap_ptr: *const u64,
        gap_nbr: *const u32,
        e: *const f64,
        theta: *const f64,
        slope: *const f64,
        v: *const f64,
        s: *const f64,
        lambda: *const f64,
        rho: *const f64,
        a_d: *const f64,
        x: *const f64,
        grad_theta: *mut f64,
        grad_slope: *mut f64,
        lambda_prev: *mut f64,
    );
    fn nt_host_graded_fit_initial_grad(n: c_uint, clamp_idx: *const i32, lambda: *mut f64, grad_e_l: *mut f64);
}

/// The network structure of a graded fit (`neurotwin_fit::FitNetwork` and `GradedModel`'s channel index),
/// borrowed and checked once: `n_ch` receptor channels (`excitatory[c]` ≠ 0 for excitatory ones); chemical
/// connections in CSR by postsynaptic neuron (`row_ptr`, `pre`, `receptor`); per (neuron, channel) the
/// connections of that row on that channel in CSR order (`ch_ptr` with `n · n_ch + 1` entries, `ch_conn`);
/// the transpose by presynaptic neuron (`out_ptr`, `out_conn`, `out_slot` = `post · n_ch + receptor` of
/// `out_conn[m]`); gap junctions (`gap_ptr`, `gap_nbr`).
#[derive(Clone, Copy, Debug)]
pub struct GradedFitGraph<'a> {
    n: usize,
    n_ch: usize,
    excitatory: &'a [u8],
    row_ptr: &'a [u64],
    pre: &'a [u32],
    receptor: &'a [u8],
    ch_ptr: &'a [u64],
    ch_conn: &'a [u32],
    out_ptr: &'a [u64],
    out_conn: &'a [u32],
    out_slot: &'a [u32],
    gap_ptr: &'a [u64],
    gap_nbr: &'a [u32],
}

impl<'a> GradedFitGraph<'a> {
    /// Checks the structure (pointer arrays start at 0, never decrease and end at the number of entries;
    /// neuron, connection, channel and slot indices in range); panics when invalid. Whether `ch_conn` and
    /// `out_slot` describe the same network as `row_ptr`/`receptor` is not checked (it changes results, not
    /// memory safety).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n: usize,
        excitatory: &'a [u8],
        row_ptr: &'a [u64],
        pre: &'a [u32],
        receptor: &'a [u8],
        ch_ptr: &'a [u64],
        ch_conn: &'a [u32],
        out_ptr: &'a [u64],
        out_conn: &'a [u32],
        out_slot: &'a [u32],
        gap_ptr: &'a [u64],
        gap_nbr: &'a [u32],
    ) -> Self {
        len_u32(n);
        let n_ch = excitatory.len();
        let slots = n.checked_mul(n_ch).expect("n × n_ch overflows");
        len_u32(slots);
        let nnz = pre.len();
        check_ptr(row_ptr, n, nnz, "row_ptr");
        check_ptr(out_ptr, n, nnz, "out_ptr");
        check_ptr(gap_ptr, n, gap_nbr.len(), "gap_ptr");
        check_ptr(ch_ptr, slots, ch_conn.len(), "ch_ptr");
        assert_eq!(receptor.len(), nnz, "receptor must have one entry per connection");
        assert_eq!(out_conn.len(), nnz, "out_conn must have one entry per connection");
        assert_eq!(out_slot.len(), nnz, "out_slot must have one entry per connection");
        assert!(pre.iter().all(|&j| (j as usize) < n), "pre out of range");
        assert!(receptor.iter().all(|&c| (c as usize) < n_ch), "receptor out of range");
        assert!(ch_conn.iter().all(|&c| (c as usize) < nnz), "ch_conn out of range");
        assert!(out_conn.iter().all(|&c| (c as usize) < nnz), "out_conn out of range");
        assert!(out_slot.iter().all(|&s| (s as usize) < slots), "out_slot out of range");
        assert!(gap_nbr.iter().all(|&j| (j as usize) < n), "gap_nbr out of range");
        Self {
            n,
            n_ch,
            excitatory,
            row_ptr,
            pre,
            receptor,
            ch_ptr,
            ch_conn,
            out_ptr,
            out_conn,
            out_slot,
            gap_ptr,
            gap_nbr,
        }
    }

    pub fn n_neurons(&self) -> usize {
        self.n
    }

    pub fn n_channels(&self) -> usize {
        self.n_ch
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

    fn check_slots(&self, x: &[f64], what: &str) {
        assert_eq!(x.len(), self.n * self.n_ch, "{what} must have one entry per (neuron, channel)");
    }
}

/// Parameter values at element level (`neurotwin_fit::graded::GradedValues`) and the step constant
/// `minus_h_over_c` = `−dt/C`.
#[derive(Clone, Copy, Debug)]
pub struct GradedFitParams<'a> {
    pub minus_h_over_c: f64,
    /// Maximal conductance of each connection.
    pub w: &'a [f64],
    /// Coupling conductance of each gap entry.
    pub e: &'a [f64],
    pub g_l: &'a [f64],
    pub e_l: &'a [f64],
    pub theta: &'a [f64],
    pub slope: &'a [f64],
    pub bias: &'a [f64],
    pub gain: &'a [f64],
    pub e_exc: &'a [f64],
    pub e_inh: &'a [f64],
}

impl GradedFitParams<'_> {
    fn check(&self, g: &GradedFitGraph) {
        assert_eq!(self.w.len(), g.n_connections(), "w must have one entry per connection");
        assert_eq!(self.e.len(), g.n_gap_entries(), "e must have one entry per gap entry");
        for (x, what) in [
            (self.g_l, "g_l"),
            (self.e_l, "e_l"),
            (self.theta, "theta"),
            (self.slope, "slope"),
            (self.bias, "bias"),
            (self.gain, "gain"),
            (self.e_exc, "e_exc"),
            (self.e_inh, "e_inh"),
        ] {
            g.check_neurons(x, what);
        }
    }
}

fn clamp_ptr(clamp: Option<&GradedFitClampMap>, n: usize) -> *const i32 {
    match clamp {
        Some(c) => {
            assert_eq!(c.idx.len(), n, "the clamp map must be made for the graph's neurons");
            c.idx.as_ptr()
        }
        None => std::ptr::null(),
    }
}

/// Buffers of the adjoint: `lambda` (`λ^{t+1}` on entry to a step), `lambda_prev` (receives `λ^t` without
/// the loss's explicit term), and the step's scratch: channel conductances `gch` and `rho` (per neuron and
/// channel), `a_d`, `a_g`, `x` (per neuron).
#[derive(Clone, Debug, PartialEq)]
pub struct GradedFitAdjoint {
    pub lambda: Vec<f64>,
    pub lambda_prev: Vec<f64>,
    pub gch: Vec<f64>,
    pub rho: Vec<f64>,
    pub a_d: Vec<f64>,
    pub a_g: Vec<f64>,
    pub x: Vec<f64>,
}

impl GradedFitAdjoint {
    pub fn zeros(g: &GradedFitGraph) -> Self {
        let (n, slots) = (g.n, g.n * g.n_ch);
        Self {
            lambda: vec![0.0; n],
            lambda_prev: vec![0.0; n],
            gch: vec![0.0; slots],
            rho: vec![0.0; slots],
            a_d: vec![0.0; n],
            a_g: vec![0.0; n],
            x: vec![0.0; n],
        }
    }

    fn check(&self, g: &GradedFitGraph) {
        for (x, what) in [
            (&self.lambda, "lambda"),
            (&self.lambda_prev, "lambda_prev"),
            (&self.a_d, "a_d"),
            (&self.a_g, "a_g"),
            (&self.x, "x"),
        ] {
            g.check_neurons(x, what);
        }
        g.check_slots(&self.gch, "gch");
        g.check_slots(&self.rho, "rho");
    }
}

/// Gradient accumulators (`neurotwin_fit::graded::GradedGrads`): d loss / d every per-neuron parameter,
/// `w` (per connection) and `e` (per gap entry).
#[derive(Clone, Debug, PartialEq)]
pub struct GradedFitGradAcc {
    pub g_l: Vec<f64>,
    pub e_l: Vec<f64>,
    pub theta: Vec<f64>,
    pub slope: Vec<f64>,
    pub bias: Vec<f64>,
    pub gain: Vec<f64>,
    pub e_exc: Vec<f64>,
    pub e_inh: Vec<f64>,
    pub w: Vec<f64>,
    pub e: Vec<f64>,
}

impl GradedFitGradAcc {
    pub fn zeros(g: &GradedFitGraph) -> Self {
        let n = g.n;
        Self {
            g_l: vec![0.0; n],
            e_l: vec![0.0; n],
            theta: vec![0.0; n],
            slope: vec![0.0; n],
            bias: vec![0.0; n],
            gain: vec![0.0; n],
            e_exc: vec![0.0; n],
            e_inh: vec![0.0; n],
            w: vec![0.0; g.n_connections()],
            e: vec![0.0; g.n_gap_entries()],
        }
    }

    fn check(&self, g: &GradedFitGraph) {
        for (x, what) in [
            (&self.g_l, "g_l"),
            (&self.e_l, "e_l"),
            (&self.theta, "theta"),
            (&self.slope, "slope"),
            (&self.bias, "bias"),
            (&self.gain, "gain"),
            (&self.e_exc, "e_exc"),
            (&self.e_inh, "e_inh"),
        ] {
            g.check_neurons(x, what);
        }
        assert_eq!(self.w.len(), g.n_connections(), "w gradient must have one entry per connection");
        assert_eq!(self.e.len(), g.n_gap_entries(), "e gradient must have one entry per gap entry");
    }
}

/// `graded_fit_pulse_input`: `u` = the step input at step `t`.
pub fn graded_fit_pulse_input(p: &GradedFitPulses, t: u64, u: &mut [f64]) {
    assert_eq!(u.len(), p.n, "u must have one entry per neuron");
    // SAFETY: ptr has n + 1 entries, non-decreasing from 0 to start.len() = stop.len() = amp.len() (built so
    // by GradedFitPulses::new, fields private); thread i < n writes u[i].
    unsafe {
        nt_host_graded_fit_pulse_input(
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

/// `graded_fit_clamp`: `v[i] = values[m]` for every clamped neuron `i` (`m` its index in the clamp's list);
/// `values` is the clamp's row of this step ([`GradedFitClampMap::width`] entries).
pub fn graded_fit_clamp(c: &GradedFitClampMap, values: &[f64], v: &mut [f64]) {
    assert_eq!(values.len(), c.k, "values must hold one row of the clamp");
    assert_eq!(v.len(), c.idx.len(), "v must have one entry per neuron");
    // SAFETY: idx holds n entries, each −1 or < k = values.len() (built so by GradedFitClampMap::new, fields
    // private); thread i < n writes v[i] only.
    unsafe { nt_host_graded_fit_clamp(len_u32(v.len()), c.idx.as_ptr(), values.as_ptr(), v.as_mut_ptr()) };
}

/// `graded_fit_activation`: `s = σ(slope (v − θ))` elementwise.
pub fn graded_fit_activation(v: &[f64], theta: &[f64], slope: &[f64], s: &mut [f64]) {
    let n = v.len();
    assert!(theta.len() == n && slope.len() == n && s.len() == n, "v, theta, slope and s must have one length");
    // SAFETY: thread j < n reads v[j], theta[j], slope[j] and writes s[j], all of length n.
    unsafe { nt_host_graded_fit_activation(len_u32(n), v.as_ptr(), theta.as_ptr(), slope.as_ptr(), s.as_mut_ptr()) };
}

/// `graded_fit_step`: from `v` (= `V^t`, with `s` its activations from [`graded_fit_activation`]) and the
/// input `u`, writes the channel conductances `gch` and `v_next` (= `V^{t+1}` before teacher forcing).
#[allow(clippy::too_many_arguments)]
pub fn graded_fit_step(
    g: &GradedFitGraph,
    p: &GradedFitParams,
    u: &[f64],
    v: &[f64],
    s: &[f64],
    gch: &mut [f64],
    v_next: &mut [f64],
) {
    run_step(false, g, p, [u, v, s], gch, v_next);
}

/// The same kernel built with `NEUROTWIN_BREAK_FOR_TEST` (`(g_L E_L + I_b) + (γ u + Σ e V)` instead of
/// `((g_L E_L + I_b) + γ u) + Σ e V`). Exists only so that tests can prove the conformance check detects a reordered
/// sum; never use it in a fit.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn graded_fit_step_broken_for_test(
    g: &GradedFitGraph,
    p: &GradedFitParams,
    u: &[f64],
    v: &[f64],
    s: &[f64],
    gch: &mut [f64],
    v_next: &mut [f64],
) {
    run_step(true, g, p, [u, v, s], gch, v_next);
}

fn run_step(
    broken: bool,
    g: &GradedFitGraph,
    p: &GradedFitParams,
    [u, v, s]: [&[f64]; 3],
    gch: &mut [f64],
    v_next: &mut [f64],
) {
    p.check(g);
    for (x, what) in [(u, "u"), (v, "v"), (s, "s"), (&*v_next, "v_next")] {
        g.check_neurons(x, what);
    }
    g.check_slots(gch, "gch");
    let f = if broken { nt_host_graded_fit_step_broken } else { nt_host_graded_fit_step };
    // SAFETY: the graph was checked (ch_ptr within 0..=ch_conn.len() with n n_ch + 1 entries, ch_conn < nnz =
    // w.len(), pre and gap_nbr < n, gap pointers within 0..=n_gap = e.len(), excitatory n_ch entries); every
    // per-neuron slice has n entries and gch n n_ch; thread i < n writes gch[i n_ch ..][..n_ch] and v_next[i]
    // (exclusively borrowed).
    unsafe {
        f(
            len_u32(g.n),
            len_u32(g.n_ch),
            p.minus_h_over_c,
            g.excitatory.as_ptr(),
            g.ch_ptr.as_ptr(),
            g.ch_conn.as_ptr(),
            g.pre.as_ptr(),
            p.w.as_ptr(),
            g.gap_ptr.as_ptr(),
            g.gap_nbr.as_ptr(),
            p.e.as_ptr(),
            p.g_l.as_ptr(),
            p.e_l.as_ptr(),
            p.bias.as_ptr(),
            p.gain.as_ptr(),
            p.e_exc.as_ptr(),
            p.e_inh.as_ptr(),
            u.as_ptr(),
            v.as_ptr(),
            s.as_ptr(),
            gch.as_mut_ptr(),
            v_next.as_mut_ptr(),
        )
    };
}

/// `graded_fit_adjoint_terms`: zeroes `adj.lambda` where clamped, writes `adj.gch`, `adj.a_d`, `adj.a_g`,
/// `adj.x`, `adj.rho`, and adds the step's terms to every gradient but `theta` and `slope`. `v` = `V^t`, `u`
/// = `u^t`, `s` = the activations of `V^t`.
#[allow(clippy::too_many_arguments)]
pub fn graded_fit_adjoint_terms(
    g: &GradedFitGraph,
    p: &GradedFitParams,
    clamp: Option<&GradedFitClampMap>,
    u: &[f64],
    v: &[f64],
    s: &[f64],
    adj: &mut GradedFitAdjoint,
    acc: &mut GradedFitGradAcc,
) {
    p.check(g);
    for (x, what) in [(u, "u"), (v, "v"), (s, "s")] {
        g.check_neurons(x, what);
    }
    adj.check(g);
    acc.check(g);
    let clamp_idx = clamp_ptr(clamp, g.n);
    // SAFETY: the graph was checked (row, channel and gap pointers within 0..=nnz / ch_conn.len() / n_gap,
    // which are the lengths of w and acc.w / ch_conn / e and acc.e; pre, gap_nbr < n; ch_conn < nnz;
    // receptor < n_ch); every per-neuron slice (and the clamp map, when given) has n entries, gch and rho
    // n n_ch; thread i < n writes index i, slots i n_ch .. (i + 1) n_ch and the entries of row i and gap row i.
    unsafe {
        nt_host_graded_fit_adjoint_terms(
            len_u32(g.n),
            len_u32(g.n_ch),
            p.minus_h_over_c,
            g.excitatory.as_ptr(),
            g.row_ptr.as_ptr(),
            g.pre.as_ptr(),
            g.receptor.as_ptr(),
            g.ch_ptr.as_ptr(),
            g.ch_conn.as_ptr(),
            p.w.as_ptr(),
            g.gap_ptr.as_ptr(),
            g.gap_nbr.as_ptr(),
            p.e.as_ptr(),
            p.g_l.as_ptr(),
            p.e_l.as_ptr(),
            p.bias.as_ptr(),
            p.gain.as_ptr(),
            p.e_exc.as_ptr(),
            p.e_inh.as_ptr(),
            clamp_idx,
            u.as_ptr(),
            v.as_ptr(),
            s.as_ptr(),
            adj.lambda.as_mut_ptr(),
            adj.gch.as_mut_ptr(),
            adj.a_d.as_mut_ptr(),
            adj.a_g.as_mut_ptr(),
            adj.x.as_mut_ptr(),
            adj.rho.as_mut_ptr(),
            acc.g_l.as_mut_ptr(),
            acc.e_l.as_mut_ptr(),
            acc.bias.as_mut_ptr(),
            acc.gain.as_mut_ptr(),
            acc.e_exc.as_mut_ptr(),
            acc.e_inh.as_mut_ptr(),
            acc.w.as_mut_ptr(),
            acc.e.as_mut_ptr(),
        )
    };
}

/// `graded_fit_adjoint_lambda` (after [`graded_fit_adjoint_terms`]): writes `adj.lambda_prev` (`λ^t` without
/// the loss's explicit term) and adds the step's terms to `acc.theta` and `acc.slope`; `v` = `V^t`, `s` its
/// activations.
pub fn graded_fit_adjoint_lambda(
    g: &GradedFitGraph,
    p: &GradedFitParams,
    v: &[f64],
    s: &[f64],
    adj: &mut GradedFitAdjoint,
    acc: &mut GradedFitGradAcc,
) {
    p.check(g);
    g.check_neurons(v, "v");
    g.check_neurons(s, "s");
    adj.check(g);
    acc.check(g);
    // SAFETY: the graph was checked (out_ptr within 0..=nnz, out_conn < nnz = w.len(), out_slot < n n_ch =
    // rho.len(), gap pointers within 0..=n_gap = e.len(), gap_nbr < n); every per-neuron slice has n entries;
    // thread k < n writes grad_theta[k], grad_slope[k], lambda_prev[k] only.
    unsafe {
        nt_host_graded_fit_adjoint_lambda(
            len_u32(g.n),
            g.out_ptr.as_ptr(),
            g.out_conn.as_ptr(),
            g.out_slot.as_ptr(),
            p.w.as_ptr(),
            g.gap_ptr.as_ptr(),
            g.gap_nbr.as_ptr(),
            p.e.as_ptr(),
            p.theta.as_ptr(),
            p.slope.as_ptr(),
            v.as_ptr(),
            s.as_ptr(),
            adj.lambda.as_ptr(),
            adj.rho.as_ptr(),
            adj.a_d.as_ptr(),
            adj.x.as_ptr(),
            acc.theta.as_mut_ptr(),
            acc.slope.as_mut_ptr(),
            adj.lambda_prev.as_mut_ptr(),
        )
    };
}

/// `graded_fit_initial_grad`: zeroes `lambda` where clamped and adds it to `grad_e_l` (d loss / d `E_L`
/// through `V^0 = E_L`).
pub fn graded_fit_initial_grad(clamp: Option<&GradedFitClampMap>, lambda: &mut [f64], grad_e_l: &mut [f64]) {
    let n = lambda.len();
    assert_eq!(grad_e_l.len(), n, "lambda and grad_e_l must have one length");
    let clamp_idx = clamp_ptr(clamp, n);
    // SAFETY: the clamp map (when given) and both slices have n entries; thread i < n touches index i only.
    unsafe { nt_host_graded_fit_initial_grad(len_u32(n), clamp_idx, lambda.as_mut_ptr(), grad_e_l.as_mut_ptr()) };
}
