//! The `neurotwin` command line as a library: the binary (`src/main.rs`) parses the arguments and dispatches,
//! and the Python bindings (`python/`) run `compare`, `fit` and `segment` through [`cli::library`] with the same
//! arguments, checks and outputs.

pub mod cli;
