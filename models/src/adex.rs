//! Adaptive exponential integrate-and-fire neuron (AdEx; Brette & Gerstner 2005, J Neurophysiol
//! 94:3637) with exponentially decaying current synapses, as NEST's `aeif_psc_exp`:
//!
//! `C dV/dt = −g_L (V − E_L) + g_L Δ_T exp((V − V_T)/Δ_T) − w + I_e + I_ext + Σ_c I_c`,
//! `τ_w dw/dt = a (V − E_L) − w`,  `dI_c/dt = −I_c/τ_c`;
//! when `V ≥ V_peak`: spike, `V = V_reset`, `w += b`, and `V` is clamped at `V_reset` for `t_ref`
//! (`w` keeps evolving with `V = V_reset`). A synaptic event of weight `J` (pA) makes `I_c += J`.
//! A forced lane (`BlockInput::forced`) spikes and resets at the end of the step exactly as a crossing
//! would (also during refractoriness, as in `lif_exp`), unless it already crossed in that step.
//!
//! Integration: each step is split into `n = ceil(h / max_substep)` equal substeps, each advanced by
//! Heun's method (explicit trapezoidal RK2) for `V` and `w`; the synaptic currents decay exactly
//! (`exp(−h_sub/τ_c)` per substep) and enter the trapezoid at both ends of the substep. As in NEST's
//! `aeif_*` models the right-hand side uses `min(V, V_peak)` in place of `V`, which bounds the exponential
//! (its argument never exceeds `(V_peak − V_T)/Δ_T`, checked at compile time) and keeps the overshoot in
//! the last substep of an upswing from feeding into `w`. The threshold is tested after every substep
//! and the reset applied there; with `t_ref = 0` several crossings in one step are possible (each adds
//! `b`), but one spike is reported. Default `max_substep = 0.025 ms`: with Brette & Gerstner's
//! parameters at 1 nA each spike then comes ≈ 0.03 ms late relative to a 1 µs RK4 reference (detection
//! at the end of the substep plus the RK2 error of the upswing; tested ≤ 0.04 ms per spike), i.e. the
//! ISIs are ≈ 0.1 % long; a smaller `max_substep` reduces this roughly in proportion.
//!
//! **Conductance synapses** (`synapses = "conductance"`, NEST's `aeif_cond_exp`): the channels carry
//! conductances `g_c` (nS) instead of currents, `dg_c/dt = −g_c/τ_c`, a synaptic event of weight `J` makes
//! `g_c += |J|` (negative inhibitory weights open the inhibitory conductance, as NEST), and the synaptic
//! current is `Σ_c g_c (E_c − min(V, V_peak))` with reversal potentials `e_ex` / `e_in` (or `e_rev` per
//! receptor), evaluated at both ends of each Heun substep with the conductances there (exact decay).
//!
//! Step order (as NEST's `aeif_psc_exp::update`): integrate over the step with the synaptic currents
//! present at its start, then decrement the refractory counter, then add this step's synaptic input to
//! the currents. Input arriving at step `s` therefore first moves `V` at step `s + 1`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::detmath;
use crate::model::{BlockInput, BlockOutput, LANES, ModelError, ReceptorChannel, check};

/// `ln(f64::MAX / 1e20)`: NEST's bound on `(V_peak − V_T)/Δ_T`, so the exponential term stays finite.
const MAX_EXP_ARG: f64 = 663.7;

