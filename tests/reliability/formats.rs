//! SONATA configs and neurotwin's own HDF5 connectome format: manifest variables resolved by whole names,
//! no silent fallback to built-in component files, `run.tstop` on the time grid, bundled data that travel
//! with the binary, and HDF5 files that cannot crash the reader however they are corrupted.

use std::path::{Path, PathBuf};

use super::common::*;

/// The repository's copy of the SONATA example `300_intfire`.
fn bundled_300_intfire() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sonata/300_intfire")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A copy of `300_intfire` in `dir/300_intfire` (without its `output/`), its simulation config edited by `edit`.
fn intfire_copy(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let to = dir.join("300_intfire");
    copy_dir(&bundled_300_intfire(), &to);
    let _ = std::fs::remove_dir_all(to.join("output"));
    let sim = to.join("simulation_config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sim).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&sim, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    to.join("config.json")
}

/// A neurotwin run of the SONATA config `config`, without `NEUROTWIN_DATA` (the binary's own bundled data).
fn run_sonata(config: &Path, out: &Path) -> std::process::Output {
    command(bin())
        .args(["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env_remove("NEUROTWIN_DATA")
        .current_dir(config.parent().unwrap())
        .output()
        .unwrap()
}

/// Defect 11: `$BASE` and `$BASE_DIR` both defined were expanded by substring replacement in hash-map order,
/// so `$BASE_DIR/inputs` sometimes became `<value of $BASE>_DIR/inputs` (6 of 8 runs failed).
#[test]
fn sonata_manifest_base_and_base_dir_resolve_every_time() {
    let t = tempfile::tempdir().unwrap();
    let config = intfire_copy(t.path(), |v| {
        v["manifest"] = serde_json::json!({
            "$BASE": "no_such_folder",
            "$BASE_DIR": ".",
            "$OUTPUT_DIR": "$BASE_DIR/output",
            "$INPUT_DIR": "$BASE_DIR/inputs",
        });
        v["run"]["tstop"] = serde_json::json!(200.0);
    });
    for k in 0..4 {
        let o = run_sonata(&config, &t.path().join(format!("out{k}")));
        assert!(o.status.success(), "run {k}: {}", stderr(&o));
    }
}

/// Defect 12: a components folder without the node type's `dynamics_params` file silently used the component
/// files compiled into the binary; now it is an error naming the config, the folder and the file.
#[test]
fn sonata_missing_dynamics_params_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let config = intfire_copy(t.path(), |v| v["run"]["tstop"] = serde_json::json!(100.0));
    let circuit = config.with_file_name("circuit_config.json");
    let text = std::fs::read_to_string(&circuit).unwrap();
    let empty = t.path().join("empty_components");
    std::fs::create_dir_all(&empty).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["components"]["point_neuron_models_dir"] = serde_json::json!(empty.to_str().unwrap());
    std::fs::write(&circuit, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let o = run_sonata(&config, &t.path().join("out"));
    let e = stderr(&o);
    assert!(!o.status.success(), "ran without its dynamics_params file: {}", stdout(&o));
    assert!(o.status.code().is_some(), "{e}");
    for needle in ["circuit_config.json", "empty_components", "IntFire1_exc_1.json", "point_neuron_models_dir"] {
        assert!(e.contains(needle), "`{needle}` not in: {e}");
    }
}

/// Defect 12: the bundled 300_intfire config named a components folder that did not exist and ran only
/// because of the fallback to files found through a path compiled into the binary. A copy of its folder
/// alone (no `NEUROTWIN_DATA`, no `shared_components` beside it) must run with its own component files.
#[test]
fn bundled_300_intfire_runs_from_its_own_folder() {
    let t = tempfile::tempdir().unwrap();
    let config = intfire_copy(t.path(), |v| v["run"]["tstop"] = serde_json::json!(300.0));
    let empty = t.path().join("empty_data");
    std::fs::create_dir_all(&empty).unwrap();
    let o = command(bin())
        .args(["run", config.to_str().unwrap(), "--out", t.path().join("out").to_str().unwrap()])
        .env("NEUROTWIN_DATA", &empty)
        .current_dir(t.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(t.path().join("out/spikes.h5").is_file());
}

/// Defect 14 (SONATA part): `run.tstop` not a multiple of `run.dt` was rounded silently.
#[test]
fn sonata_tstop_off_the_time_grid_is_rejected() {
    let t = tempfile::tempdir().unwrap();
    let config = intfire_copy(t.path(), |v| {
        v["run"]["tstop"] = serde_json::json!(100.04);
        v["run"]["dt"] = serde_json::json!(0.1);
    });
    let o = run_sonata(&config, &t.path().join("out"));
    let e = stderr(&o);
    assert!(!o.status.success(), "accepted tstop = 100.04 with dt = 0.1");
    for needle in ["simulation_config.json", "run.tstop", "run.dt", "100", "100.1"] {
        assert!(e.contains(needle), "`{needle}` not in: {e}");
    }
}

/// The bundled C. elegans connectome came from a path compiled into the binary (the repository's
/// `data/celegans`); a binary copied elsewhere carries its own copy.
#[test]
fn bundled_celegans_is_embedded_in_the_binary() {
    let t = tempfile::tempdir().unwrap();
    let o = command(bin())
        .args(["inspect", "celegans"])
        .env_remove("NEUROTWIN_DATA")
        .current_dir(t.path())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("473"), "{out}");
    assert!(out.contains("embedded"), "provenance does not say the copy is embedded: {out}");
    assert!(!out.contains(env!("CARGO_MANIFEST_DIR")), "read from the source tree: {out}");
}

/// A small connectome with names, coded strings and a compiled network, written by `neurotwin import`.
fn small_h5(dir: &Path) -> PathBuf {
    write(
        dir,
        "neurons.csv",
        "id,name,cell_type,transmitter,region\n1,AVAL,inter,ACh,head\n2,AVAR,inter,ACh,head\n3,DA01,motor,GABA,\n\
         4,PVDL,sensory,Glu,tail\n",
    );
    write(
        dir,
        "connections.csv",
        "pre,post,count,kind\n1,2,5,chemical\n2,3,3,chemical\n3,4,2,chemical\n2,4,4,electrical\n",
    );
    let o = neurotwin(
        &["import", "connections.csv", "--neurons", "neurons.csv", "--compile-dt", "0.1", "-o", "small.h5"],
        dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    dir.join("small.h5")
}

/// Deterministic pseudo-random numbers (SplitMix64).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Defect 3: `inspect` and `run` died with SIGSEGV inside libhdf5 (`H5HG_read`, the variable-length strings of
/// `/neurons/name`) on files with flipped bytes. 300 single-byte corruptions at seeded positions: `inspect`
/// must end with an exit status every time (an error or, where the byte was unused, success), never a signal.
#[test]
fn corrupted_connectome_files_never_crash_inspect() {
    let t = tempfile::tempdir().unwrap();
    let original = std::fs::read(small_h5(t.path())).unwrap();
    let mut rng = 20u64;
    let cases: Vec<(usize, u8)> = (0..300)
        .map(|_| {
            let pos = (splitmix(&mut rng) % original.len() as u64) as usize;
            (pos, (splitmix(&mut rng) % 255) as u8 + 1)
        })
        .collect();
    let dir = t.path();
    let crashes: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = cases
            .chunks(cases.len().div_ceil(6))
            .enumerate()
            .map(|(w, chunk)| {
                let original = &original;
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for (k, &(pos, xor)) in chunk.iter().enumerate() {
                        let mut bytes = original.clone();
                        bytes[pos] ^= xor;
                        let name = format!("c{w}_{k}.h5");
                        std::fs::write(dir.join(&name), &bytes).unwrap();
                        let o = neurotwin(&["inspect", &name], dir);
                        if o.status.code().is_none() {
                            bad.push(format!("byte {pos} ^ {xor:#04x}: {:?} {}", o.status, stderr(&o)));
                        }
                        let _ = std::fs::remove_file(dir.join(&name));
                    }
                    bad
                })
            })
            .collect();
        workers.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        crashes.is_empty(),
        "{} of {} corrupted files crashed inspect:\n{}",
        crashes.len(),
        cases.len(),
        crashes.join("\n")
    );
}

/// Defect 3: a corrupted file must be reported, not read silently: a changed byte inside a dataset's stored
/// values (a synapse count 5 that becomes 5.00003, still a valid count) is caught by the checksum, for
/// `inspect` and for `run`.
#[test]
fn corrupted_dataset_values_are_detected() {
    let t = tempfile::tempdir().unwrap();
    let path = small_h5(t.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // /connections/count: 5, 3, 2, 4 as little-endian f32, stored one after another.
    let counts: Vec<u8> = [5f32, 3.0, 2.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let at = bytes.windows(counts.len()).position(|w| w == counts).expect("the counts are stored uncompressed");
    bytes[at + 1] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let o = neurotwin(&["inspect", "small.h5"], t.path());
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}{}", stdout(&o));
    assert!(e.contains("small.h5") && e.contains("/connections/count"), "{e}");
    let scen = scenario("duration_ms = 10.0", "")
        .replace("connections = \"connections.csv\"\nneurons = \"neurons.csv\"", "file = \"small.h5\"");
    assert!(scen.contains("file = "), "{scen}");
    write(t.path(), "s.toml", &scen);
    let o = neurotwin(&["run", "s.toml", "--out", "out"], t.path());
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("/connections/count"), "{e}");
}
