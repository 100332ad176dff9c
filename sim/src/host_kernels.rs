//! The `cuda-host` backend: the shared kernel backend ([`KernelBackend`], `crate::launch`) on a launcher that
//! runs the CUDA C kernels of `neurotwin-kernels` compiled for the host (`neurotwin_kernels::host::raw`, one
//! simulated CUDA thread after another), with exactly the launches — order, arguments and grids — the `cuda`
//! backend issues on a GPU. It holds the state in the same block-major layout as [`CpuBackend`] and is built
//! from the same [`SimSetup`], so conformance tests can require bit-identical results from both — which proves
//! the kernel sources and the launch sequence (not a Rust re-implementation) reproduce the CPU semantics.
//!
//! Spikes stay in the spike record (as on the GPU) until [`Backend::drain_spikes`]; the window is
//! [`HOST_SPIKE_WINDOW`] steps, so tests driving the engine exercise the same record path as the CUDA
//! backend.
//!
//! Supports every model: `lif_exp`, `lif_delta`, `izhikevich`, `adex` and `graded`.
//!
//! [`CpuBackend`]: crate::cpu::CpuBackend
//! [`Backend::drain_spikes`]: crate::backend::Backend::drain_spikes
#![allow(clippy::too_many_arguments)] // the launch methods take exactly the kernels' arguments

use std::convert::Infallible;
use std::ops::Range;
use std::ptr::null;

use neurotwin_kernels::host::{StimulusParams, raw};

use crate::error::SimError;
use crate::launch::{DevStimulus, Elem, Grid, KernelBackend, Launcher, ModelKind, ModelOut, ParamBuf};
use crate::setup::SimSetup;

/// Steps of spikes the host spike record holds between drains.
pub const HOST_SPIKE_WINDOW: usize = 16;

/// The `cuda-host` backend (see the module documentation).
pub type HostKernelBackend = KernelBackend<HostLauncher>;

impl KernelBackend<HostLauncher> {
    /// Builds the backend; an invalid setup is a [`SimError::Setup`].
    pub fn new(setup: &SimSetup) -> Result<Self, SimError> {
        Self::with_launcher(HostLauncher::new(), setup)
    }

    /// The same backend with the deliberately broken delivery kernel (`NEUROTWIN_BREAK_FOR_TEST`: the last
    /// synapse of every segment is dropped). Exists only so that tests can prove the conformance comparison
    /// detects a broken kernel; never use it in a simulation.
    #[doc(hidden)]
    pub fn new_with_broken_delivery_for_test(setup: &SimSetup) -> Result<Self, SimError> {
        Self::with_launcher(HostLauncher { broken_delivery: true }, setup)
    }
}

/// Runs each launch on the host: buffers are `Vec`s, kernels the host builds of the CUDA C sources, run
/// sequentially over the grid they are given.
#[derive(Debug, Default)]
pub struct HostLauncher {
    /// Launch `deliver_spikes` from the deliberately broken build.
    broken_delivery: bool,
}

impl HostLauncher {
    /// The launcher of the `cuda-host` backend (correct kernels).
    pub fn new() -> Self {
        Self::default()
    }
}

/// `Some(buffer)` as a pointer, `None` as null.
fn opt<T>(b: Option<&Vec<T>>) -> *const T {
    b.map_or(null(), |v| v.as_ptr())
}

/// Parameter array `i` of a model kernel, which must be an f64 array.
fn f64_param(p: &[ParamBuf<HostLauncher>], i: usize) -> *const f64 {
    match &p[i] {
        ParamBuf::F64(v) => v.as_ptr(),
        ParamBuf::U32(_) => panic!("model parameter #{i} must be an f64 array"),
    }
}

/// Parameter array `i` of a model kernel, which must be a u32 array.
fn u32_param(p: &[ParamBuf<HostLauncher>], i: usize) -> *const u32 {
    match &p[i] {
        ParamBuf::U32(v) => v.as_ptr(),
        ParamBuf::F64(_) => panic!("model parameter #{i} must be a u32 array"),
    }
}

