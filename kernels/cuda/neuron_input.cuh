// Per-neuron parts of one time step (everything a neuron's own thread does before its model update), shared
// by the single-purpose kernels of network.cu and the fused `<model>_step` kernels of the model units, so both
// run the same operations in the same order. Each `nt_<kernel>_one(a, i)` is the body of kernel <kernel> for
// thread i (it returns for threads beyond its bound). See network.cu for the step.
//
// Include after philox.cuh and packs.cuh (NVRTC inlines headers one level deep). No system headers.
#ifndef NEUROTWIN_NEURON_INPUT_CUH
#define NEUROTWIN_NEURON_INPUT_CUH

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
static __device__ __forceinline__ void nt_gather_input_one(const nt_gather_input_args& a, const unsigned int i) {
    const unsigned int n_pad = a.n_pad;
    const unsigned int n_channels = a.n_channels;
    const unsigned int slots = a.slots;
    const unsigned int slot = (unsigned int)(a.clock->step % a.slots);
    long long* ring = a.ring;
    const double inv_scale = a.inv_scale;
    double* syn = a.syn;
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
static __device__ __forceinline__ void nt_stimulus_input_one(const nt_stimulus_input_args& a, const unsigned int i) {
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

// 3. One thread per neuron: i_ext[i] += sum over the CSR row of g_ij * (v_prev[j] - v_prev[i]), summed in row
// order from 0.0 (rows without entries leave i_ext untouched).
static __device__ __forceinline__ void nt_gap_current_one(const nt_gap_current_args& a, const unsigned int i) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned long long* row_ptr = a.row_ptr;
    const unsigned int* partner = a.partner;
    const float* conductance = a.conductance;
    const double* v_prev = a.v_prev;
    double* i_ext = a.i_ext;
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
static __device__ __forceinline__ void nt_gap_conductance_one(const nt_gap_conductance_args& a, const unsigned int i) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned long long* row_ptr = a.row_ptr;
    const unsigned int* partner = a.partner;
    const float* conductance = a.conductance;
    const double* v_prev = a.v_prev;
    double* gap_g = a.gap_g;
    double* gap_gv = a.gap_gv;
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
static __device__ __forceinline__ void nt_apply_channel_gain_one(const nt_apply_channel_gain_args& a, const unsigned int i) {
    const unsigned int n_neurons = a.n_neurons;
    const unsigned int n_channels = a.n_channels;
    const double* gain = a.gain;
    double* syn = a.syn;
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

// The fused step's inputs for thread i (kernels 1, 2, 3 and 4 of network.cu, in that order, for one neuron):
// gathers padded neuron i's ring slot; for a neuron i < n_neurons also its stimuli, gap junctions (the
// spiking or the graded form, whichever pack has a row pointer) and receptor gains (when `gain.gain` is not
// null), then returns true: the model update follows. Spike trains and the memset of `forced` run before the
// fused kernel (trains OR bits of other neurons' words; OR is commutative, so the mask equals the unfused
// order's).
static __device__ __forceinline__ bool nt_neuron_inputs(const nt_neuron_step_args& a, const unsigned int i) {
    if (i >= a.gather.n_pad) {
        return false;
    }
    nt_gather_input_one(a.gather, i);
    if (i >= a.model.n_neurons) {
        return false;
    }
    nt_stimulus_input_one(a.stimulus, i);
    if (a.gap_current.row_ptr != 0) {
        nt_gap_current_one(a.gap_current, i);
    }
    if (a.gap_conductance.row_ptr != 0) {
        nt_gap_conductance_one(a.gap_conductance, i);
    }
    if (a.gain.gain != 0) {
        nt_apply_channel_gain_one(a.gain, i);
    }
    return true;
}

#endif
