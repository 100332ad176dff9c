//! Safe wrappers over the host-compiled kernels (`host/kernels_host*.cpp`, built by `build.rs`). Each call
//! runs the CUDA C kernel sequentially on the calling thread, one simulated CUDA thread after another.
//! Lengths and indices are checked here, so the kernels never read or write out of bounds.

use std::ffi::c_uint;

use crate::packs::{
    ADEX_UPDATE, DevPtr, GRADED_UPDATE, IZHIKEVICH_UPDATE, LIF_COND_EXP_UPDATE, LIF_DELTA_UPDATE, LIF_EXP_UPDATE,
    LIF_EXP_UPDATE_BROKEN_FOR_TEST, MODEL_MAX_PARAMS, ModelArgs,
};

use crate::packs::{
    ApplyChannelGainArgs, ApplySilenceAndFlagArgs, Clock, ClockTickArgs, GapConductanceArgs, GapCurrentArgs,
    GatherInputArgs, SnapshotVArgs, SpikeTrainInputArgs, StimulusInputArgs,
};

mod cnn;
mod cnn_train;
mod fit_common;
mod fit_graded;
mod fit_lif;
mod fit_rate;
mod predictive;
pub mod raw;
mod spikes;
mod tables;
pub use cnn::*;
pub use cnn_train::*;
pub use fit_graded::*;
pub use fit_lif::*;
pub use fit_rate::*;
pub use predictive::*;
pub use spikes::*;

/// Neurons per state block (the engine's `LANES`).
pub const LANES: usize = 64;

unsafe extern "C" {
    fn nt_host_philox_fill(
        seed: u64,
        stream: c_uint,
        step: u64,
        draw: c_uint,
        neuron0: c_uint,
        n: c_uint,
        out: *mut u32,
    );
    fn nt_host_philox_uniform2_fill(
        seed: u64,
        stream: c_uint,
        step: u64,
        draw: c_uint,
        neuron0: c_uint,
        n: c_uint,
        out: *mut f64,
    );
    fn nt_host_philox4x32_10(counter: *const u32, key: *const u32, out: *mut u32);
    fn nt_host_detmath_exp_fill(n: c_uint, x: *const f64, out: *mut f64);
    fn nt_host_detmath_expm1_fill(n: c_uint, x: *const f64, out: *mut f64);
    fn nt_host_detmath_ln_pow_fill(n: c_uint, x: *const f64, y: *const f64, out: *mut f64);
}

pub(crate) fn len_u32(n: usize) -> c_uint {
    c_uint::try_from(n).expect("more than 2^32 - 1 elements in one launch")
}

/// Threads per block of the safe wrappers' one-thread-per-element launches (the [`raw`] entry points take
/// any grid; the simulation backends pass the GPU's).
pub const WRAPPER_THREADS: c_uint = 128;

/// Blocks of [`WRAPPER_THREADS`] threads covering `n` elements.
pub(crate) fn blocks_for(n: usize) -> c_uint {
    len_u32(n.div_ceil(WRAPPER_THREADS as usize))
}

/// Philox4x32-10 of one 128-bit counter and 64-bit key (`nt_philox4x32_10` in `cuda/philox.cuh`).
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut out = [0u32; 4];
    // SAFETY: the three pointers address arrays of exactly 4, 2 and 4 u32, as the C function reads/writes.
    unsafe { nt_host_philox4x32_10(counter.as_ptr(), key.as_ptr(), out.as_mut_ptr()) };
    out
}

/// Kernel `philox_fill`: `out[j] = CounterRng::bits(neuron0 + j, step, draw)` for the generator with 64-bit
/// `seed` and stream word `stream` (stream id | sub-stream << 16). `draw` must be < 256.
pub fn philox_fill(seed: u64, stream: u32, step: u64, draw: u32, neuron0: u32, out: &mut [[u32; 4]]) {
    assert!(draw < 256, "draw {draw} >= 256");
    let n = len_u32(out.len());
    // SAFETY: `out` holds `n` contiguous [u32; 4], i.e. 4n u32; the kernel writes only indices < 4n.
    unsafe { nt_host_philox_fill(seed, stream, step, draw, neuron0, n, out.as_mut_ptr().cast()) };
}

/// Kernel `philox_uniform2_fill`: `out[j] = CounterRng::uniform2(neuron0 + j, step, draw)`, each in (0, 1).
pub fn philox_uniform2_fill(seed: u64, stream: u32, step: u64, draw: u32, neuron0: u32, out: &mut [[f64; 2]]) {
    assert!(draw < 256, "draw {draw} >= 256");
    let n = len_u32(out.len());
    // SAFETY: `out` holds `n` contiguous [f64; 2], i.e. 2n f64; the kernel writes only indices < 2n.
    unsafe { nt_host_philox_uniform2_fill(seed, stream, step, draw, neuron0, n, out.as_mut_ptr().cast()) };
}

/// Kernel `detmath_expm1_fill`: `out[j] = expm1(x[j])` with the deterministic `nt_expm1` of `cuda/detmath.cuh`.
pub fn detmath_expm1_fill(x: &[f64], out: &mut [f64]) {
    assert_eq!(x.len(), out.len(), "x and out of one length");
    let n = len_u32(x.len());
    // SAFETY: x and out hold `n` f64; the kernel reads x[j] and writes out[j] for j < n only.
    unsafe { nt_host_detmath_expm1_fill(n, x.as_ptr(), out.as_mut_ptr()) };
}

/// Kernel `detmath_ln_pow_fill`: `out[2j] = ln(x[j])`, `out[2j + 1] = pow(x[j], y[j])` with the deterministic
/// `nt_ln` and `nt_powf` of `cuda/detmath.cuh`.
pub fn detmath_ln_pow_fill(x: &[f64], y: &[f64], out: &mut [f64]) {
    assert!(x.len() == y.len() && out.len() == 2 * x.len(), "x, y of one length and out of twice it");
    let n = len_u32(x.len());
    // SAFETY: x and y hold `n` f64 and out 2n; the kernel reads x[j], y[j] and writes out[2j], out[2j + 1] for
    // j < n only.
    unsafe { nt_host_detmath_ln_pow_fill(n, x.as_ptr(), y.as_ptr(), out.as_mut_ptr()) };
}

/// Kernel `detmath_exp_fill`: `out[j] = exp(x[j])` with the deterministic exp of `cuda/detmath.cuh`.
pub fn detmath_exp_fill(x: &[f64], out: &mut [f64]) {
    assert_eq!(x.len(), out.len(), "x and out must have the same length");
    let n = len_u32(x.len());
    // SAFETY: both slices hold `n` f64; the kernel reads x[j] and writes out[j] for j < n only.
    unsafe { nt_host_detmath_exp_fill(n, x.as_ptr(), out.as_mut_ptr()) };
}

