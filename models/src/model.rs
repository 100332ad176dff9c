//! The neuron-model interface used by every backend: plain parameter data, compiled per time step into
//! constants, and a block update that advances [`LANES`] neurons by one step.
//!
//! State is laid out block-major: a block holds `n_state * LANES` values, variable `v` of lane `l` at
//! `v * LANES + l`. The engine owns the memory; models only see one block at a time, so the same update
//! code serves a rayon CPU backend and (mirrored in CUDA C) the GPU kernels.

use serde::{Deserialize, Serialize};

use crate::{adex, equations, graded, izhikevich, lif_cond_exp, lif_delta, lif_exp};

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
    #[error(
        "all neuron parameter sets of one simulation must use the same `synapses` (current or conductance); \
         found both"
    )]
    MixedSynapseTypes,
    /// An equation-defined model that does not parse or check; the message locates the problem.
    #[error("{0}")]
    Equation(String),
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
    LifCondExp(lif_cond_exp::LifCondExpParams),
    /// `lif_cond_exp` with alpha-shaped conductances (NEST `iaf_cond_alpha`).
    LifCondAlpha(lif_cond_exp::LifCondExpParams),
    /// A model written as equations (`equations::EquationParams`).
    Equations(equations::EquationParams),
}

impl NeuronParams {
    pub fn model_name(&self) -> &'static str {
        match self {
            NeuronParams::LifExp(_) => "lif_exp",
            NeuronParams::LifDelta(_) => "lif_delta",
            NeuronParams::Izhikevich(_) => "izhikevich",
            NeuronParams::Adex(_) => "adex",
            NeuronParams::Graded(_) => "graded",
            NeuronParams::LifCondExp(_) => "lif_cond_exp",
            NeuronParams::LifCondAlpha(_) => "lif_cond_alpha",
            NeuronParams::Equations(_) => "equations",
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
    /// External current during this step (pA; includes the gap-junction current of spiking models),
    /// `LANES` entries.
    pub i_ext: &'a [f64],
    /// Lanes forced to fire this step (optogenetic-like activation); bit `l` = lane `l`.
    pub forced: u64,
    /// Gap junctions as conductances, for models that integrate them implicitly (graded): `None` when the
    /// engine passes the gap current in `i_ext` (spiking models) or there are none.
    pub gap: Option<GapInput<'a>>,
}

/// Gap-junction coupling of one block as seen by a graded neuron: the coupling current
/// `Σ_j g_ij (V_j − V)` is split into `g = Σ_j g_ij` (nS) and `gv = Σ_j g_ij V_j` (pA, with the partners'
/// potentials of the previous step), so that the model can treat its own `V` implicitly
/// (`V_∞ = (… + gv)/(… + g)`): stable for any coupling strength and step, where an explicit current
/// diverges once `h Σ g / C` exceeds about 2 (e.g. 100 junctions of 0.1 nS on a 1 pF cell at h = 0.1 ms).
#[derive(Clone, Copy, Debug)]
pub struct GapInput<'a> {
    /// Σ_j g_ij per lane (nS), `LANES` entries.
    pub g: &'a [f64],
    /// Σ_j g_ij V_j per lane (pA), `LANES` entries.
    pub gv: &'a [f64],
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

/// The spike mask of a block from one 0/1 byte per lane, packed 8 lanes at a time ([`pack_bits`]).
#[inline(always)]
pub(crate) fn fired_mask(fired: &[u8; LANES]) -> u64 {
    let mut mask = 0u64;
    for (k, bytes) in fired.chunks_exact(8).enumerate() {
        mask |= pack_bits(u64::from_le_bytes(bytes.try_into().unwrap_or_default())) << (8 * k);
    }
    mask
}

/// Records the spikes of `mask` in `out`: their bits, and activity 1 for those lanes only.
#[inline(always)]
pub(crate) fn record_spikes(mut mask: u64, out: &mut BlockOutput) {
    out.spikes |= mask;
    while mask != 0 {
        out.activity[mask.trailing_zeros() as usize] = 1.0;
        mask &= mask - 1;
    }
}

/// The low bits of the 8 bytes of `x` (each 0 or 1) as one byte, byte i → bit i: the product with
/// 0x0102040810204080 puts byte i's bit at position 56 + i, and every other partial product lands at a distinct
/// position below 56 or beyond 63, so nothing carries into the top byte.
#[inline(always)]
fn pack_bits(x: u64) -> u64 {
    x.wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Parameter sets compiled for one time step, all of one model.
#[derive(Clone, Debug)]
pub enum CompiledModel {
    LifExp(Vec<lif_exp::Compiled>),
    LifDelta(Vec<lif_delta::Compiled>),
    Izhikevich(Vec<izhikevich::Compiled>),
    Adex(Vec<adex::Compiled>),
    Graded(Vec<graded::Compiled>),
    LifCondExp(Vec<lif_cond_exp::Compiled>),
    Equations(Vec<equations::Compiled>),
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
            NeuronParams::Adex(_) => {
                let m = compile_all!(Adex, adex, sets, channels, dt_ms);
                if let CompiledModel::Adex(s) = &m
                    && s.iter().any(|c| c.e_rev.is_some() != s[0].e_rev.is_some())
                {
                    return Err(ModelError::MixedSynapseTypes);
                }
                m
            }
            NeuronParams::Graded(_) => compile_all!(Graded, graded, sets, channels, dt_ms),
            NeuronParams::LifCondExp(_) => compile_all!(LifCondExp, lif_cond_exp, sets, channels, dt_ms),
            NeuronParams::LifCondAlpha(_) => {
                let mut out = Vec::with_capacity(sets.len());
                for s in sets {
                    match s {
                        NeuronParams::LifCondAlpha(p) => {
                            out.push(lif_cond_exp::compile_shape(p, channels, dt_ms, lif_cond_exp::Shape::Alpha)?)
                        }
                        other => return Err(ModelError::MixedModels(sets[0].model_name(), other.model_name())),
                    }
                }
                CompiledModel::LifCondExp(out)
            }
            NeuronParams::Equations(_) => {
                let mut m = compile_all!(Equations, equations, sets, channels, dt_ms);
                if let CompiledModel::Equations(s) = &m
                    && s.iter().any(|c| c.signature != s[0].signature)
                {
                    return Err(ModelError::Equation(
                        "all parameter sets of one simulation must share the equations, threshold, reset, inputs, \
                         clamp and method (only parameters and init may differ)"
                            .into(),
                    ));
                }
                if let CompiledModel::Equations(s) = &mut m {
                    equations::specialize(s);
                }
                m
            }
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
            CompiledModel::LifCondExp(s) => lif_cond_exp::state_names(&s[0]),
            CompiledModel::Equations(s) => s[0].names.clone(),
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
            CompiledModel::LifCondExp(s) => lif_cond_exp::initial_state(&s[set]),
            CompiledModel::Equations(s) => s[set].initial.clone(),
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
            CompiledModel::LifCondExp(s) => lif_cond_exp::update_block(s, state, input, out),
            CompiledModel::Equations(s) => equations::update_block(s, state, input, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every one of the 256 patterns of eight 0/1 bytes packs into the byte with bit i = byte i.
    #[test]
    fn pack_bits_packs_every_byte_pattern() {
        for pattern in 0u64..256 {
            let bytes = (0..8).fold(0u64, |x, i| x | ((pattern >> i) & 1) << (8 * i));
            assert_eq!(pack_bits(bytes), pattern, "{bytes:#018x}");
        }
    }

    fn parse(json: &str) -> Result<NeuronParams, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Every model parses from tagged data (as scenario files give it), missing fields take defaults,
    /// and unknown fields or models are rejected.
    #[test]
    fn neuron_params_parse_by_model_tag() {
        let p = parse(r#"{"model":"adex","a":2.0}"#).unwrap();
        assert_eq!(p, NeuronParams::Adex(adex::AdexParams { a: 2.0, ..Default::default() }));
        let p = parse(r#"{"model":"lif_delta","v_th":-50,"refractory_input":true}"#).unwrap();
        assert_eq!(
            p,
            NeuronParams::LifDelta(lif_delta::LifDeltaParams {
                v_th: -50.0,
                refractory_input: true,
                ..Default::default()
            })
        );
        let p = parse(r#"{"model":"izhikevich","a":0.1,"d":2,"max_substep":0.05}"#).unwrap();
        assert_eq!(
            p,
            NeuronParams::Izhikevich(izhikevich::IzhikevichParams {
                a: 0.1,
                d: 2.0,
                max_substep: 0.05,
                ..Default::default()
            })
        );
        let p = parse(r#"{"model":"graded","e_rev":{"GABA":-70},"v_th":-30}"#).unwrap();
        let NeuronParams::Graded(g) = &p else { panic!("{p:?}") };
        assert_eq!((g.e_rev["GABA"], g.v_th, g.e_l), (-70.0, Some(-30.0), -35.0));
        let p = parse(r#"{"model":"lif_exp","tau_syn":{"exc":5}}"#).unwrap();
        assert_eq!(p.model_name(), "lif_exp");
        for name in ["lif_exp", "lif_delta", "izhikevich", "adex", "graded", "lif_cond_exp", "lif_cond_alpha"] {
            let p = parse(&format!(r#"{{"model":"{name}"}}"#)).unwrap();
            assert_eq!(p.model_name(), name);
            // round trip
            let back: NeuronParams = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }

        for bad in [
            r#"{"model":"adex","tau_m":10}"#,
            r#"{"model":"lif_delta","tau_syn_ex":2}"#,
            r#"{"model":"izhikevich","v_th":30}"#,
            r#"{"model":"graded","a":1}"#,
            r#"{"model":"hodgkin_huxley"}"#,
            r#"{"a":2.0}"#,
            r#"{"model":"adex","a":"two"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
        let e = parse(r#"{"model":"adex","tau_m":10}"#).unwrap_err().to_string();
        assert!(e.contains("tau_m"), "{e}");
    }

    /// Defaults of every model compile, produce `V_m` first, and mixing models is an error.
    #[test]
    fn every_model_compiles_with_defaults() {
        let channels = [
            ReceptorChannel { name: "exc".into(), excitatory: true },
            ReceptorChannel { name: "inh".into(), excitatory: false },
        ];
        for name in ["lif_exp", "lif_delta", "izhikevich", "adex", "graded", "lif_cond_exp", "lif_cond_alpha"] {
            let p = parse(&format!(r#"{{"model":"{name}"}}"#)).unwrap();
            let m = CompiledModel::compile(&[p], &channels, 0.1).unwrap();
            assert_eq!(m.state_names()[0], "V_m");
            assert_eq!(m.initial_state(0).len(), m.n_state());
            assert_eq!(m.is_spiking(), name != "graded");
            // one quiet step from rest produces no spike
            let mut state = vec![0.0; m.n_state() * LANES];
            for (v, x) in m.initial_state(0).into_iter().enumerate() {
                state[v * LANES] = x;
            }
            let syn = vec![0.0; channels.len() * LANES];
            let input =
                BlockInput { n: 1, param_set: &[0; LANES], syn: &syn, i_ext: &[0.0; LANES], forced: 0, gap: None };
            let mut out = BlockOutput::default();
            m.update_block(&mut state, &input, &mut out);
            assert_eq!(out.spikes, 0, "{name}");
        }
        let sets =
            [NeuronParams::Adex(adex::AdexParams::default()), NeuronParams::Graded(graded::GradedParams::default())];
        assert!(matches!(
            CompiledModel::compile(&sets, &channels, 0.1),
            Err(ModelError::MixedModels("adex", "graded"))
        ));
    }
}