/// Parameters. Defaults: Brette & Gerstner 2005, Table 1 (`C`, `g_L`, `E_L`, `V_T`, `Δ_T`, `τ_w`, `a`,
/// `b`), `V_reset = E_L = −70.6 mV` (NEST's `aeif_psc_exp` uses −60 mV instead), and NEST 3
/// `aeif_psc_exp` defaults for `V_peak` (0 mV), `t_ref` (0 ms) and the synaptic time constants (0.2 ms
/// excitatory, 2 ms inhibitory). `Δ_T = 0` (NEST's adaptive-LIF limit) is not supported; use a small
/// positive value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdexParams {
    /// Membrane capacitance (pF).
    pub c_m: f64,
    /// Leak conductance (nS).
    pub g_l: f64,
    /// Leak reversal potential (mV).
    pub e_l: f64,
    /// Spike-initiation threshold `V_T` of the exponential term (mV).
    pub v_th: f64,
    /// Slope factor `Δ_T` (mV); must be positive.
    pub delta_t: f64,
    /// Adaptation time constant (ms).
    pub tau_w: f64,
    /// Subthreshold adaptation conductance (nS).
    pub a: f64,
    /// Spike-triggered adaptation increment (pA).
    pub b: f64,
    /// Reset potential (mV).
    pub v_reset: f64,
    /// Spike detection threshold (mV).
    pub v_peak: f64,
    /// Refractory period (ms), rounded to whole steps; `V` is clamped at `V_reset` meanwhile.
    pub t_ref: f64,
    /// Constant bias current (pA).
    pub i_e: f64,
    /// Synaptic time constant of excitatory channels (ms).
    pub tau_syn_ex: f64,
    /// Synaptic time constant of inhibitory channels (ms).
    pub tau_syn_in: f64,
    /// Per-receptor overrides of the synaptic time constant (ms), by receptor name.
    pub tau_syn: BTreeMap<String, f64>,
    /// Longest integration substep (ms); each step is split into `ceil(h / max_substep)` equal substeps.
    pub max_substep: f64,
    /// What the receptor channels carry: `current` (pA, NEST `aeif_psc_exp`, the default) or `conductance`
    /// (nS with reversal potentials, NEST `aeif_cond_exp`).
    pub synapses: SynapseType,
    /// Reversal potential of excitatory channels (mV; conductance synapses only). NEST `aeif_cond_exp`: 0 mV.
    pub e_ex: f64,
    /// Reversal potential of inhibitory channels (mV; conductance synapses only). NEST `aeif_cond_exp`: −85 mV.
    pub e_in: f64,
    /// Per-receptor overrides of the reversal potential (mV; conductance synapses only), by receptor name.
    pub e_rev: BTreeMap<String, f64>,
}

/// What a model's receptor channels carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynapseType {
    /// Synaptic currents (pA): an event adds its weight to the channel's current.
    #[default]
    Current,
    /// Synaptic conductances (nS) with reversal potentials: an event adds its weight's magnitude.
    Conductance,
}

impl Default for AdexParams {
    fn default() -> Self {
        Self {
            c_m: 281.0,
            g_l: 30.0,
            e_l: -70.6,
            v_th: -50.4,
            delta_t: 2.0,
            tau_w: 144.0,
            a: 4.0,
            b: 80.5,
            v_reset: -70.6,
            v_peak: 0.0,
            t_ref: 0.0,
            i_e: 0.0,
            tau_syn_ex: 0.2,
            tau_syn_in: 2.0,
            tau_syn: BTreeMap::new(),
            max_substep: 0.025,
            synapses: SynapseType::Current,
            e_ex: 0.0,
            e_in: -85.0,
            e_rev: BTreeMap::new(),
        }
    }
}

/// Constants for one parameter set and one `dt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    pub e_l: f64,
    pub g_l: f64,
    /// 1/C (1/pF)
    pub inv_c: f64,
    pub v_th: f64,
    pub delta_t: f64,
    /// g_L Δ_T (pA)
    pub g_l_delta_t: f64,
    /// 1/Δ_T (1/mV)
    pub inv_delta_t: f64,
    pub a: f64,
    /// 1/τ_w (1/ms)
    pub inv_tau_w: f64,
    pub b: f64,
    pub v_reset: f64,
    pub v_peak: f64,
    pub i_e: f64,
    /// Refractory counter set at a spike: `t_ref/h` rounded, plus one for the decrement at the end of the
    /// spike's own step (0 when `t_ref` rounds to 0).
    pub refractory_start: f64,
    /// Substeps per step, their length and half length (ms).
    pub n_sub: u32,
    pub h_sub: f64,
    pub half_h_sub: f64,
    /// Per channel: exp(-h_sub/τ_c)
    pub decay_sub: Vec<f64>,
    /// Conductance synapses: per channel the reversal potential (mV); `None`: current synapses.
    pub e_rev: Option<Vec<f64>>,
    pub channel_names: Vec<String>,
}

