//! `neurotwin run TWIN.toml`: a fitted (or unfitted) twin under stimuli and drug-like perturbations.
//!
//! A twin-run scenario has a `[twin]` table instead of `[network]`/`[model]`: it names the fit scenario
//! (`fit_scenario`, whose `[network]` and `[fit.params]` rebuild the network and the parameter layout)
//! and optionally a `fitted_params.json` written by `neurotwin fit` (`fitted`; without it the twin runs
//! with the fit scenario's initial, unfitted parameters). `compare_unfitted = true` runs both.
//!
//! The model is the fit's rate model ([`RateModel`]) at the fit's step `dt_ms`, started from `V = 0`.
//! Stimuli are step inputs `u` (`amplitude`, in model units, times the fitted gain) on targets in
//! `[start_ms, stop_ms)`. Perturbations (`[[perturbation]]`, the scenario crate's syntax):
//! - `block`: the weights of every connection on receptor class `receptor` are multiplied by
//!   `1 − block(t)`, `block = dose^n / (dose^n + IC50^n)` with the wash-in/out of the spiking runs
//!   (`start_ms`, `stop_ms`, `tau_on_ms`, `tau_off_ms`); `dose = inf` blocks completely;
//! - `scale`: weights of a receptor class (`receptor`) or of the synapses of neurons releasing
//!   `transmitter` times `factor` (in `[start_ms, stop_ms)`, default the whole run);
//! - `silence`: in `[start_ms, stop_ms)` the targets' `V` is held at 0 and their chemical synapses transmit
//!   nothing (their gap junctions stay: a silenced cell is a clamp at 0, not a cut);
//! - `cut`: connections (chemical and electrical) from `pre` to `post` removed for the whole run.
//!
//! The weights used for the step `t → t + 1` are those at time `t · dt`. The run is integrated in
//! segments over which no weight changes; each segment is one [`RateModel::trajectory`] call from the
//! last state, so a run without perturbations (or with dose 0) is bit-identical to one plain call.
//!
//! Read-out: for every `[[readout]]` group and `[[window]]`, the mean `V` of the group over the states
//! `V^t` with `t · dt` in `[start_ms, stop_ms]`, the same for a control run (same twin and perturbations,
//! no stimulus) and their difference, the *response* (the fit's protocol: mean response minus control).
//! `[sweep]` runs every value of one field (dotted path, e.g. `perturbation.0.dose`). Outputs:
//! `summary.json`, `dose_response.csv` (one row per sweep point × twin × group × window) and
//! `dose_response.png` (response vs the swept value per group, fitted solid, unfitted dashed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use neurotwin_connectome::Neuron;
use neurotwin_connectome::transmitter::canonical;
use neurotwin_fit::rate::{Activation, Clamp, Input, Pulse, RateModel, RateValues};
use neurotwin_fit::spec::build_params;
use neurotwin_fit::{FitNetwork, ParamBlock, ParamSet};
use neurotwin_sim::SimError;
use neurotwin_sim::output::write_atomically;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{FitScenarioFile, fit_network, open_run_dir, read_fit_scenario};
use crate::build::{Ctx, non_negative, positive};
use crate::error::{ScenarioError, line_of};
use crate::source::load_network;
use crate::spec::{OutputSpec, PerturbationSpec, ReadoutGroup, SweepSpec, TargetSpec, WindowSpec};
use crate::targets::NeuronLookup;

/// Format tag of `fitted_params.json` (see `report::fitted_params_json`).
pub const FITTED_FORMAT: &str = "neurotwin-fitted-params/1";

/// Largest number of stored states (steps + 1) × neurons of one run.
const MAX_STATES: usize = 100_000_000;

// ---------------------------------------------------------------------------------------------------
// The file format.

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinScenarioSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub twin: TwinSpec,
    pub run: TwinRunSpec,
    #[serde(default, rename = "stimulus")]
    pub stimuli: Vec<TwinStimulusSpec>,
    #[serde(default, rename = "perturbation")]
    pub perturbations: Vec<PerturbationSpec>,
    pub sweep: Option<SweepSpec>,
    #[serde(default)]
    pub readout: Vec<ReadoutGroup>,
    #[serde(default, rename = "window")]
    pub windows: Vec<WindowSpec>,
    #[serde(default)]
    pub output: OutputSpec,
}

/// `[twin]`: which twin runs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinSpec {
    /// The fit scenario (relative to this file): network and parameter layout.
    pub fit_scenario: Spanned<String>,
    /// `fitted_params.json` of `neurotwin fit` (relative to this file); absent: the unfitted initial
    /// parameters of the fit scenario.
    pub fitted: Option<Spanned<String>>,
    /// Also run the unfitted twin (needs `fitted`).
    pub compare_unfitted: Option<Spanned<bool>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinRunSpec {
    pub duration_ms: Spanned<f64>,
    /// Optional; must equal the fit's `dt_ms` (the parameters were fitted at that step).
    pub dt_ms: Option<Spanned<f64>>,
}

/// A step input `u = amplitude` to the targets in `[start_ms, stop_ms)`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinStimulusSpec {
    /// `step` (the only kind, and the default).
    pub kind: Option<Spanned<String>>,
    pub name: Option<String>,
    pub targets: TargetSpec,
    pub amplitude: Spanned<f64>,
    pub start_ms: Option<Spanned<f64>>,
    pub stop_ms: Option<Spanned<f64>>,
}

/// A parsed twin-run scenario with its path and text (for located errors).
#[derive(Clone, Debug)]
pub struct TwinScenarioFile {
    pub path: PathBuf,
    pub text: String,
    pub spec: TwinScenarioSpec,
}

impl TwinScenarioFile {
    fn ctx(&self) -> Ctx<'_> {
        Ctx { path: &self.path, text: &self.text }
    }

    fn base(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Whether a scenario text is a twin run (has a `[twin]` table).
pub fn is_twin_scenario(text: &str) -> bool {
    text.parse::<toml::Table>().map(|t| t.contains_key("twin")).unwrap_or(false)
}

/// Whether the file at `path` is a twin run (false when it cannot be read or parsed).
pub fn is_twin_scenario_file(path: &Path) -> bool {
    std::fs::read_to_string(path).map(|t| is_twin_scenario(&t)).unwrap_or(false)
}

fn parse(path: &Path, text: &str) -> Result<TwinScenarioSpec, ScenarioError> {
    toml::from_str(text).map_err(|e| match e.span() {
        Some(s) => ScenarioError::At { path: path.into(), line: line_of(text, s.start), message: e.message().into() },
        None => ScenarioError::File { path: path.into(), message: e.message().into() },
    })
}

/// Reads and parses a twin-run scenario.
pub fn read_twin_scenario(path: &Path) -> Result<TwinScenarioFile, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io { path: path.into(), source })?;
    let spec = parse(path, &text)?;
    crate::load::check_scenario_name(path, &text)?;
    Ok(TwinScenarioFile { path: path.into(), text, spec })
}

