// The network part of one time step of the spiking engine (everything around the neuron model), mirroring
// the CPU backend (`neurotwin_sim::cpu`) bit for bit. A CUDA backend issues, per step:
//
//   1. gather_input          ring slot clock->step % slots -> syn (f64, [block][channel][lane]), clearing the
//                            slot
//   2. stimulus_input        Poisson counts into syn, currents into i_ext, activation into the forced mask
//                            (at clock->step)
//   2'. spike_train_input    prescribed spike trains (SONATA inputs) into the forced mask (only with trains;
//                            at clock->step)
//   3. gap_current           i_ext += sum_j g_ij (v_prev[j] - v_prev[i]) in CSR order (spiking models;
//                            graded models: gap_conductance, taken implicitly by graded_update)
//   4. apply_channel_gain    syn *= gain of the channel (only channels whose gain is not 1)
//   5. <model>_update        lif_exp / lif_delta / izhikevich / adex / graded_update (separate units)
//   6. apply_silence_and_flag  spike flags &= !silenced (graded models: silence_activity in spikes.cu)
//   7. compaction            spike flags -> ascending list in the window's spike record at window step
//                            clock->k (spikes.cu)
//   8. deliver_spikes        ring[receptor][(step + delay) % slots][target] += fixed-point weight (atomics;
//                            spikes.cu; graded models: deliver_graded), step = clock->step
//   9. snapshot_v            v_prev = V_m for the next step's gap junctions
//  10. clock_tick            clock->step += 1, clock->k += 1 (the last launch of every step)
//
// Every step kernel takes one parameter pack by value (`packs.cuh`). The simulation step and the window step k
// are not launch arguments: the kernels read them from the step clock in device memory (`nt_clock`), which
// clock_tick advances as the step's last launch. So the packs, hence the launches, are the same in every step,
// and a CUDA graph captured from one step replays any later step; the host writes the clock only when the
// sequence breaks (a new window sets k = 0; a step out of sequence sets step).
//
// The gain is a separate launch after the stimuli because the CPU multiplies the sum (ring input + Poisson
// input) by the gain; fusing it into gather_input would round differently.
//
// Fixed point: ring entries are 64-bit integers in units of 2^-S (inv_scale = 2^-S); sums of integers do
// not depend on the order of the atomic additions, so delivery is deterministic on a GPU.
//
// No system headers (NVRTC); headers are inlined by `nvrtc_source`.
#include "philox.cuh"
#include "packs.cuh"

#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#define NT_NET_LANES 64u

// Stimulus kinds (`neurotwin_sim::StimulusKind`).
#define NT_STIM_POISSON 0u
#define NT_STIM_CURRENT 1u
#define NT_STIM_ACTIVATION 2u

// Largest Poisson inversion index (`PoissonTable::invert`).
#define NT_POISSON_MAX_K 10000u

// One stimulus, precomputed on the host (64 bytes, no padding; mirrored by `#[repr(C)]` in Rust).
struct nt_stimulus {
    unsigned long long start;  // first active step
    unsigned long long stop;   // first inactive step
    double lambda_part;        // Poisson: mean of each part (events per step)
    double exp_neg;            // Poisson: e^-lambda_part (computed on the host)
    double p_event;            // activation: probability of an event per step
    double value;              // Poisson: weight per event; current / activation: amplitude (pA)
    unsigned int kind;         // NT_STIM_*
    unsigned int parts;        // Poisson: independent parts summed
    unsigned int stream;       // Philox stream word: stream id | stimulus index << 16
    unsigned int channel;      // Poisson: receptor channel
};

// `PoissonTable::invert`: smallest k with F(k) >= u.
static __device__ __forceinline__ unsigned int nt_poisson_invert(double lambda_part, double exp_neg, double u) {
    unsigned int k = 0;
    double p = exp_neg;
    double f = p;
    while (u > f && k < NT_POISSON_MAX_K) {
        k += 1;
        p = __ddiv_rn(__dmul_rn(p, lambda_part), (double)k);
        f = __dadd_rn(f, p);
        if (p == 0.0) {
            break;
        }
    }
    return k;
}

// `PoissonTable::sample` with draw_base 0: parts drawn in pairs from one 128-bit block each.
static __device__ __forceinline__ unsigned int nt_poisson_sample(const nt_stimulus& s, unsigned long long seed,
                                                                 unsigned int neuron, unsigned long long step) {
    if (s.lambda_part == 0.0) {
        return 0;
    }
    unsigned int total = 0;
    for (unsigned int part = 0; part < s.parts; part += 2) {
        const nt_u32x4 b = nt_rng_bits(seed, s.stream, neuron, step, part / 2);
        total += nt_poisson_invert(s.lambda_part, s.exp_neg, nt_u64_to_open_unit(b.w[0], b.w[1]));
        if (part + 1 < s.parts) {
            total += nt_poisson_invert(s.lambda_part, s.exp_neg, nt_u64_to_open_unit(b.w[2], b.w[3]));
        }
    }
    return total;
}

