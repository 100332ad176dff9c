//! The `cuda-host` backend: runs every step as the sequence of kernel launches the CUDA backend issues, with
//! the CUDA C kernels of `neurotwin-kernels` compiled for the host (`neurotwin_kernels::host`, one simulated
//! CUDA thread after another). It holds the state in the same block-major layout as [`CpuBackend`] and is
//! built from the same [`SimSetup`], so conformance tests can require bit-identical results from both —
//! which proves the kernel sources (not a Rust re-implementation) reproduce the CPU semantics.
//!
//! One step (see the header of `kernels/cuda/network.cu`):
//! `gather_input` → `stimulus_input` → `gap_current` → `apply_channel_gain` → `lif_exp_update` /
//! `lif_delta_update` → `apply_silence_and_flag` → compaction → `deliver_spikes` → `snapshot_v`.
//!
//! Compaction here scans the spike flags in ascending neuron order on the host. The CUDA backend will
//! compact with a device-wide exclusive scan over the flags (then a scatter), which yields the same
//! ascending list; delivery does not depend on the order of the list anyway (integer atomics).
//!
//! Supports the spiking models `lif_exp` and `lif_delta`; other models are rejected with
//! [`SimError::Setup`].
//!
//! [`CpuBackend`]: crate::cpu::CpuBackend

use std::sync::Arc;

use neurotwin_connectome::{CompiledNetwork, Weights};
use neurotwin_kernels::host::{self, GapRows, LifExpStepInput, RingLayout, RowWeights, StimulusSet, SynapseRows};
use neurotwin_models::LANES;

use crate::backend::Backend;
use crate::control::StepControl;
use crate::cpu::DeliveryScale;
use crate::error::SimError;
use crate::kernel_tables::{ModelTable, model_table, stimulus_tables};
use crate::setup::{SimSetup, initial_block_state};

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
    gap: Option<GapRows>,
    synapses: SynapseRows,
    /// Per-step buffers (device buffers on a GPU).
    syn: Vec<f64>,
    i_ext: Vec<f64>,
    forced: Vec<u64>,
    spiked: Vec<u8>,
    v_prev: Vec<f64>,
    gain: Vec<f64>,
    silenced: Vec<u64>,
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
        let n_sets = match &model {
            ModelTable::LifExp(t) => t.n_sets(),
            ModelTable::LifDelta(t) => t.n_sets(),
        };
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
            gap,
            synapses,
            syn: vec![0.0; n_pad * n_ch],
            i_ext: vec![0.0; n],
            forced: vec![0; n_blocks],
            spiked: vec![0; n],
            v_prev: vec![0.0; n_pad],
            gain: vec![1.0; n_ch],
            silenced: vec![0; n_blocks],
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

/// The compiled model as the kernels' parameter tables; `n_ch` receptor channels.
impl Backend for HostKernelBackend {
    fn name(&self) -> &'static str {
        "cuda-host"
    }

    fn step(&mut self, step: u64, control: &StepControl) -> Result<&[u32], SimError> {
        let slot = (step % self.slots as u64) as usize;
        // 1. Synaptic input of this step, ring slot cleared.
        host::gather_input(&mut self.ring, self.n_ch, self.slots, slot, self.fixed.inv_scale, &mut self.syn);
        // 2. Stimuli (the forced mask is a memset on the device).
        self.forced.fill(0);
        host::stimulus_input(&self.stimuli, step, self.seed, true, &mut self.syn, &mut self.i_ext, &mut self.forced);
        // 3. Gap junctions from the previous step's voltages.
        if let Some(gap) = &self.gap {
            host::gap_current(gap, &self.v_prev, &mut self.i_ext);
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
        }
        // 6. Silenced neurons emit nothing.
        // (On a GPU the mask is uploaded when `control.silenced_version` changes.)
        for (b, w) in self.silenced.iter_mut().enumerate() {
            *w = control.silenced.get(b).copied().unwrap_or(0);
        }
        if self.silenced.iter().any(|&w| w != 0) {
            host::apply_silence_and_flag(&self.silenced, &mut self.spiked);
        }
        // 7. Compaction: flags → ascending list (a device-wide scan on the GPU).
        self.spikes.clear();
        self.spikes.extend(self.spiked.iter().enumerate().filter(|&(_, &f)| f != 0).map(|(i, _)| i as u32));
        // 8. Delivery with integer atomics.
        if !self.spikes.is_empty() && self.net.chemical.n_synapses() > 0 {
            let deliver = match self.delivery {
                Delivery::Correct => host::deliver_spikes,
                Delivery::Broken => host::deliver_spikes_broken_for_test,
            };
            deliver(&self.synapses, &self.spikes, self.fixed.scale, step, &mut self.ring);
        }
        // 9. Voltages for the next step's gap junctions.
        self.snapshot_v();
        Ok(&self.spikes)
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
