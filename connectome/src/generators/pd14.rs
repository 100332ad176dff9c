//! Potjans & Diesmann (2014) cortical microcircuit with the N- and K-scaling of NEST's example
//! (`pynest/examples/Potjans_2014`; parameters and provenance in [`super::pd14_params`]).
//!
//! Differences from the NEST example: none in the network's distribution; the random numbers differ
//! (Philox sequences instead of NEST's per-thread generators). The optional thalamic and DC stimuli of
//! `stimulus_params.py` (both off by default there) are not generated.

use serde::{Deserialize, Serialize};

use neurotwin_models::NeuronParams;
use neurotwin_models::lif_exp::LifExpParams;

use super::pd14_params::{self as p, N_POP};
use super::sampling::{self, TotalNumber};
use super::{BackgroundInput, EXC, GeneratedNetwork, INH, Population, VInit};
use crate::compile::CompiledNetwork;
use crate::error::ConnectomeError;
use crate::gap::GapMatrix;
use crate::share::Share;

/// Initial membrane potentials (`V0_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum V0Type {
    /// Population-specific normal distributions (the example's default).
    Optimized,
    /// Normal(−58 mV, 10 mV) for all populations.
    Original,
}

/// Scaling and options of the microcircuit. Defaults: the full-scale model (NEST's example defaults to
/// `N_scaling = K_scaling = 0.1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pd14Config {
    /// Factor on the number of neurons (synapse numbers scale with it: in-degrees are kept).
    pub n_scaling: f64,
    /// Factor on the in-degrees; weights are scaled by `1/√K_scaling` and DC input added to keep the mean
    /// input (for `K_scaling != 1`).
    pub k_scaling: f64,
    /// Poisson background (`true`, default) or the equivalent DC input.
    pub poisson_input: bool,
    pub v0: V0Type,
}

impl Default for Pd14Config {
    fn default() -> Self {
        Self { n_scaling: 1.0, k_scaling: 1.0, poisson_input: true, v0: V0Type::Optimized }
    }
}

/// Parameters derived from a [`Pd14Config`] exactly as `Network.__derive_parameters` does.
#[derive(Clone, Debug, PartialEq)]
pub struct Pd14Derived {
    /// `round(full_num_neurons · N_scaling)` (half to even).
    pub num_neurons: [u32; N_POP],
    /// Unrounded synapse numbers of the full model, `[target][source]`.
    pub full_num_synapses: [[f64; N_POP]; N_POP],
    /// `round(full_num_synapses · N_scaling · K_scaling)`, `[target][source]`.
    pub num_synapses: [[u64; N_POP]; N_POP],
    /// `round(K_ext · K_scaling)`.
    pub ext_indegrees: [u32; N_POP],
    /// PSC → PSP factor (pA/mV).
    pub psc_over_psp: f64,
    /// Mean weights (pA), `[target][source]`, after K-scaling.
    pub weight_matrix_mean: [[f64; N_POP]; N_POP],
    /// Weight of the external input (pA), after K-scaling.
    pub weight_ext: f64,
    /// DC input per population (pA).
    pub dc_amp: [f64; N_POP],
    /// Mean delays (ms), `[target][source]`.
    pub delay_matrix_mean: [[f64; N_POP]; N_POP],
}

