// What a step emits, kept on the device: spike compaction into the per-window spike record, and delivery of
// spikes (spiking models) or graded activity (graded models) into the fixed-point delay ring. Mirrors the
// CPU backend (`neurotwin_sim::cpu`) bit for bit. No system headers (NVRTC).
//
// The spike record of a window of W steps: `rec_spikes` holds the ascending ids of the neurons that spiked in
// window step k at rec_spikes[rec_base[k] .. rec_base[k + 1]] (capacity W * n_neurons, so it never
// overflows); the host copies `rec_base` and `rec_spikes` back once per window, not once per step. Delivery
// reads its spike list straight from the record, so nothing crosses the bus in the step loop.
//
// Compaction of the spike flags (one byte per neuron, written by the model kernel) into the record: a
// hierarchical scan in five launches, one thread per item and no shared memory, warp intrinsics or
// __syncthreads (so the host build, which runs blocks one after another, runs the very same code):
//   a. spike_masks         one thread per 64-neuron word: the flags as a bit mask
//   b. spike_chunk_totals  one thread per chunk of `chunk` words: number of set bits
//   c. spike_scan_groups   one thread per group of `group` chunks: exclusive scan within the group, group total
//   d. spike_scan_tops     one thread: exclusive scan of the group totals from rec_base[k]; rec_base[k + 1]
//   e. spike_scatter       one thread per chunk: the chunk's neuron ids, ascending, at group base + chunk offset
// `chunk` and `group` (`neurotwin_kernels::compaction_chunk` / `compaction_group`) keep every thread's loop at
// most 1024 items (words, chunk totals or group totals) for up to 2^32 neurons (2^26 words): chunk =
// max(4, ceil(n_words / 2^20)) <= 64 words, so at most 2^20 chunks; group = max(4, ceil(sqrt(n_chunks)))
// <= 1024, so at most 1024 groups for the single thread of d.
//
// Spike delivery (f–j below) spreads the (spike, 32-synapse piece) pairs of a step over every warp of a fixed
// grid. Graded delivery is warp-per-neuron: warp w of the grid takes neurons w, w + n_warps, ... and its 32
// lanes stride over each segment of the neuron's row. Consecutive lanes read consecutive targets and weights
// (coalesced) and add with 64-bit integer atomics (order-independent, hence deterministic). The delivery grids
// are fixed; blockDim.x must be a multiple of 32.
//
// Every kernel takes one parameter pack by value (`packs.cuh`); the window step k and the simulation step are
// read from the step clock in device memory (`nt_clock`: clock->k, clock->step), so the launches of a step do
// not change from one step to the next (see network.cu).
#include "packs.cuh"

#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#define NT_SPK_LANES 64u
#define NT_WARP 32u

// The fixed-point value of a weight: round-to-nearest-even of w * scale (`DeliveryScale::to_fixed`).
static __device__ __forceinline__ long long nt_spk_to_fixed(double w, double scale) {
    return __double2ll_rn(__dmul_rn(w, scale));
}

// a. One thread per word w < ceil(n_neurons / 64): masks[w] bit l = spiked[w * 64 + l] != 0.
NT_KERNEL void spike_masks(const nt_spike_masks_args a) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned char* spiked = a.spiked;
    unsigned long long* masks = a.masks;
    const unsigned int w = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int n_words = (n_neurons + NT_SPK_LANES - 1u) / NT_SPK_LANES;
    if (w >= n_words) {
        return;
    }
    const unsigned int first = w * NT_SPK_LANES;
    const unsigned int lanes = n_neurons - first < NT_SPK_LANES ? n_neurons - first : NT_SPK_LANES;
    unsigned long long m = 0;
    for (unsigned int l = 0; l < lanes; ++l) {
        if (spiked[first + l] != 0) {
            m |= 1ull << l;
        }
    }
    masks[w] = m;
}

// b. One thread per chunk c: chunk_offset[c] = number of set bits in masks[c * chunk .. (c + 1) * chunk).
NT_KERNEL void spike_chunk_totals(const nt_spike_chunk_totals_args a) {
    const unsigned int n_words = a.n_words;
    const unsigned int chunk = a.chunk;
    const unsigned long long* masks = a.masks;
    unsigned long long* chunk_offset = a.chunk_offset;
    const unsigned int c = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int n_chunks = (n_words + chunk - 1u) / chunk;
    if (c >= n_chunks) {
        return;
    }
    const unsigned int end = (c + 1u) * chunk < n_words ? (c + 1u) * chunk : n_words;
    unsigned long long total = 0;
    for (unsigned int w = c * chunk; w < end; ++w) {
        total += (unsigned long long)__popcll(masks[w]);
    }
    chunk_offset[c] = total;
}