// 1. One thread per padded neuron i < n_pad: syn[(b * n_channels + c) * 64 + l] = ring[(c * slots + slot) *
// n_pad + i] * inv_scale with slot = clock->step % slots, and the ring entry is cleared.
NT_KERNEL void gather_input(const nt_gather_input_args a) {
    const unsigned int n_pad = a.n_pad;
    const unsigned int n_channels = a.n_channels;
    const unsigned int slots = a.slots;
    const unsigned int slot = (unsigned int)(a.clock->step % a.slots);
    long long* ring = a.ring;
    const double inv_scale = a.inv_scale;
    double* syn = a.syn;
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_pad) {
        return;
    }
    const unsigned int b = i / NT_NET_LANES;
    const unsigned int l = i % NT_NET_LANES;
    for (unsigned int c = 0; c < n_channels; ++c) {
        long long* r = &ring[((unsigned long long)c * slots + slot) * n_pad + i];
        const long long x = *r;
        *r = 0;
        syn[((unsigned long long)b * n_channels + c) * NT_NET_LANES + l] = __dmul_rn(__ll2double_rn(x), inv_scale);
    }
}

// 2. One thread per neuron i < n_neurons, over its stimuli stim_of[stim_ptr[i] .. stim_ptr[i + 1]] in order:
// Poisson adds count * weight to syn of its channel, a current adds to the neuron's external current, an
// activation event sets the neuron's bit in forced[i / 64] (spiking models; graded models get the amplitude
// as current). Writes i_ext[i] (0 without current); `forced` must be cleared before the launch. The step (the
// stimulus windows and the Philox counter) is clock->step.
NT_KERNEL void stimulus_input(const nt_stimulus_input_args a) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned int n_channels = a.n_channels;
    const unsigned long long step = a.clock->step;
    const unsigned long long seed = a.seed;
    const unsigned int spiking = a.spiking;
    const unsigned int* stim_ptr = a.stim_ptr;
    const unsigned int* stim_of = a.stim_of;
    const nt_stimulus* stimuli = a.stimuli;
    double* syn = a.syn;
    double* i_ext = a.i_ext;
    unsigned long long* forced = a.forced;
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_neurons) {
        return;
    }
    const unsigned int b = i / NT_NET_LANES;
    const unsigned int l = i % NT_NET_LANES;
    double current = 0.0;
    bool force = false;
    for (unsigned int e = stim_ptr[i]; e < stim_ptr[i + 1]; ++e) {
        const nt_stimulus s = stimuli[stim_of[e]];
        if (step < s.start || step >= s.stop) {
            continue;
        }
        if (s.kind == NT_STIM_POISSON) {
            const unsigned int count = nt_poisson_sample(s, seed, i, step);
            double* x = &syn[((unsigned long long)b * n_channels + s.channel) * NT_NET_LANES + l];
            *x = __dadd_rn(*x, __dmul_rn((double)count, s.value));
        } else if (s.kind == NT_STIM_CURRENT) {
            current = __dadd_rn(current, s.value);
        } else {
            const nt_u32x4 r = nt_rng_bits(seed, s.stream, i, step, 0);
            if (nt_u64_to_open_unit(r.w[0], r.w[1]) < s.p_event) {
                if (spiking) {
                    force = true;
                } else {
                    current = __dadd_rn(current, s.value);
                }
            }
        }
    }
    i_ext[i] = current;
    if (force) {
        atomicOr(&forced[b], 1ull << l);
    }
}

// 2'. One thread per spike train k < n_trains: if `step` = clock->step is one of
// train_steps[train_ptr[k] .. train_ptr[k + 1]] (ascending, unique; binary search, as `SpikeTrains::fires`),
// the bit of neuron train_neuron[k] is set in forced. Runs after stimulus_input (which follows the memset of
// forced).
NT_KERNEL void spike_train_input(const nt_spike_train_input_args a) {
    const unsigned int n_trains = a.n_trains;
    const unsigned long long step = a.clock->step;
    const unsigned int* train_neuron = a.train_neuron;
    const unsigned long long* train_ptr = a.train_ptr;
    const unsigned int* train_steps = a.train_steps;
    unsigned long long* forced = a.forced;
    const unsigned int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n_trains || step > 0xffffffffull) {
        return;
    }
    const unsigned int s = (unsigned int)step;
    unsigned long long lo = train_ptr[k];
    unsigned long long hi = train_ptr[k + 1];
    while (lo < hi) {
        const unsigned long long mid = lo + (hi - lo) / 2;
        if (train_steps[mid] < s) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < train_ptr[k + 1] && train_steps[lo] == s) {
        const unsigned int i = train_neuron[k];
        atomicOr(&forced[i / NT_NET_LANES], 1ull << (i % NT_NET_LANES));
    }
}