// ---------------------------------------------------------------------------------------------------
// The twin: network, parameters (unfitted and fitted).

/// A twin ready to run.
pub struct LoadedTwin {
    pub fit: FitScenarioFile,
    pub net: FitNetwork,
    /// The network's neuron table (names, ids, cell types, transmitters) for target resolution.
    pub neurons: Vec<Neuron>,
    pub activation: Activation,
    /// Step (ms): the fit's `dt_ms`.
    pub dt: f64,
    /// The fit scenario's initial parameters.
    pub unfitted: ParamSet,
    /// The fitted parameters and their file.
    pub fitted: Option<(PathBuf, ParamSet)>,
}

impl LoadedTwin {
    /// The twins to run, labelled: `fitted` and/or `unfitted`.
    pub fn variants(&self, compare_unfitted: bool) -> Vec<(&'static str, &ParamSet)> {
        match &self.fitted {
            Some((_, p)) if compare_unfitted => vec![("fitted", p), ("unfitted", &self.unfitted)],
            Some((_, p)) => vec![("fitted", p)],
            None => vec![("unfitted", &self.unfitted)],
        }
    }
}

/// What `fitted_params.json` says about its model.
#[derive(Clone, Debug, Deserialize)]
struct FittedModel {
    model: String,
    activation: String,
    dt_ms: f64,
    network: String,
}

/// `fitted_params.json` as `neurotwin fit` writes it.
#[derive(Clone, Debug, Deserialize)]
struct FittedFile {
    format: String,
    model: FittedModel,
    #[serde(default)]
    values: Option<BTreeMap<String, BTreeMap<String, f64>>>,
    raw: Vec<f64>,
    blocks: Vec<ParamBlock>,
}

fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "relu",
        Activation::Sigmoid => "sigmoid",
    }
}

/// Loads the fit scenario's network and parameters, and the fitted file if the twin names one.
pub fn load_twin(file: &TwinScenarioFile) -> Result<LoadedTwin, ScenarioError> {
    let ctx = file.ctx();
    let tw = &file.spec.twin;
    let fit_path = file.base().join(tw.fit_scenario.get_ref());
    if !fit_path.is_file() {
        return Err(ctx.at(
            &tw.fit_scenario,
            format!(
                "`twin.fit_scenario`: {} is not a file (the path is relative to this scenario)",
                fit_path.display()
            ),
        ));
    }
    let fit = read_fit_scenario(&fit_path)?;
    let fctx = Ctx { path: &fit.path, text: &fit.text };
    if fit.spec.fit.model.get_ref() != "rate" {
        return Err(fctx.at(
            &fit.spec.fit.model,
            format!("`fit.model` = \"{}\": twin runs support the `rate` model", fit.spec.fit.model.get_ref()),
        ));
    }
    let dt = positive(&fctx, &fit.spec.fit.dt_ms, "fit.dt_ms")?;
    let activation = super::activation(&fit)?;
    let net = fit_network(&fit)?;
    // The neuron table (ids, transmitters) for targets: the same network, loaded as the fit loads it.
    let mut net_spec = fit.spec.network.clone();
    net_spec.weight_per_synapse = Some(1.0);
    net_spec.gap_per_junction_ns = Some(1.0);
    let neurons = load_network(
        &net_spec,
        &fctx,
        fit.path.parent().unwrap_or(Path::new(".")),
        0.1,
        fit.spec.fit.seed,
        &neurotwin_connectome::Share::WHOLE,
    )?
    .network
    .neurons;
    if neurons.len() != net.n || neurons.iter().zip(&net.names).any(|(a, b)| &a.name != b) {
        return Err(fctx.file("internal: the neuron table differs from the fit network"));
    }
    let unfitted =
        build_params(&net, "rate", &fit.spec.fit.params).map_err(|e| fctx.file(format!("[fit.params]: {e}")))?;
    let fitted = match &tw.fitted {
        None => {
            if let Some(c) = tw.compare_unfitted.as_ref().filter(|c| *c.get_ref()) {
                return Err(
                    ctx.at(c, "`twin.compare_unfitted` needs `twin.fitted` (without it the twin is the unfitted one)")
                );
            }
            None
        }
        Some(rel) => {
            let path = file.base().join(rel.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ctx.at(
                    rel,
                    format!(
                        "`twin.fitted`: cannot read {}: {e} (make it with `neurotwin fit {}`, or remove `fitted` to run the unfitted twin)",
                        path.display(),
                        fit.path.display()
                    ),
                )
            })?;
            let p = fitted_params(&path, &text, &fit, &net, &unfitted, activation, dt)?;
            Some((path, p))
        }
    };
    Ok(LoadedTwin { fit, net, neurons, activation, dt, unfitted, fitted })
}