pub fn compile(p: &AdexParams, channels: &[ReceptorChannel], h: f64) -> Result<Compiled, ModelError> {
    check("c_m", p.c_m, p.c_m > 0.0, "capacitance must be positive (pF)")?;
    check("g_l", p.g_l, p.g_l > 0.0, "leak conductance must be positive (nS)")?;
    check("e_l", p.e_l, true, "must be finite (mV)")?;
    check("v_th", p.v_th, p.v_th < p.v_peak, "spike-initiation threshold must lie below v_peak (mV)")?;
    check("delta_t", p.delta_t, p.delta_t > 0.0, "slope factor must be positive (mV)")?;
    let exp_arg = (p.v_peak - p.v_th) / p.delta_t;
    check(
        "v_peak",
        p.v_peak,
        exp_arg.is_finite() && exp_arg < MAX_EXP_ARG,
        "(v_peak - v_th)/delta_t must stay below 663.7, else exp() overflows (mV)",
    )?;
    check("v_reset", p.v_reset, p.v_reset < p.v_peak, "reset must lie below v_peak (mV)")?;
    check("tau_w", p.tau_w, p.tau_w > 0.0, "adaptation time constant must be positive (ms)")?;
    check("a", p.a, true, "must be finite (nS)")?;
    check("b", p.b, true, "must be finite (pA)")?;
    check("t_ref", p.t_ref, p.t_ref >= 0.0, "refractory period must be >= 0 (ms)")?;
    check("i_e", p.i_e, true, "must be finite (pA)")?;
    check("tau_syn_ex", p.tau_syn_ex, p.tau_syn_ex > 0.0, "must be positive (ms)")?;
    check("tau_syn_in", p.tau_syn_in, p.tau_syn_in > 0.0, "must be positive (ms)")?;
    check("max_substep", p.max_substep, p.max_substep > 0.0, "must be positive (ms)")?;
    let n_sub = (h / p.max_substep * (1.0 - 1e-12)).ceil().max(1.0);
    check("max_substep", p.max_substep, n_sub <= 1e6, "needs more than 10^6 substeps per step (ms)")?;
    let h_sub = h / n_sub;
    let mut decay_sub = Vec::new();
    for c in channels {
        let tau = match p.tau_syn.get(&c.name) {
            Some(&t) => t,
            None if c.excitatory => p.tau_syn_ex,
            None => p.tau_syn_in,
        };
        check(&format!("tau_syn.{}", c.name), tau, tau > 0.0, "must be positive (ms)")?;
        decay_sub.push((-h_sub / tau).exp());
    }
    for (field, map) in [("tau_syn", &p.tau_syn), ("e_rev", &p.e_rev)] {
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
    }
    let e_rev = match p.synapses {
        SynapseType::Current => {
            if let Some((name, &value)) = p.e_rev.iter().next() {
                return Err(ModelError::BadParameter {
                    field: format!("e_rev.{name}"),
                    value,
                    why: "reversal potentials apply to conductance synapses only: add synapses = \"conductance\""
                        .into(),
                });
            }
            None
        }
        SynapseType::Conductance => {
            check("e_ex", p.e_ex, true, "must be finite (mV)")?;
            check("e_in", p.e_in, true, "must be finite (mV)")?;
            let mut e = Vec::new();
            for c in channels {
                let x = p.e_rev.get(&c.name).copied().unwrap_or(if c.excitatory { p.e_ex } else { p.e_in });
                check(&format!("e_rev.{}", c.name), x, true, "must be finite (mV)")?;
                e.push(x);
            }
            Some(e)
        }
    };
    let refractory_steps = (p.t_ref / h).round();
    Ok(Compiled {
        e_l: p.e_l,
        g_l: p.g_l,
        inv_c: 1.0 / p.c_m,
        v_th: p.v_th,
        delta_t: p.delta_t,
        g_l_delta_t: p.g_l * p.delta_t,
        inv_delta_t: 1.0 / p.delta_t,
        a: p.a,
        inv_tau_w: 1.0 / p.tau_w,
        b: p.b,
        v_reset: p.v_reset,
        v_peak: p.v_peak,
        i_e: p.i_e,
        refractory_start: if refractory_steps > 0.0 { refractory_steps + 1.0 } else { 0.0 },
        n_sub: n_sub as u32,
        h_sub,
        half_h_sub: 0.5 * h_sub,
        decay_sub,
        e_rev,
        channel_names: channels.iter().map(|c| c.name.clone()).collect(),
    })
}

