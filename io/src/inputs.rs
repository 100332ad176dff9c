//! The inputs of a run, so that no output can be written over one of them (issue 20, defect 2).
//!
//! Files are identified by device + inode, so a second name for the same file (a relative path, `..`, a
//! symbolic or hard link) is recognised too.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::IoError;

/// One input: the path as the user gave it, and its file identity.
#[derive(Clone, Debug)]
struct Input {
    path: PathBuf,
    id: (u64, u64),
    is_dir: bool,
}

/// Every file (and folder) a command reads.
#[derive(Clone, Debug, Default)]
pub struct InputSet {
    inputs: Vec<Input>,
}

fn identity(path: &Path) -> Option<((u64, u64), bool)> {
    std::fs::metadata(path).ok().map(|m| ((m.dev(), m.ino()), m.is_dir()))
}

impl InputSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an input file or folder; paths that do not exist are ignored (their reader reports them).
    pub fn add(&mut self, path: &Path) -> &mut Self {
        if let Some((id, is_dir)) = identity(path) {
            self.inputs.push(Input { path: path.to_path_buf(), id, is_dir });
        }
        self
    }

    /// Adds every file below `dir` (an input folder such as a SONATA circuit or a Zarr volume).
    pub fn add_tree(&mut self, dir: &Path) -> &mut Self {
        self.add(dir);
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    self.add_tree(&p);
                } else {
                    self.add(&p);
                }
            }
        }
        self
    }

    /// Adds every file below `dir` except the subtree `except` (e.g. a circuit folder without the output
    /// folder of earlier runs).
    pub fn add_tree_except(&mut self, dir: &Path, except: &Path) -> &mut Self {
        let skip = identity(except).map(|(id, _)| id);
        self.add_tree_filtered(dir, skip)
    }

    fn add_tree_filtered(&mut self, dir: &Path, skip: Option<(u64, u64)>) -> &mut Self {
        if identity(dir).is_some_and(|(id, _)| Some(id) == skip) {
            return self;
        }
        self.add(dir);
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    self.add_tree_filtered(&p, skip);
                } else {
                    self.add(&p);
                }
            }
        }
        self
    }

    /// Builder form of [`InputSet::add`].
    pub fn with(mut self, path: &Path) -> Self {
        self.add(path);
        self
    }

    /// The input `path` is (the same file, by identity), if any.
    pub fn find(&self, path: &Path) -> Option<&Path> {
        let (id, _) = identity(path)?;
        self.inputs.iter().find(|i| i.id == id).map(|i| i.path.as_path())
    }

    /// Whether `dir` is, or lies inside, an input folder.
    pub fn inside_input_dir(&self, dir: &Path) -> Option<&Path> {
        let mut cur = std::fs::canonicalize(dir).ok();
        while let Some(c) = cur {
            if let Some((id, _)) = identity(&c)
                && let Some(i) = self.inputs.iter().find(|i| i.is_dir && i.id == id)
            {
                return Some(i.path.as_path());
            }
            cur = c.parent().map(Path::to_path_buf);
        }
        None
    }

    /// Refuses `output` if it is one of the inputs; `hint` names the option that chooses the output
    /// (e.g. "with -o").
    pub fn check_output(&self, output: &Path, hint: &str) -> Result<(), IoError> {
        if let Some(input) = self.find(output) {
            let what = if std::fs::metadata(output).is_ok_and(|m| m.is_dir()) { "the folder" } else { "the file" };
            return Err(IoError::OverwritesInput {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
                what: what.into(),
                hint: hint.into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_name_for_an_input_is_recognised() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.csv");
        std::fs::write(&a, "x").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let inputs = InputSet::new().with(&a);
        let other = d.path().join("sub/../a.csv");
        let e = inputs.check_output(&other, "with -o").unwrap_err().to_string();
        assert!(e.contains("a.csv") && e.contains("input"), "{e}");
        std::os::unix::fs::symlink(&a, d.path().join("link.csv")).unwrap();
        assert!(inputs.check_output(&d.path().join("link.csv"), "").is_err());
        assert!(inputs.check_output(&d.path().join("b.csv"), "").is_ok());
    }
}
