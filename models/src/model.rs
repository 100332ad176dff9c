//! The neuron-model interface used by every backend: plain parameter data, compiled per time step into
//! constants, and a block update that advances [`LANES`] neurons by one step.
//!
//! State is laid out block-major: a block holds `n_state * LANES` values, variable `v` of lane `l` at
//! `v * LANES + l`. The engine owns the memory; models only see one block at a time, so the same update
//! code serves a rayon CPU backend and (mirrored in CUDA C) the GPU kernels.

use serde::{Deserialize, Serialize};

use crate::{adex, graded, izhikevich, lif_delta, lif_exp};

/// Neurons updated together by one call (one bit each in the spike masks).
pub const LANES: usize = 64;

/// A synaptic input channel as the compiled connectome defines it (one per receptor class).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceptorChannel {
    /// Receptor class name, e.g. `"exc"`, `"inh"`, `"ACh"`, `"GABA"`.
    pub name: String,
    /// True when the channel depolarises (positive weights); decides default time constants and, for
    /// graded synapses, the reversal potential.
    pub excitatory: bool,
}

/// Errors in model parameters (the message names the field and the allowed range).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("neuron parameter `{field}` = {value}: {why}")]
    BadParameter { field: String, value: f64, why: String },
    #[error("all neuron parameter sets of one simulation must use the same model, found `{0}` and `{1}`")]
    MixedModels(&'static str, &'static str),
    #[error("no neuron parameter set given")]
    NoParameterSets,
}

/// Checks that a parameter is finite and satisfies `ok`; used by every model's `compile`.
pub fn check(field: &str, value: f64, ok: bool, why: &str) -> Result<(), ModelError> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        Err(ModelError::BadParameter { field: field.to_string(), value, why: why.to_string() })
    }
}

/// One neuron parameter set, tagged by model (`model = "lif_exp"` in scenario files).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum NeuronParams {
    LifExp(lif_exp::LifExpParams),
    LifDelta(lif_delta::LifDeltaParams),
    Izhikevich(izhikevich::IzhikevichParams),
    Adex(adex::AdexParams),
    Graded(graded::GradedParams),
}

impl NeuronParams {
    pub fn model_name(&self) -> &'static str {
        match self {
            NeuronParams::LifExp(_) => "lif_exp",
            NeuronParams::LifDelta(_) => "lif_delta",
            NeuronParams::Izhikevich(_) => "izhikevich",
            NeuronParams::Adex(_) => "adex",
            NeuronParams::Graded(_) => "graded",
        }
    }
}

/// Per-step input of one block.
pub struct BlockInput<'a> {
    /// Number of valid lanes (the last block of a population may be partial).
    pub n: usize,
    /// Parameter-set index of each lane (`n` entries).
    pub param_set: &'a [u16],
    /// Synaptic input arriving this step, channel-major: `syn[c * LANES + lane]`. Units are the model's
    /// synaptic unit (pA for current jumps, mV for delta synapses, nS for graded conductances).
    pub syn: &'a [f64],
    /// External current during this step (pA; includes gap-junction current), `LANES` entries.
    pub i_ext: &'a [f64],
    /// Lanes forced to fire this step (optogenetic-like activation); bit `l` = lane `l`.
    pub forced: u64,
}

/// Per-step output of one block.
pub struct BlockOutput {
    /// Lanes that spiked this step (spiking models only).
    pub spikes: u64,
    /// Transmitted amount per lane: 1.0 for a spike, the synaptic activation in [0, 1] for graded neurons,
    /// 0 for none.
    pub activity: [f64; LANES],
}

impl Default for BlockOutput {
    fn default() -> Self {
        Self { spikes: 0, activity: [0.0; LANES] }
    }
}

/// Parameter sets compiled for one time step, all of one model.
#[derive(Clone, Debug)]
pub enum CompiledModel {
    LifExp(Vec<lif_exp::Compiled>),
    LifDelta(Vec<lif_delta::Compiled>),
    Izhikevich(Vec<izhikevich::Compiled>),
    Adex(Vec<adex::Compiled>),
    Graded(Vec<graded::Compiled>),
}

macro_rules! compile_all {
    ($variant:ident, $module:ident, $sets:expr, $channels:expr, $dt:expr) => {{
        let mut out = Vec::with_capacity($sets.len());
        for s in $sets {
            match s {
                NeuronParams::$variant(p) => out.push($module::compile(p, $channels, $dt)?),
                other => return Err(ModelError::MixedModels($sets[0].model_name(), other.model_name())),
            }
        }
        CompiledModel::$variant(out)
    }};
}

impl CompiledModel {
    /// Compiles parameter sets for time step `dt_ms` (ms) and the given receptor channels.
    pub fn compile(sets: &[NeuronParams], channels: &[ReceptorChannel], dt_ms: f64) -> Result<Self, ModelError> {
        check("dt", dt_ms, dt_ms > 0.0, "the time step must be positive (ms)")?;
        let first = sets.first().ok_or(ModelError::NoParameterSets)?;
        Ok(match first {
            NeuronParams::LifExp(_) => compile_all!(LifExp, lif_exp, sets, channels, dt_ms),
            NeuronParams::LifDelta(_) => compile_all!(LifDelta, lif_delta, sets, channels, dt_ms),
            NeuronParams::Izhikevich(_) => compile_all!(Izhikevich, izhikevich, sets, channels, dt_ms),
            NeuronParams::Adex(_) => compile_all!(Adex, adex, sets, channels, dt_ms),
            NeuronParams::Graded(_) => compile_all!(Graded, graded, sets, channels, dt_ms),
        })
    }

    /// Names of the state variables in block order (e.g. `V_m`, `I_syn_exc`).
    pub fn state_names(&self) -> Vec<String> {
        match self {
            CompiledModel::LifExp(s) => lif_exp::state_names(&s[0]),
            CompiledModel::LifDelta(s) => lif_delta::state_names(&s[0]),
            CompiledModel::Izhikevich(s) => izhikevich::state_names(&s[0]),
            CompiledModel::Adex(s) => adex::state_names(&s[0]),
            CompiledModel::Graded(s) => graded::state_names(&s[0]),
        }
    }

    pub fn n_state(&self) -> usize {
        self.state_names().len()
    }

    /// True for models that emit spikes (all but `graded`).
    pub fn is_spiking(&self) -> bool {
        !matches!(self, CompiledModel::Graded(_))
    }

    /// Resting/initial state of a neuron with parameter set `set`, one value per state variable.
    pub fn initial_state(&self, set: usize) -> Vec<f64> {
        match self {
            CompiledModel::LifExp(s) => lif_exp::initial_state(&s[set]),
            CompiledModel::LifDelta(s) => lif_delta::initial_state(&s[set]),
            CompiledModel::Izhikevich(s) => izhikevich::initial_state(&s[set]),
            CompiledModel::Adex(s) => adex::initial_state(&s[set]),
            CompiledModel::Graded(s) => graded::initial_state(&s[set]),
        }
    }

    /// Advances one block by one time step.
    #[inline]
    pub fn update_block(&self, state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
        debug_assert!(input.n <= LANES && state.len() == self.n_state() * LANES);
        match self {
            CompiledModel::LifExp(s) => lif_exp::update_block(s, state, input, out),
            CompiledModel::LifDelta(s) => lif_delta::update_block(s, state, input, out),
            CompiledModel::Izhikevich(s) => izhikevich::update_block(s, state, input, out),
            CompiledModel::Adex(s) => adex::update_block(s, state, input, out),
            CompiledModel::Graded(s) => graded::update_block(s, state, input, out),
        }
    }
}
