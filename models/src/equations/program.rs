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
enum Instr {
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
    instrs: Vec<Instr>,
    out: Reg,
}

/// How the state advances over one step.
#[derive(Clone, Debug, PartialEq)]
pub enum Integrate {
    /// Linear system: `x_i ← Σ_j P[i][j] x_j + P[i][n] I_stim + P[i][n + 1]`, `refractory` for refractory lanes.
    Exact { free: Vec<Vec<f64>>, refractory: Vec<Vec<f64>> },
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

/// The built-in functions, deterministic: `exp` and `tanh` through [`detmath::exp`], `sqrt` correctly rounded.
/// `log` is the platform's (`f64::ln`).
pub fn call(f: Func, a: &[f64]) -> f64 {
    match f {
        Func::Exp => detmath::exp(a[0]),
        Func::Log => a[0].ln(),
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

/// One row of the exact update for every lane (or only the lanes of `only`):
/// `out = ((P[0] x_0 + P[1] x_1) + …) + P[n] I_stim + P[n + 1]`, with `x_j = regs[j]` and `I_stim = regs[n]`.
#[inline(always)]
fn exact_row(p: &[f64], regs: &[Lanes], out: &mut [f64], only: Option<&[bool; LANES]>) {
    let n = regs.len() - 1;
    let out: &mut [f64; LANES] = (&mut out[..LANES]).try_into().expect("64 lanes");
    match only {
        None => {
            for l in 0..LANES {
                out[l] = p[0] * regs[0][l];
            }
            for (j, x) in regs.iter().enumerate().take(n).skip(1) {
                for l in 0..LANES {
                    out[l] += p[j] * x[l];
                }
            }
            for l in 0..LANES {
                out[l] += p[n] * regs[n][l];
                out[l] += p[n + 1];
            }
        }
        Some(mask) => {
            for l in 0..LANES {
                if mask[l] {
                    let mut acc = p[0] * regs[0][l];
                    for (j, x) in regs.iter().enumerate().take(n).skip(1) {
                        acc += p[j] * x[l];
                    }
                    acc += p[n] * regs[n][l];
                    acc += p[n + 1];
                    out[l] = acc;
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
                // the free propagator (a loop the compiler vectorises), then the refractory lanes again with theirs.
                for i in 0..n {
                    regs[i].copy_from_slice(&state[var(i)]);
                }
                let any_refractory = is_refr.iter().any(|&r| r);
                for i in 0..n {
                    let out: &mut [f64] = &mut state[var(i)];
                    exact_row(&free[i], &regs[..=n], out, None);
                    if any_refractory {
                        exact_row(&refractory[i], &regs[..=n], out, Some(&is_refr));
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

/// Generated CUDA C (`cuda_source`): straight-line code per neuron mirroring [`Program::run`] operation by
/// operation.
mod cuda {
    use super::*;
    use std::fmt::Write;

    /// Collects the constants of one program in emission order (the same for every set of one model).
    fn constants(p: &Program) -> Vec<f64> {
        fn push(k: &mut Vec<f64>, c: &Code) {
            for ins in &c.instrs {
                if let Instr::Const(_, v) = ins {
                    k.push(*v);
                }
            }
        }
        let mut k = Vec::new();
        match &p.integrate {
            Integrate::Exact { free, refractory } => {
                // Propagator rows come first (see `cuda_source`).
                k.extend(free.iter().flatten().copied());
                k.extend(refractory.iter().flatten().copied());
            }
            Integrate::Explicit { h_sub, rhs, .. } => {
                k.extend([*h_sub, 0.5 * h_sub, h_sub / 6.0]);
                rhs.iter().for_each(|c| push(&mut k, c));
            }
        }
        p.inputs.iter().for_each(|(_, c)| push(&mut k, c));
        push(&mut k, &p.threshold);
        p.reset.iter().for_each(|(_, _, c)| push(&mut k, c));
        k
    }

    /// The text being generated and the position in the per-set constant table.
    struct Emitter {
        out: String,
        next_const: usize,
        n: usize,
        /// The receptor channel `w` refers to (inputs).
        channel: Option<usize>,
    }

    impl Emitter {
        fn reg(&self, r: Reg) -> String {
            if r < self.n {
                format!("s{r}")
            } else if r == self.n {
                "stim".into()
            } else {
                format!("r{r}")
            }
        }

        fn code(&mut self, c: &Code, ind: &str) -> Result<String, String> {
            for ins in &c.instrs {
                let line = match *ins {
                    Instr::Const(d, _) => {
                        let k = self.next_const;
                        self.next_const += 1;
                        format!("const double r{d} = K[{k}];")
                    }
                    Instr::Syn(d, ch) => {
                        let ch = self.channel.unwrap_or(ch);
                        format!("const double r{d} = in[{ch}u * 64u + l];")
                    }
                    Instr::Neg(d, a) => format!("const double r{d} = -{};", self.reg(a)),
                    Instr::Add(d, a, b) => format!("const double r{d} = __dadd_rn({}, {});", self.reg(a), self.reg(b)),
                    Instr::Sub(d, a, b) => format!("const double r{d} = __dsub_rn({}, {});", self.reg(a), self.reg(b)),
                    Instr::Mul(d, a, b) => format!("const double r{d} = __dmul_rn({}, {});", self.reg(a), self.reg(b)),
                    Instr::Div(d, a, b) => format!("const double r{d} = __ddiv_rn({}, {});", self.reg(a), self.reg(b)),
                    Instr::Powi(d, a, n) => {
                        let mut e = "1.0".to_string();
                        for _ in 0..n.unsigned_abs() {
                            e = format!("__dmul_rn({e}, {})", self.reg(a));
                        }
                        if n < 0 {
                            e = format!("__ddiv_rn(1.0, {e})");
                        }
                        format!("const double r{d} = {e};")
                    }
                    Instr::Call(d, f, a, b) => {
                        let (x, y) = (self.reg(a), self.reg(b));
                        let e = match f {
                            Func::Exp => format!("nt_exp({x})"),
                            Func::Sqrt => format!("__dsqrt_rn({x})"),
                            Func::Abs => {
                                format!("__longlong_as_double(__double_as_longlong({x}) & 0x7FFFFFFFFFFFFFFFLL)")
                            }
                            Func::Min => format!("({y} < {x} ? {y} : {x})"),
                            Func::Max => format!("({y} > {x} ? {y} : {x})"),
                            Func::Tanh => format!(
                                "__ddiv_rn(__dsub_rn(nt_exp(__dmul_rn(2.0, {x})), 1.0), __dadd_rn(nt_exp(__dmul_rn(2.0, {x})), 1.0))"
                            ),
                            Func::Log => {
                                return Err("`log` has no deterministic device implementation yet: generated kernels \
                                            refuse it (the CPU backend runs it)"
                                    .into());
                            }
                        };
                        format!("const double r{d} = {e};")
                    }
                    Instr::Cmp(d, op, a, b) => {
                        let o = match op {
                            crate::equations::expr::CmpOp::Ge => ">=",
                            crate::equations::expr::CmpOp::Gt => ">",
                            crate::equations::expr::CmpOp::Le => "<=",
                            crate::equations::expr::CmpOp::Lt => "<",
                        };
                        format!("const double r{d} = ({} {o} {}) ? 1.0 : 0.0;", self.reg(a), self.reg(b))
                    }
                };
                let _ = writeln!(self.out, "{ind}{line}");
            }
            Ok(self.reg(c.out))
        }
    }

    impl Program {
        /// CUDA C of this model for the parameter sets `sets` (this program first; all of one structure): kernels
        /// `<name>_update` (`nt_model_args`, state block-major with `n + 1` variables, the last the refractory
        /// counter; per-set constants in a table indexed by `param_set`) and `<name>_step` (`nt_neuron_step_args`,
        /// the inputs gathered as for every model). Every operation is the interpreter's, in its order, as a
        /// separately rounded `__d*_rn` intrinsic; `exp` through `nt_exp`. The `#include` lines name the kernels
        /// crate's headers.
        pub fn cuda_source(name: &str, sets: &[&Program], refractory_steps: &[u32]) -> Result<String, String> {
            let p = sets[0];
            let n = p.n;
            let table: Vec<Vec<f64>> = sets.iter().map(|s| constants(s)).collect();
            let width = table[0].len().max(1);
            if table.iter().any(|t| t.len() != table[0].len()) {
                return Err("parameter sets of different structure".into());
            }
            let mut e = Emitter { out: String::new(), next_const: 0, n, channel: None };
            let w = &mut e.out;
            let _ = writeln!(
                w,
                "// Generated by neurotwin (models/src/equations/program.rs) for an equation-defined model."
            );
            let _ = writeln!(w, "#ifndef NT_KERNEL\n#define NT_KERNEL extern \"C\" __global__\n#endif");
            for h in ["detmath.cuh", "philox.cuh", "packs.cuh", "neuron_input.cuh"] {
                let _ = writeln!(w, "#include \"{h}\"");
            }
            let _ = writeln!(w, "static __device__ const double nt_eq_{name}_k[{}][{width}] = {{", sets.len());
            for t in &table {
                let vals: Vec<String> = t.iter().map(|v| format!("{v:e}")).collect();
                let _ = writeln!(w, "    {{{}}},", if vals.is_empty() { "0.0".to_string() } else { vals.join(", ") });
            }
            let _ = writeln!(w, "}};");
            let _ = writeln!(
                w,
                "static __device__ const double nt_eq_{name}_refr[{}] = {{{}}};",
                sets.len(),
                refractory_steps.iter().map(|r| format!("{r}.0")).collect::<Vec<_>>().join(", ")
            );
            let _ = writeln!(
                w,
                "static __device__ __forceinline__ void nt_eq_{name}_one(const nt_model_args& a, const unsigned int i) {{"
            );
            let _ = writeln!(w, "    if (i >= a.n_neurons) {{\n        return;\n    }}");
            let _ = writeln!(w, "    const unsigned int b = i / 64u;\n    const unsigned int l = i % 64u;");
            let _ = writeln!(w, "    double* st = a.state + (unsigned long long)b * {}u * 64u;", n + 1);
            let _ = writeln!(w, "    const double* in = a.syn + (unsigned long long)b * a.n_channels * 64u;");
            let _ = writeln!(w, "    const unsigned int set = a.param_set[i];");
            let _ = writeln!(w, "    const double* K = nt_eq_{name}_k[set];\n    (void)K;\n    (void)in;");
            for v in 0..n {
                let _ = writeln!(w, "    double x{v} = st[{v}u * 64u + l];");
            }
            let _ = writeln!(w, "    const double stim = a.i_ext[i];\n    (void)stim;");
            let _ = writeln!(w, "    double refr = st[{n}u * 64u + l];\n    const bool is_refr = refr > 0.0;");
            // The integration is emitted into its own buffer: with `inputs_first` the inputs come before it in the
            // kernel, while their constants follow the integration's in the table (`constants`).
            let head = std::mem::take(w);
            match &p.integrate {
                Integrate::Exact { .. } => {
                    let m = n + 2;
                    let _ = writeln!(w, "    const double* P = is_refr ? K + {} : K;", n * m);
                    for i in 0..n {
                        let row = i * m;
                        let mut acc = format!("__dmul_rn(P[{row}], x0)");
                        for j in 1..n {
                            acc = format!("__dadd_rn({acc}, __dmul_rn(P[{}], x{j}))", row + j);
                        }
                        acc =
                            format!("__dadd_rn(__dadd_rn({acc}, __dmul_rn(P[{}], stim)), P[{}])", row + n, row + n + 1);
                        let _ = writeln!(w, "    const double y{i} = {acc};");
                    }
                    for i in 0..n {
                        let _ = writeln!(w, "    x{i} = y{i};");
                    }
                    e.next_const = 2 * n * m;
                }
                Integrate::Explicit { method, substeps, rhs, .. } => {
                    e.next_const = 3;
                    let _ = writeln!(
                        w,
                        "    const double hs = K[0], half_hs = K[1], sixth_hs = K[2];\n    (void)half_hs;\n    (void)sixth_hs;"
                    );
                    let _ = writeln!(w, "    for (unsigned int sub = 0; sub < {substeps}u; ++sub) {{");
                    let stages: &[(&str, Option<(&str, &str)>)] = match method {
                        Method::Euler => &[("k1", None)],
                        Method::Rk2 => &[("k1", None), ("k2", Some(("k1", "hs")))],
                        Method::Rk4 | Method::Exact => &[
                            ("k1", None),
                            ("k2", Some(("k1", "half_hs"))),
                            ("k3", Some(("k2", "half_hs"))),
                            ("k4", Some(("k3", "hs"))),
                        ],
                    };
                    let start = e.next_const;
                    for (k, trial) in stages {
                        for v in 0..n {
                            let s = match trial {
                                None => format!("x{v}"),
                                Some((prev, c)) => format!("__dadd_rn(x{v}, __dmul_rn({c}, {prev}_{v}))"),
                            };
                            let _ = writeln!(e.out, "        const double {k}_s{v} = {s};");
                        }
                        for v in 0..n {
                            let _ = writeln!(e.out, "        double {k}_{v};");
                        }
                        let _ = writeln!(e.out, "        {{");
                        for v in 0..n {
                            let _ =
                                writeln!(e.out, "            const double s{v} = {k}_s{v};\n            (void)s{v};");
                        }
                        e.next_const = start;
                        for (v, c) in rhs.iter().enumerate() {
                            let _ = writeln!(e.out, "            {{");
                            let r = e.code(c, "                ")?;
                            let clamp = if p.clamped[v] { " if (is_refr) { v = 0.0; }" } else { "" };
                            let _ = writeln!(
                                e.out,
                                "                double v = {r};{clamp}\n                {k}_{v} = v;\n            }}"
                            );
                        }
                        let _ = writeln!(e.out, "        }}");
                    }
                    for v in 0..n {
                        let upd = match method {
                            Method::Euler => format!("__dmul_rn(hs, k1_{v})"),
                            Method::Rk2 => format!("__dmul_rn(half_hs, __dadd_rn(k1_{v}, k2_{v}))"),
                            Method::Rk4 | Method::Exact => format!(
                                "__dmul_rn(sixth_hs, __dadd_rn(__dadd_rn(__dadd_rn(k1_{v}, __dmul_rn(2.0, k2_{v})), __dmul_rn(2.0, k3_{v})), k4_{v}))"
                            ),
                        };
                        let _ = writeln!(e.out, "        x{v} = __dadd_rn(x{v}, {upd});");
                    }
                    let _ = writeln!(e.out, "    }}");
                }
            }
            let integration = std::mem::take(&mut e.out);
            // The inputs, with the state in s0.. (declared by the caller's scope).
            for (ch, (v, c)) in p.inputs.iter().enumerate() {
                e.channel = Some(ch);
                let _ = writeln!(e.out, "    {{");
                let r = e.code(c, "        ")?;
                if p.clamped[*v] {
                    let _ = writeln!(
                        e.out,
                        "        if (!is_refr) {{\n            x{v} = __dadd_rn(x{v}, {r});\n        }}\n        s{v} = x{v};\n    }}"
                    );
                } else {
                    let _ = writeln!(e.out, "        x{v} = __dadd_rn(x{v}, {r});\n        s{v} = x{v};\n    }}");
                }
            }
            e.channel = None;
            let inputs = std::mem::take(&mut e.out);
            let state_regs: String = (0..n).map(|v| format!("    double s{v} = x{v};\n    (void)s{v};\n")).collect();
            e.out = head;
            if p.inputs_first {
                let _ = write!(e.out, "    {{\n{state_regs}{inputs}    }}\n{integration}");
            } else {
                e.out.push_str(&integration);
            }
            let _ = writeln!(e.out, "    if (is_refr) {{\n        refr = __dsub_rn(refr, 1.0);\n    }}");
            e.out.push_str(&state_regs);
            if !p.inputs_first {
                e.out.push_str(&inputs);
            }
            let _ = writeln!(e.out, "    double th;\n    {{");
            let r = e.code(&p.threshold, "        ")?;
            let _ = writeln!(e.out, "        th = {r};\n    }}");
            let _ = writeln!(e.out, "    const bool spike = th != 0.0 || ((a.forced[b] >> l) & 1ull) == 1ull;");
            let _ = writeln!(e.out, "    if (spike) {{");
            for (v, add, c) in &p.reset {
                let _ = writeln!(e.out, "        {{");
                let r = e.code(c, "            ")?;
                let val = if *add { format!("__dadd_rn(x{v}, {r})") } else { r };
                let _ = writeln!(e.out, "            x{v} = {val};\n            s{v} = x{v};\n        }}");
            }
            let _ = writeln!(e.out, "        refr = nt_eq_{name}_refr[set];\n    }}");
            for v in 0..n {
                let _ = writeln!(e.out, "    st[{v}u * 64u + l] = x{v};");
            }
            let _ = writeln!(e.out, "    st[{n}u * 64u + l] = refr;\n    a.spiked[i] = spike ? 1 : 0;\n}}");
            let _ = writeln!(
                e.out,
                "NT_KERNEL void {name}_update(const nt_model_args a) {{\n    nt_eq_{name}_one(a, blockIdx.x * blockDim.x + threadIdx.x);\n}}"
            );
            let _ = writeln!(
                e.out,
                "NT_KERNEL void {name}_step(const nt_neuron_step_args a) {{\n    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;\n    if (nt_neuron_inputs(a, i)) {{\n        nt_eq_{name}_one(a.model, i);\n    }}\n}}"
            );
            Ok(e.out)
        }
    }
}
