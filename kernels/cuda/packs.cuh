// Parameter packs of the step kernels: every kernel of one time step (network.cu, spikes.cu, <model>.cu) takes
// exactly one of these structs by value, so that its argument list is written once here and once in Rust
// (`neurotwin_kernels::packs`, `#[repr(C)]`, layout tested against this file field by field). Fields are
// ordered pointers first, then 8-byte scalars, then 4-byte scalars padded to 8 bytes: no implicit padding.
//
// The step clock lives in device memory (`nt_clock`), not in the packs: a step's packs do not change from one
// step to the next, so the whole step can be captured once as a CUDA graph and replayed (`clock_tick`
// advances the clock at the end of each step). Kernels read it through `clock`.
//
// No system headers (NVRTC); inlined by `nvrtc_source`.
#ifndef NEUROTWIN_PACKS_CUH
#define NEUROTWIN_PACKS_CUH

// The step clock (device memory, 16 bytes): the simulation step and the window step k of the spike record.
struct nt_clock {
    unsigned long long step;
    unsigned int k;
    unsigned int pad;
};

// clock_tick: one thread; step += 1, k += 1.
struct nt_clock_tick_args {
    nt_clock* clock;
};

// 1. gather_input: ring slot clock->step % slots -> syn, clearing the slot.
struct nt_gather_input_args {
    long long* ring;
    double* syn;
    const nt_clock* clock;
    double inv_scale;
    unsigned int n_pad;
    unsigned int n_channels;
    unsigned int slots;
    unsigned int pad;
};

struct nt_stimulus;

// 2. stimulus_input at clock->step.
struct nt_stimulus_input_args {
    const unsigned int* stim_ptr;
    const unsigned int* stim_of;
    const nt_stimulus* stimuli;
    double* syn;
    double* i_ext;
    unsigned long long* forced;
    const nt_clock* clock;
    unsigned long long seed;
    unsigned int n_neurons;
    unsigned int n_channels;
    unsigned int spiking;
    unsigned int pad;
};

// 2'. spike_train_input at clock->step.
struct nt_spike_train_input_args {
    const unsigned int* train_neuron;
    const unsigned long long* train_ptr;
    const unsigned int* train_steps;
    unsigned long long* forced;
    const nt_clock* clock;
    unsigned int n_trains;
    unsigned int pad;
};

// 3. gap_current (spiking models).
struct nt_gap_current_args {
    const unsigned long long* row_ptr;
    const unsigned int* partner;
    const float* conductance;
    const double* v_prev;
    double* i_ext;
    unsigned int n_neurons;
    unsigned int pad;
};

// 3. gap_conductance (graded models).
struct nt_gap_conductance_args {
    const unsigned long long* row_ptr;
    const unsigned int* partner;
    const float* conductance;
    const double* v_prev;
    double* gap_g;
    double* gap_gv;
    unsigned int n_neurons;
    unsigned int pad;
};

// 4. apply_channel_gain.
struct nt_apply_channel_gain_args {
    const double* gain;
    double* syn;
    unsigned int n_neurons;
    unsigned int n_channels;
};

// Most per-set parameter arrays a model kernel takes (adex: 17).
#define NT_MODEL_MAX_PARAMS 20

// 5. <model>_update: params[j] is the model's j-th per-set array (`ModelTable::args` order; the model's
// source names them). Spiking models read forced and write spiked; graded models read gap_g, gap_gv (both
// null without gap junctions) and write activity. Unused pointers are null.
struct nt_model_args {
    double* state;
    const unsigned short* param_set;
    const void* params[NT_MODEL_MAX_PARAMS];
    const double* syn;
    const double* i_ext;
    const unsigned long long* forced;
    unsigned char* spiked;
    const double* gap_g;
    const double* gap_gv;
    double* activity;
    unsigned int n_neurons;
    unsigned int n_channels;
};

// 1–5 fused: <model>_step. A gap pack with a null row_ptr and a gain pack with a null gain are skipped (spiking
// models use gap_current, graded models gap_conductance).
struct nt_neuron_step_args {
    nt_gather_input_args gather;
    nt_stimulus_input_args stimulus;
    nt_gap_current_args gap_current;
    nt_gap_conductance_args gap_conductance;
    nt_apply_channel_gain_args gain;
    nt_model_args model;
};

// 6. apply_silence_and_flag (spiking models).
struct nt_apply_silence_and_flag_args {
    const unsigned long long* silenced;
    unsigned char* spiked;
    unsigned int n_neurons;
    unsigned int pad;
};

// 6. silence_activity (graded models).
struct nt_silence_activity_args {
    const unsigned long long* silenced;
    double* activity;
    unsigned int n_neurons;
    unsigned int pad;
};

// 7a. spike_masks.
struct nt_spike_masks_args {
    const unsigned char* spiked;
    unsigned long long* masks;
    unsigned int n_neurons;
    unsigned int pad;
};

// 7b. spike_chunk_totals.
struct nt_spike_chunk_totals_args {
    const unsigned long long* masks;
    unsigned long long* chunk_offset;
    unsigned int n_words;
    unsigned int chunk;
};

