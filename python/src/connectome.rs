//! `Connectome`: neurons and connections read from a source, graph queries and compilation; `GeneratedNetwork`: a
//! benchmark network built by one of the generators a scenario's `[network] generator` names.

use std::path::PathBuf;

use neurotwin_connectome::generators;
use neurotwin_scenarios::spec::GeneratorSpec;
use numpy::IntoPyArray;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{ScenarioError, detached};

/// A connectome: neurons and connections as read from a source (before compilation).
#[pyclass(module = "neurotwin._neurotwin", frozen)]
pub(crate) struct Connectome {
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

    /// The circuit of a SONATA `circuit_config.json` (all node and edge populations it lists, as `neurotwin
    /// inspect` and a SONATA run read it); neurons are named `<population>:<node_id>`.
    #[staticmethod]
    fn from_sonata(py: Python<'_>, circuit_config: PathBuf) -> PyResult<Self> {
        let circuit = detached(py, || {
            neurotwin_connectome::import::sonata::read_sonata(&circuit_config).map_err(connectome_err)
        })?;
        Ok(Self::new(circuit.connectome))
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

/// Bytes per synapse of the synapse table while it is built and handed to pandas: the columns made here (4-byte
/// pre and post, 4-byte weight, 8-byte delay, 1-byte receptor code: 21 B), the receptor strings or pandas'
/// copy of the columns on the Python side (≤ 21 B) and slack.
pub(crate) const TABLE_BYTES_PER_SYNAPSE: f64 = 48.0;

/// A benchmark network built by a generator (`cuba`, `coba`, `brunel`, `pd14`, `flybrain`), already compiled: CSR by
/// presynaptic neuron with delays in steps of `dt_ms`, receptors `exc` and `inh`.
#[pyclass(module = "neurotwin._neurotwin", frozen)]
pub(crate) struct GeneratedNetwork {
    inner: generators::GeneratedNetwork,
    kind: String,
    seed: u64,
}

/// `message` of a serde error without serde_json's ` at line 1 column 42` suffix (the JSON is ours, not the
/// user's).
fn serde_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) if e.line() > 0 => s[..i].to_string(),
        _ => s,
    }
}

#[pymethods]
impl GeneratedNetwork {
    /// Builds generator `kind` with the parameters `params_json` (a JSON object with the keys of the scenario's
    /// `[network] generator` table besides `kind`; unknown keys and values of the wrong type are a
    /// `ScenarioError` naming them), the connectivity seed `seed` and the time step `dt_ms` (ms; delays are
    /// rounded to whole steps).
    #[staticmethod]
    fn generate(py: Python<'_>, kind: &str, params_json: &str, seed: u64, dt_ms: f64) -> PyResult<Self> {
        let params: serde_json::Value = serde_json::from_str(params_json)
            .map_err(|e| PyValueError::new_err(format!("generator parameters: {e}")))?;
        let serde_json::Value::Object(mut table) = params else {
            return Err(ScenarioError::new_err("generator parameters must be a table of key = value"));
        };
        table.insert("kind".into(), serde_json::Value::String(kind.to_string()));
        let spec: GeneratorSpec = serde::Deserialize::deserialize(serde_json::Value::Object(table))
            .map_err(|e| ScenarioError::new_err(format!("generator `{kind}`: {}", serde_message(&e))))?;
        let inner = detached(py, || {
            match &spec {
                GeneratorSpec::Cuba(c) => generators::cuba(c, seed, dt_ms),
                GeneratorSpec::Coba(c) => generators::coba(c, seed, dt_ms),
                GeneratorSpec::Brunel(c) => generators::brunel(c, seed, dt_ms),
                GeneratorSpec::Pd14(c) => generators::potjans_diesmann(c, seed, dt_ms),
                GeneratorSpec::FlyBrain(c) => generators::flybrain(c, seed, dt_ms),
            }
            .map_err(|e| ScenarioError::new_err(format!("generator `{kind}`: {e}")))
        })?;
        Ok(Self { inner, kind: kind.to_string(), seed })
    }

