// Spike-timing-dependent plasticity on the device: the three phases of one step of
// `neurotwin_sim::plasticity::PlasticSynapses::step`, over the same arrays (uploaded as they are), bit-identical to
// it (every multiply, add and divide through __dmul_rn / __dadd_rn / __dsub_rn / __ddiv_rn, exp, ln and pow from
// detmath.cuh, the operations of `neurotwin_models::stdp` in the same order). No system headers (NVRTC).
//
// Launched after the step's spikes are in the window's spike record (spikes.cu), in this order:
//   1. stdp_post_spikes       one thread per spike of the step: a target's new history entry with every
//                             projection's postsynaptic trace K- <- K- e^{-dt/tau-} + 1
//   2. stdp_potentiate        one thread per history row (target): for each of its spikes at step - d
//                             (1 <= d <= max_delay), potentiate its synapses of delay d from the presynaptic trace
//   3. stdp_depress_deliver   one thread per spike of the step: for each plastic synapse of its row, depress
//                             from the target's trace before step - d, add the new weight to ring slot step + d
//                             (64-bit integer atomics: order-independent), update the presynaptic trace
// Reward-modulated STDP (`neurotwin_sim::plasticity::dopamine`, Izhikevich 2007) adds, for its projections:
//   0. stdp_dop_arrivals      (before 1) one thread per projection: the dopamine arriving now joins the trace
//   2., 3.                    the pairs change the eligibility trace, the weight follows dw/dt = c (n - b)
//                             integrated exactly between evaluation points (nt_dop_advance)
//   4. stdp_dop_count         one thread per spike of the step: dopamine neurons' spikes scheduled after the delay
//                             (integer atomics)
//   5. stdp_dop_update_all    one thread per synapse: every update_every steps, the weight brought up to now
//   6. stdp_dop_restart       one thread per projection: then the dopamine history restarts from now
// Each phase touches a synapse (or a history row) from one thread only, so the result does not depend on the
// grid or the order of threads. Rules: RULE_WORDS = 18 doubles per projection (`PlasticSynapses::rule_table`):
// tau_plus, tau_minus, lambda, alpha, mu_plus, mu_minus, w_max, pairing (0 all-to-all, 1 nearest), kind (0 pair-
// based, 1 reward-modulated), a_plus, a_minus, tau_c, tau_n, b, w_min, w_max (reward-modulated), delay (steps),
// update_every (steps).
#include "packs.cuh"
#include "detmath.cuh"

#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#define NT_STDP_NEVER ((long long)0x8000000000000000ULL)
#define NT_STDP_NO_ROW 0xFFFFFFFFu
#define NT_STDP_RULE_WORDS 18u

// e^{-steps dt / tau} (`StdpParams::decay_plus` / `decay_minus`).
static __device__ __forceinline__ double nt_stdp_decay(long long steps, double dt_ms, double tau_ms) {
    return nt_exp(__ddiv_rn(-__dmul_rn((double)steps, dt_ms), tau_ms));
}

// `StdpParams::facilitate`.
static __device__ __forceinline__ double nt_stdp_facilitate(const double* rule, double w, double k_plus) {
    const double w_max = rule[6];
    const double x = __ddiv_rn(w, w_max);
    const double norm = __dadd_rn(x, __dmul_rn(__dmul_rn(rule[2], nt_powf(__dsub_rn(1.0, x), rule[4])), k_plus));
    return norm < 1.0 ? __dmul_rn(norm, w_max) : w_max;
}

// `StdpParams::depress`.
static __device__ __forceinline__ double nt_stdp_depress(const double* rule, double w, double k_minus) {
    const double w_max = rule[6];
    const double x = __ddiv_rn(w, w_max);
    const double step = __dmul_rn(__dmul_rn(__dmul_rn(rule[3], rule[2]), nt_powf(x, rule[5])), k_minus);
    const double norm = __dsub_rn(x, step);
    return norm > 0.0 ? __dmul_rn(norm, w_max) : 0.0;
}

// Whether projection p follows the reward-modulated rule.
static __device__ __forceinline__ bool nt_dop_is(const nt_stdp_args& a, unsigned int p) {
    return a.rules[p * NT_STDP_RULE_WORDS + 8u] == 1.0;
}

