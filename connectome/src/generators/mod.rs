//! Generators of standard benchmark networks, built straight into CSR ([`crate::SynapseMatrix`]).
//!
//! * [`cuba()`]: Vogels & Abbott (2005) current-based network as the peer benchmark scripts build it.
//! * [`coba()`]: the same wiring with conductance-based synapses (`lif_cond_exp`, NEST `iaf_cond_exp`).
//! * [`brunel()`]: Brunel (2000) sparse balanced network with delta synapses (NEST's
//!   `brunel_delta_nest.py`).
//! * [`potjans_diesmann()`]: Potjans & Diesmann (2014) cortical microcircuit (NEST's
//!   `pynest/examples/Potjans_2014`), with the example's N- and K-scaling.
//! * [`flybrain()`]: a synthetic network with the size and degree statistics of the adult fly brain (FlyWire v783).
//!
//! Every generator returns a [`GeneratedNetwork`]: the compiled network (receptor channels `exc` and
//! `inh`, in that order), the populations with their neuron parameters and initial-potential
//! distributions, the background input and, where peers have measured it, the expected mean rate.
//!
//! **Determinism.** All randomness comes from [`neurotwin_models::CounterRng`] on
//! [`neurotwin_models::Stream::Connectivity`] through [`neurotwin_models::SequenceRng`] sequences keyed
//! by `(projection, postsynaptic neuron)` (fixed in-degree, Bernoulli) or by `(projection, chunk of
//! draws)` and `(projection, presynaptic neuron)` (fixed total number). Synapses are generated in
//! parallel (rayon) and the matrix is sorted by [`crate::SynapseMatrix::from_synapses`], so the network
//! is a pure function of the configuration, the seed and `dt`, independent of the number of threads.
//!
//! **Split runs.** Each generator has a `*_part` form that builds one process's share of the network
//! ([`crate::share`]): the synapses onto its targets only, equal to the whole network's synapses onto them (the
//! random numbers are keyed on the target or on the source neuron, never on the process).
//!
//! Normal deviates (Marsaglia's polar method) use the platform's `ln`: networks with normally distributed
//! weights or delays are reproducible on one platform; bit-identity across platforms is not promised.

pub mod brunel;
pub mod coba;
pub mod cuba;
pub mod flybrain;
pub mod pd14;
pub mod pd14_params;
mod sampling;

pub use brunel::{BrunelConfig, brunel, brunel_part};
pub use coba::{CobaConfig, coba, coba_part};
pub use cuba::{CubaConfig, CubaConnectivity, cuba, cuba_part};
pub use flybrain::{FlyBrainConfig, flybrain, flybrain_part};
pub use pd14::{Pd14Config, Pd14Derived, V0Type, potjans_diesmann, potjans_diesmann_part};

use neurotwin_models::{NeuronParams, ReceptorChannel};
use serde::{Deserialize, Serialize};
use std::ops::Range;

use crate::compile::CompiledNetwork;
use crate::error::ConnectomeError;
use crate::network::Neuron;

/// Index of the excitatory receptor channel (`"exc"`) in every generated network.
pub const EXC: u8 = 0;
/// Index of the inhibitory receptor channel (`"inh"`) in every generated network.
pub const INH: u8 = 1;

/// A generated benchmark network with everything a simulation of it needs besides the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratedNetwork {
    /// Receptors `exc` (index [`EXC`]) and `inh` (index [`INH`]); neurons named `<population><i>` (e.g.
    /// `E0`, `L23I17`) with `cell_type` = population name and `id` = global index.
    pub network: CompiledNetwork,
    /// Populations in neuron order; their ranges tile `0..n_neurons`.
    pub populations: Vec<Population>,
    /// External input (independent per neuron).
    pub background: Vec<BackgroundInput>,
    /// Mean firing rate over all neurons (Hz) measured by peer simulators for this exact configuration,
    /// and its source; `None` when no peer has measured the configuration.
    pub expected_rate_hz: Option<(f64, String)>,
}

/// One population: a contiguous range of neurons sharing parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Population {
    pub name: String,
    /// Neuron indices of the population.
    pub range: Range<u32>,
    pub params: NeuronParams,
    pub v_init: VInit,
}

impl Population {
    pub fn len(&self) -> u32 {
        self.range.end - self.range.start
    }
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

/// Distribution of the initial membrane potential (mV), drawn independently per neuron.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VInit {
    /// The model's resting potential (`E_L`).
    Rest,
    /// Uniform on `[lo, hi)`.
    Uniform { lo: f64, hi: f64 },
    /// Normal with mean and standard deviation (unbounded, as NEST's `nest.random.normal`).
    Normal { mean: f64, sd: f64 },
}

/// External input to every neuron of one population.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackgroundInput {
    /// An independent Poisson spike train into each neuron of `population` with total rate `rate_hz`
    /// (e.g. `K_ext × 8 Hz`), each spike a synaptic event of `weight` (model unit: pA for `lif_exp`, mV for
    /// `lif_delta`) on receptor channel `receptor`.
    Poisson { population: usize, rate_hz: f64, weight: f64, receptor: String },
    /// A constant current (pA) into each neuron of `population`, in addition to the parameter set's `i_e`
    /// (generators leave `i_e` at 0 and put DC input here).
    Dc { population: usize, amplitude_pa: f64 },
}

