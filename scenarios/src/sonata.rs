//! SONATA simulations (Dai et al. 2020, PLoS Comput Biol 16:e1007696): a SONATA config → a run.
//!
//! Accepted entry points: a top-level `config.json` naming `"network"` (circuit config) and `"simulation"`
//! (simulation config), a simulation config with a `"network"` key, or a simulation config with a
//! `circuit_config.json` beside it. Read: `run.tstop` and `run.dt` (ms; `tstop` must be a whole number of `dt`
//! steps), `node_sets_file` (or inline `node_sets`), the `inputs` of
//! `input_type = "spikes"` (module `h5`/`sonata`: `/spikes/<population>/{timestamps,node_ids}` or the older
//! `/spikes/{timestamps,gids}`; module `csv`: bmtk's space-separated `timestamps population node_ids`), and
//! `output.output_dir` / `output.spikes_file`.
//!
//! Cells (node types); their `dynamics_params` JSON files are read from the circuit's
//! `components.point_neuron_models_dir` and nowhere else (a missing file is an error naming the config, the
//! folder and the file):
//! - `model_type = virtual`: spike sources; their input spike trains are replayed exactly (see below).
//! - `model_template = nrn:IntFire1` (NEURON's built-in integrate-and-fire cell, as BioNet builds it): a `lif_delta`
//!   neuron with `E_L = V_reset = 0`, `V_th = 1`, `τ_m = tau`, `t_ref = refrac` (the `dynamics_params` JSON gives
//!   both in seconds; BioNet multiplies by 1000), input ignored while refractory — IntFire1's `m` decays to 0
//!   with `tau`, each event adds its weight, `m > 1` fires, and events are ignored for `refrac`.
//! - `model_template = nest:iaf_psc_delta`: `lif_delta` with the JSON's NEST parameters (C_m, tau_m, E_L, V_th,
//!   V_reset, t_ref, I_e).
//!
//! Weights: BioNet's rule for point-process targets (bmtk 1.2 `PointProcessCell.set_syn_connection` with
//! `EdgeAdaptor.create_adaptor`): when the edge group has `nsyns`, `w = syn_weight × nsyns × sign`, the sign −1
//! for edges the reader classed inhibitory (the edge type's synaptic model file names `inh`, as bmtk's
//! `instantaneousInh.json`, whose `sign` is −1), +1 otherwise; when it has no `nsyns` (one row per synapse),
//! `w = syn_weight` as given — BioNet then applies neither count nor sign, so inhibitory rows must carry negative
//! weights. Delays in ms.
//!
//! Time grid: an input spike at `t` ms is emitted in the step that ends at the grid point nearest `t`, so its
//! recorded time (end of step) is `t` rounded to `dt`; a target fires in the step its input arrives (delta
//! synapses), so a cell driven past threshold by an input at `t` fires at `t + delay` rounded to the grid —
//! where NEURON's event-driven IntFire1 fires at exactly `t + delay`. The remaining differences: decay between
//! events is taken on the grid (`e^{-dt/τ}` per step) instead of at the exact event times, and a threshold hit
//! exactly (`m = 1`) fires here but not in IntFire1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use neurotwin_connectome::compile::compile_share;
use neurotwin_connectome::import::read_sonata_share;
use neurotwin_connectome::import::{NodePopulation, SonataCircuit, SonataConfig};
use neurotwin_connectome::{CompileOptions, ConnectomeShare, Share, SynapseKind, TransmitterMap, compile, read_sonata};
use neurotwin_models::lif_delta::LifDeltaParams;
use neurotwin_models::{CompiledModel, NeuronParams};
use neurotwin_sim::output::ReportPopulation;
use neurotwin_sim::{
    PerturbationSchedule, RateGroup, RecordSpec, SimRecording, SimSetup, SpikeSelection, SpikeTrainStats, SpikeTrains,
};

use crate::build::PreparedRun;
use crate::error::ScenarioError;

