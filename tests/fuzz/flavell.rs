//! Target `flavell_labels`: mutated `neuropal_labels.json` files read with `read_flavell` (and the worm
//! listing) against a valid Flavell-layout recording, in this process. Mutated Flavell HDF5 files go
//! through the command line (target `hdf5_cli`).

use std::path::Path;

use neurotwin_imaging::{FlavellOptions, NanPolicy, list_flavell_worms, read_flavell};

use super::engine::{Shape, mutate};
use super::harness::fuzz_in_process;

/// Worm uid of the fixture recording.
pub const UID: &str = "2099-01-01-01";

/// Neuron labels of the fixture recording's 5 ROIs (also the names of the small network in `hdf5_cli`).
pub const LABELS: [&str; 5] = ["AVAL", "AVAR", "AIYL", "RIML", "AVBL"];

/// Writes a Flavell-layout recording `<dir>/<UID>-data.h5` (40 frames × 5 ROIs, 0.6 s per frame, with
/// reversal and velocity series) and returns its path.
pub fn write_flavell_h5(dir: &Path) -> std::path::PathBuf {
    write_flavell_h5_frames(dir, None)
}

/// [`write_flavell_h5`] whose trace array instead declares `frames` frames (chunked, never written), all in one
/// write: no second open of the file (a reopen for writing right after the first handle's close met HDF5's file
/// lock, errno 11, once under load).
pub fn write_flavell_h5_frames(dir: &Path, frames: Option<usize>) -> std::path::PathBuf {
    let (m, n) = (40usize, LABELS.len());
    let path = dir.join(format!("{UID}-data.h5"));
    let f = hdf5::File::create(&path).unwrap();
    let g = f.create_group("gcamp").unwrap();
    match frames {
        None => {
            let traces: Vec<f64> = (0..m * n).map(|x| ((x * 7) % 11) as f64 / 11.0).collect();
            g.new_dataset::<f64>().shape([m, n]).create("trace_array").unwrap().write_raw(&traces).unwrap();
        }
        Some(frames) => {
            g.new_dataset::<f64>().chunk([1024, n]).shape([frames, n]).create("trace_array").unwrap();
        }
    }
    let t: Vec<f64> = (0..m).map(|k| 1000.0 + 0.6 * k as f64).collect();
    f.create_group("timing").unwrap().new_dataset_builder().with_data(&t).create("timestamp_confocal").unwrap();
    let b = f.create_group("behavior").unwrap();
    let rev: Vec<i64> = (0..m).map(|k| (k % 4 == 0) as i64).collect();
    b.new_dataset_builder().with_data(&rev).create("reversal_vec").unwrap();
    let vel: Vec<f64> = (0..m).map(|k| (k as f64 * 0.3).sin() * 0.1).collect();
    b.new_dataset_builder().with_data(&vel).create("velocity").unwrap();
    path
}

/// A label file for [`write_flavell_h5`]: identities for `cols` (1-based column, confidence).
pub fn labels_json(cols: &[(usize, f64)]) -> String {
    let entries: Vec<String> = cols
        .iter()
        .map(|&(c, conf)| {
            let l = LABELS[(c - 1) % LABELS.len()];
            format!(
                "\"{c}\": {{\"label\": \"{l}\", \"neuron_class\": \"{}\", \"LR\": \"L\", \"DV\": \"undefined\", \
                 \"region\": null, \"roi_id\": [{c}, {}], \"confidence\": {conf}}}",
                &l[..3],
                c + 10
            )
        })
        .collect();
    format!(
        "{{\"list_uid\": [\"other\", \"{UID}\"], \"list_match_dict\": [{{\"1\": {{}}, \"2\": {{}}}}, \
         {{\"1\": {{{}}}, \"2\": {{}}}}]}}",
        entries.join(", ")
    )
}

#[test]
fn flavell_labels() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = write_flavell_h5(dir.path());
    let corpus: Vec<Vec<u8>> = [
        labels_json(&[(1, 5.0), (2, 4.0), (3, 2.0), (4, 3.0), (5, 1.0)]),
        labels_json(&[(1, 5.0), (3, 5.0), (4, 2.5)]),
        labels_json(&[(2, 3.0), (5, 3.0)]),
    ]
    .map(String::into_bytes)
    .to_vec();
    let json = dir.path().join("neuropal_labels.json");
    fuzz_in_process(
        "flavell_labels",
        "json",
        "neuropal_labels.json of a valid 40 × 5 Flavell recording",
        |rng| mutate(rng, &corpus, Shape::Text),
        |rng, bytes| {
            std::fs::write(&json, bytes).unwrap();
            let opts = FlavellOptions {
                min_confidence: *rng.pick(&[0.0, 3.0, f64::NAN, 1e308]),
                nan: if rng.chance(1, 2) { NanPolicy::Error } else { NanPolicy::DropRows },
                uid: if rng.chance(1, 4) { Some("other".into()) } else { None },
                ..Default::default()
            };
            let _ = list_flavell_worms(dir.path());
            if read_flavell(&h5, &json, &opts).is_ok() { "read" } else { "error" }
        },
    );
}
