//! Helpers for end-to-end tests of the `neurotwin` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// Child processes that do not inherit open HDF5 files (shared with the connectome and imaging tests).
#[path = "child.rs"]
mod child;
pub use child::command;

/// The binary under test: this build's `neurotwin`, or `NEUROTWIN_TEST_BIN` (e.g. a build of an older
/// commit, to check that a regression test fails there).
pub fn bin() -> String {
    std::env::var("NEUROTWIN_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_neurotwin").to_string())
}

pub fn neurotwin(args: &[&str], cwd: &Path) -> Output {
    command(bin()).args(args).current_dir(cwd).output().expect("run neurotwin")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes `name` into `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Files below `dir` (recursively); empty if it does not exist.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(files_below(&p)) } else { out.push(p) }
        }
    }
    out
}

/// A small valid connectome in the generic CSV layout: 4 neurons, a few chemical synapses.
pub const NEURONS_CSV: &str =
    "id,name,cell_type,transmitter\n1,A,sensory,ACh\n2,B,inter,ACh\n3,C,inter,GABA\n4,D,motor,ACh\n";
pub const CONNECTIONS_CSV: &str = "pre,post,count\n1,2,5\n2,3,3\n3,4,2\n2,4,4\n";

/// A valid scenario over `neurons.csv`/`connections.csv` in the same folder; `extra` is appended.
pub fn scenario(run: &str, extra: &str) -> String {
    format!(
        r#"name = "t"

[network]
connections = "connections.csv"
neurons = "neurons.csv"
transmitters = "fly"
weight_per_synapse = 50.0

[model]
model = "lif_exp"

[run]
{run}

[[stimulus]]
kind = "activation"
targets = {{ names = ["A"] }}
rate_hz = 50.0
{extra}
"#
    )
}
