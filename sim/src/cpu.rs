//! The CPU backend: block-parallel neuron updates on rayon and deterministic spike delivery through
//! fixed-point delay ring buffers.
//!
//! Determinism: synaptic input is accumulated as 64-bit integers in units of `2^-S` (S chosen from the
//! largest total input weight a neuron can receive in one step, so no sum can overflow). Integer sums
//! do not depend on the order of additions, so the result is identical for any thread count and for any
//! delivery order — the property the CUDA backend's atomics need too. Weights are converted exactly
//! whenever `|w| · 2^S` is an integer, i.e. unless a weight is more than ~2^38 times smaller than the
//! largest input sum; the run summary reports the exponent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use neurotwin_connectome::{CompiledNetwork, Weights};
use neurotwin_models::poisson::PoissonTable;
use neurotwin_models::{BlockInput, BlockOutput, CompiledModel, CounterRng, GapInput, LANES, Stream};
use neurotwin_models::{lif_delta, lif_exp};

use crate::native_models::{EngineChoice, MAX_RING_CHANNELS, NativeModel, native_model};
use rayon::prelude::*;

use crate::backend::Backend;
use crate::control::StepControl;
use crate::delivery::{Delivery, DeliveryStrategy, Timing, Work};
use crate::error::SimError;
use crate::plasticity::PlasticSynapses;
use crate::profile::{BackendPhases, PhaseTimes, lap};
use crate::setup::{SimSetup, StimulusKind, initial_block_state, state_index};
use crate::spike_queue::SpikeQueue;
use crate::spike_trains::SpikeTrains;

/// Networks with fewer blocks of 64 neurons deliver spikes and copy potentials on one thread: a parallel
/// phase costs a rayon wake-up per step (≈ 10 µs), more than the work. Measured on the 473-cell worm (48 s
/// simulated, 2 cores): 8.3 s wall with the parallel update (8 blocks), 6.2 s on one thread.
const PARALLEL_MIN_BLOCKS: usize = 32;

/// Spikes are delivered in parallel only when they have at least this many synapses in a step: at 2–4 ns a
/// synapse that is ≈ 30 µs of work, several times a parallel phase's fork-join. Brunel 12.5k (40 spikes of 1,250
/// synapses a step) was delivered on one thread before, when the rule counted spikes (at least 64): 1.55–1.66 s
/// of delivery in 1 s simulated on 2 cores, against 1.63 s on one thread.
const PARALLEL_MIN_DELIVERY_SYNAPSES: u64 = 8192;

/// The neuron update runs in parallel only when its estimated work per step is at least this (ns): several
/// times the fork-join of a parallel step (≈ 5–10 µs on 2 cores). CUBA, 1 s, 2 cores (`neurotwin run
/// --profile`, 3 runs each): 4,000 neurons (63 fused blocks, ≈ 3 µs a step) update in 0.046 s on one thread
/// and 0.069 s on two; 64,000 (1,000 blocks, ≈ 50 µs) in 0.59 s on one and 0.48 s on two.
const PARALLEL_MIN_UPDATE_NS: u64 = 20_000;
/// Estimated cost of one block (ns) on the fused ring-to-spikes pass, and on the general path (ring gather,
/// input checks, the model's block update); measured as above: 4,000-neuron CUBA updates in ≈ 50 ns a block
/// fused and ≈ 210 ns on the general path, external inputs (Poisson drive) add more.
const FUSED_BLOCK_NS: u64 = 50;
const GENERAL_BLOCK_NS: u64 = 250;
/// Estimated cost (ns) of a block's external inputs, added to blocks with any stimulus: a Poisson drive on
/// 64 lanes (block Philox and inversion). PD14 at 10 %, 1 s: 0.65 s of input CPU time for 7.7 M neuron-steps
/// a second of 121 blocks, ≈ 540 ns a block and step.
const INPUT_BLOCK_NS: u64 = 550;

/// What a block's fused ring-to-spikes pass takes besides the ring (see `CpuBackend::fused_block`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FusedInput {
    /// Not eligible: the general path (partial block, several parameter sets or models, currents, trains, gap
    /// junctions, several drives on one channel).
    No,
    /// The ring only.
    Ring,
    /// The ring and Poisson drives, at most one per channel, the same list for all 64 lanes.
    RingPoisson,
}

/// Estimated neuron-update work per step (ns) of the blocks in `blocks` from their paths and stimuli.
fn update_work_ns(fused: &[FusedInput], stim_ptr: &[u32], blocks: std::ops::Range<usize>) -> u64 {
    let per_block = |b: usize, f: &FusedInput| {
        let path = if *f == FusedInput::No { GENERAL_BLOCK_NS } else { FUSED_BLOCK_NS };
        let inputs = stim_ptr[b * LANES] != stim_ptr[((b + 1) * LANES).min(stim_ptr.len() - 1)];
        path + if inputs { INPUT_BLOCK_NS } else { 0 }
    };
    blocks.map(|b| per_block(b, &fused[b])).sum()
}

/// Block boundaries `[0, b_1, …, blocks]` of `parts` contiguous ranges of the blocks in `span` (indices relative
/// to its start) with about equal estimated update work each ([`update_work_ns`]), every range non-empty when
/// there are enough blocks.
fn balanced_split(fused: &[FusedInput], stim_ptr: &[u32], span: std::ops::Range<usize>, parts: usize) -> Vec<usize> {
    let blocks = span.len();
    let parts = parts.clamp(1, blocks.max(1));
    let work: Vec<u64> = span.clone().map(|b| update_work_ns(fused, stim_ptr, b..b + 1)).collect();
    let total: u64 = work.iter().sum();
    let mut bounds = vec![0];
    let mut acc = 0u64;
    for (k, w) in work.iter().enumerate() {
        acc += w;
        let p = bounds.len() as u64;
        // Close range p − 1 once its share is reached, leaving at least one block for each range still to come.
        if (p as usize) < parts && acc * parts as u64 >= p * total && blocks - (k + 1) >= parts - p as usize {
            bounds.push(k + 1);
        }
    }
    while bounds.len() < parts {
        bounds.push(blocks);
    }
    bounds.push(blocks);
    bounds
}

/// The fixed-point scale `2^S` of the delivery buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeliveryScale {
    pub exponent: i32,
    pub scale: f64,
    pub inv_scale: f64,
}

impl DeliveryScale {
    /// Largest exponent such that `max_input · 2^S < 2^62`, clamped to [0, 60].
    pub fn for_max_input(max_input: f64) -> Self {
        let exponent = if max_input > 0.0 { (62.0 - max_input.log2().ceil()).clamp(0.0, 60.0) as i32 } else { 40 };
        let scale = 2f64.powi(exponent);
        Self { exponent, scale, inv_scale: 1.0 / scale }
    }

    /// The scale for a network: from the largest total absolute weight any neuron receives (each
    /// synapse contributes at most once per step).
    pub fn for_network(net: &CompiledNetwork) -> Self {
        Self::for_max_input(Self::max_input(net))
    }

    /// The scale for a network whose plastic synapses (`plastic`, taken out of `net`'s matrix) may each reach
    /// `|w_max|`: from the largest sum of fixed in-strength and plastic bounds of any neuron.
    pub fn for_network_with(net: &CompiledNetwork, plastic: Option<&crate::plasticity::PlasticSynapses>) -> Self {
        match plastic {
            None => Self::for_network(net),
            Some(p) => {
                let bound = p.max_input_per_target(net.n_neurons());
                let fixed = Self::in_strength(net);
                Self::for_max_input(fixed.iter().zip(&bound).map(|(a, b)| a + b).fold(0.0, f64::max))
            }
        }
    }

