//! SONATA circuits out (Dai et al. 2020, PLoS Comput Biol 16:e1007696; the developer guide of
//! github.com/AllenInstitute/sonata): a [`Connectome`] split into node populations
//! ([`PopulationLayout`]) → one folder with
//!
//! - per population `<pop>_nodes.h5` (`/nodes/<pop>/node_id`, `node_type_id`, `node_group_id`,
//!   `node_group_index`; group `0` with one row per node) and `<pop>_node_types.csv`;
//! - per (source, target) population pair with chemical connections `<src>_<tgt>_edges.h5` (edge population
//!   `<src>_to_<tgt>`) and `<src>_<tgt>_edge_types.csv`;
//! - per pair with gap junctions, when asked ([`GapJunctions::Write`]), `<src>_<tgt>_gap_edges.h5` (edge
//!   population `<src>_to_<tgt>_gap`) and `<src>_<tgt>_gap_edge_types.csv`;
//! - `circuit_config.json` with a `manifest` (`$NETWORK_DIR` = the folder) listing them all.
//!
//! Every HDF5 file has the root attributes `magic` = 0x0A7A and `version` = [0, 1] (uint32).
//!
//! **Nodes.** Node ids are positions within the population's index range. Node types are the distinct
//! (cell type, `ei`, location, model) combinations; their CSV columns are `node_type_id`, `population`,
//! `model_type`, `model_template`, `dynamics_params` ([`NodeModel`], default `point_neuron` with no template),
//! `ei` (`e`/`i` from the neuron's transmitter: see below), `model_name` (the cell type) and `location` (the
//! region). The types CSV is split on whitespace by many readers (ours too), so `model_name` / `location` are
//! CSV columns only when every value in the population is a single token; the exact values are always kept
//! per node in group `0`: `name`, `cell_type`, `region`, `transmitter` (UTF-8 strings, empty = none),
//! `neurotwin_id` (the neuron's external id, uint64) and, when any neuron has a position, `x`, `y`, `z`
//! (float32, NaN = none).
//!
//! **Edges** are sorted by target then source node (stable), with `source_node_id` / `target_node_id`
//! (uint64, each with a `node_population` string attribute), `edge_type_id` (uint32), `edge_group_id`
//! (uint32), `edge_group_index` (uint64) and the `indices/target_to_source` and `indices/source_to_target`
//! groups (`node_id_to_ranges`, one `[start, end)` row per node into `range_to_edge_id`, whose rows are
//! `[start, end)` runs of edges; the layout libsonata writes; `node_id_to_range`, the name BMTK reads, is a
//! hard link to the same dataset). Group datasets: `nsyns` (uint32 when every
//! count is a whole number, else float32), `syn_weight` and `delay` (float64, ms) and `confidence`
//! (float32). An edge with no weight / delay / confidence lives in a group without that dataset (edges are
//! grouped by which of the three they have; SONATA groups exist for this), so a missing value is never
//! invented.
//!
//! **Receptors.** Each chemical connection's receptor class is resolved with
//! [`SonataWriteOptions::transmitters`] exactly as the compiler does (explicit receptor, else the rule of
//! its or its presynaptic neuron's transmitter, else the fallback). Edge types are the distinct
//! (receptor class, explicit receptor, explicit transmitter) combinations with columns `edge_type_id`,
//! `population`, `model_template` (`NULL`), `dynamics_params` (`exc_synapse.json` or `inh_synapse.json` by
//! the class's sign: the convention of BMTK's point-neuron examples that our reader maps back to the
//! `exc` / `inh` receptors), `receptor_class`, `receptor` and `transmitter` (`NULL` when absent; values
//! with spaces are quoted as the SONATA CSV dialect says).
//!
//! **Gap junctions.** SONATA has no standard electrical-synapse edge type. With [`GapJunctions::Write`] each
//! junction (listed once, as in [`Connectome`]) becomes one edge of a separate edge population whose only
//! edge type has `is_gap_junction` = `True` (BMTK's column for gap junctions) and `dynamics_params` =
//! `gap_junction.json`, `nsyns` = the junction count and `syn_weight` = its weight when given. A reader
//! that does not know the column would take them for excitatory chemical synapses, so the default
//! ([`GapJunctions::Error`]) refuses a connectome with gap junctions and says how to choose.
//!
//! **Atomic output.** Everything is written into a temporary folder next to `out_dir` and renamed into
//! place at the end; a non-empty `out_dir` is replaced only with [`SonataWriteOptions::overwrite`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use hdf5::{Group, H5Type, Location};

