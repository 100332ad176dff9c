//! Equation-defined neuron models (`model = "equations"`): state variables with units, ODEs, parameters with
//! units, threshold, reset, refractoriness (which variables are clamped) and how each receptor channel's input
//! enters — written by the user in a scenario file, checked, and compiled to a per-step program.
//!
//! ```toml
//! [model]
//! model = "equations"
//! method = "exact"                       # exact (linear systems) | euler | rk2 | rk4; substeps = 1
//! equations = """
//! dV/dt = -(V - E_L)/tau_m + (I_ex + I_in + I_e + I_stim)/C_m : mV
//! dI_ex/dt = -I_ex/tau_syn_ex : pA
//! dI_in/dt = -I_in/tau_syn_in : pA
//! """
//! threshold = "V >= V_th"
//! reset = "V = V_reset"
//! refractory = "t_ref"                   # a parameter or a quantity ("2 ms"); clamp lists what stays fixed
//! clamp = ["V"]
//! init = { V = "E_L" }                   # expressions of parameters; other variables start at 0
//! parameters = { C_m = "250 pF", tau_m = "10 ms", E_L = "-70 mV", V_th = "-55 mV", V_reset = "-70 mV",
//!                t_ref = "2 ms", I_e = "0 pA", tau_syn_ex = "2 ms", tau_syn_in = "2 ms" }
//! inputs = { exc = "I_ex += w", inh = "I_in += w" }   # per receptor channel; w = the arriving weight
//! ```
//!
//! **Names.** State variables (declared by their `d<name>/dt` lines, the first is the membrane potential,
//! recorded as state variable 0), parameters, `I_stim` (the external current of stimuli and gap junctions, pA,
//! constant within a step), `w` in inputs, the constants `pi` and `e`, and unit symbols as literals (`5*mV`).
//! Functions: `exp`, `log`, `sqrt`, `abs`, `min`, `max`, `tanh`. Units are checked: every term of `d<x>/dt`
//! must have the unit of `x` per ms, function arguments of `exp`/`log`/`tanh` must be dimensionless, the two
//! sides of `+`, `-`, comparisons and assignments must agree. Values are held in the working system
//! mV, ms, pA, nS, pF ([`units`]).
//!
//! **Step** (as NEST's and the built-in models'): integrate over the step with the state at its start (refractory
//! neurons keep their `clamp`ed variables fixed and decrement the counter), then add each channel's input (a
//! clamped variable ignores input while refractory, as NEST's `iaf_psc_delta` discards it), then test the
//! threshold (or a forced spike) and apply the reset and the refractory period. With `input_timing = "before"` the
//! inputs are added before the integration instead (LEMS / jNeuroML: an event's effect starts one step earlier; what
//! NeuroML imports use).
//!
//! **Integration.** `exact`: the system must be linear in the state variables and `I_stim` (checked
//! symbolically); its propagator `P = exp(M h)` of the augmented matrix (state, `I_stim`, constant) is computed
//! once (nalgebra's Padé matrix exponential), as NEST and Brian2 do for linear ODEs (Rotter & Diesmann 1999),
//! with a second propagator for refractory neurons. `euler`, `rk2` (Heun) and `rk4` (classical) take `substeps`
//! equal substeps per step.
//!
//! **Execution.** Expressions compile to a flat program over 64-lane registers, evaluated one instruction at a
//! time for a whole block of neurons (each instruction a loop the compiler vectorises); every operation is one
//! IEEE operation in the order written, without fused multiply–add, transcendental functions through
//! [`crate::detmath`] where it has them, so the result is a pure function of the input.
//! **CUDA.** [`cuda_source`] generates the model's kernels (`<name>_update`, `<name>_step` on the common parameter
//! packs) with the interpreter's operations in its order as `__d*_rn` intrinsics; the kernels crate compiles them
//! with NVRTC and, for tests, for the host (`neurotwin_kernels::generated`), where they equal the interpreter bit
//! for bit; the `cuda-host` backend runs that host build in the GPU's step sequence (`neurotwin_sim::generated_models`),
//! the `cuda` backend the NVRTC build on its device.
//! **Native CPU code.** [`native_source`] wraps the same body (`codegen.rs`) as block functions on vectors of lanes,
//! which the CPU backend compiles at run time and runs in place of the interpreter (`neurotwin_sim::native_models`).

