//! CUDA kernels of the GPU backend (issue "GPU backend"): CUDA C sources in this crate, to be compiled at run
//! time with NVRTC (through cudarc), and compiled for the host through a portability header
//! (`host/shim.h`) so that conformance tests can run the very same source without a GPU.
//!
//! The CPU backend (`neurotwin-models`, `neurotwin-sim`) defines the per-step semantics; every kernel here
//! mirrors it bit for bit (same operations, same order, no fused multiply–add). [`KERNELS`] lists the
//! sources with their entry points; [`nvrtc_source`] gives a self-contained translation unit for NVRTC, and
//! [`host`] wraps the host-compiled kernels.

/// A device header that kernel sources include by relative path (`#include "name"`).
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// File name as written in `#include "…"`.
    pub name: &'static str,
    /// Full text.
    pub source: &'static str,
}

/// Device headers, in dependency order (none of them includes another or any system header; a header that uses
/// another, as `cnn_common.cuh` uses `detmath.cuh`, relies on its includer to include that one first).
pub const HEADERS: &[Header] = &[
    Header { name: "philox.cuh", source: include_str!("../cuda/philox.cuh") },
    Header { name: "detmath.cuh", source: include_str!("../cuda/detmath.cuh") },
    Header { name: "packs.cuh", source: include_str!("../cuda/packs.cuh") },
    Header { name: "neuron_input.cuh", source: include_str!("../cuda/neuron_input.cuh") },
    // Uses nt_exp: its includers include detmath.cuh first.
    Header { name: "cnn_common.cuh", source: include_str!("../cuda/cnn_common.cuh") },
];

/// One CUDA C translation unit (candle-kernels style module table).
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    /// Module name (used as the PTX module name).
    pub name: &'static str,
    /// Path relative to the crate root.
    pub file: &'static str,
    /// Source text as in the file (may `#include` entries of [`HEADERS`]).
    pub source: &'static str,
    /// `extern "C" __global__` functions defined by the source.
    pub entry_points: &'static [&'static str],
}

/// Leaky integrate-and-fire with exponential current synapses (`lif_exp::update_block`).
pub const LIF_EXP: KernelSource = KernelSource {
    name: "lif_exp",
    file: "cuda/lif_exp.cu",
    source: include_str!("../cuda/lif_exp.cu"),
    entry_points: &["lif_exp_update", "lif_exp_step"],
};

/// Leaky integrate-and-fire with delta synapses (`lif_delta::update_block`).
pub const LIF_DELTA: KernelSource = KernelSource {
    name: "lif_delta",
    file: "cuda/lif_delta.cu",
    source: include_str!("../cuda/lif_delta.cu"),
    entry_points: &["lif_delta_update", "lif_delta_step"],
};

/// Izhikevich's simple model (`izhikevich::update_block`).
pub const IZHIKEVICH: KernelSource = KernelSource {
    name: "izhikevich",
    file: "cuda/izhikevich.cu",
    source: include_str!("../cuda/izhikevich.cu"),
    entry_points: &["izhikevich_update", "izhikevich_step"],
};

/// Adaptive exponential integrate-and-fire with exponential current synapses (`adex::update_block`).
pub const ADEX: KernelSource = KernelSource {
    name: "adex",
    file: "cuda/adex.cu",
    source: include_str!("../cuda/adex.cu"),
    entry_points: &["adex_update", "adex_step"],
};

/// Non-spiking graded neuron with conductance synapses (`graded::update_block`).
pub const GRADED: KernelSource = KernelSource {
    name: "graded",
    file: "cuda/graded.cu",
    source: include_str!("../cuda/graded.cu"),
    entry_points: &["graded_update", "graded_step"],
};

/// Leaky integrate-and-fire with exponential synaptic conductances (`lif_cond_exp::update_block`).
pub const LIF_COND_EXP: KernelSource = KernelSource {
    name: "lif_cond_exp",
    file: "cuda/lif_cond_exp.cu",
    source: include_str!("../cuda/lif_cond_exp.cu"),
    entry_points: &["lif_cond_exp_update", "lif_cond_exp_step"],
};

/// The network part of a step (input gathering, stimuli, gap junctions, gains, silencing, spike delivery),
/// in launch order; see the header comment of `cuda/network.cu`.
pub const NETWORK: KernelSource = KernelSource {
    name: "network",
    file: "cuda/network.cu",
    source: include_str!("../cuda/network.cu"),
    entry_points: &[
        "clock_tick",
        "gather_input",
        "stimulus_input",
        "spike_train_input",
        "gap_current",
        "gap_conductance",
        "apply_channel_gain",
        "apply_silence_and_flag",
        "snapshot_v",
        "to_fixed_fill",
    ],
};