    /// The largest total absolute weight any neuron of `net` receives, summed in matrix order. A process's
    /// share holds every synapse onto its targets in the same order, so the largest over all shares is the
    /// whole network's value, bit for bit.
    pub fn max_input(net: &CompiledNetwork) -> f64 {
        Self::in_strength(net).iter().copied().fold(0.0, f64::max)
    }

    /// The total absolute weight each neuron of `net` receives (the held targets of a share, from the first),
    /// summed in matrix order.
    pub fn in_strength(net: &CompiledNetwork) -> Vec<f64> {
        let m = &net.chemical;
        let lo = net.held_targets.as_ref().map_or(0, |r| r.start);
        let len = net.held_targets.as_ref().map_or(net.n_neurons(), |r| r.len());
        let mut in_strength = vec![0.0f64; len];
        for s in 0..m.n_segments() {
            let seg = m.segment(s);
            for (k, &t) in seg.targets.iter().enumerate() {
                if let Some(x) = in_strength.get_mut(t.wrapping_sub(lo) as usize) {
                    *x += seg.weights.get(k).abs() as f64;
                }
            }
        }
        in_strength
    }

    #[inline]
    pub fn to_fixed(&self, x: f64) -> i64 {
        round_ties_even(x * self.scale) as i64
    }
}

/// `y.round_ties_even()` without a library call: baseline x86-64 has no rounding instruction (SSE4.1's `roundsd`),
/// so the standard library calls `rint`, ~9 % of PD14's simulation with per-synapse weights. Adding and
/// subtracting 2^52 rounds a magnitude below 2^52 to an integer, ties to even, exactly (IEEE 754
/// round-to-nearest; Rust never reassociates floating-point arithmetic); larger magnitudes, infinities and NaN
/// are returned unchanged, as integers already or as `round_ties_even` returns them. The sign is put back, so
/// −0.4 gives −0.0. Equal to `round_ties_even` bit for bit (tested).
#[inline(always)]
pub fn round_ties_even(y: f64) -> f64 {
    const TWO52: f64 = 4_503_599_627_370_496.0;
    if y.abs() < TWO52 { ((y.abs() + TWO52) - TWO52).copysign(y) } else { y }
}

/// Per-neuron stimulus entry, precomputed from the setup.
#[derive(Clone, Copy, Debug)]
struct StimEntry {
    kind: StimulusKind,
    start: u64,
    stop: u64,
    /// Poisson mean per step for Poisson input.
    poisson: PoissonTable,
    /// Probability of an activation event per step: 1 − e^{−rate·dt}.
    p_event: f64,
    rng: CounterRng,
}

/// A raw pointer that may be shared between rayon tasks which write disjoint indices.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(pub(crate) *mut T);
// SAFETY: used only for disjoint writes (each task owns a distinct set of neuron indices), separated
// from reads by rayon's join barriers.
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

pub struct CpuBackend {
    net: Arc<CompiledNetwork>,
    model: CompiledModel,
    /// The native block function of an equation-defined model (`native_models.rs`); `None`: the model's own
    /// update (built-in models, or the interpreter).
    native: Option<Arc<NativeModel>>,
    n: usize,
    n_blocks: usize,
    n_state: usize,
    n_ch: usize,
    /// Ring slots (max delay + 1).
    slots: usize,
    param_set: Vec<u16>,
    /// The blocks of 64 neurons whose state, ring entries and outputs this backend holds: all of them, or one
    /// process's span when the network is split (`distributed.rs`). `state`, `ring`, `block_spikes` and
    /// `activity` cover only these blocks.
    span: std::ops::Range<usize>,
    /// State of the span's blocks, block-major (`state_index` of the neuron's offset from the span's start).
    state: Vec<f64>,
    /// `ring[((ch * slots) + slot) * ring_pad + (neuron − span.start · 64)]`
    ring: Vec<i64>,
    /// Width of a ring row: the span's neurons, `span.len() · 64`.
    ring_pad: usize,
    fixed: DeliveryScale,
    /// Fixed-point weight table (table-encoded matrices).
    fixed_table: Option<Vec<i64>>,
    stim: Vec<StimEntry>,
    stim_ptr: Vec<u32>,
    stim_of: Vec<u32>,
    /// Per block: every neuron has the same stimulus list (random numbers drawn for the whole block).
    block_uniform_stim: Vec<bool>,
    /// Prescribed spike trains, each neuron's train (`u32::MAX`: none; empty without trains) and whether a
    /// block holds any train.
    trains: Arc<SpikeTrains>,
    train_of: Vec<u32>,
    block_has_train: Vec<bool>,
    /// Per block: whether it takes the fused ring-to-spikes pass (`update_full_block_2ch_from_ring` of
    /// `lif_exp` or `lif_delta`) whenever no channel gain is in force, and with which input.
    fused_block: Vec<FusedInput>,
    /// Whether the neuron update runs on the rayon pool (estimated work ≥ `PARALLEL_MIN_UPDATE_NS`).
    parallel_update: bool,
    /// One contiguous range of blocks per worker thread (`balanced_split`, boundaries relative to `span`): in a
    /// parallel step thread `p` updates range `p` and then delivers to the targets of range `p`, so the ring
    /// entries it adds to are those it read and cleared in the update, in its own core's cache (with rayon's
    /// work stealing either thread could update a block). Results do not depend on it (exact integer sums).
    thread_blocks: Vec<usize>,
    /// When and how spikes reach the input rows (`DeliveryStrategy::choose`).
    delivery: DeliveryStrategy,
    /// The spikes waiting for their delays, with [`Timing::Queue`] (`ring` then has one slot).
    queue: Option<SpikeQueue>,
    /// Each worker thread's block buffers for the update (`thread_blocks`); uncontended locks.
    thread_scratch: Vec<std::sync::Mutex<BlockScratch>>,
    block_spikes: Vec<u64>,
    activity: Vec<f64>,
    v_prev: Vec<f64>,
    spikes: Vec<u32>,
    emitted: Vec<(u32, f64)>,
    spiking: bool,
    /// The step advanced but not yet drained (its spikes are `spikes`); the CPU's window is one step.
    pending: Option<u64>,
    /// Ownership of 64-neuron blocks when the network is split across processes (`distributed.rs`); `None`:
    /// every block is updated (the normal case). Every owned block lies in `span`.
    owned: Option<Vec<bool>>,
    /// With `owned`: delivery writes only to targets in `[lo, hi)`, the neurons of `span`.
    owned_span: Option<(u32, u32)>,
    /// Time per phase of the step, when profiling (`Backend::start_profiling`); `None`: nothing is timed.
    profile: Option<Box<BackendPhases>>,
    /// The plastic synapses (taken out of `net`'s matrix) and their state; `None`: every synapse is fixed.
    plastic: Option<PlasticSynapses>,
}

impl CpuBackend {
    /// The backend of a whole network in one process.
    pub fn new(setup: &SimSetup) -> Result<Self, SimError> {
        Self::with_equation_engine(setup, EngineChoice::from_env()?)
    }

    /// [`CpuBackend::new`] with the engine of an equation-defined model chosen by `engine` instead of
    /// `NEUROTWIN_EQUATIONS` (`native_models.rs`).
    pub fn with_equation_engine(setup: &SimSetup, engine: EngineChoice) -> Result<Self, SimError> {
        setup.network.check_whole("the CPU backend in one process").map_err(|e| SimError::Setup(e.to_string()))?;
        Self::build(setup, None, engine, None)
    }

    /// [`CpuBackend::new`] with the delivery timing chosen by the caller (for tests and measurements; the results
    /// are the same either way). [`Timing::Queue`] is refused where something adds to the rows from outside the
    /// step (plasticity).
    pub fn with_delivery_timing(setup: &SimSetup, timing: Timing) -> Result<Self, SimError> {
        setup.network.check_whole("the CPU backend in one process").map_err(|e| SimError::Setup(e.to_string()))?;
        Self::build(setup, None, EngineChoice::from_env()?, Some(timing))
    }