use crate::error::ConnectomeError;
use crate::import::sonata::SonataCircuit;
use crate::network::{Connection, Connectome, SynapseKind};
use crate::transmitter::{TransmitterMap, canonical};

/// One node population: a name and the neurons (indices into [`Connectome::neurons`]) it holds, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PopulationLayout {
    pub name: String,
    pub range: Range<usize>,
}

impl PopulationLayout {
    pub fn new(name: impl Into<String>, range: Range<usize>) -> Self {
        Self { name: name.into(), range }
    }

    /// The populations of a circuit as read by [`crate::read_sonata`].
    pub fn from_circuit(circuit: &SonataCircuit) -> Vec<Self> {
        circuit.populations.iter().map(|p| Self::new(p.name.clone(), p.first..p.first + p.count)).collect()
    }
}

/// What to do with electrical connections (gap junctions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GapJunctions {
    /// Refuse a connectome that has any (the default): SONATA has no standard gap-junction edge type.
    #[default]
    Error,
    /// Leave them out.
    Omit,
    /// Write them as their own edge populations with `is_gap_junction = True` edge types.
    Write,
}

/// The SONATA model of a node: `model_type`, `model_template`, `dynamics_params` of its node type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeModel {
    pub model_type: String,
    pub model_template: Option<String>,
    pub dynamics_params: Option<String>,
}

impl Default for NodeModel {
    fn default() -> Self {
        Self { model_type: "point_neuron".into(), model_template: None, dynamics_params: None }
    }
}

/// Options of [`write_sonata`].
#[derive(Clone, Debug, PartialEq)]
pub struct SonataWriteOptions {
    /// Replace the files of an earlier export in `out_dir` (only those, and files this export writes
    /// again; never an input).
    pub overwrite: bool,
    /// Files this export reads (the source CSV/circuit): no output may replace one of them.
    pub inputs: Vec<PathBuf>,
    pub gap_junctions: GapJunctions,
    /// Resolves each chemical connection's receptor class (and so the `exc`/`inh` synapse model) and each
    /// neuron's `ei`.
    pub transmitters: TransmitterMap,
    /// Per neuron (index as in [`Connectome::neurons`]); empty = every node a `point_neuron`.
    pub node_models: Vec<NodeModel>,
}

impl Default for SonataWriteOptions {
    fn default() -> Self {
        Self {
            overwrite: false,
            inputs: Vec::new(),
            gap_junctions: GapJunctions::Error,
            transmitters: TransmitterMap::exc_inh(),
            node_models: Vec::new(),
        }
    }
}

impl SonataWriteOptions {
    /// Options that keep a circuit read by [`crate::read_sonata`] as it was: its node models (virtual
    /// inputs stay virtual) and the `exc`/`inh` receptor map.
    pub fn for_circuit(circuit: &SonataCircuit) -> Self {
        let node_models = circuit
            .neuron_node_type
            .iter()
            .map(|&k| {
                circuit.node_types.get(k as usize).map_or_else(NodeModel::default, |t| NodeModel {
                    model_type: t.model_type.clone().unwrap_or_else(|| "point_neuron".into()),
                    model_template: t.model_template.clone(),
                    dynamics_params: t.dynamics_params.clone(),
                })
            })
            .collect();
        Self { node_models, ..Default::default() }
    }
}

const MAGIC: u32 = 0x0A7A;
const VERSION: [u32; 2] = [0, 1];
const CONFIG: &str = "circuit_config.json";
const COMPRESS_MIN: usize = 4096;
const CHUNK: usize = 65_536;

