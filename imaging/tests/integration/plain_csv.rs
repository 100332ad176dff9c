//! Plain HDF5 and CSV: the committed file, round trips, and malformed variants.

use super::common::*;

use neurotwin_imaging::{
    CalciumRecording, ExtraSeries, NanPolicy, SignalKind, read_csv, read_plain_h5, write_csv, write_plain_h5,
};

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn sample() -> CalciumRecording {
    let t = vec![0.0, 0.1, 0.2, 0.30000000000000004];
    let traces = vec![1.5, -2.25, f64::NAN, 1e-17, 0.1, 0.2, 0.3, 0.4, 3.0, 2.0, 1.0, 0.0];
    let mut r = CalciumRecording::new(
        vec!["AVAL".into(), String::new(), "label, with comma".into()],
        t,
        traces,
        SignalKind::DfOverF,
    )
    .unwrap();
    r.indicator = Some("GCaMP6s".into());
    r.stated_rate_hz = Some(10.0);
    r.extra.push(ExtraSeries { name: "velocity".into(), unit: "mm/s".into(), values: vec![0.1, -0.1, f64::NAN, 0.0] });
    r
}

#[test]
fn committed_plain_file_matches_the_analytic_signal() {
    let r = read_plain_h5(data_dir().join("traces_small.h5"), NanPolicy::Error).unwrap();
    assert_eq!((r.n_neurons, r.n_frames), (5, N_FRAMES));
    assert_eq!(r.labels, NAMES);
    assert_eq!(r.kind, SignalKind::DfOverF);
    assert_eq!(r.indicator.as_deref(), Some("GCaMP6s"));
    assert_eq!(r.stated_rate_hz, Some(10.0));
    for i in 0..5 {
        for (k, v) in r.trace(i).iter().enumerate() {
            assert!((v - dff(i, k)).abs() < 1e-12);
        }
    }
}

#[test]
fn plain_h5_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rt.h5");
    let r = sample();
    write_plain_h5(&p, &r).unwrap();
    let back = read_plain_h5(&p, NanPolicy::Error).unwrap();
    assert_eq!(back.labels, r.labels);
    assert!(same(&back.traces, &r.traces) && same(&back.time_s, &r.time_s));
    assert_eq!(
        (back.kind.clone(), back.indicator.clone(), back.stated_rate_hz),
        (r.kind.clone(), r.indicator.clone(), r.stated_rate_hz)
    );
    assert_eq!(back.extra.len(), 1);
    assert_eq!((back.extra[0].name.as_str(), back.extra[0].unit.as_str()), ("velocity", "mm/s"));
    assert!(same(&back.extra[0].values, &r.extra[0].values));
    assert_eq!(back.source, p);
}

#[test]
fn csv_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rt.csv");
    let r = sample();
    write_csv(&p, &r).unwrap();
    let back = read_csv(&p, SignalKind::DfOverF, NanPolicy::Error).unwrap();
    assert_eq!(back.labels, r.labels);
    assert!(same(&back.traces, &r.traces) && same(&back.time_s, &r.time_s));
}

fn plain_error(name: &str, labels: &[&str], traces: &[f64], t: Option<&[f64]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    write_plain(&p, labels, traces, t);
    read_plain_h5(&p, NanPolicy::Error).unwrap_err().to_string()
}

