//! Resource guards for scenario runs (issue 20): once every sweep point is prepared and before any run
//! starts, estimate the time all runs take and the memory their recordings hold, and refuse beyond the
//! limits of [`neurotwin_io::budget`] (`--force`, `--max-memory`) with the estimate and what to shrink.
//! Also refuses Poisson stimuli whose events per step exceed what the sampler can draw.
//!
//! The networks themselves are guarded where they are built (the generators of `neurotwin_connectome`);
//! files bound their own size.
//!
//! **Time.** The cost constants below are *lower bounds*: each is several times faster than anything
//! measured in BENCHMARKS.md (2 cores), so that a refusal means the run is hopeless, never that the estimate
//! was pessimistic. A run costs [`RUN_S`] plus [`STEP_S`] per step, both sequential (steps cannot overlap;
//! runs spread over the cores), plus work that all cores share: [`NEURON_STEP_S`] per neuron and step,
//! [`SYNAPTIC_EVENT_S`] per delivered synaptic event and [`POISSON_DRAW_S`] per random draw of a Poisson
//! stimulus. Only the activity the scenario forces (activation stimuli) is counted: recurrent activity is
//! unknown before the run, so the estimate errs low.
//!
//! **Memory.** Every finished run keeps its recording until all runs are done (the runner writes the
//! summary of all runs at the end): spike counts (8 B per neuron), kept spikes (12 B each; the spikes forced
//! by activation stimuli are the part known in advance), rate time series (16 B per group and bin: the
//! counts and the rates), state traces (8 B per neuron and sample, plus the sample time), plastic weight snapshots
//! (8 B per plastic synapse and snapshot) and
//! [`RESULT_BYTES`] of summary. Runs in progress (one per core) hold the simulation state: per neuron, the
//! model's state variables and the delay ring (8 B per receptor channel and delay step).

use std::path::Path;

use neurotwin_io::budget;
use neurotwin_models::poisson::MAX_LAMBDA_PER_DRAW;
use neurotwin_sim::{SpikeSelection, StimulusKind};

use crate::build::PreparedRun;
use crate::error::ScenarioError;
use crate::runner::PreparedPoint;

/// Fixed cost of one run (s): backend setup and at least four output files. Measured: tens of ms.
pub const RUN_S: f64 = 1e-3;
/// Sequential cost of one simulated step (s): the engine's per-step bookkeeping and the hand-over to the
/// worker threads. Measured: 1.4 µs per step for a 4-neuron network (debug build, 2 cores).
pub const STEP_S: f64 = 50e-9;
/// Cost of one neuron for one step (s), all cores together. Measured: 1.6–2.1 ns (CUBA scaling series,
/// 2 cores); this bound allows 16× that machine.
pub const NEURON_STEP_S: f64 = 0.1e-9;
/// Cost of one delivered synaptic event (s), all cores together. Measured: ≈ 16 ns (PD14, 2 cores).
pub const SYNAPTIC_EVENT_S: f64 = 1e-9;
/// Cost of one 128-bit random draw of a Poisson stimulus (one per target and step, one more per 64
/// events) (s), all cores together. Measured: ≈ 8 ns per neuron-step of Poisson drive (Brunel profile).
pub const POISSON_DRAW_S: f64 = 1e-9;
/// Summary and bookkeeping kept per finished run besides the recording (bytes).
pub const RESULT_BYTES: f64 = 1024.0;
/// Bytes of one kept spike: step (u64) and neuron (u32).
const SPIKE_BYTES: f64 = 12.0;
/// Most Poisson events one target can receive in one step: the sampler splits the mean into parts of at most
/// `MAX_LAMBDA_PER_DRAW`, two parts per 128-bit draw, and a neuron has 256 draw indices per step
/// (`neurotwin_models::rng::CounterRng::bits`; the CUDA tables have the same limit).
pub const MAX_POISSON_EVENTS_PER_STEP: f64 = 2.0 * 256.0 * MAX_LAMBDA_PER_DRAW;

