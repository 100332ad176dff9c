//! `neurotwin fit`: calibrate a connectome-constrained twin on data by gradient descent, with
//! cross-validation and baselines in every report.
//!
//! Data kinds: `propagation-atlas` (Randi et al. 2023): k-fold cross-validation over *stimulated*
//! neurons — each fold's twin is fitted on the other folds' stimulations (with a validation split for
//! early stopping and several seeded restarts) and predicts the held-out stimulations' responses; the
//! held-out metrics are reported next to the unfitted model, the direct wiring, −hops and a
//! connectome-free fitted baseline (each responder's mean response over the training stimulations).
//! Then one twin is fitted on all stimulations, written out (`fitted_params.json`), and scored, unchanged,
//! on other strains (e.g. unc-31).
//!
//! `calcium` (whole-brain recordings, e.g. the Flavell lab's NeuroPAL worms): the twin is fitted with
//! teacher forcing on some worms (a random part of each worm's recorded neurons clamped to their traces,
//! the rest predicted) and scored on held-out neurons of worms never used for fitting, next to the
//! unfitted model, the direct wiring and connectome-free fitted baselines ([`calcium_fit`]; run by
//! [`run_fit_any`], which returns either report).

pub mod atlas_fit;
pub mod calcium_fit;
pub mod report;
pub mod spec;
pub mod twin_run;

use std::path::{Path, PathBuf};

use neurotwin_fit::FitNetwork;
use neurotwin_fit::rate::Activation;

use crate::build::Ctx;
use crate::error::ScenarioError;
use crate::source::load_network;
pub use atlas_fit::{AtlasFitReport, BaselineScores};
pub use calcium_fit::CalciumFitReport;
pub use spec::FitScenarioSpec;

/// A parsed fit scenario with its path and text (for located errors).
pub struct FitScenarioFile {
    pub path: PathBuf,
    pub text: String,
    pub spec: FitScenarioSpec,
}

/// Whether a scenario file is a fit scenario (has a `[fit]` table).
pub fn is_fit_scenario(text: &str) -> bool {
    text.parse::<toml::Table>().map(|t| t.contains_key("fit")).unwrap_or(false)
}

/// Reads and parses a fit scenario.
pub fn read_fit_scenario(path: &Path) -> Result<FitScenarioFile, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io { path: path.into(), source })?;
    let spec: FitScenarioSpec = toml::from_str(&text).map_err(|e| match e.span() {
        Some(span) => ScenarioError::At {
            path: path.into(),
            line: crate::error::line_of(&text, span.start),
            message: e.message().to_string(),
        },
        None => ScenarioError::File { path: path.into(), message: e.to_string() },
    })?;
    crate::load::check_scenario_name(path, &text)?;
    Ok(FitScenarioFile { path: path.into(), text, spec })
}

/// The network of a fit: compiled with unit weights so that counts can be read back.
pub fn fit_network(file: &FitScenarioFile) -> Result<FitNetwork, ScenarioError> {
    let ctx = Ctx { path: &file.path, text: &file.text };
    let base = file.path.parent().unwrap_or(Path::new("."));
    crate::build::positive(&ctx, &file.spec.fit.dt_ms, "fit.dt_ms")?;
    // The rate model has no delays: compile at the simulator's usual step so that any delay is valid.
    let dt = 0.1;
    crate::source::check_network_fields(&file.spec.network, &ctx)?;
    let mut net_spec = file.spec.network.clone();
    net_spec.weight_per_synapse = Some(1.0);
    net_spec.gap_per_junction_ns = Some(1.0);
    let loaded = load_network(&net_spec, &ctx, base, dt, file.spec.fit.seed, &neurotwin_connectome::Share::WHOLE)?;
    FitNetwork::from_compiled(&loaded.network, 1.0, 1.0, &file.spec.fit.learned_sign)
        .map_err(|e| ctx.file(format!("[fit]: {e}")))
}

/// `relu` or `sigmoid`.
pub(crate) fn activation(file: &FitScenarioFile) -> Result<Activation, ScenarioError> {
    let ctx = Ctx { path: &file.path, text: &file.text };
    match file.spec.fit.activation.as_ref() {
        None => Ok(Activation::Relu),
        Some(a) => match a.get_ref().as_str() {
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            other => Err(ctx.at(a, format!("`fit.activation` = \"{other}\": use relu or sigmoid"))),
        },
    }
}

