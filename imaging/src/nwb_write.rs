//! NWB 2.x writer: simulated spikes and simulated ΔF/F as an NWB file that pynwb reads and nwbinspector
//! accepts (no ERROR or CRITICAL message; checked by `scripts/check_nwb.py`).
//!
//! # Schema followed
//!
//! NWB core **2.11.0** with hdmf-common **1.10.0** (the schemas bundled with pynwb 4.2.0), written with
//! the HDF5 conventions pynwb uses: variable-length UTF-8 strings, old-style object references (`H5R_OBJ`)
//! for `DynamicTableRegion.table` and `VectorIndex.target`, soft links for `ImagingPlane.device` and
//! `PlaneSegmentation.imaging_plane`, and a `neurodata_type`, `namespace` and a fresh UUID4 `object_id`
//! attribute on every typed object. The specification is **not** cached under `/specifications`: pynwb
//! then reads the file with the schema it ships, and nwbinspector reports nothing about it (checked with
//! pynwb 4.2.0 / nwbinspector 0.7.2).
//!
//! # Layout
//!
//! ```text
//! /                                       NWBFile: nwb_version, identifier, session_description,
//!                                         session_start_time, timestamps_reference_time, file_create_date
//! /general/subject                        Subject (always written: nwbinspector treats a missing subject as
//!                                         CRITICAL); for a simulation it describes the model, not an animal
//! /general/devices/simulator              Device: "no physical device"
//! /general/optophysiology/ImagingPlane_<series>   ImagingPlane (indicator, imaging_rate, nominal wavelengths)
//!                                         with OpticalChannel `emission`
//! /units                                  Units: id, spike_times (s) + spike_times_index, neuron_name
//! /processing/ophys/ImageSegmentation/PlaneSegmentation_<series>   one ROI per simulated neuron:
//!                                         pixel_mask (+ _index), neuron_name
//! /processing/ophys/DfOverF/<series>      RoiResponseSeries: data [frames, rois] (ΔF/F, dimensionless),
//!                                         starting_time (s) with rate (Hz), rois → the PlaneSegmentation
//! /acquisition, /analysis, /stimulus/presentation, /stimulus/templates      empty, as the schema requires
//! ```
//!
//! Simulated neurons have no pixels. Each ROI gets a **one-pixel `pixel_mask` on a synthetic grid** (ROI `i`
//! at x = `i`, y = 0, weight 1): this keeps the PlaneSegmentation schema-valid and the ROI order explicit,
//! and every description in the file says that the pixels are synthetic. Likewise the imaging plane's
//! wavelengths are the indicator's nominal one-photon excitation/emission peaks, not a measurement.
//!
//! Units: times in seconds, rates in Hz, ΔF/F dimensionless (0.2 = 20 % above baseline; the series' `unit`
//! attribute is `"n.a."`, as pynwb writes for dimensionless data).
//!
//! # Guarantees
//!
//! [`write_nwb`] validates everything before touching the disk (non-finite values, ragged frames, unsorted
//! or negative spike times, empty or duplicate names …; the error names the field), then writes to a
//! temporary file in the target directory and renames it, so a failed write leaves no partial file behind.
//! The file reads back with [`read_nwb`](crate::read_nwb) with the ΔF/F values bit-identical.

use std::collections::HashSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hdf5::types::VarLenUnicode;
use hdf5::{File, Group, H5Type, Location, ObjectReference1};

use crate::error::ImagingError;

/// NWB core schema version written to `/nwb_version`.
pub const NWB_VERSION: &str = "2.11.0";
/// Name of the processing module holding the ΔF/F series.
pub const OPHYS_MODULE: &str = "ophys";

/// Who or what the data belong to (`/general/subject`). For simulated data this describes the model.
#[derive(Clone, Debug, PartialEq)]
pub struct SubjectMeta {
    /// `subject_id`, e.g. the scenario or connectome name.
    pub subject_id: String,
    /// Free text: for a simulation say that there is no animal and what was simulated.
    pub description: String,
    /// Latin binomial, e.g. `Caenorhabditis elegans` (of the connectome), if known.
    pub species: Option<String>,
    /// `M`, `F`, `U` (unknown) or `O` (other) as NWB best practice asks; for *C. elegans* nwbinspector
    /// requires `XX` (hermaphrodite) or `XO` (male).
    pub sex: String,
    /// ISO 8601 duration (e.g. `P4D`) or range (`P1D/P3D`, open `P0D/`). nwbinspector treats a subject without
    /// age (or date of birth) as CRITICAL, so the default is `P0D/` ("any age", i.e. unknown).
    pub age: Option<String>,
}

