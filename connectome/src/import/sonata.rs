//! SONATA circuits in (Dai et al. 2020, PLoS Comput Biol 16:e1007696; the format of BMTK, NEST and Arbor):
//! `circuit_config.json` (with its `manifest` of `$VARIABLES`) → node populations (`/nodes/<population>`:
//! `node_type_id`, optional `node_id`, `node_group_id`, `node_group_index`, plus the node-types CSV) and
//! edge populations (`/edges/<population>`: `source_node_id` / `target_node_id` with their
//! `node_population` attributes, `edge_type_id`, `edge_group_id`, `edge_group_index`, group datasets such
//! as `syn_weight`, `delay`, `nsyns`, plus the edge-types CSV) → a [`Connectome`].
//!
//! Mapping: every node becomes a neuron named `<population>:<node_id>`, `cell_type` = the node type's
//! `model_name` (else `pop_name`, else the node type id), `region` = `location`, `transmitter` = `exc` /
//! `inh` from the `ei` column; per-node attributes of the node group override these (SONATA: group datasets
//! take precedence over node-types columns): `name`, `cell_type`/`model_name`, `region`/`location`,
//! `transmitter` (else `ei`) and the position `x`, `y`, `z`. Every edge row becomes a connection with
//! `count` = `nsyns` (1 when absent), `weight` = `syn_weight` (group dataset, else the edge type's column),
//! `delay_ms` = `delay`, `confidence` = `confidence`; edge types with `is_gap_junction = True` (BMTK's column)
//! give electrical connections; otherwise chemical ones whose `receptor` / `transmitter` are the edge type's
//! exact columns when it has them (files written by [`crate::export::sonata`], marked by a `receptor_class`
//! column), else `receptor` = `inh` when the edge type's `dynamics_params` names an inhibitory synapse
//! (contains `inh`), `exc` otherwise (the `exc_inh` transmitter map). Types CSVs are split on whitespace with
//! `"…"` quoting. Virtual populations (`model_type = virtual`, the inputs of a SONATA simulation) are kept and
//! listed in [`SonataCircuit::populations`].
//!
//! Errors name the file, the dataset or CSV line and the fix; nothing panics on a malformed circuit.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use neurotwin_io::h5::H5File;

use crate::error::ConnectomeError;
use crate::network::{Connection, Connectome, Neuron, SynapseKind};
use crate::share::ReceptorUse;

/// One node population as read.
#[derive(Clone, Debug, PartialEq)]
pub struct NodePopulation {
    pub name: String,
    /// Index of the population's first neuron in [`Connectome::neurons`]; its nodes follow in node-id order.
    pub first: usize,
    pub count: usize,
    /// All nodes have `model_type = virtual` (input spike sources).
    pub is_virtual: bool,
    pub file: PathBuf,
}

/// The model description of one node type (a row of a node-types CSV), what a simulator needs to build the
/// node's cell: `model_type` (`virtual`, `point_process`, `point_neuron`, `biophysical`, …), `model_template`
/// (e.g. `nrn:IntFire1`, `nest:iaf_psc_delta`) and `dynamics_params` (a JSON file name, resolved against the
/// circuit's `point_neuron_models_dir` by the simulator).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SonataNodeType {
    pub population: String,
    pub node_type_id: u64,
    pub model_type: Option<String>,
    pub model_template: Option<String>,
    pub dynamics_params: Option<String>,
    pub model_name: Option<String>,
    /// The node-types CSV the row came from (for error messages).
    pub types_file: PathBuf,
}

/// A SONATA circuit as a connectome plus its populations.
#[derive(Clone, Debug, PartialEq)]
pub struct SonataCircuit {
    pub connectome: Connectome,
    pub populations: Vec<NodePopulation>,
    /// Distinct (population, node type) pairs in order of first appearance.
    pub node_types: Vec<SonataNodeType>,
    /// Per neuron (index as in [`Connectome::neurons`]): its entry in [`SonataCircuit::node_types`].
    pub neuron_node_type: Vec<u32>,
    /// The config's `components` (e.g. `point_neuron_models_dir`, `synaptic_models_dir`) with the manifest
    /// expanded; the directories need not exist.
    pub components: HashMap<String, PathBuf>,
    /// The `circuit_config.json` read.
    pub config: PathBuf,
    /// Per connection (as [`Connectome::connections`]): whether its edge group (or edge type) gave `nsyns`.
    /// Simulators read weights differently without it (BioNet: one row per synapse, `syn_weight` as given).
    pub nsyns_given: Vec<bool>,
}

impl SonataCircuit {
    /// Neuron index of node `node_id` of population `population`.
    pub fn neuron_index(&self, population: &str, node_id: u64) -> Option<usize> {
        let p = self.populations.iter().find(|p| p.name == population)?;
        (node_id < p.count as u64).then(|| p.first + node_id as usize)
    }
}

fn fmt_err(path: &Path, message: impl Into<String>) -> ConnectomeError {
    ConnectomeError::format(path, message)
}

/// Opens a SONATA HDF5 file with the shared reader ([`neurotwin_io::h5`]): located errors, declared sizes
/// checked against the file and the memory limit before anything is read.
fn open_h5(file: &Path) -> Result<H5File, ConnectomeError> {
    Ok(H5File::open(file)?.with_budget_fix("read a smaller circuit"))
}

