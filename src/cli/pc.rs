//! `neurotwin pc` (and `neurotwin run` on a file with `model = "predictive_coding"`).

use std::path::{Path, PathBuf};

use neurotwin_predictive::{BackendKind, PcSummary, RunOptions, run_scenario};

#[derive(clap::Args, Debug)]
pub struct PcArgs {
    /// Scenario file (TOML) with `model = "predictive_coding"`.
    pub scenario: PathBuf,
    /// Output folder (default: the scenario's [output] dir, else out/<scenario name>).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Backend: cpu, cuda (the GPU), auto (the GPU when one is usable, else the CPU), or cuda-host (the CUDA
    /// kernels run on the CPU, for verification). All give bit-identical results.
    #[arg(long, default_value = "cpu")]
    pub backend: BackendKind,
    /// Train this many batches instead of the scenario's training.batches.
    #[arg(long)]
    pub batches: Option<usize>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Replace the files of an earlier run in the output folder (only those; inputs are never replaced).
    #[arg(long)]
    pub overwrite: bool,
}

pub fn pc(a: PcArgs) -> anyhow::Result<()> {
    let opts = RunOptions { out_dir: a.out, backend: a.backend, batches: a.batches, overwrite: a.overwrite };
    execute(&a.scenario, opts, a.json)
}

/// `neurotwin run` on a predictive-coding scenario.
pub fn run_predictive(
    scenario: &Path,
    out: Option<PathBuf>,
    json: bool,
    backend: BackendKind,
    overwrite: bool,
) -> anyhow::Result<()> {
    execute(scenario, RunOptions { out_dir: out, backend, batches: None, overwrite }, json)
}

fn execute(scenario: &Path, opts: RunOptions, json: bool) -> anyhow::Result<()> {
    let s = run_scenario(scenario, &opts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_summary(&s);
    }
    Ok(())
}

fn print_summary(s: &PcSummary) {
    println!(
        "{}: predictive coding, layers {:?}, weights nnz {:?}, backend {:?}, {} training batches, {:.2} s",
        s.scenario, s.layer_sizes, s.weights_nnz, s.backend, s.training_batches, s.wall_s
    );
    println!(
        "  evaluation free energy per sample: {:.4} → {:.4} ({}monotone)",
        s.eval_energy_initial,
        s.eval_energy_final,
        if s.eval_energy_monotone { "" } else { "not " }
    );
    println!(
        "  reconstruction error |x − μ₀|²/|x|²: initial weights {:.4}, learned {:.4}",
        s.reconstruction_error_initial, s.reconstruction_error_final
    );
    if let (Some(r), Some(l)) = (&s.rf_random, &s.rf_learned) {
        println!(
            "  receptive fields (random → learned): mean OSI {:.3} → {:.3}, oriented {:.2} → {:.2}, localised {:.2} → {:.2}, Gabor-like {:.2} → {:.2}",
            r.mean_osi,
            l.mean_osi,
            r.frac_oriented,
            l.frac_oriented,
            r.frac_localised,
            l.frac_localised,
            r.frac_gabor_like,
            l.frac_gabor_like
        );
    }
    println!("  output: {}", s.output_dir.display());
}