/// Refuses an output folder that is, or contains, one of the inputs (a fit never overwrites its data).
pub fn check_output_dir(out: &Path, inputs: &[&Path]) -> Result<(), ScenarioError> {
    let abs = |p: &Path| -> PathBuf {
        let p = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
        // Canonicalise the longest existing ancestor (the output folder may not exist yet).
        let mut existing = p.clone();
        let mut rest = Vec::new();
        while !existing.exists() {
            match (existing.file_name().map(|s| s.to_os_string()), existing.parent()) {
                (Some(name), Some(parent)) => {
                    rest.push(name);
                    existing = parent.to_path_buf();
                }
                _ => break,
            }
        }
        let mut c = existing.canonicalize().unwrap_or(existing);
        for r in rest.iter().rev() {
            c.push(r);
        }
        c
    };
    let o = abs(out);
    for input in inputs {
        let i = abs(input);
        if i.starts_with(&o) {
            return Err(ScenarioError::File {
                path: out.into(),
                message: format!(
                    "output folder contains the input {}: choose another folder with -o (a fit never writes over its inputs)",
                    input.display()
                ),
            });
        }
    }
    Ok(())
}

/// Opens the output folder of a fit or twin run before any work: refuses a folder that contains an input
/// ([`check_output_dir`]) or any output over an input, and an earlier run's folder without `overwrite`.
/// Outputs go to the returned folder's staging area and are published by `RunDir::commit`.
pub fn open_run_dir(
    out: &Path,
    command: &str,
    inputs: &[&Path],
    overwrite: bool,
) -> Result<neurotwin_io::run_dir::RunDir, ScenarioError> {
    check_output_dir(out, inputs)?;
    let mut set = neurotwin_io::inputs::InputSet::new();
    for i in inputs {
        set.add(i);
    }
    Ok(neurotwin_io::run_dir::RunDir::create(out, command, set, overwrite, &["summary.json"])?)
}

/// `backend` as [`neurotwin_fit::atlas::check_fit_backend`] resolves it, its refusal naming the scenario.
fn checked_backend(
    file: &FitScenarioFile,
    backend: neurotwin_fit::atlas::BackendKind,
) -> Result<neurotwin_fit::atlas::BackendKind, ScenarioError> {
    neurotwin_fit::atlas::check_fit_backend(backend)
        .map_err(|message| ScenarioError::File { path: file.path.clone(), message })
}

/// Runs a fit scenario on the CPU backend (see [`run_fit_on`]).
pub fn run_fit(
    file: &FitScenarioFile,
    out: Option<&Path>,
    progress: bool,
) -> Result<(AtlasFitReport, PathBuf), ScenarioError> {
    run_fit_on(file, out, progress, neurotwin_fit::atlas::BackendKind::Cpu, false)
}

/// Runs a fit scenario and writes its outputs into `out` (default: `[output] dir`, else `out/<name>`);
/// `backend` says where simulations and gradients run (results are bit-identical); `overwrite` lets it
/// replace an earlier run's files in that folder.
pub fn run_fit_on(
    file: &FitScenarioFile,
    out: Option<&Path>,
    progress: bool,
    backend: neurotwin_fit::atlas::BackendKind,
    overwrite: bool,
) -> Result<(AtlasFitReport, PathBuf), ScenarioError> {
    let backend = checked_backend(file, backend)?;
    let ctx = Ctx { path: &file.path, text: &file.text };
    let fit = &file.spec.fit;
    if fit.model.get_ref() != "rate" {
        return Err(ctx.at(
            &fit.model,
            format!(
                "`fit.model` = \"{}\": fitting supports `rate` (the flyvis-style rate model) so far",
                fit.model.get_ref()
            ),
        ));
    }
    let out_dir = out
        .map(Path::to_path_buf)
        .or_else(|| file.spec.output.dir.clone())
        .unwrap_or_else(|| PathBuf::from("out").join(&file.spec.name));
    match fit.data.get_ref().as_str() {
        "propagation-atlas" => {
            for (v, key) in [
                (&fit.stim_start_ms, "stim_start_ms"),
                (&fit.stim_stop_ms, "stim_stop_ms"),
                (&fit.response_stop_ms, "response_stop_ms"),
            ] {
                if v.span() == (0..0) {
                    return Err(ctx.at(&fit.data, format!("`fit.data` = \"propagation-atlas\" needs `fit.{key}` (ms)")));
                }
            }
            let mut plan = atlas_fit::plan(file)?;
            plan.backend = backend;
            let mut inputs: Vec<&Path> = vec![&file.path, &plan.atlas_path];
            let base = file.path.parent().unwrap_or(Path::new("."));
            let net_files: Vec<PathBuf> =
                [&file.spec.network.connections, &file.spec.network.neurons, &file.spec.network.file]
                    .into_iter()
                    .flatten()
                    .map(|p| base.join(p))
                    .collect();
            inputs.extend(net_files.iter().map(PathBuf::as_path));
            let run_dir = open_run_dir(&out_dir, "neurotwin fit", &inputs, overwrite)?;
            let report = atlas_fit::run(file, &plan, progress)?;
            report::write_atlas_fit(run_dir.staging(), &report)?;
            run_dir.commit()?;
            Ok((report, out_dir))
        }
        "calcium" => Err(ctx.at(&fit.data, "a `calcium` fit has its own report: run it with `run_fit_any`")),
        other => Err(ctx.at(&fit.data, format!("`fit.data` = \"{other}\": use propagation-atlas or calcium"))),
    }
}

