//! The engine: runs a backend through time, applies the perturbation schedule, records, shows progress.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::backend::Backend;
use crate::control::{PerturbationSchedule, StepControl};
use crate::error::SimError;
use crate::profile::PhaseTimes;
use crate::record::{RateTrace, RecordSpec, SimRecording, SpikeSelection, StateTrace, WeightRecording};
use crate::setup::SimSetup;

/// Options of one run that are not part of the model.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Show a progress bar (on stderr) once the run has taken longer than a second.
    pub progress: bool,
    /// Label of the progress bar.
    pub label: String,
    /// Set from another thread to stop the run: checked every 256 steps, the run then returns
    /// [`SimError::Interrupted`] (the Python bindings set it on Ctrl-C).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Steps done, added to every 256 steps and at the end (for a caller's own progress display, e.g. a Jupyter
    /// bar; shared by the runs of a sweep).
    pub steps_done: Option<Arc<AtomicU64>>,
    /// Measure the wall-clock time of each phase of the step loop ([`crate::profile`]) into
    /// [`SimRecording::phases`]. Results do not depend on it.
    pub profile: bool,
}

/// Indices of the engine's own phase clock (see [`phase_times`]).
const PHASE_CONTROL: usize = 0;
const PHASE_ADVANCE: usize = 1;
const PHASE_DRAIN: usize = 2;
const PHASE_SAMPLE: usize = 3;
/// Loop overhead (progress, cancellation): not accumulated, it is what the other phases leave of the loop.
const PHASE_OTHER: usize = usize::MAX;

/// The phases of a profiled run from the engine's clock (`acc`: control, advance, drain, state sampling) and
/// what the backend measured of its own step; `loop_s` is the whole step loop.
fn phase_times(backend: &dyn Backend, acc: [Duration; 4], loop_s: f64) -> PhaseTimes {
    let [control, advance, drain, sample] = acc.map(|d| d.as_secs_f64());
    let mut t = PhaseTimes { control_s: control, total_s: loop_s, ..Default::default() };
    match backend.profile_into(&mut t) {
        // The backend's phases inside draining (a distributed run's exchange and remote delivery) are not
        // recording.
        Some(in_drain_s) => t.recording_s = (drain - in_drain_s).max(0.0) + sample,
        None => {
            t.backend_step_s = advance + drain;
            t.recording_s = sample;
        }
    }
    let listed: f64 = t.phases().iter().filter(|(name, _)| *name != "other").map(|(_, s)| s).sum();
    t.other_s = (loop_s - listed).max(0.0);
    t
}

/// Receives the kept spikes of each step while a run goes ([`run_streaming`]), instead of the recording holding
/// them, and optionally the state samples: e.g. a [`crate::spike_report::SpikeReportWriter`] and a
/// [`crate::state_report::StateReportWriter`], so that memory stays flat for any run length.
pub trait RunSink {
    /// The kept spikes of step `step`, neurons ascending; steps arrive in order.
    fn push_spikes(&mut self, step: u64, neurons: &[u32]) -> Result<(), SimError>;

    /// Whether the state samples go to [`RunSink::push_state`] instead of the recording (default: no).
    fn takes_state(&self) -> bool {
        false
    }

    /// One sample of state probe `probe` (its index in [`RecordSpec::state`]) taken at `time_ms`: one value per
    /// probed neuron, in the probe's order. Called only when [`RunSink::takes_state`] says so.
    fn push_state(&mut self, _probe: usize, _time_ms: f64, _values: &[f64]) -> Result<(), SimError> {
        Ok(())
    }
}

impl RunSink for crate::spike_report::SpikeReportWriter {
    fn push_spikes(&mut self, step: u64, neurons: &[u32]) -> Result<(), SimError> {
        crate::spike_report::SpikeReportWriter::push(self, step, neurons)
    }
}

/// Runs `setup` on `backend` and returns what `spec` asks to record.
pub fn run(
    setup: &SimSetup,
    perturbations: &PerturbationSchedule,
    spec: &RecordSpec,
    backend: &mut dyn Backend,
    opts: &RunOptions,
) -> Result<SimRecording, SimError> {
    run_into(setup, perturbations, spec, backend, opts, None)
}

