//! The parameter packs of the step kernels: `#[repr(C)]` mirrors of the structs in `cuda/packs.cuh` (tested
//! field by field against that file), the step clock, and one [`KernelFn`] per step kernel naming its unit, its
//! NVRTC entry point and its host-build entry point. Every step kernel takes exactly one pack by value, so a
//! launch is `(kernel, grid, pack)` wherever it runs: the host launcher passes the pack to the host build, the
//! CUDA launcher as the kernel's single argument, and a captured graph replays the same packs.
//!
//! Pointers in packs are [`DevPtr`]s: 8-byte addresses in the memory the kernels run on (device memory on a GPU,
//! host memory for the host build).

use std::ffi::c_uint;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{offset_of, size_of};

use cudarc::driver::{DeviceRepr, ValidAsZeroBits};

use crate::host::StimulusParams;
use crate::host::raw;

/// An address of a `T` in the memory the kernels run on, as a kernel's pointer argument holds it (8 bytes).
/// Null for an absent optional array.
#[repr(transparent)]
pub struct DevPtr<T> {
    addr: u64,
    elem: PhantomData<fn() -> T>,
}

impl<T> DevPtr<T> {
    /// The null pointer (an absent optional array).
    pub const NULL: Self = Self { addr: 0, elem: PhantomData };

    /// A device address (e.g. `CUdeviceptr`).
    pub const fn from_addr(addr: u64) -> Self {
        Self { addr, elem: PhantomData }
    }

    /// A host address, for the host build of the kernels.
    pub fn host(ptr: *const T) -> Self {
        Self::from_addr(ptr as usize as u64)
    }

    /// The address.
    pub const fn addr(self) -> u64 {
        self.addr
    }

    /// The same address as a pointer to `U` (e.g. a model's parameter array in `ModelArgs::params`).
    pub const fn cast<U>(self) -> DevPtr<U> {
        DevPtr::from_addr(self.addr)
    }
}

impl<T> Clone for DevPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for DevPtr<T> {}
impl<T> PartialEq for DevPtr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
    }
}
impl<T> Eq for DevPtr<T> {}
impl<T> Default for DevPtr<T> {
    fn default() -> Self {
        Self::NULL
    }
}
impl<T> fmt::Debug for DevPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.addr)
    }
}

/// The step clock in device memory (`struct nt_clock`): the simulation step and the window step `k` of the spike
/// record. `clock_tick` advances both at the end of a step; the host writes it only when the sequence breaks (a
/// drained window sets `k = 0`, a step out of sequence sets `step`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    pub step: u64,
    pub k: u32,
    pub pad: u32,
}

// SAFETY: `#[repr(C)]` plain data (u64, u32, u32; 16 bytes, no padding), the layout of `struct nt_clock`.
unsafe impl DeviceRepr for Clock {}
// SAFETY: all-zero bits are step 0, window step 0.
unsafe impl ValidAsZeroBits for Clock {}

impl Clock {
    /// The clock at `step`, window step `k`.
    pub fn at(step: u64, k: u32) -> Self {
        Self { step, k, pad: 0 }
    }
}

/// One field of a pack: name, byte offset and size (for the layout test against `cuda/packs.cuh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
}

/// A parameter pack: a `#[repr(C)]` struct of plain data mirroring `struct <C_NAME>` in `cuda/packs.cuh`.
///
/// # Safety
/// Implementors are `#[repr(C)]` structs of [`DevPtr`]s and integers/floats without implicit padding, whose
/// fields match the C struct in order, type and offset ([`Self::FIELDS`], checked by the layout test).
pub unsafe trait KernelArgs: Copy + Send + Sync + fmt::Debug + DeviceRepr + 'static {
    /// The C struct's name in `cuda/packs.cuh`.
    const C_NAME: &'static str;
    /// The fields in declaration order.
    const FIELDS: &'static [Field];
}

/// The host build's entry point of a step kernel: launches it with `blocks` blocks of `threads` threads on the
/// sequential host launcher with the pack `*args`.
pub type HostEntry<P> = unsafe extern "C" fn(blocks: c_uint, threads: c_uint, args: *const P);

