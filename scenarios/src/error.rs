//! Scenario errors: always name the file, the line when known, and the key.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read scenario: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A file other than the scenario itself (`what` says which, e.g. "atlas pairs CSV") cannot be read.
    #[error("{path}: cannot read {what}: {source}")]
    Read { path: PathBuf, what: String, source: std::io::Error },
    /// A problem at a known place in the file.
    #[error("{path}:{line}: {message}")]
    At { path: PathBuf, line: usize, message: String },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Connectome(#[from] neurotwin_connectome::ConnectomeError),
    #[error(transparent)]
    Sim(#[from] neurotwin_sim::SimError),
    #[error("neuron model: {0}")]
    Model(#[from] neurotwin_models::ModelError),
    /// The I/O layer refused or failed (an output over an input, an occupied output folder, a resource
    /// estimate beyond the limit).
    #[error(transparent)]
    Output(#[from] neurotwin_io::IoError),
}

/// 1-based line of byte offset `pos` in `text`.
pub fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}
