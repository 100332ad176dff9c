//! Turning a parsed scenario into a run-ready `SimSetup`, perturbation schedule and record spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use neurotwin_connectome::{CompiledNetwork, GapMatrix, Share, SynapseMatrix, transmitter::canonical};
use neurotwin_models::stdp::{DopamineParams, Pairing, StdpParams};
use neurotwin_models::{CompiledModel, NeuronParams};
use neurotwin_sim::{
    DopamineRule, InitRule, PerturbationSchedule, PlasticProjection, PlasticRule, Plasticity, RateGroup, ReceptorBlock,
    RecordSpec, Silencing, SimSetup, SpikeSelection, StateInit, StateProbe, Stimulus, StimulusKind,
};
use toml::Spanned;

use crate::error::{ScenarioError, line_of};
use crate::source::{GenBackground, GenPopulation, LoadedNetwork, check_network_fields, load_network};
use crate::spec::{PerturbationSpec, PlasticitySpec, RunSpec, ScenarioSpec, StimulusSpec, TargetSpec};
use crate::targets::NeuronLookup;

/// A scenario ready to run (one sweep point; trials differ only in the seed).
#[derive(Clone, Debug)]
pub struct PreparedRun {
    pub name: String,
    pub setup: SimSetup,
    pub perturbations: PerturbationSchedule,
    pub record: RecordSpec,
    /// Read-out groups: label and neuron indices.
    pub readout: Vec<(String, Vec<u32>)>,
    /// Read-out windows: label and `[start, stop)` steps.
    pub windows: Vec<(String, u64, u64)>,
    pub output_dir: Option<PathBuf>,
    pub raster: bool,
    pub model_name: String,
    /// Worker threads from `run.threads` (0 = all cores); the CLI's `--threads` overrides it.
    pub threads: usize,
}

/// Context for located errors.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Ctx<'_> {
    pub fn at<T>(&self, s: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::At { path: self.path.into(), line: line_of(self.text, s.span().start), message: message.into() }
    }
    pub fn file(&self, message: impl Into<String>) -> ScenarioError {
        ScenarioError::File { path: self.path.into(), message: message.into() }
    }
}

pub(crate) fn positive(ctx: &Ctx, v: &Spanned<f64>, what: &str) -> Result<f64, ScenarioError> {
    let x = *v.get_ref();
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(ctx.at(v, format!("`{what}` = {x}: must be a finite number > 0")))
    }
}

pub(crate) fn non_negative(ctx: &Ctx, v: &Spanned<f64>, what: &str) -> Result<f64, ScenarioError> {
    let x = *v.get_ref();
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(ctx.at(v, format!("`{what}` = {x}: must be a finite number >= 0")))
    }
}

/// Checks that `start_ms` (ms) of a stimulus or perturbation lies before the end of the run (`steps` steps
/// of `dt` ms) and returns it.
fn start_in_run(ctx: &Ctx, what: &str, start: &Spanned<f64>, dt: f64, steps: u64) -> Result<f64, ScenarioError> {
    let x = non_negative(ctx, start, "start_ms")?;
    let duration = steps as f64 * dt;
    if (x / dt).round() as u64 >= steps {
        return Err(ctx.at(
            start,
            format!(
                "{what}: start_ms = {x} is at or after the end of the run (run.duration_ms = {duration}); \
                 need 0 <= start_ms < {duration}"
            ),
        ));
    }
    Ok(x)
}

/// Converts a `[start, stop)` window in ms to steps, validating it against the run: it must start before
/// the end of the run and last at least one step.
fn window(
    ctx: &Ctx,
    what: &str,
    start: &Option<Spanned<f64>>,
    stop: &Option<Spanned<f64>>,
    dt: f64,
    steps: u64,
) -> Result<(u64, u64), ScenarioError> {
    let start_ms = match start {
        Some(s) => start_in_run(ctx, what, s, dt, steps)?,
        None => 0.0,
    };
    let stop_ms = match stop {
        Some(s) => {
            let x = positive(ctx, s, "stop_ms")?;
            if x <= start_ms {
                return Err(ctx.at(s, format!("{what}: stop_ms = {x} must be later than start_ms = {start_ms}")));
            }
            x
        }
        None => steps as f64 * dt,
    };
    let (a, b) = ((start_ms / dt).round() as u64, ((stop_ms / dt).round() as u64).min(steps));
    if a >= b {
        let message = format!(
            "{what}: [start_ms, stop_ms) = [{start_ms}, {stop_ms}) is shorter than one time step (run.dt_ms = {dt})"
        );
        return Err(match stop {
            Some(s) => ctx.at(s, message),
            None => ctx.file(message),
        });
    }
    Ok((a, b))
}

fn finite(ctx: &Ctx, v: &Spanned<f64>, what: &str) -> Result<f64, ScenarioError> {
    let x = *v.get_ref();
    if x.is_finite() { Ok(x) } else { Err(ctx.at(v, format!("`{what}` = {x}: must be a finite number"))) }
}

/// Per-kind required/forbidden field checks for stimulus and perturbation tables.
struct Fields<'a> {
    ctx: &'a Ctx<'a>,
    kind: &'a Spanned<String>,
    what: &'a str,
}

impl Fields<'_> {
    fn need<'v, T>(&self, v: &'v Option<T>, name: &str) -> Result<&'v T, ScenarioError> {
        v.as_ref().ok_or_else(|| self.ctx.at(self.kind, format!("{}: missing `{name}`", self.what)))
    }
    fn forbid(&self, fields: &[(&str, bool)]) -> Result<(), ScenarioError> {
        match fields.iter().find(|(_, present)| *present) {
            Some((name, _)) => {
                Err(self.ctx.at(self.kind, format!("{}: `{name}` does not apply to this kind", self.what)))
            }
            None => Ok(()),
        }
    }
}

/// The fields each perturbation kind uses; any other field given is an error.
fn perturbation_uses(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "silence" => &["targets", "start_ms", "stop_ms"],
        "scale" => &["receptor", "transmitter", "factor"],
        "block" => &["receptor", "dose", "ic50", "hill", "start_ms", "stop_ms", "tau_on_ms", "tau_off_ms"],
        "cut" => &["pre", "post"],
        _ => return None,
    })
}

