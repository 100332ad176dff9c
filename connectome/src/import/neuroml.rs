//! NeuroML 2 networks (Gleeson et al. 2010, PLoS Comput. Biol. 6:e1000815; the files OpenWorm's c302 writes):
//! the cell and synapse components, populations, projections (`connection`, `connectionWD`), electrical
//! projections, pulse-generator inputs, and the simulation length and step of a LEMS file. Values are converted to
//! neurotwin's working units (mV, ms, pA, nS, pF). Supported components: `iafCell`, `iafRefCell`,
//! `izhikevich2007Cell`, `expOneSynapse`,
//! `expTwoSynapse`, `gapJunction`, `pulseGenerator`; any other component a network uses is an error naming it, its
//! line and the supported ones (`neurotwin import --to scenario` turns the result into a scenario with an
//! equation-defined neuron, `neurotwin_scenarios::neuroml`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use roxmltree::{Document, Node};

use crate::error::ConnectomeError;

/// An integrate-and-fire cell type (`iafCell`, or `iafRefCell` with `refract_ms` > 0).
#[derive(Clone, Debug, PartialEq)]
pub struct IafCell {
    pub id: String,
    pub leak_reversal_mv: f64,
    pub thresh_mv: f64,
    pub reset_mv: f64,
    pub c_pf: f64,
    pub leak_conductance_ns: f64,
    pub refract_ms: f64,
}

/// An `izhikevich2007Cell` (Izhikevich 2007, "Dynamical Systems in Neuroscience", ch. 8): C dv/dt =
/// k (v − v_r)(v − v_t) − u + I, du/dt = a (b (v − v_r) − u); at v > v_peak: v = c, u += d.
#[derive(Clone, Debug, PartialEq)]
pub struct Izh2007Cell {
    pub id: String,
    pub c_pf: f64,
    pub v0_mv: f64,
    /// nS/mV.
    pub k_ns_per_mv: f64,
    pub vr_mv: f64,
    pub vt_mv: f64,
    pub vpeak_mv: f64,
    /// 1/ms.
    pub a_per_ms: f64,
    pub b_ns: f64,
    pub reset_mv: f64,
    pub d_pa: f64,
}

/// A conductance-based event synapse: `expOneSynapse` (`tau_rise_ms` = None) or `expTwoSynapse`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpSynapse {
    pub id: String,
    pub gbase_ns: f64,
    pub erev_mv: f64,
    pub tau_rise_ms: Option<f64>,
    pub tau_decay_ms: f64,
}

/// A current pulse: `amplitude_pa` in [`delay_ms`, `delay_ms + duration_ms`).
#[derive(Clone, Debug, PartialEq)]
pub struct Pulse {
    pub id: String,
    pub delay_ms: f64,
    pub duration_ms: f64,
    pub amplitude_pa: f64,
}

/// A population: `size` cells of component `component`.
#[derive(Clone, Debug, PartialEq)]
pub struct Population {
    pub id: String,
    pub component: String,
    pub size: u32,
}

/// A cell: population index and instance.
pub type CellRef = (usize, u32);

/// One chemical connection.
#[derive(Clone, Debug, PartialEq)]
pub struct NmlConnection {
    pub pre: CellRef,
    pub post: CellRef,
    /// Synapse component id.
    pub synapse: String,
    pub weight: f64,
    pub delay_ms: f64,
}

/// One gap junction (`weight` × the component's conductance).
#[derive(Clone, Debug, PartialEq)]
pub struct NmlGap {
    pub pre: CellRef,
    pub post: CellRef,
    pub conductance_ns: f64,
}

/// One input: a pulse generator onto a cell, scaled by `weight`.
#[derive(Clone, Debug, PartialEq)]
pub struct NmlInput {
    pub pulse: String,
    pub target: CellRef,
    pub weight: f64,
}

/// A NeuroML 2 network file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NeuroMlNetwork {
    pub id: String,
    pub cells: Vec<IafCell>,
    pub izh_cells: Vec<Izh2007Cell>,
    pub synapses: Vec<ExpSynapse>,
    pub pulses: Vec<Pulse>,
    pub populations: Vec<Population>,
    pub connections: Vec<NmlConnection>,
    pub gaps: Vec<NmlGap>,
    pub inputs: Vec<NmlInput>,
}

