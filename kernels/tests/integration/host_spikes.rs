//! The kernels of `cuda/spikes.cu`, compiled for the host, against plain Rust: compaction of spike flags
//! into the window's spike record (every step's list equals the ascending list of set flags, for sizes
//! around word and chunk boundaries and across many steps of a window), and delivery of spikes and of graded
//! activity into the fixed-point ring (equal to a direct sum with `round_ties_even`, for dense and table
//! weights).

use neurotwin_kernels::compaction_chunk;
use neurotwin_kernels::host::{
    self, LANES, RingLayout, RowWeights, SpikeRecord, SynapseRows, deliver_graded, deliver_spikes,
};
use neurotwin_models::rng::{CounterRng, SequenceRng, Stream};

fn flags(r: &mut SequenceRng, n: usize, p: f64) -> Vec<u8> {
    (0..n).map(|_| u8::from(r.uniform() < p)).collect()
}

fn expected(f: &[u8]) -> Vec<u32> {
    f.iter().enumerate().filter(|&(_, &x)| x != 0).map(|(i, _)| i as u32).collect()
}

#[test]
fn compaction_lists_spikes_ascending_for_every_window_step() {
    let mut r = SequenceRng::new(CounterRng::new(11, Stream::Trial), 0);
    for n in [1usize, 63, 64, 65, 127, 2048, 2049, 5000, 70_001] {
        let window = 7;
        let mut rec = SpikeRecord::new(n, window);
        let mut want = Vec::new();
        for k in 0..window {
            // Densities from empty to full, so offsets move by 0 and by n within one window.
            let p = [0.0, 0.01, 0.5, 1.0, 0.03, 0.0, 0.2][k];
            let f = flags(&mut r, n, p);
            rec.compact(&f, k);
            want.push(expected(&f));
        }
        for (k, w) in want.iter().enumerate() {
            assert_eq!(rec.step_spikes(k), &w[..], "n = {n}, window step {k}");
        }
        // A new window starts at 0 again.
        let f = flags(&mut r, n, 0.1);
        rec.compact(&f, 0);
        assert_eq!(rec.step_spikes(0), &expected(&f)[..], "n = {n}, new window");
    }
}

/// More than 32 * 1024 words: chunks grow beyond 32 words and the scan still covers every chunk.
#[test]
fn compaction_with_large_chunks() {
    let n: usize = 2_200_000;
    assert!(compaction_chunk(n.div_ceil(LANES)) > 32);
    let mut r = SequenceRng::new(CounterRng::new(12, Stream::Trial), 0);
    let f = flags(&mut r, n, 0.001);
    let mut rec = SpikeRecord::new(n, 1);
    rec.compact(&f, 0);
    assert_eq!(rec.step_spikes(0), &expected(&f)[..]);
}

struct RandomRows {
    n: usize,
    layout: RingLayout,
    row_segments: Vec<u32>,
    segment_start: Vec<u64>,
    segment_delay: Vec<u16>,
    segment_receptor: Vec<u8>,
    targets: Vec<u32>,
    weights: Vec<f32>,
}

/// A random CSR matrix: rows of 0–5 segments with 0–80 synapses (longer than a warp), delays 1–4, two
/// receptors, weights of both signs.
fn random_rows(n: usize, seed: u64) -> RandomRows {
    let mut r = SequenceRng::new(CounterRng::new(seed, Stream::Connectivity), 0);
    let slots = 5;
    let layout = RingLayout { n_channels: 2, slots, n_pad: n.div_ceil(LANES) * LANES };
    let mut rows = RandomRows {
        n,
        layout,
        row_segments: vec![0],
        segment_start: vec![0],
        segment_delay: vec![],
        segment_receptor: vec![],
        targets: vec![],
        weights: vec![],
    };
    for _ in 0..n {
        let n_seg = (r.uniform() * 6.0) as usize;
        for _ in 0..n_seg {
            let len = (r.uniform() * 81.0) as usize;
            let mut t: Vec<u32> = (0..len).map(|_| (r.uniform() * n as f64) as u32).collect();
            t.sort_unstable();
            rows.targets.extend(&t);
            rows.weights.extend(t.iter().map(|_| ((r.uniform() - 0.4) * 3.0) as f32));
            rows.segment_start.push(rows.targets.len() as u64);
            rows.segment_delay.push(1 + (r.uniform() * 4.0) as u16);
            rows.segment_receptor.push(u8::from(r.uniform() < 0.5));
        }
        rows.row_segments.push(rows.segment_delay.len() as u32);
    }
    rows
}

