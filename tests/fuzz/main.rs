//! Fuzz targets (issue 20): mutated copies of real input files (bundled data, scenarios, test fixtures and
//! files our own writers produce) fed to every reader, on stable Rust, for a bounded time per target
//! (`NEUROTWIN_FUZZ_SECONDS`, default 3 s). A returned error is the goal; a panic, abort, signal or hang is
//! a failure whose input is saved under `target/fuzz-failures/`. The case count is printed (`--nocapture`).
//!
//! Replay one case: `NEUROTWIN_FUZZ_SEED=S NEUROTWIN_FUZZ_CASE=K cargo test --test fuzz TARGET -- --nocapture`.
//! Parsers of TOML/CSV/JSON run in this process under `catch_unwind`; HDF5 files go through the
//! `neurotwin` binary as subprocesses, since libhdf5 can take the process down on a corrupt file.

#[path = "../common/mod.rs"]
mod common;

mod csv_import;
mod engine;
mod flavell;
mod harness;
mod hdf5_cli;
mod scenario;
mod sonata;
mod zarr;

use std::path::Path;

/// Resource limits for in-process targets: a mutated size must be refused by the guards, not allocated.
pub fn set_fuzz_limits() {
    neurotwin_io::budget::set_limits(neurotwin_io::budget::Limits {
        max_memory_bytes: 2 << 30,
        max_seconds: 3600.0,
        force: false,
        memory_source: "the fuzz tests' 2 GiB",
    });
}

/// The text files directly in `dir` whose names end in one of `exts`, sorted by name.
pub fn files_in(dir: &Path, exts: &[&str]) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && exts.iter().any(|x| p.to_string_lossy().ends_with(x)))
        .collect();
    v.sort();
    v
}

#[test]
fn engine_is_deterministic_and_mutates() {
    let corpus = vec![b"a = 1\nb = \"x\"\nc = [2.5, 3]\n".to_vec(), b"id,n\n1,2\n".to_vec()];
    let run = |k| engine::mutate(&mut engine::case_rng("t", k), &corpus, engine::Shape::Text).bytes;
    assert_eq!(run(7), run(7), "case k must be reproducible from (seed, target, k)");
    let changed = (0..200).filter(|&k| !corpus.contains(&run(k))).count();
    assert!(changed > 150, "only {changed} of 200 cases differ from the seeds");
}