/// Compiled `lif_exp` parameter sets in the kernel's structure-of-arrays form (one entry per set; per-channel
/// arrays set-major: `p11[set * n_channels + channel]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LifExpTable {
    /// Receptor channels (same for every set).
    pub n_channels: usize,
    /// exp(−h/τ_m) (dimensionless).
    pub p22: Vec<f64>,
    /// Response of V to a constant current over one step (mV/pA).
    pub p20: Vec<f64>,
    /// Resting potential (mV).
    pub e_l: Vec<f64>,
    /// Threshold relative to E_L (mV).
    pub theta: Vec<f64>,
    /// Reset potential relative to E_L (mV).
    pub reset: Vec<f64>,
    /// Constant bias current (pA).
    pub i_e: Vec<f64>,
    /// Refractory period (steps).
    pub refractory_steps: Vec<u32>,
    /// Per (set, channel): exp(−h/τ_c) (dimensionless).
    pub p11: Vec<f64>,
    /// Per (set, channel): response of V after one step to a unit synaptic current (mV/pA).
    pub p21: Vec<f64>,
}

impl LifExpTable {
    /// Number of parameter sets; panics if the arrays disagree in length.
    pub fn n_sets(&self) -> usize {
        let n = self.p22.len();
        for (name, len) in [
            ("p20", self.p20.len()),
            ("e_l", self.e_l.len()),
            ("theta", self.theta.len()),
            ("reset", self.reset.len()),
            ("i_e", self.i_e.len()),
            ("refractory_steps", self.refractory_steps.len()),
        ] {
            assert_eq!(len, n, "LifExpTable::{name} has {len} entries, p22 has {n}");
        }
        assert_eq!(self.p11.len(), n * self.n_channels, "LifExpTable::p11 must have n_sets * n_channels entries");
        assert_eq!(self.p21.len(), n * self.n_channels, "LifExpTable::p21 must have n_sets * n_channels entries");
        n
    }
}

/// Per-step input of [`lif_exp_update`] for `n_neurons` neurons in `ceil(n_neurons / 64)` blocks.
#[derive(Clone, Copy, Debug)]
pub struct LifExpStepInput<'a> {
    /// Parameter set of each neuron (`n_neurons` entries).
    pub param_set: &'a [u16],
    /// Synaptic input arriving this step (pA), `[block][channel][lane]`: `n_blocks * n_channels * 64` entries.
    pub syn: &'a [f64],
    /// External current during this step (pA), one per neuron.
    pub i_ext: &'a [f64],
    /// Neurons forced to fire this step: bit `lane` of `forced[block]`, one word per block.
    pub forced: &'a [u64],
}

/// Which host build of the `lif_exp` kernel to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Correct,
    Broken,
}

/// Kernel `lif_exp_update`: advances `i_ext.len()` neurons by one step. `state` is block-major,
/// `state[(block * (2 + n_channels) + var) * 64 + lane]` with vars `V_m` (mV), `refractory` (steps),
/// `I_syn_<c>` (pA), and must hold whole blocks. `spiked[i]` is set to 1 if neuron `i` fired, else 0.
pub fn lif_exp_update(table: &LifExpTable, state: &mut [f64], input: &LifExpStepInput, spiked: &mut [u8]) {
    run_lif_exp(Variant::Correct, table, state, input, spiked);
}

/// The same kernel built with `NEUROTWIN_BREAK_FOR_TEST` (the constant-current term is added after the
/// synaptic terms instead of before). Exists only so that tests can prove the conformance check detects a
/// reordered sum; never use it in a simulation.
#[doc(hidden)]
pub fn lif_exp_update_broken_for_test(
    table: &LifExpTable,
    state: &mut [f64],
    input: &LifExpStepInput,
    spiked: &mut [u8],
) {
    run_lif_exp(Variant::Broken, table, state, input, spiked);
}

fn run_lif_exp(variant: Variant, t: &LifExpTable, state: &mut [f64], input: &LifExpStepInput, spiked: &mut [u8]) {
    let n_sets = t.n_sets();
    let n = input.i_ext.len();
    let n_blocks = n.div_ceil(LANES);
    let n_ch = t.n_channels;
    assert_eq!(input.param_set.len(), n, "param_set must have one entry per neuron");
    assert_eq!(spiked.len(), n, "spiked must have one entry per neuron");
    assert_eq!(state.len(), n_blocks * (2 + n_ch) * LANES, "state must hold whole blocks of 2 + n_channels vars");
    assert_eq!(input.syn.len(), n_blocks * n_ch * LANES, "syn must hold n_blocks * n_channels * 64 entries");
    assert_eq!(input.forced.len(), n_blocks, "forced must have one word per block");
    if let Some(&bad) = input.param_set.iter().find(|&&s| usize::from(s) >= n_sets) {
        panic!("parameter set {bad} out of range ({n_sets} sets)");
    }
    let kernel = match variant {
        Variant::Correct => LIF_EXP_UPDATE,
        Variant::Broken => LIF_EXP_UPDATE_BROKEN_FOR_TEST,
    };
    let params = [
        param(&t.p22),
        param(&t.p20),
        param(&t.e_l),
        param(&t.theta),
        param(&t.reset),
        param(&t.i_e),
        param(&t.refractory_steps),
        param(&t.p11),
        param(&t.p21),
    ];
    let args = spiking_model_args(n_ch, state, input, &params, spiked);
    // SAFETY: all lengths were checked above against what the kernel indexes: neurons i < n read
    // param_set[i], i_ext[i], forced[i / 64], syn and state within block i / 64 < n_blocks, per-set arrays
    // (params[0..9] in the kernel's order) at param_set[i] < n_sets (and set * n_channels + c for p11, p21), and
    // write state and spiked[i]. The pointers come from slices that outlive the call, `state`/`spiked` are
    // exclusively borrowed, and the grid covers n neurons.
    unsafe { (kernel.host)(blocks_for(n), WRAPPER_THREADS, &args) };
}

/// A per-set parameter array's element type as a model kernel reads it (`double` or `unsigned int`).
trait KernelParam {}
impl KernelParam for f64 {}
impl KernelParam for u32 {}

/// A per-set parameter array as an entry of [`ModelArgs::params`] (a host pointer; the kernel casts it back).
fn param<T: KernelParam>(array: &[T]) -> DevPtr<u8> {
    DevPtr::host(array.as_ptr().cast())
}

/// The pack of a model kernel's host launch over `input.i_ext.len()` neurons: host pointers to `state`, the
/// per-neuron inputs and the per-set arrays `params` (in the kernel's order, the rest null); the outputs and
/// the model-specific inputs are null for the caller to set.
fn model_args(n_ch: usize, state: &mut [f64], input: &LifExpStepInput, params: &[DevPtr<u8>]) -> ModelArgs {
    assert!(params.len() <= MODEL_MAX_PARAMS, "a model kernel takes at most {MODEL_MAX_PARAMS} parameter arrays");
    let mut all = [DevPtr::NULL; MODEL_MAX_PARAMS];
    all[..params.len()].copy_from_slice(params);
    ModelArgs {
        state: DevPtr::host(state.as_mut_ptr()),
        param_set: DevPtr::host(input.param_set.as_ptr()),
        params: all,
        syn: DevPtr::host(input.syn.as_ptr()),
        i_ext: DevPtr::host(input.i_ext.as_ptr()),
        n_neurons: len_u32(input.i_ext.len()),
        n_channels: len_u32(n_ch),
        ..ModelArgs::default()
    }
}

