//! The compiled form of an equation-defined model: flat instruction lists over 64-lane registers and the
//! per-step driver (integration, inputs, threshold, reset) that runs them for one block of neurons.
//!
//! Register file of one run: registers `0..n` hold the state the right-hand sides read (the trial state of a
//! Runge–Kutta stage), register `n` holds `I_stim`, the rest are temporaries. Every instruction is one IEEE
//! operation per lane (no fused multiply–add), so a program's result does not depend on how the loops are
//! vectorised.

use std::cell::RefCell;

use super::{Func, Method, R, Sym};
use crate::detmath;
use crate::model::{BlockInput, LANES};

pub type Reg = usize;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Instr {
    Const(Reg, f64),
    /// The arriving input of receptor channel `ch`.
    Syn(Reg, usize),
    Neg(Reg, Reg),
    Add(Reg, Reg, Reg),
    Sub(Reg, Reg, Reg),
    Mul(Reg, Reg, Reg),
    Div(Reg, Reg, Reg),
    Powi(Reg, Reg, i32),
    Call(Reg, Func, Reg, Reg),
    /// 1.0 where the comparison holds, else 0.0.
    Cmp(Reg, super::expr::CmpOp, Reg, Reg),
}

/// The instructions computing one expression and the register holding its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Code {
    pub(super) instrs: Vec<Instr>,
    pub(super) out: Reg,
}

/// Propagator rows of an exact update, `x_i ← Σ_j P[i][j] x_j + P[i][n] I_stim + P[i][n + 1]`, the terms added
/// left to right. A term whose coefficient is 0 in every parameter set of the simulation is left out (`used`), so
/// that a sparse system costs only its nonzero terms; the interpreter and the generated code leave out the same
/// terms, and give the same bits (leaving a term out differs from adding `0·x` only in the sign of a zero sum or
/// for infinite states).
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// `n` rows of `n + 2` coefficients.
    pub p: Vec<Vec<f64>>,
    /// Per coefficient: nonzero in some parameter set (the term is computed).
    pub used: Vec<Vec<bool>>,
    /// Per coefficient: exactly 1 in every parameter set (generated code adds `x_j` for `1·x_j`: the same value).
    pub unit: Vec<Vec<bool>>,
}

impl Rows {
    /// The rows of one parameter set (see [`specialize`] for several).
    pub fn new(p: Vec<Vec<f64>>) -> Self {
        let used = p.iter().map(|r| r.iter().map(|&v| v != 0.0).collect()).collect();
        let unit = p.iter().map(|r| r.iter().map(|&v| v == 1.0).collect()).collect();
        Rows { p, used, unit }
    }

    /// Row `i` for every lane into `out`, with `x_j = regs[j]` and `I_stim = regs[n]`; 0 for a row without terms.
    #[inline(always)]
    fn row(&self, i: usize, regs: &[Lanes], out: &mut [f64; LANES]) {
        let (p, used) = (&self.p[i], &self.used[i]);
        let n = regs.len() - 1;
        let mut started = false;
        for (j, x) in regs.iter().enumerate().take(n + 1) {
            if !used[j] {
                continue;
            }
            let c = p[j];
            if started {
                for l in 0..LANES {
                    out[l] += c * x[l];
                }
            } else {
                for l in 0..LANES {
                    out[l] = c * x[l];
                }
                started = true;
            }
        }
        if used[n + 1] {
            let c = p[n + 1];
            if started {
                out.iter_mut().for_each(|o| *o += c);
            } else {
                *out = [c; LANES];
                started = true;
            }
        }
        if !started {
            *out = [0.0; LANES];
        }
    }
}

