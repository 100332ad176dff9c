//! Target `sonata`: a copy of data/sonata/300_intfire with one of its text files mutated (the simulation,
//! circuit and top-level configs, node sets, node/edge type tables, component JSONs), read with
//! `sonata::prepare_sonata` in this process. The HDF5 node, edge and spike files stay valid; `run.tstop` of
//! the seed is shortened to 100 ms (fewer input spikes to read per case).

use std::path::{Path, PathBuf};

use neurotwin_scenarios::sonata::prepare_sonata;

use super::engine::{Shape, mutate_from};
use super::harness::{fuzz_in_process, repo};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() { copy_dir(&src, &dst) } else { std::fs::copy(&src, &dst).map(|_| ()).unwrap() }
    }
}

/// The text files of the circuit (relative paths), the four configs first.
fn text_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        ["config.json", "simulation_config.json", "circuit_config.json", "node_sets.json"].map(PathBuf::from).to_vec();
    for sub in ["network", "components/point_neuron_models", "components/synaptic_models"] {
        for p in super::files_in(&root.join(sub), &[".csv", ".json"]) {
            v.push(PathBuf::from(sub).join(p.file_name().unwrap()));
        }
    }
    v
}

#[test]
fn sonata() {
    super::set_fuzz_limits();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("300_intfire");
    copy_dir(&repo().join("data/sonata/300_intfire"), &root);
    let sim = root.join("simulation_config.json");
    let text = std::fs::read_to_string(&sim).unwrap();
    std::fs::write(&sim, text.replace("\"tstop\": 3000.0", "\"tstop\": 100.0")).unwrap();
    let files = text_files(&root);
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(root.join(f)).unwrap()).collect();
    let chosen = std::cell::Cell::new(0usize);
    let dirty = std::cell::Cell::new(None::<usize>);
    fuzz_in_process(
        "sonata",
        "txt",
        "a text file of data/sonata/300_intfire",
        |rng| {
            // Half the cases mutate one of the four configs.
            let k = if rng.chance(1, 2) { rng.below(4) } else { rng.below(files.len()) };
            chosen.set(k);
            let mut m = mutate_from(rng, &originals[k], &originals, Shape::Text);
            m.note = format!("replaces {}", files[k].display());
            m
        },
        |rng, bytes| {
            // A case that panicked left its file mutated: put it back first.
            if let Some(j) = dirty.take() {
                std::fs::write(root.join(&files[j]), &originals[j]).unwrap();
            }
            let k = chosen.get();
            std::fs::write(root.join(&files[k]), bytes).unwrap();
            dirty.set(Some(k));
            let entry = if rng.chance(1, 2) { "config.json" } else { "simulation_config.json" };
            if prepare_sonata(&root.join(entry)).is_ok() { "prepared" } else { "error" }
        },
    );
}