    /// The delivery strategy in force.
    pub fn delivery_strategy(&self) -> DeliveryStrategy {
        self.delivery
    }

    /// How an equation-defined model runs here: `Some("native")` or `Some("interpreter")`; `None` for built-in
    /// models.
    pub fn equation_engine(&self) -> Option<&'static str> {
        match (&self.model, &self.native) {
            (CompiledModel::Equations(_), Some(_)) => Some("native"),
            (CompiledModel::Equations(_), None) => Some("interpreter"),
            _ => None,
        }
    }

    /// The backend of one process of a split run (`distributed.rs`): it updates the blocks with `owned[b]`
    /// (of all `⌈n/64⌉`), holds state and ring entries only for the span from the first to the last of them,
    /// delivers only to targets in that span, and uses the fixed-point `scale` agreed by all processes (each
    /// sees only the synapses onto its targets, so none can compute it alone).
    /// `timing`: the delivery timing, `None` to choose (see [`CpuBackend::with_delivery_timing`]).
    pub fn new_part(
        setup: &SimSetup,
        owned: Vec<bool>,
        scale: DeliveryScale,
        timing: Option<Timing>,
    ) -> Result<Self, SimError> {
        Self::build(setup, Some((owned, scale)), EngineChoice::from_env()?, timing)
    }

    fn build(
        setup: &SimSetup,
        part: Option<(Vec<bool>, DeliveryScale)>,
        engine: EngineChoice,
        timing: Option<Timing>,
    ) -> Result<Self, SimError> {
        // Plastic synapses leave the fixed matrix and get their own state and pass (`plasticity.rs`).
        // A part that owns every block of a whole network is a one-process run (`mpirun -np 1`).
        let split =
            part.as_ref().is_some_and(|(owned, _)| !owned.iter().all(|&o| o)) || setup.network.held_targets.is_some();
        if split && !setup.plasticity.is_empty() {
            return Err(SimError::Setup(
                "plastic synapses are not split across processes yet; run the scenario in one process (without \
                 mpirun)"
                    .into(),
            ));
        }
        let (net, plastic) = crate::plasticity::split_setup(setup)?;
        let n = net.n_neurons();
        if setup.param_set.len() != n {
            return Err(SimError::Setup(format!("{} parameter-set indices for {n} neurons", setup.param_set.len())));
        }
        let n_blocks = n.div_ceil(LANES);
        let n_pad = n_blocks * LANES;
        let n_state = setup.model.n_state();
        let n_ch = net.receptors.len().max(1);
        let native = match &setup.model {
            CompiledModel::Equations(sets) => native_model(sets, n_ch, engine)?,
            _ => None,
        };
        let max_delay = net.chemical.max_delay().max(plastic.as_ref().map_or(0, |p| p.max_delay())) as usize;
        let (owned, fixed) = match part {
            None => (None, DeliveryScale::for_network_with(&net, plastic.as_ref())),
            Some((owned, fixed)) => {
                if owned.len() != n_blocks {
                    return Err(SimError::Setup(format!(
                        "ownership mask has {} entries for {n_blocks} blocks of {LANES} neurons",
                        owned.len()
                    )));
                }
                // Plastic synapses exist only in a one-process part (refused above otherwise): its scale must leave
                // room for every plastic weight at its bound, which the processes' agreement does not know of.
                let fixed =
                    if plastic.is_some() { DeliveryScale::for_network_with(&net, plastic.as_ref()) } else { fixed };
                (Some(owned), fixed)
            }
        };
        let span = match &owned {
            None => 0..n_blocks,
            Some(o) => {
                let first = o.iter().position(|&x| x).unwrap_or(0);
                first..o.iter().rposition(|&x| x).map_or(first, |b| b + 1)
            }
        };
        if let Some(held) = &net.held_targets {
            let (lo, hi) = ((span.start * LANES).min(n) as u32, (span.end * LANES).min(n) as u32);
            if !span.is_empty() && (lo < held.start || hi > held.end) {
                return Err(SimError::Setup(format!(
                    "this process updates neurons {lo}..{hi} but holds only the synapses onto {}..{}",
                    held.start, held.end
                )));
            }
        }
        if !net.gap.is_empty() && span != (0..n_blocks) {
            return Err(SimError::Setup("gap junctions need every neuron's state in one process".into()));
        }
        let ring_pad = span.len() * LANES;
        let delays = {
            let mut used = vec![false; max_delay + 1];
            net.chemical.segment_delay.iter().for_each(|&d| used[d as usize] = true);
            used.iter().filter(|&&u| u).count()
        };
        // The queue needs every addition to come from spikes: not with plasticity (the plastic pass adds weights
        // with their delays). Other processes' spikes arrive late and join the queue (`deliver_late`).
        let queue_allowed = plastic.is_none();
        if timing == Some(Timing::Queue) && !queue_allowed {
            return Err(SimError::Setup("the spike queue cannot deliver plastic synapses: use the delay ring".into()));
        }
        let delivery = DeliveryStrategy::choose(ring_pad, n_ch, delays, queue_allowed, timing);
        let queue = (delivery.timing == Timing::Queue).then(|| SpikeQueue::new(&net.chemical));
        let slots = if queue.is_some() { 1 } else { max_delay + 1 };
        let ring_len = n_ch
            .checked_mul(slots)
            .and_then(|x| x.checked_mul(ring_pad))
            .ok_or_else(|| SimError::Setup("delay ring buffer size overflows".into()))?;

        // State of the span's blocks, block-major, initialised from the model's rest state then the init rules.
        let mut state = initial_block_state(setup)?;
        state.truncate(span.end * n_state * LANES);
        state.drain(..span.start * n_state * LANES);
        state.shrink_to_fit();
        let mut param_set = setup.param_set.clone();
        param_set.resize(n_pad, 0);

        // Fixed-point scale from the largest per-step input a neuron can receive.
        let m = &net.chemical;
        let fixed_table = match &m.weights {
            Weights::Table { values, .. } => Some(values.iter().map(|&w| fixed.to_fixed(w as f64)).collect()),
            Weights::Dense(_) => None,
        };

        // Stimuli → per-neuron lists.
        let dt = net.dt_ms;
        let mut stim = Vec::new();
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (k, s) in setup.stimuli.iter().enumerate() {
            let (lambda, p_event) = match s.kind {
                StimulusKind::Poisson { rate_hz, channel, .. } => {
                    if channel as usize >= n_ch {
                        return Err(SimError::Setup(format!("stimulus `{}`: no receptor channel #{channel}", s.name)));
                    }
                    (rate_hz * dt * 1e-3, 0.0)
                }
                StimulusKind::Activation { rate_hz, .. } => (0.0, 1.0 - (-rate_hz * dt * 1e-3).exp()),
                StimulusKind::Current { .. } => (0.0, 0.0),
            };
            let stream = if matches!(s.kind, StimulusKind::Activation { .. }) {
                Stream::Activation
            } else {
                Stream::PoissonInput
            };
            stim.push(StimEntry {
                kind: s.kind,
                start: s.start_step,
                stop: s.stop_step,
                poisson: PoissonTable::new(lambda),
                p_event,
                rng: CounterRng::new(setup.seed, stream).substream(k as u32),
            });
            for &t in &s.targets {
                if t as usize >= n {
                    return Err(SimError::Setup(format!("stimulus `{}`: neuron #{t} out of range", s.name)));
                }
                lists[t as usize].push(k as u32);
            }
        }
        let mut stim_ptr = vec![0u32; n_pad + 1];
        let mut stim_of = Vec::new();
        for i in 0..n_pad {
            if i < n {
                stim_of.extend_from_slice(&lists[i]);
            }
            stim_ptr[i + 1] = stim_of.len() as u32;
        }
        // Blocks whose neurons all receive the same stimuli draw their random numbers for the whole block.
        let block_uniform_stim: Vec<bool> = (0..n_blocks)
            .map(|b| {
                let lanes = LANES.min(n - b * LANES);
                let of = |i: usize| &stim_of[stim_ptr[i] as usize..stim_ptr[i + 1] as usize];
                (1..lanes).all(|l| of(b * LANES + l) == of(b * LANES))
            })
            .collect();

        let spiking = setup.model.is_spiking();
        let trains = setup.spike_trains.clone();
        trains.check_for_run(n, spiking)?;
        let train_of = if trains.is_empty() { Vec::new() } else { trains.train_of_neuron(n) };
        let mut block_has_train = vec![false; if trains.is_empty() { 0 } else { n_blocks }];
        trains.neurons.iter().for_each(|&i| block_has_train[i as usize / LANES] = true);
        // Parameter sets with a fused ring-to-spikes pass: `lif_exp` and `lif_delta` with two channels, and
        // equation-defined models with native code taking every channel.
        let fused_sets: Option<Vec<bool>> = match &setup.model {
            CompiledModel::LifExp(sets) if n_ch == 2 => Some(sets.iter().map(|c| c.p11.len() == 2).collect()),
            CompiledModel::LifDelta(sets) if n_ch == 2 => Some(sets.iter().map(|c| c.n_channels == 2).collect()),
            CompiledModel::Equations(sets) if native.as_ref().is_some_and(|m| m.takes_ring(n_ch)) => {
                Some(vec![true; sets.len()])
            }
            _ => None,
        };
        let fused_block: Vec<FusedInput> = match fused_sets {
            Some(fused_sets) if spiking => (0..n_blocks)
                .map(|b| {
                    let (base, end) = (b * LANES, (b + 1) * LANES);
                    let set = param_set[base];
                    let eligible = end <= n
                        && param_set[base..end].iter().all(|&s| s == set)
                        && fused_sets[set as usize]
                        && !block_has_train.get(b).copied().unwrap_or(false)
                        && (net.gap.row_ptr.is_empty() || net.gap.row_ptr[base] == net.gap.row_ptr[end]);
                    let list = &stim_of[stim_ptr[base] as usize..stim_ptr[base + 1] as usize];
                    let mut channels = vec![false; n_ch];
                    // Poisson drives only, at most one per channel (each adds one term: the same sum in any order).
                    let poisson_only = block_uniform_stim[b]
                        && list.iter().all(|&k| match stim[k as usize].kind {
                            StimulusKind::Poisson { channel, .. } => {
                                !std::mem::replace(&mut channels[channel as usize], true)
                            }
                            _ => false,
                        });
                    // No lane of the block has a stimulus (the first lane's list says nothing about the others).
                    let no_stimuli = stim_ptr[base] == stim_ptr[end];
                    match (eligible, no_stimuli, poisson_only) {
                        (true, true, _) => FusedInput::Ring,
                        (true, false, true) => FusedInput::RingPoisson,
                        _ => FusedInput::No,
                    }
                })
                .collect(),
            _ => vec![FusedInput::No; n_blocks],
        };
        let update_ns = update_work_ns(&fused_block, &stim_ptr, span.clone());
        let threads = rayon::current_num_threads().max(1);
        let thread_blocks = balanced_split(&fused_block, &stim_ptr, span.clone(), threads);

        let has_gap = !net.gap.is_empty();
        let owned_span = owned.as_ref().map(|_| ((span.start * LANES).min(n) as u32, (span.end * LANES).min(n) as u32));
        let owned = owned.filter(|o| !o.iter().all(|&x| x));
        let owned_span = owned.as_ref().and(owned_span);
        let mut b = Self {
            net,
            model: setup.model.clone(),
            native,
            n,
            n_blocks,
            n_state,
            n_ch,
            slots,
            param_set,
            span: span.clone(),
            state,
            ring: vec![0; ring_len],
            ring_pad,
            fixed,
            fixed_table,
            stim,
            stim_ptr,
            stim_of,
            block_uniform_stim,
            trains,
            train_of,
            block_has_train,
            fused_block,
            parallel_update: update_ns >= PARALLEL_MIN_UPDATE_NS,
            thread_blocks,
            delivery,
            queue,
            thread_scratch: (0..threads).map(|_| std::sync::Mutex::new(BlockScratch::new(n_ch))).collect(),
            block_spikes: vec![0; span.len()],
            activity: vec![0.0; ring_pad],
            v_prev: if has_gap { vec![0.0; n_pad] } else { Vec::new() },
            spikes: Vec::new(),
            pending: None,
            owned,
            owned_span,
            profile: None,
            emitted: Vec::new(),
            spiking,
            plastic,
        };
        b.snapshot_v();
        Ok(b)
    }

    #[inline]
    fn idx(n_state: usize, neuron: usize, var: usize) -> usize {
        state_index(n_state, neuron, var)
    }

    fn snapshot_v(&mut self) {
        if self.net.gap.is_empty() {
            return;
        }
        let n_state = self.n_state;
        let state = &self.state;
        let copy = |(b, v): (usize, &mut [f64])| {
            v.copy_from_slice(&state[b * n_state * LANES..b * n_state * LANES + LANES]);
        };
        if self.n_blocks >= PARALLEL_MIN_BLOCKS {
            self.v_prev.par_chunks_mut(LANES).enumerate().for_each(copy);
        } else {
            self.v_prev.chunks_mut(LANES).enumerate().for_each(copy);
        }
    }

    /// Neuron update of all blocks for `step`; fills `block_spikes` and `activity`.
    fn update_neurons(&mut self, step: u64, control: &StepControl) {
        let slot = (step % self.slots as u64) as usize;
        let ring = SharedMut(self.ring.as_mut_ptr());
        let first = self.span.start;
        let ctx = UpdateCtx {
            model: &self.model,
            native: self.native.as_deref(),
            net: &self.net,
            n: self.n,
            n_ch: self.n_ch,
            ring_pad: self.ring_pad,
            ring_lo: first * LANES,
            slots: self.slots,
            slot,
            step,
            fixed: self.fixed,
            param_set: &self.param_set,
            stim: &self.stim,
            stim_ptr: &self.stim_ptr,
            stim_of: &self.stim_of,
            block_uniform_stim: &self.block_uniform_stim,
            trains: &self.trains,
            train_of: &self.train_of,
            block_has_train: &self.block_has_train,
            fused_block: &self.fused_block,
            unit_gains: control.channel_gain.iter().all(|&g| g == 1.0),
            v_prev: &self.v_prev,
            control,
            spiking: self.spiking,
            owned: self.owned.as_deref(),
            inputs_ns: self.profile.as_deref().map(|p| &p.inputs_cpu_ns),
        };
        let chunk = self.n_state * LANES;
        let pinned = self.pinned_threads();
        let work = self
            .state
            .par_chunks_mut(chunk)
            .zip(self.block_spikes.par_iter_mut())
            .zip(self.activity.par_chunks_mut(LANES))
            .enumerate();
        let n_ch = self.n_ch;
        if self.parallel_update && pinned {
            // Thread p updates blocks thread_blocks[p]..thread_blocks[p + 1] (see `thread_blocks`).
            let bounds = &self.thread_blocks;
            let mut pieces = Vec::with_capacity(bounds.len() - 1);
            let (mut st, mut sp, mut act) = (
                &mut self.state[..],
                &mut self.block_spikes[..],
                &mut self.activity[..bounds[bounds.len() - 1] * LANES],
            );
            for w in bounds.windows(2) {
                let blocks = w[1] - w[0];
                let (a, rest) = st.split_at_mut(blocks * chunk);
                let (b, rest_sp) = sp.split_at_mut(blocks);
                let (c, rest_act) = act.split_at_mut(blocks * LANES);
                pieces.push(std::sync::Mutex::new(Some((w[0], a, b, c))));
                (st, sp, act) = (rest, rest_sp, rest_act);
            }
            let scratch = &self.thread_scratch;
            rayon::broadcast(|b| {
                let piece = pieces[b.index()].lock().map(|mut p| p.take());
                let (Ok(Some((k0, st, sp, act))), Ok(mut scratch)) = (piece, scratch[b.index()].lock()) else {
                    return;
                };
                for (k, ((st, sp), act)) in
                    st.chunks_mut(chunk).zip(sp.iter_mut()).zip(act.chunks_mut(LANES)).enumerate()
                {
                    ctx.update_block(first + k0 + k, st, sp, act, ring, &mut scratch);
                }
            });
        } else if self.parallel_update {
            work.for_each_init(
                || BlockScratch::new(n_ch),
                |scratch, (k, ((st, sp), act))| ctx.update_block(first + k, st, sp, act, ring, scratch),
            );
        } else {
            let mut scratch = BlockScratch::new(n_ch);
            for (k, ((st, sp), act)) in self
                .state
                .chunks_mut(chunk)
                .zip(self.block_spikes.iter_mut())
                .zip(self.activity.chunks_mut(LANES))
                .enumerate()
            {
                ctx.update_block(first + k, st, sp, act, ring, &mut scratch);
            }
        }
    }

    /// Whether the rayon pool has one thread per range of `thread_blocks` (it is the pool the backend was built
    /// in, unless a caller moved it to another).
    fn pinned_threads(&self) -> bool {
        self.thread_blocks.len() > 2 && rayon::current_num_threads() == self.thread_blocks.len() - 1
    }

    /// Adds this step's deliveries to the input rows, partitioned by target range across threads: everything in
    /// `emitted` into the delay ring, or with the spike queue the segments whose delay ends now.
    fn deliver(&mut self, step: u64) {
        if self.net.chemical.n_synapses() == 0 {
            return;
        }
        match self.queue.take() {
            Some(mut q) => {
                let due = q.due(&self.net.chemical, &self.emitted, step);
                self.deliver_work(Work::Segments(due), step);
                self.queue = Some(q);
            }
            None => {
                let emitted = std::mem::take(&mut self.emitted);
                self.deliver_work(Work::Rows(&emitted), step);
                self.emitted = emitted;
            }
        }
    }

    /// Spikes of other processes, emitted at `emission_step` (already in `emitted`): into the delay ring at once,
    /// or into the spike queue, which delivers now the segments due before the next step and keeps the rest.
    fn deliver_late(&mut self, emission_step: u64) -> Result<(), SimError> {
        if self.net.chemical.n_synapses() == 0 {
            return Ok(());
        }
        let Some(mut q) = self.queue.take() else {
            self.deliver(emission_step);
            return Ok(());
        };
        let result = match q.late(&self.net.chemical, &self.emitted, emission_step) {
            Ok(due) => {
                self.deliver_work(Work::Segments(due), emission_step);
                Ok(())
            }
            Err(e) => Err(SimError::Setup(format!("remote spikes: {e}"))),
        };
        self.queue = Some(q);
        result
    }

    /// Adds `work` (of step `step`) to the input rows, split by target range across threads.
    fn deliver_work(&mut self, work: Work<'_>, step: u64) {
        if work.is_empty() {
            return;
        }
        let small = work.synapses(&self.net) < PARALLEL_MIN_DELIVERY_SYNAPSES || self.span.len() < PARALLEL_MIN_BLOCKS;
        let parts = if small { 1 } else { rayon::current_num_threads().max(1) };
        let ring = SharedMut(self.ring.as_mut_ptr());
        let d = Delivery {
            net: &self.net,
            work,
            fixed: self.fixed,
            fixed_table: self.fixed_table.as_deref(),
            slots: self.slots,
            ring_pad: self.ring_pad,
            ring_lo: self.span.start * LANES,
            step,
            spiking: self.spiking,
            adds: self.delivery.adds,
        };
        let n = self.n as u64;
        let pinned = self.pinned_threads();
        if let Some((lo, hi)) = self.owned_span {
            // Only this process's targets (a share of the network): the same split over [lo, hi).
            let (lo, len) = (lo as u64, (hi - lo) as u64);
            (0..parts as u64).into_par_iter().for_each(|p| {
                d.run((lo + p * len / parts as u64) as u32, (lo + (p + 1) * len / parts as u64) as u32, ring)
            });
        } else if parts == 1 {
            d.run(0, u32::MAX, ring);
        } else if pinned && self.span == (0..self.n_blocks) {
            // Thread p delivers to the targets of the blocks it updated (see `thread_blocks`).
            let bounds = &self.thread_blocks;
            let last = bounds.len() - 2;
            rayon::broadcast(|b| {
                let p = b.index();
                let lo = (bounds[p] * LANES) as u32;
                let hi = if p == last { u32::MAX } else { (bounds[p + 1] * LANES) as u32 };
                d.run(lo, hi, ring)
            });
        } else {
            (0..parts as u64)
                .into_par_iter()
                .for_each(|p| d.run((p * n / parts as u64) as u32, ((p + 1) * n / parts as u64) as u32, ring));
        }
    }
}