/// What a step emits: spike compaction into the window's spike record and warp-cooperative delivery of spikes
/// or graded activity; see the header comment of `cuda/spikes.cu`.
pub const SPIKES: KernelSource = KernelSource {
    name: "spikes",
    file: "cuda/spikes.cu",
    source: include_str!("../cuda/spikes.cu"),
    entry_points: &[
        "spike_masks",
        "spike_chunk_totals",
        "spike_scan_groups",
        "spike_scan_tops",
        "spike_scatter",
        "spike_pieces",
        "spike_work",
        "spike_work_base",
        "deliver_spikes",
        "deliver_graded",
        "silence_activity",
    ],
};

/// Spike-timing-dependent plasticity: the targets' spike histories, potentiation, depression with delivery of
/// the new weights (`neurotwin_sim::plasticity`); see the header comment of `cuda/stdp.cu`.
pub const STDP: KernelSource = KernelSource {
    name: "stdp",
    file: "cuda/stdp.cu",
    source: include_str!("../cuda/stdp.cu"),
    entry_points: &[
        "stdp_post_spikes",
        "stdp_potentiate",
        "stdp_depress_deliver",
        "stdp_dop_arrivals",
        "stdp_dop_count",
        "stdp_dop_update_all",
        "stdp_dop_restart",
    ],
};

/// Threads per block of the delivery kernels (a multiple of the warp size, 32).
pub const DELIVERY_THREADS: u32 = 128;
/// Blocks of the delivery kernels: a fixed grid of `DELIVERY_BLOCKS * DELIVERY_THREADS / 32` warps that
/// stride over the step's (spike, 32-synapse piece) items (their number is known only on the device) or, for
/// graded delivery, over the neurons. The host build launches the same grid.
pub const DELIVERY_BLOCKS: u32 = 256;

/// Blocks of the delivery kernels on a GPU with `sm_count` multiprocessors of `max_threads_per_sm` resident
/// threads each: enough [`DELIVERY_THREADS`]-thread blocks to fill every multiprocessor (the delivery kernels use
/// 32 registers and no shared memory, so occupancy is limited by threads only), at least [`DELIVERY_BLOCKS`], at
/// most 65,535. The items are strided over the grid, so any grid gives the same (integer) sums.
pub fn delivery_blocks_for(sm_count: u32, max_threads_per_sm: u32) -> u32 {
    let fill = u64::from(sm_count) * u64::from(max_threads_per_sm) / u64::from(DELIVERY_THREADS);
    fill.clamp(u64::from(DELIVERY_BLOCKS), 65_535) as u32
}

/// Words of 64 neurons per compaction chunk for `n_words` words: `max(4, ceil(n_words / 2^20))`, so at most
/// 2^20 chunks and, up to 2^32 neurons (2^26 words), at most 64 words per `spike_chunk_totals` /
/// `spike_scatter` thread (see `cuda/spikes.cu`).
pub fn compaction_chunk(n_words: usize) -> u32 {
    n_words.div_ceil(1 << 20).max(4) as u32
}

/// Chunks per compaction group for `n_chunks` chunks: `max(4, ceil(sqrt(n_chunks)))`, so that neither a
/// `spike_scan_groups` thread (one group) nor the single `spike_scan_tops` thread (all groups) scans more than
/// 1024 items while `n_chunks <= 2^20` (which [`compaction_chunk`] guarantees up to 2^32 neurons).
pub fn compaction_group(n_chunks: usize) -> u32 {
    let mut g = (n_chunks as f64).sqrt() as usize;
    while g * g < n_chunks {
        g += 1;
    }
    g.max(4) as u32
}

/// Spikes per chunk of the per-step scan over the spike list that numbers the (spike, 32-synapse piece) work
/// items of `deliver_spikes`, for `n_neurons` neurons (the most spikes a step can have): `max(32,
/// ceil(n_neurons / 2^20))`, so at most 2^20 chunks, grouped by [`compaction_group`] (at most 1024 per
/// thread); a `spike_work` thread scans at most 1024 spikes up to 2^30 neurons (4096 at 2^32).
pub fn work_chunk(n_neurons: usize) -> u32 {
    n_neurons.div_ceil(1 << 20).max(32) as u32
}

/// Synapses per delivery piece: one warp delivers one piece (32 consecutive synapses of one segment).
pub const PIECE_SYNAPSES: u64 = 32;

/// `seg_piece` of `deliver_spikes` from a synapse matrix's `segment_start` (n_segments + 1 entries, synapse
/// offsets): entry `s` is the number of 32-synapse pieces ([`PIECE_SYNAPSES`]) of segments `0..s`, i.e. the
/// prefix sum of `ceil((segment_start[s + 1] - segment_start[s]) / 32)`.
pub fn segment_pieces(segment_start: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(segment_start.len());
    let mut at = 0u64;
    out.push(0);
    for w in segment_start.windows(2) {
        at += (w[1] - w[0]).div_ceil(PIECE_SYNAPSES);
        out.push(at);
    }
    out
}

