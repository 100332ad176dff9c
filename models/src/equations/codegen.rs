//! Generated C of an equation-defined model: one neuron's step as straight-line code, mirroring
//! [`Program::run`](super::program::Program) operation by operation, in two wrappers around one body:
//! - **CUDA kernels** ([`cuda_source`]): one thread per neuron, `<name>_update` and `<name>_step`;
//! - **native CPU block functions** ([`native_source`]): the same body on vectors of lanes (GCC/Clang vector
//!   extensions, the kernels crate's `host/native.h`), compiled at run time by the system C++ compiler
//!   (`neurotwin_kernels::generated::native_build`), the CPU backend's engine for these models.
//!
//! The body is written in a small vocabulary each wrapper defines: `nt_real` (a double on the GPU, a vector of
//! lanes on the CPU), `nt_mask` (a condition), `nt_bc` (a constant), `nt_sel` (select), `nt_load`/`nt_store`,
//! `nt_abs`, the separately rounded `__d*_rn` operations and `nt_exp` (`detmath.cuh`, equal to
//! [`crate::detmath::exp`]); compiled with `-ffp-contract=off`. Where the interpreter masks lanes (refractory
//! lanes, clamped inputs, the reset of spiking lanes) the body computes both values and selects one: the same
//! bits, and no branch.

use std::fmt::Write;

use super::program::{Code, Instr, Integrate, Program, Reg};
use super::{Func, Method};

/// The constants of one program in emission order (the same layout for every set of one model): for exact
/// integration the free propagator rows then the refractory ones, for explicit methods `h_sub`, `h_sub / 2`,
/// `h_sub / 6` and the right-hand sides' literals; then the inputs', the threshold's and the reset's literals.
pub(super) fn constants(p: &Program) -> Vec<f64> {
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
            k.extend(free.p.iter().flatten().copied());
            k.extend(refractory.p.iter().flatten().copied());
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

    /// One line per instruction of `c`; returns the expression holding its value.
    fn code(&mut self, c: &Code, ind: &str) -> Result<String, String> {
        for ins in &c.instrs {
            let line = match *ins {
                Instr::Const(d, _) => {
                    let k = self.next_const;
                    self.next_const += 1;
                    format!("const nt_real r{d} = nt_bc(K[{k}]);")
                }
                Instr::Syn(d, ch) => {
                    let ch = self.channel.unwrap_or(ch);
                    format!("const nt_real r{d} = in{ch};")
                }
                Instr::Neg(d, a) => format!("const nt_real r{d} = -{};", self.reg(a)),
                Instr::Add(d, a, b) => format!("const nt_real r{d} = __dadd_rn({}, {});", self.reg(a), self.reg(b)),
                Instr::Sub(d, a, b) => format!("const nt_real r{d} = __dsub_rn({}, {});", self.reg(a), self.reg(b)),
                Instr::Mul(d, a, b) => format!("const nt_real r{d} = __dmul_rn({}, {});", self.reg(a), self.reg(b)),
                Instr::Div(d, a, b) => format!("const nt_real r{d} = __ddiv_rn({}, {});", self.reg(a), self.reg(b)),
                Instr::Powi(d, a, n) => {
                    let mut e = "nt_bc(1.0)".to_string();
                    for _ in 0..n.unsigned_abs() {
                        e = format!("__dmul_rn({e}, {})", self.reg(a));
                    }
                    if n < 0 {
                        e = format!("__ddiv_rn(nt_bc(1.0), {e})");
                    }
                    format!("const nt_real r{d} = {e};")
                }
                Instr::Call(d, f, a, b) => {
                    let (x, y) = (self.reg(a), self.reg(b));
                    let e = match f {
                        Func::Exp => format!("nt_exp({x})"),
                        Func::Sqrt => format!("__dsqrt_rn({x})"),
                        Func::Abs => format!("nt_abs({x})"),
                        Func::Min => format!("nt_sel({y} < {x}, {y}, {x})"),
                        Func::Max => format!("nt_sel({y} > {x}, {y}, {x})"),
                        Func::Tanh => format!(
                            "__ddiv_rn(__dsub_rn(nt_exp(__dmul_rn(nt_bc(2.0), {x})), nt_bc(1.0)), __dadd_rn(nt_exp(__dmul_rn(nt_bc(2.0), {x})), nt_bc(1.0)))"
                        ),
                        Func::Log => format!("nt_ln({x})"),
                    };
                    format!("const nt_real r{d} = {e};")
                }
                Instr::Cmp(d, op, a, b) => {
                    let o = op.c_symbol();
                    format!("const nt_real r{d} = nt_sel({} {o} {}, nt_bc(1.0), nt_bc(0.0));", self.reg(a), self.reg(b))
                }
            };
            let _ = writeln!(self.out, "{ind}{line}");
        }
        Ok(self.reg(c.out))
    }
}

