//! The in-silico propagation experiment: stimulate one neuron at a time (optogenetic-like activation) on
//! the scenario's model and measure every other neuron's response as the change of its predicted calcium
//! signal against a control run with the same seed (common random numbers: the background input is
//! identical in both runs, so the difference is the effect of the stimulation plus whatever divergence it
//! causes).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use neurotwin_models::calcium::{ForwardModel, ImagingParams, IndicatorParams};
use neurotwin_sim::{RecordSpec, SimRecording, StateProbe, Stimulus, StimulusKind};
use rayon::prelude::*;

use crate::build::PreparedRun;
use crate::calcium_compare::simulated::CALCIUM_DT_MS;
use crate::error::ScenarioError;
use crate::runner::{BackendKind, simulate_on, trial_seed};

/// How each stimulation is delivered and how responses are measured.
#[derive(Clone, Debug)]
pub struct AtlasProtocol {
    /// Rate of forced spikes in the stimulated neuron (Hz; spiking models).
    pub rate_hz: f64,
    /// Current injected per activation event (pA; graded models).
    pub amplitude_pa: f64,
    /// Stimulation `[start, stop)` (steps).
    pub stim_steps: (u64, u64),
    /// Response window `[start, stop)` (steps): stimulation onset to the end of the measurement.
    pub response_steps: (u64, u64),
    /// Trials (seeds) averaged.
    pub trials: u32,
    /// Calcium indicator of the forward model (spiking models).
    pub indicator: IndicatorParams,
}

/// What a response is measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ResponseUnit {
    /// Mean change of the forward model's noise-free ΔF/F over the response window (spiking models).
    DeltaDff,
    /// Mean change of the membrane potential over the response window (mV; graded models).
    DeltaVm,
}

/// Predicted responses: `response[k][i]` is the response of connectome neuron `i` to stimulating
/// `stimulated[k]`, averaged over trials.
#[derive(Clone, Debug)]
pub struct PredictedResponses {
    pub stimulated: Vec<u32>,
    pub response: Vec<Vec<f64>>,
    pub unit: ResponseUnit,
}

/// Runs the control and one stimulation per neuron of `stimulated` (in parallel) for every trial.
pub fn predict_responses(
    run: &PreparedRun,
    stimulated: &[u32],
    protocol: &AtlasProtocol,
    backend: BackendKind,
    progress: bool,
) -> Result<PredictedResponses, ScenarioError> {
    let n = run.setup.n_neurons();
    let spiking = run.setup.model.is_spiking();
    let unit = if spiking { ResponseUnit::DeltaDff } else { ResponseUnit::DeltaVm };
    let forward = ForwardModel::new(protocol.indicator.clone(), ImagingParams::new(10.0, 1000.0), CALCIUM_DT_MS)
        .map_err(|e| ScenarioError::File { path: run.name.clone().into(), message: format!("forward model: {e}") })?;
    let base = measurement_run(run, n, spiking);
    let bar = progress_bar(progress, stimulated.len() as u64 * protocol.trials as u64);
    let mut sum = vec![vec![0.0; n]; stimulated.len()];
    for trial in 0..protocol.trials {
        let seed = trial_seed(run.setup.seed, trial);
        let control = window_means(&simulate_on(backend, &base, seed, false, "")?.0, &forward, protocol, n, spiking);
        let per_stim: Vec<Vec<f64>> = stimulated
            .par_iter()
            .map(|&j| {
                let mut r = base.clone();
                r.setup.stimuli.push(stimulation(j, protocol, spiking));
                let rec = simulate_on(backend, &r, seed, false, "")?.0;
                bar.inc(1);
                Ok(window_means(&rec, &forward, protocol, n, spiking))
            })
            .collect::<Result<_, ScenarioError>>()?;
        for (acc, stim) in sum.iter_mut().zip(per_stim) {
            for ((a, s), c) in acc.iter_mut().zip(stim).zip(&control) {
                *a += s - c;
            }
        }
    }
    bar.finish_and_clear();
    let t = protocol.trials as f64;
    let response = sum.into_iter().map(|v| v.into_iter().map(|x| x / t).collect()).collect();
    Ok(PredictedResponses { stimulated: stimulated.to_vec(), response, unit })
}

/// The scenario with only what the measurement needs recorded: all spikes (spiking models) or V_m of every
/// neuron at every step of the response window (graded models).
fn measurement_run(run: &PreparedRun, n: usize, spiking: bool) -> PreparedRun {
    let mut r = run.clone();
    r.record = if spiking {
        RecordSpec::default()
    } else {
        let probe = StateProbe { var: 0, var_name: "V_m".into(), neurons: (0..n as u32).collect(), every_steps: 1 };
        RecordSpec { spikes: neurotwin_sim::SpikeSelection::None, state: vec![probe], ..Default::default() }
    };
    r
}

fn stimulation(neuron: u32, p: &AtlasProtocol, spiking: bool) -> Stimulus {
    Stimulus {
        name: format!("atlas stimulation of #{neuron}"),
        kind: StimulusKind::Activation { rate_hz: p.rate_hz, amplitude_pa: if spiking { 0.0 } else { p.amplitude_pa } },
        targets: vec![neuron],
        start_step: p.stim_steps.0,
        stop_step: p.stim_steps.1,
    }
}

/// Mean of each neuron's signal over the response window: forward-model ΔF/F of its spikes, or V_m.
fn window_means(rec: &SimRecording, forward: &ForwardModel, p: &AtlasProtocol, n: usize, spiking: bool) -> Vec<f64> {
    let (a, b) = p.response_steps;
    if !spiking {
        let tr = &rec.state[0];
        let mut mean = vec![0.0; n];
        let mut count = 0usize;
        for (t, row) in tr.values.chunks(n).enumerate() {
            // Sample t is taken after step t (time (t + 1) dt).
            if (a..b).contains(&(t as u64)) {
                mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
                count += 1;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count.max(1) as f64);
        return mean;
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); n];
    for (&s, &i) in rec.spike_steps.iter().zip(&rec.spike_neurons) {
        if s < b {
            // Spike of step s at the end of the step, as the SONATA report and `SimRecording::spike_times_ms`.
            times[i as usize].push((s + 1) as f64 * rec.dt_ms);
        }
    }
    let (t0, t1) = (a as f64 * rec.dt_ms, b as f64 * rec.dt_ms);
    let (k0, k1) = ((t0 / CALCIUM_DT_MS).round() as usize, (t1 / CALCIUM_DT_MS).round() as usize);
    times
        .iter()
        .map(|t| {
            if t.is_empty() {
                return 0.0;
            }
            match forward.dff_sim(&neurotwin_models::calcium::Drive::SpikeTimes(t), t1) {
                Ok(d) => {
                    let w = &d[k0.min(d.len())..k1.min(d.len())];
                    w.iter().sum::<f64>() / w.len().max(1) as f64
                }
                Err(_) => f64::NAN,
            }
        })
        .collect()
}

fn progress_bar(show: bool, len: u64) -> ProgressBar {
    let target = if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template("atlas stimulations [{bar:30}] {pos}/{len} {elapsed}/{duration}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
