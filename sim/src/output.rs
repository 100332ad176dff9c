//! Run outputs: spikes in the SONATA spike-report layout (HDF5), sampled state in a SONATA-like report
//! layout, and a JSON summary. Every file is written to a temporary file in the output directory and
//! renamed into place, so a failed run never leaves a half-written output.
//!
//! `spikes.h5` (SONATA, Dai et al. 2020, PLoS Comput Biol 16:e1007696): see [`crate::spike_report`], the
//! streaming writer every spike report goes through.
//!
//! `state.h5`: see [`crate::state_report`], the streaming writer every state report goes through.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::SimError;
use crate::record::SimRecording;
use crate::state_report::{StateProbeSpec, StateReportWriter};

fn out_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Output { path: path.to_path_buf(), message: e.to_string() }
}

/// Writes `path` atomically (see `neurotwin_io::atomic::write_file`): `write` receives a temporary path in
/// the same directory (0666 − umask), which is fsynced and renamed to `path` only if `write` succeeds.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<(), SimError>) -> Result<(), SimError> {
    neurotwin_io::atomic::write_file(path, write)
}

/// Writes the spikes of `rec` as a SONATA spike file for one population (node ids = neuron indices), through the
/// streaming writer ([`crate::spike_report`]).
pub fn write_sonata_spikes(path: &Path, population: &str, rec: &SimRecording) -> Result<(), SimError> {
    let all = ReportPopulation { name: population.to_string(), first: 0, count: rec.spike_counts.len() as u32 };
    write_sonata_spikes_populations(path, &[all], rec)
}

/// A population of a multi-population spike report: neurons `first .. first + count` are its nodes
/// `0 .. count`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportPopulation {
    pub name: String,
    pub first: u32,
    pub count: u32,
}

/// Writes the spikes of `rec` as a SONATA spike file with one group per population (node ids relative to the
/// population, sorted by time as recorded); spikes of neurons outside every population are not written.
pub fn write_sonata_spikes_populations(
    path: &Path,
    populations: &[ReportPopulation],
    rec: &SimRecording,
) -> Result<(), SimError> {
    let mut w = crate::spike_report::SpikeReportWriter::create(path, populations, rec.dt_ms)?;
    for (step, neurons) in rec.spikes_by_step() {
        w.push(step, neurons)?;
    }
    w.finish()
}

/// Writes sampled state variables (nothing is written when none were recorded), through the streaming writer
/// ([`crate::state_report`]).
pub fn write_state_report(path: &Path, rec: &SimRecording) -> Result<(), SimError> {
    if rec.state.is_empty() {
        return Ok(());
    }
    let probes: Vec<StateProbeSpec> =
        rec.state.iter().map(|t| StateProbeSpec { var: t.var.clone(), neurons: t.neurons.clone() }).collect();
    let mut w = StateReportWriter::create(path, &probes, rec.dt_ms)?;
    for (k, t) in rec.state.iter().enumerate() {
        let n = t.neurons.len();
        for (s, &time) in t.times_ms.iter().enumerate() {
            let values = if n == 0 { &[][..] } else { t.values.get(s * n..(s + 1) * n).unwrap_or(&[]) };
            w.push(k, time, values)?;
        }
    }
    w.finish()
}

/// Writes the plastic synapses' weight snapshots (`weights.h5`): `/weights/data` (snapshots × synapses, model's
/// synaptic unit) and `/weights/times_ms`; per synapse `/synapses/pre_node_id`, `post_node_id` (neuron indices, as
/// in `spikes.h5`), `receptor` (index into the `receptors` attribute), `delay_ms` and `projection` (index into the
/// `projections` attribute).
pub fn write_weight_report(
    path: &Path,
    w: &crate::record::WeightRecording,
    receptors: &[String],
    dt_ms: f64,
) -> Result<(), SimError> {
    write_atomically(path, |tmp| {
        let e = |x: hdf5::Error| out_err(path, x);
        let f = hdf5::File::create(tmp).map_err(e)?;
        let g = f.create_group("weights").map_err(e)?;
        let rows = w.times_ms.len();
        let data = g.new_dataset::<f64>().shape([rows, w.len()]).create("data").map_err(e)?;
        data.write_raw(&w.values[..rows * w.len()]).map_err(e)?;
        g.new_dataset_builder().with_data(&w.times_ms).create("times_ms").map_err(e)?;
        let s = f.create_group("synapses").map_err(e)?;
        let ids = |v: &[u32]| v.iter().map(|&i| i as u64).collect::<Vec<u64>>();
        s.new_dataset_builder().with_data(&ids(&w.pre)).create("pre_node_id").map_err(e)?;
        s.new_dataset_builder().with_data(&ids(&w.post)).create("post_node_id").map_err(e)?;
        s.new_dataset_builder().with_data(&w.channel).create("receptor").map_err(e)?;
        s.new_dataset_builder().with_data(&w.projection).create("projection").map_err(e)?;
        let delay: Vec<f64> = w.delay_steps.iter().map(|&d| d as f64 * dt_ms).collect();
        s.new_dataset_builder().with_data(&delay).create("delay_ms").map_err(e)?;
        let names = |v: &[String]| -> Result<Vec<hdf5::types::VarLenUnicode>, SimError> {
            v.iter()
                .map(|x| x.parse().map_err(|_| SimError::Setup(format!("name `{x}` is not valid UTF-8 text"))))
                .collect()
        };
        s.new_attr_builder().with_data(&names(receptors)?).create("receptors").map_err(e)?;
        s.new_attr_builder().with_data(&names(&w.projection_names)?).create("projections").map_err(e)?;
        Ok(())
    })
}

/// Writes the node table of a run (`nodes.csv`: `node_id,name`, one row per neuron in index order), so that
/// a run's `spikes.h5` can be read back with neuron names (`neurotwin compare --sim`).
pub fn write_node_table<'a>(path: &Path, names: impl IntoIterator<Item = &'a str>) -> Result<(), SimError> {
    let mut text = String::from("node_id,name\n");
    for (i, n) in names.into_iter().enumerate() {
        text.push_str(&format!("{i},{n}\n"));
    }
    write_atomically(path, |tmp| std::fs::write(tmp, text.as_bytes()).map_err(|e| out_err(path, e)))
}

/// Writes any serialisable summary as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SimError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| out_err(path, e))?;
    write_atomically(path, |tmp| std::fs::write(tmp, text.as_bytes()).map_err(|e| out_err(path, e)))
}

/// `dir/name`.
pub fn out_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
