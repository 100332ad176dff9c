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
