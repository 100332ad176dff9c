//! The NWB writer: a file with known spikes and ΔF/F (a) reads back through our own NWB reader with the ΔF/F
//! bit-identical, (b) passes pynwb validation, reads back in pynwb with the expected values and has no
//! nwbinspector ERROR/CRITICAL message (`scripts/check_nwb.py`, needs `.venv-nwb` from
//! `scripts/setup-nwb-tools.sh`; skipped with a message when absent unless `NEUROTWIN_REQUIRE_NWB=1`), and
//! (c) every kind of invalid input is rejected before anything is written, naming the field.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::child::command;
use neurotwin_imaging::nwb_write::{DffSeries, NwbContent, SessionMeta, SpikeUnits, SubjectMeta, write_nwb};
use neurotwin_imaging::{ImagingError, NwbOptions, SignalKind, list_nwb_series, read_nwb};

/// HDF5 opens files without close-on-exec and locks them with flock(): a Python child spawned by one test
/// would inherit another test's open file (and its lock) and make that test's re-open fail. The tests of this
/// file therefore run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

const NAMES: [&str; 4] = ["AVAL", "AVAR", "ALML", "PVCR"];

/// ΔF/F frames × ROIs with values that are not round in binary, so bit-identity means something.
fn dff_data(frames: usize, rois: usize, phase: f64) -> Vec<Vec<f64>> {
    (0..frames)
        .map(|k| {
            (0..rois).map(|i| 0.3 * ((k as f64) * 0.37 + i as f64 + phase).sin() + 0.01 * i as f64 / 3.0).collect()
        })
        .collect()
}

fn content() -> NwbContent {
    let mut session =
        SessionMeta::new("neurotwin-test-0001", "writer test: known spikes and ΔF/F", "2026-11-23T10:00:00+00:00");
    session.file_create_date = Some("2026-11-23T10:05:00.5+01:00".into());
    session.experiment_description = Some("simulated".into());
    session.keywords = vec!["simulation".into(), "connectome".into()];
    session.generated_by = vec![("neurotwin".into(), "0.1.0".into())];
    session.subject = SubjectMeta {
        subject_id: "celegans-test".into(),
        species: Some("Caenorhabditis elegans".into()),
        sex: "XX".into(),
        age: Some("P3D/".into()),
        ..SubjectMeta::default()
    };
    NwbContent {
        session,
        units: Some(SpikeUnits {
            names: NAMES.iter().map(|s| s.to_string()).collect(),
            spike_times_s: vec![
                vec![0.0125, 0.5, 0.5001, 1.75],
                vec![],
                vec![0.1, 0.2, 0.30000000000000004],
                vec![2.0],
            ],
            resolution_s: Some(1e-4),
            description: "test spikes".into(),
        }),
        dff: vec![
            DffSeries {
                name: "dff".into(),
                description: "test ΔF/F".into(),
                roi_names: NAMES.iter().map(|s| s.to_string()).collect(),
                rate_hz: 10.0,
                start_s: 0.0,
                data: dff_data(25, 4, 0.0),
                indicator: "GCaMP6s".into(),
                excitation_lambda_nm: 488.0,
                emission_lambda_nm: 510.0,
            },
            DffSeries {
                name: "dff_subset".into(),
                description: "second series: two neurons at 3 Hz starting at 0.25 s".into(),
                roi_names: vec!["PVCR".into(), "AVAL".into()],
                rate_hz: 3.0,
                start_s: 0.25,
                data: dff_data(7, 2, 1.5),
                indicator: "GCaMP7f".into(),
                excitation_lambda_nm: 488.0,
                emission_lambda_nm: 510.0,
            },
        ],
    }
}

fn expected_json(c: &NwbContent) -> serde_json::Value {
    let u = c.units.as_ref().unwrap();
    serde_json::json!({
        "units": { "names": u.names, "spike_times_s": u.spike_times_s, "resolution_s": u.resolution_s },
        "dff": c.dff.iter().map(|d| serde_json::json!({
            "name": d.name, "roi_names": d.roi_names, "rate_hz": d.rate_hz, "start_s": d.start_s,
            "indicator": d.indicator, "shape": [d.data.len(), d.roi_names.len()], "data": d.data,
        })).collect::<Vec<_>>(),
        "atol": 0.0,
    })
}

