//! Vogels & Abbott (2005) current-based (CUBA) benchmark network, as the peer scripts build it
//! (`/work/shared/peers/cuba_nest.py`, `cuba_brian2.py`; Brian2's documentation example `CUBA`).
//!
//! Vogels TP, Abbott LF (2005) Signal propagation and logic gating in networks of integrate-and-fire
//! neurons. J Neurosci 25(46):10786–10795; benchmark 2 of Brette et al. (2007) J Comput Neurosci
//! 23:349–398. Brian's `dv/dt = (ge + gi − (v − E_L))/τ_m` with voltage jumps of 1.62 mV (exc) and −9 mV
//! (inh) equals NEST `iaf_psc_exp` with C_m = 200 pF, τ_m = 20 ms and current jumps w·C_m/τ_m = 16.2 pA and
//! −90 pA.

use serde::{Deserialize, Serialize};
use std::ops::Range;

use neurotwin_models::NeuronParams;
use neurotwin_models::lif_exp::LifExpParams;

use super::sampling::{self, Indegree, Pairwise};
use super::{BackgroundInput, EXC, GeneratedNetwork, INH, Population, VInit};
use crate::compile::CompiledNetwork;
use crate::error::ConnectomeError;
use crate::gap::GapMatrix;
use crate::matrix::SynapseMatrix;
use crate::share::Share;

/// How the recurrent connections are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CubaConnectivity {
    /// NEST `fixed_indegree`: every neuron receives `K_E = round(0.8 K)` synapses from E and
    /// `K_I = K − K_E` from I (with replacement unless `allow_multapses` is false; autapses allowed).
    FixedIndegree,
    /// NEST `pairwise_bernoulli` / Brian2 `connect(p=…)`: every pair connected with `p = K/N`.
    Bernoulli,
}

/// Parameters of the CUBA network (defaults: the peer benchmark).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CubaConfig {
    /// Number of neurons; the first `int(0.8 N)` are excitatory.
    pub n: u32,
    /// Mean number of inputs per neuron.
    pub k: u32,
    pub connectivity: CubaConnectivity,
    /// Fixed in-degree only: draw sources with replacement (NEST default). `false` samples without
    /// replacement, as Brian2's `sample(NE, size=KE)` in `cuba_brian2.py`.
    pub allow_multapses: bool,
    /// Excitatory / inhibitory PSC amplitudes (pA).
    pub weight_exc_pa: f64,
    pub weight_inh_pa: f64,
    /// Synaptic delay (ms).
    pub delay_ms: f64,
}

impl Default for CubaConfig {
    fn default() -> Self {
        Self {
            n: 4000,
            k: 80,
            connectivity: CubaConnectivity::FixedIndegree,
            allow_multapses: true,
            weight_exc_pa: 16.2,
            weight_inh_pa: -90.0,
            delay_ms: 0.1,
        }
    }
}

impl CubaConfig {
    /// Excitatory neurons: `int(0.8 N)`.
    pub fn n_exc(&self) -> u32 {
        (0.8 * self.n as f64) as u32
    }

    /// `(K_E, K_I)` = `(round(0.8 K), K − K_E)` (Python's round half to even).
    pub fn indegrees(&self) -> (u32, u32) {
        let ke = (0.8 * self.k as f64).round_ties_even() as u32;
        (ke, self.k - ke)
    }
}

/// The neuron parameters of the benchmark (NEST `iaf_psc_exp`).
pub fn cuba_neuron_params() -> LifExpParams {
    LifExpParams {
        c_m: 200.0,
        tau_m: 20.0,
        e_l: -49.0,
        v_th: -50.0,
        v_reset: -60.0,
        t_ref: 5.0,
        i_e: 0.0,
        tau_syn_ex: 5.0,
        tau_syn_in: 10.0,
        ..Default::default()
    }
}

/// Builds the CUBA network for time step `dt_ms`.
pub fn cuba(cfg: &CubaConfig, seed: u64, dt_ms: f64) -> Result<GeneratedNetwork, ConnectomeError> {
    cuba_part(cfg, seed, dt_ms, &Share::WHOLE)
}