/// A SONATA JSON configuration (circuit or simulation config) with its `manifest` of `$VARIABLES` resolved:
/// [`SonataConfig::resolve`] expands variables and makes relative paths relative to the config's folder.
#[derive(Clone, Debug)]
pub struct SonataConfig {
    pub path: PathBuf,
    pub json: serde_json::Value,
    manifest: HashMap<String, String>,
    base: PathBuf,
}

impl SonataConfig {
    pub fn read(path: &Path) -> Result<Self, ConnectomeError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConnectomeError::io(path, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ConnectomeError::parse(path, e.line() as u64, format!("not valid JSON: {e}")))?;
        // Absolute, so that manifest values (already joined to the base) are not joined twice by `expand`.
        let abs = std::path::absolute(path).map_err(|e| ConnectomeError::io(path, e))?;
        let base = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        let manifest = manifest(path, &json, &base)?;
        Ok(Self { path: path.to_path_buf(), json, manifest, base })
    }

    /// `s` with manifest variables expanded, relative to the config's folder unless absolute; a reference to
    /// a variable the manifest does not define is an error naming the config.
    pub fn resolve(&self, s: &str) -> Result<PathBuf, ConnectomeError> {
        expand(&self.path, s, &self.manifest, &self.base)
    }

    /// The string at `key` of `section` (or of the top level when `section` is `None`), resolved as a path.
    pub fn path_at(&self, section: Option<&str>, key: &str) -> Result<Option<PathBuf>, ConnectomeError> {
        let v = match section {
            Some(s) => self.json.get(s).and_then(|x| x.get(key)),
            None => self.json.get(key),
        };
        v.and_then(|v| v.as_str()).map(|s| self.resolve(s)).transpose()
    }
}

/// Reads the circuit described by `circuit_config.json` at `config`.
pub fn read_sonata(config: &Path) -> Result<SonataCircuit, ConnectomeError> {
    Ok(read_sonata_with(config, None)?.0)
}

/// What one rank of a split run reads of a SONATA circuit ([`read_sonata_share`]): the nodes, and the edges onto
/// its targets.
pub struct SonataShare {
    /// Every node; only the chemical edges onto `targets` (and every gap junction, which a split run refuses).
    pub circuit: SonataCircuit,
    /// The neurons whose incoming synapses this rank holds: `share`'s blocks, balanced on the chemical edges onto
    /// each block of 64 neurons.
    pub targets: std::ops::Range<u32>,
    /// Each kept edge's number in the whole circuit (edges files and populations in order).
    pub edge_numbers: Vec<u64>,
    /// Every distinct (transmitter, receptor) of the whole circuit's chemical edges (all weighted: SONATA edges
    /// carry `syn_weight`).
    pub receptor_uses: Vec<ReceptorUse>,
}

/// Reads the nodes of a circuit and only the edges onto one rank's targets (`share`, balanced on the chemical
/// edges onto each block of 64 neurons): the edges files are read twice, first only their target ids and edge
/// types (the balance and the receptor channels of the whole circuit), then their edges, of which the rank keeps
/// its own, so that it never holds every edge's `Connection`.
pub fn read_sonata_share(config: &Path, share: &crate::share::Share) -> Result<SonataShare, ConnectomeError> {
    let (circuit, share) = read_sonata_with(config, Some(share))?;
    let (targets, edge_numbers, receptor_uses) = share.expect("a share was asked for");
    Ok(SonataShare { circuit, targets, edge_numbers, receptor_uses })
}

type ShareRead = (std::ops::Range<u32>, Vec<u64>, Vec<ReceptorUse>);