/// Checks a `fitted_params.json` text against the parameter layout `layout` rebuilt from the fit
/// scenario and returns the layout with the file's raw numbers.
pub fn fitted_params(
    path: &Path,
    text: &str,
    fit: &FitScenarioFile,
    net: &FitNetwork,
    layout: &ParamSet,
    activation: Activation,
    dt: f64,
) -> Result<ParamSet, ScenarioError> {
    let bad = |m: String| ScenarioError::File { path: path.into(), message: m };
    let refit = format!(
        "refit with `neurotwin fit {}` (or point `twin.fitted` at a file fitted from this scenario)",
        fit.path.display()
    );
    let f: FittedFile =
        serde_json::from_str(text).map_err(|e| bad(format!("not a fitted-parameter file ({FITTED_FORMAT}): {e}")))?;
    if f.format != FITTED_FORMAT {
        return Err(bad(format!("format `{}`; this version reads `{FITTED_FORMAT}`", f.format)));
    }
    let m = &f.model;
    if m.model != "rate" {
        return Err(bad(format!("fitted model `{}`; twin runs support `rate`", m.model)));
    }
    if m.network != fit.spec.name {
        return Err(bad(format!(
            "fitted for the fit scenario named `{}`, but `twin.fit_scenario` is `{}` ({}); {refit}",
            m.network,
            fit.spec.name,
            fit.path.display()
        )));
    }
    if m.activation != activation_name(activation) {
        return Err(bad(format!(
            "fitted with activation `{}`, the fit scenario now says `{}`; {refit}",
            m.activation,
            activation_name(activation)
        )));
    }
    if (m.dt_ms - dt).abs() > 1e-9 * dt {
        return Err(bad(format!("fitted at dt_ms = {}, the fit scenario now says {dt}; {refit}", m.dt_ms)));
    }
    // Blocks: same names in the same order, same groups (labels), same offsets and transforms.
    let names = |bs: &[ParamBlock]| bs.iter().map(|b| b.name.clone()).collect::<Vec<_>>().join(", ");
    if f.blocks.len() != layout.blocks.len() || f.blocks.iter().zip(&layout.blocks).any(|(a, b)| a.name != b.name) {
        return Err(bad(format!(
            "parameter blocks [{}] do not match the fit scenario's [{}] ({} with {} neurons, {} connections); {refit}",
            names(&f.blocks),
            names(&layout.blocks),
            fit.path.display(),
            net.n,
            net.n_connections()
        )));
    }
    for (a, b) in f.blocks.iter().zip(&layout.blocks) {
        if a.labels.len() != b.labels.len() {
            return Err(bad(format!(
                "block `{}` has {} groups, the fit scenario gives {} (grouping or network changed); {refit}",
                b.name,
                a.labels.len(),
                b.labels.len()
            )));
        }
        if let Some(k) = (0..a.labels.len()).find(|&k| a.labels[k] != b.labels[k]) {
            return Err(bad(format!(
                "block `{}`, group #{k}: `{}` in the file, `{}` in the fit scenario (grouping or network changed); {refit}",
                b.name, a.labels[k], b.labels[k]
            )));
        }
        if let Some(k) = (0..a.transforms.len()).find(|&k| a.transforms.get(k) != b.transforms.get(k)) {
            return Err(bad(format!(
                "group `{}[{}]`: bounds {:?} in the file, {:?} in the fit scenario; {refit}",
                b.name,
                b.labels[k],
                a.transforms[k],
                b.transforms.get(k)
            )));
        }
        if a.transforms.len() != b.transforms.len() || a.offset != b.offset {
            return Err(bad(format!("block `{}`: layout (offset, transforms) differs; {refit}", b.name)));
        }
    }
    if f.raw.len() != layout.raw.len() {
        return Err(bad(format!("{} raw numbers for a layout of {}; {refit}", f.raw.len(), layout.raw.len())));
    }
    if let Some(k) = f.raw.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!("raw number #{k} ({}) is not finite", layout.describe(k))));
    }
    let mut p = layout.clone();
    // serde_json parses with `float_roundtrip` (scenarios/Cargo.toml): the raw numbers are the fitted
    // ones bit for bit.
    p.raw = f.raw;
    // The values written next to the raw numbers must be theirs (a hand-edited file is refused).
    if let Some(values) = &f.values {
        for (block, groups) in p.to_values() {
            let Some(written) = values.get(&block) else { continue };
            for (label, v) in groups {
                if let Some(&w) = written.get(&label)
                    && (w - v).abs() > 1e-9 * v.abs().max(1e-12)
                {
                    return Err(bad(format!(
                        "`values.{block}.{label}` = {w} but the raw number gives {v}: the file was edited; edit `raw`, or refit"
                    )));
                }
            }
        }
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------------------
// Inputs and perturbations of one run.

/// How a weight multiplier changes with time.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// `1 − block(t)` of a receptor antagonist (Hill dose–response with wash-in/out).
    Block(HillBlock),
    /// `factor` in steps `[start, stop)`, 1 elsewhere.
    Window { factor: f64, start: usize, stop: usize },
}

/// A receptor antagonist (the spiking runs' `ReceptorBlock`, plus `dose = inf` = full block).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HillBlock {
    pub dose: f64,
    pub ic50: f64,
    pub hill: f64,
    pub start_ms: f64,
    pub stop_ms: f64,
    pub tau_on_ms: f64,
    pub tau_off_ms: f64,
}

impl HillBlock {
    /// Steady-state blocked fraction `dose^n / (dose^n + IC50^n)` (1 for an infinite dose).
    pub fn steady_block(&self) -> f64 {
        if self.dose.is_infinite() {
            return 1.0;
        }
        let d = self.dose.powf(self.hill);
        d / (d + self.ic50.powf(self.hill))
    }

    /// Blocked fraction at `t_ms` (as `neurotwin_sim::ReceptorBlock::block_at`).
    pub fn block_at(&self, t_ms: f64) -> f64 {
        let b = self.steady_block();
        let rise = |dt: f64| if self.tau_on_ms > 0.0 { 1.0 - (-dt / self.tau_on_ms).exp() } else { 1.0 };
        if t_ms < self.start_ms {
            0.0
        } else if t_ms < self.stop_ms {
            b * rise(t_ms - self.start_ms)
        } else {
            let at_stop = b * rise(self.stop_ms - self.start_ms);
            if self.tau_off_ms > 0.0 { at_stop * (-(t_ms - self.stop_ms) / self.tau_off_ms).exp() } else { 0.0 }
        }
    }
}

/// One perturbation of a run, resolved to connections and steps.
#[derive(Clone, Debug, PartialEq)]
pub enum Perturbation {
    /// The weights of `connections` (and couplings of `gap_entries`) times a factor of time.
    Weights { label: String, connections: Vec<u32>, gap_entries: Vec<u32>, schedule: Schedule },
    /// `targets` held at `V = 0` with no chemical output in steps `[start, stop)`.
    Silence { targets: Vec<u32>, start: usize, stop: usize },
}

/// Everything one simulation needs besides the parameters.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TwinInputs {
    pub steps: usize,
    pub dt: f64,
    pub pulses: Vec<Pulse>,
    pub perturbations: Vec<Perturbation>,
}

impl Perturbation {
    /// Weight factor during step `t` (1 for silencing).
    fn factor(&self, t: usize, dt: f64) -> f64 {
        match self {
            Perturbation::Weights { schedule: Schedule::Block(b), .. } => 1.0 - b.block_at(t as f64 * dt),
            Perturbation::Weights { schedule: Schedule::Window { factor, start, stop }, .. } => {
                if t >= *start && t < *stop { *factor } else { 1.0 }
            }
            Perturbation::Silence { .. } => 1.0,
        }
    }

    fn silencing(&self, t: usize) -> bool {
        matches!(self, Perturbation::Silence { start, stop, .. } if t >= *start && t < *stop)
    }
}

/// What changes between segments: every perturbation's factor (bits) and whether it silences.
fn key_at(inp: &TwinInputs, t: usize) -> Vec<(u64, bool)> {
    inp.perturbations.iter().map(|p| (p.factor(t, inp.dt).to_bits(), p.silencing(t))).collect()
}

