//! Integration tests of neurotwin-scenarios: scenario runs, the atlas and Flavell fits, SONATA runs.
//!
//! One test binary per crate, since each test binary links the whole dependency tree and that dominates CI
//! time: the former `tests/*.rs` files are the modules below. Run one module with a filter, e.g.
//! `cargo test -p neurotwin-scenarios --test integration -- twin_run::`.

mod atlas;
mod features;
mod fit_atlas;
mod fit_flavell;
mod peer_rates;
mod sonata_run;
mod twin_run;