/// The `<Simulation>` of a LEMS file: its length and step (ms).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LemsSimulation {
    pub length_ms: f64,
    pub step_ms: f64,
}

/// A quantity with a unit (`"-50mV"`, `"0.01nS"`, `"3 pF"`) in the working unit of its dimension.
fn quantity(text: &str, dimension: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E').unwrap_or(t.len());
    // An exponent letter followed by a unit (e.g. "1e-3ms") is handled by trying the longest numeric prefix.
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let value: f64 = num.parse().map_err(|_| format!("`{text}` is not a number with a unit"))?;
    let scale = match (dimension, unit) {
        ("voltage", "V") => 1e3,
        ("voltage", "mV") => 1.0,
        ("voltage", "uV") => 1e-3,
        ("time", "s") => 1e3,
        ("time", "ms") => 1.0,
        ("time", "us") => 1e-3,
        ("current", "A") => 1e12,
        ("current", "uA") => 1e6,
        ("current", "nA") => 1e3,
        ("current", "pA") => 1.0,
        ("conductance", "S") => 1e9,
        ("conductance", "mS") => 1e6,
        ("conductance", "uS") => 1e3,
        ("conductance", "nS") => 1.0,
        ("conductance", "pS") => 1e-3,
        ("capacitance", "F") => 1e12,
        ("capacitance", "uF") => 1e6,
        ("capacitance", "nF") => 1e3,
        ("capacitance", "pF") => 1.0,
        ("conductance_per_voltage", "S_per_V") => 1e6,
        ("conductance_per_voltage", "nS_per_mV") => 1.0,
        ("per_time", "per_s" | "Hz") => 1e-3,
        ("per_time", "per_ms") => 1.0,
        _ => return Err(format!("`{text}`: unit `{unit}` is not a {dimension} unit NeuroML allows")),
    };
    if !value.is_finite() {
        return Err(format!("`{text}` is not finite"));
    }
    Ok(value * scale)
}

struct Reader<'a> {
    path: &'a Path,
    doc: &'a Document<'a>,
}

impl<'a> Reader<'a> {
    fn line(&self, n: Node) -> u64 {
        self.doc.text_pos_at(n.range().start).row as u64
    }

    fn err(&self, n: Node, message: impl Into<String>) -> ConnectomeError {
        ConnectomeError::parse(self.path, self.line(n), message)
    }

    fn attr(&self, n: Node<'a, 'a>, name: &str) -> Result<&'a str, ConnectomeError> {
        n.attribute(name).ok_or_else(|| self.err(n, format!("<{}> needs the attribute `{name}`", n.tag_name().name())))
    }

    fn quantity(&self, n: Node, name: &str, dimension: &str) -> Result<f64, ConnectomeError> {
        let text = self.attr(n, name)?;
        quantity(text, dimension).map_err(|m| self.err(n, format!("<{}> {name}: {m}", n.tag_name().name())))
    }

    /// [`Reader::quantity`] that must be > 0 (`strict`) or >= 0.
    fn nonneg(&self, n: Node, name: &str, dimension: &str, strict: bool) -> Result<f64, ConnectomeError> {
        let x = self.quantity(n, name, dimension)?;
        if x < 0.0 || (strict && x == 0.0) {
            let want = if strict { "> 0" } else { ">= 0" };
            return Err(self.err(n, format!("<{}> {name} = {x}: must be {want}", n.tag_name().name())));
        }
        Ok(x)
    }

    fn number(&self, n: Node, name: &str, default: f64) -> Result<f64, ConnectomeError> {
        match n.attribute(name) {
            None => Ok(default),
            Some(t) => t
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.err(n, format!("<{}> {name}: `{t}` is not a number", n.tag_name().name()))),
        }
    }
}

/// Memory one imported cell takes at least (bytes): its neuron-table row and CSV line, its state, ring entries
/// and recordings in the run that follows.
const BYTES_PER_CELL: f64 = 256.0;

/// The components NeuroML defines that this importer does not map (for the error message).
const SUPPORTED: &str =
    "iafCell, iafRefCell, izhikevich2007Cell, expOneSynapse, expTwoSynapse, gapJunction, pulseGenerator";

