//! Non-spiking graded neuron with conductance synapses for C. elegans, in the style of Wicks, Roehrig &
//! Rankin 1996 (J Neurosci 16:4017) and Kunert, Shlizerman & Kutz 2014 (Phys Rev E 89:052805):
//!
//! `C dV/dt = −g_L (V − E_L) + Σ_c G_c (E_c − V) + I_e + I_ext`,
//! transmitted activation `s = σ(β (V − V_th)) = 1 / (1 + e^{−β (V − V_th)})`.
//!
//! `G_c = |syn[c]|` is the summed synaptic conductance (nS) on receptor channel `c` this step: the engine
//! delivers `weight × presynaptic activation`, so `G_c` is constant within a step. `E_c` is `e_exc` for
//! excitatory channels and `e_inh` for inhibitory ones unless `e_rev` names the channel. Gap junctions
//! arrive as conductances ([`crate::GapInput`]: `Σ g_ij` joins `g_tot`, `Σ g_ij V_j` the drive, with the
//! partners' previous potentials), which keeps the step stable for any coupling strength.
//!
//! For fixed conductances the equation is linear in `V`, so each step is integrated exactly:
//! `g_tot = g_L + Σ_c G_c`, `V_∞ = (g_L E_L + Σ_c G_c E_c + I)/g_tot`,
//! `V(t + h) = V_∞ + (V(t) − V_∞) e^{−h g_tot / C}` (with `detmath::exp`, since `g_tot` changes every
//! step). The activation is computed from the new `V` and sent every step (`out.activity`); the model
//! never spikes and ignores `forced` (the engine injects current into graded neurons instead).
//!
//! Simplification: Kunert et al. low-pass the transmitted activation with a first-order synaptic
//! variable (`ds/dt = a_r σ(·)(1 − s) − a_d s`) and set `V_th` per neuron to the network's equilibrium;
//! here the activation is the instantaneous sigmoid and `V_th` is a parameter (default `E_L`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::detmath;
use crate::model::{BlockInput, BlockOutput, LANES, ModelError, ReceptorChannel, check};

/// Parameters (units in the doc comments). Defaults follow Kunert, Shlizerman & Kutz 2014 (their
/// Table 1 as we read it: C = 1 pF, membrane conductance 10 pS, E_cell = −35 mV, excitatory reversal
/// 0 mV, inhibitory reversal −48 mV, sigmoid width β = 0.125 /mV). Wicks et al. 1996 used −45 mV for
/// the inhibitory reversal. With these values τ = C/g_L = 100 ms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradedParams {
    /// Membrane capacitance (pF).
    pub c_m: f64,
    /// Leak (membrane) conductance (nS); 0.01 nS = 10 pS.
    pub g_l: f64,
    /// Leak reversal potential `E_cell` (mV).
    pub e_l: f64,
    /// Reversal potential of excitatory channels (mV).
    pub e_exc: f64,
    /// Reversal potential of inhibitory channels (mV).
    pub e_inh: f64,
    /// Per-receptor overrides of the reversal potential (mV), by receptor name.
    pub e_rev: BTreeMap<String, f64>,
    /// Sigmoid slope β (1/mV).
    pub beta: f64,
    /// Sigmoid midpoint `V_th` (mV): activation 0.5 there. Defaults to `e_l` when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v_th: Option<f64>,
    /// Constant bias current (pA).
    pub i_e: f64,
}

impl Default for GradedParams {
    fn default() -> Self {
        Self {
            c_m: 1.0,
            g_l: 0.01,
            e_l: -35.0,
            e_exc: 0.0,
            e_inh: -48.0,
            e_rev: BTreeMap::new(),
            beta: 0.125,
            v_th: None,
            i_e: 0.0,
        }
    }
}

/// Constants for one parameter set and one `dt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    pub e_l: f64,
    /// g_L E_L (pA)
    pub g_l_e_l: f64,
    pub g_l: f64,
    /// −h/C (ms/pF)
    pub minus_h_over_c: f64,
    pub beta: f64,
    pub v_th: f64,
    pub i_e: f64,
    /// Per channel: reversal potential (mV).
    pub e_rev: Vec<f64>,
    pub channel_names: Vec<String>,
}

