//! Host-side parameter tables for the CUDA C kernels, shared by the backends that run them
//! (`cuda-host` in [`crate::host_kernels`] and `cuda` in [`crate::cuda`]): the compiled neuron model as
//! per-parameter-set arrays and the stimuli as kernel parameters with per-neuron CSR lists, in the CPU
//! backend's order. Both validate against the network (channel counts, neuron ranges).

use neurotwin_kernels::host::{
    AdexTable, GradedTable, IzhikevichTable, LifCondExpTable, LifDeltaTable, LifExpTable, STIM_ACTIVATION,
    STIM_CURRENT, STIM_POISSON, StimulusParams,
};
use neurotwin_models::poisson::PoissonTable;
use neurotwin_models::{CompiledModel, Stream};

use crate::error::SimError;
use crate::launch::ModelKind;
use crate::setup::{SimSetup, StimulusKind};

/// The compiled neuron model as the kernels' parameter tables.
#[derive(Clone, Debug)]
pub(crate) enum ModelTable {
    LifExp(LifExpTable),
    LifDelta(LifDeltaTable),
    Izhikevich(IzhikevichTable),
    Adex(Box<AdexTable>),
    Graded(GradedTable),
    LifCondExp(LifCondExpTable),
    /// An equation-defined model: its constants are compiled into the generated kernel.
    Generated {
        kernel: crate::generated_models::GeneratedRef,
        n_sets: usize,
    },
}

/// One per-set parameter array of a model kernel, in the kernel's argument order (see [`ModelTable::args`]).
#[derive(Clone, Debug)]
pub(crate) enum ParamArray {
    F64(Vec<f64>),
    U32(Vec<u32>),
}

impl ModelTable {
    /// Number of parameter sets.
    pub(crate) fn n_sets(&self) -> usize {
        match self {
            ModelTable::LifExp(t) => t.n_sets(),
            ModelTable::LifDelta(t) => t.n_sets(),
            ModelTable::Izhikevich(t) => t.n_sets(),
            ModelTable::Adex(t) => t.n_sets(),
            ModelTable::Graded(t) => t.n_sets(),
            ModelTable::LifCondExp(t) => t.n_sets(),
            ModelTable::Generated { n_sets, .. } => *n_sets,
        }
    }

    /// Whether the model emits spikes (all but `graded`).
    pub(crate) fn is_spiking(&self) -> bool {
        !matches!(self, ModelTable::Graded(_))
    }

    /// The model's kernel.
    pub(crate) fn kind(&self) -> ModelKind {
        match self {
            ModelTable::LifExp(_) => ModelKind::LifExp,
            ModelTable::LifDelta(_) => ModelKind::LifDelta,
            ModelTable::Izhikevich(_) => ModelKind::Izhikevich,
            ModelTable::Adex(_) => ModelKind::Adex,
            ModelTable::Graded(_) => ModelKind::Graded,
            ModelTable::LifCondExp(_) => ModelKind::LifCondExp,
            ModelTable::Generated { kernel, .. } => ModelKind::Generated(*kernel),
        }
    }