mod codegen;
pub mod expr;
mod program;
pub mod units;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{BlockInput, BlockOutput, LANES, ModelError, ReceptorChannel};
use expr::{Ast, Node};
use program::{Builder, Code, Integrate, Program, Rows};
use units::Dim;

/// Integration method of an equation-defined model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exact propagation of a linear system.
    #[default]
    Exact,
    /// Forward Euler.
    Euler,
    /// Heun's method (explicit trapezoid).
    Rk2,
    /// Classical fourth-order Runge–Kutta.
    Rk4,
}

/// When a step's arriving input is added to the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputTiming {
    /// After the step's integration (NEST's and the built-in models' order: input delivered at step n first
    /// changes the state's derivative in step n + 1).
    #[default]
    After,
    /// Before the step's integration (LEMS / jNeuroML: an event changes the state before the next step is
    /// integrated, so its effect begins one step earlier).
    Before,
}

/// An equation-defined model as written in a scenario (`[model]` with `model = "equations"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquationParams {
    /// One ODE per line: `d<var>/dt = <expression> : <unit of var>`; `#` starts a comment.
    pub equations: String,
    /// Spike condition, e.g. `V >= V_th`.
    pub threshold: String,
    /// Assignments applied at a spike, separated by `;` or new lines: `V = V_reset; w += b`.
    #[serde(default)]
    pub reset: String,
    /// Refractory period: a parameter name or a quantity (`"2 ms"`); rounded to whole steps.
    #[serde(default)]
    pub refractory: Option<String>,
    /// Variables held fixed while refractory.
    #[serde(default)]
    pub clamp: Vec<String>,
    /// Parameters: name = quantity (`"250 pF"`).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Per receptor channel: `<var> += <expression of w>`.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    /// Initial values: var = expression of parameters (default 0).
    #[serde(default)]
    pub init: BTreeMap<String, String>,
    #[serde(default)]
    pub method: Method,
    /// Substeps per step (explicit methods).
    #[serde(default = "one")]
    pub substeps: u32,
    /// When arriving input is added: `after` the step's integration (default, NEST) or `before` it (jNeuroML).
    #[serde(default)]
    pub input_timing: InputTiming,
}

fn one() -> u32 {
    1
}

/// A located error: the field (`equations`, `threshold`, …), the line within it (1-based), the column
/// (1-based, characters) and the message.
fn located(field: &str, line: usize, src: &str, pos: usize, msg: impl std::fmt::Display) -> ModelError {
    let col = src[..pos.min(src.len())].chars().count() + 1;
    let at = if field == "equations" || field == "reset" {
        format!("{field} line {line}, column {col}")
    } else {
        format!("{field}, column {col}")
    };
    ModelError::Equation(format!("{at}: {msg}\n    {src}\n    {}^", " ".repeat(col - 1)))
}

/// Plain error without a position.
fn plain(msg: impl Into<String>) -> ModelError {
    ModelError::Equation(msg.into())
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + (ca != *cb) as usize).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// ` (did you mean `k`?)` for the known name `k` nearest to `name` (Levenshtein distance at most 2 or a third of
/// the name), else an empty string.
pub fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let best = known.map(|k| (distance(name, k), k)).min();
    match best {
        Some((d, k)) if d <= 2.max(name.len() / 3) => format!(" (did you mean `{k}`?)"),
        _ => String::new(),
    }
}

/// What a name in an expression refers to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sym {
    State(usize),
    Param(f64, Dim),
    Stim,
    Weight,
}

/// Name resolution and unit checking for one field.
struct Scope<'a> {
    states: &'a [(String, Dim)],
    params: &'a BTreeMap<String, (f64, Dim)>,
    /// `w` allowed (inputs), with the dimension of the target variable.
    weight: Option<Dim>,
    /// Only parameters allowed (init, refractory).
    constant: bool,
}

