//! The one launch sequence of the kernel backends (`cuda-host` and `cuda`): the step's buffers, their
//! construction from a [`SimSetup`] and the order, arguments and grids of every kernel launch, written once and
//! generic over a [`Launcher`] that either runs the CUDA C kernels on the host
//! ([`HostLauncher`](crate::host_kernels::HostLauncher)) or launches them on a GPU
//! ([`CudaLauncher`](crate::cuda::CudaLauncher)). So the host conformance tests prove not only the kernels but
//! the very launches (order, arguments, grids) the GPU runs.
//!
//! One step (the header of `kernels/cuda/network.cu` is the specification):
//!
//! 1–5. the forced mask cleared, `spike_train_input` (only with trains), then one fused `<model>_step` over the
//!    padded neurons: per neuron the ring slot of the clock's step (`gather_input`'s body), its stimuli, gap
//!    junctions (`gap_current`, graded models `gap_conductance`), receptor gains (only while a gain is not 1)
//!    and the model update — the bodies of the separate kernels (`kernels/cuda/neuron_input.cuh`), in their
//!    order;
//! 6. `apply_silence_and_flag` (graded: `silence_activity`; only while a neuron is silenced);
//! 7. compaction into window step `k` of the spike record (`spike_masks`, `spike_chunk_totals`,
//!    `spike_scan_groups`, `spike_scan_tops`, `spike_scatter`; spiking models);
//! 8. numbering of the step's (spike, 32-synapse piece) items (`spike_pieces`, `spike_work`, `spike_scan_groups`,
//!    `spike_scan_tops`, `spike_work_base`), then `deliver_spikes` (graded: `deliver_graded` alone; only with
//!    synapses), on a grid sized to fill the device ([`Launcher::delivery_grid`]);
//! 9. `snapshot_v` (only with gap junctions; also once when the backend is built);
//! 10. `clock_tick`: the device clock moves to the next step and window step.
//!
//! **Graphs.** The simulation step and the window step are read from a clock in device memory, so the launches
//! of one step — kernels, grids, packs — are the same for every step of the same *shape* (whether gains and
//! silencing apply). A step is captured once per shape ([`Launcher::begin_capture`]) and replayed from then on
//! (one CUDA graph launch per step instead of up to 20 launches); gains and the silenced mask are uploaded before
//! the replay when they change, and the host writes the clock only when the sequence breaks (a drained window,
//! a step number out of sequence). The host launcher records and replays exactly the same way, so the host
//! conformance suite runs the graph path. `NEUROTWIN_CUDA_GRAPHS=0` launches every kernel directly instead.
//!
//! Grids: one thread per element with [`THREADS`] threads per block ([`Grid::cover`]), one thread for
//! `spike_scan_tops` and `clock_tick`, and the launcher's grid of the warp-cooperative delivery kernels
//! ([`Grid::DELIVERY`] on the host).

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt::Display;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use cudarc::driver::{DeviceRepr, ValidAsZeroBits};
use neurotwin_connectome::{CompiledNetwork, Weights};
use neurotwin_kernels::host::{GapRows, RingLayout, StimulusParams, StimulusSet, SynapseRows};
use neurotwin_kernels::packs::{self, Clock, DevPtr, KernelArgs, KernelFn, MODEL_MAX_PARAMS, ModelArgs};
use neurotwin_kernels::{
    DELIVERY_BLOCKS, DELIVERY_THREADS, compaction_chunk, compaction_group, segment_pieces, work_chunk,
};
use neurotwin_models::LANES;

use crate::backend::Backend;
use crate::control::StepControl;
use crate::cpu::DeliveryScale;
use crate::error::SimError;
use crate::kernel_tables::{ModelTable, ParamArray, model_table, stimulus_tables};
use crate::plasticity::{PlasticSynapses, split_setup};
use crate::setup::{SimSetup, initial_block_state};

/// Threads per block of every one-thread-per-element launch (all such kernels bound-check their index and
/// use no shared memory).
pub const THREADS: u32 = 256;

/// A 1-D launch grid: `blocks` blocks of `threads` threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub blocks: u32,
    pub threads: u32,
}

impl Grid {
    /// The fixed grid of `deliver_spikes` / `deliver_graded` (`DELIVERY_THREADS` is a multiple of 32, as the
    /// warp-cooperative kernels require).
    pub const DELIVERY: Grid = Grid { blocks: DELIVERY_BLOCKS, threads: DELIVERY_THREADS };

    /// `ceil(n / THREADS)` blocks of [`THREADS`]: one thread per element. `n` must fit in u32 (checked when
    /// the buffers are built).
    pub fn cover(n: usize) -> Grid {
        Grid { blocks: n.div_ceil(THREADS as usize) as u32, threads: THREADS }
    }
}

/// Element types of kernel buffers: plain old data that may live in device memory and be zero-initialised.
pub trait Elem: Copy + Default + DeviceRepr + ValidAsZeroBits + Unpin + Send + Sync + 'static {}
impl Elem for u8 {}
impl Elem for u16 {}
impl Elem for u32 {}
impl Elem for u64 {}
impl Elem for i64 {}
impl Elem for f32 {}
impl Elem for f64 {}
impl Elem for DevStimulus {}
impl Elem for Clock {}

/// [`StimulusParams`] (`#[repr(C)]`, 64 bytes, the layout of `struct nt_stimulus`) as a buffer element.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DevStimulus(pub StimulusParams);

// SAFETY: `StimulusParams` is `#[repr(C)]` plain old data (u64, f64, u32 fields, no padding, 64 bytes) with the
// field order of `struct nt_stimulus`; `DevStimulus` is a transparent wrapper.
unsafe impl DeviceRepr for DevStimulus {}
// SAFETY: all fields are integers or floats, for which all-zero bits are a valid value.
unsafe impl ValidAsZeroBits for DevStimulus {}

/// The neuron-model kernels (`kernels/cuda/<unit>.cu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    LifExp,
    LifDelta,
    Izhikevich,
    Adex,
    Graded,
    LifCondExp,
    /// An equation-defined model's generated kernel (`crate::generated_models`).
    Generated(crate::generated_models::GeneratedRef),
}

impl ModelKind {
    /// Every model kernel.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::LifExp,
        ModelKind::LifDelta,
        ModelKind::Izhikevich,
        ModelKind::Adex,
        ModelKind::Graded,
        ModelKind::LifCondExp,
    ];

    /// The model's fused step kernel (steps 1–5 in one launch).
    pub fn step_kernel(self) -> &'static KernelFn<packs::NeuronStepArgs> {
        match self {
            ModelKind::LifExp => &packs::LIF_EXP_STEP,
            ModelKind::LifDelta => &packs::LIF_DELTA_STEP,
            ModelKind::Izhikevich => &packs::IZHIKEVICH_STEP,
            ModelKind::Adex => &packs::ADEX_STEP,
            ModelKind::Graded => &packs::GRADED_STEP,
            ModelKind::LifCondExp => &packs::LIF_COND_EXP_STEP,
            ModelKind::Generated(g) => &g.0.step,
        }
    }

    /// Whether the model emits spikes (all but `graded`).
    pub fn is_spiking(self) -> bool {
        self != ModelKind::Graded
    }
}

/// One per-set parameter array of the model kernel, in the kernel's `params` order (`ModelTable::args`).
pub enum ParamBuf<L: Launcher> {
    F64(L::Buf<f64>),
    U32(L::Buf<u32>),
}

