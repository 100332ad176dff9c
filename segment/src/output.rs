//! Writing a run's outputs into a folder all-or-nothing, through the shared output-folder policy
//! (`neurotwin_io::run_dir`): every file is written into the folder's staging area and all are published
//! together; on any failure (or a signal) nothing new is left behind, and no input is ever replaced.

use std::path::{Path, PathBuf};

use neurotwin_io::run_dir::RunDir;

use crate::error::SegmentError;

/// One output file: its name in the folder and a writer that creates it at the given path.
pub type Writer<'a> = Box<dyn FnOnce(&Path) -> Result<(), SegmentError> + 'a>;

/// Writes `files` into the staging area of `run_dir` and publishes them together; returns the final paths.
pub fn write_all(run_dir: RunDir, files: Vec<(&str, Writer<'_>)>) -> Result<Vec<PathBuf>, SegmentError> {
    let mut done = Vec::new();
    for (name, write) in files {
        write(&run_dir.staging().join(name))?;
        done.push(run_dir.dir().join(name));
    }
    run_dir.commit()?;
    Ok(done)
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), SegmentError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| SegmentError::Invalid(format!("JSON: {e}")))?;
    std::fs::write(path, text + "\n").map_err(|e| SegmentError::Io { path: path.to_path_buf(), source: e })
}
