//! The connectome compiler: `Connectome` → `CompiledNetwork` (synapse matrix, gap matrix, receptor
//! channels) for one time step.

use neurotwin_models::ReceptorChannel;
use rayon::prelude::*;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::ConnectomeError;
use crate::gap::GapMatrix;
use crate::matrix::{Synapse, SynapseMatrix};
use crate::network::{Connectome, Neuron, SynapseKind};
use crate::transmitter::TransmitterMap;

/// How connections become weights and delays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileOptions {
    /// Simulation time step (ms); delays are rounded to whole steps (at least one).
    pub dt_ms: f64,
    pub transmitters: TransmitterMap,
    /// Weight magnitude of one synapse in the neuron model's synaptic unit (pA for `lif_exp`, mV for
    /// `lif_delta`, nS for `graded`); a connection of `count` synapses gets `count × weight_per_synapse`,
    /// signed by its receptor class. Connections with an explicit weight use it as given.
    pub weight_per_synapse: f64,
    /// Delay of connections that give none (ms).
    pub default_delay_ms: f64,
    /// Conductance of one gap junction (nS); a connection of `count` junctions gets `count × this`.
    pub gap_per_junction_ns: f64,
    /// Chemical connections with fewer synapses are dropped (0 keeps all).
    pub min_synapse_count: f32,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            dt_ms: 0.1,
            transmitters: TransmitterMap::exc_inh(),
            weight_per_synapse: 1.0,
            default_delay_ms: 1.0,
            gap_per_junction_ns: 0.0,
            min_synapse_count: 0.0,
        }
    }
}

/// What the compiler did, for `inspect` and run summaries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompileReport {
    pub neurons: usize,
    pub chemical_connections: usize,
    pub dropped_below_min_count: usize,
    pub electrical_connections: usize,
    pub synapses: u64,
    pub segments: usize,
    pub matrix_bytes: u64,
    pub bytes_per_synapse: f64,
    pub weight_encoding: String,
    pub max_delay_steps: u16,
    /// Synapses per receptor class, in channel order.
    pub synapses_per_receptor: Vec<(String, u64)>,
    pub transmitter_source: String,
}

/// A network ready for simulation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompiledNetwork {
    pub name: String,
    pub provenance: Vec<String>,
    /// Neuron table in simulation order (index = row/column of the matrices).
    pub neurons: Vec<Neuron>,
    /// Receptor channels actually used, in the transmitter map's order; synapse receptor indices refer
    /// to this list.
    pub receptors: Vec<ReceptorChannel>,
    pub chemical: SynapseMatrix,
    pub gap: GapMatrix,
    pub dt_ms: f64,
    pub report: CompileReport,
    /// `Some(range)`: this process holds only the synapses onto the neurons in `range` (its share of a network
    /// split across processes, [`crate::share`]); every neuron is still in `neurons`. `None`: every synapse.
    #[serde(default)]
    pub held_targets: Option<Range<u32>>,
}

impl CompiledNetwork {
    pub fn n_neurons(&self) -> usize {
        self.neurons.len()
    }

    /// Assembles a network from parts (generators use this) and fills the report.
    pub fn from_parts(
        name: impl Into<String>,
        provenance: Vec<String>,
        neurons: Vec<Neuron>,
        receptors: Vec<ReceptorChannel>,
        chemical: SynapseMatrix,
        gap: GapMatrix,
        dt_ms: f64,
    ) -> Self {
        let mut net = Self {
            name: name.into(),
            provenance,
            neurons,
            receptors,
            chemical,
            gap,
            dt_ms,
            report: CompileReport::default(),
            held_targets: None,
        };
        net.report = net.describe(0, 0, String::new());
        net
    }

