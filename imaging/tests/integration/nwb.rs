//! NWB reader: the pynwb-written file against its analytic signal, and hand-made malformed variants.

use super::common::*;

use neurotwin_imaging::{NanPolicy, NwbOptions, SignalKind, list_nwb_series, read_nwb};

fn opts(series: &str) -> NwbOptions {
    NwbOptions { series: Some(series.into()), ..Default::default() }
}

#[test]
fn pynwb_dff_series_matches_the_analytic_signal() {
    let path = data_dir().join("ophys_small.nwb");
    let r = read_nwb(&path, &opts("dff")).unwrap();
    assert_eq!((r.n_neurons, r.n_frames), (5, N_FRAMES));
    assert_eq!(r.labels, NAMES);
    assert_eq!(r.kind, SignalKind::DfOverF);
    assert_eq!(r.indicator.as_deref(), Some("GCaMP6s"));
    assert_eq!(r.stated_rate_hz, Some(RATE_HZ));
    assert!((r.frame_rate_hz().unwrap() - RATE_HZ).abs() < 1e-9);
    for k in 0..N_FRAMES {
        assert!((r.time_s[k] - t_of(k)).abs() < 1e-12, "time {k}");
    }
    for i in 0..5 {
        for (k, v) in r.trace(i).iter().enumerate() {
            assert!((v - dff(i, k)).abs() < 1e-12, "roi {i} frame {k}: {v} vs {}", dff(i, k));
        }
    }
    assert_eq!(r.index_of("AIYL"), Some(2));
}

#[test]
fn pynwb_fluorescence_series_uses_its_timestamps() {
    let path = data_dir().join("ophys_small.nwb");
    let r = read_nwb(&path, &opts("Fluorescence/raw")).unwrap();
    assert_eq!(r.kind, SignalKind::Fluorescence);
    assert_eq!(r.labels, NAMES);
    for k in 0..N_FRAMES {
        assert!((r.time_s[k] - (t_of(k) + 5.0)).abs() < 1e-12);
    }
    for i in 0..5 {
        for (k, v) in r.trace(i).iter().enumerate() {
            assert!((v - fluo(i, k)).abs() < 1e-12);
        }
    }
}

#[test]
fn series_selection_lists_what_is_available() {
    let path = data_dir().join("ophys_small.nwb");
    let all = list_nwb_series(&path).unwrap();
    let paths: Vec<&str> = all.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/processing/ophys/DfOverF/dff", "/processing/ophys/Fluorescence/raw"]);
    assert_eq!(all[0].shape, [N_FRAMES, 5]);
    let e = read_nwb(&path, &NwbOptions::default()).unwrap_err().to_string();
    assert!(e.contains("ophys_small.nwb") && e.contains("--series NAME"), "{e}");
    assert!(e.contains("/processing/ophys/DfOverF/dff") && e.contains("/processing/ophys/Fluorescence/raw"), "{e}");
    let e = read_nwb(&path, &opts("deconvolved")).unwrap_err().to_string();
    assert!(e.contains("no RoiResponseSeries named \"deconvolved\"") && e.contains("Fluorescence/raw"), "{e}");
}

#[test]
fn hand_written_nwb_and_label_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ok.nwb");
    write_nwb(&p, NwbFaults::default());
    let r = read_nwb(&p, &NwbOptions::default()).unwrap();
    assert_eq!(r.labels, ["AVAL", "", "RIML"]);
    assert_eq!(r.trace(1), &[1.0, 4.0, 7.0, 10.0, 13.0, 16.0]);
    let p = dir.path().join("nolabels.nwb");
    write_nwb(&p, NwbFaults { no_label_column: true, ..Default::default() });
    let r = read_nwb(&p, &NwbOptions::default()).unwrap();
    assert_eq!(r.labels, ["roi7", "roi8", "roi9"]);
}

fn nwb_error(name: &str, faults: NwbFaults) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    write_nwb(&p, faults);
    read_nwb(&p, &NwbOptions::default()).unwrap_err().to_string()
}

#[test]
fn malformed_nwb_files_give_located_errors() {
    let e = nwb_error("nodata.nwb", NwbFaults { no_data: true, ..Default::default() });
    assert!(e.contains("nodata.nwb") && e.contains("missing dataset /processing/ophys/DfOverF/dff/data"), "{e}");
    let e = nwb_error("short.nwb", NwbFaults { short_timestamps: true, ..Default::default() });
    assert!(e.contains("short.nwb") && e.contains("/processing/ophys/DfOverF/dff/timestamps has 5 timestamps"), "{e}");
    assert!(e.contains("6 frames"), "{e}");
    let e = nwb_error("order.nwb", NwbFaults { decreasing_time: true, ..Default::default() });
    assert!(e.contains("order.nwb") && e.contains("timestamps") && e.contains("strictly increasing"), "{e}");
    let e = nwb_error("nan.nwb", NwbFaults { nan_roi: Some(2), ..Default::default() });
    assert!(e.contains("nan.nwb") && e.contains("dff/data") && e.contains("NaN in every frame: RIML"), "{e}");
    assert!(e.contains("--nan-policy drop-rows"), "{e}");
}

#[test]
fn nan_rows_can_be_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nan.nwb");
    write_nwb(&p, NwbFaults { nan_roi: Some(0), ..Default::default() });
    let r = read_nwb(&p, &NwbOptions { nan: NanPolicy::DropRows, ..Default::default() }).unwrap();
    assert_eq!(r.labels, ["", "RIML"]);
    assert_eq!(r.source_index, [1, 2]);
    assert_eq!(r.dropped, ["AVAL"]);
}

#[test]
fn non_nwb_files_are_rejected() {
    let e = read_nwb(data_dir().join("traces_small.h5"), &NwbOptions::default()).unwrap_err().to_string();
    assert!(e.contains("traces_small.h5") && e.contains("not an NWB 2.x file"), "{e}");
    let e = read_nwb(data_dir().join("README.md"), &NwbOptions::default()).unwrap_err().to_string();
    assert!(e.contains("README.md") && e.contains("not an HDF5 file"), "{e}");
    let e = read_nwb(data_dir().join("absent.nwb"), &NwbOptions::default()).unwrap_err().to_string();
    assert!(e.contains("absent.nwb") && e.contains("file not found"), "{e}");
}
