//! Errors of the imaging crate. Every message names the file and, where there is one, the dataset, line or
//! column, says what was wrong and what would be valid.

use std::path::PathBuf;

/// Everything that can go wrong reading or checking a recording.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The file cannot be opened or read at the operating-system level.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A text file has a malformed line (1-based line number).
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What was wrong and the fix.
        message: String,
    },
    /// The file's content does not have the expected layout (the message names the dataset or field).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong and the fix.
        message: String,
    },
    /// The HDF5 library failed on a file that looked valid.
    #[error("{path}: HDF5: {message}")]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// What was being done and the library's message.
        message: String,
    },
    /// A [`CalciumRecording`](crate::CalciumRecording) built in memory is inconsistent.
    #[error("invalid recording: {0}")]
    Invalid(String),
    /// Two recordings (or a recording and a simulation) cannot be compared as asked: no time overlap,
    /// invalid [`CompareOptions`](crate::compare::CompareOptions), a neuron pair naming a missing row, …
    /// The message says what was wrong and the fix.
    #[error("cannot compare: {0}")]
    Compare(String),
    /// A result file (CSV, JSON, PNG) could not be written.
    #[error("{path}: cannot write: {message}")]
    Output {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The I/O layer refused or failed (an output over an input, a resource estimate beyond the limit).
    #[error(transparent)]
    IoLayer(#[from] neurotwin_io::IoError),
}

impl ImagingError {
    /// An [`ImagingError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
    /// An [`ImagingError::Parse`] at 1-based `line`.
    pub fn parse(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        Self::Parse { path: path.into(), line, message: message.into() }
    }
    /// An [`ImagingError::Format`].
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format { path: path.into(), message: message.into() }
    }
    /// An [`ImagingError::Hdf5`].
    pub fn hdf5(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Hdf5 { path: path.into(), message: message.into() }
    }
}

/// An error of the shared HDF5 reader: a library failure is [`ImagingError::Hdf5`]; a file that cannot be
/// opened as HDF5 and content that is not what was expected (missing, wrong type or shape, damaged, too large
/// for the memory limit) are [`ImagingError::Format`].
impl From<neurotwin_io::h5::H5Error> for ImagingError {
    fn from(e: neurotwin_io::h5::H5Error) -> Self {
        match e.kind {
            neurotwin_io::h5::H5ErrorKind::Library => Self::Hdf5 { path: e.path, message: e.message },
            _ => Self::Format { path: e.path, message: e.message },
        }
    }
}
