//! Fitting a twin to whole-brain calcium recordings with teacher forcing (`fit.data = "calcium"`), and
//! scoring it on held-out neurons of worms never used for fitting, next to baselines.
//!
//! # Protocol (after connectome-constrained latent-variable models, Mi et al. 2021)
//!
//! - **Data.** One recording per worm (Flavell-lab `<uid>-data.h5` + NeuroPAL labels, or CSV). Labels are
//!   matched to connectome names exactly or ignoring case (no class expansion, `imaging::labels`); a
//!   connectome neuron reached from two rows keeps the first row. Each matched trace is normalised
//!   (`normalize = "zscore"`, the default: mean 0, SD 1 over its whole recording, population SD — the
//!   Flavell `trace_array` is already z-scored, so this changes nothing there; or `"none"`: as given) and
//!   resampled by linear interpolation onto the model grid `t_k = t_0 + k dt` (`dt = fit.dt_ms`; with dt
//!   equal to the frame interval, ≈ 0.6 s for the Flavell worms, grid points are the frames).
//! - **Skipped neurons** (listed per worm in `summary.json`): a matched trace with a non-finite value in any
//!   frame (NaN = a frame the ROI was not measured; interpolating over it or filling it would invent data),
//!   or a constant one. ROIs NaN in every frame are dropped by the reader. A worm left with fewer than two
//!   usable matched neurons is an error naming it.
//! - **Driven and held-out neurons.** A seeded random `driven_fraction` of a worm's matched neurons are
//!   *driven*: their `V` is clamped to the recorded (normalised) trace at every step, including t = 0
//!   (teacher forcing, [`neurotwin_fit::rate::Clamp`]). The other matched neurons are *held out*; every
//!   unrecorded neuron is latent. Every neuron that is not clamped starts at `V = 0` (the normalised
//!   traces' mean).
//! - **Read-out** (`readout = "identity"`): `V` of a neuron is its predicted normalised trace.
//! - **Loss.** Mean squared error between `V` and the recorded trace of the held-out neurons, over the grid
//!   points `warmup … T` of a window of `T = window_frames` frames (the first `warmup_frames` frames, in
//!   which latent neurons relax from 0, are excluded), averaged over the neurons and points of a batch.
//!   Training windows of the training worms start every `window_stride_frames` frames; the last
//!   `validation_fraction` of every training worm's recording is a separate time block of validation
//!   windows (early stopping). With `split_per_window = true` (default) every window draws its own
//!   driven/held-out split (seeded), so that every recorded neuron serves as a target.
//! - **Scoring.** On each test worm (never used for fitting, nor for choosing anything), with the worm's
//!   own seeded split, the model runs over the whole recording with the driven neurons clamped; each
//!   held-out neuron's Pearson r of predicted vs recorded trace is taken over grid points `warmup … end`.
//!   Reported: median and mean over all held-out neurons of all test worms (and per worm).
//!
//! # Baselines (same held-out neurons, same driven traces, same grid points)
//!
//! - **unfitted model**: the twin at its initial parameters.
//! - **direct wiring**: `Σ_j (signed synapse count j→i + gap junctions i–j) × x_j(t)` over the driven
//!   neurons `j` — the anatomy-weighted input, no dynamics; r is scale-free. A held-out neuron with no
//!   direct input from a driven neuron gets a constant prediction: r undefined.
//! - **ridge on driven traces (no connectome)**: for held-out neuron `i` of a test worm, a linear
//!   regression (with intercept, ridge penalty `λ` per frame) of `x_i` on the traces of that worm's driven
//!   neurons, fitted on the training worms by neuron name: every training worm in which `i` was recorded
//!   contributes its frames; a driven neuron not recorded in a training worm counts as 0 there (the
//!   normalised mean). `λ` is chosen from 1e-3 … 10 by leave-one-training-worm-out r (or given as
//!   `ridge_lambda`). Undefined when `i` was recorded in no training worm.
//! - **best-correlated driven neuron (no connectome)**: the driven neuron whose trace correlated best (in
//!   absolute value, mean over training worms recording both) with `i`'s on the training worms, with
//!   that correlation's sign.
//!
//! An undefined r is left out of a predictor's median and mean (`n_defined` says how many remain) and
//! counted as 0 in `median_r_undefined_as_zero`, so predictors can be compared on the same neurons.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use neurotwin_fit::atlas::BackendKind;
use neurotwin_fit::host_kernels::HostKernelRate;
use neurotwin_fit::rate::{Activation, Clamp, Input, Objective, RateGrads, RateModel, RateValues};
use neurotwin_fit::spec::build_params;
use neurotwin_fit::testing::SplitMix;
use neurotwin_fit::{FitError, FitNetwork, ParamSet, Transform};
use neurotwin_imaging::stats::pearson;
use neurotwin_imaging::{
    CalciumRecording, FlavellOptions, LabelMap, LabelMapOptions, NanPolicy, SignalKind, list_flavell_worms, read_csv,
    read_flavell,
};
use rayon::prelude::*;
use serde::Serialize;

use super::FitScenarioFile;
use super::atlas_fit::{FittedModelInfo, HistoryRow};
use crate::build::Ctx;
use crate::error::ScenarioError;

/// Predictor names, in report order.
pub const FITTED: &str = "fitted twin";
pub const UNFITTED: &str = "unfitted model";
pub const DIRECT: &str = "direct wiring";
pub const RIDGE: &str = "ridge on driven traces (no connectome)";
pub const BEST_DRIVEN: &str = "best-correlated driven neuron (no connectome)";
pub const PREDICTORS: [&str; 5] = [FITTED, UNFITTED, DIRECT, RIDGE, BEST_DRIVEN];

/// Ridge penalties tried by leave-one-training-worm-out.
const LAMBDAS: [f64; 5] = [1e-3, 1e-2, 1e-1, 1.0, 10.0];

/// A worm ready for fitting: matched neurons and their traces on the model grid.
#[derive(Clone, Debug)]
pub struct Worm {
    pub name: String,
    pub source: PathBuf,
    pub n_rois: usize,
    pub n_labelled: usize,
    /// Median frame interval (s).
    pub frame_s: f64,
    /// Network index of each used matched neuron (recording row order).
    pub neurons: Vec<u32>,
    pub names: Vec<String>,
    /// The grid has points `0 ..= steps`.
    pub steps: usize,
    /// Normalised traces on the grid, `neurons.len() × (steps + 1)`, row-major by neuron.
    pub traces: Vec<f64>,
    pub unmatched_labels: Vec<String>,
    /// Matched neurons not used, with the reason.
    pub skipped: Vec<String>,
    /// The scored split (local indices into `neurons`, ascending).
    pub driven: Vec<usize>,
    pub held_out: Vec<usize>,
}

impl Worm {
    pub fn trace(&self, k: usize) -> &[f64] {
        let m = self.steps + 1;
        &self.traces[k * m..(k + 1) * m]
    }
}

/// One training or validation example: a window of a worm with its split.
#[derive(Clone, Debug)]
pub struct Window {
    pub worm: usize,
    /// First grid point; the window covers `start ..= start + window_steps`.
    pub start: usize,
    pub driven: Vec<usize>,
    pub held: Vec<usize>,
}