pub fn compile(p: &GradedParams, channels: &[ReceptorChannel], h: f64) -> Result<Compiled, ModelError> {
    check("c_m", p.c_m, p.c_m > 0.0, "capacitance must be positive (pF)")?;
    check("g_l", p.g_l, p.g_l > 0.0, "leak conductance must be positive (nS)")?;
    check("e_l", p.e_l, true, "must be finite (mV)")?;
    check("e_exc", p.e_exc, true, "must be finite (mV)")?;
    check("e_inh", p.e_inh, true, "must be finite (mV)")?;
    check("beta", p.beta, p.beta > 0.0, "sigmoid slope must be positive (1/mV)")?;
    let v_th = p.v_th.unwrap_or(p.e_l);
    check("v_th", v_th, true, "must be finite (mV)")?;
    check("i_e", p.i_e, true, "must be finite (pA)")?;
    let mut e_rev = Vec::new();
    for c in channels {
        let e = match p.e_rev.get(&c.name) {
            Some(&e) => e,
            None if c.excitatory => p.e_exc,
            None => p.e_inh,
        };
        check(&format!("e_rev.{}", c.name), e, true, "must be finite (mV)")?;
        e_rev.push(e);
    }
    for (name, &value) in &p.e_rev {
        if !channels.iter().any(|c| &c.name == name) {
            let known: Vec<_> = channels.iter().map(|c| c.name.as_str()).collect();
            return Err(ModelError::BadParameter {
                field: format!("e_rev.{name}"),
                value,
                why: format!("no receptor channel `{name}` in this network (channels: {})", known.join(", ")),
            });
        }
    }
    Ok(Compiled {
        e_l: p.e_l,
        g_l_e_l: p.g_l * p.e_l,
        g_l: p.g_l,
        minus_h_over_c: -h / p.c_m,
        beta: p.beta,
        v_th,
        i_e: p.i_e,
        e_rev,
        channel_names: channels.iter().map(|c| c.name.clone()).collect(),
    })
}

/// State order: `V_m` (mV).
pub fn state_names(_c: &Compiled) -> Vec<String> {
    vec!["V_m".to_string()]
}

/// `V = E_L`.
pub fn initial_state(c: &Compiled) -> Vec<f64> {
    vec![c.e_l]
}

/// Transmitted activation for membrane potential `v`.
#[inline(always)]
pub fn activation(c: &Compiled, v: f64) -> f64 {
    detmath::sigmoid(c.beta * (v - c.v_th))
}