/// [`spiking_model_args`] without parameter arrays, for generated kernels (`crate::generated`), whose constants are
/// compiled in.
pub(crate) fn generated_model_args(
    n_ch: usize,
    state: &mut [f64],
    input: &LifExpStepInput,
    spiked: &mut [u8],
) -> ModelArgs {
    spiking_model_args(n_ch, state, input, &[], spiked)
}

/// [`model_args`] of a spiking model: also `input.forced` and the output `spiked`.
fn spiking_model_args(
    n_ch: usize,
    state: &mut [f64],
    input: &LifExpStepInput,
    params: &[DevPtr<u8>],
    spiked: &mut [u8],
) -> ModelArgs {
    ModelArgs {
        forced: DevPtr::host(input.forced.as_ptr()),
        spiked: DevPtr::host(spiked.as_mut_ptr()),
        ..model_args(n_ch, state, input, params)
    }
}

// ---- network kernels (`cuda/network.cu`) and lif_delta (`cuda/lif_delta.cu`) ----

unsafe extern "C" {
    fn nt_host_to_fixed_fill(n: c_uint, x: *const f64, scale: f64, out: *mut i64);
}

/// Kernel `clock_tick`: the step clock advances by one step, `clock.step += 1` and `clock.k += 1` (the last
/// launch of every step of a GPU backend).
pub fn clock_tick(clock: &mut Clock) {
    let args = ClockTickArgs { clock: DevPtr::host(clock) };
    // SAFETY: one thread writes the step and k of `*clock`, an exclusively borrowed live `Clock`.
    unsafe { raw::clock_tick(1, 1, &args) };
}

/// Kernel `gather_input` at simulation step `step`: for every padded neuron `i` and channel `c`,
/// `syn[(i / 64 * n_channels + c) * 64 + i % 64] = ring[(c * slots + step % slots) * n_pad + i] as f64 *
/// inv_scale`, clearing the ring entry. `n_pad = syn.len() / n_channels` (a multiple of 64); `ring` must hold
/// `n_channels * slots * n_pad` entries.
pub fn gather_input(ring: &mut [i64], n_channels: usize, slots: usize, step: u64, inv_scale: f64, syn: &mut [f64]) {
    assert!(n_channels > 0 && slots > 0, "n_channels and slots must be > 0");
    assert_eq!(syn.len() % (n_channels * LANES), 0, "syn must hold whole blocks of n_channels * 64");
    let n_pad = syn.len() / n_channels;
    assert_eq!(ring.len(), n_channels * slots * n_pad, "ring must hold n_channels * slots * n_pad entries");
    let clock = Clock::at(step, 0);
    let args = GatherInputArgs {
        ring: DevPtr::host(ring.as_mut_ptr()),
        syn: DevPtr::host(syn.as_mut_ptr()),
        clock: DevPtr::host(&clock),
        inv_scale,
        n_pad: len_u32(n_pad),
        n_channels: len_u32(n_channels),
        slots: len_u32(slots),
        pad: 0,
    };
    // SAFETY: the slot is step % slots < slots; threads i < n_pad read/clear ring[(c * slots + slot) * n_pad + i]
    // < n_channels * slots * n_pad = ring.len() and write syn[(i / 64 * n_channels + c) * 64 + i % 64] < n_pad *
    // n_channels = syn.len(); the clock is a live local.
    unsafe { raw::gather_input(blocks_for(n_pad), WRAPPER_THREADS, &args) };
}

/// Stimulus kinds of [`StimulusParams::kind`].
pub const STIM_POISSON: u32 = 0;
/// A constant current (`value` pA) while active.
pub const STIM_CURRENT: u32 = 1;
/// Activation: an event with probability `p_event` per step forces a spike (or injects `value` pA).
pub const STIM_ACTIVATION: u32 = 2;

/// One stimulus as the `stimulus_input` kernel reads it (`struct nt_stimulus` in `cuda/network.cu`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StimulusParams {
    /// First active step.
    pub start: u64,
    /// First step after the active window.
    pub stop: u64,
    /// Poisson: mean of each part (`PoissonTable::lambda_part`).
    pub lambda_part: f64,
    /// Poisson: `PoissonTable::exp_neg`.
    pub exp_neg: f64,
    /// Activation: probability of an event per step.
    pub p_event: f64,
    /// Poisson: weight per event; current and activation: amplitude (pA).
    pub value: f64,
    /// [`STIM_POISSON`], [`STIM_CURRENT`] or [`STIM_ACTIVATION`].
    pub kind: u32,
    /// Poisson: number of parts (`PoissonTable::parts`), at most 512 (draw indices < 256).
    pub parts: u32,
    /// Philox stream word: stream id | stimulus index << 16.
    pub stream: u32,
    /// Poisson: receptor channel.
    pub channel: u32,
}

// The kernel reads `struct nt_stimulus` through a pointer: same size (64 bytes, no padding) and field order.
const _: () = assert!(std::mem::size_of::<StimulusParams>() == 64 && std::mem::align_of::<StimulusParams>() == 8);

/// Stimuli per neuron in CSR form, validated once: neuron `i` has `of[ptr[i] .. ptr[i + 1]]` (indices into
/// `stimuli`, applied in that order).
#[derive(Clone, Debug)]
pub struct StimulusSet {
    n_neurons: usize,
    n_channels: usize,
    ptr: Vec<u32>,
    of: Vec<u32>,
    stimuli: Vec<StimulusParams>,
}

impl StimulusSet {
    /// Panics if the CSR arrays are inconsistent, an index is out of range, a Poisson stimulus names a channel
    /// `>= n_channels` or has more than 512 parts, or a kind is unknown.
    pub fn new(n_neurons: usize, n_channels: usize, ptr: Vec<u32>, of: Vec<u32>, stimuli: Vec<StimulusParams>) -> Self {
        Self::check(n_neurons, n_channels, &ptr, &of, &stimuli);
        Self { n_neurons, n_channels, ptr, of, stimuli }
    }

