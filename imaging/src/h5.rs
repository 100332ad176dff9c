//! Shared HDF5 reading helpers: open with clear errors, typed reads that name the dataset on failure.

use std::fmt::Display;
use std::io::Read;
use std::path::Path;

use hdf5::types::{FixedAscii, FixedUnicode, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, File, Group, Location};

use crate::error::ImagingError;

/// Longest fixed-length string read (bytes).
const MAX_FIXED: usize = 1024;

/// An open HDF5 file plus its path, for located errors.
pub(crate) struct H5<'a> {
    pub path: &'a Path,
    pub file: File,
}

fn has_hdf5_signature(path: &Path) -> std::io::Result<bool> {
    // The superblock may start at byte 0, 512, 1024, 2048, …; check the first few offsets.
    const SIG: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
    let mut buf = Vec::new();
    std::fs::File::open(path)?.take(8192 + 8).read_to_end(&mut buf)?;
    Ok([0usize, 512, 1024, 2048, 4096, 8192].iter().any(|&o| buf.get(o..o + 8) == Some(&SIG[..])))
}

impl<'a> H5<'a> {
    /// Opens `path`, distinguishing "missing", "directory" and "not HDF5" from library failures.
    pub fn open(path: &'a Path, what: &str) -> Result<Self, ImagingError> {
        let herr = |m: String| ImagingError::hdf5(path, m);
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ImagingError::format(path, format!("file not found (expected {what})")));
            }
            Err(e) => return Err(ImagingError::io(path, e)),
            Ok(m) if m.is_dir() => {
                return Err(ImagingError::format(path, format!("is a directory, expected {what}")));
            }
            Ok(_) => {}
        }
        match has_hdf5_signature(path) {
            Ok(true) => {}
            Ok(false) => {
                return Err(ImagingError::format(
                    path,
                    format!("not an HDF5 file (no HDF5 signature); expected {what}"),
                ));
            }
            Err(e) => return Err(ImagingError::io(path, e)),
        }
        let file = File::open(path).map_err(|e| herr(format!("cannot open as HDF5: {e}")))?;
        Ok(Self { path, file })
    }

    pub fn format(&self, message: impl Into<String>) -> ImagingError {
        ImagingError::format(self.path, message)
    }

    pub fn herr(&self, what: impl Display, e: impl Display) -> ImagingError {
        ImagingError::hdf5(self.path, format!("{what}: {e}"))
    }

    /// Whether `/a/b/c` exists (every intermediate link checked, so no HDF5 error is printed).
    pub fn exists(&self, full: &str) -> bool {
        let mut g: Group = match self.file.as_group() {
            Ok(g) => g,
            Err(_) => return false,
        };
        let parts: Vec<&str> = full.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
        for (k, p) in parts.iter().enumerate() {
            if !g.link_exists(p) {
                return false;
            }
            if k + 1 < parts.len() {
                match g.group(p) {
                    Ok(next) => g = next,
                    Err(_) => return false,
                }
            }
        }
        true
    }

    /// The group at absolute path `full`.
    pub fn group(&self, full: &str) -> Result<Group, ImagingError> {
        if !self.exists(full) {
            return Err(self.format(format!("missing group {full}")));
        }
        self.file.group(full).map_err(|e| self.format(format!("{full} is not a group ({e})")))
    }

    /// The dataset at absolute path `full`; `hint` is appended to the "missing" message (the fix).
    pub fn dataset(&self, full: &str, hint: &str) -> Result<Dataset, ImagingError> {
        if !self.exists(full) {
            let sep = if hint.is_empty() { "" } else { ": " };
            return Err(self.format(format!("missing dataset {full}{sep}{hint}")));
        }
        self.file.dataset(full).map_err(|e| self.format(format!("{full} is not a dataset ({e})")))
    }

    /// Reads a numeric dataset (any integer, float or boolean type) as f64; returns values and shape.
    pub fn floats(&self, ds: &Dataset) -> Result<(Vec<f64>, Vec<usize>), ImagingError> {
        let full = ds.name();
        let t = ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| self.herr(format!("type of {full}"), e))?;
        match t {
            TypeDescriptor::Integer(_)
            | TypeDescriptor::Unsigned(_)
            | TypeDescriptor::Float(_)
            | TypeDescriptor::Boolean => {}
            other => {
                return Err(self.format(format!("{full} has type {other}, expected numbers (integer or float)")));
            }
        }
        self.check_size(ds, 8.0)?;
        let v = ds.read_raw::<f64>().map_err(|e| self.herr(format!("cannot read {full}"), e))?;
        Ok((v, ds.shape()))
    }

    /// Refuses reading `ds` whole when its declared size alone, at `bytes_per_value` bytes each, exceeds the
    /// memory limit: a damaged file can declare 2^40 values in a few bytes, and the allocation would abort.
    fn check_size(&self, ds: &Dataset, bytes_per_value: f64) -> Result<(), ImagingError> {
        let n: f64 = ds.shape().iter().map(|&d| d as f64).product();
        let what = format!("reading {} ({n:.3e} values)", ds.name());
        neurotwin_io::budget::check_memory(&what, n * bytes_per_value, "check that the file is not damaged")
            .map_err(|e| self.format(e.to_string()))
    }

    /// Reads a 1-D (or scalar) numeric dataset as f64.
    pub fn floats_1d(&self, ds: &Dataset) -> Result<Vec<f64>, ImagingError> {
        let (v, shape) = self.floats(ds)?;
        if shape.len() > 1 && shape.iter().filter(|&&d| d > 1).count() > 1 {
            return Err(self.format(format!("{} has shape {shape:?}, expected one dimension", ds.name())));
        }
        Ok(v)
    }

    /// Reads a 1-D string dataset (variable- or fixed-length, ASCII or UTF-8).
    pub fn strings(&self, ds: &Dataset) -> Result<Vec<String>, ImagingError> {
        let full = ds.name();
        let t = ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| self.herr(format!("type of {full}"), e))?;
        if ds.shape().len() > 1 {
            return Err(self.format(format!("{full} has shape {:?}, expected one dimension", ds.shape())));
        }
        // A fixed-length string is read into MAX_FIXED bytes; a variable-length one as a pointer and a String.
        let fixed = matches!(t, TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_));
        self.check_size(ds, if fixed { MAX_FIXED as f64 + 24.0 } else { 64.0 })?;
        let rerr = |e: hdf5::Error| self.herr(format!("cannot read {full}"), e);
        let v: Vec<String> = match t {
            TypeDescriptor::VarLenUnicode => {
                ds.read_raw::<VarLenUnicode>().map_err(rerr)?.iter().map(|s| s.as_str().to_string()).collect()
            }
            TypeDescriptor::VarLenAscii => {
                ds.read_raw::<VarLenAscii>().map_err(rerr)?.iter().map(|s| s.as_str().to_string()).collect()
            }
            TypeDescriptor::FixedAscii(n) if n <= MAX_FIXED => ds
                .read_raw::<FixedAscii<MAX_FIXED>>()
                .map_err(rerr)?
                .iter()
                .map(|s| s.as_str().trim_end_matches('\0').to_string())
                .collect(),
            TypeDescriptor::FixedUnicode(n) if n <= MAX_FIXED => ds
                .read_raw::<FixedUnicode<MAX_FIXED>>()
                .map_err(rerr)?
                .iter()
                .map(|s| s.as_str().trim_end_matches('\0').to_string())
                .collect(),
            other => {
                return Err(self.format(format!(
                    "{full} has type {other}, expected strings (store them as variable-length UTF-8, e.g. \
                     h5py.string_dtype())"
                )));
            }
        };
        Ok(v)
    }

    /// A string attribute; `Ok(None)` when absent.
    pub fn str_attr(&self, loc: &Location, name: &str) -> Result<Option<String>, ImagingError> {
        if !loc.attr_names().map(|n| n.iter().any(|a| a == name)).unwrap_or(false) {
            return Ok(None);
        }
        let full = format!("attribute `{name}` of {}", loc.name());
        let a = loc.attr(name).map_err(|e| self.herr(format!("cannot open {full}"), e))?;
        let t = a.dtype().and_then(|t| t.to_descriptor()).map_err(|e| self.herr(format!("type of {full}"), e))?;
        let rerr = |e: hdf5::Error| self.herr(format!("cannot read {full}"), e);
        let s = match t {
            TypeDescriptor::VarLenUnicode => a.read_scalar::<VarLenUnicode>().map_err(rerr)?.as_str().to_string(),
            TypeDescriptor::VarLenAscii => a.read_scalar::<VarLenAscii>().map_err(rerr)?.as_str().to_string(),
            TypeDescriptor::FixedAscii(n) if n <= MAX_FIXED => {
                a.read_scalar::<FixedAscii<MAX_FIXED>>().map_err(rerr)?.as_str().trim_end_matches('\0').to_string()
            }
            TypeDescriptor::FixedUnicode(n) if n <= MAX_FIXED => {
                a.read_scalar::<FixedUnicode<MAX_FIXED>>().map_err(rerr)?.as_str().trim_end_matches('\0').to_string()
            }
            other => return Err(self.format(format!("{full} has type {other}, expected a string"))),
        };
        Ok(Some(s))
    }

    /// A numeric scalar attribute as f64; `Ok(None)` when absent.
    pub fn num_attr(&self, loc: &Location, name: &str) -> Result<Option<f64>, ImagingError> {
        if !loc.attr_names().map(|n| n.iter().any(|a| a == name)).unwrap_or(false) {
            return Ok(None);
        }
        let full = format!("attribute `{name}` of {}", loc.name());
        let a = loc.attr(name).map_err(|e| self.herr(format!("cannot open {full}"), e))?;
        let t = a.dtype().and_then(|t| t.to_descriptor()).map_err(|e| self.herr(format!("type of {full}"), e))?;
        match t {
            TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) | TypeDescriptor::Float(_) => {}
            other => return Err(self.format(format!("{full} has type {other}, expected a number"))),
        }
        if a.size() != 1 {
            return Err(self.format(format!("{full} has {} elements, expected one number", a.size())));
        }
        let v = a.read_raw::<f64>().map_err(|e| self.herr(format!("cannot read {full}"), e))?;
        Ok(v.first().copied())
    }
}