#[test]
fn malformed_plain_files_give_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notraces.h5");
    {
        let f = hdf5::File::create(&p).unwrap();
        ds_f64(&f, "timestamps", &[2], &[0.0, 1.0]);
    }
    let e = read_plain_h5(&p, NanPolicy::Error).unwrap_err().to_string();
    assert!(e.contains("notraces.h5") && e.contains("missing dataset /traces"), "{e}");

    let nan = f64::NAN;
    let e = plain_error("shape.h5", &["A", "B"], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], Some(&[0.0, 1.0]));
    assert!(e.contains("shape.h5") && e.contains("/timestamps has 2 timestamps but /traces has 3 frames"), "{e}");
    let e = plain_error("order.h5", &["A"], &[1.0, 2.0, 3.0], Some(&[0.0, 2.0, 1.0]));
    assert!(e.contains("order.h5") && e.contains("/timestamps") && e.contains("strictly increasing"), "{e}");
    let e = plain_error("inf.h5", &["A"], &[1.0, 2.0, 3.0], Some(&[0.0, f64::INFINITY, 1.0]));
    assert!(e.contains("inf.h5") && e.contains("/timestamps") && e.contains("finite"), "{e}");
    let e = plain_error("notime.h5", &["A", "B", "C"], &[1.0, 2.0, nan, nan, 5.0, 6.0], None);
    // No timestamps and no rate: that is reported first.
    assert!(e.contains("notime.h5") && e.contains("missing dataset /timestamps") && e.contains("rate_hz"), "{e}");

    let t = [0.0, 0.5];
    let p = dir.path().join("nanrows.h5");
    write_plain(&p, &["AVAL", "", "RIML"], &[nan, nan, 1.0, nan, nan, nan], Some(&t));
    let e = read_plain_h5(&p, NanPolicy::Error).unwrap_err().to_string();
    assert!(e.contains("nanrows.h5") && e.contains("/traces: 2 neuron(s) are NaN in every frame: AVAL, RIML"), "{e}");
    let r = read_plain_h5(&p, NanPolicy::DropRows).unwrap();
    assert_eq!(
        (r.labels.clone(), r.dropped.clone(), r.source_index.clone()),
        (vec![String::new()], vec!["AVAL".to_string(), "RIML".to_string()], vec![1])
    );
    assert!(r.trace(0)[1].is_nan(), "isolated NaN frames are kept");

    let p = dir.path().join("labels.h5");
    {
        let f = hdf5::File::create(&p).unwrap();
        ds_f64(&f, "traces", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        ds_strings(&f, "labels", &["A"]);
        attr_num(&f, "rate_hz", 2.0f64);
    }
    let e = read_plain_h5(&p, NanPolicy::Error).unwrap_err().to_string();
    assert!(e.contains("labels.h5") && e.contains("/labels has 1 entries but /traces has 2 neuron rows"), "{e}");

    let p = dir.path().join("rate.h5");
    {
        let f = hdf5::File::create(&p).unwrap();
        ds_f64(&f, "traces", &[1, 3], &[1.0, 2.0, 3.0]);
        attr_num(&f, "rate_hz", 2.0f64);
        attr_str(&f, "kind", "fluorescence");
    }
    let r = read_plain_h5(&p, NanPolicy::Error).unwrap();
    assert_eq!(r.time_s, [0.0, 0.5, 1.0]);
    assert_eq!(r.labels, [""]);
    assert_eq!(r.kind, SignalKind::Fluorescence);
}

fn csv_error(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    read_csv(&p, SignalKind::DfOverF, NanPolicy::Error).unwrap_err().to_string()
}

#[test]
fn malformed_csv_files_give_located_errors() {
    let e = csv_error("transposed.csv", "label,0.0,0.1\nAVAL,1,2\n");
    assert!(
        e.contains("transposed.csv:1") && e.contains("transposed layout") && e.contains("transpose the table"),
        "{e}"
    );
    let e = csv_error("notime.csv", "t,AVAL\n0,1\n");
    assert!(e.contains("notime.csv:1") && e.contains("expected time_s"), "{e}");
    let e = csv_error("value.csv", "time_s,AVAL,AVAR\n0,1,2\n0.1,1,x\n");
    assert!(e.contains("value.csv:3") && e.contains("column AVAR") && e.contains("\"x\" is not a number"), "{e}");
    let e = csv_error("fields.csv", "time_s,AVAL,AVAR\n0,1,2\n0.1,1\n");
    assert!(e.contains("fields.csv:3") && e.contains("2 fields, expected 3"), "{e}");
    let e = csv_error("order.csv", "time_s,AVAL\n0,1\n0.2,1\n0.1,2\n");
    assert!(e.contains("order.csv") && e.contains("column time_s") && e.contains("strictly increasing"), "{e}");
    let e = csv_error("nan.csv", "time_s,AVAL,AVAR\n0,NaN,2\n0.1,,3\n");
    assert!(e.contains("nan.csv") && e.contains("NaN in every frame: AVAL"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tab.tsv");
    std::fs::write(&p, "# comment\ntime_s\tAVAL\n0\t1\n0.5\tnan\n1.0\t3\n").unwrap();
    let r = read_csv(&p, SignalKind::Fluorescence, NanPolicy::Error).unwrap();
    assert_eq!(r.labels, ["AVAL"]);
    assert!(r.trace(0)[1].is_nan());
    assert!((r.frame_rate_hz().unwrap() - 2.0).abs() < 1e-12);
}
