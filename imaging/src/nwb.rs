//! NWB 2.x optical-physiology reader (HDF5 files written by pynwb, MatNWB, suite2p/CaImAn exporters, …).
//!
//! # What is read
//!
//! A `RoiResponseSeries` (`neurodata_type` attribute checked) inside a `DfOverF` or `Fluorescence`
//! container of a processing module, conventionally `/processing/ophys/<DfOverF|Fluorescence>/<name>/`:
//!
//! ```text
//! <series>/data            numbers [frames, rois] (or [frames] for one ROI); value = data × conversion + offset
//!                          (attributes conversion, offset; defaults 1 and 0)
//! <series>/timestamps      numbers [frames], seconds           — or —
//! <series>/starting_time   scalar, seconds, attribute rate (Hz): frame k at starting_time + k / rate
//! <series>/rois            DynamicTableRegion: integer rows into the table its attribute `table` refers to
//!                          (a PlaneSegmentation)
//! ```
//!
//! Note NWB's orientation is **frames × ROIs**; the [`CalciumRecording`] is transposed to neurons × frames.
//! ROI labels come from the first string column of the PlaneSegmentation named `neuron_name`, `label`,
//! `name`, `roi_name` or `neuron_id` (an empty value = unlabelled); without such a column ROI `k` is
//! labelled `roi<id>` with the table's `id`. The indicator and the imaging rate are taken from the
//! PlaneSegmentation's `imaging_plane` when present. The signal kind follows the container
//! (`DfOverF` → [`SignalKind::DfOverF`], `Fluorescence` → [`SignalKind::Fluorescence`]).
//!
//! When the file has several series, choose one with [`NwbOptions::series`] (its name, e.g. `dff`, or a
//! path suffix, e.g. `DfOverF/dff` or `/processing/ophys/DfOverF/dff`); the error lists those available.

use std::path::Path;

use hdf5::{Dataset, Group, ObjectReference1, ReferencedObject};
use neurotwin_io::h5::{is_fixed_string, is_varlen_string, join};

use crate::error::ImagingError;
use crate::h5::H5;
use crate::recording::{CalciumRecording, Names, NanPolicy, SignalKind, finish};

const WHAT: &str = "an NWB 2.x file (HDF5)";
/// PlaneSegmentation columns tried, in order, for ROI labels.
pub const LABEL_COLUMNS: &[&str] = &["neuron_name", "label", "name", "roi_name", "neuron_id"];

/// How to read an NWB file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NwbOptions {
    /// Which `RoiResponseSeries` to read (name or path suffix); `None` = the only one in the file.
    pub series: Option<String>,
    /// What to do with ROIs that are NaN in every frame.
    pub nan: NanPolicy,
}

/// A `RoiResponseSeries` found in a file ([`list_nwb_series`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NwbSeriesInfo {
    /// Absolute HDF5 path, e.g. `/processing/ophys/DfOverF/dff`.
    pub path: String,
    /// The series' own name, e.g. `dff`.
    pub name: String,
    /// From the container: `DfOverF` or `Fluorescence`.
    pub kind: SignalKind,
    /// Shape of its `data` dataset (frames, ROIs).
    pub shape: Vec<usize>,
}

fn neurodata_type(h: &H5, loc: &hdf5::Location) -> Option<String> {
    h.attr_string_opt(loc, "neurodata_type").ok().flatten()
}

fn open(path: &Path) -> Result<H5, ImagingError> {
    let h = H5::open(path, WHAT)?;
    match neurodata_type(&h, h.file()) {
        Some(t) if t == "NWBFile" => {}
        Some(t) => {
            return Err(h.format(format!("the root has neurodata_type = {t:?}, expected \"NWBFile\": not an NWB file")));
        }
        None => {
            return Err(h.format(
                "no neurodata_type attribute at the root: not an NWB 2.x file (for plain HDF5 traces use \
                 read_plain_h5)",
            ));
        }
    }
    if let Ok(Some(v)) = h.attr_string_opt(h.file(), "nwb_version")
        && v.starts_with("1.")
    {
        return Err(h.format(format!("nwb_version = {v:?}: NWB 1.x is not supported; convert the file to NWB 2.x")));
    }
    Ok(h)
}

fn find_series(h: &H5) -> Result<Vec<NwbSeriesInfo>, ImagingError> {
    let mut out = Vec::new();
    if !h.exists("/processing") {
        return Ok(out);
    }
    let processing = h.group("/processing")?;
    for module in h.members(&processing)? {
        let Ok(mg) = processing.group(&module) else { continue };
        for container in h.members(&mg)? {
            let Ok(cg) = mg.group(&container) else { continue };
            let kind = match neurodata_type(h, &cg).as_deref() {
                Some("DfOverF") => SignalKind::DfOverF,
                Some("Fluorescence") => SignalKind::Fluorescence,
                _ => continue,
            };
            for name in h.members(&cg)? {
                let Ok(sg) = cg.group(&name) else { continue };
                if neurodata_type(h, &sg).as_deref() != Some("RoiResponseSeries") {
                    continue;
                }
                let shape = sg.dataset("data").map(|d| d.shape()).unwrap_or_default();
                out.push(NwbSeriesInfo { path: sg.name(), name, kind: kind.clone(), shape });
            }
        }
    }
    Ok(out)
}