fn read_sonata_with(
    config: &Path,
    share: Option<&crate::share::Share>,
) -> Result<(SonataCircuit, Option<ShareRead>), ConnectomeError> {
    let cfg = SonataConfig::read(config)?;
    let json = &cfg.json;
    let (manifest, base) = (&cfg.manifest, &cfg.base);
    let resolve = |v: &serde_json::Value, key: &str| -> Result<PathBuf, ConnectomeError> {
        let s = v
            .get(key)
            .and_then(|x| x.as_str())
            .ok_or_else(|| fmt_err(config, format!("a `networks` entry has no string `{key}`; give the file path")))?;
        expand(config, s, manifest, base)
    };
    let networks = json.get("networks").ok_or_else(|| fmt_err(config, "no `networks` section"))?;
    let list = |k: &str| networks.get(k).and_then(|x| x.as_array()).cloned().unwrap_or_default();

    let mut connectome = Connectome {
        name: stem(config),
        provenance: vec![format!("SONATA {}", config.display())],
        ..Default::default()
    };
    let mut populations = Vec::new();
    let mut node_types = NodeTypeIndex::default();
    for n in list("nodes") {
        let file = resolve(&n, "nodes_file")?;
        let types = NodeTypes::read(&resolve(&n, "node_types_file")?)?;
        read_nodes(&file, &types, &mut connectome, &mut populations, &mut node_types)?;
    }
    if populations.is_empty() {
        return Err(fmt_err(config, "`networks.nodes` lists no node population"));
    }
    let index: HashMap<&str, &NodePopulation> = populations.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut edges = Vec::new();
    for e in list("edges") {
        let file = resolve(&e, "edges_file")?;
        let types = EdgeTypes::read(&resolve(&e, "edge_types_file")?)?;
        edges.push((file, types));
    }
    // A share: the balance and the receptor uses of the whole circuit first.
    let mut uses = Vec::new();
    let keep = match share {
        None => None,
        Some(share) => {
            let n = connectome.neurons.len() as u32;
            let mut cost = vec![0.0f64; n.div_ceil(crate::share::BLOCK) as usize];
            let mut number = 0;
            for (file, types) in &edges {
                edge_costs(file, types, &index, &connectome.neurons, &mut number, &mut cost, &mut uses)?;
            }
            Some(share.targets_by_cost(n, &cost))
        }
    };
    let mut connections = Vec::new();
    let mut nsyns_given = Vec::new();
    let (mut number, mut numbers) = (0u64, Vec::new());
    for (file, types) in &edges {
        read_edges(file, types, &index, keep.as_ref(), &mut number, &mut connections, &mut numbers, &mut nsyns_given)?;
    }
    connectome.connections = connections;
    let mut components = HashMap::new();
    if let Some(obj) = json.get("components").and_then(|x| x.as_object()) {
        for (k, v) in obj {
            let s = v.as_str().ok_or_else(|| fmt_err(config, format!("components `{k}` is not a string path")))?;
            components.insert(k.clone(), expand(config, s, manifest, base)?);
        }
    }
    let circuit = SonataCircuit {
        connectome,
        populations,
        node_types: node_types.types,
        neuron_node_type: node_types.of_neuron,
        components,
        config: config.to_path_buf(),
        nsyns_given,
    };
    Ok((circuit, keep.map(|k| (k, numbers, uses))))
}

/// Distinct node types met while reading the nodes files, and each neuron's entry.
#[derive(Default)]
struct NodeTypeIndex {
    types: Vec<SonataNodeType>,
    index: HashMap<(String, u64), u32>,
    of_neuron: Vec<u32>,
}

impl NodeTypeIndex {
    fn push(&mut self, population: &str, t: u64, csv: &TypesCsv) {
        let key = (population.to_string(), t);
        let k = *self.index.entry(key).or_insert_with(|| {
            let get = |c: &str| csv.get(t, c).map(str::to_string);
            self.types.push(SonataNodeType {
                population: population.to_string(),
                node_type_id: t,
                model_type: get("model_type"),
                model_template: get("model_template"),
                dynamics_params: get("dynamics_params"),
                model_name: get("model_name"),
                types_file: csv.path.clone(),
            });
            self.types.len() as u32 - 1
        });
        self.of_neuron.push(k);
    }
}

fn stem(p: &Path) -> String {
    p.parent().and_then(|d| d.file_name()).map_or("sonata".into(), |n| n.to_string_lossy().into_owned())
}

/// The `manifest` variables (`"$NAME": "value"`) with nested references resolved, relative paths joined to
/// the config's folder. Names are whole tokens (`$BASE` never matches the start of `$BASE_DIR`); variables are
/// resolved in name order, each after the variables its value refers to, so the result does not depend on
/// the JSON or hash-map order; a variable that refers to itself (directly or through others) or to an
/// undefined variable is an error naming both.
fn manifest(config: &Path, json: &serde_json::Value, base: &Path) -> Result<HashMap<String, String>, ConnectomeError> {
    let mut raw: BTreeMap<String, String> = BTreeMap::new();
    if let Some(obj) = json.get("manifest").and_then(|x| x.as_object()) {
        for (k, v) in obj {
            let s = v.as_str().ok_or_else(|| fmt_err(config, format!("manifest `{k}` is not a string")))?;
            let name = k.strip_prefix('$').filter(|n| is_variable_name(n)).ok_or_else(|| {
                fmt_err(
                    config,
                    format!("manifest key `{k}` is not a variable name: write it as `$NAME` (letters, digits, _)"),
                )
            })?;
            raw.insert(name.to_string(), s.to_string());
        }
    }
    let mut done: BTreeMap<String, String> = BTreeMap::new();
    for name in raw.keys() {
        resolve_variable(config, name, &raw, &mut done, &mut Vec::new())?;
    }
    Ok(done.into_iter().map(|(k, v)| (k, base.join(v).to_string_lossy().into_owned())).collect())
}

fn is_variable_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Resolves manifest variable `name` into `done` (depth first; `stack` holds the variables being resolved).
fn resolve_variable(
    config: &Path,
    name: &str,
    raw: &BTreeMap<String, String>,
    done: &mut BTreeMap<String, String>,
    stack: &mut Vec<String>,
) -> Result<(), ConnectomeError> {
    if done.contains_key(name) {
        return Ok(());
    }
    if let Some(k) = stack.iter().position(|s| s == name) {
        let chain: Vec<String> = stack[k..].iter().chain([&name.to_string()]).map(|s| format!("${s}")).collect();
        return Err(fmt_err(
            config,
            format!("manifest variables refer to each other in a cycle: {}", chain.join(" -> ")),
        ));
    }
    stack.push(name.to_string());
    let value = &raw[name];
    for r in variable_refs(value).map_err(|m| fmt_err(config, format!("manifest `${name}` = `{value}`: {m}")))? {
        if !raw.contains_key(&r) {
            return Err(fmt_err(
                config,
                format!("manifest `${name}` = `{value}` refers to `${r}`, which the manifest does not define"),
            ));
        }
        resolve_variable(config, &r, raw, done, stack)?;
    }
    stack.pop();
    let expanded = substitute(value, &|v: &str| done.get(v).cloned()).map_err(|m| fmt_err(config, m))?;
    done.insert(name.to_string(), expanded);
    Ok(())
}