/// One step kernel: its unit in [`crate::KERNELS`], its entry point and its host-build entry point, with the pack
/// it takes as a type parameter (so a launch cannot pass another kernel's pack).
pub struct KernelFn<P: KernelArgs> {
    /// The unit (`KernelSource::name`).
    pub unit: &'static str,
    /// The `extern "C" __global__` entry point.
    pub name: &'static str,
    /// The host build's entry point (`host/kernels_host_*.cpp`).
    pub host: HostEntry<P>,
}

impl<P: KernelArgs> Clone for KernelFn<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: KernelArgs> Copy for KernelFn<P> {}
impl<P: KernelArgs> fmt::Debug for KernelFn<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}({})", self.unit, self.name, P::C_NAME)
    }
}

macro_rules! packs {
    ($($(#[$meta:meta])* $name:ident = $c_name:literal { $($field:ident: $ty:ty),* $(,)? })*) => {$(
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name {
            $(pub $field: $ty,)*
        }

        // SAFETY: `#[repr(C)]` plain data (DevPtr = u64, integers, floats), laid out as `struct $c_name` without
        // implicit padding (checked against cuda/packs.cuh by `packs::tests::layout_matches_packs_cuh`).
        unsafe impl DeviceRepr for $name {}

        // SAFETY: as above.
        unsafe impl KernelArgs for $name {
            const C_NAME: &'static str = $c_name;
            const FIELDS: &'static [Field] = &[
                $(Field { name: stringify!($field), offset: offset_of!($name, $field), size: size_of::<$ty>() },)*
            ];
        }
    )*};
}

/// Most per-set parameter arrays a model kernel takes (`NT_MODEL_MAX_PARAMS`; adex takes 19).
pub const MODEL_MAX_PARAMS: usize = 20;

