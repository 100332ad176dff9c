//! Writing a run's outputs into a folder all-or-nothing: every file is first written into a staging
//! folder inside the destination and moved into place only when all of them are complete; on any
//! failure nothing new is left behind (a destination folder created by the run is removed again).

use std::path::{Path, PathBuf};

use crate::error::SegmentError;

/// One output file: its name in the folder and a writer that creates it at the given path.
pub type Writer<'a> = Box<dyn FnOnce(&Path) -> Result<(), SegmentError> + 'a>;

/// Writes `files` into `dir` all-or-nothing; returns the final paths.
pub fn write_all(dir: &Path, files: Vec<(&str, Writer<'_>)>) -> Result<Vec<PathBuf>, SegmentError> {
    let existed = dir.exists();
    let io = |e: std::io::Error| SegmentError::Io { path: dir.to_path_buf(), source: e };
    std::fs::create_dir_all(dir).map_err(io)?;
    let result = (|| {
        let stage = tempfile::Builder::new().prefix(".segment-staging.").tempdir_in(dir).map_err(io)?;
        let mut staged = Vec::new();
        for (name, write) in files {
            let p = stage.path().join(name);
            write(&p)?;
            staged.push((p, dir.join(name)));
        }
        let mut done = Vec::new();
        for (from, to) in staged {
            std::fs::rename(&from, &to).map_err(|e| SegmentError::Io { path: to.clone(), source: e })?;
            done.push(to);
        }
        Ok(done)
    })();
    if result.is_err() && !existed {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), SegmentError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| SegmentError::Invalid(format!("JSON: {e}")))?;
    std::fs::write(path, text + "\n").map_err(|e| SegmentError::Io { path: path.to_path_buf(), source: e })
}
