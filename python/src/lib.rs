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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use std::time::Instant;

use neurotwin_scenarios::runner::{PreparedPoint, PreparedScenario, prepare_all, simulate_with, summarize, trial_seed};
use neurotwin_scenarios::{BackendKind, RunRequest};
use neurotwin_sim::SimRecording;
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

create_exception!(
    _neurotwin,
    ScenarioError,
    PyValueError,
    "A scenario that cannot run, with the file, line and field."
);
create_exception!(_neurotwin, SimulationError, PyRuntimeError, "A run that failed while simulating or writing.");

/// Runs `f` without the GIL, turning a panic into a `RuntimeError`.
fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> PyResult<T> + Send) -> PyResult<T> {
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

/// A scenario: its TOML text and the path it is read from (relative paths inside it resolve against that path's
/// folder), validated and prepared when created exactly as `neurotwin run` prepares it (every sweep point's
/// network, model and stimuli; the same located messages), and kept prepared for the runs.
#[pyclass(module = "neurotwin._neurotwin", frozen)]
struct Scenario {
    path: PathBuf,
    text: String,
    prepared: Arc<PreparedScenario>,
}

#[pymethods]
impl Scenario {
    /// The scenario in the TOML file `path`.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ScenarioError::new_err(format!("{}: cannot read the scenario: {e}", path.display())))?;
        Self::from_string(py, text, Some(path))
    }

    /// The scenario in the TOML text `text`; `path` names it in messages and anchors its relative paths
    /// (default `scenario.toml` in the current folder).
    #[staticmethod]
    #[pyo3(signature = (text, path=None))]
    fn from_string(py: Python<'_>, text: String, path: Option<PathBuf>) -> PyResult<Self> {
        let path = path.unwrap_or_else(|| PathBuf::from("scenario.toml"));
        let req = RunRequest { scenario: path.clone(), text: Some(text.clone()), ..Default::default() };
        let prepared = detached(py, || prepare_all(&req).map_err(|e| ScenarioError::new_err(e.to_string())))?;
        Ok(Self { path, text, prepared: Arc::new(prepared) })
    }

    /// The demo scenario built into neurotwin (what `neurotwin demo` runs: gentle touch on the C. elegans twin).
    #[staticmethod]
    fn demo(py: Python<'_>) -> PyResult<Self> {
        Self::from_string(
            py,
            neurotwin_scenarios::DEMO_SCENARIO.to_string(),
            Some(PathBuf::from("celegans_touch.toml")),
        )
    }

    /// The scenario given as JSON text of a table with the TOML schema (what `Scenario.from_dict` sends), written
    /// as TOML by the `toml` crate and then read like any scenario text.
    #[staticmethod]
    #[pyo3(signature = (json, path=None))]
    fn from_json(py: Python<'_>, json: &str, path: Option<PathBuf>) -> PyResult<Self> {
        let value = json_to_toml("scenario", json)?;
        if !value.is_table() {
            return Err(ScenarioError::new_err("a scenario is a table (a dict)"));
        }
        let text = toml::to_string(&value).map_err(|e| ScenarioError::new_err(format!("scenario: {e}")))?;
        Self::from_string(py, text, path)
    }

    /// A new scenario with edits applied to this one's TOML and validated like any other: `set` is a list of
    /// (dotted key, JSON value) pairs that set a key (`"run.duration_ms"`, `"model.tau_m"`; tables are created as
    /// needed), `append` a list of (array key, JSON table) pairs that append a table to an array of tables
    /// (`"stimulus"`, `"perturbation"`, `"readout"`). Comments of the original text are not kept.
    fn edited(&self, py: Python<'_>, set: Vec<(String, String)>, append: Vec<(String, String)>) -> PyResult<Self> {
        let mut doc: toml::Table =
            toml::from_str(&self.text).map_err(|e| ScenarioError::new_err(format!("{}: {e}", self.path.display())))?;
        for (key, json) in set {
            let value = json_to_toml(&key, &json)?;
            let (parents, last) = match key.rsplit_once('.') {
                Some((p, l)) => (p.split('.').collect::<Vec<_>>(), l),
                None => (Vec::new(), key.as_str()),
            };
            let mut table = &mut doc;
            for p in parents {
                let entry = table.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                table = entry
                    .as_table_mut()
                    .ok_or_else(|| ScenarioError::new_err(format!("{key}: `{p}` is not a table in the scenario")))?;
            }
            table.insert(last.to_string(), value);
        }
        for (key, json) in append {
            let value = json_to_toml(&key, &json)?;
            if !value.is_table() {
                return Err(ScenarioError::new_err(format!("{key}: append a table (a dict), not {value}")));
            }
            let entry = doc.entry(key.clone()).or_insert_with(|| toml::Value::Array(Vec::new()));
            entry
                .as_array_mut()
                .ok_or_else(|| ScenarioError::new_err(format!("{key}: not an array of tables in the scenario")))?
                .push(value);
        }
        let text =
            toml::to_string(&doc).map_err(|e| ScenarioError::new_err(format!("{}: {e}", self.path.display())))?;
        Self::from_string(py, text, Some(self.path.clone()))
    }

    /// Runs the scenario makes: sweep points × trials.
    #[getter]
    fn n_runs(&self) -> usize {
        self.prepared.points.len() * self.prepared.trials as usize
    }

    /// The TOML text.
    #[getter]
    fn text(&self) -> &str {
        &self.text
    }

    /// The path that names the scenario and anchors its relative paths.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    fn __repr__(&self) -> String {
        format!("Scenario({:?})", self.path.display().to_string())
    }
}

