//! Target `hdf5_cli`: byte-level mutations of valid HDF5 files, read by the `neurotwin` binary as a
//! subprocess (libhdf5 may abort the process on a corrupt file; a death by signal is a failure here too):
//! connectomes (`inspect`), NWB, plain-HDF5 and Flavell recordings (`compare --sim RUN --recording FILE`).
//! Seeds come from our own writers (`import`, `export nwb`, `write_plain_h5`) and the bundled test data.

use std::path::{Path, PathBuf};

use neurotwin_imaging::NwbOptions;

use super::common::{neurotwin, stderr};
use super::engine::{Shape, mutate_from};
use super::flavell::{LABELS, UID, labels_json, write_flavell_h5, write_flavell_h5_frames};
use super::harness::{CliCase, fuzz_cli, repo};

/// What a seed file is, and so which command reads it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Connectome,
    Nwb,
    PlainH5,
    Flavell,
}

struct Seeds {
    kind: Kind,
    files: Vec<Vec<u8>>,
    /// Extra arguments per file (e.g. `--series` for an NWB file with several series).
    extra: Vec<Vec<String>>,
}

fn ok(args: &[&str], cwd: &Path) {
    let o = neurotwin(args, cwd);
    assert!(o.status.success(), "neurotwin {args:?} failed: {}", stderr(&o));
}

/// A 5-neuron network named like the recordings' ROIs in `dir`, and runs of it: `run` (200 ms, always) and
/// `long` (25 s, when `long`). Returns the path of `run`.
fn network_and_runs(dir: &Path, long: bool) -> PathBuf {
    let mut neurons = String::from("id,name,cell_type,transmitter\n");
    for (i, l) in LABELS.iter().enumerate() {
        neurons += &format!("{},{l},inter,{}\n", i + 1, if i == 3 { "GABA" } else { "ACh" });
    }
    std::fs::write(dir.join("neurons.csv"), neurons).unwrap();
    std::fs::write(dir.join("connections.csv"), "pre,post,count\n1,2,5\n2,3,3\n3,4,2\n4,5,4\n5,1,2\n").unwrap();
    let scenario = "name = \"fuzz\"\n\n[network]\nconnections = \"connections.csv\"\nneurons = \"neurons.csv\"\n\
        transmitters = \"fly\"\nweight_per_synapse = 50.0\n\n[model]\nmodel = \"lif_exp\"\n\n[run]\n\
        duration_ms = DURATION\n\n[[stimulus]]\nkind = \"activation\"\ntargets = { all = true }\nrate_hz = 20.0\n\n\
        [output]\nraster = false\n";
    std::fs::write(dir.join("short.toml"), scenario.replace("DURATION", "200.0")).unwrap();
    ok(&["run", "short.toml", "-o", "run"], dir);
    if long {
        std::fs::write(dir.join("long.toml"), scenario.replace("DURATION", "25000.0")).unwrap();
        ok(&["run", "long.toml", "-o", "long"], dir);
    }
    dir.join("run")
}

/// The network, its runs and the seed files. The 200 ms run is shorter than every recording, so `compare`
/// stops with an error right after reading and matching the recording (a full comparison draws figures,
/// ~1 s per case in a debug build).
fn setup(dir: &Path) -> (PathBuf, Vec<Seeds>) {
    let run = network_and_runs(dir, true);
    ok(&["import", "connections.csv", "--neurons", "neurons.csv", "-o", "small.h5", "--compile-dt", "0.1"], dir);
    ok(&["import", "connections.csv", "--neurons", "neurons.csv", "-o", "plain.h5"], dir);
    ok(&["export", "nwb", "long", "-o", "run.nwb"], dir);
    let dff = NwbOptions { series: Some("dff".into()), ..Default::default() };
    let rec = neurotwin_imaging::read_nwb(repo().join("data/imaging/ophys_small.nwb"), &dff).unwrap();
    neurotwin_imaging::write_plain_h5(dir.join("traces.h5"), &rec).unwrap();
    let flavell = write_flavell_h5(dir);
    std::fs::write(dir.join("labels.json"), labels_json(&[(1, 5.0), (2, 4.0), (3, 3.0), (5, 2.0)])).unwrap();
    let read = |ps: &[PathBuf]| ps.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let none = |n: usize| vec![Vec::new(); n];
    let data = repo().join("data/imaging");
    let seeds = vec![
        Seeds {
            kind: Kind::Connectome,
            files: read(&[
                dir.join("small.h5"),
                dir.join("plain.h5"),
                repo().join("connectome/tests/data/connectome_v1_small.h5"),
            ]),
            extra: none(3),
        },
        Seeds {
            kind: Kind::Nwb,
            files: read(&[dir.join("run.nwb"), data.join("ophys_small.nwb")]),
            extra: vec![Vec::new(), vec!["--series".into(), "dff".into()]],
        },
        Seeds {
            kind: Kind::PlainH5,
            files: read(&[dir.join("traces.h5"), data.join("traces_small.h5")]),
            extra: none(2),
        },
        Seeds { kind: Kind::Flavell, files: read(&[flavell]), extra: none(1) },
    ];
    (run, seeds)
}