impl GeneratedNetwork {
    pub fn n_neurons(&self) -> u32 {
        self.network.neurons.len() as u32
    }

    /// Population index of neuron `i`.
    pub fn population_of(&self, i: u32) -> Option<usize> {
        self.populations.iter().position(|p| p.range.contains(&i))
    }

    /// Population index of every neuron (e.g. a parameter-set index per neuron).
    pub fn population_index(&self) -> Vec<u16> {
        let mut v = vec![0u16; self.n_neurons() as usize];
        for (k, p) in self.populations.iter().enumerate() {
            v[p.range.start as usize..p.range.end as usize].fill(k as u16);
        }
        v
    }

    /// Total DC input (pA) of population `pop` from [`BackgroundInput::Dc`] entries.
    pub fn dc_pa(&self, pop: usize) -> f64 {
        self.background
            .iter()
            .map(|b| match b {
                BackgroundInput::Dc { population, amplitude_pa } if *population == pop => *amplitude_pa,
                _ => 0.0,
            })
            .sum()
    }
}

/// The two receptor channels of every generated network: `exc` (index 0), `inh` (index 1).
pub fn exc_inh_receptors() -> Vec<ReceptorChannel> {
    vec![
        ReceptorChannel { name: "exc".into(), excitatory: true },
        ReceptorChannel { name: "inh".into(), excitatory: false },
    ]
}

/// Delay in whole steps as NEST rounds it (`ld_round(d / dt)` = ⌊d/dt + ½⌋); at least one step.
pub fn delay_steps(delay_ms: f64, dt_ms: f64) -> Result<u16, ConnectomeError> {
    let steps = (delay_ms / dt_ms + 0.5).floor();
    if !(delay_ms.is_finite() && steps >= 1.0) {
        Err(ConnectomeError::Compile(format!(
            "delay {delay_ms} ms is shorter than one time step ({dt_ms} ms) after rounding"
        )))
    } else if steps > u16::MAX as f64 {
        Err(ConnectomeError::Compile(format!("delay {delay_ms} ms exceeds {} steps of {dt_ms} ms", u16::MAX)))
    } else {
        Ok(steps as u16)
    }
}

/// Memory per neuron of a generated network while it is built (bytes): the neuron record with its name and
/// cell type (≈ 150 B) plus per-neuron generator arrays. An estimate for [`check_memory`], not a bound.
pub const BYTES_PER_NEURON: f64 = 200.0;
/// Memory per synapse of generators that go through a synapse list (CUBA, Brunel): the 16-byte
/// [`crate::Synapse`] plus the compiled matrix built from it (targets, weights; ≈ 10 B). Measured: 25 B
/// per synapse for Brunel ×4 (BENCHMARKS.md, 1565 MB for 62.5 M synapses).
pub const BYTES_PER_LISTED_SYNAPSE: f64 = 26.0;
/// Memory per synapse of generators that build rows straight into CSR (PD14: 4-byte target and 4-byte
/// weight; measured 8.2 B per synapse, 2455 MB for 298.9 M synapses).
pub const BYTES_PER_ROW_SYNAPSE: f64 = 8.0;

/// Refuses to build a network of `neurons` neurons and `synapses` synapses (each costing `bytes_per_synapse`
/// while building) when the estimate exceeds the memory limit of [`neurotwin_io::budget`]; called by every
/// generator before it allocates anything. `what` names the generator and the field that sets the size,
/// `fix` says how to shrink it.
pub(crate) fn check_memory(
    what: &str,
    neurons: f64,
    synapses: f64,
    bytes_per_synapse: f64,
    fix: &str,
) -> Result<(), ConnectomeError> {
    let bytes = neurons * BYTES_PER_NEURON + synapses * bytes_per_synapse;
    let what = format!("{what} ({neurons:.3e} neurons, {synapses:.3e} synapses)");
    neurotwin_io::budget::check_memory(&what, bytes, fix).map_err(|e| ConnectomeError::Compile(e.to_string()))
}

pub(crate) fn check_dt(dt_ms: f64) -> Result<(), ConnectomeError> {
    if dt_ms.is_finite() && dt_ms > 0.0 {
        Ok(())
    } else {
        Err(ConnectomeError::Compile(format!("dt_ms = {dt_ms}: must be finite and > 0")))
    }
}

/// Neurons of consecutive populations `(name, size)`, named `<name><local index>`.
pub(crate) fn make_neurons(pops: &[(&str, u32)]) -> Vec<Neuron> {
    let total: u64 = pops.iter().map(|p| p.1 as u64).sum();
    let mut out = Vec::with_capacity(total as usize);
    for (name, n) in pops {
        for i in 0..*n {
            let mut neuron = Neuron::new(out.len() as u64, format!("{name}{i}"));
            neuron.cell_type = name.to_string();
            out.push(neuron);
        }
    }
    out
}

/// Consecutive ranges of populations of the given sizes.
pub(crate) fn ranges(sizes: &[u32]) -> Result<Vec<Range<u32>>, ConnectomeError> {
    let mut start = 0u32;
    sizes
        .iter()
        .map(|&n| {
            let end = start.checked_add(n).ok_or_else(|| ConnectomeError::Compile("more than 2^32 neurons".into()))?;
            let r = start..end;
            start = end;
            Ok(r)
        })
        .collect()
}

/// True when `a` and `b` agree to 1e-9 relative (configuration matching for expected rates).
pub(crate) fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}