// Projection p's dopamine trace at step t (>= its first entry) and the entry it decays from (`trace_at`).
static __device__ __forceinline__ double nt_dop_trace_at(const nt_stdp_args& a, unsigned int p, long long t,
                                                         unsigned int* entry) {
    const unsigned long long base = (unsigned long long)p * a.dop_cap;
    // The last entry at or before t (entries ascending): binary search for the first one after t.
    unsigned int lo = 0;
    unsigned int hi = a.dop_len[p];
    while (lo < hi) {
        const unsigned int mid = lo + (hi - lo) / 2u;
        if (a.dop_step[base + mid] <= t) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    const unsigned int k = lo > 0u ? lo - 1u : 0u;
    *entry = k;
    const double tau_n = a.rules[p * NT_STDP_RULE_WORDS + 12u];
    return __dmul_rn(a.dop_n[base + k], nt_stdp_decay(t - a.dop_step[base + k], a.dt_ms, tau_n));
}

// `DopamineParams::integrate_weight`: w after dt_ms of dw/dt = c (n - b) from c0, n0, clipped.
static __device__ __forceinline__ double nt_dop_integrate(const double* rule, double w, double c0, double n0,
                                                          double dt_ms) {
    const double tau_c = rule[11];
    const double tau_n = rule[12];
    const double inv_tau_s = __ddiv_rn(__dadd_rn(tau_c, tau_n), __dmul_rn(tau_c, tau_n));
    const double minus_dt = -dt_ms;
    const double a = __dmul_rn(__ddiv_rn(n0, inv_tau_s), nt_expm1(__dmul_rn(inv_tau_s, minus_dt)));
    const double b = __dmul_rn(__dmul_rn(rule[13], tau_c), nt_expm1(__ddiv_rn(minus_dt, tau_c)));
    double r = __dsub_rn(w, __dmul_rn(c0, __dsub_rn(a, b)));
    if (r < rule[14]) {
        r = rule[14];
    }
    if (r > rule[15]) {
        r = rule[15];
    }
    return r;
}

// Synapse s (of projection p, reward-modulated) carried from its evaluation step to t through the dopamine
// arrivals in between (`dopamine::advance`).
static __device__ __forceinline__ void nt_dop_advance(const nt_stdp_args& a, unsigned int p, unsigned int s,
                                                      long long t) {
    long long from = a.t_eval[s];
    if (t <= from) {
        return;
    }
    const double* rule = a.rules + p * NT_STDP_RULE_WORDS;
    const unsigned long long base = (unsigned long long)p * a.dop_cap;
    unsigned int k;
    double n = nt_dop_trace_at(a, p, from, &k);
    double w = a.weight[s];
    double c = a.elig[s];
    const unsigned int len = a.dop_len[p];
    for (;;) {
        const bool more = k + 1u < len && a.dop_step[base + k + 1u] <= t;
        const long long to = more ? a.dop_step[base + k + 1u] : t;
        const long long span = to - from;
        w = nt_dop_integrate(rule, w, c, n, __dmul_rn((double)span, a.dt_ms));
        c = __dmul_rn(c, nt_stdp_decay(span, a.dt_ms, rule[11]));
        from = to;
        if (!more) {
            break;
        }
        n = a.dop_n[base + k + 1u];
        k += 1u;
    }
    a.weight[s] = w;
    a.elig[s] = c;
    a.t_eval[s] = t;
}

// The step's spike j from the window's record, or n_neurons when j is past the step's spikes (so also for every
// thread j >= n_neurons).
static __device__ __forceinline__ unsigned int nt_stdp_spike(const nt_stdp_args& a, unsigned int j) {
    const unsigned int k = a.clock->k;
    const unsigned long long base = a.rec_base[k];
    if ((unsigned long long)j >= a.rec_base[k + 1u] - base) {
        return a.n_neurons;
    }
    return a.rec_spikes[base + j];
}

// 1. Threads j < n_neurons: spike j of the step, if its neuron is a target, gets a history entry.
NT_KERNEL void stdp_post_spikes(const nt_stdp_args a) {
    const unsigned int i = nt_stdp_spike(a, blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= a.n_neurons) {
        return;
    }
    const unsigned int row = a.hist_row_of[i];
    if (row == NT_STDP_NO_ROW) {
        return;
    }
    const unsigned int cap = a.hist_cap;
    const long long now = (long long)a.clock->step;
    const unsigned int head = a.hist_head[row];
    const unsigned int last = (head + cap - 1u) % cap;
    const bool first = a.hist_len[row] == 0u;
    const long long since = first ? 0 : now - a.hist_steps[(unsigned long long)row * cap + last];
    for (unsigned int p = 0; p < a.n_projections; ++p) {
        double* k = a.hist_k + ((unsigned long long)p * a.hist_rows + row) * cap;
        const double tau_minus = a.rules[p * NT_STDP_RULE_WORDS + 1u];
        k[head] = first ? 1.0 : __dadd_rn(__dmul_rn(k[last], nt_stdp_decay(since, a.dt_ms, tau_minus)), 1.0);
    }
    a.hist_steps[(unsigned long long)row * cap + head] = now;
    a.hist_head[row] = (head + 1u) % cap;
    a.hist_len[row] = a.hist_len[row] + 1u < cap ? a.hist_len[row] + 1u : cap;
}

// 2. Threads r < hist_rows: every spike of target hist_neuron[r] at step - d (1 <= d <= max_delay) potentiates
// its synapses of delay d (its column is sorted by delay).
NT_KERNEL void stdp_potentiate(const nt_stdp_args a) {
    const unsigned int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= a.hist_rows) {
        return;
    }
    const unsigned int cap = a.hist_cap;
    const long long now = (long long)a.clock->step;
    const unsigned int head = a.hist_head[row];
    const unsigned int neuron = a.hist_neuron[row];
    const unsigned int c0 = a.col_ptr[neuron];
    const unsigned int c1 = a.col_ptr[neuron + 1u];
    for (unsigned int back = 1; back <= a.hist_len[row]; ++back) {
        const long long d = now - a.hist_steps[(unsigned long long)row * cap + (head + cap - back) % cap];
        if (d < 1) {
            continue;
        }
        if (d > (long long)a.max_delay) {
            break;  // entries are newest first
        }
        // First synapse of the column with delay >= d (binary search), then those of delay d.
        unsigned int lo = c0;
        unsigned int hi = c1;
        while (lo < hi) {
            const unsigned int mid = lo + (hi - lo) / 2u;
            if ((long long)a.delay[a.col_syn[mid]] < d) {
                lo = mid + 1u;
            } else {
                hi = mid;
            }
        }
        for (unsigned int c = lo; c < c1 && (long long)a.delay[a.col_syn[c]] == d; ++c) {
            const unsigned int s = a.col_syn[c];
            const long long last = a.last_pre[s];
            if (last == NT_STDP_NEVER) {
                continue;
            }
            const unsigned int p = a.projection[s];
            const double* rule = a.rules + p * NT_STDP_RULE_WORDS;
            const double decay = nt_stdp_decay(now - last, a.dt_ms, rule[0]);
            if (rule[8] == 1.0) {
                const double step_c = __dmul_rn(rule[9], __dmul_rn(a.k_plus[s], decay));
                nt_dop_advance(a, p, s, now);
                a.elig[s] = __dadd_rn(a.elig[s], step_c);
                continue;
            }
            const double k_plus = rule[7] == 0.0 ? __dmul_rn(a.k_plus[s], decay) : decay;
            a.weight[s] = nt_stdp_facilitate(rule, a.weight[s], k_plus);
        }
    }
}