/// One piece of a string with `$NAME` / `${NAME}` references.
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Splits `s` into text and whole-token variable references: `$` followed by the longest run of letters,
/// digits and `_`, or `${NAME}`. A `$` not followed by a name is an error.
fn pieces(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        if i > 0 {
            out.push(Piece::Text(&rest[..i]));
        }
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').ok_or_else(|| format!("`${{` without a closing `}}` in `{s}`"))?;
            (&braced[..end], end + 2)
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        if !is_variable_name(name) {
            return Err(format!("`$` without a variable name in `{s}` (write `$NAME` or `${{NAME}}`)"));
        }
        out.push(Piece::Var(name));
        rest = &after[len..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// The variables `s` refers to, in order.
fn variable_refs(s: &str) -> Result<Vec<String>, String> {
    Ok(pieces(s)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(v) => Some(v.to_string()),
            Piece::Text(_) => None,
        })
        .collect())
}

/// `s` with every `$NAME` replaced by `lookup(NAME)`; an undefined name is an error.
fn substitute(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    for p in pieces(s)? {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(v) => out.push_str(
                &lookup(v).ok_or_else(|| format!("`{s}` refers to `${v}`, which the manifest does not define"))?,
            ),
        }
    }
    Ok(out)
}

/// `s` with manifest variables expanded (whole names, see [`manifest`]), relative to `base` unless absolute.
fn expand(config: &Path, s: &str, manifest: &HashMap<String, String>, base: &Path) -> Result<PathBuf, ConnectomeError> {
    let out = substitute(s, &|v: &str| manifest.get(v).cloned()).map_err(|m| fmt_err(config, m))?;
    let p = PathBuf::from(out);
    Ok(if p.is_absolute() { p } else { base.join(p) })
}

/// Fields of a types-CSV line: separated by whitespace, `"…"` quoting a field that contains spaces (the SONATA
/// CSV dialect; `""` inside quotes is a literal quote).
fn split_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let mut field = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        break;
                    }
                } else {
                    field.push(c);
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        out.push(field);
    }
    out
}

/// A whitespace-separated SONATA types CSV: header + rows, by type id.
struct TypesCsv {
    path: PathBuf,
    columns: Vec<String>,
    rows: HashMap<u64, Vec<String>>,
}

impl TypesCsv {
    fn read(path: &Path, id_column: &str) -> Result<Self, ConnectomeError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConnectomeError::io(path, e))?;
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| fmt_err(path, "empty types file: expected a header line"))?;
        let columns: Vec<String> = split_fields(header);
        let id = columns
            .iter()
            .position(|c| c == id_column)
            .ok_or_else(|| ConnectomeError::parse(path, 1, format!("no `{id_column}` column")))?;
        let mut rows = HashMap::new();
        for (k, line) in lines {
            let f: Vec<String> = split_fields(line);
            if f.len() != columns.len() {
                return Err(ConnectomeError::parse(
                    path,
                    k as u64 + 1,
                    format!("{} fields, the header has {} (fields are separated by spaces)", f.len(), columns.len()),
                ));
            }
            let t: u64 = f[id].parse().map_err(|_| {
                ConnectomeError::parse(path, k as u64 + 1, format!("`{id_column}` `{}` is not an integer", f[id]))
            })?;
            rows.insert(t, f);
        }
        Ok(Self { path: path.to_path_buf(), columns, rows })
    }

    fn get(&self, t: u64, column: &str) -> Option<&str> {
        let c = self.columns.iter().position(|x| x == column)?;
        self.rows.get(&t).map(|r| r[c].as_str()).filter(|v| *v != "NULL" && *v != "NONE")
    }
}

struct NodeTypes(TypesCsv);

impl NodeTypes {
    fn read(path: &Path) -> Result<Self, ConnectomeError> {
        TypesCsv::read(path, "node_type_id").map(Self)
    }
}

struct EdgeTypes(TypesCsv);

impl EdgeTypes {
    fn read(path: &Path) -> Result<Self, ConnectomeError> {
        TypesCsv::read(path, "edge_type_id").map(Self)
    }
}

/// Integers of dataset `what/name` (any integer type; converted to u64).
fn read_u64(h: &H5File, what: &str, name: &str) -> Result<Vec<u64>, ConnectomeError> {
    Ok(h.read_vec::<u64>(&format!("{what}/{name}"))?)
}

