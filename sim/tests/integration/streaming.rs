//! Spikes streamed while the run goes (`run_streaming` into a `SpikeReportWriter`): the same spikes, counts,
//! rates and window counts as a run that keeps them in memory; the streamed report holds exactly the spikes of
//! the in-memory one (several flushes, several populations); a failed or dropped report leaves no file.

use super::suite::*;

use neurotwin_sim::output::{ReportPopulation, write_sonata_spikes_populations};
use neurotwin_sim::readback::read_sonata_spikes;
use neurotwin_sim::spike_report::{BATCH, SpikeReportWriter};
use neurotwin_sim::*;

/// Collects what a sink receives.
#[derive(Default)]
struct Collect {
    steps: Vec<u64>,
    neurons: Vec<u32>,
    fail_after: Option<usize>,
}

impl SpikeSink for Collect {
    fn push(&mut self, step: u64, neurons: &[u32]) -> Result<(), SimError> {
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