/// Everything a calcium fit needs, checked before any work starts.
pub struct CalciumPlan {
    /// Every file and folder read (the output folder may contain none of them).
    pub inputs: Vec<PathBuf>,
    pub format: String,
    pub net: FitNetwork,
    pub params: ParamSet,
    pub activation: Activation,
    /// Model step (ms).
    pub dt: f64,
    /// Median frame interval over all worms (s): converts frame counts to steps.
    pub frame_s: f64,
    pub worms: Vec<Worm>,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    pub window_frames: usize,
    pub warmup_frames: usize,
    pub stride_frames: usize,
    pub window_steps: usize,
    pub warmup_steps: usize,
    pub stride_steps: usize,
    pub driven_fraction: f64,
    pub normalize: String,
    pub split_per_window: bool,
    pub train_windows: Vec<Window>,
    pub val_windows: Vec<Window>,
    pub ridge_lambda: Option<f64>,
    /// Where simulations and gradients run (bit-identical results).
    pub backend: BackendKind,
}

/// Held-out scores of one predictor.
#[derive(Clone, Debug, Serialize)]
pub struct PredictorScore {
    pub predictor: String,
    /// Held-out neurons scored.
    pub n_neurons: usize,
    /// Of which r is defined (non-constant prediction).
    pub n_defined: usize,
    pub median_r: Option<f64>,
    pub mean_r: Option<f64>,
    /// Median with undefined r counted as 0 (same neurons for every predictor).
    pub median_r_undefined_as_zero: Option<f64>,
    /// Neurons on which every predictor of the table has a defined r, and the median and mean over them.
    pub n_common: usize,
    pub median_r_common: Option<f64>,
    pub mean_r_common: Option<f64>,
}

/// Scores of every predictor on one worm.
#[derive(Clone, Debug, Serialize)]
pub struct WormScores {
    pub worm: String,
    pub scores: Vec<PredictorScore>,
}

/// One scored held-out neuron.
#[derive(Clone, Debug, Serialize)]
pub struct NeuronScore {
    pub worm: String,
    /// `test`, or `train` (in-sample: the worm was fitted on).
    pub set: String,
    pub neuron: String,
    /// Driven neurons with a direct connection (chemical or gap) onto this one.
    pub n_direct_inputs: usize,
    pub best_driven_neuron: Option<String>,
    pub r_fitted: Option<f64>,
    pub r_unfitted: Option<f64>,
    pub r_direct: Option<f64>,
    pub r_ridge: Option<f64>,
    pub r_best_driven: Option<f64>,
}

/// What the report says about a worm.
#[derive(Clone, Debug, Serialize)]
pub struct WormInfo {
    pub name: String,
    pub source: PathBuf,
    pub n_rois: usize,
    pub n_labelled: usize,
    pub n_matched_used: usize,
    pub n_driven: usize,
    pub n_held_out: usize,
    pub grid_points: usize,
    pub frame_interval_s: f64,
    /// The scored split.
    pub driven: Vec<String>,
    pub held_out: Vec<String>,
    pub skipped: Vec<String>,
    pub unmatched_labels: Vec<String>,
}

/// The protocol as run.
#[derive(Clone, Debug, Serialize)]
pub struct ProtocolInfo {
    pub dt_ms: f64,
    pub frame_interval_s: f64,
    pub window_frames: usize,
    pub warmup_frames: usize,
    pub window_stride_frames: usize,
    pub window_steps: usize,
    pub warmup_steps: usize,
    pub driven_fraction: f64,
    pub split_per_window: bool,
    pub normalize: String,
    pub readout: String,
    pub initial_state: String,
    pub loss: String,
}

/// Recorded and predicted trace of one held-out neuron of a test worm (for the figure).
#[derive(Clone, Debug)]
pub struct TracePanel {
    pub worm: String,
    pub neuron: String,
    pub time_s: Vec<f64>,
    pub recorded: Vec<f64>,
    pub fitted: Vec<f64>,
    pub unfitted: Vec<f64>,
    pub r_fitted: Option<f64>,
    pub r_unfitted: Option<f64>,
}

/// What `neurotwin fit` reports for a calcium fit.
#[derive(Clone, Debug, Serialize)]
pub struct CalciumFitReport {
    pub name: String,
    pub data: String,
    pub format: String,
    pub protocol: ProtocolInfo,
    pub n_neurons: usize,
    pub n_connections: usize,
    pub n_fitted_numbers: usize,
    pub restarts: u64,
    pub train_worms: Vec<WormInfo>,
    pub test_worms: Vec<WormInfo>,
    pub n_train_windows: usize,
    pub n_val_windows: usize,
    /// Held-out neurons of the test worms, pooled.
    pub held_out: Vec<PredictorScore>,
    pub held_out_per_worm: Vec<WormScores>,
    /// The twin on the training worms' own scored splits (in-sample: fitted on these worms).
    pub training_worms_in_sample: Vec<PredictorScore>,
    pub ridge_lambda: f64,
    /// Leave-one-training-worm-out mean r of the ridge baseline per λ (empty when λ was given).
    pub ridge_lambda_scores: Vec<(f64, Option<f64>)>,
    pub initial_val_loss: f64,
    pub best_epoch: usize,
    pub best_val_loss: f64,
    pub fitted_params: BTreeMap<String, BTreeMap<String, f64>>,
    pub initial_params: BTreeMap<String, BTreeMap<String, f64>>,
    pub seconds: f64,
    #[serde(skip)]
    pub neurons: Vec<NeuronScore>,
    #[serde(skip)]
    pub history: Vec<HistoryRow>,
    #[serde(skip)]
    pub fitted: ParamSet,
    #[serde(skip)]
    pub model: FittedModelInfo,
    #[serde(skip)]
    pub traces: Vec<TracePanel>,
}

impl CalciumFitReport {
    /// Pooled held-out score of a predictor on the test worms.
    pub fn get(&self, predictor: &str) -> Option<&PredictorScore> {
        self.held_out.iter().find(|s| s.predictor == predictor)
    }
}

// ---------------------------------------------------------------------------------------------------
// Reading and preparing the recordings.

/// A worm as read.
struct RawWorm {
    name: String,
    source: PathBuf,
    recording: CalciumRecording,
}

