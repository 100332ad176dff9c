//! The imaging readers on the shared HDF5 reader ([`neurotwin_io::h5`]: located errors, declared sizes checked
//! against the file and the memory limit before anything is read), with what each reader expects the file to
//! be in its messages.

use std::fmt::Display;
use std::path::Path;

use hdf5::Dataset;
use neurotwin_io::h5::H5File;

use crate::error::ImagingError;

/// An open HDF5 file; dereferences to [`H5File`] for groups, strings and attributes.
pub(crate) struct H5(H5File);

impl std::ops::Deref for H5 {
    type Target = H5File;
    fn deref(&self) -> &H5File {
        &self.0
    }
}

impl H5 {
    /// Opens `path`; a missing file, a directory or a file that is not HDF5 is an error saying what was
    /// expected (`what`).
    pub fn open(path: &Path, what: &str) -> Result<Self, ImagingError> {
        H5File::open(path).map(Self).map_err(|e| e.hint(format!("expected {what}")).into())
    }

    pub fn format(&self, message: impl Into<String>) -> ImagingError {
        ImagingError::format(self.path(), message)
    }

    pub fn herr(&self, what: impl Display, e: impl Display) -> ImagingError {
        ImagingError::hdf5(self.path(), format!("{what}: {e}"))
    }

    /// The dataset at absolute path `full`; `hint` is appended to the "missing" message (the fix).
    pub fn dataset(&self, full: &str, hint: &str) -> Result<Dataset, ImagingError> {
        Ok(self.0.dataset(full).map_err(|e| e.hint(hint))?)
    }

    /// Reads a numeric dataset (any integer, float or boolean type) as f64; returns values and shape.
    pub fn floats(&self, ds: &Dataset) -> Result<(Vec<f64>, Vec<usize>), ImagingError> {
        Ok(self.read_nd::<f64>(ds)?)
    }

    /// Reads a 1-D (or scalar, or `[1, n]`) numeric dataset as f64.
    pub fn floats_1d(&self, ds: &Dataset) -> Result<Vec<f64>, ImagingError> {
        let (v, shape) = self.floats(ds)?;
        if shape.len() > 1 && shape.iter().filter(|&&d| d > 1).count() > 1 {
            return Err(self.format(format!("{} has shape {shape:?}, expected one dimension", ds.name())));
        }
        Ok(v)
    }
}
