//! The connectome as the fitting code reads it: chemical connections in compressed sparse rows by
//! *postsynaptic* neuron (a neuron's inputs are summed in row order, one thread per neuron, no atomics),
//! a transpose index by presynaptic neuron (the backward pass sums over a neuron's outputs in that
//! order), and gap junctions as a symmetric CSR.
//!
//! Built from a [`CompiledNetwork`] compiled with a known weight per synapse, so that a connection's
//! synapse count is `|weight| / weight_per_synapse` and its sign is the sign of its receptor class
//! (Dale's principle as compiled from the transmitter map).

use neurotwin_connectome::CompiledNetwork;
use neurotwin_models::ReceptorChannel;
use serde::{Deserialize, Serialize};

use crate::error::FitError;

/// How chemical connections share a fitted strength.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrengthGrouping {
    /// One strength for every connection (of each sign).
    Global,
    /// One per (presynaptic cell type, postsynaptic cell type) and sign — flyvis' edge types.
    TypePair,
    /// One per receptor class (transmitter).
    Receptor,
    /// One per presynaptic cell type and sign.
    PreType,
    /// One per connection (use with care: as many parameters as connections).
    Connection,
}

/// The network of a fit.
#[derive(Clone, Debug)]
pub struct FitNetwork {
    pub n: usize,
    pub names: Vec<String>,
    pub cell_types: Vec<String>,
    /// Chemical connections of postsynaptic neuron `i`: `row_ptr[i] .. row_ptr[i + 1]`.
    pub row_ptr: Vec<usize>,
    pub pre: Vec<u32>,
    /// Synapse count of each connection.
    pub count: Vec<f32>,
    /// Sign of each connection: +1 or −1 (from its receptor class), +1 where the sign is learned.
    pub sign: Vec<i8>,
    /// Receptor class of each connection (index into `receptors`).
    pub receptor: Vec<u8>,
    pub receptors: Vec<ReceptorChannel>,
    /// Receptor classes whose sign is not known and is learned with the strength.
    pub learned_sign: Vec<bool>,
    /// Outgoing connections of presynaptic neuron `j`: `out_conn[out_ptr[j] .. out_ptr[j + 1]]` are
    /// connection indices (into the arrays above), ascending.
    pub out_ptr: Vec<usize>,
    pub out_conn: Vec<u32>,
    /// Gap junctions, symmetric CSR: entries `gap_ptr[i] .. gap_ptr[i + 1]` of neuron `i`.
    pub gap_ptr: Vec<usize>,
    pub gap_nbr: Vec<u32>,
    /// Junction count of each entry (the same in both directions).
    pub gap_count: Vec<f32>,
}

