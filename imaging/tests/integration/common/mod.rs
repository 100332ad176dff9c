//! Helpers shared by the integration tests: paths to the committed test data and small HDF5 writers
//! used to make malformed files at run time.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use hdf5::{Group, H5Type, Location, ObjectReference1};

/// `data/imaging/` in the repository.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/imaging")
}

/// The analytic signals written by scripts/make_test_nwb.py.
pub const NAMES: [&str; 5] = ["AVAL", "AVAR", "AIYL", "RIML", ""];
pub const FREQ: [f64; 5] = [0.5, 0.25, 1.0, 0.1, 2.0];
pub const AMP: [f64; 5] = [1.0, 2.0, 0.5, 1.5, 0.25];
pub const OFFSET: [f64; 5] = [0.0, 0.5, -0.25, 1.0, 0.0];
pub const N_FRAMES: usize = 200;
pub const RATE_HZ: f64 = 10.0;

pub fn t_of(k: usize) -> f64 {
    k as f64 / RATE_HZ
}

pub fn dff(i: usize, k: usize) -> f64 {
    AMP[i] * (2.0 * std::f64::consts::PI * FREQ[i] * t_of(k)).sin() + OFFSET[i]
}

pub fn fluo(i: usize, k: usize) -> f64 {
    100.0 + 10.0 * i as f64 + (2.0 * std::f64::consts::PI * FREQ[i] * t_of(k)).cos()
}

pub fn ds_f64(g: &Group, name: &str, shape: &[usize], data: &[f64]) {
    let ds = g.new_dataset::<f64>().shape(shape.to_vec()).create(name).unwrap();
    ds.write_raw(data).unwrap();
}

pub fn ds_i64(g: &Group, name: &str, data: &[i64]) {
    g.new_dataset_builder().with_data(data).create(name).unwrap();
}

pub fn ds_strings(g: &Group, name: &str, data: &[&str]) {
    let v: Vec<VarLenUnicode> = data.iter().map(|s| s.parse().unwrap()).collect();
    g.new_dataset_builder().with_data(&v).create(name).unwrap();
}

pub fn attr_str(loc: &Location, name: &str, value: &str) {
    let v: VarLenUnicode = value.parse().unwrap();
    loc.new_attr::<VarLenUnicode>().create(name).unwrap().write_scalar(&v).unwrap();
}

pub fn attr_num<T: H5Type>(loc: &Location, name: &str, value: T) {
    loc.new_attr::<T>().create(name).unwrap().write_scalar(&value).unwrap();
}

/// What to break in [`write_nwb`].
#[derive(Clone, Copy, Default)]
pub struct NwbFaults {
    pub no_data: bool,
    pub short_timestamps: bool,
    pub no_label_column: bool,
    pub nan_roi: Option<usize>,
    pub decreasing_time: bool,
}