// 3. One thread per neuron: i_ext[i] += sum over the CSR row of g_ij * (v_prev[j] - v_prev[i]), summed in row
// order from 0.0 (rows without entries leave i_ext untouched).
NT_KERNEL void gap_current(const nt_gap_current_args a) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned long long* row_ptr = a.row_ptr;
    const unsigned int* partner = a.partner;
    const float* conductance = a.conductance;
    const double* v_prev = a.v_prev;
    double* i_ext = a.i_ext;
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_neurons) {
        return;
    }
    const unsigned long long first = row_ptr[i];
    const unsigned long long e = row_ptr[i + 1];
    if (first == e) {
        return;
    }
    const double vi = v_prev[i];
    double ig = 0.0;
    for (unsigned long long k = first; k < e; ++k) {
        ig = __dadd_rn(ig, __dmul_rn((double)conductance[k], __dsub_rn(v_prev[partner[k]], vi)));
    }
    i_ext[i] = __dadd_rn(i_ext[i], ig);
}

// 3'. Graded models (instead of gap_current): one thread per neuron, the coupling as conductances for the
// model's implicit treatment: gap_g[i] = sum_j g_ij, gap_gv[i] = sum_j g_ij v_prev[j], each summed in row
// order from 0.0 (0 for rows without entries).
NT_KERNEL void gap_conductance(const nt_gap_conductance_args a) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned long long* row_ptr = a.row_ptr;
    const unsigned int* partner = a.partner;
    const float* conductance = a.conductance;
    const double* v_prev = a.v_prev;
    double* gap_g = a.gap_g;
    double* gap_gv = a.gap_gv;
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_neurons) {
        return;
    }
    double g = 0.0;
    double gv = 0.0;
    for (unsigned long long k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
        const double c = (double)conductance[k];
        g = __dadd_rn(g, c);
        gv = __dadd_rn(gv, __dmul_rn(c, v_prev[partner[k]]));
    }
    gap_g[i] = g;
    gap_gv[i] = gv;
}

// 4. One thread per neuron i < n_neurons: syn of every channel whose gain is not 1 is multiplied by the gain.
NT_KERNEL void apply_channel_gain(const nt_apply_channel_gain_args a) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned int n_channels = a.n_channels;
    const double* gain = a.gain;
    double* syn = a.syn;
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_neurons) {
        return;
    }
    const unsigned int b = i / NT_NET_LANES;
    const unsigned int l = i % NT_NET_LANES;
    for (unsigned int c = 0; c < n_channels; ++c) {
        const double g = gain[c];
        if (g != 1.0) {
            double* x = &syn[((unsigned long long)b * n_channels + c) * NT_NET_LANES + l];
            *x = __dmul_rn(*x, g);
        }
    }
}

// 6. One thread per neuron: a silenced neuron (bit i % 64 of silenced[i / 64]) emits nothing this step.
NT_KERNEL void apply_silence_and_flag(const nt_apply_silence_and_flag_args a) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned long long* silenced = a.silenced;
    unsigned char* spiked = a.spiked;
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_neurons) {
        return;
    }
    if ((silenced[i / NT_NET_LANES] >> (i % NT_NET_LANES)) & 1ull) {
        spiked[i] = 0;
    }
}

// The fixed-point value of a weight: round-to-nearest-even of w * scale (`DeliveryScale::to_fixed`).
static __device__ __forceinline__ long long nt_to_fixed(double w, double scale) {
    return __double2ll_rn(__dmul_rn(w, scale));
}

// 9. One thread per padded neuron: v_prev[i] = V_m (state variable 0 of a block-major state with n_state
// variables).
NT_KERNEL void snapshot_v(const nt_snapshot_v_args a) {
    const unsigned int n_pad = a.n_pad;
    const unsigned int n_state = a.n_state;
    const double* state = a.state;
    double* v_prev = a.v_prev;
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_pad) {
        return;
    }
    v_prev[i] = state[(unsigned long long)(i / NT_NET_LANES) * n_state * NT_NET_LANES + i % NT_NET_LANES];
}

// 10. A single thread (thread 0 of the grid): the clock advances to the next step, clock->step += 1 and
// clock->k += 1. The last launch of every step (stream order puts it after every kernel that reads the clock).
NT_KERNEL void clock_tick(const nt_clock_tick_args a) {
    if (blockIdx.x * blockDim.x + threadIdx.x != 0) {
        return;
    }
    a.clock->step += 1;
    a.clock->k += 1;
}

// out[j] = nt_to_fixed(x[j], scale) for j < n (conformance of the fixed-point conversion with Rust's
// round_ties_even). Not a step kernel: plain arguments.
NT_KERNEL void to_fixed_fill(unsigned int n, const double* x, double scale, long long* out) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) {
        return;
    }
    out[j] = nt_to_fixed(x[j], scale);
}