impl RandomRows {
    fn synapse_rows(&self, weights: RowWeights) -> SynapseRows {
        SynapseRows::new(
            self.n,
            self.layout,
            self.row_segments.clone(),
            self.segment_start.clone(),
            self.segment_delay.clone(),
            self.segment_receptor.clone(),
            self.targets.clone(),
            weights,
        )
    }

    /// The ring after delivering `amount(pre)` times each weight of every row with a non-zero amount.
    fn direct(&self, amount: &dyn Fn(usize) -> f64, scale: f64, step: u64) -> Vec<i64> {
        let l = self.layout;
        let mut ring = vec![0i64; l.n_channels * l.slots * l.n_pad];
        for pre in 0..self.n {
            let a = amount(pre);
            if a == 0.0 {
                continue;
            }
            for s in self.row_segments[pre] as usize..self.row_segments[pre + 1] as usize {
                let slot = ((step + self.segment_delay[s] as u64) % l.slots as u64) as usize;
                let row = (self.segment_receptor[s] as usize * l.slots + slot) * l.n_pad;
                for k in self.segment_start[s] as usize..self.segment_start[s + 1] as usize {
                    ring[row + self.targets[k] as usize] +=
                        (self.weights[k] as f64 * a * scale).round_ties_even() as i64;
                }
            }
        }
        ring
    }
}

fn table_weights(rows: &RandomRows, scale: f64) -> RowWeights {
    let mut values: Vec<f32> = rows.weights.clone();
    values.sort_by(f32::total_cmp);
    values.dedup();
    let index = rows.weights.iter().map(|w| values.binary_search_by(|v| v.total_cmp(w)).unwrap() as u16).collect();
    let fixed_table = values.iter().map(|&w| (w as f64 * scale).round_ties_even() as i64).collect();
    RowWeights::Table { index, values, fixed_table }
}

#[test]
fn spike_delivery_matches_direct_sum() {
    let rows = random_rows(300, 5);
    let scale = 2f64.powi(20);
    let mut r = SequenceRng::new(CounterRng::new(13, Stream::Trial), 0);
    let f = flags(&mut r, rows.n, 0.3);
    let spiking = |i: usize| f64::from(f[i]);
    for (what, weights) in [("dense", RowWeights::Dense(rows.weights.clone())), ("table", table_weights(&rows, scale))]
    {
        let synapses = rows.synapse_rows(weights);
        let mut rec = SpikeRecord::new(rows.n, 3);
        rec.compact(&vec![0; rows.n], 0);
        rec.compact(&f, 1);
        for step in [0u64, 3, 17] {
            let mut ring = vec![0i64; rows.layout.n_channels * rows.layout.slots * rows.layout.n_pad];
            deliver_spikes(&synapses, &rec, 1, scale, step, &mut ring);
            assert_eq!(ring, rows.direct(&spiking, scale, step), "{what} weights, step {step}");
            // The empty step delivers nothing.
            let mut empty = vec![0i64; ring.len()];
            deliver_spikes(&synapses, &rec, 0, scale, step, &mut empty);
            assert!(empty.iter().all(|&x| x == 0));
        }
    }
}

#[test]
fn graded_delivery_matches_direct_sum_and_silencing_zeroes_activity() {
    let rows = random_rows(200, 6);
    let scale = 2f64.powi(24);
    let mut r = SequenceRng::new(CounterRng::new(14, Stream::Trial), 0);
    let mut activity: Vec<f64> = (0..rows.n).map(|_| if r.uniform() < 0.2 { 0.0 } else { r.uniform() }).collect();
    let mut silenced = vec![0u64; rows.n.div_ceil(LANES)];
    for i in (0..rows.n).step_by(7) {
        silenced[i / LANES] |= 1 << (i % LANES);
    }
    host::silence_activity(&silenced, &mut activity);
    assert!(activity.iter().enumerate().all(|(i, &a)| i % 7 != 0 || a == 0.0));
    for (what, weights) in [("dense", RowWeights::Dense(rows.weights.clone())), ("table", table_weights(&rows, scale))]
    {
        let synapses = rows.synapse_rows(weights);
        let mut ring = vec![0i64; rows.layout.n_channels * rows.layout.slots * rows.layout.n_pad];
        deliver_graded(&synapses, &activity, scale, 9, &mut ring);
        assert_eq!(ring, rows.direct(&|i| activity[i], scale, 9), "{what} weights");
    }
}