/// Writes `connectome` as a SONATA circuit into `out_dir` (see the module documentation) and returns the
/// path of its `circuit_config.json`. `populations` empty = one population `neurons` with every neuron;
/// otherwise the populations must cover every neuron exactly once.
pub fn write_sonata(
    connectome: &Connectome,
    populations: &[PopulationLayout],
    out_dir: &Path,
    options: &SonataWriteOptions,
) -> Result<PathBuf, ConnectomeError> {
    connectome.validate()?;
    let n = connectome.neurons.len();
    if n == 0 {
        return Err(ConnectomeError::Invalid(format!(
            "connectome `{}` has no neurons: nothing to write to {}",
            connectome.name,
            out_dir.display()
        )));
    }
    let default_layout = [PopulationLayout::new("neurons", 0..n)];
    let layouts = if populations.is_empty() { &default_layout[..] } else { populations };
    let place = check_layouts(layouts, n)?;
    if !options.node_models.is_empty() && options.node_models.len() != n {
        return Err(ConnectomeError::Invalid(format!(
            "SONATA export: {} node models for {n} neurons (give one per neuron, or none)",
            options.node_models.len()
        )));
    }
    options.transmitters.validate().map_err(|m| ConnectomeError::Invalid(format!("transmitter map: {m}")))?;
    let n_gap = connectome.connections.iter().filter(|c| c.kind == SynapseKind::Electrical).count();
    if n_gap > 0 && options.gap_junctions == GapJunctions::Error {
        return Err(ConnectomeError::Invalid(format!(
            "connectome `{}` has {n_gap} gap junctions, and SONATA has no standard gap-junction edge type: choose \
             to omit them, or to write them as separate edge populations marked `is_gap_junction = True` (BMTK's \
             convention; readers that ignore the column take them for chemical synapses)",
            connectome.name
        )));
    }
    let plan = plan(connectome, layouts, &place, options)?;
    // The shared output-folder policy: staged, published together, never over an input, an earlier
    // export's files replaced only with `overwrite` (and other files left alone).
    let mut inputs = neurotwin_io::inputs::InputSet::new();
    for p in &options.inputs {
        inputs.add(p);
    }
    let run_dir = neurotwin_io::run_dir::RunDir::create(
        out_dir,
        "neurotwin import --to sonata",
        inputs,
        options.overwrite,
        &[CONFIG],
    )?;
    write_all(connectome, layouts, &plan, run_dir.staging(), options)?;
    run_dir.commit()?;
    Ok(out_dir.join(CONFIG))
}

/// (population, node id) of every neuron.
fn check_layouts(layouts: &[PopulationLayout], n: usize) -> Result<Vec<(u32, u64)>, ConnectomeError> {
    let bad = |m: String| ConnectomeError::Invalid(format!("SONATA populations: {m}"));
    let mut place = vec![(u32::MAX, 0u64); n];
    let mut names = HashSet::new();
    for (p, l) in layouts.iter().enumerate() {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if l.name.is_empty() || !l.name.chars().all(ok_char) {
            return Err(bad(format!(
                "name `{}` must be non-empty ASCII letters, digits, `_` or `-` (it names files)",
                l.name
            )));
        }
        if !names.insert(l.name.as_str()) {
            return Err(bad(format!("`{}` is named twice", l.name)));
        }
        if l.range.start > l.range.end || l.range.end > n {
            return Err(bad(format!("`{}` spans neurons {:?}, outside 0..{n}", l.name, l.range)));
        }
        for i in l.range.clone() {
            if place[i].0 != u32::MAX {
                return Err(bad(format!(
                    "neuron {i} is in both `{}` and `{}`",
                    layouts[place[i].0 as usize].name, l.name
                )));
            }
            place[i] = (p as u32, (i - l.range.start) as u64);
        }
    }
    if let Some(i) = place.iter().position(|x| x.0 == u32::MAX) {
        return Err(bad(format!("neuron {i} is in no population (the populations must cover all {n} neurons)")));
    }
    Ok(place)
}

// ---------------------------------------------------------------------------------------------------
// What goes where

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct NodeTypeKey {
    model: NodeModel,
    ei: Option<&'static str>,
    model_name: Option<String>,
    location: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct EdgeTypeKey {
    receptor_class: String,
    excitatory: bool,
    receptor: Option<String>,
    transmitter: Option<String>,
}

struct NodePlan {
    type_id: Vec<u64>,
    types: Vec<(u64, NodeTypeKey)>,
    csv_model_name: bool,
    csv_location: bool,
}

struct EdgePlan {
    source: u32,
    target: u32,
    gap: bool,
    /// Connection indices, sorted by target then source node.
    rows: Vec<usize>,
    type_id: Vec<u32>,
    types: Vec<(u32, EdgeTypeKey)>,
}

struct Plan {
    nodes: Vec<NodePlan>,
    edges: Vec<EdgePlan>,
    place: Vec<(u32, u64)>,
    index: HashMap<u64, u32>,
}

fn single_token(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == '"') && s != "NULL" && s != "NONE"
}

