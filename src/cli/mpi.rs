//! `neurotwin run` under `mpirun` (cargo feature `mpi`): one network split across MPI ranks, spike-identical to
//! one process.
//!
//! Each rank runs the scenario's sweep points and trials one after another (the collectives of all ranks must
//! match) on a `DistributedBackend` (see `neurotwin_sim::distributed`): it updates its share (a contiguous range) of
//! 64-neuron blocks and exchanges spikes every min-delay interval with `MPI_Allgatherv` ([`MpiExchange`]). Every
//! rank ends up with the full spike list; rank 0 writes the output folder and prints the summary.
//!
//! MPI is initialised only when the process was started by an MPI launcher (Open MPI's, MPICH's or a PMI
//! environment); a plain `neurotwin run` of a binary built with the feature behaves as one without it.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use mpi::Count;
use mpi::datatype::PartitionMut;
use mpi::environment::Threading;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use neurotwin_connectome::Share;
use neurotwin_io::run_dir::RunDir;
use neurotwin_scenarios::runner::{
    PreparedPoint, PreparedScenario, RUN_FILES, RankReport, RunOutputs, prepare_all_part, summarize, trial_seed,
};
use neurotwin_scenarios::sonata::{self, SonataSimulation};
use neurotwin_scenarios::{BackendKind, RunRequest, RunResult, RunSummary};
use neurotwin_sim::distributed::{DistributedBackend, SpikeExchange, all_ok};
use neurotwin_sim::output::write_json;
use neurotwin_sim::{Backend, RunOptions, RunSink, SimError};

/// Spike exchange over an MPI communicator: `MPI_Allgather` of the counts, then `MPI_Allgatherv` of the data.
pub struct MpiExchange {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
}

// SAFETY: the communicator handle is a plain MPI handle; MPI was initialised with at least
// `MPI_THREAD_SERIALIZED` (checked in `run`), which allows calls from any thread as long as they do not overlap.
// The exchange is used through `&mut self` only (one caller at a time), and the engine drives a backend from one
// thread at a time.
unsafe impl Send for MpiExchange {}

impl MpiExchange {
    fn new(world: SimpleCommunicator) -> Self {
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Self { world, rank, size }
    }
}

impl SpikeExchange for MpiExchange {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&mut self, local: &[u64]) -> Result<Vec<u64>, SimError> {
        let too_many =
            || SimError::Setup("more than 2^31 values in one spike exchange; use fewer steps per exchange".into());
        let n: Count = local.len().try_into().map_err(|_| too_many())?;
        let mut counts = vec![0 as Count; self.size];
        self.world.all_gather_into(&n, &mut counts[..]);
        let mut displs = Vec::with_capacity(self.size);
        let mut total: Count = 0;
        for &c in &counts {
            displs.push(total);
            total = total.checked_add(c).ok_or_else(too_many)?;
        }
        let mut all = vec![0u64; total as usize];
        let mut partition = PartitionMut::new(&mut all[..], counts, &displs[..]);
        self.world.all_gather_varcount_into(local, &mut partition);
        Ok(all)
    }
}

/// Whether an MPI launcher started this process.
fn under_mpi_launcher() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"].iter().any(|v| std::env::var_os(v).is_some())
}

/// MPI, initialised when an MPI launcher started this process with more than one rank; `None` otherwise (the
/// caller runs as one process). Refuses a backend other than the CPU and an MPI without `Serialized` threading.
fn start(backend: BackendKind) -> anyhow::Result<Option<(mpi::environment::Universe, MpiExchange)>> {
    if !under_mpi_launcher() {
        return Ok(None);
    }
    let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
        .context("MPI was initialised twice; run one scenario per process")?;
    let world = universe.world();
    if world.size() == 1 {
        return Ok(None);
    }
    if backend != BackendKind::Cpu {
        bail!("distributed runs (mpirun with {} ranks) use the CPU backend; drop --backend", world.size());
    }
    if matches!(threading, Threading::Single | Threading::Funneled) {
        bail!(
            "the MPI library provides only {threading:?} threading, neurotwin needs Serialized; use Open MPI or MPICH"
        );
    }
    Ok(Some((universe, MpiExchange::new(world))))
}

