//! Reading scenario files and expanding sweeps.

use std::path::Path;

use crate::error::{ScenarioError, line_of};
use crate::spec::ScenarioSpec;

/// A parsed scenario with its source text (for located errors).
#[derive(Clone, Debug)]
pub struct ScenarioFile {
    pub path: std::path::PathBuf,
    pub text: String,
    pub spec: ScenarioSpec,
}

/// Parses scenario text; errors carry the file, line and the offending key.
pub fn parse(path: &Path, text: &str) -> Result<ScenarioSpec, ScenarioError> {
    toml::from_str::<ScenarioSpec>(text).map_err(|e| match e.span() {
        Some(s) => {
            ScenarioError::At { path: path.into(), line: line_of(text, s.start), message: e.message().to_string() }
        }
        None => ScenarioError::File { path: path.into(), message: e.message().to_string() },
    })
}

/// Reads and parses a scenario file.
pub fn read(path: &Path) -> Result<ScenarioFile, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io { path: path.into(), source })?;
    let spec = parse(path, &text)?;
    Ok(ScenarioFile { path: path.into(), text, spec })
}

/// One point of a sweep: a label and the scenario text with the swept field replaced.
#[derive(Clone, Debug)]
pub struct SweepPoint {
    pub label: String,
    pub value: toml::Value,
    pub file: ScenarioFile,
}

/// Expands the `[sweep]` table into one scenario per value (a single point without a sweep).
pub fn expand_sweep(f: &ScenarioFile) -> Result<Vec<SweepPoint>, ScenarioError> {
    let Some(sweep) = &f.spec.sweep else {
        return Ok(vec![SweepPoint { label: String::new(), value: toml::Value::Boolean(true), file: f.clone() }]);
    };
    let at = |message: String| ScenarioError::At {
        path: f.path.clone(),
        line: line_of(&f.text, sweep.param.span().start),
        message,
    };
    if sweep.values.is_empty() {
        return Err(at("[sweep] values is empty".into()));
    }
    let mut doc: toml::Table = f.text.parse().map_err(|e: toml::de::Error| at(e.message().to_string()))?;
    doc.remove("sweep");
    let param = sweep.param.get_ref();
    let mut points = Vec::new();
    for (k, v) in sweep.values.iter().enumerate() {
        let mut d = doc.clone();
        set_path(&mut d, param, v.clone()).map_err(|m| at(format!("[sweep] param `{param}`: {m}")))?;
        let text = toml::to_string(&d).map_err(|e| at(e.to_string()))?;
        let spec = parse(&f.path, &text).map_err(|e| at(format!("sweep point {k} ({param} = {v}): {e}")))?;
        let label = format!("{}={}", param.rsplit('.').next().unwrap_or(param), v).replace(['/', ' ', '"'], "_");
        points.push(SweepPoint { label, value: v.clone(), file: ScenarioFile { path: f.path.clone(), text, spec } });
    }
    Ok(points)
}

/// Sets `a.b.0.c` in a TOML table (array elements by index); the target key must already exist, so a
/// misspelt path is an error rather than a silently added field.
fn set_path(doc: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur: &mut toml::Value = doc.get_mut(parts[0]).ok_or_else(|| format!("no top-level key `{}`", parts[0]))?;
    for p in &parts[1..] {
        cur = match cur {
            toml::Value::Table(t) => t.get_mut(*p).ok_or_else(|| format!("no key `{p}`"))?,
            toml::Value::Array(a) => {
                let i: usize = p.parse().map_err(|_| format!("`{p}` is not an array index"))?;
                let len = a.len();
                a.get_mut(i).ok_or_else(|| format!("index {i} out of range (length {len})"))?
            }
            _ => return Err(format!("`{p}`: parent is not a table or array")),
        };
    }
    *cur = value;
    Ok(())
}