/// `e` / `i` for a neuron's transmitter: `exc`/`inh` as such, else the sign of the receptor class the map's
/// rule (or a class of that name) gives; `None` for none or a transmitter with no rule.
fn ei_of(transmitter: Option<&str>, map: &TransmitterMap) -> Option<&'static str> {
    let t = transmitter?.trim();
    let sign = |excitatory: bool| Some(if excitatory { "e" } else { "i" });
    match t.to_ascii_lowercase().as_str() {
        "" => return None,
        "e" | "exc" | "excitatory" => return sign(true),
        "i" | "inh" | "inhibitory" => return sign(false),
        _ => {}
    }
    let c = canonical(t);
    if let Some(rule) = map.rules.iter().find(|r| canonical(&r.transmitter) == c) {
        return map.receptor_index(&rule.receptor).and_then(|k| sign(map.receptors[k].excitatory));
    }
    map.receptor_index(t).and_then(|k| sign(map.receptors[k].excitatory))
}

fn plan(
    c: &Connectome,
    layouts: &[PopulationLayout],
    place: &[(u32, u64)],
    options: &SonataWriteOptions,
) -> Result<Plan, ConnectomeError> {
    let default_model = NodeModel::default();
    let mut nodes = Vec::new();
    let mut next_node_type = 100u64;
    for l in layouts {
        let neurons = &c.neurons[l.range.clone()];
        let csv_model_name = neurons.iter().all(|x| x.cell_type.is_empty() || single_token(&x.cell_type));
        let csv_location = neurons.iter().all(|x| x.region.as_deref().is_none_or(|r| r.is_empty() || single_token(r)));
        let mut ids: HashMap<NodeTypeKey, u64> = HashMap::new();
        let mut types = Vec::new();
        let mut type_id = Vec::with_capacity(neurons.len());
        for (k, x) in neurons.iter().enumerate() {
            let model = options.node_models.get(l.range.start + k).unwrap_or(&default_model).clone();
            let key = NodeTypeKey {
                model,
                ei: ei_of(x.transmitter.as_deref(), &options.transmitters),
                model_name: (csv_model_name && !x.cell_type.is_empty()).then(|| x.cell_type.clone()),
                location: if csv_location { x.region.clone().filter(|r| !r.is_empty()) } else { None },
            };
            let id = *ids.entry(key.clone()).or_insert_with(|| {
                types.push((next_node_type, key));
                next_node_type += 1;
                next_node_type - 1
            });
            type_id.push(id);
        }
        nodes.push(NodePlan { type_id, types, csv_model_name, csv_location });
    }

    let index = c.id_index()?;
    let mut pairs: BTreeMap<(bool, u32, u32), Vec<usize>> = BTreeMap::new();
    for (k, x) in c.connections.iter().enumerate() {
        let gap = x.kind == SynapseKind::Electrical;
        if gap && options.gap_junctions != GapJunctions::Write {
            continue;
        }
        let (sp, tp) = (place[index[&x.pre] as usize].0, place[index[&x.post] as usize].0);
        pairs.entry((gap, sp, tp)).or_default().push(k);
    }
    let mut edges = Vec::new();
    let mut next_edge_type = 100u32;
    for ((gap, source, target), mut rows) in pairs {
        let node = |id: u64| place[index[&id] as usize].1;
        rows.sort_by_key(|&k| (node(c.connections[k].post), node(c.connections[k].pre)));
        let mut ids: HashMap<EdgeTypeKey, u32> = HashMap::new();
        let mut types = Vec::new();
        let mut type_id = Vec::with_capacity(rows.len());
        for &k in &rows {
            let x = &c.connections[k];
            let key = if gap {
                EdgeTypeKey { receptor_class: String::new(), excitatory: true, receptor: None, transmitter: None }
            } else {
                edge_type_key(c, x, k, &index, &options.transmitters)?
            };
            let id = *ids.entry(key.clone()).or_insert_with(|| {
                types.push((next_edge_type, key));
                next_edge_type += 1;
                next_edge_type - 1
            });
            type_id.push(id);
        }
        edges.push(EdgePlan { source, target, gap, rows, type_id, types });
    }
    Ok(Plan { nodes, edges, place: place.to_vec(), index })
}