impl Pd14Derived {
    pub fn new(cfg: &Pd14Config) -> Result<Self, ConnectomeError> {
        for (name, v) in [("n_scaling", cfg.n_scaling), ("k_scaling", cfg.k_scaling)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ConnectomeError::Compile(format!("PD14: {name} = {v} must be finite and > 0")));
            }
        }
        let full_n = p::FULL_NUM_NEURONS.map(|n| n as f64);
        let full_num_synapses = p::num_synapses_from_conn_probs(&p::CONN_PROBS, &full_n, &full_n);
        let num_neurons = full_n.map(|n| (n * cfg.n_scaling).round_ties_even());
        if num_neurons.iter().sum::<f64>() > u32::MAX as f64 {
            return Err(ConnectomeError::Compile("PD14: more than 2^32 neurons".into()));
        }
        let num_neurons = num_neurons.map(|n| n as u32);
        let num_synapses =
            full_num_synapses.map(|row| row.map(|k| (k * cfg.n_scaling * cfg.k_scaling).round_ties_even() as u64));
        let ext_indegrees = p::K_EXT.map(|k| (k as f64 * cfg.k_scaling).round_ties_even() as u32);
        let psc_over_psp = p::postsynaptic_potential_to_current(p::C_M, p::TAU_M, p::TAU_SYN);
        let psp = p::psp_matrix_mean();
        let mut weight_matrix_mean = psp.map(|row| row.map(|x| x * psc_over_psp));
        let mut weight_ext = p::PSP_EXC_MEAN * psc_over_psp;
        let mut dc_amp = if cfg.poisson_input {
            [0.0; N_POP]
        } else {
            p::dc_input_compensating_poisson(p::BG_RATE, &p::K_EXT, p::TAU_SYN, weight_ext)
        };
        if cfg.k_scaling != 1.0 {
            let s = p::adjust_weights_and_input_to_synapse_scaling(
                &p::FULL_NUM_NEURONS,
                &full_num_synapses,
                cfg.k_scaling,
                &weight_matrix_mean,
                weight_ext,
                p::TAU_SYN,
                &p::FULL_MEAN_RATES,
                &dc_amp,
                cfg.poisson_input,
                p::BG_RATE,
                &p::K_EXT,
            );
            (weight_matrix_mean, weight_ext, dc_amp) = (s.psc_matrix, s.psc_ext, s.dc_amp);
        }
        Ok(Self {
            num_neurons,
            full_num_synapses,
            num_synapses,
            ext_indegrees,
            psc_over_psp,
            weight_matrix_mean,
            weight_ext,
            dc_amp,
            delay_matrix_mean: p::delay_matrix_mean(),
        })
    }

    pub fn total_neurons(&self) -> u32 {
        self.num_neurons.iter().sum()
    }

    pub fn total_synapses(&self) -> u64 {
        self.num_synapses.iter().flatten().sum()
    }
}

/// NEST `iaf_psc_exp` parameters of the microcircuit (`I_e` = 0: DC input is in the background list).
pub fn pd14_neuron_params() -> LifExpParams {
    LifExpParams {
        c_m: p::C_M,
        tau_m: p::TAU_M,
        e_l: p::E_L,
        v_th: p::V_TH,
        v_reset: p::V_RESET,
        t_ref: p::T_REF,
        i_e: 0.0,
        tau_syn_ex: p::TAU_SYN,
        tau_syn_in: p::TAU_SYN,
        ..Default::default()
    }
}

/// Builds the microcircuit for time step `dt_ms` (the model uses 0.1 ms). Weights in pA; projection
/// `source → target` uses sub-streams `2·(8·target + source)` (source counts) and `2·(8·target + source) + 1`
/// (rows).
pub fn potjans_diesmann(cfg: &Pd14Config, seed: u64, dt_ms: f64) -> Result<GeneratedNetwork, ConnectomeError> {
    potjans_diesmann_part(cfg, seed, dt_ms, &Share::WHOLE)
}