/// A JSON value (from Python's `json.dumps`) as a TOML value for key `key`; null has no TOML form.
fn json_to_toml(key: &str, json: &str) -> PyResult<toml::Value> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| ScenarioError::new_err(format!("{key}: {e}")))?;
    toml::Value::try_from(v).map_err(|e| ScenarioError::new_err(format!("{key}: cannot be written in TOML: {e}")))
}

/// A connectome: neurons and connections as read from a source (before compilation).
#[pyclass(module = "neurotwin._neurotwin", frozen)]
struct Connectome {
    inner: neurotwin_connectome::Connectome,
    /// The graph for the queries, built on first use.
    graph: std::sync::OnceLock<neurotwin_connectome::ConnectomeGraph>,
}

impl Connectome {
    fn new(inner: neurotwin_connectome::Connectome) -> Self {
        Self { inner, graph: std::sync::OnceLock::new() }
    }

    fn graph(&self) -> PyResult<&neurotwin_connectome::ConnectomeGraph> {
        if let Some(g) = self.graph.get() {
            return Ok(g);
        }
        let g = neurotwin_connectome::ConnectomeGraph::from_connectome(&self.inner).map_err(connectome_err)?;
        Ok(self.graph.get_or_init(|| g))
    }
}

/// `v` as JSON text (the Python side parses it), as `neurotwin inspect --json` prints it.
fn to_json(v: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

fn connectome_err(e: impl std::fmt::Display) -> PyErr {
    ScenarioError::new_err(e.to_string())
}

#[pymethods]
impl Connectome {
    /// The C. elegans hermaphrodite connectome built into neurotwin (Cook et al. 2019, Nature 571:63).
    #[staticmethod]
    fn celegans() -> PyResult<Self> {
        let inner = neurotwin_connectome::import::celegans::load_celegans_embedded().map_err(connectome_err)?;
        Ok(Self::new(inner))
    }

    /// A connections CSV (and optionally a neurons CSV) in the generic, FlyWire or neuPrint layout (`layout`:
    /// `auto`, `generic`, `flywire`, `neuprint`), as `neurotwin import` reads them.
    #[staticmethod]
    #[pyo3(signature = (connections, neurons=None, layout="auto"))]
    fn from_csv(py: Python<'_>, connections: PathBuf, neurons: Option<PathBuf>, layout: &str) -> PyResult<Self> {
        let layout: neurotwin_connectome::import::csv::CsvLayout =
            layout.parse().map_err(|e: String| PyValueError::new_err(e))?;
        let inner = detached(py, || {
            neurotwin_connectome::import::csv::read_csv(&connections, neurons.as_deref(), layout)
                .map_err(connectome_err)
        })?;
        Ok(Self::new(inner))
    }

    /// A connectome in neurotwin's HDF5 format (`neurotwin import ... -o file.h5`).
    #[staticmethod]
    fn from_hdf5(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = detached(py, || neurotwin_connectome::hdf5io::read_connectome(&path).map_err(connectome_err))?;
        Ok(Self::new(inner))
    }

    /// Short name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where the data came from, one entry per source.
    #[getter]
    fn provenance(&self) -> Vec<String> {
        self.inner.provenance.clone()
    }

    /// The neuron table as columns: `id` (uint64), `name`, `cell_type`, `transmitter`, `region` (str; empty when
    /// unknown).
    #[getter]
    fn neuron_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let n = &self.inner.neurons;
        let d = PyDict::new(py);
        d.set_item("id", n.iter().map(|x| x.id).collect::<Vec<_>>().into_pyarray(py))?;
        d.set_item("name", n.iter().map(|x| x.name.clone()).collect::<Vec<_>>())?;
        d.set_item("cell_type", n.iter().map(|x| x.cell_type.clone()).collect::<Vec<_>>())?;
        d.set_item("transmitter", n.iter().map(|x| x.transmitter.clone().unwrap_or_default()).collect::<Vec<_>>())?;
        d.set_item("region", n.iter().map(|x| x.region.clone().unwrap_or_default()).collect::<Vec<_>>())?;
        Ok(d)
    }

    /// The connection table as columns: `pre`, `post` (uint64 neuron ids), `kind` (`chemical` / `electrical`),
    /// `count` (synapses, float32), `weight` (float32, NaN where the count × weight_per_synapse rule applies).
    #[getter]
    fn connection_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.inner.connections;
        let d = PyDict::new(py);
        d.set_item("pre", c.iter().map(|x| x.pre).collect::<Vec<_>>().into_pyarray(py))?;
        d.set_item("post", c.iter().map(|x| x.post).collect::<Vec<_>>().into_pyarray(py))?;
        let kind = |k: &neurotwin_connectome::SynapseKind| match k {
            neurotwin_connectome::SynapseKind::Chemical => "chemical",
            neurotwin_connectome::SynapseKind::Electrical => "electrical",
        };
        d.set_item("kind", c.iter().map(|x| kind(&x.kind)).collect::<Vec<_>>())?;
        d.set_item("count", c.iter().map(|x| x.count).collect::<Vec<_>>().into_pyarray(py))?;
        d.set_item("weight", c.iter().map(|x| x.weight.unwrap_or(f32::NAN)).collect::<Vec<_>>().into_pyarray(py))?;
        Ok(d)
    }

    /// The `k` top neurons by `metric` (`degree`, `in_degree`, `out_degree`, `synapses`, `in_synapses`,
    /// `out_synapses`, `gap_degree`; as `neurotwin inspect
    /// --hub-metric`), as JSON.
    fn hubs_json(&self, py: Python<'_>, k: usize, metric: &str) -> PyResult<String> {
        let metric: neurotwin_connectome::HubMetric = metric.parse().map_err(|e: String| PyValueError::new_err(e))?;
        let g = self.graph()?;
        detached(py, || to_json(&g.top_hubs(k, metric)))
    }

    /// The shortest path from any of `sources` to any of `targets` (names or ids) by `metric` (`hops` or
    /// `strongest`), over gap junctions too when `include_gap`, as JSON (`null` when none).
    fn path_json(
        &self,
        py: Python<'_>,
        sources: Vec<String>,
        targets: Vec<String>,
        metric: &str,
        include_gap: bool,
    ) -> PyResult<String> {
        let metric: neurotwin_connectome::PathMetric = metric.parse().map_err(|e: String| PyValueError::new_err(e))?;
        let g = self.graph()?;
        let opt = neurotwin_connectome::PathOptions { metric, include_gap };
        detached(py, || to_json(&g.path_between(&sources, &targets, &opt).map_err(connectome_err)?))
    }

    /// Compiles the connectome as `neurotwin inspect` and a run do (`transmitters`: a preset, `fly`, `celegans` or
    /// `exc_inh`; weights in the model's synaptic unit per synapse, delays in ms, gap conductance in nS per
    /// junction) and returns the compile report as JSON: synapses, segments, bytes per synapse, weight encoding,
    /// max delay, synapses per receptor class.
    #[pyo3(signature = (transmitters, dt_ms=0.1, weight_per_synapse=1.0, default_delay_ms=1.0, gap_per_junction_ns=1.0, min_synapse_count=0.0))]
    #[allow(clippy::too_many_arguments)] // the Python keyword arguments of `Connectome.compile`
    fn compile_json(
        &self,
        py: Python<'_>,
        transmitters: &str,
        dt_ms: f64,
        weight_per_synapse: f64,
        default_delay_ms: f64,
        gap_per_junction_ns: f64,
        min_synapse_count: f32,
    ) -> PyResult<String> {
        let map = neurotwin_connectome::transmitter::TransmitterMap::preset(transmitters).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown transmitter preset `{transmitters}` (valid: fly, celegans, exc_inh)"
            ))
        })?;
        let opt = neurotwin_connectome::CompileOptions {
            dt_ms,
            transmitters: map,
            weight_per_synapse,
            default_delay_ms,
            gap_per_junction_ns,
            min_synapse_count,
        };
        detached(py, || {
            let net = neurotwin_connectome::compile(&self.inner, &opt).map_err(connectome_err)?;
            to_json(&net.report)
        })
    }

    /// Writes the connectome in neurotwin's HDF5 format (atomically; a scenario's `[network] source` can name
    /// the file).
    fn to_hdf5(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        detached(py, || neurotwin_connectome::hdf5io::write_connectome(&path, &self.inner).map_err(connectome_err))
    }

    /// The strongly connected components at a glance (count, largest, singletons, sizes), as JSON.
    fn scc_json(&self, py: Python<'_>, include_gap: bool) -> PyResult<String> {
        let g = self.graph()?;
        detached(py, || to_json(&g.scc_summary(include_gap)))
    }

    fn __repr__(&self) -> String {
        format!(
            "Connectome({:?}, {} neurons, {} connections)",
            self.inner.name,
            self.inner.neurons.len(),
            self.inner.connections.len()
        )
    }
}