packs! {
    /// `clock_tick`.
    ClockTickArgs = "nt_clock_tick_args" { clock: DevPtr<Clock> }
    /// `gather_input`.
    GatherInputArgs = "nt_gather_input_args" {
        ring: DevPtr<i64>, syn: DevPtr<f64>, clock: DevPtr<Clock>, inv_scale: f64,
        n_pad: u32, n_channels: u32, slots: u32, pad: u32,
    }
    /// `stimulus_input`.
    StimulusInputArgs = "nt_stimulus_input_args" {
        stim_ptr: DevPtr<u32>, stim_of: DevPtr<u32>, stimuli: DevPtr<StimulusParams>, syn: DevPtr<f64>,
        i_ext: DevPtr<f64>, forced: DevPtr<u64>, clock: DevPtr<Clock>, seed: u64,
        n_neurons: u32, n_channels: u32, spiking: u32, pad: u32,
    }
    /// `spike_train_input`.
    SpikeTrainInputArgs = "nt_spike_train_input_args" {
        train_neuron: DevPtr<u32>, train_ptr: DevPtr<u64>, train_steps: DevPtr<u32>, forced: DevPtr<u64>,
        clock: DevPtr<Clock>, n_trains: u32, pad: u32,
    }
    /// `gap_current`.
    GapCurrentArgs = "nt_gap_current_args" {
        row_ptr: DevPtr<u64>, partner: DevPtr<u32>, conductance: DevPtr<f32>, v_prev: DevPtr<f64>,
        i_ext: DevPtr<f64>, n_neurons: u32, pad: u32,
    }
    /// `gap_conductance`.
    GapConductanceArgs = "nt_gap_conductance_args" {
        row_ptr: DevPtr<u64>, partner: DevPtr<u32>, conductance: DevPtr<f32>, v_prev: DevPtr<f64>,
        gap_g: DevPtr<f64>, gap_gv: DevPtr<f64>, n_neurons: u32, pad: u32,
    }
    /// `apply_channel_gain`.
    ApplyChannelGainArgs = "nt_apply_channel_gain_args" {
        gain: DevPtr<f64>, syn: DevPtr<f64>, n_neurons: u32, n_channels: u32,
    }
    /// `<model>_update`: `params[j]` is the model's j-th per-set array in `ModelTable::args` order (f64 or u32
    /// elements); unused pointers are null.
    ModelArgs = "nt_model_args" {
        state: DevPtr<f64>, param_set: DevPtr<u16>, params: [DevPtr<u8>; MODEL_MAX_PARAMS], syn: DevPtr<f64>,
        i_ext: DevPtr<f64>, forced: DevPtr<u64>, spiked: DevPtr<u8>, gap_g: DevPtr<f64>, gap_gv: DevPtr<f64>,
        activity: DevPtr<f64>, n_neurons: u32, n_channels: u32,
    }
    /// `<model>_step`: kernels 1–5 fused (a gap pack with a null `row_ptr`, a gain pack with a null `gain` is
    /// skipped).
    NeuronStepArgs = "nt_neuron_step_args" {
        gather: GatherInputArgs, stimulus: StimulusInputArgs, gap_current: GapCurrentArgs,
        gap_conductance: GapConductanceArgs, gain: ApplyChannelGainArgs, model: ModelArgs,
    }
    /// `apply_silence_and_flag`.
    ApplySilenceAndFlagArgs = "nt_apply_silence_and_flag_args" {
        silenced: DevPtr<u64>, spiked: DevPtr<u8>, n_neurons: u32, pad: u32,
    }
    /// `silence_activity`.
    SilenceActivityArgs = "nt_silence_activity_args" {
        silenced: DevPtr<u64>, activity: DevPtr<f64>, n_neurons: u32, pad: u32,
    }
    /// `spike_masks`.
    SpikeMasksArgs = "nt_spike_masks_args" { spiked: DevPtr<u8>, masks: DevPtr<u64>, n_neurons: u32, pad: u32 }
    /// `spike_chunk_totals`.
    SpikeChunkTotalsArgs = "nt_spike_chunk_totals_args" {
        masks: DevPtr<u64>, chunk_offset: DevPtr<u64>, n_words: u32, chunk: u32,
    }
    /// `spike_scan_groups`.
    SpikeScanGroupsArgs = "nt_spike_scan_groups_args" {
        chunk_offset: DevPtr<u64>, group_offset: DevPtr<u64>, n_chunks: u32, group: u32,
    }
    /// `spike_scan_tops` (`k = clock.k`, or 0 with a null clock).
    SpikeScanTopsArgs = "nt_spike_scan_tops_args" {
        group_offset: DevPtr<u64>, rec_base: DevPtr<u64>, clock: DevPtr<Clock>, n_groups: u32, pad: u32,
    }
    /// `spike_scatter`.
    SpikeScatterArgs = "nt_spike_scatter_args" {
        masks: DevPtr<u64>, chunk_offset: DevPtr<u64>, group_offset: DevPtr<u64>, rec_spikes: DevPtr<u32>,
        n_words: u32, chunk: u32, group: u32, pad: u32,
    }
    /// `spike_pieces`.
    SpikePiecesArgs = "nt_spike_pieces_args" {
        rec_base: DevPtr<u64>, rec_spikes: DevPtr<u32>, row_segments: DevPtr<u32>, seg_piece: DevPtr<u64>,
        work_start: DevPtr<u64>, clock: DevPtr<Clock>, max_spikes: u32, pad: u32,
    }
    /// `spike_work`.
    SpikeWorkArgs = "nt_spike_work_args" {
        rec_base: DevPtr<u64>, work_start: DevPtr<u64>, work_chunk: DevPtr<u64>, clock: DevPtr<Clock>,
        max_spikes: u32, chunk: u32,
    }
    /// `spike_work_base`.
    SpikeWorkBaseArgs = "nt_spike_work_base_args" {
        rec_base: DevPtr<u64>, work_chunk: DevPtr<u64>, work_group: DevPtr<u64>, work_start: DevPtr<u64>,
        clock: DevPtr<Clock>, max_spikes: u32, chunk: u32, group: u32, pad: u32,
    }
    /// `deliver_spikes`: exactly one of `weights` and (`weight_index`, `fixed_table`) is non-null.
    DeliverSpikesArgs = "nt_deliver_spikes_args" {
        rec_base: DevPtr<u64>, rec_spikes: DevPtr<u32>, work_start: DevPtr<u64>, work_total: DevPtr<u64>,
        row_segments: DevPtr<u32>, seg_piece: DevPtr<u64>, segment_start: DevPtr<u64>, segment_delay: DevPtr<u16>,
        segment_receptor: DevPtr<u8>, targets: DevPtr<u32>, weights: DevPtr<f32>, weight_index: DevPtr<u16>,
        fixed_table: DevPtr<i64>, ring: DevPtr<i64>, clock: DevPtr<Clock>, scale: f64, slots: u32, n_pad: u32,
    }
    /// `deliver_graded`: exactly one of `weights` and (`weight_index`, `weight_values`) is non-null.
    DeliverGradedArgs = "nt_deliver_graded_args" {
        activity: DevPtr<f64>, row_segments: DevPtr<u32>, segment_start: DevPtr<u64>, segment_delay: DevPtr<u16>,
        segment_receptor: DevPtr<u8>, targets: DevPtr<u32>, weights: DevPtr<f32>, weight_index: DevPtr<u16>,
        weight_values: DevPtr<f32>, ring: DevPtr<i64>, clock: DevPtr<Clock>, scale: f64, n_neurons: u32,
        slots: u32, n_pad: u32, pad: u32,
    }
    /// `snapshot_v`.
    SnapshotVArgs = "nt_snapshot_v_args" { state: DevPtr<f64>, v_prev: DevPtr<f64>, n_pad: u32, n_state: u32 }
    /// `stdp_post_spikes`, `stdp_potentiate`, `stdp_depress_deliver` and the reward-modulated rule's
    /// `stdp_dop_arrivals`, `stdp_dop_count`, `stdp_dop_update_all`, `stdp_dop_restart`.
    StdpArgs = "nt_stdp_args" {
        rec_base: DevPtr<u64>, rec_spikes: DevPtr<u32>, clock: DevPtr<Clock>, rules: DevPtr<f64>, row_ptr: DevPtr<u32>,
        post: DevPtr<u32>, delay: DevPtr<u16>, channel: DevPtr<u8>, projection: DevPtr<u8>, weight: DevPtr<f64>,
        k_plus: DevPtr<f64>, last_pre: DevPtr<i64>, col_ptr: DevPtr<u32>, col_syn: DevPtr<u32>,
        hist_row_of: DevPtr<u32>, hist_neuron: DevPtr<u32>, hist_steps: DevPtr<i64>, hist_k: DevPtr<f64>,
        hist_len: DevPtr<u32>, hist_head: DevPtr<u32>, ring: DevPtr<i64>, elig: DevPtr<f64>, t_eval: DevPtr<i64>,
        dop_step: DevPtr<i64>, dop_n: DevPtr<f64>, dop_len: DevPtr<u32>, dop_pending: DevPtr<u32>,
        dop_source: DevPtr<u8>, dt_ms: f64, scale: f64, n_neurons: u32, hist_rows: u32, hist_cap: u32,
        n_projections: u32, max_delay: u32, slots: u32, n_pad: u32, n_synapses: u32, dop_cap: u32,
        pend_slots: u32, pad0: u32, pad1: u32,
    }
}