impl Scope<'_> {
    fn lookup(&self, name: &str) -> Option<(Sym, Dim)> {
        if let Some(i) = self.states.iter().position(|(n, _)| n == name) {
            return (!self.constant).then_some((Sym::State(i), self.states[i].1));
        }
        if let Some(&(v, d)) = self.params.get(name) {
            return Some((Sym::Param(v, d), d));
        }
        match name {
            "I_stim" if !self.constant => Some((Sym::Stim, Dim::AMPERE)),
            "w" => self.weight.map(|d| (Sym::Weight, d)),
            "pi" => Some((Sym::Param(std::f64::consts::PI, Dim::NONE), Dim::NONE)),
            "e" => Some((Sym::Param(std::f64::consts::E, Dim::NONE), Dim::NONE)),
            _ => units::unit(name).map(|(d, k)| (Sym::Param(k, d), d)),
        }
    }

    fn known(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.params.keys().map(String::as_str).collect();
        if !self.constant {
            v.extend(self.states.iter().map(|(n, _)| n.as_str()));
            v.push("I_stim");
        }
        if self.weight.is_some() {
            v.push("w");
        }
        v
    }
}

/// A resolved expression.
#[derive(Clone, Debug, PartialEq)]
enum R {
    Const(f64),
    Sym(Sym),
    Neg(Box<R>),
    Bin(expr::BinOp, Box<R>, Box<R>),
    Pow(Box<R>, i32),
    Call(Func, Vec<R>),
    Cmp(expr::CmpOp, Box<R>, Box<R>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Exp,
    Log,
    Sqrt,
    Abs,
    Min,
    Max,
    Tanh,
}

/// Resolves names and checks units; returns the expression and its dimension. Errors are located in `src`.
fn resolve(a: &Ast, scope: &Scope, field: &str, line: usize, src: &str) -> Result<(R, Dim), ModelError> {
    let err = |pos: usize, msg: String| located(field, line, src, pos, msg);
    Ok(match &a.node {
        Node::Num(v) => (R::Const(*v), Dim::NONE),
        Node::Name(n) => match scope.lookup(n) {
            Some((s, d)) => (R::Sym(s), d),
            None => {
                let what = if scope.constant && scope.states.iter().any(|(s, _)| s == n) {
                    format!("`{n}` is a state variable; only parameters are allowed here")
                } else {
                    format!("unknown name `{n}`{}", suggest(n, scope.known().into_iter()))
                };
                return Err(err(a.pos, what));
            }
        },
        Node::Neg(x) => {
            let (r, d) = resolve(x, scope, field, line, src)?;
            (R::Neg(Box::new(r)), d)
        }
        Node::Bin(op, x, y) => {
            let (rx, dx) = resolve(x, scope, field, line, src)?;
            let (ry, dy) = resolve(y, scope, field, line, src)?;
            let d = match op {
                expr::BinOp::Add | expr::BinOp::Sub => {
                    if dx != dy {
                        let verb = if *op == expr::BinOp::Add { "add" } else { "subtract" };
                        return Err(err(a.pos, format!("cannot {verb} {dy} and {dx} (units differ)")));
                    }
                    dx
                }
                expr::BinOp::Mul => dx.times(dy),
                expr::BinOp::Div => {
                    if ry == R::Const(0.0) {
                        return Err(err(y.pos, "division by the constant 0".into()));
                    }
                    dx.per(dy)
                }
            };
            (R::Bin(*op, Box::new(rx), Box::new(ry)), d)
        }
        Node::Pow(x, n) => {
            let (r, d) = resolve(x, scope, field, line, src)?;
            (R::Pow(Box::new(r), *n), d.powi(*n as i8))
        }
        Node::Call(f, args) => {
            let func = match f.as_str() {
                "exp" => Func::Exp,
                "log" => Func::Log,
                "sqrt" => Func::Sqrt,
                "abs" => Func::Abs,
                "min" => Func::Min,
                "max" => Func::Max,
                "tanh" => Func::Tanh,
                other => {
                    let known = ["exp", "log", "sqrt", "abs", "min", "max", "tanh"];
                    return Err(err(a.pos, format!("unknown function `{other}`{}", suggest(other, known.into_iter()))));
                }
            };
            let arity = if matches!(func, Func::Min | Func::Max) { 2 } else { 1 };
            if args.len() != arity {
                return Err(err(a.pos, format!("`{f}` takes {arity} argument(s), found {}", args.len())));
            }
            let mut rs = Vec::new();
            let mut ds = Vec::new();
            for x in args {
                let (r, d) = resolve(x, scope, field, line, src)?;
                rs.push(r);
                ds.push(d);
            }
            let d = match func {
                Func::Exp | Func::Log | Func::Tanh => {
                    if ds[0] != Dim::NONE {
                        return Err(err(
                            args[0].pos,
                            format!("the argument of `{f}` must be dimensionless, it is in {}", ds[0]),
                        ));
                    }
                    Dim::NONE
                }
                Func::Sqrt => ds[0].sqrt().ok_or_else(|| err(a.pos, format!("`sqrt` of {} has no unit", ds[0])))?,
                Func::Abs => ds[0],
                Func::Min | Func::Max => {
                    if ds[0] != ds[1] {
                        return Err(err(a.pos, format!("`{f}` of {} and {} (units differ)", ds[0], ds[1])));
                    }
                    ds[0]
                }
            };
            (R::Call(func, rs), d)
        }
        Node::Cmp(op, x, y) => {
            let (rx, dx) = resolve(x, scope, field, line, src)?;
            let (ry, dy) = resolve(y, scope, field, line, src)?;
            if dx != dy {
                return Err(err(a.pos, format!("cannot compare {dx} with {dy} (units differ)")));
            }
            (R::Cmp(*op, Box::new(rx), Box::new(ry)), Dim::NONE)
        }
    })
}

/// Polynomial degree in the state variables and `I_stim` (`None`: not polynomial), for the linearity check.
fn degree(r: &R) -> Option<u32> {
    Some(match r {
        R::Const(_) | R::Sym(Sym::Param(..)) | R::Sym(Sym::Weight) => 0,
        R::Sym(Sym::State(_)) | R::Sym(Sym::Stim) => 1,
        R::Neg(x) => degree(x)?,
        R::Bin(expr::BinOp::Add | expr::BinOp::Sub, x, y) => degree(x)?.max(degree(y)?),
        R::Bin(expr::BinOp::Mul, x, y) => degree(x)? + degree(y)?,
        R::Bin(expr::BinOp::Div, x, y) => {
            if degree(y)? != 0 {
                return None;
            }
            degree(x)?
        }
        R::Pow(x, n) => {
            let d = degree(x)?;
            if d > 0 && *n < 0 {
                return None;
            }
            d * (*n).max(0) as u32
        }
        R::Call(_, args) => {
            if args.iter().map(degree).any(|d| d != Some(0)) {
                return None;
            }
            0
        }
        R::Cmp(..) => return None,
    })
}

/// Evaluates an expression with the given state and `I_stim` (compile-time use: constants, linear coefficients).
fn eval(r: &R, x: &[f64], stim: f64) -> f64 {
    match r {
        R::Const(v) => *v,
        R::Sym(Sym::State(i)) => x[*i],
        R::Sym(Sym::Param(v, _)) => *v,
        R::Sym(Sym::Stim) => stim,
        R::Sym(Sym::Weight) => 0.0,
        R::Neg(a) => -eval(a, x, stim),
        R::Bin(op, a, b) => {
            let (a, b) = (eval(a, x, stim), eval(b, x, stim));
            match op {
                expr::BinOp::Add => a + b,
                expr::BinOp::Sub => a - b,
                expr::BinOp::Mul => a * b,
                expr::BinOp::Div => a / b,
            }
        }
        R::Pow(a, n) => program::powi(eval(a, x, stim), *n),
        R::Call(f, args) => {
            let a: Vec<f64> = args.iter().map(|a| eval(a, x, stim)).collect();
            program::call(*f, &a)
        }
        R::Cmp(..) => f64::NAN,
    }
}

/// One ODE as parsed.
struct Ode {
    var: String,
    dim: Dim,
    rhs: Ast,
    line: usize,
    src: String,
}

/// Splits `equations` into ODE lines `d<var>/dt = <rhs> : <unit>`.
fn parse_odes(text: &str) -> Result<Vec<Ode>, ModelError> {
    let mut out: Vec<Ode> = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let line = k + 1;
        let src = raw.split('#').next().unwrap_or("").trim_end();
        if src.trim().is_empty() {
            continue;
        }
        let at = |pos: usize, msg: String| located("equations", line, src, pos, msg);
        let Some(eq) = src.find('=') else {
            return Err(at(src.len(), "expected `d<var>/dt = <expression> : <unit>`".into()));
        };
        let lhs = src[..eq].trim();
        let lhs_pos = src.len() - src.trim_start().len();
        let var = lhs
            .strip_prefix('d')
            .and_then(|s| s.strip_suffix("/dt"))
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| at(lhs_pos, format!("the left side must be `d<var>/dt`, found `{lhs}`")))?;
        let Some(colon) = src.rfind(':') else {
            return Err(at(
                src.len(),
                format!("the unit of `{var}` is missing: end the line with `: <unit>` (e.g. `: mV`)"),
            ));
        };
        if colon < eq {
            return Err(at(colon, "expected `d<var>/dt = <expression> : <unit>`".into()));
        }
        let unit_text = &src[colon + 1..];
        let (dim, scale) = units::parse_unit(unit_text).map_err(|m| at(colon + 1, m))?;
        if scale != 1.0 {
            return Err(at(
                colon + 1,
                format!(
                    "state variables are held in mV, ms, pA, nS, pF and their combinations: write `: {dim}` instead of `:{unit_text}`"
                ),
            ));
        }
        if out.iter().any(|o| o.var == var) {
            return Err(at(lhs_pos, format!("`{var}` has two equations")));
        }
        // Parse the right side on the line's own text so that positions are columns of the line.
        let rhs_src = &src[..colon];
        let blanked: String = rhs_src.char_indices().map(|(i, c)| if i <= eq { ' ' } else { c }).collect();
        let rhs = expr::parse(&blanked, false).map_err(|e| at(e.pos, e.msg))?;
        out.push(Ode { var: var.to_string(), dim, rhs, line, src: src.to_string() });
    }
    if out.is_empty() {
        return Err(plain(
            "`equations` declares no state variable: write one `d<var>/dt = <expression> : <unit>` per line",
        ));
    }
    Ok(out)
}

