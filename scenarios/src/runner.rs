//! Running a scenario file: all sweep points × trials (in parallel), outputs per run, a summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use neurotwin_connectome::Share;
use neurotwin_models::{CounterRng, Stream};
pub use neurotwin_sim::BackendKind;
use neurotwin_sim::output::{ReportPopulation, write_json, write_node_table};
use neurotwin_sim::spike_report::SpikeReportWriter;
use neurotwin_sim::state_report::{StateProbeSpec, StateReportWriter};
use neurotwin_sim::{RunOptions, RunSink, SimError, SimRecording, make_backend};
use rayon::prelude::*;
use serde::Serialize;

use crate::build::{PreparedRun, prepare_part};
use crate::error::ScenarioError;
use crate::load::{expand_sweep, read};
use crate::plot::RasterSpikes;

/// How to run a scenario file.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    pub scenario: PathBuf,
    /// Overrides the scenario's `[output] dir`.
    pub out_dir: Option<PathBuf>,
    /// Worker threads (overrides `run.threads`; 0 = all cores).
    pub threads: Option<usize>,
    pub progress: bool,
    pub backend: BackendKind,
    /// `--overwrite`: replace an earlier run's files in the output folder (only those; never an input).
    pub overwrite: bool,
    /// The scenario's text when it is built into the binary (`scenario` then only names it in messages).
    pub text: Option<String>,
    /// Time each phase of the step loop (`neurotwin run --profile`): [`RunSummary::phases`].
    pub profile: bool,
}

/// Mean rate of a read-out group.
#[derive(Clone, Debug, Serialize)]
pub struct ReadoutRate {
    pub label: String,
    pub neurons: Vec<String>,
    pub rate_hz: f64,
    pub per_neuron_hz: Vec<f64>,
    /// Mean rate of the group in each read-out window (label, Hz).
    pub windows_hz: Vec<(String, f64)>,
}

/// The summary of one run (also written as `summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub scenario: String,
    pub sweep_param: Option<String>,
    pub sweep_value: Option<String>,
    pub trial: u32,
    pub seed: u64,
    pub backend: String,
    pub threads: usize,
    pub model: String,
    pub neurons: usize,
    pub synapses: u64,
    pub gap_junction_entries: usize,
    pub bytes_per_synapse: f64,
    pub weight_encoding: String,
    pub delivery_fixed_point_exponent: i32,
    pub dt_ms: f64,
    pub duration_ms: f64,
    pub steps: u64,
    pub total_spikes: u64,
    pub mean_rate_hz: f64,
    pub rate_by_cell_type_hz: Vec<(String, f64)>,
    pub readout: Vec<ReadoutRate>,
    /// Per-cell-type rate time series (`[record] rate_bin_ms`; empty when 0).
    pub rate_traces: Vec<neurotwin_sim::record::RateTrace>,
    pub wall_s: f64,
    pub output_dir: Option<PathBuf>,
    /// Seconds per phase of the step loop, when profiled (`neurotwin run --profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases: Option<neurotwin_sim::PhaseTimes>,
    /// Per MPI rank of a split run (`mpirun … neurotwin run`): what it held and spent; empty in one process.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranks: Vec<RankReport>,
    /// Per `[[plasticity]]` group: how its weights moved; empty without plastic synapses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plasticity: Vec<PlasticitySummary>,
}

/// How one group of plastic synapses changed over a run.
#[derive(Clone, Debug, Serialize)]
pub struct PlasticitySummary {
    pub name: String,
    pub synapses: usize,
    /// Mean weight at the start and at the end (model's synaptic unit).
    pub mean_weight_start: f64,
    pub mean_weight_end: f64,
    /// Fraction of the synapses at a bound (within 0.1 % of the weight range) at the end.
    pub at_bound_end: f64,
}

/// Per projection of `rec`'s weight snapshots: mean weight at the first and last snapshot, fraction at a bound.
pub fn plasticity_summary(run: &PreparedRun, rec: &SimRecording) -> Vec<PlasticitySummary> {
    let Some(w) = &rec.weights else { return Vec::new() };
    let snapshots = w.times_ms.len();
    if snapshots == 0 {
        return Vec::new();
    }
    let (first, last) = (w.snapshot(0), w.snapshot(snapshots - 1));
    run.setup
        .plasticity
        .projections
        .iter()
        .enumerate()
        .map(|(p, proj)| {
            let mine: Vec<usize> = (0..w.len()).filter(|&k| w.projection[k] as usize == p).collect();
            let n = mine.len().max(1) as f64;
            let (lo, hi) = proj.rule.bounds();
            let tol = 1e-3 * (hi - lo);
            let at_bound = mine.iter().filter(|&&k| (last[k] - lo).abs() <= tol || (last[k] - hi).abs() <= tol).count();
            PlasticitySummary {
                name: proj.name.clone(),
                synapses: mine.len(),
                mean_weight_start: mine.iter().map(|&k| first[k]).sum::<f64>() / n,
                mean_weight_end: mine.iter().map(|&k| last[k]).sum::<f64>() / n,
                at_bound_end: at_bound as f64 / n,
            }
        })
        .collect()
}

