//! CSV recordings: reader and writer.
//!
//! # Layout: one row per frame
//!
//! ```text
//! time_s,AVAL,AVAR,,RIML
//! 0.0,0.12,0.30,NaN,1.5
//! 0.1,0.15,0.28,0.01,1.4
//! ```
//!
//! The first column is `time_s` (frame time in seconds, strictly increasing); every other column is one
//! neuron, its header cell the label (an empty header cell = unlabelled ROI). The delimiter (comma or tab)
//! is detected from the header line; fields are trimmed; lines starting with `#` are comments. A value
//! that is empty, `NaN` or `nan` is a missing frame (NaN).
//!
//! The transposed layout (one row per neuron: `label,t0,t1,…`) is **not** read: a header whose first cell
//! is `label`, `neuron`, `name` or `roi` is rejected with a message saying to transpose the table.

use std::io::Write;
use std::path::Path;

use ::csv::{ReaderBuilder, Trim, WriterBuilder};

use crate::error::ImagingError;
use crate::recording::{CalciumRecording, Names, NanPolicy, SignalKind, finish};

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "" | "NaN" | "nan" | "NAN" => Some(f64::NAN),
        _ => s.parse::<f64>().ok(),
    }
}

/// Reads a CSV recording (see the module documentation); values are taken to be of `kind`.
pub fn read_csv(path: impl AsRef<Path>, kind: SignalKind, nan: NanPolicy) -> Result<CalciumRecording, ImagingError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| ImagingError::io(path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text); // spreadsheet exports may start with a BOM
    let header_line = text.lines().find(|l| !l.trim().is_empty() && !l.starts_with('#')).unwrap_or("");
    let delim = if header_line.contains('\t') && !header_line.contains(',') { b'\t' } else { b',' };
    let mut rd = ReaderBuilder::new()
        .delimiter(delim)
        .trim(Trim::All)
        .comment(Some(b'#'))
        .flexible(true)
        .from_reader(text.as_bytes());
    let header =
        rd.headers().map_err(|e| ImagingError::parse(path, 1, format!("cannot read the header: {e}")))?.clone();
    let first = header.get(0).unwrap_or("").to_ascii_lowercase();
    if ["label", "labels", "neuron", "neuron_name", "name", "roi"].contains(&first.as_str()) {
        return Err(ImagingError::parse(
            path,
            1,
            format!(
                "header starts with {:?}: this looks like the transposed layout (one row per neuron: label,t0,t1,…); \
                 this reader expects one row per frame: time_s,<label>,<label>,… — transpose the table",
                header.get(0).unwrap_or("")
            ),
        ));
    }
    if first != "time_s" {
        return Err(ImagingError::parse(
            path,
            1,
            format!(
                "first column is {:?}, expected time_s: the first column must hold the frame times in seconds, \
                 the others one neuron each (header = label)",
                header.get(0).unwrap_or("")
            ),
        ));
    }
    let labels: Vec<String> = header.iter().skip(1).map(str::to_string).collect();
    let n = labels.len();
    if n == 0 {
        return Err(ImagingError::parse(path, 1, "no neuron columns after time_s: add one column per neuron"));
    }
    let mut time_s = Vec::new();
    let mut by_frame: Vec<f64> = Vec::new(); // frames × neurons while reading
    for rec in rd.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            ImagingError::parse(path, line, format!("malformed row: {e}"))
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() != n + 1 {
            return Err(ImagingError::parse(
                path,
                line,
                format!("{} fields, expected {} (time_s and {n} neuron columns as in the header)", rec.len(), n + 1),
            ));
        }
        let t = rec[0].parse::<f64>().map_err(|_| {
            ImagingError::parse(path, line, format!("column time_s: {:?} is not a number (seconds)", &rec[0]))
        })?;
        time_s.push(t);
        for (j, cell) in rec.iter().enumerate().skip(1) {
            let v = parse_value(cell).ok_or_else(|| {
                let col = if labels[j - 1].is_empty() { format!("{}", j + 1) } else { labels[j - 1].clone() };
                ImagingError::parse(
                    path,
                    line,
                    format!("column {col}: {cell:?} is not a number (use NaN or leave empty for missing)"),
                )
            })?;
            by_frame.push(v);
        }
    }
    if let Some(k) = time_s.windows(2).position(|w| w[1] <= w[0]) {
        return Err(ImagingError::format(
            path,
            format!(
                "column time_s: times are not strictly increasing: frame {} ({} s) follows frame {k} ({} s); sort \
                 the rows by time and remove duplicate frames",
                k + 1,
                time_s[k + 1],
                time_s[k]
            ),
        ));
    }
    let m = time_s.len();
    let mut traces = vec![0.0; n * m];
    for k in 0..m {
        for i in 0..n {
            traces[i * m + k] = by_frame[k * n + i];
        }
    }
    let rec = CalciumRecording {
        labels,
        time_s,
        traces,
        n_neurons: n,
        n_frames: m,
        kind,
        source: path.to_path_buf(),
        indicator: None,
        stated_rate_hz: None,
        source_index: (0..n).collect(),
        dropped: Vec::new(),
        extra: Vec::new(),
    };
    finish(rec, nan, path, &Names { traces: "the neuron columns", time: "column time_s" })
}

/// Writes `rec` as CSV, one row per frame (see the module documentation). Values are written in Rust's
/// shortest round-trip form, so reading the file back gives identical numbers; NaN is written `NaN`.
/// Extra series and metadata are not written.
pub fn write_csv(path: impl AsRef<Path>, rec: &CalciumRecording) -> Result<(), ImagingError> {
    let path = path.as_ref();
    rec.validate()?;
    // All or nothing, 0666 − umask (the shared I/O layer).
    neurotwin_io::atomic::write_file(path, |tmp: &Path| write_csv_at(path, tmp, rec))
}

/// [`write_csv`] into `tmp`; messages name `path`.
fn write_csv_at(path: &Path, tmp: &Path, rec: &CalciumRecording) -> Result<(), ImagingError> {
    let io = |e: std::io::Error| ImagingError::io(path, e);
    let file = std::fs::File::create(tmp).map_err(io)?;
    let mut w = WriterBuilder::new().from_writer(std::io::BufWriter::new(file));
    let cerr = |e: ::csv::Error| ImagingError::format(path, format!("cannot write: {e}"));
    let mut row: Vec<String> = Vec::with_capacity(rec.n_neurons + 1);
    row.push("time_s".into());
    row.extend(rec.labels.iter().cloned());
    w.write_record(&row).map_err(cerr)?;
    for k in 0..rec.n_frames {
        row.clear();
        row.push(format!("{}", rec.time_s[k]));
        row.extend((0..rec.n_neurons).map(|i| format!("{}", rec.traces[i * rec.n_frames + k])));
        w.write_record(&row).map_err(cerr)?;
    }
    let mut inner = w.into_inner().map_err(|e| ImagingError::format(path, format!("cannot write: {e}")))?;
    inner.flush().map_err(io)
}
