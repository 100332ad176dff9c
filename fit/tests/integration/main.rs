//! Integration tests of neurotwin-fit: gradients against finite differences and the host-built kernels.
//!
//! One test binary per crate, since each test binary links the whole dependency tree and that dominates CI
//! time: the former `tests/*.rs` files are the modules below. Run one module with a filter, e.g.
//! `cargo test -p neurotwin-fit --test integration -- gradients::`.

mod atlas_task;
mod graded_gradients;
mod gradients;
mod host_kernels;
mod host_kernels_graded;
mod host_kernels_lif;
