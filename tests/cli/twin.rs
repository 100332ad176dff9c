//! `neurotwin run` on twin scenarios (`[twin]`): the bundled fitted worm twin under an ACh block, and a
//! small twin whose bad input must exit non-zero with a located message and nothing written.

use super::common::*;

use std::path::Path;

const FIT: &str = r#"name = "toy-fit"
[network]
connections = "connections.csv"
neurons = "neurons.csv"
transmitters = "celegans"

[fit]
model = "rate"
activation = "relu"
dt_ms = 10.0
data = "propagation-atlas"
stim_start_ms = 100.0
stim_stop_ms = 300.0
response_stop_ms = 1000.0

[fit.params.theta]
init = -1.0

[fit.params.strength]
grouping = "receptor"
init = 0.3
lo = 0.0
"#;

fn twin(receptor: &str) -> String {
    format!(
        r#"name = "toy-twin"
[twin]
fit_scenario = "fit.toml"

[run]
duration_ms = 1000.0

[[stimulus]]
targets = {{ names = ["A"] }}
amplitude = 2.0
start_ms = 100.0
stop_ms = 300.0

[[perturbation]]
kind = "block"
receptor = "{receptor}"
dose = 0.0
ic50 = 1.0

[sweep]
param = "perturbation.0.dose"
values = [0.0, 1.0, inf]

[[readout]]
label = "D"
targets = {{ names = ["D"] }}
"#
    )
}

fn setup(dir: &Path, receptor: &str) {
    write(dir, "neurons.csv", NEURONS_CSV);
    write(dir, "connections.csv", CONNECTIONS_CSV);
    write(dir, "fit.toml", FIT);
    write(dir, "twin.toml", &twin(receptor));
}

#[test]
fn a_twin_scenario_runs_through_neurotwin_run() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "ACh");
    let o = neurotwin(&["run", "twin.toml", "-o", "out"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in ["toy-twin", "perturbation.0.dose", "ACh block", "D unfitted", "50 %", "100 %", "dose_response.csv"] {
        assert!(out.contains(needle), "stdout lacks `{needle}`:\n{out}");
    }
    for f in ["summary.json", "dose_response.csv", "dose_response.png"] {
        assert!(dir.path().join("out").join(f).is_file(), "missing {f}");
    }
    let o = neurotwin(&["run", "twin.toml", "-o", "out2", "--json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["points"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_twin_input_exits_non_zero_with_file_line_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "nicotinic");
    let o = neurotwin(&["run", "twin.toml", "-o", "out"], dir.path());
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("twin.toml:16") && err.contains("`nicotinic`") && err.contains("ACh"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(files_below(&dir.path().join("out")).is_empty());
    // A GPU backend is refused (the rate twin runs on the CPU).
    setup(dir.path(), "ACh");
    let o = neurotwin(&["run", "twin.toml", "-o", "out", "--backend", "cuda-host"], dir.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("CPU"), "{}", stderr(&o));
    assert!(files_below(&dir.path().join("out")).is_empty());
}

#[test]
fn the_bundled_fitted_twin_runs_under_an_ach_block() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("twin");
    let o = neurotwin(&["run", "scenarios/celegans_twin_ach_block.toml", "-o", out.to_str().unwrap()], root);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for needle in ["AVA fitted", "AVA unfitted", "AVB fitted", "fitted_twin_atlas.json", "91 %"] {
        assert!(text.contains(needle), "stdout lacks `{needle}`:\n{text}");
    }
    let csv = std::fs::read_to_string(out.join("dose_response.csv")).unwrap();
    // 5 doses × 2 twins × 3 groups × 2 windows.
    assert_eq!(csv.lines().count(), 1 + 5 * 2 * 3 * 2, "{csv}");
}