    /// The checks of [`StimulusSet::new`] on borrowed arrays, for callers that launch the raw kernel.
    ///
    /// # Panics
    /// As [`StimulusSet::new`].
    pub fn check(n_neurons: usize, n_channels: usize, ptr: &[u32], of: &[u32], stimuli: &[StimulusParams]) {
        assert!(ptr.len() > n_neurons, "ptr must have at least n_neurons + 1 entries");
        assert_eq!(ptr[0], 0, "ptr[0] must be 0");
        assert!(ptr.windows(2).all(|w| w[0] <= w[1]), "ptr must be non-decreasing");
        assert!(ptr[n_neurons] as usize <= of.len(), "ptr[n_neurons] beyond the entries");
        assert!(of.iter().all(|&k| (k as usize) < stimuli.len()), "stimulus index out of range");
        for s in stimuli {
            assert!(s.kind <= STIM_ACTIVATION, "unknown stimulus kind {}", s.kind);
            if s.kind == STIM_POISSON {
                assert!((s.channel as usize) < n_channels, "Poisson stimulus on channel {} >= {n_channels}", s.channel);
                assert!(s.parts <= 512, "Poisson stimulus with {} parts (at most 512)", s.parts);
            }
        }
    }
}

/// Kernel `stimulus_input` for `step` with generator seed `seed`: adds Poisson input to `syn`
/// (`[block][channel][lane]`), writes each neuron's stimulus current to `i_ext` and ORs activation events
/// into `forced` (one word per block; the caller clears it first). `spiking = false` turns activation events
/// into current (graded models).
pub fn stimulus_input(
    set: &StimulusSet,
    step: u64,
    seed: u64,
    spiking: bool,
    syn: &mut [f64],
    i_ext: &mut [f64],
    forced: &mut [u64],
) {
    let n = set.n_neurons;
    let n_blocks = n.div_ceil(LANES);
    assert_eq!(i_ext.len(), n, "i_ext must have one entry per neuron");
    assert_eq!(syn.len(), n_blocks * set.n_channels * LANES, "syn must hold n_blocks * n_channels * 64 entries");
    assert_eq!(forced.len(), n_blocks, "forced must have one word per block");
    let clock = Clock::at(step, 0);
    let args = StimulusInputArgs {
        stim_ptr: DevPtr::host(set.ptr.as_ptr()),
        stim_of: DevPtr::host(set.of.as_ptr()),
        stimuli: DevPtr::host(set.stimuli.as_ptr()),
        syn: DevPtr::host(syn.as_mut_ptr()),
        i_ext: DevPtr::host(i_ext.as_mut_ptr()),
        forced: DevPtr::host(forced.as_mut_ptr()),
        clock: DevPtr::host(&clock),
        seed,
        n_neurons: len_u32(n),
        n_channels: len_u32(set.n_channels),
        spiking: c_uint::from(spiking),
        pad: 0,
    };
    // SAFETY: `StimulusSet::new` checked that ptr[0..=n] is a valid non-decreasing range into `of`, that every
    // entry indexes `stimuli` and that Poisson channels are < n_channels; threads i < n write syn within block
    // i / 64 < n_blocks, i_ext[i] and forced[i / 64] (lengths checked above). `StimulusParams` is `repr(C)` with
    // the field order of `struct nt_stimulus`; the clock is a live local.
    unsafe { raw::stimulus_input(blocks_for(n), WRAPPER_THREADS, &args) };
}

/// Gap junctions in CSR form (`GapMatrix`), validated once.
#[derive(Clone, Debug)]
pub struct GapRows {
    n_neurons: usize,
    row_ptr: Vec<u64>,
    partner: Vec<u32>,
    conductance: Vec<f32>,
}

impl GapRows {
    /// Panics if the arrays are inconsistent or a partner is `>= n_neurons`.
    pub fn new(n_neurons: usize, row_ptr: Vec<u64>, partner: Vec<u32>, conductance: Vec<f32>) -> Self {
        Self::check(n_neurons, &row_ptr, &partner, &conductance);
        Self { n_neurons, row_ptr, partner, conductance }
    }

    /// The checks of [`GapRows::new`] on borrowed arrays, for callers that launch the raw kernels.
    ///
    /// # Panics
    /// As [`GapRows::new`].
    pub fn check(n_neurons: usize, row_ptr: &[u64], partner: &[u32], conductance: &[f32]) {
        assert_eq!(row_ptr.len(), n_neurons + 1, "row_ptr must have n_neurons + 1 entries");
        assert_eq!(row_ptr[0], 0, "row_ptr[0] must be 0");
        assert!(row_ptr.windows(2).all(|w| w[0] <= w[1]), "row_ptr must be non-decreasing");
        assert_eq!(row_ptr[n_neurons] as usize, partner.len(), "row_ptr[n] must equal the number of entries");
        assert_eq!(partner.len(), conductance.len(), "partner and conductance must have the same length");
        assert!(partner.iter().all(|&j| (j as usize) < n_neurons), "gap partner out of range");
    }
}

/// Kernel `gap_current`: `i_ext[i] += Σ g_ij (v_prev[j] − v_prev[i])` over row `i` in order (rows without
/// entries are untouched).
pub fn gap_current(gap: &GapRows, v_prev: &[f64], i_ext: &mut [f64]) {
    let n = gap.n_neurons;
    assert_eq!(i_ext.len(), n, "i_ext must have one entry per neuron");
    assert!(v_prev.len() >= n, "v_prev must have at least one entry per neuron");
    let args = GapCurrentArgs {
        row_ptr: DevPtr::host(gap.row_ptr.as_ptr()),
        partner: DevPtr::host(gap.partner.as_ptr()),
        conductance: DevPtr::host(gap.conductance.as_ptr()),
        v_prev: DevPtr::host(v_prev.as_ptr()),
        i_ext: DevPtr::host(i_ext.as_mut_ptr()),
        n_neurons: len_u32(n),
        pad: 0,
    };
    // SAFETY: `GapRows::new` checked row_ptr (n + 1 non-decreasing entries ending at partner.len()) and that
    // partners are < n <= v_prev.len(); threads i < n read v_prev and write i_ext[i] < i_ext.len().
    unsafe { raw::gap_current(blocks_for(n), WRAPPER_THREADS, &args) };
}

/// Kernel `gap_conductance` (graded models): `gap_g[i] = Σ g_ij`, `gap_gv[i] = Σ g_ij v_prev[j]` over row `i`
/// in order (0 for rows without entries).
pub fn gap_conductance(gap: &GapRows, v_prev: &[f64], gap_g: &mut [f64], gap_gv: &mut [f64]) {
    let n = gap.n_neurons;
    assert!(gap_g.len() == n && gap_gv.len() == n, "gap_g and gap_gv must have one entry per neuron");
    assert!(v_prev.len() >= n, "v_prev must have at least one entry per neuron");
    let args = GapConductanceArgs {
        row_ptr: DevPtr::host(gap.row_ptr.as_ptr()),
        partner: DevPtr::host(gap.partner.as_ptr()),
        conductance: DevPtr::host(gap.conductance.as_ptr()),
        v_prev: DevPtr::host(v_prev.as_ptr()),
        gap_g: DevPtr::host(gap_g.as_mut_ptr()),
        gap_gv: DevPtr::host(gap_gv.as_mut_ptr()),
        n_neurons: len_u32(n),
        pad: 0,
    };
    // SAFETY: `GapRows::new` checked row_ptr (n + 1 non-decreasing entries ending at partner.len()) and that
    // partners are < n <= v_prev.len(); threads i < n write gap_g[i] and gap_gv[i] (lengths checked).
    unsafe { raw::gap_conductance(blocks_for(n), WRAPPER_THREADS, &args) };
}

