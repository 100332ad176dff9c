//! The signal-propagation atlas as measured pairs: for each strain, each (stimulated, responder) pair with a
//! measured mean ΔF/F response, its q-value and number of observations (Randi, Sharma, Dvali & Leifer 2023,
//! Nature 623:406; converted by `scripts/convert_funatlas.py` into `data/celegans/funatlas_pairs.csv`).

use std::path::{Path, PathBuf};

use crate::error::ScenarioError;

/// Header of the pairs CSV.
pub const ATLAS_HEADER: &str = "strain,stimulated,responder,dff,q,n_obs";

/// One measured pair.
#[derive(Clone, Debug, PartialEq)]
pub struct AtlasPair {
    /// Neuron that was optogenetically stimulated.
    pub stimulated: String,
    /// Neuron whose calcium response was measured.
    pub responder: String,
    /// Mean ΔF/F of the response (dimensionless).
    pub dff: f64,
    /// q-value of the response (false-discovery-rate corrected; NaN when not given).
    pub q: f64,
    /// Number of observations of the pair.
    pub n_obs: u32,
}

/// All measured pairs of one strain (`wt`, `unc31`, …), in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct AtlasStrain {
    pub name: String,
    pub pairs: Vec<AtlasPair>,
}

/// The atlas as read from a pairs CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct PropagationAtlas {
    pub path: PathBuf,
    pub strains: Vec<AtlasStrain>,
}

impl PropagationAtlas {
    /// The strain called `name`.
    pub fn strain(&self, name: &str) -> Option<&AtlasStrain> {
        self.strains.iter().find(|s| s.name == name)
    }

    /// Names of the strains in file order.
    pub fn strain_names(&self) -> Vec<&str> {
        self.strains.iter().map(|s| s.name.as_str()).collect()
    }
}

/// Reads a pairs CSV (`strain,stimulated,responder,dff,q,n_obs`). Every problem is an error naming the file,
/// the line and the column.
pub fn read_atlas(path: &Path) -> Result<PropagationAtlas, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.into(),
        what: "the atlas pairs CSV".into(),
        source,
    })?;
    parse_atlas(path, &text)
}

/// Parses the text of a pairs CSV (see [`read_atlas`]).
pub fn parse_atlas(path: &Path, text: &str) -> Result<PropagationAtlas, ScenarioError> {
    let at = |line: usize, message: String| ScenarioError::At { path: path.into(), line, message };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == ATLAS_HEADER => {}
        Some((_, h)) => {
            return Err(at(
                1,
                format!("header `{}`: expected `{ATLAS_HEADER}` (made by scripts/convert_funatlas.py)", h.trim()),
            ));
        }
        None => return Err(at(1, format!("empty file: expected the header `{ATLAS_HEADER}`"))),
    }
    let mut strains: Vec<AtlasStrain> = Vec::new();
    for (k, line) in lines {
        let n = k + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 6 {
            return Err(at(n, format!("{} fields, expected 6 ({ATLAS_HEADER})", f.len())));
        }
        for (col, name) in [(0, "strain"), (1, "stimulated"), (2, "responder")] {
            if f[col].is_empty() {
                return Err(at(n, format!("column `{name}` is empty")));
            }
        }
        let dff: f64 = f[3].parse().map_err(|_| at(n, format!("column `dff`: `{}` is not a number", f[3])))?;
        if !dff.is_finite() {
            return Err(at(n, format!("column `dff`: {dff} (unmeasured pairs must be left out, not NaN)")));
        }
        let q: f64 = f[4].parse().map_err(|_| at(n, format!("column `q`: `{}` is not a number", f[4])))?;
        if !(q.is_nan() || (0.0..=1.0).contains(&q)) {
            return Err(at(n, format!("column `q`: {q} is not a q-value in [0, 1] (or nan)")));
        }
        let n_obs: u32 =
            f[5].parse().map_err(|_| at(n, format!("column `n_obs`: `{}` is not a non-negative integer", f[5])))?;
        let pair = AtlasPair { stimulated: f[1].to_string(), responder: f[2].to_string(), dff, q, n_obs };
        match strains.iter_mut().find(|s| s.name == f[0]) {
            Some(s) => s.pairs.push(pair),
            None => strains.push(AtlasStrain { name: f[0].to_string(), pairs: vec![pair] }),
        }
    }
    if strains.is_empty() {
        return Err(ScenarioError::File { path: path.into(), message: "no pairs after the header".into() });
    }
    Ok(PropagationAtlas { path: path.into(), strains })
}
