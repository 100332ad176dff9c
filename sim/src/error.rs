//! Errors of the engine.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Setup(String),
    #[error("{path}: cannot write output: {message}")]
    Output { path: PathBuf, message: String },
    /// A file read back (a run's spikes, a node table, a SONATA spike input) is missing or malformed.
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("backend `{backend}` is not available: {reason}")]
    BackendUnavailable { backend: String, reason: String },
    /// The I/O layer refused or failed (an output over an input, a resource estimate beyond the limit, …).
    #[error(transparent)]
    Io(#[from] neurotwin_io::IoError),
    /// The run was cancelled through [`crate::RunOptions::cancel`] (e.g. Ctrl-C in Python) at `step`.
    #[error("interrupted at step {step}")]
    Interrupted { step: u64 },
}

/// An error of the shared HDF5 reader (a spike file read back): the message names the dataset and what was
/// expected.
impl From<neurotwin_io::h5::H5Error> for SimError {
    fn from(e: neurotwin_io::h5::H5Error) -> Self {
        Self::Input { path: e.path, message: e.message }
    }
}