// Projection p's postsynaptic trace of history row `row` at step t from its spikes strictly before t.
static __device__ __forceinline__ double nt_stdp_trace_before(const nt_stdp_args& a, unsigned int p, unsigned int row,
                                                              long long t) {
    const unsigned int cap = a.hist_cap;
    const unsigned int head = a.hist_head[row];
    for (unsigned int back = 1; back <= a.hist_len[row]; ++back) {
        const unsigned int e = (head + cap - back) % cap;
        const long long m = a.hist_steps[(unsigned long long)row * cap + e];
        if (m < t) {
            const double* rule = a.rules + p * NT_STDP_RULE_WORDS;
            const double decay = nt_stdp_decay(t - m, a.dt_ms, rule[1]);
            return rule[7] == 0.0 ? __dmul_rn(a.hist_k[((unsigned long long)p * a.hist_rows + row) * cap + e], decay)
                                  : decay;
        }
    }
    return 0.0;
}

// 3. Threads j < n_neurons: spike j of the step depresses each plastic synapse of its row, delivers the new
// weight and updates the presynaptic trace.
NT_KERNEL void stdp_depress_deliver(const nt_stdp_args a) {
    const unsigned int i = nt_stdp_spike(a, blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= a.n_neurons) {
        return;
    }
    const long long now = (long long)a.clock->step;
    const unsigned long long step = a.clock->step;
    for (unsigned int s = a.row_ptr[i]; s < a.row_ptr[i + 1u]; ++s) {
        const unsigned int p = a.projection[s];
        const double* rule = a.rules + p * NT_STDP_RULE_WORDS;
        const unsigned int post = a.post[s];
        const unsigned int d = a.delay[s];
        const double k_minus = nt_stdp_trace_before(a, p, a.hist_row_of[post], now - (long long)d);
        double w;
        if (rule[8] == 1.0) {
            const double step_c = __dmul_rn(rule[10], k_minus);
            nt_dop_advance(a, p, s, now);
            a.elig[s] = __dsub_rn(a.elig[s], step_c);
            w = a.weight[s];
        } else {
            w = nt_stdp_depress(rule, a.weight[s], k_minus);
            a.weight[s] = w;
        }
        const unsigned int slot = (unsigned int)((step + d) % a.slots);
        long long* target = a.ring + ((unsigned long long)a.channel[s] * a.slots + slot) * a.n_pad + post;
        atomicAdd((unsigned long long*)target, (unsigned long long)__double2ll_rn(__dmul_rn(w, a.scale)));
        const long long last = a.last_pre[s];
        a.k_plus[s] = last == NT_STDP_NEVER
                          ? 1.0
                          : __dadd_rn(__dmul_rn(a.k_plus[s], nt_stdp_decay(now - last, a.dt_ms, rule[0])), 1.0);
        a.last_pre[s] = now;
    }
}