/// One MPI rank of a split run.
#[derive(Clone, Debug, Serialize)]
pub struct RankReport {
    pub rank: usize,
    /// The neurons it updates and whose incoming synapses it holds, `[first, end)`.
    pub neurons: [u32; 2],
    pub synapses: u64,
    /// Peak resident memory of the process so far (MiB, Linux `VmHWM`; 0 where unknown).
    pub peak_rss_mib: f64,
    /// Seconds preparing every run of the scenario (building its share of the network included).
    pub prepare_s: f64,
    /// Seconds of this run's simulation, and of it in the spike exchange (waiting for the slowest rank included).
    pub simulate_s: f64,
    pub exchange_s: f64,
    /// Spike exchanges (one every minimum delay) and the bytes the rank received in them.
    pub exchanges: u64,
    pub exchange_bytes: u64,
}

/// One finished run.
pub struct RunResult {
    pub summary: RunSummary,
    pub recording: SimRecording,
}

/// Seed of trial `t`: the scenario seed for trial 0, a counter-based derivation otherwise.
pub fn trial_seed(seed: u64, trial: u32) -> u64 {
    if trial == 0 {
        return seed;
    }
    let b = CounterRng::new(seed, Stream::Trial).bits(trial, 0, 0);
    ((b[0] as u64) << 32) | b[1] as u64
}

/// One sweep point, ready to run.
pub struct PreparedPoint {
    /// Folder-safe label (`dose=10`), empty without a sweep.
    pub label: String,
    /// The swept value as written, `None` without a sweep.
    pub value: Option<String>,
    pub run: PreparedRun,
}

/// All sweep points of a scenario file.
pub struct PreparedScenario {
    pub points: Vec<PreparedPoint>,
    pub trials: u32,
    pub sweep_param: Option<String>,
    /// Every file the scenario reads (no output may replace one).
    pub inputs: neurotwin_io::inputs::InputSet,
}

/// Prepares everything (all validation happens here, before anything is written), for a caller that keeps the
/// recordings in memory (the memory guard counts kept spikes and state samples).
pub fn prepare_all(req: &RunRequest) -> Result<PreparedScenario, ScenarioError> {
    prepare_scenario(req, &Share::WHOLE, false)
}

/// [`prepare_all`] for one process of a run split across processes (`neurotwin run` under mpirun): every
/// network holds only the synapses onto this process's `share`; the outputs are streamed ([`RunOutputs`]).
pub fn prepare_all_part(req: &RunRequest, share: &Share) -> Result<PreparedScenario, ScenarioError> {
    prepare_scenario(req, share, true)
}

/// `streamed`: the runs stream their spikes and state samples into files ([`run_scenario`], MPI ranks), so the
/// memory guard counts only what stays in memory (the raster's bounded spike list).
fn prepare_scenario(req: &RunRequest, share: &Share, streamed: bool) -> Result<PreparedScenario, ScenarioError> {
    let file = match &req.text {
        Some(text) => crate::load::ScenarioFile {
            path: req.scenario.clone(),
            text: text.clone(),
            spec: crate::load::parse(&req.scenario, text)?,
        },
        None => read(&req.scenario)?,
    };
    let inputs = crate::inputs::scenario_inputs(&file.path, &file.spec);
    let sweep_param = file.spec.sweep.as_ref().map(|s| s.param.get_ref().clone());
    let points = expand_sweep(&file)?;
    let trials = file.spec.run.trials;
    let mut prepared = Vec::new();
    for p in points {
        let run = prepare_part(&p.file.spec, &p.file.path, &p.file.text, share)?;
        let value = sweep_param.as_ref().map(|_| p.value.to_string());
        prepared.push(PreparedPoint { label: p.label, value, run });
    }
    crate::guards::check(&req.scenario, &prepared, trials, req.threads, streamed)?;
    Ok(PreparedScenario { points: prepared, trials, sweep_param, inputs })
}