/// Kernel `apply_channel_gain`: for neurons `0..n_neurons`, `syn` of channel `c` is multiplied by `gain[c]`
/// unless the gain is 1. `syn` is `[block][channel][lane]` with `gain.len()` channels.
pub fn apply_channel_gain(n_neurons: usize, gain: &[f64], syn: &mut [f64]) {
    let n_ch = gain.len();
    assert_eq!(syn.len(), n_neurons.div_ceil(LANES) * n_ch * LANES, "syn must hold n_blocks * n_channels * 64");
    let args = ApplyChannelGainArgs {
        gain: DevPtr::host(gain.as_ptr()),
        syn: DevPtr::host(syn.as_mut_ptr()),
        n_neurons: len_u32(n_neurons),
        n_channels: len_u32(n_ch),
    };
    // SAFETY: threads i < n_neurons read gain[c < n_ch] and write syn within block i / 64 (length checked).
    unsafe { raw::apply_channel_gain(blocks_for(n_neurons), WRAPPER_THREADS, &args) };
}

/// Kernel `spike_train_input`: ORs into `forced` (one word per block) the bit of every train's neuron whose
/// train has a spike at `step`. Train `k` is neuron `neurons[k]` with steps `steps[ptr[k] .. ptr[k + 1]]`
/// (ascending).
///
/// # Panics
/// If the table is inconsistent (pointer count, a pointer beyond `steps`, a neuron beyond `forced`).
pub fn spike_train_input(neurons: &[u32], ptr: &[u64], steps: &[u32], step: u64, forced: &mut [u64]) {
    if neurons.is_empty() {
        return;
    }
    assert_eq!(ptr.len(), neurons.len() + 1, "ptr must have one entry per train plus one");
    assert!(ptr.windows(2).all(|w| w[0] <= w[1]) && ptr[neurons.len()] as usize <= steps.len(), "bad train pointers");
    assert!(neurons.iter().all(|&i| (i as usize / LANES) < forced.len()), "train neuron beyond forced");
    let clock = Clock::at(step, 0);
    let args = SpikeTrainInputArgs {
        train_neuron: DevPtr::host(neurons.as_ptr()),
        train_ptr: DevPtr::host(ptr.as_ptr()),
        train_steps: DevPtr::host(steps.as_ptr()),
        forced: DevPtr::host(forced.as_mut_ptr()),
        clock: DevPtr::host(&clock),
        n_trains: len_u32(neurons.len()),
        pad: 0,
    };
    // SAFETY: threads k < neurons.len() read ptr[k], ptr[k + 1] (checked non-decreasing and within steps), steps in
    // that range and set a bit of forced[neurons[k] / 64] (checked in range) atomically; the clock is a live local.
    unsafe { raw::spike_train_input(blocks_for(neurons.len()), WRAPPER_THREADS, &args) };
}

/// Kernel `apply_silence_and_flag`: `spiked[i] = 0` for every neuron whose bit is set in `silenced`
/// (bit `i % 64` of word `i / 64`).
pub fn apply_silence_and_flag(silenced: &[u64], spiked: &mut [u8]) {
    assert!(silenced.len() >= spiked.len().div_ceil(LANES), "silenced must have one word per block");
    let n = spiked.len();
    let args = ApplySilenceAndFlagArgs {
        silenced: DevPtr::host(silenced.as_ptr()),
        spiked: DevPtr::host(spiked.as_mut_ptr()),
        n_neurons: len_u32(n),
        pad: 0,
    };
    // SAFETY: threads i < spiked.len() read silenced[i / 64] (length checked) and write spiked[i].
    unsafe { raw::apply_silence_and_flag(blocks_for(n), WRAPPER_THREADS, &args) };
}

/// Kernel `snapshot_v`: `v_prev[i] = state[(i / 64 * n_state) * 64 + i % 64]` (state variable 0) for every
/// padded neuron `i < v_prev.len()`.
pub fn snapshot_v(state: &[f64], n_state: usize, v_prev: &mut [f64]) {
    assert!(n_state > 0, "n_state must be > 0");
    assert_eq!(v_prev.len() % LANES, 0, "v_prev must hold whole blocks");
    assert_eq!(state.len(), v_prev.len() * n_state, "state must hold n_state variables per padded neuron");
    let n_pad = v_prev.len();
    let args = SnapshotVArgs {
        state: DevPtr::host(state.as_ptr()),
        v_prev: DevPtr::host(v_prev.as_mut_ptr()),
        n_pad: len_u32(n_pad),
        n_state: len_u32(n_state),
    };
    // SAFETY: threads i < v_prev.len() read state[(i / 64) * n_state * 64 + i % 64] < state.len() and write
    // v_prev[i].
    unsafe { raw::snapshot_v(blocks_for(n_pad), WRAPPER_THREADS, &args) };
}

/// Kernel `to_fixed_fill`: `out[j] = __double2ll_rn(x[j] * scale)` (the delivery's fixed-point conversion).
pub fn to_fixed_fill(x: &[f64], scale: f64, out: &mut [i64]) {
    assert_eq!(x.len(), out.len(), "x and out must have the same length");
    // SAFETY: both slices hold x.len() elements; the kernel reads x[j] and writes out[j] for j < n only.
    unsafe { nt_host_to_fixed_fill(len_u32(x.len()), x.as_ptr(), scale, out.as_mut_ptr()) };
}

/// Compiled `lif_delta` parameter sets in the kernel's structure-of-arrays form (one entry per set).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LifDeltaTable {
    /// Receptor channels (all summed).
    pub n_channels: usize,
    /// exp(−h/τ_m).
    pub p22: Vec<f64>,
    /// Response of V to a constant current over one step (mV/pA).
    pub p20: Vec<f64>,
    /// Resting potential (mV).
    pub e_l: Vec<f64>,
    /// Threshold relative to E_L (mV).
    pub theta: Vec<f64>,
    /// Reset potential relative to E_L (mV).
    pub reset: Vec<f64>,
    /// Constant bias current (pA).
    pub i_e: Vec<f64>,
    /// Refractory period (steps).
    pub refractory_steps: Vec<u32>,
    /// 1.0 keeps input arriving during the refractory period, 0.0 discards it.
    pub keep_refractory_input: Vec<f64>,
}