/// A statement `var = expr` or `var += expr` (reset, inputs).
struct Assign {
    var: usize,
    add: bool,
    rhs: R,
}

fn parse_assign(field: &str, line: usize, src: &str, scope: &Scope, only_add: bool) -> Result<Assign, ModelError> {
    let at = |pos: usize, msg: String| located(field, line, src, pos, msg);
    let (op_pos, add) = match (src.find("+="), src.find('=')) {
        (Some(p), _) => (p, true),
        (None, Some(p)) => (p, false),
        _ => return Err(at(src.len(), "expected `<var> = <expression>` or `<var> += <expression>`".into())),
    };
    if only_add && !add {
        return Err(at(op_pos, "inputs add to a variable: write `<var> += <expression of w>`".into()));
    }
    let name = src[..op_pos].trim();
    let name_pos = src.len() - src.trim_start().len();
    let var = scope.states.iter().position(|(n, _)| n == name).ok_or_else(|| {
        at(
            name_pos,
            format!("`{name}` is not a state variable{}", suggest(name, scope.states.iter().map(|s| s.0.as_str()))),
        )
    })?;
    let skip = op_pos + if add { 2 } else { 1 };
    let blanked: String = src.char_indices().map(|(i, c)| if i < skip { ' ' } else { c }).collect();
    let ast = expr::parse(&blanked, false).map_err(|e| at(e.pos, e.msg))?;
    let (rhs, d) = resolve(&ast, scope, field, line, src)?;
    let want = scope.states[var].1;
    if d != want {
        return Err(at(ast.pos, format!("`{name}` is in {want}, the expression in {d}")));
    }
    Ok(Assign { var, add, rhs })
}

