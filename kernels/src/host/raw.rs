//! Raw entry points of the host-compiled step kernels (`host/kernels_host*.cpp`, one `NT_HOST_ENTRY` each): each
//! launches the CUDA C kernel of the same name on the sequential host launcher with the grid it is given
//! (`blocks` blocks of `threads` threads) and the kernel's parameter pack (`cuda/packs.cuh`, mirrored in
//! [`crate::packs`]). They exist so that a caller can issue the very launches a GPU backend issues — same grid,
//! same pack — on the host (`neurotwin_sim::launch`); callers reach them through the [`crate::packs::KernelFn`]
//! constants, and the safe wrappers of [`crate::host`] call them with a grid of their own.
//!
//! # Safety
//! Every function here is `unsafe`: the caller guarantees what the kernel's CUDA launch would need — `args`
//! points to a pack whose pointers address live allocations at least as long as the kernel indexes for the
//! pack's sizes (the kernel sources and `cuda/packs.cuh` state the extents), mutable pointers are not aliased by
//! any other pointer of the pack, and the grid covers the elements the kernel is documented to process (one
//! thread per element with bounds checks, or the fixed grid of the delivery kernels). Pointers documented as
//! optional may be null.

use std::ffi::c_uint;

use crate::packs::*;

macro_rules! host_entries {
    ($($link:literal => $name:ident($pack:ty);)*) => {
        unsafe extern "C" {
            $(
                #[doc = concat!("The host build of `", stringify!($name), "` (`", $link, "`).")]
                #[link_name = $link]
                pub fn $name(blocks: c_uint, threads: c_uint, args: *const $pack);
            )*
        }
    };
}

host_entries! {
    "nt_host_clock_tick" => clock_tick(ClockTickArgs);
    "nt_host_gather_input" => gather_input(GatherInputArgs);
    "nt_host_stimulus_input" => stimulus_input(StimulusInputArgs);
    "nt_host_spike_train_input" => spike_train_input(SpikeTrainInputArgs);
    "nt_host_gap_current" => gap_current(GapCurrentArgs);
    "nt_host_gap_conductance" => gap_conductance(GapConductanceArgs);
    "nt_host_apply_channel_gain" => apply_channel_gain(ApplyChannelGainArgs);
    "nt_host_apply_silence_and_flag" => apply_silence_and_flag(ApplySilenceAndFlagArgs);
    "nt_host_snapshot_v" => snapshot_v(SnapshotVArgs);
    "nt_host_stdp_post_spikes" => stdp_post_spikes(StdpArgs);
    "nt_host_stdp_potentiate" => stdp_potentiate(StdpArgs);
    "nt_host_stdp_depress_deliver" => stdp_depress_deliver(StdpArgs);
    "nt_host_stdp_dop_arrivals" => stdp_dop_arrivals(StdpArgs);
    "nt_host_stdp_dop_count" => stdp_dop_count(StdpArgs);
    "nt_host_stdp_dop_update_all" => stdp_dop_update_all(StdpArgs);
    "nt_host_stdp_dop_restart" => stdp_dop_restart(StdpArgs);
    "nt_host_spike_masks" => spike_masks(SpikeMasksArgs);
    "nt_host_spike_chunk_totals" => spike_chunk_totals(SpikeChunkTotalsArgs);
    "nt_host_spike_scan_groups" => spike_scan_groups(SpikeScanGroupsArgs);
    "nt_host_spike_scan_tops" => spike_scan_tops(SpikeScanTopsArgs);
    "nt_host_spike_scatter" => spike_scatter(SpikeScatterArgs);
    "nt_host_silence_activity" => silence_activity(SilenceActivityArgs);
    "nt_host_spike_pieces" => spike_pieces(SpikePiecesArgs);
    "nt_host_spike_work" => spike_work(SpikeWorkArgs);
    "nt_host_spike_work_base" => spike_work_base(SpikeWorkBaseArgs);
    "nt_host_deliver_spikes" => deliver_spikes(DeliverSpikesArgs);
    "nt_host_deliver_spikes_broken" => deliver_spikes_broken_for_test(DeliverSpikesArgs);
    "nt_host_deliver_graded" => deliver_graded(DeliverGradedArgs);
    "nt_host_lif_exp_update" => lif_exp_update(ModelArgs);
    "nt_host_lif_exp_update_broken" => lif_exp_update_broken_for_test(ModelArgs);
    "nt_host_lif_delta_update" => lif_delta_update(ModelArgs);
    "nt_host_izhikevich_update" => izhikevich_update(ModelArgs);
    "nt_host_adex_update" => adex_update(ModelArgs);
    "nt_host_graded_update" => graded_update(ModelArgs);
    "nt_host_lif_cond_exp_update" => lif_cond_exp_update(ModelArgs);
    "nt_host_lif_exp_step" => lif_exp_step(NeuronStepArgs);
    "nt_host_lif_delta_step" => lif_delta_step(NeuronStepArgs);
    "nt_host_izhikevich_step" => izhikevich_step(NeuronStepArgs);
    "nt_host_adex_step" => adex_step(NeuronStepArgs);
    "nt_host_graded_step" => graded_step(NeuronStepArgs);
    "nt_host_lif_cond_exp_step" => lif_cond_exp_step(NeuronStepArgs);
}
