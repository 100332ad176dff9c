//! The spike output is a SONATA spike report that h5py reads (layout, dtypes, enum attribute, values).

use std::path::PathBuf;
use std::process::Command;

use neurotwin_sim::SimRecording;
use neurotwin_sim::output::write_sonata_spikes;

fn venv_python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    p.is_file().then_some(p)
}

#[test]
fn sonata_spikes_read_back_with_h5py() {
    let Some(py) = venv_python() else {
        eprintln!("SKIP: .venv with h5py not found (run scripts/setup.sh; `make test` does)");
        return;
    };
    let rec = SimRecording {
        dt_ms: 0.1,
        steps: 100,
        spike_steps: vec![3, 3, 10, 99],
        spike_neurons: vec![0, 7, 2, 7],
        spike_counts: vec![1, 0, 1, 0, 0, 0, 0, 2],
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spikes.h5");
    write_sonata_spikes(&path, "worm", &rec).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/check_sonata_spikes.py");
    let o = Command::new(py).arg(script).arg(&path).output().unwrap();
    assert!(o.status.success(), "h5py check failed: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let w = &v["worm"];
    assert_eq!(w["n"], 4);
    assert_eq!(w["sorting"], "by_time");
    assert_eq!(w["units"], "ms");
    assert_eq!(w["id_dtype"], "uint64");
    assert_eq!(w["t_dtype"], "float64");
    assert_eq!(w["ids_sum"], 16);
    // NEST convention: a spike in step s is stamped (s + 1) dt
    assert!((w["t_first"].as_f64().unwrap() - 0.4).abs() < 1e-12);
    assert!((w["t_last"].as_f64().unwrap() - 10.0).abs() < 1e-9);
}
