//! The output-folder policy every command that writes a folder follows (issue 20, defects 2, 5, 6, 7):
//! - outputs are written into a hidden staging folder inside the output folder and published together by
//!   [`RunDir::commit`] (renames, under [`crate::signals::critical`]), so an error, a failed sweep point or
//!   a signal leaves the folder exactly as it was;
//! - a folder holding an earlier run (its manifest, [`MANIFEST`]) is replaced only with `--overwrite`, and
//!   then only the earlier run's own files are removed or replaced — stale outputs of the old run go, other
//!   files stay;
//! - no output may replace an input of the run, with or without `--overwrite`;
//! - files are created with 0666 − umask, folders with 0777 − umask.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::inputs::InputSet;
use crate::{IoError, atomic, signals};

/// The manifest a run leaves in its folder: every file it wrote (relative paths).
pub const MANIFEST: &str = ".neurotwin-run.json";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// What [`MANIFEST`] holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The command that wrote the run ("neurotwin run", "neurotwin fit", …).
    pub command: String,
    /// Files the run wrote, relative to the folder, sorted.
    pub files: Vec<String>,
}

/// Reads the manifest of `dir`, if it has one.
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, IoError> {
    let p = dir.join(MANIFEST);
    match std::fs::read_to_string(&p) {
        Ok(s) => serde_json::from_str(&s).map(Some).map_err(|e| IoError::OutputDir {
            path: p.clone(),
            message: format!("unreadable run manifest ({e}); delete it or choose another output folder"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoError::fs(p, "cannot read the run manifest", e)),
    }
}

/// An output folder being written: writers put files under [`RunDir::staging`]; [`RunDir::commit`]
/// publishes them. Dropping it uncommitted removes the staging folder (and the output folder, if this run
/// created it and it is still empty).
#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    staging: PathBuf,
    inputs: InputSet,
    overwrite: bool,
    command: String,
    old: Option<Manifest>,
    /// Folders this run created (the output folder and missing parents, deepest first): removed again if
    /// the run is not committed and they are empty.
    created: Vec<PathBuf>,
    committed: bool,
}

fn files_below(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), IoError> {
    let here = root.join(rel);
    let rd = std::fs::read_dir(&here).map_err(|e| IoError::fs(&here, "cannot list the staged outputs", e))?;
    for e in rd.flatten() {
        let r = rel.join(e.file_name());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            files_below(root, &r, out)?;
        } else {
            out.push(r);
        }
    }
    Ok(())
}