impl LifDeltaTable {
    /// Number of parameter sets; panics if the arrays disagree in length.
    pub fn n_sets(&self) -> usize {
        let n = self.p22.len();
        for (name, len) in [
            ("p20", self.p20.len()),
            ("e_l", self.e_l.len()),
            ("theta", self.theta.len()),
            ("reset", self.reset.len()),
            ("i_e", self.i_e.len()),
            ("refractory_steps", self.refractory_steps.len()),
            ("keep_refractory_input", self.keep_refractory_input.len()),
        ] {
            assert_eq!(len, n, "LifDeltaTable::{name} has {len} entries, p22 has {n}");
        }
        n
    }
}

/// Kernel `lif_delta_update`: advances `input.i_ext.len()` neurons by one step. `state` is block-major,
/// `state[(block * 3 + var) * 64 + lane]` with vars `V_m` (mV), `refractory` (steps), `refr_input` (mV), and
/// must hold whole blocks. `spiked[i]` is set to 1 if neuron `i` fired, else 0.
pub fn lif_delta_update(t: &LifDeltaTable, state: &mut [f64], input: &LifExpStepInput, spiked: &mut [u8]) {
    let n_sets = t.n_sets();
    let n = input.i_ext.len();
    let n_blocks = n.div_ceil(LANES);
    let n_ch = t.n_channels;
    assert_eq!(input.param_set.len(), n, "param_set must have one entry per neuron");
    assert_eq!(spiked.len(), n, "spiked must have one entry per neuron");
    assert_eq!(state.len(), n_blocks * 3 * LANES, "state must hold whole blocks of 3 vars");
    assert_eq!(input.syn.len(), n_blocks * n_ch * LANES, "syn must hold n_blocks * n_channels * 64 entries");
    assert_eq!(input.forced.len(), n_blocks, "forced must have one word per block");
    if let Some(&bad) = input.param_set.iter().find(|&&s| usize::from(s) >= n_sets) {
        panic!("parameter set {bad} out of range ({n_sets} sets)");
    }
    let params = [
        param(&t.p22),
        param(&t.p20),
        param(&t.e_l),
        param(&t.theta),
        param(&t.reset),
        param(&t.i_e),
        param(&t.refractory_steps),
        param(&t.keep_refractory_input),
    ];
    let args = spiking_model_args(n_ch, state, input, &params, spiked);
    // SAFETY: lengths checked above against what the kernel indexes: neurons i < n read param_set[i],
    // i_ext[i], forced[i / 64], syn and state within block i / 64 < n_blocks, per-set arrays (params in the
    // kernel's order) at param_set[i] < n_sets, and write state and spiked[i]. `state`/`spiked` are
    // exclusively borrowed and the grid covers n neurons.
    unsafe { (LIF_DELTA_UPDATE.host)(blocks_for(n), WRAPPER_THREADS, &args) };
}

// ---- izhikevich, adex and graded (`cuda/izhikevich.cu`, `cuda/adex.cu`, `cuda/graded.cu`) ----

/// Checks the per-neuron inputs shared by the model kernels and returns the number of neurons.
fn check_step_input(n_sets: usize, n_ch: usize, n_state: usize, state: &[f64], input: &LifExpStepInput) -> usize {
    let n = input.i_ext.len();
    let n_blocks = n.div_ceil(LANES);
    assert_eq!(input.param_set.len(), n, "param_set must have one entry per neuron");
    assert_eq!(state.len(), n_blocks * n_state * LANES, "state must hold whole blocks of {n_state} vars");
    assert_eq!(input.syn.len(), n_blocks * n_ch * LANES, "syn must hold n_blocks * n_channels * 64 entries");
    if let Some(&bad) = input.param_set.iter().find(|&&s| usize::from(s) >= n_sets) {
        panic!("parameter set {bad} out of range ({n_sets} sets)");
    }
    n
}

/// Compiled `izhikevich` parameter sets in the kernel's structure-of-arrays form (one entry per set).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IzhikevichTable {
    /// Receptor channels (all summed as voltage jumps).
    pub n_channels: usize,
    /// Time scale of the recovery variable (1/ms).
    pub a: Vec<f64>,
    /// Sensitivity of `u` to `v` (dimensionless).
    pub b: Vec<f64>,
    /// After-spike reset of `v` (mV).
    pub c: Vec<f64>,
    /// After-spike increment of `u` (mV/ms).
    pub d: Vec<f64>,
    /// Spike cut-off (mV).
    pub v_peak: Vec<f64>,
    /// Constant bias current (mV/ms).
    pub i_e: Vec<f64>,
    /// Substeps per step.
    pub n_sub: Vec<u32>,
    /// Substep length (ms).
    pub h_sub: Vec<f64>,
}

impl IzhikevichTable {
    /// Number of parameter sets; panics if the arrays disagree in length.
    pub fn n_sets(&self) -> usize {
        let n = self.a.len();
        for (name, len) in [
            ("b", self.b.len()),
            ("c", self.c.len()),
            ("d", self.d.len()),
            ("v_peak", self.v_peak.len()),
            ("i_e", self.i_e.len()),
            ("n_sub", self.n_sub.len()),
            ("h_sub", self.h_sub.len()),
        ] {
            assert_eq!(len, n, "IzhikevichTable::{name} has {len} entries, a has {n}");
        }
        n
    }
}

/// Kernel `izhikevich_update`: advances `input.i_ext.len()` neurons by one step. `state` is block-major,
/// `state[(block * 2 + var) * 64 + lane]` with vars `V_m` (mV), `U_m` (mV/ms), and must hold whole blocks.
/// `spiked[i]` is set to 1 if neuron `i` fired, else 0.
pub fn izhikevich_update(t: &IzhikevichTable, state: &mut [f64], input: &LifExpStepInput, spiked: &mut [u8]) {
    let n_ch = t.n_channels;
    let n = check_step_input(t.n_sets(), n_ch, 2, state, input);
    assert_eq!(spiked.len(), n, "spiked must have one entry per neuron");
    assert_eq!(input.forced.len(), n.div_ceil(LANES), "forced must have one word per block");
    let params = [
        param(&t.a),
        param(&t.b),
        param(&t.c),
        param(&t.d),
        param(&t.v_peak),
        param(&t.i_e),
        param(&t.n_sub),
        param(&t.h_sub),
    ];
    let args = spiking_model_args(n_ch, state, input, &params, spiked);
    // SAFETY: lengths checked above against what the kernel indexes: neurons i < n read param_set[i],
    // i_ext[i], forced[i / 64], syn and state within block i / 64 < n_blocks, per-set arrays (params in the
    // kernel's order) at param_set[i] < n_sets, and write state and spiked[i]. `state`/`spiked` are
    // exclusively borrowed and the grid covers n neurons.
    unsafe { (IZHIKEVICH_UPDATE.host)(blocks_for(n), WRAPPER_THREADS, &args) };
}

