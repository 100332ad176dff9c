//! Errors of the segmentation crate. Every message names the file and the dataset where there is one,
//! and says what would be valid.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The HDF5 library failed (not HDF5, cannot open, cannot write).
    #[error("{path}: HDF5: {message}")]
    Hdf5 { path: PathBuf, message: String },
    /// A dataset exists but does not hold what is needed (type, rank, size, values).
    #[error("{path}: dataset `{dataset}`: {message}")]
    Dataset { path: PathBuf, dataset: String, message: String },
    /// A text file (CSV) is malformed.
    #[error("{path}:{line}: {message}")]
    Parse { path: PathBuf, line: u64, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Invalid parameters or inconsistent inputs.
    #[error("{0}")]
    Invalid(String),
    /// The Zarr store failed (cannot open, not Zarr, codec not compiled in).
    #[error("{path}: Zarr: {message}")]
    Zarr { path: PathBuf, message: String },
    /// The U-Net weights or inference failed (the message names the weights file).
    #[error(transparent)]
    Cnn(#[from] crate::cnn::CnnError),
    #[error(transparent)]
    Connectome(#[from] neurotwin_connectome::ConnectomeError),
    /// The I/O layer refused or failed (an output over an input, an occupied output folder, a resource
    /// estimate beyond the limit).
    #[error(transparent)]
    Output(#[from] neurotwin_io::IoError),
}

impl SegmentError {
    pub fn dataset(path: impl Into<PathBuf>, dataset: &str, message: impl Into<String>) -> Self {
        Self::Dataset { path: path.into(), dataset: dataset.to_string(), message: message.into() }
    }
    pub fn zarr(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Zarr { path: path.into(), message: message.into() }
    }
    pub fn hdf5(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Hdf5 { path: path.into(), message: message.into() }
    }
}

/// An error of the shared HDF5 reader (the message names the dataset or attribute and what was expected).
impl From<neurotwin_io::h5::H5Error> for SegmentError {
    fn from(e: neurotwin_io::h5::H5Error) -> Self {
        Self::Hdf5 { path: e.path, message: e.message }
    }
}