/// Reads a NeuroML 2 network file. Errors name the file, the line and what to change.
pub fn read_neuroml(path: &Path) -> Result<NeuroMlNetwork, ConnectomeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConnectomeError::io(path, e))?;
    let doc = Document::parse(&text)
        .map_err(|e| ConnectomeError::parse(path, e.pos().row as u64, format!("not well-formed XML: {e}")))?;
    let r = Reader { path, doc: &doc };
    let root = doc.root_element();
    if root.tag_name().name() != "neuroml" {
        return Err(r.err(root, format!("the root element is <{}>, not <neuroml>", root.tag_name().name())));
    }
    let mut net = NeuroMlNetwork { id: root.attribute("id").unwrap_or_default().to_string(), ..Default::default() };
    let mut known_components: BTreeMap<String, String> = BTreeMap::new();
    let mut networks = Vec::new();
    for n in root.children().filter(Node::is_element) {
        let id = || r.attr(n, "id").map(str::to_string);
        match n.tag_name().name() {
            tag @ ("iafCell" | "iafRefCell") => {
                net.cells.push(IafCell {
                    id: id()?,
                    leak_reversal_mv: r.quantity(n, "leakReversal", "voltage")?,
                    thresh_mv: r.quantity(n, "thresh", "voltage")?,
                    reset_mv: r.quantity(n, "reset", "voltage")?,
                    c_pf: r.nonneg(n, "C", "capacitance", true)?,
                    leak_conductance_ns: r.quantity(n, "leakConductance", "conductance")?,
                    refract_ms: if tag == "iafRefCell" { r.nonneg(n, "refract", "time", false)? } else { 0.0 },
                });
                known_components.insert(id()?, "cell".into());
            }
            "izhikevich2007Cell" => {
                net.izh_cells.push(Izh2007Cell {
                    id: id()?,
                    c_pf: r.nonneg(n, "C", "capacitance", true)?,
                    v0_mv: r.quantity(n, "v0", "voltage")?,
                    k_ns_per_mv: r.quantity(n, "k", "conductance_per_voltage")?,
                    vr_mv: r.quantity(n, "vr", "voltage")?,
                    vt_mv: r.quantity(n, "vt", "voltage")?,
                    vpeak_mv: r.quantity(n, "vpeak", "voltage")?,
                    a_per_ms: r.quantity(n, "a", "per_time")?,
                    b_ns: r.quantity(n, "b", "conductance")?,
                    reset_mv: r.quantity(n, "c", "voltage")?,
                    d_pa: r.quantity(n, "d", "current")?,
                });
                known_components.insert(id()?, "cell".into());
            }
            tag @ ("expOneSynapse" | "expTwoSynapse") => {
                net.synapses.push(ExpSynapse {
                    id: id()?,
                    gbase_ns: r.quantity(n, "gbase", "conductance")?,
                    erev_mv: r.quantity(n, "erev", "voltage")?,
                    tau_rise_ms: if tag == "expTwoSynapse" {
                        Some(r.nonneg(n, "tauRise", "time", true)?)
                    } else {
                        None
                    },
                    tau_decay_ms: r.nonneg(n, "tauDecay", "time", true)?,
                });
                known_components.insert(id()?, "synapse".into());
            }
            "gapJunction" => {
                let g = r.quantity(n, "conductance", "conductance")?;
                net.synapses.push(ExpSynapse {
                    id: id()?,
                    gbase_ns: g,
                    erev_mv: 0.0,
                    tau_rise_ms: None,
                    tau_decay_ms: 0.0,
                });
                known_components.insert(id()?, "gap".into());
            }
            "pulseGenerator" => {
                net.pulses.push(Pulse {
                    id: id()?,
                    delay_ms: r.nonneg(n, "delay", "time", false)?,
                    duration_ms: r.nonneg(n, "duration", "time", false)?,
                    amplitude_pa: r.quantity(n, "amplitude", "current")?,
                });
                known_components.insert(id()?, "pulse".into());
            }
            "network" => networks.push(n),
            "notes" | "annotation" | "include" | "property" => {}
            other => {
                if let Some(cid) = n.attribute("id") {
                    known_components.insert(cid.to_string(), other.to_string());
                }
            }
        }
    }
    let [network] = networks[..] else {
        return Err(
            r.err(root, format!("{} <network> elements; the importer reads files with exactly one", networks.len()))
        );
    };
    let component_kind = |n: Node, c: &str, want: &str| -> Result<(), ConnectomeError> {
        match known_components.get(c).map(String::as_str) {
            Some(k) if k == want => Ok(()),
            Some(k) => Err(r.err(
                n,
                format!("component `{c}` is a <{k}>, which this importer does not map (supported: {SUPPORTED})"),
            )),
            None => Err(r.err(n, format!("component `{c}` is not defined in this file (included files are not read)"))),
        }
    };
    let mut pop_index: BTreeMap<String, usize> = BTreeMap::new();
    for n in network.children().filter(|n| n.has_tag_name("population")) {
        let id = r.attr(n, "id")?.to_string();
        let component = r.attr(n, "component")?.to_string();
        component_kind(n, &component, "cell")?;
        let instances = n.children().filter(|c| c.has_tag_name("instance")).count() as u32;
        let size = match n.attribute("size") {
            Some(s) => s
                .trim()
                .parse::<u32>()
                .map_err(|_| r.err(n, format!("population `{id}`: size `{s}` is not a count")))?,
            None => instances,
        };
        if pop_index.insert(id.clone(), net.populations.len()).is_some() {
            return Err(r.err(n, format!("population `{id}` is defined twice")));
        }
        net.populations.push(Population { id, component, size });
    }
    // Every cell becomes rows of the neuron table and the simulation state: refuse absurd sizes before them.
    let cells: u64 = net.populations.iter().map(|p| p.size as u64).sum();
    neurotwin_io::budget::check_memory(
        &format!("{cells} cells of {}", path.display()),
        cells as f64 * BYTES_PER_CELL,
        "lower the populations' `size`",
    )?;
    // "../AVAL/0/generic_neuron_iaf_cell", "../AVAL[0]" or (with a population given) "0".
    let cell = |n: Node, text: &str, pop: Option<&str>| -> Result<CellRef, ConnectomeError> {
        let t = text.trim().trim_start_matches("../");
        let (p, i) = if let Some((p, rest)) = t.split_once('[') {
            (p, rest.trim_end_matches(']'))
        } else if let Some((p, rest)) = t.split_once('/') {
            (p, rest.split('/').next().unwrap_or(""))
        } else {
            (pop.unwrap_or(""), t)
        };
        let &k = pop_index.get(p).ok_or_else(|| r.err(n, format!("`{text}`: no population `{p}`")))?;
        let i: u32 = i.parse().map_err(|_| r.err(n, format!("`{text}`: `{i}` is not a cell index")))?;
        if i >= net.populations[k].size {
            return Err(r.err(n, format!("`{text}`: population `{p}` has {} cells", net.populations[k].size)));
        }
        Ok((k, i))
    };
    for n in network.children().filter(Node::is_element) {
        match n.tag_name().name() {
            "projection" => {
                let synapse = r.attr(n, "synapse")?.to_string();
                component_kind(n, &synapse, "synapse")?;
                let (pre_pop, post_pop) = (r.attr(n, "presynapticPopulation")?, r.attr(n, "postsynapticPopulation")?);
                for c in n.children().filter(|c| c.has_tag_name("connection") || c.has_tag_name("connectionWD")) {
                    let pre = cell(c, r.attr(c, "preCellId")?, Some(pre_pop))?;
                    let post = cell(c, r.attr(c, "postCellId")?, Some(post_pop))?;
                    let delay_ms = match c.attribute("delay") {
                        Some(_) => r.nonneg(c, "delay", "time", false)?,
                        None => 0.0,
                    };
                    let weight = r.number(c, "weight", 1.0)?;
                    net.connections.push(NmlConnection { pre, post, synapse: synapse.clone(), weight, delay_ms });
                }
            }
            "electricalProjection" => {
                let (pre_pop, post_pop) = (r.attr(n, "presynapticPopulation")?, r.attr(n, "postsynapticPopulation")?);
                for c in n.children().filter(Node::is_element) {
                    let synapse = r.attr(c, "synapse")?;
                    component_kind(c, synapse, "gap")?;
                    let g = net.synapses.iter().find(|s| s.id == synapse).map_or(0.0, |s| s.gbase_ns);
                    let pre = cell(c, r.attr(c, "preCell")?, Some(pre_pop))?;
                    let post = cell(c, r.attr(c, "postCell")?, Some(post_pop))?;
                    let weight = r.number(c, "weight", 1.0)?;
                    net.gaps.push(NmlGap { pre, post, conductance_ns: g * weight });
                }
            }
            "inputList" => {
                let pulse = r.attr(n, "component")?.to_string();
                component_kind(n, &pulse, "pulse")?;
                // The population may be left out when every target path names it ("../POP/0/cell").
                let pop = n.attribute("population");
                for c in n.children().filter(|c| c.has_tag_name("input") || c.has_tag_name("inputW")) {
                    let target = cell(c, r.attr(c, "target")?, pop)?;
                    let weight = r.number(c, "weight", 1.0)?;
                    net.inputs.push(NmlInput { pulse: pulse.clone(), target, weight });
                }
            }
            "population" | "property" | "notes" => {}
            other => {
                return Err(r.err(
                    n,
                    format!("<{other}> in the network is not imported (supported: population, projection, electricalProjection, inputList)"),
                ));
            }
        }
    }
    Ok(net)
}

