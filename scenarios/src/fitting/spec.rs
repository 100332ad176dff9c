//! The fit scenario format: `[network]` as in every scenario, plus `[fit]` (model, data, protocol,
//! cross-validation), `[fit.train]` (optimiser) and `[fit.params.<name>]` (what is learned). See
//! `scenarios/celegans_fit_atlas.toml` and README "Fitting a twin".

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
    /// `propagation-atlas`.
    pub data: Spanned<String>,
    /// Atlas pairs CSV (relative to the scenario file).
    pub atlas: Option<Spanned<String>>,
    /// Strain fitted and cross-validated (default `wt`).
    pub strain: Option<Spanned<String>>,
    /// Strains the final twin is scored on, unchanged (e.g. `["unc31"]`).
    #[serde(default)]
    pub score_strains: Vec<Spanned<String>>,
    /// Stimulation window and end of the response window (ms from the start of the run).
    pub stim_start_ms: Spanned<f64>,
    pub stim_stop_ms: Spanned<f64>,
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