/// Makes the exact rows of the programs of one simulation's parameter sets leave out the same terms: a term is
/// used where its coefficient is nonzero in some set, unit where it is 1 in all (see [`Rows`]).
pub fn specialize(programs: &mut [&mut Program]) {
    fn merge(rows: &mut [&mut Rows]) {
        let Some(first) = rows.first() else { return };
        let (mut used, mut unit) = (first.used.clone(), first.unit.clone());
        for r in rows.iter().skip(1) {
            for i in 0..used.len() {
                for j in 0..used[i].len() {
                    used[i][j] |= r.used[i][j];
                    unit[i][j] &= r.unit[i][j];
                }
            }
        }
        for r in rows.iter_mut() {
            r.used = used.clone();
            r.unit = unit.clone();
        }
    }
    let mut free = Vec::new();
    let mut refractory = Vec::new();
    for p in programs.iter_mut() {
        if let Integrate::Exact { free: f, refractory: r } = &mut p.integrate {
            free.push(f);
            refractory.push(r);
        }
    }
    merge(&mut free);
    merge(&mut refractory);
}

/// How the state advances over one step.
#[derive(Clone, Debug, PartialEq)]
pub enum Integrate {
    /// Linear system ([`Rows`]): `free` for lanes that are not refractory, `refractory` for those that are.
    Exact { free: Rows, refractory: Rows },
    /// Runge–Kutta with `substeps` substeps of `h_sub` (ms); `rhs[i]` computes `dx_i/dt`.
    Explicit { method: Method, substeps: u32, h_sub: f64, rhs: Vec<Code> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub n: usize,
    pub n_regs: usize,
    pub integrate: Integrate,
    /// Per receptor channel: the variable it adds to and the amount.
    pub inputs: Vec<(usize, Code)>,
    /// Inputs are added before the integration (`InputTiming::Before`), else after it.
    pub inputs_first: bool,
    pub threshold: Code,
    /// At a spike, in order: variable, `+=` (else `=`), value.
    pub reset: Vec<(usize, bool, Code)>,
    pub clamped: Vec<bool>,
}

/// Emits instructions for resolved expressions.
pub struct Builder {
    n: usize,
    next: Reg,
}

impl Builder {
    pub fn new(n: usize) -> Self {
        Self { n, next: n + 1 }
    }

    pub fn n_regs(&self) -> usize {
        self.next
    }

    fn fresh(&mut self) -> Reg {
        self.next += 1;
        self.next - 1
    }

    /// Compiles `r`; `channel` is the receptor channel `w` refers to (inputs).
    pub fn code(&mut self, r: &R, channel: Option<usize>) -> Code {
        let mut instrs = Vec::new();
        let out = self.emit(r, channel, &mut instrs);
        Code { instrs, out }
    }

