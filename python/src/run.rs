//! `RunResult` and `run_all`: simulating a prepared scenario with the GIL released, Ctrl-C and progress.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use neurotwin_scenarios::BackendKind;
use neurotwin_scenarios::runner::{PreparedPoint, PreparedScenario, simulate_with, summarize, trial_seed};
use neurotwin_sim::SimRecording;
use numpy::ndarray::{ArrayView, ArrayView1, ArrayView2, Dimension};
use numpy::prelude::*;
use numpy::{Element, PyArray, PyArray1, PyArray2, npyffi};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::scenario::Scenario;
use crate::{SimulationError, detached};

/// One finished run: spikes, spike counts, sampled state, rate traces and the summary. Its arrays are read-only
/// NumPy views of the buffers held here (no copy), each keeping this object alive as its `base`.
#[pyclass(module = "neurotwin._neurotwin", frozen)]
pub(crate) struct RunResult {
    pub(crate) rec: SimRecording,
    /// `rec.spike_times_ms()`, computed once so that `spike_times_ms` is a view like the other arrays.
    times_ms: Vec<f64>,
    pub(crate) names: Vec<String>,
    cell_types: Vec<String>,
    pub(crate) summary_json: String,
    sweep_value: Option<String>,
    trial: u32,
    seed: u64,
    pub(crate) population: String,
}

/// A read-only NumPy array viewing `data` (a buffer of the `RunResult` behind `owner`), with `owner` as its base.
fn view<'py, T: Element, D: Dimension>(
    owner: &Bound<'py, RunResult>,
    data: ArrayView<'_, T, D>,
) -> Bound<'py, PyArray<T, D>> {
    // SAFETY: `data` borrows a buffer of the `RunResult` that `owner` holds (its `SimRecording` or `times_ms`).
    // The pyclass is `frozen` and has no method that mutates, moves or reallocates those `Vec`s, so the buffer
    // stays at the same address, unchanged, for as long as the Python object lives; the array holds a reference
    // to `owner` as its base object, so the object (and the buffer) lives at least as long as the array. The
    // array is made read-only before it is returned, so Python cannot write into the shared, immutable buffer
    // (NumPy also refuses `setflags(write=True)`: the base exposes no writable buffer).
    unsafe {
        let a = PyArray::borrow_from_array(&data, owner.clone().into_any());
        (*a.as_array_ptr()).flags &= !npyffi::flags::NPY_ARRAY_WRITEABLE;
        a
    }
}

fn view1<'py, T: Element>(owner: &Bound<'py, RunResult>, data: &[T]) -> Bound<'py, PyArray1<T>> {
    view(owner, ArrayView1::from(data))
}

#[pymethods]
impl RunResult {
    /// Spike times in ms (float64; a spike detected in step s is stamped (s + 1) · dt, as NEST does).
    #[getter]
    fn spike_times_ms<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyArray1<f64>> {
        view1(slf, &slf.get().times_ms)
    }

    /// The neuron of each spike (uint32, index into `neuron_names`).
    #[getter]
    fn spike_neurons<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyArray1<u32>> {
        view1(slf, &slf.get().rec.spike_neurons)
    }

    /// The simulation step of each spike (uint64).
    #[getter]
    fn spike_steps<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyArray1<u64>> {
        view1(slf, &slf.get().rec.spike_steps)
    }

    /// Spikes per neuron over the whole run (uint64, one entry per neuron).
    #[getter]
    fn spike_counts<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyArray1<u64>> {
        view1(slf, &slf.get().rec.spike_counts)
    }

    /// Neuron names (empty strings where the connectome has none).
    #[getter]
    fn neuron_names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// Cell type of each neuron (empty where unknown).
    #[getter]
    fn cell_types(&self) -> Vec<String> {
        self.cell_types.clone()
    }

    /// Number of neurons.
    #[getter]
    fn n_neurons(&self) -> usize {
        self.names.len()
    }

    /// Time step (ms).
    #[getter]
    fn dt_ms(&self) -> f64 {
        self.rec.dt_ms
    }

    /// Steps simulated.
    #[getter]
    fn steps(&self) -> u64 {
        self.rec.steps
    }

    /// Simulated time (ms).
    #[getter]
    fn duration_ms(&self) -> f64 {
        self.rec.duration_ms()
    }