/// A SONATA simulation ready to run.
pub struct SonataSimulation {
    pub run: PreparedRun,
    pub populations: Vec<NodePopulation>,
    /// Where the spike report goes (`output.output_dir` / `output.spikes_file`, default `output/spikes.h5`).
    pub spikes_file: PathBuf,
    pub output_dir: PathBuf,
    /// Per input (name): events kept, merged and dropped.
    pub inputs: Vec<(String, SpikeTrainStats)>,
    /// The simulation config that was read.
    pub config: PathBuf,
    /// Every file the simulation reads (configs, circuit folder, spike inputs, node sets): no output may
    /// replace one of them.
    pub input_files: neurotwin_io::inputs::InputSet,
}

impl SonataSimulation {
    /// The non-virtual populations, as the spike report lists them.
    pub fn report_populations(&self) -> Vec<ReportPopulation> {
        self.populations
            .iter()
            .filter(|p| !p.is_virtual)
            .map(|p| ReportPopulation { name: p.name.clone(), first: p.first as u32, count: p.count as u32 })
            .collect()
    }
}

/// Whether `path` looks like a SONATA JSON config (rather than a TOML scenario).
pub fn is_sonata_config(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

fn file_err(path: &Path, message: impl Into<String>) -> ScenarioError {
    ScenarioError::File { path: path.to_path_buf(), message: message.into() }
}

/// The simulation config and the circuit config named by `path` (see the module documentation).
fn locate(path: &Path) -> Result<(SonataConfig, PathBuf), ScenarioError> {
    let top = SonataConfig::read(path)?;
    if let (Some(net), Some(sim)) = (top.path_at(None, "network")?, top.path_at(None, "simulation")?) {
        let sim_cfg = SonataConfig::read(&sim)?;
        return Ok((sim_cfg, net));
    }
    if top.json.get("networks").is_some() && top.json.get("run").is_some() {
        return Ok((top.clone(), path.to_path_buf()));
    }
    if let Some(net) = top.path_at(None, "network")? {
        return Ok((top, net));
    }
    let beside = path.parent().unwrap_or(Path::new(".")).join("circuit_config.json");
    if top.json.get("run").is_some() && beside.is_file() {
        return Ok((top, beside));
    }
    Err(file_err(
        path,
        "not a SONATA simulation: expected a config with `network` and `simulation` file names, a simulation config \
         with `run` and `network`, or a simulation config with circuit_config.json beside it",
    ))
}

fn number(cfg: &SonataConfig, section: &str, key: &str) -> Result<Option<f64>, ScenarioError> {
    match cfg.json.get(section).and_then(|s| s.get(key)) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| file_err(&cfg.path, format!("`{section}.{key}` = {v} is not a finite number"))),
    }
}