/// [`run`] with the kept spikes handed to `sink` as they come: the recording's `spike_steps` and `spike_neurons`
/// stay empty; so do its state traces' times and values when the sink takes the state samples. Everything else
/// (counts per neuron and window, rates) is recorded as usual.
pub fn run_streaming(
    setup: &SimSetup,
    perturbations: &PerturbationSchedule,
    spec: &RecordSpec,
    backend: &mut dyn Backend,
    opts: &RunOptions,
    sink: &mut dyn RunSink,
) -> Result<SimRecording, SimError> {
    run_into(setup, perturbations, spec, backend, opts, Some(sink))
}

fn run_into(
    setup: &SimSetup,
    perturbations: &PerturbationSchedule,
    spec: &RecordSpec,
    backend: &mut dyn Backend,
    opts: &RunOptions,
    sink: Option<&mut dyn RunSink>,
) -> Result<SimRecording, SimError> {
    let n = setup.n_neurons();
    let dt = setup.dt_ms();
    let n_ch = setup.network.receptors.len().max(1);
    for b in &perturbations.blocks {
        if b.channel >= n_ch {
            return Err(SimError::Setup(format!("receptor block on unknown channel #{}", b.channel)));
        }
    }
    let mut control = StepControl::new(n_ch, n);
    let keep: Option<Vec<bool>> = match &spec.spikes {
        SpikeSelection::All => None,
        SpikeSelection::None => Some(vec![false; n]),
        SpikeSelection::Neurons(ids) => {
            let mut k = vec![false; n];
            ids.iter().for_each(|&i| k[i as usize] = true);
            Some(k)
        }
    };
    let mut rec = SimRecording {
        dt_ms: dt,
        steps: setup.steps,
        spike_counts: vec![0; n],
        window_counts: vec![vec![0; n]; spec.count_windows.len()],
        ..Default::default()
    };
    let mut traces: Vec<StateTrace> = spec
        .state
        .iter()
        .map(|p| StateTrace { var: p.var_name.clone(), neurons: p.neurons.clone(), times_ms: vec![], values: vec![] })
        .collect();
    // Group membership for rate time series.
    let n_bins = if spec.rate_bin_steps > 0 { setup.steps.div_ceil(spec.rate_bin_steps) as usize } else { 0 };
    let mut group_of: Vec<Vec<u16>> = vec![Vec::new(); if n_bins > 0 { n } else { 0 }];
    if n_bins > 0 {
        for (g, grp) in spec.rate_groups.iter().enumerate() {
            for &i in &grp.neurons {
                group_of[i as usize].push(g as u16);
            }
        }
    }
    let mut bins = vec![vec![0u64; n_bins]; spec.rate_groups.len()];

    let bar = ProgressBar::with_draw_target(Some(setup.steps), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {percent}% {elapsed}/{duration} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(opts.label.clone());
    let started = Instant::now();
    let mut shown = false;

    let window = backend.spike_window().max(1);
    let mut pending = 0usize;
    // Per-phase clock (only with `opts.profile`): control, advance, drain, state sampling.
    let mut clock = opts.profile.then(|| {
        backend.start_profiling();
        (Instant::now(), [Duration::ZERO; 4])
    });
    let mut lap = |k: usize| {
        if let Some((since, acc)) = clock.as_mut() {
            let d = crate::profile::lap(since);
            if let Some(a) = acc.get_mut(k) {
                *a += d;
            }
        }
    };
    let loop_started = Instant::now();
    // The first error of the sink (drain callbacks cannot return one): the run stops after that drain.
    let sink_error: std::cell::RefCell<Option<SimError>> = std::cell::RefCell::new(None);
    let streaming = sink.is_some();
    let stream_state = sink.as_ref().is_some_and(|s| s.takes_state());
    // Shared by the drain callback (spikes) and the sampling below (state).
    let sink = std::cell::RefCell::new(sink);
    let mut sample: Vec<f64> = Vec::new();
    let mut kept: Vec<u32> = Vec::new();
    let mut on_spikes = |step: u64, spikes: &[u32]| {
        kept.clear();
        for &i in spikes {
            rec.spike_counts[i as usize] += 1;
            if keep.as_ref().is_none_or(|k| k[i as usize]) {
                if streaming {
                    kept.push(i);
                } else {
                    rec.spike_steps.push(step);
                    rec.spike_neurons.push(i);
                }
            }
            if n_bins > 0 {
                for &g in &group_of[i as usize] {
                    bins[g as usize][(step / spec.rate_bin_steps) as usize] += 1;
                }
            }
        }
        for (w, counts) in spec.count_windows.iter().zip(rec.window_counts.iter_mut()) {
            if w.contains(&step) {
                spikes.iter().for_each(|&i| counts[i as usize] += 1);
            }
        }
        if !kept.is_empty()
            && sink_error.borrow().is_none()
            && let Some(s) = sink.borrow_mut().as_deref_mut()
            && let Err(e) = s.push_spikes(step, &kept)
        {
            *sink_error.borrow_mut() = Some(e);
        }
    };
    // Weight snapshots: the initial weights, then every `weights_every_steps` steps and at the end.
    let mut weights = match (spec.weights_every_steps, backend.plastic_synapses()?) {
        (every, Some(p)) if every > 0 => {
            let mut w = WeightRecording {
                projection_names: p.names.clone(),
                pre: p.pre.clone(),
                post: p.post.clone(),
                channel: p.channel.clone(),
                projection: p.projection.clone(),
                delay_steps: p.delay.clone(),
                ..Default::default()
            };
            w.times_ms.push(0.0);
            w.values.extend_from_slice(&p.current_weights());
            Some(w)
        }
        _ => None,
    };
    for step in 0..setup.steps {
        lap(PHASE_OTHER);
        control.update(perturbations, step, dt);
        lap(PHASE_CONTROL);
        backend.advance(step, &control)?;
        lap(PHASE_ADVANCE);
        pending += 1;
        // Spikes come back once per window (one transfer on a GPU), before any state sample and at the end.
        let state_due = spec.state.iter().any(|p| (step + 1) % p.every_steps.max(1) == 0);
        if pending == window || state_due || step + 1 == setup.steps {
            backend.drain_spikes(&mut on_spikes)?;
            if let Some(e) = sink_error.borrow_mut().take() {
                return Err(e);
            }
            pending = 0;
        }
        lap(PHASE_DRAIN);
        for (k, (p, t)) in spec.state.iter().zip(traces.iter_mut()).enumerate() {
            if (step + 1) % p.every_steps.max(1) == 0 {
                let time = (step + 1) as f64 * dt;
                if stream_state {
                    sample.clear();
                    backend.read_state(p.var, &p.neurons, &mut sample);
                    if let Some(s) = sink.borrow_mut().as_deref_mut() {
                        s.push_state(k, time, &sample)?;
                    }
                } else {
                    t.times_ms.push(time);
                    backend.read_state(p.var, &p.neurons, &mut t.values);
                }
            }
        }
        if let Some(w) = weights.as_mut()
            && ((step + 1).is_multiple_of(spec.weights_every_steps) || step + 1 == setup.steps)
            && let Some(p) = backend.plastic_synapses()?
        {
            w.times_ms.push((step + 1) as f64 * dt);
            w.values.extend_from_slice(&p.current_weights());
        }
        lap(PHASE_SAMPLE);
        if step % 256 == 0 {
            if opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(SimError::Interrupted { step });
            }
            if let Some(done) = &opts.steps_done
                && step > 0
            {
                done.fetch_add(256, Ordering::Relaxed);
            }
        }
        if opts.progress && step % 256 == 0 {
            if !shown && started.elapsed() > Duration::from_secs(1) {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                shown = true;
            }
            bar.set_position(step);
        }
    }
    let loop_s = loop_started.elapsed().as_secs_f64();
    if let Some((_, acc)) = clock {
        rec.phases = Some(phase_times(backend, acc, loop_s));
    }
    if shown {
        bar.finish_and_clear();
    }
    if let Some(done) = &opts.steps_done {
        // The steps since the last multiple of 256 (all of them for runs shorter than 256 steps).
        let reported = setup.steps.saturating_sub(1) / 256 * 256;
        done.fetch_add(setup.steps - reported, Ordering::Relaxed);
    }
    rec.state = traces;
    rec.weights = weights;
    let bin_ms = spec.rate_bin_steps as f64 * dt;
    rec.rates = spec
        .rate_groups
        .iter()
        .zip(bins)
        .filter(|_| n_bins > 0)
        .map(|(g, counts)| RateTrace {
            group: g.name.clone(),
            bin_ms,
            rate_hz: counts.iter().map(|&c| c as f64 / g.neurons.len().max(1) as f64 / (bin_ms * 1e-3)).collect(),
        })
        .collect();
    Ok(rec)
}
