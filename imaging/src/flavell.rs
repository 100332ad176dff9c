//! Reader for the Flavell lab's whole-brain recordings (Dag, Nwabudike, Kang et al. 2023, Cell 186:2574;
//! flavell-lab/NSM_5HTR_analysis): one `<uid>-data.h5` per worm plus `neuropal_labels.json`.
//!
//! # Layout read
//!
//! ```text
//! <uid>-data.h5
//!   gcamp/trace_array           f64 [frames, rois] as stored (h5py shape (800, 130–146)); the
//!                               orientation is found from the timestamps: the dimension whose length
//!                               equals timing/timestamp_confocal's is frames. Values: the lab's
//!                               normalised GCaMP traces (SignalKind::Other("flavell trace_array")).
//!   timing/timestamp_confocal   f64 [frames], seconds on the acquisition clock (~0.6 s per frame)
//!   behavior/reversal_vec       [frames], 1 = reversing, 0 = not     (optional extra series)
//!   behavior/velocity           [frames], mm/s, negative = backwards  (optional extra series)
//! neuropal_labels.json
//!   list_uid                    [worm uid, …]
//!   list_match_dict[k]["1"]     {"<column, 1-based>": {label, neuron_class, LR, DV, roi_id: [int],
//!                                confidence (1–5)}} for the worm list_uid[k]
//! ```
//!
//! Column `c` (1-based) of the label file is ROI row `c - 1` of the recording. Identities below
//! [`FlavellOptions::min_confidence`] are not applied. If several ROIs carry the same label, the one with
//! the highest confidence keeps it (ties: the lower column) and the others become unlabelled; they are
//! listed in [`FlavellWorm::duplicates`]. Labels ending in `?` (uncertain in the source) are kept as
//! written; they do not match connectome names.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::ImagingError;
use crate::h5::H5;
use crate::recording::{CalciumRecording, ExtraSeries, Names, NanPolicy, SignalKind, finish};

const WHAT: &str = "a Flavell-lab <uid>-data.h5 file (gcamp/trace_array, timing/timestamp_confocal)";

/// How to read a Flavell-lab worm.
#[derive(Clone, Debug, PartialEq)]
pub struct FlavellOptions {
    /// Identities with a confidence below this (scale 1–5) are not applied; 0 keeps all.
    pub min_confidence: f64,
    /// Trace dataset (default `gcamp/trace_array`; e.g. `gcamp/traces_array_F_F20` for F/F20).
    pub trace_dataset: String,
    /// Behaviour datasets read as extra series, with their units (missing ones are skipped).
    pub behaviour: Vec<(String, String)>,
    /// What to do with ROIs that are NaN in every frame.
    pub nan: NanPolicy,
    /// Worm uid in the label file; `None` = the data file's name without `-data.h5`.
    pub uid: Option<String>,
}

impl Default for FlavellOptions {
    fn default() -> Self {
        Self {
            min_confidence: 0.0,
            trace_dataset: "gcamp/trace_array".into(),
            behaviour: vec![
                ("behavior/reversal_vec".into(), "1 = reversing".into()),
                ("behavior/velocity".into(), "mm/s".into()),
            ],
            nan: NanPolicy::Error,
            uid: None,
        }
    }
}

/// One NeuroPAL identity from the label file.
#[derive(Clone, Debug, PartialEq)]
pub struct FlavellIdentity {
    /// 0-based ROI row in the file's trace array (the label file's column minus 1).
    pub roi: usize,
    /// Neuron name, e.g. `AVAL` (may end in `?` when uncertain).
    pub label: String,
    /// Class, e.g. `AVA`.
    pub neuron_class: String,
    /// `L`, `R`, `undefined` or `missing` as in the source.
    pub lr: String,
    /// `D`, `V` or `undefined` as in the source.
    pub dv: String,
    /// The lab's ROI ids (segmentation ids) merged into this trace.
    pub roi_ids: Vec<i64>,
    /// Confidence of the identity, 1 (low) – 5 (certain).
    pub confidence: f64,
}

/// A Flavell-lab worm: the recording (labels applied) plus the identities behind the labels.
#[derive(Clone, Debug, PartialEq)]
pub struct FlavellWorm {
    /// Worm uid, e.g. `2022-07-26-31`.
    pub uid: String,
    /// The recording; `labels[i]` is the accepted identity of row `i` or "".
    pub recording: CalciumRecording,
    /// Every identity the label file gives for this worm, sorted by ROI (including rejected ones).
    pub identities: Vec<FlavellIdentity>,
    /// Labels withheld from a lower-confidence ROI because another ROI has the same label ("LABEL (roi N)").
    pub duplicates: Vec<String>,
}