/// Runs scripts/check_nwb.py on `file` with `expected`; `None` when the tools are absent (and not required).
fn python_check(file: &Path, expected: &serde_json::Value) -> Option<String> {
    let python = repo().join(".venv-nwb/bin/python");
    let ok = python.exists()
        && command(&python).args(["-c", "import pynwb, nwbinspector"]).status().is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("NEUROTWIN_REQUIRE_NWB").as_deref() == Ok("1") {
            panic!(
                "NEUROTWIN_REQUIRE_NWB=1 but {} lacks pynwb/nwbinspector: run scripts/setup-nwb-tools.sh",
                python.display()
            );
        }
        println!("skipping the pynwb/nwbinspector check: no .venv-nwb (run scripts/setup-nwb-tools.sh)");
        return None;
    }
    let exp = file.with_extension("expected.json");
    std::fs::write(&exp, serde_json::to_string(expected).unwrap()).unwrap();
    let o = command(&python).arg(repo().join("scripts/check_nwb.py")).arg(file).arg(&exp).output().unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    println!("{out}");
    assert!(o.status.success(), "check_nwb.py failed:\n{out}");
    Some(out)
}

#[test]
fn written_file_reads_back_identically_with_our_reader() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("sim.nwb");
    let c = content();
    write_nwb(&path, &c).unwrap();
    // Only the file itself: the temporary file was renamed.
    let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("sim.nwb")]);

    let series = list_nwb_series(&path).unwrap();
    let paths: Vec<&str> = series.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/processing/ophys/DfOverF/dff", "/processing/ophys/DfOverF/dff_subset"]);
    assert_eq!(series[0].shape, vec![25, 4]);

    for d in &c.dff {
        let rec = read_nwb(&path, &NwbOptions { series: Some(d.name.clone()), ..Default::default() }).unwrap();
        assert_eq!(rec.kind, SignalKind::DfOverF);
        assert_eq!(rec.labels, d.roi_names);
        assert_eq!(rec.indicator.as_deref(), Some(d.indicator.as_str()));
        assert_eq!(rec.stated_rate_hz, Some(d.rate_hz));
        assert_eq!((rec.n_neurons, rec.n_frames), (d.roi_names.len(), d.data.len()));
        for (k, &t) in rec.time_s.iter().enumerate() {
            assert_eq!(t, d.start_s + k as f64 / d.rate_hz);
        }
        for (i, _) in d.roi_names.iter().enumerate() {
            let want: Vec<f64> = d.data.iter().map(|f| f[i]).collect();
            let got = rec.trace(i);
            assert!(
                got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                "series {} ROI {i}: {got:?} != {want:?}",
                d.name
            );
        }
    }
}

#[test]
fn units_table_and_metadata_have_the_nwb_layout() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.nwb");
    let c = content();
    write_nwb(&path, &c).unwrap();
    let f = hdf5::File::open(&path).unwrap();
    let attr = |loc: &hdf5::Location, n: &str| -> String {
        loc.attr(n).unwrap().read_scalar::<hdf5::types::VarLenUnicode>().unwrap().as_str().to_string()
    };
    let root = f.as_group().unwrap();
    assert_eq!(attr(&root, "neurodata_type"), "NWBFile");
    assert_eq!(attr(&root, "nwb_version"), "2.11.0");
    let units = f.group("units").unwrap();
    assert_eq!(attr(&units, "neurodata_type"), "Units");
    let colnames: Vec<String> = units
        .attr("colnames")
        .unwrap()
        .read_raw::<hdf5::types::VarLenUnicode>()
        .unwrap()
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    assert_eq!(colnames, ["spike_times", "neuron_name"]);
    let times: Vec<f64> = units.dataset("spike_times").unwrap().read_raw().unwrap();
    let index: Vec<u64> = units.dataset("spike_times_index").unwrap().read_raw().unwrap();
    assert_eq!(index, [4, 4, 7, 8]);
    assert_eq!(times, c.units.as_ref().unwrap().spike_times_s.concat());
    let ids: Vec<i64> = units.dataset("id").unwrap().read_raw().unwrap();
    assert_eq!(ids, [0, 1, 2, 3]);
    // Every object_id is a distinct UUID.
    let mut oids = Vec::new();
    for p in ["units", "units/id", "units/spike_times", "units/spike_times_index", "units/neuron_name"] {
        let id = if p.ends_with("units") {
            attr(&f.group(p).unwrap(), "object_id")
        } else {
            attr(&f.dataset(p).unwrap(), "object_id")
        };
        oids.push(id);
    }
    oids.push(attr(&root, "object_id"));
    let unique: std::collections::HashSet<_> = oids.iter().collect();
    assert_eq!(unique.len(), oids.len());
    assert!(oids.iter().all(|o| o.len() == 36 && o.matches('-').count() == 4), "{oids:?}");
    // A second write of the same content gets new ids.
    let path2 = dir.path().join("again.nwb");
    write_nwb(&path2, &c).unwrap();
    let f2 = hdf5::File::open(&path2).unwrap();
    assert_ne!(attr(&f2.as_group().unwrap(), "object_id"), oids[5]);
}