/// Compiled `adex` parameter sets in the kernel's structure-of-arrays form (one entry per set, as
/// `neurotwin_models::adex::Compiled`; `decay_sub` set-major: `decay_sub[set * n_channels + channel]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdexTable {
    /// Receptor channels (same for every set).
    pub n_channels: usize,
    /// Leak reversal potential (mV).
    pub e_l: Vec<f64>,
    /// Leak conductance (nS).
    pub g_l: Vec<f64>,
    /// 1/C (1/pF).
    pub inv_c: Vec<f64>,
    /// Spike-initiation threshold (mV).
    pub v_th: Vec<f64>,
    /// g_L Δ_T (pA).
    pub g_l_delta_t: Vec<f64>,
    /// 1/Δ_T (1/mV).
    pub inv_delta_t: Vec<f64>,
    /// Subthreshold adaptation (nS).
    pub a: Vec<f64>,
    /// 1/τ_w (1/ms).
    pub inv_tau_w: Vec<f64>,
    /// Spike-triggered adaptation (pA).
    pub b: Vec<f64>,
    /// Reset potential (mV).
    pub v_reset: Vec<f64>,
    /// Spike detection threshold (mV).
    pub v_peak: Vec<f64>,
    /// Constant bias current (pA).
    pub i_e: Vec<f64>,
    /// Refractory counter value after a spike (steps, as f64).
    pub refractory_start: Vec<f64>,
    /// Substeps per step.
    pub n_sub: Vec<u32>,
    /// Substep length (ms).
    pub h_sub: Vec<f64>,
    /// Half the substep length (ms).
    pub half_h_sub: Vec<f64>,
    /// Per (set, channel): exp(−h_sub/τ_c).
    pub decay_sub: Vec<f64>,
    /// Per (set, channel): reversal potential (mV) of conductance synapses (0 for current synapses).
    pub e_rev: Vec<f64>,
    /// Per set: 1 for conductance synapses (NEST `aeif_cond_exp`), 0 for current synapses.
    pub conductance: Vec<u32>,
}

impl AdexTable {
    /// Number of parameter sets; panics if the arrays disagree in length.
    pub fn n_sets(&self) -> usize {
        let n = self.e_l.len();
        for (name, len) in [
            ("g_l", self.g_l.len()),
            ("inv_c", self.inv_c.len()),
            ("v_th", self.v_th.len()),
            ("g_l_delta_t", self.g_l_delta_t.len()),
            ("inv_delta_t", self.inv_delta_t.len()),
            ("a", self.a.len()),
            ("inv_tau_w", self.inv_tau_w.len()),
            ("b", self.b.len()),
            ("v_reset", self.v_reset.len()),
            ("v_peak", self.v_peak.len()),
            ("i_e", self.i_e.len()),
            ("refractory_start", self.refractory_start.len()),
            ("n_sub", self.n_sub.len()),
            ("h_sub", self.h_sub.len()),
            ("half_h_sub", self.half_h_sub.len()),
            ("conductance", self.conductance.len()),
        ] {
            assert_eq!(len, n, "AdexTable::{name} has {len} entries, e_l has {n}");
        }
        assert_eq!(self.decay_sub.len(), n * self.n_channels, "AdexTable::decay_sub needs n_sets * n_channels");
        assert_eq!(self.e_rev.len(), n * self.n_channels, "AdexTable::e_rev needs n_sets * n_channels");
        n
    }
}

/// Kernel `adex_update`: advances `input.i_ext.len()` neurons by one step. `state` is block-major,
/// `state[(block * (3 + n_channels) + var) * 64 + lane]` with vars `V_m` (mV), `w` (pA), `refractory`
/// (steps), `I_syn_<c>` (pA), and must hold whole blocks. `spiked[i]` is set to 1 if neuron `i` fired.
pub fn adex_update(t: &AdexTable, state: &mut [f64], input: &LifExpStepInput, spiked: &mut [u8]) {
    let n_ch = t.n_channels;
    let n = check_step_input(t.n_sets(), n_ch, 3 + n_ch, state, input);
    assert_eq!(spiked.len(), n, "spiked must have one entry per neuron");
    assert_eq!(input.forced.len(), n.div_ceil(LANES), "forced must have one word per block");
    let params = [
        param(&t.e_l),
        param(&t.g_l),
        param(&t.inv_c),
        param(&t.v_th),
        param(&t.g_l_delta_t),
        param(&t.inv_delta_t),
        param(&t.a),
        param(&t.inv_tau_w),
        param(&t.b),
        param(&t.v_reset),
        param(&t.v_peak),
        param(&t.i_e),
        param(&t.refractory_start),
        param(&t.n_sub),
        param(&t.h_sub),
        param(&t.half_h_sub),
        param(&t.decay_sub),
        param(&t.e_rev),
        param(&t.conductance),
    ];
    let args = spiking_model_args(n_ch, state, input, &params, spiked);
    // SAFETY: lengths checked above against what the kernel indexes: neurons i < n read param_set[i],
    // i_ext[i], forced[i / 64], syn and state within block i / 64 < n_blocks, per-set arrays at
    // param_set[i] < n_sets (params in the kernel's order; decay_sub at set * n_channels + c), and write state
    // and spiked[i]. `state`/`spiked` are exclusively borrowed and the grid covers n neurons.
    unsafe { (ADEX_UPDATE.host)(blocks_for(n), WRAPPER_THREADS, &args) };
}

/// Compiled `graded` parameter sets in the kernel's structure-of-arrays form (one entry per set; `e_rev`
/// set-major: `e_rev[set * n_channels + channel]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GradedTable {
    /// Receptor channels (same for every set).
    pub n_channels: usize,
    /// Leak conductance (nS).
    pub g_l: Vec<f64>,
    /// g_L E_L (pA).
    pub g_l_e_l: Vec<f64>,
    /// −h/C (ms/pF).
    pub minus_h_over_c: Vec<f64>,
    /// Sigmoid slope (1/mV).
    pub beta: Vec<f64>,
    /// Sigmoid midpoint (mV).
    pub v_th: Vec<f64>,
    /// Constant bias current (pA).
    pub i_e: Vec<f64>,
    /// Per (set, channel): reversal potential (mV).
    pub e_rev: Vec<f64>,
}

impl GradedTable {
    /// Number of parameter sets; panics if the arrays disagree in length.
    pub fn n_sets(&self) -> usize {
        let n = self.g_l.len();
        for (name, len) in [
            ("g_l_e_l", self.g_l_e_l.len()),
            ("minus_h_over_c", self.minus_h_over_c.len()),
            ("beta", self.beta.len()),
            ("v_th", self.v_th.len()),
            ("i_e", self.i_e.len()),
        ] {
            assert_eq!(len, n, "GradedTable::{name} has {len} entries, g_l has {n}");
        }
        assert_eq!(self.e_rev.len(), n * self.n_channels, "GradedTable::e_rev needs n_sets * n_channels");
        n
    }
}