fn read_nodes(
    file: &Path,
    types: &NodeTypes,
    connectome: &mut Connectome,
    populations: &mut Vec<NodePopulation>,
    node_types: &mut NodeTypeIndex,
) -> Result<(), ConnectomeError> {
    let h = open_h5(file)?;
    if !h.exists("/nodes") {
        return Err(fmt_err(file, "no group `/nodes`: not a SONATA nodes file"));
    }
    let names = h.members(&h.group("/nodes")?)?;
    if names.is_empty() {
        return Err(fmt_err(file, "`/nodes` holds no population"));
    }
    for pop in names {
        let what = format!("/nodes/{pop}");
        let g = h.group(&what)?;
        let type_id = read_u64(&h, &what, "node_type_id")?;
        let n = type_id.len();
        let node_id = if g.link_exists("node_id") { read_u64(&h, &what, "node_id")? } else { (0..n as u64).collect() };
        if node_id.len() != n {
            return Err(fmt_err(file, format!("{what}: {} node_id for {n} node_type_id", node_id.len())));
        }
        // Nodes are stored by id; SONATA ids are 0..n within a population.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&k| node_id[k]);
        if order.iter().enumerate().any(|(i, &k)| node_id[k] != i as u64) {
            return Err(fmt_err(file, format!("{what}/node_id must be 0..{n} (each id once)")));
        }
        let first = connectome.neurons.len();
        let mut all_virtual = n > 0;
        let attrs = NodeAttributes::read(&h, &g, n, &what)?;
        for &k in &order {
            let t = type_id[k];
            if !types.0.rows.contains_key(&t) {
                return Err(fmt_err(
                    file,
                    format!(
                        "{what}: node {} has node_type_id {t}, which {} does not define",
                        node_id[k],
                        types.0.path.display()
                    ),
                ));
            }
            let get = |c: &str| types.0.get(t, c).map(str::to_string);
            all_virtual &= get("model_type").as_deref() == Some("virtual");
            let mut neuron = Neuron::new(connectome.neurons.len() as u64, format!("{pop}:{}", node_id[k]));
            neuron.cell_type = get("model_name").or_else(|| get("pop_name")).unwrap_or_else(|| t.to_string());
            neuron.region = get("location");
            neuron.transmitter = match get("ei").as_deref() {
                Some("e") => Some("exc".into()),
                Some("i") => Some("inh".into()),
                _ => None,
            };
            attrs.apply(k, &mut neuron);
            connectome.neurons.push(neuron);
            node_types.push(&pop, t, &types.0);
        }
        populations.push(NodePopulation {
            name: pop,
            first,
            count: n,
            is_virtual: all_virtual,
            file: file.to_path_buf(),
        });
    }
    Ok(())
}

/// Per-node attributes of the node groups that override the node types (SONATA: group datasets take
/// precedence over node-types columns): `name`, `cell_type` (else `model_name`), `region` (else `location`),
/// `transmitter` (the exact transmitter; else `ei` gives `exc`/`inh`) as strings (empty = none), and `x`, `y`,
/// `z` (NaN = none).
struct NodeAttributes {
    /// Per node (stored order): group and index within it.
    group: Vec<u64>,
    index: Vec<u64>,
    groups: HashMap<u64, GroupAttributes>,
}

#[derive(Default)]
struct GroupAttributes {
    strings: HashMap<&'static str, Vec<String>>,
    xyz: Option<[Vec<f64>; 3]>,
}

/// The strings of dataset `full`, if it exists: variable-length (bmtk, h5py's `str`) or fixed-length (h5py's
/// `bytes`) strings. Variable-length strings are read through the file's global heap, which libhdf5 follows
/// unchecked: a damaged SONATA file can crash libhdf5 there (see [`neurotwin_io::h5`]).
fn read_strings(h: &H5File, full: &str) -> Result<Option<Vec<String>>, ConnectomeError> {
    if !h.exists(full) {
        return Ok(None);
    }
    Ok(Some(h.read_string_list(full)?))
}

impl NodeAttributes {
    fn read(h: &H5File, g: &hdf5::Group, n: usize, what: &str) -> Result<Self, ConnectomeError> {
        let file = h.path();
        let (group, index) = if g.link_exists("node_group_id") {
            (read_u64(h, what, "node_group_id")?, read_u64(h, what, "node_group_index")?)
        } else {
            (vec![0; n], (0..n as u64).collect())
        };
        if group.len() != n || index.len() != n {
            return Err(fmt_err(file, format!("{what}: node_group_id / node_group_index must have {n} entries")));
        }
        let mut groups = HashMap::new();
        for &gid in group.iter().collect::<std::collections::BTreeSet<_>>() {
            let mut ga = GroupAttributes::default();
            let gpath = format!("{what}/{gid}");
            if h.exists(&gpath) {
                for col in ["name", "cell_type", "model_name", "region", "location", "transmitter", "ei"] {
                    if let Some(v) = read_strings(h, &format!("{gpath}/{col}"))? {
                        ga.strings.insert(col, v);
                    }
                }
                if ["x", "y", "z"].iter().all(|c| h.exists(&format!("{gpath}/{c}"))) {
                    let read = |c: &str| h.read_vec::<f64>(&format!("{gpath}/{c}"));
                    ga.xyz = Some([read("x")?, read("y")?, read("z")?]);
                }
            }
            groups.insert(gid, ga);
        }
        for k in 0..n {
            let ga = &groups[&group[k]];
            let rows = ga.strings.values().map(Vec::len).chain(ga.xyz.iter().map(|x| x[0].len())).min();
            if rows.is_some_and(|r| index[k] as usize >= r) {
                return Err(fmt_err(
                    file,
                    format!("{what}: node {k} has node_group_index {} beyond group {}'s datasets", index[k], group[k]),
                ));
            }
        }
        Ok(Self { group, index, groups })
    }

