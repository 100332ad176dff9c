//! [`CalciumRecording`]: a calcium-imaging recording as plain data, and the checks every reader applies.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::ImagingError;

/// What the values of a recording's traces are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SignalKind {
    /// ΔF/F: fluorescence change relative to a baseline (dimensionless; 0.5 = 50 % above baseline).
    #[default]
    DfOverF,
    /// Raw or background-corrected fluorescence (arbitrary units).
    Fluorescence,
    /// Anything else (e.g. the Flavell lab's normalised traces); the text says what.
    Other(String),
}

impl SignalKind {
    /// Parses a kind as written in files: `dff`, `dfoverf`, `df/f` → [`SignalKind::DfOverF`];
    /// `fluorescence`, `f`, `raw` → [`SignalKind::Fluorescence`] (case-insensitive); anything else →
    /// [`SignalKind::Other`].
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "dff" | "dfoverf" | "df/f" | "df_over_f" | "deltaf/f" => Self::DfOverF,
            "fluorescence" | "f" | "raw" => Self::Fluorescence,
            _ => Self::Other(s.trim().to_string()),
        }
    }

    /// The spelling [`SignalKind::parse`] reads back: `dff`, `fluorescence`, or the free text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::DfOverF => "dff",
            Self::Fluorescence => "fluorescence",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reader does with a neuron whose trace is NaN in every frame.
///
/// Isolated NaN frames are always kept (they mark frames where the ROI could not be measured); analyses
/// should treat them as missing, e.g. by pairwise deletion as [`pearson`](crate::stats::pearson) does,
/// never by replacing them with zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NanPolicy {
    /// An all-NaN row is an error listing the labels of all such rows (default).
    #[default]
    Error,
    /// All-NaN rows are removed; their labels are listed in [`CalciumRecording::dropped`].
    DropRows,
}

/// A behaviour (or other) time series sampled at the recording's frames, e.g. velocity or reversals.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtraSeries {
    /// Name, e.g. `reversal_vec` or `velocity`.
    pub name: String,
    /// Unit of `values` as far as known (e.g. `mm/s`, `1 = reversing`; empty = unknown).
    pub unit: String,
    /// One value per frame (`values.len() == n_frames`); NaN = missing.
    pub values: Vec<f64>,
}

/// A calcium-imaging recording: one trace per neuron (ROI), sampled at common frame times.
///
/// Layout: `traces` is **row-major neurons × frames** — the trace of neuron `i` is
/// `traces[i * n_frames .. (i + 1) * n_frames]` ([`CalciumRecording::trace`]). A plain `Vec<f64>` is used (no
/// matrix crate) so that the struct is plain data any caller can build.
///
/// Invariants ([`CalciumRecording::validate`]; every reader checks them): `labels.len() == n_neurons`,
/// `source_index.len() == n_neurons`, `traces.len() == n_neurons * n_frames`, `time_s.len() == n_frames`,
/// timestamps finite and strictly increasing, trace values finite or NaN (NaN = missing frame), no row
/// entirely NaN, every extra series `n_frames` long.
#[derive(Clone, Debug, PartialEq)]
pub struct CalciumRecording {
    /// One label per neuron row, e.g. `AVAL`; an empty string marks an unlabelled ROI. Labels should be
    /// unique; [`LabelMap`](crate::LabelMap) reports duplicates.
    pub labels: Vec<String>,
    /// Frame timestamps in seconds (strictly increasing; the origin is the file's, e.g. the acquisition
    /// clock — subtract `time_s[0]` for time since the start).
    pub time_s: Vec<f64>,
    /// Traces, row-major neurons × frames, in the unit given by `kind`.
    pub traces: Vec<f64>,
    /// Number of neuron rows.
    pub n_neurons: usize,
    /// Number of frames.
    pub n_frames: usize,
    /// What the trace values are.
    pub kind: SignalKind,
    /// The file the recording was read from (empty for recordings built in memory).
    pub source: PathBuf,
    /// Calcium indicator, e.g. `GCaMP6s`, when the file says.
    pub indicator: Option<String>,
    /// Frame rate in Hz as stated by the file (not estimated; see [`CalciumRecording::frame_rate_hz`]).
    pub stated_rate_hz: Option<f64>,
    /// For each row, its index (0-based ROI row/column) in the source file; differs from the row
    /// number only when rows were dropped ([`NanPolicy::DropRows`]).
    pub source_index: Vec<usize>,
    /// Labels of the rows removed by [`NanPolicy::DropRows`] ("row N" for unlabelled ones).
    pub dropped: Vec<String>,
    /// Behaviour or other series on the same frames.
    pub extra: Vec<ExtraSeries>,
}