    fn emit(&mut self, r: &R, ch: Option<usize>, out: &mut Vec<Instr>) -> Reg {
        match r {
            R::Const(v) | R::Sym(Sym::Param(v, _)) => {
                let d = self.fresh();
                out.push(Instr::Const(d, *v));
                d
            }
            R::Sym(Sym::State(i)) => *i,
            R::Sym(Sym::Stim) => self.n,
            R::Sym(Sym::Weight) => {
                let d = self.fresh();
                out.push(Instr::Syn(d, ch.expect("w resolves only in inputs")));
                d
            }
            R::Neg(a) => {
                let a = self.emit(a, ch, out);
                let d = self.fresh();
                out.push(Instr::Neg(d, a));
                d
            }
            R::Bin(op, a, b) => {
                let (a, b) = (self.emit(a, ch, out), self.emit(b, ch, out));
                let d = self.fresh();
                out.push(match op {
                    super::expr::BinOp::Add => Instr::Add(d, a, b),
                    super::expr::BinOp::Sub => Instr::Sub(d, a, b),
                    super::expr::BinOp::Mul => Instr::Mul(d, a, b),
                    super::expr::BinOp::Div => Instr::Div(d, a, b),
                });
                d
            }
            R::Pow(a, n) => {
                let a = self.emit(a, ch, out);
                let d = self.fresh();
                out.push(Instr::Powi(d, a, *n));
                d
            }
            R::Call(f, args) => {
                let a = self.emit(&args[0], ch, out);
                let b = if args.len() > 1 { self.emit(&args[1], ch, out) } else { a };
                let d = self.fresh();
                out.push(Instr::Call(d, *f, a, b));
                d
            }
            R::Cmp(op, a, b) => {
                let (a, b) = (self.emit(a, ch, out), self.emit(b, ch, out));
                let d = self.fresh();
                out.push(Instr::Cmp(d, *op, a, b));
                d
            }
        }
    }
}

/// `x^n` by repeated multiplication in a fixed order (`x·x·…`, then `1/…` for negative `n`).
pub fn powi(x: f64, n: i32) -> f64 {
    let mut p = 1.0;
    for _ in 0..n.unsigned_abs() {
        p *= x;
    }
    if n < 0 { 1.0 / p } else { p }
}

/// The built-in functions, deterministic: `exp` and `tanh` through [`detmath::exp`], `log` through [`detmath::ln`]
/// (the same operations as the generated code's `nt_exp`, `nt_ln`), `sqrt` correctly rounded.
pub fn call(f: Func, a: &[f64]) -> f64 {
    match f {
        Func::Exp => detmath::exp(a[0]),
        Func::Log => detmath::ln(a[0]),
        Func::Sqrt => a[0].sqrt(),
        Func::Abs => a[0].abs(),
        Func::Min => {
            if a[1] < a[0] {
                a[1]
            } else {
                a[0]
            }
        }
        Func::Max => {
            if a[1] > a[0] {
                a[1]
            } else {
                a[0]
            }
        }
        Func::Tanh => {
            let e = detmath::exp(2.0 * a[0]);
            (e - 1.0) / (e + 1.0)
        }
    }
}

type Lanes = [f64; LANES];

thread_local! {
    /// Register files reused between calls (one per thread).
    static REGS: RefCell<Vec<Lanes>> = const { RefCell::new(Vec::new()) };
}

impl Code {
    fn run(&self, regs: &mut [Lanes], input: &BlockInput) {
        for ins in &self.instrs {
            match *ins {
                Instr::Const(d, v) => regs[d] = [v; LANES],
                Instr::Syn(d, ch) => regs[d].copy_from_slice(&input.syn[ch * LANES..(ch + 1) * LANES]),
                Instr::Neg(d, a) => unary(regs, d, a, |v| -v),
                Instr::Add(d, a, b) => binary(regs, d, a, b, |x, y| x + y),
                Instr::Sub(d, a, b) => binary(regs, d, a, b, |x, y| x - y),
                Instr::Mul(d, a, b) => binary(regs, d, a, b, |x, y| x * y),
                Instr::Div(d, a, b) => binary(regs, d, a, b, |x, y| x / y),
                Instr::Powi(d, a, n) => unary(regs, d, a, |v| powi(v, n)),
                Instr::Call(d, f, a, b) => {
                    let (x, y) = (regs[a], regs[b]);
                    if f == Func::Exp {
                        let mut v = x;
                        detmath::exp_lanes(&mut v);
                        regs[d] = v;
                    } else {
                        regs[d] = std::array::from_fn(|l| call(f, &[x[l], y[l]]));
                    }
                }
                Instr::Cmp(d, op, a, b) => {
                    use super::expr::CmpOp;
                    binary(regs, d, a, b, |x, y| {
                        let t = match op {
                            CmpOp::Ge => x >= y,
                            CmpOp::Gt => x > y,
                            CmpOp::Le => x <= y,
                            CmpOp::Lt => x < y,
                        };
                        t as u8 as f64
                    })
                }
            }
        }
    }
}

/// `regs[d] = f(regs[a], regs[b])` lane by lane without copying the operands (`d` was allocated after `a` and
/// `b`, so it lies above both).
#[inline(always)]
fn binary(regs: &mut [Lanes], d: Reg, a: Reg, b: Reg, f: impl Fn(f64, f64) -> f64) {
    debug_assert!(d > a && d > b);
    let (lo, hi) = regs.split_at_mut(d);
    let (x, y, r) = (&lo[a], &lo[b], &mut hi[0]);
    for l in 0..LANES {
        r[l] = f(x[l], y[l]);
    }
}

/// `regs[d] = f(regs[a])` lane by lane (`d > a`).
#[inline(always)]
fn unary(regs: &mut [Lanes], d: Reg, a: Reg, f: impl Fn(f64) -> f64) {
    debug_assert!(d > a);
    let (lo, hi) = regs.split_at_mut(d);
    let (x, r) = (&lo[a], &mut hi[0]);
    for l in 0..LANES {
        r[l] = f(x[l]);
    }
}

impl Program {
    /// Advances the block `state` (block-major, `n + 1` variables: the state then the refractory counter) by one
    /// step and returns the spike mask. Lanes beyond `n_lanes` are computed and ignored.
    pub fn run(&self, state: &mut [f64], input: &BlockInput, refractory_steps: u32, n_lanes: usize) -> u64 {
        REGS.with(|cell| {
            let mut regs = cell.borrow_mut();
            if regs.len() < self.n_regs {
                regs.resize(self.n_regs, [0.0; LANES]);
            }
            self.step(&mut regs, state, input, refractory_steps, n_lanes)
        })
    }