/// Runs the step's kernels somewhere: each launch is a [`KernelFn`], a grid and the kernel's parameter pack
/// (`neurotwin_kernels::packs`, mirroring `kernels/cuda/packs.cuh`); buffer methods move data. A launcher can
/// also capture a sequence of launches and clears as a graph and replay it (CUDA graphs on a GPU, the recorded
/// launches on the host), which is how [`KernelBackend`] runs a step: captured once per step shape, replayed with
/// the step clock in device memory.
pub trait Launcher: Sized + Send + 'static {
    /// A buffer of `T` where the kernels run (host: `Vec<T>`, CUDA: `CudaSlice<T>`).
    type Buf<T: Elem>: Send + Sync;
    /// A failed buffer operation or launch.
    type Error: Display;
    /// A captured sequence of launches and clears.
    type Graph: Send;

    /// The backend's name (`cuda-host`, `cuda`).
    const NAME: &'static str;

    /// Steps of spikes the record holds between drains, for `n` neurons.
    fn spike_window(&self, n: usize) -> usize;

    /// The grid of the delivery kernels (blocks of whole warps): [`Grid::DELIVERY`] unless the device is large
    /// enough to hold more warps at once.
    fn delivery_grid(&self) -> Grid {
        Grid::DELIVERY
    }

    /// The device the buffers live on: backends on the same device share a network's arrays
    /// ([`NetworkBufs`]). The host launcher has one device, 0.
    fn device_key(&self) -> u64 {
        0
    }

    /// A buffer holding `data`; an empty slice gives one default element, which no kernel reads.
    fn upload<T: Elem>(&self, data: &[T]) -> Result<Self::Buf<T>, Self::Error>;
    /// A zeroed buffer of `max(len, 1)` elements.
    fn zeros<T: Elem>(&self, len: usize) -> Result<Self::Buf<T>, Self::Error>;
    /// Copies the small host array `src` into `dst[..src.len()]` (ordered after the launches issued before).
    fn write<T: Elem>(&mut self, src: &[T], dst: &mut Self::Buf<T>) -> Result<(), Self::Error>;
    /// Sets every element of `buf` to zero (a memset on the device; recorded while capturing).
    fn clear<T: Elem>(&mut self, buf: &mut Self::Buf<T>) -> Result<(), Self::Error>;
    /// Copies `src[range]` into `dst` (of `range.len()` elements), waiting for the kernels issued before.
    fn read<T: Elem>(&self, src: &Self::Buf<T>, range: Range<usize>, dst: &mut [T]) -> Result<(), Self::Error>;

    /// The address of `buf` for a parameter pack (the kernels may write through it).
    fn ptr<T: Elem>(&self, buf: &mut Self::Buf<T>) -> DevPtr<T>;
    /// The address of `buf` for a parameter pack, for a buffer the kernel only reads.
    fn cptr<T: Elem>(&self, buf: &Self::Buf<T>) -> DevPtr<T>;

    /// Launches `kernel` on `grid` with `args` (recorded instead while capturing).
    ///
    /// # Safety
    /// What the CUDA launch needs: every pointer of `args` addresses a live buffer of this launcher at least as
    /// long as the kernel indexes for the pack's sizes (noted on each launch in [`KernelBackend`]), indices
    /// stored in buffers (CSR pointers, partners, targets, table indices, parameter sets) were validated, and the
    /// grid covers the elements the kernel processes. While capturing, the buffers must also outlive the graph.
    unsafe fn launch<P: KernelArgs>(&mut self, kernel: &KernelFn<P>, grid: Grid, args: &P) -> Result<(), Self::Error>;

    /// Starts capturing: launches and clears are recorded, not run, until [`Self::end_capture`].
    fn begin_capture(&mut self) -> Result<(), Self::Error>;
    /// Ends the capture and returns the graph (`Err` if the capture failed; nothing recorded has run).
    fn end_capture(&mut self) -> Result<Self::Graph, Self::Error>;
    /// Runs a captured graph (ordered after the operations issued before).
    fn launch_graph(&mut self, graph: &Self::Graph) -> Result<(), Self::Error>;
}

/// The setup checked and turned into the host arrays the buffers are built from (no device involved), so a
/// backend can refuse an invalid setup before it opens a device.
pub struct Plan<'a> {
    /// The setup, with the plastic synapses taken out of its network when it has any.
    setup: Cow<'a, SimSetup>,
    plastic: Option<PlasticSynapses>,
    model: ModelTable,
    state: Vec<f64>,
    fixed: DeliveryScale,
    /// Table weights: the fixed-point value of each table weight (the kernel's rounding, done on the host).
    fixed_table: Vec<i64>,
    stim_ptr: Vec<u32>,
    stim_of: Vec<u32>,
    stimuli: Vec<DevStimulus>,
}

impl<'a> Plan<'a> {
    /// The generated kernel of an equation-defined model, `None` for built-in models.
    pub fn generated_kernel(&self) -> Option<crate::generated_models::GeneratedRef> {
        match self.model.kind() {
            ModelKind::Generated(g) => Some(g),
            _ => None,
        }
    }

    /// Validates `setup` for the kernel backend `backend`: parameter sets, channels, the synapse and gap
    /// matrices, stimuli and spike trains, and that every launch size fits the kernels' 32-bit counts.
    pub fn new(original: &'a SimSetup, backend: &str) -> Result<Self, SimError> {
        let (fixed_net, plastic) = split_setup(original)?;
        let setup_cow = match &plastic {
            None => Cow::Borrowed(original),
            Some(_) => Cow::Owned(SimSetup { network: fixed_net, plasticity: Default::default(), ..original.clone() }),
        };
        let setup: &SimSetup = &setup_cow;
        let net = &setup.network;
        let n = net.n_neurons();
        if setup.param_set.len() != n {
            return Err(SimError::Setup(format!("{} parameter-set indices for {n} neurons", setup.param_set.len())));
        }
        if net.receptors.is_empty() {
            return Err(SimError::Setup(format!("the {backend} backend needs at least one receptor channel")));
        }
        let n_pad = n.div_ceil(LANES) * LANES;
        let n_ch = net.receptors.len();
        let slots = ring_slots(net, plastic.as_ref());
        n_ch.checked_mul(slots)
            .and_then(|x| x.checked_mul(n_pad))
            .ok_or_else(|| SimError::Setup("delay ring buffer size overflows".into()))?;
        u32_of(n_pad)?;
        let model = model_table(&setup.model, n_ch)?;
        if model.args().len() > MODEL_MAX_PARAMS {
            return Err(SimError::Setup(format!(
                "the model kernel takes {} parameter arrays, more than the {MODEL_MAX_PARAMS} of its parameter pack",
                model.args().len()
            )));
        }
        let n_sets = model.n_sets();
        if let Some(&bad) = setup.param_set.iter().find(|&&s| s as usize >= n_sets) {
            return Err(SimError::Setup(format!("parameter set #{bad} out of range ({n_sets} sets)")));
        }
        // State: the model's rest state, then the init rules (the same array the CPU backend starts from).
        let state = initial_block_state(setup)?;
        // Fixed-point scale: the CPU backend's rule (largest per-step input of one neuron, plastic bounds included).
        let fixed = DeliveryScale::for_network_with(net, plastic.as_ref());
        if let Some(p) = &plastic {
            u32_of(p.hist_neuron.len())?;
            u32_of(p.weight.len())?;
            if let Some(&c) = p.channel.iter().find(|&&c| c as usize >= n_ch) {
                return Err(SimError::Setup(format!("plastic synapses on receptor #{c}, the network has {n_ch}")));
            }
        }
        let fixed_table = check_synapses(setup, n_ch, slots, n_pad, &fixed)?;
        // Stimuli → kernel parameters and per-neuron CSR lists (same order as the CPU backend).
        let (stim_ptr, stim_of, params) = stimulus_tables(setup, n_ch)?;
        StimulusSet::check(n, n_ch, &stim_ptr, &stim_of, &params);
        let t = &setup.spike_trains;
        t.check_for_run(n, model.is_spiking())?;
        u32_of(t.len())?;
        let g = &net.gap;
        if !g.is_empty() {
            if g.row_ptr.len() != n + 1 || g.partner.iter().any(|&j| j as usize >= n) {
                return Err(SimError::Setup(format!("gap-junction matrix does not match the {n} neurons")));
            }
            GapRows::check(n, &g.row_ptr, &g.partner, &g.conductance);
        }
        let stimuli = params.into_iter().map(DevStimulus).collect();
        Ok(Self { setup: setup_cow, plastic, model, state, fixed, fixed_table, stim_ptr, stim_of, stimuli })
    }
}

/// Ring slots: the largest delay of a fixed or plastic synapse, plus one.
fn ring_slots(net: &CompiledNetwork, plastic: Option<&PlasticSynapses>) -> usize {
    net.chemical.max_delay().max(plastic.map_or(0, |p| p.max_delay())) as usize + 1
}

/// The plastic synapses on the device (`kernels/cuda/stdp.cu`): the arrays of [`PlasticSynapses`] as they are,
/// and the host copy whose weights [`Backend::plastic_synapses`] refreshes.
struct PlasticBufs<L: Launcher> {
    host: PlasticSynapses,
    rules: L::Buf<f64>,
    row_ptr: L::Buf<u32>,
    post: L::Buf<u32>,
    delay: L::Buf<u16>,
    channel: L::Buf<u8>,
    projection: L::Buf<u8>,
    weight: L::Buf<f64>,
    k_plus: L::Buf<f64>,
    last_pre: L::Buf<i64>,
    col_ptr: L::Buf<u32>,
    col_syn: L::Buf<u32>,
    hist_row_of: L::Buf<u32>,
    hist_neuron: L::Buf<u32>,
    hist_steps: L::Buf<i64>,
    hist_k: L::Buf<f64>,
    hist_len: L::Buf<u32>,
    hist_head: L::Buf<u32>,
    /// Reward-modulated STDP (`PlasticSynapses::dopamine_device`): eligibility and evaluation step per synapse,
    /// each projection's dopamine history and pending arrivals, its dopamine neurons.
    elig: L::Buf<f64>,
    t_eval: L::Buf<i64>,
    dop_step: L::Buf<i64>,
    dop_n: L::Buf<f64>,
    dop_len: L::Buf<u32>,
    dop_pending: L::Buf<u32>,
    dop_source: L::Buf<u8>,
    /// The layout of the dopamine arrays (their host copy, refreshed by `Backend::plastic_synapses`).
    dop: crate::plasticity::dopamine::DopamineDevice,
    /// The last step advanced (-1 before the first).
    last_step: i64,
}

