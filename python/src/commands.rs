//! `neurotwin.compare`, `neurotwin.fit`, `neurotwin.segment` and `RunResult.to_nwb`: the CLI's commands run
//! in-process through `neurotwin::cli::library` (the same clap arguments, checks and published outputs), with the
//! GIL released; their reports come back as JSON text that the Python side parses.

use std::path::PathBuf;

use neurotwin::cli::export::{NwbOptions, RunSpikes, write_run_nwb};
use neurotwin::cli::library::{CommandError, run_command};
use numpy::PyReadonlyArray1;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

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

/// Writes a run held in Python (`spike_times_ms` with `spike_neurons`, indices into `names`; `summary_json` its
/// summary) as an NWB 2.x file at `path`, as `neurotwin export nwb` writes a run folder. Returns the CLI's line.
#[pyfunction]
#[pyo3(signature = (path, names, spike_times_ms, spike_neurons, population, summary_json, indicator, frame_rate_hz, noise, f0_photons, noise_seed, species, sex))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of `RunResult.to_nwb`
pub(crate) fn write_nwb(
    py: Python<'_>,
    path: PathBuf,
    names: Vec<String>,
    spike_times_ms: PyReadonlyArray1<'_, f64>,
    spike_neurons: PyReadonlyArray1<'_, u32>,
    population: String,
    summary_json: String,
    indicator: String,
    frame_rate_hz: f64,
    noise: bool,
    f0_photons: f64,
    noise_seed: Option<u64>,
    species: Option<String>,
    sex: Option<String>,
) -> PyResult<String> {
    let (spike_times_ms, spike_neurons) = (spike_times_ms.as_array(), spike_neurons.as_array());
    if spike_times_ms.len() != spike_neurons.len() {
        return Err(PyValueError::new_err(format!(
            "{} spike times but {} spike neurons",
            spike_times_ms.len(),
            spike_neurons.len()
        )));
    }
    let mut times_ms = vec![Vec::new(); names.len()];
    for (&t, &i) in spike_times_ms.iter().zip(&spike_neurons) {
        let train = times_ms.get_mut(i as usize).ok_or_else(|| {
            PyValueError::new_err(format!("spike neuron {i} is out of range (the run has {} neurons)", names.len()))
        })?;
        train.push(t);
    }
    let summary: serde_json::Value = serde_json::from_str(&summary_json)
        .map_err(|e| PyValueError::new_err(format!("the run summary is not JSON: {e}")))?;
    let run = RunSpikes {
        names,
        times_ms,
        population,
        summary,
        source: "a neurotwin.RunResult in Python".into(),
        started: neurotwin_imaging::nwb_write::iso8601(std::time::SystemTime::now()),
    };
    let opts = NwbOptions { indicator, frame_rate_hz, noise, f0_photons, noise_seed, species, sex };
    detached(py, || write_run_nwb(&run, &opts, &path).map_err(failed))
}