struct UpdateCtx<'a> {
    model: &'a CompiledModel,
    native: Option<&'a NativeModel>,
    net: &'a CompiledNetwork,
    n: usize,
    n_ch: usize,
    /// Ring row width and the first neuron of the ring (see `CpuBackend::ring`).
    ring_pad: usize,
    ring_lo: usize,
    slots: usize,
    slot: usize,
    step: u64,
    fixed: DeliveryScale,
    param_set: &'a [u16],
    stim: &'a [StimEntry],
    stim_ptr: &'a [u32],
    stim_of: &'a [u32],
    block_uniform_stim: &'a [bool],
    trains: &'a SpikeTrains,
    train_of: &'a [u32],
    block_has_train: &'a [bool],
    fused_block: &'a [FusedInput],
    /// No channel gain other than 1 this step (drug-like scaling or block of a receptor).
    unit_gains: bool,
    v_prev: &'a [f64],
    control: &'a StepControl,
    spiking: bool,
    owned: Option<&'a [bool]>,
    /// Nanoseconds spent on external inputs, summed over threads (only when profiling).
    inputs_ns: Option<&'a AtomicU64>,
}

/// Synaptic input of one channel of one block: `syn[l] = slot[l] · 2^-S` (exact: integer to nearest f64, then
/// a power of two), and the ring slot cleared.
///
/// With AVX-512DQ the i64 → f64 conversion is one instruction per 8 lanes (before it, x86 converts lane by lane);
/// the conversion rounds to nearest and the scale is a power of two on every path, so the bits are equal (tested).
#[inline(always)]
fn gather_slot(slot: &mut [i64], syn: &mut [f64], inv_scale: f64) {
    #[cfg(target_arch = "x86_64")]
    if neurotwin_models::rng::has_avx512() {
        // SAFETY: the CPU supports AVX-512F, DQ and VL (checked just above).
        return unsafe { gather_slot_avx512(slot, syn, inv_scale) };
    }
    #[cfg(target_arch = "x86_64")]
    if neurotwin_models::avx2::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { gather_slot_avx2(slot, syn, inv_scale) };
    }
    gather_slot_portable(slot, syn, inv_scale)
}