// 7c / 8c. spike_scan_groups.
struct nt_spike_scan_groups_args {
    unsigned long long* chunk_offset;
    unsigned long long* group_offset;
    unsigned int n_chunks;
    unsigned int group;
};

// 7d / 8d. spike_scan_tops: writes rec_base[k + 1] (and rec_base[0] = 0 when k = 0) with k = clock->k, or
// k = 0 when clock is null.
struct nt_spike_scan_tops_args {
    unsigned long long* group_offset;
    unsigned long long* rec_base;
    const nt_clock* clock;
    unsigned int n_groups;
    unsigned int pad;
};

// 7e. spike_scatter.
struct nt_spike_scatter_args {
    const unsigned long long* masks;
    const unsigned long long* chunk_offset;
    const unsigned long long* group_offset;
    unsigned int* rec_spikes;
    unsigned int n_words;
    unsigned int chunk;
    unsigned int group;
    unsigned int pad;
};

// 8a. spike_pieces over window step clock->k.
struct nt_spike_pieces_args {
    const unsigned long long* rec_base;
    const unsigned int* rec_spikes;
    const unsigned int* row_segments;
    const unsigned long long* seg_piece;
    unsigned long long* work_start;
    const nt_clock* clock;
    unsigned int max_spikes;
    unsigned int pad;
};

// 8b. spike_work over window step clock->k.
struct nt_spike_work_args {
    const unsigned long long* rec_base;
    unsigned long long* work_start;
    unsigned long long* work_chunk;
    const nt_clock* clock;
    unsigned int max_spikes;
    unsigned int chunk;
};

// 8e. spike_work_base over window step clock->k.
struct nt_spike_work_base_args {
    const unsigned long long* rec_base;
    const unsigned long long* work_chunk;
    const unsigned long long* work_group;
    unsigned long long* work_start;
    const nt_clock* clock;
    unsigned int max_spikes;
    unsigned int chunk;
    unsigned int group;
    unsigned int pad;
};

// 8f. deliver_spikes: window step clock->k's spikes at clock->step. Exactly one of weights and
// (weight_index, fixed_table) is non-null.
struct nt_deliver_spikes_args {
    const unsigned long long* rec_base;
    const unsigned int* rec_spikes;
    const unsigned long long* work_start;
    const unsigned long long* work_total;
    const unsigned int* row_segments;
    const unsigned long long* seg_piece;
    const unsigned long long* segment_start;
    const unsigned short* segment_delay;
    const unsigned char* segment_receptor;
    const unsigned int* targets;
    const float* weights;
    const unsigned short* weight_index;
    const long long* fixed_table;
    long long* ring;
    const nt_clock* clock;
    double scale;
    unsigned int slots;
    unsigned int n_pad;
};

// 8. deliver_graded at clock->step. Exactly one of weights and (weight_index, weight_values) is non-null.
struct nt_deliver_graded_args {
    const double* activity;
    const unsigned int* row_segments;
    const unsigned long long* segment_start;
    const unsigned short* segment_delay;
    const unsigned char* segment_receptor;
    const unsigned int* targets;
    const float* weights;
    const unsigned short* weight_index;
    const float* weight_values;
    long long* ring;
    const nt_clock* clock;
    double scale;
    unsigned int n_neurons;
    unsigned int slots;
    unsigned int n_pad;
    unsigned int pad;
};

// 9. snapshot_v.
struct nt_snapshot_v_args {
    const double* state;
    double* v_prev;
    unsigned int n_pad;
    unsigned int n_state;
};

// stdp_post_spikes, stdp_potentiate, stdp_depress_deliver and stdp_dop_* (stdp.cu): the arrays of
// `neurotwin_sim::plasticity::PlasticSynapses` (the reward-modulated ones in the layout of `DopamineDevice`) and the
// step's spikes in the window's record at clock->k.
struct nt_stdp_args {
    const unsigned long long* rec_base;
    const unsigned int* rec_spikes;
    const nt_clock* clock;
    const double* rules;
    const unsigned int* row_ptr;
    const unsigned int* post;
    const unsigned short* delay;
    const unsigned char* channel;
    const unsigned char* projection;
    double* weight;
    double* k_plus;
    long long* last_pre;
    const unsigned int* col_ptr;
    const unsigned int* col_syn;
    const unsigned int* hist_row_of;
    const unsigned int* hist_neuron;
    long long* hist_steps;
    double* hist_k;
    unsigned int* hist_len;
    unsigned int* hist_head;
    long long* ring;
    double* elig;
    long long* t_eval;
    long long* dop_step;
    double* dop_n;
    unsigned int* dop_len;
    unsigned int* dop_pending;
    const unsigned char* dop_source;
    double dt_ms;
    double scale;
    unsigned int n_neurons;
    unsigned int hist_rows;
    unsigned int hist_cap;
    unsigned int n_projections;
    unsigned int max_delay;
    unsigned int slots;
    unsigned int n_pad;
    unsigned int n_synapses;
    unsigned int dop_cap;
    unsigned int pend_slots;
    unsigned int pad0;
    unsigned int pad1;
};

#endif
