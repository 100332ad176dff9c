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
//   8'. stdp_post_spikes, stdp_potentiate, stdp_depress_deliver  plastic synapses (only with plasticity; stdp.cu)
//   9. snapshot_v            v_prev = V_m for the next step's gap junctions
//  10. clock_tick            clock->step += 1, clock->k += 1 (the last launch of every step)
//
// Every step kernel takes one parameter pack by value (`packs.cuh`). The simulation step and the window step k
// are not launch arguments: the kernels read them from the step clock in device memory (`nt_clock`), which
// clock_tick advances as the step's last launch. So the packs, hence the launches, are the same in every step,
// and a CUDA graph captured from one step replays any later step; the host writes the clock only when the
// sequence breaks (a new window sets k = 0; a step out of sequence sets step).
//
// The engine launches kernels 1–5 as one: `<model>_step` in each model unit runs, per neuron, the bodies of
// gather_input, stimulus_input, gap_current / gap_conductance, apply_channel_gain (neuron_input.cuh) and the
// model update in that order — the same operations in the same order as the separate launches (the gain
// multiplies the sum of ring and Poisson input, as on the CPU). The separate kernels remain for tests and tools.
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

#include "neuron_input.cuh"

// Kernels 1–4: one thread per (padded) neuron; the bodies are in neuron_input.cuh, shared with the fused
// `<model>_step` kernels (see there for what each does).
NT_KERNEL void gather_input(const nt_gather_input_args a) {
    nt_gather_input_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

NT_KERNEL void stimulus_input(const nt_stimulus_input_args a) {
    nt_stimulus_input_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

NT_KERNEL void gap_current(const nt_gap_current_args a) {
    nt_gap_current_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

NT_KERNEL void gap_conductance(const nt_gap_conductance_args a) {
    nt_gap_conductance_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

NT_KERNEL void apply_channel_gain(const nt_apply_channel_gain_args a) {
    nt_apply_channel_gain_one(a, blockIdx.x * blockDim.x + threadIdx.x);
}

// 2'. One thread per spike train k < n_trains: if `step` = clock->step is one of
// train_steps[train_ptr[k] .. train_ptr[k + 1]] (ascending, unique; binary search, as `SpikeTrains::fires`),
// the bit of neuron train_neuron[k] is set in forced. Runs after the memset of forced, before the fused
// `<model>_step` kernel (or after stimulus_input when the kernels run one by one: OR commutes).
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