fn edge_type_key(
    c: &Connectome,
    x: &Connection,
    k: usize,
    index: &HashMap<u64, u32>,
    map: &TransmitterMap,
) -> Result<EdgeTypeKey, ConnectomeError> {
    let pre = &c.neurons[index[&x.pre] as usize];
    let nt = x.transmitter.as_deref().or(pre.transmitter.as_deref());
    let r = map.resolve(x.receptor.as_deref(), nt).map_err(|m| {
        ConnectomeError::Invalid(format!(
            "connection #{k} ({} -> {}): {m}; the SONATA export needs each chemical connection's receptor class to \
             choose its exc/inh synapse model: use a transmitter map that defines it",
            x.pre, x.post
        ))
    })?;
    Ok(EdgeTypeKey {
        receptor_class: map.receptors[r].name.clone(),
        excitatory: map.receptors[r].excitatory,
        receptor: x.receptor.clone(),
        transmitter: x.transmitter.clone(),
    })
}

// ---------------------------------------------------------------------------------------------------
// Writing

struct H5<'a> {
    path: &'a Path,
    compress: bool,
}

impl H5<'_> {
    fn err(&self, what: impl Display, e: impl Display) -> ConnectomeError {
        ConnectomeError::Hdf5 { path: self.path.to_path_buf(), message: format!("{what}: {e}") }
    }

    fn create(&self) -> Result<hdf5::File, ConnectomeError> {
        let f = hdf5::File::create(self.path).map_err(|e| self.err("cannot create the file", e))?;
        f.new_attr::<u32>()
            .create("magic")
            .and_then(|a| a.write_scalar(&MAGIC))
            .map_err(|e| self.err("cannot write attribute magic", e))?;
        f.new_attr::<u32>()
            .shape([2])
            .create("version")
            .and_then(|a| a.write_raw(&VERSION))
            .map_err(|e| self.err("cannot write attribute version", e))?;
        Ok(f)
    }

    fn group(&self, parent: &Group, name: &str) -> Result<Group, ConnectomeError> {
        parent.create_group(name).map_err(|e| self.err(format!("cannot create group {}/{name}", parent.name()), e))
    }

    fn array<T: H5Type>(&self, g: &Group, name: &str, data: &[T], shape: &[usize]) -> Result<(), ConnectomeError> {
        let full = || format!("{}/{name}", g.name().trim_end_matches('/'));
        let mut b = g.new_dataset::<T>();
        if self.compress && data.len() >= COMPRESS_MIN {
            let mut chunk = shape.to_vec();
            chunk[0] = chunk[0].min(CHUNK);
            b = b.chunk(chunk).shuffle().deflate(4);
        }
        let ds = b.shape(shape.to_vec()).create(name).map_err(|e| self.err(format!("cannot create {}", full()), e))?;
        if !data.is_empty() {
            ds.write_raw(data).map_err(|e| self.err(format!("cannot write {}", full()), e))?;
        }
        Ok(())
    }

    fn vec<T: H5Type>(&self, g: &Group, name: &str, data: &[T]) -> Result<(), ConnectomeError> {
        self.array(g, name, data, &[data.len()])
    }

    fn strings<'s>(&self, g: &Group, name: &str, values: impl Iterator<Item = &'s str>) -> Result<(), ConnectomeError> {
        let v: Vec<VarLenUnicode> = values
            .enumerate()
            .map(|(k, s)| {
                s.parse::<VarLenUnicode>().map_err(|_| {
                    self.err(format!("{}/{name}[{k}]", g.name()), format!("{s:?} contains a NUL character"))
                })
            })
            .collect::<Result<_, _>>()?;
        self.vec(g, name, &v)
    }

    fn str_attr(&self, loc: &Location, what: &str, name: &str, value: &str) -> Result<(), ConnectomeError> {
        let v: VarLenUnicode =
            value.parse().map_err(|_| self.err(format!("{what}@{name}"), "the value contains a NUL character"))?;
        loc.new_attr::<VarLenUnicode>()
            .create(name)
            .and_then(|a| a.write_scalar(&v))
            .map_err(|e| self.err(format!("cannot write attribute {what}@{name}"), e))
    }
}

/// A SONATA CSV field: `NULL` for none, quoted (`"` doubled) when it holds spaces or quotes.
fn field(v: Option<&str>) -> String {
    match v {
        None | Some("") => "NULL".into(),
        Some(s) if s.chars().any(|c| c.is_whitespace() || c == '"') => format!("\"{}\"", s.replace('"', "\"\"")),
        Some(s) => s.to_string(),
    }
}

fn write_text(path: &Path, text: &str) -> Result<(), ConnectomeError> {
    std::fs::write(path, text).map_err(|e| ConnectomeError::io(path, e))
}