impl<L: Launcher> PlasticBufs<L> {
    fn upload(l: &L, p: PlasticSynapses, n: usize) -> Result<Self, L::Error> {
        let dop = p.dopamine_device(n);
        Ok(Self {
            rules: l.upload(&p.rule_table())?,
            elig: l.upload(&dop.elig)?,
            t_eval: l.upload(&dop.t_eval)?,
            dop_step: l.upload(&dop.step)?,
            dop_n: l.upload(&dop.n)?,
            dop_len: l.upload(&dop.len)?,
            dop_pending: l.upload(&dop.pending)?,
            dop_source: l.upload(&dop.source)?,
            dop,
            last_step: -1,
            row_ptr: l.upload(&p.row_ptr)?,
            post: l.upload(&p.post)?,
            delay: l.upload(&p.delay)?,
            channel: l.upload(&p.channel)?,
            projection: l.upload(&p.projection)?,
            weight: l.upload(&p.weight)?,
            k_plus: l.upload(&p.k_plus)?,
            last_pre: l.upload(&p.last_pre)?,
            col_ptr: l.upload(&p.col_ptr)?,
            col_syn: l.upload(&p.col_syn)?,
            hist_row_of: l.upload(&p.hist_row_of)?,
            hist_neuron: l.upload(&p.hist_neuron)?,
            hist_steps: l.upload(&p.hist_steps)?,
            hist_k: l.upload(&p.hist_k)?,
            hist_len: l.upload(&p.hist_len)?,
            hist_head: l.upload(&p.hist_head)?,
            host: p,
        })
    }
}

/// Checks the chemical synapse matrix against the `n_pad`-wide ring; returns the fixed-point weight table
/// (empty for dense weights).
fn check_synapses(
    setup: &SimSetup,
    n_ch: usize,
    slots: usize,
    n_pad: usize,
    fixed: &DeliveryScale,
) -> Result<Vec<i64>, SimError> {
    let m = &setup.network.chemical;
    let n = setup.network.n_neurons();
    if m.n_pre as usize != n || m.targets.iter().any(|&t| t as usize >= n) {
        return Err(SimError::Setup(format!("synapse matrix does not match the {n} neurons")));
    }
    if let Some(&r) = m.segment_receptor.iter().find(|&&r| r as usize >= n_ch) {
        return Err(SimError::Setup(format!("synapses on receptor #{r}, the network has {n_ch}")));
    }
    let ring = RingLayout { n_channels: n_ch, slots, n_pad };
    SynapseRows::check(n, ring, &m.row_segments, &m.segment_start, &m.segment_delay, &m.segment_receptor, &m.targets);
    let ok = match &m.weights {
        Weights::Dense(w) => w.len() == m.targets.len(),
        Weights::Table { values, index } => {
            index.len() == m.targets.len() && index.iter().all(|&k| (k as usize) < values.len())
        }
    };
    if !ok {
        return Err(SimError::Setup("synapse weights do not match the synapses".into()));
    }
    Ok(match &m.weights {
        Weights::Dense(_) => Vec::new(),
        Weights::Table { values, .. } => values.iter().map(|&w| fixed.to_fixed(w as f64)).collect(),
    })
}

fn u32_of(n: usize) -> Result<u32, SimError> {
    u32::try_from(n).map_err(|_| SimError::Setup(format!("{n} elements exceed one launch (2^32 - 1)")))
}

/// Chemical synapses: `SynapseMatrix` (CSR by presynaptic neuron, segments of equal receptor and delay).
struct Rows<L: Launcher> {
    n_synapses: u64,
    row_segments: L::Buf<u32>,
    segment_start: L::Buf<u64>,
    /// `segment_pieces(segment_start)`: 32-synapse pieces before each segment (n_segments + 1 entries).
    seg_piece: L::Buf<u64>,
    segment_delay: L::Buf<u16>,
    segment_receptor: L::Buf<u8>,
    targets: L::Buf<u32>,
    /// Dense weights, or a table.
    dense: Option<L::Buf<f32>>,
    table: Option<TableWeights<L>>,
}

/// Table weights: synapse k has weight `values[index[k]]` (f32, for graded delivery), whose fixed-point value
/// (for spikes) is `fixed[index[k]]`.
struct TableWeights<L: Launcher> {
    index: L::Buf<u16>,
    values: L::Buf<f32>,
    fixed: L::Buf<i64>,
}

/// Gap junctions (CSR), read only.
struct GapCsr<L: Launcher> {
    row_ptr: L::Buf<u64>,
    partner: L::Buf<u32>,
    conductance: L::Buf<f32>,
}

/// Σ g and Σ g V_j per neuron (`gap_conductance`'s outputs, `graded_update`'s `gap_g`, `gap_gv`; graded models).
struct GapSums<L: Launcher> {
    g: L::Buf<f64>,
    gv: L::Buf<f64>,
}

/// The network's arrays, which no kernel writes: the synapse matrix and the gap-junction CSR. Built once per
/// network, launcher type and device and shared by every backend of that network alive at the same time (the
/// trials of a scenario), so parallel trials hold one copy of the network, not one each.
pub struct NetworkBufs<L: Launcher> {
    rows: Rows<L>,
    gap: Option<GapCsr<L>>,
}

/// A live [`NetworkBufs`] of some launcher type, by the network and device it was built for.
struct SharedEntry {
    launcher: TypeId,
    device: u64,
    network: Weak<CompiledNetwork>,
    bufs: Weak<dyn Any + Send + Sync>,
}

/// The network arrays of the live kernel backends (see [`NetworkBufs`]).
static SHARED_NETWORKS: Mutex<Vec<SharedEntry>> = Mutex::new(Vec::new());

impl<L: Launcher> NetworkBufs<L> {
    /// The arrays of `plan`'s network on `l`'s device: those of a live backend of the same network if there is
    /// one, else uploaded now (under the cache's lock, so parallel trials upload once).
    fn shared(l: &L, plan: &Plan<'_>) -> Result<Arc<Self>, SimError> {
        let mut cache = SHARED_NETWORKS.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|e| e.bufs.strong_count() > 0 && e.network.strong_count() > 0);
        let (network, device) = (&plan.setup.network, l.device_key());
        let found = cache.iter().find(|e| {
            e.launcher == TypeId::of::<L>()
                && e.device == device
                && std::ptr::eq(e.network.as_ptr(), Arc::as_ptr(network))
        });
        if let Some(bufs) = found.and_then(|e| e.bufs.upgrade()).and_then(|b| b.downcast::<Self>().ok()) {
            return Ok(bufs);
        }
        let bufs = Arc::new(Self::upload(l, plan)?);
        let weak: Weak<dyn Any + Send + Sync> = Arc::downgrade(&bufs) as Weak<dyn Any + Send + Sync>;
        cache.push(SharedEntry { launcher: TypeId::of::<L>(), device, network: Arc::downgrade(network), bufs: weak });
        Ok(bufs)
    }

    fn upload(l: &L, plan: &Plan<'_>) -> Result<Self, SimError> {
        let up = dev_err::<L>("cannot upload the network");
        let m = &plan.setup.network.chemical;
        let (dense, table) = match &m.weights {
            Weights::Dense(w) => (Some(l.upload(w).map_err(&up)?), None),
            Weights::Table { values, index } => {
                let index = l.upload(index).map_err(&up)?;
                let values = l.upload(values).map_err(&up)?;
                (None, Some(TableWeights { index, values, fixed: l.upload(&plan.fixed_table).map_err(&up)? }))
            }
        };
        let rows = Rows {
            n_synapses: m.n_synapses(),
            row_segments: l.upload(&m.row_segments).map_err(&up)?,
            segment_start: l.upload(&m.segment_start).map_err(&up)?,
            seg_piece: l.upload(&segment_pieces(&m.segment_start)).map_err(&up)?,
            segment_delay: l.upload(&m.segment_delay).map_err(&up)?,
            segment_receptor: l.upload(&m.segment_receptor).map_err(&up)?,
            targets: l.upload(&m.targets).map_err(&up)?,
            dense,
            table,
        };
        let g = &plan.setup.network.gap;
        let gap = match g.is_empty() {
            true => None,
            false => Some(GapCsr {
                row_ptr: l.upload(&g.row_ptr).map_err(&up)?,
                partner: l.upload(&g.partner).map_err(&up)?,
                conductance: l.upload(&g.conductance).map_err(&up)?,
            }),
        };
        Ok(Self { rows, gap })
    }
}