    /// Keeps only the synapses onto this process's targets (`share`, balanced on the counted incoming synapses
    /// of each block): the network of one rank of a run split across processes. A network that already holds
    /// a share is left as it is. Gap junctions couple voltages in every step and are not split: a network with any is
    /// refused for more than one process.
    pub fn keep_share(&mut self, share: &crate::share::Share) -> Result<(), ConnectomeError> {
        if share.is_whole() {
            return Ok(());
        }
        if !self.gap.is_empty() {
            return Err(ConnectomeError::Compile(format!(
                "the network has {} gap-junction entries, which need every neuron's voltage in every step; \
                 distributed runs exchange only delayed spikes, so run it in one process (without mpirun)",
                self.gap.n_entries()
            )));
        }
        let n = self.n_neurons() as u32;
        let keep = match &self.held_targets {
            // Split by counted incoming synapses per block.
            None => {
                let mut cost = vec![0.0f64; n.div_ceil(crate::share::BLOCK) as usize];
                for &t in &self.chemical.targets {
                    cost[(t / crate::share::BLOCK) as usize] += 1.0;
                }
                share.targets_by_cost(n, &cost)
            }
            Some(held) => held.clone(),
        };
        if self.held_targets.is_none() {
            self.chemical = self.chemical.retain_targets(keep.clone());
        } else {
            return Ok(());
        }
        self.held_targets = Some(keep);
        let (dropped, electrical, source, connections) = (
            self.report.dropped_below_min_count,
            self.report.electrical_connections,
            self.report.transmitter_source.clone(),
            self.report.chemical_connections,
        );
        self.report = self.describe(dropped, electrical, source);
        self.report.chemical_connections = connections;
        Ok(())
    }

    /// Refuses a network that holds only one process's share of the synapses (for whole-network consumers:
    /// writers, single-process backends).
    pub fn check_whole(&self, what: &str) -> Result<(), ConnectomeError> {
        match &self.held_targets {
            Some(r) if r.start != 0 || r.end as usize != self.n_neurons() => Err(ConnectomeError::Compile(format!(
                "{what} needs the whole network, but this one holds only the synapses onto neurons {}..{} (one \
                 MPI rank's share)",
                r.start, r.end
            ))),
            _ => Ok(()),
        }
    }

    fn describe(&self, dropped: usize, electrical: usize, source: String) -> CompileReport {
        let mut per = vec![0u64; self.receptors.len()];
        for s in 0..self.chemical.n_segments() {
            let r = self.chemical.segment_receptor[s] as usize;
            per[r] += self.chemical.segment_start[s + 1] - self.chemical.segment_start[s];
        }
        CompileReport {
            neurons: self.neurons.len(),
            chemical_connections: 0,
            dropped_below_min_count: dropped,
            electrical_connections: electrical,
            synapses: self.chemical.n_synapses(),
            segments: self.chemical.n_segments(),
            matrix_bytes: self.chemical.bytes(),
            bytes_per_synapse: self.chemical.bytes_per_synapse(),
            weight_encoding: self.chemical.weight_encoding(),
            max_delay_steps: self.chemical.max_delay(),
            synapses_per_receptor: self.receptors.iter().map(|r| r.name.clone()).zip(per).collect(),
            transmitter_source: source,
        }
    }
}

/// Compiles a validated connectome.
pub fn compile(c: &Connectome, opt: &CompileOptions) -> Result<CompiledNetwork, ConnectomeError> {
    compile_with(c, opt, None)
}

/// Compiles one rank's share of a connectome file read by [`crate::hdf5io::read_connectome_share`]: the synapses
/// onto its targets, exactly as [`compile`] of the whole file followed by [`CompiledNetwork::keep_share`] gives
/// them, with the receptor channels the *whole* file uses (resolved from the share's `receptor_uses`, so every
/// rank has the same channels in the same order).
pub fn compile_share(
    s: &crate::share::ConnectomeShare,
    opt: &CompileOptions,
) -> Result<CompiledNetwork, ConnectomeError> {
    let mut used = vec![false; opt.transmitters.receptors.len()];
    for u in &s.receptor_uses {
        if !(u.weighted || u.largest_count >= opt.min_synapse_count) {
            continue;
        }
        let r = opt.transmitters.resolve(u.receptor.as_deref(), u.transmitter.as_deref()).map_err(|e| {
            ConnectomeError::Compile(format!("connection #{} ({} -> {}): {e}", u.first_row, u.pre, u.post))
        })?;
        used[r] = true;
    }
    let mut net = compile_with(&s.connectome, opt, Some(&used))?;
    if let Some(&t) = net.chemical.targets.iter().find(|&&t| !s.targets.contains(&t)) {
        return Err(ConnectomeError::Compile(format!(
            "the share of neurons {}..{} holds a synapse onto neuron #{t}",
            s.targets.start, s.targets.end
        )));
    }
    if net.gap.is_empty() {
        net.held_targets = Some(s.targets.clone());
    }
    Ok(net)
}