/// Kernels that expose device functions (Philox, deterministic exp) to conformance tests.
pub const CONFORMANCE: KernelSource = KernelSource {
    name: "conformance",
    file: "cuda/conformance.cu",
    source: include_str!("../cuda/conformance.cu"),
    entry_points: &[
        "philox_fill",
        "philox_uniform2_fill",
        "detmath_exp_fill",
        "detmath_ln_pow_fill",
        "detmath_expm1_fill",
    ],
};

/// 3D U-Net inference layers (`neurotwin_segment::cnn`): 'same' convolution, ReLU, sigmoid, max pooling,
/// nearest upsampling and channel concatenation, f32, one thread per output element; see `cuda/cnn.cu`.
pub const CNN: KernelSource = KernelSource {
    name: "cnn",
    file: "cuda/cnn.cu",
    source: include_str!("../cuda/cnn.cu"),
    entry_points: &[
        "cnn_conv3d_same",
        "cnn_relu",
        "cnn_sigmoid",
        "cnn_maxpool3d",
        "cnn_upsample_nearest3d",
        "cnn_concat_channels",
    ],
};

/// 3D U-Net training (`neurotwin_segment::cnn` training): the backward passes of the layers of [`CNN`] (convolution
/// input gradient, per-z-plane weight and bias gradient partial sums and their accumulation, ReLU, max pooling,
/// nearest upsampling, gradient addition), the weighted binary cross-entropy gradient with respect to the logits
/// and the Adam update, f32, one thread per output element, fixed summation order; see `cuda/cnn_train.cu`.
pub const CNN_TRAIN: KernelSource = KernelSource {
    name: "cnn_train",
    file: "cuda/cnn_train.cu",
    source: include_str!("../cuda/cnn_train.cu"),
    entry_points: &[
        "cnn_conv3d_grad_input",
        "cnn_conv3d_grad_weight_planes",
        "cnn_bias_grad_planes",
        "cnn_sum_planes_acc",
        "cnn_relu_backward",
        "cnn_maxpool3d_backward",
        "cnn_upsample_nearest3d_backward",
        "cnn_add_inplace",
        "cnn_bce_logit_grad",
        "cnn_adam",
    ],
};

/// Rate-based hierarchical predictive coding (`neurotwin_predictive`): batched CSR products with a layer's weights
/// and their transpose, prediction errors, inference updates, local learning and column normalisation, f64, one
/// thread per output element; see `cuda/predictive.cu`.
pub const PREDICTIVE: KernelSource = KernelSource {
    name: "predictive",
    file: "cuda/predictive.cu",
    source: include_str!("../cuda/predictive.cu"),
    entry_points: &[
        "pc_activate",
        "pc_spmm",
        "pc_spmm_t",
        "pc_error",
        "pc_infer_update",
        "pc_learn",
        "pc_col_normalize",
    ],
};

/// The rate model of connectome-constrained fitting (`neurotwin_fit::rate`): step constants, pulse input,
/// activation, the forward step, teacher forcing and one step of the discrete adjoint with the gradient
/// accumulations, f64, one thread per neuron; see `cuda/fit_rate.cu`.
pub const FIT_RATE: KernelSource = KernelSource {
    name: "fit_rate",
    file: "cuda/fit_rate.cu",
    source: include_str!("../cuda/fit_rate.cu"),
    entry_points: &[
        "rate_coeffs",
        "rate_pulse_input",
        "rate_activation",
        "rate_step",
        "rate_clamp",
        "rate_adjoint_mu",
        "rate_adjoint_lambda",
        "rate_grad_edges",
        "rate_tau_grad",
    ],
};

/// The spiking LIF network of connectome-constrained fitting (`neurotwin_fit::lif`): step constants, pulse
/// input, spike function, the forward step and one step of the surrogate-gradient BPTT with the gradient
/// accumulations, f64, one thread per neuron; see `cuda/fit_lif.cu`.
pub const FIT_LIF: KernelSource = KernelSource {
    name: "fit_lif",
    file: "cuda/fit_lif.cu",
    source: include_str!("../cuda/fit_lif.cu"),
    entry_points: &[
        "lif_alpha",
        "lif_pulse_input",
        "lif_spike",
        "lif_step",
        "lif_adjoint_final",
        "lif_adjoint_mu",
        "lif_adjoint_lambda",
        "lif_grad_edges",
        "lif_tau_grad",
    ],
};

