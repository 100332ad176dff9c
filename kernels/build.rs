//! Compiles the CUDA C kernels for the host (through `host/shim.h`) so that the conformance tests can run
//! the very same kernel source without a GPU. `-ffp-contract=off` keeps every multiply and add separately
//! rounded, as the Rust CPU implementation does.

const SOURCES: &[&str] = &[
    "host/shim.h",
    "host/kernels_host.cpp",
    "host/kernels_host_broken.cpp",
    "host/kernels_host_network.cpp",
    "host/kernels_host_network_broken.cpp",
    "host/kernels_host_models.cpp",
    "host/kernels_host_cnn.cpp",
    "host/kernels_host_cnn_train.cpp",
    "host/kernels_host_predictive.cpp",
    "host/kernels_host_fit_rate.cpp",
    "host/kernels_host_fit_graded.cpp",
    "host/kernels_host_fit_lif.cpp",
    "host/kernels_host_stdp.cpp",
    "cuda/philox.cuh",
    "cuda/detmath.cuh",
    "cuda/packs.cuh",
    "cuda/neuron_input.cuh",
    "cuda/cnn_common.cuh",
    "cuda/conformance.cu",
    "cuda/lif_exp.cu",
    "cuda/lif_delta.cu",
    "cuda/network.cu",
    "cuda/spikes.cu",
    "cuda/izhikevich.cu",
    "cuda/adex.cu",
    "cuda/graded.cu",
    "cuda/lif_cond_exp.cu",
    "cuda/cnn.cu",
    "cuda/cnn_train.cu",
    "cuda/predictive.cu",
    "cuda/fit_rate.cu",
    "cuda/fit_graded.cu",
    "cuda/fit_lif.cu",
    "cuda/stdp.cu",
];

fn main() {
    for s in SOURCES {
        println!("cargo:rerun-if-changed={s}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    cc::Build::new()
        .cpp(true)
        .files([
            "host/kernels_host.cpp",
            "host/kernels_host_broken.cpp",
            "host/kernels_host_network.cpp",
            "host/kernels_host_network_broken.cpp",
            "host/kernels_host_models.cpp",
            "host/kernels_host_cnn.cpp",
            "host/kernels_host_cnn_train.cpp",
            "host/kernels_host_predictive.cpp",
            "host/kernels_host_fit_rate.cpp",
            "host/kernels_host_fit_graded.cpp",
            "host/kernels_host_fit_lif.cpp",
            "host/kernels_host_stdp.cpp",
        ])
        .flag("-x")
        .flag("c++")
        .flag("-std=c++17")
        .flag("-ffp-contract=off")
        .flag("-fno-fast-math")
        .flag("-O2")
        .warnings(true)
        .extra_warnings(true)
        .compile("neurotwin_kernels_host");
}
