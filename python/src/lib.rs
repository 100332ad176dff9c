//! `neurotwin._neurotwin`: the Rust side of the Python package `neurotwin` (python/neurotwin/). Thin over the
//! Rust crates — the scenario is parsed, validated and prepared by `neurotwin-scenarios` exactly as for the CLI,
//! and simulated by `neurotwin-sim` — with NumPy arrays for the results. The Python package re-exports these
//! classes and adds the typed, documented API (`__init__.py`, `__init__.pyi`).
//!
//! Rules kept here:
//! - the GIL is released while preparing and simulating (`Python::detach`), so other Python threads run;
//! - a scenario error is a `neurotwin.ScenarioError` (a `ValueError`) carrying the CLI's located message
//!   (file, line, field); a simulation error is a `neurotwin.SimulationError` (a `RuntimeError`);
//! - no Rust panic crosses into Python: a panic becomes a `RuntimeError` saying it is a bug, with its message.

mod commands;
mod connectome;
mod run;
mod scenario;

use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

create_exception!(
    _neurotwin,
    ScenarioError,
    PyValueError,
    "A scenario that cannot run, with the file, line and field."
);
create_exception!(_neurotwin, SimulationError, PyRuntimeError, "A run that failed while simulating or writing.");

/// Runs `f` without the GIL, turning a panic into a `RuntimeError`.
pub(crate) fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> PyResult<T> + Send) -> PyResult<T> {
    py.detach(|| match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!("internal error in neurotwin (a bug, please report it): {msg}")))
        }
    })
}

/// Panics with `message` inside the same guard every entry point uses, so that the tests can prove a Rust panic
/// arrives in Python as a `RuntimeError` (nothing in the real API can be made to panic on purpose). Never needed
/// otherwise.
#[pyfunction]
fn _panic_for_test(py: Python<'_>, message: String) -> PyResult<()> {
    detached(py, || -> PyResult<()> { panic!("{message}") })
}

/// The backends this build can name (`cpu`, `cuda`, `auto`, `cuda-host`).
#[pyfunction]
fn backends<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, ["cpu", "cuda", "auto", "cuda-host"])
}

#[pymodule]
fn _neurotwin(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<scenario::Scenario>()?;
    m.add_class::<run::RunResult>()?;
    m.add_class::<connectome::Connectome>()?;
    m.add_class::<connectome::GeneratedNetwork>()?;
    m.add_function(wrap_pyfunction!(run::run_all, m)?)?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    m.add_function(wrap_pyfunction!(commands::run_cli_command, m)?)?;
    m.add_function(wrap_pyfunction!(commands::write_nwb, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add("ScenarioError", m.py().get_type::<ScenarioError>())?;
    m.add("SimulationError", m.py().get_type::<SimulationError>())?;
    m.add("CommandFailed", m.py().get_type::<commands::CommandFailed>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