    /// The seed of this run (the scenario's for trial 0, a counter-based derivation for later trials).
    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }

    /// The trial index.
    #[getter]
    fn trial(&self) -> u32 {
        self.trial
    }

    /// The swept value of this run as written in the scenario, or None without a sweep.
    #[getter]
    fn sweep_value(&self) -> Option<String> {
        self.sweep_value.clone()
    }

    /// The sampled state: {variable: (times_ms [T], neurons [K], values [T × K])} (float64 ms, uint32 neuron
    /// index, float64 in the variable's unit; `values` is C-contiguous, row t = sample t).
    #[getter]
    fn state<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let d = PyDict::new(py);
        for t in &slf.get().rec.state {
            let shape = (t.times_ms.len(), t.neurons.len());
            let values = ArrayView2::from_shape(shape, &t.values).map_err(|e| {
                PyRuntimeError::new_err(format!("state `{}`: {} values for {shape:?}: {e}", t.var, t.values.len()))
            })?;
            let values: Bound<'py, PyArray2<f64>> = view(slf, values);
            d.set_item(&t.var, (view1(slf, &t.times_ms), view1(slf, &t.neurons), values))?;
        }
        Ok(d)
    }

    /// Snapshots of the plastic synapses' weights (`[[plasticity]]`), or None without them: {"times_ms" [T],
    /// "weights" [T × S] (model's synaptic unit), "pre" [S], "post" [S] (neuron indices), "projection" [S] (index into
    /// "projections"), "projections" (group names)}.
    #[getter]
    fn weights<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(w) = &slf.get().rec.weights else { return Ok(None) };
        let d = PyDict::new(slf.py());
        let shape = (w.times_ms.len(), w.len());
        let values = ArrayView2::from_shape(shape, &w.values)
            .map_err(|e| PyRuntimeError::new_err(format!("weights: {} values for {shape:?}: {e}", w.values.len())))?;
        let values: Bound<'py, PyArray2<f64>> = view(slf, values);
        d.set_item("times_ms", view1(slf, &w.times_ms))?;
        d.set_item("weights", values)?;
        d.set_item("pre", view1(slf, &w.pre))?;
        d.set_item("post", view1(slf, &w.post))?;
        d.set_item("projection", view1(slf, &w.projection))?;
        d.set_item("projections", w.projection_names.clone())?;
        Ok(Some(d))
    }

    /// Rate traces per group: {group: (bin_ms, rate_hz [bins])} (spikes per neuron per second in each bin).
    #[getter]
    fn rates<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(slf.py());
        for r in &slf.get().rec.rates {
            d.set_item(&r.group, (r.bin_ms, view1(slf, &r.rate_hz)))?;
        }
        Ok(d)
    }

    /// The run's summary (what `summary.json` holds) as JSON text; `neurotwin.RunResult.summary` parses it.
    #[getter]
    fn summary_json(&self) -> &str {
        &self.summary_json
    }

    /// Writes the spikes as a SONATA spike file (HDF5), as `neurotwin run` writes `spikes.h5`.
    fn to_sonata(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        detached(py, || {
            neurotwin_sim::output::write_sonata_spikes(&path, &self.population, &self.rec)
                .map_err(|e| SimulationError::new_err(e.to_string()))
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "RunResult({} neurons, {} ms, {} spikes, trial {})",
            self.names.len(),
            self.rec.duration_ms(),
            self.rec.spike_neurons.len(),
            self.trial
        )
    }
}

