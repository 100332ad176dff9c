//! Brunel (2000) sparse balanced network with delta synapses, as NEST's example
//! `pynest/examples/brunel_delta_nest.py` and the peer script `/work/shared/peers/brunel_nest.py`.
//!
//! Brunel N (2000) Dynamics of sparsely connected networks of excitatory and inhibitory spiking neurons.
//! J Comput Neurosci 8:183–208. Model A, asynchronous irregular regime (g = 5, η = 2).

use serde::{Deserialize, Serialize};

use neurotwin_models::NeuronParams;
use neurotwin_models::lif_delta::LifDeltaParams;

use super::sampling::{self, Indegree};
use super::{BackgroundInput, EXC, GeneratedNetwork, INH, Population, VInit};
use crate::compile::CompiledNetwork;
use crate::error::ConnectomeError;
use crate::gap::GapMatrix;
use crate::matrix::SynapseMatrix;
use crate::share::Share;

/// Parameters of the Brunel network (defaults: `brunel_delta_nest.py`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrunelConfig {
    /// NE = 4·order excitatory, NI = order inhibitory neurons.
    pub order: u32,
    /// Excitatory and inhibitory in-degrees when `indegree_scales_with_n` is false (the peer benchmark
    /// keeps them fixed when scaling `order`).
    pub ce: u32,
    pub ci: u32,
    /// Use the example's `CE = int(ε NE)`, `CI = int(ε NI)` with ε = 0.1 instead of `ce`/`ci`.
    pub indegree_scales_with_n: bool,
    /// Draw sources with replacement (NEST `fixed_indegree` default); autapses are allowed.
    pub allow_multapses: bool,
    /// Excitatory PSP amplitude J (mV).
    pub j_mv: f64,
    /// Relative inhibitory strength: J_I = −g J.
    pub g: f64,
    /// External rate relative to threshold rate.
    pub eta: f64,
    /// Synaptic delay (ms).
    pub delay_ms: f64,
    /// Membrane time constant (ms), threshold θ (mV, relative to E_L = 0), refractory period (ms).
    pub tau_m_ms: f64,
    pub theta_mv: f64,
    pub t_ref_ms: f64,
}

impl Default for BrunelConfig {
    fn default() -> Self {
        Self {
            order: 2500,
            ce: 1000,
            ci: 250,
            indegree_scales_with_n: false,
            allow_multapses: true,
            j_mv: 0.1,
            g: 5.0,
            eta: 2.0,
            delay_ms: 1.5,
            tau_m_ms: 20.0,
            theta_mv: 20.0,
            t_ref_ms: 2.0,
        }
    }
}

impl BrunelConfig {
    /// `(NE, NI)`.
    pub fn sizes(&self) -> (u32, u32) {
        (4 * self.order, self.order)
    }

    /// `(CE, CI)`.
    pub fn indegrees(&self) -> (u32, u32) {
        if self.indegree_scales_with_n {
            let (ne, ni) = self.sizes();
            ((0.1 * ne as f64) as u32, (0.1 * ni as f64) as u32)
        } else {
            (self.ce, self.ci)
        }
    }

    /// Total rate of the Poisson input per neuron (Hz): `1000 · η · ν_th · CE` with
    /// `ν_th = θ / (J · CE · τ_m)` (per ms).
    pub fn background_rate_hz(&self) -> f64 {
        let ce = self.indegrees().0 as f64;
        let nu_th = self.theta_mv / (self.j_mv * ce * self.tau_m_ms);
        1000.0 * self.eta * nu_th * ce
    }

    /// NEST `iaf_psc_delta` parameters of the example (`C_m` = 1 pF, E_L = V_reset = 0).
    pub fn neuron_params(&self) -> LifDeltaParams {
        LifDeltaParams {
            c_m: 1.0,
            tau_m: self.tau_m_ms,
            e_l: 0.0,
            v_th: self.theta_mv,
            v_reset: 0.0,
            t_ref: self.t_ref_ms,
            i_e: 0.0,
            ..Default::default()
        }
    }
}

/// Builds the Brunel network for time step `dt_ms`. Weights are PSP jumps in mV (`lif_delta`).
pub fn brunel(cfg: &BrunelConfig, seed: u64, dt_ms: f64) -> Result<GeneratedNetwork, ConnectomeError> {
    brunel_part(cfg, seed, dt_ms, &Share::WHOLE)
}