/// Runs a prepared scenario on the CPU backend (no output written).
pub fn simulate(
    run: &PreparedRun,
    seed: u64,
    progress: bool,
    label: &str,
) -> Result<(SimRecording, i32, &'static str), SimError> {
    simulate_on(BackendKind::Cpu, run, seed, progress, label)
}

/// Runs a prepared scenario on the chosen backend (no output written).
pub fn simulate_on(
    choice: BackendKind,
    run: &PreparedRun,
    seed: u64,
    progress: bool,
    label: &str,
) -> Result<(SimRecording, i32, &'static str), SimError> {
    simulate_with(choice, run, seed, &RunOptions { progress, label: label.to_string(), ..Default::default() })
}

/// [`simulate_on`] with every run option (e.g. a cancellation flag).
pub fn simulate_with(
    choice: BackendKind,
    run: &PreparedRun,
    seed: u64,
    opts: &RunOptions,
) -> Result<(SimRecording, i32, &'static str), SimError> {
    let mut setup = run.setup.clone();
    setup.seed = seed;
    let mut backend = make_backend(choice, &setup)?;
    let rec = neurotwin_sim::run(&setup, &run.perturbations, &run.record, backend.as_mut(), opts)?;
    Ok((rec, backend.delivery_scale_exponent(), backend.name()))
}

/// [`simulate_with`] with the kept spikes streamed into `sink` (the recording holds none of them).
pub fn simulate_streaming(
    choice: BackendKind,
    run: &PreparedRun,
    seed: u64,
    opts: &RunOptions,
    sink: &mut dyn RunSink,
) -> Result<(SimRecording, i32, &'static str), SimError> {
    let mut setup = run.setup.clone();
    setup.seed = seed;
    let mut backend = make_backend(choice, &setup)?;
    let rec = neurotwin_sim::run_streaming(&setup, &run.perturbations, &run.record, backend.as_mut(), opts, sink)?;
    Ok((rec, backend.delivery_scale_exponent(), backend.name()))
}

/// Runs every sweep point and trial; writes outputs under the output folder; returns the results in
/// (point, trial) order.
pub fn run_scenario(req: &RunRequest) -> Result<Vec<RunResult>, ScenarioError> {
    let PreparedScenario { points: prepared, trials, sweep_param, inputs } =
        prepare_scenario(req, &Share::WHOLE, true)?;
    let first = &prepared[0].run;
    let out_root = req
        .out_dir
        .clone()
        .or_else(|| first.output_dir.clone())
        .unwrap_or_else(|| PathBuf::from("out").join(&first.name));
    let single = prepared.len() as u64 * trials as u64 == 1;
    // Checked before any simulation: the folder policy (no input replaced, an earlier run only with
    // --overwrite). Everything is written into its staging folder and published together at the end.
    let expected: &[&str] = if single { &RUN_FILES } else { &["summary.json"] };
    let run_dir = neurotwin_io::run_dir::RunDir::create(&out_root, "neurotwin run", inputs, req.overwrite, expected)?;
    let stage = run_dir.staging().to_path_buf();
    let threads = neurotwin_sim::trials_at_once(req.backend, req.threads.unwrap_or(first.threads));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| ScenarioError::File { path: req.scenario.clone(), message: format!("thread pool: {e}") })?;
    let jobs: Vec<(usize, u32)> = (0..prepared.len()).flat_map(|p| (0..trials).map(move |t| (p, t))).collect();
    let progress = req.progress && single;
    // Several runs: one bar counting finished runs (each run's own bar is shown only for a single run).
    let jobs_bar =
        indicatif::ProgressBar::with_draw_target(Some(jobs.len() as u64), indicatif::ProgressDrawTarget::hidden());
    if req.progress && !single {
        jobs_bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        jobs_bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} runs {elapsed}/{duration}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        jobs_bar.set_message(first.name.clone());
    }
    let results: Vec<Result<RunResult, ScenarioError>> = pool.install(|| {
        jobs.par_iter()
            .map(|&(p, t)| {
                let PreparedPoint { label, value, run } = &prepared[p];
                let rel = if single {
                    PathBuf::new()
                } else {
                    let point = if label.is_empty() { "run".to_string() } else { label.clone() };
                    PathBuf::from(point).join(format!("trial-{t}"))
                };
                let seed = trial_seed(run.setup.seed, t);
                let started = Instant::now();
                let opts = RunOptions { progress, label: run.name.clone(), profile: req.profile, ..Default::default() };
                // Spikes and state samples go to the output folder as the run goes (the returned recording holds none).
                let dir = stage.join(&rel);
                let mut outputs = RunOutputs::start(&dir, run)?;
                let (rec, exponent, backend) = simulate_streaming(req.backend, run, seed, &opts, &mut outputs)?;
                let wall_s = started.elapsed().as_secs_f64();
                let summary = summarize(
                    run,
                    &rec,
                    sweep_param.clone(),
                    value.clone(),
                    t,
                    seed,
                    backend,
                    exponent,
                    wall_s,
                    &out_root.join(&rel),
                );
                outputs.finish(&dir, run, &rec, &summary)?;
                jobs_bar.inc(1);
                Ok(RunResult { summary, recording: rec })
            })
            .collect()
    });
    jobs_bar.finish_and_clear();
    let results: Vec<RunResult> = results.into_iter().collect::<Result<_, _>>()?;
    if !single {
        let all: Vec<&RunSummary> = results.iter().map(|r| &r.summary).collect();
        write_json(&stage.join("summary.json"), &all)?;
    }
    run_dir.commit()?;
    Ok(results)
}