/// [`potjans_diesmann`] for one process of a split run: only the synapses onto `share`'s targets. Every row is
/// still drawn in full (a row's targets, weights and delays come from one sequence), so each process spends the
/// whole network's generation time but holds only its share.
pub fn potjans_diesmann_part(
    cfg: &Pd14Config,
    seed: u64,
    dt_ms: f64,
    share: &Share,
) -> Result<GeneratedNetwork, ConnectomeError> {
    super::check_dt(dt_ms)?;
    let d = Pd14Derived::new(cfg)?;
    super::check_memory(
        &format!("the PD14 microcircuit with n_scaling = {} and k_scaling = {}", cfg.n_scaling, cfg.k_scaling),
        d.total_neurons() as f64,
        d.total_synapses() as f64 / share.size() as f64,
        super::BYTES_PER_ROW_SYNAPSE,
        "lower the generator's `n_scaling` (1 = the full 77,169-neuron model) or `k_scaling`",
    )?;
    let ranges = super::ranges(&d.num_neurons)?;
    let n = d.total_neurons();
    let mut projections = Vec::with_capacity(N_POP * N_POP);
    let mut moments = Vec::with_capacity(N_POP * N_POP);
    for t in 0..N_POP {
        for s in 0..N_POP {
            let w = d.weight_matrix_mean[t][s];
            projections.push(TotalNumber {
                sources: ranges[s].clone(),
                targets: ranges[t].clone(),
                n: d.num_synapses[t][s],
                receptor: if w < 0.0 { INH } else { EXC },
                substream: (t * N_POP + s) as u32,
            });
            let dm = d.delay_matrix_mean[t][s];
            moments.push((w, (w * p::WEIGHT_REL_STD).abs(), dm, dm * p::DELAY_REL_STD));
        }
    }
    // NEST: delays are redrawn below resolution/2 and rounded with ⌊d/dt + ½⌋, so at least one step.
    let d_min = 0.5 * dt_ms;
    if let Some(&(_, _, m, sd)) = moments.iter().find(|&&(_, _, m, sd)| d_min > m + 4.0 * sd) {
        return Err(ConnectomeError::Compile(format!(
            "PD14: dt {dt_ms} ms is too coarse for delays normal({m} ms, {sd} ms) redrawn below dt/2"
        )));
    }
    // Split by expected incoming synapses (in-degrees differ up to 4.6× between populations).
    let indegree: Vec<f64> =
        (0..N_POP).map(|t| d.num_synapses[t].iter().sum::<u64>() as f64 / d.num_neurons[t].max(1) as f64).collect();
    let keep = share.targets_by_cost(n, &block_cost(&ranges, &indegree, n));
    let chemical =
        sampling::fixed_total_number_matrix(sampling::root(seed), n, &projections, keep.clone(), |pi, r| {
            let (w_mean, w_sd, d_mean, d_sd) = moments[pi];
            let weight = loop {
                let w = w_mean + w_sd * r.normal();
                if (w_mean < 0.0 && w <= 0.0) || (w_mean >= 0.0 && w >= 0.0) {
                    break w;
                }
            };
            let delay = loop {
                let x = d_mean + d_sd * r.normal();
                if x >= d_min {
                    break x;
                }
            };
            // ⌊d/dt + ½⌋ as NEST rounds; d ≥ dt/2 > 0 here, so truncation is the floor (`f64::floor` is a libm call on
            // baseline x86-64, 7 % of the full-scale build), and the conversion saturates as `min` did (to i64: one
            // instruction, where u64 takes a branchless fix-up sequence).
            let steps = ((delay / dt_ms + 0.5) as i64).min(u16::MAX as i64) as u16;
            (weight as f32, steps)
        })?;
    let names: Vec<(&str, u32)> = p::POPULATIONS.iter().copied().zip(d.num_neurons).collect();
    let mut network = CompiledNetwork::from_parts(
        format!("pd14-N{}-K{}", cfg.n_scaling, cfg.k_scaling),
        vec![
            "Potjans TC, Diesmann M (2014) Cereb Cortex 24(3):785-806, doi:10.1093/cercor/bhs358".into(),
            "parameters and construction rules: nest-simulator pynest/examples/Potjans_2014 (network_params.py, \
             helpers.py, network.py) at commit e0a0745546eb75f7d50a7e433c32d0c2b7376513"
                .into(),
            format!(
                "neurotwin generator (connectome/src/generators/pd14.rs): N_scaling {}, K_scaling {}, \
                 fixed_total_number, seed {seed}",
                cfg.n_scaling, cfg.k_scaling
            ),
        ],
        super::make_neurons(&names),
        super::exc_inh_receptors(),
        chemical,
        GapMatrix::empty(n),
        dt_ms,
    );
    network.held_targets = (!share.is_whole()).then_some(keep);
    let params = NeuronParams::LifExp(pd14_neuron_params());
    let populations = (0..N_POP)
        .map(|i| Population {
            name: p::POPULATIONS[i].to_string(),
            range: ranges[i].clone(),
            params: params.clone(),
            v_init: match cfg.v0 {
                V0Type::Optimized => VInit::Normal { mean: p::V0_MEAN_OPTIMIZED[i], sd: p::V0_STD_OPTIMIZED[i] },
                V0Type::Original => VInit::Normal { mean: p::V0_MEAN_ORIGINAL, sd: p::V0_STD_ORIGINAL },
            },
        })
        .collect();
    let mut background = Vec::new();
    for i in 0..N_POP {
        if cfg.poisson_input {
            background.push(BackgroundInput::Poisson {
                population: i,
                rate_hz: p::BG_RATE * d.ext_indegrees[i] as f64,
                weight: d.weight_ext,
                receptor: "exc".into(),
            });
        }
        if d.dc_amp[i] != 0.0 {
            background.push(BackgroundInput::Dc { population: i, amplitude_pa: d.dc_amp[i] });
        }
    }
    Ok(GeneratedNetwork { network, populations, background, expected_rate_hz: expected_rate(cfg, dt_ms) })
}