/// [`cuba`] for one process of a split run: only the synapses onto `share`'s targets, drawn per target exactly
/// as in the whole network.
pub fn cuba_part(cfg: &CubaConfig, seed: u64, dt_ms: f64, share: &Share) -> Result<GeneratedNetwork, ConnectomeError> {
    let wiring = EiWiring {
        label: "CUBA",
        n: cfg.n,
        k: cfg.k,
        connectivity: cfg.connectivity,
        allow_multapses: cfg.allow_multapses,
        weights: (cfg.weight_exc_pa, cfg.weight_inh_pa),
        delay_ms: cfg.delay_ms,
    };
    let (mut network, ranges) = wiring.build(seed, dt_ms, share)?;
    network.provenance = vec![
        "Vogels TP, Abbott LF (2005) J Neurosci 25:10786 (CUBA benchmark; Brette et al. 2007 J Comput \
         Neurosci 23:349, benchmark 2)"
            .into(),
        format!(
            "neurotwin generator (connectome/src/generators/cuba.rs) after the peer scripts cuba_nest.py / \
             cuba_brian2.py: {}, seed {seed}",
            wiring.describe()
        ),
    ];
    let params = NeuronParams::LifExp(cuba_neuron_params());
    Ok(GeneratedNetwork {
        network,
        populations: ei_populations(ranges, params),
        background: Vec::<BackgroundInput>::new(),
        expected_rate_hz: expected_rate(cfg, dt_ms),
    })
}

/// The recurrent E/I wiring the CUBA and COBA benchmarks share: `int(0.8 N)` excitatory neurons then the
/// inhibitory ones, `K` inputs per neuron (fixed in-degree or Bernoulli), one weight per projection.
pub(super) struct EiWiring {
    /// Benchmark name for error messages (`CUBA`, `COBA`).
    pub label: &'static str,
    pub n: u32,
    pub k: u32,
    pub connectivity: CubaConnectivity,
    pub allow_multapses: bool,
    /// Excitatory and inhibitory weight (the neuron model's synaptic unit).
    pub weights: (f64, f64),
    pub delay_ms: f64,
}

impl EiWiring {
    /// The connectivity in words, for provenance.
    pub fn describe(&self) -> String {
        match self.connectivity {
            CubaConnectivity::FixedIndegree => format!("fixed in-degree K={}", self.k),
            CubaConnectivity::Bernoulli => format!("Bernoulli p={}/{}", self.k, self.n),
        }
    }

    /// The compiled network (neurons `E…` then `I…`, receptors `exc`, `inh`; `share`'s targets only) and the
    /// two population ranges. The random numbers depend only on the seed and the target neuron, so CUBA and
    /// COBA of equal `n`, `k`, connectivity and seed have the same wiring.
    pub fn build(
        &self,
        seed: u64,
        dt_ms: f64,
        share: &Share,
    ) -> Result<(CompiledNetwork, Vec<Range<u32>>), ConnectomeError> {
        let label = self.label;
        super::check_dt(dt_ms)?;
        if self.n == 0 {
            return Err(ConnectomeError::Compile(format!("{label}: n must be > 0")));
        }
        if !(self.weights.0.is_finite() && self.weights.1.is_finite()) {
            return Err(ConnectomeError::Compile(format!("{label}: weights must be finite")));
        }
        let delay = super::delay_steps(self.delay_ms, dt_ms)?;
        super::check_memory(
            &format!("the {label} network with n = {} and k = {}", self.n, self.k),
            self.n as f64,
            self.n as f64 * self.k as f64 / share.size() as f64,
            super::BYTES_PER_LISTED_SYNAPSE,
            "lower the generator's `n` (neurons) or `k` (inputs per neuron)",
        )?;
        let n = self.n;
        let ne = (0.8 * n as f64) as u32;
        let ranges = super::ranges(&[ne, n - ne])?;
        let root = sampling::root(seed);
        let (we, wi) = (self.weights.0 as f32, self.weights.1 as f32);
        let posts = share.targets(n);
        let synapses = match self.connectivity {
            CubaConnectivity::FixedIndegree => {
                let ke = (0.8 * self.k as f64).round_ties_even() as u32;
                let ki = self.k - ke;
                let inputs = [
                    Indegree { sources: ranges[0].clone(), k: ke, weight: we, delay, receptor: EXC, substream: 0 },
                    Indegree { sources: ranges[1].clone(), k: ki, weight: wi, delay, receptor: INH, substream: 1 },
                ];
                sampling::fixed_indegree(root, posts.clone(), &inputs, self.allow_multapses)?
            }
            CubaConnectivity::Bernoulli => {
                let p = self.k as f64 / n as f64;
                let inputs = [
                    Pairwise { sources: ranges[0].clone(), p, weight: we, delay, receptor: EXC, substream: 2 },
                    Pairwise { sources: ranges[1].clone(), p, weight: wi, delay, receptor: INH, substream: 3 },
                ];
                sampling::pairwise_bernoulli(root, posts.clone(), &inputs)?
            }
        };
        let chemical = SynapseMatrix::from_synapses(n, n, synapses)?;
        let neurons = super::make_neurons(&[("E", ne), ("I", n - ne)]);
        let mut network = CompiledNetwork::from_parts(
            format!("{}-N{n}-K{}", label.to_lowercase(), self.k),
            vec![],
            neurons,
            super::exc_inh_receptors(),
            chemical,
            GapMatrix::empty(n),
            dt_ms,
        );
        network.held_targets = (!share.is_whole()).then_some(posts);
        Ok((network, ranges))
    }
}