    /// The generator's name (`cuba`, `coba`, `brunel`, `pd14`, `flybrain`).
    #[getter]
    fn kind(&self) -> &str {
        &self.kind
    }

    /// The connectivity seed.
    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }

    /// The time step (ms) the delays are rounded to.
    #[getter]
    fn dt_ms(&self) -> f64 {
        self.inner.network.dt_ms
    }

    /// Number of neurons.
    #[getter]
    fn n_neurons(&self) -> usize {
        self.inner.network.neurons.len()
    }

    /// Number of chemical synapses (multapses counted one by one).
    #[getter]
    fn n_synapses(&self) -> u64 {
        self.inner.network.chemical.n_synapses()
    }

    /// Populations, background input and the expected rate as JSON: `{"populations": [{name, start, stop,
    /// params, v_init}], "background": [...], "expected_rate_hz": [rate, source] | null}`.
    #[getter]
    fn meta_json(&self) -> PyResult<String> {
        let pops: Vec<serde_json::Value> = self
            .inner
            .populations
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "start": p.range.start, "stop": p.range.end, "params": p.params, "v_init": p.v_init,
                })
            })
            .collect();
        to_json(&serde_json::json!({
            "populations": pops,
            "background": self.inner.background,
            "expected_rate_hz": self.inner.expected_rate_hz,
        }))
    }

    /// Estimated bytes (at the peak) of the synapse table: `n_synapses` × 48 B.
    #[getter]
    fn table_bytes(&self) -> f64 {
        self.inner.network.chemical.n_synapses() as f64 * TABLE_BYTES_PER_SYNAPSE
    }

    /// The synapses as columns in matrix order (by presynaptic neuron): `pre`, `post` (uint32 neuron index),
    /// `weight` (float32, the model's synaptic unit, signed), `delay_ms` (float64, whole steps × dt),
    /// `receptor_code` (uint8 index into `receptors`) and `receptors` (the channel names). Refuses (ValueError
    /// with the estimate) when the table would take more than `max_bytes`.
    fn synapse_columns<'py>(&self, py: Python<'py>, max_bytes: f64) -> PyResult<Bound<'py, PyDict>> {
        let bytes = self.table_bytes();
        if bytes > max_bytes {
            return Err(PyValueError::new_err(format!(
                "the synapse table of {} synapses would take about {:.2} GB (limit {:.2} GB); generate a smaller \
                 network or raise max_bytes",
                self.n_synapses(),
                bytes / 1e9,
                max_bytes / 1e9
            )));
        }
        let m = &self.inner.network.chemical;
        let dt = self.inner.network.dt_ms;
        let cols = detached(py, || {
            let n = m.n_synapses() as usize;
            let (mut pre, mut post, mut weight, mut delay, mut receptor) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for i in 0..m.n_pre {
                for seg in m.row(i) {
                    for (k, &t) in seg.targets.iter().enumerate() {
                        pre.push(i);
                        post.push(t);
                        weight.push(seg.weights.get(k));
                        delay.push(f64::from(seg.delay) * dt);
                        receptor.push(seg.receptor);
                    }
                }
            }
            Ok((pre, post, weight, delay, receptor))
        })?;
        let d = PyDict::new(py);
        d.set_item("pre", cols.0.into_pyarray(py))?;
        d.set_item("post", cols.1.into_pyarray(py))?;
        d.set_item("weight", cols.2.into_pyarray(py))?;
        d.set_item("delay_ms", cols.3.into_pyarray(py))?;
        d.set_item("receptor_code", cols.4.into_pyarray(py))?;
        d.set_item("receptors", self.inner.network.receptors.iter().map(|r| r.name.clone()).collect::<Vec<_>>())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let pops: Vec<String> = self.inner.populations.iter().map(|p| format!("{} {}", p.name, p.len())).collect();
        format!(
            "GeneratedNetwork({:?}, seed {}, {} neurons ({}), {} synapses, dt {} ms)",
            self.kind,
            self.seed,
            self.inner.network.neurons.len(),
            pops.join(", "),
            self.inner.network.chemical.n_synapses(),
            self.inner.network.dt_ms
        )
    }
}