/// [`brunel`] for one process of a split run: only the synapses onto `share`'s targets, drawn per target exactly
/// as in the whole network.
pub fn brunel_part(
    cfg: &BrunelConfig,
    seed: u64,
    dt_ms: f64,
    share: &Share,
) -> Result<GeneratedNetwork, ConnectomeError> {
    super::check_dt(dt_ms)?;
    if cfg.order == 0 || cfg.order > u32::MAX / 5 {
        return Err(ConnectomeError::Compile(format!("Brunel: order {} must lie in 1..={}", cfg.order, u32::MAX / 5)));
    }
    for (name, v) in [("j_mv", cfg.j_mv), ("g", cfg.g), ("eta", cfg.eta), ("tau_m_ms", cfg.tau_m_ms)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(ConnectomeError::Compile(format!("Brunel: {name} = {v} must be finite and >= 0")));
        }
    }
    let delay = super::delay_steps(cfg.delay_ms, dt_ms)?;
    let (ne, ni) = cfg.sizes();
    let n = ne + ni;
    let (ce, ci) = cfg.indegrees();
    super::check_memory(
        &format!("the Brunel network with order = {} (5 × order neurons, CE = {ce}, CI = {ci})", cfg.order),
        n as f64,
        n as f64 * (ce as f64 + ci as f64) / share.size() as f64,
        super::BYTES_PER_LISTED_SYNAPSE,
        "lower the generator's `order` (or `ce`/`ci`)",
    )?;
    let ranges = super::ranges(&[ne, ni])?;
    let (je, ji) = (cfg.j_mv, -cfg.g * cfg.j_mv);
    let inputs = [
        Indegree { sources: ranges[0].clone(), k: ce, weight: je as f32, delay, receptor: EXC, substream: 0 },
        Indegree { sources: ranges[1].clone(), k: ci, weight: ji as f32, delay, receptor: INH, substream: 1 },
    ];
    let posts = share.targets(n);
    let synapses = sampling::fixed_indegree(sampling::root(seed), posts.clone(), &inputs, cfg.allow_multapses)?;
    let chemical = SynapseMatrix::from_synapses(n, n, synapses)?;
    let mut network = CompiledNetwork::from_parts(
        format!("brunel-delta-order{}", cfg.order),
        vec![
            "Brunel N (2000) J Comput Neurosci 8:183 (model A, g=5, eta=2)".into(),
            format!(
                "neurotwin generator (connectome/src/generators/brunel.rs) after NEST's \
                 pynest/examples/brunel_delta_nest.py: CE={ce}, CI={ci} fixed in-degree, seed {seed}"
            ),
        ],
        super::make_neurons(&[("E", ne), ("I", ni)]),
        super::exc_inh_receptors(),
        chemical,
        GapMatrix::empty(n),
        dt_ms,
    );
    network.held_targets = (!share.is_whole()).then_some(posts);
    let params = NeuronParams::LifDelta(cfg.neuron_params());
    let rate = cfg.background_rate_hz();
    let populations = ["E", "I"]
        .iter()
        .zip(ranges)
        .map(|(name, range)| Population { name: name.to_string(), range, params: params.clone(), v_init: VInit::Rest })
        .collect();
    let background = (0..2)
        .map(|population| BackgroundInput::Poisson { population, rate_hz: rate, weight: je, receptor: "exc".into() })
        .collect();
    Ok(GeneratedNetwork { network, populations, background, expected_rate_hz: expected_rate(cfg, dt_ms) })
}

/// Peer measurements (`/work/shared/peers/results/summary-2026-11-23.md`, 1 s from t = 0, all neurons).
fn expected_rate(cfg: &BrunelConfig, dt_ms: f64) -> Option<(f64, String)> {
    let d = BrunelConfig::default();
    let standard = super::same(dt_ms, 0.1)
        && cfg.indegrees() == (1000, 250)
        && BrunelConfig { order: d.order, ce: d.ce, ci: d.ci, indegree_scales_with_n: false, ..cfg.clone() } == d;
    if !standard {
        return None;
    }
    let src = "peers summary-2026-11-23.md (NEST 3.10 brunel_delta_nest, Brian2 2.11 standalone)";
    match cfg.order {
        2500 => Some((31.8, format!("order 2500: NEST 31.87–31.96 Hz, Brian2 31.65–31.78 Hz; {src}"))),
        10000 => Some((31.8, format!("order 10000, CE/CI fixed: NEST 31.88 Hz, Brian2 31.75 Hz; {src}"))),
        _ => None,
    }
}

impl BrunelConfig {
    /// Mean rate (Hz) measured by peer simulators for this configuration at time step `dt_ms`, with its
    /// source; `None` for configurations no peer has measured.
    pub fn expected_rate_hz(&self, dt_ms: f64) -> Option<(f64, String)> {
        expected_rate(self, dt_ms)
    }
}
