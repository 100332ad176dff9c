//! SIGINT/SIGTERM/SIGHUP cleanup: partial outputs (temporary files, staging folders) are registered here
//! while they exist; on a signal a watcher thread removes them and exits with status 128 + signal.
//!
//! Commits (the renames that publish finished outputs) run inside [`critical`], which holds the same lock
//! the watcher takes first — so a signal arriving mid-commit waits until the commit is complete, and the
//! folder ends up holding either the complete previous run or the complete new one.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once};

static PARTIAL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Folders a run created: removed on a signal only if empty once the partial files are gone.
static CREATED_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();
/// How many run folders this process has published (a signal after a commit leaves that run complete).
static PUBLISHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Records that a run folder was published complete (called by the commit, inside [`critical`]).
pub fn note_published() {
    PUBLISHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn partial() -> MutexGuard<'static, Vec<PathBuf>> {
    PARTIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers a temporary file or staging folder to be removed if the process is interrupted.
pub fn register(path: &Path) {
    partial().push(path.to_path_buf());
}

/// Forgets a path registered with [`register`] (it was published or removed).
pub fn deregister(path: &Path) {
    let mut g = partial();
    if let Some(k) = g.iter().rposition(|p| p == path) {
        g.swap_remove(k);
    }
}

/// Registers a folder the run created, to be removed on a signal if it is then empty.
pub fn register_created_dir(path: &Path) {
    CREATED_DIRS.lock().unwrap_or_else(|e| e.into_inner()).push(path.to_path_buf());
}

/// Forgets a folder registered with [`register_created_dir`].
pub fn deregister_created_dir(path: &Path) {
    let mut g = CREATED_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = g.iter().rposition(|p| p == path) {
        g.swap_remove(k);
    }
}

/// Runs `f` (a short publish step: renames) so that no signal cleanup interleaves with it.
pub fn critical<T>(f: impl FnOnce(&mut Vec<PathBuf>) -> T) -> T {
    let mut g = partial();
    f(&mut g)
}

/// Removes every registered path (files, and folders recursively); returns how many were removed.
fn remove_partial(paths: &[PathBuf]) -> usize {
    let mut removed = 0;
    for p in paths {
        let ok = match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).is_ok(),
            Ok(_) => std::fs::remove_file(p).is_ok(),
            Err(_) => false,
        };
        removed += usize::from(ok);
    }
    removed
}

/// Installs the watcher once per process (the command line calls this at start). Without it, signals keep
/// their default action and partial files may be left behind.
pub fn install() {
    INSTALL.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::Builder::new()
            .name("neurotwin-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    let g = partial();
                    let n = remove_partial(&g);
                    // A writer that already holds a registered temporary path may reopen it by name (an HDF5
                    // or PNG encoder creating its file) just after the first pass removed it; no new path can
                    // be registered while this thread holds the lock, so a second pass after a pause catches
                    // those reopened files. 50 ms is imperceptible after Ctrl-C.
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    remove_partial(&g);
                    let mut dirs = CREATED_DIRS.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
                    for d in dirs {
                        let _ = std::fs::remove_dir(d);
                    }
                    let name = match sig {
                        SIGINT => "SIGINT",
                        SIGTERM => "SIGTERM",
                        _ => "SIGHUP",
                    };
                    let published = PUBLISHED.load(std::sync::atomic::Ordering::Relaxed);
                    if published == 0 {
                        eprintln!(
                            "\ninterrupted ({name}); removed {n} partial output(s), earlier outputs are unchanged"
                        );
                    } else {
                        eprintln!(
                            "\ninterrupted ({name}) after {published} output folder(s) were published complete; \
                             removed {n} partial output(s)"
                        );
                    }
                    // SAFETY: `_exit` ends the process at once, without running destructors or atexit
                    // handlers that could block on locks held by the interrupted threads.
                    unsafe { libc::_exit(128 + sig) };
                }
            })
            .ok();
    });
}
