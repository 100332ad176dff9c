//! Reading a run's outputs back: the SONATA spike file (`spikes.h5`) and the node table (`nodes.csv`),
//! e.g. to compare a finished run with a calcium recording. Errors name the file, the dataset or line and
//! what is wrong.

use std::path::{Path, PathBuf};

use neurotwin_io::h5::H5File;

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
    let h = H5File::open(&spikes).map_err(|e| e.hint("is it a SONATA spike file written by neurotwin run?"))?;
    let pops = h.members(&spikes_group(&h)?)?;
    let [population] = pops.as_slice() else {
        return Err(bad(&spikes, format!("/spikes holds {} populations ({pops:?}); expected one", pops.len())));
    };
    let (ids, t) = read_spike_datasets(&h, &format!("/spikes/{population}"))?;
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
    let h = H5File::open(path).map_err(|e| bad(path, format!("cannot open spike file: {}", e.message)))?;
    spikes_group(&h)?;
    let pop = format!("/spikes/{population}");
    if h.exists(&pop) && h.group(&pop).is_ok() {
        read_spike_datasets(&h, &pop)
    } else {
        read_spike_datasets(&h, "/spikes")
    }
}

/// The group `/spikes` every SONATA spike file has.
fn spikes_group(h: &H5File) -> Result<hdf5::Group, SimError> {
    if !h.exists("/spikes") {
        return Err(bad(h.path(), "no group /spikes: not a SONATA spike file"));
    }
    Ok(h.group("/spikes")?)
}

/// `timestamps` (ms, or s with `units = "s"`) and `node_ids` (or `gids`) of the spike group `what`, equally long.
fn read_spike_datasets(h: &H5File, what: &str) -> Result<(Vec<u64>, Vec<f64>), SimError> {
    let path = h.path();
    let times = format!("{what}/timestamps");
    if !h.exists(&times) {
        return Err(bad(path, format!("{times} is missing")));
    }
    let times = h.dataset(&times)?;
    let scale = match h.attr_string_opt(&times, "units").ok().flatten() {
        Some(u) if u == "s" => 1000.0,
        _ => 1.0,
    };
    let t: Vec<f64> = h.read_vec(&times)?;
    let Some(ids) = ["node_ids", "gids"].map(|n| format!("{what}/{n}")).into_iter().find(|p| h.exists(p)) else {
        return Err(bad(path, format!("{what}/node_ids (or gids) is missing")));
    };
    let ids: Vec<u64> = h.read_vec(&ids)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A spike file whose `timestamps` declare 2^40 values (chunked, never written: a few KiB on disk) made
    /// the reader allocate 8 TiB and abort; the declared size is refused first, naming the file and dataset.
    #[test]
    fn a_spike_file_declaring_2_pow_40_timestamps_is_refused_before_allocating() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("spikes.h5");
        {
            let f = hdf5::File::create(&p).unwrap();
            let g = f.create_group("spikes/lgn").unwrap();
            g.new_dataset::<f64>().chunk(1 << 16).shape(1usize << 40).create("timestamps").unwrap();
            g.new_dataset::<u64>().chunk(1 << 16).shape(1usize << 40).create("node_ids").unwrap();
        }
        let e = read_sonata_spikes(&p, "lgn").unwrap_err().to_string();
        assert!(e.contains("spikes.h5") && e.contains("/spikes/lgn/timestamps declares 1099511627776"), "{e}");
        let e = read_sonata_spikes(&t.path().join("absent.h5"), "lgn").unwrap_err().to_string();
        assert!(e.contains("cannot open spike file: file not found"), "{e}");
    }
}