fn write_all(
    c: &Connectome,
    layouts: &[PopulationLayout],
    plan: &Plan,
    dir: &Path,
    options: &SonataWriteOptions,
) -> Result<(), ConnectomeError> {
    let compress = hdf5::filters::deflate_available();
    let mut node_entries = Vec::new();
    for (l, p) in layouts.iter().zip(&plan.nodes) {
        let h5 = format!("{}_nodes.h5", l.name);
        let csv = format!("{}_node_types.csv", l.name);
        write_nodes(c, l, p, &H5 { path: &dir.join(&h5), compress })?;
        write_node_types(&dir.join(&csv), &l.name, p)?;
        node_entries.push(serde_json::json!({
            "nodes_file": format!("$NETWORK_DIR/{h5}"),
            "node_types_file": format!("$NETWORK_DIR/{csv}"),
        }));
    }
    let mut edge_entries = Vec::new();
    let mut files = HashSet::new();
    for e in &plan.edges {
        let (s, t) = (&layouts[e.source as usize].name, &layouts[e.target as usize].name);
        let suffix = if e.gap { "_gap" } else { "" };
        let stem = format!("{s}_{t}{suffix}");
        let population = format!("{s}_to_{t}{suffix}");
        if !files.insert(stem.clone()) {
            return Err(ConnectomeError::Invalid(format!(
                "SONATA populations: two population pairs both give the file name `{stem}_edges.h5` (population \
                 names that contain `_` can collide this way); rename a population"
            )));
        }
        let h5 = format!("{stem}_edges.h5");
        let csv = format!("{stem}_edge_types.csv");
        write_edges(c, layouts, plan, e, &population, &H5 { path: &dir.join(&h5), compress })?;
        write_edge_types(&dir.join(&csv), &population, e)?;
        edge_entries.push(serde_json::json!({
            "edges_file": format!("$NETWORK_DIR/{h5}"),
            "edge_types_file": format!("$NETWORK_DIR/{csv}"),
        }));
    }
    let config = serde_json::json!({
        "manifest": {"$NETWORK_DIR": "."},
        "components": {},
        "networks": {"nodes": node_entries, "edges": edge_entries},
        "neurotwin": {
            "connectome": c.name,
            "provenance": c.provenance,
            "written_by": format!("neurotwin-connectome {}", env!("CARGO_PKG_VERSION")),
            "transmitter_map": options.transmitters.source,
            "gap_junctions": match options.gap_junctions {
                GapJunctions::Write => "edge populations *_gap with edge type column is_gap_junction = True",
                _ => "not written",
            },
        },
    });
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| ConnectomeError::Invalid(format!("cannot serialise {CONFIG}: {e}")))?;
    write_text(&dir.join(CONFIG), &(text + "\n"))
}

fn write_nodes(c: &Connectome, l: &PopulationLayout, p: &NodePlan, w: &H5) -> Result<(), ConnectomeError> {
    let f = w.create()?;
    let pop = w.group(&w.group(&f, "nodes")?, &l.name)?;
    let neurons = &c.neurons[l.range.clone()];
    let n = neurons.len();
    w.vec(&pop, "node_id", &(0..n as u64).collect::<Vec<_>>())?;
    w.vec(&pop, "node_type_id", &p.type_id)?;
    w.vec(&pop, "node_group_id", &vec![0u32; n])?;
    w.vec(&pop, "node_group_index", &(0..n as u64).collect::<Vec<_>>())?;
    let g = w.group(&pop, "0")?;
    w.strings(&g, "name", neurons.iter().map(|x| x.name.as_str()))?;
    w.strings(&g, "cell_type", neurons.iter().map(|x| x.cell_type.as_str()))?;
    w.strings(&g, "region", neurons.iter().map(|x| x.region.as_deref().unwrap_or("")))?;
    w.strings(&g, "transmitter", neurons.iter().map(|x| x.transmitter.as_deref().unwrap_or("")))?;
    w.vec(&g, "neurotwin_id", &neurons.iter().map(|x| x.id).collect::<Vec<_>>())?;
    if neurons.iter().any(|x| x.position.is_some()) {
        for (axis, name) in ["x", "y", "z"].iter().enumerate() {
            let v: Vec<f32> = neurons.iter().map(|x| x.position.map_or(f32::NAN, |p| p[axis])).collect();
            w.vec(&g, name, &v)?;
        }
    }
    f.close().map_err(|e| w.err("cannot close", e))
}

