//! Loading the network a scenario names: bundled dataset, CSV, own HDF5, or a generator.

use std::ops::Range;
use std::path::Path;

use neurotwin_connectome::generators::{self, BackgroundInput, VInit};
use neurotwin_connectome::import::{self, CsvLayout};
use neurotwin_connectome::{
    CompileOptions, CompiledNetwork, Connectome, Share, SynapseKind, TransmitterMap, compile, hdf5io,
};
use neurotwin_models::NeuronParams;
use neurotwin_sim::InitRule;

use crate::build::Ctx;
use crate::error::ScenarioError;
use crate::spec::{GeneratorSpec, NetworkSpec, TransmitterSpec};

/// A generated population with its published neuron parameters.
#[derive(Clone, Debug)]
pub struct GenPopulation {
    pub name: String,
    pub range: Range<u32>,
    pub params: NeuronParams,
    pub v_init: Option<InitRule>,
}

/// Background input of a generated network (Poisson on a receptor, plus an optional DC current).
#[derive(Clone, Debug)]
pub struct GenBackground {
    pub targets: Vec<u32>,
    pub rate_hz: f64,
    pub weight: f64,
    pub receptor: String,
    pub dc_pa: f64,
}

pub struct LoadedNetwork {
    pub network: CompiledNetwork,
    pub populations: Vec<GenPopulation>,
    pub background: Vec<GenBackground>,
}

fn transmitter_map(spec: &NetworkSpec, ctx: &Ctx, default: TransmitterMap) -> Result<TransmitterMap, ScenarioError> {
    match &spec.transmitters {
        None => Ok(default),
        Some(TransmitterSpec::Preset(p)) => TransmitterMap::preset(p).ok_or_else(|| {
            ctx.file(format!("[network] transmitters = \"{p}\": unknown preset (fly, celegans, exc_inh)"))
        }),
        Some(TransmitterSpec::Map(m)) => {
            m.validate().map_err(|e| ctx.file(format!("[network.transmitters]: {e}")))?;
            Ok(m.clone())
        }
    }
}

fn compile_connectome(
    c: &Connectome,
    spec: &NetworkSpec,
    ctx: &Ctx,
    dt: f64,
    default_map: TransmitterMap,
) -> Result<CompiledNetwork, ScenarioError> {
    if let Some(m) = spec.min_synapse_count {
        check_min_synapse_count(c, m, ctx)?;
    }
    Ok(compile(c, &compile_options(spec, ctx, dt, default_map)?)?)
}

/// The compile options of `[network]`.
fn compile_options(
    spec: &NetworkSpec,
    ctx: &Ctx,
    dt: f64,
    default_map: TransmitterMap,
) -> Result<CompileOptions, ScenarioError> {
    let d = CompileOptions::default();
    Ok(CompileOptions {
        dt_ms: dt,
        transmitters: transmitter_map(spec, ctx, default_map)?,
        weight_per_synapse: spec.weight_per_synapse.unwrap_or(d.weight_per_synapse),
        default_delay_ms: spec.default_delay_ms.unwrap_or(d.default_delay_ms),
        gap_per_junction_ns: spec.gap_per_junction_ns.unwrap_or(d.gap_per_junction_ns),
        min_synapse_count: spec.min_synapse_count.unwrap_or(d.min_synapse_count),
    })
}

/// `[network] min_synapse_count` must be a count >= 0 that keeps at least one chemical connection (when
/// there are any).
fn check_min_synapse_count(c: &Connectome, min: f32, ctx: &Ctx) -> Result<(), ScenarioError> {
    let chemical = || c.connections.iter().filter(|k| k.kind == SynapseKind::Chemical);
    let any_weighted = chemical().any(|k| k.weight.is_some());
    let largest = chemical().filter(|k| k.weight.is_none()).map(|k| k.count).fold(0.0f32, f32::max);
    check_min_count(min, chemical().next().is_some(), any_weighted, largest, ctx)
}