/// FNV-1a of a name (seeds per worm that do not depend on the worm order).
fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Shuffled indices `0..n` (seeded Fisher–Yates).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut r = SplitMix(seed);
    for i in (1..n).rev() {
        let j = (r.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Seeded split of `m ≥ 2` neurons: (driven, held out), each ascending, both non-empty.
fn split(m: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let order = shuffled(m, seed);
    let k = ((m as f64 * fraction).round() as usize).clamp(1, m.saturating_sub(1).max(1));
    let mut d = order[..k].to_vec();
    let mut h = order[k..].to_vec();
    d.sort_unstable();
    h.sort_unstable();
    (d, h)
}

/// Median of the frame intervals (s).
fn median_interval(time: &[f64]) -> Option<f64> {
    let mut d: Vec<f64> = time.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    let m = d.len();
    Some(if m % 2 == 1 { d[m / 2] } else { 0.5 * (d[m / 2 - 1] + d[m / 2]) })
}

/// Linear interpolation of `x` (at `time`, s) onto `t_0 + k dt_s`, `k = 0 ..= steps`.
fn resample(time: &[f64], x: &[f64], dt_s: f64, steps: usize) -> Vec<f64> {
    if time.len() < 2 {
        return vec![x[0]; steps + 1];
    }
    let t0 = time[0];
    let mut k = 0usize;
    (0..=steps)
        .map(|g| {
            let t = t0 + g as f64 * dt_s;
            while k + 2 < time.len() && time[k + 1] <= t {
                k += 1;
            }
            let w = ((t - time[k]) / (time[k + 1] - time[k])).clamp(0.0, 1.0);
            x[k] + w * (x[k + 1] - x[k])
        })
        .collect()
}

fn imaging_err(path: &Path, e: impl std::fmt::Display) -> ScenarioError {
    ScenarioError::File { path: path.into(), message: e.to_string() }
}

/// Reads every worm the scenario names; returns them (sorted by name) and every path read.
fn read_worms(ctx: &Ctx, file: &FitScenarioFile, format: &str) -> Result<(Vec<RawWorm>, Vec<PathBuf>), ScenarioError> {
    let fit = &file.spec.fit;
    let base = file.path.parent().unwrap_or(Path::new("."));
    let rec = fit.recordings.as_ref().ok_or_else(|| {
        ctx.at(&fit.data, "`fit.data` = \"calcium\" needs `recordings` (a folder or file(s), relative to the scenario)")
    })?;
    let min_confidence = match &fit.min_confidence {
        Some(m) if (0.0..=5.0).contains(m.get_ref()) => *m.get_ref(),
        Some(m) => return Err(ctx.at(m, format!("`fit.min_confidence` = {}: must be in [0, 5]", m.get_ref()))),
        None => 0.0,
    };
    let mut inputs = Vec::new();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for p in rec.get_ref().paths() {
        let path = base.join(p);
        if !path.exists() {
            return Err(ctx.at(rec, format!("`fit.recordings`: {} does not exist", path.display())));
        }
        inputs.push(path.clone());
        if path.is_dir() {
            let found: Vec<(String, PathBuf)> = match format {
                "flavell" => list_flavell_worms(&path).map_err(|e| imaging_err(&path, e))?,
                _ => {
                    let rd = std::fs::read_dir(&path).map_err(|e| imaging_err(&path, e))?;
                    let mut v: Vec<(String, PathBuf)> = rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
                        .filter_map(|p| Some((p.file_stem()?.to_string_lossy().to_string(), p)))
                        .collect();
                    v.sort();
                    v
                }
            };
            if found.is_empty() {
                let what = if format == "flavell" { "*-data.h5" } else { "*.csv" };
                return Err(ctx.at(rec, format!("`fit.recordings`: no {what} file in {}", path.display())));
            }
            files.extend(found);
        } else {
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let uid = match format {
                "flavell" => name.strip_suffix("-data.h5").unwrap_or(&name).to_string(),
                _ => path.file_stem().map(|n| n.to_string_lossy().to_string()).unwrap_or(name),
            };
            files.push((uid, path));
        }
    }
    files.sort();
    if let Some(w) = files.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(
            ctx.at(rec, format!("worm `{}` is given twice ({} and {})", w[0].0, w[0].1.display(), w[1].1.display()))
        );
    }
    let mut worms = Vec::new();
    for (name, path) in files {
        let recording = match format {
            "flavell" => {
                let labels = match &fit.labels {
                    Some(l) => base.join(l.get_ref()),
                    None => path.parent().unwrap_or(Path::new(".")).join("neuropal_labels.json"),
                };
                if !inputs.contains(&labels) {
                    inputs.push(labels.clone());
                }
                let opts = FlavellOptions {
                    min_confidence,
                    nan: NanPolicy::DropRows,
                    uid: Some(name.clone()),
                    ..Default::default()
                };
                read_flavell(&path, &labels, &opts).map_err(|e| imaging_err(&path, e))?.recording
            }
            _ => read_csv(&path, SignalKind::Other("csv trace".into()), NanPolicy::DropRows)
                .map_err(|e| imaging_err(&path, e))?,
        };
        inputs.push(path.clone());
        worms.push(RawWorm { name, source: path, recording });
    }
    Ok((worms, inputs))
}

/// Matches a worm's labels to the network, drops unusable traces, normalises and resamples.
fn prepare_worm(raw: &RawWorm, net: &FitNetwork, dt_ms: f64, zscore: bool) -> Result<Worm, String> {
    let rec = &raw.recording;
    let map = LabelMap::build(&rec.labels, &net.names, &LabelMapOptions::default());
    let frame_s = median_interval(&rec.time_s).unwrap_or(f64::NAN);
    let dt_s = dt_ms / 1000.0;
    let span = rec.time_s.last().copied().unwrap_or(0.0) - rec.time_s[0];
    let steps = (span / dt_s + 1e-9).floor() as usize;
    let mut used = HashSet::new();
    let (mut neurons, mut names, mut traces, mut skipped) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for m in &map.matches {
        if !used.insert(m.neuron) {
            skipped.push(format!("{} (row {}): {} is already matched by an earlier row", m.label, m.row, m.name));
            continue;
        }
        let x = rec.trace(m.row);
        if let Some(k) = x.iter().position(|v| !v.is_finite()) {
            skipped
                .push(format!("{}: value at frame {k} is {} (neurons with missing frames are not used)", m.name, x[k]));
            continue;
        }
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let sd = (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        if sd <= 0.0 || !sd.is_finite() {
            skipped.push(format!("{}: constant trace", m.name));
            continue;
        }
        let norm: Vec<f64> = if zscore { x.iter().map(|v| (v - mean) / sd).collect() } else { x.to_vec() };
        traces.extend(resample(&rec.time_s, &norm, dt_s, steps));
        neurons.push(m.neuron as u32);
        names.push(m.name.clone());
    }
    let unmatched_labels: Vec<String> = map.unmatched_labels.iter().map(|(_, l)| l.clone()).collect();
    if neurons.len() < 2 {
        let labels: Vec<&str> = rec.labels.iter().filter(|l| !l.is_empty()).map(String::as_str).take(12).collect();
        return Err(format!(
            "worm {} ({}): {} recording label(s) match a connectome neuron with a usable trace; at least 2 are needed \
             (one driven, one held out). Labels: {}{}; skipped: {}",
            raw.name,
            raw.source.display(),
            neurons.len(),
            if labels.is_empty() { "(none)".to_string() } else { labels.join(", ") },
            if rec.n_labelled() > 12 { ", …" } else { "" },
            if skipped.is_empty() { "none".to_string() } else { skipped.join("; ") }
        ));
    }
    if steps < 2 {
        return Err(format!("worm {}: the recording spans {span} s, less than two steps of dt_ms = {dt_ms}", raw.name));
    }
    Ok(Worm {
        name: raw.name.clone(),
        source: raw.source.clone(),
        n_rois: rec.n_neurons,
        n_labelled: rec.n_labelled(),
        frame_s,
        neurons,
        names,
        steps,
        traces,
        unmatched_labels,
        skipped,
        driven: Vec::new(),
        held_out: Vec::new(),
    })
}

fn string_choice(
    ctx: &Ctx,
    v: &Option<toml::Spanned<String>>,
    key: &str,
    default: &str,
    allowed: &[&str],
) -> Result<String, ScenarioError> {
    match v {
        None => Ok(default.into()),
        Some(s) if allowed.contains(&s.get_ref().as_str()) => Ok(s.get_ref().clone()),
        Some(s) => Err(ctx.at(s, format!("`fit.{key}` = \"{}\": use {}", s.get_ref(), allowed.join(" or ")))),
    }
}

/// Reads the recordings, builds the network and parameters, chooses splits and windows, and checks every
/// setting.
pub fn plan(file: &FitScenarioFile) -> Result<CalciumPlan, ScenarioError> {
    let ctx = Ctx { path: &file.path, text: &file.text };
    let fit = &file.spec.fit;
    let dt = crate::build::positive(&ctx, &fit.dt_ms, "fit.dt_ms")?;
    let format = string_choice(&ctx, &fit.format, "format", "flavell", &["flavell", "csv"])?;
    let normalize = string_choice(&ctx, &fit.normalize, "normalize", "zscore", &["zscore", "none"])?;
    string_choice(&ctx, &fit.readout, "readout", "identity", &["identity"])?;
    let driven_fraction = match &fit.driven_fraction {
        None => 0.5,
        Some(f) if *f.get_ref() > 0.0 && *f.get_ref() < 1.0 => *f.get_ref(),
        Some(f) => return Err(ctx.at(f, format!("`fit.driven_fraction` = {}: use a value in (0, 1)", f.get_ref()))),
    };
    let window_frames = fit.window_frames.unwrap_or(60);
    let warmup_frames = fit.warmup_frames.unwrap_or(10);
    let stride_frames = fit.window_stride_frames.unwrap_or(window_frames);
    if window_frames < 2 || warmup_frames + 2 > window_frames || stride_frames == 0 {
        return Err(ctx.file(format!(
            "`fit.window_frames` = {window_frames}, `warmup_frames` = {warmup_frames}, `window_stride_frames` = \
             {stride_frames}: need warmup_frames + 2 ≤ window_frames and a stride ≥ 1"
        )));
    }
    if !(fit.validation_fraction >= 0.0 && fit.validation_fraction < 0.9) {
        return Err(
            ctx.file(format!("`fit.validation_fraction` = {}: use a value in [0, 0.9)", fit.validation_fraction))
        );
    }
    if let Some(l) = fit.ridge_lambda
        && !(l > 0.0 && l.is_finite())
    {
        return Err(ctx.file(format!("`fit.ridge_lambda` = {l}: must be a finite number > 0")));
    }
    let t = &fit.train;
    if t.epochs == 0 || t.batch_size == 0 || !(t.lr > 0.0 && t.lr.is_finite()) {
        return Err(ctx.file("[fit.train]: epochs and batch_size must be ≥ 1 and lr > 0"));
    }
    let activation = super::activation(file)?;
    let net = super::fit_network(file)?;
    let params = build_params(&net, "rate", &fit.params).map_err(|e| ctx.file(format!("[fit.params]: {e}")))?;
    // The linearly implicit step is stable for any τ > 0; τ must not reach 0.
    if let Some(b) = params.block("tau") {
        let values = params.group_values(b);
        for (k, tr) in b.transforms.iter().enumerate() {
            let ok = match *tr {
                Transform::Positive { lo } | Transform::Bounded { lo, .. } => lo > 0.0,
                Transform::Identity => !b.fitted && values[k] > 0.0,
            };
            if !ok {
                return Err(ctx.file(format!(
                    "[fit.params.tau]: group `{}` may reach τ ≤ 0; set `lo` > 0 (e.g. lo = {dt})",
                    b.labels[k]
                )));
            }
        }
    }

    let (raw, inputs) = read_worms(&ctx, file, &format)?;
    let names: Vec<&str> = raw.iter().map(|w| w.name.as_str()).collect();
    let find = |s: &toml::Spanned<String>| -> Result<usize, ScenarioError> {
        names.iter().position(|n| n == s.get_ref()).ok_or_else(|| {
            ctx.at(s, format!("worm `{}` is not among the recordings ({})", s.get_ref(), names.join(", ")))
        })
    };
    let mut test: Vec<usize> = fit.test_worms.iter().map(find).collect::<Result<_, _>>()?;
    if test.is_empty() {
        let k = fit.n_test_worms.unwrap_or(1);
        if k == 0 || k >= raw.len() {
            return Err(ctx.file(format!(
                "{} worm(s) read ({}); `n_test_worms` = {k} leaves no {} worm",
                raw.len(),
                names.join(", "),
                if k == 0 { "test" } else { "training" }
            )));
        }
        test = (raw.len() - k..raw.len()).collect();
    }
    let mut train_idx: Vec<usize> = fit.train_worms.iter().map(find).collect::<Result<_, _>>()?;
    if train_idx.is_empty() {
        train_idx = (0..raw.len()).filter(|k| !test.contains(k)).collect();
    }
    test.sort_unstable();
    test.dedup();
    train_idx.sort_unstable();
    train_idx.dedup();
    if let Some(&k) = train_idx.iter().find(|k| test.contains(k)) {
        let s = fit.train_worms.iter().find(|s| s.get_ref() == names[k]).unwrap_or(&fit.data);
        return Err(ctx.at(s, format!("worm `{}` is both a training and a test worm", names[k])));
    }
    if train_idx.is_empty() || test.is_empty() {
        return Err(ctx.file(format!(
            "need at least one training and one test worm ({} read: {})",
            raw.len(),
            names.join(", ")
        )));
    }
    // Worms not used at all are not prepared.
    let zscore = normalize == "zscore";
    let mut worms = Vec::new();
    let mut index = HashMap::new();
    for &k in train_idx.iter().chain(&test) {
        let mut w = prepare_worm(&raw[k], &net, dt, zscore).map_err(|m| imaging_err(&raw[k].source, m))?;
        let (d, h) = split(w.neurons.len(), driven_fraction, fit.seed ^ name_hash(&w.name));
        w.driven = d;
        w.held_out = h;
        index.insert(k, worms.len());
        worms.push(w);
    }
    let train: Vec<usize> = train_idx.iter().map(|k| index[k]).collect();
    let test: Vec<usize> = test.iter().map(|k| index[k]).collect();
    let mut intervals: Vec<f64> = worms.iter().map(|w| w.frame_s).filter(|v| v.is_finite()).collect();
    intervals.sort_by(f64::total_cmp);
    let frame_s = intervals.get(intervals.len() / 2).copied().unwrap_or(dt / 1000.0);
    let to_steps = |frames: usize| ((frames as f64 * frame_s * 1000.0 / dt).round() as usize).max(1);
    let (window_steps, warmup_steps, stride_steps) =
        (to_steps(window_frames), to_steps(warmup_frames), to_steps(stride_frames));
    let warmup_steps = if warmup_frames == 0 { 0 } else { warmup_steps.min(window_steps - 1) };

    // Training windows from the first part of every training worm, validation windows from its last part.
    let mut train_windows = Vec::new();
    let mut val_windows = Vec::new();
    let split_per_window = fit.split_per_window.unwrap_or(true);
    for &wi in &train {
        let w = &worms[wi];
        let n_val = (w.steps as f64 * fit.validation_fraction).round() as usize;
        let val_start = w.steps - n_val.min(w.steps);
        let mk = |start: usize| {
            let (driven, held) = if split_per_window {
                let seed = fit.seed ^ name_hash(&w.name) ^ (start as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                split(w.neurons.len(), driven_fraction, seed)
            } else {
                (w.driven.clone(), w.held_out.clone())
            };
            Window { worm: wi, start, driven, held }
        };
        // Training windows end before the validation block (grid points ≤ `end`).
        let end = if n_val == 0 { w.steps } else { val_start.saturating_sub(1) };
        let mut s = 0;
        while s + window_steps <= end {
            train_windows.push(mk(s));
            s += stride_steps;
        }
        if n_val > 0 {
            let mut s = val_start;
            while s + window_steps <= w.steps {
                val_windows.push(mk(s));
                s += window_steps;
            }
        }
    }
    if train_windows.is_empty() {
        return Err(ctx.file(format!(
            "no training window of {window_frames} frames ({window_steps} steps) fits in the training worms' \
             recordings ({}) after the validation block: shorten `window_frames` or `validation_fraction`",
            train
                .iter()
                .map(|&w| format!("{}: {} steps", worms[w].name, worms[w].steps))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for &wi in &test {
        if worms[wi].steps <= warmup_steps + 3 {
            return Err(ctx.file(format!(
                "test worm {} has {} steps, too few beyond the {warmup_steps} warm-up steps to score",
                worms[wi].name, worms[wi].steps
            )));
        }
    }
    Ok(CalciumPlan {
        inputs,
        format,
        net,
        params,
        activation,
        dt,
        frame_s,
        worms,
        train,
        test,
        window_frames,
        warmup_frames,
        stride_frames,
        window_steps,
        warmup_steps,
        stride_steps,
        driven_fraction,
        normalize,
        split_per_window,
        train_windows,
        val_windows,
        ridge_lambda: fit.ridge_lambda,
        backend: BackendKind::Cpu,
    })
}

// ---------------------------------------------------------------------------------------------------
// The task: loss and gradient over windows, predictions over whole recordings.

/// Mean squared error of the held-out neurons over grid points `warmup ..= T` of a window.
struct HeldOutMse<'a> {
    worm: &'a Worm,
    /// (network index, local index) of each held-out neuron.
    held: Vec<(u32, usize)>,
    start: usize,
    warmup: usize,
    norm: f64,
    sum: f64,
}

impl HeldOutMse<'_> {
    fn target(&self, k: usize, t: usize) -> f64 {
        self.worm.traces[self.held[k].1 * (self.worm.steps + 1) + self.start + t]
    }
}

impl Objective for HeldOutMse<'_> {
    fn observe(&mut self, t: usize, v: &[f64]) {
        if t >= self.warmup {
            for k in 0..self.held.len() {
                let d = v[self.held[k].0 as usize] - self.target(k, t);
                self.sum += d * d;
            }
        }
    }
    fn finish(&mut self) -> f64 {
        self.sum / self.norm
    }
    fn inject(&self, t: usize, v: &[f64], grad: &mut [f64]) {
        if t >= self.warmup {
            for k in 0..self.held.len() {
                let i = self.held[k].0 as usize;
                grad[i] += 2.0 * (v[i] - self.target(k, t)) / self.norm;
            }
        }
    }
}

/// Records `V` of chosen neurons at every step.
struct Recorder {
    neurons: Vec<u32>,
    out: Vec<Vec<f64>>,
}

impl Objective for Recorder {
    fn observe(&mut self, _t: usize, v: &[f64]) {
        for (o, &i) in self.out.iter_mut().zip(&self.neurons) {
            o.push(v[i as usize]);
        }
    }
    fn finish(&mut self) -> f64 {
        0.0
    }
    fn inject(&self, _t: usize, _v: &[f64], _grad: &mut [f64]) {}
}

/// Teacher forcing of `driven` over grid points `start ..= start + steps`.
fn clamp_input(w: &Worm, driven: &[usize], start: usize, steps: usize) -> Input {
    let values = (0..=steps).flat_map(|t| driven.iter().map(move |&d| w.trace(d)[start + t])).collect();
    Input {
        steps,
        v0: Vec::new(),
        pulses: Vec::new(),
        clamp: Some(Clamp { neurons: driven.iter().map(|&d| w.neurons[d]).collect(), values }),
    }
}

impl CalciumPlan {
    fn model(&self) -> RateModel<'_> {
        RateModel::new(&self.net, self.dt, self.activation)
    }

    fn sim_loss(&self, v: &RateValues, input: &Input, obj: &mut dyn Objective) -> f64 {
        let model = self.model();
        match self.backend {
            BackendKind::CudaHost => HostKernelRate::from_model(&model).loss(v, input, obj),
            _ => model.loss(v, input, obj),
        }
    }

    fn sim_grad(&self, v: &RateValues, input: &Input, obj: &mut dyn Objective, ckpt: usize) -> (f64, RateGrads) {
        let model = self.model();
        match self.backend {
            BackendKind::CudaHost => HostKernelRate::from_model(&model).loss_and_grad(v, input, obj, ckpt),
            _ => model.loss_and_grad(v, input, obj, ckpt),
        }
    }

    fn objective<'a>(&'a self, win: &Window, norm: f64) -> HeldOutMse<'a> {
        let w = &self.worms[win.worm];
        HeldOutMse {
            worm: w,
            held: win.held.iter().map(|&h| (w.neurons[h], h)).collect(),
            start: win.start,
            warmup: self.warmup_steps,
            norm,
            sum: 0.0,
        }
    }

    fn norm(&self, windows: &[&Window]) -> f64 {
        let points = (self.window_steps + 1 - self.warmup_steps) as f64;
        windows.iter().map(|w| w.held.len() as f64 * points).sum::<f64>().max(1.0)
    }

    /// Mean squared error over the held-out points of `windows` (forward passes only).
    pub fn loss(&self, p: &ParamSet, windows: &[&Window]) -> f64 {
        let v = RateValues::from_params(&self.net, p);
        let norm = self.norm(windows);
        let losses: Vec<f64> = windows
            .par_iter()
            .map(|win| {
                let w = &self.worms[win.worm];
                let mut obj = self.objective(win, norm);
                self.sim_loss(&v, &clamp_input(w, &win.driven, win.start, self.window_steps), &mut obj)
            })
            .collect();
        losses.iter().sum()
    }

    /// The loss over `windows` and its gradient with respect to `p.raw`.
    pub fn loss_and_grad(&self, p: &ParamSet, windows: &[&Window], checkpoint_every: usize) -> (f64, Vec<f64>) {
        let net = &self.net;
        let v = RateValues::from_params(net, p);
        let norm = self.norm(windows);
        let per: Vec<(f64, RateGrads)> = windows
            .par_iter()
            .map(|win| {
                let w = &self.worms[win.worm];
                let mut obj = self.objective(win, norm);
                let input = clamp_input(w, &win.driven, win.start, self.window_steps);
                self.sim_grad(&v, &input, &mut obj, checkpoint_every)
            })
            .collect();
        let mut total = RateGrads::zeros(net.n, net.n_connections(), net.n_gap_entries());
        let mut loss = 0.0;
        for (l, g) in &per {
            loss += l;
            total.add(g);
        }
        let mut raw = vec![0.0; p.raw.len()];
        total.reduce(net, &v, p, &mut raw);
        (loss, raw)
    }

    /// Predicted traces of worm `wi`'s scored held-out neurons over its whole recording (driven neurons
    /// clamped), one vector of `steps + 1` values per held-out neuron.
    pub fn predict(&self, v: &RateValues, wi: usize) -> Vec<Vec<f64>> {
        let w = &self.worms[wi];
        let neurons: Vec<u32> = w.held_out.iter().map(|&h| w.neurons[h]).collect();
        let mut rec = Recorder { out: vec![Vec::with_capacity(w.steps + 1); neurons.len()], neurons };
        self.sim_loss(v, &clamp_input(w, &w.driven, 0, w.steps), &mut rec);
        rec.out
    }
}

// ---------------------------------------------------------------------------------------------------
// Baselines.

/// Signed synapse count `pre → post` plus gap junctions, for every connected pair.
fn direct_weights(net: &FitNetwork) -> HashMap<(u32, u32), f64> {
    let mut d: HashMap<(u32, u32), f64> = HashMap::new();
    for i in 0..net.n {
        for c in net.row_ptr[i]..net.row_ptr[i + 1] {
            *d.entry((net.pre[c], i as u32)).or_default() += net.sign[c] as f64 * net.count[c] as f64;
        }
        for g in net.gap_ptr[i]..net.gap_ptr[i + 1] {
            *d.entry((net.gap_nbr[g], i as u32)).or_default() += net.gap_count[g] as f64;
        }
    }
    d
}

/// Sums and products of one worm's traces (all grid points), by neuron name.
struct Gram {
    index: HashMap<String, usize>,
    n: f64,
    sum: Vec<f64>,
    /// `m × m`, `Σ_t x_i x_j`.
    g: Vec<f64>,
    m: usize,
}

impl Gram {
    fn new(w: &Worm) -> Self {
        let m = w.neurons.len();
        let mut g = vec![0.0; m * m];
        for i in 0..m {
            for j in i..m {
                let s: f64 = w.trace(i).iter().zip(w.trace(j)).map(|(a, b)| a * b).sum();
                g[i * m + j] = s;
                g[j * m + i] = s;
            }
        }
        Self {
            index: w.names.iter().enumerate().map(|(k, n)| (n.clone(), k)).collect(),
            n: (w.steps + 1) as f64,
            sum: (0..m).map(|i| w.trace(i).iter().sum()).collect(),
            g,
            m,
        }
    }

    fn cov(&self, i: usize, j: usize) -> f64 {
        self.g[i * self.m + j] / self.n - (self.sum[i] / self.n) * (self.sum[j] / self.n)
    }

    fn r(&self, i: usize, j: usize) -> Option<f64> {
        let d = self.cov(i, i) * self.cov(j, j);
        (d > 0.0).then(|| (self.cov(i, j) / d.sqrt()).clamp(-1.0, 1.0))
    }
}

/// Solves `a x = b` for symmetric positive definite `a` (`p × p`) by Cholesky.
fn cholesky_solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let p = b.len();
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * p + j] = d;
        for i in j + 1..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = s / d;
        }
    }
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * p + k] * b[k];
        }
        b[i] = s / a[i * p + i];
    }
    for i in (0..p).rev() {
        let mut s = b[i];
        for k in i + 1..p {
            s -= a[k * p + i] * b[k];
        }
        b[i] = s / a[i * p + i];
    }
    Some(b)
}

