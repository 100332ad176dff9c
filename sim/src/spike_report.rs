//! The SONATA spike report written as the run goes (`spikes.h5`; Dai et al. 2020, PLoS Comput Biol 16:e1007696):
//! `/spikes/<population>/timestamps` (f64, ms, attribute `units = "ms"`), `/spikes/<population>/node_ids` (u64,
//! node index in the population), attribute `sorting` = `by_time`.
//!
//! Spikes are appended in the order the engine hands them over (step by step, neurons ascending within a step),
//! buffered [`BATCH`] per population and written into extendable, chunked datasets, so memory stays flat for any
//! run length. The file is written under a temporary name beside its final path and published by
//! [`SpikeReportWriter::finish`] (fsync, rename); a writer dropped unfinished removes it, so a failed run leaves
//! no half-written report. This is the one spike-report writer: [`crate::output::write_sonata_spikes`] writes a
//! finished recording through it, so both give the same datasets, values and attributes.

use std::path::{Path, PathBuf};

use hdf5::H5Type;

use crate::error::SimError;
use crate::output::ReportPopulation;

/// Spikes buffered per population before they are appended to the file (12 bytes each: 1.5 MiB).
pub const BATCH: usize = 1 << 17;
/// Entries per HDF5 chunk of the extendable datasets (512 KiB of f64).
const CHUNK: usize = 1 << 16;

#[derive(H5Type, Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
#[allow(non_camel_case_types, dead_code)]
enum Sorting {
    none = 0,
    by_time = 2,
    by_id = 1,
}

fn out_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Output { path: path.to_path_buf(), message: e.to_string() }
}

/// One population's datasets and its unwritten spikes.
struct PopulationStream {
    first: u32,
    end: u32,
    timestamps: hdf5::Dataset,
    node_ids: hdf5::Dataset,
    written: usize,
    times: Vec<f64>,
    ids: Vec<u64>,
}

/// A spike report being written; see the module documentation.
pub struct SpikeReportWriter {
    path: PathBuf,
    tmp: PathBuf,
    /// `None` once finished.
    file: Option<hdf5::File>,
    populations: Vec<PopulationStream>,
    dt_ms: f64,
    spikes: u64,
}

impl SpikeReportWriter {
    /// Starts the report `path` with one group per population (node ids relative to the population; spikes of
    /// neurons outside every population are not written) for steps of `dt_ms` (a spike of step `s` is stamped
    /// `(s + 1) · dt`, NEST's convention).
    pub fn create(path: &Path, populations: &[ReportPopulation], dt_ms: f64) -> Result<Self, SimError> {
        let tmp = neurotwin_io::atomic::temp_beside(path).map_err(|e| out_err(path, e))?;
        let mut w = Self { path: path.to_path_buf(), tmp, file: None, populations: Vec::new(), dt_ms, spikes: 0 };
        let e = |x: hdf5::Error| out_err(path, x);
        let f = hdf5::File::create(&w.tmp).map_err(e)?;
        let spikes = f.create_group("spikes").map_err(e)?;
        for p in populations {
            let g = spikes.create_group(&p.name).map_err(e)?;
            g.new_attr::<Sorting>().create("sorting").map_err(e)?.write_scalar(&Sorting::by_time).map_err(e)?;
            let timestamps = g.new_dataset::<f64>().chunk(CHUNK).shape(0..).create("timestamps").map_err(e)?;
            let units: hdf5::types::VarLenUnicode = "ms".parse().map_err(|x| out_err(path, format!("{x:?}")))?;
            timestamps
                .new_attr::<hdf5::types::VarLenUnicode>()
                .create("units")
                .map_err(e)?
                .write_scalar(&units)
                .map_err(e)?;
            let node_ids = g.new_dataset::<u64>().chunk(CHUNK).shape(0..).create("node_ids").map_err(e)?;
            w.populations.push(PopulationStream {
                first: p.first,
                end: p.first + p.count,
                timestamps,
                node_ids,
                written: 0,
                times: Vec::with_capacity(BATCH.min(1 << 12)),
                ids: Vec::with_capacity(BATCH.min(1 << 12)),
            });
        }
        w.file = Some(f);
        Ok(w)
    }

    /// Appends the spikes of step `step` (neurons ascending).
    pub fn push(&mut self, step: u64, neurons: &[u32]) -> Result<(), SimError> {
        let t = (step + 1) as f64 * self.dt_ms;
        for &i in neurons {
            // Populations are few and ordered: a linear search is cheap.
            if let Some(p) = self.populations.iter_mut().find(|p| (p.first..p.end).contains(&i)) {
                p.times.push(t);
                p.ids.push((i - p.first) as u64);
                self.spikes += 1;
                if p.times.len() >= BATCH {
                    flush(&self.path, p)?;
                }
            }
        }
        Ok(())
    }

    /// Spikes written so far.
    pub fn spikes(&self) -> u64 {
        self.spikes
    }

    /// Writes what is buffered, closes the file and publishes it at its path (fsync, atomic rename).
    pub fn finish(mut self) -> Result<(), SimError> {
        for p in &mut self.populations {
            flush(&self.path, p)?;
        }
        self.populations.clear();
        if let Some(f) = self.file.take() {
            f.close().map_err(|e| out_err(&self.path, e))?;
        }
        neurotwin_io::atomic::publish(&self.tmp, &self.path).map_err(|e| out_err(&self.path, e))
    }
}

impl Drop for SpikeReportWriter {
    /// An unfinished report is removed (a failed or interrupted run leaves nothing half-written).
    fn drop(&mut self) {
        if self.file.is_some() {
            self.populations.clear();
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
            neurotwin_io::signals::deregister(&self.tmp);
        }
    }
}

/// Appends a population's buffered spikes to its datasets.
fn flush(path: &Path, p: &mut PopulationStream) -> Result<(), SimError> {
    if p.times.is_empty() {
        return Ok(());
    }
    let e = |x: hdf5::Error| out_err(path, x);
    let (a, b) = (p.written, p.written + p.times.len());
    p.timestamps.resize(b).map_err(e)?;
    p.timestamps.write_slice(&p.times, a..b).map_err(e)?;
    p.node_ids.resize(b).map_err(e)?;
    p.node_ids.write_slice(&p.ids, a..b).map_err(e)?;
    p.written = b;
    p.times.clear();
    p.ids.clear();
    Ok(())
}