/// The `<Simulation length step>` of a LEMS file (the first one).
pub fn read_lems_simulation(path: &Path) -> Result<LemsSimulation, ConnectomeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConnectomeError::io(path, e))?;
    let doc = Document::parse(&text)
        .map_err(|e| ConnectomeError::parse(path, e.pos().row as u64, format!("not well-formed XML: {e}")))?;
    let r = Reader { path, doc: &doc };
    let sim = doc.descendants().find(|n| n.has_tag_name("Simulation")).ok_or_else(|| ConnectomeError::Format {
        path: PathBuf::from(path),
        message: "no <Simulation> element".into(),
    })?;
    Ok(LemsSimulation { length_ms: r.quantity(sim, "length", "time")?, step_ms: r.quantity(sim, "step", "time")? })
}

impl NeuroMlNetwork {
    /// Name of a cell: the population id for single-cell populations, else `<population>_<index>`.
    pub fn cell_name(&self, (p, i): CellRef) -> String {
        let pop = &self.populations[p];
        if pop.size == 1 { pop.id.clone() } else { format!("{}_{i}", pop.id) }
    }

    /// Every cell in population order.
    pub fn cells_in_order(&self) -> Vec<CellRef> {
        self.populations.iter().enumerate().flat_map(|(p, pop)| (0..pop.size).map(move |i| (p, i))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<NeuroMlNetwork, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.nml");
        std::fs::write(&path, text).unwrap();
        read_neuroml(&path).map_err(|e| e.to_string())
    }

    const CELL: &str =
        r#"<iafCell id="c" leakReversal="-50mV" thresh="-30mV" reset="-50mV" C="3pF" leakConductance="0.1nS"/>"#;

    /// A small network reads back with its values in working units; malformed files are refused with the file,
    /// the line and what is wrong.
    #[test]
    fn networks_read_and_mistakes_are_located() {
        let net = read(&format!(
            "<neuroml id=\"n\">\n{CELL}\n<expOneSynapse id=\"s\" gbase=\"1nS\" erev=\"0mV\" tauDecay=\"5ms\"/>\n\
             <pulseGenerator id=\"p\" delay=\"10ms\" duration=\"0.1s\" amplitude=\"0.002nA\"/>\n<network id=\"x\">\n\
             <population id=\"P\" component=\"c\" size=\"3\"/>\n<projection id=\"pr\" presynapticPopulation=\"P\" \
             postsynapticPopulation=\"P\" synapse=\"s\">\n<connectionWD id=\"0\" preCellId=\"../P/0/c\" postCellId=\"../P[2]\" \
             weight=\"2\" delay=\"1ms\"/>\n</projection>\n<inputList id=\"i\" population=\"P\" component=\"p\">\n\
             <input id=\"0\" target=\"../P/1/c\" destination=\"synapses\"/>\n</inputList>\n</network>\n</neuroml>\n"
        ))
        .unwrap();
        assert_eq!(net.populations[0].size, 3);
        assert_eq!(
            net.connections[0],
            NmlConnection { pre: (0, 0), post: (0, 2), synapse: "s".into(), weight: 2.0, delay_ms: 1.0 }
        );
        assert_eq!((net.pulses[0].duration_ms, net.pulses[0].amplitude_pa), (100.0, 2.0));
        assert_eq!(net.inputs[0].target, (0, 1));
        assert_eq!(net.cell_name((0, 2)), "P_2");

        let cases = [
            ("<neuroml><iafCell id=\"c\"\n", "net.nml:1: not well-formed XML"),
            (
                "<neuroml>\n<iafCell id=\"c\" leakReversal=\"-50mV\"/>\n</neuroml>",
                "net.nml:2: <iafCell> needs the attribute `thresh`",
            ),
            (
                "<neuroml>\n<iafCell id=\"c\" leakReversal=\"-50mA\" thresh=\"1mV\" reset=\"1mV\" C=\"1pF\" leakConductance=\"1nS\"/>\n</neuroml>",
                "net.nml:2: <iafCell> leakReversal: `-50mA`: unit `mA` is not a voltage unit",
            ),
            (
                &format!(
                    "<neuroml>\n{CELL}\n<network id=\"x\">\n<population id=\"P\" component=\"c\" size=\"1\"/>\n<inputList id=\"i\" population=\"P\" component=\"nope\">\n</inputList>\n</network>\n</neuroml>"
                ),
                "net.nml:5: component `nope` is not defined",
            ),
            (
                &format!(
                    "<neuroml>\n{CELL}\n<expOneSynapse id=\"s\" gbase=\"1nS\" erev=\"0mV\" tauDecay=\"5ms\"/>\n<network id=\"x\">\n<population id=\"P\" component=\"c\" size=\"1\"/>\n<projection id=\"pr\" presynapticPopulation=\"P\" postsynapticPopulation=\"P\" synapse=\"s\">\n<connection id=\"0\" preCellId=\"../P/3/c\" postCellId=\"../P/0/c\"/>\n</projection>\n</network>\n</neuroml>"
                ),
                "net.nml:7: `../P/3/c`: population `P` has 1 cells",
            ),
            ("<neuroml>\n<network id=\"a\"/>\n<network id=\"b\"/>\n</neuroml>", "2 <network> elements"),
            (
                &format!(
                    "<neuroml>\n{CELL}\n<network id=\"x\">\n<population id=\"P\" component=\"c\" size=\"4000000000\"/>\n</network>\n</neuroml>"
                ),
                "4000000000 cells of",
            ),
            (
                "<neuroml>\n<expOneSynapse id=\"s\" gbase=\"1nS\" erev=\"0mV\" tauDecay=\"0ms\"/>\n</neuroml>",
                "net.nml:2: <expOneSynapse> tauDecay = 0: must be > 0",
            ),
            (
                &format!(
                    "<neuroml>\n{CELL}\n<expOneSynapse id=\"s\" gbase=\"1nS\" erev=\"0mV\" tauDecay=\"5ms\"/>\n<network id=\"x\">\n<population id=\"P\" component=\"c\" size=\"2\"/>\n<projection id=\"pr\" presynapticPopulation=\"P\" postsynapticPopulation=\"P\" synapse=\"s\">\n<connectionWD id=\"0\" preCellId=\"../P/0/c\" postCellId=\"../P/1/c\" weight=\"1\" delay=\"-3ms\"/>\n</projection>\n</network>\n</neuroml>"
                ),
                "net.nml:7: <connectionWD> delay = -3: must be >= 0",
            ),
            (
                "<neuroml>\n<pulseGenerator id=\"p\" delay=\"1ms\" duration=\"-5ms\" amplitude=\"1pA\"/>\n</neuroml>",
                "duration = -5: must be >= 0",
            ),
        ];
        for (text, want) in cases {
            let e = read(text).unwrap_err();
            assert!(e.contains(want), "{text}\n=> {e}");
        }
    }

    #[test]
    fn quantities_convert_to_working_units() {
        assert_eq!(quantity("-50mV", "voltage").unwrap(), -50.0);
        assert_eq!(quantity("-0.05 V", "voltage").unwrap(), -50.0);
        assert_eq!(quantity("0.01nS", "conductance").unwrap(), 0.01);
        assert!((quantity("3e-12F", "capacitance").unwrap() - 3.0).abs() < 1e-12);
        assert_eq!(quantity("10ms", "time").unwrap(), 10.0);
        assert!(quantity("10mV", "time").unwrap_err().contains("not a time unit"));
        assert!(quantity("abc", "time").is_err());
    }
}
