//! Integration tests of neurotwin-sim: engine, determinism, the distributed backend and backend conformance.
//!
//! One test binary per crate, since each test binary links the whole dependency tree and that dominates CI
//! time: the former `tests/*.rs` files are the modules below. Run one module with a filter, e.g.
//! `cargo test -p neurotwin-sim --test integration -- determinism::`.

mod coba_rate;
mod conformance_host_kernels;
mod determinism;
mod distributed;
mod engine_basics;
mod equation_models;
mod gpu_conformance;
mod profile;
mod sonata_h5py;
mod stdp;
mod streaming;
mod suite;
