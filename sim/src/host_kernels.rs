//! The `cuda-host` backend: runs every step as the sequence of kernel launches the CUDA backend issues, with
//! the CUDA C kernels of `neurotwin-kernels` compiled for the host (`neurotwin_kernels::host`, one simulated
//! CUDA thread after another). It holds the state in the same block-major layout as [`CpuBackend`] and is
//! built from the same [`SimSetup`], so conformance tests can require bit-identical results from both —
//! which proves the kernel sources (not a Rust re-implementation) reproduce the CPU semantics.
//!
//! One step (see the header of `kernels/cuda/network.cu`):
//! `gather_input` → `stimulus_input` → `gap_current` → `apply_channel_gain` → `<model>_update` →
//! `apply_silence_and_flag` → compaction (`spike_masks`, `spike_chunk_totals`, `spike_scan_chunks`,
//! `spike_scatter`) into the window's spike record → `deliver_spikes` (warp-cooperative, reading its list from
//! the record) → `snapshot_v`. Graded models: `graded_update` → `silence_activity` → `deliver_graded`.
//!
//! Spikes stay in the spike record (as on the GPU) until [`Backend::drain_spikes`]; the window is
//! [`HOST_SPIKE_WINDOW`] steps, so tests driving the engine exercise the same record path as the CUDA
//! backend.
//!
//! Supports every model: `lif_exp`, `lif_delta`, `izhikevich`, `adex` and `graded`.
//!
//! [`CpuBackend`]: crate::cpu::CpuBackend

use std::sync::Arc;

use neurotwin_connectome::{CompiledNetwork, Weights};
use neurotwin_kernels::host::{
    self, GapRows, LifExpStepInput, RingLayout, RowWeights, SpikeRecord, StimulusSet, SynapseRows,
};
use neurotwin_models::LANES;

use crate::backend::Backend;
use crate::control::StepControl;
use crate::cpu::DeliveryScale;
use crate::error::SimError;
use crate::kernel_tables::{ModelTable, model_table, stimulus_tables};
use crate::setup::{SimSetup, initial_block_state};
use crate::spike_trains::SpikeTrains;

/// Steps of spikes the host spike record holds between drains.
pub const HOST_SPIKE_WINDOW: usize = 16;

/// Which build of the delivery kernel to launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    Correct,
    Broken,
}

/// See the module documentation.
pub struct HostKernelBackend {
    net: Arc<CompiledNetwork>,
    model: ModelTable,
    n: usize,
    n_state: usize,
    n_ch: usize,
    slots: usize,
    seed: u64,
    param_set: Vec<u16>,
    /// Block-major state, `state[(block * n_state + var) * 64 + lane]`.
    state: Vec<f64>,
    /// `ring[((ch * slots) + slot) * n_pad + neuron]`, fixed point in units of 2^-S.
    ring: Vec<i64>,
    fixed: DeliveryScale,
    stimuli: StimulusSet,
    /// Prescribed spike trains (device arrays on a GPU).
    trains: Arc<SpikeTrains>,
    gap: Option<GapRows>,
    synapses: SynapseRows,
    /// Per-step buffers (device buffers on a GPU).
    syn: Vec<f64>,
    i_ext: Vec<f64>,
    forced: Vec<u64>,
    spiked: Vec<u8>,
    activity: Vec<f64>,
    /// Graded models: gap coupling as conductance sum and conductance-weighted partner potentials.
    gap_g: Vec<f64>,
    gap_gv: Vec<f64>,
    v_prev: Vec<f64>,
    gain: Vec<f64>,
    silenced: Vec<u64>,
    /// The window's spike record (device memory on a GPU) and the steps advanced in it.
    record: SpikeRecord,
    pending: Vec<u64>,
    /// The spikes of the last `step` call.
    spikes: Vec<u32>,
    delivery: Delivery,
}

impl HostKernelBackend {
    pub fn new(setup: &SimSetup) -> Result<Self, SimError> {
        Self::build(setup, Delivery::Correct)
    }

    /// The same backend with the deliberately broken delivery kernel (`NEUROTWIN_BREAK_FOR_TEST`: the last
    /// synapse of every segment is dropped). Exists only so that tests can prove the conformance comparison
    /// detects a broken kernel; never use it in a simulation.
    #[doc(hidden)]
    pub fn new_with_broken_delivery_for_test(setup: &SimSetup) -> Result<Self, SimError> {
        Self::build(setup, Delivery::Broken)
    }