// 0. Threads p < n_projections (reward-modulated): the dopamine spikes scheduled for now join the trace as a new
// entry (`PlasticSynapses::dopamine_arrivals`).
NT_KERNEL void stdp_dop_arrivals(const nt_stdp_args a) {
    const unsigned int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= a.n_projections || !nt_dop_is(a, p)) {
        return;
    }
    const long long now = (long long)a.clock->step;
    unsigned int* pending = a.dop_pending + (unsigned long long)p * a.pend_slots + (unsigned long long)now % a.pend_slots;
    const unsigned int count = *pending;
    if (count == 0u) {
        return;
    }
    *pending = 0u;
    unsigned int k;
    const double tau_n = a.rules[p * NT_STDP_RULE_WORDS + 12u];
    const double n = __dadd_rn(nt_dop_trace_at(a, p, now, &k), __ddiv_rn((double)count, tau_n));
    const unsigned long long base = (unsigned long long)p * a.dop_cap;
    const unsigned int len = a.dop_len[p];
    if (len > 0u && a.dop_step[base + len - 1u] == now) {
        a.dop_n[base + len - 1u] = n;
    } else if (len < a.dop_cap) {
        a.dop_step[base + len] = now;
        a.dop_n[base + len] = n;
        a.dop_len[p] = len + 1u;
    }
}

// 4. Threads j < n_neurons: spike j of the step, if its neuron is a dopamine neuron of a projection, counts for
// that projection's trace after its delay.
NT_KERNEL void stdp_dop_count(const nt_stdp_args a) {
    const unsigned int i = nt_stdp_spike(a, blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= a.n_neurons) {
        return;
    }
    const unsigned long long now = a.clock->step;
    for (unsigned int p = 0; p < a.n_projections; ++p) {
        if (!nt_dop_is(a, p) || a.dop_source[(unsigned long long)p * a.n_neurons + i] == 0u) {
            continue;
        }
        const unsigned long long at = now + (unsigned long long)a.rules[p * NT_STDP_RULE_WORDS + 16u];
        atomicAdd(a.dop_pending + (unsigned long long)p * a.pend_slots + at % a.pend_slots, 1u);
    }
}

// Whether projection p brings every weight up to date at the end of this step.
static __device__ __forceinline__ bool nt_dop_update_step(const nt_stdp_args& a, unsigned int p) {
    const unsigned long long every = (unsigned long long)a.rules[p * NT_STDP_RULE_WORDS + 17u];
    return (a.clock->step + 1ull) % every == 0ull;
}

// 5. Threads s < n_synapses: at an update step, a reward-modulated synapse is carried to now.
NT_KERNEL void stdp_dop_update_all(const nt_stdp_args a) {
    const unsigned int s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= a.n_synapses) {
        return;
    }
    const unsigned int p = a.projection[s];
    if (!nt_dop_is(a, p) || !nt_dop_update_step(a, p)) {
        return;
    }
    nt_dop_advance(a, p, s, (long long)a.clock->step);
}

// 6. Threads p < n_projections: after 5, the history restarts from now with the trace at now.
NT_KERNEL void stdp_dop_restart(const nt_stdp_args a) {
    const unsigned int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= a.n_projections || !nt_dop_is(a, p) || !nt_dop_update_step(a, p)) {
        return;
    }
    const long long now = (long long)a.clock->step;
    unsigned int k;
    const double n = nt_dop_trace_at(a, p, now, &k);
    const unsigned long long base = (unsigned long long)p * a.dop_cap;
    a.dop_step[base] = now;
    a.dop_n[base] = n;
    a.dop_len[p] = 1u;
}
