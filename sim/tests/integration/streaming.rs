//! Spikes streamed while the run goes (`run_streaming` into a `SpikeReportWriter`): the same spikes, counts,
//! rates and window counts as a run that keeps them in memory; the streamed report holds exactly the spikes of
//! the in-memory one (several flushes, several populations); a failed or dropped report leaves no file.

use super::suite::*;

use neurotwin_sim::output::write_state_report;
use neurotwin_sim::output::{ReportPopulation, write_sonata_spikes_populations};
use neurotwin_sim::readback::read_sonata_spikes;
use neurotwin_sim::spike_report::{BATCH, SpikeReportWriter};
use neurotwin_sim::state_report::{StateProbeSpec, StateReportWriter};
use neurotwin_sim::*;

/// Collects what a sink receives.
#[derive(Default)]
struct Collect {
    steps: Vec<u64>,
    neurons: Vec<u32>,
    fail_after: Option<usize>,
}

impl RunSink for Collect {
    fn push_spikes(&mut self, step: u64, neurons: &[u32]) -> Result<(), SimError> {
        if self.fail_after.is_some_and(|k| self.steps.len() >= k) {
            return Err(SimError::Output { path: "sink".into(), message: "disk full".into() });
        }
        assert!(neurons.windows(2).all(|w| w[0] < w[1]), "neurons ascend within a step");
        assert!(self.steps.last().is_none_or(|&s| s < step), "steps arrive in order, once");
        self.steps.extend(std::iter::repeat_n(step, neurons.len()));
        self.neurons.extend_from_slice(neurons);
        Ok(())
    }
}

fn spec(setup: &SimSetup, keep: SpikeSelection) -> RecordSpec {
    let n = setup.n_neurons() as u32;
    RecordSpec {
        spikes: keep,
        rate_groups: vec![RateGroup { name: "all".into(), neurons: (0..n).collect() }],
        rate_bin_steps: 50,
        count_windows: vec![100..900, 0..setup.steps],
        ..Default::default()
    }
}

#[test]
fn streaming_gives_the_sink_exactly_the_spikes_a_recording_keeps() {
    let setup = brunel_setup();
    let p = PerturbationSchedule::default();
    for keep in [SpikeSelection::All, SpikeSelection::Neurons((0..1000).step_by(7).collect())] {
        let spec = spec(&setup, keep);
        let mut a = CpuBackend::new(&setup).unwrap();
        let kept = run(&setup, &p, &spec, &mut a, &Default::default()).unwrap();
        let mut b = CpuBackend::new(&setup).unwrap();
        let mut sink = Collect::default();
        let streamed = run_streaming(&setup, &p, &spec, &mut b, &Default::default(), &mut sink).unwrap();
        assert!(kept.spike_steps.len() > 1000);
        assert_eq!((sink.steps, sink.neurons), (kept.spike_steps.clone(), kept.spike_neurons.clone()));
        assert!(streamed.spike_steps.is_empty() && streamed.spike_neurons.is_empty(), "streamed: none kept");
        assert_eq!(streamed.spike_counts, kept.spike_counts);
        assert_eq!(streamed.rates, kept.rates);
        assert_eq!(streamed.window_counts, kept.window_counts);
        // The window counts are every neuron's spikes in the window, whichever are kept (the whole run: the totals).
        assert_eq!(kept.window_counts[1], kept.spike_counts);
        let in_window = kept.spike_steps.iter().filter(|s| (100..900).contains(*s)).count() as u64;
        if matches!(spec.spikes, SpikeSelection::All) {
            assert_eq!(kept.window_counts[0].iter().sum::<u64>(), in_window);
        }
    }
}

#[test]
fn a_failing_sink_stops_the_run_with_its_error() {
    let setup = brunel_setup();
    let mut b = CpuBackend::new(&setup).unwrap();
    let mut sink = Collect { fail_after: Some(10), ..Default::default() };
    let spec = spec(&setup, SpikeSelection::All);
    let err = run_streaming(&setup, &Default::default(), &spec, &mut b, &Default::default(), &mut sink).unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
}