    /// The parameter arrays in the order of the model kernel's `params` (`nt_model_args::params[j]`; each
    /// `cuda/<unit>.cu` names its arrays by index; kernel: [`ModelKind::step_kernel`]).
    pub(crate) fn args(&self) -> Vec<ParamArray> {
        use ParamArray::{F64, U32};
        match self {
            ModelTable::LifExp(t) => vec![
                F64(t.p22.clone()),
                F64(t.p20.clone()),
                F64(t.e_l.clone()),
                F64(t.theta.clone()),
                F64(t.reset.clone()),
                F64(t.i_e.clone()),
                U32(t.refractory_steps.clone()),
                F64(t.p11.clone()),
                F64(t.p21.clone()),
            ],
            ModelTable::LifDelta(t) => vec![
                F64(t.p22.clone()),
                F64(t.p20.clone()),
                F64(t.e_l.clone()),
                F64(t.theta.clone()),
                F64(t.reset.clone()),
                F64(t.i_e.clone()),
                U32(t.refractory_steps.clone()),
                F64(t.keep_refractory_input.clone()),
            ],
            ModelTable::Izhikevich(t) => vec![
                F64(t.a.clone()),
                F64(t.b.clone()),
                F64(t.c.clone()),
                F64(t.d.clone()),
                F64(t.v_peak.clone()),
                F64(t.i_e.clone()),
                U32(t.n_sub.clone()),
                F64(t.h_sub.clone()),
            ],
            ModelTable::Adex(t) => vec![
                F64(t.e_l.clone()),
                F64(t.g_l.clone()),
                F64(t.inv_c.clone()),
                F64(t.v_th.clone()),
                F64(t.g_l_delta_t.clone()),
                F64(t.inv_delta_t.clone()),
                F64(t.a.clone()),
                F64(t.inv_tau_w.clone()),
                F64(t.b.clone()),
                F64(t.v_reset.clone()),
                F64(t.v_peak.clone()),
                F64(t.i_e.clone()),
                F64(t.refractory_start.clone()),
                U32(t.n_sub.clone()),
                F64(t.h_sub.clone()),
                F64(t.half_h_sub.clone()),
                F64(t.decay_sub.clone()),
                F64(t.e_rev.clone()),
                U32(t.conductance.clone()),
            ],
            ModelTable::Graded(t) => vec![
                F64(t.g_l.clone()),
                F64(t.g_l_e_l.clone()),
                F64(t.minus_h_over_c.clone()),
                F64(t.beta.clone()),
                F64(t.v_th.clone()),
                F64(t.i_e.clone()),
                F64(t.e_rev.clone()),
            ],
            ModelTable::LifCondExp(t) => vec![
                F64(t.g_l.clone()),
                F64(t.g_l_e_l_i_e.clone()),
                F64(t.minus_h_over_c.clone()),
                F64(t.v_th.clone()),
                F64(t.v_reset.clone()),
                U32(t.refractory_steps.clone()),
                F64(t.p11.clone()),
                F64(t.q_mid.clone()),
                F64(t.e_rev.clone()),
                U32(t.alpha.clone()),
                F64(t.jump.clone()),
                F64(t.h.clone()),
            ],
            ModelTable::Generated { .. } => vec![],
        }
    }
}

/// The model's parameter sets as kernel tables; models without a kernel are a [`SimError::Setup`].
pub(crate) fn model_table(model: &CompiledModel, n_ch: usize) -> Result<ModelTable, SimError> {
    Ok(match model {
        CompiledModel::LifExp(sets) => {
            check_channels("lif_exp", sets.iter().flat_map(|c| [c.p11.len(), c.p21.len()]), n_ch)?;
            ModelTable::LifExp(LifExpTable::from_compiled(n_ch, sets))
        }
        CompiledModel::LifDelta(sets) => {
            check_channels("lif_delta", sets.iter().map(|c| c.n_channels), n_ch)?;
            ModelTable::LifDelta(LifDeltaTable::from_compiled(n_ch, sets))
        }
        CompiledModel::Izhikevich(sets) => {
            check_channels("izhikevich", sets.iter().map(|c| c.n_channels), n_ch)?;
            ModelTable::Izhikevich(IzhikevichTable::from_compiled(n_ch, sets))
        }
        CompiledModel::Adex(sets) => {
            check_channels("adex", sets.iter().map(|c| c.decay_sub.len()), n_ch)?;
            ModelTable::Adex(Box::new(AdexTable::from_compiled(n_ch, sets)))
        }
        CompiledModel::Graded(sets) => {
            check_channels("graded", sets.iter().map(|c| c.e_rev.len()), n_ch)?;
            ModelTable::Graded(GradedTable::from_compiled(n_ch, sets))
        }
        CompiledModel::Equations(sets) => ModelTable::Generated {
            kernel: crate::generated_models::host_model(sets, model.n_state(), n_ch)?,
            n_sets: sets.len(),
        },
        CompiledModel::LifCondExp(sets) => {
            check_channels(
                "lif_cond_exp",
                sets.iter().flat_map(|c| [c.p11.len(), c.q_mid.len(), c.e_rev.len()]),
                n_ch,
            )?;
            ModelTable::LifCondExp(LifCondExpTable::from_compiled(n_ch, sets))
        }
    })
}