/// The summary of one finished run (what `summary.json` holds).
#[allow(clippy::too_many_arguments)]
pub fn summarize(
    run: &PreparedRun,
    rec: &SimRecording,
    sweep_param: Option<String>,
    sweep_value: Option<String>,
    trial: u32,
    seed: u64,
    backend: &str,
    exponent: i32,
    wall_s: f64,
    dir: &Path,
) -> RunSummary {
    let net = &run.setup.network;
    let readout = run
        .readout
        .iter()
        .map(|(label, ids)| ReadoutRate {
            label: label.clone(),
            neurons: ids.iter().map(|&i| net.neurons[i as usize].name.clone()).collect(),
            rate_hz: rec.mean_rate_hz(ids),
            per_neuron_hz: ids.iter().map(|&i| rec.mean_rate_hz(&[i])).collect(),
            windows_hz: run
                .windows
                .iter()
                .enumerate()
                .map(|(k, (w, a, b))| (w.clone(), window_rate(rec, ids, k, *a, *b)))
                .collect(),
        })
        .collect();
    RunSummary {
        scenario: run.name.clone(),
        sweep_param,
        sweep_value,
        trial,
        seed,
        backend: backend.to_string(),
        threads: rayon::current_num_threads(),
        model: run.model_name.clone(),
        neurons: net.n_neurons(),
        synapses: net.chemical.n_synapses(),
        gap_junction_entries: net.gap.n_entries(),
        bytes_per_synapse: net.chemical.bytes_per_synapse(),
        weight_encoding: net.chemical.weight_encoding(),
        delivery_fixed_point_exponent: exponent,
        dt_ms: rec.dt_ms,
        duration_ms: rec.duration_ms(),
        steps: rec.steps,
        total_spikes: rec.spike_counts.iter().sum(),
        mean_rate_hz: rec.mean_rate_hz(&[]),
        rate_by_cell_type_hz: run
            .record
            .rate_groups
            .iter()
            .map(|g| (g.name.clone(), rec.mean_rate_hz(&g.neurons)))
            .collect(),
        readout,
        rate_traces: rec.rates.clone(),
        wall_s,
        output_dir: Some(dir.to_path_buf()),
        phases: rec.phases.clone(),
        ranks: Vec::new(),
        plasticity: plasticity_summary(run, rec),
    }
}

/// The files one run may write (checked against the output folder before simulating).
pub const RUN_FILES: [&str; 7] =
    ["spikes.h5", "nodes.csv", "state.h5", "raster.png", "weights.h5", "weights.png", "summary.json"];

/// Writes the files of one run into `dir`: `spikes.h5`, `nodes.csv`, `state.h5`, `raster.png` (if asked),
/// `weights.h5` and `weights.png` (with plastic synapses) and `summary.json`.
pub fn write_outputs(dir: &Path, run: &PreparedRun, rec: &SimRecording, summary: &RunSummary) -> Result<(), SimError> {
    let mut outputs = RunOutputs::start(dir, run)?;
    for (step, neurons) in rec.spikes_by_step() {
        outputs.push_spikes(step, neurons)?;
    }
    for (k, t) in rec.state.iter().enumerate() {
        let n = t.neurons.len();
        for (s, &time) in t.times_ms.iter().enumerate() {
            outputs.push_state(k, time, t.values.get(s * n..(s + 1) * n).unwrap_or(&[]))?;
        }
    }
    outputs.finish(dir, run, rec, summary)
}

