//! Integration tests of neurotwin-kernels: the host build of the CUDA C kernels and the NVRTC compile check.
//!
//! One test binary per crate, since each test binary links the whole dependency tree and that dominates CI
//! time: the former `tests/*.rs` files are the modules below. Run one module with a filter, e.g.
//! `cargo test -p neurotwin-kernels --test integration -- nvrtc_compile::`.

mod cubin_elf;
mod host_cnn;
mod host_cnn_train;
mod host_conformance;
mod host_models;
mod host_network;
mod host_predictive;
mod host_spikes;
mod nvrtc_compile;
mod nvrtc_device;