/// Prescribed spike trains (`SpikeTrains`, CSR by train).
struct Trains<L: Launcher> {
    n_trains: u32,
    neurons: L::Buf<u32>,
    ptr: L::Buf<u64>,
    steps: L::Buf<u32>,
}

/// The window's spike record (`cuda/spikes.cu`): window step k's spikes are
/// `rec_spikes[rec_base[k]..rec_base[k + 1]]`, sized for every neuron spiking in every step of the window.
struct Record<L: Launcher> {
    window: usize,
    /// Words per chunk and chunks per group of the compaction scan (`compaction_chunk`, `compaction_group`).
    chunk: u32,
    group: u32,
    n_words: usize,
    n_chunks: usize,
    n_groups: usize,
    masks: L::Buf<u64>,
    chunk_offset: L::Buf<u64>,
    group_offset: L::Buf<u64>,
    rec_base: L::Buf<u64>,
    rec_spikes: L::Buf<u32>,
    /// The per-step numbering of delivery pieces (spiking models with synapses).
    pieces: Option<Pieces<L>>,
    /// Host copies made at each drain.
    rec_base_host: Vec<u64>,
    rec_spikes_host: Vec<u32>,
}

/// The per-step scan over window step k's spike list that numbers its (spike, 32-synapse piece) delivery items
/// (`cuda/spikes.cu` f–h), sized for every neuron spiking: spikes in chunks of `chunk` (`work_chunk(n)`),
/// chunks in groups of `group` (`compaction_group`).
struct Pieces<L: Launcher> {
    chunk: u32,
    group: u32,
    n_chunks: usize,
    n_groups: usize,
    /// First piece of each spike of the step (n entries).
    start: L::Buf<u64>,
    /// Per chunk of spikes: its total, then its offset within its group (n_chunks entries).
    chunk_total: L::Buf<u64>,
    /// Per group: its total, then its offset (n_groups entries).
    group_total: L::Buf<u64>,
    /// `[0, pieces of the step]`.
    total: L::Buf<u64>,
}

impl<L: Launcher> Pieces<L> {
    fn new(l: &L, n: usize) -> Result<Self, L::Error> {
        let chunk = work_chunk(n);
        let n_chunks = n.div_ceil(chunk as usize);
        let group = compaction_group(n_chunks);
        let n_groups = n_chunks.div_ceil(group as usize);
        Ok(Self {
            chunk,
            group,
            n_chunks,
            n_groups,
            start: l.zeros(n)?,
            chunk_total: l.zeros(n_chunks)?,
            group_total: l.zeros(n_groups)?,
            total: l.zeros(2)?,
        })
    }
}

/// A kernel backend: the launcher, every buffer of the step and the shared step sequence. The `cuda-host`
/// backend is `KernelBackend<HostLauncher>`, the `cuda` backend `KernelBackend<CudaLauncher>`.
pub struct KernelBackend<L: Launcher> {
    /// First field, so dropped first: the CUDA launcher waits for its stream before any buffer is freed.
    launcher: L,
    model: ModelKind,
    params: Vec<ParamBuf<L>>,
    n: usize,
    n_pad: usize,
    n_state: usize,
    n_ch: usize,
    slots: usize,
    seed: u64,
    fixed: DeliveryScale,
    param_set: L::Buf<u16>,
    /// Block-major state, `state[(block * n_state + var) * 64 + lane]`.
    state: L::Buf<f64>,
    /// `ring[((ch * slots) + slot) * n_pad + neuron]`, fixed point in units of 2^-S.
    ring: L::Buf<i64>,
    stim_ptr: L::Buf<u32>,
    stim_of: L::Buf<u32>,
    stimuli: L::Buf<DevStimulus>,
    trains: Option<Trains<L>>,
    /// The network's arrays, shared with the other live backends of the same network.
    net: Arc<NetworkBufs<L>>,
    /// Graded models with gap junctions: the gap sums of the step.
    gap_sums: Option<GapSums<L>>,
    /// `[block][channel][lane]` synaptic input of the step (pA).
    syn: L::Buf<f64>,
    i_ext: L::Buf<f64>,
    forced: L::Buf<u64>,
    spiked: L::Buf<u8>,
    activity: L::Buf<f64>,
    v_prev: L::Buf<f64>,
    gain: L::Buf<f64>,
    silenced: L::Buf<u64>,
    record: Record<L>,
    /// Steps advanced since the last drain (window step k = index).
    pending: Vec<u64>,
    /// The step clock in device memory (one entry) and what it holds before the next step.
    clock: L::Buf<Clock>,
    clock_next: Clock,
    /// The captured step of each shape seen so far (at most 4), and whether steps are captured at all.
    graphs: Vec<(StepShape, L::Graph)>,
    use_graphs: bool,
    /// The gains / silencing mask last uploaded; the spikes of the last `step` call.
    gain_host: Vec<f64>,
    silenced_host: Vec<u64>,
    spikes: Vec<u32>,
    /// The plastic synapses and their state; `None`: every synapse is fixed.
    plastic: Option<PlasticBufs<L>>,
}

/// Which optional launches a step makes: its graph is captured once and replayed while these stay the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StepShape {
    /// A receptor gain is not 1 (`apply_channel_gain`).
    gain: bool,
    /// A neuron is silenced (`apply_silence_and_flag` / `silence_activity`).
    silenced: bool,
}

/// Whether kernel backends capture steps as graphs: yes unless `NEUROTWIN_CUDA_GRAPHS=0`.
fn graphs_enabled() -> bool {
    std::env::var("NEUROTWIN_CUDA_GRAPHS").map_or(true, |v| v.trim() != "0")
}

/// A launcher error as a [`SimError`] naming the backend and what failed.
fn dev_err<L: Launcher>(what: impl Display) -> impl Fn(L::Error) -> SimError {
    move |e| SimError::BackendUnavailable { backend: L::NAME.into(), reason: format!("{what}: {e}") }
}

impl<L: Launcher> KernelBackend<L> {
    /// Validates `setup` ([`Plan::new`]) and builds the backend on `launcher`.
    pub fn with_launcher(launcher: L, setup: &SimSetup) -> Result<Self, SimError> {
        let plan = Plan::new(setup, L::NAME)?;
        Self::from_plan(launcher, plan)
    }

