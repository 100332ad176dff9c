//! Reading scenario files and expanding sweeps.

use std::path::Path;

use toml::Spanned;

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
    let spec = toml::from_str::<ScenarioSpec>(text).map_err(|e| match e.span() {
        Some(s) => {
            ScenarioError::At { path: path.into(), line: line_of(text, s.start), message: e.message().to_string() }
        }
        None => ScenarioError::File { path: path.into(), message: e.message().to_string() },
    })?;
    check_scenario_name(path, text)?;
    Ok(spec)
}

/// Checks the top-level `name` of scenario text (any scenario kind) with [`check_name`]; the error points at
/// its line.
pub fn check_scenario_name(path: &Path, text: &str) -> Result<(), ScenarioError> {
    let NameOnly { name } = toml::from_str(text)
        .map_err(|e: toml::de::Error| ScenarioError::File { path: path.into(), message: e.message().to_string() })?;
    check_name(name.get_ref()).map_err(|m| ScenarioError::At {
        path: path.into(),
        line: line_of(text, name.span().start),
        message: m,
    })
}

/// Just the `name` of a scenario, with its place in the file.
#[derive(serde::Deserialize)]
struct NameOnly {
    name: Spanned<String>,
}

/// Longest scenario name (characters).
pub const MAX_NAME_LEN: usize = 100;

/// Checks a scenario `name`, which becomes an output folder (`out/<name>`) and a SONATA population: it must
/// be one plain folder name. The error suggests a cleaned-up name.
pub fn check_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "must not be empty"
    } else if name.chars().count() > MAX_NAME_LEN {
        "is too long"
    } else if name.starts_with('.') {
        "must not start with `.`"
    } else if !name.chars().all(name_char) {
        "may only contain letters, digits, `_`, `-` and `.`"
    } else {
        return Ok(());
    };
    Err(format!(
        "`name` = {name:?} {problem}: it names the output folder, so it must be a plain folder name (at most \
         {MAX_NAME_LEN} characters of letters, digits, `_`, `-`, `.`, not starting with `.`); e.g. name = {:?}",
        sanitized_name(name)
    ))
}

/// Whether `c` may appear in a scenario name.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// `name` turned into a valid scenario name (see [`check_name`]).
pub fn sanitized_name(name: &str) -> String {
    let mapped: String = name.chars().map(|c| if name_char(c) { c } else { '_' }).collect();
    let clean: String = mapped.trim_start_matches(['.', '_']).chars().take(MAX_NAME_LEN).collect();
    if clean.is_empty() { "scenario".into() } else { clean }
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
    let mut points: Vec<SweepPoint> = Vec::new();
    for (k, v) in sweep.values.iter().enumerate() {
        let label = point_label(param, v);
        if let Some(p) = points.iter().find(|p| p.label == label) {
            return Err(at(format!(
                "[sweep] values: {} and {v} would both write into the folder `{label}` (a value given twice?); \
                 give every value once",
                p.value
            )));
        }
        let mut d = doc.clone();
        set_path(&mut d, param, v.clone()).map_err(|m| at(format!("[sweep] param `{param}`: {m}")))?;
        let text = toml::to_string(&d).map_err(|e| at(e.to_string()))?;
        let spec = parse(&f.path, &text).map_err(|e| at(format!("sweep point {k} ({param} = {v}): {e}")))?;
        points.push(SweepPoint { label, value: v.clone(), file: ScenarioFile { path: f.path.clone(), text, spec } });
    }
    Ok(points)
}

/// Output folder name of the sweep point `param = value` (`rate_hz=10.0`).
fn point_label(param: &str, value: &toml::Value) -> String {
    format!("{}={}", param.rsplit('.').next().unwrap_or(param), value).replace(['/', '\\', ' ', '"'], "_")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_plain_folder_names_are_rejected_with_a_suggestion() {
        for ok in ["cuba", "celegans-ach-block", "pd14_v1.2"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for (bad, suggestion) in
            [("../../x", "x"), ("/tmp/abs", "tmp_abs"), ("a/b", "a_b"), ("", "scenario"), (".hidden", "hidden")]
        {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains(&format!("e.g. name = {suggestion:?}")), "{bad}: {e}");
            assert_eq!(check_name(&sanitized_name(bad)), Ok(()), "{bad}");
        }
        assert!(check_name(&"n".repeat(MAX_NAME_LEN + 1)).unwrap_err().contains("too long"));
        assert_eq!(sanitized_name(&"n".repeat(300)).len(), MAX_NAME_LEN);
    }

    #[test]
    fn parse_reports_the_line_of_a_bad_name() {
        let text = "# comment\nname = \"a b\"\n[network]\nsource = \"celegans\"\n[run]\nduration_ms = 1.0\n";
        let e = parse(Path::new("s.toml"), text).unwrap_err().to_string();
        assert!(e.starts_with("s.toml:2: `name` = \"a b\""), "{e}");
    }
}
