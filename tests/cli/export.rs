//! `neurotwin export nwb` end to end: the bundled gentle-touch scenario is run, exported, and the NWB file is
//! checked against values the test computes itself — the spikes read back from the run (SONATA) and the
//! calcium forward model applied here — with our NWB reader and, when `.venv-nwb` exists (or
//! `NEUROTWIN_REQUIRE_NWB=1`), with pynwb and nwbinspector (`scripts/check_nwb.py`). Bad arguments fail with a
//! clear message and leave no file behind.

use super::common::{command, neurotwin, stderr, stdout};

use std::path::{Path, PathBuf};

use neurotwin_imaging::{NwbOptions, read_nwb};
use neurotwin_models::calcium::{Drive, ForwardModel, ImagingParams, IndicatorParams};
use neurotwin_sim::readback::read_run_spikes;

/// Frame rate of the main export: 1 s of simulation must give more frames than the 473 ROIs, or nwbinspector's
/// check_data_orientation heuristic reports CRITICAL (it assumes time is the longest dimension).
const RATE_HZ: f64 = 500.0;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs scenarios/celegans_touch.toml (1 s, 473 neurons) into `dir/run`.
fn touch_run(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    let scenario = repo().join("scenarios/celegans_touch.toml");
    let o = neurotwin(&["run", scenario.to_str().unwrap(), "-o", run.to_str().unwrap()], dir);
    assert!(o.status.success(), "{}", stderr(&o));
    run
}

/// The expected ΔF/F (frames × neurons), computed here from the run's spikes (GCaMP6f, 500 Hz, noise-free).
fn expected_dff(run: &Path) -> (Vec<String>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let spikes = read_run_spikes(run).unwrap();
    let fm = ForwardModel::new(IndicatorParams::preset("GCaMP6f").unwrap(), ImagingParams::new(RATE_HZ, 1000.0), 1.0)
        .unwrap();
    let traces: Vec<Vec<f64>> =
        spikes.times_ms.iter().map(|t| fm.dff_frames(&Drive::SpikeTimes(t), 1000.0).unwrap()).collect();
    let frames: Vec<Vec<f64>> = (0..traces[0].len()).map(|k| traces.iter().map(|t| t[k]).collect()).collect();
    let spike_s = spikes.times_ms.iter().map(|t| t.iter().map(|x| x * 1e-3).collect()).collect();
    (spikes.names, frames, spike_s)
}

fn python() -> Option<PathBuf> {
    let p = repo().join(".venv-nwb/bin/python");
    let ok = p.exists() && command(&p).args(["-c", "import pynwb, nwbinspector"]).status().is_ok_and(|s| s.success());
    if ok {
        return Some(p);
    }
    if std::env::var("NEUROTWIN_REQUIRE_NWB").as_deref() == Ok("1") {
        panic!("NEUROTWIN_REQUIRE_NWB=1 but {} lacks pynwb/nwbinspector: run scripts/setup-nwb-tools.sh", p.display());
    }
    println!("skipping the pynwb/nwbinspector check: no .venv-nwb (run scripts/setup-nwb-tools.sh)");
    None
}

