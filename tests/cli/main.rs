//! End-to-end tests of the `neurotwin` binary, one module per command area.
//!
//! One test binary (each binary links the whole dependency tree, which dominates CI time): the former
//! `tests/cli_*.rs` files are the modules below (`tests/reliability` and `tests/fuzz` share `tests/common`).
//! Run one with a filter, e.g. `cargo test --test cli -- run::`.

#[path = "../common/mod.rs"]
mod common;

mod backends;
mod compare;
mod errors;
mod export;
mod fit;
mod import_sonata;
mod neuroml;
mod predictive;
mod run;
mod segment;
mod twin;