/// Writes a minimal NWB-like file by hand: 3 ROIs × 6 frames, one DfOverF series `dff` with timestamps,
/// a PlaneSegmentation with ids 7, 8, 9 and a `neuron_name` column.
pub fn write_nwb(path: &Path, faults: NwbFaults) {
    let f = hdf5::File::create(path).unwrap();
    attr_str(&f, "neurodata_type", "NWBFile");
    attr_str(&f, "nwb_version", "2.7.0");
    let ophys = f.create_group("processing").unwrap().create_group("ophys").unwrap();
    attr_str(&ophys, "neurodata_type", "ProcessingModule");
    let seg = ophys.create_group("ImageSegmentation").unwrap();
    attr_str(&seg, "neurodata_type", "ImageSegmentation");
    let ps = seg.create_group("PlaneSegmentation").unwrap();
    attr_str(&ps, "neurodata_type", "PlaneSegmentation");
    ds_i64(&ps, "id", &[7, 8, 9]);
    if !faults.no_label_column {
        ds_strings(&ps, "neuron_name", &["AVAL", "", "RIML"]);
    }
    let c = ophys.create_group("DfOverF").unwrap();
    attr_str(&c, "neurodata_type", "DfOverF");
    let s = c.create_group("dff").unwrap();
    attr_str(&s, "neurodata_type", "RoiResponseSeries");
    let (m, n) = (6, 3);
    let mut data: Vec<f64> = (0..m * n).map(|x| x as f64).collect();
    if let Some(i) = faults.nan_roi {
        for k in 0..m {
            data[k * n + i] = f64::NAN;
        }
    }
    if !faults.no_data {
        ds_f64(&s, "data", &[m, n], &data);
    }
    let mut t: Vec<f64> = (0..m).map(|k| k as f64 * 0.5).collect();
    if faults.short_timestamps {
        t.pop();
    }
    if faults.decreasing_time {
        t.swap(2, 3);
    }
    ds_f64(&s, "timestamps", &[t.len()], &t);
    ds_i64(&s, "rois", &[0, 1, 2]);
    let r: ObjectReference1 = f.reference("/processing/ophys/ImageSegmentation/PlaneSegmentation").unwrap();
    let rois = s.dataset("rois").unwrap();
    rois.new_attr::<ObjectReference1>().create("table").unwrap().write_scalar(&r).unwrap();
    attr_str(&rois, "neurodata_type", "DynamicTableRegion");
}

/// Writes a plain-layout file: `traces` [n, m] (n = labels.len()), optional timestamps, labels.
pub fn write_plain(path: &Path, labels: &[&str], traces: &[f64], timestamps: Option<&[f64]>) {
    let f = hdf5::File::create(path).unwrap();
    let n = labels.len();
    let m = traces.len() / n;
    ds_f64(&f, "traces", &[n, m], traces);
    if let Some(t) = timestamps {
        ds_f64(&f, "timestamps", &[t.len()], t);
    }
    ds_strings(&f, "labels", labels);
}

/// Writes a small Flavell-layout pair: `<dir>/<uid>-data.h5` ([frames, rois] = [m, n]) and
/// `<dir>/labels.json` with the given identities (1-based column, label, confidence).
pub fn write_flavell(dir: &Path, uid: &str, m: usize, n: usize, ids: &[(usize, &str, f64)]) -> (PathBuf, PathBuf) {
    let h5 = dir.join(format!("{uid}-data.h5"));
    let f = hdf5::File::create(&h5).unwrap();
    let g = f.create_group("gcamp").unwrap();
    let data: Vec<f64> = (0..m * n).map(|x| ((x * 7) % 11) as f64).collect();
    ds_f64(&g, "trace_array", &[m, n], &data);
    let t = f.create_group("timing").unwrap();
    let ts: Vec<f64> = (0..m).map(|k| 1000.0 + 0.6 * k as f64).collect();
    ds_f64(&t, "timestamp_confocal", &[m], &ts);
    let b = f.create_group("behavior").unwrap();
    let rev: Vec<i64> = (0..m).map(|k| (k % 4 == 0) as i64).collect();
    ds_i64(&b, "reversal_vec", &rev);
    let entries: Vec<String> = ids
        .iter()
        .map(|(c, l, conf)| {
            format!(
                "\"{c}\": {{\"label\": \"{l}\", \"neuron_class\": \"{}\", \"LR\": \"L\", \"DV\": \"undefined\", \
                 \"region\": null, \"roi_id\": [{c}], \"confidence\": {conf}}}",
                l.trim_end_matches(['L', 'R'])
            )
        })
        .collect();
    let json = format!(
        "{{\"list_uid\": [\"other\", \"{uid}\"], \"list_match_dict\": [{{\"1\": {{}}, \"2\": {{}}}}, {{\"1\": {{{}}}, \"2\": {{}}}}]}}",
        entries.join(", ")
    );
    let jp = dir.join("labels.json");
    std::fs::write(&jp, json).unwrap();
    (h5, jp)
}