/// The graded conductance network of connectome-constrained fitting (`neurotwin_fit::graded`): pulse input,
/// teacher forcing, activations, the forward step (exact exponential integration) and one step of the discrete
/// adjoint with the gradient accumulations, f64, one thread per neuron; see `cuda/fit_graded.cu`.
pub const FIT_GRADED: KernelSource = KernelSource {
    name: "fit_graded",
    file: "cuda/fit_graded.cu",
    source: include_str!("../cuda/fit_graded.cu"),
    entry_points: &[
        "graded_fit_pulse_input",
        "graded_fit_clamp",
        "graded_fit_activation",
        "graded_fit_step",
        "graded_fit_adjoint_terms",
        "graded_fit_adjoint_lambda",
        "graded_fit_initial_grad",
    ],
};

/// Every kernel translation unit of the crate.
pub const KERNELS: &[KernelSource] = &[
    LIF_EXP,
    LIF_DELTA,
    IZHIKEVICH,
    ADEX,
    GRADED,
    LIF_COND_EXP,
    NETWORK,
    SPIKES,
    STDP,
    CONFORMANCE,
    CNN,
    CNN_TRAIN,
    PREDICTIVE,
    FIT_RATE,
    FIT_LIF,
    FIT_GRADED,
];

/// The source of `k` as one self-contained translation unit for NVRTC (which gets no include path and has no
/// system headers): each `#include "<header>"` line is replaced by the text of that entry of [`HEADERS`].
/// Headers have include guards, so a header included twice is harmless.
///
/// # Panics
/// If the source includes a file that is not in [`HEADERS`] (a bug in this crate, caught by its tests).
pub fn nvrtc_source(k: &KernelSource) -> String {
    inline_headers(k.file, k.source)
}

/// Headers of host builds only (`host/`), left as `#include` lines by [`inline_headers`].
pub const HOST_HEADERS: &[&str] = &["shim.h", "native.h"];

/// `source` with each `#include` of a [`HEADERS`] entry replaced by the header's text (`file` names the source
/// in the panic for an unknown header: a bug in our sources).
pub fn inline_headers(file: &str, source: &str) -> String {
    let mut out = String::with_capacity(source.len() + HEADERS.iter().map(|h| h.source.len()).sum::<usize>());
    for line in source.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("#include") {
            let name = rest.trim().trim_matches('"');
            if HOST_HEADERS.contains(&name) {
                // Host-only headers stay includes (written beside the source by the host builds).
                out.push_str(line);
                out.push('\n');
                continue;
            }
            let header = HEADERS
                .iter()
                .find(|h| h.name == name)
                .unwrap_or_else(|| panic!("{file}: #include of unknown header `{name}`"));
            out.push_str(&format!("// ---- begin {name} (inlined) ----\n"));
            out.push_str(header.source);
            out.push_str(&format!("// ---- end {name} ----\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

pub mod arch;
pub mod backend_kind;
pub mod device;
pub mod generated;
pub mod host;
pub mod native_cache;
pub mod nvrtc;
pub mod packs;
pub mod precompiled;

#[cfg(test)]
mod tests {
    use super::*;

    /// Published multiprocessor counts and resident threads per multiprocessor (NVIDIA's data sheets and the
    /// CUDA programming guide's compute-capability table).
    #[test]
    fn delivery_grid_fills_the_gpu() {
        assert_eq!(delivery_blocks_for(132, 2048), 2112); // H100 SXM: 8,448 warps
        assert_eq!(delivery_blocks_for(108, 2048), 1728); // A100
        assert_eq!(delivery_blocks_for(128, 1536), 1536); // RTX 4090 (sm_89)
        assert_eq!(delivery_blocks_for(8, 1024), DELIVERY_BLOCKS); // small GPUs keep the fixed grid
        assert_eq!(delivery_blocks_for(u32::MAX, 2048), 65_535);
    }

    /// The NVRTC source has no `#include` left and defines every listed entry point as an extern "C" kernel.
    #[test]
    fn nvrtc_sources_are_self_contained() {
        for k in KERNELS {
            let src = nvrtc_source(k);
            assert!(!src.contains("#include"), "{}", k.file);
            assert!(src.contains("#define NT_KERNEL extern \"C\" __global__"), "{}", k.file);
            for e in k.entry_points {
                assert!(src.contains(&format!("NT_KERNEL void {e}(")), "{}: entry point {e}", k.file);
            }
        }
        assert!(nvrtc_source(&CONFORMANCE).contains("nt_philox4x32_10"));
        // cnn_common.cuh needs nt_exp: detmath.cuh is inlined before it in both CNN units.
        for k in [&CNN, &CNN_TRAIN] {
            let src = nvrtc_source(k);
            let exp = src.find("double nt_exp(").unwrap_or_else(|| panic!("{}: no nt_exp", k.file));
            let sig = src.find("float nt_sigmoid_f32(").unwrap_or_else(|| panic!("{}: no nt_sigmoid_f32", k.file));
            assert!(exp < sig, "{}: nt_sigmoid_f32 before nt_exp", k.file);
        }
    }
}
