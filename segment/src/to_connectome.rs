//! Segments and synapses → a neurotwin connectome ([`neurotwin_connectome::Connectome`]).
//!
//! Segments with at least `min_neuron_voxels` voxels become neurons: id = segment id, name `seg<id>`,
//! cell type `segment`, position = centroid in nm given as (x, y, z) as the data model expects (the
//! model has no size field: sizes are in the pipeline report). Synapses between two such neurons
//! (pre ≠ post) become chemical connections, one per ordered pair, with the synapse count and the mean
//! synapse confidence; the transmitter is unknown (the scenario's transmitter map falls back to its
//! default class).

use std::collections::{BTreeMap, HashMap};

use neurotwin_connectome::{Connection, Connectome, Neuron};
use serde::{Deserialize, Serialize};

use crate::synapses::Synapse;
use crate::volume::Volume;

/// Size and centroid of one segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub id: u64,
    pub voxels: u64,
    /// Centroid in nm (z, y, x).
    pub centroid_nm: [f64; 3],
}

/// Sizes and centroids of all non-zero segments, by increasing id.
pub fn segment_infos(seg: &Volume<u64>) -> Vec<SegmentInfo> {
    let mut acc: BTreeMap<u64, (u64, [f64; 3])> = BTreeMap::new();
    for (i, &l) in seg.data.iter().enumerate() {
        if l == 0 {
            continue;
        }
        let p = seg.position_nm(seg.coords(i));
        let e = acc.entry(l).or_insert((0, [0.0; 3]));
        e.0 += 1;
        (0..3).for_each(|k| e.1[k] += p[k]);
    }
    acc.into_iter().map(|(id, (n, s))| SegmentInfo { id, voxels: n, centroid_nm: s.map(|v| v / n as f64) }).collect()
}

/// Builds the connectome (validated).
pub fn build(
    name: &str,
    provenance: Vec<String>,
    infos: &[SegmentInfo],
    synapses: &[Synapse],
    min_neuron_voxels: u64,
) -> Result<Connectome, neurotwin_connectome::ConnectomeError> {
    let neurons: Vec<Neuron> = infos
        .iter()
        .filter(|s| s.voxels >= min_neuron_voxels)
        .map(|s| {
            let mut n = Neuron::new(s.id, format!("seg{}", s.id));
            n.cell_type = "segment".into();
            let c = s.centroid_nm;
            n.position = Some([c[2] as f32, c[1] as f32, c[0] as f32]);
            n
        })
        .collect();
    let ids: HashMap<u64, ()> = neurons.iter().map(|n| (n.id, ())).collect();
    let mut pairs: BTreeMap<(u64, u64), (u32, f64)> = BTreeMap::new();
    for s in synapses {
        if s.pre != s.post && ids.contains_key(&s.pre) && ids.contains_key(&s.post) {
            let e = pairs.entry((s.pre, s.post)).or_default();
            e.0 += 1;
            e.1 += s.confidence as f64;
        }
    }
    let connections = pairs
        .into_iter()
        .map(|((pre, post), (n, conf))| {
            let mut c = Connection::chemical(pre, post, n as f32);
            c.confidence = Some(((conf / n as f64) as f32).clamp(0.0, 1.0));
            c
        })
        .collect();
    let c = Connectome { name: name.to_string(), provenance, neurons, connections };
    c.validate()?;
    Ok(c)
}
