//! Flavell-lab reader: a synthetic worm (always) and the real data in ../shared/data/calcium-flavell
//! (skipped with a message when absent), with the published sanity check AVA ~ reversals.

use super::common::*;

use std::path::PathBuf;

use neurotwin_imaging::stats::pearson;
use neurotwin_imaging::{FlavellOptions, list_flavell_worms, read_flavell};

#[test]
fn synthetic_worm() {
    let dir = tempfile::tempdir().unwrap();
    let ids = [(1, "AVAL", 5.0), (3, "URADL", 2.0), (4, "URADL", 4.0), (2, "RIML", 1.0)];
    let (h5, json) = write_flavell(dir.path(), "2099-01-01-01", 10, 4, &ids);
    let w = read_flavell(&h5, &json, &FlavellOptions::default()).unwrap();
    assert_eq!(w.uid, "2099-01-01-01");
    let r = &w.recording;
    assert_eq!((r.n_neurons, r.n_frames), (4, 10));
    assert_eq!(r.labels, ["AVAL", "RIML", "", "URADL"]);
    assert_eq!(w.duplicates, ["URADL (roi 2)"]);
    assert_eq!(w.confidence(3), Some(4.0));
    assert_eq!(w.confidence(2), None);
    assert_eq!(w.identities.len(), 4);
    // Column c of the label file is ROI c - 1; trace_array is [frames, rois].
    let expected: Vec<f64> = (0..10).map(|k| (((k * 4 + 1) * 7) % 11) as f64).collect();
    assert_eq!(r.trace(1), &expected[..]);
    assert!((r.frame_rate_hz().unwrap() - 1.0 / 0.6).abs() < 1e-9);
    let rev = r.extra("reversal_vec").unwrap();
    assert_eq!(rev.values[..5], [1.0, 0.0, 0.0, 0.0, 1.0]);
    assert!(r.extra("velocity").is_none(), "missing behaviour datasets are skipped");

    let strict = FlavellOptions { min_confidence: 3.0, ..Default::default() };
    let w = read_flavell(&h5, &json, &strict).unwrap();
    assert_eq!(w.recording.labels, ["AVAL", "", "", "URADL"]);
    assert!(w.duplicates.is_empty());
}

#[test]
fn synthetic_worm_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (h5, json) = write_flavell(dir.path(), "2099-01-01-01", 10, 4, &[(5, "AVAL", 5.0)]);
    let e = read_flavell(&h5, &json, &FlavellOptions::default()).unwrap_err().to_string();
    assert!(e.contains("labels.json") && e.contains("column 5 is outside the trace array's 4 ROIs"), "{e}");
    let e = read_flavell(&h5, &json, &FlavellOptions { uid: Some("nope".into()), ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("labels.json") && e.contains("worm \"nope\" is not in list_uid"), "{e}");
    let other = dir.path().join("x.h5");
    std::fs::copy(&h5, &other).unwrap();
    let e = read_flavell(&other, &json, &FlavellOptions::default()).unwrap_err().to_string();
    assert!(e.contains("x.h5") && e.contains("[compare] worm"), "{e}");
    let e = read_flavell(&h5, &json, &FlavellOptions { trace_dataset: "gcamp/missing".into(), ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("2099-01-01-01-data.h5") && e.contains("missing dataset /gcamp/missing"), "{e}");
}

fn flavell_dir() -> Option<PathBuf> {
    let d = std::env::var_os("NEUROTWIN_FLAVELL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/calcium-flavell"));
    d.join("neuropal_labels.json").is_file().then_some(d)
}

#[test]
fn real_flavell_worms_ava_correlates_with_reversals() {
    let Some(dir) = flavell_dir() else {
        println!("SKIP: ../shared/data/calcium-flavell not found (set NEUROTWIN_FLAVELL_DIR to run this test)");
        return;
    };
    let json = dir.join("neuropal_labels.json");
    let worms = list_flavell_worms(&dir).unwrap();
    assert!(!worms.is_empty(), "no *-data.h5 in {}", dir.display());
    for (uid, h5) in worms {
        let w = read_flavell(&h5, &json, &FlavellOptions::default()).unwrap();
        let r = &w.recording;
        let labelled = r.n_labelled();
        println!(
            "{uid}: {} frames x {} ROIs, {labelled} labelled ({} identities, duplicates {:?}), {:.3} Hz",
            r.n_frames,
            r.n_neurons,
            w.identities.len(),
            w.duplicates,
            r.frame_rate_hz().unwrap()
        );
        assert!((780..=820).contains(&r.n_frames), "{uid}: {} frames", r.n_frames);
        assert!((130..=146).contains(&r.n_neurons), "{uid}: {} ROIs", r.n_neurons);
        assert!((80..=115).contains(&labelled), "{uid}: {labelled} labelled");
        let rate = r.frame_rate_hz().unwrap();
        assert!((1.4..2.0).contains(&rate), "{uid}: {rate} Hz");
        let rev = &r.extra("reversal_vec").expect("reversal_vec").values;
        assert!(r.extra("velocity").is_some());
        let mut rs = Vec::new();
        for side in ["AVAL", "AVAR"] {
            if let Some(tr) = r.trace_of(side) {
                let c = pearson(tr, rev).unwrap();
                println!("  r({side}, reversal_vec) = {c:+.3}");
                rs.push(c);
            }
        }
        assert!(!rs.is_empty(), "{uid}: no AVA trace labelled");
        assert!(rs.iter().all(|&c| c > 0.0), "{uid}: AVA does not correlate positively with reversals: {rs:?}");
        let high = read_flavell(&h5, &json, &FlavellOptions { min_confidence: 4.0, ..Default::default() }).unwrap();
        assert!(high.recording.n_labelled() < labelled || w.identities.iter().all(|i| i.confidence >= 4.0));
    }
}
