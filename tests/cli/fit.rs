//! `neurotwin fit` end to end: a short cross-validated atlas fit on the bundled worm writes its report,
//! the host-built CUDA kernels give the CPU's fitted parameters bit for bit, and bad requests exit
//! non-zero with a message and without writing.

use super::common::{neurotwin, stderr, stdout};

use std::path::Path;

fn tiny_scenario(dir: &Path) -> std::path::PathBuf {
    let atlas = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/celegans/funatlas_pairs.csv");
    let text = format!(
        r#"name = "tiny"
[network]
source = "celegans"
[fit]
model = "rate"
activation = "sigmoid"
dt_ms = 500.0
data = "propagation-atlas"
atlas = "{}"
score_strains = ["unc31"]
stim_start_ms = 1000.0
stim_stop_ms = 3000.0
response_stop_ms = 6000.0
stim_amplitude = 5.0
folds = 2
checkpoint_every = 4
[fit.train]
epochs = 1
batch_size = 128
[fit.params.tau]
grouping = "cell_type"
init = 2000.0
lo = 500.0
[fit.params.theta]
init = 2.0
[fit.params.strength]
grouping = "receptor"
init = 0.01
lo = 0.0
"#,
        atlas.display()
    );
    let p = dir.join("tiny.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn fit_runs_and_cuda_host_matches_cpu_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path());
    let s = s.to_str().unwrap();
    let cpu = neurotwin(&["fit", s, "-o", "cpu"], dir.path());
    assert!(cpu.status.success(), "{}", stderr(&cpu));
    let out = stdout(&cpu);
    for needle in ["held out (cross-validated)", "fitted twin", "unfitted model", "-hops", "unc31 (final twin"] {
        assert!(out.contains(needle), "stdout lacks {needle}: {out}");
    }
    let host = neurotwin(&["fit", s, "-o", "host", "--backend", "cuda-host"], dir.path());
    assert!(host.status.success(), "{}", stderr(&host));
    let raw = |d: &str| -> Vec<u64> {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(d).join("fitted_params.json")).unwrap())
                .unwrap();
        v["raw"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap().to_bits()).collect()
    };
    assert_eq!(raw("cpu"), raw("host"));
}

#[test]
fn bad_fit_requests_exit_nonzero_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path());
    let s = s.to_str().unwrap();
    let o = neurotwin(&["fit", s, "-o", "."], dir.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("output folder contains the input"), "{}", stderr(&o));
    let o = neurotwin(&["fit", s, "-o", "x", "--backend", "cuda"], dir.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("use cpu or cuda-host"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only the scenario is there");
}
