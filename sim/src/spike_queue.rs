//! Spikes held back until their synapses' delays have passed, so that the CPU backend needs one input row per
//! receptor channel instead of a delay ring of `max_delay + 1` rows (issue 19, item 1: cache-resident delivery).
//!
//! With a ring, a spike emitted at step `e` adds each synapse of delay `d` at once to ring slot `e + d`; the ring
//! holds `max_delay + 1` rows of every target, far larger than the cache for big networks (PD14: 62 MB; the fly
//! brain: 42 MB, one delay of 18 steps), so nearly every addition and every row the neuron update reads is a miss.
//! Here the spike waits in a queue and its segments of delay `d` are delivered at the end of step `e + d − 1`,
//! into the single row the update of step `e + d` reads — the same additions into the same input, later: the
//! sums are exact integers, so the order does not change a bit (this is what the brief's integer accumulation
//! buys). The approach is that of simulators that delay spikes rather than currents (Brian2's `SpikeQueue`,
//! GeNN's presynaptic delay slots; Stimberg et al. 2019, eLife 8:e47314; Yavuz et al. 2016, Sci. Rep. 6:18854).
//!
//! A row's segments are ordered by (receptor, delay); the queue keeps each row's segments in (delay, receptor)
//! order as well, so that a waiting spike advances a single cursor through them.

use neurotwin_connectome::SynapseMatrix;

/// A spike whose segments are not all delivered yet.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    emitted_step: u64,
    /// What each synapse transmits (1 for spikes; the activity for graded models).
    amount: f64,
    /// Next and end position of the spike's row in [`SpikeQueue::by_delay`].
    next: u32,
    end: u32,
}

/// The spikes waiting for their synapses' delays, and the segments due at the end of the current step.
#[derive(Clone, Debug)]
pub struct SpikeQueue {
    /// For each row, its segment indices in (delay, receptor) order, at the row's own positions
    /// (`row_segments[pre] .. row_segments[pre + 1]`).
    by_delay: Vec<u32>,
    waiting: Vec<Waiting>,
    /// `(segment, amount)` due into the input of the next step (filled by [`SpikeQueue::due`]).
    due: Vec<(u32, f64)>,
    /// The last step [`SpikeQueue::due`] served (its segments with arrival `served + 1` are delivered).
    served: Option<u64>,
}

impl SpikeQueue {
    pub fn new(m: &SynapseMatrix) -> Self {
        let mut by_delay: Vec<u32> = (0..m.n_segments() as u32).collect();
        for pre in 0..m.n_pre as usize {
            let (a, b) = (m.row_segments[pre] as usize, m.row_segments[pre + 1] as usize);
            // Stable: equal delays keep their receptor order.
            by_delay[a..b].sort_by_key(|&s| m.segment_delay[s as usize]);
        }
        Self { by_delay, waiting: Vec::new(), due: Vec::new(), served: None }
    }

    /// Bytes held besides the waiting spikes (for the memory estimate).
    pub fn bytes(m: &SynapseMatrix) -> u64 {
        4 * m.n_segments() as u64
    }

    /// Queues `emitted` (neuron, amount), the spikes of step `step`, and returns every `(segment, amount)` whose
    /// delay ends at step `step + 1`: what the update of step `step + 1` must find in its input row. Each segment
    /// of each spike is returned exactly once, at the end of step `emission + delay − 1` (delays are ≥ 1).
    pub fn due(&mut self, m: &SynapseMatrix, emitted: &[(u32, f64)], step: u64) -> &[(u32, f64)] {
        self.push(m, emitted, step);
        self.due.clear();
        self.served = Some(step);
        serve(&self.by_delay, m, &mut self.waiting, step + 1, &mut self.due);
        &self.due
    }

    /// Queues spikes that reach this process late: `emitted`, emitted at step `emitted_step` by another process
    /// and received after this queue served step `served` (a distributed run's exchange, `distributed.rs`).
    /// Returns their segments whose delay ends at step `served + 1` (the input row not yet read); the others wait
    /// as usual. An arrival before `served + 1` would have missed its step: that is an error naming the
    /// spike (the exchange interval guarantees it cannot happen, as with the ring).
    pub fn late(
        &mut self,
        m: &SynapseMatrix,
        emitted: &[(u32, f64)],
        emitted_step: u64,
    ) -> Result<&[(u32, f64)], String> {
        self.due.clear();
        let Some(served) = self.served else {
            // No step served yet: the next `due` serves them with everything else.
            self.push(m, emitted, emitted_step);
            return Ok(&self.due);
        };
        let first_new = self.waiting.len();
        self.push(m, emitted, emitted_step);
        if let Some(w) = self.waiting[first_new..]
            .iter()
            .find(|w| w.emitted_step + m.segment_delay[self.by_delay[w.next as usize] as usize] as u64 <= served)
        {
            let message = format!(
                "a spike emitted at step {} arrives at step {}, already simulated (served through step {served})",
                w.emitted_step,
                w.emitted_step + m.segment_delay[self.by_delay[w.next as usize] as usize] as u64
            );
            self.waiting.truncate(first_new);
            return Err(message);
        }
        let mut new = self.waiting.split_off(first_new);
        serve(&self.by_delay, m, &mut new, served + 1, &mut self.due);
        self.waiting.append(&mut new);
        Ok(&self.due)
    }

    fn push(&mut self, m: &SynapseMatrix, emitted: &[(u32, f64)], step: u64) {
        for &(pre, amount) in emitted {
            let (next, end) = (m.row_segments[pre as usize], m.row_segments[pre as usize + 1]);
            if next < end {
                self.waiting.push(Waiting { emitted_step: step, amount, next, end });
            }
        }
    }

