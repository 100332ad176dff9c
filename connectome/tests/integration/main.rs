//! Integration tests of neurotwin-connectome: importers, generators, HDF5 and SONATA I/O.
//!
//! One test binary per crate, since each test binary links the whole dependency tree and that dominates CI
//! time: the former `tests/*.rs` files are the modules below. Run one module with a filter, e.g.
//! `cargo test -p neurotwin-connectome --test integration -- sonata_roundtrip::`.

mod bmtk_crosscheck;
/// Child processes that do not inherit open HDF5 files: one copy for every test binary.
#[path = "../../../tests/common/child.rs"]
mod child;
mod child_check;
mod file_shares;
mod flybrain;
mod generators_brunel;
mod generators_coba;
mod generators_cuba;
mod generators_pd14;
mod graph_queries;
mod hdf5_errors;
mod hdf5_roundtrip;
mod import_celegans;
mod import_csv;
mod import_errors;
mod shares;
mod sonata;
mod sonata_roundtrip;