    /// Builds every buffer from a validated setup and takes the first voltage snapshot.
    pub fn from_plan(launcher: L, plan: Plan<'_>) -> Result<Self, SimError> {
        let l = &launcher;
        let up = dev_err::<L>("cannot upload a buffer");
        let alloc = dev_err::<L>("cannot allocate a buffer");
        let mut plan = plan;
        let plastic = match plan.plastic.take() {
            Some(p) => Some(
                PlasticBufs::upload(l, p, plan.setup.network.n_neurons())
                    .map_err(dev_err::<L>("cannot upload the plastic synapses"))?,
            ),
            None => None,
        };
        let setup: &SimSetup = &plan.setup;
        let net = &setup.network;
        let n = net.n_neurons();
        let n_blocks = n.div_ceil(LANES);
        let n_pad = n_blocks * LANES;
        let n_ch = net.receptors.len();
        let slots = ring_slots(net, plastic.as_ref().map(|p| &p.host));
        let arrays = plan.model.args();
        let mut params = Vec::with_capacity(arrays.len());
        for a in arrays {
            params.push(match a {
                ParamArray::F64(v) => ParamBuf::F64(l.upload(&v).map_err(&up)?),
                ParamArray::U32(v) => ParamBuf::U32(l.upload(&v).map_err(&up)?),
            });
        }
        let shared = NetworkBufs::shared(l, &plan)?;
        let t = &setup.spike_trains;
        let trains = match t.is_empty() {
            true => None,
            false => Some(Trains {
                n_trains: t.len() as u32,
                neurons: l.upload(&t.neurons).map_err(&up)?,
                ptr: l.upload(&t.ptr).map_err(&up)?,
                steps: l.upload(&t.steps).map_err(&up)?,
            }),
        };
        let gap_sums = match shared.gap.is_some() {
            true => Some(GapSums { g: l.zeros(n).map_err(&alloc)?, gv: l.zeros(n).map_err(&alloc)? }),
            false => None,
        };
        let window = l.spike_window(n);
        let chunk = compaction_chunk(n_blocks);
        let n_chunks = n_blocks.div_ceil(chunk as usize);
        let group = compaction_group(n_chunks);
        let n_groups = n_chunks.div_ceil(group as usize);
        let record = Record {
            window,
            chunk,
            group,
            n_words: n_blocks,
            n_chunks,
            n_groups,
            masks: l.zeros(n_blocks).map_err(&alloc)?,
            chunk_offset: l.zeros(n_chunks).map_err(&alloc)?,
            group_offset: l.zeros(n_groups).map_err(&alloc)?,
            rec_base: l.zeros(window + 1).map_err(&alloc)?,
            rec_spikes: l.zeros(window * n).map_err(dev_err::<L>("cannot allocate the spike record"))?,
            pieces: match plan.model.kind().is_spiking() && shared.rows.n_synapses > 0 {
                true => Some(Pieces::new(l, n).map_err(&alloc)?),
                false => None,
            },
            rec_base_host: vec![0; window + 1],
            rec_spikes_host: Vec::new(),
        };
        let mut b = Self {
            model: plan.model.kind(),
            params,
            n,
            n_pad,
            n_state: setup.model.n_state(),
            n_ch,
            slots,
            seed: setup.seed,
            fixed: plan.fixed,
            param_set: l.upload(&setup.param_set).map_err(&up)?,
            state: l.upload(&plan.state).map_err(&up)?,
            ring: l.zeros(n_ch * slots * n_pad).map_err(dev_err::<L>("cannot allocate the ring"))?,
            stim_ptr: l.upload(&plan.stim_ptr).map_err(&up)?,
            stim_of: l.upload(&plan.stim_of).map_err(&up)?,
            stimuli: l.upload(&plan.stimuli).map_err(&up)?,
            trains,
            net: shared,
            gap_sums,
            syn: l.zeros(n_pad * n_ch).map_err(&alloc)?,
            i_ext: l.zeros(n).map_err(&alloc)?,
            forced: l.zeros(n_blocks).map_err(&alloc)?,
            spiked: l.zeros(n).map_err(&alloc)?,
            activity: l.zeros(n).map_err(&alloc)?,
            v_prev: l.zeros(n_pad).map_err(&alloc)?,
            gain: l.upload(&vec![1.0; n_ch]).map_err(&up)?,
            silenced: l.zeros(n_blocks).map_err(&alloc)?,
            record,
            pending: Vec::with_capacity(window),
            clock: l.upload(&[Clock::at(0, 0)]).map_err(&up)?,
            clock_next: Clock::at(0, 0),
            graphs: Vec::new(),
            use_graphs: graphs_enabled(),
            gain_host: vec![1.0; n_ch],
            silenced_host: vec![0; n_blocks],
            spikes: Vec::with_capacity(n),
            plastic,
            launcher,
        };
        b.snapshot_v().map_err(dev_err::<L>("snapshot_v"))?;
        Ok(b)
    }

    /// Whether steps are captured as graphs and replayed (the default unless `NEUROTWIN_CUDA_GRAPHS=0`) or every
    /// kernel is launched directly; switching drops the captured graphs.
    pub fn set_use_graphs(&mut self, on: bool) {
        self.use_graphs = on;
        self.graphs.clear();
    }