/// Per-step constants and the compiled program of one parameter set.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// State variable names in block order (then `refractory`).
    pub names: Vec<String>,
    pub initial: Vec<f64>,
    pub refractory_steps: u32,
    /// Per variable: held fixed while refractory.
    pub clamped: Vec<bool>,
    /// The structural text of the model (equations, threshold, reset, inputs, clamp, method), to check that all
    /// parameter sets of a simulation share one model.
    pub signature: String,
    program: Program,
}

/// Compiles `p` for `channels` and time step `h` (ms).
pub fn compile(p: &EquationParams, channels: &[ReceptorChannel], h: f64) -> Result<Compiled, ModelError> {
    // Parameters.
    let mut params = BTreeMap::new();
    for (name, text) in &p.parameters {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(plain(format!("parameters: `{name}` is not a name (letters, digits, `_`)")));
        }
        let q = units::parse_quantity(text).map_err(|m| plain(format!("parameters.{name} = \"{text}\": {m}")))?;
        params.insert(name.clone(), q);
    }
    let odes = parse_odes(&p.equations)?;
    let states: Vec<(String, Dim)> = odes.iter().map(|o| (o.var.clone(), o.dim)).collect();
    for (name, _) in &states {
        if params.contains_key(name) || name == "I_stim" || name == "w" {
            return Err(plain(format!("`{name}` is both a state variable and a parameter (or a reserved name)")));
        }
    }
    let scope = Scope { states: &states, params: &params, weight: None, constant: false };
    // Right-hand sides with units per ms.
    let mut rhs = Vec::new();
    for o in &odes {
        let (r, d) = resolve(&o.rhs, &scope, "equations", o.line, &o.src)?;
        let want = o.dim.per(Dim::SECOND);
        if d != want {
            return Err(located(
                "equations",
                o.line,
                &o.src,
                o.rhs.pos,
                format!("d{}/dt must be in {want} ({} per ms); the right side is in {d}", o.var, o.dim),
            ));
        }
        rhs.push(r);
    }
    // Threshold.
    let th_ast = expr::parse(&p.threshold, true).map_err(|e| located("threshold", 1, &p.threshold, e.pos, e.msg))?;
    if !matches!(th_ast.node, Node::Cmp(..)) {
        return Err(located("threshold", 1, &p.threshold, th_ast.pos, "expected a comparison such as `V >= V_th`"));
    }
    let (threshold, _) = resolve(&th_ast, &scope, "threshold", 1, &p.threshold)?;
    // Reset statements.
    let mut reset = Vec::new();
    for (k, stmt) in p.reset.split([';', '\n']).enumerate() {
        if stmt.trim().is_empty() {
            continue;
        }
        reset.push(parse_assign("reset", k + 1, stmt, &scope, false)?);
    }
    // Inputs per channel.
    let mut inputs = Vec::new();
    for c in channels {
        let Some(text) = p.inputs.get(&c.name) else {
            return Err(plain(format!(
                "inputs: the network's receptor channel `{}` has no entry; add e.g. `{} = \"{} += w\"` to [model.inputs]",
                c.name,
                c.name,
                states.get(1).map_or(states[0].0.as_str(), |s| s.0.as_str())
            )));
        };
        // The weight has the unit of the target variable.
        let target = text.split("+=").next().unwrap_or("").trim();
        let d = states.iter().find(|(n, _)| n == target).map_or(Dim::NONE, |s| s.1);
        let s = Scope { weight: Some(d), ..Scope { states: &states, params: &params, weight: None, constant: false } };
        inputs.push(parse_assign(&format!("inputs.{}", c.name), 1, text, &s, true)?);
    }
    for name in p.inputs.keys() {
        if !channels.iter().any(|c| &c.name == name) {
            let known: Vec<_> = channels.iter().map(|c| c.name.as_str()).collect();
            return Err(plain(format!(
                "inputs.{name}: no receptor channel `{name}` in this network (channels: {})",
                known.join(", ")
            )));
        }
    }
    // Refractoriness and clamping.
    let constant = Scope { states: &states, params: &params, weight: None, constant: true };
    let refractory_steps = match &p.refractory {
        None => 0,
        Some(text) => {
            let (v, d) = match params.get(text.trim()) {
                Some(&q) => q,
                None => units::parse_quantity(text)
                    .map_err(|m| plain(format!("refractory = \"{text}\": {m} (or name a parameter)")))?,
            };
            if d != Dim::SECOND || v.is_nan() || v < 0.0 {
                return Err(plain(format!("refractory = \"{text}\": must be a duration >= 0 (ms), it is {v} {d}")));
            }
            (v / h).round() as u32
        }
    };
    let mut clamped = vec![false; states.len()];
    for name in &p.clamp {
        let i = states.iter().position(|(n, _)| n == name).ok_or_else(|| {
            plain(format!(
                "clamp: `{name}` is not a state variable{}",
                suggest(name, states.iter().map(|s| s.0.as_str()))
            ))
        })?;
        clamped[i] = true;
    }
    // Initial values.
    let mut initial = vec![0.0; states.len()];
    for (name, text) in &p.init {
        let i = states.iter().position(|(n, _)| n == name).ok_or_else(|| {
            plain(format!("init.{name}: not a state variable{}", suggest(name, states.iter().map(|s| s.0.as_str()))))
        })?;
        let ast = expr::parse(text, false).map_err(|e| located(&format!("init.{name}"), 1, text, e.pos, e.msg))?;
        let (r, d) = resolve(&ast, &constant, &format!("init.{name}"), 1, text)?;
        if d != states[i].1 {
            return Err(located(
                &format!("init.{name}"),
                1,
                text,
                ast.pos,
                format!("`{name}` is in {}, the expression in {d}", states[i].1),
            ));
        }
        initial[i] = eval(&r, &[], 0.0);
    }
    if p.substeps == 0 || p.substeps > 10_000 {
        return Err(plain(format!("substeps = {}: must be 1 ..= 10000", p.substeps)));
    }
    // The program.
    let n = states.len();
    let mut b = Builder::new(n);
    let integrate = match p.method {
        Method::Exact => {
            for (i, r) in rhs.iter().enumerate() {
                if degree(r).is_none_or(|d| d > 1) {
                    return Err(located(
                        "equations",
                        odes[i].line,
                        &odes[i].src,
                        odes[i].rhs.pos,
                        format!(
                            "method = \"exact\" needs equations linear in the state variables and I_stim; d{}/dt is \
                             not (use method = \"rk4\", \"rk2\" or \"euler\")",
                            odes[i].var
                        ),
                    ));
                }
            }
            let row_error = |i: usize| {
                located(
                    "equations",
                    odes[i].line,
                    &odes[i].src,
                    odes[i].rhs.pos,
                    format!(
                        "a coefficient of d{}/dt is not finite (a division by a parameter that is 0?)",
                        odes[i].var
                    ),
                )
            };
            Integrate::Exact {
                free: Rows::new(propagator(&rhs, n, h, &vec![false; n]).map_err(row_error)?),
                refractory: Rows::new(propagator(&rhs, n, h, &clamped).map_err(row_error)?),
            }
        }
        m => Integrate::Explicit {
            method: m,
            substeps: p.substeps,
            h_sub: h / p.substeps as f64,
            rhs: rhs.iter().map(|r| b.code(r, None)).collect(),
        },
    };
    let inputs: Vec<(usize, Code)> =
        inputs.iter().enumerate().map(|(ch, a)| (a.var, b.code(&a.rhs, Some(ch)))).collect();
    let threshold = b.code(&threshold, None);
    let reset: Vec<(usize, bool, Code)> = reset.iter().map(|a| (a.var, a.add, b.code(&a.rhs, None))).collect();
    let program = Program {
        n,
        n_regs: b.n_regs(),
        integrate,
        inputs,
        inputs_first: p.input_timing == InputTiming::Before,
        threshold,
        reset,
        clamped: clamped.clone(),
    };
    let mut names: Vec<String> = states.iter().map(|s| s.0.clone()).collect();
    names.push("refractory".into());
    initial.push(0.0);
    let signature = format!(
        "{}|{}|{}|{:?}|{:?}|{:?}|{}|{:?}",
        p.equations, p.threshold, p.reset, p.inputs, p.clamp, p.method, p.substeps, p.input_timing
    );
    Ok(Compiled { names, initial, refractory_steps, clamped, signature, program })
}

