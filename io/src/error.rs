//! Errors of the I/O layer; each names the path and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// A resource estimate beyond the user's limit (memory or time).
    #[error("{0}")]
    Budget(String),
    /// An output would replace one of the run's own inputs.
    #[error("{}: this output would overwrite {what} `{}`, an input of this run; choose another output {hint}", output.display(), input.display())]
    OverwritesInput { output: PathBuf, input: PathBuf, what: String, hint: String },
    /// The output folder holds files this run would replace.
    #[error("{}: {message}", path.display())]
    OutputDir { path: PathBuf, message: String },
    /// A file-system operation failed.
    #[error("{}: {message}: {source}", path.display())]
    Fs { path: PathBuf, message: String, source: std::io::Error },
}

impl IoError {
    pub fn fs(path: impl Into<PathBuf>, message: impl Into<String>, source: std::io::Error) -> Self {
        IoError::Fs { path: path.into(), message: message.into(), source }
    }
}