    /// Whether this backend uses the same network arrays as `other` (built from the same network on the same
    /// device while both live; see [`NetworkBufs`]).
    pub fn shares_network_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.net, &other.net)
    }

    /// The launcher (e.g. to query the device it runs on).
    pub fn launcher(&self) -> &L {
        &self.launcher
    }

    /// 9. Voltages for the next step's gap junctions.
    fn snapshot_v(&mut self) -> Result<(), L::Error> {
        if self.net.gap.is_none() || self.n_pad == 0 {
            return Ok(());
        }
        let l = &self.launcher;
        let args = packs::SnapshotVArgs {
            state: l.cptr(&self.state),
            v_prev: l.ptr(&mut self.v_prev),
            n_pad: self.n_pad as u32,
            n_state: self.n_state as u32,
        };
        // SAFETY: snapshot_v: n_pad threads read state[(i / 64) * n_state * 64 + i % 64] < n_pad * n_state =
        // state.len() and write v_prev[i] < n_pad.
        unsafe { self.launcher.launch(&packs::SNAPSHOT_V, Grid::cover(self.n_pad), &args) }
    }

    /// One step, issued without waiting for it: window step `k = pending.len()`. Uploads gains and the silenced
    /// mask when they change and the clock when the step sequence breaks, then replays the step's graph
    /// (captured on first use of its shape) or, with graphs off, launches the step directly.
    fn advance_step(&mut self, step: u64, control: &StepControl) -> Result<(), L::Error> {
        if self.n == 0 {
            return Ok(());
        }
        let shape = StepShape { gain: self.upload_gains(control)?, silenced: self.upload_silenced(control)? };
        let now = Clock::at(step, self.pending.len() as u32);
        if self.clock_next != now {
            self.launcher.write(&[now], &mut self.clock)?;
        }
        self.clock_next = Clock::at(step.wrapping_add(1), now.k + 1);
        if !self.use_graphs {
            return self.launch_step(shape);
        }
        if let Some((_, g)) = self.graphs.iter().find(|(s, _)| *s == shape) {
            return self.launcher.launch_graph(g);
        }
        self.launcher.begin_capture()?;
        let launched = self.launch_step(shape);
        let captured = self.launcher.end_capture();
        launched?;
        match captured {
            Ok(g) => {
                self.launcher.launch_graph(&g)?;
                self.graphs.push((shape, g));
                Ok(())
            }
            Err(e) => {
                // Nothing captured has run: launch this step and every later one directly.
                eprintln!("warning: {} backend: CUDA graph capture failed ({e}); launching kernels directly", L::NAME);
                self.use_graphs = false;
                self.launch_step(shape)
            }
        }
    }

    /// The launches of one step of `shape` (the same for every step of that shape: the step and window step
    /// come from the device clock).
    fn launch_step(&mut self, shape: StepShape) -> Result<(), L::Error> {
        self.neuron_step(shape.gain)?;
        if self.model.is_spiking() {
            self.compact_and_deliver(shape.silenced)?;
            self.plasticity()?;
        } else {
            self.emit_graded(shape.silenced)?;
        }
        self.snapshot_v()?;
        let args = packs::ClockTickArgs { clock: self.launcher.ptr(&mut self.clock) };
        // SAFETY: clock_tick: thread 0 updates the one clock entry.
        unsafe { self.launcher.launch(&packs::CLOCK_TICK, Grid::cover(1), &args) }
    }

    /// Steps 1–5: the forced mask cleared, prescribed spike trains into it, then one fused `<model>_step` launch
    /// over the padded neurons — per neuron, the ring slot of this step into `syn` (slot cleared), stimuli, gap
    /// junctions, receptor gains (when `gain`) and the model update, in the order of the separate kernels.
    fn neuron_step(&mut self, gain: bool) -> Result<(), L::Error> {
        let l = &mut self.launcher;
        let forced = l.ptr(&mut self.forced);
        let clock = l.cptr(&self.clock);
        l.clear(&mut self.forced)?;
        if let Some(t) = &self.trains {
            let args = packs::SpikeTrainInputArgs {
                train_neuron: l.cptr(&t.neurons),
                train_ptr: l.cptr(&t.ptr),
                train_steps: l.cptr(&t.steps),
                forced,
                clock,
                n_trains: t.n_trains,
                pad: 0,
            };
            // SAFETY: spike_train_input: `SpikeTrains::check_for_run` validated n_trains + 1 non-decreasing
            // pointers ending at steps.len() and neurons < n; threads k < n_trains read within those arrays and
            // OR a bit of forced[neuron / 64] < n_blocks atomically.
            unsafe { l.launch(&packs::SPIKE_TRAIN_INPUT, Grid::cover(t.n_trains as usize), &args) }?;
        }
        let args = self.neuron_step_args(gain);
        // SAFETY: <model>_step runs, for threads i < n_pad, the bodies of gather_input (slot = step % slots <
        // slots; ring[(c * slots + slot) * n_pad + i] < n_ch * slots * n_pad = ring.len(), syn within block i / 64
        // < n_pad * n_ch = syn.len()) and, for i < n, stimulus_input (CSR lists checked by `StimulusSet::check`
        // in `Plan::new`; writes syn in block i / 64, i_ext[i], forced[i / 64]; `DevStimulus` has the layout of
        // `struct nt_stimulus`), gap_current or gap_conductance (CSR rows checked by `GapRows::check`: n + 1
        // pointers, partners < n; v_prev n_pad, i_ext / gap sums n entries; null row_ptr = no gap junctions),
        // apply_channel_gain (gain of n_ch entries; null = skipped) and the model update (params[j] the model's
        // j-th per-set table in `ModelTable::args` order, at most MODEL_MAX_PARAMS, checked in `Plan::new`, n_sets
        // (* n_ch) entries; state n_blocks * n_state * 64, param_set n entries < n_sets, forced n_blocks, spiked /
        // activity n). Every write stays within the thread's own neuron or block.
        unsafe { self.launcher.launch(self.model.step_kernel(), Grid::cover(self.n_pad), &args) }
    }

    /// The pack of the fused `<model>_step` launch.
    fn neuron_step_args(&mut self, gain: bool) -> packs::NeuronStepArgs {
        let (n, n_pad, n_ch, slots) = (self.n as u32, self.n_pad as u32, self.n_ch as u32, self.slots as u32);
        let l = &self.launcher;
        let clock = l.cptr(&self.clock);
        let (syn, i_ext, forced) = (l.ptr(&mut self.syn), l.ptr(&mut self.i_ext), l.ptr(&mut self.forced));
        let v_prev = l.cptr(&self.v_prev);
        let spiking = self.model.is_spiking();
        let mut gap_current = packs::GapCurrentArgs::default();
        let mut gap_conductance = packs::GapConductanceArgs::default();
        if let Some(g) = &self.net.gap {
            let (row_ptr, partner, conductance) = (l.cptr(&g.row_ptr), l.cptr(&g.partner), l.cptr(&g.conductance));
            match self.gap_sums.as_mut() {
                Some(sums) if !spiking => {
                    let (gap_g, gap_gv) = (l.ptr(&mut sums.g), l.ptr(&mut sums.gv));
                    gap_conductance = packs::GapConductanceArgs {
                        row_ptr,
                        partner,
                        conductance,
                        v_prev,
                        gap_g,
                        gap_gv,
                        n_neurons: n,
                        pad: 0,
                    };
                }
                _ => {
                    gap_current =
                        packs::GapCurrentArgs { row_ptr, partner, conductance, v_prev, i_ext, n_neurons: n, pad: 0 }
                }
            }
        }
        let mut params = [DevPtr::NULL; MODEL_MAX_PARAMS];
        for (p, buf) in params.iter_mut().zip(&self.params) {
            *p = match buf {
                ParamBuf::F64(b) => l.cptr(b).cast(),
                ParamBuf::U32(b) => l.cptr(b).cast(),
            };
        }
        let sums = self.gap_sums.as_ref().filter(|_| !spiking);
        packs::NeuronStepArgs {
            gather: packs::GatherInputArgs {
                ring: l.ptr(&mut self.ring),
                syn,
                clock,
                inv_scale: self.fixed.inv_scale,
                n_pad,
                n_channels: n_ch,
                slots,
                pad: 0,
            },
            stimulus: packs::StimulusInputArgs {
                stim_ptr: l.cptr(&self.stim_ptr),
                stim_of: l.cptr(&self.stim_of),
                stimuli: l.cptr(&self.stimuli).cast(),
                syn,
                i_ext,
                forced,
                clock,
                seed: self.seed,
                n_neurons: n,
                n_channels: n_ch,
                spiking: u32::from(spiking),
                pad: 0,
            },
            gap_current,
            gap_conductance,
            gain: packs::ApplyChannelGainArgs {
                gain: if gain { l.cptr(&self.gain) } else { DevPtr::NULL },
                syn,
                n_neurons: n,
                n_channels: n_ch,
            },
            model: ModelArgs {
                state: l.ptr(&mut self.state),
                param_set: l.cptr(&self.param_set),
                params,
                syn,
                i_ext,
                forced: if spiking { forced } else { DevPtr::NULL },
                spiked: if spiking { l.ptr(&mut self.spiked) } else { DevPtr::NULL },
                gap_g: sums.map_or(DevPtr::NULL, |g| l.cptr(&g.g)),
                gap_gv: sums.map_or(DevPtr::NULL, |g| l.cptr(&g.gv)),
                activity: if spiking { DevPtr::NULL } else { l.ptr(&mut self.activity) },
                n_neurons: n,
                n_channels: n_ch,
            },
        }
    }

    /// Uploads the receptor gains when they change; returns whether one is not 1 (step 4 applies).
    fn upload_gains(&mut self, control: &StepControl) -> Result<bool, L::Error> {
        let gain_of = |c: usize| control.channel_gain.get(c).copied().unwrap_or(1.0);
        if (0..self.n_ch).any(|c| gain_of(c) != self.gain_host[c]) {
            for (c, g) in self.gain_host.iter_mut().enumerate() {
                *g = gain_of(c);
            }
            self.launcher.write(&self.gain_host, &mut self.gain)?;
        }
        Ok(self.gain_host.iter().any(|&g| g != 1.0))
    }

    /// Uploads the silenced mask when it changed; returns whether any neuron is silenced (step 6 applies).
    fn upload_silenced(&mut self, control: &StepControl) -> Result<bool, L::Error> {
        let word = |b: usize| control.silenced.get(b).copied().unwrap_or(0);
        if (0..self.silenced_host.len()).any(|b| word(b) != self.silenced_host[b]) {
            for (b, w) in self.silenced_host.iter_mut().enumerate() {
                *w = word(b);
            }
            self.launcher.write(&self.silenced_host, &mut self.silenced)?;
        }
        Ok(self.silenced_host.iter().any(|&w| w != 0))
    }

    /// Steps 6–8 for spiking models: silencing, compaction into window step k of the record, delivery from it.
    fn compact_and_deliver(&mut self, any_silenced: bool) -> Result<(), L::Error> {
        let n = self.n as u32;
        let l = &mut self.launcher;
        let spiked = l.ptr(&mut self.spiked);
        let clock = l.cptr(&self.clock);
        if any_silenced {
            let args =
                packs::ApplySilenceAndFlagArgs { silenced: l.cptr(&self.silenced), spiked, n_neurons: n, pad: 0 };
            // SAFETY: apply_silence_and_flag: silenced has n_blocks words, spiked n entries; threads i < n.
            unsafe { l.launch(&packs::APPLY_SILENCE_AND_FLAG, Grid::cover(self.n), &args) }?;
        }
        let r = &mut self.record;
        let (n_words, n_chunks, n_groups) = (r.n_words as u32, r.n_chunks as u32, r.n_groups as u32);
        let (chunk, group) = (r.chunk, r.group);
        let (masks, chunk_offset, group_offset) =
            (l.ptr(&mut r.masks), l.ptr(&mut r.chunk_offset), l.ptr(&mut r.group_offset));
        let (rec_base, rec_spikes) = (l.ptr(&mut r.rec_base), l.ptr(&mut r.rec_spikes));
        let args = packs::SpikeMasksArgs { spiked, masks, n_neurons: n, pad: 0 };
        // SAFETY: spike_masks: threads w < n_words = ceil(n / 64) read spiked[< n], write masks[w] (n_words).
        unsafe { l.launch(&packs::SPIKE_MASKS, Grid::cover(r.n_words), &args) }?;
        let args = packs::SpikeChunkTotalsArgs { masks, chunk_offset, n_words, chunk };
        // SAFETY: spike_chunk_totals: threads c < n_chunks = ceil(n_words / chunk) read masks[< n_words] and
        // write chunk_offset[c] (n_chunks entries).
        unsafe { l.launch(&packs::SPIKE_CHUNK_TOTALS, Grid::cover(r.n_chunks), &args) }?;
        let args = packs::SpikeScanGroupsArgs { chunk_offset, group_offset, n_chunks, group };
        // SAFETY: spike_scan_groups: threads g < n_groups = ceil(n_chunks / group) read and write
        // chunk_offset[g * group .. min((g + 1) * group, n_chunks)) (n_chunks entries) and write group_offset[g]
        // (n_groups entries).
        unsafe { l.launch(&packs::SPIKE_SCAN_GROUPS, Grid::cover(r.n_groups), &args) }?;
        let args = packs::SpikeScanTopsArgs { group_offset, rec_base, clock, n_groups, pad: 0 };
        // SAFETY: spike_scan_tops: one thread; group_offset[< n_groups], rec_base[k] and rec_base[k + 1] with
        // k = clock.k < window (`advance` refuses a full window and sets the clock's k to the number of pending
        // steps) and rec_base of window + 1 entries.
        unsafe { l.launch(&packs::SPIKE_SCAN_TOPS, Grid::cover(1), &args) }?;
        let args =
            packs::SpikeScatterArgs { masks, chunk_offset, group_offset, rec_spikes, n_words, chunk, group, pad: 0 };
        // SAFETY: spike_scatter: threads c < n_chunks read chunk_offset[c] and group_offset[c / group] (c / group
        // < n_groups) and write the set bits of their words from their offset on; step k's spikes end at
        // rec_base[k + 1] <= (k + 1) * n <= window * n = rec_spikes.len().
        unsafe { l.launch(&packs::SPIKE_SCATTER, Grid::cover(r.n_chunks), &args) }?;
        let w = &self.net.rows;
        let Some(p) = r.pieces.as_mut() else {
            return Ok(()); // no synapses
        };
        let (chunk, group, n_chunks, n_groups) = (p.chunk, p.group, p.n_chunks as u32, p.n_groups as u32);
        let (row_segments, seg_piece) = (l.cptr(&w.row_segments), l.cptr(&w.seg_piece));
        let (start, chunk_total) = (l.ptr(&mut p.start), l.ptr(&mut p.chunk_total));
        let (group_total, total) = (l.ptr(&mut p.group_total), l.ptr(&mut p.total));
        let args = packs::SpikePiecesArgs {
            rec_base,
            rec_spikes,
            row_segments,
            seg_piece,
            work_start: start,
            clock,
            max_spikes: n,
            pad: 0,
        };
        // SAFETY: spike_pieces: threads j < min(n, count) read rec_base[k], rec_base[k + 1] (k < window, window + 1
        // entries) and the step's spike rec_spikes[rec_base[k] + j] (within the record, count <= n); its id is < n,
        // so row_segments[id + 1] (n + 1 entries) and seg_piece[row_segments[..]] (n_segments + 1 entries) are in
        // bounds; they write start[j] (n entries).
        unsafe { l.launch(&packs::SPIKE_PIECES, Grid::cover(self.n), &args) }?;
        let args =
            packs::SpikeWorkArgs { rec_base, work_start: start, work_chunk: chunk_total, clock, max_spikes: n, chunk };
        // SAFETY: spike_work: threads c < n_chunks = ceil(n / chunk) read rec_base[k], rec_base[k + 1], read and
        // write start[j] for j < min((c + 1) * chunk, count) <= n (n entries) and write chunk_total[c] (n_chunks).
        unsafe { l.launch(&packs::SPIKE_WORK, Grid::cover(p.n_chunks), &args) }?;
        let args = packs::SpikeScanGroupsArgs { chunk_offset: chunk_total, group_offset: group_total, n_chunks, group };
        // SAFETY: spike_scan_groups: threads g < n_groups = ceil(n_chunks / group) over chunk_total[< n_chunks],
        // writing group_total[g] (n_groups entries).
        unsafe { l.launch(&packs::SPIKE_SCAN_GROUPS, Grid::cover(p.n_groups), &args) }?;
        let args = packs::SpikeScanTopsArgs {
            group_offset: group_total,
            rec_base: total,
            clock: DevPtr::NULL,
            n_groups,
            pad: 0,
        };
        // SAFETY: spike_scan_tops with a null clock (k = 0): one thread over group_total[< n_groups], writing
        // total[0], total[1] (2 entries).
        unsafe { l.launch(&packs::SPIKE_SCAN_TOPS, Grid::cover(1), &args) }?;
        let args = packs::SpikeWorkBaseArgs {
            rec_base,
            work_chunk: chunk_total,
            work_group: group_total,
            work_start: start,
            clock,
            max_spikes: n,
            chunk,
            group,
            pad: 0,
        };
        // SAFETY: spike_work_base: threads j < min(n, count) read chunk_total[j / chunk] (< n_chunks) and
        // group_total[j / chunk / group] (< n_groups) and update start[j] (n entries).
        unsafe { l.launch(&packs::SPIKE_WORK_BASE, Grid::cover(self.n), &args) }?;
        let table = w.table.as_ref();
        let args = packs::DeliverSpikesArgs {
            rec_base,
            rec_spikes,
            work_start: start,
            work_total: total,
            row_segments,
            seg_piece,
            segment_start: l.cptr(&w.segment_start),
            segment_delay: l.cptr(&w.segment_delay),
            segment_receptor: l.cptr(&w.segment_receptor),
            targets: l.cptr(&w.targets),
            weights: w.dense.as_ref().map_or(DevPtr::NULL, |d| l.cptr(d)),
            weight_index: table.map_or(DevPtr::NULL, |t| l.cptr(&t.index)),
            fixed_table: table.map_or(DevPtr::NULL, |t| l.cptr(&t.fixed)),
            ring: l.ptr(&mut self.ring),
            clock,
            scale: self.fixed.scale,
            slots: self.slots as u32,
            n_pad: self.n_pad as u32,
        };
        // SAFETY: deliver_spikes: the record's step k holds neuron ids < n written by spike_scatter above; start and
        // total number its pieces (written above on the same stream), so each piece w < total[1] maps to a spike j <
        // count and, through seg_piece (the piece prefix of segment_start), to a segment of that spike's row and a
        // synapse index below the segment's end; the CSR structure, receptors < n_ch, targets < n and table indices
        // were checked by `SynapseRows::check` and `check_synapses`; exactly one of weights / (weight_index,
        // fixed_table) is given; ring indices are < n_ch * slots * n_pad. The grid strides over the pieces; its blocks are
        // whole warps, as the kernel requires.
        unsafe { l.launch(&packs::DELIVER_SPIKES, l.delivery_grid(), &args) }
    }

    /// Steps 8g–8i, plastic synapses (`kernels/cuda/stdp.cu`): the targets' spike histories, potentiation, then
    /// depression and delivery of the new weights, reading the step's spikes from the record.
    fn plasticity(&mut self) -> Result<(), L::Error> {
        let Some(p) = self.plastic.as_mut() else { return Ok(()) };
        let l = &mut self.launcher;
        let r = &self.record;
        let h = &p.host;
        let args = packs::StdpArgs {
            rec_base: l.cptr(&r.rec_base),
            rec_spikes: l.cptr(&r.rec_spikes),
            clock: l.cptr(&self.clock),
            rules: l.cptr(&p.rules),
            row_ptr: l.cptr(&p.row_ptr),
            post: l.cptr(&p.post),
            delay: l.cptr(&p.delay),
            channel: l.cptr(&p.channel),
            projection: l.cptr(&p.projection),
            weight: l.ptr(&mut p.weight),
            k_plus: l.ptr(&mut p.k_plus),
            last_pre: l.ptr(&mut p.last_pre),
            col_ptr: l.cptr(&p.col_ptr),
            col_syn: l.cptr(&p.col_syn),
            hist_row_of: l.cptr(&p.hist_row_of),
            hist_neuron: l.cptr(&p.hist_neuron),
            hist_steps: l.ptr(&mut p.hist_steps),
            hist_k: l.ptr(&mut p.hist_k),
            hist_len: l.ptr(&mut p.hist_len),
            hist_head: l.ptr(&mut p.hist_head),
            ring: l.ptr(&mut self.ring),
            elig: l.ptr(&mut p.elig),
            t_eval: l.ptr(&mut p.t_eval),
            dop_step: l.ptr(&mut p.dop_step),
            dop_n: l.ptr(&mut p.dop_n),
            dop_len: l.ptr(&mut p.dop_len),
            dop_pending: l.ptr(&mut p.dop_pending),
            dop_source: l.cptr(&p.dop_source),
            dt_ms: h.dt_ms,
            scale: self.fixed.scale,
            n_neurons: self.n as u32,
            hist_rows: h.hist_neuron.len() as u32,
            hist_cap: h.hist_cap,
            n_projections: h.rules.len() as u32,
            max_delay: h.max_delay as u32,
            slots: self.slots as u32,
            n_pad: self.n_pad as u32,
            n_synapses: h.weight.len() as u32,
            dop_cap: p.dop.cap,
            pend_slots: p.dop.pend_slots,
            pad0: 0,
            pad1: 0,
        };
        let dopamine = h.has_dopamine();
        let n_proj = h.rules.len();
        if dopamine {
            // SAFETY: threads p < n_projections read rules (RULE_WORDS each) and write projection p's dopamine
            // history (dop_cap entries, dop_len) and pending counts (pend_slots) only.
            unsafe { l.launch(&packs::STDP_DOP_ARRIVALS, Grid::cover(n_proj), &args) }?;
        }
        // SAFETY (all three): the step's spikes are rec_spikes[rec_base[k] .. rec_base[k + 1]] (written by
        // spike_scatter on the same stream; ids < n), threads j < n read spike j only when j < count; the arrays
        // are those of `PlasticSynapses::split` uploaded unchanged: row_ptr and col_ptr have n + 1 entries indexing
        // the synapse arrays and col_syn (synapse indices < their length), posts < n have a history row
        // (hist_row_of, n entries; rows < hist_rows), history entries are < hist_rows * hist_cap (steps) and
        // n_projections * hist_rows * hist_cap (traces), projections < n_projections index rules (RULE_WORDS each),
        // reward-modulated synapses read their projection's dopamine history (dop_len <= dop_cap entries); ring
        // indices (channel < n_ch checked by `Plan::new`, slot < slots, post < n <= n_pad) are < n_ch * slots * n_pad.
        // Each synapse and history row is written by one thread of a launch; the ring with integer atomics.
        unsafe { l.launch(&packs::STDP_POST_SPIKES, Grid::cover(self.n), &args) }?;
        // SAFETY: as above; threads r < hist_rows read history row r and write the synapses of hist_neuron[r]'s
        // column.
        unsafe { l.launch(&packs::STDP_POTENTIATE, Grid::cover(h.hist_neuron.len()), &args) }?;
        // SAFETY: as above; threads j < n write the synapses of spike j's row and add to the ring.
        unsafe { l.launch(&packs::STDP_DEPRESS_DELIVER, Grid::cover(self.n), &args) }?;
        if dopamine {
            // SAFETY: threads j < n read spike j and add to pending counts (integer atomics; slots < pend_slots,
            // dop_source has n_projections * n entries).
            unsafe { l.launch(&packs::STDP_DOP_COUNT, Grid::cover(self.n), &args) }?;
            // SAFETY: threads s < n_synapses write synapse s only (weight, elig, t_eval).
            unsafe { l.launch(&packs::STDP_DOP_UPDATE_ALL, Grid::cover(h.weight.len()), &args) }?;
            // SAFETY: threads p < n_projections write projection p's history only, after every synapse read it.
            unsafe { l.launch(&packs::STDP_DOP_RESTART, Grid::cover(n_proj), &args) }?;
        }
        Ok(())
    }

    /// Steps 6–8 for graded models: silenced neurons transmit nothing, then every neuron's activity is sent.
    fn emit_graded(&mut self, any_silenced: bool) -> Result<(), L::Error> {
        let n = self.n as u32;
        let l = &mut self.launcher;
        let activity = l.ptr(&mut self.activity);
        if any_silenced {
            let args = packs::SilenceActivityArgs { silenced: l.cptr(&self.silenced), activity, n_neurons: n, pad: 0 };
            // SAFETY: silence_activity: silenced has n_blocks words, activity n entries; threads i < n.
            unsafe { l.launch(&packs::SILENCE_ACTIVITY, Grid::cover(self.n), &args) }?;
        }
        let w = &self.net.rows;
        if w.n_synapses == 0 {
            return Ok(());
        }
        let table = w.table.as_ref();
        let args = packs::DeliverGradedArgs {
            activity,
            row_segments: l.cptr(&w.row_segments),
            segment_start: l.cptr(&w.segment_start),
            segment_delay: l.cptr(&w.segment_delay),
            segment_receptor: l.cptr(&w.segment_receptor),
            targets: l.cptr(&w.targets),
            weights: w.dense.as_ref().map_or(DevPtr::NULL, |d| l.cptr(d)),
            weight_index: table.map_or(DevPtr::NULL, |t| l.cptr(&t.index)),
            weight_values: table.map_or(DevPtr::NULL, |t| l.cptr(&t.values)),
            ring: l.ptr(&mut self.ring),
            clock: l.cptr(&self.clock),
            scale: self.fixed.scale,
            n_neurons: n,
            slots: self.slots as u32,
            n_pad: self.n_pad as u32,
            pad: 0,
        };
        // SAFETY: deliver_graded: activity has n entries; the matrix was checked as for deliver_spikes; exactly
        // one of weights / (weight_index, weight_values) is given and table indices are < values.len().
        unsafe { l.launch(&packs::DELIVER_GRADED, l.delivery_grid(), &args) }
    }

    /// Copies the record's offsets, then its spikes, back (once per window) and hands them to `sink`.
    fn drain_record(&mut self, steps: &[u64], sink: &mut dyn FnMut(u64, &[u32])) -> Result<(), L::Error> {
        let r = &mut self.record;
        let n_steps = steps.len();
        self.launcher.read(&r.rec_base, 0..n_steps + 1, &mut r.rec_base_host[..=n_steps])?;
        let total = r.rec_base_host[n_steps] as usize;
        r.rec_spikes_host.resize(total, 0);
        if total > 0 {
            self.launcher.read(&r.rec_spikes, 0..total, &mut r.rec_spikes_host[..])?;
        }
        for (k, &st) in steps.iter().enumerate() {
            sink(st, &r.rec_spikes_host[r.rec_base_host[k] as usize..r.rec_base_host[k + 1] as usize]);
        }
        Ok(())
    }

    fn error_in_step(step: u64) -> impl Fn(L::Error) -> SimError {
        dev_err::<L>(format!("error in step {step}"))
    }
}

