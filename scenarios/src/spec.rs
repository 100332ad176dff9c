//! The scenario file format (TOML). See README "Scenario reference" for the documented form; every
//! table rejects unknown keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use neurotwin_connectome::TransmitterMap;
use neurotwin_connectome::generators::{BrunelConfig, CobaConfig, CubaConfig, FlyBrainConfig, Pd14Config};
use neurotwin_sim::InitRule;
use serde::Deserialize;
use toml::Spanned;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Short name used for output folders and titles.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub network: NetworkSpec,
    /// Neuron model and parameters (`model = "lif_exp"` plus its fields); `cell_types.<type>` tables
    /// override fields for one cell type. Optional for generated networks (their published parameters).
    pub model: Option<Spanned<toml::Table>>,
    /// Initial values of state variables by name, e.g. `V_m = { dist = "uniform", lo = -60, hi = -50 }`.
    #[serde(default)]
    pub init: BTreeMap<String, InitRule>,
    pub run: RunSpec,
    #[serde(default, rename = "stimulus")]
    pub stimuli: Vec<StimulusSpec>,
    #[serde(default, rename = "perturbation")]
    pub perturbations: Vec<PerturbationSpec>,
    #[serde(default)]
    pub record: RecordSpecFile,
    #[serde(default)]
    pub output: OutputSpec,
    pub sweep: Option<SweepSpec>,
    /// Neurons whose rates are tabulated after the run (the demo's read-out).
    #[serde(default)]
    pub readout: Vec<ReadoutGroup>,
    /// Time windows in which read-out rates are tabulated (e.g. baseline vs stimulus).
    #[serde(default, rename = "window")]
    pub windows: Vec<WindowSpec>,
    /// What `neurotwin compare` compares the model with (real data).
    pub compare: Option<CompareSpec>,
    /// Synapses that learn during the run (`[[plasticity]]`).
    #[serde(default)]
    pub plasticity: Vec<PlasticitySpec>,
}

/// One group of plastic synapses (`[[plasticity]]`): the chemical synapses from `pre` to `post` (default: all
/// neurons) on `receptor` (default: every channel). A synapse follows the first group that selects it.
/// - `rule = "stdp"`: pair-based STDP (NEST's `stdp_synapse`). `pairing`: `all_to_all` (default) or `nearest`
///   (symmetric nearest-neighbour); `weight_dependence`: `additive` (μ₊ = μ₋ = 0), `multiplicative` (μ = 1, the
///   default) or `power` with `mu_plus` and `mu_minus` (Gütig et al. 2003). `tau_plus_ms`, `tau_minus_ms` (20),
///   `lambda` (0.01), `alpha` (1) and `w_max` (required, the model's synaptic unit) as in NEST.
/// - `rule = "stdp_dopamine"`: reward-modulated STDP (Izhikevich 2007; NEST's `stdp_dopamine_synapse`): `dopamine`
///   (the dopamine neurons, required), `dopamine_delay_ms` (1), `update_interval_ms` (1), `a_plus` (1), `a_minus`
///   (1.5), `tau_plus_ms`, `tau_minus_ms` (20), `tau_c_ms` (1000), `tau_n_ms` (200), `b` (0), `w_min` (0), `w_max`
///   (200).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlasticitySpec {
    pub name: Option<String>,
    pub rule: Spanned<String>,
    pub pre: Option<TargetSpec>,
    pub post: Option<TargetSpec>,
    pub receptor: Option<Spanned<String>>,
    pub pairing: Option<Spanned<String>>,
    pub weight_dependence: Option<Spanned<String>>,
    pub mu_plus: Option<Spanned<f64>>,
    pub mu_minus: Option<Spanned<f64>>,
    pub tau_plus_ms: Option<Spanned<f64>>,
    pub tau_minus_ms: Option<Spanned<f64>>,
    pub lambda: Option<Spanned<f64>>,
    pub alpha: Option<Spanned<f64>>,
    pub w_max: Option<Spanned<f64>>,
    pub a_plus: Option<Spanned<f64>>,
    pub a_minus: Option<Spanned<f64>>,
    pub tau_c_ms: Option<Spanned<f64>>,
    pub tau_n_ms: Option<Spanned<f64>>,
    pub b: Option<Spanned<f64>>,
    pub w_min: Option<Spanned<f64>>,
    pub dopamine: Option<TargetSpec>,
    pub dopamine_delay_ms: Option<Spanned<f64>>,
    pub update_interval_ms: Option<Spanned<f64>>,
}

