//! The conductance-based models against NEST 3.10's (`iaf_cond_exp`, `iaf_cond_alpha`, `aeif_cond_exp`): membrane
//! traces and spike times of one neuron under excitatory and inhibitory events, without and with a firing
//! current, from `models/tests/data/nest_cond_*.csv` (written by `scripts/make_nest_cond_traces.py`; NEST
//! integrates with GSL's adaptive RKF45).

use crate::adex::{AdexParams, SynapseType};
use crate::lif_cond_exp::LifCondExpParams;
use crate::testing::{Drive, exc_inh_channels, run_with};
use crate::{CompiledModel, NeuronParams};

const H: f64 = 0.1;
const EVENTS: [(f64, f64); 5] = [(5.0, 30.0), (20.0, -40.0), (30.0, 60.0), (30.5, 45.0), (45.0, -25.0)];

fn read(name: &str) -> Vec<Vec<f64>> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().skip(1).map(|l| l.split(',').map(|x| x.parse().unwrap()).collect()).collect()
}

/// Runs `params` for 600 steps with the reference events (NEST: spike_generator at `t`, delay 0.1 ms → our
/// input at step `t/h`, on the excitatory channel for positive weights) and compares with NEST's trace and spikes.
/// Returns the largest |ΔV| (mV) before the first spike (up to `pre` steps before it) and the largest outside
/// the windows from `pre` steps before to the step of each spike.
fn compare(params: NeuronParams, nest: &str, run: &str, pre: usize) -> (f64, f64) {
    let model = CompiledModel::compile(&[params], &exc_inh_channels(), H).unwrap();
    let drive = Drive {
        inputs: EVENTS.iter().map(|&(t, w)| ((t / H).round() as u64, if w > 0.0 { 0 } else { 1 }, w)).collect(),
        ..Drive::none()
    };
    let (mut v, mut spikes) = (vec![model.initial_state(0)[0]], Vec::new());
    run_with(&model, 2, 600, &drive, |s, st, out| {
        v.push(st[0]);
        if out.spikes & 1 == 1 {
            spikes.push(((s + 1) as f64 * H * 10.0).round() / 10.0);
        }
    });
    let reference = read(&format!("nest_cond_{nest}_{run}.csv"));
    let nest_spikes: Vec<f64> = read(&format!("nest_cond_{nest}_{run}_spikes.csv")).iter().map(|r| r[0]).collect();
    assert_eq!(spikes, nest_spikes, "{nest} {run}: spike times (ms)");
    let (mut before, mut worst) = (0.0f64, 0.0f64);
    for row in &reference {
        let k = (row[0] / H).round() as usize;
        // Skip each spike's step (NEST reports V at the crossing point of its adaptive step or reset) and the `pre`
        // steps of the upswing before it, where V moves by millivolts per step.
        let in_window = |t: f64| {
            let s = (t / H).round() as usize;
            (s.saturating_sub(pre)..=s).contains(&k)
        };
        if spikes.iter().any(|&t| in_window(t)) {
            continue;
        }
        let d = (v[k] - row[1]).abs();
        if spikes.first().is_none_or(|&t| (k as f64) * H < t) {
            before = before.max(d);
        }
        worst = worst.max(d);
    }
    (before, worst)
}

fn lif(i_e: f64) -> LifCondExpParams {
    LifCondExpParams { tau_syn_ex: 2.0, tau_syn_in: 5.0, i_e, ..Default::default() }
}

fn aeif(i_e: f64) -> AdexParams {
    // NEST 3.10 aeif_cond_exp defaults (V_reset −60 mV, t_ref 0, E_in −85 mV) with the test's time constants.
    AdexParams {
        max_substep: 0.005,
        v_reset: -60.0,
        tau_syn_ex: 2.0,
        tau_syn_in: 5.0,
        i_e,
        synapses: SynapseType::Conductance,
        e_ex: 0.0,
        e_in: -85.0,
        ..Default::default()
    }
}

/// `lif_cond_exp` = `iaf_cond_exp`: the same spike steps, V within 2 µV (measured 1.0 and 0.6 µV, at the level of
/// NEST's own RKF45 tolerance).
#[test]
fn iaf_cond_exp_matches_nest() {
    for (run, i_e) in [("events", 0.0), ("firing", 300.0)] {
        let (_, worst) = compare(NeuronParams::LifCondExp(lif(i_e)), "iaf_cond_exp", run, 0);
        assert!(worst < 2e-3, "iaf_cond_exp {run}: largest |ΔV| {worst} mV");
    }
}

/// `lif_cond_alpha` = `iaf_cond_alpha`: the same spike steps, V within 10 µV (measured ≈ 6 µV in the steep rise
/// after a large alpha conductance: the exponential midpoint rule's error at h = 0.1 ms, which is 2.5–4 µV against
/// the same model at h/20 there).
#[test]
fn iaf_cond_alpha_matches_nest() {
    for (run, i_e) in [("events", 0.0), ("firing", 300.0)] {
        let (_, worst) = compare(NeuronParams::LifCondAlpha(lif(i_e)), "iaf_cond_alpha", run, 0);
        assert!(worst < 1e-2, "iaf_cond_alpha {run}: largest |ΔV| {worst} mV");
    }
}

/// `adex` with `synapses = "conductance"` = `aeif_cond_exp` (Heun on 0.005 ms substeps): the same spike steps; V
/// within 2 µV before the first spike and within 0.2 mV after spikes, outside the 1 ms upswing before each spike
/// (measured 0.115 mV, after the reset at 31.4 ms under a 100 nS excitatory conductance: NEST resets where its
/// adaptive RKF45 step finds V ≥ V_peak and integrates the rest of the step from V_reset, here at the end of a
/// substep, and V then climbs at ≈ 20 mV/ms). With the default 0.025 ms substeps the reset comes up
/// to 0.025 ms late, which shifted the third spike of the firing run by one step (33.8 against 33.7 ms).
#[test]
fn aeif_cond_exp_matches_nest() {
    for (run, i_e) in [("events", 0.0), ("firing", 800.0)] {
        let (before, worst) = compare(NeuronParams::Adex(aeif(i_e)), "aeif_cond_exp", run, 10);
        assert!(before < 2e-3, "aeif_cond_exp {run}: largest |ΔV| before the first spike {before} mV");
        assert!(worst < 0.2, "aeif_cond_exp {run}: largest |ΔV| {worst} mV");
    }
}