#[test]
fn pynwb_and_nwbinspector_accept_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.nwb");
    let c = content();
    write_nwb(&path, &c).unwrap();
    let Some(out) = python_check(&path, &expected_json(&c)) else { return };
    assert!(out.contains("check_nwb: OK"), "{out}");
    assert!(out.contains("DfOverF/dff: 25 frames x 4 ROIs"), "{out}");
    assert!(out.contains("units: 4 units, 8 spikes"), "{out}");

    // Negative control: the checker is alive — a wrong expectation must fail it.
    let mut wrong = expected_json(&c);
    wrong["dff"][0]["data"][3][2] = serde_json::json!(c.dff[0].data[3][2] + 1e-9);
    let exp = dir.path().join("wrong.json");
    std::fs::write(&exp, serde_json::to_string(&wrong).unwrap()).unwrap();
    let o = command(repo().join(".venv-nwb/bin/python"))
        .arg(repo().join("scripts/check_nwb.py"))
        .arg(&path)
        .arg(&exp)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "a wrong expected value must fail the check:\n{text}");
    assert!(text.contains("FAIL DfOverF/dff: values differ"), "{text}");
}

/// Writes `c` to a fresh directory; asserts the error names `field` and that no file was left behind.
fn rejected(c: &NwbContent, field: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.nwb");
    let e = write_nwb(&path, c).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ImagingError::Output { .. }), "{msg}");
    assert!(msg.contains("bad.nwb"), "error must name the file: {msg}");
    assert!(msg.contains(field), "error must name {field}: {msg}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing may be written for invalid input");
}

#[test]
fn nan_and_infinite_dff_are_rejected() {
    let _serial = serial();
    let mut c = content();
    c.dff[0].data[7][1] = f64::NAN;
    rejected(&c, "dff[0] (\"dff\").data[7][1] (frame 7, ROI \"AVAR\") = NaN");
    let mut c = content();
    c.dff[1].data[0][0] = f64::INFINITY;
    rejected(&c, "dff[1] (\"dff_subset\").data[0][0]");
}

#[test]
fn ragged_frames_are_rejected() {
    let _serial = serial();
    let mut c = content();
    c.dff[0].data[3].pop();
    rejected(&c, "dff[0] (\"dff\").data[3] has 3 values but there are 4 ROIs");
}

#[test]
fn unsorted_negative_or_nonfinite_spike_times_are_rejected() {
    let _serial = serial();
    let mut c = content();
    c.units.as_mut().unwrap().spike_times_s[2] = vec![0.1, 0.3, 0.2];
    rejected(&c, "units.spike_times_s[2] (unit \"ALML\")[2] = 0.2 comes after 0.3");
    let mut c = content();
    c.units.as_mut().unwrap().spike_times_s[0][0] = -0.001;
    rejected(&c, "units.spike_times_s[0] (unit \"AVAL\")[0] = -0.001: spike times must be >= 0");
    let mut c = content();
    c.units.as_mut().unwrap().spike_times_s[3][0] = f64::NAN;
    rejected(&c, "units.spike_times_s[3] (unit \"PVCR\")[0] = NaN");
}

#[test]
fn mismatched_counts_and_bad_metadata_are_rejected() {
    let _serial = serial();
    let mut c = content();
    c.units.as_mut().unwrap().names.pop();
    rejected(&c, "units: 3 names but 4 spike trains");
    let mut c = content();
    c.dff[1].name = "dff".into();
    rejected(&c, "dff[1].name = \"dff\" is used by an earlier series");
    let mut c = content();
    c.dff[0].name = "a/b".into();
    rejected(&c, "dff[0].name = \"a/b\" is not a valid HDF5 name");
    let mut c = content();
    c.dff[0].rate_hz = 0.0;
    rejected(&c, "dff[0] (\"dff\").rate_hz = 0");
    let mut c = content();
    c.dff[0].roi_names[1] = String::new();
    rejected(&c, "dff[0] (\"dff\").roi_names[1] is empty");
    let mut c = content();
    c.dff[0].indicator = " ".into();
    rejected(&c, "dff[0] (\"dff\").indicator is empty");
    let mut c = content();
    c.session.session_start_time = "2026-11-23 10:00".into();
    rejected(&c, "session.session_start_time = \"2026-11-23 10:00\" is not ISO 8601");
    let mut c = content();
    c.session.subject.sex = String::new();
    rejected(&c, "session.subject.sex is empty");
    let mut c = content();
    c.units.as_mut().unwrap().resolution_s = Some(-1.0);
    rejected(&c, "units.resolution_s = -1");
}

#[test]
fn iso8601_formats_utc_dates() {
    let _serial = serial();
    use neurotwin_imaging::nwb_write::iso8601;
    use std::time::{Duration, UNIX_EPOCH};
    assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000000+00:00");
    // 2024-02-29T12:34:56.789012Z (leap day) = 1709210096 s.
    assert_eq!(iso8601(UNIX_EPOCH + Duration::from_micros(1_709_210_096_789_012)), "2024-02-29T12:34:56.789012+00:00");
    assert_eq!(iso8601(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000000+00:00");
}