/// The step of one lane (or vector of lanes). Expects in scope `st` (the block's state, variable `v` of lane `l`
/// at `st[v * 64 + l]`, the refractory counter last), `l`, `in0`, `in1`, … (the synaptic input per channel),
/// `stim` (the external current), `K` (the parameter set's [`constants`]), `forced_bit` and `refr_steps` (the
/// set's refractory period in steps), and the vocabulary of the module doc. Stores the new state and leaves the
/// condition `spike`.
fn body(sets: &[&Program]) -> Result<String, String> {
    let p = sets[0];
    let n = p.n;
    let mut e = Emitter { out: String::new(), next_const: 0, n, channel: None };
    for v in 0..n {
        let _ = writeln!(e.out, "    nt_real x{v} = nt_load(st + {v}u * 64u + l);");
    }
    let _ = writeln!(
        e.out,
        "    nt_real refr = nt_load(st + {n}u * 64u + l);\n    const nt_mask is_refr = refr > nt_bc(0.0);"
    );
    // The integration is emitted into its own buffer: with `inputs_first` the inputs come before it in the code,
    // while their constants follow the integration's in the table (`constants`).
    let head = std::mem::take(&mut e.out);
    match &p.integrate {
        Integrate::Exact { free, refractory } => {
            // The free row, and the refractory row where it differs in some parameter set, for every lane; then
            // the lane's. Terms left out by `Rows::used`, `1·x` written `x` (`Rows::unit`).
            let m = n + 2;
            let row = |rows: &super::program::Rows, i: usize, base: usize| -> String {
                let mut acc: Option<String> = None;
                for j in 0..=n {
                    if !rows.used[i][j] {
                        continue;
                    }
                    let x = if j == n { "stim".to_string() } else { format!("x{j}") };
                    let term =
                        if rows.unit[i][j] { x } else { format!("__dmul_rn(nt_bc(K[{}]), {x})", base + i * m + j) };
                    acc = Some(match acc {
                        None => term,
                        Some(a) => format!("__dadd_rn({a}, {term})"),
                    });
                }
                if rows.used[i][n + 1] {
                    let c = format!("nt_bc(K[{}])", base + i * m + n + 1);
                    acc = Some(match acc {
                        None => c,
                        Some(a) => format!("__dadd_rn({a}, {c})"),
                    });
                }
                acc.unwrap_or_else(|| "nt_bc(0.0)".into())
            };
            for i in 0..n {
                let _ = writeln!(e.out, "    const nt_real f{i} = {};", row(free, i, 0));
                let same = sets.iter().all(|s| match &s.integrate {
                    Integrate::Exact { free, refractory } => free.p[i] == refractory.p[i],
                    Integrate::Explicit { .. } => false,
                });
                if same {
                    let _ = writeln!(e.out, "    const nt_real g{i} = f{i};");
                } else {
                    let _ = writeln!(e.out, "    const nt_real g{i} = {};", row(refractory, i, n * m));
                }
            }
            for i in 0..n {
                let _ = writeln!(e.out, "    x{i} = nt_sel(is_refr, g{i}, f{i});");
            }
            e.next_const = 2 * n * m;
        }
        Integrate::Explicit { method, substeps, rhs, .. } => {
            e.next_const = 3;
            let _ = writeln!(
                e.out,
                "    const nt_real hs = nt_bc(K[0]), half_hs = nt_bc(K[1]), sixth_hs = nt_bc(K[2]);\n    (void)half_hs;\n    (void)sixth_hs;"
            );
            let _ = writeln!(e.out, "    for (unsigned int sub = 0; sub < {substeps}u; ++sub) {{");
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
                    let _ = writeln!(e.out, "        const nt_real {k}_s{v} = {s};");
                }
                for v in 0..n {
                    let _ = writeln!(e.out, "        nt_real {k}_{v};");
                }
                let _ = writeln!(e.out, "        {{");
                for v in 0..n {
                    let _ = writeln!(e.out, "            const nt_real s{v} = {k}_s{v};\n            (void)s{v};");
                }
                e.next_const = start;
                for (v, c) in rhs.iter().enumerate() {
                    let _ = writeln!(e.out, "            {{");
                    let r = e.code(c, "                ")?;
                    let value = if p.clamped[v] { format!("nt_sel(is_refr, nt_bc(0.0), {r})") } else { r };
                    let _ = writeln!(e.out, "                {k}_{v} = {value};\n            }}");
                }
                let _ = writeln!(e.out, "        }}");
            }
            for v in 0..n {
                let upd = match method {
                    Method::Euler => format!("__dmul_rn(hs, k1_{v})"),
                    Method::Rk2 => format!("__dmul_rn(half_hs, __dadd_rn(k1_{v}, k2_{v}))"),
                    Method::Rk4 | Method::Exact => format!(
                        "__dmul_rn(sixth_hs, __dadd_rn(__dadd_rn(__dadd_rn(k1_{v}, __dmul_rn(nt_bc(2.0), k2_{v})), __dmul_rn(nt_bc(2.0), k3_{v})), k4_{v}))"
                    ),
                };
                let _ = writeln!(e.out, "        x{v} = __dadd_rn(x{v}, {upd});");
            }
            let _ = writeln!(e.out, "    }}");
        }
    }
    let integration = std::mem::take(&mut e.out);
    // The inputs, with the state in s0.. (declared by the enclosing scope); a clamped variable keeps its value in
    // refractory lanes.
    for (ch, (v, c)) in p.inputs.iter().enumerate() {
        e.channel = Some(ch);
        let _ = writeln!(e.out, "    {{");
        let r = e.code(c, "        ")?;
        let sum = format!("__dadd_rn(x{v}, {r})");
        let value = if p.clamped[*v] { format!("nt_sel(is_refr, x{v}, {sum})") } else { sum };
        let _ = writeln!(e.out, "        x{v} = {value};\n        s{v} = x{v};\n    }}");
    }
    e.channel = None;
    let inputs = std::mem::take(&mut e.out);
    let state_regs: String = (0..n).map(|v| format!("    nt_real s{v} = x{v};\n    (void)s{v};\n")).collect();
    e.out = head;
    if p.inputs_first {
        let _ = write!(e.out, "    {{\n{state_regs}{inputs}    }}\n{integration}");
    } else {
        e.out.push_str(&integration);
    }
    let _ = writeln!(e.out, "    refr = nt_sel(is_refr, __dsub_rn(refr, nt_bc(1.0)), refr);");
    e.out.push_str(&state_regs);
    if !p.inputs_first {
        e.out.push_str(&inputs);
    }
    // The threshold as a condition: a final comparison is used as it is (the interpreter's `th != 0` of its
    // 1.0 / 0.0 is that comparison), any other value tested against 0.
    let _ = writeln!(e.out, "    nt_mask crossed;\n    {{");
    let cond = match p.threshold.instrs.split_last() {
        Some((&Instr::Cmp(d, op, a, b), head)) if d == p.threshold.out => {
            e.code(&Code { instrs: head.to_vec(), out: d }, "        ")?;
            format!("{} {} {}", e.reg(a), op.c_symbol(), e.reg(b))
        }
        _ => format!("{} != nt_bc(0.0)", e.code(&p.threshold, "        ")?),
    };
    let _ = writeln!(e.out, "        crossed = {cond};\n    }}");
    let _ = writeln!(e.out, "    const nt_mask spike = crossed | forced_bit;");
    // The reset, computed for every lane and kept where the lane spiked.
    for (v, add, c) in &p.reset {
        let _ = writeln!(e.out, "    {{");
        let r = e.code(c, "        ")?;
        let val = if *add { format!("__dadd_rn(x{v}, {r})") } else { r };
        let _ = writeln!(e.out, "        x{v} = nt_sel(spike, {val}, x{v});\n        s{v} = x{v};\n    }}");
    }
    let _ = writeln!(e.out, "    refr = nt_sel(spike, refr_steps, refr);");
    for v in 0..n {
        let _ = writeln!(e.out, "    nt_store(st + {v}u * 64u + l, x{v});");
    }
    let _ = writeln!(e.out, "    nt_store(st + {n}u * 64u + l, refr);");
    Ok(e.out)
}