/// Runs `req` distributed when started by `mpirun` with more than one rank and returns `true` (rank 0 has
/// written the outputs and printed the summary); returns `false` otherwise, and the caller runs as usual.
pub fn run(req: &RunRequest, json: bool) -> anyhow::Result<bool> {
    let Some((universe, exchange)) = start(req.backend)? else { return Ok(false) };
    // Errors name the failing rank (every rank reports the same one, see `run_ranks`).
    let results = run_ranks(req, exchange)?;
    if let Some(results) = results {
        if json {
            let all: Vec<_> = results.iter().map(|r| &r.summary).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        } else {
            super::print_summary(&results);
            super::print_ranks(&results);
        }
    }
    drop(universe); // MPI_Finalize after every rank is done
    Ok(true)
}

/// A SONATA simulation config run distributed when started by `mpirun` with more than one rank: `None` when not
/// (the caller runs it as one process), `Some(None)` on ranks other than 0, `Some(Some(..))` on rank 0 with the
/// simulation and its result to print (the outputs are written).
pub fn run_sonata(
    config: &std::path::Path,
    out: Option<&std::path::Path>,
    threads: Option<usize>,
    overwrite: bool,
) -> anyhow::Result<Option<Option<(SonataSimulation, RunResult)>>> {
    let Some((universe, mut exchange)) = start(BackendKind::Cpu)? else { return Ok(None) };
    let (rank, size) = (exchange.rank, exchange.size);
    let share = Share::new(rank, size)?;
    let prepare_started = Instant::now();
    let prepared = sonata::prepare_sonata_part(config, &share);
    all_ok(&mut exchange, prepared.as_ref().err())?;
    let mut sim = prepared?;
    let prepare_s = prepare_started.elapsed().as_secs_f64();
    let run_dir = (rank == 0).then(|| sonata::create_output_dir(&mut sim, out, overwrite));
    all_ok(&mut exchange, run_dir.as_ref().and_then(|r| r.as_ref().err()))?;
    let run_dir = run_dir.transpose()?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads_per_rank(threads, 0, size)).build()?;
    let run = &sim.run;
    // Rank 0 keeps the spikes for the report (SONATA runs are written from memory), the others drop them.
    let sink: Option<&mut (dyn RunSink + Send)> = if rank == 0 { None } else { Some(&mut DiscardSpikes) };
    let done = simulate_part(exchange, &pool, &run.setup, run, rank == 0, false, prepare_s, sink)?;
    let (rec, mut x) = (done.rec, done.exchange);
    let written: anyhow::Result<Option<RunSummary>> = match &run_dir {
        Some(d) => {
            let mut summary = summarize(
                run,
                &rec,
                None,
                None,
                0,
                run.setup.seed,
                done.backend,
                done.exponent,
                done.wall_s,
                &sim.output_dir,
            );
            summary.synapses = done.ranks.iter().map(|r| r.synapses).sum();
            summary.ranks = done.ranks;
            sonata::write_outputs(&sim, d.staging(), &rec, &summary).map(|_| Some(summary)).map_err(Into::into)
        }
        None => Ok(None),
    };
    all_ok(&mut x, written.as_ref().err())?;
    let result = match (written?, run_dir) {
        (Some(summary), Some(d)) => {
            d.commit()?;
            Some((sim, RunResult { summary, recording: rec }))
        }
        _ => None,
    };
    drop(universe);
    Ok(Some(result))
}

