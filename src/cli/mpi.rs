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
use neurotwin_io::run_dir::RunDir;
use neurotwin_scenarios::runner::{
    PreparedPoint, PreparedScenario, RUN_FILES, prepare_all, summarize, trial_seed, write_outputs,
};
use neurotwin_scenarios::{BackendKind, RunRequest, RunResult, RunSummary};
use neurotwin_sim::distributed::{DistributedBackend, SpikeExchange};
use neurotwin_sim::output::write_json;
use neurotwin_sim::{Backend, RunOptions, SimError};

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

/// Runs `req` distributed when started by `mpirun` with more than one rank and returns `true` (rank 0 has
/// written the outputs and printed the summary); returns `false` otherwise, and the caller runs as usual.
pub fn run(req: &RunRequest, json: bool) -> anyhow::Result<bool> {
    if !under_mpi_launcher() {
        return Ok(false);
    }
    let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
        .context("MPI was initialised twice; run one scenario per process")?;
    let world = universe.world();
    if world.size() == 1 {
        return Ok(false);
    }
    if req.backend != BackendKind::Cpu {
        bail!("distributed runs (mpirun with {} ranks) use the CPU backend; drop --backend", world.size());
    }
    if matches!(threading, Threading::Single | Threading::Funneled) {
        bail!(
            "the MPI library provides only {threading:?} threading, neurotwin needs Serialized; use Open MPI or MPICH"
        );
    }
    let exchange = MpiExchange::new(world);
    let rank = exchange.rank;
    let results = run_ranks(req, exchange).with_context(|| format!("MPI rank {rank}"))?;
    if let Some(results) = results {
        if json {
            let all: Vec<_> = results.iter().map(|r| &r.summary).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        } else {
            super::print_summary(&results);
        }
    }
    drop(universe); // MPI_Finalize after every rank is done
    Ok(true)
}

/// Every sweep point and trial in order on this rank; rank 0 writes the outputs and gets the results.
fn run_ranks(req: &RunRequest, exchange: MpiExchange) -> anyhow::Result<Option<Vec<RunResult>>> {
    let (rank, size) = (exchange.rank, exchange.size);
    let PreparedScenario { points, trials, sweep_param, inputs } = prepare_all(req)?;
    let first = &points[0].run;
    let out_root = req
        .out_dir
        .clone()
        .or_else(|| first.output_dir.clone())
        .unwrap_or_else(|| PathBuf::from("out").join(&first.name));
    // Share the cores of a node between its ranks unless told otherwise.
    let threads = req.threads.or(Some(first.threads)).filter(|&t| t > 0).unwrap_or_else(|| {
        let local: usize =
            std::env::var("OMPI_COMM_WORLD_LOCAL_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(size);
        (std::thread::available_parallelism().map_or(1, |n| n.get()) / local.max(1)).max(1)
    });
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().context("thread pool")?;
    let single = points.len() == 1 && trials == 1;
    // Rank 0 writes everything into a staging folder, published together after the last run.
    let run_dir = if rank == 0 {
        let expected: &[&str] = if single { &RUN_FILES } else { &["summary.json"] };
        Some(RunDir::create(&out_root, "neurotwin run (MPI)", inputs, req.overwrite, expected)?)
    } else {
        None
    };
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
            let started = Instant::now();
            // One exchange per run: take it back from the finished backend for the next one.
            let x = exchange.take().context("spike exchange lost by a failed run")?;
            let (rec, exponent, backend) = pool.install(|| -> anyhow::Result<_> {
                let mut backend = DistributedBackend::new(&setup, x)?;
                let opts = RunOptions {
                    progress: req.progress && single && rank == 0,
                    label: run.name.clone(),
                    profile: req.profile,
                    ..Default::default()
                };
                let rec = neurotwin_sim::run(&setup, &run.perturbations, &run.record, &mut backend, &opts)?;
                Ok((rec, backend.delivery_scale_exponent(), backend))
            })?;
            let name = backend.name();
            exchange = Some(backend.into_exchange());
            let wall_s = started.elapsed().as_secs_f64();
            if rank == 0 {
                let mut summary = summarize(
                    run,
                    &rec,
                    sweep_param.clone(),
                    value.clone(),
                    t,
                    setup.seed,
                    name,
                    exponent,
                    wall_s,
                    &out_root.join(&rel),
                );
                summary.threads = threads;
                write_outputs(&stage.join(&rel), run, &rec, &summary)?;
                results.push(RunResult { summary, recording: rec });
            }
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