pub fn update_block(sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let vm = &mut state[..LANES];
    for l in 0..input.n {
        let c = &sets[input.param_set[l] as usize];
        let (gap_g, gap_gv) = input.gap.map_or((0.0, 0.0), |g| (g.g[l], g.gv[l]));
        let mut g_tot = c.g_l + gap_g;
        let mut drive = c.g_l_e_l + c.i_e + input.i_ext[l] + gap_gv;
        for (ch, &e) in c.e_rev.iter().enumerate() {
            let g = input.syn[ch * LANES + l].abs();
            g_tot += g;
            drive += g * e;
        }
        let v_inf = drive / g_tot;
        let v = v_inf + (vm[l] - v_inf) * detmath::exp(c.minus_h_over_c * g_tot);
        vm[l] = v;
        out.activity[l] = activation(c, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CompiledModel;
    use crate::testing::{Drive, trace_v};

    fn channels() -> Vec<ReceptorChannel> {
        vec![
            ReceptorChannel { name: "ACh".into(), excitatory: true },
            ReceptorChannel { name: "GABA".into(), excitatory: false },
        ]
    }

    fn model(p: &GradedParams, h: f64) -> CompiledModel {
        CompiledModel::Graded(vec![compile(p, &channels(), h).unwrap()])
    }

    /// Runs with constant conductances `g` (nS per channel) and current `i` (pA); returns V after each
    /// step (element 0 the initial value) and the activity of the last step.
    fn run_constant(p: &GradedParams, h: f64, steps: u64, g: [f64; 2], i: f64) -> (Vec<f64>, f64) {
        let m = model(p, h);
        let mut state = vec![0.0; LANES];
        state[0] = m.initial_state(0)[0];
        let mut syn = vec![0.0; 2 * LANES];
        syn[0] = g[0];
        syn[LANES] = g[1];
        let mut i_ext = [0.0; LANES];
        i_ext[0] = i;
        let param_set = [0u16; LANES];
        let mut v = vec![state[0]];
        let mut act = f64::NAN;
        for _ in 0..steps {
            let input = BlockInput { n: 1, param_set: &param_set, syn: &syn, i_ext: &i_ext, forced: 1, gap: None };
            let mut out = BlockOutput::default();
            m.update_block(&mut state, &input, &mut out);
            assert_eq!(out.spikes, 0, "graded neurons never spike, even when forced");
            v.push(state[0]);
            act = out.activity[0];
        }
        (v, act)
    }

    /// Constant conductances: V relaxes exponentially, V(t) = V∞ + (E_L − V∞) e^{−t g_tot / C}, towards
    /// V∞ = (g_L E_L + G_e E_exc + G_i E_inh + I)/g_tot. Inhibitory input delivered with a negative sign
    /// counts by its magnitude.
    #[test]
    fn relaxation_and_steady_state_match_closed_form() {
        let p = GradedParams::default();
        let h = 0.1;
        for (g, i) in [([0.05, 0.0], 0.0), ([0.0, -0.02], 0.0), ([0.03, 0.01], 0.2), ([0.0, 0.0], -0.15)] {
            let (v, act) = run_constant(&p, h, 300_000, g, i);
            let g_tot = p.g_l + g[0].abs() + g[1].abs();
            let v_inf = (p.g_l * p.e_l + g[0].abs() * p.e_exc + g[1].abs() * p.e_inh + i) / g_tot;
            let tau = p.c_m / g_tot;
            for k in [1usize, 10, 100, 1000, 5000] {
                let exact = v_inf + (p.e_l - v_inf) * (-(k as f64) * h / tau).exp();
                assert!((v[k] - exact).abs() < 1e-10, "g={g:?} I={i} step {k}: {} vs {exact}", v[k]);
            }
            assert!((v[300_000] - v_inf).abs() < 1e-10, "steady state {} vs {v_inf}", v[300_000]);
            let s = 1.0 / (1.0 + (-p.beta * (v_inf - p.e_l)).exp());
            assert!((act - s).abs() < 1e-12, "activity {act} vs {s}");
        }
    }

    /// The activation is 0.5 at V = V_th (at rest by default), rises with V, and follows the custom V_th.
    #[test]
    fn activation_is_half_at_threshold() {
        let p = GradedParams::default();
        let (_, act) = run_constant(&p, 0.1, 10, [0.0, 0.0], 0.0);
        assert_eq!(act, 0.5);
        let c = compile(&GradedParams { v_th: Some(-20.0), ..Default::default() }, &channels(), 0.1).unwrap();
        assert_eq!(activation(&c, -20.0), 0.5);
        assert!(activation(&c, -30.0) < 0.5 && activation(&c, -10.0) > 0.5);
        assert!((activation(&c, -20.0 + 8.0) - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-15);
    }

    /// A per-receptor reversal potential overrides the class default; unknown receptor names are rejected.
    #[test]
    fn per_receptor_reversal_potential() {
        let p = GradedParams { e_rev: [("GABA".to_string(), -70.0)].into(), ..Default::default() };
        let (v, _) = run_constant(&p, 0.1, 20_000, [0.0, 0.04], 0.0);
        let v_inf = (p.g_l * p.e_l + 0.04 * -70.0) / (p.g_l + 0.04);
        assert!((v[20_000] - v_inf).abs() < 1e-10);
        let bad = GradedParams { e_rev: [("glu".to_string(), 0.0)].into(), ..Default::default() };
        assert!(compile(&bad, &channels(), 0.1).is_err());
        assert!(compile(&GradedParams { g_l: 0.0, ..Default::default() }, &channels(), 0.1).is_err());
        assert!(compile(&GradedParams { beta: -1.0, ..Default::default() }, &channels(), 0.1).is_err());
    }

    /// A single conductance pulse (one step) moves V exactly by the one-step solution, then V relaxes
    /// back with τ = C/g_L.
    #[test]
    fn single_pulse_then_leak_relaxation() {
        let p = GradedParams::default();
        let h = 0.1;
        let trace = trace_v(&model(&p, h), 2, 2000, &Drive::single_input(0, 1.0));
        let g_tot = p.g_l + 1.0;
        let v_inf = (p.g_l * p.e_l + 1.0 * p.e_exc) / g_tot;
        let v1 = v_inf + (p.e_l - v_inf) * (-h * g_tot / p.c_m).exp();
        assert!((trace[1] - v1).abs() < 1e-12);
        let tau = p.c_m / p.g_l;
        for k in [1usize, 100, 1999] {
            let exact = p.e_l + (v1 - p.e_l) * (-(k as f64) * h / tau).exp();
            assert!((trace[k + 1] - exact).abs() < 1e-10);
        }
    }
}
