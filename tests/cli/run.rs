//! End-to-end runs of the binary: the demo, import → HDF5 → identical compiled matrix, inspect.

use super::common::*;

use std::path::Path;

use neurotwin_connectome::import::load_celegans_bundled;
use neurotwin_connectome::{CompileOptions, TransmitterMap, compile, hdf5io};

#[test]
fn demo_prints_the_readout_table_and_writes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let o = neurotwin(&["demo", "-o", "d"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in ["touch receptors", "AVA (backward)", "AVAL AVAR", "before (Hz)", "touch (Hz)"] {
        assert!(out.contains(needle), "demo output lacks `{needle}`:\n{out}");
    }
    for f in ["spikes.h5", "summary.json", "raster.png"] {
        assert!(dir.path().join("d").join(f).is_file(), "missing {f}");
    }
    // The touch receptors are driven at 60 Hz during the touch window: their measured rate there must
    // be close to it (forced Poisson spiking, 3 cells × 0.4 s ≈ 72 expected spikes).
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("d/summary.json")).unwrap()).unwrap();
    let touch = &summary["readout"][0]["windows_hz"][1][1];
    let hz = touch.as_f64().unwrap();
    assert!((45.0..90.0).contains(&hz), "touch receptors at {hz} Hz during the touch");
}