/// What one run of a prepared sweep point is estimated to cost.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEstimate {
    /// Time that cannot be spread over cores (s): [`RUN_S`] and [`STEP_S`] per step.
    pub serial_s: f64,
    /// Time that all cores share (s): neuron updates, synaptic events, Poisson draws.
    pub parallel_s: f64,
    /// Of `parallel_s`, the Poisson draws (s).
    pub poisson_s: f64,
    /// Memory a finished run keeps until all runs are done, by part (bytes).
    pub kept: Vec<(Part, f64)>,
    /// Memory of the simulation state while the run is in progress (bytes).
    pub working_bytes: f64,
}

/// The parts of a run's memory, each with what shrinks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Spikes,
    RateTraces,
    StateTraces,
    WeightSnapshots,
    Summary,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Spikes => "kept spikes",
            Part::RateTraces => "rate time series",
            Part::StateTraces => "state traces",
            Part::WeightSnapshots => "plastic weight snapshots",
            Part::Summary => "per-run summaries",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Part::Spikes => {
                "keep the spikes of fewer neurons ([record] spikes), lower the activation stimuli's rate_hz, \
                 shorten run.duration_ms or lower run.trials"
            }
            Part::RateTraces => {
                "raise [record] rate_bin_ms (or set it to 0), shorten run.duration_ms or lower run.trials"
            }
            Part::StateTraces => {
                "raise every_ms of [[record.state]], record fewer neurons, shorten run.duration_ms or lower run.trials"
            }
            Part::WeightSnapshots => {
                "raise [record] weights_every_ms, make fewer synapses plastic ([[plasticity]] pre, post, receptor), \
                 shorten run.duration_ms or lower run.trials"
            }
            Part::Summary => "lower run.trials or the number of [sweep] values",
        }
    }
}