/// The optional fields given in a perturbation table, with the byte offset to report them at.
fn perturbation_fields_given(p: &PerturbationSpec) -> Vec<(&'static str, usize)> {
    let kind_at = p.kind.span().start;
    let table = |name, v: &Option<TargetSpec>| v.as_ref().map(|_| (name, kind_at));
    let num = |name, v: &Option<Spanned<f64>>| v.as_ref().map(|x| (name, x.span().start));
    let text = |name, v: &Option<Spanned<String>>| v.as_ref().map(|x| (name, x.span().start));
    [
        table("targets", &p.targets),
        table("pre", &p.pre),
        table("post", &p.post),
        text("receptor", &p.receptor),
        text("transmitter", &p.transmitter),
        num("factor", &p.factor),
        num("dose", &p.dose),
        num("ic50", &p.ic50),
        num("hill", &p.hill),
        num("start_ms", &p.start_ms),
        num("stop_ms", &p.stop_ms),
        num("tau_on_ms", &p.tau_on_ms),
        num("tau_off_ms", &p.tau_off_ms),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Rejects unknown perturbation kinds and fields that do not apply to a perturbation's kind.
fn check_perturbation_fields(ctx: &Ctx, perturbations: &[PerturbationSpec]) -> Result<(), ScenarioError> {
    for (k, p) in perturbations.iter().enumerate() {
        let kind = p.kind.get_ref();
        let Some(uses) = perturbation_uses(kind) else {
            return Err(ctx.at(&p.kind, format!("unknown perturbation kind `{kind}` (silence, scale, block, cut)")));
        };
        if let Some((name, at)) = perturbation_fields_given(p).into_iter().find(|(n, _)| !uses.contains(n)) {
            return Err(ScenarioError::At {
                path: ctx.path.into(),
                line: line_of(ctx.text, at),
                message: format!(
                    "perturbation #{k} ({kind}): `{name}` does not apply to this kind ({kind} uses: {})",
                    uses.join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// Each stimulus's kind, required and forbidden fields, checked before the network is loaded (a large network
/// takes seconds to build; a missing `receptor` must not wait for it). [`stimulus`] checks the values.
fn check_stimulus_fields(ctx: &Ctx, stimuli: &[StimulusSpec]) -> Result<(), ScenarioError> {
    for (k, s) in stimuli.iter().enumerate() {
        let what = format!("stimulus #{k} ({})", s.kind.get_ref());
        let f = Fields { ctx, kind: &s.kind, what: &what };
        match s.kind.get_ref().as_str() {
            "poisson" => {
                f.forbid(&[("amplitude_pa", s.amplitude_pa.is_some())])?;
                f.need(&s.rate_hz, "rate_hz")?;
                f.need(&s.weight, "weight")?;
                f.need(&s.receptor, "receptor")?;
            }
            "current" => {
                f.forbid(&[
                    ("rate_hz", s.rate_hz.is_some()),
                    ("weight", s.weight.is_some()),
                    ("receptor", s.receptor.is_some()),
                ])?;
                f.need(&s.amplitude_pa, "amplitude_pa")?;
            }
            "activation" => {
                f.forbid(&[("weight", s.weight.is_some()), ("receptor", s.receptor.is_some())])?;
                f.need(&s.rate_hz, "rate_hz")?;
            }
            other => {
                return Err(ctx.at(&s.kind, format!("unknown stimulus kind `{other}` (poisson, current, activation)")));
            }
        }
    }
    Ok(())
}

/// Read-out groups and windows need distinct labels (they name columns of the summary).
fn check_labels(ctx: &Ctx, spec: &ScenarioSpec) -> Result<(), ScenarioError> {
    let readout = spec.readout.iter().map(|g| g.label.as_str());
    let windows = spec.windows.iter().map(|w| w.label.as_str());
    for (table, labels) in [("[[readout]]", readout.collect::<Vec<_>>()), ("[[window]]", windows.collect())] {
        if let Some((k, l)) = labels.iter().enumerate().find(|(k, l)| labels[..*k].contains(l)) {
            return Err(ctx.file(format!(
                "{table} #{k}: label `{l}` appears twice; give every {} its own label",
                &table[2..table.len() - 2]
            )));
        }
    }
    Ok(())
}

/// Read-out windows in steps: each must lie inside the run (`steps` steps of `dt` ms) and last at least
/// one step.
fn readout_windows(
    ctx: &Ctx,
    spec: &ScenarioSpec,
    dt: f64,
    steps: u64,
) -> Result<Vec<(String, u64, u64)>, ScenarioError> {
    let duration = steps as f64 * dt;
    let mut windows = Vec::new();
    for w in &spec.windows {
        let (start, stop) = (w.start_ms, w.stop_ms);
        if !(start >= 0.0 && stop > start && stop <= duration * (1.0 + 1e-9)) {
            return Err(ctx.file(format!(
                "window `{}`: start_ms = {start}, stop_ms = {stop}: need 0 <= start_ms < stop_ms <= {duration} (the \
                 end of the run, run.duration_ms = {duration})",
                w.label
            )));
        }
        let (a, b) = ((start / dt).round() as u64, ((stop / dt).round() as u64).min(steps));
        if a >= b {
            return Err(ctx.file(format!(
                "window `{}`: [{start}, {stop}) ms is shorter than one time step (run.dt_ms = {dt})",
                w.label
            )));
        }
        windows.push((w.label.clone(), a, b));
    }
    Ok(windows)
}

/// The bin of the rate traces in steps: `[record] rate_bin_ms` must be 0 (none) or at least one step.
fn rate_bin_steps(ctx: &Ctx, rate_bin_ms: f64, dt: f64) -> Result<u64, ScenarioError> {
    if !(rate_bin_ms.is_finite() && rate_bin_ms >= 0.0) {
        return Err(ctx.file(format!("[record] rate_bin_ms = {rate_bin_ms}: must be >= 0 (0 = no rate traces)")));
    }
    if rate_bin_ms > 0.0 && rate_bin_ms < dt * (1.0 - 1e-9) {
        return Err(ctx.file(format!(
            "[record] rate_bin_ms = {rate_bin_ms} is shorter than one time step (run.dt_ms = {dt}): use 0 (no rate \
             traces) or a bin >= {dt} ms"
        )));
    }
    Ok((rate_bin_ms / dt).round() as u64)
}

/// Builds the run for one parsed scenario.
pub fn prepare(spec: &ScenarioSpec, path: &Path, text: &str) -> Result<PreparedRun, ScenarioError> {
    prepare_part(spec, path, text, &Share::WHOLE)
}

/// [`prepare`] for one process of a run split across processes: the network holds only the synapses onto this
/// process's `share` of the neurons (`neurotwin_connectome::share`); everything else is the whole run's.
pub fn prepare_part(spec: &ScenarioSpec, path: &Path, text: &str, share: &Share) -> Result<PreparedRun, ScenarioError> {
    let ctx = Ctx { path, text };
    let base = path.parent().unwrap_or(Path::new("."));

    // Time, and the checks that need no network.
    let (dt, steps) = time_grid(&ctx, &spec.run)?;
    check_perturbation_fields(&ctx, &spec.perturbations)?;
    check_stimulus_fields(&ctx, &spec.stimuli)?;
    check_labels(&ctx, spec)?;
    let windows = readout_windows(&ctx, spec, dt, steps)?;
    let rate_bin_steps = rate_bin_steps(&ctx, spec.record.rate_bin_ms, dt)?;
    check_network_fields(&spec.network, &ctx)?;

    // Network.
    let LoadedNetwork { mut network, populations, background } =
        load_network(&spec.network, &ctx, base, dt, spec.run.seed, share)?;
    apply_structural_perturbations(spec, &ctx, &mut network)?;
    let network = Arc::new(network);
    let lookup = NeuronLookup::new(&network.neurons);
    let run = Run { ctx: &ctx, network: &network, lookup: &lookup, dt, steps };

    // Neuron parameters: one set per cell type with overrides (or per generated population).
    let (model, param_set, model_name) = compile_model(spec, &ctx, &network, &populations, dt)?;
    let vars = StateVars { names: model.state_names(), model_name: &model_name };

    // Initial state: generated populations first, then the scenario's [init] (which wins).
    let init = initial_state(&ctx, &spec.init, &populations, &vars)?;

    // Stimuli.
    let stimuli = stimuli(&run, &background, &spec.stimuli)?;

    // Time-dependent perturbations.
    let perturbations = perturbation_schedule(&run, &spec.perturbations)?;

    // Plastic synapses.
    let plasticity = plasticity(&run, &spec.plasticity, &model, &model_name)?;

    // Recording.
    let (mut record, readout) = recording(&run, spec, &vars, rate_bin_steps)?;
    if !plasticity.is_empty() {
        record.weights_every_steps = weight_snapshot_steps(&run, &spec.record.weights_every_ms)?;
    } else if let Some(every) = &spec.record.weights_every_ms {
        return Err(ctx.at(every, "[record] weights_every_ms needs plastic synapses (a [[plasticity]] section)"));
    }
    // Spikes per neuron in each read-out window, counted as the run goes (the summary's window rates).
    record.count_windows = windows.iter().map(|(_, a, b)| *a..*b).collect();

    Ok(PreparedRun {
        name: spec.name.clone(),
        setup: SimSetup {
            network,
            model,
            param_set,
            init,
            stimuli,
            seed: spec.run.seed,
            steps,
            spike_trains: Default::default(),
            plasticity: Arc::new(plasticity),
        },
        perturbations,
        record,
        readout,
        windows,
        output_dir: spec.output.dir.clone(),
        raster: spec.output.raster.unwrap_or(true),
        model_name,
        threads: spec.run.threads,
    })
}

/// The time step (ms) and the length of the run in steps: `run.duration_ms` must be a whole number of
/// `run.dt_ms` steps, and `run.trials` at least 1.
fn time_grid(ctx: &Ctx, run: &RunSpec) -> Result<(f64, u64), ScenarioError> {
    let dt = positive(ctx, &run.dt_ms, "run.dt_ms")?;
    let duration = positive(ctx, &run.duration_ms, "run.duration_ms")?;
    let ratio = duration / dt;
    if (ratio - ratio.round()).abs() > 1e-6 * ratio.max(1.0) {
        let suggestion = ((ratio.round() * dt) * 1e9).round() / 1e9;
        return Err(ctx.at(
            &run.duration_ms,
            format!("`run.duration_ms` = {duration} is not a multiple of dt_ms = {dt}; use e.g. {suggestion}"),
        ));
    }
    let steps = ratio.round() as u64;
    if run.trials == 0 {
        return Err(ctx.file("`run.trials` must be >= 1"));
    }
    Ok((dt, steps))
}

/// What the stimulus, perturbation and recording sections of [`prepare`] share: the network being run,
/// a lookup over its neurons and the time grid.
struct Run<'a> {
    ctx: &'a Ctx<'a>,
    network: &'a CompiledNetwork,
    lookup: &'a NeuronLookup<'a>,
    /// Time step (ms).
    dt: f64,
    /// Length of the run in time steps.
    steps: u64,
}

impl Run<'_> {
    /// Index of the network's receptor channel `name`.
    fn channel(&self, name: &Spanned<String>) -> Result<usize, ScenarioError> {
        let receptors = &self.network.receptors;
        receptors.iter().position(|r| &r.name == name.get_ref()).ok_or_else(|| {
            let names: Vec<_> = receptors.iter().map(|r| r.name.as_str()).collect();
            let has = if names.is_empty() {
                "this network has no receptor channels (it has no chemical connections)".to_string()
            } else {
                format!("this network has: {}", names.join(", "))
            };
            self.ctx.at(name, format!("unknown receptor `{}`; {has}", name.get_ref()))
        })
    }

    /// Neuron indices of a target table; `what` names the table in errors.
    fn resolve(&self, targets: &TargetSpec, what: &str) -> Result<Vec<u32>, ScenarioError> {
        self.lookup.resolve(targets, self.ctx.path, self.ctx.text, what)
    }

    /// Optional `start_ms` / `stop_ms` (ms) as `[start, stop)` steps of the run (see [`window`]).
    fn window(
        &self,
        what: &str,
        start: &Option<Spanned<f64>>,
        stop: &Option<Spanned<f64>>,
    ) -> Result<(u64, u64), ScenarioError> {
        window(self.ctx, what, start, stop, self.dt, self.steps)
    }
}

/// The compiled neuron model (time step `dt` ms), the parameter set index of every neuron and the
/// model's name.
fn compile_model(
    spec: &ScenarioSpec,
    ctx: &Ctx,
    network: &CompiledNetwork,
    populations: &[GenPopulation],
    dt: f64,
) -> Result<(CompiledModel, Vec<u16>, String), ScenarioError> {
    let (sets, param_set, model_name) = neuron_parameters(spec, ctx, network, populations)?;
    let model = CompiledModel::compile(&sets, &network.receptors, dt).map_err(|e| match &spec.model {
        Some(m) => match equation_error_line(ctx, m.span().start, &e) {
            Some(line) => ScenarioError::At { path: ctx.path.into(), line, message: format!("[model]: {e}") },
            None => ctx.at(m, format!("[model]: {e}")),
        },
        None => ctx.file(format!("generator neuron parameters: {e}")),
    })?;
    Ok((model, param_set, model_name))
}

/// `over` laid over `base`: keys of `over` replace those of `base`, except that a table laid over a table merges
/// key by key (so `[model.cell_types.X.parameters]` of an equation-defined model overrides single parameters and
/// keeps the others).
fn merge_overrides(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_overrides(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The file line of an equation-defined model's located error (`equations line K, …`, `threshold, …`,
/// `inputs.exc, …`): the line of that key in the `[model]` section starting at byte `section`, plus `K - 1` lines
/// into a multi-line string (whose first line follows the opening `"""`). `None` for other errors.
fn equation_error_line(ctx: &Ctx, section: usize, e: &neurotwin_models::ModelError) -> Option<usize> {
    let neurotwin_models::ModelError::Equation(msg) = e else { return None };
    let field = msg.split([',', ' ', ':']).next()?;
    let key = field.split('.').next()?;
    if !["equations", "threshold", "reset", "inputs", "init", "refractory"].contains(&key) {
        return None;
    }
    let within: usize =
        msg.strip_prefix(field)?.strip_prefix(" line ").and_then(|r| r.split(',').next()?.parse().ok()).unwrap_or(1);
    let text = ctx.text;
    let mut offset = section.min(text.len());
    for line in text[offset..].lines() {
        let t = line.trim_start();
        if t.split(['=', ' ']).next() == Some(key) && t.contains('=') {
            let key_line = line_of(text, offset);
            let multi = t.split_once('=').is_some_and(|(_, v)| v.trim() == "\"\"\"" || v.trim() == "'''");
            return Some(if multi { key_line + within } else { key_line + within - 1 });
        }
        if t.starts_with('[') && offset > section && !t.starts_with("[model") {
            break;
        }
        offset += line.len() + 1;
    }
    None
}

/// The state variables of the compiled model, for `[init]` and `[record] state`.
struct StateVars<'a> {
    names: Vec<String>,
    model_name: &'a str,
}

impl StateVars<'_> {
    /// Index of state variable `v`; the message lists the model's variables.
    fn index(&self, v: &str) -> Result<usize, String> {
        let (names, model_name) = (&self.names, self.model_name);
        names
            .iter()
            .position(|n| n == v)
            .ok_or_else(|| format!("unknown state variable `{v}`; {model_name} has: {}", names.join(", ")))
    }
}

/// Initial state rules: the generated populations' `v_init` first, then the scenario's `[init]` (which
/// wins).
fn initial_state(
    ctx: &Ctx,
    rules: &BTreeMap<String, InitRule>,
    populations: &[GenPopulation],
    vars: &StateVars,
) -> Result<Vec<StateInit>, ScenarioError> {
    let mut init = Vec::new();
    for p in populations {
        if let Some(rule) = p.v_init {
            init.push(StateInit { var: 0, rule, targets: Some(p.range.clone().collect()) });
        }
    }
    for (var, rule) in rules {
        let v = vars.index(var).map_err(|m| ctx.file(format!("[init]: {m}")))?;
        check_init(rule).map_err(|m| ctx.file(format!("[init] {var}: {m}")))?;
        init.push(StateInit { var: v, rule: *rule, targets: None });
    }
    Ok(init)
}

/// All stimuli: the generator's background input, then the scenario's `[[stimulus]]` tables.
fn stimuli(run: &Run, background: &[GenBackground], specs: &[StimulusSpec]) -> Result<Vec<Stimulus>, ScenarioError> {
    let mut stimuli = background_stimuli(run, background)?;
    for (k, s) in specs.iter().enumerate() {
        stimuli.push(stimulus(run, k, s)?);
    }
    Ok(stimuli)
}

/// The generator's background input for the whole run: Poisson input (where `rate_hz` > 0) and a DC
/// current (where `dc_pa` ≠ 0) per background entry.
fn background_stimuli(run: &Run, background: &[GenBackground]) -> Result<Vec<Stimulus>, ScenarioError> {
    let mut stimuli = Vec::new();
    for (k, bg) in background.iter().enumerate() {
        // Only Poisson background needs a receptor; a DC-only entry (PD14 with k_scaling < 1) has none.
        if bg.rate_hz > 0.0 {
            let ch = run.network.receptors.iter().position(|r| r.name == bg.receptor).ok_or_else(|| {
                run.ctx.file(format!("generator background input uses unknown receptor `{}`", bg.receptor))
            })?;
            stimuli.push(Stimulus {
                name: format!("background-{k}"),
                kind: StimulusKind::Poisson { rate_hz: bg.rate_hz, weight: bg.weight, channel: ch as u8 },
                targets: bg.targets.clone(),
                start_step: 0,
                stop_step: run.steps,
            });
        }
        if bg.dc_pa != 0.0 {
            stimuli.push(Stimulus {
                name: format!("background-dc-{k}"),
                kind: StimulusKind::Current { amplitude_pa: bg.dc_pa },
                targets: bg.targets.clone(),
                start_step: 0,
                stop_step: run.steps,
            });
        }
    }
    Ok(stimuli)
}

/// The `k`-th `[[stimulus]]` table (its kind and fields were checked by [`check_stimulus_fields`]; here the
/// values and targets).
fn stimulus(run: &Run, k: usize, s: &StimulusSpec) -> Result<Stimulus, ScenarioError> {
    let ctx = run.ctx;
    let what = format!("stimulus #{k} ({})", s.kind.get_ref());
    let f = Fields { ctx, kind: &s.kind, what: &what };
    let kind = match s.kind.get_ref().as_str() {
        "poisson" => {
            let rate = non_negative(ctx, f.need(&s.rate_hz, "rate_hz")?, "rate_hz")?;
            let weight = finite(ctx, f.need(&s.weight, "weight")?, "weight")?;
            let ch = run.channel(f.need(&s.receptor, "receptor")?)?;
            StimulusKind::Poisson { rate_hz: rate, weight, channel: ch as u8 }
        }
        "current" => StimulusKind::Current {
            amplitude_pa: finite(ctx, f.need(&s.amplitude_pa, "amplitude_pa")?, "amplitude_pa")?,
        },
        "activation" => {
            let rate = non_negative(ctx, f.need(&s.rate_hz, "rate_hz")?, "rate_hz")?;
            let amplitude_pa = match &s.amplitude_pa {
                Some(a) => finite(ctx, a, "amplitude_pa")?,
                None => 0.0,
            };
            StimulusKind::Activation { rate_hz: rate, amplitude_pa }
        }
        other => {
            return Err(ctx.at(&s.kind, format!("unknown stimulus kind `{other}` (poisson, current, activation)")));
        }
    };
    let targets = run.resolve(&s.targets, &what)?;
    let (start_step, stop_step) = run.window(&what, &s.start_ms, &s.stop_ms)?;
    Ok(Stimulus { name: s.name.clone().unwrap_or(what), kind, targets, start_step, stop_step })
}

/// The time-dependent perturbations: silencing, channel gains and receptor blocks. (`cut` and `scale` by
/// transmitter are structural: [`apply_structural_perturbations`] applied them to the network.)
fn perturbation_schedule(run: &Run, perturbations: &[PerturbationSpec]) -> Result<PerturbationSchedule, ScenarioError> {
    let ctx = run.ctx;
    let mut schedule = PerturbationSchedule::default();
    for (k, p) in perturbations.iter().enumerate() {
        let what = format!("perturbation #{k} ({})", p.kind.get_ref());
        let f = Fields { ctx, kind: &p.kind, what: &what };
        match p.kind.get_ref().as_str() {
            "silence" => {
                let targets = run.resolve(f.need(&p.targets, "targets")?, &what)?;
                let (start_step, stop_step) = run.window(&what, &p.start_ms, &p.stop_ms)?;
                schedule.silencing.push(Silencing { targets, start_step, stop_step });
            }
            "scale" => {
                if let Some(r) = &p.receptor {
                    let factor = non_negative(ctx, f.need(&p.factor, "factor")?, "factor")?;
                    schedule.channel_scale.push((run.channel(r)?, factor));
                } // by transmitter: structural, applied above
            }
            "cut" => {} // structural, applied above
            "block" => schedule.blocks.push(receptor_block(run, p, &f)?),
            other => {
                return Err(
                    ctx.at(&p.kind, format!("unknown perturbation kind `{other}` (silence, scale, block, cut)"))
                );
            }
        }
    }
    Ok(schedule)
}

/// A `block` perturbation: dose and IC50 (same unit), Hill coefficient (default 1), start/stop (ms,
/// default the whole run) and on/off time constants (ms, default 0 = instant).
fn receptor_block(run: &Run, p: &PerturbationSpec, f: &Fields) -> Result<ReceptorBlock, ScenarioError> {
    let (ctx, what) = (run.ctx, f.what);
    let receptor = f.need(&p.receptor, "receptor")?;
    let opt = |v: &Option<Spanned<f64>>, name: &str, default: f64| match v {
        Some(x) => non_negative(ctx, x, name),
        None => Ok(default),
    };
    let b = ReceptorBlock {
        channel: run.channel(receptor)?,
        dose: non_negative(ctx, f.need(&p.dose, "dose")?, "dose")?,
        ic50: positive(ctx, f.need(&p.ic50, "ic50")?, "ic50")?,
        hill: match &p.hill {
            Some(h) => positive(ctx, h, "hill")?,
            None => 1.0,
        },
        start_ms: match &p.start_ms {
            Some(x) => start_in_run(ctx, what, x, run.dt, run.steps)?,
            None => 0.0,
        },
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
    Ok(b)
}

/// Read-out groups: label and neuron indices.
type Readout = Vec<(String, Vec<u32>)>;

/// What to record (spikes, state probes, rate traces per cell type in bins of `rate_bin_steps` steps)
/// and the read-out groups, whose neurons' spikes are recorded too.
fn recording(
    run: &Run,
    spec: &ScenarioSpec,
    vars: &StateVars,
    rate_bin_steps: u64,
) -> Result<(RecordSpec, Readout), ScenarioError> {
    let ctx = run.ctx;
    let mut record = RecordSpec::default();
    if let Some(t) = &spec.record.spikes {
        record.spikes = SpikeSelection::Neurons(run.resolve(t, "[record] spikes")?);
    }
    for (k, s) in spec.record.state.iter().enumerate() {
        let var = vars.index(s.var.get_ref()).map_err(|m| ctx.at(&s.var, m))?;
        let every = (s.every_ms / run.dt).round().max(1.0) as u64;
        if !(s.every_ms.is_finite() && s.every_ms > 0.0) {
            return Err(ctx.at(&s.var, format!("[record] state #{k}: every_ms must be > 0")));
        }
        let neurons = run.resolve(&s.targets, &format!("[record] state #{k}"))?;
        record.state.push(StateProbe { var, var_name: s.var.get_ref().clone(), neurons, every_steps: every });
    }
    record.rate_groups = rate_groups(run.network);
    record.rate_bin_steps = rate_bin_steps;

    let mut readout = Vec::new();
    for g in &spec.readout {
        readout.push((g.label.clone(), run.resolve(&g.targets, &format!("readout `{}`", g.label))?));
    }

    if let SpikeSelection::Neurons(keep) = &mut record.spikes {
        // read-out rates per window need the read-out neurons' spikes
        readout.iter().for_each(|(_, ids)| keep.extend_from_slice(ids));
        keep.sort_unstable();
        keep.dedup();
    }
    Ok((record, readout))
}

/// The `[[plasticity]]` groups: rule, pairing and weight dependence by name, parameters checked where they are
/// written, targets resolved.
fn plasticity(
    run: &Run,
    specs: &[PlasticitySpec],
    model: &CompiledModel,
    model_name: &str,
) -> Result<Plasticity, ScenarioError> {
    let ctx = run.ctx;
    let mut projections = Vec::new();
    for (k, s) in specs.iter().enumerate() {
        let name = s.name.clone().unwrap_or_else(|| format!("plasticity-{k}"));
        let what = format!("[[plasticity]] `{name}`");
        if !model.is_spiking() {
            return Err(ctx.at(&s.rule, format!("{what}: STDP needs a spiking model; `{model_name}` is graded")));
        }
        let rule = match s.rule.get_ref().as_str() {
            "stdp" => PlasticRule::Stdp(stdp_rule(ctx, s, &what)?),
            "stdp_dopamine" => PlasticRule::Dopamine(dopamine_rule(run, s, &what)?),
            other => {
                return Err(ctx.at(&s.rule, format!("{what}: unknown rule `{other}`; known: stdp, stdp_dopamine")));
            }
        };
        if let Err(m) = rule.check() {
            // Point at the field the message names, else at the rule.
            let at = s.fields().into_iter().find(|(f, v)| m.contains(&format!("`{f}`")) && v.is_some());
            return Err(match at.and_then(|(_, v)| v) {
                Some(v) => ctx.at(v, format!("{what}: {m}")),
                None => ctx.at(&s.rule, format!("{what}: {m}")),
            });
        }
        let pre = s.pre.as_ref().map(|t| run.resolve(t, &format!("{what} pre"))).transpose()?;
        let post = s.post.as_ref().map(|t| run.resolve(t, &format!("{what} post"))).transpose()?;
        let channel = s.receptor.as_ref().map(|r| run.channel(r)).transpose()?.map(|c| c as u8);
        projections.push(PlasticProjection { name, rule, pre, post, channel });
    }
    Ok(Plasticity { projections })
}

/// Refuses the fields of `s` that the other rule takes.
fn forbid_fields(ctx: &Ctx, s: &PlasticitySpec, what: &str, rule: &str, fields: &[&str]) -> Result<(), ScenarioError> {
    for (field, v) in s.fields() {
        if let (true, Some(v)) = (fields.contains(&field), v) {
            return Err(ctx.at(v, format!("{what}: `{field}` is not a parameter of rule = \"{rule}\"")));
        }
    }
    if let (true, Some(t)) = (fields.contains(&"pairing"), &s.pairing) {
        return Err(ctx.at(t, format!("{what}: `pairing` is not a parameter of rule = \"{rule}\"")));
    }
    if let (true, Some(t)) = (fields.contains(&"weight_dependence"), &s.weight_dependence) {
        return Err(ctx.at(t, format!("{what}: `weight_dependence` is not a parameter of rule = \"{rule}\"")));
    }
    Ok(())
}

/// `rule = "stdp"`: NEST's `stdp_synapse` / `stdp_nn_symm_synapse`.
fn stdp_rule(ctx: &Ctx, s: &PlasticitySpec, what: &str) -> Result<StdpParams, ScenarioError> {
    forbid_fields(ctx, s, what, "stdp", &["a_plus", "a_minus", "tau_c_ms", "tau_n_ms", "b", "w_min"])?;
    if s.dopamine.is_some() || s.dopamine_delay_ms.is_some() || s.update_interval_ms.is_some() {
        return Err(ctx.at(&s.rule, format!("{what}: dopamine settings need rule = \"stdp_dopamine\"")));
    }
    let mut rule = StdpParams::default();
    if let Some(p) = &s.pairing {
        rule.pairing = match p.get_ref().as_str() {
            "all_to_all" => Pairing::AllToAll,
            "nearest" => Pairing::Nearest,
            other => {
                return Err(ctx.at(p, format!("{what}: unknown pairing `{other}`; known: all_to_all, nearest")));
            }
        };
    }
    let dependence = s.weight_dependence.as_ref().map(|d| (d.get_ref().as_str(), d));
    let exponents = [("mu_plus", &s.mu_plus), ("mu_minus", &s.mu_minus)];
    match dependence {
        None | Some(("multiplicative", _)) | Some(("additive", _)) => {
            if let Some((field, Some(v))) = exponents.iter().find(|(_, v)| v.is_some()) {
                return Err(ctx.at(
                    v,
                    format!("{what}: `{field}` is given by weight_dependence; set weight_dependence = \"power\" to choose it"),
                ));
            }
            let mu = if matches!(dependence, Some(("additive", _))) { 0.0 } else { 1.0 };
            (rule.mu_plus, rule.mu_minus) = (mu, mu);
        }
        Some(("power", d)) => {
            let need = |v: &Option<Spanned<f64>>, field: &str| {
                v.as_ref().map(|v| *v.get_ref()).ok_or_else(|| {
                    ctx.at(d, format!("{what}: weight_dependence = \"power\" needs `{field}` (Gütig et al. 2003: 0.4)"))
                })
            };
            (rule.mu_plus, rule.mu_minus) = (need(&s.mu_plus, "mu_plus")?, need(&s.mu_minus, "mu_minus")?);
        }
        Some((other, d)) => {
            return Err(ctx.at(
                d,
                format!("{what}: unknown weight_dependence `{other}`; known: additive, multiplicative, power"),
            ));
        }
    }
    let w_max = s.w_max.as_ref().ok_or_else(|| {
        ctx.at(&s.rule, format!("{what}: needs `w_max`, the weight bound (model's synaptic unit, e.g. pA)"))
    })?;
    rule.w_max = *w_max.get_ref();
    for (v, slot) in [
        (&s.tau_plus_ms, &mut rule.tau_plus_ms),
        (&s.tau_minus_ms, &mut rule.tau_minus_ms),
        (&s.lambda, &mut rule.lambda),
        (&s.alpha, &mut rule.alpha),
    ] {
        if let Some(v) = v {
            *slot = *v.get_ref();
        }
    }
    Ok(rule)
}

/// `rule = "stdp_dopamine"`: reward-modulated STDP with the dopamine of the `dopamine` neurons.
fn dopamine_rule(run: &Run, s: &PlasticitySpec, what: &str) -> Result<DopamineRule, ScenarioError> {
    let ctx = run.ctx;
    forbid_fields(
        ctx,
        s,
        what,
        "stdp_dopamine",
        &["lambda", "alpha", "mu_plus", "mu_minus", "pairing", "weight_dependence"],
    )?;
    let sources = s.dopamine.as_ref().ok_or_else(|| {
        ctx.at(&s.rule, format!("{what}: needs `dopamine`, the neurons whose spikes release dopamine (a target table)"))
    })?;
    let neurons = run.resolve(sources, &format!("{what} dopamine"))?;
    let mut params = DopamineParams::default();
    for (v, slot) in [
        (&s.a_plus, &mut params.a_plus),
        (&s.a_minus, &mut params.a_minus),
        (&s.tau_plus_ms, &mut params.tau_plus_ms),
        (&s.tau_minus_ms, &mut params.tau_minus_ms),
        (&s.tau_c_ms, &mut params.tau_c_ms),
        (&s.tau_n_ms, &mut params.tau_n_ms),
        (&s.b, &mut params.b),
        (&s.w_min, &mut params.w_min),
        (&s.w_max, &mut params.w_max),
    ] {
        if let Some(v) = v {
            *slot = *v.get_ref();
        }
    }
    let steps = |v: &Option<Spanned<f64>>, field: &str, default_ms: f64| -> Result<u64, ScenarioError> {
        let ms = match v {
            Some(v) => positive(ctx, v, &format!("{what} {field}"))?,
            None => default_ms,
        };
        Ok((ms / run.dt).round().max(1.0) as u64)
    };
    let delay_steps = steps(&s.dopamine_delay_ms, "dopamine_delay_ms", 1.0)?;
    let update_every_steps = steps(&s.update_interval_ms, "update_interval_ms", 1.0)?;
    let delay_steps = u16::try_from(delay_steps).map_err(|_| {
        let m = format!("{what}: dopamine_delay_ms is {delay_steps} steps; at most 65535");
        match &s.dopamine_delay_ms {
            Some(v) => ctx.at(v, m),
            None => ctx.at(&s.rule, m),
        }
    })?;
    let update_every_steps = u32::try_from(update_every_steps).unwrap_or(u32::MAX);
    Ok(DopamineRule { params, neurons, delay_steps, update_every_steps })
}

/// Steps between weight snapshots: `[record] weights_every_ms` as a whole number of steps, or the whole run
/// (snapshots at the start and the end only).
fn weight_snapshot_steps(run: &Run, every: &Option<Spanned<f64>>) -> Result<u64, ScenarioError> {
    match every {
        None => Ok(run.steps.max(1)),
        Some(v) => {
            let ms = positive(run.ctx, v, "[record] weights_every_ms")?;
            Ok((ms / run.dt).round().max(1.0) as u64)
        }
    }
}

/// Rate-trace groups: the neurons of each cell type (`unlabelled` for neurons without one), by name.
fn rate_groups(network: &CompiledNetwork) -> Vec<RateGroup> {
    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (i, n) in network.neurons.iter().enumerate() {
        let g = if n.cell_type.is_empty() { "unlabelled" } else { &n.cell_type };
        groups.entry(g.to_string()).or_default().push(i as u32);
    }
    groups.into_iter().map(|(name, neurons)| RateGroup { name, neurons }).collect()
}

fn check_init(rule: &InitRule) -> Result<(), String> {
    match *rule {
        InitRule::Constant { value } if value.is_finite() => Ok(()),
        InitRule::Uniform { lo, hi } if lo.is_finite() && hi.is_finite() && lo <= hi => Ok(()),
        InitRule::Normal { mean, sd } if mean.is_finite() && sd.is_finite() && sd >= 0.0 => Ok(()),
        _ => Err(format!("invalid distribution {rule:?} (need finite values, lo <= hi, sd >= 0)")),
    }
}

/// Neuron parameter sets and the set index of every neuron.
fn neuron_parameters(
    spec: &ScenarioSpec,
    ctx: &Ctx,
    network: &CompiledNetwork,
    populations: &[GenPopulation],
) -> Result<(Vec<NeuronParams>, Vec<u16>, String), ScenarioError> {
    let n = network.n_neurons();
    let Some(model) = &spec.model else {
        if populations.is_empty() {
            return Err(ctx.file("[model] is missing: give `model = \"lif_exp\"` (or lif_delta, lif_cond_exp, lif_cond_alpha, izhikevich, adex, graded) and its parameters"));
        }
        let mut set = vec![0u16; n];
        let mut sets = Vec::new();
        for (k, p) in populations.iter().enumerate() {
            sets.push(p.params.clone());
            for i in p.range.clone() {
                set[i as usize] = k as u16;
            }
        }
        let name = sets[0].model_name().to_string();
        return Ok((sets, set, name));
    };
    let mut table = model.get_ref().clone();
    let overrides = match table.remove("cell_types") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err(ctx.at(model, "[model] cell_types must be a table of tables")),
    };
    let parse = |t: toml::Table, what: &str| -> Result<NeuronParams, ScenarioError> {
        toml::Value::Table(t).try_into().map_err(|e: toml::de::Error| {
            let msg = e.message().to_string();
            // point at the offending key's own line when the message names one
            let key = msg.split('`').nth(1).unwrap_or("");
            let span = model.span();
            // the span of a table may cover only its header: search from it to the end of the file
            let section = &ctx.text[span.start.min(ctx.text.len())..];
            let pos = section
                .lines()
                .scan(0usize, |off, l| {
                    let here = *off;
                    *off += l.len() + 1;
                    Some((here, l))
                })
                .find(|(_, l)| !key.is_empty() && l.trim_start().split(['=', ' ']).next() == Some(key))
                .map(|(o, _)| span.start + o);
            match pos {
                Some(p) => ScenarioError::At {
                    path: ctx.path.into(),
                    line: line_of(ctx.text, p),
                    message: format!("{what}: {msg}"),
                },
                None => ctx.at(model, format!("{what}: {msg}")),
            }
        })
    };
    let mut sets = vec![parse(table.clone(), "[model]")?];
    let mut set = vec![0u16; n];
    for (cell_type, o) in overrides {
        let toml::Value::Table(o) = o else {
            return Err(ctx.at(model, format!("[model.cell_types.{cell_type}] must be a table")));
        };
        if o.contains_key("model") {
            return Err(ctx.at(model, format!("[model.cell_types.{cell_type}]: `model` cannot differ per cell type")));
        }
        // An equation-defined model's per-type parameters override named ones: a name the base table lacks is a
        // mistake (it would be an unused parameter), refused with the nearest name.
        if let (Some(toml::Value::Table(base)), Some(toml::Value::Table(over))) =
            (table.get("parameters"), o.get("parameters"))
            && let Some(unknown) = over.keys().find(|k| !base.contains_key(*k))
        {
            let hint = neurotwin_models::equations::suggest(unknown, base.keys().map(String::as_str));
            return Err(ctx.at(
                model,
                format!(
                    "[model.cell_types.{cell_type}.parameters]: `{unknown}` is not in [model.parameters]{hint}; a cell \
                     type overrides the parameters of [model.parameters]"
                ),
            ));
        }
        let mut merged = table.clone();
        merge_overrides(&mut merged, o);
        let members: Vec<usize> =
            network.neurons.iter().enumerate().filter(|(_, x)| x.cell_type == cell_type).map(|(i, _)| i).collect();
        if members.is_empty() {
            return Err(ctx.at(model, format!("[model.cell_types.{cell_type}]: no neuron has cell type `{cell_type}`")));
        }
        sets.push(parse(merged, &format!("[model.cell_types.{cell_type}]"))?);
        for i in members {
            set[i] = (sets.len() - 1) as u16;
        }
    }
    let name = sets[0].model_name().to_string();
    Ok((sets, set, name))
}

/// `cut` and `scale` by transmitter change the compiled matrices.
fn apply_structural_perturbations(
    spec: &ScenarioSpec,
    ctx: &Ctx,
    net: &mut CompiledNetwork,
) -> Result<(), ScenarioError> {
    // The neuron table is copied for the lookup only when a perturbation may change the matrices.
    if !spec.perturbations.iter().any(|p| matches!(p.kind.get_ref().as_str(), "cut" | "scale")) {
        return Ok(());
    }
    let lookup_neurons = net.neurons.clone();
    let lookup = NeuronLookup::new(&lookup_neurons);
    let mut changed = false;
    let mut synapses = None;
    let mut gap_pairs: Option<Vec<(u32, u32, f32)>> = None;
    for (k, p) in spec.perturbations.iter().enumerate() {
        let what = format!("perturbation #{k} ({})", p.kind.get_ref());
        let f = Fields { ctx, kind: &p.kind, what: &what };
        match p.kind.get_ref().as_str() {
            "cut" => {
                let pre = lookup.resolve(f.need(&p.pre, "pre")?, ctx.path, ctx.text, &what)?;
                let post = lookup.resolve(f.need(&p.post, "post")?, ctx.path, ctx.text, &what)?;
                let n = net.n_neurons();
                let mut is_pre = vec![false; n];
                let mut is_post = vec![false; n];
                pre.iter().for_each(|&i| is_pre[i as usize] = true);
                post.iter().for_each(|&i| is_post[i as usize] = true);
                let syn = synapses.get_or_insert_with(|| net.chemical.synapses());
                syn.retain(|s| !(is_pre[s.pre as usize] && is_post[s.post as usize]));
                let gaps = gap_pairs.get_or_insert_with(|| gap_junctions(&net.gap));
                gaps.retain(|&(a, b, _)| {
                    !((is_pre[a as usize] && is_post[b as usize]) || (is_pre[b as usize] && is_post[a as usize]))
                });
                changed = true;
            }
            "scale" => match (&p.receptor, &p.transmitter) {
                (Some(_), None) => {} // a channel gain, applied per step
                (None, Some(t)) => {
                    let factor = non_negative(ctx, f.need(&p.factor, "factor")?, "factor")?;
                    let nt = canonical(t.get_ref());
                    let from: Vec<bool> = net
                        .neurons
                        .iter()
                        .map(|n| n.transmitter.as_deref().map(canonical).as_deref() == Some(nt.as_str()))
                        .collect();
                    if !from.iter().any(|&b| b) {
                        return Err(ctx.at(t, format!("{what}: no neuron releases transmitter `{nt}`")));
                    }
                    let syn = synapses.get_or_insert_with(|| net.chemical.synapses());
                    syn.iter_mut().filter(|s| from[s.pre as usize]).for_each(|s| s.weight *= factor as f32);
                    changed = true;
                }
                (Some(_), Some(t)) => {
                    return Err(ctx.at(t, format!("{what}: give either `receptor` or `transmitter`, not both")));
                }
                (None, None) => return Err(ctx.at(&p.kind, format!("{what}: needs `receptor` or `transmitter`"))),
            },
            _ => {}
        }
    }
    if changed {
        let n = net.n_neurons() as u32;
        if let Some(s) = synapses {
            net.chemical = SynapseMatrix::from_synapses(n, n, s)?;
        }
        if let Some(g) = gap_pairs {
            net.gap = GapMatrix::from_junctions(n, &g)?;
        }
    }
    Ok(())
}

/// Undirected junction list (a < b) of a gap matrix.
fn gap_junctions(g: &GapMatrix) -> Vec<(u32, u32, f32)> {
    let mut v = Vec::new();
    for a in 0..g.n {
        let (p, c) = g.row(a);
        for (&b, &x) in p.iter().zip(c) {
            if a < b {
                v.push((a, b, x));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use crate::runner::{RunRequest, prepare_all};

    /// A stimulus missing a required field is reported before the network is read: here the network file does
    /// not exist, and the error is still the stimulus's (it used to come after loading, seconds for a large one).
    #[test]
    fn stimulus_fields_are_checked_before_the_network_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        for (stimulus, message) in [
            (
                "kind = \"poisson\"\ntargets = { all = true }\nrate_hz = 10.0\nweight = 1.0",
                "stimulus #0 (poisson): missing `receptor`",
            ),
            (
                "kind = \"current\"\ntargets = { all = true }\namplitude_pa = 5.0\nweight = 1.0",
                "`weight` does not apply",
            ),
            ("kind = \"spark\"\ntargets = { all = true }", "unknown stimulus kind `spark`"),
        ] {
            let text = format!(
                "name = \"t\"\n[network]\nfile = \"missing.h5\"\n[model]\nmodel = \"lif_exp\"\n[run]\nduration_ms = 10.0\n\
                 [[stimulus]]\n{stimulus}\n"
            );
            let p = dir.path().join("s.toml");
            std::fs::write(&p, text).unwrap();
            let e = prepare_all(&RunRequest { scenario: p, ..Default::default() }).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(message) && !e.contains("missing.h5"), "{e}");
        }
    }
}