/// A run's outputs gathered as it goes ([`neurotwin_sim::run_streaming`]): the SONATA spike report and the state
/// report streamed into the output folder, and what the raster PNG shows, so that memory stays flat for any run
/// length.
pub struct RunOutputs {
    report: neurotwin_sim::spike_report::SpikeReportWriter,
    /// `state.h5`, when the run samples state.
    state: Option<StateReportWriter>,
    raster: Option<RasterSpikes>,
}

impl RunOutputs {
    /// Starts `dir/spikes.h5` (one population named after the run, node ids = neuron indices) and, when the run
    /// samples state, `dir/state.h5`.
    pub fn start(dir: &Path, run: &PreparedRun) -> Result<Self, SimError> {
        let n = run.setup.n_neurons();
        let all = ReportPopulation { name: run.name.clone(), first: 0, count: n as u32 };
        let report = SpikeReportWriter::create(&dir.join("spikes.h5"), &[all], run.setup.dt_ms())?;
        let probes: Vec<StateProbeSpec> = run
            .record
            .state
            .iter()
            .map(|p| StateProbeSpec { var: p.var_name.clone(), neurons: p.neurons.clone() })
            .collect();
        let state = if probes.is_empty() {
            None
        } else {
            Some(StateReportWriter::create(&dir.join("state.h5"), &probes, run.setup.dt_ms())?)
        };
        let raster = run.raster.then(|| RasterSpikes::new(run.setup.dt_ms(), run.setup.steps, n));
        Ok(Self { report, state, raster })
    }

    /// Publishes the spike and state reports and writes the run's other files (node table, raster, summary).
    pub fn finish(
        self,
        dir: &Path,
        run: &PreparedRun,
        rec: &SimRecording,
        summary: &RunSummary,
    ) -> Result<(), SimError> {
        self.report.finish()?;
        if let Some(state) = self.state {
            state.finish()?;
        }
        let names = run.setup.network.neurons.iter().map(|n| n.name.as_str());
        write_node_table(&dir.join("nodes.csv"), names)?;
        if let Some(w) = &rec.weights {
            let receptors: Vec<String> = run.setup.network.receptors.iter().map(|r| r.name.clone()).collect();
            neurotwin_sim::output::write_weight_report(&dir.join("weights.h5"), w, &receptors, rec.dt_ms)?;
            let bounds: Vec<(f64, f64)> = run.setup.plasticity.projections.iter().map(|p| p.rule.bounds()).collect();
            crate::plot::weights_png(&dir.join("weights.png"), &run.name, w, &bounds)?;
        }
        if let Some(raster) = &self.raster {
            let title = format!("{} — {} neurons, {} ms", run.name, run.setup.n_neurons(), rec.duration_ms());
            crate::plot::raster_png(&dir.join("raster.png"), &title, raster, &run.readout)?;
        }
        write_json(&dir.join("summary.json"), summary)
    }
}

impl RunSink for RunOutputs {
    fn push_spikes(&mut self, step: u64, neurons: &[u32]) -> Result<(), SimError> {
        self.report.push(step, neurons)?;
        if let Some(r) = &mut self.raster {
            r.push(step, neurons);
        }
        Ok(())
    }

    fn takes_state(&self) -> bool {
        self.state.is_some()
    }

    fn push_state(&mut self, probe: usize, time_ms: f64, values: &[f64]) -> Result<(), SimError> {
        match &mut self.state {
            Some(w) => w.push(probe, time_ms, values),
            None => Ok(()),
        }
    }
}

/// Mean rate (Hz) of `ids` from the kept spikes in steps `[a, b)`.
pub fn window_rate(rec: &SimRecording, ids: &[u32], window: usize, a: u64, b: u64) -> f64 {
    let n = match rec.window_counts.get(window) {
        // Counted by the engine for every neuron (`RecordSpec::count_windows`, in the windows' order).
        Some(counts) => ids.iter().map(|&i| counts[i as usize]).sum::<u64>() as usize,
        // A recording made without the count: the kept spikes.
        None => {
            let member: std::collections::HashSet<u32> = ids.iter().copied().collect();
            rec.spike_steps
                .iter()
                .zip(&rec.spike_neurons)
                .filter(|(s, i)| (a..b).contains(*s) && member.contains(*i))
                .count()
        }
    };
    n as f64 / ids.len().max(1) as f64 / ((b - a) as f64 * rec.dt_ms * 1e-3)
}