impl PlasticitySpec {
    /// The numeric parameters by name (for located errors).
    pub fn fields(&self) -> [(&'static str, Option<&Spanned<f64>>); 13] {
        [
            ("tau_plus_ms", self.tau_plus_ms.as_ref()),
            ("tau_minus_ms", self.tau_minus_ms.as_ref()),
            ("lambda", self.lambda.as_ref()),
            ("alpha", self.alpha.as_ref()),
            ("mu_plus", self.mu_plus.as_ref()),
            ("mu_minus", self.mu_minus.as_ref()),
            ("w_max", self.w_max.as_ref()),
            ("a_plus", self.a_plus.as_ref()),
            ("a_minus", self.a_minus.as_ref()),
            ("tau_c_ms", self.tau_c_ms.as_ref()),
            ("tau_n_ms", self.tau_n_ms.as_ref()),
            ("b", self.b.as_ref()),
            ("w_min", self.w_min.as_ref()),
        ]
    }
}

/// The `[compare]` section: real data the scenario's model is compared with by `neurotwin compare`. `kind`:
/// - `propagation-atlas`: stimulate each measured neuron of a signal-propagation atlas in turn (Randi et al.
///   2023) and compare predicted with measured responders. Fields: `atlas` (pairs CSV, relative to the
///   scenario file), `strains`, `stim_rate_hz`, `stim_amplitude_pa` (graded models), `stim_start_ms`,
///   `stim_stop_ms`, `response_stop_ms`, `q_threshold`, `trials`, `stimulated` (optional subset),
///   `indicator`.
/// - `recording`: compare the simulated calcium of named neurons with a recording. Fields: `recording`,
///   `format` (`nwb`, `plain-h5`, `csv`, `flavell`), `series` (NWB: which `RoiResponseSeries`), `labels` (Flavell label JSON), `worm`, `min_confidence`,
///   `indicator`, `max_lag_s`, `nan_policy` (`error` or `drop-rows`: what to do with a recorded neuron that
///   is NaN in every frame).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareSpec {
    pub kind: Spanned<String>,
    pub atlas: Option<Spanned<String>>,
    pub strains: Option<Vec<Spanned<String>>>,
    pub stim_rate_hz: Option<Spanned<f64>>,
    pub stim_amplitude_pa: Option<Spanned<f64>>,
    pub stim_start_ms: Option<Spanned<f64>>,
    pub stim_stop_ms: Option<Spanned<f64>>,
    pub response_stop_ms: Option<Spanned<f64>>,
    pub q_threshold: Option<Spanned<f64>>,
    pub trials: Option<Spanned<u32>>,
    pub stimulated: Option<TargetSpec>,
    pub indicator: Option<Spanned<String>>,
    pub recording: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub series: Option<Spanned<String>>,
    pub labels: Option<Spanned<String>>,
    pub worm: Option<Spanned<String>>,
    pub min_confidence: Option<Spanned<f64>>,
    pub max_lag_s: Option<Spanned<f64>>,
    pub nan_policy: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    pub label: String,
    pub start_ms: f64,
    pub stop_ms: f64,
}

/// Exactly one source: `source` (bundled dataset), `connections` (+ `neurons`) CSV, `file` (own HDF5)
/// or `generator`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Bundled dataset: `"celegans"`.
    pub source: Option<Spanned<String>>,
    pub connections: Option<PathBuf>,
    pub neurons: Option<PathBuf>,
    /// CSV layout override: `generic`, `flywire`, `neuprint`.
    pub layout: Option<String>,
    /// neurotwin HDF5 connectome file.
    pub file: Option<PathBuf>,
    pub generator: Option<GeneratorSpec>,
    /// Seed of generated connectivity (default: `run.seed`; trials share one network).
    pub seed: Option<u64>,
    /// Transmitter map: a preset name (`fly`, `celegans`, `exc_inh`) or a full table.
    pub transmitters: Option<TransmitterSpec>,
    /// Weight of one synapse (model's synaptic unit: pA for lif_exp/adex, mV for lif_delta and
    /// izhikevich, nS for graded, lif_cond_exp and adex with `synapses = "conductance"`).
    pub weight_per_synapse: Option<f64>,
    pub default_delay_ms: Option<f64>,
    pub gap_per_junction_ns: Option<f64>,
    pub min_synapse_count: Option<f32>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum TransmitterSpec {
    Preset(String),
    Map(TransmitterMap),
}