/// Exact propagator of the linear system `rhs` over `h`: row `i` gives `x_i(t + h)` as
/// `Σ_j P[i][j] x_j(t) + P[i][n] I_stim + P[i][n + 1]`. Rows of `held` variables stay identity (clamped).
fn propagator(rhs: &[R], n: usize, h: f64, held: &[bool]) -> Result<Vec<Vec<f64>>, usize> {
    let m = n + 2;
    let mut a = nalgebra::DMatrix::<f64>::zeros(m, m);
    for (i, r) in rhs.iter().enumerate() {
        if held[i] {
            continue;
        }
        let zero = vec![0.0; n];
        let c = eval(r, &zero, 0.0);
        for j in 0..n {
            let mut e = zero.clone();
            e[j] = 1.0;
            a[(i, j)] = eval(r, &e, 0.0) - c;
        }
        a[(i, n)] = eval(r, &zero, 1.0) - c;
        a[(i, n + 1)] = c;
        if (0..m).any(|j| !a[(i, j)].is_finite()) {
            return Err(i);
        }
    }
    let p = (a * h).exp();
    Ok((0..n).map(|i| (0..m).map(|j| p[(i, j)]).collect()).collect())
}

/// CUDA C of the model with parameter sets `sets` (one structure, compiled by [`compile`]): kernels `<name>_update`
/// (`nt_model_args`) and `<name>_step` (`nt_neuron_step_args`), the interpreter's operations in its order. The
/// `#include` lines name headers of the kernels crate (`neurotwin_kernels::HEADERS`). `name` must be a C
/// identifier.
pub fn cuda_source(name: &str, sets: &[Compiled]) -> Result<String, ModelError> {
    check_c_identifier(name)?;
    let first = sets.first().ok_or(ModelError::NoParameterSets)?;
    if sets.iter().any(|c| c.signature != first.signature) {
        return Err(plain("parameter sets of different models"));
    }
    let programs: Vec<&Program> = sets.iter().map(|c| &c.program).collect();
    let refr: Vec<u32> = sets.iter().map(|c| c.refractory_steps).collect();
    codegen::cuda_source(name, &programs, &refr).map_err(plain)
}