/// Worker threads per rank: as asked, else the node's cores shared between its ranks.
fn threads_per_rank(asked: Option<usize>, scenario: usize, size: usize) -> usize {
    asked.or(Some(scenario)).filter(|&t| t > 0).unwrap_or_else(|| {
        let local: usize =
            std::env::var("OMPI_COMM_WORLD_LOCAL_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(size);
        (std::thread::available_parallelism().map_or(1, |n| n.get()) / local.max(1)).max(1)
    })
}

/// One finished run of this rank's part.
struct PartRun {
    rec: neurotwin_sim::SimRecording,
    exponent: i32,
    backend: &'static str,
    wall_s: f64,
    /// Every rank's report (gathered).
    ranks: Vec<RankReport>,
    /// The exchange, back from the backend for the next run.
    exchange: MpiExchange,
}

/// Discards the spikes and state samples every rank receives (rank 0 keeps or streams them; the others need
/// only the counts).
struct DiscardSpikes;

impl RunSink for DiscardSpikes {
    fn push_spikes(&mut self, _: u64, _: &[u32]) -> Result<(), neurotwin_sim::SimError> {
        Ok(())
    }

    fn takes_state(&self) -> bool {
        true
    }
}

/// Simulates `setup` (this rank's share of `run`) on a distributed backend and gathers every rank's report. The
/// kept spikes (every rank receives all of them) go to `sink`, or into the recording without one.
#[allow(clippy::too_many_arguments)]
fn simulate_part(
    exchange: MpiExchange,
    pool: &rayon::ThreadPool,
    setup: &neurotwin_sim::SimSetup,
    run: &neurotwin_scenarios::PreparedRun,
    progress: bool,
    profile: bool,
    prepare_s: f64,
    sink: Option<&mut (dyn RunSink + Send)>,
) -> anyhow::Result<PartRun> {
    let started = Instant::now();
    let (rec, exponent, backend) = pool.install(|| -> anyhow::Result<_> {
        let mut backend = DistributedBackend::new(setup, exchange)?;
        let opts = RunOptions { progress, label: run.name.clone(), profile, ..Default::default() };
        let (p, r) = (&run.perturbations, &run.record);
        let rec = match sink {
            Some(sink) => neurotwin_sim::run_streaming(setup, p, r, &mut backend, &opts, sink)?,
            None => neurotwin_sim::run(setup, p, r, &mut backend, &opts)?,
        };
        Ok((rec, backend.delivery_scale_exponent(), backend))
    })?;
    let name = backend.name();
    let synapses = backend.synapses_per_rank().to_vec();
    let exchange_s = backend.exchange_seconds();
    let volume = backend.exchange_volume();
    let mut x = backend.into_exchange();
    let wall_s = started.elapsed().as_secs_f64();
    let ranks = rank_reports(&mut x, setup, [prepare_s, wall_s, exchange_s], volume, &synapses)?;
    Ok(PartRun { rec, exponent, backend: name, wall_s, ranks, exchange: x })
}

/// Every sweep point and trial in order on this rank; rank 0 writes the outputs and gets the results.
///
/// Each rank builds only its share of every network (`prepare_all_part`: the synapses onto the neurons it
/// owns). Every step that can fail on one rank alone — preparing (reading or building its part), creating the
/// output folder (rank 0), building the backend, writing the outputs (rank 0) — is followed by [`all_ok`], so a
/// failure stops every rank with the same message instead of leaving the others waiting in a collective.
fn run_ranks(req: &RunRequest, mut exchange: MpiExchange) -> anyhow::Result<Option<Vec<RunResult>>> {
    let (rank, size) = (exchange.rank, exchange.size);
    let share = Share::new(rank, size)?;
    let prepare_started = Instant::now();
    let prepared = prepare_all_part(req, &share);
    all_ok(&mut exchange, prepared.as_ref().err())?;
    let PreparedScenario { points, trials, sweep_param, inputs } = prepared?;
    let prepare_s = prepare_started.elapsed().as_secs_f64();
    let first = &points[0].run;
    let out_root = req
        .out_dir
        .clone()
        .or_else(|| first.output_dir.clone())
        .unwrap_or_else(|| PathBuf::from("out").join(&first.name));
    let threads = threads_per_rank(req.threads, first.threads, size);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().context("thread pool")?;
    let single = points.len() == 1 && trials == 1;
    // Rank 0 writes everything into a staging folder, published together after the last run.
    let run_dir = if rank == 0 {
        let expected: &[&str] = if single { &RUN_FILES } else { &["summary.json"] };
        Some(RunDir::create(&out_root, "neurotwin run (MPI)", inputs, req.overwrite, expected))
    } else {
        None
    };
    all_ok(&mut exchange, run_dir.as_ref().and_then(|r| r.as_ref().err()))?;
    let run_dir = run_dir.transpose()?;
    let stage = run_dir.as_ref().map_or_else(|| out_root.clone(), |d| d.staging().to_path_buf());
    let mut exchange = Some(exchange);
    let mut results = Vec::new();
    for PreparedPoint { label, value, run } in &points {
        for t in 0..trials {
            let rel = if single {
                PathBuf::new()
            } else {
                let point = if label.is_empty() { "run".to_string() } else { label.clone() };
                PathBuf::from(point).join(format!("trial-{t}"))
            };
            let mut setup = run.setup.clone();
            setup.seed = trial_seed(run.setup.seed, t);
            // One exchange per run: take it back from the finished run for the next one.
            let mut x = exchange.take().context("spike exchange lost by a failed run")?;
            // Rank 0 streams the spikes into the output folder as they come; the others drop them.
            let dir = stage.join(&rel);
            let outputs = (rank == 0).then(|| RunOutputs::start(&dir, run));
            all_ok(&mut x, outputs.as_ref().and_then(|o| o.as_ref().err()))?;
            let mut outputs = outputs.transpose()?;
            let sink: &mut (dyn RunSink + Send) = match &mut outputs {
                Some(o) => o,
                None => &mut DiscardSpikes,
            };
            let progress = req.progress && single && rank == 0;
            let done = simulate_part(x, &pool, &setup, run, progress, req.profile, prepare_s, Some(sink))?;
            let (rec, mut x) = (done.rec, done.exchange);
            let written: anyhow::Result<Option<RunSummary>> = if rank == 0 {
                let mut summary = summarize(
                    run,
                    &rec,
                    sweep_param.clone(),
                    value.clone(),
                    t,
                    setup.seed,
                    done.backend,
                    done.exponent,
                    done.wall_s,
                    &out_root.join(&rel),
                );
                summary.threads = threads;
                // The whole network's synapses (each rank holds its share).
                summary.synapses = done.ranks.iter().map(|r| r.synapses).sum();
                summary.ranks = done.ranks;
                match outputs {
                    Some(o) => o.finish(&dir, run, &rec, &summary).map(|_| Some(summary)).map_err(Into::into),
                    None => Ok(None),
                }
            } else {
                Ok(None)
            };
            all_ok(&mut x, written.as_ref().err())?;
            if let Some(summary) = written? {
                results.push(RunResult { summary, recording: rec });
            }
            exchange = Some(x);
        }
    }
    if rank != 0 {
        return Ok(None);
    }
    if !single {
        let all: Vec<&RunSummary> = results.iter().map(|r| &r.summary).collect();
        write_json(&stage.join("summary.json"), &all)?;
    }
    if let Some(d) = run_dir {
        d.commit()?;
    }
    Ok(Some(results))
}

/// Every rank's report of one run, gathered (a collective): its neurons, synapses, peak memory and times.
fn rank_reports(
    exchange: &mut MpiExchange,
    setup: &neurotwin_sim::SimSetup,
    [prepare_s, simulate_s, exchange_s]: [f64; 3],
    (exchanges, exchange_bytes): (u64, u64),
    synapses: &[u64],
) -> anyhow::Result<Vec<RankReport>> {
    let n = setup.network.n_neurons() as u32;
    let held = setup.network.held_targets.clone().unwrap_or(0..n);
    let mine = [
        held.start as u64,
        held.end as u64,
        peak_rss_mib().to_bits(),
        prepare_s.to_bits(),
        simulate_s.to_bits(),
        exchange_s.to_bits(),
        exchanges,
        exchange_bytes,
    ];
    let all = exchange.all_gather(&mine)?;
    Ok(all
        .chunks_exact(mine.len())
        .enumerate()
        .map(|(r, v)| RankReport {
            rank: r,
            neurons: [v[0] as u32, v[1] as u32],
            synapses: synapses.get(r).copied().unwrap_or(0),
            peak_rss_mib: f64::from_bits(v[2]),
            prepare_s: f64::from_bits(v[3]),
            simulate_s: f64::from_bits(v[4]),
            exchange_s: f64::from_bits(v[5]),
            exchanges: v[6],
            exchange_bytes: v[7],
        })
        .collect())
}

/// Peak resident memory of this process (MiB); 0 where unavailable.
fn peak_rss_mib() -> f64 {
    neurotwin_io::budget::peak_rss_bytes() as f64 / (1024.0 * 1024.0)
}