/// [`compile`], with the receptor channels to keep given (`used`, by transmitter-map index) instead of those the
/// connections use.
fn compile_with(
    c: &Connectome,
    opt: &CompileOptions,
    used: Option<&[bool]>,
) -> Result<CompiledNetwork, ConnectomeError> {
    let bad = |what: &str, v: f64| ConnectomeError::Compile(format!("{what} = {v}: must be finite and > 0"));
    if !(opt.dt_ms.is_finite() && opt.dt_ms > 0.0) {
        return Err(bad("dt_ms", opt.dt_ms));
    }
    if !(opt.default_delay_ms.is_finite() && opt.default_delay_ms > 0.0) {
        return Err(bad("default_delay_ms", opt.default_delay_ms));
    }
    if !(opt.weight_per_synapse.is_finite() && opt.weight_per_synapse >= 0.0) {
        return Err(ConnectomeError::Compile(format!(
            "weight_per_synapse = {}: must be finite and >= 0 (the sign comes from the receptor class)",
            opt.weight_per_synapse
        )));
    }
    if !(opt.gap_per_junction_ns.is_finite() && opt.gap_per_junction_ns >= 0.0) {
        return Err(ConnectomeError::Compile(format!(
            "gap_per_junction_ns = {}: must be finite and >= 0",
            opt.gap_per_junction_ns
        )));
    }
    opt.transmitters.validate().map_err(ConnectomeError::Compile)?;
    c.validate()?;
    let index = c.id_index()?;
    let n = c.neurons.len() as u32;
    let delay_steps = |d_ms: f64| -> Result<u16, String> {
        let steps = (d_ms / opt.dt_ms).round();
        if steps < 1.0 {
            Err(format!("delay {d_ms} ms is shorter than one time step ({} ms)", opt.dt_ms))
        } else if steps > u16::MAX as f64 {
            Err(format!("delay {d_ms} ms exceeds {} steps", u16::MAX))
        } else {
            Ok(steps as u16)
        }
    };
    // Chemical connections → synapses with receptor indices into the full transmitter map.
    let chem: Vec<Result<Option<Synapse>, ConnectomeError>> = c
        .connections
        .par_iter()
        .enumerate()
        .filter(|(_, k)| k.kind == SynapseKind::Chemical)
        .map(|(i, k)| {
            if k.count < opt.min_synapse_count && k.weight.is_none() {
                return Ok(None);
            }
            let pre = index[&k.pre];
            let nt = k.transmitter.as_deref().or(c.neurons[pre as usize].transmitter.as_deref());
            let receptor = opt
                .transmitters
                .resolve(k.receptor.as_deref(), nt)
                .map_err(|e| ConnectomeError::Compile(format!("connection #{i} ({} -> {}): {e}", k.pre, k.post)))?;
            let excitatory = opt.transmitters.receptors[receptor].excitatory;
            let weight = match k.weight {
                Some(w) => w,
                None => {
                    let m = (k.count as f64 * opt.weight_per_synapse) as f32;
                    if excitatory { m } else { -m }
                }
            };
            let delay = delay_steps(k.delay_ms.map_or(opt.default_delay_ms, f64::from))
                .map_err(|e| ConnectomeError::Compile(format!("connection #{i} ({} -> {}): {e}", k.pre, k.post)))?;
            Ok(Some(Synapse { pre, post: index[&k.post], weight, delay, receptor: receptor as u8 }))
        })
        .collect();
    let mut synapses = Vec::with_capacity(chem.len());
    let mut dropped = 0;
    let mut n_chem = 0;
    for r in chem {
        match r? {
            Some(s) => {
                synapses.push(s);
                n_chem += 1
            }
            None => dropped += 1,
        }
    }
    // Keep only receptor classes in use, remapped in map order.
    let mut in_use = vec![false; opt.transmitters.receptors.len()];
    for s in &synapses {
        in_use[s.receptor as usize] = true;
    }
    let used = match used {
        Some(u) if u.len() == in_use.len() && in_use.iter().zip(u).all(|(&a, &b)| b || !a) => u.to_vec(),
        Some(_) => {
            return Err(ConnectomeError::Compile(
                "the receptor channels given for a share do not cover the ones its connections use".into(),
            ));
        }
        None => in_use,
    };
    let mut remap = vec![u8::MAX; used.len()];
    let mut receptors = Vec::new();
    for (i, u) in used.iter().enumerate() {
        if *u {
            remap[i] = receptors.len() as u8;
            receptors.push(opt.transmitters.receptors[i].clone());
        }
    }
    synapses.par_iter_mut().for_each(|s| s.receptor = remap[s.receptor as usize]);
    let chemical = SynapseMatrix::from_synapses(n, n, synapses)?;
    let junctions: Vec<(u32, u32, f32)> = c
        .connections
        .iter()
        .filter(|k| k.kind == SynapseKind::Electrical)
        .map(|k| {
            let g = k.weight.map_or(k.count as f64 * opt.gap_per_junction_ns, |w| w as f64);
            (index[&k.pre], index[&k.post], g as f32)
        })
        .collect();
    let n_elec = junctions.len();
    let gap = GapMatrix::from_junctions(n, &junctions)?;
    let mut net = CompiledNetwork {
        name: c.name.clone(),
        provenance: c.provenance.clone(),
        neurons: c.neurons.clone(),
        receptors,
        chemical,
        gap,
        dt_ms: opt.dt_ms,
        report: CompileReport::default(),
        held_targets: None,
    };
    net.report = net.describe(dropped, n_elec, opt.transmitters.source.clone());
    net.report.chemical_connections = n_chem;
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{Connection, Neuron};

    fn tiny() -> Connectome {
        let mut a = Neuron::new(10, "A");
        a.transmitter = Some("ACh".into());
        let mut b = Neuron::new(20, "B");
        b.transmitter = Some("GABA".into());
        Connectome {
            name: "tiny".into(),
            provenance: vec![],
            neurons: vec![a, b, Neuron::new(30, "C")],
            connections: vec![
                Connection::chemical(10, 20, 3.0),
                Connection::chemical(20, 10, 2.0),
                Connection::chemical(30, 10, 1.0),
                Connection::electrical(10, 30, 2.0),
            ],
        }
    }

    #[test]
    fn signs_delays_and_receptors_follow_the_map() {
        let opt = CompileOptions {
            transmitters: TransmitterMap::fly(),
            weight_per_synapse: 0.5,
            default_delay_ms: 1.8,
            gap_per_junction_ns: 0.1,
            ..Default::default()
        };
        let net = compile(&tiny(), &opt).unwrap();
        let names: Vec<_> = net.receptors.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["ACh", "GABA", "other"]);
        let mut s = net.chemical.synapses();
        s.sort_by_key(|s| s.pre);
        assert_eq!((s[0].pre, s[0].post, s[0].weight, s[0].delay, s[0].receptor), (0, 1, 1.5, 18, 0));
        assert_eq!((s[1].weight, s[1].receptor), (-1.0, 1));
        assert_eq!((s[2].weight, s[2].receptor), (0.5, 2));
        assert_eq!(net.gap.row(0), (&[2u32][..], &[0.2f32][..]));
        assert_eq!(net.report.synapses, 3);
    }

    #[test]
    fn sub_step_delay_and_unknown_receptor_are_errors() {
        let mut c = tiny();
        c.connections[0].delay_ms = Some(0.01);
        let e = compile(&c, &CompileOptions { transmitters: TransmitterMap::fly(), ..Default::default() });
        assert!(e.unwrap_err().to_string().contains("shorter than one time step"));
        let mut c = tiny();
        c.connections[0].receptor = Some("NMDA".into());
        let e = compile(&c, &CompileOptions::default()).unwrap_err().to_string();
        assert!(e.contains("connection #0") && e.contains("NMDA"), "{e}");
    }
}
