//! All-or-nothing file writes: the writer fills a temporary file beside the target, which is fsynced and
//! renamed into place only if the writer succeeds; on error (or SIGINT/SIGTERM, see [`crate::signals`]) the
//! temporary file is removed. The temporary file is created with mode 0666 minus the umask, like any file
//! the user's shell would create, so outputs honour the umask (tempfile's 0600 did not).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{IoError, signals};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The folder holding `path` ("." for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// A fresh, empty temporary file beside `path`, named `.<name>.<pid>.<n>.tmp`, created with 0666 − umask
/// and registered for signal cleanup.
pub fn temp_beside(path: &Path) -> Result<PathBuf, IoError> {
    temp_beside_ext(path, "tmp")
}

/// [`temp_beside`] with the name ending in `.ext` (for writers that pick the format from the extension,
/// such as PNG encoders).
pub fn temp_beside_ext(path: &Path, ext: &str) -> Result<PathBuf, IoError> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).map_err(|e| IoError::fs(dir, "cannot create the output folder", e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.{ext}", std::process::id()));
        // Created and registered in one step under the cleanup lock: a signal can then never find the file
        // created but not yet registered (it was left behind when the watcher ran between the two).
        let created = signals::critical(|partial| {
            let r = OpenOptions::new().write(true).create_new(true).open(&tmp);
            if r.is_ok() {
                partial.push(tmp.clone());
            }
            r
        });
        match created {
            Ok(_) => return Ok(tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(IoError::fs(&tmp, "cannot create a temporary file", e)),
        }
    }
}

/// Flushes a file's data to disk.
pub fn fsync_file(path: &Path) -> Result<(), IoError> {
    let f = std::fs::File::open(path).map_err(|e| IoError::fs(path, "cannot reopen to flush", e))?;
    f.sync_all().map_err(|e| IoError::fs(path, "cannot flush to disk", e))
}

/// Flushes a folder's entries (renames) to disk; best effort (some file systems refuse).
pub fn fsync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Moves a finished temporary file onto `path` (atomic on one file system) and forgets it for cleanup.
pub fn publish(tmp: &Path, path: &Path) -> Result<(), IoError> {
    fsync_file(tmp)?;
    signals::critical(|_| {
        let r =
            std::fs::rename(tmp, path).map_err(|e| IoError::fs(path, "cannot move the finished file into place", e));
        if r.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        r
    })?;
    signals::deregister(tmp);
    fsync_dir(parent_dir(path));
    Ok(())
}

/// Writes `path` all-or-nothing: `write` receives a temporary path beside it (an existing empty file it may
/// truncate or replace); the result is published only if `write` returns `Ok`.
pub fn write_file<E: From<IoError>>(path: &Path, write: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), E> {
    write_file_ext(path, "tmp", write)
}

/// [`write_file`] with a temporary name ending in `.ext`.
pub fn write_file_ext<E: From<IoError>>(
    path: &Path,
    ext: &str,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = temp_beside_ext(path, ext)?;
    match write(&tmp) {
        Ok(()) => Ok(publish(&tmp, path)?),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            signals::deregister(&tmp);
            Err(e)
        }
    }
}

/// Writes `bytes` to `path` all-or-nothing.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_file(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| IoError::fs(path, "cannot write", e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn outputs_honour_the_umask_and_leave_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        write_bytes(&p, b"hello").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello");
        // Whatever the umask, the mode equals that of a file created the ordinary way.
        let q = d.path().join("plain.txt");
        std::fs::write(&q, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), mode(&q));
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    /// While the signal watcher holds the cleanup lock (it does from its first removal until `_exit`), no
    /// temporary file may appear: creating one and registering it is a single step under that lock. Before,
    /// the file was created first, so a signal landing in between left `..neurotwin-run.json.*.tmp` behind
    /// (seen in CI).
    #[test]
    fn no_temporary_file_appears_while_cleanup_holds_the_lock() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("a.txt");
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let watcher = std::thread::spawn(move || {
            signals::critical(|_| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        });
        held_rx.recv().unwrap();
        let t = target.clone();
        let writer = std::thread::spawn(move || temp_beside(&t).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let during = std::fs::read_dir(d.path()).unwrap().count();
        release_tx.send(()).unwrap();
        watcher.join().unwrap();
        let tmp = writer.join().unwrap();
        assert_eq!(during, 0, "a temporary file was created while the cleanup lock was held");
        assert!(tmp.exists());
        let _ = std::fs::remove_file(&tmp);
        signals::deregister(&tmp);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        std::fs::write(&p, b"old").unwrap();
        let r: Result<(), IoError> = write_file(&p, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err(IoError::Budget("writer failed".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
