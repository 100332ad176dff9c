//! Integration tests of neurotwin-imaging: the readers, the NWB writer and the comparison metrics.
//!
//! One test binary per crate, since each test binary links the whole dependency tree and that dominates CI
//! time: the former `tests/*.rs` files are the modules below. Run one module with a filter, e.g.
//! `cargo test -p neurotwin-imaging --test integration -- nwb_write::`.

/// Child processes that do not inherit open HDF5 files: one copy for every test binary.
#[path = "../../../tests/common/child.rs"]
mod child;
mod common;
mod compare;
mod flavell;
mod labels;
mod nwb;
mod nwb_write;
mod plain_csv;