fn check_c_identifier(name: &str) -> Result<(), ModelError> {
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(plain(format!("`{name}` is not a C identifier")));
    }
    Ok(())
}

/// C++ of the model's native CPU block function named `name` (C linkage; see `codegen::native_source` for the
/// signature), built at run time by `neurotwin_kernels::generated::native_build` and run by the CPU backend in
/// place of the interpreter through [`update_block_with`] with [`native_constants`]: the interpreter's operations
/// in its order, so the results are the same bits.
pub fn native_source(name: &str, sets: &[Compiled]) -> Result<String, ModelError> {
    check_c_identifier(name)?;
    let first = sets.first().ok_or(ModelError::NoParameterSets)?;
    if sets.iter().any(|c| c.signature != first.signature) {
        return Err(plain("parameter sets of different models"));
    }
    let programs: Vec<&Program> = sets.iter().map(|c| &c.program).collect();
    codegen::native_source(name, &programs).map_err(plain)
}

/// Makes the parameter sets of one simulation leave out the same zero terms of their exact updates (the
/// interpreter and generated code of a model then compute the same terms for every set; see `program::Rows`).
/// [`CompiledModel::compile`](crate::CompiledModel::compile) does this.
pub fn specialize(sets: &mut [Compiled]) {
    let mut programs: Vec<&mut Program> = sets.iter_mut().map(|c| &mut c.program).collect();
    program::specialize(&mut programs);
}

