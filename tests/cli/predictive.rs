//! `neurotwin run` and `neurotwin pc` on predictive-coding scenario files (`model = "predictive_coding"`):
//! the connectome-masked C. elegans network runs end to end and writes every output; the CPU and the
//! host-built CUDA kernels give identical summaries; unknown keys are reported with their location.

use super::common::*;

fn repo_file(rel: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
}

#[test]
fn run_dispatches_predictive_scenarios_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    // Shorten training through a copy of the bundled scenario.
    let text = std::fs::read_to_string(repo_file("scenarios/pc_celegans.toml"))
        .unwrap()
        .replace("batches = 200", "batches = 10");
    let sc = write(dir.path(), "pc.toml", &text);
    let o = neurotwin(&["run", sc.to_str().unwrap(), "-o", "out", "--json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["layer_sizes"], serde_json::json!([77, 70, 135]));
    assert_eq!(v["training_batches"], 10);
    assert_eq!(v["eval_energy_monotone"], true);
    for f in ["weights.h5", "reconstructions.h5", "energy.csv", "training.csv", "summary.json"] {
        assert!(dir.path().join("out").join(f).is_file(), "{f} missing");
    }

    let o2 = neurotwin(&["pc", sc.to_str().unwrap(), "-o", "out2", "--backend", "cuda-host", "--json"], dir.path());
    assert!(o2.status.success(), "{}", stderr(&o2));
    let v2: serde_json::Value = serde_json::from_str(&stdout(&o2)).unwrap();
    for k in ["train_energy_last", "eval_energy_final", "reconstruction_error_final"] {
        assert_eq!(v[k], v2[k], "{k}: cpu vs cuda-host");
    }
    let o3 = neurotwin(&["pc", sc.to_str().unwrap(), "-o", "out3", "--batches", "2"], dir.path());
    assert!(o3.status.success(), "{}", stderr(&o3));
    assert!(stdout(&o3).contains("reconstruction error"), "{}", stdout(&o3));
}

#[test]
fn predictive_scenario_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo_file("scenarios/pc_celegans.toml"))
        .unwrap()
        .replace("dt = 0.1", "dt = 0.1\ntau = 3");
    let sc = write(dir.path(), "bad.toml", &text);
    let o = neurotwin(&["run", sc.to_str().unwrap()], dir.path());
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("tau") && err.contains("bad.toml"), "{err}");
    let o = neurotwin(&["run", sc.to_str().unwrap(), "--backend", "cuda"], dir.path());
    assert!(!o.status.success());
}