impl<L: Launcher> Backend for KernelBackend<L> {
    fn name(&self) -> &'static str {
        L::NAME
    }

    fn step(&mut self, step: u64, control: &StepControl) -> Result<&[u32], SimError> {
        if !self.pending.is_empty() {
            return Err(SimError::Setup(format!("{} backend: step called with undrained advanced steps", L::NAME)));
        }
        self.advance(step, control)?;
        let mut spikes = std::mem::take(&mut self.spikes);
        spikes.clear();
        self.drain_spikes(&mut |_, s| spikes.extend_from_slice(s))?;
        self.spikes = spikes;
        Ok(&self.spikes)
    }

    fn advance(&mut self, step: u64, control: &StepControl) -> Result<(), SimError> {
        if self.pending.len() == self.record.window {
            return Err(SimError::Setup(format!(
                "{} backend: more than {} steps advanced without drain_spikes",
                L::NAME,
                self.record.window
            )));
        }
        self.advance_step(step, control).map_err(Self::error_in_step(step))?;
        self.pending.push(step);
        if let Some(p) = self.plastic.as_mut() {
            p.last_step = step as i64;
        }
        Ok(())
    }

    /// One synchronisation and two copies per window: the record's offsets, then its spikes.
    fn drain_spikes(&mut self, sink: &mut dyn FnMut(u64, &[u32])) -> Result<(), SimError> {
        let steps = std::mem::take(&mut self.pending);
        let Some(&last) = steps.last() else { return Ok(()) };
        if !self.model.is_spiking() || self.n == 0 {
            steps.iter().for_each(|&st| sink(st, &[]));
        } else {
            self.drain_record(&steps, sink).map_err(Self::error_in_step(last))?;
        }
        self.pending = steps;
        self.pending.clear();
        Ok(())
    }

    fn spike_window(&self) -> usize {
        self.record.window
    }

    /// Copies the whole state back (a device error yields NaN for every requested value).
    fn read_state(&self, var: usize, neurons: &[u32], out: &mut Vec<f64>) {
        let len = self.n_pad * self.n_state;
        let mut state = vec![0.0; len];
        let ok = len == 0 || self.launcher.read(&self.state, 0..len, &mut state).is_ok();
        let n_state = self.n_state;
        out.extend(neurons.iter().map(|&i| {
            let i = i as usize;
            if ok { state[(i / LANES) * n_state * LANES + var * LANES + i % LANES] } else { f64::NAN }
        }));
    }

    fn plastic_synapses(&mut self) -> Result<Option<&PlasticSynapses>, SimError> {
        let Some(p) = self.plastic.as_mut() else { return Ok(None) };
        let len = p.host.weight.len();
        let err = dev_err::<L>("cannot read the plastic weights back");
        self.launcher.read(&p.weight, 0..len, &mut p.host.weight).map_err(&err)?;
        if p.host.has_dopamine() {
            let d = &mut p.dop;
            self.launcher.read(&p.elig, 0..d.elig.len(), &mut d.elig).map_err(&err)?;
            self.launcher.read(&p.t_eval, 0..d.t_eval.len(), &mut d.t_eval).map_err(&err)?;
            self.launcher.read(&p.dop_step, 0..d.step.len(), &mut d.step).map_err(&err)?;
            self.launcher.read(&p.dop_n, 0..d.n.len(), &mut d.n).map_err(&err)?;
            self.launcher.read(&p.dop_len, 0..d.len.len(), &mut d.len).map_err(&err)?;
        }
        p.host.set_from_device(&p.dop, p.last_step);
        Ok(Some(&p.host))
    }

    fn delivery_scale_exponent(&self) -> i32 {
        self.fixed.exponent
    }
}