/// A copy of the binary in a folder of its own, run from another folder (nothing of the repository in reach by a
/// relative path), still runs the demo and says its data are built in: nothing is read from the build tree.
#[test]
fn a_moved_binary_runs_the_demo_from_any_folder() {
    let home = tempfile::tempdir().unwrap();
    let moved = home.path().join("neurotwin");
    std::fs::copy(bin(), &moved).unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| command(&moved).args(args).current_dir(work.path()).output().unwrap();
    let o = run(&["doctor"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("bundled data: built into the binary"), "{}", stdout(&o));
    let o = run(&["demo", "-o", "d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("AVA (backward)"), "{}", stdout(&o));
    assert!(work.path().join("d/spikes.h5").is_file());
}

/// `run --profile` prints the time per phase and writes it into summary.json; the spikes are those of the same run
/// unprofiled; a run kind without a step profile (SONATA) is refused with the reason.
#[test]
fn profile_prints_the_phase_split_and_changes_no_spike() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(
        dir.path(),
        "b.toml",
        "name = \"b\"\n[network]\ngenerator = { kind = \"brunel\", order = 100 }\n[run]\nduration_ms = 100.0\nseed = 2\n",
    );
    let s = s.to_str().unwrap();
    let o = neurotwin(&["run", s, "-o", "plain"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("time per phase"));
    let o = neurotwin(&["run", s, "-o", "timed", "--profile"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in ["time per phase", "update", "delivery", "recording", "total", "external inputs"] {
        assert!(out.contains(needle), "no `{needle}` in:\n{out}");
    }
    let read = |d: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(d).join("summary.json")).unwrap()).unwrap()
    };
    let (plain, timed) = (read("plain"), read("timed"));
    assert!(plain.get("phases").is_none());
    let p = &timed["phases"];
    let total = p["total_s"].as_f64().unwrap();
    assert!(total > 0.0 && p["update_s"].as_f64().unwrap() > 0.0, "{p}");
    assert_eq!(plain["total_spikes"], timed["total_spikes"]);
    let spikes = |d: &str| neurotwin_sim::readback::read_run_spikes(&dir.path().join(d)).unwrap().times_ms;
    assert_eq!(spikes("plain"), spikes("timed"));
    let sonata = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sonata/300_intfire/simulation_config.json");
    let o = neurotwin(&["run", sonata.to_str().unwrap(), "-o", "son", "--profile"], dir.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--profile") && stderr(&o).contains("SONATA"), "{}", stderr(&o));
    assert!(!dir.path().join("son").exists());
}

#[test]
fn import_to_hdf5_gives_the_identical_compiled_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let o = neurotwin(&["import", "celegans", "-o", "worm.h5"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let opt =
        CompileOptions { transmitters: TransmitterMap::celegans(), gap_per_junction_ns: 0.1, ..Default::default() };
    let original = load_celegans_bundled().unwrap();
    let back = hdf5io::read_connectome(dir.path().join("worm.h5")).unwrap();
    assert_eq!(back, original);
    let a = compile(&original, &opt).unwrap();
    let b = compile(&back, &opt).unwrap();
    assert_eq!(a.chemical, b.chemical);
    assert_eq!(a.gap, b.gap);
    assert_eq!(a, b);
    // The HDF5 file itself is a valid connectome source for `inspect`.
    let o = neurotwin(&["inspect", "worm.h5", "--transmitters", "celegans"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("bytes/synapse"));
}

#[test]
fn inspect_reports_bytes_per_synapse_and_a_known_path() {
    let dir = tempfile::tempdir().unwrap();
    let o = neurotwin(&["inspect", "celegans", "--from", "ALML", "--to", "AVDR", "--json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let bps = v["compiled"]["bytes_per_synapse"].as_f64().unwrap();
    assert!(bps > 4.0 && bps <= 8.0, "bytes/synapse {bps}");
    // Cook et al. 2019: ALML makes chemical synapses onto AVDR directly (3 synapses).
    assert_eq!(v["path"]["hops"], 1);
    assert_eq!(v["neurons"], 473);
}

/// Equation-defined models run as native code compiled at run time (`sim/src/native_models.rs`; `--profile` says
/// which engine ran), kept in the on-disk cache between processes; without a working C++ compiler they run interpreted with a one-line note and
/// the same spikes; `NEUROTWIN_EQUATIONS=native` makes a missing compiler an error (exit 1, nothing written), and
/// an unknown value is refused with the accepted ones.
#[test]
fn equation_models_run_natively_and_fall_back_to_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cuba_equations.toml");
    let scenario = scenario.to_str().unwrap();
    let cache = dir.path().join("cache");
    let run = |out: &str, env: &[(&str, &str)]| {
        let mut c = command(bin());
        c.args(["run", scenario, "-o", out, "--profile"]).current_dir(dir.path()).env("NEUROTWIN_CACHE_DIR", &cache);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run neurotwin")
    };
    let total = |d: &str| -> serde_json::Value {
        let s = std::fs::read_to_string(dir.path().join(d).join("summary.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&s).unwrap()["total_spikes"].clone()
    };
    // Native: no note, and the library is cached.
    let o = run("native", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("interpreted"), "{}", stderr(&o));
    assert!(stdout(&o).contains("as native code (") && stdout(&o).contains("lanes a vector"), "{}", stdout(&o));
    assert_eq!(total("native"), 21504, "CUBA 4000's spikes (the built-in lif_exp's)");
    let entries = files_below(&cache.join("native"));
    assert!(entries.iter().any(|p| p.extension().is_some_and(|e| e == "so")), "cache: {entries:?}");
    // No compiler and an empty cache: the interpreter, with the note, and the same spikes.
    let no_cxx = [("CXX", "/nonexistent/c++"), ("NEUROTWIN_CACHE_DIR", "")];
    let o = run("interpreted", &no_cxx);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("runs interpreted") && stderr(&o).contains("CXX"), "{}", stderr(&o));
    assert!(stdout(&o).contains("the equation-defined model interpreted"), "{}", stdout(&o));
    assert_eq!(total("interpreted"), 21504);
    // Native required: an error naming the variable and the compiler.
    let o = run("required", &[no_cxx[0], no_cxx[1], ("NEUROTWIN_EQUATIONS", "native")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("NEUROTWIN_EQUATIONS=native") && stderr(&o).contains("/nonexistent/c++"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("required").exists());
    let o = run("bogus", &[("NEUROTWIN_EQUATIONS", "fast")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("`auto`") && stderr(&o).contains("`interpreter`"), "{}", stderr(&o));
}