/// The command that reads a file of `kind` (`{FILE}`, `{OUT}` are filled in per case).
fn command(kind: Kind, run: &Path, labels: &Path) -> (String, Vec<String>) {
    let run = run.to_string_lossy();
    let compare = |format: &str| {
        let a = ["compare", "--sim", &run, "--recording", "{FILE}", "--format", format, "-o", "{OUT}"];
        a.iter().chain(&["--max-memory", "2G"]).map(|s| s.to_string()).collect::<Vec<_>>()
    };
    match kind {
        Kind::Connectome => {
            ("connectome.h5".into(), ["inspect", "{FILE}", "--max-memory", "2G"].map(String::from).to_vec())
        }
        Kind::Nwb => ("recording.nwb".into(), compare("nwb")),
        Kind::PlainH5 => ("recording.h5".into(), compare("plain-h5")),
        Kind::Flavell => {
            let mut a = compare("flavell");
            a.extend(["--labels".to_string(), labels.to_string_lossy().into_owned()]);
            (format!("{UID}-data.h5"), a)
        }
    }
}

/// Every unmutated seed must be read: a connectome inspected, a recording read and matched (the error
/// after reading says the run is too short), so mutations start from inputs that reach deep.
fn check_seeds(dir: &Path, run: &Path, labels: &Path, seeds: &[Seeds]) {
    for s in seeds {
        for (k, bytes) in s.files.iter().enumerate() {
            let (name, mut args) = command(s.kind, run, labels);
            args.extend(s.extra[k].iter().cloned());
            let (file, out) = (dir.join("seed").join(&name), dir.join("seed-out"));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, bytes).unwrap();
            let _ = std::fs::remove_dir_all(&out);
            let args: Vec<String> = args
                .iter()
                .map(|a| a.replace("{FILE}", &file.to_string_lossy()).replace("{OUT}", &out.to_string_lossy()))
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Kind::Connectome = s.kind {
                ok(&args, dir);
            } else {
                let e = stderr(&neurotwin(&args, dir));
                assert!(
                    e.contains("cannot compare: none of the") && e.contains("matched"),
                    "{:?} seed {k}: {e}",
                    s.kind
                );
            }
        }
    }
}

#[test]
fn hdf5_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (run, seeds) = setup(dir.path());
    let labels = dir.path().join("labels.json");
    check_seeds(dir.path(), &run, &labels, &seeds);
    fuzz_cli("hdf5_cli", 2, |rng| {
        let s = rng.pick(&seeds);
        let k = rng.below(s.files.len());
        let mut input = mutate_from(rng, &s.files[k], &s.files, Shape::Binary);
        input.note = format!("{:?} seed file {k} (tests/fuzz/hdf5_cli.rs `setup`)", s.kind);
        let (file_name, mut args) = command(s.kind, &run, &labels);
        args.extend(s.extra[k].iter().cloned());
        CliCase { input, file_name, args, what: format!("{:?} HDF5 file", s.kind) }
    });
}

/// Found by this target: a Flavell recording whose trace array declares 2^40 frames (a flipped dimension,
/// or a chunked dataset never written) made `compare` abort with "memory allocation of … bytes failed"
/// (SIGABRT) instead of refusing it; now the declared size is checked (against the file's size and the memory
/// limit) before anything is read.
#[test]
fn huge_declared_recording_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = network_and_runs(dir.path(), false);
    let h5 = write_flavell_h5_frames(dir.path(), Some(1usize << 40));
    std::fs::write(dir.path().join("labels.json"), labels_json(&[(1, 5.0)])).unwrap();
    let (r, h) = (run.to_string_lossy(), h5.to_string_lossy());
    let args = ["compare", "--sim", &r, "--recording", &h, "--format", "flavell", "--labels", "labels.json"];
    let o = neurotwin(&args, dir.path());
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("trace_array") && (e.contains("memory") || e.contains("damaged")), "{e}");
}