/// Every (sweep point, trial) of `scenario`, simulated on `backend` with `threads` worker threads (None: the
/// scenario's `run.threads`), in (point, trial) order, with the GIL released. Ctrl-C (SIGINT) stops the runs
/// within 256 steps and raises `KeyboardInterrupt`: the calling thread takes the GIL every 50 ms to let Python see
/// its signals while the simulation runs on another thread, and then calls `callback(steps_done, steps_total)` (if
/// given, when the count changed; once more at the end) — summed over every run, for a notebook's progress bar.
/// `progress` shows the terminal bar on stderr instead (single runs only). `profile` times each phase of the step
/// loop into the summary's `phases` (as `neurotwin run --profile`).
#[pyfunction]
#[pyo3(signature = (scenario, backend="cpu", threads=None, progress=false, callback=None, profile=false))]
pub(crate) fn run_all(
    py: Python<'_>,
    scenario: &Scenario,
    backend: &str,
    threads: Option<usize>,
    progress: bool,
    callback: Option<Py<PyAny>>,
    profile: bool,
) -> PyResult<Vec<RunResult>> {
    let kind: BackendKind = backend.parse().map_err(|e: String| PyValueError::new_err(e))?;
    let prepared = scenario.prepared.clone();
    let cancel = Arc::new(AtomicBool::new(false));
    let steps_done = Arc::new(AtomicU64::new(0));
    let total: u64 = prepared.points.iter().map(|p| p.run.setup.steps).sum::<u64>() * u64::from(prepared.trials);
    let simulate = || {
        let PreparedScenario { points, trials, sweep_param, .. } = &*prepared;
        let trials = *trials;
        let threads = neurotwin_sim::trials_at_once(kind, threads.unwrap_or(points[0].run.threads));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| SimulationError::new_err(format!("thread pool: {e}")))?;
        let jobs: Vec<(usize, u32)> = (0..points.len()).flat_map(|p| (0..trials).map(move |t| (p, t))).collect();
        let single = jobs.len() == 1;
        pool.install(|| {
            use rayon::prelude::*;
            jobs.par_iter()
                .map(|&(p, t)| {
                    let opts = neurotwin_sim::RunOptions {
                        progress: progress && single,
                        label: points[p].run.name.clone(),
                        cancel: Some(cancel.clone()),
                        steps_done: Some(steps_done.clone()),
                        profile,
                    };
                    run_one(&points[p], sweep_param.clone(), t, kind, &opts)
                })
                .collect::<PyResult<Vec<_>>>()
        })
    };
    let mut interrupt: Option<PyErr> = None;
    let mut reported = u64::MAX;
    // Calls the callback when the count changed; a failing callback stops the runs like Ctrl-C.
    let mut report = |py: Python<'_>, interrupt: &mut Option<PyErr>| {
        let done = steps_done.load(Ordering::Relaxed).min(total);
        if let Some(cb) = &callback
            && done != reported
            && interrupt.is_none()
        {
            reported = done;
            if let Err(e) = cb.call1(py, (done, total)) {
                cancel.store(true, Ordering::Relaxed);
                *interrupt = Some(e);
            }
        }
    };
    let results = detached(py, || {
        std::thread::scope(|s| {
            let worker = s.spawn(|| catch_unwind(AssertUnwindSafe(simulate)));
            while !worker.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
                Python::attach(|py| {
                    if interrupt.is_none()
                        && let Err(e) = py.check_signals()
                    {
                        cancel.store(true, Ordering::Relaxed);
                        interrupt = Some(e);
                    }
                    report(py, &mut interrupt);
                });
            }
            match worker.join() {
                Ok(Ok(r)) => r,
                Ok(Err(p)) | Err(p) => std::panic::resume_unwind(p),
            }
        })
    });
    if results.is_ok() {
        report(py, &mut interrupt);
    }
    match interrupt {
        Some(e) => Err(e),
        None => results,
    }
}

fn run_one(
    point: &PreparedPoint,
    sweep_param: Option<String>,
    trial: u32,
    kind: BackendKind,
    opts: &neurotwin_sim::RunOptions,
) -> PyResult<RunResult> {
    let run = &point.run;
    let seed = trial_seed(run.setup.seed, trial);
    let started = Instant::now();
    let (rec, exponent, backend) =
        simulate_with(kind, run, seed, opts).map_err(|e| SimulationError::new_err(e.to_string()))?;
    let wall_s = started.elapsed().as_secs_f64();
    let summary =
        summarize(run, &rec, sweep_param, point.value.clone(), trial, seed, backend, exponent, wall_s, Path::new(""));
    let summary_json = serde_json::to_string(&summary).map_err(|e| SimulationError::new_err(e.to_string()))?;
    let net = &run.setup.network;
    Ok(RunResult {
        names: net.neurons.iter().map(|n| n.name.clone()).collect(),
        cell_types: net.neurons.iter().map(|n| n.cell_type.clone()).collect(),
        summary_json,
        sweep_value: point.value.clone(),
        trial,
        seed,
        population: run.name.clone(),
        times_ms: rec.spike_times_ms(),
        rec,
    })
}