fn rel_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl RunDir {
    /// Prepares `dir` for the outputs of `command`. `expected` lists the files the run will write (relative
    /// paths; checked now, so that a conflict is reported before any work), `inputs` every file it reads.
    pub fn create(
        dir: &Path,
        command: &str,
        inputs: InputSet,
        overwrite: bool,
        expected: &[&str],
    ) -> Result<RunDir, IoError> {
        if dir.as_os_str().is_empty() {
            return Err(IoError::OutputDir { path: dir.into(), message: "empty output folder name".into() });
        }
        if dir.exists() && !dir.is_dir() {
            return Err(IoError::OutputDir {
                path: dir.into(),
                message: "is a file, not a folder; choose an output folder with -o".into(),
            });
        }
        let old = read_manifest(dir)?;
        if let Some(m) = &old
            && !overwrite
        {
            let shown: Vec<&str> = m.files.iter().take(4).map(String::as_str).collect();
            let more = if m.files.len() > 4 { format!(" and {} more", m.files.len() - 4) } else { String::new() };
            return Err(IoError::OutputDir {
                path: dir.into(),
                message: format!(
                    "holds the outputs of an earlier `{}` ({}{more}); pass --overwrite to replace them (only \
                     those files are removed), or choose another folder with -o",
                    m.command,
                    shown.join(", ")
                ),
            });
        }
        let old_files: BTreeSet<&str> = old.iter().flat_map(|m| m.files.iter().map(String::as_str)).collect();
        for name in expected {
            let target = dir.join(name);
            inputs.check_output(&target, "folder with -o")?;
            if target.exists() && !overwrite && !old_files.contains(name) {
                return Err(IoError::OutputDir {
                    path: dir.into(),
                    message: format!(
                        "already has `{name}`, which this run would replace; pass --overwrite to replace it, or \
                         choose another folder with -o"
                    ),
                });
            }
        }
        let mut created = Vec::new();
        let mut missing = Some(dir);
        while let Some(m) = missing.filter(|m| !m.as_os_str().is_empty() && !m.exists()) {
            created.push(m.to_path_buf());
            missing = m.parent();
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let staging = dir.join(format!(".neurotwin-staging.{}.{n}", std::process::id()));
        // Folders are created and registered for cleanup in one step under the cleanup lock, so a signal
        // never finds one created but not yet registered.
        signals::critical(|partial| -> Result<(), IoError> {
            for c in &created {
                signals::register_created_dir(c);
            }
            let made = std::fs::create_dir_all(dir)
                .map_err(|e| IoError::fs(dir, "cannot create the output folder", e))
                .and_then(|()| {
                    std::fs::create_dir(&staging)
                        .map_err(|e| IoError::fs(&staging, "cannot create the staging folder", e))
                });
            match made {
                Ok(()) => partial.push(staging.clone()),
                Err(_) => created.iter().for_each(|c| signals::deregister_created_dir(c)),
            }
            made
        })?;
        Ok(RunDir {
            dir: dir.into(),
            staging,
            inputs,
            overwrite,
            command: command.into(),
            old,
            created,
            committed: false,
        })
    }

    /// The output folder the run is published to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where writers put the run's files (published by [`RunDir::commit`]).
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// Checks that publishing the staged files would replace no input and no foreign file.
    fn check_targets(&self, files: &[PathBuf]) -> Result<(), IoError> {
        let old: BTreeSet<&str> = self.old.iter().flat_map(|m| m.files.iter().map(String::as_str)).collect();
        for rel in files {
            let target = self.dir.join(rel);
            self.inputs.check_output(&target, "folder with -o")?;
            let name = rel_string(rel);
            if target.exists() && !self.overwrite && !old.contains(name.as_str()) {
                return Err(IoError::OutputDir {
                    path: self.dir.clone(),
                    message: format!(
                        "already has `{name}`, which this run would replace; pass --overwrite to replace it, or \
                         choose another folder with -o"
                    ),
                });
            }
            let mut up = rel.parent();
            while let Some(a) = up.filter(|a| !a.as_os_str().is_empty()) {
                let p = self.dir.join(a);
                if p.exists() && !p.is_dir() {
                    return Err(IoError::OutputDir {
                        path: p,
                        message: format!(
                            "is a file where this run needs a folder (for `{name}`); move it away or choose another \
                             folder with -o"
                        ),
                    });
                }
                up = a.parent();
            }
            if target.is_dir() {
                return Err(IoError::OutputDir {
                    path: target,
                    message: "is a folder where this run writes a file; move it away or choose another folder".into(),
                });
            }
        }
        Ok(())
    }

    /// Publishes the staged files: moves each into the folder, removes the earlier run's files this run did
    /// not rewrite, writes the manifest. Runs under [`signals::critical`], so a signal lands before or after
    /// it, never inside. Returns the files written (relative paths).
    pub fn commit(mut self) -> Result<Vec<String>, IoError> {
        let mut files = Vec::new();
        files_below(&self.staging, Path::new(""), &mut files)?;
        files.sort();
        self.check_targets(&files)?;
        for rel in &files {
            atomic::fsync_file(&self.staging.join(rel))?;
        }
        let names: Vec<String> = files.iter().map(|p| rel_string(p)).collect();
        let manifest = Manifest { command: self.command.clone(), files: names.clone() };
        let manifest_json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        let manifest_tmp = atomic::temp_beside(&self.dir.join(MANIFEST))?;
        std::fs::write(&manifest_tmp, &manifest_json)
            .map_err(|e| IoError::fs(&manifest_tmp, "cannot write the run manifest", e))?;
        atomic::fsync_file(&manifest_tmp)?;
        let result = signals::critical(|_| -> Result<(), IoError> {
            for rel in &files {
                let target = self.dir.join(rel);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| IoError::fs(parent, "cannot create an output folder", e))?;
                }
                std::fs::rename(self.staging.join(rel), &target)
                    .map_err(|e| IoError::fs(&target, "cannot move the finished file into place", e))?;
            }
            if let Some(old) = &self.old {
                let new: BTreeSet<&str> = names.iter().map(String::as_str).collect();
                for stale in old.files.iter().filter(|f| !new.contains(f.as_str())) {
                    let p = self.dir.join(stale);
                    if self.inputs.find(&p).is_none() && p.is_file() {
                        let _ = std::fs::remove_file(&p);
                        remove_empty_parents(&self.dir, &p);
                    }
                }
            }
            std::fs::rename(&manifest_tmp, self.dir.join(MANIFEST))
                .map_err(|e| IoError::fs(self.dir.join(MANIFEST), "cannot write the run manifest", e))?;
            let _ = std::fs::remove_dir_all(&self.staging);
            signals::note_published();
            Ok(())
        });
        signals::deregister(&manifest_tmp);
        if result.is_err() {
            let _ = std::fs::remove_file(&manifest_tmp);
        }
        result?;
        atomic::fsync_dir(&self.dir);
        self.committed = true;
        signals::deregister(&self.staging);
        for c in &self.created {
            signals::deregister_created_dir(c);
        }
        Ok(names)
    }
}