/// Ridge regression of `target` on `features` pooled over `grams` that recorded the target; a feature a
/// worm did not record is 0 there. Returns `(β, intercept)`.
fn ridge_fit(grams: &[&Gram], features: &[&str], target: &str, lambda: f64) -> Option<(Vec<f64>, f64)> {
    let us: Vec<&&Gram> = grams.iter().filter(|g| g.index.contains_key(target)).collect();
    if us.is_empty() {
        return None;
    }
    let p = features.len();
    let (mut n, mut sy) = (0.0, 0.0);
    let mut sx = vec![0.0; p];
    let mut gxx = vec![0.0; p * p];
    let mut gxy = vec![0.0; p];
    for u in &us {
        let y = u.index[target];
        let idx: Vec<Option<usize>> = features.iter().map(|f| u.index.get(*f).copied()).collect();
        n += u.n;
        sy += u.sum[y];
        for a in 0..p {
            let Some(i) = idx[a] else { continue };
            sx[a] += u.sum[i];
            gxy[a] += u.g[i * u.m + y];
            for b in 0..p {
                if let Some(j) = idx[b] {
                    gxx[a * p + b] += u.g[i * u.m + j];
                }
            }
        }
    }
    let mut c = vec![0.0; p * p];
    let mut cy = vec![0.0; p];
    for a in 0..p {
        for b in 0..p {
            c[a * p + b] = gxx[a * p + b] - sx[a] * sx[b] / n;
        }
        c[a * p + a] += lambda * n;
        cy[a] = gxy[a] - sx[a] * sy / n;
    }
    let beta = cholesky_solve(c, cy)?;
    let intercept = (sy - beta.iter().zip(&sx).map(|(b, s)| b * s).sum::<f64>()) / n;
    Some((beta, intercept))
}