/// State order: `V_m` (mV), `w` (adaptation current, pA), `refractory` (steps left), then
/// `I_syn_<channel>` (pA) per channel, or `g_syn_<channel>` (nS) with conductance synapses.
pub fn state_names(c: &Compiled) -> Vec<String> {
    let mut v = vec!["V_m".to_string(), "w".to_string(), "refractory".to_string()];
    let prefix = if c.e_rev.is_some() { "g_syn" } else { "I_syn" };
    v.extend(c.channel_names.iter().map(|n| format!("{prefix}_{n}")));
    v
}

/// `V = E_L`, `w = 0`, no synaptic current (as NEST).
pub fn initial_state(c: &Compiled) -> Vec<f64> {
    let mut v = vec![c.e_l, 0.0, 0.0];
    v.extend(c.decay_sub.iter().map(|_| 0.0));
    v
}

/// Right-hand side `(dV/dt, dw/dt)` with `V` capped at `V_peak`; `free` is 0 while refractory (V clamped).
#[inline(always)]
fn rhs(c: &Compiled, v: f64, w: f64, i: f64, free: f64) -> (f64, f64) {
    let v = if v < c.v_peak { v } else { c.v_peak };
    let spike_current = c.g_l_delta_t * detmath::exp((v - c.v_th) * c.inv_delta_t);
    let dv = (-c.g_l * (v - c.e_l) + spike_current - w + i) * c.inv_c * free;
    let dw = (c.a * (v - c.e_l) - w) * c.inv_tau_w;
    (dv, dw)
}

pub fn update_block(sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let (vm, rest) = state.split_at_mut(LANES);
    let (wm, rest) = rest.split_at_mut(LANES);
    let (refr, isyn) = rest.split_at_mut(LANES);
    for l in 0..input.n {
        let c = &sets[input.param_set[l] as usize];
        let n_ch = c.decay_sub.len();
        let i0 = c.i_e + input.i_ext[l];
        let (mut v, mut w, mut r) = (vm[l], wm[l], refr[l]);
        // Current synapses: the summed current at the start of the substep. Conductance synapses: Σ g and
        // Σ g E there.
        let (mut i_start, mut ge_start) = (0.0, 0.0);
        for ch in 0..n_ch {
            let x = isyn[ch * LANES + l];
            i_start += x;
            if let Some(e) = &c.e_rev {
                ge_start += x * e[ch];
            }
        }
        let mut spiked = false;
        for _ in 0..c.n_sub {
            let (mut i_end, mut ge_end) = (0.0, 0.0);
            for ch in 0..n_ch {
                let x = &mut isyn[ch * LANES + l];
                *x *= c.decay_sub[ch];
                i_end += *x;
                if let Some(e) = &c.e_rev {
                    ge_end += *x * e[ch];
                }
            }
            let free = if r > 0.0 { 0.0 } else { 1.0 };
            let cur1 = match c.e_rev {
                None => i0 + i_start,
                Some(_) => i0 + (ge_start - i_start * capped(c, v)),
            };
            let (dv1, dw1) = rhs(c, v, w, cur1, free);
            let (v_pred, w_pred) = (v + c.h_sub * dv1, w + c.h_sub * dw1);
            let cur2 = match c.e_rev {
                None => i0 + i_end,
                Some(_) => i0 + (ge_end - i_end * capped(c, v_pred)),
            };
            let (dv2, dw2) = rhs(c, v_pred, w_pred, cur2, free);
            v += c.half_h_sub * (dv1 + dv2);
            w += c.half_h_sub * (dw1 + dw2);
            (i_start, ge_start) = (i_end, ge_end);
            if r <= 0.0 && v >= c.v_peak {
                v = c.v_reset;
                w += c.b;
                r = c.refractory_start;
                spiked = true;
            }
        }
        if (input.forced >> l) & 1 == 1 && !spiked {
            v = c.v_reset;
            w += c.b;
            r = c.refractory_start;
            spiked = true;
        }
        if r > 0.0 {
            r -= 1.0;
        }
        for ch in 0..n_ch {
            let x = input.syn[ch * LANES + l];
            isyn[ch * LANES + l] += if c.e_rev.is_some() { x.abs() } else { x };
        }
        if spiked {
            out.spikes |= 1 << l;
            out.activity[l] = 1.0;
        }
        vm[l] = v;
        wm[l] = w;
        refr[l] = r;
    }
}