/// Kernel `graded_update`: advances `input.i_ext.len()` neurons by one step. `state` is block-major, one
/// variable `V_m` (mV) at `state[block * 64 + lane]`, and must hold whole blocks. `activity[i]` receives the
/// transmitted activation of neuron `i`. `input.forced` is ignored (graded neurons never spike). `gap`:
/// the gap coupling from [`gap_conductance`] (`Σ g`, `Σ g V_j` per neuron), taken implicitly; `None` = none.
pub fn graded_update(
    t: &GradedTable,
    state: &mut [f64],
    input: &LifExpStepInput,
    gap: Option<(&[f64], &[f64])>,
    activity: &mut [f64],
) {
    let n_ch = t.n_channels;
    let n = check_step_input(t.n_sets(), n_ch, 1, state, input);
    assert_eq!(activity.len(), n, "activity must have one entry per neuron");
    let (gap_g, gap_gv) = match gap {
        Some((g, gv)) => {
            assert!(g.len() == n && gv.len() == n, "gap conductances must have one entry per neuron");
            (DevPtr::host(g.as_ptr()), DevPtr::host(gv.as_ptr()))
        }
        None => (DevPtr::NULL, DevPtr::NULL),
    };
    let params = [
        param(&t.g_l),
        param(&t.g_l_e_l),
        param(&t.minus_h_over_c),
        param(&t.beta),
        param(&t.v_th),
        param(&t.i_e),
        param(&t.e_rev),
    ];
    let args = ModelArgs {
        gap_g,
        gap_gv,
        activity: DevPtr::host(activity.as_mut_ptr()),
        ..model_args(n_ch, state, input, &params)
    };
    // SAFETY: lengths checked above against what the kernel indexes: neurons i < n read param_set[i],
    // i_ext[i], gap_g[i] / gap_gv[i] (n entries each, or both null), syn and state within block i / 64 <
    // n_blocks, per-set arrays (params[0..7] in the kernel's order) at param_set[i] < n_sets (e_rev at
    // set * n_channels + c), and write state and activity[i]. `state`/`activity` are exclusively borrowed and
    // the grid covers n neurons.
    unsafe { (GRADED_UPDATE.host)(blocks_for(n), WRAPPER_THREADS, &args) };
}

// ---- lif_cond_exp (`cuda/lif_cond_exp.cu`) ----

/// Compiled `lif_cond_exp` parameter sets in the kernel's structure-of-arrays form (one entry per set, as
/// `neurotwin_models::lif_cond_exp::Compiled`; per-channel arrays set-major: `p11[set * n_channels + channel]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LifCondExpTable {
    /// Receptor channels (same for every set).
    pub n_channels: usize,
    /// Leak conductance (nS).
    pub g_l: Vec<f64>,
    /// g_L E_L + I_e (pA).
    pub g_l_e_l_i_e: Vec<f64>,
    /// −h/C_m (ms/pF).
    pub minus_h_over_c: Vec<f64>,
    /// Threshold (mV).
    pub v_th: Vec<f64>,
    /// Reset (mV).
    pub v_reset: Vec<f64>,
    /// Refractory period (steps).
    pub refractory_steps: Vec<u32>,
    /// Per (set, channel): e^{−h/τ_c}.
    pub p11: Vec<f64>,
    /// Per (set, channel): e^{−h/(2τ_c)}.
    pub q_mid: Vec<f64>,
    /// Per (set, channel): reversal potential (mV).
    pub e_rev: Vec<f64>,
    /// Per set: 1 for alpha conductances (`lif_cond_alpha`), 0 for exponential ones.
    pub alpha: Vec<u32>,
    /// Per (set, channel): e/τ_c (1/ms), the jump of ġ per unit weight (alpha; 0 otherwise).
    pub jump: Vec<f64>,
    /// Per set: the time step (ms).
    pub h: Vec<f64>,
}

impl LifCondExpTable {
    /// Number of parameter sets; panics if the arrays disagree in length.
    pub fn n_sets(&self) -> usize {
        let n = self.g_l.len();
        for (name, len) in [
            ("g_l_e_l_i_e", self.g_l_e_l_i_e.len()),
            ("minus_h_over_c", self.minus_h_over_c.len()),
            ("v_th", self.v_th.len()),
            ("v_reset", self.v_reset.len()),
            ("refractory_steps", self.refractory_steps.len()),
            ("alpha", self.alpha.len()),
            ("h", self.h.len()),
        ] {
            assert_eq!(len, n, "LifCondExpTable::{name} has {len} entries, g_l has {n}");
        }
        assert!(self.alpha.iter().all(|&a| a == self.alpha[0]), "LifCondExpTable: mixed alpha and exp sets");
        for (name, len) in [
            ("p11", self.p11.len()),
            ("q_mid", self.q_mid.len()),
            ("e_rev", self.e_rev.len()),
            ("jump", self.jump.len()),
        ] {
            assert_eq!(len, n * self.n_channels, "LifCondExpTable::{name} needs n_sets * n_channels");
        }
        n
    }
}

/// Kernel `lif_cond_exp_update`: advances `input.i_ext.len()` neurons by one step. `state` is block-major with
/// `2 + n_channels` variables (`V_m`, refractory steps, `g_syn` per channel; alpha sets: then `ġ_syn` per
/// channel, `2 + 2 n_channels`) and must hold whole blocks; `spiked[i]` receives 1 when neuron `i` fired.
pub fn lif_cond_exp_update(t: &LifCondExpTable, state: &mut [f64], input: &LifExpStepInput, spiked: &mut [u8]) {
    let n_ch = t.n_channels;
    let per_channel = if t.alpha.first() == Some(&1) { 2 } else { 1 };
    let n = check_step_input(t.n_sets(), n_ch, 2 + per_channel * n_ch, state, input);
    assert_eq!(spiked.len(), n, "spiked must have one entry per neuron");
    assert_eq!(input.forced.len(), n.div_ceil(LANES), "forced must have one word per block");
    let params = [
        param(&t.g_l),
        param(&t.g_l_e_l_i_e),
        param(&t.minus_h_over_c),
        param(&t.v_th),
        param(&t.v_reset),
        param(&t.refractory_steps),
        param(&t.p11),
        param(&t.q_mid),
        param(&t.e_rev),
        param(&t.alpha),
        param(&t.jump),
        param(&t.h),
    ];
    let args = spiking_model_args(n_ch, state, input, &params, spiked);
    // SAFETY: lengths checked above against what the kernel indexes: neurons i < n read param_set[i],
    // i_ext[i], forced[i / 64], syn and state within block i / 64 < n_blocks, per-set arrays (params in the
    // kernel's order) at param_set[i] < n_sets and per-channel arrays at set * n_channels + c, and write state
    // and spiked[i]. `state`/`spiked` are exclusively borrowed and the grid covers n neurons.
    unsafe { (LIF_COND_EXP_UPDATE.host)(blocks_for(n), WRAPPER_THREADS, &args) };
}
