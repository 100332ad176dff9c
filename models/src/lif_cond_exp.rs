//! Leaky integrate-and-fire neuron with exponentially decaying synaptic **conductances** (conductance-based
//! synapses, "COBA"), as NEST's `iaf_cond_exp` (Meffin, Burkitt & Grayden 2004, J Comput Neurosci 16:159;
//! the COBA network of Vogels & Abbott 2005, J Neurosci 25:10786, and Brette et al. 2007, J Comput Neurosci
//! 23:349, benchmark 1):
//!
//! `C_m dV/dt = −g_L (V − E_L) − Σ_c g_c (V − E_c) + I_e + I_ext`,  `dg_c/dt = −g_c / τ_c`;
//! a synaptic event of weight `w` (nS) makes `g_c += |w|` (NEST's convention: inhibitory weights are
//! negative and still open a conductance). After a spike `V = V_reset`, clamped for `t_ref`.
//!
//! **Integration** (per step `h`): the conductances decay exactly (`g_c ← g_c e^{−h/τ_c}`). Given the
//! conductances the membrane equation is linear in `V`, so `V` relaxes exactly towards its momentary
//! equilibrium; the conductances are taken at the middle of the step (`g_c e^{−h/(2τ_c)}`, exact values), the
//! exponential midpoint rule:
//! `G = g_L + Σ_c g_c q_c`, `V_∞ = (g_L E_L + I_e + I_ext + Σ_c g_c q_c E_c) / G`,
//! `V(t + h) = V_∞ + (V(t) − V_∞) e^{−h G / C_m}` with `q_c = e^{−h/(2τ_c)}` and `detmath::exp` (`G` changes
//! every step). Second order in `h` (tested against a fine Runge–Kutta reference), and stable for any
//! conductance, where explicit Runge–Kutta diverges once `h G / C_m` exceeds ≈ 2.8. NEST integrates the same
//! equations with GSL's adaptive RKF45; Brian2's COBA example uses exponential Euler (conductances at the
//! start of the step, first order).
//!
//! **Alpha conductances** (`model = "lif_cond_alpha"`, NEST's `iaf_cond_alpha`; same parameters): each
//! channel has `g_c` and its derivative `ġ_c`, `dġ_c/dt = −ġ_c/τ_c`, `dg_c/dt = ġ_c − g_c/τ_c`, and an event of
//! weight `w` makes `ġ_c += |w| e/τ_c`, so that `g_c(t) = |w| (t/τ_c) e^{1 − t/τ_c}` peaks at `|w|` after `τ_c`.
//! The pair is propagated exactly (`ġ ← e^{−h/τ} ġ`, `g ← e^{−h/τ} (g + h ġ)`) and the midpoint conductance is
//! `e^{−h/(2τ)} (g + (h/2) ġ)`.
//!
//! Step order (as NEST's `iaf_cond_exp::update`): the membrane is integrated with the conductances of the
//! previous step, then the conductances decay and this step's synaptic input is added, then the threshold is
//! tested. Input arriving at step `s` therefore first moves `V` at step `s + 1`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::detmath;
use crate::model::{BlockInput, BlockOutput, LANES, ModelError, ReceptorChannel, check, fired_mask, record_spikes};

/// Parameters (units in the doc comments). Defaults are NEST 3 `iaf_cond_exp` defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifCondExpParams {
    /// Membrane capacitance (pF).
    pub c_m: f64,
    /// Leak conductance (nS).
    pub g_l: f64,
    /// Leak reversal (resting) potential (mV).
    pub e_l: f64,
    /// Spike threshold (mV).
    pub v_th: f64,
    /// Reset potential (mV).
    pub v_reset: f64,
    /// Absolute refractory period (ms); rounded to whole steps. `V` is clamped to `v_reset` meanwhile.
    pub t_ref: f64,
    /// Constant bias current (pA).
    pub i_e: f64,
    /// Reversal potential of excitatory channels (mV).
    pub e_ex: f64,
    /// Reversal potential of inhibitory channels (mV).
    pub e_in: f64,
    /// Conductance time constant of excitatory channels (ms).
    pub tau_syn_ex: f64,
    /// Conductance time constant of inhibitory channels (ms).
    pub tau_syn_in: f64,
    /// Per-receptor overrides of the conductance time constant (ms), by receptor name.
    pub tau_syn: BTreeMap<String, f64>,
    /// Per-receptor overrides of the reversal potential (mV), by receptor name.
    pub e_rev: BTreeMap<String, f64>,
}

