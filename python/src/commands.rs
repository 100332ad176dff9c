//! `neurotwin.compare`, `neurotwin.fit`, `neurotwin.segment` and `RunResult.to_nwb`: the CLI's commands run
//! in-process through `neurotwin::cli::library` (the same clap arguments, checks and published outputs), with the
//! GIL released; their reports come back as JSON text that the Python side parses.

use std::path::PathBuf;

use neurotwin::cli::export::{NwbOptions, RunSpikes, write_run_nwb};
use neurotwin::cli::library::{CommandError, run_command};
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::run::RunResult;
use crate::{ScenarioError, detached};

create_exception!(
    _neurotwin,
    CommandFailed,
    PyRuntimeError,
    "A compare, fit, segment or export that failed (the CLI's message: the file, field and the fix)."
);

/// The error of a failed command as Python sees it: a located scenario error is a `ScenarioError` (a
/// `ValueError`), anything else a `CommandFailed` (a `RuntimeError`); the message is the CLI's (`error: ...`).
fn failed(e: anyhow::Error) -> PyErr {
    let msg = format!("{e:#}");
    if e.chain().any(|c| c.is::<neurotwin_scenarios::ScenarioError>()) {
        ScenarioError::new_err(msg)
    } else {
        CommandFailed::new_err(msg)
    }
}

/// Runs `neurotwin ARGS...` (`args[0]`: `compare`, `fit` or `segment`) and returns (command, output folder, files
/// written, report as JSON text). Arguments the CLI would refuse raise `ValueError` with clap's message.
#[pyfunction]
pub(crate) fn run_cli_command(py: Python<'_>, args: Vec<String>) -> PyResult<(String, PathBuf, Vec<PathBuf>, String)> {
    detached(py, || match run_command(&args) {
        Ok(o) => {
            let json = serde_json::to_string(&o.report).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
            Ok((o.command.to_string(), o.out_dir, o.files, json))
        }
        Err(CommandError::Usage(m)) => Err(PyValueError::new_err(m)),
        Err(CommandError::Failed(e)) => Err(failed(e)),
    })
}

/// Writes `result` as an NWB 2.x file at `path`, as `neurotwin export nwb` writes a run folder. Returns the CLI's
/// line.
#[pyfunction]
#[pyo3(signature = (result, path, indicator, frame_rate_hz, noise, f0_photons, noise_seed, species, sex))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of `RunResult.to_nwb`
pub(crate) fn write_nwb(
    py: Python<'_>,
    result: PyRef<'_, RunResult>,
    path: PathBuf,
    indicator: String,
    frame_rate_hz: f64,
    noise: bool,
    f0_photons: f64,
    noise_seed: Option<u64>,
    species: Option<String>,
    sex: Option<String>,
) -> PyResult<String> {
    let summary: serde_json::Value =
        serde_json::from_str(&result.summary_json).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let run = RunSpikes {
        names: result.names.clone(),
        times_ms: result.rec.spike_times_by_neuron(),
        population: result.population.clone(),
        summary,
        source: "a neurotwin.RunResult in Python".into(),
        started: neurotwin_imaging::nwb_write::iso8601(std::time::SystemTime::now()),
    };
    let opts = NwbOptions { indicator, frame_rate_hz, noise, f0_photons, noise_seed, species, sex };
    detached(py, || write_run_nwb(&run, &opts, &path).map_err(failed))
}
