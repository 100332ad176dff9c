//! Parameters of the Potjans & Diesmann (2014) cortical microcircuit, transcribed from NEST's example.
//!
//! Model: Potjans TC, Diesmann M (2014) The cell-type specific cortical microcircuit: relating structure
//! and activity in a full-scale spiking network model. Cereb Cortex 24(3):785–806,
//! doi:10.1093/cercor/bhs358.
//!
//! Source of every number and formula below: the PyNEST implementation in the nest-simulator repository,
//! `pynest/examples/Potjans_2014/` at commit `e0a0745546eb75f7d50a7e433c32d0c2b7376513` (the parent of
//! `09c1a3ccf32b9c1211019bba308d5392971c212c`, "remove Potjans from examples", 2025-08-22; the folder was
//! last changed by `09620bc2f`, 2025-04-02, formatting only):
//!
//! * `network_params.py` — `net_dict`: population names and sizes, `full_mean_rates`, `conn_probs`,
//!   `PSP_exc_mean`, `weight_rel_std`, `g`, delays, `K_ext`, `bg_rate`, `delay_poisson`, `V0_mean` /
//!   `V0_std` ('original' and 'optimized'), `neuron_params`; `PSP_matrix_mean` with the doubled
//!   L4E → L2/3E entry; `delay_matrix_mean`.
//! * `helpers.py` — [`num_synapses_from_conn_probs`], [`postsynaptic_potential_to_current`],
//!   [`dc_input_compensating_poisson`], [`adjust_weights_and_input_to_synapse_scaling`].
//! * `network.py` — `Network.__derive_parameters` (rounding of scaled sizes, synapse numbers and
//!   external in-degrees with `np.round`, i.e. half to even) and `__connect_neuronal_populations`
//!   (`fixed_total_number`; weights `normal(mean, |mean|·weight_rel_std)` redrawn outside `[0, ∞)` for
//!   excitatory and `(−∞, 0]` for inhibitory projections; delays `normal(mean, mean·delay_rel_std)`
//!   redrawn below `resolution/2`, so that they round to at least one step).
//!
//! Arrays are in population order `L23E, L23I, L4E, L4I, L5E, L5I, L6E, L6I`; matrices are indexed
//! `[target][source]`, as in the example.

/// Number of populations.
pub const N_POP: usize = 8;

pub const POPULATIONS: [&str; N_POP] = ["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"];

/// `full_num_neurons`.
pub const FULL_NUM_NEURONS: [u32; N_POP] = [20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948];

/// `full_mean_rates` (spikes/s) of the unscaled model (NEST, 4 threads), used for the K-scaling DC
/// compensation.
pub const FULL_MEAN_RATES: [f64; N_POP] = [0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829];

/// `conn_probs[target][source]`.
pub const CONN_PROBS: [[f64; N_POP]; N_POP] = [
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.135, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.06, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.001, 0.0034, 0.0005, 0.0277, 0.008, 0.0658, 0.1443],
];

/// `PSP_exc_mean` (mV).
pub const PSP_EXC_MEAN: f64 = 0.15;
/// `weight_rel_std`.
pub const WEIGHT_REL_STD: f64 = 0.1;
/// `g`: relative inhibitory weight.
pub const G: f64 = -4.0;
/// `delay_exc_mean`, `delay_inh_mean` (ms), `delay_rel_std`.
pub const DELAY_EXC_MEAN: f64 = 1.5;
pub const DELAY_INH_MEAN: f64 = 0.75;
pub const DELAY_REL_STD: f64 = 0.5;
/// `K_ext`: external in-degrees.
pub const K_EXT: [u32; N_POP] = [1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100];
/// `bg_rate` (spikes/s) per external input.
pub const BG_RATE: f64 = 8.0;
/// `delay_poisson` (ms): delay of the background input (irrelevant for a stationary Poisson process).
pub const DELAY_POISSON: f64 = 1.5;

/// `V0_mean` / `V0_std` 'optimized' (mV): population-specific initial membrane potentials.
pub const V0_MEAN_OPTIMIZED: [f64; N_POP] = [-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43];
pub const V0_STD_OPTIMIZED: [f64; N_POP] = [5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48];
/// `V0_mean` / `V0_std` 'original' (mV).
pub const V0_MEAN_ORIGINAL: f64 = -58.0;
pub const V0_STD_ORIGINAL: f64 = 10.0;

/// `neuron_params` (NEST `iaf_psc_exp`; `tau_syn` is used for both `tau_syn_ex` and `tau_syn_in`).
pub const E_L: f64 = -65.0;
pub const V_TH: f64 = -50.0;
pub const V_RESET: f64 = -65.0;
pub const C_M: f64 = 250.0;
pub const TAU_M: f64 = 10.0;
pub const TAU_SYN: f64 = 0.5;
pub const T_REF: f64 = 2.0;

/// True for the excitatory populations (even indices).
pub fn is_excitatory(pop: usize) -> bool {
    pop.is_multiple_of(2)
}

