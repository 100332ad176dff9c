//! `Scenario`: a scenario's TOML, validated and prepared as `neurotwin run` prepares it.

use std::path::PathBuf;
use std::sync::Arc;

use neurotwin_scenarios::RunRequest;
use neurotwin_scenarios::runner::{PreparedScenario, prepare_all};
use pyo3::prelude::*;

use crate::{ScenarioError, detached};

/// A scenario: its TOML text and the path it is read from (relative paths inside it resolve against that path's
/// folder), validated and prepared when created exactly as `neurotwin run` prepares it (every sweep point's
/// network, model and stimuli; the same located messages), and kept prepared for the runs.
#[pyclass(module = "neurotwin._neurotwin", frozen)]
pub(crate) struct Scenario {
    path: PathBuf,
    text: String,
    pub(crate) prepared: Arc<PreparedScenario>,
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
