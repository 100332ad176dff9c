//! The connectome data model: neurons and connections as imported, before compilation.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::error::ConnectomeError;

/// One neuron (or cell) of a connectome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Neuron {
    /// External identifier (FlyWire root id, neuPrint body id, or a running number).
    pub id: u64,
    /// Name (e.g. `AVAL`); unique within a connectome when present, empty when unknown.
    pub name: String,
    /// Cell type or class (e.g. `interneuron`, `KC`); empty when unknown.
    pub cell_type: String,
    /// Neurotransmitter as given by the source (free text; see [`crate::transmitter::canonical`]).
    pub transmitter: Option<String>,
    /// Soma position (source units, usually µm or nm).
    pub position: Option<[f32; 3]>,
    /// Brain region / ganglion / neuropil.
    pub region: Option<String>,
}

impl Neuron {
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        Self { id, name: name.into(), cell_type: String::new(), transmitter: None, position: None, region: None }
    }
}

/// Chemical synapse or electrical coupling (gap junction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynapseKind {
    Chemical,
    Electrical,
}

/// One connection between two neurons (possibly many synapses).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// External ids of the pre- and postsynaptic neurons.
    pub pre: u64,
    pub post: u64,
    pub kind: SynapseKind,
    /// Number of synapses (>= 0; may be fractional for averaged datasets).
    pub count: f32,
    /// Explicit weight in the model's synaptic unit; overrides `count × weight_per_synapse`.
    pub weight: Option<f32>,
    /// Neurotransmitter of this connection (overrides the presynaptic neuron's).
    pub transmitter: Option<String>,
    /// Receptor class name (overrides the transmitter map).
    pub receptor: Option<String>,
    /// Axonal + synaptic delay (ms).
    pub delay_ms: Option<f32>,
    /// Confidence in [0, 1] (segmentation or prediction score).
    pub confidence: Option<f32>,
}

impl Connection {
    pub fn chemical(pre: u64, post: u64, count: f32) -> Self {
        Self {
            pre,
            post,
            kind: SynapseKind::Chemical,
            count,
            weight: None,
            transmitter: None,
            receptor: None,
            delay_ms: None,
            confidence: None,
        }
    }
    pub fn electrical(a: u64, b: u64, count: f32) -> Self {
        Self { kind: SynapseKind::Electrical, ..Self::chemical(a, b, count) }
    }
}

/// A whole connectome with provenance. Neuron order is the simulation order (index = position).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Connectome {
    /// Short name (e.g. `celegans-cook2019-hermaphrodite`).
    pub name: String,
    /// Where the data came from (papers, files, licences), one entry per source.
    pub provenance: Vec<String>,
    pub neurons: Vec<Neuron>,
    /// Electrical connections are undirected: each junction is listed once.
    pub connections: Vec<Connection>,
}

impl Connectome {
    /// Map from external id to index; fails on duplicate ids.
    pub fn id_index(&self) -> Result<HashMap<u64, u32>, ConnectomeError> {
        let mut m = HashMap::with_capacity(self.neurons.len());
        for (i, n) in self.neurons.iter().enumerate() {
            if m.insert(n.id, i as u32).is_some() {
                return Err(ConnectomeError::Invalid(format!(
                    "neuron id {} appears twice (neuron #{i}, `{}`): ids must be unique",
                    n.id, n.name
                )));
            }
        }
        Ok(m)
    }

    /// Map from name to index for named neurons.
    pub fn name_index(&self) -> HashMap<&str, u32> {
        name_index(&self.neurons)
    }

    /// Checks ids, endpoints and numbers; every importer calls this before returning.
    pub fn validate(&self) -> Result<(), ConnectomeError> {
        let idx = self.id_index()?;
        for (k, c) in self.connections.iter().enumerate() {
            check_connection(k, c, &idx)?;
        }
        Ok(())
    }
}

/// Map from name to index for the named neurons of a neuron table.
pub fn name_index(neurons: &[Neuron]) -> HashMap<&str, u32> {
    neurons.iter().enumerate().filter(|(_, n)| !n.name.is_empty()).map(|(i, n)| (n.name.as_str(), i as u32)).collect()
}

/// The checks [`Connectome::validate`] makes of connection `#k` (`idx`: neuron id → index): known neurons, a
/// finite count ≥ 0, a finite weight, a delay > 0 and a confidence in [0, 1].
pub(crate) fn check_connection(k: usize, c: &Connection, idx: &HashMap<u64, u32>) -> Result<(), ConnectomeError> {
    for (end, id) in [("pre", c.pre), ("post", c.post)] {
        if !idx.contains_key(&id) {
            return Err(ConnectomeError::Invalid(format!(
                "connection #{k}: {end} neuron id {id} is not in the neuron table"
            )));
        }
    }
    if !(c.count.is_finite() && c.count >= 0.0) {
        return Err(ConnectomeError::Invalid(format!(
            "connection #{k} ({} -> {}): synapse count {} must be a finite number >= 0",
            c.pre, c.post, c.count
        )));
    }
    if let Some(w) = c.weight
        && !w.is_finite()
    {
        return Err(ConnectomeError::Invalid(format!(
            "connection #{k} ({} -> {}): weight {w} must be finite",
            c.pre, c.post
        )));
    }
    if let Some(d) = c.delay_ms
        && !(d.is_finite() && d > 0.0)
    {
        return Err(ConnectomeError::Invalid(format!(
            "connection #{k} ({} -> {}): delay {d} ms must be a finite number > 0",
            c.pre, c.post
        )));
    }
    if let Some(q) = c.confidence
        && !(0.0..=1.0).contains(&q)
    {
        return Err(ConnectomeError::Invalid(format!(
            "connection #{k} ({} -> {}): confidence {q} must lie in [0, 1]",
            c.pre, c.post
        )));
    }
    Ok(())
}
