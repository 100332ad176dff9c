//! Single-neuron drivers for model tests (here and in other crates): run one lane of a compiled model
//! with scripted synaptic input and external current.

use std::collections::BTreeMap;

use crate::equations::{EquationParams, Method};
use crate::model::{BlockInput, BlockOutput, CompiledModel, LANES, ReceptorChannel};

/// Scripted input for a single neuron.
#[derive(Clone, Debug, Default)]
pub struct Drive {
    /// `(step, channel, amount)`: synaptic input arriving at a step on a channel.
    pub inputs: Vec<(u64, usize, f64)>,
    /// Constant external current (pA) on every step.
    pub i_ext: f64,
    /// Steps at which the neuron is forced to fire.
    pub forced: Vec<u64>,
}

impl Drive {
    pub fn none() -> Self {
        Self::default()
    }
    /// One synaptic input of `amount` on `channel` at step 0.
    pub fn single_input(channel: usize, amount: f64) -> Self {
        Self { inputs: vec![(0, channel, amount)], ..Self::default() }
    }
    pub fn current(i_ext: f64) -> Self {
        Self { i_ext, ..Self::default() }
    }
}

/// Runs one neuron (parameter set 0) for `steps` steps; calls `each(step, state, output)` after each step.
pub fn run_with(
    model: &CompiledModel,
    n_channels: usize,
    steps: u64,
    drive: &Drive,
    mut each: impl FnMut(u64, &[f64], &BlockOutput),
) {
    let n_state = model.n_state();
    let mut state = vec![0.0; n_state * LANES];
    for (v, x) in model.initial_state(0).into_iter().enumerate() {
        state[v * LANES] = x;
    }
    let param_set = [0u16; LANES];
    let mut syn = vec![0.0; n_channels * LANES];
    let mut i_ext = [0.0; LANES];
    i_ext[0] = drive.i_ext;
    for s in 0..steps {
        syn.iter_mut().for_each(|x| *x = 0.0);
        for &(step, ch, amount) in &drive.inputs {
            if step == s {
                syn[ch * LANES] += amount;
            }
        }
        let forced = drive.forced.contains(&s) as u64;
        let input = BlockInput { n: 1, param_set: &param_set, syn: &syn, i_ext: &i_ext, forced, gap: None };
        let mut out = BlockOutput::default();
        model.update_block(&mut state, &input, &mut out);
        let lane0: Vec<f64> = (0..n_state).map(|v| state[v * LANES]).collect();
        each(s, &lane0, &out);
    }
}

/// Steps at which the neuron spiked.
pub fn run_single(model: &CompiledModel, n_channels: usize, steps: u64, drive: &Drive) -> Vec<u64> {
    let mut spikes = Vec::new();
    run_with(model, n_channels, steps, drive, |s, _, out| {
        if out.spikes & 1 == 1 {
            spikes.push(s)
        }
    });
    spikes
}

/// State variable 0 (the membrane potential in every model) after each step; element 0 is the initial
/// value, element k the value after k steps.
pub fn trace_v(model: &CompiledModel, n_channels: usize, steps: u64, drive: &Drive) -> Vec<f64> {
    let mut v = vec![model.initial_state(0)[0]];
    run_with(model, n_channels, steps, drive, |_, st, _| v.push(st[0]));
    v
}

/// The two receptor channels most tests use: `exc` (excitatory) and `inh` (inhibitory).
pub fn exc_inh_channels() -> Vec<ReceptorChannel> {
    vec![
        ReceptorChannel { name: "exc".into(), excitatory: true },
        ReceptorChannel { name: "inh".into(), excitatory: false },
    ]
}

/// `(key, value)` pairs as the string tables of an equation-defined model (`parameters`, `inputs`, `init`).
pub fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// [`iaf_psc_exp_equations`] with the CUBA benchmark's neuron (`scenarios/cuba_equations.toml`; the generator's
/// `cuba_neuron_params`, Brette et al. 2007).
pub fn cuba_iaf_psc_exp_equations() -> EquationParams {
    iaf_psc_exp_equations(&[
        ("C_m", "200 pF"),
        ("tau_m", "20 ms"),
        ("E_L", "-49 mV"),
        ("V_th", "-50 mV"),
        ("V_reset", "-60 mV"),
        ("t_ref", "5 ms"),
        ("I_e", "0 pA"),
        ("tau_syn_ex", "5 ms"),
        ("tau_syn_in", "10 ms"),
    ])
}

/// NEST's `iaf_psc_exp` written as equations (exact method; channels `exc` and `inh` into `I_ex`, `I_in`; `V`
/// clamped for `t_ref`, starting at `E_L`) with `parameters` `C_m`, `tau_m`, `E_L`, `V_th`, `V_reset`, `t_ref`,
/// `I_e`, `tau_syn_ex`, `tau_syn_in` as quantities.
pub fn iaf_psc_exp_equations(parameters: &[(&str, &str)]) -> EquationParams {
    EquationParams {
        equations: "dV/dt = -(V - E_L)/tau_m + (I_ex + I_in + I_e + I_stim)/C_m : mV  # membrane\n\
                    dI_ex/dt = -I_ex/tau_syn_ex : pA\n\
                    dI_in/dt = -I_in/tau_syn_in : pA\n"
            .into(),
        threshold: "V >= V_th".into(),
        reset: "V = V_reset".into(),
        refractory: Some("t_ref".into()),
        clamp: vec!["V".into()],
        parameters: string_map(parameters),
        inputs: string_map(&[("exc", "I_ex += w"), ("inh", "I_in += w")]),
        init: string_map(&[("V", "E_L")]),
        method: Method::Exact,
        substeps: 1,
        input_timing: Default::default(),
    }
}