macro_rules! kernel_fns {
    ($($(#[$meta:meta])* $const_name:ident: $pack:ty = $unit:literal :: $name:ident;)*) => {
        $(
            $(#[$meta])*
            pub const $const_name: KernelFn<$pack> = KernelFn { unit: $unit, name: stringify!($name), host: raw::$name };
        )*
        /// Every step kernel as (unit, entry point), in the order of the step.
        pub const STEP_KERNELS: &[(&str, &str)] = &[$(($unit, stringify!($name)),)*];
    };
}

kernel_fns! {
    /// Step 1: this step's ring slot into `syn`.
    GATHER_INPUT: GatherInputArgs = "network"::gather_input;
    /// Step 2: stimuli.
    STIMULUS_INPUT: StimulusInputArgs = "network"::stimulus_input;
    /// Step 2': prescribed spike trains.
    SPIKE_TRAIN_INPUT: SpikeTrainInputArgs = "network"::spike_train_input;
    /// Step 3, spiking models: gap-junction currents.
    GAP_CURRENT: GapCurrentArgs = "network"::gap_current;
    /// Step 3, graded models: gap-junction conductances.
    GAP_CONDUCTANCE: GapConductanceArgs = "network"::gap_conductance;
    /// Step 4: receptor gains.
    APPLY_CHANNEL_GAIN: ApplyChannelGainArgs = "network"::apply_channel_gain;
    /// Step 5: LIF with exponential synapses.
    LIF_EXP_UPDATE: ModelArgs = "lif_exp"::lif_exp_update;
    /// Step 5: LIF with delta synapses.
    LIF_DELTA_UPDATE: ModelArgs = "lif_delta"::lif_delta_update;
    /// Step 5: Izhikevich.
    IZHIKEVICH_UPDATE: ModelArgs = "izhikevich"::izhikevich_update;
    /// Step 5: AdEx.
    ADEX_UPDATE: ModelArgs = "adex"::adex_update;
    /// Step 5: graded-potential neurons.
    GRADED_UPDATE: ModelArgs = "graded"::graded_update;
    /// Step 5: LIF with exponential conductances.
    LIF_COND_EXP_UPDATE: ModelArgs = "lif_cond_exp"::lif_cond_exp_update;
    /// Steps 1–5 fused, LIF with exponential synapses.
    LIF_EXP_STEP: NeuronStepArgs = "lif_exp"::lif_exp_step;
    /// Steps 1–5 fused, LIF with delta synapses.
    LIF_DELTA_STEP: NeuronStepArgs = "lif_delta"::lif_delta_step;
    /// Steps 1–5 fused, Izhikevich.
    IZHIKEVICH_STEP: NeuronStepArgs = "izhikevich"::izhikevich_step;
    /// Steps 1–5 fused, AdEx.
    ADEX_STEP: NeuronStepArgs = "adex"::adex_step;
    /// Steps 1–5 fused, graded-potential neurons.
    GRADED_STEP: NeuronStepArgs = "graded"::graded_step;
    /// Steps 1–5 fused, LIF with exponential conductances.
    LIF_COND_EXP_STEP: NeuronStepArgs = "lif_cond_exp"::lif_cond_exp_step;
    /// Step 6, spiking models: silencing.
    APPLY_SILENCE_AND_FLAG: ApplySilenceAndFlagArgs = "network"::apply_silence_and_flag;
    /// Step 6, graded models: silencing.
    SILENCE_ACTIVITY: SilenceActivityArgs = "spikes"::silence_activity;
    /// Step 7a: spike flags into bit masks.
    SPIKE_MASKS: SpikeMasksArgs = "spikes"::spike_masks;
    /// Step 7b: spikes per chunk of mask words.
    SPIKE_CHUNK_TOTALS: SpikeChunkTotalsArgs = "spikes"::spike_chunk_totals;
    /// Steps 7c and 8c: offsets within groups of chunks.
    SPIKE_SCAN_GROUPS: SpikeScanGroupsArgs = "spikes"::spike_scan_groups;
    /// Steps 7d and 8d: offsets of the groups.
    SPIKE_SCAN_TOPS: SpikeScanTopsArgs = "spikes"::spike_scan_tops;
    /// Step 7e: spike ids into the record.
    SPIKE_SCATTER: SpikeScatterArgs = "spikes"::spike_scatter;
    /// Step 8a: delivery pieces per spike.
    SPIKE_PIECES: SpikePiecesArgs = "spikes"::spike_pieces;
    /// Step 8b: pieces per chunk of spikes.
    SPIKE_WORK: SpikeWorkArgs = "spikes"::spike_work;
    /// Step 8e: first piece of each spike.
    SPIKE_WORK_BASE: SpikeWorkBaseArgs = "spikes"::spike_work_base;
    /// Step 8f: spike delivery into the ring.
    DELIVER_SPIKES: DeliverSpikesArgs = "spikes"::deliver_spikes;
    /// Step 8, graded models: graded delivery into the ring.
    DELIVER_GRADED: DeliverGradedArgs = "spikes"::deliver_graded;
    /// Step 8g, plastic synapses: the targets' spike histories.
    STDP_POST_SPIKES: StdpArgs = "stdp"::stdp_post_spikes;
    /// Step 8h: potentiation by the post spikes that reach their synapses now.
    STDP_POTENTIATE: StdpArgs = "stdp"::stdp_potentiate;
    /// Step 8i: depression, delivery of the new weights, presynaptic traces.
    STDP_DEPRESS_DELIVER: StdpArgs = "stdp"::stdp_depress_deliver;
    /// Step 8f, reward-modulated STDP (before 8g): the dopamine arriving now joins each projection's trace.
    STDP_DOP_ARRIVALS: StdpArgs = "stdp"::stdp_dop_arrivals;
    /// Step 8j: the dopamine neurons' spikes of the step, scheduled after each projection's delay.
    STDP_DOP_COUNT: StdpArgs = "stdp"::stdp_dop_count;
    /// Step 8k: every `update_every` steps, every reward-modulated weight brought up to date.
    STDP_DOP_UPDATE_ALL: StdpArgs = "stdp"::stdp_dop_update_all;
    /// Step 8l: after 8k, the projections' dopamine histories restart from now.
    STDP_DOP_RESTART: StdpArgs = "stdp"::stdp_dop_restart;
    /// Step 9: voltages for the next step's gap junctions.
    SNAPSHOT_V: SnapshotVArgs = "network"::snapshot_v;
    /// End of the step: step and window step advance.
    CLOCK_TICK: ClockTickArgs = "network"::clock_tick;
}

/// The `deliver_spikes` of the deliberately broken host build (`host/kernels_host_network_broken.cpp`), for tests
/// that prove the conformance suite catches a wrong kernel. Host only.
pub const DELIVER_SPIKES_BROKEN_FOR_TEST: KernelFn<DeliverSpikesArgs> =
    KernelFn { unit: "spikes", name: "deliver_spikes", host: raw::deliver_spikes_broken_for_test };

/// The `lif_exp_update` of the deliberately broken host build (`host/kernels_host_broken.cpp`: a reordered sum).
/// Host only.
pub const LIF_EXP_UPDATE_BROKEN_FOR_TEST: KernelFn<ModelArgs> =
    KernelFn { unit: "lif_exp", name: "lif_exp_update", host: raw::lif_exp_update_broken_for_test };

#[cfg(test)]
mod tests {
    use super::*;

    /// A C struct parsed from `cuda/packs.cuh`: fields with their C layout (x86-64 / CUDA ABI: natural
    /// alignment, pointers 8 bytes).
    fn c_structs() -> Vec<(String, Vec<Field>, usize)> {
        let src = include_str!("../cuda/packs.cuh");
        let array_len = |name: &str| -> usize {
            match name.split_once('[') {
                Some((_, rest)) => {
                    let n = rest.trim_end_matches(']');
                    if n == "NT_MODEL_MAX_PARAMS" { MODEL_MAX_PARAMS } else { n.parse().expect("array length") }
                }
                None => 1,
            }
        };
        let mut out = Vec::new();
        let mut lines = src.lines();
        while let Some(line) = lines.next() {
            let Some(name) = line.strip_prefix("struct ").and_then(|r| r.strip_suffix(" {")) else { continue };
            let (mut fields, mut at, mut align) = (Vec::new(), 0usize, 1usize);
            for l in lines.by_ref() {
                let l = l.trim();
                if l == "};" {
                    break;
                }
                let decl = l.strip_suffix(';').expect("one field per line");
                let (ty, fname) = decl.rsplit_once(' ').expect("type and name");
                let nested = out.iter().find(|(n, _, _)| n == ty);
                let elem = if ty.ends_with('*') {
                    8
                } else if let Some((_, _, size)) = nested {
                    *size
                } else {
                    match ty {
                        "unsigned long long" | "long long" | "double" => 8,
                        "unsigned int" | "float" => 4,
                        other => panic!("type {other} in packs.cuh has no size in this test"),
                    }
                };
                let field_align = if nested.is_some() { 8 } else { elem };
                at = at.div_ceil(field_align) * field_align;
                align = align.max(field_align);
                let n = array_len(fname);
                let fname = fname.split('[').next().unwrap();
                let fname: &'static str = Box::leak(fname.to_string().into_boxed_str());
                fields.push(Field { name: fname, offset: at, size: elem * n });
                at += elem * n;
            }
            out.push((name.to_string(), fields, at.div_ceil(align) * align));
        }
        out
    }

    fn check<P: KernelArgs>(structs: &[(String, Vec<Field>, usize)], seen: &mut Vec<&'static str>) {
        let (_, fields, size) = structs
            .iter()
            .find(|(n, _, _)| n == P::C_NAME)
            .unwrap_or_else(|| panic!("struct {} not in packs.cuh", P::C_NAME));
        assert_eq!(P::FIELDS, &fields[..], "{}", P::C_NAME);
        assert_eq!(size_of::<P>(), *size, "{}", P::C_NAME);
        let sum: usize = P::FIELDS.iter().map(|f| f.size).sum();
        assert_eq!(sum, size_of::<P>(), "{} has padding", P::C_NAME);
        seen.push(P::C_NAME);
    }

    /// Every Rust pack has the fields, offsets and size of the C struct of the same name, without padding, and
    /// every C struct except `nt_clock` has a Rust pack.
    #[test]
    fn layout_matches_packs_cuh() {
        let s = c_structs();
        let mut seen = Vec::new();
        check::<ClockTickArgs>(&s, &mut seen);
        check::<GatherInputArgs>(&s, &mut seen);
        check::<StimulusInputArgs>(&s, &mut seen);
        check::<SpikeTrainInputArgs>(&s, &mut seen);
        check::<GapCurrentArgs>(&s, &mut seen);
        check::<GapConductanceArgs>(&s, &mut seen);
        check::<ApplyChannelGainArgs>(&s, &mut seen);
        check::<ModelArgs>(&s, &mut seen);
        check::<NeuronStepArgs>(&s, &mut seen);
        check::<ApplySilenceAndFlagArgs>(&s, &mut seen);
        check::<SilenceActivityArgs>(&s, &mut seen);
        check::<SpikeMasksArgs>(&s, &mut seen);
        check::<SpikeChunkTotalsArgs>(&s, &mut seen);
        check::<SpikeScanGroupsArgs>(&s, &mut seen);
        check::<SpikeScanTopsArgs>(&s, &mut seen);
        check::<SpikeScatterArgs>(&s, &mut seen);
        check::<SpikePiecesArgs>(&s, &mut seen);
        check::<SpikeWorkArgs>(&s, &mut seen);
        check::<SpikeWorkBaseArgs>(&s, &mut seen);
        check::<DeliverSpikesArgs>(&s, &mut seen);
        check::<DeliverGradedArgs>(&s, &mut seen);
        check::<SnapshotVArgs>(&s, &mut seen);
        check::<StdpArgs>(&s, &mut seen);
        let clock = s.iter().find(|(n, _, _)| n == "nt_clock").expect("nt_clock");
        assert_eq!(clock.2, size_of::<Clock>());
        assert_eq!(clock.1.iter().map(|f| f.offset).collect::<Vec<_>>(), [offset_of!(Clock, step), 8, 12]);
        let mut c: Vec<&str> = s.iter().map(|(n, _, _)| n.as_str()).filter(|n| *n != "nt_clock").collect();
        c.sort_unstable();
        seen.sort_unstable();
        assert_eq!(c, seen, "packs.cuh and packs.rs define different packs");
    }

    /// The parser sees what the C compiler sees: a struct with an implicit hole is laid out with it.
    #[test]
    fn the_layout_parser_applies_natural_alignment() {
        // The parser is exercised on the real file above; here a hand-computed case of the rule it applies:
        // nt_gather_input_args = 3 pointers (0, 8, 16), a double (24), 4 unsigned ints (32..48).
        let s = c_structs();
        let (_, f, size) = s.iter().find(|(n, _, _)| n == "nt_gather_input_args").unwrap();
        let offsets: Vec<usize> = f.iter().map(|f| f.offset).collect();
        assert_eq!(offsets, [0, 8, 16, 24, 32, 36, 40, 44]);
        assert_eq!(*size, 48);
    }

    /// Every step kernel is an entry point of its unit.
    #[test]
    fn step_kernels_are_entry_points_of_their_units() {
        for (unit, name) in STEP_KERNELS {
            let src = crate::KERNELS.iter().find(|k| k.name == *unit).unwrap_or_else(|| panic!("unit {unit}"));
            assert!(src.entry_points.contains(name), "{unit} lacks {name}");
        }
    }
}
