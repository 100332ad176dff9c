//! `neurotwin fit`: calibrate a twin on data (a scenario with a `[fit]` section) by gradient descent,
//! cross-validated, with baselines; writes the fitted parameters and the report.

use std::path::PathBuf;

use clap::Args;
use neurotwin_fit::atlas::{BackendKind, check_fit_backend};
use neurotwin_scenarios::fitting::{AtlasFitReport, CalciumFitReport, FitReport, read_fit_scenario, run_fit_any};

use super::table::render;

#[derive(Args, Debug)]
pub struct FitArgs {
    /// Fit scenario (TOML with a [fit] section), e.g. scenarios/celegans_fit_atlas.toml.
    pub scenario: PathBuf,
    /// Output folder (default: the scenario's [output] dir, else out/<scenario name>). It must not
    /// contain any input.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Backend of the simulations and gradients: cpu, or cuda-host (the CUDA fitting kernels compiled for
    /// the host, bit-identical to cpu; for verification); auto runs on the CPU. A GPU device path (cuda) is
    /// not built yet.
    #[arg(long, default_value = "cpu")]
    pub backend: BackendKind,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Replace the files of an earlier run in the output folder (only those; inputs are never replaced).
    #[arg(long)]
    pub overwrite: bool,
}

/// A finished fit: the report (as `summary.json` holds it), the output folder and the files written there.
pub struct FitOutcome {
    pub report: FitReport,
    pub out_dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Output files of an atlas fit and of a calcium fit.
const ATLAS_FILES: [&str; 6] =
    ["summary.json", "fitted_params.json", "fit_history.csv", "pairs.csv", "loss.png", "predicted_vs_measured.png"];
const CALCIUM_FILES: [&str; 6] =
    ["summary.json", "fitted_params.json", "fit_history.csv", "neurons.csv", "loss.png", "heldout_traces.png"];

pub fn fit(a: FitArgs) -> anyhow::Result<()> {
    if let Some(t) = a.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().ok();
    }
    let o = fit_outcome(&a, !a.json)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&o.report)?);
        return Ok(());
    }
    match &o.report {
        FitReport::Atlas(r) => print_report(r),
        FitReport::Calcium(r) => print_calcium_report(r),
    }
    let names: Vec<String> = o.files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into()).collect();
    println!("outputs in {}: {}", o.out_dir.display(), names.join(", "));
    Ok(())
}

/// Runs the fit `a` asks for on the current rayon pool (`--threads` is the caller's), with progress on stderr
/// when `progress`, and publishes its outputs.
pub fn fit_outcome(a: &FitArgs, progress: bool) -> anyhow::Result<FitOutcome> {
    let backend = check_fit_backend(a.backend).map_err(anyhow::Error::msg)?;
    let file = read_fit_scenario(&a.scenario)?;
    let (report, out_dir) = run_fit_any(&file, a.out.as_deref(), progress, backend, a.overwrite)?;
    let names: &[&str] = match &report {
        FitReport::Atlas(_) => &ATLAS_FILES,
        FitReport::Calcium(_) => &CALCIUM_FILES,
    };
    let files = names.iter().map(|n| out_dir.join(n)).collect();
    Ok(FitOutcome { report, out_dir, files })
}

fn print_calcium_report(r: &CalciumFitReport) {
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let names = |w: &[neurotwin_scenarios::fitting::calcium_fit::WormInfo]| {
        w.iter().map(|w| format!("{} ({}/{})", w.name, w.n_driven, w.n_held_out)).collect::<Vec<_>>().join(", ")
    };
    println!(
        "{}: {} neurons, {} connections, {} fitted numbers; trained on {} windows of {} frames ({} validation), {} restart(s), best epoch {}, {:.0} s",
        r.name,
        r.n_neurons,
        r.n_connections,
        r.n_fitted_numbers,
        r.n_train_windows,
        r.protocol.window_frames,
        r.n_val_windows,
        r.restarts,
        r.best_epoch,
        r.seconds
    );
    println!("training worms (driven/held-out): {}", names(&r.train_worms));
    println!("test worms (driven/held-out):     {}", names(&r.test_worms));
    let table = |scores: &[neurotwin_scenarios::fitting::calcium_fit::PredictorScore]| {
        let rows: Vec<Vec<String>> = scores
            .iter()
            .map(|s| {
                vec![
                    s.predictor.clone(),
                    format!("{}/{}", s.n_defined, s.n_neurons),
                    fmt(s.median_r),
                    fmt(s.mean_r),
                    fmt(s.median_r_undefined_as_zero),
                    format!("{} ({})", fmt(s.median_r_common), s.n_common),
                ]
            })
            .collect();
        render(
            &[
                "predictor",
                "defined/neurons",
                "median r",
                "mean r",
                "median r (undef = 0)",
                "median r, all defined (n)",
            ],
            &rows,
        )
    };
    println!("\nheld-out neurons of the test worms (never fitted on):\n{}", table(&r.held_out));
    for w in &r.held_out_per_worm {
        println!("\n{}:\n{}", w.worm, table(&w.scores));
    }
    println!("\ntraining worms (in-sample):\n{}", table(&r.training_worms_in_sample));
}

fn print_report(r: &AtlasFitReport) {
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    println!(
        "{}: {} neurons, {} connections, {} fitted numbers; {}-fold cross-validation over stimulated neurons, {} restart(s), {:.0} s",
        r.name, r.n_neurons, r.n_connections, r.n_fitted_numbers, r.folds, r.restarts, r.seconds
    );
    for s in std::iter::once(&r.cross_validated).chain(&r.other_strains) {
        let title = if std::ptr::eq(s, &r.cross_validated) {
            format!("{} held out (cross-validated)", s.strain)
        } else {
            format!("{} (final twin, unchanged)", s.strain)
        };
        println!(
            "\n{title}: {} stimulated neurons, {} pairs, {} responders",
            s.n_stimulated, s.n_pairs, s.n_responders
        );
        let rows: Vec<Vec<String>> =
            s.scores.iter().map(|x| vec![x.predictor.clone(), fmt(x.pearson_r), fmt(x.auc)]).collect();
        println!("{}", render(&["predictor", "Pearson r (ΔF/F)", "ROC AUC (responders)"], &rows));
    }
}
