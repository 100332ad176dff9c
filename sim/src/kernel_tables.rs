//! Host-side parameter tables for the CUDA C kernels, shared by the backends that run them
//! (`cuda-host` in [`crate::host_kernels`] and `cuda` in [`crate::cuda`]): the compiled neuron model as
//! per-parameter-set arrays and the stimuli as kernel parameters with per-neuron CSR lists, in the CPU
//! backend's order. Both validate against the network (channel counts, neuron ranges).

use neurotwin_kernels::host::{
    LifDeltaTable, LifExpTable, STIM_ACTIVATION, STIM_CURRENT, STIM_POISSON, StimulusParams,
};
use neurotwin_models::poisson::PoissonTable;
use neurotwin_models::{CompiledModel, Stream};

use crate::error::SimError;
use crate::setup::{SimSetup, StimulusKind};

/// The compiled neuron model as the kernels' parameter tables.
#[derive(Clone, Debug)]
pub(crate) enum ModelTable {
    LifExp(LifExpTable),
    LifDelta(LifDeltaTable),
}

/// The model's parameter sets as kernel tables; models without a kernel are a [`SimError::Setup`].
pub(crate) fn model_table(model: &CompiledModel, n_ch: usize) -> Result<ModelTable, SimError> {
    match model {
        CompiledModel::LifExp(sets) => {
            let mut t = LifExpTable { n_channels: n_ch, ..Default::default() };
            for c in sets {
                if c.p11.len() != n_ch || c.p21.len() != n_ch {
                    return Err(SimError::Setup(format!(
                        "lif_exp compiled for {} channels, the network has {n_ch}",
                        c.p11.len()
                    )));
                }
                t.p22.push(c.p22);
                t.p20.push(c.p20);
                t.e_l.push(c.e_l);
                t.theta.push(c.theta);
                t.reset.push(c.reset);
                t.i_e.push(c.i_e);
                t.refractory_steps.push(c.refractory_steps);
                t.p11.extend_from_slice(&c.p11);
                t.p21.extend_from_slice(&c.p21);
            }
            Ok(ModelTable::LifExp(t))
        }
        CompiledModel::LifDelta(sets) => {
            let mut t = LifDeltaTable { n_channels: n_ch, ..Default::default() };
            for c in sets {
                if c.n_channels != n_ch {
                    return Err(SimError::Setup(format!(
                        "lif_delta compiled for {} channels, the network has {n_ch}",
                        c.n_channels
                    )));
                }
                t.p22.push(c.p22);
                t.p20.push(c.p20);
                t.e_l.push(c.e_l);
                t.theta.push(c.theta);
                t.reset.push(c.reset);
                t.i_e.push(c.i_e);
                t.refractory_steps.push(c.refractory_steps);
                t.keep_refractory_input.push(c.keep_refractory_input);
            }
            Ok(ModelTable::LifDelta(t))
        }
        CompiledModel::Izhikevich(_) => Err(unsupported("izhikevich")),
        CompiledModel::Adex(_) => Err(unsupported("adex")),
        CompiledModel::Graded(_) => Err(unsupported("graded")),
    }
}

pub(crate) fn unsupported(model: &str) -> SimError {
    SimError::Setup(format!("the cuda-host backend supports the models lif_exp and lif_delta, not `{model}`"))
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