/// The parameters of one segment: `base` with the perturbations' factors (and silencing) applied;
/// the clamped (silenced) neurons.
fn segment_values(net: &FitNetwork, base: &RateValues, inp: &TwinInputs, t: usize) -> (RateValues, Vec<u32>) {
    let mut v = base.clone();
    let mut clamped = Vec::new();
    for p in &inp.perturbations {
        match p {
            Perturbation::Weights { connections, gap_entries, .. } => {
                let f = p.factor(t, inp.dt);
                if f != 1.0 {
                    connections.iter().for_each(|&c| v.w[c as usize] *= f);
                    gap_entries.iter().for_each(|&g| v.e[g as usize] *= f);
                }
            }
            Perturbation::Silence { targets, .. } => {
                if p.silencing(t) {
                    for &j in targets {
                        for m in net.out_ptr[j as usize]..net.out_ptr[j as usize + 1] {
                            v.w[net.out_conn[m] as usize] = 0.0;
                        }
                    }
                    clamped.extend_from_slice(targets);
                }
            }
        }
    }
    clamped.sort_unstable();
    clamped.dedup();
    (v, clamped)
}

/// The trajectory `V^0 … V^T` (row t) of the twin with parameters `base` (no stimulus when
/// `stimulated` is false). Segments without a change of weights are single [`RateModel::trajectory`]
/// calls, each starting from the previous segment's last state.
pub fn simulate(model: &RateModel, base: &RateValues, inp: &TwinInputs, stimulated: bool) -> Vec<Vec<f64>> {
    let net = model.net;
    let n = net.n;
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(inp.steps + 1);
    out.push(vec![0.0; n]);
    let mut t = 0;
    while t < inp.steps {
        let key = key_at(inp, t);
        let mut end = t + 1;
        while end < inp.steps && key_at(inp, end) == key {
            end += 1;
        }
        let (values, clamped) = segment_values(net, base, inp, t);
        let len = end - t;
        let pulses = if stimulated {
            inp.pulses
                .iter()
                .filter_map(|p| {
                    let (a, b) = (p.start.max(t), p.stop.min(end));
                    (a < b).then(|| Pulse { neuron: p.neuron, start: a - t, stop: b - t, amplitude: p.amplitude })
                })
                .collect()
        } else {
            Vec::new()
        };
        let clamp =
            (!clamped.is_empty()).then(|| Clamp { values: vec![0.0; (len + 1) * clamped.len()], neurons: clamped });
        let input = Input { steps: len, v0: out[t].clone(), pulses, clamp };
        let mut traj = model.trajectory(&values, &input).into_iter();
        // Row 0 is the segment's start after clamping: the state the step used.
        out[t] = traj.next().expect("trajectory has its initial state");
        out.extend(traj);
        t = end;
    }
    out
}

/// Mean of `V^t_i` over `i ∈ ids` and the states `t ∈ [a, b]`.
pub fn window_mean(traj: &[Vec<f64>], ids: &[u32], a: usize, b: usize) -> f64 {
    let mut s = 0.0;
    let mut k = 0usize;
    for row in &traj[a..=b.min(traj.len() - 1)] {
        for &i in ids {
            s += row[i as usize];
            k += 1;
        }
    }
    if k == 0 { f64::NAN } else { s / k as f64 }
}

// ---------------------------------------------------------------------------------------------------
// Planning: one resolved point per sweep value.

/// A read-out group.
#[derive(Clone, Debug, Serialize)]
pub struct Readout {
    pub label: String,
    pub neurons: Vec<String>,
    #[serde(skip)]
    pub ids: Vec<u32>,
}

/// A read-out window: states `[first, last]`.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    pub label: String,
    pub start_ms: f64,
    pub stop_ms: f64,
    #[serde(skip)]
    pub first: usize,
    #[serde(skip)]
    pub last: usize,
}

/// The steady state of one block perturbation at a sweep point.
#[derive(Clone, Debug, Serialize)]
pub struct BlockInfo {
    pub receptor: String,
    pub dose: f64,
    pub ic50: f64,
    pub hill: f64,
    /// `dose^n / (dose^n + IC50^n)`.
    pub steady_block: f64,
}

/// One sweep point, resolved.
#[derive(Clone, Debug)]
pub struct TwinPoint {
    /// The swept value as written (`None` without a sweep).
    pub value: Option<toml::Value>,
    pub inputs: TwinInputs,
    pub blocks: Vec<BlockInfo>,
}

/// A twin-run scenario, checked and resolved.
pub struct TwinPlan {
    pub twin: LoadedTwin,
    pub steps: usize,
    pub readouts: Vec<Readout>,
    pub windows: Vec<Window>,
    pub sweep_param: Option<String>,
    pub points: Vec<TwinPoint>,
}

/// Most steps of a twin run (far beyond any run that fits in memory; keeps step arithmetic from overflowing).
const MAX_STEPS: f64 = 1e9;

fn steps_of(ctx: &Ctx, v: &Spanned<f64>, dt: f64, what: &str) -> Result<usize, ScenarioError> {
    let x = non_negative(ctx, v, what)?;
    let r = x / dt;
    if (r - r.round()).abs() > 1e-6 * r.max(1.0) {
        return Err(ctx.at(v, format!("`{what}` = {x} must be a multiple of the twin's dt_ms = {dt} (the fit's step)")));
    }
    if r > MAX_STEPS {
        return Err(
            ctx.at(v, format!("`{what}` = {x} ms is {r:.3e} steps of the twin's dt_ms = {dt}; at most {MAX_STEPS:e}"))
        );
    }
    Ok(r.round() as usize)
}

fn window_steps(
    ctx: &Ctx,
    what: &str,
    start: &Option<Spanned<f64>>,
    stop: &Option<Spanned<f64>>,
    dt: f64,
    steps: usize,
) -> Result<(usize, usize), ScenarioError> {
    let a = match start {
        Some(s) => steps_of(ctx, s, dt, &format!("{what}: start_ms"))?,
        None => 0,
    };
    let b = match stop {
        Some(s) => {
            let b = steps_of(ctx, s, dt, &format!("{what}: stop_ms"))?;
            if b <= a {
                return Err(ctx.at(s, format!("{what}: stop_ms must be later than start_ms")));
            }
            b.min(steps)
        }
        None => steps,
    };
    Ok((a, b))
}