    fn build(setup: &SimSetup, delivery: Delivery) -> Result<Self, SimError> {
        let net = setup.network.clone();
        let n = net.n_neurons();
        if setup.param_set.len() != n {
            return Err(SimError::Setup(format!("{} parameter-set indices for {n} neurons", setup.param_set.len())));
        }
        if net.receptors.is_empty() {
            return Err(SimError::Setup("the cuda-host backend needs at least one receptor channel".into()));
        }
        let n_blocks = n.div_ceil(LANES);
        let n_pad = n_blocks * LANES;
        let n_state = setup.model.n_state();
        let n_ch = net.receptors.len();
        let slots = net.chemical.max_delay() as usize + 1;
        let ring_len = n_ch
            .checked_mul(slots)
            .and_then(|x| x.checked_mul(n_pad))
            .ok_or_else(|| SimError::Setup("delay ring buffer size overflows".into()))?;
        let model = model_table(&setup.model, n_ch)?;
        let n_sets = model.n_sets();
        if let Some(&bad) = setup.param_set.iter().find(|&&s| s as usize >= n_sets) {
            return Err(SimError::Setup(format!("parameter set #{bad} out of range ({n_sets} sets)")));
        }

        // State: the model's rest state, then the init rules (the same array the CPU backend starts from).
        let state = initial_block_state(setup)?;

        // Fixed-point scale: the CPU backend's rule (largest per-step input of one neuron).
        let m = &net.chemical;
        let fixed = DeliveryScale::for_network(&net);
        let weights = match &m.weights {
            Weights::Dense(w) => RowWeights::Dense(w.clone()),
            Weights::Table { values, index } => RowWeights::Table {
                index: index.clone(),
                values: values.clone(),
                fixed_table: values.iter().map(|&w| fixed.to_fixed(w as f64)).collect(),
            },
        };
        if m.n_pre as usize != n || m.targets.iter().any(|&t| t as usize >= n) {
            return Err(SimError::Setup(format!("synapse matrix does not match the {n} neurons")));
        }
        if let Some(&r) = m.segment_receptor.iter().find(|&&r| r as usize >= n_ch) {
            return Err(SimError::Setup(format!("synapses on receptor #{r}, the network has {n_ch}")));
        }
        let synapses = SynapseRows::new(
            n,
            RingLayout { n_channels: n_ch, slots, n_pad },
            m.row_segments.clone(),
            m.segment_start.clone(),
            m.segment_delay.clone(),
            m.segment_receptor.clone(),
            m.targets.clone(),
            weights,
        );

        // Stimuli → kernel parameters and per-neuron CSR lists (same order as the CPU backend).
        let (stim_ptr, stim_of, params) = stimulus_tables(setup, n_ch)?;
        let stimuli = StimulusSet::new(n, n_ch, stim_ptr, stim_of, params);
        let trains = setup.spike_trains.clone();
        trains.check_for_run(n, setup.model.is_spiking())?;

        let g = &net.gap;
        let gap = if g.is_empty() {
            None
        } else {
            if g.row_ptr.len() != n + 1 || g.partner.iter().any(|&j| j as usize >= n) {
                return Err(SimError::Setup(format!("gap-junction matrix does not match the {n} neurons")));
            }
            Some(GapRows::new(n, g.row_ptr.clone(), g.partner.clone(), g.conductance.clone()))
        };

        let mut b = Self {
            model,
            n,
            n_state,
            n_ch,
            slots,
            seed: setup.seed,
            param_set: setup.param_set.clone(),
            state,
            ring: vec![0; ring_len],
            fixed,
            stimuli,
            trains,
            gap,
            synapses,
            syn: vec![0.0; n_pad * n_ch],
            i_ext: vec![0.0; n],
            forced: vec![0; n_blocks],
            spiked: vec![0; n],
            activity: vec![0.0; n],
            gap_g: vec![0.0; n],
            gap_gv: vec![0.0; n],
            v_prev: vec![0.0; n_pad],
            gain: vec![1.0; n_ch],
            silenced: vec![0; n_blocks],
            record: SpikeRecord::new(n, HOST_SPIKE_WINDOW),
            pending: Vec::with_capacity(HOST_SPIKE_WINDOW),
            spikes: Vec::new(),
            delivery,
            net,
        };
        b.snapshot_v();
        Ok(b)
    }

    fn snapshot_v(&mut self) {
        if self.gap.is_some() {
            host::snapshot_v(&self.state, self.n_state, &mut self.v_prev);
        }
    }
}

