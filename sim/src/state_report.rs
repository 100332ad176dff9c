//! The state report written as the run goes (`state.h5`, a SONATA-like report layout; Dai et al. 2020, PLoS
//! Comput Biol 16:e1007696): per probed variable `/report/<variable>/data` (f64, samples × neurons),
//! `/report/<variable>/mapping/node_ids` (u64, neuron indices) and `/report/<variable>/mapping/time` (f64
//! `[start, stop, step]`, ms).
//!
//! Samples are buffered per probe (about [`BATCH_BYTES`]) and appended as rows of an extendable, chunked
//! dataset, so memory stays flat for any run length. The file is written under a temporary name beside its
//! final path and published by [`StateReportWriter::finish`] (fsync, rename); a writer dropped unfinished removes
//! it. This is the one state-report writer: [`crate::output::write_state_report`] writes a finished recording
//! through it, so a streamed and an in-memory report hold the same datasets, values and attributes.

use std::path::{Path, PathBuf};

use crate::error::SimError;

/// Sample values buffered per probe before they are appended (bytes; at least one sample).
pub const BATCH_BYTES: usize = 1 << 20;

fn out_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Output { path: path.to_path_buf(), message: e.to_string() }
}

/// One probed variable: which neurons, and the name of its group.
#[derive(Clone, Debug, PartialEq)]
pub struct StateProbeSpec {
    pub var: String,
    pub neurons: Vec<u32>,
}

/// One probe's dataset, its unwritten samples and its clock.
struct ProbeStream {
    group: hdf5::Group,
    data: hdf5::Dataset,
    width: usize,
    /// Samples written and buffered, and the rows per batch.
    rows: usize,
    batch_rows: usize,
    buffer: Vec<f64>,
    first_ms: Option<f64>,
    second_ms: Option<f64>,
    last_ms: f64,
}

/// A state report being written; see the module documentation.
pub struct StateReportWriter {
    path: PathBuf,
    tmp: PathBuf,
    /// `None` once finished.
    file: Option<hdf5::File>,
    probes: Vec<ProbeStream>,
    dt_ms: f64,
}

impl StateReportWriter {
    /// Starts the report `path` with one group per probe, for steps of `dt_ms` (the time step of a report with a
    /// single sample).
    pub fn create(path: &Path, probes: &[StateProbeSpec], dt_ms: f64) -> Result<Self, SimError> {
        let tmp = neurotwin_io::atomic::temp_beside(path).map_err(|e| out_err(path, e))?;
        let mut w = Self { path: path.to_path_buf(), tmp, file: None, probes: Vec::new(), dt_ms };
        let e = |x: hdf5::Error| out_err(path, x);
        let f = hdf5::File::create(&w.tmp).map_err(e)?;
        let report = f.create_group("report").map_err(e)?;
        for p in probes {
            let group = report.create_group(&p.var).map_err(e)?;
            let width = p.neurons.len();
            let batch_rows = (BATCH_BYTES / 8 / width.max(1)).max(1);
            let data = if width == 0 {
                group.new_dataset::<f64>().shape([0, 0]).create("data").map_err(e)?
            } else {
                group.new_dataset::<f64>().chunk([batch_rows, width]).shape((0.., width)).create("data").map_err(e)?
            };
            let m = group.create_group("mapping").map_err(e)?;
            let ids: Vec<u64> = p.neurons.iter().map(|&i| i as u64).collect();
            m.new_dataset_builder().with_data(&ids).create("node_ids").map_err(e)?;
            w.probes.push(ProbeStream {
                group,
                data,
                width,
                rows: 0,
                batch_rows,
                buffer: Vec::new(),
                first_ms: None,
                second_ms: None,
                last_ms: 0.0,
            });
        }
        w.file = Some(f);
        Ok(w)
    }

    /// Appends one sample of probe `probe` taken at `time_ms` (`values`: one per probed neuron, in order).
    pub fn push(&mut self, probe: usize, time_ms: f64, values: &[f64]) -> Result<(), SimError> {
        let path = &self.path;
        let p = self
            .probes
            .get_mut(probe)
            .ok_or_else(|| out_err(path, format!("state sample of probe #{probe}, but the report has fewer")))?;
        if values.len() != p.width {
            return Err(out_err(path, format!("{} values for a probe of {} neurons", values.len(), p.width)));
        }
        match (p.first_ms, p.second_ms) {
            (None, _) => p.first_ms = Some(time_ms),
            (Some(_), None) => p.second_ms = Some(time_ms),
            _ => {}
        }
        p.last_ms = time_ms;
        p.buffer.extend_from_slice(values);
        if p.buffer.len() >= p.batch_rows * p.width.max(1) {
            flush(path, p)?;
        }
        Ok(())
    }

    /// Writes what is buffered and each probe's time mapping, closes the file and publishes it at its path
    /// (fsync, atomic rename).
    pub fn finish(mut self) -> Result<(), SimError> {
        let e = |x: hdf5::Error| out_err(&self.path, x);
        for p in &mut self.probes {
            flush(&self.path, p)?;
            let step = match (p.first_ms, p.second_ms) {
                (Some(a), Some(b)) => b - a,
                _ => self.dt_ms,
            };
            let start = p.first_ms.unwrap_or(0.0);
            let stop = if p.first_ms.is_some() { p.last_ms } else { 0.0 } + step;
            let time = [start, stop, step];
            let m = p.group.group("mapping").map_err(e)?;
            m.new_dataset_builder().with_data(&time).create("time").map_err(e)?;
        }
        self.probes.clear();
        if let Some(f) = self.file.take() {
            f.close().map_err(|x| out_err(&self.path, x))?;
        }
        neurotwin_io::atomic::publish(&self.tmp, &self.path).map_err(|x| out_err(&self.path, x))
    }
}

impl Drop for StateReportWriter {
    /// An unfinished report is removed (a failed or interrupted run leaves nothing half-written).
    fn drop(&mut self) {
        if self.file.is_some() {
            self.probes.clear();
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
            neurotwin_io::signals::deregister(&self.tmp);
        }
    }
}

/// Appends a probe's buffered samples as rows of its dataset.
fn flush(path: &Path, p: &mut ProbeStream) -> Result<(), SimError> {
    if p.width == 0 || p.buffer.is_empty() {
        return Ok(());
    }
    let e = |x: hdf5::Error| out_err(path, x);
    let new_rows = p.buffer.len() / p.width;
    let (a, b) = (p.rows, p.rows + new_rows);
    p.data.resize([b, p.width]).map_err(e)?;
    let block = ndarray::ArrayView2::from_shape((new_rows, p.width), &p.buffer).map_err(|x| out_err(path, x))?;
    p.data.write_slice(block, (a..b, ..)).map_err(e)?;
    p.rows = b;
    p.buffer.clear();
    Ok(())
}