fn write_node_types(path: &Path, population: &str, p: &NodePlan) -> Result<(), ConnectomeError> {
    let mut header = vec!["node_type_id", "population", "model_type", "model_template", "dynamics_params", "ei"];
    if p.csv_model_name {
        header.push("model_name");
    }
    if p.csv_location {
        header.push("location");
    }
    let mut text = header.join(" ") + "\n";
    for (id, t) in &p.types {
        let mut row = vec![
            id.to_string(),
            field(Some(population)),
            field(Some(&t.model.model_type)),
            field(t.model.model_template.as_deref()),
            field(t.model.dynamics_params.as_deref()),
            field(t.ei),
        ];
        if p.csv_model_name {
            row.push(field(t.model_name.as_deref()));
        }
        if p.csv_location {
            row.push(field(t.location.as_deref()));
        }
        text += &(row.join(" ") + "\n");
    }
    write_text(path, &text)
}

fn write_edge_types(path: &Path, population: &str, e: &EdgePlan) -> Result<(), ConnectomeError> {
    let mut text = String::new();
    if e.gap {
        text += "edge_type_id population model_template dynamics_params is_gap_junction\n";
        for (id, _) in &e.types {
            text += &format!("{id} {} NULL gap_junction.json True\n", field(Some(population)));
        }
    } else {
        text += "edge_type_id population model_template dynamics_params receptor_class receptor transmitter\n";
        for (id, t) in &e.types {
            let model = if t.excitatory { "exc_synapse.json" } else { "inh_synapse.json" };
            text += &format!(
                "{id} {} NULL {model} {} {} {}\n",
                field(Some(population)),
                field(Some(&t.receptor_class)),
                field(t.receptor.as_deref()),
                field(t.transmitter.as_deref())
            );
        }
    }
    write_text(path, &text)
}

/// `node_id_to_ranges` (one row per node) and `range_to_edge_id` (runs of equal `ids`), flattened.
fn index_of(ids: &[u64], n_nodes: usize) -> (Vec<u64>, Vec<u64>) {
    let mut runs: Vec<Vec<[u64; 2]>> = vec![Vec::new(); n_nodes];
    let mut start = 0;
    for k in 1..=ids.len() {
        if k == ids.len() || ids[k] != ids[start] {
            runs[ids[start] as usize].push([start as u64, k as u64]);
            start = k;
        }
    }
    let (mut node_to_ranges, mut range_to_edge) = (Vec::with_capacity(2 * n_nodes), Vec::new());
    for r in runs {
        let first = (range_to_edge.len() / 2) as u64;
        node_to_ranges.extend([first, first + r.len() as u64]);
        range_to_edge.extend(r.into_iter().flatten());
    }
    (node_to_ranges, range_to_edge)
}

