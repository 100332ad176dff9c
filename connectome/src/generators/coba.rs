//! Vogels & Abbott (2005) conductance-based (COBA) benchmark network: the CUBA wiring
//! ([`super::cuba`]: 80 % excitatory, `K` = 80 inputs per neuron) with NEST `iaf_cond_exp` neurons
//! (`lif_cond_exp`): exponential conductances, reversal potentials 0 and −80 mV, and a constant drive.
//!
//! Vogels TP, Abbott LF (2005) Signal propagation and logic gating in networks of integrate-and-fire
//! neurons. J Neurosci 25(46):10786–10795; benchmark 1 of Brette et al. (2007) J Comput Neurosci
//! 23:349–398. Parameters as the Brian2 benchmark version of COBA (brian2cuda / Brian2GeNN benchmarks,
//! Stimberg et al. 2020 Sci Rep 10:410): τ_m = 20 ms with g_L = 10 nS (C_m = 200 pF), E_L = V_reset = −60 mV,
//! V_th = −50 mV, t_ref = 5 ms, τ_e = 5 ms, τ_i = 10 ms, conductance jumps 6 nS (`we = 0.6` g_L) and 67 nS
//! (`wi = 6.7` g_L), and the constant drive `I = 20 mV` of their equation, i.e. 200 pA (20 mV × g_L), which
//! keeps the network active without the original's initial Poisson kick. The peer scripts
//! `benches/peers/coba_nest.py` and `coba_brian2.py` build the same network.

use serde::{Deserialize, Serialize};

use neurotwin_models::NeuronParams;
use neurotwin_models::lif_cond_exp::LifCondExpParams;

use super::cuba::{EiWiring, ei_populations};
use super::{BackgroundInput, GeneratedNetwork};
use crate::error::ConnectomeError;
use crate::share::Share;

pub use super::cuba::CubaConnectivity as CobaConnectivity;

/// Parameters of the COBA network (defaults: the peer benchmark).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CobaConfig {
    /// Number of neurons; the first `int(0.8 N)` are excitatory.
    pub n: u32,
    /// Mean number of inputs per neuron.
    pub k: u32,
    pub connectivity: CobaConnectivity,
    /// Fixed in-degree only: draw sources with replacement (NEST default).
    pub allow_multapses: bool,
    /// Excitatory conductance jump (nS).
    pub weight_exc_ns: f64,
    /// Inhibitory conductance jump (nS; negative, as NEST takes it; its magnitude opens the conductance).
    pub weight_inh_ns: f64,
    /// Synaptic delay (ms).
    pub delay_ms: f64,
    /// Constant drive of every neuron (pA).
    pub i_e_pa: f64,
}

impl Default for CobaConfig {
    fn default() -> Self {
        Self {
            n: 4000,
            k: 80,
            connectivity: CobaConnectivity::FixedIndegree,
            allow_multapses: true,
            weight_exc_ns: 6.0,
            weight_inh_ns: -67.0,
            delay_ms: 0.1,
            i_e_pa: 200.0,
        }
    }
}

/// The neuron parameters of the benchmark (NEST `iaf_cond_exp`), with constant drive `i_e` (pA).
pub fn coba_neuron_params(i_e: f64) -> LifCondExpParams {
    LifCondExpParams {
        c_m: 200.0,
        g_l: 10.0,
        e_l: -60.0,
        v_th: -50.0,
        v_reset: -60.0,
        t_ref: 5.0,
        i_e,
        e_ex: 0.0,
        e_in: -80.0,
        tau_syn_ex: 5.0,
        tau_syn_in: 10.0,
        ..Default::default()
    }
}

/// Builds the COBA network for time step `dt_ms`.
pub fn coba(cfg: &CobaConfig, seed: u64, dt_ms: f64) -> Result<GeneratedNetwork, ConnectomeError> {
    coba_part(cfg, seed, dt_ms, &Share::WHOLE)
}

/// [`coba`] for one process of a split run: only the synapses onto `share`'s targets.
pub fn coba_part(cfg: &CobaConfig, seed: u64, dt_ms: f64, share: &Share) -> Result<GeneratedNetwork, ConnectomeError> {
    if !cfg.i_e_pa.is_finite() {
        return Err(ConnectomeError::Compile(format!("COBA: i_e_pa = {} must be finite", cfg.i_e_pa)));
    }
    let wiring = EiWiring {
        label: "COBA",
        n: cfg.n,
        k: cfg.k,
        connectivity: cfg.connectivity,
        allow_multapses: cfg.allow_multapses,
        weights: (cfg.weight_exc_ns, cfg.weight_inh_ns),
        delay_ms: cfg.delay_ms,
    };
    let (mut network, ranges) = wiring.build(seed, dt_ms, share)?;
    network.provenance = vec![
        "Vogels TP, Abbott LF (2005) J Neurosci 25:10786 (COBA benchmark; Brette et al. 2007 J Comput Neurosci \
         23:349, benchmark 1; parameters of the Brian2 benchmark version, Stimberg et al. 2020 Sci Rep 10:410)"
            .into(),
        format!(
            "neurotwin generator (connectome/src/generators/coba.rs) after the peer scripts coba_nest.py / \
             coba_brian2.py: {}, seed {seed}",
            wiring.describe()
        ),
    ];
    let params = NeuronParams::LifCondExp(coba_neuron_params(cfg.i_e_pa));
    Ok(GeneratedNetwork {
        network,
        populations: ei_populations(ranges, params),
        background: Vec::<BackgroundInput>::new(),
        expected_rate_hz: expected_rate(cfg, dt_ms),
    })
}

/// Peer measurements of the default network (`make peers` on this project's 2-core machine, 2026-12-07,
/// 10 seeds each, mean over all neurons over 1 s from t = 0): NEST 3.10 `iaf_cond_exp` 16.48 ± 0.35 Hz,
/// Brian2 2.11 (exponential Euler, standalone) 16.36 ± 0.28 Hz; their mean.
fn expected_rate(cfg: &CobaConfig, dt_ms: f64) -> Option<(f64, String)> {
    let standard = super::same(dt_ms, 0.1) && *cfg == CobaConfig::default();
    standard.then(|| {
        (
            16.42,
            "N=4000 K=80 fixed in-degree: NEST 3.10 16.48 ± 0.35 Hz, Brian2 2.11 16.36 ± 0.28 Hz (10 seeds each; \
             benches/peers/coba, BENCHMARKS.md 2026-12-07)"
                .to_string(),
        )
    })
}

impl CobaConfig {
    /// Mean rate (Hz) measured by peer simulators for this configuration at time step `dt_ms`, with its
    /// source; `None` for configurations no peer has measured.
    pub fn expected_rate_hz(&self, dt_ms: f64) -> Option<(f64, String)> {
        expected_rate(self, dt_ms)
    }
}