impl FlavellWorm {
    /// Confidence (1–5) of the identity applied to recording row `row`, if it is labelled.
    pub fn confidence(&self, row: usize) -> Option<f64> {
        let roi = *self.recording.source_index.get(row)?;
        let label = self.recording.labels.get(row)?;
        self.identities.iter().find(|i| i.roi == roi && &i.label == label).map(|i| i.confidence)
    }
}

/// The `<uid>-data.h5` files of a directory with their uids, sorted by uid.
pub fn list_flavell_worms(dir: impl AsRef<Path>) -> Result<Vec<(String, PathBuf)>, ImagingError> {
    let dir = dir.as_ref();
    let rd = std::fs::read_dir(dir).map_err(|e| ImagingError::io(dir, e))?;
    let mut out: Vec<(String, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix("-data.h5").map(|uid| (uid.to_string(), e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn jstr(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Parses the identities of worm `uid` from the label file.
fn identities(json: &Path, uid: &str, n_rois: usize) -> Result<Vec<FlavellIdentity>, ImagingError> {
    let ferr = |m: String| ImagingError::format(json, m);
    let text = std::fs::read_to_string(json).map_err(|e| ImagingError::io(json, e))?;
    let root: Value = serde_json::from_str(&text).map_err(|e| {
        ImagingError::parse(json, e.line() as u64, format!("not valid JSON: {e}; expected neuropal_labels.json"))
    })?;
    let uids = root
        .get("list_uid")
        .and_then(Value::as_array)
        .ok_or_else(|| ferr("missing field list_uid (array of worm uids): not a neuropal_labels.json file".into()))?;
    let uid_list: Vec<&str> = uids.iter().filter_map(Value::as_str).collect();
    let k = uid_list.iter().position(|u| *u == uid).ok_or_else(|| {
        ferr(format!(
            "worm {uid:?} is not in list_uid ({}): name the right worm (in a scenario: `[compare] worm = \
             \"UID\"`) or give the label file that belongs to this data file (`--labels FILE`, or \
             `[compare] labels`)",
            uid_list.join(", ")
        ))
    })?;
    let dict = root
        .get("list_match_dict")
        .and_then(Value::as_array)
        .and_then(|a| a.get(k))
        .and_then(|d| d.get("1"))
        .and_then(Value::as_object)
        .ok_or_else(|| ferr(format!("missing object list_match_dict[{k}][\"1\"] (identities of worm {uid})")))?;
    let mut out = Vec::with_capacity(dict.len());
    for (col, v) in dict {
        let at = format!("list_match_dict[{k}][\"1\"][\"{col}\"]");
        let c: usize = col.parse().map_err(|_| ferr(format!("{at}: key {col:?} is not a column number (1-based)")))?;
        if c == 0 || c > n_rois {
            return Err(ferr(format!(
                "{at}: column {c} is outside the trace array's {n_rois} ROIs (columns are 1-based): the label file \
                 does not belong to this data file"
            )));
        }
        let label = jstr(v, "label");
        if label.is_empty() {
            return Err(ferr(format!("{at}: missing or empty field label")));
        }
        let confidence = v
            .get("confidence")
            .and_then(Value::as_f64)
            .ok_or_else(|| ferr(format!("{at}: missing or non-numeric field confidence (expected 1–5)")))?;
        let roi_ids = match v.get("roi_id") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_i64).collect(),
            Some(Value::Number(n)) => n.as_i64().into_iter().collect(),
            _ => Vec::new(),
        };
        out.push(FlavellIdentity {
            roi: c - 1,
            label: label.trim().to_string(),
            neuron_class: jstr(v, "neuron_class"),
            lr: jstr(v, "LR"),
            dv: jstr(v, "DV"),
            roi_ids,
            confidence,
        });
    }
    out.sort_by_key(|i| i.roi);
    Ok(out)
}

/// Labels per ROI from the identities: confidence filter, then duplicates resolved by confidence.
fn apply_labels(ids: &[FlavellIdentity], n: usize, min_conf: f64) -> (Vec<String>, Vec<String>) {
    let mut labels = vec![String::new(); n];
    let mut duplicates = Vec::new();
    let mut accepted: Vec<&FlavellIdentity> = ids.iter().filter(|i| i.confidence >= min_conf).collect();
    // Highest confidence first, then lowest ROI: the first ROI to claim a label keeps it.
    accepted.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.roi.cmp(&b.roi)));
    let mut taken = std::collections::HashSet::new();
    for id in accepted {
        if !labels[id.roi].is_empty() {
            continue; // one identity per ROI: the more confident one
        }
        if taken.insert(id.label.clone()) {
            labels[id.roi] = id.label.clone();
        } else {
            duplicates.push(format!("{} (roi {})", id.label, id.roi));
        }
    }
    (labels, duplicates)
}

/// Reads one worm: `data_h5` (`<uid>-data.h5`) and its identities from `labels_json`
/// (`neuropal_labels.json`). See the module documentation for the layout and the label rules.
pub fn read_flavell(
    data_h5: impl AsRef<Path>,
    labels_json: impl AsRef<Path>,
    opts: &FlavellOptions,
) -> Result<FlavellWorm, ImagingError> {
    let path = data_h5.as_ref();
    let uid = match &opts.uid {
        Some(u) => u.clone(),
        None => {
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            name.strip_suffix("-data.h5").map(str::to_string).ok_or_else(|| {
                ImagingError::format(
                    path,
                    "file name does not end in -data.h5, so the worm uid is unknown: rename it to \
                     <uid>-data.h5, or name the worm (in a scenario: `[compare] worm = \"UID\"`)",
                )
            })?
        }
    };
    let h = H5::open(path, WHAT)?;
    let tname = format!("/{}", opts.trace_dataset.trim_start_matches('/'));
    let tds = h.dataset(&tname, "expected the GCaMP traces [frames, rois]")?;
    let (raw, shape) = h.floats(&tds)?;
    let time_ds = h.dataset("/timing/timestamp_confocal", "expected the frame times (seconds)")?;
    let time_s = h.floats_1d(&time_ds)?;
    let nt = time_s.len();
    let (m, n, frames_first) = match shape[..] {
        [a, b] if a == nt => (a, b, true),
        [a, b] if b == nt => (b, a, false),
        [a, b] => {
            return Err(h.format(format!(
                "{tname} has shape [{a}, {b}] but /timing/timestamp_confocal has {nt} entries: one dimension of the \
                 trace array must be the frames"
            )));
        }
        _ => return Err(h.format(format!("{tname} has shape {shape:?}, expected [frames, rois]"))),
    };
    let mut traces = vec![0.0; n * m];
    for k in 0..m {
        for i in 0..n {
            traces[i * m + k] = if frames_first { raw[k * n + i] } else { raw[i * m + k] };
        }
    }
    let mut extra = Vec::new();
    for (ds_name, unit) in &opts.behaviour {
        let full = format!("/{}", ds_name.trim_start_matches('/'));
        if !h.exists(&full) {
            continue;
        }
        let ds = h.dataset(&full, "")?;
        let values = h.floats_1d(&ds)?;
        if values.len() != m {
            return Err(h.format(format!(
                "{full} has {} values but {tname} has {m} frames: behaviour must be sampled at the confocal frames",
                values.len()
            )));
        }
        let name = full.rsplit('/').next().unwrap_or(&full).to_string();
        extra.push(ExtraSeries { name, unit: unit.clone(), values });
    }
    let ids = identities(labels_json.as_ref(), &uid, n)?;
    let (labels, duplicates) = apply_labels(&ids, n, opts.min_confidence);
    let rec = CalciumRecording {
        labels,
        time_s,
        traces,
        n_neurons: n,
        n_frames: m,
        kind: SignalKind::Other(format!("flavell {}", opts.trace_dataset.trim_start_matches("gcamp/"))),
        source: path.to_path_buf(),
        indicator: None,
        stated_rate_hz: None,
        source_index: (0..n).collect(),
        dropped: Vec::new(),
        extra,
    };
    let recording = finish(rec, opts.nan, path, &Names { traces: &tname, time: "/timing/timestamp_confocal" })?;
    Ok(FlavellWorm { uid, recording, identities: ids, duplicates })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(roi: usize, label: &str, confidence: f64) -> FlavellIdentity {
        FlavellIdentity {
            roi,
            label: label.into(),
            neuron_class: String::new(),
            lr: String::new(),
            dv: String::new(),
            roi_ids: vec![],
            confidence,
        }
    }

    #[test]
    fn duplicates_and_confidence() {
        let ids = [id(0, "URADL", 3.0), id(2, "URADL", 4.0), id(1, "AVAL", 2.0)];
        let (l, d) = apply_labels(&ids, 3, 0.0);
        assert_eq!(l, ["", "AVAL", "URADL"]);
        assert_eq!(d, ["URADL (roi 0)"]);
        let (l, _) = apply_labels(&ids, 3, 3.0);
        assert_eq!(l, ["", "", "URADL"]);
    }
}
