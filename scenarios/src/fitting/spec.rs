//! The fit scenario format: `[network]` as in every scenario, plus `[fit]` (model, data, protocol,
//! cross-validation), `[fit.train]` (optimiser) and `[fit.params.<name>]` (what is learned). See
//! `scenarios/celegans_fit_atlas.toml` (`data = "propagation-atlas"`),
//! `scenarios/celegans_fit_flavell.toml` (`data = "calcium"`) and README "Fitting a twin".

use std::collections::BTreeMap;
use std::path::PathBuf;

use neurotwin_fit::spec::ParamSpec;
use neurotwin_fit::train::TrainOptions;
use serde::Deserialize;
use toml::Spanned;

use crate::spec::NetworkSpec;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitScenarioSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The connectome. Fits read synapse and junction counts, so `weight_per_synapse` and
    /// `gap_per_junction_ns` are ignored (the fitted strengths carry the scale).
    pub network: NetworkSpec,
    pub fit: FitSpec,
    #[serde(default)]
    pub output: FitOutputSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitOutputSpec {
    /// Output folder (default `out/<name>`); `neurotwin fit -o` overrides it.
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSpec {
    /// `rate` (flyvis-style leaky rate model).
    pub model: Spanned<String>,
    /// `relu` (default) or `sigmoid`.
    pub activation: Option<Spanned<String>>,
    /// Integration step (ms).
    pub dt_ms: Spanned<f64>,
    /// `propagation-atlas` or `calcium` (whole-brain recordings with teacher forcing,
    /// [`super::calcium_fit`]).
    pub data: Spanned<String>,
    /// Atlas pairs CSV (relative to the scenario file).
    pub atlas: Option<Spanned<String>>,
    /// Strain fitted and cross-validated (default `wt`).
    pub strain: Option<Spanned<String>>,
    /// Strains the final twin is scored on, unchanged (e.g. `["unc31"]`).
    #[serde(default)]
    pub score_strains: Vec<Spanned<String>>,
    /// Stimulation window and end of the response window (ms from the start of the run). Needed by
    /// `propagation-atlas` (a missing one is refused there); unused by `calcium`.
    #[serde(default = "unset_ms")]
    pub stim_start_ms: Spanned<f64>,
    #[serde(default = "unset_ms")]
    pub stim_stop_ms: Spanned<f64>,
    #[serde(default = "unset_ms")]
    pub response_stop_ms: Spanned<f64>,
    /// Input to the stimulated neuron during the stimulation (model units, times its gain).
    #[serde(default = "one")]
    pub stim_amplitude: f64,
    /// Responders: q below this (Randi et al. 2023 use 0.05).
    #[serde(default = "q_default")]
    pub q_threshold: f64,
    /// Cross-validation folds over stimulated neurons (≥ 2).
    #[serde(default = "five")]
    pub folds: usize,
    /// Random restarts per fit (restart 0 starts from the given values).
    #[serde(default = "one_u")]
    pub restarts: u64,
    /// Half-width of the uniform jitter of raw parameters for restarts ≥ 1.
    #[serde(default = "jitter_default")]
    pub restart_jitter: f64,
    /// Fraction of a fit's training stimulations held out for early stopping.
    #[serde(default = "val_default")]
    pub validation_fraction: f64,
    /// States kept every this many steps in backpropagation through time.
    #[serde(default = "ckpt_default")]
    pub checkpoint_every: usize,
    /// Seed of folds, validation splits and restarts.
    #[serde(default = "one_u")]
    pub seed: u64,
    /// Receptor classes whose sign is unknown and learned.
    #[serde(default)]
    pub learned_sign: Vec<String>,
    #[serde(default)]
    pub train: TrainOptions,
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,

    // ---- `data = "calcium"` (see `calcium_fit`): ignored by `propagation-atlas`. ----
    /// Recordings: a folder (every `*-data.h5` for `flavell`, every `*.csv` for `csv`) or a file, or a
    /// list of them (relative to the scenario file). One worm per file.
    pub recordings: Option<Spanned<PathList>>,
    /// `flavell` (default; Flavell-lab `<uid>-data.h5` + NeuroPAL label JSON) or `csv` (one file per
    /// worm, `time_s,<label>,…`, worm name = file stem).
    pub format: Option<Spanned<String>>,
    /// Flavell label JSON (default `neuropal_labels.json` beside the data files).
    pub labels: Option<Spanned<String>>,
    /// Flavell identities below this confidence (1–5) are not used (default 0: all).
    pub min_confidence: Option<Spanned<f64>>,
    /// Worms (uids or file stems) the twin is fitted on (default: every worm not in `test_worms`).
    #[serde(default)]
    pub train_worms: Vec<Spanned<String>>,
    /// Worms never used for fitting, on which held-out neurons are scored.
    #[serde(default)]
    pub test_worms: Vec<Spanned<String>>,
    /// Without `test_worms`: this many worms, the last ones in name order, are test worms (default 1).
    pub n_test_worms: Option<usize>,
    /// Fraction of each worm's matched neurons whose `V` is clamped to the recording (default 0.5).
    pub driven_fraction: Option<Spanned<f64>>,
    /// Length of a training window, in recording frames (default 60).
    pub window_frames: Option<usize>,
    /// Frames at the start of every window (and of every scored run) left out of the loss (default 10).
    pub warmup_frames: Option<usize>,
    /// Start-to-start distance of training windows, in frames (default `window_frames`: no overlap).
    pub window_stride_frames: Option<usize>,
    /// Each training window draws its own driven/held-out split (default true); false: one split per
    /// worm (the one scored).
    pub split_per_window: Option<bool>,
    /// `zscore` (default: each trace to mean 0, SD 1 over its recording) or `none` (as given).
    pub normalize: Option<Spanned<String>>,
    /// `identity` (the only read-out so far: `V` is in the unit of the normalised trace).
    pub readout: Option<Spanned<String>>,
    /// Ridge penalty of the connectome-free baseline (per frame, on normalised traces); default: chosen
    /// from 1e-3 … 10 by leave-one-training-worm-out.
    pub ridge_lambda: Option<f64>,
}

/// One path or several.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum PathList {
    One(String),
    Many(Vec<String>),
}

impl PathList {
    pub fn paths(&self) -> Vec<&str> {
        match self {
            PathList::One(p) => vec![p.as_str()],
            PathList::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A field the file did not give: span 0..0 and NaN (refused by any check that needs it).
fn unset_ms() -> Spanned<f64> {
    Spanned::new(0..0, f64::NAN)
}

fn one() -> f64 {
    1.0
}
fn one_u() -> u64 {
    1
}
fn five() -> usize {
    5
}
fn q_default() -> f64 {
    0.05
}
fn jitter_default() -> f64 {
    0.5
}
fn val_default() -> f64 {
    0.15
}
fn ckpt_default() -> usize {
    50
}