/// A JSON component file (`dynamics_params` `name`) from the circuit's components folder `components.<dir_key>`.
/// A missing folder entry or file is an error naming the circuit config, the folder and the file: nothing is
/// taken from elsewhere (a circuit runs with its own component files or not at all).
fn component_json(
    circuit: &SonataCircuit,
    dir_key: &str,
    name: &str,
    used_by: &str,
) -> Result<serde_json::Value, ScenarioError> {
    let dir = circuit.components.get(dir_key).ok_or_else(|| {
        file_err(
            &circuit.config,
            format!(
                "{used_by}: dynamics_params `{name}` needs the components folder `components.{dir_key}`, which this \
                 circuit config does not set; add it (the folder holding `{name}`)"
            ),
        )
    })?;
    let file = dir.join(name);
    if !file.is_file() {
        let why = if dir.is_dir() { "has no file" } else { "does not exist, so it has no file" };
        return Err(file_err(
            &circuit.config,
            format!(
                "{used_by}: the components folder `components.{dir_key}` = {} {why} `{name}` (dynamics_params); put \
                 `{name}` there or point components.{dir_key} at the folder that holds it",
                dir.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(&file).map_err(|e| file_err(&file, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| file_err(&file, format!("not valid JSON: {e}")))
}

fn param(v: &serde_json::Value, key: &str, file: &str) -> Result<f64, String> {
    v.get(key)
        .and_then(|x| x.as_f64())
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("dynamics_params `{file}` has no finite number `{key}`"))
}

/// The `lif_delta` parameters of one node type (`None` for virtual nodes).
fn cell_params(circuit: &SonataCircuit, t: usize) -> Result<Option<LifDeltaParams>, ScenarioError> {
    let nt = &circuit.node_types[t];
    let who = format!("node type {} of population `{}` ({})", nt.node_type_id, nt.population, nt.types_file.display());
    if nt.model_type.as_deref() == Some("virtual") {
        return Ok(None);
    }
    let template = nt.model_template.as_deref().unwrap_or("");
    let file = nt
        .dynamics_params
        .as_deref()
        .ok_or_else(|| file_err(&circuit.config, format!("{who}: no dynamics_params column")))?;
    let err = |m: String| file_err(&circuit.config, format!("{who}: {m}"));
    match template {
        "nrn:IntFire1" => {
            let j = component_json(circuit, "point_neuron_models_dir", file, &who)?;
            let tau_s = param(&j, "tau", file).map_err(err)?;
            let refrac_s = param(&j, "refrac", file).map_err(err)?;
            if tau_s <= 0.0 || refrac_s < 0.0 {
                return Err(err(format!("IntFire1 needs tau > 0 and refrac >= 0 (s), got {tau_s} and {refrac_s}")));
            }
            Ok(Some(LifDeltaParams {
                c_m: 1.0,
                tau_m: tau_s * 1000.0,
                e_l: 0.0,
                v_th: 1.0,
                v_reset: 0.0,
                t_ref: refrac_s * 1000.0,
                i_e: 0.0,
                refractory_input: false,
            }))
        }
        "nest:iaf_psc_delta" => {
            let j = component_json(circuit, "point_neuron_models_dir", file, &who)?;
            let d = LifDeltaParams::default();
            let get = |k: &str, dflt: f64| j.get(k).and_then(|x| x.as_f64()).unwrap_or(dflt);
            Ok(Some(LifDeltaParams {
                c_m: get("C_m", d.c_m),
                tau_m: get("tau_m", d.tau_m),
                e_l: get("E_L", d.e_l),
                v_th: get("V_th", d.v_th),
                v_reset: get("V_reset", d.v_reset),
                t_ref: get("t_ref", d.t_ref),
                i_e: get("I_e", d.i_e),
                refractory_input: false,
            }))
        }
        other => Err(err(format!(
            "model_template `{other}` (model_type {:?}) is not supported; supported: virtual nodes, nrn:IntFire1, \
             nest:iaf_psc_delta",
            nt.model_type.as_deref().unwrap_or("?")
        ))),
    }
}

/// A virtual node: never reaches threshold on its own (it has no inputs), fires when its train says.
fn virtual_params() -> LifDeltaParams {
    LifDeltaParams {
        c_m: 1.0,
        tau_m: 1.0,
        e_l: 0.0,
        v_th: 1e300,
        v_reset: 0.0,
        t_ref: 0.0,
        i_e: 0.0,
        refractory_input: false,
    }
}

/// Population (and optional node ids) of a node set; a name no node set defines is taken as a population name.
fn node_set(
    sim: &SonataConfig,
    sets: Option<&serde_json::Value>,
    populations: &[NodePopulation],
    name: &str,
    input: &str,
) -> Result<(String, Option<Vec<u64>>), ScenarioError> {
    let Some(s) = sets.and_then(|s| s.get(name)) else {
        // As bmtk: a name that no node set defines stands for the population of that name.
        if populations.iter().any(|p| p.name == name) {
            return Ok((name.to_string(), None));
        }
        return Err(file_err(
            &sim.path,
            format!("input `{input}`: node set `{name}` is neither defined (node_sets_file) nor a population"),
        ));
    };
    let pop = s.get("population").and_then(|p| p.as_str()).ok_or_else(|| {
        file_err(&sim.path, format!("node set `{name}` has no `population`; only population node sets are supported"))
    })?;
    let ids =
        match s.get("node_id") {
            None => None,
            Some(v) => Some(v.as_array().map(|a| a.iter().filter_map(|x| x.as_u64()).collect()).ok_or_else(|| {
                file_err(&sim.path, format!("node set `{name}`: node_id must be a list of integers"))
            })?),
        };
    Ok((pop.to_string(), ids))
}

/// (node id, time in ms) of a spike input file.
fn read_spike_file(path: &Path, module: &str, population: &str) -> Result<Vec<(u64, f64)>, ScenarioError> {
    match module {
        "h5" | "sonata" | "hdf5" => {
            let (ids, t) = neurotwin_sim::readback::read_sonata_spikes(path, population)?;
            Ok(ids.into_iter().zip(t).collect())
        }
        "csv" => {
            let text = std::fs::read_to_string(path).map_err(|x| file_err(path, x.to_string()))?;
            let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
            let (_, header) = lines.next().ok_or_else(|| file_err(path, "empty spike file"))?;
            let cols: Vec<&str> = header.split_whitespace().collect();
            let col = |c: &str| {
                cols.iter().position(|x| *x == c).ok_or_else(|| {
                    file_err(path, format!("line 1: no `{c}` column (expected `timestamps population node_ids`)"))
                })
            };
            let (ct, cn, cp) = (col("timestamps")?, col("node_ids")?, cols.iter().position(|x| *x == "population"));
            let mut out = Vec::new();
            for (k, line) in lines {
                let f: Vec<&str> = line.split_whitespace().collect();
                let bad = |m: &str| ScenarioError::At { path: path.to_path_buf(), line: k + 1, message: m.to_string() };
                if f.len() != cols.len() {
                    return Err(bad("wrong number of fields (separate them with spaces)"));
                }
                if cp.is_some_and(|c| f[c] != population) {
                    continue;
                }
                let t: f64 = f[ct].parse().map_err(|_| bad("timestamps is not a number"))?;
                let n: u64 = f[cn].parse().map_err(|_| bad("node_ids is not a non-negative integer"))?;
                out.push((n, t));
            }
            Ok(out)
        }
        other => Err(file_err(path, format!("input module `{other}` is not supported (h5, sonata, csv)"))),
    }
}

/// `run.tstop` and `run.dt` (ms, `dt` 0.1 when absent): positive, and `tstop` a whole number of steps (as the
/// TOML scenarios' `duration_ms`), else an error naming both fields and the nearest valid `tstop` values.
fn run_time(sim: &SonataConfig) -> Result<(f64, f64), ScenarioError> {
    let tstop = number(sim, "run", "tstop")?.ok_or_else(|| file_err(&sim.path, "`run.tstop` (ms) is missing"))?;
    let dt = number(sim, "run", "dt")?.unwrap_or(0.1);
    if tstop <= 0.0 || dt <= 0.0 {
        return Err(file_err(&sim.path, format!("run.tstop = {tstop} and run.dt = {dt} must be positive (ms)")));
    }
    let ratio = tstop / dt;
    if (ratio - ratio.round()).abs() > 1e-6 * ratio.max(1.0) {
        let at = |k: f64| ((k * dt) * 1e9).round() / 1e9;
        let (below, above) = (at(ratio.floor()), at(ratio.ceil()));
        let below = if below > 0.0 { format!("{below} or ") } else { String::new() };
        return Err(file_err(
            &sim.path,
            format!(
                "`run.tstop` = {tstop} ms is not a multiple of `run.dt` = {dt} ms; use {below}{above} (or a `run.dt` \
                 that divides it)"
            ),
        ));
    }
    Ok((tstop, dt))
}

/// Reads a SONATA simulation (see the module documentation) into a run.
pub fn prepare_sonata(path: &Path) -> Result<SonataSimulation, ScenarioError> {
    prepare_sonata_part(path, &Share::WHOLE)
}

/// [`prepare_sonata`] for one process of a run split across processes: the network holds only the synapses onto
/// this process's `share` of the nodes (the circuit is read whole, then cut).
pub fn prepare_sonata_part(path: &Path, share: &Share) -> Result<SonataSimulation, ScenarioError> {
    let (sim, circuit_path) = locate(path)?;
    // One rank of a split run reads only the edges onto its targets.
    let (circuit, part) = if share.is_whole() {
        (read_sonata(&circuit_path)?, None)
    } else {
        let s = read_sonata_share(&circuit_path, share)?;
        (s.circuit, Some((s.targets, s.edge_numbers, s.receptor_uses)))
    };
    let mut input_files = neurotwin_io::inputs::InputSet::new();
    input_files.add(&sim.path).add(&circuit_path);
    let (tstop, dt) = run_time(&sim)?;
    let steps = (tstop / dt).round() as u64;

    // Cells: one lif_delta parameter set per node type, virtual nodes share one.
    let n = circuit.connectome.neurons.len();
    let mut sets: Vec<NeuronParams> = vec![NeuronParams::LifDelta(virtual_params())];
    let mut set_of_type = Vec::with_capacity(circuit.node_types.len());
    let mut is_virtual_type = Vec::with_capacity(circuit.node_types.len());
    for t in 0..circuit.node_types.len() {
        match cell_params(&circuit, t)? {
            None => {
                set_of_type.push(0u16);
                is_virtual_type.push(true);
            }
            Some(p) => {
                let p = NeuronParams::LifDelta(p);
                let k = sets.iter().position(|s| *s == p).unwrap_or_else(|| {
                    sets.push(p);
                    sets.len() - 1
                });
                set_of_type.push(k as u16);
                is_virtual_type.push(false);
            }
        }
    }
    let param_set: Vec<u16> = circuit.neuron_node_type.iter().map(|&t| set_of_type[t as usize]).collect();

    // Weights: syn_weight × nsyns × sign (BioNet, point-process targets).
    let mut connectome = circuit.connectome.clone();
    for (k, c) in connectome.connections.iter_mut().enumerate() {
        if c.kind != SynapseKind::Chemical {
            continue;
        }
        let number = part.as_ref().map_or(k as u64, |p| p.1[k]);
        let w = c.weight.ok_or_else(|| {
            file_err(&circuit_path, format!("edge #{number} ({} -> {}) has no syn_weight", c.pre, c.post))
        })?;
        if circuit.nsyns_given[k] {
            let sign = if c.receptor.as_deref() == Some("inh") { -1.0 } else { 1.0 };
            c.weight = Some((w as f64 * c.count as f64 * sign) as f32);
        }
    }
    let opt = CompileOptions { dt_ms: dt, transmitters: TransmitterMap::exc_inh(), ..Default::default() };
    let mut network = match part {
        None => compile(&connectome, &opt)?,
        Some((targets, _, receptor_uses)) => {
            let any_chemical = connectome.connections.iter().any(|c| c.kind == SynapseKind::Chemical);
            let part = ConnectomeShare {
                connectome,
                targets,
                largest_count: 0.0,
                any_chemical,
                any_weighted: true,
                receptor_uses,
            };
            compile_share(&part, &opt)?
        }
    };
    network.keep_share(share)?;
    let network = Arc::new(network);
    let model = CompiledModel::compile(&sets, &network.receptors, dt)?;

    // Inputs: spike trains of virtual nodes.
    let node_sets = match sim.path_at(None, "node_sets_file")? {
        None if sim.json.get("node_sets").is_some_and(|v| v.is_object()) => sim.json.get("node_sets").cloned(),
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| file_err(&p, e.to_string()))?;
            Some(
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| file_err(&p, format!("not valid JSON: {e}")))?,
            )
        }
        None => None,
    };
    let mut events: Vec<(u32, u64)> = Vec::new();
    let mut inputs = Vec::new();
    if let Some(obj) = sim.json.get("inputs").and_then(|x| x.as_object()) {
        for (name, inp) in obj {
            let kind = inp.get("input_type").and_then(|x| x.as_str()).unwrap_or("");
            if kind != "spikes" {
                return Err(file_err(
                    &sim.path,
                    format!("input `{name}`: input_type `{kind}` is not supported (only `spikes`)"),
                ));
            }
            let module = inp.get("module").and_then(|x| x.as_str()).unwrap_or("h5");
            let file = inp
                .get("input_file")
                .and_then(|x| x.as_str())
                .ok_or_else(|| file_err(&sim.path, format!("input `{name}` has no input_file")))
                .and_then(|s| Ok(sim.resolve(s)?))?;
            input_files.add(&file);
            let set = inp
                .get("node_set")
                .and_then(|x| x.as_str())
                .ok_or_else(|| file_err(&sim.path, format!("input `{name}` has no node_set")))?;
            let (pop, only) = node_set(&sim, node_sets.as_ref(), &circuit.populations, set, name)?;
            let p = circuit.populations.iter().find(|p| p.name == pop).ok_or_else(|| {
                file_err(
                    &sim.path,
                    format!("input `{name}`: node set `{set}` names population `{pop}`, not in the circuit"),
                )
            })?;
            let before = events.len();
            for (node, t) in read_spike_file(&file, module, &pop)? {
                if node >= p.count as u64 {
                    return Err(file_err(
                        &file,
                        format!(
                            "spike of node {node}, but population `{pop}` has {} nodes (ids 0..{})",
                            p.count, p.count
                        ),
                    ));
                }
                if !t.is_finite() || t < 0.0 {
                    return Err(file_err(&file, format!("spike time {t} ms of node {node} is not a finite time >= 0")));
                }
                if only.as_ref().is_some_and(|ids| !ids.contains(&node)) {
                    continue;
                }
                let step = ((t / dt).round() as u64).saturating_sub(1);
                events.push(((p.first as u64 + node) as u32, step));
            }
            let (_, st) = SpikeTrains::from_events(events[before..].to_vec(), n, steps)?;
            inputs.push((name.clone(), st));
        }
    }
    let (trains, _) = SpikeTrains::from_events(events, n, steps)?;

    let output_dir = match sim.path_at(Some("output"), "output_dir")? {
        Some(d) => d,
        None => sim.resolve("output")?,
    };
    let spikes_name =
        sim.json.get("output").and_then(|o| o.get("spikes_file")).and_then(|x| x.as_str()).unwrap_or("spikes.h5");
    let spikes_file = output_dir.join(spikes_name);
    // The circuit's folder (nodes, edges, components), except the output folder of earlier runs.
    input_files.add_tree_except(circuit_path.parent().unwrap_or(Path::new(".")), &output_dir);

    let rate_groups = circuit
        .node_types
        .iter()
        .enumerate()
        .filter(|(t, _)| !is_virtual_type[*t])
        .map(|(t, nt)| RateGroup {
            name: format!("{}:{}", nt.population, nt.model_name.clone().unwrap_or_else(|| nt.node_type_id.to_string())),
            neurons: (0..n as u32).filter(|&i| circuit.neuron_node_type[i as usize] as usize == t).collect(),
        })
        .collect();
    let name = circuit.connectome.name.clone();
    let setup = SimSetup {
        network,
        model,
        param_set,
        init: vec![],
        stimuli: vec![],
        seed: 0,
        steps,
        spike_trains: Arc::new(trains),
        plasticity: Default::default(),
    };
    let run = PreparedRun {
        name,
        setup,
        perturbations: PerturbationSchedule::default(),
        record: RecordSpec { spikes: SpikeSelection::All, rate_groups, ..Default::default() },
        readout: vec![],
        windows: vec![],
        output_dir: Some(output_dir.clone()),
        raster: true,
        model_name: "lif_delta (SONATA: IntFire1 / iaf_psc_delta, virtual)".into(),
        threads: 0,
    };
    Ok(SonataSimulation {
        run,
        populations: circuit.populations,
        spikes_file,
        output_dir,
        inputs,
        config: sim.path,
        input_files,
    })
}

/// Runs a SONATA simulation and writes its outputs: the spike report in SONATA layout (one group per simulated
/// population, node ids within the population, sorted by time) at the config's `output.spikes_file`, plus
/// `nodes.csv`, `summary.json` and `raster.png` beside it. `out_dir` overrides the config's `output_dir`.
pub fn run_sonata(
    path: &Path,
    out_dir: Option<&Path>,
    backend: crate::BackendKind,
    progress: bool,
    overwrite: bool,
) -> Result<(SonataSimulation, crate::RunResult), ScenarioError> {
    let mut sim = prepare_sonata(path)?;
    let run_dir = create_output_dir(&mut sim, out_dir, overwrite)?;
    let run = &sim.run;
    let started = std::time::Instant::now();
    let (rec, exponent, backend_name) = crate::runner::simulate_on(backend, run, run.setup.seed, progress, &run.name)?;
    let wall_s = started.elapsed().as_secs_f64();
    let dir = sim.output_dir.clone();
    let summary =
        crate::runner::summarize(run, &rec, None, None, 0, run.setup.seed, backend_name, exponent, wall_s, &dir);
    write_outputs(&sim, run_dir.staging(), &rec, &summary)?;
    run_dir.commit()?;
    Ok((sim, crate::RunResult { summary, recording: rec }))
}

/// Points the run's outputs at `out_dir` (when given) and creates the output folder for them (checked against
/// the inputs and an earlier run, see `neurotwin_io::run_dir`).
pub fn create_output_dir(
    sim: &mut SonataSimulation,
    out_dir: Option<&Path>,
    overwrite: bool,
) -> Result<neurotwin_io::run_dir::RunDir, ScenarioError> {
    let spikes_rel = spikes_file_in_output(sim)?;
    if let Some(d) = out_dir {
        sim.output_dir = d.to_path_buf();
        sim.spikes_file = d.join(&spikes_rel);
    }
    let spikes_name = spikes_rel.to_string_lossy().into_owned();
    let expected = [spikes_name.as_str(), "nodes.csv", "raster.png", "summary.json"];
    Ok(neurotwin_io::run_dir::RunDir::create(
        &sim.output_dir,
        "neurotwin run (SONATA)",
        sim.input_files.clone(),
        overwrite,
        &expected,
    )?)
}

/// Writes a finished run's files into the output folder's staging folder `stage`: the SONATA spike report, the
/// node table, the raster PNG and the summary.
pub fn write_outputs(
    sim: &SonataSimulation,
    stage: &Path,
    rec: &SimRecording,
    summary: &crate::RunSummary,
) -> Result<(), ScenarioError> {
    let run = &sim.run;
    let spikes_rel = spikes_file_in_output(sim)?;
    neurotwin_sim::output::write_sonata_spikes_populations(&stage.join(&spikes_rel), &sim.report_populations(), rec)?;
    let names: Vec<String> = run.setup.network.neurons.iter().map(|n| n.name.clone()).collect();
    neurotwin_sim::output::write_node_table(&stage.join("nodes.csv"), names.iter().map(String::as_str))?;
    let title = format!("{} (SONATA) — {} nodes, {} ms", run.name, run.setup.n_neurons(), rec.duration_ms());
    let raster = crate::plot::RasterSpikes::from_recording(rec, run.setup.n_neurons());
    crate::plot::raster_png(&stage.join("raster.png"), &title, &raster, &run.readout)?;
    neurotwin_sim::output::write_json(&stage.join("summary.json"), summary)?;
    Ok(())
}

/// `output.spikes_file` relative to `output.output_dir`: it must lie inside the output folder (a plain
/// relative path without `..`), since the whole run is published there together.
fn spikes_file_in_output(sim: &SonataSimulation) -> Result<PathBuf, ScenarioError> {
    let rel = sim.spikes_file.strip_prefix(&sim.output_dir).ok().map(Path::to_path_buf);
    match rel {
        Some(r)
            if !r.as_os_str().is_empty() && r.components().all(|c| matches!(c, std::path::Component::Normal(_))) =>
        {
            Ok(r)
        }
        _ => Err(file_err(
            &sim.config,
            format!(
                "output.spikes_file `{}` must be a file name inside output.output_dir `{}` (e.g. \"spikes.h5\")",
                sim.spikes_file.display(),
                sim.output_dir.display()
            ),
        )),
    }
}
