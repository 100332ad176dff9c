// Host build of the network kernels (cuda/network.cu, cuda/spikes.cu) and of the lif_delta model
// (cuda/lif_delta.cu): the shim, the .cu sources unchanged, then extern "C" entry points that launch each
// kernel with the sequential launcher. Linked into the crate by build.rs.
#include "shim.h"

#include "../cuda/network.cu"
#include "../cuda/lif_delta.cu"
#include "../cuda/spikes.cu"

// Every step kernel's entry point takes the launch grid (`blocks` x `threads`) and its parameter pack: the
// caller computes the grid exactly as it does for the GPU launch (`neurotwin_sim::launch`).
#define NT_LAUNCH_1D(n, body) \
    nt_launch(nt_grid_1d((n), NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { body; })

NT_HOST_ENTRY(clock_tick, nt_clock_tick_args)
NT_HOST_ENTRY(gather_input, nt_gather_input_args)
NT_HOST_ENTRY(stimulus_input, nt_stimulus_input_args)
NT_HOST_ENTRY(spike_train_input, nt_spike_train_input_args)
NT_HOST_ENTRY(gap_current, nt_gap_current_args)
NT_HOST_ENTRY(gap_conductance, nt_gap_conductance_args)
NT_HOST_ENTRY(apply_channel_gain, nt_apply_channel_gain_args)
NT_HOST_ENTRY(apply_silence_and_flag, nt_apply_silence_and_flag_args)
NT_HOST_ENTRY(snapshot_v, nt_snapshot_v_args)
NT_HOST_ENTRY(spike_masks, nt_spike_masks_args)
NT_HOST_ENTRY(spike_chunk_totals, nt_spike_chunk_totals_args)
NT_HOST_ENTRY(spike_scan_groups, nt_spike_scan_groups_args)
NT_HOST_ENTRY(spike_scan_tops, nt_spike_scan_tops_args)
NT_HOST_ENTRY(spike_scatter, nt_spike_scatter_args)
NT_HOST_ENTRY(silence_activity, nt_silence_activity_args)
NT_HOST_ENTRY(spike_pieces, nt_spike_pieces_args)
NT_HOST_ENTRY(spike_work, nt_spike_work_args)
NT_HOST_ENTRY(spike_work_base, nt_spike_work_base_args)
NT_HOST_ENTRY(deliver_spikes, nt_deliver_spikes_args)
NT_HOST_ENTRY(deliver_graded, nt_deliver_graded_args)
NT_HOST_ENTRY(lif_delta_update, nt_model_args)

extern "C" void nt_host_to_fixed_fill(unsigned int n, const double* x, double scale, long long* out) {
    NT_LAUNCH_1D(n, to_fixed_fill(n, x, scale, out));
}
NT_HOST_ENTRY(lif_delta_step, nt_neuron_step_args)
