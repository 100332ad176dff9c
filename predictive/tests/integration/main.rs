//! Integration tests of neurotwin-predictive: MAP inference, the backends and the scenarios.
//!
//! One test binary per crate, since each test binary links the whole dependency tree and that dominates CI
//! time: the former `tests/*.rs` files are the modules below. Run one module with a filter, e.g.
//! `cargo test -p neurotwin-predictive --test integration -- map::`.

mod backends;
mod map;
mod scenarios;