// c. One thread per group g of `group` chunk totals: chunk_offset[g * group .. (g + 1) * group) becomes the
// exclusive prefix sum within the group, and group_offset[g] the group's total.
NT_KERNEL void spike_scan_groups(const nt_spike_scan_groups_args a) {
    const unsigned int n_chunks = a.n_chunks;
    const unsigned int group = a.group;
    unsigned long long* chunk_offset = a.chunk_offset;
    unsigned long long* group_offset = a.group_offset;
    const unsigned int g = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int n_groups = (n_chunks + group - 1u) / group;
    if (g >= n_groups) {
        return;
    }
    const unsigned int end = (g + 1u) * group < n_chunks ? (g + 1u) * group : n_chunks;
    unsigned long long at = 0;
    for (unsigned int c = g * group; c < end; ++c) {
        const unsigned long long total = chunk_offset[c];
        chunk_offset[c] = at;
        at += total;
    }
    group_offset[g] = at;
}

// d. A single thread: group_offset becomes the exclusive prefix sum of the group totals, starting at the record
// position of window step k (rec_base[k]; 0 for k = 0, which also sets rec_base[0]); rec_base[k + 1] is the
// end of step k's spikes. k = clock->k, or 0 when clock is null (the per-step work scan, h below).
NT_KERNEL void spike_scan_tops(const nt_spike_scan_tops_args a) {
    if (blockIdx.x * blockDim.x + threadIdx.x != 0) {
        return;
    }
    const unsigned int n_groups = a.n_groups;
    const unsigned int k = a.clock ? a.clock->k : 0u;
    unsigned long long* group_offset = a.group_offset;
    unsigned long long* rec_base = a.rec_base;
    unsigned long long at = 0;
    if (k == 0) {
        rec_base[0] = 0;
    } else {
        at = rec_base[k];
    }
    for (unsigned int g = 0; g < n_groups; ++g) {
        const unsigned long long total = group_offset[g];
        group_offset[g] = at;
        at += total;
    }
    rec_base[k + 1u] = at;
}

// e. One thread per chunk c: writes the ids of the set bits of its words, ascending, to
// rec_spikes[group_offset[c / group] + chunk_offset[c] ...].
NT_KERNEL void spike_scatter(const nt_spike_scatter_args a) {
    const unsigned int n_words = a.n_words;
    const unsigned int chunk = a.chunk;
    const unsigned int group = a.group;
    const unsigned long long* masks = a.masks;
    const unsigned long long* chunk_offset = a.chunk_offset;
    const unsigned long long* group_offset = a.group_offset;
    unsigned int* rec_spikes = a.rec_spikes;
    const unsigned int c = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int n_chunks = (n_words + chunk - 1u) / chunk;
    if (c >= n_chunks) {
        return;
    }
    const unsigned int end = (c + 1u) * chunk < n_words ? (c + 1u) * chunk : n_words;
    unsigned long long at = group_offset[c / group] + chunk_offset[c];
    for (unsigned int w = c * chunk; w < end; ++w) {
        unsigned long long m = masks[w];
        while (m != 0) {
            const unsigned int l = (unsigned int)(__ffsll((long long)m) - 1);
            m &= m - 1ull;
            rec_spikes[at] = w * NT_SPK_LANES + l;
            at += 1;
        }
    }
}