impl Default for LifCondExpParams {
    fn default() -> Self {
        Self {
            c_m: 250.0,
            g_l: 16.6667,
            e_l: -70.0,
            v_th: -55.0,
            v_reset: -60.0,
            t_ref: 2.0,
            i_e: 0.0,
            e_ex: 0.0,
            e_in: -85.0,
            tau_syn_ex: 0.2,
            tau_syn_in: 2.0,
            tau_syn: BTreeMap::new(),
            e_rev: BTreeMap::new(),
        }
    }
}

/// Constants for one parameter set and one `dt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    pub e_l: f64,
    pub g_l: f64,
    /// g_L E_L + I_e (pA): the constant part of the drive.
    pub g_l_e_l_i_e: f64,
    /// −h/C_m (ms/pF)
    pub minus_h_over_c: f64,
    pub v_th: f64,
    pub v_reset: f64,
    pub refractory_steps: u32,
    /// Per channel: e^{−h/τ_c}, the decay of the conductance over one step.
    pub p11: Vec<f64>,
    /// Per channel: e^{−h/(2τ_c)}, the conductance at the middle of the step relative to its start.
    pub q_mid: Vec<f64>,
    /// Per channel: reversal potential (mV).
    pub e_rev: Vec<f64>,
    /// Alpha-shaped conductances (`lif_cond_alpha`): the state holds `ġ_c` after the `g_c`.
    pub alpha: bool,
    /// Time step `h` (ms), for the alpha pair's propagation.
    pub h: f64,
    /// Per channel: `e/τ_c` (1/ms), the jump of `ġ_c` per unit weight (alpha conductances; 0 otherwise).
    pub jump: Vec<f64>,
    pub channel_names: Vec<String>,
}

/// The time course of the synaptic conductances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Jump and exponential decay (`lif_cond_exp`, NEST `iaf_cond_exp`).
    Exp,
    /// Alpha function `(t/τ) e^{1 − t/τ}` (`lif_cond_alpha`, NEST `iaf_cond_alpha`).
    Alpha,
}

/// Refuses a per-receptor override naming no channel of the network.
fn check_override_names(
    field: &str,
    map: &BTreeMap<String, f64>,
    channels: &[ReceptorChannel],
) -> Result<(), ModelError> {
    for (name, &value) in map {
        if !channels.iter().any(|c| &c.name == name) {
            let known: Vec<_> = channels.iter().map(|c| c.name.as_str()).collect();
            return Err(ModelError::BadParameter {
                field: format!("{field}.{name}"),
                value,
                why: format!("no receptor channel `{name}` in this network (channels: {})", known.join(", ")),
            });
        }
    }
    Ok(())
}

/// Compiles `p` with exponential conductances (`lif_cond_exp`).
pub fn compile(p: &LifCondExpParams, channels: &[ReceptorChannel], h: f64) -> Result<Compiled, ModelError> {
    compile_shape(p, channels, h, Shape::Exp)
}

