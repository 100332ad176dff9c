//! Subcommands.

mod compare;
mod demo;
mod doctor;
pub mod export;
mod fit;
mod import;
mod inspect;
mod kernels;
pub mod library;
mod load;
mod pc;
mod run;
mod segment;
mod segment_ooc;
mod segment_train;
pub mod table;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use neurotwin_scenarios::BackendKind;

#[derive(Parser, Debug)]
#[command(name = "neurotwin", version, about = "Runnable, testable digital twins from connectomes")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Largest memory a request may need (e.g. 64G, 512M); default 80 % of the memory available to this
    /// process. Requests estimated beyond it are refused before allocating, with the estimate.
    #[arg(long, global = true, value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// Run requests whose estimated time exceeds 24 h instead of refusing them.
    #[arg(long, global = true)]
    pub force: bool,
}

/// Sets the process-wide resource limits from `--max-memory` / `--force` (see `neurotwin_io::budget`).
pub fn set_limits(cli: &Cli) -> anyhow::Result<()> {
    let mut l = neurotwin_io::budget::default_limits();
    if let Some(s) = &cli.max_memory {
        l.max_memory_bytes = neurotwin_io::budget::parse_size(s).map_err(|e| anyhow::anyhow!("--max-memory: {e}"))?;
        l.memory_source = "--max-memory";
    }
    l.force = cli.force;
    neurotwin_io::budget::set_limits(l);
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario file (all trials and sweep points) or a SONATA simulation config (`config.json` /
    /// `simulation_config.json`); writes spikes.h5, summary.json, raster.png.
    Run {
        /// Scenario file (TOML) or SONATA simulation config (JSON).
        scenario: PathBuf,
        /// Output folder (default: the scenario's [output] dir, else out/<scenario name>).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Worker threads (default: the scenario's run.threads, else all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print the summary as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Backend: cpu, cuda (fails without a usable GPU), auto (CUDA if available, else CPU),
        /// cuda-host (the CUDA kernels run on the CPU, for verification).
        #[arg(long, default_value = "cpu")]
        backend: BackendKind,
        /// Replace the files of an earlier run in the output folder (only those; inputs are never replaced).
        #[arg(long)]
        overwrite: bool,
        /// Time each phase of the step loop (control, update, compaction, delivery, exchange, recording) and
        /// print the split; summary.json gets `phases` (seconds). Results do not change.
        #[arg(long)]
        profile: bool,
    },
    /// Run the bundled C. elegans gentle-touch scenario and print what the read-out neurons did.
    Demo {
        /// Output folder.
        #[arg(short, long, default_value = "out/demo")]
        out: PathBuf,
        /// Backend: cpu, cuda, auto, cuda-host.
        #[arg(long, default_value = "cpu")]
        backend: BackendKind,
    },
    /// Compare a scenario's model with real data as its [compare] section says (propagation atlas,
    /// calcium recordings); writes tables (CSV, JSON) and figures (PNG).
    Compare(compare::CompareArgs),
    /// Report the machine: cores, CUDA driver, GPUs, NVRTC.
    Doctor,
    /// Fit a twin to data as the scenario's [fit] section says (gradient descent through the simulation,
    /// k-fold cross-validation, baselines); writes summary.json, fitted_params.json, fit_history.csv,
    /// pairs.csv, loss.png, predicted_vs_measured.png.
    Fit(fit::FitArgs),
    /// Export a finished run to a standard format: `export nwb RUN_DIR -o OUT.nwb` (NWB 2.x: spikes as the
    /// units table, simulated ΔF/F as a RoiResponseSeries).
    Export(export::ExportArgs),
    /// Compile the CUDA kernels to cubins with NVRTC (no GPU needed), for a GPU machine without a usable
    /// NVRTC: `kernels --cubin-dir DIR --arch 80,89,90`, then run there with NEUROTWIN_KERNEL_DIR=DIR.
    Kernels(kernels::KernelsArgs),
    /// Convert a connectome (CSV, bundled or a SONATA circuit) to a neurotwin HDF5 file or (`--to sonata`) a
    /// SONATA circuit.
    Import(import::ImportArgs),
    /// Print what a connectome holds and compiles to: sizes, bytes/synapse, receptor classes, hubs,
    /// paths, strongly connected components.
    Inspect(inspect::InspectArgs),
    /// Run a predictive-coding scenario (`model = "predictive_coding"`; `run` dispatches such files here too):
    /// trains and evaluates, writes energy.csv, training.csv, weights.h5, reconstructions.h5, summary.json and,
    /// for image patches, receptive_fields.png.
    Pc(pc::PcArgs),
    /// Segment an EM volume (HDF5) into neurons and synapses and write a connectome; with
    /// --ground-truth, report VOI split/merge, adapted Rand error and synapse F1.
    Segment(Box<segment::SegmentArgs>),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { scenario, out, threads, json, backend, overwrite, profile } => {
            run::run(run::RunArgs { scenario, out, threads, json, backend, overwrite, profile })
        }
        Command::Demo { out, backend } => demo::demo(out, backend),
        Command::Compare(a) => compare::compare(a),
        Command::Doctor => doctor::doctor(),
        Command::Fit(a) => fit::fit(a),
        Command::Export(a) => export::export(a),
        Command::Import(a) => import::import(a),
        Command::Kernels(a) => kernels::kernels(a),
        Command::Inspect(a) => inspect::inspect(a),
        Command::Segment(a) => segment::segment(*a),
        Command::Pc(a) => pc::pc(a),
    }
}