    fn apply(&self, k: usize, neuron: &mut Neuron) {
        let ga = &self.groups[&self.group[k]];
        let i = self.index[k] as usize;
        let get = |c: &str| ga.strings.get(c).map(|v| v[i].clone());
        let some = |s: String| (!s.is_empty()).then_some(s);
        if let Some(x) = get("name").and_then(some) {
            neuron.name = x;
        }
        if let Some(x) = get("cell_type").or_else(|| get("model_name")) {
            neuron.cell_type = x;
        }
        if let Some(x) = get("region").or_else(|| get("location")) {
            neuron.region = some(x);
        }
        if let Some(x) = get("transmitter") {
            neuron.transmitter = some(x);
        } else if let Some(ei) = get("ei") {
            neuron.transmitter = match ei.as_str() {
                "e" => Some("exc".into()),
                "i" => Some("inh".into()),
                _ => None,
            };
        }
        if let Some([x, y, z]) = &ga.xyz {
            let p = [x[i] as f32, y[i] as f32, z[i] as f32];
            neuron.position = (!p.iter().any(|v| v.is_nan())).then_some(p);
        }
    }
}

fn population_attr(h: &H5File, ds: &hdf5::Dataset, what: &str) -> Result<String, ConnectomeError> {
    if !h.has_attr(ds, "node_population") {
        return Err(fmt_err(h.path(), format!("{what} has no `node_population` attribute (which node population?)")));
    }
    Ok(h.attr_string(ds, "node_population")?)
}

/// Whether edge type `et` is a gap junction, and its receptor and transmitter. Files written by neurotwin carry
/// the exact receptor and transmitter (`receptor_class` marks them); otherwise the synaptic model's name gives
/// exc / inh.
fn edge_type_synapse(types: &EdgeTypes, et: u64) -> (bool, Option<String>, Option<String>) {
    if is_gap(types, et) {
        (true, None, None)
    } else if types.0.columns.iter().any(|c| c == "receptor_class") {
        (false, types.0.get(et, "receptor").map(str::to_string), types.0.get(et, "transmitter").map(str::to_string))
    } else {
        let inhibitory = types.0.get(et, "dynamics_params").is_some_and(|d| d.to_ascii_lowercase().contains("inh"));
        (false, Some(if inhibitory { "inh" } else { "exc" }.to_string()), None)
    }
}

/// Opens a SONATA edges file and checks it has `/edges`.
fn open_edges(file: &Path) -> Result<H5File, ConnectomeError> {
    let h = open_h5(file)?;
    if !h.exists("/edges") {
        return Err(fmt_err(file, "no group `/edges`: not a SONATA edges file"));
    }
    Ok(h)
}

/// One edge population's source, target and type ids and its node populations, every id checked in range.
struct EdgeIds<'p> {
    src: Vec<u64>,
    trg: Vec<u64>,
    etype: Vec<u64>,
    sp: &'p NodePopulation,
    tp: &'p NodePopulation,
}

fn edge_ids<'p>(
    h: &H5File,
    file: &Path,
    what: &str,
    pops: &HashMap<&str, &'p NodePopulation>,
) -> Result<EdgeIds<'p>, ConnectomeError> {
    let src = read_u64(h, what, "source_node_id")?;
    let trg = read_u64(h, what, "target_node_id")?;
    let etype = read_u64(h, what, "edge_type_id")?;
    let n = src.len();
    if trg.len() != n || etype.len() != n {
        return Err(fmt_err(file, format!("{what}: source_node_id, target_node_id and edge_type_id differ in length")));
    }
    let population = |name: &str| -> Result<&'p NodePopulation, ConnectomeError> {
        let ds = h.dataset(&format!("{what}/{name}"))?;
        let p = population_attr(h, &ds, &format!("{what}/{name}"))?;
        pops.get(p.as_str()).copied().ok_or_else(|| {
            fmt_err(
                file,
                format!("{what}/{name} refers to node population `{p}`, which no nodes file of the circuit defines"),
            )
        })
    };
    let (sp, tp) = (population("source_node_id")?, population("target_node_id")?);
    if let Some(k) = (0..n).find(|&k| src[k] >= sp.count as u64 || trg[k] >= tp.count as u64) {
        return Err(fmt_err(
            file,
            format!(
                "{what}: edge {k} connects node {} of `{}` ({} nodes) to node {} of `{}` ({} nodes): id out of range",
                src[k], sp.name, sp.count, trg[k], tp.name, tp.count
            ),
        ));
    }
    Ok(EdgeIds { src, trg, etype, sp, tp })
}

/// Whether edge type `et` is a gap junction.
fn is_gap(types: &EdgeTypes, et: u64) -> bool {
    types.0.get(et, "is_gap_junction").is_some_and(|v| matches!(v, "True" | "true" | "1"))
}