    /// Adds each channel's input to its variable, with the state in registers 0..n (loaded here); a clamped variable
    /// ignores input while refractory (NEST's iaf_psc_delta discards it). Leaves the new state in the registers.
    fn add_inputs(&self, regs: &mut [Lanes], state: &mut [f64], input: &BlockInput, is_refr: &[bool; LANES]) {
        let var = |i: usize| i * LANES..(i + 1) * LANES;
        for i in 0..self.n {
            regs[i].copy_from_slice(&state[var(i)]);
        }
        for (v, code) in &self.inputs {
            code.run(regs, input);
            let add = &regs[code.out];
            let x = &mut state[var(*v)];
            if self.clamped[*v] {
                for l in 0..LANES {
                    if !is_refr[l] {
                        x[l] += add[l];
                    }
                }
            } else {
                for l in 0..LANES {
                    x[l] += add[l];
                }
            }
            regs[*v].copy_from_slice(x);
        }
    }

    fn step(
        &self,
        regs: &mut [Lanes],
        state: &mut [f64],
        input: &BlockInput,
        refractory_steps: u32,
        n_lanes: usize,
    ) -> u64 {
        let n = self.n;
        let var = |i: usize| i * LANES..(i + 1) * LANES;
        regs[n].copy_from_slice(&input.i_ext[..LANES]);
        let refr = &state[var(n)];
        let is_refr: [bool; LANES] = std::array::from_fn(|l| refr[l] > 0.0);
        if self.inputs_first {
            self.add_inputs(regs, state, input, &is_refr);
        }
        match &self.integrate {
            Integrate::Exact { free, refractory } => {
                // The start-of-step state into registers 0..n; the new state straight into `state`: every lane with
                // the free propagator, then, if any lane is refractory, every lane with the refractory one, kept in
                // those lanes (loops the compiler vectorises).
                for i in 0..n {
                    regs[i].copy_from_slice(&state[var(i)]);
                }
                let any_refractory = is_refr.iter().any(|&r| r);
                let mut g = [0.0; LANES];
                for i in 0..n {
                    let out: &mut [f64; LANES] = (&mut state[var(i)]).try_into().expect("64 lanes");
                    free.row(i, &regs[..=n], out);
                    if any_refractory {
                        refractory.row(i, &regs[..=n], &mut g);
                        for l in 0..LANES {
                            if is_refr[l] {
                                out[l] = g[l];
                            }
                        }
                    }
                }
            }
            Integrate::Explicit { method, substeps, h_sub, rhs } => {
                let hs = *h_sub;
                let mut x: Vec<Lanes> = (0..n).map(|i| state[var(i)].try_into().expect("64 lanes")).collect();
                // dx/dt at the trial state now in registers 0..n, with clamped variables of refractory lanes 0.
                let deriv = |regs: &mut [Lanes]| -> Vec<Lanes> {
                    let mut k = Vec::with_capacity(n);
                    for (i, code) in rhs.iter().enumerate() {
                        code.run(regs, input);
                        let mut d = regs[code.out];
                        if self.clamped[i] {
                            for l in 0..LANES {
                                if is_refr[l] {
                                    d[l] = 0.0;
                                }
                            }
                        }
                        k.push(d);
                    }
                    k
                };
                let set = |regs: &mut [Lanes], x: &[Lanes], k: Option<(&[Lanes], f64)>| {
                    for i in 0..n {
                        regs[i] = match k {
                            None => x[i],
                            Some((k, c)) => std::array::from_fn(|l| x[i][l] + c * k[i][l]),
                        };
                    }
                };
                for _ in 0..*substeps {
                    set(regs, &x, None);
                    let k1 = deriv(regs);
                    match method {
                        Method::Euler => {
                            for i in 0..n {
                                for l in 0..LANES {
                                    x[i][l] += hs * k1[i][l];
                                }
                            }
                        }
                        Method::Rk2 => {
                            set(regs, &x, Some((&k1, hs)));
                            let k2 = deriv(regs);
                            for i in 0..n {
                                for l in 0..LANES {
                                    x[i][l] += 0.5 * hs * (k1[i][l] + k2[i][l]);
                                }
                            }
                        }
                        Method::Rk4 | Method::Exact => {
                            set(regs, &x, Some((&k1, 0.5 * hs)));
                            let k2 = deriv(regs);
                            set(regs, &x, Some((&k2, 0.5 * hs)));
                            let k3 = deriv(regs);
                            set(regs, &x, Some((&k3, hs)));
                            let k4 = deriv(regs);
                            for i in 0..n {
                                for l in 0..LANES {
                                    x[i][l] += hs / 6.0 * (((k1[i][l] + 2.0 * k2[i][l]) + 2.0 * k3[i][l]) + k4[i][l]);
                                }
                            }
                        }
                    }
                }
                for (i, xi) in x.iter().enumerate() {
                    state[var(i)].copy_from_slice(xi);
                }
            }
        }
        // Refractory counters count down.
        for (l, r) in state[var(n)].iter_mut().enumerate() {
            if is_refr[l] {
                *r -= 1.0;
            }
        }
        // Inputs, with the integrated state in the registers (or, added before the integration, just the state).
        if self.inputs_first {
            for i in 0..n {
                regs[i].copy_from_slice(&state[var(i)]);
            }
        } else {
            self.add_inputs(regs, state, input, &is_refr);
        }
        // Threshold (or forced), then the reset in order.
        self.threshold.run(regs, input);
        let th = &regs[self.threshold.out];
        let mut spikes = input.forced;
        for (l, &t) in th.iter().enumerate() {
            spikes |= ((t != 0.0) as u64) << l;
        }
        if n_lanes < LANES {
            spikes &= (1u64 << n_lanes) - 1;
        }
        if spikes != 0 {
            for (v, add, code) in &self.reset {
                code.run(regs, input);
                let val = &regs[code.out];
                let x = &mut state[var(*v)];
                for l in 0..LANES {
                    if (spikes >> l) & 1 == 1 {
                        x[l] = if *add { x[l] + val[l] } else { val[l] };
                    }
                }
                regs[*v].copy_from_slice(x);
            }
            let r = &mut state[var(n)];
            for (l, x) in r.iter_mut().enumerate() {
                if (spikes >> l) & 1 == 1 {
                    *x = refractory_steps as f64;
                }
            }
        }
        spikes
    }
}