impl HostKernelBackend {
    /// One step in the CUDA backend's launch order; a spiking model's spikes go to window step
    /// `self.pending.len()` of the record.
    fn advance_step(&mut self, step: u64, control: &StepControl) {
        let slot = (step % self.slots as u64) as usize;
        let spiking = self.model.is_spiking();
        // 1. Synaptic input of this step, ring slot cleared.
        host::gather_input(&mut self.ring, self.n_ch, self.slots, slot, self.fixed.inv_scale, &mut self.syn);
        // 2. Stimuli (the forced mask is a memset on the device).
        self.forced.fill(0);
        host::stimulus_input(&self.stimuli, step, self.seed, spiking, &mut self.syn, &mut self.i_ext, &mut self.forced);
        // 2'. Prescribed spike trains into the same mask.
        let t = &self.trains;
        host::spike_train_input(&t.neurons, &t.ptr, &t.steps, step, &mut self.forced);
        // 3. Gap junctions from the previous step's voltages: a current for spiking models, conductances
        // (taken implicitly by the model) for graded ones.
        if let Some(gap) = &self.gap {
            if spiking {
                host::gap_current(gap, &self.v_prev, &mut self.i_ext);
            } else {
                host::gap_conductance(gap, &self.v_prev, &mut self.gap_g, &mut self.gap_gv);
            }
        }
        // 4. Receptor gains (drug block, scaling); skipped when every gain is 1, as the kernel would do nothing.
        for (g, c) in self.gain.iter_mut().enumerate() {
            *c = control.channel_gain.get(g).copied().unwrap_or(1.0);
        }
        if self.gain.iter().any(|&g| g != 1.0) {
            host::apply_channel_gain(self.n, &self.gain, &mut self.syn);
        }
        // 5. Neuron model.
        let input =
            LifExpStepInput { param_set: &self.param_set, syn: &self.syn, i_ext: &self.i_ext, forced: &self.forced };
        match &self.model {
            ModelTable::LifExp(t) => host::lif_exp_update(t, &mut self.state, &input, &mut self.spiked),
            ModelTable::LifDelta(t) => host::lif_delta_update(t, &mut self.state, &input, &mut self.spiked),
            ModelTable::Izhikevich(t) => host::izhikevich_update(t, &mut self.state, &input, &mut self.spiked),
            ModelTable::Adex(t) => host::adex_update(t, &mut self.state, &input, &mut self.spiked),
            ModelTable::Graded(t) => {
                let gap = self.gap.as_ref().map(|_| (&self.gap_g[..], &self.gap_gv[..]));
                host::graded_update(t, &mut self.state, &input, gap, &mut self.activity)
            }
        }
        // 6. Silenced neurons emit nothing.
        // (On a GPU the mask is uploaded when `control.silenced_version` changes.)
        for (b, w) in self.silenced.iter_mut().enumerate() {
            *w = control.silenced.get(b).copied().unwrap_or(0);
        }
        let any_silenced = self.silenced.iter().any(|&w| w != 0);
        let has_synapses = self.net.chemical.n_synapses() > 0;
        if spiking {
            if any_silenced {
                host::apply_silence_and_flag(&self.silenced, &mut self.spiked);
            }
            // 7. Compaction into the spike record, window step k.
            let k = self.pending.len();
            self.record.compact(&self.spiked, k);
            // 8. Delivery with integer atomics, straight from the record.
            if has_synapses {
                let deliver = match self.delivery {
                    Delivery::Correct => host::deliver_spikes,
                    Delivery::Broken => host::deliver_spikes_broken_for_test,
                };
                deliver(&self.synapses, &self.record, k, self.fixed.scale, step, &mut self.ring);
            }
        } else {
            if any_silenced {
                host::silence_activity(&self.silenced, &mut self.activity);
            }
            if has_synapses {
                host::deliver_graded(&self.synapses, &self.activity, self.fixed.scale, step, &mut self.ring);
            }
        }
        self.pending.push(step);
        // 9. Voltages for the next step's gap junctions.
        self.snapshot_v();
    }
}

impl Backend for HostKernelBackend {
    fn name(&self) -> &'static str {
        "cuda-host"
    }

    fn step(&mut self, step: u64, control: &StepControl) -> Result<&[u32], SimError> {
        if !self.pending.is_empty() {
            return Err(SimError::Setup("cuda-host backend: step called with undrained advanced steps".into()));
        }
        self.advance_step(step, control);
        self.spikes.clear();
        if self.model.is_spiking() {
            self.spikes.extend_from_slice(self.record.step_spikes(0));
        }
        self.pending.clear();
        Ok(&self.spikes)
    }

    fn advance(&mut self, step: u64, control: &StepControl) -> Result<(), SimError> {
        if self.pending.len() == HOST_SPIKE_WINDOW {
            return Err(SimError::Setup(format!(
                "cuda-host backend: more than {HOST_SPIKE_WINDOW} steps advanced without drain_spikes"
            )));
        }
        self.advance_step(step, control);
        Ok(())
    }

    fn drain_spikes(&mut self, sink: &mut dyn FnMut(u64, &[u32])) -> Result<(), SimError> {
        let spiking = self.model.is_spiking();
        for (k, &step) in self.pending.iter().enumerate() {
            sink(step, if spiking { self.record.step_spikes(k) } else { &[] });
        }
        self.pending.clear();
        Ok(())
    }

    fn spike_window(&self) -> usize {
        HOST_SPIKE_WINDOW
    }

    fn read_state(&self, var: usize, neurons: &[u32], out: &mut Vec<f64>) {
        let n_state = self.n_state;
        out.extend(neurons.iter().map(|&i| {
            let i = i as usize;
            self.state[(i / LANES) * n_state * LANES + var * LANES + i % LANES]
        }));
    }

    fn delivery_scale_exponent(&self) -> i32 {
        self.fixed.exponent
    }
}