/// Resolves stimuli and perturbations of one (sweep point's) spec.
fn resolve_point(
    spec: &TwinScenarioSpec,
    ctx: &Ctx,
    twin: &LoadedTwin,
    steps: usize,
) -> Result<(TwinInputs, Vec<BlockInfo>), ScenarioError> {
    let net = &twin.net;
    let dt = twin.dt;
    let lookup = NeuronLookup::new(&twin.neurons);
    let resolve = |t: &TargetSpec, what: &str| lookup.resolve(t, ctx.path, ctx.text, what);
    let mut pulses = Vec::new();
    for (k, s) in spec.stimuli.iter().enumerate() {
        let what = format!("stimulus #{k}");
        if let Some(kind) = &s.kind
            && kind.get_ref() != "step"
        {
            return Err(ctx.at(
                kind,
                format!("{what}: kind `{}`: a twin takes `step` inputs (amplitude in model units)", kind.get_ref()),
            ));
        }
        let amplitude = *s.amplitude.get_ref();
        if !amplitude.is_finite() {
            return Err(ctx.at(&s.amplitude, format!("{what}: `amplitude` = {amplitude} must be finite")));
        }
        let targets = resolve(&s.targets, &what)?;
        let (start, stop) = window_steps(ctx, &what, &s.start_ms, &s.stop_ms, dt, steps)?;
        pulses.extend(targets.into_iter().map(|neuron| Pulse { neuron, start, stop, amplitude }));
    }
    let receptor = |name: &Spanned<String>, what: &str| -> Result<u8, ScenarioError> {
        net.receptors.iter().position(|r| &r.name == name.get_ref()).map(|r| r as u8).ok_or_else(|| {
            let names: Vec<_> = net.receptors.iter().map(|r| r.name.as_str()).collect();
            ctx.at(
                name,
                format!("{what}: unknown receptor class `{}`; this network has: {}", name.get_ref(), names.join(", ")),
            )
        })
    };
    let of_receptor =
        |r: u8| -> Vec<u32> { (0..net.n_connections() as u32).filter(|&c| net.receptor[c as usize] == r).collect() };
    let mut perturbations = Vec::new();
    let mut blocks = Vec::new();
    for (k, p) in spec.perturbations.iter().enumerate() {
        let kind = p.kind.get_ref().as_str();
        let what = format!("perturbation #{k} ({kind})");
        let need = |present: bool, name: &str| -> Result<(), ScenarioError> {
            if present { Ok(()) } else { Err(ctx.at(&p.kind, format!("{what}: missing `{name}`"))) }
        };
        let forbid = |fields: &[(&str, bool)]| -> Result<(), ScenarioError> {
            match fields.iter().find(|f| f.1) {
                Some((name, _)) => Err(ctx.at(&p.kind, format!("{what}: `{name}` does not apply to this kind"))),
                None => Ok(()),
            }
        };
        match kind {
            "block" => {
                forbid(&[
                    ("targets", p.targets.is_some()),
                    ("pre", p.pre.is_some()),
                    ("post", p.post.is_some()),
                    ("transmitter", p.transmitter.is_some()),
                    ("factor", p.factor.is_some()),
                ])?;
                need(p.receptor.is_some(), "receptor")?;
                need(p.dose.is_some(), "dose")?;
                need(p.ic50.is_some(), "ic50")?;
                let rname = p.receptor.as_ref().expect("checked");
                let r = receptor(rname, &what)?;
                let dose_s = p.dose.as_ref().expect("checked");
                let dose = *dose_s.get_ref();
                if dose.is_nan() || dose < 0.0 {
                    return Err(ctx.at(dose_s, format!("{what}: `dose` = {dose} must be ≥ 0 (inf: complete block)")));
                }
                let opt = |v: &Option<Spanned<f64>>, name: &str, default: f64| match v {
                    Some(x) => non_negative(ctx, x, name),
                    None => Ok(default),
                };
                let b = HillBlock {
                    dose,
                    ic50: positive(ctx, p.ic50.as_ref().expect("checked"), "ic50")?,
                    hill: match &p.hill {
                        Some(h) => positive(ctx, h, "hill")?,
                        None => 1.0,
                    },
                    start_ms: opt(&p.start_ms, "start_ms", 0.0)?,
                    stop_ms: match &p.stop_ms {
                        Some(x) => positive(ctx, x, "stop_ms")?,
                        None => f64::INFINITY,
                    },
                    tau_on_ms: opt(&p.tau_on_ms, "tau_on_ms", 0.0)?,
                    tau_off_ms: opt(&p.tau_off_ms, "tau_off_ms", 0.0)?,
                };
                if b.stop_ms <= b.start_ms {
                    return Err(ctx.at(&p.kind, format!("{what}: stop_ms must be later than start_ms")));
                }
                blocks.push(BlockInfo {
                    receptor: rname.get_ref().clone(),
                    dose: b.dose,
                    ic50: b.ic50,
                    hill: b.hill,
                    steady_block: b.steady_block(),
                });
                perturbations.push(Perturbation::Weights {
                    label: what.clone(),
                    connections: of_receptor(r),
                    gap_entries: vec![],
                    schedule: Schedule::Block(b),
                });
            }
            "scale" => {
                forbid(&[
                    ("targets", p.targets.is_some()),
                    ("pre", p.pre.is_some()),
                    ("post", p.post.is_some()),
                    ("dose", p.dose.is_some()),
                    ("ic50", p.ic50.is_some()),
                    ("hill", p.hill.is_some()),
                    ("tau_on_ms", p.tau_on_ms.is_some()),
                    ("tau_off_ms", p.tau_off_ms.is_some()),
                ])?;
                need(p.factor.is_some(), "factor")?;
                let factor = non_negative(ctx, p.factor.as_ref().expect("checked"), "factor")?;
                let connections = match (&p.receptor, &p.transmitter) {
                    (Some(r), None) => of_receptor(receptor(r, &what)?),
                    (None, Some(t)) => {
                        let nt = canonical(t.get_ref());
                        let from: Vec<bool> = twin
                            .neurons
                            .iter()
                            .map(|n| n.transmitter.as_deref().map(canonical).as_deref() == Some(nt.as_str()))
                            .collect();
                        if !from.iter().any(|&b| b) {
                            return Err(ctx.at(t, format!("{what}: no neuron releases transmitter `{nt}`")));
                        }
                        (0..net.n_connections() as u32).filter(|&c| from[net.pre[c as usize] as usize]).collect()
                    }
                    (Some(_), Some(t)) => {
                        return Err(ctx.at(t, format!("{what}: give either `receptor` or `transmitter`, not both")));
                    }
                    (None, None) => return Err(ctx.at(&p.kind, format!("{what}: needs `receptor` or `transmitter`"))),
                };
                let (start, stop) = window_steps(ctx, &what, &p.start_ms, &p.stop_ms, dt, steps)?;
                perturbations.push(Perturbation::Weights {
                    label: what.clone(),
                    connections,
                    gap_entries: vec![],
                    schedule: Schedule::Window { factor, start, stop },
                });
            }
            "silence" => {
                forbid(&[
                    ("pre", p.pre.is_some()),
                    ("post", p.post.is_some()),
                    ("receptor", p.receptor.is_some()),
                    ("transmitter", p.transmitter.is_some()),
                    ("factor", p.factor.is_some()),
                    ("dose", p.dose.is_some()),
                    ("ic50", p.ic50.is_some()),
                    ("hill", p.hill.is_some()),
                    ("tau_on_ms", p.tau_on_ms.is_some()),
                    ("tau_off_ms", p.tau_off_ms.is_some()),
                ])?;
                need(p.targets.is_some(), "targets")?;
                let targets = resolve(p.targets.as_ref().expect("checked"), &what)?;
                let (start, stop) = window_steps(ctx, &what, &p.start_ms, &p.stop_ms, dt, steps)?;
                perturbations.push(Perturbation::Silence { targets, start, stop });
            }
            "cut" => {
                forbid(&[
                    ("targets", p.targets.is_some()),
                    ("receptor", p.receptor.is_some()),
                    ("transmitter", p.transmitter.is_some()),
                    ("factor", p.factor.is_some()),
                    ("dose", p.dose.is_some()),
                    ("ic50", p.ic50.is_some()),
                    ("hill", p.hill.is_some()),
                    ("start_ms", p.start_ms.is_some()),
                    ("stop_ms", p.stop_ms.is_some()),
                    ("tau_on_ms", p.tau_on_ms.is_some()),
                    ("tau_off_ms", p.tau_off_ms.is_some()),
                ])?;
                need(p.pre.is_some(), "pre")?;
                need(p.post.is_some(), "post")?;
                let mark = |ids: Vec<u32>| {
                    let mut m = vec![false; net.n];
                    ids.iter().for_each(|&i| m[i as usize] = true);
                    m
                };
                let is_pre = mark(resolve(p.pre.as_ref().expect("checked"), &what)?);
                let is_post = mark(resolve(p.post.as_ref().expect("checked"), &what)?);
                let post = net.post_of_connections();
                let connections = (0..net.n_connections() as u32)
                    .filter(|&c| is_pre[net.pre[c as usize] as usize] && is_post[post[c as usize] as usize])
                    .collect();
                let mut gap_entries = Vec::new();
                for i in 0..net.n {
                    for g in net.gap_ptr[i]..net.gap_ptr[i + 1] {
                        let j = net.gap_nbr[g] as usize;
                        if (is_pre[i] && is_post[j]) || (is_pre[j] && is_post[i]) {
                            gap_entries.push(g as u32);
                        }
                    }
                }
                perturbations.push(Perturbation::Weights {
                    label: what.clone(),
                    connections,
                    gap_entries,
                    schedule: Schedule::Window { factor: 0.0, start: 0, stop: steps },
                });
            }
            other => {
                return Err(ctx.at(
                    &p.kind,
                    format!("unknown perturbation kind `{other}` (a twin takes block, scale, silence, cut)"),
                ));
            }
        }
    }
    Ok((TwinInputs { steps, dt, pulses, perturbations }, blocks))
}