impl FitNetwork {
    /// Reads a compiled network: `weight_per_synapse` and `gap_per_junction` are the compile options it
    /// was built with (counts are recovered by dividing by them). `learned_sign` names receptor classes
    /// whose sign is unknown.
    pub fn from_compiled(
        net: &CompiledNetwork,
        weight_per_synapse: f64,
        gap_per_junction: f64,
        learned_sign: &[String],
    ) -> Result<Self, FitError> {
        let n = net.n_neurons();
        if !(weight_per_synapse > 0.0 && weight_per_synapse.is_finite()) {
            return Err(FitError::Network(format!("weight_per_synapse {weight_per_synapse} must be > 0")));
        }
        for r in learned_sign {
            if !net.receptors.iter().any(|c| &c.name == r) {
                let known: Vec<_> = net.receptors.iter().map(|c| c.name.as_str()).collect();
                return Err(FitError::Network(format!(
                    "learned_sign names receptor class `{r}`, which this network does not use (classes: {})",
                    known.join(", ")
                )));
            }
        }
        let learned: Vec<bool> = net.receptors.iter().map(|c| learned_sign.contains(&c.name)).collect();
        let m = &net.chemical;
        // (post, pre, receptor, count, sign)
        let mut conns: Vec<(u32, u32, u8, f32, i8)> = Vec::with_capacity(m.targets.len());
        for pre in 0..m.n_pre {
            for seg in m.row(pre) {
                for (k, &post) in seg.targets.iter().enumerate() {
                    let w = seg.weights.get(k) as f64;
                    let count = (w.abs() / weight_per_synapse) as f32;
                    if count == 0.0 {
                        continue;
                    }
                    let sign = if learned[seg.receptor as usize] || w > 0.0 { 1 } else { -1 };
                    conns.push((post, pre, seg.receptor, count, sign));
                }
            }
        }
        conns.sort_unstable_by_key(|c| (c.0, c.1, c.2));
        // Connections of the same (post, pre, receptor) at different delays are merged: the rate models
        // have no delays.
        let mut merged: Vec<(u32, u32, u8, f32, i8)> = Vec::with_capacity(conns.len());
        for c in conns {
            match merged.last_mut() {
                Some(l) if (l.0, l.1, l.2) == (c.0, c.1, c.2) => l.3 += c.3,
                _ => merged.push(c),
            }
        }
        let mut row_ptr = vec![0usize; n + 1];
        for c in &merged {
            row_ptr[c.0 as usize + 1] += 1;
        }
        for i in 0..n {
            row_ptr[i + 1] += row_ptr[i];
        }
        let pre: Vec<u32> = merged.iter().map(|c| c.1).collect();
        let receptor: Vec<u8> = merged.iter().map(|c| c.2).collect();
        let count: Vec<f32> = merged.iter().map(|c| c.3).collect();
        let sign: Vec<i8> = merged.iter().map(|c| c.4).collect();
        drop(merged);
        let (out_ptr, out_conn) = transpose(n, &pre);

        let g = &net.gap;
        let gap_ptr: Vec<usize> = g.row_ptr.iter().map(|&p| p as usize).collect();
        let gap_nbr = g.partner.clone();
        let scale = if gap_per_junction > 0.0 { gap_per_junction } else { 1.0 };
        let gap_count: Vec<f32> = g.conductance.iter().map(|&c| (c as f64 / scale) as f32).collect();
        let cell_types = net.neurons.iter().map(|x| x.cell_type.clone()).collect();
        let names = net.neurons.iter().map(|x| x.name.clone()).collect();
        Ok(Self {
            n,
            names,
            cell_types,
            row_ptr,
            pre,
            count,
            sign,
            receptor,
            receptors: net.receptors.clone(),
            learned_sign: learned,
            out_ptr,
            out_conn,
            gap_ptr: if gap_ptr.len() == n + 1 { gap_ptr } else { vec![0; n + 1] },
            gap_nbr,
            gap_count,
        })
    }

    pub fn n_connections(&self) -> usize {
        self.pre.len()
    }

    pub fn n_gap_entries(&self) -> usize {
        self.gap_nbr.len()
    }

    /// Postsynaptic neuron of every connection.
    pub fn post_of_connections(&self) -> Vec<u32> {
        let mut post = vec![0u32; self.pre.len()];
        for i in 0..self.n {
            post[self.row_ptr[i]..self.row_ptr[i + 1]].fill(i as u32);
        }
        post
    }

    /// Bytes held by the network's arrays.
    pub fn bytes(&self) -> u64 {
        let c = self.pre.len() as u64;
        (self.n as u64 + 1) * 16 + c * (4 + 4 + 1 + 1 + 4) + self.gap_nbr.len() as u64 * 8
    }
}

/// Connection indices grouped by presynaptic neuron (ascending within a group).
fn transpose(n: usize, pre: &[u32]) -> (Vec<usize>, Vec<u32>) {
    let mut ptr = vec![0usize; n + 1];
    for &p in pre {
        ptr[p as usize + 1] += 1;
    }
    for j in 0..n {
        ptr[j + 1] += ptr[j];
    }
    let mut fill = ptr.clone();
    let mut conn = vec![0u32; pre.len()];
    for (c, &p) in pre.iter().enumerate() {
        conn[fill[p as usize]] = c as u32;
        fill[p as usize] += 1;
    }
    (ptr, conn)
}