impl Launcher for HostLauncher {
    type Buf<T: Elem> = Vec<T>;
    type Error = Infallible;
    const NAME: &'static str = "cuda-host";

    fn spike_window(&self, _n: usize) -> usize {
        HOST_SPIKE_WINDOW
    }

    fn upload<T: Elem>(&self, data: &[T]) -> Result<Vec<T>, Infallible> {
        Ok(if data.is_empty() { vec![T::default()] } else { data.to_vec() })
    }

    fn zeros<T: Elem>(&self, len: usize) -> Result<Vec<T>, Infallible> {
        Ok(vec![T::default(); len.max(1)])
    }

    fn write<T: Elem>(&mut self, src: &[T], dst: &mut Vec<T>) -> Result<(), Infallible> {
        dst[..src.len()].copy_from_slice(src);
        Ok(())
    }

    fn clear<T: Elem>(&mut self, buf: &mut Vec<T>) -> Result<(), Infallible> {
        buf.fill(T::default());
        Ok(())
    }

    fn read<T: Elem>(&self, src: &Vec<T>, range: Range<usize>, dst: &mut [T]) -> Result<(), Infallible> {
        dst.copy_from_slice(&src[range]);
        Ok(())
    }

    unsafe fn gather_input(
        &mut self,
        g: Grid,
        n_pad: u32,
        n_channels: u32,
        slots: u32,
        slot: u32,
        ring: &mut Vec<i64>,
        inv_scale: f64,
        syn: &mut Vec<f64>,
    ) -> Result<(), Infallible> {
        // SAFETY: the caller upholds the launch contract of `Launcher` (buffer extents, grid); the pointers come
        // from live, distinct vectors and the mutable ones are exclusively borrowed.
        unsafe {
            raw::gather_input(
                g.blocks,
                g.threads,
                n_pad,
                n_channels,
                slots,
                slot,
                ring.as_mut_ptr(),
                inv_scale,
                syn.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn stimulus_input(
        &mut self,
        g: Grid,
        n_neurons: u32,
        n_channels: u32,
        step: u64,
        seed: u64,
        spiking: u32,
        stim_ptr: &Vec<u32>,
        stim_of: &Vec<u32>,
        stimuli: &Vec<DevStimulus>,
        syn: &mut Vec<f64>,
        i_ext: &mut Vec<f64>,
        forced: &mut Vec<u64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`; `DevStimulus` is a transparent wrapper of the `repr(C)` `StimulusParams`.
        unsafe {
            raw::stimulus_input(
                g.blocks,
                g.threads,
                n_neurons,
                n_channels,
                step,
                seed,
                spiking,
                stim_ptr.as_ptr(),
                stim_of.as_ptr(),
                stimuli.as_ptr().cast::<StimulusParams>(),
                syn.as_mut_ptr(),
                i_ext.as_mut_ptr(),
                forced.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn spike_train_input(
        &mut self,
        g: Grid,
        n_trains: u32,
        step: u64,
        train_neuron: &Vec<u32>,
        train_ptr: &Vec<u64>,
        train_steps: &Vec<u32>,
        forced: &mut Vec<u64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::spike_train_input(
                g.blocks,
                g.threads,
                n_trains,
                step,
                train_neuron.as_ptr(),
                train_ptr.as_ptr(),
                train_steps.as_ptr(),
                forced.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn gap_current(
        &mut self,
        g: Grid,
        n_neurons: u32,
        row_ptr: &Vec<u64>,
        partner: &Vec<u32>,
        conductance: &Vec<f32>,
        v_prev: &Vec<f64>,
        i_ext: &mut Vec<f64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::gap_current(
                g.blocks,
                g.threads,
                n_neurons,
                row_ptr.as_ptr(),
                partner.as_ptr(),
                conductance.as_ptr(),
                v_prev.as_ptr(),
                i_ext.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn gap_conductance(
        &mut self,
        g: Grid,
        n_neurons: u32,
        row_ptr: &Vec<u64>,
        partner: &Vec<u32>,
        conductance: &Vec<f32>,
        v_prev: &Vec<f64>,
        gap_g: &mut Vec<f64>,
        gap_gv: &mut Vec<f64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::gap_conductance(
                g.blocks,
                g.threads,
                n_neurons,
                row_ptr.as_ptr(),
                partner.as_ptr(),
                conductance.as_ptr(),
                v_prev.as_ptr(),
                gap_g.as_mut_ptr(),
                gap_gv.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn apply_channel_gain(
        &mut self,
        g: Grid,
        n_neurons: u32,
        n_channels: u32,
        gain: &Vec<f64>,
        syn: &mut Vec<f64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe { raw::apply_channel_gain(g.blocks, g.threads, n_neurons, n_channels, gain.as_ptr(), syn.as_mut_ptr()) };
        Ok(())
    }

    unsafe fn model_update(
        &mut self,
        g: Grid,
        model: ModelKind,
        n: u32,
        n_ch: u32,
        state: &mut Vec<f64>,
        param_set: &Vec<u16>,
        p: &[ParamBuf<Self>],
        syn: &Vec<f64>,
        i_ext: &Vec<f64>,
        out: ModelOut<'_, Self>,
    ) -> Result<(), Infallible> {
        let expected = match model {
            ModelKind::LifExp => 9,
            ModelKind::LifDelta | ModelKind::Izhikevich => 8,
            ModelKind::Adex => 17,
            ModelKind::Graded => 7,
        };
        assert_eq!(p.len(), expected, "{model:?} takes {expected} parameter arrays");
        let (b, t, st, ps) = (g.blocks, g.threads, state.as_mut_ptr(), param_set.as_ptr());
        let (f, u) = (|i| f64_param(p, i), |i| u32_param(p, i));
        let (sy, ie) = (syn.as_ptr(), i_ext.as_ptr());
        match out {
            ModelOut::Spiking { forced, spiked } => {
                let (fo, sp) = (forced.as_ptr(), spiked.as_mut_ptr());
                // SAFETY: as in `gather_input`; the parameter arrays are passed in `ModelTable::args` order,
                // which is the kernel's, and their count and element types were checked above.
                unsafe {
                    match model {
                        ModelKind::LifExp => raw::lif_exp_update(
                            b,
                            t,
                            n,
                            n_ch,
                            st,
                            ps,
                            f(0),
                            f(1),
                            f(2),
                            f(3),
                            f(4),
                            f(5),
                            u(6),
                            f(7),
                            f(8),
                            sy,
                            ie,
                            fo,
                            sp,
                        ),
                        ModelKind::LifDelta => raw::lif_delta_update(
                            b,
                            t,
                            n,
                            n_ch,
                            st,
                            ps,
                            f(0),
                            f(1),
                            f(2),
                            f(3),
                            f(4),
                            f(5),
                            u(6),
                            f(7),
                            sy,
                            ie,
                            fo,
                            sp,
                        ),
                        ModelKind::Izhikevich => raw::izhikevich_update(
                            b,
                            t,
                            n,
                            n_ch,
                            st,
                            ps,
                            f(0),
                            f(1),
                            f(2),
                            f(3),
                            f(4),
                            f(5),
                            u(6),
                            f(7),
                            sy,
                            ie,
                            fo,
                            sp,
                        ),
                        ModelKind::Adex => raw::adex_update(
                            b,
                            t,
                            n,
                            n_ch,
                            st,
                            ps,
                            f(0),
                            f(1),
                            f(2),
                            f(3),
                            f(4),
                            f(5),
                            f(6),
                            f(7),
                            f(8),
                            f(9),
                            f(10),
                            f(11),
                            f(12),
                            u(13),
                            f(14),
                            f(15),
                            f(16),
                            sy,
                            ie,
                            fo,
                            sp,
                        ),
                        ModelKind::Graded => panic!("graded_update takes the graded outputs"),
                    }
                }
            }
            ModelOut::Graded { gap, activity } => {
                assert_eq!(model, ModelKind::Graded, "{model:?} takes the spiking outputs");
                let (gg, gv) = gap.map_or((null(), null()), |(a, b)| (a.as_ptr(), b.as_ptr()));
                // SAFETY: as in the spiking case; the gap arrays are both given or both null.
                unsafe {
                    raw::graded_update(
                        b,
                        t,
                        n,
                        n_ch,
                        st,
                        ps,
                        f(0),
                        f(1),
                        f(2),
                        f(3),
                        f(4),
                        f(5),
                        f(6),
                        sy,
                        ie,
                        gg,
                        gv,
                        activity.as_mut_ptr(),
                    )
                }
            }
        }
        Ok(())
    }

    unsafe fn apply_silence_and_flag(
        &mut self,
        g: Grid,
        n_neurons: u32,
        silenced: &Vec<u64>,
        spiked: &mut Vec<u8>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe { raw::apply_silence_and_flag(g.blocks, g.threads, n_neurons, silenced.as_ptr(), spiked.as_mut_ptr()) };
        Ok(())
    }

    unsafe fn spike_masks(
        &mut self,
        g: Grid,
        n_neurons: u32,
        spiked: &Vec<u8>,
        masks: &mut Vec<u64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe { raw::spike_masks(g.blocks, g.threads, n_neurons, spiked.as_ptr(), masks.as_mut_ptr()) };
        Ok(())
    }

    unsafe fn spike_chunk_totals(
        &mut self,
        g: Grid,
        n_words: u32,
        chunk: u32,
        masks: &Vec<u64>,
        chunk_offset: &mut Vec<u64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::spike_chunk_totals(g.blocks, g.threads, n_words, chunk, masks.as_ptr(), chunk_offset.as_mut_ptr())
        };
        Ok(())
    }

    unsafe fn spike_scan_groups(
        &mut self,
        g: Grid,
        n_chunks: u32,
        group: u32,
        chunk_offset: &mut Vec<u64>,
        group_offset: &mut Vec<u64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::spike_scan_groups(
                g.blocks,
                g.threads,
                n_chunks,
                group,
                chunk_offset.as_mut_ptr(),
                group_offset.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn spike_scan_tops(
        &mut self,
        g: Grid,
        n_groups: u32,
        k: u32,
        group_offset: &mut Vec<u64>,
        rec_base: &mut Vec<u64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::spike_scan_tops(g.blocks, g.threads, n_groups, k, group_offset.as_mut_ptr(), rec_base.as_mut_ptr())
        };
        Ok(())
    }

    unsafe fn spike_scatter(
        &mut self,
        g: Grid,
        n_words: u32,
        chunk: u32,
        group: u32,
        masks: &Vec<u64>,
        chunk_offset: &Vec<u64>,
        group_offset: &Vec<u64>,
        rec_spikes: &mut Vec<u32>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::spike_scatter(
                g.blocks,
                g.threads,
                n_words,
                chunk,
                group,
                masks.as_ptr(),
                chunk_offset.as_ptr(),
                group_offset.as_ptr(),
                rec_spikes.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn spike_pieces(
        &mut self,
        g: Grid,
        max_spikes: u32,
        k: u32,
        rec_base: &Vec<u64>,
        rec_spikes: &Vec<u32>,
        row_segments: &Vec<u32>,
        seg_piece: &Vec<u64>,
        work_start: &mut Vec<u64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::spike_pieces(
                g.blocks,
                g.threads,
                max_spikes,
                k,
                rec_base.as_ptr(),
                rec_spikes.as_ptr(),
                row_segments.as_ptr(),
                seg_piece.as_ptr(),
                work_start.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn spike_work(
        &mut self,
        g: Grid,
        max_spikes: u32,
        chunk: u32,
        k: u32,
        rec_base: &Vec<u64>,
        work_start: &mut Vec<u64>,
        work_chunk: &mut Vec<u64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::spike_work(
                g.blocks,
                g.threads,
                max_spikes,
                chunk,
                k,
                rec_base.as_ptr(),
                work_start.as_mut_ptr(),
                work_chunk.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn spike_work_base(
        &mut self,
        g: Grid,
        max_spikes: u32,
        chunk: u32,
        group: u32,
        k: u32,
        rec_base: &Vec<u64>,
        work_chunk: &Vec<u64>,
        work_group: &Vec<u64>,
        work_start: &mut Vec<u64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe {
            raw::spike_work_base(
                g.blocks,
                g.threads,
                max_spikes,
                chunk,
                group,
                k,
                rec_base.as_ptr(),
                work_chunk.as_ptr(),
                work_group.as_ptr(),
                work_start.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn deliver_spikes(
        &mut self,
        g: Grid,
        rec_base: &Vec<u64>,
        k: u32,
        rec_spikes: &Vec<u32>,
        work_start: &Vec<u64>,
        work_total: &Vec<u64>,
        row_segments: &Vec<u32>,
        seg_piece: &Vec<u64>,
        segment_start: &Vec<u64>,
        segment_delay: &Vec<u16>,
        segment_receptor: &Vec<u8>,
        targets: &Vec<u32>,
        weights: Option<&Vec<f32>>,
        weight_index: Option<&Vec<u16>>,
        fixed_table: Option<&Vec<i64>>,
        scale: f64,
        step: u64,
        slots: u32,
        n_pad: u32,
        ring: &mut Vec<i64>,
    ) -> Result<(), Infallible> {
        let f = if self.broken_delivery { raw::deliver_spikes_broken_for_test } else { raw::deliver_spikes };
        // SAFETY: as in `gather_input`; absent weight arrays are null pointers, as the kernel expects.
        unsafe {
            f(
                g.blocks,
                g.threads,
                rec_base.as_ptr(),
                k,
                rec_spikes.as_ptr(),
                work_start.as_ptr(),
                work_total.as_ptr(),
                row_segments.as_ptr(),
                seg_piece.as_ptr(),
                segment_start.as_ptr(),
                segment_delay.as_ptr(),
                segment_receptor.as_ptr(),
                targets.as_ptr(),
                opt(weights),
                opt(weight_index),
                opt(fixed_table),
                scale,
                step,
                slots,
                n_pad,
                ring.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn deliver_graded(
        &mut self,
        g: Grid,
        n_neurons: u32,
        activity: &Vec<f64>,
        row_segments: &Vec<u32>,
        segment_start: &Vec<u64>,
        segment_delay: &Vec<u16>,
        segment_receptor: &Vec<u8>,
        targets: &Vec<u32>,
        weights: Option<&Vec<f32>>,
        weight_index: Option<&Vec<u16>>,
        weight_values: Option<&Vec<f32>>,
        scale: f64,
        step: u64,
        slots: u32,
        n_pad: u32,
        ring: &mut Vec<i64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `deliver_spikes`.
        unsafe {
            raw::deliver_graded(
                g.blocks,
                g.threads,
                n_neurons,
                activity.as_ptr(),
                row_segments.as_ptr(),
                segment_start.as_ptr(),
                segment_delay.as_ptr(),
                segment_receptor.as_ptr(),
                targets.as_ptr(),
                opt(weights),
                opt(weight_index),
                opt(weight_values),
                scale,
                step,
                slots,
                n_pad,
                ring.as_mut_ptr(),
            )
        };
        Ok(())
    }

    unsafe fn silence_activity(
        &mut self,
        g: Grid,
        n_neurons: u32,
        silenced: &Vec<u64>,
        activity: &mut Vec<f64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe { raw::silence_activity(g.blocks, g.threads, n_neurons, silenced.as_ptr(), activity.as_mut_ptr()) };
        Ok(())
    }

    unsafe fn snapshot_v(
        &mut self,
        g: Grid,
        n_pad: u32,
        n_state: u32,
        state: &Vec<f64>,
        v_prev: &mut Vec<f64>,
    ) -> Result<(), Infallible> {
        // SAFETY: as in `gather_input`.
        unsafe { raw::snapshot_v(g.blocks, g.threads, n_pad, n_state, state.as_ptr(), v_prev.as_mut_ptr()) };
        Ok(())
    }
}