// Adds the fixed-point value of weight * amount for the synapses of one row (presynaptic neuron `pre`) to the
// ring, this lane taking synapses lane, lane + 32, ... of each segment (graded transmission).
static __device__ __forceinline__ void nt_deliver_row(unsigned int pre, unsigned int lane, double amount,
                                                      const unsigned int* __restrict__ row_segments,
                                                      const unsigned long long* __restrict__ segment_start,
                                                      const unsigned short* __restrict__ segment_delay,
                                                      const unsigned char* __restrict__ segment_receptor,
                                                      const unsigned int* __restrict__ targets,
                                                      const float* __restrict__ weights,
                                                      const unsigned short* __restrict__ weight_index,
                                                      const float* __restrict__ weight_values, double scale,
                                                      unsigned long long step, unsigned int slots, unsigned int n_pad,
                                                      long long* __restrict__ ring) {
    const unsigned int s_end = __ldg(&row_segments[pre + 1u]);
    for (unsigned int s = __ldg(&row_segments[pre]); s < s_end; ++s) {
        const unsigned int slot = (unsigned int)((step + __ldg(&segment_delay[s])) % slots);
        long long* row = ring + ((unsigned long long)__ldg(&segment_receptor[s]) * slots + slot) * n_pad;
        const unsigned long long end = __ldg(&segment_start[s + 1u]);
        for (unsigned long long k = __ldg(&segment_start[s]) + lane; k < end; k += NT_WARP) {
            const double w =
                weights ? (double)__ldg(&weights[k]) : (double)__ldg(&weight_values[__ldg(&weight_index[k])]);
            const long long x = nt_spk_to_fixed(__dmul_rn(w, amount), scale);
            atomicAdd((unsigned long long*)&row[__ldg(&targets[k])], (unsigned long long)x);
        }
    }
}

// Spike delivery is spread over the whole grid in units of (spike, 32-synapse piece of one segment of its row):
// `seg_piece[s]` (static, `neurotwin_kernels::segment_pieces`) is the number of 32-synapse pieces of segments
// 0 .. s, so the pieces of row `pre` are seg_piece[row_segments[pre]] .. seg_piece[row_segments[pre + 1]]. Per
// step, the pieces of the S spikes of window step k are numbered by an exclusive scan over the spike list with
// the pattern of the compaction scan (spikes in chunks of `chunk` items, chunks in groups of `group`, see
// `neurotwin_kernels::work_chunk`):
//   f. spike_pieces      one thread per spike: work_start[j] = pieces of its row
//   g. spike_work        one thread per chunk of spikes: work_start[j] = pieces of the chunk's spikes before j;
//                        work_chunk[c] = the chunk's total (0 past the spike list)
//   h. spike_scan_groups and spike_scan_tops (c, d above, with k = 0: null clock) over work_chunk into work_group and
//      work_total[0 .. 2] (work_total[1] = pieces of the step)
//   i. spike_work_base   one thread per spike: work_start[j] += work_group[c / group] + work_chunk[c]
//   j. deliver_spikes    a grid-stride loop of warps over the pieces w < work_total[1]: the spike by binary search
//                        of work_start (last j with work_start[j] <= w), its segment by binary search of
//                        seg_piece within its row, then the warp's 32 lanes deliver the piece's (up to) 32
//                        consecutive synapses (coalesced) with 64-bit integer atomics (order-independent, hence
//                        deterministic). The grid is fixed (the number of pieces is known only on the device).
// The buffers hold the most any step can need: work_start n_neurons entries, work_chunk ceil(n_neurons / chunk),
// work_group ceil(that / group); threads past the step's spikes only write zero totals or return.

// f. One thread per spike j < rec_base[k + 1] - rec_base[k] (threads j < max_spikes; k = clock->k):
// work_start[j] = number of 32-synapse pieces of the row of rec_spikes[rec_base[k] + j].
NT_KERNEL void spike_pieces(const nt_spike_pieces_args a) {
    const unsigned int max_spikes = a.max_spikes;
    const unsigned int k = a.clock->k;
    const unsigned long long* __restrict__ rec_base = a.rec_base;
    const unsigned int* __restrict__ rec_spikes = a.rec_spikes;
    const unsigned int* __restrict__ row_segments = a.row_segments;
    const unsigned long long* __restrict__ seg_piece = a.seg_piece;
    unsigned long long* __restrict__ work_start = a.work_start;
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned long long base = __ldg(&rec_base[k]);
    if (j >= max_spikes || j >= __ldg(&rec_base[k + 1u]) - base) {
        return;
    }
    const unsigned int pre = __ldg(&rec_spikes[base + j]);
    work_start[j] = __ldg(&seg_piece[__ldg(&row_segments[pre + 1u])]) - __ldg(&seg_piece[__ldg(&row_segments[pre])]);
}

