//! Integration tests of neurotwin-segment: I/O, the CNN, the pipeline, metrics and resource guards.
//!
//! One test binary per crate, since each test binary links the whole dependency tree and that dominates CI
//! time: the former `tests/*.rs` files are the modules below. Run one module with a filter, e.g.
//! `cargo test -p neurotwin-segment --test integration -- gala::`.

mod affinity;
mod cnn;
mod cnn_pipeline;
mod cnn_train;
mod gala;
mod guards;
mod io;
mod metrics;
mod out_of_core;
mod phantom;
mod zarr;
