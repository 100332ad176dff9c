//! Turning a parsed scenario into a run-ready `SimSetup`, perturbation schedule and record spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use neurotwin_connectome::{CompiledNetwork, GapMatrix, SynapseMatrix, transmitter::canonical};
use neurotwin_models::{CompiledModel, NeuronParams};
use neurotwin_sim::{
    InitRule, PerturbationSchedule, RateGroup, ReceptorBlock, RecordSpec, Silencing, SimSetup, SpikeSelection,
    StateInit, StateProbe, Stimulus, StimulusKind,
};
use toml::Spanned;

use crate::error::{ScenarioError, line_of};
use crate::source::{LoadedNetwork, load_network};
use crate::spec::ScenarioSpec;
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

/// Converts a `[start, stop)` window in ms to steps, validating it against the run.
fn window(
    ctx: &Ctx,
    what: &str,
    start: &Option<Spanned<f64>>,
    stop: &Option<Spanned<f64>>,
    dt: f64,
    steps: u64,
) -> Result<(u64, u64), ScenarioError> {
    let start_ms = match start {
        Some(s) => non_negative(ctx, s, "start_ms")?,
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
    Ok(((start_ms / dt).round() as u64, ((stop_ms / dt).round() as u64).min(steps)))
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

/// Builds the run for one parsed scenario.
pub fn prepare(spec: &ScenarioSpec, path: &Path, text: &str) -> Result<PreparedRun, ScenarioError> {
    let ctx = Ctx { path, text };
    let base = path.parent().unwrap_or(Path::new("."));

    // Time.
    let dt = positive(&ctx, &spec.run.dt_ms, "run.dt_ms")?;
    let duration = positive(&ctx, &spec.run.duration_ms, "run.duration_ms")?;
    let ratio = duration / dt;
    if (ratio - ratio.round()).abs() > 1e-6 * ratio.max(1.0) {
        let suggestion = ((ratio.round() * dt) * 1e9).round() / 1e9;
        return Err(ctx.at(
            &spec.run.duration_ms,
            format!("`run.duration_ms` = {duration} is not a multiple of dt_ms = {dt}; use e.g. {suggestion}"),
        ));
    }
    let steps = ratio.round() as u64;
    if spec.run.trials == 0 {
        return Err(ctx.file("`run.trials` must be >= 1"));
    }

    // Network.
    let LoadedNetwork { mut network, populations, background } =
        load_network(&spec.network, &ctx, base, dt, spec.run.seed)?;
    apply_structural_perturbations(spec, &ctx, &mut network)?;
    let network = Arc::new(network);
    let lookup = NeuronLookup::new(&network.neurons);
    let channel = |name: &Spanned<String>| -> Result<usize, ScenarioError> {
        network.receptors.iter().position(|r| &r.name == name.get_ref()).ok_or_else(|| {
            let names: Vec<_> = network.receptors.iter().map(|r| r.name.as_str()).collect();
            ctx.at(name, format!("unknown receptor `{}`; this network has: {}", name.get_ref(), names.join(", ")))
        })
    };

    // Neuron parameters: one set per cell type with overrides (or per generated population).
    let (sets, param_set, model_name) = neuron_parameters(spec, &ctx, &network, &populations)?;
    let model = CompiledModel::compile(&sets, &network.receptors, dt).map_err(|e| match &spec.model {
        Some(m) => ctx.at(m, format!("[model]: {e}")),
        None => ctx.file(format!("generator neuron parameters: {e}")),
    })?;
    let names = model.state_names();
    let var_index = |v: &str| -> Result<usize, String> {
        names
            .iter()
            .position(|n| n == v)
            .ok_or_else(|| format!("unknown state variable `{v}`; {model_name} has: {}", names.join(", ")))
    };

    // Initial state: generated populations first, then the scenario's [init] (which wins).
    let mut init = Vec::new();
    for p in &populations {
        if let Some(rule) = p.v_init {
            init.push(StateInit { var: 0, rule, targets: Some(p.range.clone().collect()) });
        }
    }
    for (var, rule) in &spec.init {
        let v = var_index(var).map_err(|m| ctx.file(format!("[init]: {m}")))?;
        check_init(rule).map_err(|m| ctx.file(format!("[init] {var}: {m}")))?;
        init.push(StateInit { var: v, rule: *rule, targets: None });
    }

    // Stimuli.
    let mut stimuli = Vec::new();
    for (k, bg) in background.iter().enumerate() {
        let ch =
            network.receptors.iter().position(|r| r.name == bg.receptor).ok_or_else(|| {
                ctx.file(format!("generator background input uses unknown receptor `{}`", bg.receptor))
            })?;
        if bg.rate_hz > 0.0 {
            stimuli.push(Stimulus {
                name: format!("background-{k}"),
                kind: StimulusKind::Poisson { rate_hz: bg.rate_hz, weight: bg.weight, channel: ch as u8 },
                targets: bg.targets.clone(),
                start_step: 0,
                stop_step: steps,
            });
        }
        if bg.dc_pa != 0.0 {
            stimuli.push(Stimulus {
                name: format!("background-dc-{k}"),
                kind: StimulusKind::Current { amplitude_pa: bg.dc_pa },
                targets: bg.targets.clone(),
                start_step: 0,
                stop_step: steps,
            });
        }
    }
    for (k, s) in spec.stimuli.iter().enumerate() {
        let what = format!("stimulus #{k} ({})", s.kind.get_ref());
        let f = Fields { ctx: &ctx, kind: &s.kind, what: &what };
        let kind = match s.kind.get_ref().as_str() {
            "poisson" => {
                f.forbid(&[("amplitude_pa", s.amplitude_pa.is_some())])?;
                let rate = non_negative(&ctx, f.need(&s.rate_hz, "rate_hz")?, "rate_hz")?;
                let weight = finite(&ctx, f.need(&s.weight, "weight")?, "weight")?;
                let ch = channel(f.need(&s.receptor, "receptor")?)?;
                StimulusKind::Poisson { rate_hz: rate, weight, channel: ch as u8 }
            }
            "current" => {
                f.forbid(&[
                    ("rate_hz", s.rate_hz.is_some()),
                    ("weight", s.weight.is_some()),
                    ("receptor", s.receptor.is_some()),
                ])?;
                StimulusKind::Current {
                    amplitude_pa: finite(&ctx, f.need(&s.amplitude_pa, "amplitude_pa")?, "amplitude_pa")?,
                }
            }
            "activation" => {
                f.forbid(&[("weight", s.weight.is_some()), ("receptor", s.receptor.is_some())])?;
                let rate = non_negative(&ctx, f.need(&s.rate_hz, "rate_hz")?, "rate_hz")?;
                let amplitude_pa = match &s.amplitude_pa {
                    Some(a) => finite(&ctx, a, "amplitude_pa")?,
                    None => 0.0,
                };
                StimulusKind::Activation { rate_hz: rate, amplitude_pa }
            }
            other => {
                return Err(ctx.at(&s.kind, format!("unknown stimulus kind `{other}` (poisson, current, activation)")));
            }
        };
        let targets = lookup.resolve(&s.targets, path, text, &what)?;
        let (start_step, stop_step) = window(&ctx, &what, &s.start_ms, &s.stop_ms, dt, steps)?;
        stimuli.push(Stimulus { name: s.name.clone().unwrap_or(what), kind, targets, start_step, stop_step });
    }

    // Time-dependent perturbations.
    let mut schedule = PerturbationSchedule::default();
    for (k, p) in spec.perturbations.iter().enumerate() {
        let what = format!("perturbation #{k} ({})", p.kind.get_ref());
        let f = Fields { ctx: &ctx, kind: &p.kind, what: &what };
        match p.kind.get_ref().as_str() {
            "silence" => {
                let targets = lookup.resolve(f.need(&p.targets, "targets")?, path, text, &what)?;
                let (start_step, stop_step) = window(&ctx, &what, &p.start_ms, &p.stop_ms, dt, steps)?;
                schedule.silencing.push(Silencing { targets, start_step, stop_step });
            }
            "scale" => {
                if let Some(r) = &p.receptor {
                    let factor = non_negative(&ctx, f.need(&p.factor, "factor")?, "factor")?;
                    schedule.channel_scale.push((channel(r)?, factor));
                } // by transmitter: structural, applied above
            }
            "cut" => {} // structural, applied above
            "block" => {
                let receptor = f.need(&p.receptor, "receptor")?;
                let opt = |v: &Option<Spanned<f64>>, name: &str, default: f64| match v {
                    Some(x) => non_negative(&ctx, x, name),
                    None => Ok(default),
                };
                let b = ReceptorBlock {
                    channel: channel(receptor)?,
                    dose: non_negative(&ctx, f.need(&p.dose, "dose")?, "dose")?,
                    ic50: positive(&ctx, f.need(&p.ic50, "ic50")?, "ic50")?,
                    hill: match &p.hill {
                        Some(h) => positive(&ctx, h, "hill")?,
                        None => 1.0,
                    },
                    start_ms: opt(&p.start_ms, "start_ms", 0.0)?,
                    stop_ms: match &p.stop_ms {
                        Some(x) => positive(&ctx, x, "stop_ms")?,
                        None => f64::INFINITY,
                    },
                    tau_on_ms: opt(&p.tau_on_ms, "tau_on_ms", 0.0)?,
                    tau_off_ms: opt(&p.tau_off_ms, "tau_off_ms", 0.0)?,
                };
                if b.stop_ms <= b.start_ms {
                    return Err(ctx.at(&p.kind, format!("{what}: stop_ms must be later than start_ms")));
                }
                schedule.blocks.push(b);
            }
            other => {
                return Err(
                    ctx.at(&p.kind, format!("unknown perturbation kind `{other}` (silence, scale, block, cut)"))
                );
            }
        }
    }

    // Recording.
    let mut record = RecordSpec::default();
    if let Some(t) = &spec.record.spikes {
        record.spikes = SpikeSelection::Neurons(lookup.resolve(t, path, text, "[record] spikes")?);
    }
    for (k, s) in spec.record.state.iter().enumerate() {
        let var = var_index(s.var.get_ref()).map_err(|m| ctx.at(&s.var, m))?;
        let every = (s.every_ms / dt).round().max(1.0) as u64;
        if !(s.every_ms.is_finite() && s.every_ms > 0.0) {
            return Err(ctx.at(&s.var, format!("[record] state #{k}: every_ms must be > 0")));
        }
        let neurons = lookup.resolve(&s.targets, path, text, &format!("[record] state #{k}"))?;
        record.state.push(StateProbe { var, var_name: s.var.get_ref().clone(), neurons, every_steps: every });
    }
    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (i, n) in network.neurons.iter().enumerate() {
        let g = if n.cell_type.is_empty() { "unlabelled" } else { &n.cell_type };
        groups.entry(g.to_string()).or_default().push(i as u32);
    }
    record.rate_groups = groups.into_iter().map(|(name, neurons)| RateGroup { name, neurons }).collect();
    if !(spec.record.rate_bin_ms.is_finite() && spec.record.rate_bin_ms >= 0.0) {
        return Err(ctx.file("[record] rate_bin_ms must be >= 0"));
    }
    record.rate_bin_steps = (spec.record.rate_bin_ms / dt).round() as u64;

    let mut readout = Vec::new();
    for g in &spec.readout {
        readout.push((g.label.clone(), lookup.resolve(&g.targets, path, text, &format!("readout `{}`", g.label))?));
    }

    if let SpikeSelection::Neurons(keep) = &mut record.spikes {
        // read-out rates per window need the read-out neurons' spikes
        readout.iter().for_each(|(_, ids)| keep.extend_from_slice(ids));
        keep.sort_unstable();
        keep.dedup();
    }
    let mut windows = Vec::new();
    for w in &spec.windows {
        if !(w.start_ms >= 0.0 && w.stop_ms > w.start_ms) {
            return Err(ctx.file(format!("window `{}`: need 0 <= start_ms < stop_ms", w.label)));
        }
        let (a, b) = ((w.start_ms / dt).round() as u64, ((w.stop_ms / dt).round() as u64).min(steps));
        windows.push((w.label.clone(), a, b));
    }

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
        },
        perturbations: schedule,
        record,
        readout,
        windows,
        output_dir: spec.output.dir.clone(),
        raster: spec.output.raster.unwrap_or(true),
        model_name,
    })
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
    populations: &[crate::source::GenPopulation],
) -> Result<(Vec<NeuronParams>, Vec<u16>, String), ScenarioError> {
    let n = network.n_neurons();
    let Some(model) = &spec.model else {
        if populations.is_empty() {
            return Err(ctx.file("[model] is missing: give `model = \"lif_exp\"` (or lif_delta, izhikevich, adex, graded) and its parameters"));
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
        let mut merged = table.clone();
        merged.extend(o);
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