/// The report of a fit, by data kind.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(untagged)]
pub enum FitReport {
    Atlas(Box<AtlasFitReport>),
    Calcium(Box<CalciumFitReport>),
}

/// Runs a fit scenario of any data kind (`propagation-atlas` through [`run_fit_on`], `calcium` through
/// [`calcium_fit`]) and writes its outputs into `out` (default: `[output] dir`, else `out/<name>`).
pub fn run_fit_any(
    file: &FitScenarioFile,
    out: Option<&Path>,
    progress: bool,
    backend: neurotwin_fit::atlas::BackendKind,
    overwrite: bool,
) -> Result<(FitReport, PathBuf), ScenarioError> {
    let backend = checked_backend(file, backend)?;
    let fit = &file.spec.fit;
    if fit.data.get_ref() != "calcium" {
        let (r, dir) = run_fit_on(file, out, progress, backend, overwrite)?;
        return Ok((FitReport::Atlas(Box::new(r)), dir));
    }
    let ctx = Ctx { path: &file.path, text: &file.text };
    if fit.model.get_ref() != "rate" {
        return Err(ctx
            .at(&fit.model, format!("`fit.model` = \"{}\": calcium fits support `rate` so far", fit.model.get_ref())));
    }
    let out_dir = out
        .map(Path::to_path_buf)
        .or_else(|| file.spec.output.dir.clone())
        .unwrap_or_else(|| PathBuf::from("out").join(&file.spec.name));
    let mut plan = calcium_fit::plan(file)?;
    plan.backend = backend;
    let base = file.path.parent().unwrap_or(Path::new("."));
    let mut inputs: Vec<PathBuf> = vec![file.path.clone()];
    inputs.extend(plan.inputs.iter().cloned());
    inputs.extend(
        [&file.spec.network.connections, &file.spec.network.neurons, &file.spec.network.file]
            .into_iter()
            .flatten()
            .map(|p| base.join(p)),
    );
    let run_dir =
        open_run_dir(&out_dir, "neurotwin fit", &inputs.iter().map(PathBuf::as_path).collect::<Vec<_>>(), overwrite)?;
    let report = calcium_fit::run(file, &plan, progress)?;
    report::write_calcium_fit(run_dir.staging(), &report)?;
    run_dir.commit()?;
    Ok((FitReport::Calcium(Box::new(report)), out_dir))
}

/// Fits `init` from every restart of the scenario (restart 0 from the given values, the others jittered)
/// and keeps the one with the best validation loss; every epoch goes to `history` (labelled `label`) and
/// the progress bar. Returns the parameters, their epoch and validation loss.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_with_restarts(
    file: &FitScenarioFile,
    label: &str,
    init: &neurotwin_fit::ParamSet,
    n_train: usize,
    grad: &neurotwin_fit::train::BatchGrad<'_>,
    val_loss: &(dyn Fn(&neurotwin_fit::ParamSet) -> Result<f64, neurotwin_fit::FitError> + Sync),
    bar: &indicatif::ProgressBar,
    history: &mut Vec<atlas_fit::HistoryRow>,
) -> Result<(neurotwin_fit::ParamSet, usize, f64), ScenarioError> {
    use neurotwin_fit::train::{EpochRecord, TrainOptions, jittered, train};
    let fit = &file.spec.fit;
    let restarts = fit.restarts.max(1);
    let mut best: Option<(neurotwin_fit::ParamSet, usize, f64)> = None;
    for restart in 0..restarts {
        let start = jittered(init, restart, fit.seed, fit.restart_jitter);
        let opts = TrainOptions { seed: fit.train.seed ^ restart.wrapping_mul(0x9E37), ..fit.train.clone() };
        let mut on_epoch = |r: &EpochRecord| {
            bar.set_message(format!(
                "{label} restart {}/{restarts} epoch {} loss {:.3e} val {:.3e} ({:.1} steps/s)",
                restart + 1,
                r.epoch,
                r.train_loss,
                r.val_loss,
                r.steps_per_s
            ));
            bar.inc(1);
            history.push(atlas_fit::HistoryRow { fit: label.into(), restart, epoch: r.clone() });
        };
        let trained = train(start, n_train, &opts, grad, val_loss, &mut on_epoch).map_err(|e| ScenarioError::File {
            path: file.path.clone(),
            message: format!("fit {label}, restart {restart}: {e}"),
        })?;
        // Epochs skipped by early stopping still count on the bar.
        bar.inc((opts.epochs - trained.history.len()) as u64);
        if best.as_ref().is_none_or(|b| trained.best_val_loss < b.2) {
            best = Some((trained.params, trained.best_epoch, trained.best_val_loss));
        }
    }
    Ok(best.expect("at least one restart"))
}