/// One finished run: spikes, spike counts, sampled state, rate traces and the summary.
#[pyclass(module = "neurotwin._neurotwin", frozen)]
struct RunResult {
    rec: SimRecording,
    names: Vec<String>,
    cell_types: Vec<String>,
    summary_json: String,
    sweep_value: Option<String>,
    trial: u32,
    seed: u64,
    population: String,
}

#[pymethods]
impl RunResult {
    /// Spike times in ms (float64; a spike detected in step s is stamped (s + 1) · dt, as NEST does).
    #[getter]
    fn spike_times_ms<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.rec.spike_times_ms().into_pyarray(py)
    }

    /// The neuron of each spike (uint32, index into `neuron_names`).
    #[getter]
    fn spike_neurons<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        PyArray1::from_slice(py, &self.rec.spike_neurons)
    }

    /// The simulation step of each spike (uint64).
    #[getter]
    fn spike_steps<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        PyArray1::from_slice(py, &self.rec.spike_steps)
    }

    /// Spikes per neuron over the whole run (uint64, one entry per neuron).
    #[getter]
    fn spike_counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        PyArray1::from_slice(py, &self.rec.spike_counts)
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

    /// The sampled state: {variable: (times_ms [T], neurons [K], values [T × K])} (float64, uint32, float64).
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for t in &self.rec.state {
            let k = t.neurons.len();
            let rows: Vec<Vec<f64>> =
                if k == 0 { Vec::new() } else { t.values.chunks(k).map(<[f64]>::to_vec).collect() };
            let values = if rows.is_empty() {
                numpy::PyArray2::zeros(py, [t.times_ms.len(), k], false)
            } else {
                PyArray2::from_vec2(py, &rows).map_err(|e| PyRuntimeError::new_err(e.to_string()))?
            };
            let entry = (PyArray1::from_slice(py, &t.times_ms), PyArray1::from_slice(py, &t.neurons), values);
            d.set_item(&t.var, entry)?;
        }
        Ok(d)
    }

    /// Rate traces per group: {group: (bin_ms, rate_hz [bins])} (spikes per neuron per second in each bin).
    #[getter]
    fn rates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for r in &self.rec.rates {
            d.set_item(&r.group, (r.bin_ms, PyArray1::from_slice(py, &r.rate_hz)))?;
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
/// `progress` shows the terminal bar on stderr instead (single runs only).
#[pyfunction]
#[pyo3(signature = (scenario, backend="cpu", threads=None, progress=false, callback=None))]
fn run_all(
    py: Python<'_>,
    scenario: &Scenario,
    backend: &str,
    threads: Option<usize>,
    progress: bool,
    callback: Option<Py<PyAny>>,
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
        rec,
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
    m.add_class::<Scenario>()?;
    m.add_class::<RunResult>()?;
    m.add_class::<Connectome>()?;
    m.add_function(wrap_pyfunction!(run_all, m)?)?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add("ScenarioError", m.py().get_type::<ScenarioError>())?;
    m.add("SimulationError", m.py().get_type::<SimulationError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