/// Sets `a.b.0.c` in a TOML table (the key must exist: a misspelt path is an error).
fn set_path(doc: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur: &mut toml::Value = doc.get_mut(parts[0]).ok_or_else(|| format!("no top-level key `{}`", parts[0]))?;
    for p in &parts[1..] {
        cur = match cur {
            toml::Value::Table(t) => t.get_mut(*p).ok_or_else(|| format!("no key `{p}`"))?,
            toml::Value::Array(a) => {
                let i: usize = p.parse().map_err(|_| format!("`{p}` is not an array index"))?;
                let len = a.len();
                a.get_mut(i).ok_or_else(|| format!("index {i} out of range (length {len})"))?
            }
            _ => return Err(format!("`{p}`: parent is not a table or array")),
        };
    }
    *cur = value;
    Ok(())
}

/// Loads the twin and resolves every sweep point; every check happens here, before any work.
pub fn plan(file: &TwinScenarioFile) -> Result<TwinPlan, ScenarioError> {
    let ctx = file.ctx();
    let spec = &file.spec;
    let twin = load_twin(file)?;
    let dt = twin.dt;
    if let Some(d) = &spec.run.dt_ms
        && (d.get_ref() - dt).abs() > 1e-9 * dt
    {
        return Err(ctx.at(
            d,
            format!(
                "`run.dt_ms` = {}: a twin steps at its fit's dt_ms = {dt} (the parameters were fitted at that step); remove `dt_ms`",
                d.get_ref()
            ),
        ));
    }
    positive(&ctx, &spec.run.duration_ms, "run.duration_ms")?;
    let steps = steps_of(&ctx, &spec.run.duration_ms, dt, "run.duration_ms")?;
    if (steps + 1).saturating_mul(twin.net.n) > MAX_STATES {
        return Err(ctx.at(
            &spec.run.duration_ms,
            format!("{} steps × {} neurons is too long a run to keep in memory; shorten it", steps, twin.net.n),
        ));
    }
    let lookup = NeuronLookup::new(&twin.neurons);
    let mut readouts = Vec::new();
    for g in &spec.readout {
        let ids = lookup.resolve(&g.targets, &file.path, &file.text, &format!("readout `{}`", g.label))?;
        let neurons = ids.iter().map(|&i| twin.net.names[i as usize].clone()).collect();
        readouts.push(Readout { label: g.label.clone(), neurons, ids });
    }
    if readouts.is_empty() {
        return Err(ctx.file("no [[readout]] group: name the neurons whose response is read out"));
    }
    let duration = steps as f64 * dt;
    let mut windows = Vec::new();
    for w in &spec.windows {
        if !(w.start_ms >= 0.0 && w.stop_ms > w.start_ms && w.stop_ms <= duration + 1e-9) {
            return Err(
                ctx.file(format!("window `{}`: need 0 ≤ start_ms < stop_ms ≤ run.duration_ms = {duration}", w.label))
            );
        }
        let first = (w.start_ms / dt).ceil() as usize;
        let last = ((w.stop_ms / dt + 1e-9).floor() as usize).min(steps);
        if first > last {
            return Err(ctx.file(format!("window `{}` holds no state (states every {dt} ms)", w.label)));
        }
        windows.push(Window { label: w.label.clone(), start_ms: w.start_ms, stop_ms: w.stop_ms, first, last });
    }
    if windows.is_empty() {
        windows.push(Window { label: "run".into(), start_ms: 0.0, stop_ms: duration, first: 0, last: steps });
    }

    // The file as written, then every sweep point.
    let (inputs, blocks) = resolve_point(spec, &ctx, &twin, steps)?;
    let mut points = Vec::new();
    let sweep_param = spec.sweep.as_ref().map(|s| s.param.get_ref().clone());
    match &spec.sweep {
        None => points.push(TwinPoint { value: None, inputs, blocks }),
        Some(sweep) => {
            let at = |m: String| ctx.at(&sweep.param, m);
            if sweep.values.is_empty() {
                return Err(at("[sweep] values is empty".into()));
            }
            let param = sweep.param.get_ref();
            if param.starts_with("twin") || param.starts_with("run") || param.starts_with("sweep") {
                return Err(at(format!(
                    "[sweep] param `{param}`: sweep a stimulus or perturbation field (e.g. perturbation.0.dose)"
                )));
            }
            let mut doc: toml::Table = file.text.parse().map_err(|e: toml::de::Error| at(e.message().into()))?;
            doc.remove("sweep");
            for (k, v) in sweep.values.iter().enumerate() {
                let mut d = doc.clone();
                set_path(&mut d, param, v.clone()).map_err(|m| at(format!("[sweep] param `{param}`: {m}")))?;
                let text = toml::to_string(&d).map_err(|e| at(e.to_string()))?;
                let point = parse(&file.path, &text)
                    .and_then(|s| {
                        let pctx = Ctx { path: &file.path, text: &text };
                        resolve_point(&s, &pctx, &twin, steps)
                    })
                    .map_err(|e| at(format!("sweep point {k} ({param} = {v}): {e}")))?;
                points.push(TwinPoint { value: Some(v.clone()), inputs: point.0, blocks: point.1 });
            }
        }
    }
    Ok(TwinPlan { twin, steps, readouts, windows, sweep_param, points })
}