/// Compiles `p` with conductances of time course `shape`.
pub fn compile_shape(
    p: &LifCondExpParams,
    channels: &[ReceptorChannel],
    h: f64,
    shape: Shape,
) -> Result<Compiled, ModelError> {
    check("c_m", p.c_m, p.c_m > 0.0, "capacitance must be positive (pF)")?;
    check("g_l", p.g_l, p.g_l > 0.0, "leak conductance must be positive (nS)")?;
    check("e_l", p.e_l, true, "must be finite (mV)")?;
    check("v_th", p.v_th, p.v_th > p.v_reset, "threshold must lie above v_reset (mV)")?;
    check("v_reset", p.v_reset, true, "must be finite (mV)")?;
    check("t_ref", p.t_ref, p.t_ref >= 0.0, "refractory period must be >= 0 (ms)")?;
    check("i_e", p.i_e, true, "must be finite (pA)")?;
    check("e_ex", p.e_ex, true, "must be finite (mV)")?;
    check("e_in", p.e_in, true, "must be finite (mV)")?;
    check("tau_syn_ex", p.tau_syn_ex, p.tau_syn_ex > 0.0, "must be positive (ms)")?;
    check("tau_syn_in", p.tau_syn_in, p.tau_syn_in > 0.0, "must be positive (ms)")?;
    check_override_names("tau_syn", &p.tau_syn, channels)?;
    check_override_names("e_rev", &p.e_rev, channels)?;
    let (mut p11, mut q_mid, mut e_rev, mut jump) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in channels {
        let (tau, e) = match c.excitatory {
            true => (
                p.tau_syn.get(&c.name).copied().unwrap_or(p.tau_syn_ex),
                p.e_rev.get(&c.name).copied().unwrap_or(p.e_ex),
            ),
            false => (
                p.tau_syn.get(&c.name).copied().unwrap_or(p.tau_syn_in),
                p.e_rev.get(&c.name).copied().unwrap_or(p.e_in),
            ),
        };
        check(&format!("tau_syn.{}", c.name), tau, tau > 0.0, "must be positive (ms)")?;
        check(&format!("e_rev.{}", c.name), e, true, "must be finite (mV)")?;
        p11.push((-h / tau).exp());
        q_mid.push((-0.5 * h / tau).exp());
        e_rev.push(e);
        jump.push(if shape == Shape::Alpha { std::f64::consts::E / tau } else { 0.0 });
    }
    Ok(Compiled {
        e_l: p.e_l,
        g_l: p.g_l,
        g_l_e_l_i_e: p.g_l * p.e_l + p.i_e,
        minus_h_over_c: -h / p.c_m,
        v_th: p.v_th,
        v_reset: p.v_reset,
        refractory_steps: (p.t_ref / h).round() as u32,
        p11,
        q_mid,
        e_rev,
        alpha: shape == Shape::Alpha,
        h,
        jump,
        channel_names: channels.iter().map(|c| c.name.clone()).collect(),
    })
}

/// State order: `V_m` (mV), `refractory` (steps left), then `g_syn_<channel>` (nS) per channel, then with alpha
/// conductances `dg_syn_<channel>` (nS/ms) per channel.
pub fn state_names(c: &Compiled) -> Vec<String> {
    let mut v = vec!["V_m".to_string(), "refractory".to_string()];
    v.extend(c.channel_names.iter().map(|n| format!("g_syn_{n}")));
    if c.alpha {
        v.extend(c.channel_names.iter().map(|n| format!("dg_syn_{n}")));
    }
    v
}

/// `V = E_L`, not refractory, conductances closed.
pub fn initial_state(c: &Compiled) -> Vec<f64> {
    vec![0.0; state_names(c).len()].into_iter().enumerate().map(|(k, x)| if k == 0 { c.e_l } else { x }).collect()
}

/// Advances `input.n` lanes by one step. Every operation is a separately rounded IEEE multiply, add, subtract
/// or divide in the order written (`cuda/lif_cond_exp.cu` mirrors it bit for bit):
/// `G = g_L`, `J = (g_L E_L + I_e) + I_ext`, then per channel in order `g = g_c q_c`, `G += g`,
/// `J += g E_c`; `V_∞ = J / G`; `V = V_∞ + (V − V_∞) exp((−h/C) G)`.
pub fn update_block(sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let set0 = input.param_set[0];
    let c0 = &sets[set0 as usize];
    if input.n == LANES && !c0.alpha && c0.p11.len() == 2 && input.param_set[..LANES].iter().all(|&s| s == set0) {
        return update_full_block_2ch(&sets[set0 as usize], state, input, out);
    }
    update_lanes(sets, state, input, out);
}