/// The edges of one edges file (`number`: edges of the circuit's earlier files, advanced past this file's): every
/// edge, or with `keep` only the chemical edges onto neurons in `keep` and every gap junction; `numbers` gets each
/// pushed edge's number in the circuit.
#[allow(clippy::too_many_arguments)]
fn read_edges(
    file: &Path,
    types: &EdgeTypes,
    pops: &HashMap<&str, &NodePopulation>,
    keep: Option<&std::ops::Range<u32>>,
    number: &mut u64,
    out: &mut Vec<Connection>,
    numbers: &mut Vec<u64>,
    nsyns_given: &mut Vec<bool>,
) -> Result<(), ConnectomeError> {
    let h = open_edges(file)?;
    for pop in h.members(&h.group("/edges")?)? {
        let what = format!("/edges/{pop}");
        let g = h.group(&what)?;
        let EdgeIds { src, trg, etype, sp, tp } = edge_ids(&h, file, &what, pops)?;
        let n = src.len();
        let (group_id, group_index) = if g.link_exists("edge_group_id") {
            (read_u64(&h, &what, "edge_group_id")?, read_u64(&h, &what, "edge_group_index")?)
        } else {
            (vec![0; n], (0..n as u64).collect())
        };
        if group_id.len() != n || group_index.len() != n {
            return Err(fmt_err(file, format!("{what}: edge_group_id / edge_group_index must have {n} entries")));
        }
        // Group datasets by group id: syn_weight, delay, nsyns (optional).
        let mut groups: HashMap<u64, HashMap<&str, Vec<f64>>> = HashMap::new();
        for &gid in group_id.iter().collect::<std::collections::BTreeSet<_>>() {
            let mut cols = HashMap::new();
            for col in ["syn_weight", "delay", "nsyns", "confidence"] {
                let full = format!("{what}/{gid}/{col}");
                if h.exists(&full) {
                    cols.insert(col, h.read_vec::<f64>(&full)?);
                }
            }
            groups.insert(gid, cols);
        }
        for k in 0..n {
            let (s, t) = (src[k], trg[k]);
            let et = etype[k];
            if !types.0.rows.contains_key(&et) {
                return Err(fmt_err(
                    file,
                    format!("{what}: edge {k} has edge_type_id {et}, which {} does not define", types.0.path.display()),
                ));
            }
            if let Some(keep) = keep
                && !keep.contains(&((tp.first + t as usize) as u32))
                && !is_gap(types, et)
            {
                continue;
            }
            let cols = &groups[&group_id[k]];
            let gi = group_index[k] as usize;
            let col = |name: &str| -> Result<Option<f64>, ConnectomeError> {
                match cols.get(name) {
                    Some(v) => v.get(gi).copied().map(Some).ok_or_else(|| {
                        fmt_err(
                            file,
                            format!(
                                "{what}/{}/{name}: edge {k} has edge_group_index {gi} beyond its {} rows",
                                group_id[k],
                                v.len()
                            ),
                        )
                    }),
                    None => Ok(types.0.get(et, name).and_then(|x| x.parse().ok())),
                }
            };
            let weight = col("syn_weight")?;
            let delay = col("delay")?;
            let nsyns = col("nsyns")?;
            nsyns_given.push(nsyns.is_some());
            let count = nsyns.unwrap_or(1.0);
            for (name, v) in [("syn_weight", weight), ("delay", delay), ("nsyns", Some(count))] {
                if let Some(x) = v
                    && !x.is_finite()
                {
                    return Err(fmt_err(file, format!("{what}: edge {k}: {name} = {x} is not finite")));
                }
            }
            let confidence = col("confidence")?;
            let (gap, receptor, transmitter) = edge_type_synapse(types, et);
            if keep.is_some() {
                numbers.push(*number + k as u64);
            }
            out.push(Connection {
                pre: (sp.first + s as usize) as u64,
                post: (tp.first + t as usize) as u64,
                kind: if gap { SynapseKind::Electrical } else { SynapseKind::Chemical },
                count: count as f32,
                weight: weight.map(|w| w as f32),
                transmitter,
                receptor,
                delay_ms: delay.map(|d| d as f32),
                confidence: confidence.map(|c| c as f32),
            });
        }
        *number += n as u64;
    }
    Ok(())
}

