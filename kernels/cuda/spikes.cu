// What a step emits, kept on the device: spike compaction into the per-window spike record, and delivery of
// spikes (spiking models) or graded activity (graded models) into the fixed-point delay ring. Mirrors the
// CPU backend (`neurotwin_sim::cpu`) bit for bit. No system headers (NVRTC).
//
// The spike record of a window of W steps: `rec_spikes` holds the ascending ids of the neurons that spiked in
// window step k at rec_spikes[rec_base[k] .. rec_base[k + 1]] (capacity W * n_neurons, so it never
// overflows); the host copies `rec_base` and `rec_spikes` back once per window, not once per step. Delivery
// reads its spike list straight from the record, so nothing crosses the bus in the step loop.
//
// Compaction of the spike flags (one byte per neuron, written by the model kernel) into the record, four
// launches without shared memory or warp intrinsics (so the host build runs the very same code):
//   a. spike_masks         one thread per 64-neuron word: the flags as a bit mask
//   b. spike_chunk_totals  one thread per chunk of `chunk` words: number of set bits
//   c. spike_scan_chunks   one thread: exclusive scan of the chunk totals from rec_base[k]; rec_base[k + 1]
//   d. spike_scatter       one thread per chunk: the chunk's neuron ids, ascending, at its offset
// The chunk size is chosen so that there are at most 1024 chunks (`neurotwin_kernels::compaction_chunk`).
//
// Delivery is warp-cooperative: warp w of the grid takes spikes w, w + n_warps, ... of the list and its 32
// lanes stride over each segment of the spiking neuron's row, so consecutive lanes read consecutive targets
// and weights (coalesced) and add with 64-bit integer atomics (order-independent, hence deterministic). The
// grid is fixed (it does not depend on the number of spikes, which only the device knows); blockDim.x must be
// a multiple of 32.
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
NT_KERNEL void spike_masks(unsigned int n_neurons, const unsigned char* spiked, unsigned long long* masks) {
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
NT_KERNEL void spike_chunk_totals(unsigned int n_words, unsigned int chunk, const unsigned long long* masks,
                                  unsigned long long* chunk_offset) {
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

// c. A single thread: chunk_offset becomes the exclusive prefix sum of the chunk totals, starting at the record
// position of window step k (rec_base[k]; 0 for k = 0, which also sets rec_base[0]); rec_base[k + 1] is the
// end of step k's spikes.
NT_KERNEL void spike_scan_chunks(unsigned int n_chunks, unsigned int k, unsigned long long* chunk_offset,
                                 unsigned long long* rec_base) {
    if (blockIdx.x * blockDim.x + threadIdx.x != 0) {
        return;
    }
    unsigned long long at = 0;
    if (k == 0) {
        rec_base[0] = 0;
    } else {
        at = rec_base[k];
    }
    for (unsigned int c = 0; c < n_chunks; ++c) {
        const unsigned long long total = chunk_offset[c];
        chunk_offset[c] = at;
        at += total;
    }
    rec_base[k + 1u] = at;
}

// d. One thread per chunk c: writes the ids of the set bits of its words, ascending, to
// rec_spikes[chunk_offset[c] ...].
NT_KERNEL void spike_scatter(unsigned int n_words, unsigned int chunk, const unsigned long long* masks,
                             const unsigned long long* chunk_offset, unsigned int* rec_spikes) {
    const unsigned int c = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int n_chunks = (n_words + chunk - 1u) / chunk;
    if (c >= n_chunks) {
        return;
    }
    const unsigned int end = (c + 1u) * chunk < n_words ? (c + 1u) * chunk : n_words;
    unsigned long long at = chunk_offset[c];
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

// Adds the fixed-point weights of the synapses of one row (presynaptic neuron `pre`) to the ring, this lane
// taking synapses lane, lane + 32, ... of each segment. `amount` multiplies the weight before the conversion
// (graded transmission); for spikes (amount 1) a table is used in its pre-converted fixed-point form.
static __device__ __forceinline__ void nt_deliver_row(unsigned int pre, unsigned int lane, bool graded,
                                                      double amount, const unsigned int* row_segments,
                                                      const unsigned long long* segment_start,
                                                      const unsigned short* segment_delay,
                                                      const unsigned char* segment_receptor,
                                                      const unsigned int* targets, const float* weights,
                                                      const unsigned short* weight_index,
                                                      const float* weight_values, const long long* fixed_table,
                                                      double scale, unsigned long long step, unsigned int slots,
                                                      unsigned int n_pad, long long* ring) {
    for (unsigned int s = row_segments[pre]; s < row_segments[pre + 1u]; ++s) {
        const unsigned int slot = (unsigned int)((step + segment_delay[s]) % slots);
        long long* row = ring + ((unsigned long long)segment_receptor[s] * slots + slot) * n_pad;
        unsigned long long end = segment_start[s + 1u];
#ifdef NEUROTWIN_BREAK_FOR_TEST
        // Deliberate off-by-one (the last synapse of every segment is dropped): used only to prove that the
        // backend conformance test detects a broken delivery.
        end -= 1;
#endif
        for (unsigned long long k = segment_start[s] + lane; k < end; k += NT_WARP) {
            long long x;
            if (graded) {
                const double w = weights ? (double)weights[k] : (double)weight_values[weight_index[k]];
                x = nt_spk_to_fixed(__dmul_rn(w, amount), scale);
            } else {
                x = weights ? nt_spk_to_fixed((double)weights[k], scale) : fixed_table[weight_index[k]];
            }
            atomicAdd((unsigned long long*)&row[targets[k]], (unsigned long long)x);
        }
    }
}

// Delivers the spikes of window step k (rec_spikes[rec_base[k] .. rec_base[k + 1]]): for each segment of a
// spiking neuron's row (receptor, delay, targets segment_start[s] .. segment_start[s + 1]) adds each synapse's
// fixed-point weight to ring[(receptor * slots + (step + delay) % slots) * n_pad + target]. Weights are dense
// (weights[k], f32, converted here) or a table (fixed_table[weight_index[k]], converted on the host with the
// same rounding): exactly one of `weights` / `weight_index` is non-null.
NT_KERNEL void deliver_spikes(const unsigned long long* rec_base, unsigned int k, const unsigned int* rec_spikes,
                              const unsigned int* row_segments, const unsigned long long* segment_start,
                              const unsigned short* segment_delay, const unsigned char* segment_receptor,
                              const unsigned int* targets, const float* weights, const unsigned short* weight_index,
                              const long long* fixed_table, double scale, unsigned long long step,
                              unsigned int slots, unsigned int n_pad, long long* ring) {
    const unsigned long long t = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int lane = (unsigned int)(t % NT_WARP);
    const unsigned long long n_warps = (unsigned long long)gridDim.x * blockDim.x / NT_WARP;
    const unsigned long long end = rec_base[k + 1u];
    for (unsigned long long j = rec_base[k] + t / NT_WARP; j < end; j += n_warps) {
        nt_deliver_row(rec_spikes[j], lane, false, 1.0, row_segments, segment_start, segment_delay,
                       segment_receptor, targets, weights, weight_index, (const float*)0, fixed_table, scale, step,
                       slots, n_pad, ring);
    }
}

// Graded transmission: every neuron i < n_neurons whose activity is not 0 sends weight * activity[i] over
// its row (warp w takes neurons w, w + n_warps, ...). Weights are dense (weights[k]) or a table
// (weight_values[weight_index[k]], f32): exactly one of `weights` / `weight_index` is non-null.
NT_KERNEL void deliver_graded(unsigned int n_neurons, const double* activity, const unsigned int* row_segments,
                              const unsigned long long* segment_start, const unsigned short* segment_delay,
                              const unsigned char* segment_receptor, const unsigned int* targets,
                              const float* weights, const unsigned short* weight_index, const float* weight_values,
                              double scale, unsigned long long step, unsigned int slots, unsigned int n_pad,
                              long long* ring) {
    const unsigned long long t = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int lane = (unsigned int)(t % NT_WARP);
    const unsigned long long n_warps = (unsigned long long)gridDim.x * blockDim.x / NT_WARP;
    for (unsigned long long i = t / NT_WARP; i < n_neurons; i += n_warps) {
        const double a = activity[i];
        if (a == 0.0) {
            continue;
        }
        nt_deliver_row((unsigned int)i, lane, true, a, row_segments, segment_start, segment_delay,
                       segment_receptor, targets, weights, weight_index, weight_values, (const long long*)0, scale,
                       step, slots, n_pad, ring);
    }
}

// One thread per neuron: a silenced graded neuron (bit i % 64 of silenced[i / 64]) transmits nothing.
NT_KERNEL void silence_activity(unsigned int n_neurons, const unsigned long long* silenced, double* activity) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_neurons) {
        return;
    }
    if ((silenced[i / NT_SPK_LANES] >> (i % NT_SPK_LANES)) & 1ull) {
        activity[i] = 0.0;
    }
}