/// The general update: any parameter sets, channels and lane count, one lane after another.
fn update_lanes(sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let (vm, rest) = state.split_at_mut(LANES);
    let (refr, gsyn) = rest.split_at_mut(LANES);
    for l in 0..input.n {
        let c = &sets[input.param_set[l] as usize];
        let n_ch = c.p11.len();
        let mut v = vm[l];
        if refr[l] > 0.0 {
            refr[l] -= 1.0;
        } else {
            let mut g_tot = c.g_l;
            let mut drive = c.g_l_e_l_i_e + input.i_ext[l];
            for ch in 0..n_ch {
                let g = if c.alpha {
                    (gsyn[ch * LANES + l] + 0.5 * c.h * gsyn[(n_ch + ch) * LANES + l]) * c.q_mid[ch]
                } else {
                    gsyn[ch * LANES + l] * c.q_mid[ch]
                };
                g_tot += g;
                drive += g * c.e_rev[ch];
            }
            let v_inf = drive / g_tot;
            v = v_inf + (v - v_inf) * detmath::exp(c.minus_h_over_c * g_tot);
        }
        for ch in 0..n_ch {
            let x = input.syn[ch * LANES + l].abs();
            if c.alpha {
                let (g, dg) = (gsyn[ch * LANES + l], gsyn[(n_ch + ch) * LANES + l]);
                gsyn[ch * LANES + l] = (g + c.h * dg) * c.p11[ch];
                gsyn[(n_ch + ch) * LANES + l] = dg * c.p11[ch] + x * c.jump[ch];
            } else {
                let g = &mut gsyn[ch * LANES + l];
                *g = *g * c.p11[ch] + x;
            }
        }
        if v >= c.v_th || (input.forced >> l) & 1 == 1 {
            v = c.v_reset;
            refr[l] = c.refractory_steps as f64;
            out.spikes |= 1 << l;
            out.activity[l] = 1.0;
        }
        vm[l] = v;
    }
}