/// A recording with more spikes than one batch in several populations: the streamed file and the one written
/// from memory hold the same values; the streamed one is published only by `finish`.
#[test]
fn the_streamed_report_equals_the_report_of_a_recording() {
    let steps = 8000u64;
    let (mut spike_steps, mut spike_neurons) = (Vec::new(), Vec::new());
    for s in 0..steps {
        for i in (0..600u32).filter(|i| (i * 7 + s as u32 * 13).is_multiple_of(11)) {
            spike_steps.push(s);
            spike_neurons.push(i);
        }
    }
    let in_a = spike_neurons.iter().filter(|&&i| i < 400).count();
    assert!(in_a > 2 * BATCH, "{in_a} spikes in population a: several batches");
    let rec = SimRecording {
        dt_ms: 0.1,
        steps,
        spike_steps,
        spike_neurons,
        spike_counts: vec![0; 600],
        ..Default::default()
    };
    let pops = [
        ReportPopulation { name: "a".into(), first: 0, count: 400 },
        ReportPopulation { name: "b".into(), first: 420, count: 180 },
    ];
    let dir = tempfile::tempdir().unwrap();
    let memory = dir.path().join("memory.h5");
    write_sonata_spikes_populations(&memory, &pops, &rec).unwrap();
    let streamed = dir.path().join("streamed.h5");
    let mut w = SpikeReportWriter::create(&streamed, &pops, 0.1).unwrap();
    for (step, neurons) in rec.spikes_by_step() {
        w.push(step, neurons).unwrap();
    }
    assert!(!streamed.exists(), "not published before finish");
    w.finish().unwrap();
    for p in &pops {
        let (ids, t) = read_sonata_spikes(&streamed, &p.name).unwrap();
        assert_eq!((ids.clone(), t.clone()), read_sonata_spikes(&memory, &p.name).unwrap());
        // Independent truth: the recording's spikes of the population, relative ids, stamped (s + 1) dt.
        let want: Vec<(u64, f64)> = rec
            .spike_steps
            .iter()
            .zip(&rec.spike_neurons)
            .filter(|(_, i)| (p.first..p.first + p.count).contains(i))
            .map(|(&s, &i)| ((i - p.first) as u64, (s + 1) as f64 * 0.1))
            .collect();
        assert_eq!(ids.len(), want.len());
        assert!(ids.iter().zip(&t).zip(&want).all(|((&i, &x), &(j, y))| i == j && x == y), "population {}", p.name);
    }
    // Dropped unfinished: nothing is left in the folder but the two finished reports.
    let dropped = dir.path().join("dropped.h5");
    let mut w = SpikeReportWriter::create(&dropped, &pops, 0.1).unwrap();
    w.push(1, &[1, 2, 3]).unwrap();
    drop(w);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// Collects spikes and writes the state samples into a state report as they come.
struct StateToFile {
    spikes: Collect,
    state: Option<StateReportWriter>,
}

impl RunSink for StateToFile {
    fn push_spikes(&mut self, step: u64, neurons: &[u32]) -> Result<(), SimError> {
        self.spikes.push_spikes(step, neurons)
    }

    fn takes_state(&self) -> bool {
        true
    }

    fn push_state(&mut self, probe: usize, time_ms: f64, values: &[f64]) -> Result<(), SimError> {
        self.state.as_mut().unwrap().push(probe, time_ms, values)
    }
}

/// Reads `/report/<var>/data`, `mapping/node_ids` and `mapping/time` of a state report.
fn read_state(path: &std::path::Path, var: &str) -> (Vec<usize>, Vec<f64>, Vec<u64>, Vec<f64>) {
    let f = hdf5::File::open(path).unwrap();
    let g = f.group(&format!("report/{var}")).unwrap();
    let data = g.dataset("data").unwrap();
    let values: Vec<f64> = data.read_raw().unwrap();
    let ids: Vec<u64> = g.dataset("mapping/node_ids").unwrap().read_raw().unwrap();
    let time: Vec<f64> = g.dataset("mapping/time").unwrap().read_raw().unwrap();
    (data.shape(), values, ids, time)
}

/// State samples streamed into `state.h5` while the run goes: the file holds exactly the samples a recording
/// keeps (V_m of 700 neurons every step: several batches; a second probe every 7 steps), the streamed recording
/// holds none, and the in-memory writer (`write_state_report`, the same writer) gives the same report.
#[test]
fn streamed_state_samples_equal_the_recorded_ones() {
    let setup = brunel_setup();
    let p = PerturbationSchedule::default();
    let mut spec = spec(&setup, SpikeSelection::All);
    let v = 0;
    spec.state = vec![
        StateProbe { var: v, var_name: "V_m".into(), neurons: (0..700).collect(), every_steps: 1 },
        StateProbe { var: v, var_name: "V_m_sparse".into(), neurons: vec![3, 999, 5], every_steps: 7 },
    ];
    let mut a = CpuBackend::new(&setup).unwrap();
    let kept = run(&setup, &p, &spec, &mut a, &Default::default()).unwrap();
    let rows = kept.state[0].times_ms.len();
    assert!(rows * 700 * 8 > 3 * neurotwin_sim::state_report::BATCH_BYTES, "{rows} samples: several batches");

    let dir = tempfile::tempdir().unwrap();
    let streamed = dir.path().join("streamed.h5");
    let probes: Vec<StateProbeSpec> =
        spec.state.iter().map(|p| StateProbeSpec { var: p.var_name.clone(), neurons: p.neurons.clone() }).collect();
    let writer = StateReportWriter::create(&streamed, &probes, setup.dt_ms()).unwrap();
    let mut sink = StateToFile { spikes: Collect::default(), state: Some(writer) };
    let mut b = CpuBackend::new(&setup).unwrap();
    let rec = run_streaming(&setup, &p, &spec, &mut b, &Default::default(), &mut sink).unwrap();
    assert!(rec.state.iter().all(|t| t.times_ms.is_empty() && t.values.is_empty()), "streamed: no samples kept");
    assert_eq!((&sink.spikes.steps, &sink.spikes.neurons), (&kept.spike_steps, &kept.spike_neurons));
    assert!(!streamed.exists(), "not published before finish");
    sink.state.take().unwrap().finish().unwrap();

    let memory = dir.path().join("memory.h5");
    write_state_report(&memory, &kept).unwrap();
    for (k, t) in kept.state.iter().enumerate() {
        let (shape, values, ids, time) = read_state(&streamed, &t.var);
        assert_eq!(shape, vec![t.times_ms.len(), t.neurons.len()], "{}", t.var);
        assert!(values.iter().zip(&t.values).all(|(x, y)| x.to_bits() == y.to_bits()), "{}: values", t.var);
        assert_eq!(values.len(), t.values.len());
        assert_eq!(ids, t.neurons.iter().map(|&i| i as u64).collect::<Vec<_>>());
        // [start, stop, step] in ms: first sample at (every) · dt, one step past the last.
        let every = spec.state[k].every_steps as f64 * setup.dt_ms();
        let last = t.times_ms.last().copied().unwrap();
        assert_eq!(time, vec![every, last + (t.times_ms[1] - t.times_ms[0]), t.times_ms[1] - t.times_ms[0]]);
        assert!((time[2] - every).abs() < 1e-12, "{}: {time:?}", t.var);
        assert_eq!(read_state(&memory, &t.var), (shape, values, ids, time), "{}: memory = streamed", t.var);
    }
    // Dropped unfinished: nothing is left but the two finished reports.
    let mut w = StateReportWriter::create(&dir.path().join("dropped.h5"), &probes, 0.1).unwrap();
    w.push(0, 0.1, &vec![1.0; 700]).unwrap();
    assert!(w.push(0, 0.2, &[1.0]).unwrap_err().to_string().contains("1 values for a probe of 700 neurons"));
    drop(w);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
