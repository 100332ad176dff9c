//! `neurotwin import --to sonata`: CSV, the bundled worm and a SONATA circuit (the BMTK-built test network)
//! written as SONATA circuits and read back with the library's reader; refusals (gap junctions, a non-empty
//! folder, --compile-dt) exit non-zero with the fix and leave nothing behind.

use super::common::*;

use std::path::{Path, PathBuf};

use neurotwin_connectome::{CompileOptions, TransmitterMap, compile, read_sonata};

/// The tests of this file run one at a time: HDF5 opens files without close-on-exec, so a child process
/// (python, neurotwin) spawned by one test inherits another test's open HDF5 file and its lock, and an open
/// of that file in the meantime fails with "unable to lock file".
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn ok(args: &[&str], cwd: &Path) -> String {
    let o = neurotwin(args, cwd);
    assert!(o.status.success(), "{args:?} failed: {}", stderr(&o));
    stdout(&o)
}

fn fails(args: &[&str], cwd: &Path, expect: &[&str]) {
    let o = neurotwin(args, cwd);
    let err = stderr(&o);
    assert!(!o.status.success(), "{args:?} should fail");
    for e in expect {
        assert!(err.contains(e), "stderr lacks `{e}`:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn csv_connectome_to_sonata_reads_back() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "neurons.csv", NEURONS_CSV);
    write(d.path(), "connections.csv", CONNECTIONS_CSV);
    let out = ok(&["import", "connections.csv", "--neurons", "neurons.csv", "--to", "sonata", "-o", "circ"], d.path());
    assert!(out.contains("SONATA") && out.contains("circuit_config.json"), "{out}");
    let c = read_sonata(&d.path().join("circ/circuit_config.json")).unwrap();
    let n = &c.connectome;
    assert_eq!(n.neurons.len(), 4);
    // The receptor classes come from the neurons' transmitters again (no explicit receptors were given):
    // compiled under the fly map, as `neurotwin import` resolves them.
    assert!(n.connections.iter().all(|x| x.receptor.is_none()));
    let opt = CompileOptions { transmitters: TransmitterMap::fly(), ..Default::default() };
    let mut got: Vec<(u32, u32, f32)> =
        compile(n, &opt).unwrap().chemical.synapses().iter().map(|x| (x.pre, x.post, x.weight)).collect();
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // CONNECTIONS_CSV: 1→2 ×5, 2→3 ×3, 3→4 ×2 (C is GABAergic: inhibitory under the fly map), 2→4 ×4.
    assert_eq!(got, [(0, 1, 5.0), (1, 2, 3.0), (1, 3, 4.0), (2, 3, -2.0)]);
    assert_eq!(
        n.neurons.iter().map(|x| x.cell_type.as_str()).collect::<Vec<_>>(),
        ["sensory", "inter", "inter", "motor"]
    );
}

#[test]
fn celegans_needs_a_gap_junction_choice_and_overwrite_permission() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    fails(
        &["import", "celegans", "--to", "sonata", "-o", "worm"],
        d.path(),
        &["1450 gap junctions", "--gap-junctions"],
    );
    assert!(files_below(d.path()).is_empty(), "{:?}", files_below(d.path()));
    ok(&["import", "celegans", "--to", "sonata", "-o", "worm", "--gap-junctions", "write"], d.path());
    let c = read_sonata(&d.path().join("worm/circuit_config.json")).unwrap();
    assert_eq!((c.connectome.neurons.len(), c.connectome.connections.len()), (473, 6329));
    fails(
        &["import", "celegans", "--to", "sonata", "-o", "worm", "--gap-junctions", "omit"],
        d.path(),
        &["holds the outputs of an earlier", "--overwrite"],
    );
    ok(&["import", "celegans", "--to", "sonata", "-o", "worm", "--gap-junctions", "omit", "--overwrite"], d.path());
    let c = read_sonata(&d.path().join("worm/circuit_config.json")).unwrap();
    assert_eq!(c.connectome.connections.len(), 4879);
    fails(
        &["import", "celegans", "--to", "sonata", "-o", "w2", "--gap-junctions", "omit", "--compile-dt", "0.1"],
        d.path(),
        &["--compile-dt"],
    );
    assert!(!d.path().join("w2").exists());
}

#[test]
fn sonata_circuit_to_sonata_keeps_populations() {
    let _serial = serial();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("connectome/tests/data/bmtk_small/circuit_config.json");
    let d = tempfile::tempdir().unwrap();
    ok(&["import", src.to_str().unwrap(), "--to", "sonata", "-o", "copy"], d.path());
    let a = read_sonata(&src).unwrap();
    let b = read_sonata(&d.path().join("copy/circuit_config.json")).unwrap();
    let pops = |c: &neurotwin_connectome::SonataCircuit| {
        c.populations.iter().map(|p| (p.name.clone(), p.count, p.is_virtual)).collect::<Vec<_>>()
    };
    assert_eq!(pops(&b), pops(&a));
    assert_eq!(pops(&b)[2], ("input".to_string(), 16, true));
    assert_eq!(b.connectome.neurons, a.connectome.neurons);
    assert_eq!(b.connectome.connections.len(), a.connectome.connections.len());
    // And to our HDF5 format, as before.
    ok(&["import", src.to_str().unwrap(), "-o", "bmtk.h5"], d.path());
    assert!(d.path().join("bmtk.h5").is_file());
}