impl CalciumRecording {
    /// A recording from its parts, checked with [`CalciumRecording::validate`]; `source_index` is `0..n`, no
    /// metadata, no extra series.
    pub fn new(
        labels: Vec<String>,
        time_s: Vec<f64>,
        traces: Vec<f64>,
        kind: SignalKind,
    ) -> Result<Self, ImagingError> {
        let n_neurons = labels.len();
        let n_frames = time_s.len();
        let rec = Self {
            source_index: (0..n_neurons).collect(),
            labels,
            time_s,
            traces,
            n_neurons,
            n_frames,
            kind,
            source: PathBuf::new(),
            indicator: None,
            stated_rate_hz: None,
            dropped: Vec::new(),
            extra: Vec::new(),
        };
        rec.validate()?;
        Ok(rec)
    }

    /// Checks the invariants listed on [`CalciumRecording`]; the error says which one fails.
    pub fn validate(&self) -> Result<(), ImagingError> {
        let names = Names { traces: "traces", time: "time_s" };
        check(self, &names).map_err(ImagingError::Invalid)
    }

    /// Trace of neuron row `i` (one value per frame, unit per [`CalciumRecording::kind`]). Panics if `i >= n_neurons`.
    pub fn trace(&self, i: usize) -> &[f64] {
        &self.traces[i * self.n_frames..(i + 1) * self.n_frames]
    }

    /// Row of the first neuron whose label is exactly `label`.
    pub fn index_of(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// Trace of the first neuron labelled exactly `label`.
    pub fn trace_of(&self, label: &str) -> Option<&[f64]> {
        self.index_of(label).map(|i| self.trace(i))
    }

    /// Estimated frame rate in Hz: 1 / median frame interval. `None` with fewer than two frames.
    pub fn frame_rate_hz(&self) -> Option<f64> {
        let mut d: Vec<f64> = self.time_s.windows(2).map(|w| w[1] - w[0]).collect();
        if d.is_empty() {
            return None;
        }
        d.sort_by(f64::total_cmp);
        let m = d.len();
        let median = if m % 2 == 1 { d[m / 2] } else { 0.5 * (d[m / 2 - 1] + d[m / 2]) };
        (median > 0.0).then(|| 1.0 / median)
    }

    /// Time from the first to the last frame, in seconds (0 with fewer than two frames).
    pub fn duration_s(&self) -> f64 {
        match (self.time_s.first(), self.time_s.last()) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        }
    }

    /// The extra series called `name`.
    pub fn extra(&self, name: &str) -> Option<&ExtraSeries> {
        self.extra.iter().find(|e| e.name == name)
    }

    /// Number of rows with a non-empty label.
    pub fn n_labelled(&self) -> usize {
        self.labels.iter().filter(|l| !l.is_empty()).count()
    }
}

/// Names of the source datasets/columns, used in error messages.
pub(crate) struct Names<'a> {
    pub traces: &'a str,
    pub time: &'a str,
}

fn row_name(labels: &[String], i: usize) -> String {
    match labels.get(i) {
        Some(l) if !l.is_empty() => l.clone(),
        _ => format!("row {i} (unlabelled)"),
    }
}

/// The structural checks, as a message naming the datasets in `names`.
fn check(r: &CalciumRecording, names: &Names) -> Result<(), String> {
    let (n, m) = (r.n_neurons, r.n_frames);
    if n == 0 {
        return Err(format!("{} has no neurons (rows)", names.traces));
    }
    if m == 0 {
        return Err(format!("{} has no frames", names.traces));
    }
    if r.labels.len() != n {
        return Err(format!("{} labels for {n} neuron rows of {}", r.labels.len(), names.traces));
    }
    if r.source_index.len() != n {
        return Err(format!("source_index has {} entries for {n} neuron rows", r.source_index.len()));
    }
    if r.traces.len() != n * m {
        return Err(format!("{} has {} values, expected {n} neurons × {m} frames", names.traces, r.traces.len()));
    }
    if r.time_s.len() != m {
        return Err(format!(
            "{} has {} timestamps but {} has {m} frames: there must be one timestamp per frame",
            names.time,
            r.time_s.len(),
            names.traces
        ));
    }
    check_times(&r.time_s).map_err(|m| format!("{}: {m}", names.time))?;
    for i in 0..n {
        if let Some(k) = r.trace(i).iter().position(|v| v.is_infinite()) {
            return Err(format!(
                "{}: neuron {} has an infinite value at frame {k}: use NaN for missing values",
                names.traces,
                row_name(&r.labels, i)
            ));
        }
    }
    let all_nan = all_nan_rows(r);
    if !all_nan.is_empty() {
        let bad: Vec<String> = all_nan.iter().map(|&i| row_name(&r.labels, i)).collect();
        return Err(nan_message(names.traces, &bad));
    }
    for e in &r.extra {
        if e.values.len() != m {
            return Err(format!(
                "extra series {} has {} values but {} has {m} frames: there must be one value per frame",
                e.name,
                e.values.len(),
                names.traces
            ));
        }
    }
    Ok(())
}