#[test]
fn export_nwb_writes_the_runs_spikes_and_calcium() {
    let dir = tempfile::tempdir().unwrap();
    let run = touch_run(dir.path());
    let out = dir.path().join("export").join("touch.nwb");
    let o = neurotwin(
        &[
            "export",
            "nwb",
            run.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--indicator",
            "gcamp6f",
            "--frame-rate-hz",
            "500",
            "--species",
            "Caenorhabditis elegans",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("473 units") && text.contains("500 frames × 473 ROIs at 500 Hz (GCaMP6f, noise-free)"),
        "{text}"
    );
    assert!(!stderr(&o).contains("check_data_orientation"), "{}", stderr(&o));

    let (names, frames, spike_s) = expected_dff(&run);
    assert_eq!(frames.len(), 500);
    // Our reader: identical ΔF/F, labels, indicator, rate.
    let rec = read_nwb(&out, &NwbOptions::default()).unwrap();
    assert_eq!(rec.labels, names);
    assert_eq!(rec.indicator.as_deref(), Some("GCaMP6f"));
    assert_eq!(rec.stated_rate_hz, Some(RATE_HZ));
    assert_eq!(rec.n_frames, 500);
    for (i, _) in names.iter().enumerate() {
        let want: Vec<f64> = frames.iter().map(|f| f[i]).collect();
        assert_eq!(rec.trace(i), &want[..], "neuron {}", names[i]);
    }
    // The touch drive is visible: ALML's ΔF/F during the touch (300–700 ms) exceeds its baseline before it.
    let alml = names.iter().position(|n| n == "ALML").unwrap();
    let tr = rec.trace(alml);
    assert!(tr[300] > tr[100] + 0.2, "ALML ΔF/F at 600 ms {} vs 200 ms {}", tr[300], tr[100]);

    let Some(py) = python() else { return };
    let expected = serde_json::json!({
        "units": { "names": names, "spike_times_s": spike_s, "resolution_s": 1e-4 },
        "dff": [{ "name": "dff", "roi_names": names, "rate_hz": RATE_HZ, "start_s": 0.0, "indicator": "GCaMP6f",
                  "shape": [500, 473], "data": frames }],
        "atol": 0.0,
    });
    let exp = dir.path().join("expected.json");
    std::fs::write(&exp, serde_json::to_string(&expected).unwrap()).unwrap();
    let o = command(py).arg(repo().join("scripts/check_nwb.py")).arg(&out).arg(&exp).output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    println!("{report}");
    assert!(o.status.success(), "check_nwb.py failed:\n{report}");
    assert!(report.contains("DfOverF/dff: 500 frames x 473 ROIs"), "{report}");
}

#[test]
fn export_nwb_with_noise_differs_from_noise_free_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let run = touch_run(dir.path());
    let export = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec!["export", "nwb", run.to_str().unwrap(), "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = neurotwin(&args, dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        // 10 frames < 473 ROIs: the user is told that nwbinspector's orientation heuristic will object.
        assert!(stderr(&o).contains("10 frames < 473 ROIs: nwbinspector's check_data_orientation"), "{}", stderr(&o));
        read_nwb(&out, &NwbOptions::default()).unwrap()
    };
    let clean = export("clean.nwb", &[]);
    let noisy = export("noisy.nwb", &["--noise"]);
    let again = export("noisy2.nwb", &["--noise"]);
    assert_eq!(clean.indicator.as_deref(), Some("GCaMP6s"));
    assert_eq!((clean.n_frames, clean.stated_rate_hz), (10, Some(10.0)));
    assert_eq!(noisy.traces, again.traces, "same run seed → same noise");
    let diff: Vec<f64> = clean.traces.iter().zip(&noisy.traces).map(|(a, b)| b - a).collect();
    let sd = (diff.iter().map(|d| d * d).sum::<f64>() / diff.len() as f64).sqrt();
    // Shot noise at F0 = 1000 photons: baseline ΔF/F noise ≈ 1/√1000 ≈ 0.032 (larger above baseline).
    assert!((0.02..0.08).contains(&sd), "noise sd {sd}");
}

#[test]
fn export_nwb_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.nwb");
    let o = neurotwin(&["export", "nwb", dir.path().to_str().unwrap(), "-o", out.to_str().unwrap()], dir.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nodes.csv"), "{}", stderr(&o));
    assert!(!out.exists());

    let run = touch_run(dir.path());
    let o = neurotwin(
        &["export", "nwb", run.to_str().unwrap(), "-o", out.to_str().unwrap(), "--indicator", "GFP"],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--indicator `GFP`: presets are GCaMP6s"), "{}", stderr(&o));
    let o = neurotwin(
        &["export", "nwb", run.to_str().unwrap(), "-o", out.to_str().unwrap(), "--frame-rate-hz", "0.5"],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("shorter than one frame"), "{}", stderr(&o));
    let o = neurotwin(
        &["export", "nwb", run.to_str().unwrap(), "-o", out.to_str().unwrap(), "--frame-rate-hz", "nan"],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--frame-rate-hz NaN: must be a positive rate"), "{}", stderr(&o));
    assert!(!out.exists());
}