/// `min(V, V_peak)`, the potential the right-hand side and the synaptic driving force use.
#[inline(always)]
fn capped(c: &Compiled, v: f64) -> f64 {
    if v < c.v_peak { v } else { c.v_peak }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CompiledModel;
    use crate::testing::{Drive, run_single, run_with, trace_v};

    use crate::testing::exc_inh_channels as channels;

    fn model(p: &AdexParams, h: f64) -> CompiledModel {
        CompiledModel::Adex(vec![compile(p, &channels(), h).unwrap()])
    }

    fn final_state(p: &AdexParams, h: f64, steps: u64, drive: &Drive) -> Vec<f64> {
        let mut last = Vec::new();
        run_with(&model(p, h), 2, steps, drive, |_, st, _| last = st.to_vec());
        last
    }

    /// Fixed point for constant current I (with w = a (V − E_L)):
    /// 0 = −(g_L + a)(V − E_L) + g_L Δ_T exp((V − V_T)/Δ_T) + I, the lower root, by bisection on
    /// [E_L − 50, V*] where V* = V_T + Δ_T ln((g_L + a)/g_L) is the minimum of the right-hand side.
    fn fixed_point(p: &AdexParams, i: f64) -> Option<f64> {
        let f = |v: f64| -(p.g_l + p.a) * (v - p.e_l) + p.g_l * p.delta_t * ((v - p.v_th) / p.delta_t).exp() + i;
        let (mut lo, mut hi) = (p.e_l - 50.0, p.v_th + p.delta_t * ((p.g_l + p.a) / p.g_l).ln());
        if f(hi) > 0.0 {
            return None;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if f(mid) > 0.0 { lo = mid } else { hi = mid }
        }
        Some(0.5 * (lo + hi))
    }

    /// Small constant currents: after 5 s (35 τ_w) V and w sit at the fixed point of the equations, for
    /// the default substep and for one substep per 0.1 ms step (Heun's method preserves fixed points).
    #[test]
    fn subthreshold_steady_state_matches_fixed_point() {
        for (i, max_substep) in [(100.0, 0.025), (300.0, 0.025), (300.0, 0.1), (-200.0, 0.05)] {
            let p = AdexParams { max_substep, ..Default::default() };
            let v_star = fixed_point(&p, i).unwrap();
            let st = final_state(&p, 0.1, 50_000, &Drive::current(i));
            assert!((st[0] - v_star).abs() < 1e-9, "I={i}: V {} vs fixed point {v_star}", st[0]);
            let w_star = p.a * (v_star - p.e_l);
            assert!((st[1] - w_star).abs() < 1e-8, "I={i}: w {} vs {w_star}", st[1]);
        }
    }

    /// For a = 0 the fixed point disappears in a saddle-node at V = V_T, I_rheo = g_L (V_T − E_L − Δ_T)
    /// (546 pA for Brette & Gerstner's values): 1 % below no spike in 2 s, 1 % above repetitive firing.
    #[test]
    fn rheobase_for_a_zero_matches_closed_form() {
        let p = AdexParams { a: 0.0, ..Default::default() };
        let i_rheo = p.g_l * (p.v_th - p.e_l - p.delta_t);
        assert!((i_rheo - 546.0).abs() < 1e-9);
        assert!(fixed_point(&p, 0.999 * i_rheo).is_some() && fixed_point(&p, 1.001 * i_rheo).is_none());
        let m = model(&p, 0.1);
        assert!(run_single(&m, 2, 20_000, &Drive::current(0.99 * i_rheo)).is_empty());
        let spikes = run_single(&m, 2, 20_000, &Drive::current(1.01 * i_rheo));
        assert!(spikes.len() >= 3, "{} spikes above rheobase", spikes.len());
    }

    /// Independent reference: classical RK4 at step `hs` with the same capped right-hand side and reset.
    fn rk4_spike_times(p: &AdexParams, i: f64, t_end: f64, hs: f64) -> Vec<f64> {
        let f = |v: f64, w: f64| {
            let v = v.min(p.v_peak);
            let dv = (-p.g_l * (v - p.e_l) + p.g_l * p.delta_t * ((v - p.v_th) / p.delta_t).exp() - w + i) / p.c_m;
            (dv, (p.a * (v - p.e_l) - w) / p.tau_w)
        };
        let (mut v, mut w) = (p.e_l, 0.0);
        let mut out = Vec::new();
        for k in 0..(t_end / hs).round() as usize {
            let k1 = f(v, w);
            let k2 = f(v + hs / 2.0 * k1.0, w + hs / 2.0 * k1.1);
            let k3 = f(v + hs / 2.0 * k2.0, w + hs / 2.0 * k2.1);
            let k4 = f(v + hs * k3.0, w + hs * k3.1);
            v += hs / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0);
            w += hs / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1);
            if v >= p.v_peak {
                v = p.v_reset;
                w += p.b;
                out.push((k + 1) as f64 * hs);
            }
        }
        out
    }

    /// Spike-triggered adaptation (b > 0) under constant current: the ISIs lengthen monotonically towards
    /// a steady value; with a = b = 0 they are constant. Spike times agree with a 1 µs RK4 reference:
    /// same count in 500 ms, each reported spike (end of its step) no earlier than the reference and the
    /// k-th later by at most 0.04 k ms plus one step (measured drift ≈ 0.03 ms per spike).
    #[test]
    fn adaptation_lengthens_isis_and_spikes_match_rk4() {
        let h = 0.1;
        let i = 1000.0;
        let p = AdexParams::default();
        let spikes = run_single(&model(&p, h), 2, 5000, &Drive::current(i));
        let t: Vec<f64> = spikes.iter().map(|&s| (s + 1) as f64 * h).collect();
        let isi: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(isi.len() >= 10);
        for k in 0..6 {
            assert!(isi[k + 1] > isi[k], "ISIs should lengthen: {:?}", &isi[..8]);
        }
        assert!(isi[isi.len() - 1] > 2.0 * isi[0]);
        let reference = rk4_spike_times(&p, i, 500.0, 0.001);
        assert_eq!(t.len(), reference.len());
        for (k, (a, b)) in t.iter().zip(&reference).enumerate() {
            let late = 0.04 * (k + 1) as f64 + h;
            assert!(a - b > -1e-9 && a - b < late, "spike {k} at {a} ms vs RK4 {b} ms");
        }

        let q = AdexParams { a: 0.0, b: 0.0, ..Default::default() };
        let spikes = run_single(&model(&q, h), 2, 5000, &Drive::current(i));
        let isi: Vec<u64> = spikes.windows(2).map(|w| w[1] - w[0]).collect();
        let (lo, hi) = (isi.iter().min().unwrap(), isi.iter().max().unwrap());
        assert!(hi - lo <= 1, "non-adapting ISIs (steps) {isi:?}");
    }

    /// With the exponential term pushed out of range (Δ_T = 0.1 mV, V_T = −30 mV: e^{−400}) and a = b = 0
    /// the model is a LIF with an exponential current synapse: the PSP is
    /// w τ_s τ_m / (C (τ_m − τ_s)) (e^{−t/τ_m} − e^{−t/τ_s}) with τ_m = C/g_L. Input at step 0 first moves
    /// V at step 1. The per-receptor map selects the time constant. Heun's method on 0.025 ms substeps is
    /// accurate to 1e-4 mV here (the synaptic current itself decays exactly).
    #[test]
    fn psp_matches_lif_closed_form() {
        let mut tau_syn = BTreeMap::new();
        tau_syn.insert("inh".to_string(), 5.0);
        let p =
            AdexParams { a: 0.0, b: 0.0, delta_t: 0.1, v_th: -30.0, tau_syn_ex: 2.0, tau_syn, ..Default::default() };
        let h = 0.1;
        let tm = p.c_m / p.g_l;
        for (ch, w, ts) in [(0usize, 500.0, 2.0), (1, -300.0, 5.0)] {
            let trace = trace_v(&model(&p, h), 2, 1000, &Drive::single_input(ch, w));
            let v = |t: f64| w * ts * tm / (p.c_m * (tm - ts)) * ((-t / tm).exp() - (-t / ts).exp());
            assert_eq!(trace[1], p.e_l);
            for k in [1usize, 10, 30, 100, 500] {
                let exact = v(k as f64 * h);
                assert!(
                    (trace[k + 1] - p.e_l - exact).abs() < 1e-4,
                    "ch {ch} step {k}: {} vs {exact}",
                    trace[k + 1] - p.e_l
                );
            }
        }
    }

    /// A forced spike resets like a threshold crossing (V = V_reset, w += b) and starts the refractory
    /// period: with t_ref = 2 ms, V stays at V_reset for 20 steps despite a strong current, w keeps
    /// relaxing meanwhile, and V moves again at step 21.
    #[test]
    fn forced_spike_and_refractory_clamp() {
        let p = AdexParams { t_ref: 2.0, ..Default::default() };
        let drive = Drive { forced: vec![0], i_ext: 400.0, ..Default::default() };
        let mut states = Vec::new();
        let mut spikes = Vec::new();
        run_with(&model(&p, 0.1), 2, 30, &drive, |s, st, out| {
            states.push(st.to_vec());
            if out.spikes & 1 == 1 {
                spikes.push(s);
            }
        });
        assert_eq!(spikes, vec![0]);
        assert_eq!(states[0][0], p.v_reset);
        assert_eq!(states[0][2], 20.0);
        assert!((states[0][1] - p.b).abs() < 0.1, "w after the forced spike: {}", states[0][1]);
        for st in &states[1..=20] {
            assert_eq!(st[0], p.v_reset);
        }
        assert!(states[20][1] < states[1][1], "w relaxes during refractoriness");
        assert_eq!(states[20][2], 0.0);
        assert!(states[21][0] > p.v_reset);
    }

    /// Conductance synapses with the exponential term out of range and a = b = 0 reduce AdEx to `lif_cond_exp`
    /// (NEST's `aeif_cond_exp` → `iaf_cond_exp`): after excitatory and inhibitory events (negative weight: its
    /// magnitude opens the conductance) and with a constant current, both models' traces at h = 0.1 ms lie
    /// within 0.1 µV (AdEx, Heun on 4 substeps) and 0.5 µV (`lif_cond_exp`, exponential midpoint) of
    /// `lif_cond_exp` at h/20 over 50 ms. The state holds conductances `g_syn_<c>`.
    #[test]
    fn conductance_synapses_reduce_to_lif_cond_exp() {
        use crate::lif_cond_exp::{self, LifCondExpParams};
        let p = AdexParams {
            a: 0.0,
            b: 0.0,
            delta_t: 0.1,
            v_th: -30.0,
            tau_syn_ex: 2.0,
            tau_syn_in: 5.0,
            synapses: SynapseType::Conductance,
            e_in: -80.0,
            ..Default::default()
        };
        let q = LifCondExpParams {
            c_m: p.c_m,
            g_l: p.g_l,
            e_l: p.e_l,
            v_th: -40.0,
            v_reset: p.v_reset,
            e_ex: 0.0,
            e_in: -80.0,
            tau_syn_ex: 2.0,
            tau_syn_in: 5.0,
            ..Default::default()
        };
        let h = 0.1;
        let lif = CompiledModel::LifCondExp(vec![lif_cond_exp::compile(&q, &channels(), h).unwrap()]);
        let drive = Drive { inputs: vec![(0, 0, 20.0), (100, 1, -15.0), (250, 0, 8.0)], i_ext: 150.0, ..Drive::none() };
        let a = trace_v(&model(&p, h), 2, 500, &drive);
        let b = trace_v(&lif, 2, 500, &drive);
        // Reference: lif_cond_exp at h/20 (error ≈ 400× smaller), inputs at the same times.
        let fine = CompiledModel::LifCondExp(vec![lif_cond_exp::compile(&q, &channels(), h / 20.0).unwrap()]);
        let fine_drive = Drive {
            inputs: drive.inputs.iter().map(|&(s, c, w)| (20 * s + 19, c, w)).collect(),
            i_ext: drive.i_ext,
            ..Drive::none()
        };
        let r = trace_v(&fine, 2, 10_000, &fine_drive);
        let worst = |x: &[f64]| (0..=500).map(|k| (x[k] - r[20 * k]).abs()).fold(0.0, f64::max);
        let (wa, wb) = (worst(&a), worst(&b));
        assert!(
            wa < 1e-4 && wb < 5e-4,
            "largest differences from the fine reference: adex {wa} mV, lif_cond_exp {wb} mV"
        );
        assert!(a[120] < a[100] - 0.5, "the inhibitory conductance hyperpolarises: {} -> {}", a[100], a[120]);
        assert_eq!(state_names(&compile(&p, &channels(), h).unwrap())[3], "g_syn_exc");
    }

    /// Reversal potentials without conductance synapses, and parameter sets mixing the two synapse types, are
    /// refused with the fix named.
    #[test]
    fn synapse_type_errors_name_the_fix() {
        let p = AdexParams { e_rev: [("exc".to_string(), 0.0)].into(), ..Default::default() };
        let e = compile(&p, &channels(), 0.1).unwrap_err().to_string();
        assert!(e.contains("e_rev.exc") && e.contains("synapses = \"conductance\""), "{e}");
        let sets = [
            crate::NeuronParams::Adex(AdexParams::default()),
            crate::NeuronParams::Adex(AdexParams { synapses: SynapseType::Conductance, ..Default::default() }),
        ];
        let e = CompiledModel::compile(&sets, &channels(), 0.1).unwrap_err().to_string();
        assert!(e.contains("same `synapses`"), "{e}");
        let p: crate::NeuronParams =
            serde_json::from_str(r#"{"model":"adex","synapses":"conductance","e_in":-75}"#).unwrap();
        let crate::NeuronParams::Adex(p) = p else { panic!() };
        assert_eq!(compile(&p, &channels(), 0.1).unwrap().e_rev, Some(vec![0.0, -75.0]));
    }

    #[test]
    fn rejects_bad_parameters() {
        let bad = [
            AdexParams { delta_t: 0.0, ..Default::default() },
            AdexParams { v_th: 5.0, ..Default::default() },
            AdexParams { delta_t: 0.05, v_th: -50.0, ..Default::default() },
            AdexParams { v_reset: 10.0, ..Default::default() },
            AdexParams { tau_w: 0.0, ..Default::default() },
            AdexParams { max_substep: -1.0, ..Default::default() },
            AdexParams { tau_syn: [("nmda".to_string(), 100.0)].into(), ..Default::default() },
        ];
        for p in bad {
            assert!(compile(&p, &channels(), 0.1).is_err(), "{p:?}");
        }
    }
}