fn write_edges(
    c: &Connectome,
    layouts: &[PopulationLayout],
    plan: &Plan,
    e: &EdgePlan,
    population: &str,
    w: &H5,
) -> Result<(), ConnectomeError> {
    let f = w.create()?;
    let g = w.group(&w.group(&f, "edges")?, population)?;
    let node = |id: u64| plan.place[plan.index[&id] as usize].1;
    let conns: Vec<&Connection> = e.rows.iter().map(|&k| &c.connections[k]).collect();
    let src: Vec<u64> = conns.iter().map(|x| node(x.pre)).collect();
    let trg: Vec<u64> = conns.iter().map(|x| node(x.post)).collect();
    let (sp, tp) = (&layouts[e.source as usize], &layouts[e.target as usize]);
    for (name, ids, p) in [("source_node_id", &src, sp), ("target_node_id", &trg, tp)] {
        w.vec(&g, name, ids)?;
        let ds = g.dataset(name).map_err(|e| w.err(format!("/edges/{population}/{name}"), e))?;
        w.str_attr(&ds, &format!("/edges/{population}/{name}"), "node_population", &p.name)?;
    }
    w.vec(&g, "edge_type_id", &e.type_id)?;
    // Groups by which optional values an edge has: bit 0 weight, 1 delay, 2 confidence.
    let pattern = |x: &Connection| {
        x.weight.is_some() as u8 | (x.delay_ms.is_some() as u8) << 1 | (x.confidence.is_some() as u8) << 2
    };
    let mut patterns: Vec<u8> =
        conns.iter().map(|x| pattern(x)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    patterns.sort_unstable();
    let group_of: HashMap<u8, u32> = patterns.iter().enumerate().map(|(k, &p)| (p, k as u32)).collect();
    let mut sizes = vec![0u64; patterns.len()];
    let mut group_id = Vec::with_capacity(conns.len());
    let mut group_index = Vec::with_capacity(conns.len());
    for x in &conns {
        let gid = group_of[&pattern(x)];
        group_id.push(gid);
        group_index.push(sizes[gid as usize]);
        sizes[gid as usize] += 1;
    }
    w.vec(&g, "edge_group_id", &group_id)?;
    w.vec(&g, "edge_group_index", &group_index)?;
    for (gid, &p) in patterns.iter().enumerate() {
        let members: Vec<&Connection> =
            conns.iter().zip(&group_id).filter(|(_, k)| **k == gid as u32).map(|(x, _)| *x).collect();
        let grp = w.group(&g, &gid.to_string())?;
        let counts: Vec<f32> = members.iter().map(|x| x.count).collect();
        if counts.iter().all(|&v| v.fract() == 0.0 && (v as f64) <= u32::MAX as f64) {
            w.vec(&grp, "nsyns", &counts.iter().map(|&v| v as u32).collect::<Vec<_>>())?;
        } else {
            w.vec(&grp, "nsyns", &counts)?;
        }
        if p & 1 != 0 {
            w.vec(&grp, "syn_weight", &members.iter().map(|x| x.weight.unwrap_or(0.0) as f64).collect::<Vec<_>>())?;
        }
        if p & 2 != 0 {
            w.vec(&grp, "delay", &members.iter().map(|x| x.delay_ms.unwrap_or(0.0) as f64).collect::<Vec<_>>())?;
        }
        if p & 4 != 0 {
            w.vec(&grp, "confidence", &members.iter().map(|x| x.confidence.unwrap_or(0.0)).collect::<Vec<_>>())?;
        }
    }
    // Edge ids of the runs of each node; targets are sorted, sources are not.
    let indices = w.group(&g, "indices")?;
    for (name, ids, n_nodes) in [("target_to_source", &trg, tp.range.len()), ("source_to_target", &src, sp.range.len())]
    {
        let ig = w.group(&indices, name)?;
        let (node_to_ranges, range_to_edge) = index_of(ids, n_nodes);
        w.array(&ig, "node_id_to_ranges", &node_to_ranges, &[n_nodes, 2])?;
        // BMTK (1.2) reads the older name `node_id_to_range`: a hard link to the same dataset.
        ig.link_hard("node_id_to_ranges", "node_id_to_range")
            .map_err(|e| w.err(format!("/edges/{population}/indices/{name}: cannot link node_id_to_range"), e))?;
        w.array(&ig, "range_to_edge_id", &range_to_edge, &[range_to_edge.len() / 2, 2])?;
    }
    f.close().map_err(|e| w.err("cannot close", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_groups_runs_per_node() {
        // Edges by source: node 2 has two runs (edges 0-1 and 3), node 0 one (edge 2), node 1 none.
        let (n2r, r2e) = index_of(&[2, 2, 0, 2], 3);
        assert_eq!(n2r, [0, 1, 1, 1, 1, 3]);
        assert_eq!(r2e, [2, 3, 0, 2, 3, 4]);
        let (n2r, r2e) = index_of(&[], 2);
        assert_eq!((n2r, r2e), (vec![0, 0, 0, 0], vec![]));
    }

    #[test]
    fn csv_fields_follow_the_sonata_dialect() {
        assert_eq!(field(None), "NULL");
        assert_eq!(field(Some("")), "NULL");
        assert_eq!(field(Some("VisL4")), "VisL4");
        assert_eq!(field(Some("lateral ganglion")), "\"lateral ganglion\"");
        assert_eq!(field(Some("a\"b")), "\"a\"\"b\"");
    }

    #[test]
    fn ei_follows_the_map() {
        let m = TransmitterMap::celegans();
        assert_eq!(ei_of(Some("acetylcholine"), &m), Some("e"));
        assert_eq!(ei_of(Some("GABA"), &m), Some("i"));
        assert_eq!(ei_of(Some("Betaine"), &m), None);
        assert_eq!(ei_of(Some("inh"), &TransmitterMap::exc_inh()), Some("i"));
        assert_eq!(ei_of(None, &m), None);
    }
}