/// [`update_block`] for a full block of one parameter set with two receptor channels: the same operations in
/// the same order per lane (bit-identical, tested), in three branch-free passes over the block — equilibrium
/// and exponent, the exponentials ([`detmath::exp_lanes`]), then the new state — that the compiler vectorises,
/// with AVX-512 or AVX2 when the CPU has it (checked at run time; separate multiplies and adds, never fused).
fn update_full_block_2ch(c: &Compiled, state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::rng::has_avx512() {
            // SAFETY: the CPU supports AVX-512F, DQ and VL (checked just above).
            return unsafe { full_block_2ch_avx512(c, state, input, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { full_block_2ch_avx2(c, state, input, out) };
        }
    }
    full_block_2ch(c, state, input, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
unsafe fn full_block_2ch_avx512(c: &Compiled, state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    full_block_2ch(c, state, input, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn full_block_2ch_avx2(c: &Compiled, state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    full_block_2ch(c, state, input, out)
}

#[inline(always)]
fn full_block_2ch(c: &Compiled, state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let (vm, rest) = state[..4 * LANES].split_at_mut(LANES);
    let (refr, g) = rest.split_at_mut(LANES);
    let (g0, g1) = g.split_at_mut(LANES);
    let (s0, s1) = (&input.syn[..LANES], &input.syn[LANES..2 * LANES]);
    let (q0, q1, e0, e1) = (c.q_mid[0], c.q_mid[1], c.e_rev[0], c.e_rev[1]);
    let mut decay = [0.0f64; LANES];
    let mut v_inf = [0.0f64; LANES];
    for l in 0..LANES {
        let (ga, gb) = (g0[l] * q0, g1[l] * q1);
        let g_tot = (c.g_l + ga) + gb;
        let drive = ((c.g_l_e_l_i_e + input.i_ext[l]) + ga * e0) + gb * e1;
        v_inf[l] = drive / g_tot;
        decay[l] = c.minus_h_over_c * g_tot;
    }
    detmath::exp_lanes(&mut decay);
    let refractory = c.refractory_steps as f64;
    let mut fired = [0u8; LANES];
    for l in 0..LANES {
        let is_refractory = refr[l] > 0.0;
        let integrated = v_inf[l] + (vm[l] - v_inf[l]) * decay[l];
        let v = if is_refractory { vm[l] } else { integrated };
        let r = if is_refractory { refr[l] - 1.0 } else { refr[l] };
        g0[l] = g0[l] * c.p11[0] + s0[l].abs();
        g1[l] = g1[l] * c.p11[1] + s1[l].abs();
        let spike = v >= c.v_th;
        fired[l] = spike as u8;
        refr[l] = if spike { refractory } else { r };
        vm[l] = if spike { c.v_reset } else { v };
    }
    // Forced lanes (rare) after the vectorised pass: the same reset as a threshold crossing.
    let mut forced = input.forced;
    while forced != 0 {
        let l = forced.trailing_zeros() as usize;
        fired[l] = 1;
        refr[l] = refractory;
        vm[l] = c.v_reset;
        forced &= forced - 1;
    }
    record_spikes(fired_mask(&fired), out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CompiledModel;
    use crate::testing::{Drive, exc_inh_channels, run_single, run_with, trace_v};

    fn model(p: &LifCondExpParams, h: f64) -> CompiledModel {
        CompiledModel::LifCondExp(vec![compile(p, &exc_inh_channels(), h).unwrap()])
    }

    /// With no synaptic input and a constant current the membrane relaxes exactly:
    /// `V(t) = V_∞ + (E_L − V_∞) e^{−t g_L / C}` with `V_∞ = E_L + I / g_L` (below threshold).
    #[test]
    fn constant_current_relaxes_exactly() {
        let p = LifCondExpParams::default();
        let (h, i) = (0.1, 200.0);
        let v_inf = p.e_l + i / p.g_l; // −58.0 mV < −55 mV: no spike
        let v = trace_v(&model(&p, h), 2, 2000, &Drive::current(i));
        for (k, &x) in v.iter().enumerate() {
            let exact = v_inf + (p.e_l - v_inf) * (-(k as f64) * h * p.g_l / p.c_m).exp();
            assert!((x - exact).abs() < 1e-11, "step {k}: {x} vs {exact}");
        }
    }

    /// Above rheobase the neuron fires regularly: the first spike is the first step at which the exact
    /// relaxation reaches threshold, and the interval adds the refractory period (analytic).
    #[test]
    fn regular_firing_matches_the_analytic_interval() {
        let p = LifCondExpParams { t_ref: 2.0, ..Default::default() };
        let (h, i) = (0.1, 400.0);
        let v_inf = p.e_l + i / p.g_l;
        let tau = p.c_m / p.g_l;
        // From E_L: first k with V(k h) >= V_th.
        let t_first = tau * ((v_inf - p.e_l) / (v_inf - p.v_th)).ln();
        let first = (t_first / h).ceil() as u64;
        // From V_reset after the refractory steps.
        let t_next = tau * ((v_inf - p.v_reset) / (v_inf - p.v_th)).ln();
        let period = (t_next / h).ceil() as u64 + (p.t_ref / h).round() as u64;
        let spikes = run_single(&model(&p, h), 2, 3000, &Drive::current(i));
        assert!(spikes.len() > 5, "{spikes:?}");
        // Step index s is the (s+1)-th update.
        assert_eq!(spikes[0] + 1, first, "{spikes:?}");
        for w in spikes.windows(2) {
            assert_eq!(w[1] - w[0], period, "{spikes:?}");
        }
    }

    /// The membrane trace after one excitatory and one inhibitory event converges at second order to the
    /// solution of the ODEs (classical RK4 at h = 0.1 µs as reference), and lies within 0.2 µV of it at
    /// h = 0.1 ms.
    #[test]
    fn synaptic_events_converge_at_second_order() {
        let p = LifCondExpParams { tau_syn_ex: 2.0, tau_syn_in: 5.0, ..Default::default() };
        let (w_ex, w_in) = (30.0, -40.0); // nS; the inhibitory weight negative as NEST's
        let t_end = 20.0; // ms
        // Reference: events at t = 0 (both arrive at the end of step 0 in the model, so the reference
        // starts them at t = h with V still at E_L).
        let reference = |h: f64| -> f64 {
            let hr = 1e-4;
            let f = |v: f64, t: f64| -> f64 {
                let ge = w_ex * (-(t - h) / p.tau_syn_ex).exp();
                let gi = -w_in * (-(t - h) / p.tau_syn_in).exp();
                (-p.g_l * (v - p.e_l) - ge * (v - p.e_ex) - gi * (v - p.e_in) + p.i_e) / p.c_m
            };
            let (mut v, mut t) = (p.e_l, h);
            let n = ((t_end - h) / hr).round() as u64;
            for _ in 0..n {
                let k1 = f(v, t);
                let k2 = f(v + 0.5 * hr * k1, t + 0.5 * hr);
                let k3 = f(v + 0.5 * hr * k2, t + 0.5 * hr);
                let k4 = f(v + hr * k3, t + hr);
                v += hr / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
                t += hr;
            }
            v
        };
        let error = |h: f64| -> f64 {
            let steps = (t_end / h).round() as u64;
            let drive = Drive { inputs: vec![(0, 0, w_ex), (0, 1, w_in)], ..Drive::none() };
            let v = trace_v(&model(&p, h), 2, steps, &drive);
            (v[steps as usize] - reference(h)).abs()
        };
        let (e1, e2) = (error(0.1), error(0.05));
        assert!(e1 < 2e-4, "error at h = 0.1 ms: {e1} mV");
        let order = (e1 / e2).log2();
        assert!((1.8..2.3).contains(&order), "convergence order {order} ({e1} -> {e2})");
    }

    /// Conductances decay exactly, take the magnitude of the input (negative inhibitory weights open the
    /// inhibitory conductance), and the membrane stays clamped at reset while refractory.
    #[test]
    fn conductances_and_refractory_clamp() {
        let p = LifCondExpParams::default();
        let h = 0.1;
        let drive = Drive { inputs: vec![(0, 0, 5.0), (0, 1, -7.0), (3, 0, 1.0)], forced: vec![1], ..Drive::none() };
        let mut rows = Vec::new();
        run_with(&model(&p, h), 2, 30, &drive, |s, st, out| rows.push((s, st.to_vec(), out.spikes & 1)));
        let (p11e, p11i) = ((-h / p.tau_syn_ex).exp(), (-h / p.tau_syn_in).exp());
        assert_eq!(rows[0].1[2..], [5.0, 7.0]);
        assert!((rows[2].1[3] - 7.0 * p11i * p11i).abs() < 1e-12);
        assert!((rows[3].1[2] - (5.0 * p11e * p11e * p11e + 1.0)).abs() < 1e-12);
        // Forced spike at step 1: V = V_reset for t_ref = 20 steps, then free again.
        assert_eq!(rows[1].2, 1);
        for r in &rows[2..=21] {
            assert_eq!(r.1[0], p.v_reset, "step {}", r.0);
        }
        assert_ne!(rows[22].1[0], p.v_reset);
    }

    /// The full-block fast path gives the general path's state and spikes bit for bit (random states with
    /// refractory lanes, random signed inputs, currents and forced lanes, 200 steps).
    #[test]
    fn full_block_path_equals_the_general_path() {
        let p = LifCondExpParams { tau_syn_ex: 5.0, tau_syn_in: 10.0, i_e: 150.0, ..Default::default() };
        let c = compile(&p, &exc_inh_channels(), 0.1).unwrap();
        let rng = crate::CounterRng::new(3, crate::Stream::Connectivity);
        let mut a = vec![0.0; 4 * LANES];
        for l in 0..LANES as u32 {
            a[l as usize] = -70.0 + 25.0 * rng.uniform(l, 0, 0);
            a[LANES + l as usize] = (rng.uniform(l, 1, 0) * 4.0).floor();
            a[2 * LANES + l as usize] = 30.0 * rng.uniform(l, 2, 0);
            a[3 * LANES + l as usize] = 60.0 * rng.uniform(l, 3, 0);
        }
        let mut b = a.clone();
        let mut spikes = 0;
        for step in 0..200u64 {
            let syn: Vec<f64> = (0..2 * LANES as u32).map(|k| 8.0 * (rng.uniform(k, step + 1, 4) - 0.3)).collect();
            let i_ext: Vec<f64> = (0..LANES as u32).map(|l| 300.0 * rng.uniform(l, step + 1, 5)).collect();
            let forced = if step % 17 == 0 { 0x0101_0000_8000_0001 } else { 0 };
            let input = BlockInput { n: LANES, param_set: &[0; LANES], syn: &syn, i_ext: &i_ext, forced, gap: None };
            let (mut oa, mut ob) = (BlockOutput::default(), BlockOutput::default());
            update_block(std::slice::from_ref(&c), &mut a, &input, &mut oa);
            update_lanes(std::slice::from_ref(&c), &mut b, &input, &mut ob);
            assert_eq!(oa.spikes, ob.spikes, "step {step}");
            assert_eq!(
                a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
            spikes += oa.spikes.count_ones();
        }
        assert!(spikes > 200, "{spikes} spikes");
    }

    /// Alpha conductances: after one event of weight `w` the conductance follows
    /// `|w| (t/τ) e^{1 − t/τ}` exactly at every step (peak `|w|` at `t = τ`), and the membrane converges at second
    /// order to the ODE solution (RK4 at 0.1 µs as reference).
    #[test]
    fn alpha_conductance_is_exact_and_the_membrane_converges_at_second_order() {
        let p = LifCondExpParams { tau_syn_ex: 2.0, tau_syn_in: 5.0, ..Default::default() };
        let alpha =
            |h: f64| CompiledModel::LifCondExp(vec![compile_shape(&p, &exc_inh_channels(), h, Shape::Alpha).unwrap()]);
        let (w_ex, w_in) = (30.0, -40.0);
        let drive = Drive { inputs: vec![(0, 0, w_ex), (0, 1, w_in)], ..Drive::none() };
        let h = 0.1;
        let mut g = Vec::new();
        run_with(&alpha(h), 2, 200, &drive, |_, st, _| g.push((st[2], st[3])));
        // g after step k (the event arrived at the end of step 0, i.e. t = k h after it).
        for (k, &(ge, gi)) in g.iter().enumerate() {
            let t = k as f64 * h;
            let shape = |w: f64, tau: f64| w.abs() * t / tau * (1.0 - t / tau).exp();
            assert!((ge - shape(w_ex, 2.0)).abs() < 1e-12 * w_ex, "step {k}: {ge}");
            assert!((gi - shape(w_in, 5.0)).abs() < 1e-12 * 40.0, "step {k}: {gi}");
        }
        let t_end = 20.0;
        let reference = |h: f64| -> f64 {
            let hr = 1e-4;
            let f = |v: f64, t: f64| -> f64 {
                let s = t - h;
                let ge = w_ex * s / 2.0 * (1.0 - s / 2.0).exp();
                let gi = -w_in * s / 5.0 * (1.0 - s / 5.0).exp();
                (-p.g_l * (v - p.e_l) - ge * (v - p.e_ex) - gi * (v - p.e_in)) / p.c_m
            };
            let (mut v, mut t) = (p.e_l, h);
            for _ in 0..((t_end - h) / hr).round() as u64 {
                let k1 = f(v, t);
                let k2 = f(v + 0.5 * hr * k1, t + 0.5 * hr);
                let k3 = f(v + 0.5 * hr * k2, t + 0.5 * hr);
                let k4 = f(v + hr * k3, t + hr);
                v += hr / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
                t += hr;
            }
            v
        };
        let error = |h: f64| -> f64 {
            let steps = (t_end / h).round() as u64;
            let v = trace_v(&alpha(h), 2, steps, &drive);
            (v[steps as usize] - reference(h)).abs()
        };
        let (e1, e2) = (error(0.1), error(0.05));
        assert!(e1 < 2e-4, "error at h = 0.1 ms: {e1} mV");
        let order = (e1 / e2).log2();
        assert!((1.8..2.3).contains(&order), "convergence order {order} ({e1} -> {e2})");
        let c = compile_shape(&p, &exc_inh_channels(), h, Shape::Alpha).unwrap();
        assert_eq!(state_names(&c), ["V_m", "refractory", "g_syn_exc", "g_syn_inh", "dg_syn_exc", "dg_syn_inh"]);
        assert_eq!(initial_state(&c), [p.e_l, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    /// Bad values and unknown receptor names are refused with the field named.
    #[test]
    fn bad_parameters_are_refused() {
        let ch = exc_inh_channels();
        for (p, field) in [
            (LifCondExpParams { g_l: 0.0, ..Default::default() }, "g_l"),
            (LifCondExpParams { c_m: -1.0, ..Default::default() }, "c_m"),
            (LifCondExpParams { v_th: -70.0, ..Default::default() }, "v_th"),
            (LifCondExpParams { tau_syn_in: 0.0, ..Default::default() }, "tau_syn_in"),
            (LifCondExpParams { e_rev: [("AMPA".to_string(), 0.0)].into(), ..Default::default() }, "e_rev.AMPA"),
            (LifCondExpParams { tau_syn: [("exc".to_string(), -1.0)].into(), ..Default::default() }, "tau_syn.exc"),
        ] {
            let e = compile(&p, &ch, 0.1).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
        let c =
            compile(&LifCondExpParams { e_rev: [("inh".to_string(), -75.0)].into(), ..Default::default() }, &ch, 0.1)
                .unwrap();
        assert_eq!(c.e_rev, vec![0.0, -75.0]);
    }
}