/// Per block of [`crate::share::BLOCK`] neurons: the sum of its neurons' `per_neuron[population]`.
pub(crate) fn block_cost(ranges: &[std::ops::Range<u32>], per_neuron: &[f64], n: u32) -> Vec<f64> {
    let block = crate::share::BLOCK;
    (0..n.div_ceil(block))
        .map(|b| {
            let (lo, hi) = (b * block, ((b + 1) * block).min(n));
            ranges
                .iter()
                .zip(per_neuron)
                .map(|(r, &x)| (hi.min(r.end).saturating_sub(lo.max(r.start))) as f64 * x)
                .sum()
        })
        .collect()
}

/// Peer measurements (`/work/shared/peers/results/summary-2026-11-23.md`: mean over all neurons over 1 s
/// after a 0.1 s transient, seed 55).
fn expected_rate(cfg: &Pd14Config, dt_ms: f64) -> Option<(f64, String)> {
    if !(super::same(dt_ms, 0.1) && cfg.poisson_input && cfg.v0 == V0Type::Optimized) {
        return None;
    }
    let src = "peers summary-2026-11-23.md (NEST 3.10 running the example, Brian2 2.11 standalone)";
    let table = [
        (1.0, 1.0, 3.25, "N=1 K=1: NEST 3.25 Hz (4 threads), Brian2 3.24 Hz"),
        (0.5, 1.0, 3.31, "N=0.5 K=1: NEST 3.31 Hz, Brian2 3.30 Hz"),
        (0.1, 1.0, 3.76, "N=0.1 K=1: NEST 3.76 Hz, Brian2 3.75 Hz"),
        (0.1, 0.1, 2.71, "N=0.1 K=0.1: NEST 2.71 Hz, Brian2 2.55 Hz"),
    ];
    table
        .iter()
        .find(|(n, k, _, _)| super::same(cfg.n_scaling, *n) && super::same(cfg.k_scaling, *k))
        .map(|(_, _, r, what)| (*r, format!("{what}; {src}")))
}

impl Pd14Config {
    /// Mean rate (Hz) measured by peer simulators for this configuration at time step `dt_ms`, with its
    /// source; `None` for configurations no peer has measured.
    pub fn expected_rate_hz(&self, dt_ms: f64) -> Option<(f64, String)> {
        expected_rate(self, dt_ms)
    }
}
