//! The scenario file format (TOML). See README "Scenario reference" for the documented form; every
//! table rejects unknown keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use neurotwin_connectome::TransmitterMap;
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
    /// Transmitter map: a preset name (`fly`, `celegans`, `exc_inh`) or a full table.
    pub transmitters: Option<TransmitterSpec>,
    /// Weight of one synapse (model's synaptic unit: pA for lif_exp/adex, mV for lif_delta and
    /// izhikevich, nS for graded).
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

/// A benchmark network generator and its parameters.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GeneratorSpec {
    /// Vogels & Abbott 2005 CUBA.
    Cuba {
        #[serde(default = "d_cuba_n")]
        n: u32,
        #[serde(default = "d_cuba_k")]
        k: u32,
        #[serde(default)]
        bernoulli: bool,
    },
    /// Brunel 2000 delta-synapse network (`order` = N_I; N_E = 4 order).
    Brunel {
        #[serde(default = "d_brunel_order")]
        order: u32,
        #[serde(default = "d_g")]
        g: f64,
        #[serde(default = "d_eta")]
        eta: f64,
    },
    /// Potjans & Diesmann 2014 microcircuit.
    Pd14 {
        #[serde(default = "d_one")]
        n_scaling: f64,
        #[serde(default = "d_one")]
        k_scaling: f64,
    },
}
fn d_cuba_n() -> u32 {
    4000
}
fn d_cuba_k() -> u32 {
    80
}
fn d_brunel_order() -> u32 {
    2500
}
fn d_g() -> f64 {
    5.0
}
fn d_eta() -> f64 {
    2.0
}
fn d_one() -> f64 {
    1.0
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

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StimulusSpec {
    /// Independent Poisson input of `rate_hz` per target; each event adds `weight` on `receptor`.
    Poisson {
        name: Option<String>,
        targets: TargetSpec,
        rate_hz: Spanned<f64>,
        weight: Spanned<f64>,
        receptor: Spanned<String>,
        #[serde(default)]
        start_ms: f64,
        stop_ms: Option<f64>,
    },
    /// Current step (pA).
    Current {
        name: Option<String>,
        targets: TargetSpec,
        amplitude_pa: Spanned<f64>,
        #[serde(default)]
        start_ms: f64,
        stop_ms: Option<f64>,
    },
    /// Optogenetic-like activation: targets fire as Poisson processes of `rate_hz` (spiking models);
    /// graded models receive `amplitude_pa` on each event.
    Activation {
        name: Option<String>,
        targets: TargetSpec,
        rate_hz: Spanned<f64>,
        #[serde(default)]
        amplitude_pa: f64,
        #[serde(default)]
        start_ms: f64,
        stop_ms: Option<f64>,
    },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PerturbationSpec {
    /// Targets emit nothing during the window.
    Silence {
        targets: TargetSpec,
        #[serde(default)]
        start_ms: f64,
        stop_ms: Option<f64>,
    },
    /// Multiply weights: of one receptor channel, or of all synapses whose transmitter is given.
    Scale { receptor: Option<Spanned<String>>, transmitter: Option<Spanned<String>>, factor: Spanned<f64> },
    /// Receptor antagonist with Hill dose–response and wash-in/out.
    Block {
        receptor: Spanned<String>,
        dose: Spanned<f64>,
        ic50: Spanned<f64>,
        #[serde(default = "d_one")]
        hill: f64,
        #[serde(default)]
        start_ms: f64,
        stop_ms: Option<f64>,
        #[serde(default)]
        tau_on_ms: f64,
        #[serde(default)]
        tau_off_ms: f64,
    },
    /// Remove connections from `pre` to `post` (chemical and electrical).
    Cut { pre: TargetSpec, post: TargetSpec },
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