/// A benchmark network generator and its parameters (the generator's own config tables; every field
/// has the published default).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GeneratorSpec {
    /// Vogels & Abbott 2005 CUBA.
    Cuba(CubaConfig),
    /// Vogels & Abbott 2005 COBA (conductance synapses, `lif_cond_exp`).
    Coba(CobaConfig),
    /// Brunel 2000 delta-synapse network.
    Brunel(BrunelConfig),
    /// Potjans & Diesmann 2014 microcircuit.
    Pd14(Pd14Config),
    /// Synthetic network with the statistics of the whole adult fly brain (FlyWire v783).
    #[serde(rename = "flybrain")]
    FlyBrain(FlyBrainConfig),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub duration_ms: Spanned<f64>,
    #[serde(default = "d_dt")]
    pub dt_ms: Spanned<f64>,
    #[serde(default = "d_seed")]
    pub seed: u64,
    #[serde(default = "d_trials")]
    pub trials: u32,
    /// Worker threads (0 = all cores).
    #[serde(default)]
    pub threads: usize,
}
fn d_dt() -> Spanned<f64> {
    Spanned::new(0..0, 0.1)
}
fn d_seed() -> u64 {
    1
}
fn d_trials() -> u32 {
    1
}

/// A set of neurons. Exactly one selector (or `all = true`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(default)]
    pub names: Vec<Spanned<String>>,
    #[serde(default)]
    pub ids: Vec<Spanned<u64>>,
    /// Regular expression matched against whole names, e.g. `"^VD\\d+$"`.
    pub pattern: Option<Spanned<String>>,
    pub cell_type: Option<Spanned<String>>,
    #[serde(default)]
    pub all: bool,
}

/// One stimulus. `kind` decides which fields are required:
/// - `poisson`: independent Poisson input of `rate_hz` per target; each event adds `weight` on `receptor`;
/// - `current`: a current step of `amplitude_pa` (pA);
/// - `activation`: optogenetic-like; targets fire as Poisson processes of `rate_hz` (spiking models),
///   graded models receive `amplitude_pa` on each event.
///
/// Active in `[start_ms, stop_ms)` (default: the whole run).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StimulusSpec {
    pub kind: Spanned<String>,
    pub name: Option<String>,
    pub targets: TargetSpec,
    pub rate_hz: Option<Spanned<f64>>,
    pub weight: Option<Spanned<f64>>,
    pub receptor: Option<Spanned<String>>,
    pub amplitude_pa: Option<Spanned<f64>>,
    pub start_ms: Option<Spanned<f64>>,
    pub stop_ms: Option<Spanned<f64>>,
}

/// One perturbation. `kind`:
/// - `silence`: `targets` emit nothing during `[start_ms, stop_ms)`;
/// - `scale`: multiply weights of one receptor channel (`receptor`) or of all synapses whose presynaptic
///   neuron releases `transmitter`, by `factor`;
/// - `block`: receptor antagonist on `receptor` with Hill dose–response (`dose`, `ic50`, `hill`) and
///   wash-in/out (`tau_on_ms`, `tau_off_ms`) in `[start_ms, stop_ms)`;
/// - `cut`: remove connections from `pre` to `post` (chemical and electrical).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerturbationSpec {
    pub kind: Spanned<String>,
    pub targets: Option<TargetSpec>,
    pub pre: Option<TargetSpec>,
    pub post: Option<TargetSpec>,
    pub receptor: Option<Spanned<String>>,
    pub transmitter: Option<Spanned<String>>,
    pub factor: Option<Spanned<f64>>,
    pub dose: Option<Spanned<f64>>,
    pub ic50: Option<Spanned<f64>>,
    pub hill: Option<Spanned<f64>>,
    pub start_ms: Option<Spanned<f64>>,
    pub stop_ms: Option<Spanned<f64>>,
    pub tau_on_ms: Option<Spanned<f64>>,
    pub tau_off_ms: Option<Spanned<f64>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRecordSpec {
    pub var: Spanned<String>,
    pub targets: TargetSpec,
    #[serde(default = "d_every")]
    pub every_ms: f64,
}
fn d_every() -> f64 {
    1.0
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSpecFile {
    /// Neurons whose spikes are written (default: all).
    pub spikes: Option<TargetSpec>,
    #[serde(default)]
    pub state: Vec<StateRecordSpec>,
    /// Bin of the per-cell-type rate time series (ms; 0 = none).
    #[serde(default)]
    pub rate_bin_ms: f64,
    /// Interval of the plastic weights' snapshots (ms; default: the start and the end of the run only).
    pub weights_every_ms: Option<Spanned<f64>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Output folder (relative to the working directory); `neurotwin run -o` overrides it.
    pub dir: Option<PathBuf>,
    /// Raster plot PNG (default true).
    pub raster: Option<bool>,
}

/// Runs the scenario once per value of one field. `param` is a dotted path into this file, e.g.
/// `"perturbation.0.dose"` or `"stimulus.1.rate_hz"` or `"model.tau_m"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub param: Spanned<String>,
    pub values: Vec<toml::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadoutGroup {
    pub label: String,
    pub targets: TargetSpec,
}
