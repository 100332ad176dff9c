//! `neurotwin fit`: calibrate a twin on data (a scenario with a `[fit]` section) by gradient descent,
//! cross-validated, with baselines; writes the fitted parameters and the report.

use std::path::PathBuf;

use clap::Args;
use neurotwin_scenarios::fitting::{AtlasFitReport, read_fit_scenario, run_fit};

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
    /// Backend of the gradients: cpu (the only one so far).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn fit(a: FitArgs) -> anyhow::Result<()> {
    if a.backend != "cpu" {
        anyhow::bail!(
            "--backend {}: fitting runs on `cpu` so far (the CUDA fitting kernels are verified on the host only)",
            a.backend
        );
    }
    if let Some(t) = a.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().ok();
    }
    let file = read_fit_scenario(&a.scenario)?;
    let (report, dir) = run_fit(&file, a.out.as_deref(), !a.json)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
        println!(
            "outputs in {}: summary.json, fitted_params.json, fit_history.csv, pairs.csv, loss.png, predicted_vs_measured.png",
            dir.display()
        );
    }
    Ok(())
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