/// Refuses Poisson stimuli of more events per target and step than the sampler can draw.
pub fn check_poisson_rates(path: &Path, run: &PreparedRun) -> Result<(), ScenarioError> {
    let dt = run.setup.dt_ms();
    for s in &run.setup.stimuli {
        if let StimulusKind::Poisson { rate_hz, .. } = s.kind {
            let lambda = rate_hz * dt * 1e-3;
            if lambda > MAX_POISSON_EVENTS_PER_STEP {
                let max_rate = MAX_POISSON_EVENTS_PER_STEP / (dt * 1e-3);
                return Err(ScenarioError::File {
                    path: path.into(),
                    message: format!(
                        "{}: rate_hz = {rate_hz} means {lambda:.3e} input events per target neuron in each step of \
                         {dt} ms; the Poisson sampler draws at most {MAX_POISSON_EVENTS_PER_STEP} per step, so \
                         rate_hz must be at most {max_rate:.0} Hz at this dt_ms (lower rate_hz)",
                        s.name
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Expected spikes forced by activation stimuli over the run, and how many of them are kept.
fn activation_spikes(run: &PreparedRun) -> (f64, f64) {
    let dt_s = run.setup.dt_ms() * 1e-3;
    let kept = |targets: &[u32]| -> f64 {
        match &run.record.spikes {
            SpikeSelection::All => targets.len() as f64,
            SpikeSelection::None => 0.0,
            SpikeSelection::Neurons(keep) => targets.iter().filter(|t| keep.binary_search(t).is_ok()).count() as f64,
        }
    };
    let (mut all, mut kept_spikes) = (0.0, 0.0);
    for s in &run.setup.stimuli {
        if let StimulusKind::Activation { rate_hz, .. } = s.kind {
            let p = 1.0 - (-rate_hz * dt_s).exp();
            let per_target = p * s.stop_step.saturating_sub(s.start_step) as f64;
            all += per_target * s.targets.len() as f64;
            kept_spikes += per_target * kept(&s.targets);
        }
    }
    (all, kept_spikes)
}

/// Random draws of all Poisson stimuli over the run: per target and active step, one per two parts of at
/// most `MAX_LAMBDA_PER_DRAW` events.
fn poisson_draws(run: &PreparedRun) -> f64 {
    let dt = run.setup.dt_ms();
    run.setup
        .stimuli
        .iter()
        .map(|s| match s.kind {
            StimulusKind::Poisson { rate_hz, .. } if rate_hz > 0.0 => {
                let parts = (rate_hz * dt * 1e-3 / MAX_LAMBDA_PER_DRAW).ceil().max(1.0);
                (parts / 2.0).ceil() * s.targets.len() as f64 * s.stop_step.saturating_sub(s.start_step) as f64
            }
            _ => 0.0,
        })
        .sum()
}

/// Bytes of the plastic weights' snapshots (8 B per synapse and snapshot: the start, every
/// `weights_every_steps` steps, the end).
fn weight_snapshot_bytes(run: &PreparedRun) -> f64 {
    let every = run.record.weights_every_steps;
    if run.setup.plasticity.is_empty() || every == 0 {
        return 0.0;
    }
    let synapses = run.setup.plasticity.count_selected(&run.setup.network).unwrap_or(0) as f64;
    let snapshots = (run.setup.steps / every) as f64 + 2.0;
    snapshots * synapses * 8.0
}

/// The estimate for one run of `run` (see the module documentation for the model). `streamed`: the run writes its
/// spikes and state samples as it goes (`neurotwin run`), so memory holds only the raster's bounded spike list and
/// no state samples.
pub fn estimate_run(run: &PreparedRun, streamed: bool) -> RunEstimate {
    let net = &run.setup.network;
    let n = net.n_neurons() as f64;
    let steps = run.setup.steps as f64;
    let (spikes, kept_spikes) = activation_spikes(run);
    let out_degree = net.chemical.n_synapses() as f64 / n.max(1.0);
    let poisson_s = poisson_draws(run) * POISSON_DRAW_S;
    let parallel_s = steps * n * NEURON_STEP_S + spikes * out_degree * SYNAPTIC_EVENT_S + poisson_s;

    let rate_bins = match run.record.rate_bin_steps {
        0 => 0.0,
        b => (steps / b as f64).ceil(),
    };
    let state: f64 = run
        .record
        .state
        .iter()
        .map(|p| (steps / p.every_steps.max(1) as f64).floor() * (p.neurons.len() as f64 * 8.0 + 8.0))
        .sum();
    let (kept_spikes, state) =
        if streamed { (kept_spikes.min(crate::plot::RASTER_MAX_SPIKES as f64), 0.0) } else { (kept_spikes, state) };
    let kept = vec![
        (Part::Spikes, kept_spikes * SPIKE_BYTES),
        (Part::RateTraces, run.record.rate_groups.len() as f64 * rate_bins * 16.0),
        (Part::StateTraces, state),
        (Part::WeightSnapshots, weight_snapshot_bytes(run)),
        (Part::Summary, RESULT_BYTES + n * 8.0),
    ];
    let lanes = (n / 64.0).ceil() * 64.0;
    let slots = net.chemical.max_delay() as f64 + 1.0;
    let channels = net.receptors.len().max(1) as f64;
    let working_bytes = lanes * (run.setup.model.n_state() as f64 * 8.0 + channels * slots * 8.0 + 16.0);
    RunEstimate { serial_s: RUN_S + steps * STEP_S, parallel_s, poisson_s, kept, working_bytes }
}

/// Checks all runs of a prepared scenario (`trials` per sweep point, on at most `threads` worker threads,
/// all cores when `None` or 0) against the time and memory limits, time first.
pub fn check(
    path: &Path,
    points: &[PreparedPoint],
    trials: u32,
    threads: Option<usize>,
    streamed: bool,
) -> Result<(), ScenarioError> {
    for p in points {
        check_poisson_rates(path, &p.run)?;
    }
    let err = |e: neurotwin_io::IoError| ScenarioError::File { path: path.into(), message: e.to_string() };
    let Some(first) = points.first() else { return Ok(()) };
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let cores = threads.filter(|&t| t > 0).map_or(cores, |t| t.min(cores)) as f64;
    let trials_f = trials as f64;
    let jobs = points.len() as f64 * trials_f;
    let runs = format!(
        "{} run(s) ({} sweep point(s) × {trials} trial(s)) of {} steps of {} ms with {} neurons",
        jobs,
        points.len(),
        first.run.setup.steps,
        first.run.setup.dt_ms(),
        first.run.setup.n_neurons()
    );

    let estimates: Vec<RunEstimate> = points.iter().map(|p| estimate_run(&p.run, streamed)).collect();
    let serial: f64 = estimates.iter().map(|e| e.serial_s).fold(0.0, f64::max);
    let parallel: f64 = estimates.iter().map(|e| e.parallel_s * trials_f).sum();
    let poisson: f64 = estimates.iter().map(|e| e.poisson_s * trials_f).sum();
    let seconds = (jobs / cores).ceil() * serial + parallel / cores;
    let mut fix = "shorten run.duration_ms, lower run.trials or the number of [sweep] values".to_string();
    if poisson > 0.5 * parallel / cores.max(1.0) && poisson > 0.0 {
        fix.push_str(", or lower the Poisson stimuli's rate_hz");
    }
    budget::check_time(&runs, seconds, &fix).map_err(err)?;

    let mut parts =
        [Part::Spikes, Part::RateTraces, Part::StateTraces, Part::WeightSnapshots, Part::Summary].map(|p| (p, 0.0));
    for e in &estimates {
        for (part, bytes) in &e.kept {
            let slot = parts.iter_mut().find(|(q, _)| q == part).expect("every part listed");
            slot.1 += bytes * trials_f;
        }
    }
    let working = estimates.iter().map(|e| e.working_bytes).fold(0.0, f64::max) * jobs.min(cores);
    let total = parts.iter().map(|(_, b)| b).sum::<f64>() + working;
    let (largest, bytes) = parts.iter().copied().fold((Part::Summary, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
    let (what, fix) = if working > bytes {
        (format!("{runs} (mostly the simulation state: {})", budget::human_bytes(working)), "use a smaller network")
    } else {
        (format!("{runs} (mostly {}: {})", largest.name(), budget::human_bytes(bytes)), largest.fix())
    };
    budget::check_memory(&what, total, fix).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{RunRequest, prepare_all};

    fn scenario(dir: &Path, run: &str, extra: &str) -> std::path::PathBuf {
        std::fs::write(dir.join("n.csv"), "id,name,cell_type,transmitter\n1,A,s,ACh\n2,B,i,ACh\n").unwrap();
        std::fs::write(dir.join("c.csv"), "pre,post,count\n1,2,5\n").unwrap();
        let text = format!(
            "name = \"t\"\n[network]\nconnections = \"c.csv\"\nneurons = \"n.csv\"\ntransmitters = \"fly\"\n\
             [model]\nmodel = \"lif_exp\"\n[run]\n{run}\n{extra}"
        );
        let p = dir.join("s.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn estimate(run: &str, extra: &str) -> RunEstimate {
        estimate_as(run, extra, false)
    }

    fn estimate_as(run: &str, extra: &str, streamed: bool) -> RunEstimate {
        let dir = tempfile::tempdir().unwrap();
        let p = scenario(dir.path(), run, extra);
        let s = prepare_all(&RunRequest { scenario: p, ..Default::default() }).unwrap();
        estimate_run(&s.points[0].run, streamed)
    }

    /// Runs that stream their outputs (`neurotwin run`) hold no state samples and at most the raster's spike
    /// list in memory; the same scenario kept in memory (Python) counts them all.
    #[test]
    fn streamed_runs_count_only_what_stays_in_memory() {
        let state = "[[record.state]]\nvar = \"V_m\"\ntargets = { all = true }\nevery_ms = 0.1\n";
        let activation = "[[stimulus]]\nkind = \"activation\"\ntargets = { all = true }\nrate_hz = 5000.0\n";
        let extra = format!("{state}{activation}");
        let (kept, streamed) =
            (estimate_as("duration_ms = 500000.0", &extra, false), estimate_as("duration_ms = 500000.0", &extra, true));
        assert_eq!(part(&kept, Part::StateTraces), 5_000_000.0 * 24.0);
        assert_eq!(part(&streamed, Part::StateTraces), 0.0);
        let spikes = part(&kept, Part::Spikes) / SPIKE_BYTES;
        // 2 neurons × 5 M steps × P(event in 0.1 ms at 5 kHz) = 1 − e^−0.5.
        let want = 2.0 * 5.0e6 * (1.0 - (-0.5f64).exp());
        assert!((spikes - want).abs() < 1.0, "{spikes} vs {want}");
        assert_eq!(part(&streamed, Part::Spikes), crate::plot::RASTER_MAX_SPIKES as f64 * SPIKE_BYTES);
        assert_eq!(part(&kept, Part::RateTraces), part(&streamed, Part::RateTraces));
    }

    fn part(e: &RunEstimate, p: Part) -> f64 {
        e.kept.iter().find(|(q, _)| *q == p).unwrap().1
    }

    #[test]
    fn recordings_are_counted_per_bin_sample_and_forced_spike() {
        let e = estimate("duration_ms = 1000.0", "[record]\nrate_bin_ms = 1.0\n");
        // two cell types × 1000 bins × 16 B
        assert_eq!(part(&e, Part::RateTraces), 32_000.0);
        let e = estimate(
            "duration_ms = 1000.0",
            "[[record.state]]\nvar = \"V_m\"\ntargets = { all = true }\nevery_ms = 0.5\n",
        );
        assert_eq!(part(&e, Part::StateTraces), 2000.0 * 24.0);
        let e = estimate(
            "duration_ms = 1000.0",
            "[[stimulus]]\nkind = \"activation\"\ntargets = { names = [\"A\"] }\nrate_hz = 100.0\n",
        );
        let spikes = part(&e, Part::Spikes) / SPIKE_BYTES;
        assert!((spikes - 100.0).abs() < 1.0, "{spikes}");
        assert!(e.serial_s >= 10_000.0 * STEP_S && e.parallel_s > 0.0);
    }

    /// 8 B per plastic synapse (the one A → B synapse of weight 5) and snapshot: the start, every 0.1 ms of a
    /// 100 ms run, and the end.
    #[test]
    fn weight_snapshots_are_counted_per_synapse_and_snapshot() {
        let plastic = "[[plasticity]]\nrule = \"stdp\"\nw_max = 10.0\n[record]\nweights_every_ms = 0.1\n";
        let e = estimate("duration_ms = 100.0", plastic);
        assert_eq!(part(&e, Part::WeightSnapshots), (1000.0 + 2.0) * 8.0);
        assert_eq!(part(&estimate("duration_ms = 100.0", ""), Part::WeightSnapshots), 0.0);
    }

    #[test]
    fn poisson_draws_grow_with_the_rate() {
        let poisson = |rate: f64| {
            format!(
                "[[stimulus]]\nkind = \"poisson\"\ntargets = {{ all = true }}\nrate_hz = {rate:?}\nweight = 1.0\n\
                 receptor = \"ACh\"\n"
            )
        };
        let low = estimate("duration_ms = 100.0", &poisson(10.0));
        let high = estimate("duration_ms = 100.0", &poisson(1e8));
        // 2 targets × 1000 steps: one draw each at 10 Hz; 1e4 events per step need 157 draws.
        assert_eq!(low.poisson_s, 2000.0 * POISSON_DRAW_S);
        assert_eq!(high.poisson_s, 157.0 * 2000.0 * POISSON_DRAW_S);
    }
}
