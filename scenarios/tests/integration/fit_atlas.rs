//! `[fit]` scenarios on the bundled worm and the bundled propagation atlas: a short cross-validated fit
//! runs end to end and writes its report; bad input is refused with a located message and nothing
//! written.

use std::path::{Path, PathBuf};

use neurotwin_scenarios::fitting::{read_fit_scenario, run_fit};

fn atlas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/celegans/funatlas_pairs.csv")
}

/// A small, fast fit scenario (2 folds, few epochs, 10 s responses); `extra` is appended.
fn scenario(dir: &Path, atlas: &Path, fit_extra: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"name = "tiny-fit"
[network]
source = "celegans"
transmitters = "celegans"

[fit]
model = "rate"
activation = "sigmoid"
dt_ms = 500.0
data = "propagation-atlas"
atlas = "{}"
strain = "wt"
score_strains = ["unc31"]
stim_start_ms = 1000.0
stim_stop_ms = 3000.0
response_stop_ms = 10000.0
stim_amplitude = 5.0
folds = 2
restarts = 1
checkpoint_every = 8
{fit_extra}

[fit.train]
epochs = 2
batch_size = 64
lr = 0.05

[fit.params.tau]
grouping = "cell_type"
init = 2000.0
lo = 500.0

[fit.params.theta]
grouping = "cell_type"
init = 2.0

[fit.params.slope]
grouping = "global"
init = 2.0
lo = 0.0

[fit.params.strength]
grouping = "receptor"
init = 0.01
lo = 0.0

[fit.params.gap]
init = 0.02
lo = 0.0
{extra}
"#,
        atlas.display()
    );
    let p = dir.join("fit.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(path: &Path, out: &Path) -> Result<neurotwin_scenarios::fitting::AtlasFitReport, String> {
    let file = read_fit_scenario(path).map_err(|e| e.to_string())?;
    run_fit(&file, Some(out), false).map(|r| r.0).map_err(|e| e.to_string())
}

#[test]
fn short_atlas_fit_reports_every_baseline_and_writes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), &atlas(), "", "");
    let out = dir.path().join("out");
    let r = run(&path, &out).unwrap();
    let cv = &r.cross_validated;
    assert_eq!(cv.strain, "wt");
    assert!(cv.n_stimulated > 100 && cv.n_pairs > 10_000 && cv.n_responders > 500, "{cv:?}");
    for p in ["fitted twin", "unfitted model", "direct wiring", "per-neuron mean (no connectome)", "-hops"] {
        let s = cv.get(p).unwrap_or_else(|| panic!("predictor {p} missing"));
        let auc = s.auc.expect("AUC");
        assert!((0.3..0.9).contains(&auc), "{p}: AUC {auc}");
    }
    assert_eq!(r.other_strains.len(), 1);
    assert_eq!(r.other_strains[0].strain, "unc31");
    // Every held-out pair was predicted by a fold that did not train on its stimulation.
    let held: Vec<_> = r.pairs.iter().filter(|p| p.fit.starts_with("fold")).collect();
    assert_eq!(held.len(), cv.n_pairs);
    for f in
        ["summary.json", "fitted_params.json", "fit_history.csv", "pairs.csv", "loss.png", "predicted_vs_measured.png"]
    {
        let m = std::fs::metadata(out.join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(m.len() > 100, "{f} is nearly empty");
    }
    let hist = std::fs::read_to_string(out.join("fit_history.csv")).unwrap();
    // 2 folds + the final fit, 2 epochs each (early stopping cannot trigger in 2 epochs with patience 12).
    assert_eq!(hist.lines().count(), 1 + 3 * 2, "{hist}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary["cross_validated"]["scores"].as_array().unwrap().len() == 5);
    assert!(summary["fitted_params"]["tau"].as_object().unwrap().contains_key("interneuron"));
}

#[test]
fn fits_are_bit_identical_for_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), &atlas(), "", "");
    let go = |threads: usize, out: &str| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| run(&path, &dir.path().join(out)).unwrap())
    };
    let (a, b) = (go(1, "one"), go(2, "two"));
    assert_eq!(a.fitted.raw.len(), b.fitted.raw.len());
    assert!(a.fitted.raw.iter().zip(&b.fitted.raw).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(a.pairs.iter().zip(&b.pairs).all(|(x, y)| x.fitted.to_bits() == y.fitted.to_bits()));
}

fn refused(fit_extra: &str, extra: &str, atlas_path: Option<&Path>, expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let a = atlas_path.map(Path::to_path_buf).unwrap_or_else(atlas);
    let path = scenario(dir.path(), &a, fit_extra, extra);
    let out = dir.path().join("out");
    let err = run(&path, &out).expect_err("must be refused");
    for e in expect {
        assert!(err.contains(e), "message lacks `{e}`: {err}");
    }
    assert!(!out.exists(), "nothing may be written on error");
}

#[test]
fn unknown_parameter_is_refused() {
    refused("", "[fit.params.tau_m]\ninit = 3.0\n", None, &["tau_m", "unknown parameter", "known: tau, bias"]);
}

#[test]
fn unknown_cell_type_in_initial_values_is_refused() {
    refused(
        "",
        "[fit.params.bias]\ninit = 0.0\ngrouping = \"cell_type\"\ninit_groups = { motorneuron = 1.0 }\n",
        None,
        &["motorneuron", "unknown group", "interneuron"],
    );
}

#[test]
fn tau_allowed_below_dt_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), &atlas(), "", "");
    let text = std::fs::read_to_string(&path).unwrap().replace("lo = 500.0", "lo = 10.0");
    std::fs::write(&path, text).unwrap();
    let err = run(&path, &dir.path().join("out")).unwrap_err();
    assert!(err.contains("tau") && err.contains("dt_ms"), "{err}");
}

#[test]
fn atlas_without_overlap_with_the_connectome_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("other.csv");
    std::fs::write(&csv, "strain,stimulated,responder,dff,q,n_obs\nwt,XX1,XX2,0.5,0.01,3\nwt,XX2,XX1,0.1,0.5,3\nunc31,XX1,XX2,0.5,0.01,3\n").unwrap();
    refused("", "", Some(&csv), &["0 stimulated neurons", "unmatched: XX1, XX2"]);
}

#[test]
fn nan_in_the_data_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("nan.csv");
    std::fs::write(&csv, "strain,stimulated,responder,dff,q,n_obs\nwt,AVAL,AVAR,0.5,0.01,3\nwt,AVAR,AVAL,nan,0.5,3\n")
        .unwrap();
    refused("", "", Some(&csv), &["nan.csv:3", "dff"]);
}

#[test]
fn a_non_finite_loss_stops_the_fit_naming_step_and_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), &atlas(), "", "[fit.params.bias]\ngrouping = \"cell_type\"\ninit = 0.0\n");
    let text = std::fs::read_to_string(&path).unwrap().replace("lr = 0.05", "lr = 1e300");
    std::fs::write(&path, text).unwrap();
    let out = dir.path().join("out");
    let err = run(&path, &out).unwrap_err();
    assert!(err.contains("non-finite") && err.contains("epoch 1, batch"), "{err}");
    assert!(err.contains("(parameter "), "names the parameter: {err}");
    assert!(err.contains("lower `lr`"), "{err}");
    assert!(!out.exists());
}

#[test]
fn output_folder_holding_the_inputs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), &atlas(), "", "");
    let before = std::fs::read_to_string(&path).unwrap();
    let err = run(&path, dir.path()).unwrap_err();
    assert!(err.contains("output folder contains the input"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written beside the scenario");
}