    /// Spikes still waiting (for tests and the profile).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// Moves every segment of `waiting` whose delay ends at step `arrival` into `due`, and drops the spikes left with
/// none. Each row's segments come in delay order and every earlier arrival was served in its step, so a spike's
/// cursor stops at its first later segment.
fn serve(by_delay: &[u32], m: &SynapseMatrix, waiting: &mut Vec<Waiting>, arrival: u64, due: &mut Vec<(u32, f64)>) {
    waiting.retain_mut(|w| {
        while w.next < w.end {
            let s = by_delay[w.next as usize];
            let at = w.emitted_step + m.segment_delay[s as usize] as u64;
            if at != arrival {
                debug_assert!(at > arrival, "segment {s} due at step {at}, served at {arrival}");
                break;
            }
            due.push((s, w.amount));
            w.next += 1;
        }
        w.next < w.end
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use neurotwin_connectome::{Synapse, SynapseMatrix};

    /// Against the ring's rule written out: every synapse of a spike emitted at step e with delay d is due exactly
    /// once, at the end of step e + d − 1, for rows with several receptors and delays in any order, spikes in
    /// consecutive steps and repeated spikes of one neuron.
    #[test]
    fn every_segment_is_due_once_at_emission_plus_delay_minus_one() {
        let mut syn = Vec::new();
        for pre in 0..6u32 {
            for k in 0..(pre * 3) {
                syn.push(Synapse {
                    pre,
                    post: (k * 7 + pre) % 11,
                    weight: 1.0 + k as f32,
                    receptor: (k % 2) as u8,
                    delay: 1 + ((k * 5 + pre) % 4) as u16,
                });
            }
        }
        let m = SynapseMatrix::from_synapses(6, 11, syn).unwrap();
        let spikes: Vec<(u64, u32)> = vec![(0, 1), (0, 5), (1, 5), (2, 0), (2, 3), (3, 4), (3, 5), (7, 2)];
        let mut queue = SpikeQueue::new(&m);
        let mut got: Vec<(u64, u32, u32)> = Vec::new(); // (arrival step, pre, segment)
        for step in 0..14u64 {
            let emitted: Vec<(u32, f64)> =
                spikes.iter().filter(|s| s.0 == step).map(|s| (s.1, (s.1 * 10) as f64)).collect();
            for &(s, amount) in queue.due(&m, &emitted, step) {
                let pre =
                    (0..6u32).find(|&p| (m.row_segments[p as usize]..m.row_segments[p as usize + 1]).contains(&s));
                let pre = pre.unwrap();
                assert_eq!(amount, (pre * 10) as f64);
                got.push((step + 1, pre, s));
            }
        }
        assert_eq!(queue.waiting(), 0);
        let mut want = Vec::new();
        for &(e, pre) in &spikes {
            for s in m.row_segments[pre as usize]..m.row_segments[pre as usize + 1] {
                want.push((e + m.segment_delay[s as usize] as u64, pre, s));
            }
        }
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert!(want.len() > 20, "the test rows have many segments: {}", want.len());
    }

    /// Spikes of another process received after this queue served some steps: segments due in the next step are
    /// returned at once, later ones wait for `due`, and one already missed is an error.
    #[test]
    fn late_spikes_are_served_now_later_or_refused() {
        // Row 0: delays 3, 4 and 6 (one synapse each).
        let syn: Vec<Synapse> = [(3u16, 0u32), (4, 1), (6, 2)]
            .iter()
            .map(|&(delay, post)| Synapse { pre: 0, post, weight: 1.0, receptor: 0, delay })
            .collect();
        let m = SynapseMatrix::from_synapses(2, 3, syn).unwrap();
        let delay_of =
            |due: &[(u32, f64)]| -> Vec<u16> { due.iter().map(|&(s, _)| m.segment_delay[s as usize]).collect() };
        let mut q = SpikeQueue::new(&m);
        // Before any step: just queued, served with the first `due`.
        assert!(q.late(&m, &[(0, 1.0)], 0).unwrap().is_empty());
        for step in 0..=4 {
            let due = delay_of(q.due(&m, &[], step));
            assert_eq!(
                due,
                if step == 2 {
                    vec![3]
                } else if step == 3 {
                    vec![4]
                } else {
                    vec![]
                },
                "step {step}"
            );
        }
        // Served through step 4: a spike of step 3 arrives at 6 (= 4 + 1 + 1: waits), 7 and 9.
        assert!(q.late(&m, &[(0, 2.0)], 3).unwrap().is_empty());
        // A spike of step 2 arrives at 5, 6 and 8: its first segment is due now.
        assert_eq!(q.late(&m, &[(0, 3.0)], 2).unwrap(), &[(0, 3.0)][..]);
        // A spike of step 1 would have arrived at step 4, already simulated.
        let err = q.late(&m, &[(0, 4.0)], 1).unwrap_err();
        assert!(err.contains("emitted at step 1 arrives at step 4"), "{err}");
        let mut got = Vec::new();
        for step in 5..=12 {
            got.extend(q.due(&m, &[], step).iter().map(|&(s, a)| (step + 1, m.segment_delay[s as usize], a)));
        }
        // First spike (step 0): 6 at step 6. Second (3): 3 at 6, 4 at 7, 6 at 9. Third (2): 4 at 6, 6 at 8.
        // The refused fourth spike left nothing behind.
        let mut want = vec![(6, 6, 1.0), (6, 3, 2.0), (7, 4, 2.0), (9, 6, 2.0), (6, 4, 3.0), (8, 6, 3.0)];
        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(got, want);
        assert_eq!(q.waiting(), 0);
    }
}
