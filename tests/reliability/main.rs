//! Regression tests for issue 20 (reliability): one test binary, one module per area. Each test reproduces
//! a defect found by trying bad inputs and asserts the fixed behaviour (a clear error naming the file and
//! the fix, a non-zero exit, no crash, no input overwritten, no partial output).

#[path = "../common/mod.rs"]
mod common;

mod formats;
mod guards;
mod inspect_import;
mod messages;
mod outputs;
mod scenario_checks;
