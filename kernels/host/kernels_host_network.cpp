// Host build of the network kernels (cuda/network.cu, cuda/spikes.cu) and of the lif_delta model
// (cuda/lif_delta.cu): the shim, the .cu sources unchanged, then extern "C" entry points that launch each
// kernel with the sequential launcher. Linked into the crate by build.rs.
#include "shim.h"

#include "../cuda/network.cu"
#include "../cuda/lif_delta.cu"
#include "../cuda/spikes.cu"

// Every step kernel's entry point takes the launch grid (`blocks` x `threads`) first: the caller computes it,
// exactly as it does for the GPU launch (`neurotwin_sim::launch`).
#define NT_LAUNCH_GRID(body) nt_launch(dim3(blocks), dim3(threads), [&] { body; })
#define NT_LAUNCH_1D(n, body) \
    nt_launch(nt_grid_1d((n), NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { body; })

extern "C" {

void nt_host_gather_input(unsigned int blocks, unsigned int threads, unsigned int n_pad, unsigned int n_channels,
                          unsigned int slots, unsigned int slot, long long* ring, double inv_scale, double* syn) {
    NT_LAUNCH_GRID(gather_input(n_pad, n_channels, slots, slot, ring, inv_scale, syn));
}

void nt_host_stimulus_input(unsigned int blocks, unsigned int threads, unsigned int n_neurons, unsigned int n_channels,
                            unsigned long long step, unsigned long long seed, unsigned int spiking,
                            const unsigned int* stim_ptr, const unsigned int* stim_of, const nt_stimulus* stimuli,
                            double* syn, double* i_ext, unsigned long long* forced) {
    NT_LAUNCH_GRID(stimulus_input(n_neurons, n_channels, step, seed, spiking, stim_ptr, stim_of, stimuli, syn, i_ext,
                                  forced));
}

void nt_host_spike_train_input(unsigned int blocks, unsigned int threads, unsigned int n_trains,
                               unsigned long long step, const unsigned int* train_neuron,
                               const unsigned long long* train_ptr, const unsigned int* train_steps,
                               unsigned long long* forced) {
    NT_LAUNCH_GRID(spike_train_input(n_trains, step, train_neuron, train_ptr, train_steps, forced));
}

void nt_host_gap_current(unsigned int blocks, unsigned int threads, unsigned int n_neurons,
                         const unsigned long long* row_ptr, const unsigned int* partner, const float* conductance,
                         const double* v_prev, double* i_ext) {
    NT_LAUNCH_GRID(gap_current(n_neurons, row_ptr, partner, conductance, v_prev, i_ext));
}

void nt_host_gap_conductance(unsigned int blocks, unsigned int threads, unsigned int n_neurons,
                             const unsigned long long* row_ptr, const unsigned int* partner, const float* conductance,
                             const double* v_prev, double* gap_g, double* gap_gv) {
    NT_LAUNCH_GRID(gap_conductance(n_neurons, row_ptr, partner, conductance, v_prev, gap_g, gap_gv));
}

void nt_host_apply_channel_gain(unsigned int blocks, unsigned int threads, unsigned int n_neurons,
                                unsigned int n_channels, const double* gain, double* syn) {
    NT_LAUNCH_GRID(apply_channel_gain(n_neurons, n_channels, gain, syn));
}

void nt_host_apply_silence_and_flag(unsigned int blocks, unsigned int threads, unsigned int n_neurons,
                                    const unsigned long long* silenced, unsigned char* spiked) {
    NT_LAUNCH_GRID(apply_silence_and_flag(n_neurons, silenced, spiked));
}

void nt_host_spike_pieces(unsigned int blocks, unsigned int threads, unsigned int max_spikes, unsigned int k,
                          const unsigned long long* rec_base, const unsigned int* rec_spikes,
                          const unsigned int* row_segments, const unsigned long long* seg_piece,
                          unsigned long long* work_start) {
    NT_LAUNCH_GRID(spike_pieces(max_spikes, k, rec_base, rec_spikes, row_segments, seg_piece, work_start));
}

void nt_host_spike_work(unsigned int blocks, unsigned int threads, unsigned int max_spikes, unsigned int chunk,
                        unsigned int k, const unsigned long long* rec_base, unsigned long long* work_start,
                        unsigned long long* work_chunk) {
    NT_LAUNCH_GRID(spike_work(max_spikes, chunk, k, rec_base, work_start, work_chunk));
}

void nt_host_spike_work_base(unsigned int blocks, unsigned int threads, unsigned int max_spikes, unsigned int chunk,
                             unsigned int group, unsigned int k, const unsigned long long* rec_base,
                             const unsigned long long* work_chunk, const unsigned long long* work_group,
                             unsigned long long* work_start) {
    NT_LAUNCH_GRID(spike_work_base(max_spikes, chunk, group, k, rec_base, work_chunk, work_group, work_start));
}

void nt_host_deliver_spikes(unsigned int blocks, unsigned int threads, const unsigned long long* rec_base,
                            unsigned int k, const unsigned int* rec_spikes, const unsigned long long* work_start,
                            const unsigned long long* work_total, const unsigned int* row_segments,
                            const unsigned long long* seg_piece, const unsigned long long* segment_start,
                            const unsigned short* segment_delay, const unsigned char* segment_receptor,
                            const unsigned int* targets, const float* weights, const unsigned short* weight_index,
                            const long long* fixed_table, double scale, unsigned long long step, unsigned int slots,
                            unsigned int n_pad, long long* ring) {
    NT_LAUNCH_GRID(deliver_spikes(rec_base, k, rec_spikes, work_start, work_total, row_segments, seg_piece,
                                  segment_start, segment_delay, segment_receptor, targets, weights, weight_index,
                                  fixed_table, scale, step, slots, n_pad, ring));
}

void nt_host_deliver_graded(unsigned int blocks, unsigned int threads, unsigned int n_neurons, const double* activity,
                            const unsigned int* row_segments, const unsigned long long* segment_start,
                            const unsigned short* segment_delay, const unsigned char* segment_receptor,
                            const unsigned int* targets, const float* weights, const unsigned short* weight_index,
                            const float* weight_values, double scale, unsigned long long step, unsigned int slots,
                            unsigned int n_pad, long long* ring) {
    nt_launch(dim3(blocks), dim3(threads), [&] {
        deliver_graded(n_neurons, activity, row_segments, segment_start, segment_delay, segment_receptor, targets,
                       weights, weight_index, weight_values, scale, step, slots, n_pad, ring);
    });
}

void nt_host_spike_masks(unsigned int blocks, unsigned int threads, unsigned int n_neurons, const unsigned char* spiked,
                         unsigned long long* masks) {
    NT_LAUNCH_GRID(spike_masks(n_neurons, spiked, masks));
}

void nt_host_spike_chunk_totals(unsigned int blocks, unsigned int threads, unsigned int n_words, unsigned int chunk,
                                const unsigned long long* masks, unsigned long long* chunk_offset) {
    NT_LAUNCH_GRID(spike_chunk_totals(n_words, chunk, masks, chunk_offset));
}

void nt_host_spike_scan_groups(unsigned int blocks, unsigned int threads, unsigned int n_chunks, unsigned int group,
                               unsigned long long* chunk_offset, unsigned long long* group_offset) {
    NT_LAUNCH_GRID(spike_scan_groups(n_chunks, group, chunk_offset, group_offset));
}

void nt_host_spike_scan_tops(unsigned int blocks, unsigned int threads, unsigned int n_groups, unsigned int k,
                             unsigned long long* group_offset, unsigned long long* rec_base) {
    NT_LAUNCH_GRID(spike_scan_tops(n_groups, k, group_offset, rec_base));
}

void nt_host_spike_scatter(unsigned int blocks, unsigned int threads, unsigned int n_words, unsigned int chunk,
                           unsigned int group, const unsigned long long* masks, const unsigned long long* chunk_offset,
                           const unsigned long long* group_offset, unsigned int* rec_spikes) {
    NT_LAUNCH_GRID(spike_scatter(n_words, chunk, group, masks, chunk_offset, group_offset, rec_spikes));
}

void nt_host_silence_activity(unsigned int blocks, unsigned int threads, unsigned int n_neurons,
                              const unsigned long long* silenced, double* activity) {
    NT_LAUNCH_GRID(silence_activity(n_neurons, silenced, activity));
}

void nt_host_snapshot_v(unsigned int blocks, unsigned int threads, unsigned int n_pad, unsigned int n_state,
                        const double* state, double* v_prev) {
    NT_LAUNCH_GRID(snapshot_v(n_pad, n_state, state, v_prev));
}

void nt_host_to_fixed_fill(unsigned int n, const double* x, double scale, long long* out) {
    NT_LAUNCH_1D(n, to_fixed_fill(n, x, scale, out));
}

void nt_host_lif_delta_update(unsigned int blocks, unsigned int threads, unsigned int n_neurons,
                              unsigned int n_channels, double* state, const unsigned short* param_set,
                              const double* p22, const double* p20, const double* e_l, const double* theta,
                              const double* reset, const double* i_e, const unsigned int* refractory_steps,
                              const double* keep_refractory_input, const double* syn, const double* i_ext,
                              const unsigned long long* forced, unsigned char* spiked) {
    NT_LAUNCH_GRID(lif_delta_update(n_neurons, n_channels, state, param_set, p22, p20, e_l, theta, reset, i_e,
                                    refractory_steps, keep_refractory_input, syn, i_ext, forced, spiked));
}

}  // extern "C"