/// The number of receptor channels the model takes input from (one `inputs` entry each).
pub fn n_inputs(c: &Compiled) -> usize {
    c.program.inputs.len()
}

/// The constant table the native block function reads for parameter set `c` (its `K` argument).
pub fn native_constants(c: &Compiled) -> Vec<f64> {
    codegen::constants(&c.program)
}

/// Advances `input.n` lanes by one step (all lanes of one block share the program; per-lane parameter sets
/// select their constants).
pub fn update_block(sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    update_block_with(sets, state, input, out, |set, st| {
        sets[set].program.run(st, input, sets[set].refractory_steps, input.n)
    })
}

/// [`update_block`] with the step of a whole block of one parameter set given by `step(set, state)` (returning
/// the spike mask of the 64 lanes): the interpreter or the native block function.
pub fn update_block_with(
    sets: &[Compiled],
    state: &mut [f64],
    input: &BlockInput,
    out: &mut BlockOutput,
    step: impl Fn(usize, &mut [f64]) -> u64,
) {
    let set0 = input.param_set[0] as usize;
    if input.param_set[..input.n].iter().all(|&s| s as usize == set0) {
        let spikes = step(set0, state);
        finish(spikes, input.n, out);
        return;
    }
    // Mixed parameter sets in one block: one pass per set over its lanes (rare: populations are contiguous).
    let mut done = 0u64;
    for l in 0..input.n {
        if (done >> l) & 1 == 1 {
            continue;
        }
        let set = input.param_set[l] as usize;
        let mask: u64 = (0..input.n).filter(|&k| input.param_set[k] as usize == set).fold(0, |m, k| m | 1 << k);
        let mut scratch = state.to_vec();
        let spikes = step(set, &mut scratch);
        let n_state = sets[set].names.len();
        for v in 0..n_state {
            for k in 0..input.n {
                if (mask >> k) & 1 == 1 {
                    state[v * LANES + k] = scratch[v * LANES + k];
                }
            }
        }
        finish(spikes & mask, input.n, out);
        done |= mask;
    }
}

fn finish(spikes: u64, n: usize, out: &mut BlockOutput) {
    crate::model::record_spikes(if n == LANES { spikes } else { spikes & ((1u64 << n) - 1) }, out);
}

#[cfg(test)]
mod tests;
