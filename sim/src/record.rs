//! Recorders: spikes, sampled state variables and population rates.

use serde::{Deserialize, Serialize};

/// Which neurons' spikes are kept (counts per neuron are always kept).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SpikeSelection {
    #[default]
    All,
    Neurons(Vec<u32>),
    None,
}

/// Sample state variable `var` of `neurons` every `every_steps` steps.
#[derive(Clone, Debug, PartialEq)]
pub struct StateProbe {
    pub var: usize,
    pub var_name: String,
    pub neurons: Vec<u32>,
    pub every_steps: u64,
}

/// A named group of neurons whose mean rate is recorded (populations, cell types).
#[derive(Clone, Debug, PartialEq)]
pub struct RateGroup {
    pub name: String,
    pub neurons: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordSpec {
    pub spikes: SpikeSelection,
    pub state: Vec<StateProbe>,
    pub rate_groups: Vec<RateGroup>,
    /// Bin width of population-rate time series (steps; 0 = no time series).
    pub rate_bin_steps: u64,
    /// Step ranges (read-out windows) in which every neuron's spikes are counted:
    /// [`SimRecording::window_counts`].
    pub count_windows: Vec<std::ops::Range<u64>>,
    /// Snapshot the plastic synapses' weights at the start, every this many steps and at the end (0: never):
    /// [`SimRecording::weights`].
    pub weights_every_steps: u64,
}

/// Snapshots of the plastic synapses' weights: synapse `k` is `pre[k] -> post[k]` on receptor channel
/// `channel[k]` in projection `projection[k]` (an index into `projection_names`); `values[t · len + k]` is its
/// weight (model's synaptic unit) at `times_ms[t]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightRecording {
    pub projection_names: Vec<String>,
    pub pre: Vec<u32>,
    pub post: Vec<u32>,
    pub channel: Vec<u8>,
    pub projection: Vec<u8>,
    pub delay_steps: Vec<u16>,
    pub times_ms: Vec<f64>,
    pub values: Vec<f64>,
}

impl WeightRecording {
    /// Number of synapses per snapshot.
    pub fn len(&self) -> usize {
        self.pre.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pre.is_empty()
    }

    /// The weights of snapshot `t`.
    pub fn snapshot(&self, t: usize) -> &[f64] {
        &self.values[t * self.len()..(t + 1) * self.len()]
    }
}

/// Samples of one probe: `values[t * neurons.len() + k]` at `times_ms[t]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateTrace {
    pub var: String,
    pub neurons: Vec<u32>,
    pub times_ms: Vec<f64>,
    pub values: Vec<f64>,
}

/// Rate time series of one group: spikes per neuron per second in each bin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateTrace {
    pub group: String,
    pub bin_ms: f64,
    pub rate_hz: Vec<f64>,
}

/// Everything a run recorded. Spike times follow NEST: a spike detected in step `s` is stamped at the
/// end of the step, `(s + 1) · dt`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimRecording {
    pub dt_ms: f64,
    pub steps: u64,
    pub spike_steps: Vec<u64>,
    pub spike_neurons: Vec<u32>,
    /// Spikes per neuron over the whole run (all neurons).
    pub spike_counts: Vec<u64>,
    /// Spikes per neuron (all neurons, whichever spikes are kept) in each of [`RecordSpec::count_windows`].
    pub window_counts: Vec<Vec<u64>>,
    pub state: Vec<StateTrace>,
    pub rates: Vec<RateTrace>,
    /// Seconds per phase of the step loop, when the run was profiled (`RunOptions::profile`).
    pub phases: Option<crate::profile::PhaseTimes>,
    /// Weight snapshots of the plastic synapses (when [`RecordSpec::weights_every_steps`] > 0 and the run has any).
    pub weights: Option<WeightRecording>,
}

impl SimRecording {
    pub fn duration_ms(&self) -> f64 {
        self.steps as f64 * self.dt_ms
    }

    /// Spike times (ms) of the kept spikes.
    pub fn spike_times_ms(&self) -> Vec<f64> {
        self.spike_steps.iter().map(|&s| (s + 1) as f64 * self.dt_ms).collect()
    }

    /// The kept spikes as one train per neuron (ms, ascending; one entry per neuron, empty where none was kept).
    pub fn spike_times_by_neuron(&self) -> Vec<Vec<f64>> {
        let mut times = vec![Vec::new(); self.spike_counts.len()];
        for (&s, &i) in self.spike_steps.iter().zip(&self.spike_neurons) {
            times[i as usize].push((s + 1) as f64 * self.dt_ms);
        }
        times
    }

    /// Mean rate (Hz) over `neurons` (all neurons when empty) for the whole run.
    pub fn mean_rate_hz(&self, neurons: &[u32]) -> f64 {
        let secs = self.duration_ms() * 1e-3;
        if neurons.is_empty() {
            let total: u64 = self.spike_counts.iter().sum();
            total as f64 / self.spike_counts.len().max(1) as f64 / secs
        } else {
            let total: u64 = neurons.iter().map(|&i| self.spike_counts[i as usize]).sum();
            total as f64 / neurons.len() as f64 / secs
        }
    }

    /// The kept spikes step by step: `(step, neurons of that step)`, in recording order (the order a
    /// `RunSink` receives them while a run streams).
    pub fn spikes_by_step(&self) -> impl Iterator<Item = (u64, &[u32])> + '_ {
        let mut k = 0;
        std::iter::from_fn(move || {
            let &step = self.spike_steps.get(k)?;
            let end = k + self.spike_steps[k..].partition_point(|&s| s == step);
            let neurons = &self.spike_neurons[k..end];
            k = end;
            Some((step, neurons))
        })
    }

    /// Spike trains (step lists) of one neuron, from the kept spikes.
    pub fn train(&self, neuron: u32) -> Vec<u64> {
        self.spike_steps.iter().zip(&self.spike_neurons).filter(|(_, n)| **n == neuron).map(|(s, _)| *s).collect()
    }
}