/// The targets of every edge of one edges file: chemical edges per block of 64 target neurons (`cost`), and the
/// receptor uses (`uses`: each distinct (transmitter, receptor) of the chemical edges, the transmitter being the
/// edge type's or else the presynaptic neuron's, as the compiler takes it; `number` as in [`read_edges`]).
fn edge_costs(
    file: &Path,
    types: &EdgeTypes,
    pops: &HashMap<&str, &NodePopulation>,
    neurons: &[Neuron],
    number: &mut u64,
    cost: &mut [f64],
    uses: &mut Vec<ReceptorUse>,
) -> Result<(), ConnectomeError> {
    let h = open_edges(file)?;
    for pop in h.members(&h.group("/edges")?)? {
        let what = format!("/edges/{pop}");
        let EdgeIds { src, trg, etype, sp, tp } = edge_ids(&h, file, &what, pops)?;
        let n = trg.len();
        // Edge types met, and with a transmitter from the presynaptic neuron, the neurons' transmitters met.
        let mut seen: std::collections::HashSet<(u64, Option<&str>)> = std::collections::HashSet::new();
        for k in 0..n {
            let (s, t) = (src[k], trg[k]);
            let et = etype[k];
            if is_gap(types, et) {
                continue;
            }
            let post = tp.first + t as usize;
            cost[post / crate::share::BLOCK as usize] += 1.0;
            let pre = sp.first + s as usize;
            let neuron_nt = neurons[pre].transmitter.as_deref();
            if seen.contains(&(et, None)) || seen.contains(&(et, neuron_nt)) {
                continue;
            }
            let (_, receptor, transmitter) = edge_type_synapse(types, et);
            // The neuron's transmitter matters only where the edge type gives neither receptor nor transmitter.
            let own = receptor.is_some() || transmitter.is_some();
            seen.insert((et, if own { None } else { neuron_nt }));
            let transmitter = if own { transmitter } else { neuron_nt.map(str::to_string) };
            if !uses.iter().any(|u| u.receptor == receptor && u.transmitter == transmitter) {
                uses.push(ReceptorUse {
                    transmitter,
                    receptor,
                    largest_count: f32::INFINITY,
                    weighted: true,
                    first_row: (*number + k as u64) as usize,
                    pre: pre as u64,
                    post: post as u64,
                });
            }
        }
        *number += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, manifest: serde_json::Value) -> Result<SonataConfig, ConnectomeError> {
        let p = dir.join("simulation_config.json");
        std::fs::write(&p, serde_json::json!({ "manifest": manifest }).to_string()).unwrap();
        SonataConfig::read(&p)
    }

    /// Defect 11: `$BASE` and `$BASE_DIR` were expanded by substring replacement in hash-map order, so
    /// `$BASE_DIR/inputs` became `<$BASE>_DIR/inputs` in most runs. Every resolution must give the same paths.
    #[test]
    fn base_and_base_dir_resolve_the_same_every_time() {
        let t = tempfile::tempdir().unwrap();
        let base = std::path::absolute(t.path()).unwrap();
        for _ in 0..20 {
            let m = serde_json::json!({
                "$BASE": "elsewhere",
                "$BASE_DIR": ".",
                "$OUTPUT_DIR": "$BASE_DIR/output",
                "$INPUT_DIR": "${BASE_DIR}/inputs",
                "$BASE_INPUTS": "$BASE/$INPUT_DIR_NAME",
                "$INPUT_DIR_NAME": "in",
            });
            let c = config(t.path(), m).unwrap();
            assert_eq!(c.resolve("$INPUT_DIR/a.h5").unwrap(), base.join("./inputs").join("a.h5"));
            assert_eq!(c.resolve("$OUTPUT_DIR").unwrap(), base.join("./output"));
            assert_eq!(c.resolve("$BASE/x").unwrap(), base.join("elsewhere").join("x"));
            assert_eq!(c.resolve("$BASE_INPUTS").unwrap(), base.join("elsewhere/in"));
            assert!(c.resolve("$BASE_DIR_x").unwrap_err().to_string().contains("`$BASE_DIR_x`"));
        }
    }

    #[test]
    fn cycles_and_undefined_variables_are_reported() {
        let t = tempfile::tempdir().unwrap();
        let e = config(t.path(), serde_json::json!({"$A": "$B/x", "$B": "$C", "$C": "$A"})).unwrap_err().to_string();
        assert!(e.contains("cycle") && e.contains("$A -> $B -> $C -> $A"), "{e}");
        let e = config(t.path(), serde_json::json!({"$A": "$NOPE/x"})).unwrap_err().to_string();
        assert!(e.contains("$NOPE") && e.contains("does not define") && e.contains("simulation_config.json"), "{e}");
        let e = config(t.path(), serde_json::json!({"A": "."})).unwrap_err().to_string();
        assert!(e.contains("`A`") && e.contains("$NAME"), "{e}");
        let e = config(t.path(), serde_json::json!({"$A": "x/$/y"})).unwrap_err().to_string();
        assert!(e.contains("without a variable name"), "{e}");
        let c = config(t.path(), serde_json::json!({"$A": "."})).unwrap();
        let e = c.resolve("$B/file.h5").unwrap_err().to_string();
        assert!(e.contains("$B") && e.contains("simulation_config.json"), "{e}");
    }

    /// Defect 4 (SONATA part): a nodes dataset declaring 2^40 elements is refused before allocating.
    #[test]
    fn a_nodes_dataset_declaring_2_pow_40_elements_is_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("types.csv"), "node_type_id model_type\n1 virtual\n").unwrap();
        {
            let f = hdf5::File::create(t.path().join("nodes.h5")).unwrap();
            let g = f.create_group("nodes/pop").unwrap();
            g.new_dataset::<u64>().chunk(1 << 16).shape(1usize << 40).create("node_type_id").unwrap();
        }
        let cfg =
            serde_json::json!({"networks": {"nodes": [{"nodes_file": "nodes.h5", "node_types_file": "types.csv"}]}});
        let p = t.path().join("circuit_config.json");
        std::fs::write(&p, cfg.to_string()).unwrap();
        let e = read_sonata(&p).unwrap_err().to_string();
        assert!(e.contains("nodes.h5") && e.contains("/nodes/pop/node_type_id") && e.contains("damaged"), "{e}");
    }
}
