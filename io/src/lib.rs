//! One I/O layer for every neurotwin command (issue 20):
//! - [`budget`]: memory and time estimates checked *before* allocating or looping, refused beyond a limit
//!   the user can raise (`--max-memory`, `--force`), always stating the estimate;
//! - [`atomic`]: file writes that are all-or-nothing (temporary file + fsync + rename), honour the umask and
//!   are cleaned up on error and on SIGINT/SIGTERM;
//! - [`run_dir`]: the output-folder policy — never write over an input of the run, a fresh folder or an
//!   explicit `--overwrite` that replaces only the previous run's own files (listed in its manifest);
//! - [`h5`]: one HDF5 reader for every crate — located errors, declared sizes checked against the file and
//!   the memory limit before anything is allocated;
//! - [`signals`]: the SIGINT/SIGTERM/SIGHUP handler that removes partial outputs before exiting.

pub mod atomic;
pub mod budget;
pub mod error;
pub mod h5;
pub mod inputs;
pub mod run_dir;
pub mod signals;

pub use error::IoError;
