//! Prescribed spike trains: neurons forced to spike at given steps (SONATA input spike files for virtual
//! nodes, replayed recordings). Every backend reads the same table: the neuron of train `k` spikes at step `s`
//! when `s` is one of `steps[ptr[k] .. ptr[k + 1]]` (ascending, unique), found by binary search — stateless,
//! so a run can be advanced, drained and resumed in any window size with identical results.
//!
//! A forced neuron spikes through its model's threshold path (reset and refractoriness as after a crossing);
//! only spiking models take spike trains.

use crate::error::SimError;

/// Spike trains in CSR form, one train per neuron that has one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpikeTrains {
    /// Neuron of each train, ascending and unique.
    pub neurons: Vec<u32>,
    /// `ptr[k] .. ptr[k + 1]` is train `k` in `steps` (`neurons.len() + 1` entries, or empty).
    pub ptr: Vec<u64>,
    /// Spike steps, ascending and unique within each train.
    pub steps: Vec<u32>,
}

/// What building a table from events found besides the trains.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpikeTrainStats {
    /// Events kept.
    pub events: u64,
    /// Events that fell on a step already holding a spike of the same neuron (a neuron spikes at most once
    /// per step), merged.
    pub merged: u64,
    /// Events at or after `steps` (outside the run), dropped.
    pub after_end: u64,
}

impl SpikeTrains {
    pub fn is_empty(&self) -> bool {
        self.neurons.is_empty()
    }

    /// Number of trains.
    pub fn len(&self) -> usize {
        self.neurons.len()
    }

    /// The table of `(neuron, step)` events of a network of `n_neurons` run for `steps` steps: sorted,
    /// same-step duplicates merged, events at or after `steps` dropped (both counted in the stats). Errors
    /// name the first neuron out of range.
    pub fn from_events(
        mut events: Vec<(u32, u64)>,
        n_neurons: usize,
        steps: u64,
    ) -> Result<(Self, SpikeTrainStats), SimError> {
        if let Some(&(i, _)) = events.iter().find(|(i, _)| *i as usize >= n_neurons) {
            return Err(SimError::Setup(format!(
                "spike train for neuron #{i}, but the network has {n_neurons} neurons (ids 0..{n_neurons})"
            )));
        }
        if steps > u32::MAX as u64 {
            return Err(SimError::Setup(format!("spike trains support runs of up to {} steps", u32::MAX)));
        }
        let total = events.len() as u64;
        events.retain(|&(_, s)| s < steps);
        let after_end = total - events.len() as u64;
        events.sort_unstable();
        let before = events.len();
        events.dedup();
        let merged = (before - events.len()) as u64;
        let mut t = SpikeTrains::default();
        for &(i, s) in &events {
            if t.neurons.last() != Some(&i) {
                t.neurons.push(i);
                t.ptr.push(t.steps.len() as u64);
            }
            t.steps.push(s as u32);
        }
        if !t.neurons.is_empty() {
            t.ptr.push(t.steps.len() as u64);
        }
        let stats = SpikeTrainStats { events: t.steps.len() as u64, merged, after_end };
        Ok((t, stats))
    }

    /// Checks the CSR invariants (tables built by hand or read from a file).
    pub fn validate(&self, n_neurons: usize) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Setup(format!("spike trains: {m}")));
        if self.neurons.is_empty() {
            return if self.steps.is_empty() { Ok(()) } else { bad("spike steps without trains".into()) };
        }
        if self.ptr.len() != self.neurons.len() + 1 || self.ptr[0] != 0 {
            return bad(format!(
                "{} pointers for {} trains (expected trains + 1, starting at 0)",
                self.ptr.len(),
                self.len()
            ));
        }
        if *self.ptr.last().unwrap_or(&0) != self.steps.len() as u64 {
            return bad("the last pointer must equal the number of spike steps".into());
        }
        if self.neurons.windows(2).any(|w| w[0] >= w[1]) {
            return bad("train neurons must be ascending and unique".into());
        }
        if let Some(&i) = self.neurons.iter().find(|&&i| i as usize >= n_neurons) {
            return bad(format!("neuron #{i} out of range (the network has {n_neurons} neurons)"));
        }
        for k in 0..self.len() {
            if self.ptr[k] > self.ptr[k + 1] {
                return bad(format!("pointers decrease at train {k}"));
            }
            if self.train(k).windows(2).any(|w| w[0] >= w[1]) {
                return bad(format!("steps of neuron #{} are not ascending and unique", self.neurons[k]));
            }
        }
        Ok(())
    }

    /// What every backend checks before a run: a valid table for `n_neurons` neurons, and a spiking model when
    /// there are trains (a forced spike means nothing to a graded neuron).
    pub fn check_for_run(&self, n_neurons: usize, spiking: bool) -> Result<(), SimError> {
        self.validate(n_neurons)?;
        if !self.is_empty() && !spiking {
            return Err(SimError::Setup(
                "spike-train inputs force spikes, but the model is graded; use a spiking model".into(),
            ));
        }
        Ok(())
    }

    /// The steps of train `k`.
    #[inline]
    pub fn train(&self, k: usize) -> &[u32] {
        &self.steps[self.ptr[k] as usize..self.ptr[k + 1] as usize]
    }

    /// Whether train `k` has a spike at `step`.
    #[inline]
    pub fn fires(&self, k: usize, step: u64) -> bool {
        step <= u32::MAX as u64 && self.train(k).binary_search(&(step as u32)).is_ok()
    }

    /// Per neuron: its train index, or `u32::MAX` without one.
    pub fn train_of_neuron(&self, n_neurons: usize) -> Vec<u32> {
        let mut of = vec![u32::MAX; n_neurons];
        for (k, &i) in self.neurons.iter().enumerate() {
            of[i as usize] = k as u32;
        }
        of
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_sorted_trains_with_merges_and_drops_counted() {
        let ev = vec![(5, 3), (2, 7), (5, 1), (5, 3), (2, 100), (2, 0)];
        let (t, st) = SpikeTrains::from_events(ev, 6, 50).unwrap();
        assert_eq!(t.neurons, vec![2, 5]);
        assert_eq!(t.ptr, vec![0, 2, 4]);
        assert_eq!(t.steps, vec![0, 7, 1, 3]);
        assert_eq!(st, SpikeTrainStats { events: 4, merged: 1, after_end: 1 });
        t.validate(6).unwrap();
        assert!(t.fires(0, 7) && t.fires(0, 0) && !t.fires(0, 1) && t.fires(1, 3) && !t.fires(1, 7));
        assert_eq!(t.train_of_neuron(6), vec![u32::MAX, u32::MAX, 0, u32::MAX, u32::MAX, 1]);
    }

    #[test]
    fn out_of_range_neuron_and_broken_tables_are_errors() {
        let e = SpikeTrains::from_events(vec![(9, 1)], 4, 10).unwrap_err().to_string();
        assert!(e.contains("neuron #9") && e.contains("4 neurons"), "{e}");
        let t = SpikeTrains { neurons: vec![1, 1], ptr: vec![0, 1, 2], steps: vec![3, 4] };
        assert!(t.validate(4).unwrap_err().to_string().contains("ascending"));
        let t = SpikeTrains { neurons: vec![1], ptr: vec![0, 2], steps: vec![4, 3] };
        assert!(t.validate(4).unwrap_err().to_string().contains("neuron #1"));
    }
}