impl Default for SubjectMeta {
    fn default() -> Self {
        Self {
            subject_id: "simulation".into(),
            description: "no animal: activity simulated by neurotwin from a connectome".into(),
            species: None,
            sex: "U".into(),
            age: Some("P0D/".into()),
        }
    }
}

/// File-level metadata (`/identifier`, `/session_*`, `/general/*`).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionMeta {
    /// Globally unique identifier of this file; empty = a fresh UUID4.
    pub identifier: String,
    /// What was done (required, non-empty).
    pub session_description: String,
    /// Start of the session, ISO 8601 with time zone, e.g. `2026-11-23T19:30:00+00:00` (see [`iso8601`]).
    /// Also written as `timestamps_reference_time`: all times in the file are seconds from it.
    pub session_start_time: String,
    /// Creation time of the file (ISO 8601 with time zone); `None` = now (UTC).
    pub file_create_date: Option<String>,
    /// `/general/experiment_description`.
    pub experiment_description: Option<String>,
    /// `/general/institution`.
    pub institution: Option<String>,
    /// `/general/lab`.
    pub lab: Option<String>,
    /// `/general/experimenter` ("Last, First" per NWB best practice).
    pub experimenter: Vec<String>,
    /// `/general/keywords`.
    pub keywords: Vec<String>,
    /// `/general/was_generated_by`: (software name, version) pairs.
    pub generated_by: Vec<(String, String)>,
    /// `/general/subject`.
    pub subject: SubjectMeta,
}

impl SessionMeta {
    /// Metadata with the three required fields set and everything else empty/default.
    pub fn new(
        identifier: impl Into<String>,
        session_description: impl Into<String>,
        session_start_time: impl Into<String>,
    ) -> Self {
        Self {
            identifier: identifier.into(),
            session_description: session_description.into(),
            session_start_time: session_start_time.into(),
            file_create_date: None,
            experiment_description: None,
            institution: None,
            lab: None,
            experimenter: Vec::new(),
            keywords: Vec::new(),
            generated_by: Vec::new(),
            subject: SubjectMeta::default(),
        }
    }
}

/// Spike trains, written as the `/units` table.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeUnits {
    /// One name per unit (neuron), written as the `neuron_name` column; must not be empty strings.
    pub names: Vec<String>,
    /// Spike times (s, from `session_start_time`) per unit: finite, ≥ 0, non-decreasing.
    pub spike_times_s: Vec<Vec<f64>>,
    /// Smallest possible difference between two spike times (s), e.g. the simulation step; written as the
    /// `resolution` attribute of `spike_times` (nwbinspector asks for it).
    pub resolution_s: Option<f64>,
    /// Description of the table.
    pub description: String,
}

/// A ΔF/F series, written as a `RoiResponseSeries` in `/processing/ophys/DfOverF/<name>`.
#[derive(Clone, Debug, PartialEq)]
pub struct DffSeries {
    /// Series name (an HDF5 link name: non-empty, no `/`), e.g. `dff`.
    pub name: String,
    /// Description of the series (say how it was made).
    pub description: String,
    /// One name per ROI (simulated neuron); the PlaneSegmentation's `neuron_name` column.
    pub roi_names: Vec<String>,
    /// Frame rate (Hz), > 0.
    pub rate_hz: f64,
    /// Time of frame 0 (s, from `session_start_time`), finite.
    pub start_s: f64,
    /// ΔF/F, **frames × ROIs**: `data[frame][roi]`, finite, every frame with `roi_names.len()` values.
    pub data: Vec<Vec<f64>>,
    /// Calcium indicator, e.g. `GCaMP6s` (the imaging plane's `indicator`).
    pub indicator: String,
    /// Nominal excitation wavelength of the indicator (nm); 488 for GCaMP (one-photon).
    pub excitation_lambda_nm: f64,
    /// Nominal emission wavelength of the indicator (nm); 510 for GCaMP.
    pub emission_lambda_nm: f64,
}