/// The per-set constant tables, checked to share one layout.
fn table(sets: &[&Program]) -> Result<Vec<Vec<f64>>, String> {
    let table: Vec<Vec<f64>> = sets.iter().map(|s| constants(s)).collect();
    if table.iter().any(|t| t.len() != table[0].len()) {
        return Err("parameter sets of different structure".into());
    }
    Ok(table)
}

/// CUDA C of the model for the parameter sets `sets` (all of one structure): kernels `<name>_update`
/// (`nt_model_args`, state block-major with `n + 1` variables, the last the refractory counter; per-set
/// constants in a table indexed by `param_set`) and `<name>_step` (`nt_neuron_step_args`, the inputs gathered as
/// for every model). The `#include` lines name the kernels crate's headers.
pub(super) fn cuda_source(name: &str, sets: &[&Program], refractory_steps: &[u32]) -> Result<String, String> {
    let p = sets[0];
    let n = p.n;
    let table = table(sets)?;
    let width = table[0].len().max(1);
    let mut w = String::new();
    let _ = writeln!(w, "// Generated by neurotwin (models/src/equations/codegen.rs) for an equation-defined model.");
    let _ = writeln!(w, "#ifndef NT_KERNEL\n#define NT_KERNEL extern \"C\" __global__\n#endif");
    for h in ["detmath.cuh", "philox.cuh", "packs.cuh", "neuron_input.cuh"] {
        let _ = writeln!(w, "#include \"{h}\"");
    }
    // The body's vocabulary for one neuron per thread.
    let _ = writeln!(
        w,
        "typedef double nt_real;\ntypedef bool nt_mask;\n\
         static __device__ __forceinline__ double nt_bc(const double k) {{\n    return k;\n}}\n\
         static __device__ __forceinline__ double nt_sel(const bool c, const double a, const double b) {{\n    return c ? a : b;\n}}\n\
         static __device__ __forceinline__ double nt_abs(const double x) {{\n    \
         return __longlong_as_double(__double_as_longlong(x) & 0x7FFFFFFFFFFFFFFFLL);\n}}\n\
         static __device__ __forceinline__ double nt_load(const double* p) {{\n    return *p;\n}}\n\
         static __device__ __forceinline__ void nt_store(double* p, const double v) {{\n    *p = v;\n}}"
    );
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
    let _ = writeln!(w, "    const double stim = a.i_ext[i];\n    (void)stim;");
    let _ = writeln!(w, "    const bool forced_bit = ((a.forced[b] >> l) & 1ull) == 1ull;");
    let _ = writeln!(w, "    const double refr_steps = nt_eq_{name}_refr[set];");
    for c in 0..p.inputs.len() {
        let _ = writeln!(w, "    const double in{c} = in[{c}u * 64u + l];");
    }
    w.push_str(&body(sets)?);
    let _ = writeln!(w, "    a.spiked[i] = spike ? 1 : 0;\n}}");
    let _ = writeln!(
        w,
        "NT_KERNEL void {name}_update(const nt_model_args a) {{\n    nt_eq_{name}_one(a, blockIdx.x * blockDim.x + threadIdx.x);\n}}"
    );
    let _ = writeln!(
        w,
        "NT_KERNEL void {name}_step(const nt_neuron_step_args a) {{\n    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;\n    if (nt_neuron_inputs(a, i)) {{\n        nt_eq_{name}_one(a.model, i);\n    }}\n}}"
    );
    Ok(w)
}