fn nan_message(traces: &str, bad: &[String]) -> String {
    format!(
        "{traces}: {} neuron(s) are NaN in every frame: {}; remove them from the file, or drop them with \
         `--nan-policy drop-rows` (in a scenario: `[compare] nan_policy = \"drop-rows\"`)",
        bad.len(),
        bad.join(", ")
    )
}

fn all_nan_rows(r: &CalciumRecording) -> Vec<usize> {
    (0..r.n_neurons).filter(|&i| r.trace(i).iter().all(|v| v.is_nan())).collect()
}

/// Timestamps must be finite and strictly increasing.
fn check_times(t: &[f64]) -> Result<(), String> {
    if let Some(k) = t.iter().position(|v| !v.is_finite()) {
        return Err(format!("timestamp [{k}] is {}: every frame needs a finite time in seconds", t[k]));
    }
    if let Some(k) = t.windows(2).position(|w| w[1] <= w[0]) {
        return Err(format!(
            "timestamps are not strictly increasing: [{}] = {} follows [{k}] = {}; frames must be in time \
             order with distinct times (seconds)",
            k + 1,
            t[k + 1],
            t[k]
        ));
    }
    Ok(())
}

/// What readers call last: applies `nan` (dropping all-NaN rows if asked) and checks every invariant,
/// reporting failures as [`ImagingError::Format`] on `path` with the dataset names in `names`.
pub(crate) fn finish(
    mut r: CalciumRecording,
    nan: NanPolicy,
    path: &Path,
    names: &Names,
) -> Result<CalciumRecording, ImagingError> {
    if nan == NanPolicy::DropRows && r.traces.len() == r.n_neurons * r.n_frames && r.labels.len() == r.n_neurons {
        let bad = all_nan_rows(&r);
        if !bad.is_empty() && bad.len() < r.n_neurons {
            let m = r.n_frames;
            let keep: Vec<usize> = (0..r.n_neurons).filter(|i| !bad.contains(i)).collect();
            r.dropped = bad.iter().map(|&i| row_name(&r.labels, i)).collect();
            r.traces = keep.iter().flat_map(|&i| r.traces[i * m..(i + 1) * m].iter().copied()).collect();
            r.labels = keep.iter().map(|&i| r.labels[i].clone()).collect();
            r.source_index = keep.iter().map(|&i| r.source_index.get(i).copied().unwrap_or(i)).collect();
            r.n_neurons = keep.len();
        } else if bad.len() == r.n_neurons {
            let all: Vec<String> = bad.iter().map(|&i| row_name(&r.labels, i)).collect();
            return Err(ImagingError::format(
                path,
                format!("{}: every neuron is NaN in every frame ({}): no data to keep", names.traces, all.join(", ")),
            ));
        }
    }
    r.source = path.to_path_buf();
    check(&r, names).map_err(|m| ImagingError::format(path, m))?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_and_checks() {
        let r = CalciumRecording::new(
            vec!["A".into(), String::new()],
            vec![0.0, 0.5, 1.0],
            vec![1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0],
            SignalKind::DfOverF,
        )
        .unwrap();
        assert_eq!(r.trace(1)[2], 6.0);
        assert_eq!(r.index_of("A"), Some(0));
        assert!((r.frame_rate_hz().unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(r.n_labelled(), 1);
        let e =
            CalciumRecording::new(vec!["A".into()], vec![0.0, 0.0], vec![1.0, 2.0], SignalKind::DfOverF).unwrap_err();
        assert!(e.to_string().contains("strictly increasing"), "{e}");
        let e = CalciumRecording::new(vec!["A".into()], vec![0.0, 1.0], vec![f64::NAN, f64::NAN], SignalKind::DfOverF)
            .unwrap_err();
        assert!(e.to_string().contains("NaN in every frame: A"), "{e}");
        assert_eq!(SignalKind::parse("dF/F"), SignalKind::DfOverF);
        assert_eq!(SignalKind::parse("raw"), SignalKind::Fluorescence);
    }
}