/// Lists the `RoiResponseSeries` of an NWB file (inside `DfOverF`/`Fluorescence` containers of any
/// processing module), sorted by path.
pub fn list_nwb_series(path: impl AsRef<Path>) -> Result<Vec<NwbSeriesInfo>, ImagingError> {
    find_series(&open(path.as_ref())?)
}

fn pick<'s>(h: &H5, all: &'s [NwbSeriesInfo], want: Option<&str>) -> Result<&'s NwbSeriesInfo, ImagingError> {
    let list = || all.iter().map(|s| s.path.as_str()).collect::<Vec<_>>().join(", ");
    if all.is_empty() {
        return Err(h.format(
            "no RoiResponseSeries found: expected one under /processing/<module>/<DfOverF|Fluorescence>/<name> \
             with neurodata_type = \"RoiResponseSeries\"",
        ));
    }
    let Some(want) = want else {
        if all.len() == 1 {
            return Ok(&all[0]);
        }
        return Err(h.format(format!(
            "{} RoiResponseSeries in the file: choose one by name or path with `--series NAME` (in a scenario: \
             `[compare] series = \"NAME\"`); available: {}",
            all.len(),
            list()
        )));
    };
    let w = want.trim_matches('/');
    let hits: Vec<&NwbSeriesInfo> = all
        .iter()
        .filter(|s| s.name == w || s.path.trim_matches('/') == w || s.path.ends_with(&format!("/{w}")))
        .collect();
    match hits[..] {
        [one] => Ok(one),
        [] => Err(h.format(format!("no RoiResponseSeries named {want:?}; available: {}", list()))),
        _ => Err(h.format(format!(
            "series {want:?} is ambiguous: it matches {}; give a longer path",
            hits.iter().map(|s| s.path.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn child_ds(h: &H5, g: &Group, name: &str, hint: &str) -> Result<Dataset, ImagingError> {
    h.dataset(&join(g, name), hint)
}

/// Frame times (seconds) of a series with `m` frames, and the stated rate (Hz) if any.
fn times(h: &H5, sg: &Group, m: usize) -> Result<(Vec<f64>, String, Option<f64>), ImagingError> {
    let base = sg.name();
    if sg.link_exists("timestamps") {
        let ds = child_ds(h, sg, "timestamps", "")?;
        return Ok((h.floats_1d(&ds)?, format!("{base}/timestamps"), None));
    }
    if sg.link_exists("starting_time") {
        let ds = child_ds(h, sg, "starting_time", "")?;
        let start = h.floats_1d(&ds)?;
        let &[start] = &start[..] else {
            return Err(h.format(format!("{base}/starting_time must be a scalar (seconds)")));
        };
        let Some(rate) = h.attr_f64_opt(&ds, "rate")? else {
            return Err(h.format(format!(
                "{base}/starting_time has no attribute rate: give the sampling rate in Hz, or timestamps"
            )));
        };
        if !(rate.is_finite() && rate > 0.0) {
            return Err(
                h.format(format!("attribute rate of {base}/starting_time is {rate}, expected a positive rate in Hz"))
            );
        }
        let t = (0..m).map(|k| start + k as f64 / rate).collect();
        return Ok((t, format!("{base}/starting_time (rate {rate} Hz)"), Some(rate)));
    }
    Err(h.format(format!("{base} has neither timestamps nor starting_time: NWB requires one of them (seconds)")))
}

/// The PlaneSegmentation referred to by `<series>/rois`, and the table rows of the series' ROIs.
fn roi_table(h: &H5, sg: &Group, n: usize) -> Result<(Group, Vec<usize>), ImagingError> {
    let base = sg.name();
    let ds = child_ds(h, sg, "rois", "a RoiResponseSeries needs a DynamicTableRegion `rois` naming its ROIs")?;
    let (rows, _) = h.floats(&ds)?;
    if rows.len() != n {
        return Err(h.format(format!(
            "{base}/rois has {} entries but {base}/data has {n} ROI columns: there must be one row reference per ROI",
            rows.len()
        )));
    }
    let attr = ds.attr("table").map_err(|_| {
        h.format(format!("{base}/rois has no attribute `table` (object reference to the PlaneSegmentation)"))
    })?;
    let r = attr
        .read_scalar::<ObjectReference1>()
        .map_err(|e| h.herr(format!("cannot read attribute `table` of {base}/rois as an object reference"), e))?;
    let table = match h.file().dereference(&r) {
        Ok(ReferencedObject::Group(g)) => g,
        Ok(_) => return Err(h.format(format!("attribute `table` of {base}/rois does not refer to a group"))),
        Err(e) => return Err(h.herr(format!("cannot resolve attribute `table` of {base}/rois"), e)),
    };
    match neurodata_type(h, &table).as_deref() {
        Some("PlaneSegmentation") => {}
        other => {
            return Err(h.format(format!(
                "{base}/rois refers to {} with neurodata_type {other:?}, expected \"PlaneSegmentation\"",
                table.name()
            )));
        }
    }
    let rows = rows
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            if v >= 0.0 && v.fract() == 0.0 {
                Ok(v as usize)
            } else {
                Err(h.format(format!("{base}/rois[{k}] = {v} is not a row number")))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((table, rows))
}

fn is_string_column(ds: &Dataset) -> bool {
    ds.shape().len() == 1
        && ds.dtype().and_then(|t| t.to_descriptor()).is_ok_and(|t| is_fixed_string(&t) || is_varlen_string(&t))
}

/// ROI labels for table rows `rows`: from a label column, else `roi<id>`.
fn labels(h: &H5, table: &Group, rows: &[usize]) -> Result<Vec<String>, ImagingError> {
    let tname = table.name();
    let id_ds = child_ds(h, table, "id", "a PlaneSegmentation needs an `id` column")?;
    let (ids, _) = h.floats(&id_ds)?;
    if let Some((k, &r)) = rows.iter().enumerate().find(|(_, r)| **r >= ids.len()) {
        return Err(h.format(format!(
            "ROI {k} refers to row {r} of {tname}, which has {} rows (dataset {tname}/id)",
            ids.len()
        )));
    }
    for col in LABEL_COLUMNS {
        if !table.link_exists(col) || table.link_exists(&format!("{col}_index")) {
            continue;
        }
        let Ok(ds) = table.dataset(col) else { continue };
        if !is_string_column(&ds) {
            continue;
        }
        let values = h.read_string_list(&ds)?;
        if values.len() != ids.len() {
            return Err(h.format(format!(
                "{tname}/{col} has {} entries but {tname}/id has {}: a column needs one value per ROI",
                values.len(),
                ids.len()
            )));
        }
        return Ok(rows.iter().map(|&r| values[r].trim().to_string()).collect());
    }
    Ok(rows.iter().map(|&r| format!("roi{}", ids[r])).collect())
}

/// Indicator and imaging rate (Hz) from the PlaneSegmentation's imaging plane, when present.
fn plane_metadata(h: &H5, table: &Group) -> (Option<String>, Option<f64>) {
    let plane = join(table, "imaging_plane");
    if !h.exists(&plane) {
        return (None, None);
    }
    let indicator = h.read_string_scalar(&format!("{plane}/indicator")).ok();
    let rate = h.read_nd::<f64>(&format!("{plane}/imaging_rate")).ok().and_then(|(v, _)| v.first().copied());
    (indicator, rate.filter(|r| r.is_finite() && *r > 0.0))
}

/// Reads one `RoiResponseSeries` of an NWB 2.x file as a [`CalciumRecording`] (see the module documentation).
pub fn read_nwb(path: impl AsRef<Path>, opts: &NwbOptions) -> Result<CalciumRecording, ImagingError> {
    let path = path.as_ref();
    let h = open(path)?;
    let all = find_series(&h)?;
    let info = pick(&h, &all, opts.series.as_deref())?.clone();
    let sg = h.group(&info.path)?;
    let base = info.path.as_str();
    let ds = child_ds(&h, &sg, "data", "a RoiResponseSeries needs data [frames, rois]")?;
    let (data, shape) = h.floats(&ds)?;
    let (m, n) = match shape[..] {
        [m, n] => (m, n),
        [m] => (m, 1),
        _ => return Err(h.format(format!("{base}/data has shape {shape:?}, expected [frames, rois]"))),
    };
    let conversion = h.attr_f64_opt(&ds, "conversion")?.unwrap_or(1.0);
    let offset = h.attr_f64_opt(&ds, "offset")?.unwrap_or(0.0);
    let mut traces = vec![0.0; n * m];
    for k in 0..m {
        for i in 0..n {
            let v = data[k * n + i];
            traces[i * m + k] = if conversion == 1.0 && offset == 0.0 { v } else { v * conversion + offset };
        }
    }
    let (time_s, time_name, rate) = times(&h, &sg, m)?;
    let (table, rows) = roi_table(&h, &sg, n)?;
    let labels = labels(&h, &table, &rows)?;
    let (indicator, plane_rate) = plane_metadata(&h, &table);
    let rec = CalciumRecording {
        labels,
        time_s,
        traces,
        n_neurons: n,
        n_frames: m,
        kind: info.kind.clone(),
        source: path.to_path_buf(),
        indicator,
        stated_rate_hz: rate.or(plane_rate),
        source_index: (0..n).collect(),
        dropped: Vec::new(),
        extra: Vec::new(),
    };
    let traces_name = format!("{base}/data");
    finish(rec, opts.nan, path, &Names { traces: &traces_name, time: &time_name })
}
