//! `compare` and `export`: messages in user terms (CLI flags and scenario fields, not Rust type names), a
//! failed comparison explained neuron by neuron before anything is written, `--sim` folders checked, and
//! NeuroPAL labels with zero-padded numbers matched to the connectome's names.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::common::*;

/// Asserts a clean failure: exit code 1, no panic, and no Rust type path (`Type::field`) in the message.
fn assert_user_error(o: &Output) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    for internal in ["NwbOptions::", "NanPolicy::", "Comparison::", "CompareOptions::", "FlavellOptions::"] {
        assert!(!e.contains(internal), "message names the Rust type {internal}: {e}");
    }
    e
}

/// Runs the 4-neuron test network (`A` stimulated) for `duration_ms` into `dir/run`.
fn short_run(dir: &Path, duration_ms: f64) -> PathBuf {
    write(dir, "neurons.csv", NEURONS_CSV);
    write(dir, "connections.csv", CONNECTIONS_CSV);
    let s = write(dir, "s.toml", &scenario(&format!("duration_ms = {duration_ms:.1}"), ""));
    let run = dir.join("run");
    let o = neurotwin(&["run", s.to_str().unwrap(), "-o", run.to_str().unwrap()], dir);
    assert!(o.status.success(), "{}", stderr(&o));
    run
}

/// A CSV recording of `labels` at 5 Hz over `seconds`; `value(label index, t)` gives each sample.
fn csv_recording(dir: &Path, labels: &[&str], seconds: f64, value: impl Fn(usize, f64) -> String) -> PathBuf {
    let mut text = format!("time_s,{}\n", labels.join(","));
    for k in 0..(seconds * 5.0) as usize {
        let t = k as f64 / 5.0;
        let vals: Vec<String> = (0..labels.len()).map(|i| value(i, t)).collect();
        text.push_str(&format!("{t},{}\n", vals.join(",")));
    }
    write(dir, "rec.csv", &text)
}

fn wave(i: usize, t: f64) -> String {
    format!("{}", (t * (0.7 + 0.3 * i as f64)).sin())
}

fn compare(dir: &Path, run: &Path, rec: &Path, format: &str, extra: &[&str]) -> (Output, PathBuf) {
    let out = dir.join("cmp");
    let mut args = vec![
        "compare",
        "--sim",
        run.to_str().unwrap(),
        "--recording",
        rec.to_str().unwrap(),
        "--format",
        format,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (neurotwin(&args, dir), out)
}

/// Defect 17a: a 1 s run against a 60 s recording left comparison.csv/json behind and said only
/// "0 compared neuron(s) … check Comparison::skipped".
#[test]
fn compare_of_a_too_short_run_says_why_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 1000.0);
    let rec = csv_recording(dir.path(), &["A", "B", "C"], 60.0, wave);
    let (o, out) = compare(dir.path(), &run, &rec, "csv", &[]);
    let e = assert_user_error(&o);
    assert!(e.contains("the run is 1000 ms"), "{e}");
    assert!(e.contains("duration_ms") && e.contains("4000"), "no fix given: {e}");
    assert!(e.contains("A, B, C"), "neurons not named: {e}");
    assert!(files_below(&out).is_empty(), "partial report: {:?}", files_below(&out));
}

/// Defect 17a: constant recorded traces are named, and nothing is written.
#[test]
fn compare_with_constant_traces_names_them_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 6000.0);
    let rec = csv_recording(dir.path(), &["A", "B"], 6.0, |_, _| "0.5".into());
    let (o, out) = compare(dir.path(), &run, &rec, "csv", &[]);
    let e = assert_user_error(&o);
    assert!(e.contains("trace of A is constant"), "{e}");
    assert!(e.contains("recording"), "{e}");
    assert!(files_below(&out).is_empty(), "partial report: {:?}", files_below(&out));
}

/// Defect 17b: an NWB file with two series asked for `NwbOptions::series`; it must name `--series`.
#[test]
fn nwb_series_choice_names_the_cli_flag() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 1000.0);
    let nwb = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/imaging/ophys_small.nwb");
    let (o, _) = compare(dir.path(), &run, &nwb, "nwb", &[]);
    let e = assert_user_error(&o);
    assert!(e.contains("--series") && e.contains("[compare] series"), "{e}");
}

/// Defect 17b: an all-NaN column asked for `NanPolicy::DropRows`; it must name `--nan-policy`, which
/// must then drop the column.
#[test]
fn all_nan_column_names_the_nan_policy_flag() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 6000.0);
    let rec = csv_recording(dir.path(), &["A", "B", "C"], 6.0, |i, t| if i == 2 { "NaN".into() } else { wave(i, t) });
    let (o, _) = compare(dir.path(), &run, &rec, "csv", &[]);
    let e = assert_user_error(&o);
    assert!(e.contains("--nan-policy drop-rows") && e.contains("nan_policy = \"drop-rows\""), "{e}");
    let (o, _) = compare(dir.path(), &run, &rec, "csv", &["--nan-policy", "drop-rows"]);
    assert!(!stderr(&o).contains("NaN in every frame"), "{}", stderr(&o));
}

/// Defect 17c: a missing `--sim` folder was reported as a missing nodes.csv.
#[test]
fn sim_folder_that_is_missing_or_not_a_run_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let rec = csv_recording(dir.path(), &["A"], 6.0, wave);
    let (o, _) = compare(dir.path(), Path::new("nowhere"), &rec, "csv", &[]);
    let e = assert_user_error(&o);
    assert!(e.contains("--sim nowhere: folder does not exist"), "{e}");
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    write(&dir.path().join("empty"), "summary.json", "{}");
    let (o, _) = compare(dir.path(), Path::new("empty"), &rec, "csv", &[]);
    let e = assert_user_error(&o);
    assert!(e.contains("missing spikes.h5, nodes.csv") && e.contains("output folder of `neurotwin run`"), "{e}");
    assert!(!e.contains("missing spikes.h5, nodes.csv, summary.json"), "{e}");
    let o = neurotwin(&["export", "nwb", "nowhere", "-o", "x.nwb"], dir.path());
    let e = assert_user_error(&o);
    assert!(e.contains("nowhere: folder does not exist"), "{e}");
}

/// Defect 17d: NeuroPAL's `VB02`/`DD01` never matched the connectome's `VB2`/`DD1`; `VB12` stays `VB12`,
/// and an unmatched label is reported with a suggestion.
#[test]
fn zero_padded_neuropal_labels_match_and_unmatched_ones_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "neurons.csv",
        "id,name,cell_type,transmitter\n1,VB2,motor,ACh\n2,VB12,motor,ACh\n3,DD1,motor,GABA\n4,AVAL,inter,ACh\n",
    );
    write(dir.path(), "connections.csv", "pre,post,count\n4,1,5\n4,2,5\n1,3,3\n2,3,3\n");
    let text = scenario("duration_ms = 6000.0", "").replace("names = [\"A\"]", "all = true");
    let s = write(dir.path(), "s.toml", &text);
    let run = dir.path().join("run");
    let o = neurotwin(&["run", s.to_str().unwrap(), "-o", run.to_str().unwrap()], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let rec = csv_recording(dir.path(), &["VB02", "VB12", "DD01", "AVAL", "AVLA"], 6.0, wave);
    let (o, out) = compare(dir.path(), &run, &rec, "csv", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare_summary.json")).unwrap()).unwrap();
    assert_eq!(json[0]["matched"], 4, "{json}");
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("AVLA") && all.contains("did you mean AVAL"), "{all}");
}