// ---------------------------------------------------------------------------------------------------
// Running and reporting.

/// Response of one group in one window.
#[derive(Clone, Debug, Serialize)]
pub struct WindowResult {
    pub window: String,
    /// Mean V of the group with the stimulus.
    pub mean_v: f64,
    /// Mean V of the group in the control run (no stimulus, same perturbations).
    pub control_v: f64,
    /// `mean_v − control_v`.
    pub response: f64,
    /// Response of each neuron of the group.
    pub per_neuron_response: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupResult {
    pub label: String,
    pub windows: Vec<WindowResult>,
}

/// One twin at one sweep point.
#[derive(Clone, Debug, Serialize)]
pub struct TwinResult {
    /// `fitted` or `unfitted`.
    pub twin: String,
    pub readout: Vec<GroupResult>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PointResult {
    /// The swept value as written.
    pub value: Option<String>,
    pub blocks: Vec<BlockInfo>,
    pub twins: Vec<TwinResult>,
}

/// What `neurotwin run` reports for a twin run (`summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct TwinRunReport {
    pub scenario: String,
    pub description: String,
    pub fit_scenario: String,
    pub fitted_params: Option<String>,
    pub model: String,
    pub activation: String,
    pub neurons: usize,
    pub connections: usize,
    pub gap_entries: usize,
    pub dt_ms: f64,
    pub duration_ms: f64,
    pub steps: usize,
    pub sweep_param: Option<String>,
    pub readout: Vec<Readout>,
    pub windows: Vec<Window>,
    pub points: Vec<PointResult>,
    pub wall_s: f64,
}

impl TwinRunReport {
    /// Response of `twin`, group `label`, window `window` at every point.
    pub fn responses(&self, twin: &str, label: &str, window: &str) -> Vec<Option<f64>> {
        self.points
            .iter()
            .map(|p| {
                p.twins
                    .iter()
                    .find(|t| t.twin == twin)
                    .and_then(|t| t.readout.iter().find(|g| g.label == label))
                    .and_then(|g| g.windows.iter().find(|w| w.window == window))
                    .map(|w| w.response)
            })
            .collect()
    }

    /// The twins run (`fitted`, `unfitted`), in order.
    pub fn twins(&self) -> Vec<String> {
        self.points.first().map(|p| p.twins.iter().map(|t| t.twin.clone()).collect()).unwrap_or_default()
    }
}

/// Runs every sweep point of a plan for every twin (no output written).
pub fn execute(file: &TwinScenarioFile, plan: &TwinPlan) -> TwinRunReport {
    let t0 = std::time::Instant::now();
    let twin = &plan.twin;
    let compare = file.spec.twin.compare_unfitted.as_ref().is_some_and(|c| *c.get_ref());
    let variants = twin.variants(compare);
    let model = RateModel::new(&twin.net, twin.dt, twin.activation).with_parallel(false);
    let values: Vec<(&str, RateValues)> =
        variants.iter().map(|(name, p)| (*name, RateValues::from_params(&twin.net, p))).collect();
    let jobs: Vec<(usize, usize)> =
        (0..plan.points.len()).flat_map(|p| (0..values.len()).map(move |v| (p, v))).collect();
    let results: Vec<TwinResult> = jobs
        .par_iter()
        .map(|&(p, v)| {
            let inputs = &plan.points[p].inputs;
            let stim = simulate(&model, &values[v].1, inputs, true);
            let ctrl = simulate(&model, &values[v].1, inputs, false);
            let readout = plan
                .readouts
                .iter()
                .map(|g| GroupResult {
                    label: g.label.clone(),
                    windows: plan
                        .windows
                        .iter()
                        .map(|w| {
                            let mean_v = window_mean(&stim, &g.ids, w.first, w.last);
                            let control_v = window_mean(&ctrl, &g.ids, w.first, w.last);
                            let per_neuron_response = g
                                .ids
                                .iter()
                                .map(|&i| {
                                    window_mean(&stim, &[i], w.first, w.last)
                                        - window_mean(&ctrl, &[i], w.first, w.last)
                                })
                                .collect();
                            WindowResult {
                                window: w.label.clone(),
                                mean_v,
                                control_v,
                                response: mean_v - control_v,
                                per_neuron_response,
                            }
                        })
                        .collect(),
                })
                .collect();
            TwinResult { twin: values[v].0.to_string(), readout }
        })
        .collect();
    let mut it = results.into_iter();
    let points = plan
        .points
        .iter()
        .map(|p| PointResult {
            value: p.value.as_ref().map(|v| v.to_string()),
            blocks: p.blocks.clone(),
            twins: (0..values.len()).map(|_| it.next().expect("one result per job")).collect(),
        })
        .collect();
    let net = &twin.net;
    TwinRunReport {
        scenario: file.spec.name.clone(),
        description: file.spec.description.clone(),
        fit_scenario: twin.fit.path.display().to_string(),
        fitted_params: twin.fitted.as_ref().map(|(p, _)| p.display().to_string()),
        model: "rate".into(),
        activation: activation_name(twin.activation).into(),
        neurons: net.n,
        connections: net.n_connections(),
        gap_entries: net.n_gap_entries(),
        dt_ms: twin.dt,
        duration_ms: plan.steps as f64 * twin.dt,
        steps: plan.steps,
        sweep_param: plan.sweep_param.clone(),
        readout: plan.readouts.clone(),
        windows: plan.windows.clone(),
        points,
        wall_s: t0.elapsed().as_secs_f64(),
    }
}

/// Runs a twin scenario and writes `summary.json`, `dose_response.csv` and `dose_response.png` into
/// `out` (default: `[output] dir`, else `out/<name>`). Nothing is written when a check fails.
/// `overwrite` lets it replace an earlier run's files in that folder.
pub fn run_twin(
    file: &TwinScenarioFile,
    out: Option<&Path>,
    overwrite: bool,
) -> Result<(TwinRunReport, PathBuf), ScenarioError> {
    let plan = plan(file)?;
    let out_dir = out
        .map(Path::to_path_buf)
        .or_else(|| file.spec.output.dir.clone())
        .unwrap_or_else(|| PathBuf::from("out").join(&file.spec.name));
    let fit_base = plan.twin.fit.path.parent().unwrap_or(Path::new("."));
    let net_spec = &plan.twin.fit.spec.network;
    let mut inputs: Vec<PathBuf> = vec![file.path.clone(), plan.twin.fit.path.clone()];
    inputs.extend(plan.twin.fitted.as_ref().map(|(p, _)| p.clone()));
    inputs.extend(
        [&net_spec.connections, &net_spec.neurons, &net_spec.file].into_iter().flatten().map(|p| fit_base.join(p)),
    );
    let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let run_dir = open_run_dir(&out_dir, "neurotwin run (twin)", &refs, overwrite)?;
    let report = execute(file, &plan);
    write_outputs(run_dir.staging(), &report)?;
    run_dir.commit()?;
    Ok((report, out_dir))
}

fn out_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Output { path: path.into(), message: e.to_string() }
}