/// Removes the folders between `file` and `root` that became empty.
fn remove_empty_parents(root: &Path, file: &Path) {
    let mut cur = file.parent();
    while let Some(d) = cur {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        cur = d.parent();
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.staging);
        signals::deregister(&self.staging);
        for c in &self.created {
            let _ = std::fs::remove_dir(c);
            signals::deregister_created_dir(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v = Vec::new();
        files_below(dir, Path::new(""), &mut v).unwrap();
        let mut s: Vec<String> = v.iter().map(|p| rel_string(p)).collect();
        s.sort();
        s
    }

    #[test]
    fn an_uncommitted_run_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let r = RunDir::create(&out, "neurotwin run", InputSet::new(), false, &["a.txt"]).unwrap();
        write(&r.staging().join("a.txt"), "x");
        drop(r);
        assert!(!out.exists());
        // Missing parents it created go too.
        let deep = d.path().join("a/b/out");
        drop(RunDir::create(&deep, "neurotwin run", InputSet::new(), false, &[]).unwrap());
        assert!(!d.path().join("a").exists());
    }

    #[test]
    fn a_rerun_needs_overwrite_and_removes_only_the_old_runs_stale_files() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let r = RunDir::create(&out, "neurotwin run", InputSet::new(), false, &[]).unwrap();
        write(&r.staging().join("summary.json"), "1");
        write(&r.staging().join("raster.png"), "old png");
        write(&r.staging().join("p0/spikes.h5"), "s");
        r.commit().unwrap();
        write(&out.join("notes.txt"), "mine");
        let e = RunDir::create(&out, "neurotwin run", InputSet::new(), false, &[]).unwrap_err().to_string();
        assert!(e.contains("--overwrite") && e.contains("summary.json"), "{e}");
        let r = RunDir::create(&out, "neurotwin run", InputSet::new(), true, &[]).unwrap();
        write(&r.staging().join("summary.json"), "2");
        r.commit().unwrap();
        assert_eq!(names(&out), vec![MANIFEST.to_string(), "notes.txt".into(), "summary.json".into()]);
        assert_eq!(std::fs::read_to_string(out.join("summary.json")).unwrap(), "2");
    }

    #[test]
    fn no_output_replaces_an_input_even_with_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("nodes.csv");
        write(&input, "pre,post\n");
        let inputs = InputSet::new().with(&input);
        let e = RunDir::create(d.path(), "neurotwin run", inputs.clone(), true, &["nodes.csv"]).unwrap_err();
        assert!(e.to_string().contains("input"), "{e}");
        // Also caught at commit when a writer produced a name not announced up front.
        let r = RunDir::create(d.path(), "neurotwin run", inputs, true, &[]).unwrap();
        write(&r.staging().join("nodes.csv"), "overwritten?");
        assert!(r.commit().is_err());
        assert_eq!(std::fs::read_to_string(&input).unwrap(), "pre,post\n");
        assert_eq!(names(d.path()), vec!["nodes.csv".to_string()]);
    }

    #[test]
    fn a_foreign_file_is_replaced_only_with_overwrite() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("summary.json"), "someone else's");
        let e = RunDir::create(d.path(), "neurotwin run", InputSet::new(), false, &["summary.json"]).unwrap_err();
        assert!(e.to_string().contains("already has `summary.json`"), "{e}");
        let r = RunDir::create(d.path(), "neurotwin run", InputSet::new(), true, &["summary.json"]).unwrap();
        write(&r.staging().join("summary.json"), "new");
        r.commit().unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("summary.json")).unwrap(), "new");
    }
}