// g. One thread per chunk c of `chunk` spikes (threads c < ceil(max_spikes / chunk)): work_start[j] for the
// chunk's spikes j < rec_base[k + 1] - rec_base[k] (k = clock->k) becomes the exclusive prefix sum within the
// chunk, and work_chunk[c] the chunk's total (0 for a chunk past the step's spikes). The loads are independent
// of each other (only the running sum is carried), so they pipeline.
NT_KERNEL void spike_work(const nt_spike_work_args a) {
    const unsigned int max_spikes = a.max_spikes;
    const unsigned int chunk = a.chunk;
    const unsigned int k = a.clock->k;
    const unsigned long long* __restrict__ rec_base = a.rec_base;
    unsigned long long* __restrict__ work_start = a.work_start;
    unsigned long long* __restrict__ work_chunk = a.work_chunk;
    const unsigned int c = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int n_chunks = (max_spikes + chunk - 1u) / chunk;
    if (c >= n_chunks) {
        return;
    }
    const unsigned long long n_spikes = __ldg(&rec_base[k + 1u]) - __ldg(&rec_base[k]);
    const unsigned long long first = (unsigned long long)c * chunk;
    const unsigned long long last = first + chunk < n_spikes ? first + chunk : n_spikes;
    unsigned long long at = 0;
    for (unsigned long long j = first; j < last; ++j) {
        const unsigned long long pieces = work_start[j];
        work_start[j] = at;
        at += pieces;
    }
    work_chunk[c] = at;
}

// i. One thread per spike j < rec_base[k + 1] - rec_base[k] (threads j < max_spikes; k = clock->k): adds the
// offset of its chunk, work_group[(j / chunk) / group] + work_chunk[j / chunk], to work_start[j].
NT_KERNEL void spike_work_base(const nt_spike_work_base_args a) {
    const unsigned int max_spikes = a.max_spikes;
    const unsigned int chunk = a.chunk;
    const unsigned int group = a.group;
    const unsigned int k = a.clock->k;
    const unsigned long long* __restrict__ rec_base = a.rec_base;
    const unsigned long long* __restrict__ work_chunk = a.work_chunk;
    const unsigned long long* __restrict__ work_group = a.work_group;
    unsigned long long* __restrict__ work_start = a.work_start;
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= max_spikes || j >= __ldg(&rec_base[k + 1u]) - __ldg(&rec_base[k])) {
        return;
    }
    const unsigned int c = j / chunk;
    work_start[j] += __ldg(&work_group[c / group]) + __ldg(&work_chunk[c]);
}

