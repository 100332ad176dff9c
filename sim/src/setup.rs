//! `SimSetup`: everything a backend needs to run, as plain data (no behaviour), so that every backend
//! (CPU now, CUDA next) consumes the same description.

use std::sync::Arc;

use neurotwin_connectome::CompiledNetwork;
use neurotwin_connectome::generators::{BackgroundInput, GeneratedNetwork, VInit};
use neurotwin_models::{CompiledModel, CounterRng, LANES, NeuronParams, Stream};
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::plasticity::Plasticity;
use crate::spike_trains::SpikeTrains;

/// How a state variable is initialised (values in the variable's unit, e.g. mV).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum InitRule {
    Constant { value: f64 },
    Uniform { lo: f64, hi: f64 },
    Normal { mean: f64, sd: f64 },
}

/// Initialisation of one state variable for a set of neurons (all when `targets` is `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct StateInit {
    pub var: usize,
    pub rule: InitRule,
    pub targets: Option<Vec<u32>>,
}

/// What a stimulus does to its targets while active.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum StimulusKind {
    /// Independent Poisson spike trains of total rate `rate_hz` per neuron, each event adding `weight`
    /// (model's synaptic unit) on receptor channel `channel`.
    Poisson { rate_hz: f64, weight: f64, channel: u8 },
    /// Constant current (pA) while active (a step current; DC when the window is the whole run).
    Current { amplitude_pa: f64 },
    /// Optogenetic-like activation: the targets are forced to fire as Poisson processes of `rate_hz`
    /// (spiking models); for graded models the same draws inject `amplitude_pa` for the step.
    Activation { rate_hz: f64, amplitude_pa: f64 },
}

/// A stimulus with its targets (neuron indices, sorted, unique) and active window in steps `[start, stop)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stimulus {
    pub name: String,
    pub kind: StimulusKind,
    pub targets: Vec<u32>,
    pub start_step: u64,
    pub stop_step: u64,
}

/// A run-ready description.
#[derive(Clone, Debug)]
pub struct SimSetup {
    pub network: Arc<CompiledNetwork>,
    pub model: CompiledModel,
    /// Parameter-set index per neuron (into the sets the model was compiled from).
    pub param_set: Vec<u16>,
    pub init: Vec<StateInit>,
    pub stimuli: Vec<Stimulus>,
    /// Seed of every random stream of the run (see `neurotwin_models::rng`).
    pub seed: u64,
    /// Number of steps to simulate.
    pub steps: u64,
    /// Prescribed spikes (e.g. SONATA inputs into virtual nodes); spiking models only.
    pub spike_trains: Arc<SpikeTrains>,
    /// Synapses whose weights learn during the run (STDP; spiking models, CPU backend); empty: all fixed.
    pub plasticity: Arc<Plasticity>,
}

impl SimSetup {
    pub fn dt_ms(&self) -> f64 {
        self.network.dt_ms
    }
    pub fn n_neurons(&self) -> usize {
        self.network.n_neurons()
    }
}

/// Index of state variable `var` of neuron `neuron` in the block-major layout every backend uses
/// (`LANES` neurons per block, variables contiguous per block).
#[inline]
pub fn state_index(n_state: usize, neuron: usize, var: usize) -> usize {
    (neuron / LANES) * n_state * LANES + var * LANES + neuron % LANES
}

/// The initial state of every neuron in the block-major layout: the model's rest state of the neuron's
/// parameter set, then the `init` rules in order, drawn from the `InitialState` stream keyed on (neuron,
/// variable). Every backend starts from this exact array.
pub fn initial_block_state(setup: &SimSetup) -> Result<Vec<f64>, SimError> {
    let n = setup.n_neurons();
    let n_state = setup.model.n_state();
    let mut state = vec![0.0; n.div_ceil(LANES) * n_state * LANES];
    for i in 0..n {
        for (v, x) in setup.model.initial_state(setup.param_set[i] as usize).into_iter().enumerate() {
            state[state_index(n_state, i, v)] = x;
        }
    }
    let init_rng = CounterRng::new(setup.seed, Stream::InitialState);
    for init in &setup.init {
        if init.var >= n_state {
            return Err(SimError::Setup(format!("initial value for unknown state variable #{}", init.var)));
        }
        let all: Vec<u32>;
        let targets = match &init.targets {
            Some(t) => t,
            None => {
                all = (0..n as u32).collect();
                &all
            }
        };
        for &i in targets {
            if i as usize >= n {
                return Err(SimError::Setup(format!("initial value for neuron #{i} out of range")));
            }
            let [u1, u2] = init_rng.uniform2(i, init.var as u64, 0);
            let x = match init.rule {
                InitRule::Constant { value } => value,
                InitRule::Uniform { lo, hi } => lo + (hi - lo) * u1,
                InitRule::Normal { mean, sd } => {
                    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
                }
            };
            state[state_index(n_state, i as usize, init.var)] = x;
        }
    }
    Ok(state)
}

impl SimSetup {
    /// A generated benchmark network as a run: one parameter set per population, the populations'
    /// initial V_m, background Poisson input (and DC) as stimuli over the whole run, in order.
    pub fn from_generated(g: GeneratedNetwork, seed: u64, steps: u64) -> Result<SimSetup, SimError> {
        let network = Arc::new(g.network);
        let sets: Vec<NeuronParams> = g.populations.iter().map(|p| p.params.clone()).collect();
        let mut param_set = vec![0u16; network.n_neurons()];
        for (k, p) in g.populations.iter().enumerate() {
            param_set[p.range.start as usize..p.range.end as usize].fill(k as u16);
        }
        let model = CompiledModel::compile(&sets, &network.receptors, network.dt_ms)
            .map_err(|e| SimError::Setup(e.to_string()))?;
        let mut init = Vec::new();
        for p in &g.populations {
            let rule = match p.v_init {
                VInit::Rest => None,
                VInit::Uniform { lo, hi } => Some(InitRule::Uniform { lo, hi }),
                VInit::Normal { mean, sd } => Some(InitRule::Normal { mean, sd }),
            };
            if let Some(rule) = rule {
                init.push(StateInit { var: 0, rule, targets: Some(p.range.clone().collect()) });
            }
        }
        let targets = |pop: usize| -> Vec<u32> { g.populations[pop].range.clone().collect() };
        let mut stimuli = Vec::new();
        for (k, bg) in g.background.iter().enumerate() {
            match bg {
                BackgroundInput::Poisson { population, rate_hz, weight, receptor } => {
                    let ch =
                        network.receptors.iter().position(|r| &r.name == receptor).ok_or_else(|| {
                            SimError::Setup(format!("background input on unknown receptor `{receptor}`"))
                        })?;
                    if *rate_hz > 0.0 {
                        stimuli.push(Stimulus {
                            name: format!("background-{k}"),
                            kind: StimulusKind::Poisson { rate_hz: *rate_hz, weight: *weight, channel: ch as u8 },
                            targets: targets(*population),
                            start_step: 0,
                            stop_step: steps,
                        });
                    }
                }
                BackgroundInput::Dc { population, amplitude_pa } => {
                    if *amplitude_pa != 0.0 {
                        stimuli.push(Stimulus {
                            name: format!("background-dc-{k}"),
                            kind: StimulusKind::Current { amplitude_pa: *amplitude_pa },
                            targets: targets(*population),
                            start_step: 0,
                            stop_step: steps,
                        });
                    }
                }
            }
        }
        Ok(SimSetup {
            network,
            model,
            param_set,
            init,
            stimuli,
            seed,
            steps,
            spike_trains: Default::default(),
            plasticity: Default::default(),
        })
    }
}
