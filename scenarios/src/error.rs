//! Scenario errors: always name the file, the line when known, and the key.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read scenario: {source}")]
    Io { path: PathBuf, source: std::io::Error },
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
}

/// 1-based line of byte offset `pos` in `text`.
pub fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}