/// Everything one NWB file holds.
#[derive(Clone, Debug, PartialEq)]
pub struct NwbContent {
    /// File-level metadata.
    pub session: SessionMeta,
    /// Spike trains (`/units`), if any.
    pub units: Option<SpikeUnits>,
    /// ΔF/F series (`/processing/ophys/DfOverF/*`); names must be unique.
    pub dff: Vec<DffSeries>,
}

/// Writes `content` as an NWB 2.x file at `path` (validated first; atomic: temporary file + rename).
pub fn write_nwb(path: impl AsRef<Path>, content: &NwbContent) -> Result<(), ImagingError> {
    let path = path.as_ref();
    validate(content).map_err(|m| out_err(path, format!("not written: {m}")))?;
    // Temporary file beside `path` (0666 − umask), fsynced and renamed into place by the shared I/O layer.
    neurotwin_io::atomic::write_file(path, |tmp: &Path| {
        let file = File::create(tmp).map_err(|e| out_err(path, format!("HDF5: cannot create: {e}")))?;
        let w = Writer { path, file: &file };
        w.write_all(content)?;
        file.flush().map_err(|e| out_err(path, format!("HDF5: flush: {e}")))
    })
}

/// `time` (e.g. `SystemTime::now()`) as ISO 8601 in UTC with microseconds: `2026-11-23T19:30:00.123456+00:00`.
pub fn iso8601(time: SystemTime) -> String {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

fn out_err(path: &Path, message: impl Into<String>) -> ImagingError {
    ImagingError::Output { path: path.to_path_buf(), message: message.into() }
}

// ---------------------------------------------------------------------------------------------------------
// Validation

/// `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`: the date-time form pynwb and nwbinspector parse.
fn is_iso8601_with_tz(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    if !(1..=12).contains(&num(5..7)) || !(1..=31).contains(&num(8..10)) || num(11..13) > 23 || num(14..16) > 59 {
        return false;
    }
    let mut k = 19;
    if b[k] == b'.' {
        k += 1;
        let start = k;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        if k == start {
            return false;
        }
    }
    let tz = &s[k..];
    tz == "Z"
        || (tz.len() == 6
            && (tz.starts_with('+') || tz.starts_with('-'))
            && tz.as_bytes()[3] == b':'
            && tz[1..3].bytes().all(|c| c.is_ascii_digit())
            && tz[4..6].bytes().all(|c| c.is_ascii_digit()))
}

fn text(field: &str, s: &str, required: bool) -> Result<(), String> {
    if required && s.trim().is_empty() {
        return Err(format!("{field} is empty; give a non-empty text"));
    }
    if s.contains('\0') {
        return Err(format!("{field} contains a NUL character, which HDF5 strings cannot hold"));
    }
    Ok(())
}

fn link_name(field: &str, s: &str) -> Result<(), String> {
    text(field, s, true)?;
    if s.contains('/') || s == "." || s == ".." {
        return Err(format!("{field} = {s:?} is not a valid HDF5 name (no '/', not '.' or '..')"));
    }
    Ok(())
}

fn validate(c: &NwbContent) -> Result<(), String> {
    let s = &c.session;
    text("session.identifier", &s.identifier, false)?;
    text("session.session_description", &s.session_description, true)?;
    if !is_iso8601_with_tz(&s.session_start_time) {
        return Err(format!(
            "session.session_start_time = {:?} is not ISO 8601 with a time zone, e.g. 2026-11-23T19:30:00+00:00",
            s.session_start_time
        ));
    }
    if let Some(d) = &s.file_create_date
        && !is_iso8601_with_tz(d)
    {
        return Err(format!("session.file_create_date = {d:?} is not ISO 8601 with a time zone"));
    }
    for (field, v) in [
        ("session.experiment_description", &s.experiment_description),
        ("session.institution", &s.institution),
        ("session.lab", &s.lab),
        ("session.subject.species", &s.subject.species),
        ("session.subject.age", &s.subject.age),
    ] {
        if let Some(v) = v {
            text(field, v, true)?;
        }
    }
    for (k, v) in s.experimenter.iter().enumerate() {
        text(&format!("session.experimenter[{k}]"), v, true)?;
    }
    for (k, v) in s.keywords.iter().enumerate() {
        text(&format!("session.keywords[{k}]"), v, true)?;
    }
    for (k, (n, v)) in s.generated_by.iter().enumerate() {
        text(&format!("session.generated_by[{k}].name"), n, true)?;
        text(&format!("session.generated_by[{k}].version"), v, true)?;
    }
    text("session.subject.subject_id", &s.subject.subject_id, true)?;
    text("session.subject.description", &s.subject.description, false)?;
    text("session.subject.sex", &s.subject.sex, true)?;

    if let Some(u) = &c.units {
        if u.names.len() != u.spike_times_s.len() {
            return Err(format!(
                "units: {} names but {} spike trains (units.names and units.spike_times_s must have one entry per \
                 unit)",
                u.names.len(),
                u.spike_times_s.len()
            ));
        }
        text("units.description", &u.description, false)?;
        for (i, n) in u.names.iter().enumerate() {
            text(&format!("units.names[{i}]"), n, true)?;
        }
        for (i, t) in u.spike_times_s.iter().enumerate() {
            let who = format!("units.spike_times_s[{i}] (unit {:?})", u.names[i]);
            for (k, &x) in t.iter().enumerate() {
                if !x.is_finite() {
                    return Err(format!("{who}[{k}] = {x}: spike times must be finite (s)"));
                }
                if x < 0.0 {
                    return Err(format!("{who}[{k}] = {x}: spike times must be >= 0 (s from session_start_time)"));
                }
                if k > 0 && x < t[k - 1] {
                    return Err(format!(
                        "{who}[{k}] = {x} comes after {}: spike times must be sorted ascending",
                        t[k - 1]
                    ));
                }
            }
        }
        if let Some(r) = u.resolution_s
            && !(r.is_finite() && r > 0.0)
        {
            return Err(format!("units.resolution_s = {r}: must be a positive time in seconds"));
        }
    }

    let mut seen = HashSet::new();
    for (j, d) in c.dff.iter().enumerate() {
        link_name(&format!("dff[{j}].name"), &d.name)?;
        if !seen.insert(d.name.as_str()) {
            return Err(format!("dff[{j}].name = {:?} is used by an earlier series; names must be unique", d.name));
        }
        let who = format!("dff[{j}] ({:?})", d.name);
        text(&format!("{who}.description"), &d.description, false)?;
        text(&format!("{who}.indicator"), &d.indicator, true)?;
        if d.roi_names.is_empty() {
            return Err(format!("{who}.roi_names is empty: a series needs at least one ROI"));
        }
        for (i, n) in d.roi_names.iter().enumerate() {
            text(&format!("{who}.roi_names[{i}]"), n, true)?;
        }
        if !(d.rate_hz.is_finite() && d.rate_hz > 0.0) {
            return Err(format!("{who}.rate_hz = {}: must be a positive frame rate in Hz", d.rate_hz));
        }
        if !d.start_s.is_finite() {
            return Err(format!("{who}.start_s = {}: must be a finite time in seconds", d.start_s));
        }
        for (field, v) in
            [("excitation_lambda_nm", d.excitation_lambda_nm), ("emission_lambda_nm", d.emission_lambda_nm)]
        {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{who}.{field} = {v}: must be a positive wavelength in nm"));
            }
        }
        if d.data.is_empty() {
            return Err(format!("{who}.data has no frames"));
        }
        let n = d.roi_names.len();
        for (k, frame) in d.data.iter().enumerate() {
            if frame.len() != n {
                return Err(format!(
                    "{who}.data[{k}] has {} values but there are {n} ROIs (data is frames × ROIs; ragged frames are \
                     not allowed)",
                    frame.len()
                ));
            }
            if let Some((i, v)) = frame.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(format!(
                    "{who}.data[{k}][{i}] (frame {k}, ROI {:?}) = {v}: ΔF/F values must be finite",
                    d.roi_names[i]
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Writing

/// One `pixel_mask` entry (hdmf compound `x`, `y`, `weight`).
#[derive(H5Type, Clone, Copy, Debug)]
#[repr(C)]
struct PixelMask {
    x: u32,
    y: u32,
    weight: f32,
}

struct Writer<'a> {
    path: &'a Path,
    file: &'a File,
}

impl Writer<'_> {
    fn err(&self, what: &str, e: impl std::fmt::Display) -> ImagingError {
        out_err(self.path, format!("HDF5: writing {what}: {e}"))
    }

    fn vlu(&self, what: &str, s: &str) -> Result<VarLenUnicode, ImagingError> {
        s.parse::<VarLenUnicode>().map_err(|e| self.err(what, format!("{e:?}")))
    }

    fn group(&self, parent: &Group, name: &str) -> Result<Group, ImagingError> {
        parent.create_group(name).map_err(|e| self.err(&format!("group {}/{name}", parent.name()), e))
    }

    fn attr_str(&self, loc: &Location, name: &str, value: &str) -> Result<(), ImagingError> {
        let what = format!("attribute {name} of {}", loc.name());
        let v = self.vlu(&what, value)?;
        loc.new_attr::<VarLenUnicode>().create(name).and_then(|a| a.write_scalar(&v)).map_err(|e| self.err(&what, e))
    }

    fn attr_strs(&self, loc: &Location, name: &str, values: &[&str]) -> Result<(), ImagingError> {
        let what = format!("attribute {name} of {}", loc.name());
        let v = values.iter().map(|s| self.vlu(&what, s)).collect::<Result<Vec<_>, _>>()?;
        loc.new_attr_builder().with_data(&v).create(name).map(|_| ()).map_err(|e| self.err(&what, e))
    }

    fn attr_f64(&self, loc: &Location, name: &str, value: f64) -> Result<(), ImagingError> {
        let what = format!("attribute {name} of {}", loc.name());
        loc.new_attr::<f64>().create(name).and_then(|a| a.write_scalar(&value)).map_err(|e| self.err(&what, e))
    }

    fn attr_ref(&self, loc: &Location, name: &str, target: &str) -> Result<(), ImagingError> {
        let what = format!("attribute {name} of {} (reference to {target})", loc.name());
        let r = self.file.reference::<ObjectReference1>(target).map_err(|e| self.err(&what, e))?;
        loc.new_attr::<ObjectReference1>().create(name).and_then(|a| a.write_scalar(&r)).map_err(|e| self.err(&what, e))
    }

    /// `neurodata_type`, `namespace` and a fresh `object_id`.
    fn typed(&self, loc: &Location, neurodata_type: &str, namespace: &str) -> Result<(), ImagingError> {
        self.attr_str(loc, "namespace", namespace)?;
        self.attr_str(loc, "neurodata_type", neurodata_type)?;
        self.attr_str(loc, "object_id", &uuid::Uuid::new_v4().to_string())
    }

    fn ds_str(&self, g: &Group, name: &str, value: &str) -> Result<hdf5::Dataset, ImagingError> {
        let what = format!("dataset {}/{name}", g.name());
        let v = self.vlu(&what, value)?;
        let ds = g.new_dataset::<VarLenUnicode>().create(name).map_err(|e| self.err(&what, e))?;
        ds.write_scalar(&v).map_err(|e| self.err(&what, e))?;
        Ok(ds)
    }

    fn ds_strs(&self, g: &Group, name: &str, values: &[&str]) -> Result<hdf5::Dataset, ImagingError> {
        let what = format!("dataset {}/{name}", g.name());
        let v = values.iter().map(|s| self.vlu(&what, s)).collect::<Result<Vec<_>, _>>()?;
        g.new_dataset_builder().with_data(&v).create(name).map_err(|e| self.err(&what, e))
    }

    fn ds_f64(&self, g: &Group, name: &str, value: f64) -> Result<hdf5::Dataset, ImagingError> {
        let what = format!("dataset {}/{name}", g.name());
        let ds = g.new_dataset::<f64>().create(name).map_err(|e| self.err(&what, e))?;
        ds.write_scalar(&value).map_err(|e| self.err(&what, e))?;
        Ok(ds)
    }

    fn ds<T: H5Type>(&self, g: &Group, name: &str, values: &[T]) -> Result<hdf5::Dataset, ImagingError> {
        let what = format!("dataset {}/{name}", g.name());
        g.new_dataset_builder().with_data(values).create(name).map_err(|e| self.err(&what, e))
    }

    fn soft_link(&self, g: &Group, target: &str, name: &str) -> Result<(), ImagingError> {
        g.link_soft(target, name).map_err(|e| self.err(&format!("link {}/{name} -> {target}", g.name()), e))
    }

    /// hdmf-common `VectorData` column.
    fn vector_data(&self, ds: &hdf5::Dataset, description: &str) -> Result<(), ImagingError> {
        self.attr_str(ds, "description", description)?;
        self.typed(ds, "VectorData", "hdmf-common")
    }

    /// hdmf-common `VectorIndex` `name_index` for the ragged column `name` with row ends `ends`.
    fn vector_index(&self, g: &Group, name: &str, ends: &[u64]) -> Result<(), ImagingError> {
        let ds = self.ds(g, &format!("{name}_index"), ends)?;
        self.attr_str(&ds, "description", &format!("Index for VectorData '{name}'"))?;
        self.attr_ref(&ds, "target", &format!("{}/{name}", g.name()))?;
        self.typed(&ds, "VectorIndex", "hdmf-common")
    }

    /// hdmf-common `ElementIdentifiers` `id` = 0..n.
    fn ids(&self, g: &Group, n: usize) -> Result<(), ImagingError> {
        let ids: Vec<i64> = (0..n as i64).collect();
        let ds = self.ds(g, "id", &ids)?;
        self.typed(&ds, "ElementIdentifiers", "hdmf-common")
    }

    fn write_all(&self, c: &NwbContent) -> Result<(), ImagingError> {
        let root = self.file.as_group().map_err(|e| self.err("root group", e))?;
        let s = &c.session;
        self.attr_str(&root, "nwb_version", NWB_VERSION)?;
        self.typed(&root, "NWBFile", "core")?;
        let identifier =
            if s.identifier.trim().is_empty() { uuid::Uuid::new_v4().to_string() } else { s.identifier.clone() };
        self.ds_str(&root, "identifier", &identifier)?;
        self.ds_str(&root, "session_description", &s.session_description)?;
        self.ds_str(&root, "session_start_time", &s.session_start_time)?;
        self.ds_str(&root, "timestamps_reference_time", &s.session_start_time)?;
        let created = s.file_create_date.clone().unwrap_or_else(|| iso8601(SystemTime::now()));
        self.ds_strs(&root, "file_create_date", &[&created])?;
        for name in ["acquisition", "analysis", "processing"] {
            self.group(&root, name)?;
        }
        let stimulus = self.group(&root, "stimulus")?;
        self.group(&stimulus, "presentation")?;
        self.group(&stimulus, "templates")?;
        self.general(&root, s, !c.dff.is_empty())?;
        if let Some(u) = &c.units {
            self.units(&root, u)?;
        }
        if !c.dff.is_empty() {
            self.ophys(&root, &c.dff)?;
        }
        Ok(())
    }

    fn general(&self, root: &Group, s: &SessionMeta, devices: bool) -> Result<(), ImagingError> {
        let general = self.group(root, "general")?;
        for (name, v) in
            [("experiment_description", &s.experiment_description), ("institution", &s.institution), ("lab", &s.lab)]
        {
            if let Some(v) = v {
                self.ds_str(&general, name, v)?;
            }
        }
        for (name, v) in [("experimenter", &s.experimenter), ("keywords", &s.keywords)] {
            if !v.is_empty() {
                self.ds_strs(&general, name, &v.iter().map(String::as_str).collect::<Vec<_>>())?;
            }
        }
        if !s.generated_by.is_empty() {
            let what = format!("dataset {}/was_generated_by", general.name());
            let flat = s
                .generated_by
                .iter()
                .flat_map(|(n, v)| [n.as_str(), v.as_str()])
                .map(|x| self.vlu(&what, x))
                .collect::<Result<Vec<_>, _>>()?;
            general
                .new_dataset::<VarLenUnicode>()
                .shape((s.generated_by.len(), 2))
                .create("was_generated_by")
                .and_then(|ds| ds.write_raw(&flat))
                .map_err(|e| self.err(&what, e))?;
        }
        let subject = self.group(&general, "subject")?;
        self.typed(&subject, "Subject", "core")?;
        let sub = &s.subject;
        self.ds_str(&subject, "subject_id", &sub.subject_id)?;
        self.ds_str(&subject, "description", &sub.description)?;
        self.ds_str(&subject, "sex", &sub.sex)?;
        if let Some(v) = &sub.species {
            self.ds_str(&subject, "species", v)?;
        }
        if let Some(v) = &sub.age {
            let ds = self.ds_str(&subject, "age", v)?;
            self.attr_str(&ds, "reference", "birth")?;
        }
        if devices {
            let devices = self.group(&general, "devices")?;
            let dev = self.group(&devices, "simulator")?;
            self.typed(&dev, "Device", "core")?;
            self.attr_str(
                &dev,
                "description",
                "no physical device: fluorescence simulated by neurotwin's calcium forward model \
                 (neurotwin_models::calcium)",
            )?;
            self.group(&general, "optophysiology")?;
        }
        Ok(())
    }

    fn units(&self, root: &Group, u: &SpikeUnits) -> Result<(), ImagingError> {
        let g = self.group(root, "units")?;
        self.typed(&g, "Units", "core")?;
        let desc = if u.description.trim().is_empty() { "simulated spike trains" } else { u.description.as_str() };
        self.attr_str(&g, "description", desc)?;
        self.attr_strs(&g, "colnames", &["spike_times", "neuron_name"])?;
        self.ids(&g, u.names.len())?;
        let flat: Vec<f64> = u.spike_times_s.iter().flatten().copied().collect();
        let ds = self.ds(&g, "spike_times", &flat)?;
        self.vector_data(&ds, "the spike times for each unit in seconds")?;
        if let Some(r) = u.resolution_s {
            self.attr_f64(&ds, "resolution", r)?;
        }
        let mut end = 0u64;
        let ends: Vec<u64> = u
            .spike_times_s
            .iter()
            .map(|t| {
                end += t.len() as u64;
                end
            })
            .collect();
        self.vector_index(&g, "spike_times", &ends)?;
        let names: Vec<&str> = u.names.iter().map(String::as_str).collect();
        let ds = self.ds_strs(&g, "neuron_name", &names)?;
        self.vector_data(&ds, "name of the simulated neuron (connectome node name)")
    }

    fn ophys(&self, root: &Group, series: &[DffSeries]) -> Result<(), ImagingError> {
        let processing = root.group("processing").map_err(|e| self.err("/processing", e))?;
        let module = self.group(&processing, OPHYS_MODULE)?;
        self.typed(&module, "ProcessingModule", "core")?;
        self.attr_str(
            &module,
            "description",
            "simulated optical physiology: ΔF/F from neurotwin's calcium forward model",
        )?;
        let seg = self.group(&module, "ImageSegmentation")?;
        self.typed(&seg, "ImageSegmentation", "core")?;
        let dff = self.group(&module, "DfOverF")?;
        self.typed(&dff, "DfOverF", "core")?;
        let opto = root.group("general/optophysiology").map_err(|e| self.err("/general/optophysiology", e))?;
        for d in series {
            let plane_path = self.imaging_plane(&opto, d)?;
            let table_path = self.plane_segmentation(&seg, d, &plane_path)?;
            self.roi_response_series(&dff, d, &table_path)?;
        }
        Ok(())
    }

    fn imaging_plane(&self, opto: &Group, d: &DffSeries) -> Result<String, ImagingError> {
        let g = self.group(opto, &format!("ImagingPlane_{}", d.name))?;
        self.typed(&g, "ImagingPlane", "core")?;
        self.ds_str(
            &g,
            "description",
            &format!(
                "synthetic imaging plane of the simulated series {:?}: the neurons have no positions; \
                 wavelengths are the indicator's nominal values",
                d.name
            ),
        )?;
        self.ds_f64(&g, "excitation_lambda", d.excitation_lambda_nm)?;
        self.ds_f64(&g, "imaging_rate", d.rate_hz)?;
        self.ds_str(&g, "indicator", &d.indicator)?;
        self.ds_str(&g, "location", "none (simulated neurons)")?;
        let ch = self.group(&g, "emission")?;
        self.typed(&ch, "OpticalChannel", "core")?;
        self.ds_str(
            &ch,
            "description",
            &format!("nominal emission of {} (simulated, no light detected)", d.indicator),
        )?;
        self.ds_f64(&ch, "emission_lambda", d.emission_lambda_nm)?;
        self.soft_link(&g, "/general/devices/simulator", "device")?;
        Ok(g.name())
    }

    fn plane_segmentation(&self, seg: &Group, d: &DffSeries, plane: &str) -> Result<String, ImagingError> {
        let g = self.group(seg, &format!("PlaneSegmentation_{}", d.name))?;
        self.typed(&g, "PlaneSegmentation", "core")?;
        self.attr_str(
            &g,
            "description",
            "one ROI per simulated neuron; simulated neurons have no pixels, so each ROI has a synthetic one-pixel \
             mask (ROI i at x = i, y = 0, weight 1) that only fixes the ROI order",
        )?;
        self.attr_strs(&g, "colnames", &["pixel_mask", "neuron_name"])?;
        let n = d.roi_names.len();
        self.ids(&g, n)?;
        let masks: Vec<PixelMask> = (0..n).map(|i| PixelMask { x: i as u32, y: 0, weight: 1.0 }).collect();
        let ds = self.ds(&g, "pixel_mask", &masks)?;
        self.vector_data(&ds, "synthetic one-pixel masks (simulated neurons have no pixels): ROI i at x = i, y = 0")?;
        let ends: Vec<u64> = (1..=n as u64).collect();
        self.vector_index(&g, "pixel_mask", &ends)?;
        let names: Vec<&str> = d.roi_names.iter().map(String::as_str).collect();
        let ds = self.ds_strs(&g, "neuron_name", &names)?;
        self.vector_data(&ds, "name of the simulated neuron (connectome node name)")?;
        self.group(&g, "reference_images")?;
        self.soft_link(&g, plane, "imaging_plane")?;
        Ok(g.name())
    }

    fn roi_response_series(&self, dff: &Group, d: &DffSeries, table: &str) -> Result<(), ImagingError> {
        let g = self.group(dff, &d.name)?;
        self.typed(&g, "RoiResponseSeries", "core")?;
        let desc = if d.description.trim().is_empty() { "simulated ΔF/F" } else { d.description.as_str() };
        self.attr_str(&g, "description", desc)?;
        self.attr_str(&g, "comments", "ΔF/F is dimensionless (0.2 = 20 % above baseline); data are frames × ROIs")?;
        let (m, n) = (d.data.len(), d.roi_names.len());
        let flat: Vec<f64> = d.data.iter().flatten().copied().collect();
        let what = format!("dataset {}/data", g.name());
        let ds = g.new_dataset::<f64>().shape((m, n)).create("data").map_err(|e| self.err(&what, e))?;
        ds.write_raw(&flat).map_err(|e| self.err(&what, e))?;
        self.attr_f64(&ds, "conversion", 1.0)?;
        self.attr_f64(&ds, "offset", 0.0)?;
        self.attr_f64(&ds, "resolution", -1.0)?;
        self.attr_str(&ds, "unit", "n.a.")?;
        let st = self.ds_f64(&g, "starting_time", d.start_s)?;
        self.attr_f64(&st, "rate", d.rate_hz)?;
        self.attr_str(&st, "unit", "seconds")?;
        let rows: Vec<i64> = (0..n as i64).collect();
        let rois = self.ds(&g, "rois", &rows)?;
        self.attr_str(&rois, "description", "the simulated neurons of this series, rows of its PlaneSegmentation")?;
        self.attr_ref(&rois, "table", table)?;
        self.typed(&rois, "DynamicTableRegion", "hdmf-common")
    }
}