/// Pearson r of a ridge prediction with the target on one worm, from its sums.
fn ridge_r_on(u: &Gram, features: &[&str], target: &str, beta: &[f64]) -> Option<f64> {
    let y = *u.index.get(target)?;
    let idx: Vec<Option<usize>> = features.iter().map(|f| u.index.get(*f).copied()).collect();
    let (mut cxy, mut vp) = (0.0, 0.0);
    for a in 0..features.len() {
        let Some(i) = idx[a] else { continue };
        cxy += beta[a] * u.cov(i, y);
        for b in 0..features.len() {
            if let Some(j) = idx[b] {
                vp += beta[a] * beta[b] * u.cov(i, j);
            }
        }
    }
    let vy = u.cov(y, y);
    (vp > 0.0 && vy > 0.0).then(|| (cxy / (vp * vy).sqrt()).clamp(-1.0, 1.0))
}

/// λ with the best mean leave-one-training-worm-out r over `tasks` (features, target).
fn choose_lambda(grams: &[&Gram], tasks: &[(Vec<&str>, &str)]) -> (f64, Vec<(f64, Option<f64>)>) {
    let scores: Vec<(f64, Option<f64>)> = LAMBDAS
        .par_iter()
        .map(|&lambda| {
            let mut rs = Vec::new();
            for (features, target) in tasks {
                let us: Vec<&Gram> = grams.iter().copied().filter(|g| g.index.contains_key(*target)).collect();
                if us.len() < 2 {
                    continue;
                }
                for k in 0..us.len() {
                    let others: Vec<&Gram> = us.iter().enumerate().filter(|(j, _)| *j != k).map(|(_, g)| *g).collect();
                    if let Some((beta, _)) = ridge_fit(&others, features, target, lambda)
                        && let Some(r) = ridge_r_on(us[k], features, target, &beta)
                    {
                        rs.push(r);
                    }
                }
            }
            (lambda, (!rs.is_empty()).then(|| rs.iter().sum::<f64>() / rs.len() as f64))
        })
        .collect();
    let best = scores
        .iter()
        .filter_map(|(l, s)| s.map(|s| (*l, s)))
        .fold(None, |acc: Option<(f64, f64)>, (l, s)| match acc {
            Some((_, bs)) if bs >= s => acc,
            _ => Some((l, s)),
        })
        .map_or(0.1, |(l, _)| l);
    (best, scores)
}

