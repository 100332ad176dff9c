//! Errors of the connectome crate. Every message names the file and, where there is one, the line or
//! field, and says what would be valid.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConnectomeError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Parse { path: PathBuf, line: u64, message: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("invalid connectome: {0}")]
    Invalid(String),
    #[error("compile: {0}")]
    Compile(String),
    #[error("{path}: HDF5: {message}")]
    Hdf5 { path: PathBuf, message: String },
    /// The I/O layer refused or failed (an output over an input, an occupied output folder, a resource
    /// estimate beyond the limit).
    #[error(transparent)]
    Output(#[from] neurotwin_io::IoError),
}

impl ConnectomeError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
    pub fn parse(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        Self::Parse { path: path.into(), line, message: message.into() }
    }
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format { path: path.into(), message: message.into() }
    }
}

/// An error of the shared HDF5 reader: a file that cannot be opened or a library failure is
/// [`ConnectomeError::Hdf5`]; content that is not what was expected (missing, wrong type or shape, damaged,
/// too large for the memory limit) is [`ConnectomeError::Format`].
impl From<neurotwin_io::h5::H5Error> for ConnectomeError {
    fn from(e: neurotwin_io::h5::H5Error) -> Self {
        use neurotwin_io::h5::H5ErrorKind;
        match e.kind {
            H5ErrorKind::Open | H5ErrorKind::Library => Self::Hdf5 { path: e.path, message: e.message },
            H5ErrorKind::Format | H5ErrorKind::Damaged | H5ErrorKind::Budget => {
                Self::Format { path: e.path, message: e.message }
            }
        }
    }
}