/// Every parameter set of `model` must be compiled for the network's `n_ch` receptor channels.
fn check_channels(model: &str, per_set: impl Iterator<Item = usize>, n_ch: usize) -> Result<(), SimError> {
    for c in per_set {
        if c != n_ch {
            return Err(SimError::Setup(format!("{model} compiled for {c} channels, the network has {n_ch}")));
        }
    }
    Ok(())
}

/// Stimuli as the kernels take them: per-neuron CSR lists (`ptr`, `of`: neuron i's stimuli are
/// `of[ptr[i]..ptr[i + 1]]`) and one parameter block per stimulus.
pub(crate) type StimulusTables = (Vec<u32>, Vec<u32>, Vec<StimulusParams>);

/// Stimuli as kernel parameters plus per-neuron CSR lists `(ptr, of, params)`.
pub(crate) fn stimulus_tables(setup: &SimSetup, n_ch: usize) -> Result<StimulusTables, SimError> {
    let n = setup.n_neurons();
    let net = &setup.network;
    let dt = net.dt_ms;
    let mut params = Vec::with_capacity(setup.stimuli.len());
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (k, s) in setup.stimuli.iter().enumerate() {
        if k >= 1 << 16 {
            return Err(SimError::Setup("more than 65536 stimuli".into()));
        }
        let stream = |st: Stream| st as u32 | ((k as u32) << 16);
        let mut p = StimulusParams { start: s.start_step, stop: s.stop_step, ..Default::default() };
        match s.kind {
            StimulusKind::Poisson { rate_hz, weight, channel } => {
                if channel as usize >= n_ch {
                    return Err(SimError::Setup(format!("stimulus `{}`: no receptor channel #{channel}", s.name)));
                }
                let t = PoissonTable::new(rate_hz * dt * 1e-3);
                if t.parts > 512 {
                    return Err(SimError::Setup(format!("stimulus `{}`: Poisson rate too high", s.name)));
                }
                p.kind = STIM_POISSON;
                p.lambda_part = t.lambda_part;
                p.exp_neg = t.exp_neg;
                p.parts = t.parts;
                p.value = weight;
                p.channel = channel as u32;
                p.stream = stream(Stream::PoissonInput);
            }
            StimulusKind::Current { amplitude_pa } => {
                p.kind = STIM_CURRENT;
                p.value = amplitude_pa;
                p.stream = stream(Stream::PoissonInput);
            }
            StimulusKind::Activation { rate_hz, amplitude_pa } => {
                p.kind = STIM_ACTIVATION;
                p.p_event = 1.0 - (-rate_hz * dt * 1e-3).exp();
                p.value = amplitude_pa;
                p.stream = stream(Stream::Activation);
            }
        }
        params.push(p);
        for &t in &s.targets {
            if t as usize >= n {
                return Err(SimError::Setup(format!("stimulus `{}`: neuron #{t} out of range", s.name)));
            }
            lists[t as usize].push(k as u32);
        }
    }
    let mut stim_ptr = vec![0u32; n + 1];
    let mut stim_of = Vec::new();
    for (i, l) in lists.iter().enumerate() {
        stim_of.extend_from_slice(l);
        stim_ptr[i + 1] =
            u32::try_from(stim_of.len()).map_err(|_| SimError::Setup("more than 2^32 stimulus entries".into()))?;
    }
    Ok((stim_ptr, stim_of, params))
}