/// C++ of the model's native CPU block functions (C linkage), each advancing the 64 lanes of one block and
/// returning the spike mask of all 64 lanes:
/// - `unsigned long long <name>(double* st, const double* in, const double* i_ext, const double* K,
///   double refr_steps, unsigned long long forced)`: `st` the block's `n + 1` variables block-major (the
///   refractory counter last), `in` its synaptic input channel-major, `i_ext` 64 external currents, `K` one
///   parameter set's [`constants`], `refr_steps` its refractory period in steps, `forced` lanes forced to fire;
/// - `unsigned long long <name>_ring(double* st, long long* const* rings, double inv_scale, const double* extra,
///   const double* K, double refr_steps)`: the input read straight from the engine's fixed-point ring rows (one
///   per input channel, 64 entries each, cleared), `extra` null or one term per channel and lane added to it;
///   no external current, no forced lane (the engine's fused ring-to-spikes pass).
///
/// The code is the same for every set of `sets` (all of one structure). Needs `shim.h` and `detmath.cuh` (the
/// one `#include` line).
pub(super) fn native_source(name: &str, sets: &[&Program]) -> Result<String, String> {
    table(sets)?;
    let n_in = sets[0].inputs.len();
    let list = |f: &dyn Fn(usize) -> String| (0..n_in).map(f).collect::<Vec<_>>().join("");
    let mut w = String::new();
    let _ = writeln!(w, "// Generated by neurotwin (models/src/equations/codegen.rs): native CPU block functions.");
    let _ = writeln!(w, "#include \"detmath.cuh\"\n#include \"native.h\"");
    // One vector of lanes `l..l + NT_W`.
    let _ = writeln!(
        w,
        "NT_INLINE nt_mask {name}_lanes(double* __restrict__ st, const double* __restrict__ K, \
         const nt_real refr_steps, const unsigned int l, const nt_real stim, const nt_mask forced_bit{}) {{",
        list(&|c| format!(", const nt_real in{c}"))
    );
    let _ = writeln!(w, "    (void)stim;");
    w.push_str(&body(sets)?);
    let _ = writeln!(w, "    return spike;\n}}");
    // A model's constants copied to the stack (at most 64 of them), so that the compiler knows stores to the state
    // and rings cannot change them and keeps them in registers across the loop.
    let width = constants(sets[0]).len();
    let local_k = if (1..=64).contains(&width) {
        format!("    double Kl[{width}];\n    __builtin_memcpy(Kl, K, sizeof Kl);\n")
    } else {
        "    const double* Kl = K;\n".to_string()
    };
    // The block entry: inputs gathered by the engine; the common case (no lane forced) in a loop of its own.
    let loads = list(&|c| format!(", nt_load(in + {c}u * 64u + l)"));
    let _ = writeln!(
        w,
        "extern \"C\" unsigned long long {name}(double* __restrict__ st, const double* __restrict__ in, \
         const double* __restrict__ i_ext, const double* __restrict__ K, const double refr_steps, \
         const unsigned long long forced) {{\n{local_k}    (void)in;\n    const nt_real refr = nt_bc(refr_steps);\n    \
         unsigned long long mask = 0;\n    if (forced == 0ull) {{\n        const nt_mask none = {{}};\n        \
         for (unsigned int l = 0; l < 64u; l += NT_W) {{\n            \
         mask |= nt_bits({name}_lanes(st, Kl, refr, l, nt_load(i_ext + l), none{loads})) << l;\n        }}\n    }} else {{\n        \
         for (unsigned int l = 0; l < 64u; l += NT_W) {{\n            \
         mask |= nt_bits({name}_lanes(st, Kl, refr, l, nt_load(i_ext + l), nt_lanes_of(forced, l){loads})) << l;\n        \
         }}\n    }}\n    return mask;\n}}"
    );
    // The ring entry: each channel's fixed-point ring sums taken as the engine's gather does (`nt_take_ring`), plus
    // the optional extra term per channel and lane; no current, no forced lane.
    let takes = list(&|c| format!("        nt_real in{c} = nt_take_ring(rings[{c}] + l, inv_scale);\n"));
    let extras = list(&|c| format!("            in{c} = __dadd_rn(in{c}, nt_load(extra + {c}u * 64u + l));\n"));
    let vals = list(&|c| format!(", in{c}"));
    let _ = writeln!(
        w,
        "extern \"C\" unsigned long long {name}_ring(double* __restrict__ st, long long* const* rings, \
         const double inv_scale, const double* __restrict__ extra, const double* __restrict__ K, \
         const double refr_steps) {{\n{local_k}    (void)rings;\n    (void)inv_scale;\n    \
         const nt_real refr = nt_bc(refr_steps);\n    const nt_mask none = {{}};\n    unsigned long long mask = 0;\n    \
         for (unsigned int l = 0; l < 64u; l += NT_W) {{\n{takes}        if (extra != 0) {{\n{extras}        }}\n        \
         mask |= nt_bits({name}_lanes(st, Kl, refr, l, nt_bc(0.0), none{vals})) << l;\n    }}\n    return mask;\n}}"
    );
    Ok(w)
}
