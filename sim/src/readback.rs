//! Reading a run's outputs back: the SONATA spike file (`spikes.h5`) and the node table (`nodes.csv`),
//! e.g. to compare a finished run with a calcium recording. Errors name the file, the dataset or line and
//! what is wrong.

use std::path::{Path, PathBuf};

use crate::error::SimError;

/// The spikes of one SONATA population with the names of its nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpikes {
    /// Population name (the scenario name for neurotwin runs).
    pub population: String,
    /// Neuron names by node id (from `nodes.csv`).
    pub names: Vec<String>,
    /// Spike times of each node (ms), ascending.
    pub times_ms: Vec<Vec<f64>>,
}

fn bad(path: &Path, message: impl Into<String>) -> SimError {
    SimError::Input { path: path.to_path_buf(), message: message.into() }
}

/// Reads `dir/spikes.h5` (the only population in `/spikes`) and `dir/nodes.csv`.
pub fn read_run_spikes(dir: &Path) -> Result<RunSpikes, SimError> {
    let nodes = dir.join("nodes.csv");
    let names = read_node_table(&nodes)?;
    let spikes: PathBuf = dir.join("spikes.h5");
    let e = |x: hdf5::Error| bad(&spikes, format!("{x} (is it a SONATA spike file written by neurotwin run?)"));
    let f = hdf5::File::open(&spikes).map_err(e)?;
    let g = f.group("spikes").map_err(|_| bad(&spikes, "no group /spikes: not a SONATA spike file"))?;
    let pops = g.member_names().map_err(e)?;
    let [population] = pops.as_slice() else {
        return Err(bad(&spikes, format!("/spikes holds {} populations ({pops:?}); expected one", pops.len())));
    };
    let (ids, t) = read_spike_datasets(&spikes, &g.group(population).map_err(e)?, &format!("/spikes/{population}"))?;
    let mut times_ms = vec![Vec::new(); names.len()];
    for (&time, &id) in t.iter().zip(&ids) {
        if !time.is_finite() || time < 0.0 {
            return Err(bad(&spikes, format!("timestamp {time} ms is not a finite time >= 0")));
        }
        let row = times_ms.get_mut(id as usize).ok_or_else(|| {
            bad(&spikes, format!("node id {id} beyond the {} nodes of {}", names.len(), nodes.display()))
        })?;
        row.push(time);
    }
    times_ms.iter_mut().for_each(|v| v.sort_by(f64::total_cmp));
    Ok(RunSpikes { population: population.clone(), names, times_ms })
}

/// The spikes of population `population` of a SONATA spike file as (node id, time in ms): the group
/// `/spikes/<population>` (SONATA 1.0) or, without it, the older single-population layout `/spikes/{timestamps,
/// gids}`; timestamps with `units = "s"` are converted to ms.
pub fn read_sonata_spikes(path: &Path, population: &str) -> Result<(Vec<u64>, Vec<f64>), SimError> {
    let e = |x: hdf5::Error| bad(path, format!("cannot open spike file: {x}"));
    let f = hdf5::File::open(path).map_err(e)?;
    let g = f.group("spikes").map_err(|_| bad(path, "no group /spikes: not a SONATA spike file"))?;
    match g.group(population) {
        Ok(p) => read_spike_datasets(path, &p, &format!("/spikes/{population}")),
        Err(_) => read_spike_datasets(path, &g, "/spikes"),
    }
}

/// `timestamps` (ms, or s with `units = "s"`) and `node_ids` (or `gids`) of one spike group, equally long.
fn read_spike_datasets(path: &Path, g: &hdf5::Group, what: &str) -> Result<(Vec<u64>, Vec<f64>), SimError> {
    let times = g.dataset("timestamps").map_err(|_| bad(path, format!("{what}/timestamps is missing")))?;
    let scale = match times.attr("units").ok().and_then(|a| a.read_scalar::<hdf5::types::VarLenUnicode>().ok()) {
        Some(u) if u.as_str() == "s" => 1000.0,
        _ => 1.0,
    };
    let t: Vec<f64> =
        times.read_raw().map_err(|_| bad(path, format!("{what}/timestamps is missing or not numeric")))?;
    let ids: Vec<u64> = g
        .dataset("node_ids")
        .or_else(|_| g.dataset("gids"))
        .and_then(|d| d.read_raw())
        .map_err(|_| bad(path, format!("{what}/node_ids (or gids) is missing or not integer")))?;
    if t.len() != ids.len() {
        return Err(bad(path, format!("{what}: {} timestamps but {} node_ids", t.len(), ids.len())));
    }
    Ok((ids, t.into_iter().map(|x| x * scale).collect()))
}

/// Reads a node table (`node_id,name`, ids 0, 1, 2, … in order).
pub fn read_node_table(path: &Path) -> Result<Vec<String>, SimError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(path, format!("{e} (runs write nodes.csv next to spikes.h5)")))?;
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("node_id,name") {
        return Err(bad(path, "line 1: expected the header `node_id,name`"));
    }
    let mut names = Vec::new();
    for (k, line) in lines.enumerate() {
        let (id, name) =
            line.split_once(',').ok_or_else(|| bad(path, format!("line {}: expected `node_id,name`", k + 2)))?;
        if id.trim().parse::<usize>().ok() != Some(names.len()) {
            return Err(bad(path, format!("line {}: node id `{id}`, expected {}", k + 2, names.len())));
        }
        names.push(name.trim().to_string());
    }
    Ok(names)
}
