//! neurotwin's plain HDF5 layout for recordings: reader and writer.
//!
//! # Layout
//!
//! ```text
//! /traces          numbers [neurons, frames]  trace values (any integer/float type; read as f64), NaN = missing
//! /timestamps      numbers [frames]           frame times, seconds, strictly increasing
//!                                             (optional if the root attribute rate_hz is given)
//! /labels          strings [neurons]          optional: neuron names ("" = unlabelled); absent = all unlabelled
//! /extra/<name>    numbers [frames]           optional extra series (behaviour), attribute unit (string)
//! root attributes (all optional):
//!   rate_hz   (number, Hz)   frame rate; used for the timestamps when /timestamps is absent
//!   start_s   (number, s)    time of frame 0 when the timestamps come from rate_hz (default 0)
//!   kind      (string)       dff | fluorescence | free text (default dff)
//!   indicator (string)       e.g. GCaMP6s
//! ```
//!
//! Note the orientation: **neurons × frames** (one row per neuron), unlike NWB's frames × ROIs.
//! Strings may be variable- or fixed-length, ASCII or UTF-8.

use std::path::Path;

use hdf5::File;
use hdf5::types::VarLenUnicode;

use crate::error::ImagingError;
use crate::h5::H5;
use crate::recording::{CalciumRecording, ExtraSeries, Names, NanPolicy, SignalKind, finish};

const WHAT: &str = "a plain HDF5 recording (/traces [neurons, frames], /timestamps or attribute rate_hz, /labels)";

/// Reads a recording in the plain layout (see the module documentation); all-NaN rows per `nan`.
pub fn read_plain_h5(path: impl AsRef<Path>, nan: NanPolicy) -> Result<CalciumRecording, ImagingError> {
    let path = path.as_ref();
    let h = H5::open(path, WHAT)?;
    let root = h.file().as_group().map_err(|e| h.herr("cannot open the root group", e))?;
    let ds = h.dataset("/traces", "store the traces as a 2-D dataset /traces [neurons, frames]")?;
    let (traces, shape) = h.floats(&ds)?;
    let (n, m) = match shape[..] {
        [n, m] => (n, m),
        [m] => (1, m),
        _ => {
            return Err(h.format(format!("/traces has shape {shape:?}, expected two dimensions [neurons, frames]")));
        }
    };
    let rate = h.attr_f64_opt(&root, "rate_hz")?;
    let (time_s, time_name) = if h.exists("/timestamps") {
        let ds = h.dataset("/timestamps", "")?;
        (h.floats_1d(&ds)?, "/timestamps")
    } else if let Some(rate) = rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(h.format(format!("attribute rate_hz of / is {rate}: it must be a positive frame rate in Hz")));
        }
        let start = h.attr_f64_opt(&root, "start_s")?.unwrap_or(0.0);
        ((0..m).map(|k| start + k as f64 / rate).collect(), "frame times from rate_hz")
    } else {
        return Err(h.format(
            "missing dataset /timestamps: give the frame times (seconds) as /timestamps [frames], or the frame \
             rate as the root attribute rate_hz (Hz)",
        ));
    };
    let labels = if h.exists("/labels") {
        let ds = h.dataset("/labels", "")?;
        let l = h.read_string_list(&ds)?;
        if l.len() != n {
            return Err(h.format(format!(
                "/labels has {} entries but /traces has {n} neuron rows: give one label per row (\"\" = unlabelled)",
                l.len()
            )));
        }
        l
    } else {
        vec![String::new(); n]
    };
    let kind = h.attr_string_opt(&root, "kind")?.map(|s| SignalKind::parse(&s)).unwrap_or_default();
    let mut extra = Vec::new();
    if h.exists("/extra") {
        let g = h.group("/extra")?;
        for name in h.members(&g)? {
            let full = format!("/extra/{name}");
            let ds = h.dataset(&full, "")?;
            let values = h.floats_1d(&ds)?;
            let unit = h.attr_string_opt(&ds, "unit")?.unwrap_or_default();
            extra.push(ExtraSeries { name, unit, values });
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
        indicator: h.attr_string_opt(&root, "indicator")?,
        stated_rate_hz: rate,
        source_index: (0..n).collect(),
        dropped: Vec::new(),
        extra,
    };
    finish(rec, nan, path, &Names { traces: "/traces", time: time_name })
}

/// Writes `rec` in the plain layout (an existing file is replaced): `/traces` (f64), `/timestamps`,
/// `/labels`, `/extra/*`, and the attributes `kind`, `indicator` and `rate_hz` when known.
pub fn write_plain_h5(path: impl AsRef<Path>, rec: &CalciumRecording) -> Result<(), ImagingError> {
    let path = path.as_ref();
    rec.validate()?;
    // All or nothing, 0666 − umask (the shared I/O layer).
    neurotwin_io::atomic::write_file(path, |tmp: &Path| write_plain_h5_at(path, tmp, rec))
}

/// [`write_plain_h5`] into `tmp`; messages name `path`.
fn write_plain_h5_at(path: &Path, tmp: &Path, rec: &CalciumRecording) -> Result<(), ImagingError> {
    let herr = |what: &str, e: hdf5::Error| ImagingError::hdf5(path, format!("{what}: {e}"));
    let vlu = |s: &str| {
        s.parse::<VarLenUnicode>().map_err(|_| {
            ImagingError::format(path, format!("string {s:?} contains a NUL character, which HDF5 cannot store"))
        })
    };
    let f = File::create(tmp).map_err(|e| herr("cannot create the file", e))?;
    let ds = f
        .new_dataset::<f64>()
        .shape([rec.n_neurons, rec.n_frames])
        .create("traces")
        .map_err(|e| herr("cannot create /traces", e))?;
    ds.write_raw(&rec.traces).map_err(|e| herr("cannot write /traces", e))?;
    f.new_dataset_builder()
        .with_data(&rec.time_s)
        .create("timestamps")
        .map_err(|e| herr("cannot write /timestamps", e))?;
    let labels = rec.labels.iter().map(|s| vlu(s)).collect::<Result<Vec<_>, _>>()?;
    f.new_dataset_builder().with_data(&labels).create("labels").map_err(|e| herr("cannot write /labels", e))?;
    let str_attr = |name: &str, value: &str| -> Result<(), ImagingError> {
        let v = vlu(value)?;
        f.new_attr::<VarLenUnicode>()
            .create(name)
            .and_then(|a| a.write_scalar(&v))
            .map_err(|e| herr(&format!("cannot write attribute {name}"), e))
    };
    str_attr("kind", rec.kind.as_str())?;
    if let Some(ind) = &rec.indicator {
        str_attr("indicator", ind)?;
    }
    if let Some(rate) = rec.stated_rate_hz {
        f.new_attr::<f64>()
            .create("rate_hz")
            .and_then(|a| a.write_scalar(&rate))
            .map_err(|e| herr("cannot write attribute rate_hz", e))?;
    }
    if !rec.extra.is_empty() {
        let g = f.create_group("extra").map_err(|e| herr("cannot create /extra", e))?;
        for e in &rec.extra {
            let ds = g
                .new_dataset_builder()
                .with_data(&e.values)
                .create(e.name.as_str())
                .map_err(|err| herr(&format!("cannot write /extra/{}", e.name), err))?;
            let unit = vlu(&e.unit)?;
            ds.new_attr::<VarLenUnicode>()
                .create("unit")
                .and_then(|a| a.write_scalar(&unit))
                .map_err(|err| herr(&format!("cannot write attribute unit of /extra/{}", e.name), err))?;
        }
    }
    f.close().map_err(|e| herr("cannot close", e))
}