/// The dose–response table: one row per sweep point × twin × group × window.
pub fn csv_table(r: &TwinRunReport) -> String {
    let param = r.sweep_param.as_deref().map(|p| p.rsplit('.').next().unwrap_or(p)).unwrap_or("point");
    let n_blocks = r.points.first().map_or(0, |p| p.blocks.len());
    let mut s = format!("twin,{param}");
    for k in 0..n_blocks {
        let rec = &r.points[0].blocks[k].receptor;
        s += &format!(",block_{rec}");
    }
    s += ",readout,window,mean_v,control_v,response\n";
    for (k, p) in r.points.iter().enumerate() {
        let value = p.value.clone().unwrap_or_else(|| k.to_string()).replace(',', ";");
        for t in &p.twins {
            for g in &t.readout {
                for w in &g.windows {
                    s += &format!("{},{value}", t.twin);
                    for b in &p.blocks {
                        s += &format!(",{}", b.steady_block);
                    }
                    s += &format!(",{},{},{:e},{:e},{:e}\n", g.label, w.window, w.mean_v, w.control_v, w.response);
                }
            }
        }
    }
    s
}

/// Writes the outputs (each atomically; the figure first, the summary last).
pub fn write_outputs(dir: &Path, r: &TwinRunReport) -> Result<Vec<PathBuf>, ScenarioError> {
    crate::plot::ensure_font();
    let png = dir.join("dose_response.png");
    write_atomically(&png, |tmp| {
        let tmp_png = tmp.with_extension("png");
        draw(&tmp_png, r).map_err(|e| out_err(&png, e))?;
        std::fs::rename(&tmp_png, tmp).map_err(|e| out_err(&png, e))
    })?;
    let csv = dir.join("dose_response.csv");
    let table = csv_table(r);
    write_atomically(&csv, |tmp| std::fs::write(tmp, &table).map_err(|e| out_err(&csv, e)))?;
    let summary = dir.join("summary.json");
    let json = serde_json::to_string_pretty(r).map_err(|e| out_err(&summary, e))?;
    write_atomically(&summary, |tmp| std::fs::write(tmp, &json).map_err(|e| out_err(&summary, e)))?;
    Ok(vec![summary, csv, png])
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// Response vs sweep point, one panel per window; groups in colour; fitted solid, unfitted dashed.
fn draw(path: &Path, r: &TwinRunReport) -> Result<(), Box<dyn std::error::Error>> {
    let height = 120 + 380 * r.windows.len() as u32;
    let root = BitMapBackend::new(path, (860, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(50);
    title.titled(
        &format!("{}: response vs {}", r.scenario, r.sweep_param.as_deref().unwrap_or("run")),
        ("sans-serif", 20),
    )?;
    let panels = body.split_evenly((r.windows.len(), 1));
    let labels: Vec<String> = r
        .points
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let v = p.value.clone().unwrap_or_else(|| k.to_string());
            match p.blocks.first() {
                Some(b) => format!("{v} ({:.0} %)", 100.0 * b.steady_block),
                None => v,
            }
        })
        .collect();
    let n = r.points.len();
    let twins = r.twins();
    for (area, w) in panels.iter().zip(&r.windows) {
        let ys: Vec<f64> = r
            .readout
            .iter()
            .flat_map(|g| twins.iter().flat_map(|t| r.responses(t, &g.label, &w.label)))
            .flatten()
            .filter(|v| v.is_finite())
            .collect();
        let (lo, hi) = ys.iter().fold((0.0f64, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.08).max(1e-6);
        let x_desc = match r.points.first().and_then(|p| p.blocks.first()) {
            Some(b) => format!("{} (steady {} block)", r.sweep_param.as_deref().unwrap_or("point"), b.receptor),
            None => r.sweep_param.clone().unwrap_or_else(|| "point".into()),
        };
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("window `{}` ({}–{} ms): response = mean V − control", w.label, w.start_ms, w.stop_ms),
                ("sans-serif", 16),
            )
            .margin(14)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.3..(n as f64 - 0.7), (lo - pad)..(hi + pad))?;
        let fmt_x = |x: &f64| {
            let k = x.round();
            if (x - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                labels[k as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_labels(n.max(2))
            .x_label_formatter(&fmt_x)
            .x_desc(x_desc)
            .y_desc("response (model units, ΔF/F-like)")
            .draw()?;
        chart.draw_series(LineSeries::new([(-0.3, 0.0), (n as f64 - 0.7, 0.0)], BLACK.mix(0.3)))?;
        for (gi, g) in r.readout.iter().enumerate() {
            let c = COLOURS[gi % COLOURS.len()];
            for t in &twins {
                let pts: Vec<(f64, f64)> = r
                    .responses(t, &g.label, &w.label)
                    .into_iter()
                    .enumerate()
                    .filter_map(|(k, v)| v.filter(|v| v.is_finite()).map(|v| (k as f64, v)))
                    .collect();
                let label = format!("{} ({t})", g.label);
                if t == "unfitted" {
                    chart
                        .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, c.stroke_width(2)))?
                        .label(label)
                        .legend(move |(x, y)| DashedPathElement::new([(x, y), (x + 20, y)], 5, 3, c.stroke_width(2)));
                    chart.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 4, c.filled())))?;
                } else {
                    chart
                        .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                        .label(label)
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c.stroke_width(2)));
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
