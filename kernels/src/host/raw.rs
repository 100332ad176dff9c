//! Raw entry points of the host-compiled step kernels (`host/kernels_host*.cpp`): each launches the CUDA C
//! kernel of the same name on the sequential host launcher with the grid it is given (`blocks` blocks of
//! `threads` threads), followed by exactly the kernel's own arguments (the signatures in `cuda/network.cu`,
//! `cuda/spikes.cu` and `cuda/<model>.cu`). They exist so that a caller can issue the very launches a GPU
//! backend issues — same grid, same arguments — on the host (`neurotwin_sim::launch`); the safe wrappers of
//! [`crate::host`] call them with a grid of their own.
//!
//! # Safety
//! Every function here is `unsafe`: the caller guarantees what the kernel's CUDA launch would need — every
//! pointer addresses a live allocation at least as long as the kernel indexes for the given sizes (the
//! per-function notes and the kernel sources state the extents), mutable pointers are not aliased by any other
//! argument, and the grid covers the elements the kernel is documented to process (one thread per element
//! with bounds checks, or the fixed grid of the delivery kernels). Pointers documented as optional may be null.

use std::ffi::c_uint;

use super::StimulusParams;

unsafe extern "C" {
    /// `gather_input(n_pad, n_channels, slots, slot, ring, inv_scale, syn)`: threads `i < n_pad` move
    /// `ring[(c * slots + slot) * n_pad + i]` (fixed point) into `syn[(i / 64 * n_channels + c) * 64 + i % 64]`
    /// times `inv_scale`, clearing the ring entry.
    #[link_name = "nt_host_gather_input"]
    pub fn gather_input(
        blocks: c_uint,
        threads: c_uint,
        n_pad: c_uint,
        n_channels: c_uint,
        slots: c_uint,
        slot: c_uint,
        ring: *mut i64,
        inv_scale: f64,
        syn: *mut f64,
    );
    /// `stimulus_input(n_neurons, n_channels, step, seed, spiking, stim_ptr, stim_of, stimuli, syn, i_ext,
    /// forced)`: threads `i < n_neurons` apply the stimuli `stim_of[stim_ptr[i]..stim_ptr[i + 1]]`; they write
    /// `i_ext[i]`, add to `syn` in block `i / 64` and OR into `forced[i / 64]`.
    #[link_name = "nt_host_stimulus_input"]
    pub fn stimulus_input(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        n_channels: c_uint,
        step: u64,
        seed: u64,
        spiking: c_uint,
        stim_ptr: *const u32,
        stim_of: *const u32,
        stimuli: *const StimulusParams,
        syn: *mut f64,
        i_ext: *mut f64,
        forced: *mut u64,
    );
    /// `spike_train_input(n_trains, step, train_neuron, train_ptr, train_steps, forced)`: threads `k < n_trains`
    /// OR the bit of `train_neuron[k]` into `forced` if `train_steps[train_ptr[k]..train_ptr[k + 1]]` holds `step`.
    #[link_name = "nt_host_spike_train_input"]
    pub fn spike_train_input(
        blocks: c_uint,
        threads: c_uint,
        n_trains: c_uint,
        step: u64,
        train_neuron: *const u32,
        train_ptr: *const u64,
        train_steps: *const u32,
        forced: *mut u64,
    );
    /// `gap_current(n_neurons, row_ptr, partner, conductance, v_prev, i_ext)`: threads `i < n_neurons` add
    /// `Σ g_ij (v_prev[j] − v_prev[i])` over CSR row `i` to `i_ext[i]`.
    #[link_name = "nt_host_gap_current"]
    pub fn gap_current(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        row_ptr: *const u64,
        partner: *const u32,
        conductance: *const f32,
        v_prev: *const f64,
        i_ext: *mut f64,
    );
    /// `gap_conductance(n_neurons, row_ptr, partner, conductance, v_prev, gap_g, gap_gv)`: threads
    /// `i < n_neurons` write `gap_g[i] = Σ g_ij` and `gap_gv[i] = Σ g_ij v_prev[j]` over CSR row `i`.
    #[link_name = "nt_host_gap_conductance"]
    pub fn gap_conductance(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        row_ptr: *const u64,
        partner: *const u32,
        conductance: *const f32,
        v_prev: *const f64,
        gap_g: *mut f64,
        gap_gv: *mut f64,
    );
    /// `apply_channel_gain(n_neurons, n_channels, gain, syn)`: threads `i < n_neurons` scale their `syn`
    /// entries of channel `c` by `gain[c]` (channels whose gain is 1 are left alone).
    #[link_name = "nt_host_apply_channel_gain"]
    pub fn apply_channel_gain(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        n_channels: c_uint,
        gain: *const f64,
        syn: *mut f64,
    );
    /// `apply_silence_and_flag(n_neurons, silenced, spiked)`: threads `i < n_neurons` clear `spiked[i]` if bit
    /// `i % 64` of `silenced[i / 64]` is set.
    #[link_name = "nt_host_apply_silence_and_flag"]
    pub fn apply_silence_and_flag(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        silenced: *const u64,
        spiked: *mut u8,
    );
    /// `snapshot_v(n_pad, n_state, state, v_prev)`: threads `i < n_pad` copy state variable 0 of neuron `i`
    /// (`state[(i / 64) * n_state * 64 + i % 64]`) to `v_prev[i]`.
    #[link_name = "nt_host_snapshot_v"]
    pub fn snapshot_v(
        blocks: c_uint,
        threads: c_uint,
        n_pad: c_uint,
        n_state: c_uint,
        state: *const f64,
        v_prev: *mut f64,
    );
    /// `spike_masks(n_neurons, spiked, masks)`: threads `w < ceil(n_neurons / 64)` pack the flags of neurons
    /// `64 w ..` into `masks[w]`.
    #[link_name = "nt_host_spike_masks"]
    pub fn spike_masks(blocks: c_uint, threads: c_uint, n_neurons: c_uint, spiked: *const u8, masks: *mut u64);
    /// `spike_chunk_totals(n_words, chunk, masks, chunk_offset)`: threads `c < ceil(n_words / chunk)` write the
    /// number of set bits of their chunk of words to `chunk_offset[c]`.
    #[link_name = "nt_host_spike_chunk_totals"]
    pub fn spike_chunk_totals(
        blocks: c_uint,
        threads: c_uint,
        n_words: c_uint,
        chunk: c_uint,
        masks: *const u64,
        chunk_offset: *mut u64,
    );
    /// `spike_scan_groups(n_chunks, group, chunk_offset, group_offset)`: threads `g < ceil(n_chunks / group)`
    /// turn `chunk_offset[g * group ..][..group]` into an exclusive prefix sum within the group and write the
    /// group's total to `group_offset[g]`.
    #[link_name = "nt_host_spike_scan_groups"]
    pub fn spike_scan_groups(
        blocks: c_uint,
        threads: c_uint,
        n_chunks: c_uint,
        group: c_uint,
        chunk_offset: *mut u64,
        group_offset: *mut u64,
    );
    /// `spike_scan_tops(n_groups, k, group_offset, rec_base)`: thread 0 turns `group_offset[..n_groups]` into
    /// an exclusive prefix sum starting at `rec_base[k]` (0 and `rec_base[0] = 0` for `k = 0`) and writes
    /// `rec_base[k + 1]`.
    #[link_name = "nt_host_spike_scan_tops"]
    pub fn spike_scan_tops(
        blocks: c_uint,
        threads: c_uint,
        n_groups: c_uint,
        k: c_uint,
        group_offset: *mut u64,
        rec_base: *mut u64,
    );
    /// `spike_scatter(n_words, chunk, group, masks, chunk_offset, group_offset, rec_spikes)`: threads
    /// `c < ceil(n_words / chunk)` write the neuron ids of the set bits of their chunk, ascending, from
    /// `rec_spikes[group_offset[c / group] + chunk_offset[c]]` on.
    #[link_name = "nt_host_spike_scatter"]
    pub fn spike_scatter(
        blocks: c_uint,
        threads: c_uint,
        n_words: c_uint,
        chunk: c_uint,
        group: c_uint,
        masks: *const u64,
        chunk_offset: *const u64,
        group_offset: *const u64,
        rec_spikes: *mut u32,
    );
    /// `silence_activity(n_neurons, silenced, activity)`: threads `i < n_neurons` zero `activity[i]` if the
    /// neuron's bit of `silenced` is set.
    #[link_name = "nt_host_silence_activity"]
    pub fn silence_activity(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        silenced: *const u64,
        activity: *mut f64,
    );
    /// `spike_pieces(max_spikes, k, rec_base, rec_spikes, row_segments, seg_piece, work_start)`: threads
    /// `j <` window step `k`'s spike count (and `< max_spikes`) write the number of 32-synapse pieces of their
    /// spike's row to `work_start[j]`.
    #[link_name = "nt_host_spike_pieces"]
    pub fn spike_pieces(
        blocks: c_uint,
        threads: c_uint,
        max_spikes: c_uint,
        k: c_uint,
        rec_base: *const u64,
        rec_spikes: *const u32,
        row_segments: *const u32,
        seg_piece: *const u64,
        work_start: *mut u64,
    );
    /// `spike_work(max_spikes, chunk, k, rec_base, work_start, work_chunk)`: threads `c < ceil(max_spikes /
    /// chunk)` turn `work_start` of window step `k`'s spikes `c * chunk ..` into an exclusive prefix sum within
    /// their chunk and write the chunk's total to `work_chunk[c]` (0 past the step's spikes).
    #[link_name = "nt_host_spike_work"]
    pub fn spike_work(
        blocks: c_uint,
        threads: c_uint,
        max_spikes: c_uint,
        chunk: c_uint,
        k: c_uint,
        rec_base: *const u64,
        work_start: *mut u64,
        work_chunk: *mut u64,
    );
    /// `spike_work_base(max_spikes, chunk, group, k, rec_base, work_chunk, work_group, work_start)`: threads
    /// `j <` the step's spike count (and `< max_spikes`) add their chunk's scanned offset to `work_start[j]`.
    #[link_name = "nt_host_spike_work_base"]
    pub fn spike_work_base(
        blocks: c_uint,
        threads: c_uint,
        max_spikes: c_uint,
        chunk: c_uint,
        group: c_uint,
        k: c_uint,
        rec_base: *const u64,
        work_chunk: *const u64,
        work_group: *const u64,
        work_start: *mut u64,
    );
    /// `deliver_spikes(rec_base, k, rec_spikes, work_start, work_total, row_segments, seg_piece, segment_start,
    /// segment_delay, segment_receptor, targets, weights, weight_index, fixed_table, scale, step, slots, n_pad,
    /// ring)`: delivery of window step `k`'s spikes into the ring, one (spike, 32-synapse piece) item per warp
    /// over a fixed grid (`DELIVERY_BLOCKS` x `DELIVERY_THREADS`, a multiple of 32 threads per block); `work_start`
    /// / `work_total` as written by `spike_work`, the scans and `spike_work_base`. Exactly one of `weights` /
    /// (`weight_index`, `fixed_table`) is non-null.
    #[link_name = "nt_host_deliver_spikes"]
    pub fn deliver_spikes(
        blocks: c_uint,
        threads: c_uint,
        rec_base: *const u64,
        k: c_uint,
        rec_spikes: *const u32,
        work_start: *const u64,
        work_total: *const u64,
        row_segments: *const u32,
        seg_piece: *const u64,
        segment_start: *const u64,
        segment_delay: *const u16,
        segment_receptor: *const u8,
        targets: *const u32,
        weights: *const f32,
        weight_index: *const u16,
        fixed_table: *const i64,
        scale: f64,
        step: u64,
        slots: c_uint,
        n_pad: c_uint,
        ring: *mut i64,
    );
    /// [`deliver_spikes`] built with `NEUROTWIN_BREAK_FOR_TEST` (drops the last synapse of every segment); only
    /// for tests that prove a conformance check detects a broken kernel.
    #[link_name = "nt_host_deliver_spikes_broken"]
    pub fn deliver_spikes_broken_for_test(
        blocks: c_uint,
        threads: c_uint,
        rec_base: *const u64,
        k: c_uint,
        rec_spikes: *const u32,
        work_start: *const u64,
        work_total: *const u64,
        row_segments: *const u32,
        seg_piece: *const u64,
        segment_start: *const u64,
        segment_delay: *const u16,
        segment_receptor: *const u8,
        targets: *const u32,
        weights: *const f32,
        weight_index: *const u16,
        fixed_table: *const i64,
        scale: f64,
        step: u64,
        slots: c_uint,
        n_pad: c_uint,
        ring: *mut i64,
    );
    /// `deliver_graded(n_neurons, activity, row_segments, segment_start, segment_delay, segment_receptor,
    /// targets, weights, weight_index, weight_values, scale, step, slots, n_pad, ring)`: warp-cooperative
    /// delivery of every non-zero activity; the fixed delivery grid. Exactly one of `weights` /
    /// (`weight_index`, `weight_values`) is non-null.
    #[link_name = "nt_host_deliver_graded"]
    pub fn deliver_graded(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        activity: *const f64,
        row_segments: *const u32,
        segment_start: *const u64,
        segment_delay: *const u16,
        segment_receptor: *const u8,
        targets: *const u32,
        weights: *const f32,
        weight_index: *const u16,
        weight_values: *const f32,
        scale: f64,
        step: u64,
        slots: c_uint,
        n_pad: c_uint,
        ring: *mut i64,
    );
    /// `lif_exp_update(n_neurons, n_channels, state, param_set, p22, p20, e_l, theta, reset, i_e,
    /// refractory_steps, p11, p21, syn, i_ext, forced, spiked)` (`cuda/lif_exp.cu`): threads `i < n_neurons`.
    #[link_name = "nt_host_lif_exp_update"]
    pub fn lif_exp_update(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        n_channels: c_uint,
        state: *mut f64,
        param_set: *const u16,
        p22: *const f64,
        p20: *const f64,
        e_l: *const f64,
        theta: *const f64,
        reset: *const f64,
        i_e: *const f64,
        refractory_steps: *const u32,
        p11: *const f64,
        p21: *const f64,
        syn: *const f64,
        i_ext: *const f64,
        forced: *const u64,
        spiked: *mut u8,
    );
    /// [`lif_exp_update`] built with `NEUROTWIN_BREAK_FOR_TEST` (a reordered sum); only for tests.
    #[link_name = "nt_host_lif_exp_update_broken"]
    pub fn lif_exp_update_broken_for_test(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        n_channels: c_uint,
        state: *mut f64,
        param_set: *const u16,
        p22: *const f64,
        p20: *const f64,
        e_l: *const f64,
        theta: *const f64,
        reset: *const f64,
        i_e: *const f64,
        refractory_steps: *const u32,
        p11: *const f64,
        p21: *const f64,
        syn: *const f64,
        i_ext: *const f64,
        forced: *const u64,
        spiked: *mut u8,
    );
    /// `lif_delta_update(n_neurons, n_channels, state, param_set, p22, p20, e_l, theta, reset, i_e,
    /// refractory_steps, keep_refractory_input, syn, i_ext, forced, spiked)` (`cuda/lif_delta.cu`).
    #[link_name = "nt_host_lif_delta_update"]
    pub fn lif_delta_update(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        n_channels: c_uint,
        state: *mut f64,
        param_set: *const u16,
        p22: *const f64,
        p20: *const f64,
        e_l: *const f64,
        theta: *const f64,
        reset: *const f64,
        i_e: *const f64,
        refractory_steps: *const u32,
        keep_refractory_input: *const f64,
        syn: *const f64,
        i_ext: *const f64,
        forced: *const u64,
        spiked: *mut u8,
    );
    /// `izhikevich_update(n_neurons, n_channels, state, param_set, a, b, c, d, v_peak, i_e, n_sub, h_sub, syn,
    /// i_ext, forced, spiked)` (`cuda/izhikevich.cu`).
    #[link_name = "nt_host_izhikevich_update"]
    pub fn izhikevich_update(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        n_channels: c_uint,
        state: *mut f64,
        param_set: *const u16,
        a: *const f64,
        b: *const f64,
        c: *const f64,
        d: *const f64,
        v_peak: *const f64,
        i_e: *const f64,
        n_sub: *const u32,
        h_sub: *const f64,
        syn: *const f64,
        i_ext: *const f64,
        forced: *const u64,
        spiked: *mut u8,
    );
    /// `adex_update(n_neurons, n_channels, state, param_set, e_l, g_l, inv_c, v_th, g_l_delta_t, inv_delta_t, a,
    /// inv_tau_w, b, v_reset, v_peak, i_e, refractory_start, n_sub, h_sub, half_h_sub, decay_sub, syn, i_ext,
    /// forced, spiked)` (`cuda/adex.cu`).
    #[link_name = "nt_host_adex_update"]
    pub fn adex_update(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        n_channels: c_uint,
        state: *mut f64,
        param_set: *const u16,
        e_l: *const f64,
        g_l: *const f64,
        inv_c: *const f64,
        v_th: *const f64,
        g_l_delta_t: *const f64,
        inv_delta_t: *const f64,
        a: *const f64,
        inv_tau_w: *const f64,
        b: *const f64,
        v_reset: *const f64,
        v_peak: *const f64,
        i_e: *const f64,
        refractory_start: *const f64,
        n_sub: *const u32,
        h_sub: *const f64,
        half_h_sub: *const f64,
        decay_sub: *const f64,
        syn: *const f64,
        i_ext: *const f64,
        forced: *const u64,
        spiked: *mut u8,
    );
    /// `graded_update(n_neurons, n_channels, state, param_set, g_l, g_l_e_l, minus_h_over_c, beta, v_th, i_e,
    /// e_rev, syn, i_ext, gap_g, gap_gv, activity)` (`cuda/graded.cu`); `gap_g`/`gap_gv` may both be null.
    #[link_name = "nt_host_graded_update"]
    pub fn graded_update(
        blocks: c_uint,
        threads: c_uint,
        n_neurons: c_uint,
        n_channels: c_uint,
        state: *mut f64,
        param_set: *const u16,
        g_l: *const f64,
        g_l_e_l: *const f64,
        minus_h_over_c: *const f64,
        beta: *const f64,
        v_th: *const f64,
        i_e: *const f64,
        e_rev: *const f64,
        syn: *const f64,
        i_ext: *const f64,
        gap_g: *const f64,
        gap_gv: *const f64,
        activity: *mut f64,
    );
}