/// `PSP_matrix_mean` (mV): `PSP_exc_mean` from excitatory sources, `g · PSP_exc_mean` from inhibitory
/// ones, and twice `PSP_exc_mean` for L4E → L2/3E (`[0][2]`).
pub fn psp_matrix_mean() -> [[f64; N_POP]; N_POP] {
    let mut m = [[0.0; N_POP]; N_POP];
    for row in m.iter_mut() {
        for (s, x) in row.iter_mut().enumerate() {
            *x = if is_excitatory(s) { PSP_EXC_MEAN } else { PSP_EXC_MEAN * G };
        }
    }
    m[0][2] = 2.0 * PSP_EXC_MEAN;
    m
}

/// `delay_matrix_mean` (ms): by source type.
pub fn delay_matrix_mean() -> [[f64; N_POP]; N_POP] {
    let mut m = [[0.0; N_POP]; N_POP];
    for row in m.iter_mut() {
        for (s, x) in row.iter_mut().enumerate() {
            *x = if is_excitatory(s) { DELAY_EXC_MEAN } else { DELAY_INH_MEAN };
        }
    }
    m
}

/// `helpers.num_synapses_from_conn_probs`: the expected number of distinct pairs of a Bernoulli network
/// with probability `p` inverted for a multapse-allowing draw, `K = ln(1 − p) / ln((n₁n₂ − 1)/(n₁n₂))`.
pub fn num_synapses_from_conn_probs(
    conn_probs: &[[f64; N_POP]; N_POP],
    popsize1: &[f64; N_POP],
    popsize2: &[f64; N_POP],
) -> [[f64; N_POP]; N_POP] {
    let mut k = [[0.0; N_POP]; N_POP];
    for i in 0..N_POP {
        for j in 0..N_POP {
            let prod = popsize1[i] * popsize2[j];
            k[i][j] = (1.0 - conn_probs[i][j]).ln() / ((prod - 1.0) / prod).ln();
        }
    }
    k
}

/// `helpers.postsynaptic_potential_to_current`: PSC amplitude (pA) per mV of PSP peak for an exponential
/// current into a leaky membrane (Hanuschkin et al. 2010, Front Neuroinform 4:113, eq. 5).
pub fn postsynaptic_potential_to_current(c_m: f64, tau_m: f64, tau_syn: f64) -> f64 {
    let sub = 1.0 / (tau_syn - tau_m);
    let pre = tau_m * tau_syn / c_m * sub;
    let frac = (tau_m / tau_syn).powf(sub);
    1.0 / (pre * (frac.powf(tau_m) - frac.powf(tau_syn)))
}

/// `helpers.dc_input_compensating_poisson`: DC (pA) replacing the Poisson background.
pub fn dc_input_compensating_poisson(bg_rate: f64, k_ext: &[u32; N_POP], tau_syn: f64, psc_ext: f64) -> [f64; N_POP] {
    k_ext.map(|k| bg_rate * k as f64 * psc_ext * tau_syn * 0.001)
}

/// Result of [`adjust_weights_and_input_to_synapse_scaling`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScaledWeights {
    pub psc_matrix: [[f64; N_POP]; N_POP],
    pub psc_ext: f64,
    pub dc_amp: [f64; N_POP],
}

/// `helpers.adjust_weights_and_input_to_synapse_scaling`: weights scaled by `1/√K_scaling`, and DC added
/// to keep the mean input: `0.001 τ_syn (1 − √K_scaling)` times the full network's recurrent input
/// `Σ_s PSC[t][s] · K_full[t][s]/N_full[t] · rate_full[s]` (plus `PSC_ext · K_ext · bg_rate` with Poisson
/// input). The inputs are the unscaled weights.
#[allow(clippy::too_many_arguments)]
pub fn adjust_weights_and_input_to_synapse_scaling(
    full_num_neurons: &[u32; N_POP],
    full_num_synapses: &[[f64; N_POP]; N_POP],
    k_scaling: f64,
    mean_psc_matrix: &[[f64; N_POP]; N_POP],
    psc_ext: f64,
    tau_syn: f64,
    full_mean_rates: &[f64; N_POP],
    dc_amp: &[f64; N_POP],
    poisson_input: bool,
    bg_rate: f64,
    k_ext: &[u32; N_POP],
) -> ScaledWeights {
    let sq = k_scaling.sqrt();
    let psc_matrix = mean_psc_matrix.map(|row| row.map(|w| w / sq));
    let mut dc = *dc_amp;
    for t in 0..N_POP {
        let input_rec: f64 = (0..N_POP)
            .map(|s| {
                mean_psc_matrix[t][s] * (full_num_synapses[t][s] / full_num_neurons[t] as f64) * full_mean_rates[s]
            })
            .sum();
        dc[t] += 0.001 * tau_syn * (1.0 - sq) * input_rec;
        if poisson_input {
            let input_ext = psc_ext * k_ext[t] as f64 * bg_rate;
            dc[t] += 0.001 * tau_syn * (1.0 - sq) * input_ext;
        }
    }
    ScaledWeights { psc_matrix, psc_ext: psc_ext / sq, dc_amp: dc }
}