/// The check of [`check_min_synapse_count`] from the whole file's summary (`largest`: the largest count among
/// chemical connections without an explicit weight).
fn check_min_count(
    min: f32,
    any_chemical: bool,
    any_weighted: bool,
    largest: f32,
    ctx: &Ctx,
) -> Result<(), ScenarioError> {
    if !(min.is_finite() && min >= 0.0) {
        return Err(ctx.file(format!(
            "[network] min_synapse_count = {min}: must be a finite synapse count >= 0 (chemical connections with \
             fewer synapses are dropped; 0 keeps all)"
        )));
    }
    if !any_chemical || any_weighted || largest >= min {
        return Ok(());
    }
    Err(ctx.file(format!(
        "[network] min_synapse_count = {min} removes every chemical connection (the largest count is {largest}); \
         use a value <= {largest}"
    )))
}

/// Which network source a `[network]` table names (`None` unless exactly one is given).
fn source_kind(spec: &NetworkSpec) -> Option<&'static str> {
    let given = [
        (spec.source.is_some(), "source = \"celegans\""),
        (spec.connections.is_some(), "connections"),
        (spec.file.is_some(), "file"),
        (spec.generator.is_some(), "generator"),
    ];
    let mut present = given.iter().filter(|(g, _)| *g);
    match (present.next(), present.next()) {
        (Some((_, kind)), None) => Some(kind),
        _ => None,
    }
}

/// Rejects `[network]` fields that the chosen source ignores (e.g. `layout` with `source = "celegans"`).
pub(crate) fn check_network_fields(spec: &NetworkSpec, ctx: &Ctx) -> Result<(), ScenarioError> {
    let Some(kind) = source_kind(spec) else {
        return Ok(()); // load_network reports a missing or ambiguous source
    };
    let compiled = ["source = \"celegans\"", "connections", "file"];
    // (field, present, the sources it applies to, those sources in words)
    let fields: [(&str, bool, &[&str], &str); 8] = [
        ("neurons", spec.neurons.is_some(), &["connections"], "`connections`"),
        ("layout", spec.layout.is_some(), &["connections"], "`connections`"),
        ("seed", spec.seed.is_some(), &["generator"], "`generator`"),
        ("transmitters", spec.transmitters.is_some(), &compiled, "`source`, `connections` and `file`"),
        ("weight_per_synapse", spec.weight_per_synapse.is_some(), &compiled, "`source`, `connections` and `file`"),
        ("default_delay_ms", spec.default_delay_ms.is_some(), &compiled, "`source`, `connections` and `file`"),
        ("gap_per_junction_ns", spec.gap_per_junction_ns.is_some(), &compiled, "`source`, `connections` and `file`"),
        ("min_synapse_count", spec.min_synapse_count.is_some(), &compiled, "`source`, `connections` and `file`"),
    ];
    match fields.iter().find(|(_, present, applies, _)| *present && !applies.contains(&kind)) {
        Some((field, _, _, words)) => {
            Err(ctx.file(format!("[network] `{field}` does not apply to `{kind}` (it is for {words}); remove it")))
        }
        None => Ok(()),
    }
}