// j. Delivers the spikes of window step k = clock->k (rec_spikes[rec_base[k] .. rec_base[k + 1]]) at step =
// clock->step, one 32-synapse piece per warp at a time: for each synapse of a spiking neuron's row (segment s:
// receptor, delay, targets segment_start[s] .. segment_start[s + 1]) adds its fixed-point weight to
// ring[(receptor * slots + (step + delay) % slots) * n_pad + target]. Weights are dense (weights[syn], f32,
// converted here) or a table (fixed_table[weight_index[syn]], converted on the host with the same rounding):
// exactly one of `weights` / `weight_index` is non-null. work_start / work_total as written by f–i.
NT_KERNEL void deliver_spikes(const nt_deliver_spikes_args a) {
    const unsigned long long* __restrict__ rec_base = a.rec_base;
    const unsigned int k = a.clock->k;
    const unsigned int* __restrict__ rec_spikes = a.rec_spikes;
    const unsigned long long* __restrict__ work_start = a.work_start;
    const unsigned long long* __restrict__ work_total = a.work_total;
    const unsigned int* __restrict__ row_segments = a.row_segments;
    const unsigned long long* __restrict__ seg_piece = a.seg_piece;
    const unsigned long long* __restrict__ segment_start = a.segment_start;
    const unsigned short* __restrict__ segment_delay = a.segment_delay;
    const unsigned char* __restrict__ segment_receptor = a.segment_receptor;
    const unsigned int* __restrict__ targets = a.targets;
    const float* __restrict__ weights = a.weights;
    const unsigned short* __restrict__ weight_index = a.weight_index;
    const long long* __restrict__ fixed_table = a.fixed_table;
    const double scale = a.scale;
    const unsigned long long step = a.clock->step;
    const unsigned int slots = a.slots;
    const unsigned int n_pad = a.n_pad;
    long long* __restrict__ ring = a.ring;
    const unsigned long long t = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int lane = (unsigned int)(t % NT_WARP);
    const unsigned long long n_warps = (unsigned long long)gridDim.x * blockDim.x / NT_WARP;
    const unsigned long long base = __ldg(&rec_base[k]);
    const unsigned long long n_spikes = __ldg(&rec_base[k + 1u]) - base;
    const unsigned long long total = __ldg(&work_total[1]);
    for (unsigned long long w = t / NT_WARP; w < total; w += n_warps) {
        // The spike: the last j with work_start[j] <= w (work_start[0] = 0; a spike without pieces shares its
        // start with the next one, so the last such j has pieces).
        unsigned long long lo = 0;
        unsigned long long hi = n_spikes;
        while (hi - lo > 1u) {
            const unsigned long long mid = lo + (hi - lo) / 2u;
            if (__ldg(&work_start[mid]) <= w) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        const unsigned int pre = __ldg(&rec_spikes[base + lo]);
        unsigned int s_lo = __ldg(&row_segments[pre]);
        unsigned int s_hi = __ldg(&row_segments[pre + 1u]);
        const unsigned long long piece = __ldg(&seg_piece[s_lo]) + (w - __ldg(&work_start[lo]));
        // The segment: the last s of the row with seg_piece[s] <= piece (empty segments likewise skipped).
        while (s_hi - s_lo > 1u) {
            const unsigned int mid = s_lo + (s_hi - s_lo) / 2u;
            if (__ldg(&seg_piece[mid]) <= piece) {
                s_lo = mid;
            } else {
                s_hi = mid;
            }
        }
        const unsigned int s = s_lo;
        unsigned long long end = __ldg(&segment_start[s + 1u]);
#ifdef NEUROTWIN_BREAK_FOR_TEST
        // Deliberate off-by-one (the last synapse of every segment is dropped): used only to prove that the
        // backend conformance test detects a broken delivery.
        end -= 1;
#endif
        const unsigned long long syn = __ldg(&segment_start[s]) + (piece - __ldg(&seg_piece[s])) * NT_WARP + lane;
        if (syn < end) {
            const unsigned int slot = (unsigned int)((step + __ldg(&segment_delay[s])) % slots);
            long long* row = ring + ((unsigned long long)__ldg(&segment_receptor[s]) * slots + slot) * n_pad;
            const long long x = weights ? nt_spk_to_fixed((double)__ldg(&weights[syn]), scale)
                                        : __ldg(&fixed_table[__ldg(&weight_index[syn])]);
            atomicAdd((unsigned long long*)&row[__ldg(&targets[syn])], (unsigned long long)x);
        }
    }
}

// Graded transmission at step = clock->step: every neuron i < n_neurons whose activity is not 0 sends
// weight * activity[i] over its row (warp w takes neurons w, w + n_warps, ...). Weights are dense (weights[k])
// or a table (weight_values[weight_index[k]], f32): exactly one of `weights` / `weight_index` is non-null.
NT_KERNEL void deliver_graded(const nt_deliver_graded_args a) {
    const unsigned int n_neurons = a.n_neurons;
    const double* activity = a.activity;
    const unsigned int* row_segments = a.row_segments;
    const unsigned long long* segment_start = a.segment_start;
    const unsigned short* segment_delay = a.segment_delay;
    const unsigned char* segment_receptor = a.segment_receptor;
    const unsigned int* targets = a.targets;
    const float* weights = a.weights;
    const unsigned short* weight_index = a.weight_index;
    const float* weight_values = a.weight_values;
    const double scale = a.scale;
    const unsigned long long step = a.clock->step;
    const unsigned int slots = a.slots;
    const unsigned int n_pad = a.n_pad;
    long long* ring = a.ring;
    const unsigned long long t = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int lane = (unsigned int)(t % NT_WARP);
    const unsigned long long n_warps = (unsigned long long)gridDim.x * blockDim.x / NT_WARP;
    for (unsigned long long i = t / NT_WARP; i < n_neurons; i += n_warps) {
        const double act = activity[i];
        if (act == 0.0) {
            continue;
        }
        nt_deliver_row((unsigned int)i, lane, act, row_segments, segment_start, segment_delay, segment_receptor,
                       targets, weights, weight_index, weight_values, scale, step, slots, n_pad, ring);
    }
}

// One thread per neuron: a silenced graded neuron (bit i % 64 of silenced[i / 64]) transmits nothing.
NT_KERNEL void silence_activity(const nt_silence_activity_args a) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned long long* silenced = a.silenced;
    double* activity = a.activity;
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_neurons) {
        return;
    }
    if ((silenced[i / NT_SPK_LANES] >> (i % NT_SPK_LANES)) & 1ull) {
        activity[i] = 0.0;
    }
}