/// [`gather_slot`] on AVX2: four lanes at a time through [`neurotwin_models::avx2::i64_to_f64`] (round to
/// nearest, as `x as f64`), the rest lane by lane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gather_slot_avx2(slot: &mut [i64], syn: &mut [f64], inv_scale: f64) {
    use std::arch::x86_64::*;
    let n = slot.len().min(syn.len());
    let scale = _mm256_set1_pd(inv_scale);
    let mut k = 0;
    while k + 4 <= n {
        // SAFETY: k + 4 <= n <= both lengths; the caller guarantees AVX2.
        unsafe {
            let p = slot.as_mut_ptr().add(k);
            let x = neurotwin_models::avx2::i64_to_f64(_mm256_loadu_si256(p as *const _));
            _mm256_storeu_pd(syn.as_mut_ptr().add(k), _mm256_mul_pd(x, scale));
            _mm256_storeu_si256(p as *mut _, _mm256_setzero_si256());
        }
        k += 4;
    }
    gather_slot_portable(&mut slot[k..n], &mut syn[k..n], inv_scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
unsafe fn gather_slot_avx512(slot: &mut [i64], syn: &mut [f64], inv_scale: f64) {
    gather_slot_portable(slot, syn, inv_scale)
}

#[inline(always)]
fn gather_slot_portable(slot: &mut [i64], syn: &mut [f64], inv_scale: f64) {
    for (x, s) in slot.iter_mut().zip(syn.iter_mut()) {
        *s = *x as f64 * inv_scale;
        *x = 0;
    }
}

/// Per-thread buffers of one block's inputs, reused across blocks and steps (no per-block allocation or
/// zeroing of unused space).
struct BlockScratch {
    /// Synaptic input, channel-major `[channel][lane]`; every used entry is written by the ring gather.
    syn: Vec<f64>,
    i_ext: [f64; LANES],
    /// Graded models take gap junctions as conductances (see `GapInput`), spiking ones as current.
    gap_g: [f64; LANES],
    gap_gv: [f64; LANES],
}

impl BlockScratch {
    fn new(n_ch: usize) -> Self {
        Self { syn: vec![0.0; n_ch * LANES], i_ext: [0.0; LANES], gap_g: [0.0; LANES], gap_gv: [0.0; LANES] }
    }
}

impl UpdateCtx<'_> {
    /// The stimuli of a block whose neurons share one stimulus list, lane by lane in list order as the
    /// per-neuron path adds them (same sums), with the random numbers drawn for the whole block.
    fn block_stimuli(&self, base: usize, lanes: usize, syn: &mut [f64], i_ext: &mut [f64; LANES], forced: &mut u64) {
        let mut counts = [0u32; LANES];
        let (mut u0, mut u1) = ([0.0; LANES], [0.0; LANES]);
        for &k in &self.stim_of[self.stim_ptr[base] as usize..self.stim_ptr[base + 1] as usize] {
            let s = &self.stim[k as usize];
            if self.step < s.start || self.step >= s.stop {
                continue;
            }
            match s.kind {
                StimulusKind::Poisson { weight, channel, .. } => {
                    s.poisson.sample_block(&s.rng, base as u32, lanes, self.step, 0, &mut counts);
                    let row = &mut syn[channel as usize * LANES..channel as usize * LANES + lanes];
                    for (x, &c) in row.iter_mut().zip(&counts) {
                        *x += c as f64 * weight;
                    }
                }
                StimulusKind::Current { amplitude_pa } => i_ext[..lanes].iter_mut().for_each(|x| *x += amplitude_pa),
                StimulusKind::Activation { amplitude_pa, .. } => {
                    s.rng.uniform2_block(base as u32, self.step, 0, &mut u0, &mut u1);
                    for (l, &u) in u0.iter().enumerate().take(lanes) {
                        if u < s.p_event {
                            if self.spiking {
                                *forced |= 1 << l;
                            } else {
                                i_ext[l] += amplitude_pa;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The Poisson drives of a `FusedInput::RingPoisson` block for this step as one term per channel and lane,
    /// `count * weight` (+0.0 where no drive is active: adding it changes no bit of a ring sum, which is never
    /// -0.0), with the random numbers drawn for the whole block as `block_stimuli` draws them.
    fn poisson_terms<'s>(&self, base: usize, terms: &'s mut [f64]) -> &'s [f64] {
        let started = self.inputs_ns.is_some().then(Instant::now);
        let terms = &mut terms[..self.n_ch * LANES];
        terms.fill(0.0);
        let mut counts = [0u32; LANES];
        for &k in &self.stim_of[self.stim_ptr[base] as usize..self.stim_ptr[base + 1] as usize] {
            let s = &self.stim[k as usize];
            if let StimulusKind::Poisson { weight, channel, .. } = s.kind
                && (s.start..s.stop).contains(&self.step)
            {
                s.poisson.sample_block(&s.rng, base as u32, LANES, self.step, 0, &mut counts);
                PoissonTable::counts_times(&counts, weight, &mut terms[channel as usize * LANES..]);
            }
        }
        if let (Some(ns), Some(t)) = (self.inputs_ns, started) {
            ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        terms
    }

    #[inline]
    fn update_block(
        &self,
        b: usize,
        st: &mut [f64],
        spikes: &mut u64,
        act: &mut [f64],
        ring: SharedMut<i64>,
        scratch: &mut BlockScratch,
    ) {
        let base = b * LANES;
        let lanes = LANES.min(self.n.saturating_sub(base));
        if let Some(owned) = self.owned
            && !owned[b]
        {
            // Another process updates this block: its state is never touched and it emits nothing. Its ring
            // entries (delivery may write them: see `CpuBackend::new_part`) are cleared so that they cannot accumulate.
            for ch in 0..self.n_ch {
                let row = (ch * self.slots + self.slot) * self.ring_pad + base - self.ring_lo;
                // SAFETY: as in the gather below, this block exclusively owns these ring indices during the update.
                unsafe { std::slice::from_raw_parts_mut(ring.0.add(row), lanes) }.fill(0);
            }
            *spikes = 0;
            act.fill(0.0);
            return;
        }
        let fused = self.fused_block[b];
        if self.unit_gains
            && fused != FusedInput::No
            && let (Some(native), CompiledModel::Equations(_)) = (self.native, self.model)
        {
            let extra = (fused == FusedInput::RingPoisson).then(|| self.poisson_terms(base, &mut scratch.syn));
            let mut rows = [std::ptr::null_mut(); MAX_RING_CHANNELS];
            for (ch, r) in rows.iter_mut().enumerate().take(self.n_ch) {
                let row = (ch * self.slots + self.slot) * self.ring_pad + base - self.ring_lo;
                // SAFETY: as in the gather below: this block exclusively owns these ring indices during the update,
                // and the channels' rows are disjoint.
                *r = unsafe { ring.0.add(row) };
            }
            let set = self.param_set[base] as usize;
            let fired = native.update_ring(set, st, &rows[..self.n_ch], self.fixed.inv_scale, extra);
            *spikes = fired & !self.control.silenced.get(b).copied().unwrap_or(0);
            return;
        }
        if self.unit_gains
            && fused != FusedInput::No
            && matches!(self.model, CompiledModel::LifExp(_) | CompiledModel::LifDelta(_))
        {
            let extra = (fused == FusedInput::RingPoisson).then(|| self.poisson_terms(base, &mut scratch.syn));
            let row = |ch: usize| (ch * self.slots + self.slot) * self.ring_pad + base - self.ring_lo;
            // SAFETY: as in the gather below: this block exclusively owns these ring indices during the update,
            // and the two channels' rows are disjoint.
            let (r0, r1) = unsafe {
                (
                    std::slice::from_raw_parts_mut(ring.0.add(row(0)), LANES),
                    std::slice::from_raw_parts_mut(ring.0.add(row(1)), LANES),
                )
            };
            let (set, inv_scale) = (self.param_set[base] as usize, self.fixed.inv_scale);
            let fired = match self.model {
                CompiledModel::LifExp(sets) => {
                    lif_exp::update_full_block_2ch_from_ring(&sets[set], st, r0, r1, inv_scale, extra)
                }
                CompiledModel::LifDelta(sets) => {
                    lif_delta::update_full_block_2ch_from_ring(&sets[set], st, r0, r1, inv_scale, extra)
                }
                _ => 0, // not reached: the condition above admits these two models only
            };
            *spikes = fired & !self.control.silenced.get(b).copied().unwrap_or(0);
            return;
        }
        let BlockScratch { syn, i_ext, gap_g, gap_gv } = scratch;
        let syn = &mut syn[..];
        i_ext.fill(0.0);
        let mut forced = 0u64;
        for ch in 0..self.n_ch {
            let row = (ch * self.slots + self.slot) * self.ring_pad + base - self.ring_lo;
            // SAFETY: this block exclusively owns indices base-ring_lo..+LANES of every ring row during the update
            // phase (rows are ring_pad >= base - ring_lo + LANES wide); delivery (the only other writer) runs after the
            // update has joined.
            let slot = unsafe { std::slice::from_raw_parts_mut(ring.0.add(row), lanes) };
            gather_slot(slot, &mut syn[ch * LANES..ch * LANES + lanes], self.fixed.inv_scale);
        }
        // Blocks without stimuli or gap junctions skip the per-lane lookups entirely.
        let has_stim = self.stim_ptr[base] != self.stim_ptr[base + LANES];
        let gap_rows = &self.net.gap.row_ptr;
        let has_gap = !gap_rows.is_empty() && gap_rows[base.min(self.n)] != gap_rows[(base + lanes).min(self.n)];
        let has_train = self.block_has_train.get(b).copied().unwrap_or(false);
        // Timed only where there is input to build (the clock itself costs ~20 ns a read).
        let inputs_started = (self.inputs_ns.is_some() && (has_stim || has_gap || has_train)).then(Instant::now);
        if has_gap && !self.spiking {
            gap_g.fill(0.0);
            gap_gv.fill(0.0);
        }
        let uniform = has_stim && self.block_uniform_stim[b];
        if uniform {
            self.block_stimuli(base, lanes, syn, i_ext, &mut forced);
        }
        for l in 0..if (has_stim && !uniform) || has_gap { lanes } else { 0 } {
            let i = base + l;
            let list =
                if uniform { &[][..] } else { &self.stim_of[self.stim_ptr[i] as usize..self.stim_ptr[i + 1] as usize] };
            for &k in list {
                let s = &self.stim[k as usize];
                if self.step < s.start || self.step >= s.stop {
                    continue;
                }
                match s.kind {
                    StimulusKind::Poisson { weight, channel, .. } => {
                        let count = s.poisson.sample(&s.rng, i as u32, self.step, 0);
                        syn[channel as usize * LANES + l] += count as f64 * weight;
                    }
                    StimulusKind::Current { amplitude_pa } => i_ext[l] += amplitude_pa,
                    StimulusKind::Activation { amplitude_pa, .. } => {
                        if s.rng.uniform(i as u32, self.step, 0) < s.p_event {
                            if self.spiking {
                                forced |= 1 << l;
                            } else {
                                i_ext[l] += amplitude_pa;
                            }
                        }
                    }
                }
            }
            let (partners, g) = self.net.gap.row(i as u32);
            if !partners.is_empty() && !self.spiking {
                let (mut gs, mut gv) = (0.0, 0.0);
                for (&j, &gij) in partners.iter().zip(g) {
                    gs += gij as f64;
                    gv += gij as f64 * self.v_prev[j as usize];
                }
                gap_g[l] = gs;
                gap_gv[l] = gv;
            } else if !partners.is_empty() {
                let vi = self.v_prev[i];
                let mut ig = 0.0;
                for (&j, &gij) in partners.iter().zip(g) {
                    ig += gij as f64 * (self.v_prev[j as usize] - vi);
                }
                i_ext[l] += ig;
            }
        }
        if has_train {
            for l in 0..lanes {
                let k = self.train_of[base + l];
                if k != u32::MAX && self.trains.fires(k as usize, self.step) {
                    forced |= 1 << l;
                }
            }
        }
        if let (Some(ns), Some(t)) = (self.inputs_ns, inputs_started) {
            ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        for ch in 0..self.n_ch {
            let gain = self.control.channel_gain.get(ch).copied().unwrap_or(1.0);
            if gain != 1.0 {
                syn[ch * LANES..ch * LANES + lanes].iter_mut().for_each(|x| *x *= gain);
            }
        }
        let gap = (has_gap && !self.spiking).then_some(GapInput { g: &gap_g[..], gv: &gap_gv[..] });
        let param_set = &self.param_set[base..base + LANES];
        let input = BlockInput { n: lanes, param_set, syn, i_ext: &i_ext[..], forced, gap };
        let mut out = BlockOutput::default();
        match (self.native, self.model) {
            (Some(native), CompiledModel::Equations(sets)) => native.update_block(sets, st, &input, &mut out),
            _ => self.model.update_block(st, &input, &mut out),
        }
        let silenced = self.control.silenced.get(b).copied().unwrap_or(0);
        *spikes = out.spikes & !silenced;
        // Activity is what graded neurons transmit; spiking models emit `spikes` only.
        if !self.spiking {
            for (l, a) in act.iter_mut().enumerate() {
                *a = if (silenced >> l) & 1 == 1 { 0.0 } else { out.activity[l] };
            }
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn step(&mut self, step: u64, control: &StepControl) -> Result<&[u32], SimError> {
        self.pending = None;
        self.advance_step(step, control);
        Ok(&self.spikes)
    }

    fn advance(&mut self, step: u64, control: &StepControl) -> Result<(), SimError> {
        if self.pending.is_some() {
            return Err(SimError::Setup("cpu backend: advance called twice without drain_spikes".into()));
        }
        self.advance_step(step, control);
        self.pending = Some(step);
        Ok(())
    }

    fn drain_spikes(&mut self, sink: &mut dyn FnMut(u64, &[u32])) -> Result<(), SimError> {
        if let Some(step) = self.pending.take() {
            sink(step, &self.spikes);
        }
        Ok(())
    }

    fn spike_window(&self) -> usize {
        1
    }

    /// Neurons outside this process's span (split runs) read as NaN; the distributed backend asks the owner.
    fn read_state(&self, var: usize, neurons: &[u32], out: &mut Vec<f64>) {
        let lo = self.span.start * LANES;
        out.extend(neurons.iter().map(|&i| match (i as usize).checked_sub(lo) {
            Some(k) if k < self.ring_pad => self.state[Self::idx(self.n_state, k, var)],
            _ => f64::NAN,
        }));
    }

    fn delivery_scale_exponent(&self) -> i32 {
        self.fixed.exponent
    }

    fn plastic_synapses(&mut self) -> Result<Option<&PlasticSynapses>, SimError> {
        Ok(self.plastic.as_ref())
    }

    fn start_profiling(&mut self) {
        self.profile = Some(Box::default());
    }

    fn profile_into(&self, t: &mut PhaseTimes) -> Option<f64> {
        let p = self.profile.as_deref()?;
        p.fill(t);
        t.strategy = self.update_strategy();
        Some(p.remote_delivery.as_secs_f64())
    }
}

impl CpuBackend {
    /// How the neuron update runs, in words: fused blocks, threads, and the estimate behind the choice.
    pub fn update_strategy(&self) -> String {
        let mine = &self.fused_block[self.span.clone()];
        let fused = mine.iter().filter(|&&f| f != FusedInput::No).count();
        let ns = update_work_ns(&self.fused_block, &self.stim_ptr, self.span.clone());
        let with_drive = mine.iter().filter(|&&f| f == FusedInput::RingPoisson).count();
        let engine = match (&self.model, &self.native) {
            (CompiledModel::Equations(_), Some(n)) => {
                format!("; the equation-defined model as native code ({})", n.describe())
            }
            (CompiledModel::Equations(_), None) => "; the equation-defined model interpreted".to_string(),
            _ => String::new(),
        };
        format!(
            "update: {fused} of {} blocks on the fused ring-to-spikes pass ({with_drive} of them with their Poisson \
             drive), {} (estimated {:.1} µs of work a step; parallel from {} µs){engine}\n{}",
            mine.len(),
            if self.parallel_update { "in parallel" } else { "on one thread" },
            ns as f64 * 1e-3,
            PARALLEL_MIN_UPDATE_NS / 1000,
            self.delivery.describe()
        )
    }
}

/// Hooks for running one part of a network per process (`crate::distributed`).
impl CpuBackend {
    /// Number of 64-neuron blocks (the unit of ownership).
    pub fn n_blocks(&self) -> usize {
        self.n_blocks
    }

    /// The blocks whose state and ring entries this backend holds (all, or one process's span).
    pub fn span(&self) -> std::ops::Range<usize> {
        self.span.clone()
    }

    /// The fixed-point scale of the delivery buffers.
    pub fn delivery_scale(&self) -> DeliveryScale {
        self.fixed
    }

    /// Delivers spikes of `neurons` (each `< n`) emitted at step `emission_step` by another process: each
    /// synapse adds to ring slot `(emission_step + delay) mod slots`, exactly as if they had been emitted
    /// here. Must be called before step `emission_step + min delay` is advanced (the slot would be read
    /// already) and after step `emission_step` (so the slot is not one still ahead of its previous use).
    pub fn deliver_remote_spikes(&mut self, emission_step: u64, neurons: &[u32]) -> Result<(), SimError> {
        if !self.spiking {
            return Err(SimError::Setup("remote spike delivery needs a spiking model".into()));
        }
        if let Some(&i) = neurons.iter().find(|&&i| i as usize >= self.n) {
            return Err(SimError::Setup(format!("remote spike of neuron #{i}, but the network has {}", self.n)));
        }
        self.emitted.clear();
        self.emitted.extend(neurons.iter().map(|&i| (i, 1.0)));
        let started = self.profile.is_some().then(Instant::now);
        let delivered = self.deliver_late(emission_step);
        if let (Some(p), Some(t)) = (&mut self.profile, started) {
            p.delivery += t.elapsed();
            p.remote_delivery += t.elapsed();
        }
        self.emitted.clear();
        delivered
    }

    /// The simulated network.
    pub fn network(&self) -> &Arc<CompiledNetwork> {
        &self.net
    }

    /// Whether the model transmits spikes (`false`: graded activity).
    pub fn is_spiking(&self) -> bool {
        self.spiking
    }
}

impl CpuBackend {
    /// One step: neuron update, the spike list (`spikes`), delivery, voltages for the gap junctions.
    fn advance_step(&mut self, step: u64, control: &StepControl) {
        let mut clock = self.profile.is_some().then(Instant::now);
        self.update_neurons(step, control);
        let update = clock.as_mut().map(lap);
        self.spikes.clear();
        self.emitted.clear();
        let first = self.span.start;
        if self.spiking {
            for (k, &mask) in self.block_spikes.iter().enumerate() {
                let mut m = mask;
                while m != 0 {
                    let l = m.trailing_zeros() as usize;
                    m &= m - 1;
                    let i = ((first + k) * LANES + l) as u32;
                    self.spikes.push(i);
                    self.emitted.push((i, 1.0));
                }
            }
        } else {
            let lo = first * LANES;
            for (k, &a) in self.activity[..self.n.min(lo + self.ring_pad) - lo].iter().enumerate() {
                if a != 0.0 {
                    self.emitted.push(((lo + k) as u32, a));
                }
            }
        }
        let compaction = clock.as_mut().map(lap);
        self.deliver(step);
        if let Some(p) = self.plastic.as_mut() {
            let (ring, slots, pad, lo, fixed) =
                (&mut self.ring, self.slots, self.ring_pad, self.span.start * LANES, self.fixed);
            p.step(step, &self.spikes, |post, ch, d, w| {
                let slot = ((step + d as u64) % slots as u64) as usize;
                ring[(ch as usize * slots + slot) * pad + post as usize - lo] += fixed.to_fixed(w);
            });
        }
        let delivery = clock.as_mut().map(lap);
        self.snapshot_v();
        if let (Some(p), Some(update), Some(compaction), Some(delivery)) =
            (&mut self.profile, update, compaction, delivery)
        {
            // Keeping the previous potentials for gap junctions is part of the update.
            p.update += update + clock.as_mut().map(lap).unwrap_or_default();
            p.compaction += compaction;
            p.delivery += delivery;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inline rounding equals the standard library's bit for bit: halves (ties to even, both signs), values
    /// next to halves and integers, magnitudes up to and beyond 2^52 and 2^53, zeros, infinities, NaN.
    #[test]
    fn inline_rounding_equals_round_ties_even() {
        let mut ys = vec![0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, f64::INFINITY, f64::NEG_INFINITY, f64::MAX];
        ys.extend([f64::MIN_POSITIVE, -f64::MIN_POSITIVE, 4503599627370495.5, -4503599627370495.5]);
        for e in [0, 1, 10, 30, 51, 52, 53, 60] {
            let p = (2f64).powi(e);
            for d in [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0] {
                for y in [p + d, -(p + d), p * 1.5 + d] {
                    ys.extend([y, f64::from_bits(y.to_bits() + 1), f64::from_bits(y.to_bits().saturating_sub(1))]);
                }
            }
        }
        let rng = CounterRng::new(9, Stream::Trial);
        for k in 0..100_000u32 {
            let u = rng.uniform2(k, 0, 0);
            ys.push((u[0] - 0.5) * (2f64).powi((u[1] * 64.0) as i32));
            ys.push(((u[0] * 2e6).floor() + 0.5) * if k % 2 == 0 { 1.0 } else { -1.0 });
        }
        for y in ys {
            assert_eq!(round_ties_even(y).to_bits(), y.round_ties_even().to_bits(), "{y:e}");
        }
        assert!(round_ties_even(f64::NAN).is_nan());
    }

    /// The ring gather gives the same bits on every path this CPU has as the plain conversion: exact and rounded
    /// conversions (beyond 2^53), negative sums, zero and the extremes; the slot is cleared either way.
    #[test]
    fn gather_paths_give_the_same_bits() {
        let rng = CounterRng::new(3, Stream::Trial);
        let mut values: Vec<i64> = vec![0, 1, -1, i64::MAX, i64::MIN, (1 << 53) + 1, -(1 << 53) - 3, 123_456_789];
        values.extend((0..LANES as u32).map(|l| {
            let b = rng.bits(l, 0, 0);
            (((b[0] as u64) << 32 | b[1] as u64) as i64) >> (b[2] % 60)
        }));
        for inv_scale in [1.0, 2f64.powi(-20), 2f64.powi(-40)] {
            for chunk in values.chunks(LANES) {
                let (mut slot, mut out) = (chunk.to_vec(), vec![0.0; chunk.len()]);
                gather_slot(&mut slot, &mut out, inv_scale);
                assert!(slot.iter().all(|&x| x == 0));
                for (&x, &y) in chunk.iter().zip(&out) {
                    assert_eq!(y.to_bits(), (x as f64 * inv_scale).to_bits(), "{x} × {inv_scale}");
                }
            }
        }
    }
}