/// The driven neuron (index into `features`) best correlated with `target` on the training worms, and
/// the sign of that correlation.
fn best_driven(grams: &[&Gram], features: &[&str], target: &str) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (a, f) in features.iter().enumerate() {
        let rs: Vec<f64> = grams
            .iter()
            .filter_map(|u| Some((*u.index.get(target)?, *u.index.get(*f)?, *u)))
            .filter_map(|(y, x, u)| u.r(x, y))
            .collect();
        if rs.is_empty() {
            continue;
        }
        let r = rs.iter().sum::<f64>() / rs.len() as f64;
        if best.is_none_or(|(_, b)| r.abs() > b.abs()) {
            best = Some((a, r));
        }
    }
    best.map(|(a, r)| (a, if r < 0.0 { -1.0 } else { 1.0 }))
}

fn r_from(pred: &[f64], rec: &[f64], warmup: usize) -> Option<f64> {
    pearson(&pred[warmup..], &rec[warmup..])
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len();
    Some(if m % 2 == 1 { v[m / 2] } else { 0.5 * (v[m / 2 - 1] + v[m / 2]) })
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Scores of one predictor from its r per neuron; `common[k]`: every predictor is defined on neuron `k`.
fn summarize(predictor: &str, rs: &[Option<f64>], common: &[bool]) -> PredictorScore {
    let mut defined: Vec<f64> = rs.iter().flatten().copied().collect();
    let mut zeroed: Vec<f64> = rs.iter().map(|r| r.unwrap_or(0.0)).collect();
    let mut shared: Vec<f64> = rs.iter().zip(common).filter(|(_, c)| **c).filter_map(|(r, _)| *r).collect();
    PredictorScore {
        predictor: predictor.into(),
        n_neurons: rs.len(),
        n_defined: defined.len(),
        mean_r: mean(&defined),
        median_r: median(&mut defined),
        median_r_undefined_as_zero: median(&mut zeroed),
        n_common: shared.len(),
        mean_r_common: mean(&shared),
        median_r_common: median(&mut shared),
    }
}

fn r_of(r: &NeuronScore, predictor: &str) -> Option<f64> {
    match predictor {
        FITTED => r.r_fitted,
        UNFITTED => r.r_unfitted,
        DIRECT => r.r_direct,
        RIDGE => r.r_ridge,
        _ => r.r_best_driven,
    }
}

fn scores_of(rows: &[&NeuronScore], predictors: &[&str]) -> Vec<PredictorScore> {
    let common: Vec<bool> = rows.iter().map(|r| predictors.iter().all(|p| r_of(r, p).is_some())).collect();
    predictors
        .iter()
        .map(|&p| {
            let rs: Vec<Option<f64>> = rows.iter().map(|r| r_of(r, p)).collect();
            summarize(p, &rs, &common)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// The fit and its report.

/// Fits from every restart (early stopping on the validation windows); returns the best.
fn fit_twin(
    plan: &CalciumPlan,
    file: &FitScenarioFile,
    bar: &ProgressBar,
    history: &mut Vec<HistoryRow>,
) -> Result<(ParamSet, usize, f64), ScenarioError> {
    let fit = &file.spec.fit;
    let ckpt = fit.checkpoint_every;
    let train_refs: Vec<&Window> = plan.train_windows.iter().collect();
    let val_refs: Vec<&Window> = plan.val_windows.iter().collect();
    let grad = |p: &ParamSet, idx: &[usize]| -> Result<(f64, Vec<f64>), FitError> {
        let b: Vec<&Window> = idx.iter().map(|&k| train_refs[k]).collect();
        Ok(plan.loss_and_grad(p, &b, ckpt))
    };
    let val_loss = |p: &ParamSet| -> Result<f64, FitError> {
        Ok(if val_refs.is_empty() { f64::NAN } else { plan.loss(p, &val_refs) })
    };
    super::fit_with_restarts(file, "final", &plan.params, train_refs.len(), &grad, &val_loss, bar, history)
}

fn worm_info(w: &Worm) -> WormInfo {
    WormInfo {
        name: w.name.clone(),
        source: w.source.clone(),
        n_rois: w.n_rois,
        n_labelled: w.n_labelled,
        n_matched_used: w.neurons.len(),
        n_driven: w.driven.len(),
        n_held_out: w.held_out.len(),
        grid_points: w.steps + 1,
        frame_interval_s: w.frame_s,
        driven: w.driven.iter().map(|&k| w.names[k].clone()).collect(),
        held_out: w.held_out.iter().map(|&k| w.names[k].clone()).collect(),
        skipped: w.skipped.clone(),
        unmatched_labels: w.unmatched_labels.clone(),
    }
}

/// Fits the twin on the training worms and scores it and every baseline on the test worms.
pub fn run(file: &FitScenarioFile, plan: &CalciumPlan, progress: bool) -> Result<CalciumFitReport, ScenarioError> {
    let t0 = std::time::Instant::now();
    let fit = &file.spec.fit;
    let bar = ProgressBar::with_draw_target(
        Some(fit.restarts.max(1) * fit.train.epochs as u64),
        if progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        ProgressStyle::with_template("fit [{bar:25}] {pos}/{len} epochs {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let val_refs: Vec<&Window> = plan.val_windows.iter().collect();
    let initial_val_loss = if val_refs.is_empty() { f64::NAN } else { plan.loss(&plan.params, &val_refs) };
    let mut history = Vec::new();
    let (fitted_params, best_epoch, best_val_loss) = fit_twin(plan, file, &bar, &mut history)?;
    bar.finish_and_clear();

    let fitted = RateValues::from_params(&plan.net, &fitted_params);
    let unfitted = RateValues::from_params(&plan.net, &plan.params);
    let direct = direct_weights(&plan.net);
    let grams: Vec<Gram> = plan.train.par_iter().map(|&w| Gram::new(&plan.worms[w])).collect();
    let gram_refs: Vec<&Gram> = grams.iter().collect();
    let warm = plan.warmup_steps;

    // Ridge penalty: given, or chosen on the training worms only.
    let tasks: Vec<(Vec<&str>, &str)> = plan
        .test
        .iter()
        .flat_map(|&wi| {
            let w = &plan.worms[wi];
            let features: Vec<&str> = w.driven.iter().map(|&d| w.names[d].as_str()).collect();
            w.held_out.iter().map(move |&h| (features.clone(), w.names[h].as_str()))
        })
        .collect();
    let (lambda, lambda_scores) = match plan.ridge_lambda {
        Some(l) => (l, Vec::new()),
        None => choose_lambda(&gram_refs, &tasks),
    };

    let mut neurons = Vec::new();
    let mut panels = Vec::new();
    let scored: Vec<(usize, bool)> =
        plan.test.iter().map(|&w| (w, true)).chain(plan.train.iter().map(|&w| (w, false))).collect();
    // (fitted, unfitted) predictions of each scored worm.
    type Predicted = (Vec<Vec<f64>>, Vec<Vec<f64>>);
    let runs: Vec<Predicted> =
        scored.par_iter().map(|&(wi, _)| (plan.predict(&fitted, wi), plan.predict(&unfitted, wi))).collect();
    for (&(wi, is_test), (pf, pu)) in scored.iter().zip(&runs) {
        let w = &plan.worms[wi];
        let features: Vec<&str> = w.driven.iter().map(|&d| w.names[d].as_str()).collect();
        let time_s: Vec<f64> = (0..=w.steps).map(|k| k as f64 * plan.dt / 1000.0).collect();
        for (m, &h) in w.held_out.iter().enumerate() {
            let rec = w.trace(h);
            let target = w.names[h].as_str();
            let weights: Vec<f64> =
                w.driven.iter().map(|&d| direct.get(&(w.neurons[d], w.neurons[h])).copied().unwrap_or(0.0)).collect();
            let n_direct_inputs = weights.iter().filter(|&&x| x != 0.0).count();
            let dir_pred: Vec<f64> =
                (0..=w.steps).map(|t| w.driven.iter().zip(&weights).map(|(&d, a)| a * w.trace(d)[t]).sum()).collect();
            let (mut r_ridge, mut r_best, mut best_name) = (None, None, None);
            if is_test {
                if let Some((beta, c)) = ridge_fit(&gram_refs, &features, target, lambda) {
                    let pred: Vec<f64> = (0..=w.steps)
                        .map(|t| c + w.driven.iter().zip(&beta).map(|(&d, b)| b * w.trace(d)[t]).sum::<f64>())
                        .collect();
                    r_ridge = r_from(&pred, rec, warm);
                }
                if let Some((a, sign)) = best_driven(&gram_refs, &features, target) {
                    let x: Vec<f64> = w.trace(w.driven[a]).iter().map(|v| sign * v).collect();
                    r_best = r_from(&x, rec, warm);
                    best_name = Some(features[a].to_string());
                }
            }
            let row = NeuronScore {
                worm: w.name.clone(),
                set: if is_test { "test" } else { "train" }.into(),
                neuron: target.into(),
                n_direct_inputs,
                best_driven_neuron: best_name,
                r_fitted: r_from(&pf[m], rec, warm),
                r_unfitted: r_from(&pu[m], rec, warm),
                r_direct: r_from(&dir_pred, rec, warm),
                r_ridge,
                r_best_driven: r_best,
            };
            if is_test {
                panels.push(TracePanel {
                    worm: w.name.clone(),
                    neuron: target.into(),
                    time_s: time_s.clone(),
                    recorded: rec.to_vec(),
                    fitted: pf[m].clone(),
                    unfitted: pu[m].clone(),
                    r_fitted: row.r_fitted,
                    r_unfitted: row.r_unfitted,
                });
            }
            neurons.push(row);
        }
    }
    let test_rows: Vec<&NeuronScore> = neurons.iter().filter(|r| r.set == "test").collect();
    let train_rows: Vec<&NeuronScore> = neurons.iter().filter(|r| r.set == "train").collect();
    let held_out = scores_of(&test_rows, &PREDICTORS);
    let held_out_per_worm = plan
        .test
        .iter()
        .map(|&wi| {
            let name = &plan.worms[wi].name;
            let rows: Vec<&NeuronScore> = test_rows.iter().copied().filter(|r| &r.worm == name).collect();
            WormScores { worm: name.clone(), scores: scores_of(&rows, &PREDICTORS) }
        })
        .collect();
    let training_worms_in_sample = scores_of(&train_rows, &[FITTED, UNFITTED, DIRECT]);

    let model = FittedModelInfo {
        model: "rate".into(),
        activation: match plan.activation {
            Activation::Relu => "relu".into(),
            Activation::Sigmoid => "sigmoid".into(),
        },
        dt_ms: plan.dt,
        network: file.spec.name.clone(),
        scenario: file.path.canonicalize().unwrap_or_else(|_| file.path.clone()).display().to_string(),
    };
    let protocol = ProtocolInfo {
        dt_ms: plan.dt,
        frame_interval_s: plan.frame_s,
        window_frames: plan.window_frames,
        warmup_frames: plan.warmup_frames,
        window_stride_frames: plan.stride_frames,
        window_steps: plan.window_steps,
        warmup_steps: plan.warmup_steps,
        driven_fraction: plan.driven_fraction,
        split_per_window: plan.split_per_window,
        normalize: if plan.normalize == "zscore" {
            "zscore: each trace to mean 0, SD 1 over its recording".into()
        } else {
            "none: traces as given".into()
        },
        readout: "identity: V is the predicted normalised trace".into(),
        initial_state: "V = 0 for every neuron not clamped, at the start of every window and scored run".into(),
        loss: format!(
            "mean squared error of held-out neurons' V vs recorded trace over grid points {} ..= {} of each window",
            plan.warmup_steps, plan.window_steps
        ),
    };
    Ok(CalciumFitReport {
        name: file.spec.name.clone(),
        data: "calcium".into(),
        format: plan.format.clone(),
        protocol,
        n_neurons: plan.net.n,
        n_connections: plan.net.n_connections(),
        n_fitted_numbers: plan.params.fitted_mask().iter().filter(|&&m| m).count(),
        restarts: fit.restarts.max(1),
        train_worms: plan.train.iter().map(|&w| worm_info(&plan.worms[w])).collect(),
        test_worms: plan.test.iter().map(|&w| worm_info(&plan.worms[w])).collect(),
        n_train_windows: plan.train_windows.len(),
        n_val_windows: plan.val_windows.len(),
        held_out,
        held_out_per_worm,
        training_worms_in_sample,
        ridge_lambda: lambda,
        ridge_lambda_scores: lambda_scores,
        initial_val_loss,
        best_epoch,
        best_val_loss,
        fitted_params: fitted_params.to_values(),
        initial_params: plan.params.to_values(),
        seconds: t0.elapsed().as_secs_f64(),
        neurons,
        history,
        fitted: fitted_params,
        model,
        traces: panels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_and_ridge_r_matches_pearson() {
        let x = cholesky_solve(vec![4.0, 2.0, 2.0, 3.0], vec![2.0, 1.0]).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        // A worm with three neurons; r of a ridge prediction from sums equals Pearson on the traces.
        let mut r = SplitMix(3);
        let steps = 99;
        let mut traces = Vec::new();
        for _ in 0..3 {
            traces.extend((0..=steps).map(|_| r.uniform() - 0.5));
        }
        let w = Worm {
            name: "w".into(),
            source: PathBuf::new(),
            n_rois: 3,
            n_labelled: 3,
            frame_s: 0.5,
            neurons: vec![0, 1, 2],
            names: vec!["A".into(), "B".into(), "C".into()],
            steps,
            traces,
            unmatched_labels: vec![],
            skipped: vec![],
            driven: vec![],
            held_out: vec![],
        };
        let g = Gram::new(&w);
        let (beta, c) = ridge_fit(&[&g], &["A", "B"], "C", 0.01).unwrap();
        let pred: Vec<f64> = (0..=steps).map(|t| c + beta[0] * w.trace(0)[t] + beta[1] * w.trace(1)[t]).collect();
        let direct = pearson(&pred, w.trace(2)).unwrap();
        let from_sums = ridge_r_on(&g, &["A", "B"], "C", &beta).unwrap();
        assert!((direct - from_sums).abs() < 1e-9, "{direct} vs {from_sums}");
        assert!((g.r(0, 1).unwrap() - pearson(w.trace(0), w.trace(1)).unwrap()).abs() < 1e-9);
    }

    #[test]
    fn resampling_is_the_identity_on_the_frame_grid_and_splits_are_disjoint() {
        let t = [10.0, 10.5, 11.0, 11.5];
        let x = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(resample(&t, &x, 0.5, 3), x.to_vec());
        assert_eq!(resample(&t, &x, 0.25, 6), vec![1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0]);
        let (d, h) = split(10, 0.5, 7);
        assert_eq!((d.len(), h.len()), (5, 5));
        assert!(d.iter().all(|k| !h.contains(k)));
        assert_eq!(split(2, 0.99, 1).0.len(), 1);
    }
}