/// Populations `E` and `I` of `ranges` with `params` and V uniform between reset and threshold
/// (−60 … −50 mV), as the peer scripts initialise them.
pub(super) fn ei_populations(ranges: Vec<Range<u32>>, params: NeuronParams) -> Vec<Population> {
    let v_init = VInit::Uniform { lo: -60.0, hi: -50.0 };
    ["E", "I"]
        .iter()
        .zip(ranges)
        .map(|(name, range)| Population {
            name: name.to_string(),
            range,
            params: params.clone(),
            v_init: v_init.clone(),
        })
        .collect()
}

/// Peer measurements (NEST 3.10, Brian2 2.11; `/work/shared/peers/results/summary-2026-11-23.md`, mean
/// over all neurons over 1 s from t = 0).
fn expected_rate(cfg: &CubaConfig, dt_ms: f64) -> Option<(f64, String)> {
    let d = CubaConfig::default();
    let standard = super::same(dt_ms, 0.1)
        && cfg.k == 80
        && cfg.weight_exc_pa == d.weight_exc_pa
        && cfg.weight_inh_pa == d.weight_inh_pa
        && cfg.delay_ms == d.delay_ms;
    if !standard {
        return None;
    }
    let src = "peers summary-2026-11-23.md (NEST 3.10 with multapses, Brian2 2.11 standalone without)";
    match (cfg.connectivity, cfg.n) {
        (CubaConnectivity::FixedIndegree, 4000) => {
            Some((5.17, format!("N=4000 K=80 fixed in-degree: NEST 5.13–5.18 Hz, Brian2 5.10–5.28 Hz; {src}")))
        }
        (CubaConnectivity::FixedIndegree, 40000) => {
            Some((5.18, format!("N=40000 K=80 fixed in-degree: NEST 5.20 Hz, Brian2 5.16 Hz; {src}")))
        }
        (CubaConnectivity::FixedIndegree, 100_000) => {
            Some((5.18, format!("N=100000 K=80 fixed in-degree: NEST 5.16–5.20 Hz, Brian2 5.18–5.19 Hz; {src}")))
        }
        (CubaConnectivity::Bernoulli, 4000) => {
            Some((5.31, format!("N=4000 Bernoulli p=0.02: NEST 5.31 Hz, Brian2 5.57 Hz; {src}")))
        }
        _ => None,
    }
}

impl CubaConfig {
    /// Mean rate (Hz) measured by peer simulators for this configuration at time step `dt_ms`, with its
    /// source; `None` for configurations no peer has measured.
    pub fn expected_rate_hz(&self, dt_ms: f64) -> Option<(f64, String)> {
        expected_rate(self, dt_ms)
    }
}