pub(crate) fn load_network(
    spec: &NetworkSpec,
    ctx: &Ctx,
    base: &Path,
    dt: f64,
    run_seed: u64,
    share: &Share,
) -> Result<LoadedNetwork, ScenarioError> {
    let given = [spec.source.is_some(), spec.connections.is_some(), spec.file.is_some(), spec.generator.is_some()];
    if given.iter().filter(|&&b| b).count() != 1 {
        return Err(ctx.file("[network] needs exactly one of `source`, `connections`, `file`, `generator`"));
    }
    // A compiled connectome cut to this process's share (split runs; nothing happens for the whole network).
    let plain = |mut network: CompiledNetwork| -> Result<LoadedNetwork, ScenarioError> {
        network.keep_share(share).map_err(|e| ctx.file(format!("[network]: {e}")))?;
        Ok(LoadedNetwork { network, populations: vec![], background: vec![] })
    };
    if let Some(src) = &spec.source {
        return match src.get_ref().as_str() {
            "celegans" => {
                let c = import::load_celegans_bundled()?;
                plain(compile_connectome(&c, spec, ctx, dt, TransmitterMap::celegans())?)
            }
            other => Err(ctx.at(src, format!("unknown bundled source `{other}` (available: celegans)"))),
        };
    }
    if let Some(conn) = &spec.connections {
        let layout = match spec.layout.as_deref() {
            None => CsvLayout::Auto,
            Some("generic") => CsvLayout::Generic,
            Some("flywire") => CsvLayout::FlyWire,
            Some("neuprint") => CsvLayout::NeuPrint,
            Some(other) => {
                return Err(ctx.file(format!("[network] layout = \"{other}\": use generic, flywire or neuprint")));
            }
        };
        let neurons = spec.neurons.as_ref().map(|n| base.join(n));
        let c = import::read_csv(&base.join(conn), neurons.as_deref(), layout)?;
        return plain(compile_connectome(&c, spec, ctx, dt, TransmitterMap::fly())?);
    }
    if let Some(f) = &spec.file {
        if share.is_whole() {
            let c = hdf5io::read_connectome(base.join(f))?;
            return plain(compile_connectome(&c, spec, ctx, dt, TransmitterMap::fly())?);
        }
        // One rank of a split run reads only the connections onto its targets.
        let part = hdf5io::read_connectome_share(base.join(f), share)?;
        if let Some(m) = spec.min_synapse_count {
            check_min_count(m, part.any_chemical, part.any_weighted, part.largest_count, ctx)?;
        }
        let network = neurotwin_connectome::compile::compile_share(
            &part,
            &compile_options(spec, ctx, dt, TransmitterMap::fly())?,
        )?;
        return plain(network);
    }
    let g = spec.generator.as_ref().expect("checked above");
    generate(g, spec.seed.unwrap_or(run_seed), ctx, dt, share)
}

/// Builds a generated network and converts its populations and background input.
fn generate(g: &GeneratorSpec, seed: u64, ctx: &Ctx, dt: f64, share: &Share) -> Result<LoadedNetwork, ScenarioError> {
    let net = match g {
        GeneratorSpec::Cuba(c) => generators::cuba_part(c, seed, dt, share),
        GeneratorSpec::Coba(c) => generators::coba_part(c, seed, dt, share),
        GeneratorSpec::Brunel(c) => generators::brunel_part(c, seed, dt, share),
        GeneratorSpec::Pd14(c) => generators::potjans_diesmann_part(c, seed, dt, share),
        GeneratorSpec::FlyBrain(c) => generators::flybrain_part(c, seed, dt, share),
    }
    .map_err(|e| ctx.file(format!("[network] generator: {e}")))?;
    let populations = net
        .populations
        .iter()
        .map(|p| GenPopulation {
            name: p.name.clone(),
            range: p.range.clone(),
            params: p.params.clone(),
            v_init: match p.v_init {
                VInit::Rest => None,
                VInit::Uniform { lo, hi } => Some(InitRule::Uniform { lo, hi }),
                VInit::Normal { mean, sd } => Some(InitRule::Normal { mean, sd }),
            },
        })
        .collect::<Vec<_>>();
    let targets = |pop: usize| -> Vec<u32> { net.populations[pop].range.clone().collect() };
    let background = net
        .background
        .iter()
        .map(|b| match b {
            BackgroundInput::Poisson { population, rate_hz, weight, receptor } => GenBackground {
                targets: targets(*population),
                rate_hz: *rate_hz,
                weight: *weight,
                receptor: receptor.clone(),
                dc_pa: 0.0,
            },
            BackgroundInput::Dc { population, amplitude_pa } => GenBackground {
                targets: targets(*population),
                rate_hz: 0.0,
                weight: 0.0,
                receptor: String::new(),
                dc_pa: *amplitude_pa,
            },
        })
        .collect();
    Ok(LoadedNetwork { network: net.network, populations, background })
}
