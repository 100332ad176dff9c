//! The kernels of `cuda/spikes.cu`, compiled for the host, against plain Rust: compaction of spike flags
//! into the window's spike record (every step's list equals the ascending list of set flags and the record
//! offsets equal a plain prefix sum, for sizes around word, chunk and group boundaries, empty and all-ones
//! steps, and across many steps of a window; the scan's chunk and group sizes bound every thread's loop), and
//! delivery of spikes (including more than 1024 spikes in one step, spread as 32-synapse pieces) and of graded
//! activity into the fixed-point ring (equal to a direct sum with `round_ties_even`, for dense and table
//! weights).

use neurotwin_kernels::host::{
    self, LANES, RingLayout, RowWeights, SpikeRecord, SynapseRows, deliver_graded, deliver_spikes,
};
use neurotwin_kernels::{compaction_chunk, compaction_group, segment_pieces, work_chunk};
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

/// Record offsets of a window against a plain Rust prefix sum of the number of set flags per step.
fn assert_offsets_are_prefix_sums(n: usize, steps: &[Vec<u8>]) {
    let mut rec = SpikeRecord::new(n, steps.len());
    let mut want = vec![0u64];
    for (k, f) in steps.iter().enumerate() {
        rec.compact(f, k);
        want.push(want[k] + f.iter().filter(|&&x| x != 0).count() as u64);
    }
    assert_eq!(rec.rec_base(), &want[..], "n = {n}");
    for (k, f) in steps.iter().enumerate() {
        assert_eq!(rec.step_spikes(k), &expected(f)[..], "n = {n}, window step {k}");
    }
}

/// The hierarchical scan (chunk totals, group scans, top scan, scatter) on random, empty and all-ones steps,
/// for sizes with one group, with a partial last chunk and group, and with many groups of many chunks.
#[test]
fn compaction_offsets_are_prefix_sums_at_every_scan_level() {
    let mut r = SequenceRng::new(CounterRng::new(13, Stream::Trial), 0);
    for n in [0usize, 1, 255, 256, 257, 1024 * 5 + 3, 5000, 40_000, 299_900] {
        let steps: Vec<Vec<u8>> = [0.0, 1.0, 0.5, 0.001, 1.0, 0.0, 0.9].iter().map(|&p| flags(&mut r, n, p)).collect();
        assert_offsets_are_prefix_sums(n, &steps);
    }
    // 299_900 neurons: 4686 words, chunks of 4 words, 1172 chunks in groups of 35: 34 groups, so every level
    // scans more than two items and the last chunk and group are partial.
    let n_words = 299_900usize.div_ceil(LANES);
    let (chunk, group) = (compaction_chunk(n_words), compaction_group(n_words.div_ceil(4)));
    assert_eq!((chunk, group), (4, 35));
    assert!(!n_words.is_multiple_of(4) && !n_words.div_ceil(4).is_multiple_of(35));
}

/// The chunk and group sizes keep every thread's loop at most 1024 items (words, chunk totals or group
/// totals) up to 2^32 neurons, and at least 4 for small networks.
#[test]
fn compaction_sizes_bound_every_threads_work() {
    for n_words in [0usize, 1, 4, 1000, 1 << 20, (1 << 20) + 1, 5 << 20, 1 << 26] {
        let chunk = compaction_chunk(n_words) as usize;
        let n_chunks = n_words.div_ceil(chunk);
        let group = compaction_group(n_chunks) as usize;
        let n_groups = n_chunks.div_ceil(group);
        assert!((4..=64).contains(&chunk), "{n_words} words: chunk {chunk}");
        assert!((4..=1024).contains(&group), "{n_words} words: group {group}");
        assert!(n_groups <= 1024 && n_chunks <= 1 << 20, "{n_words} words: {n_chunks} chunks, {n_groups} groups");
        assert!(n_groups * group >= n_chunks && n_chunks * chunk >= n_words);
    }
    assert_eq!(compaction_chunk(1 << 26), 64);
    assert_eq!(compaction_group(1 << 20), 1024);
}

/// Millions of neurons: thousands of chunks in about a hundred groups, and the scan still covers every chunk.
#[test]
fn compaction_with_many_groups() {
    let n: usize = 2_200_000;
    let (chunk, group) = SpikeRecord::new(n, 1).chunk_and_group();
    assert!(n.div_ceil(LANES).div_ceil(chunk as usize).div_ceil(group as usize) > 64);
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
    assert!(values.len() <= 1 << 16, "too many distinct weights for a u16 table");
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

/// More than 1024 spikes in one (non-first) window step of 5000 neurons: the piece numbering scans 157 chunks of
/// 32 spikes in 13 groups, and rows of up to 5 segments of up to 80 synapses (empty rows and segments
/// included) are split into 32-synapse pieces spread over the grid; the ring equals the direct sum.
#[test]
fn spike_delivery_of_many_spikes_matches_direct_sum() {
    let mut rows = random_rows(5000, 7);
    // Multiples of 1/64, so that the distinct weights fit a u16 weight table.
    rows.weights.iter_mut().for_each(|w| *w = (*w * 64.0).round() / 64.0 + 0.0); // + 0.0: no -0.0
    let scale = 2f64.powi(18);
    let mut r = SequenceRng::new(CounterRng::new(15, Stream::Trial), 0);
    let f = flags(&mut r, rows.n, 0.6);
    let n_spikes = f.iter().filter(|&&x| x != 0).count();
    assert!(n_spikes > 1024, "{n_spikes} spikes");
    let chunk = work_chunk(rows.n) as usize;
    let n_chunks = rows.n.div_ceil(chunk);
    assert_eq!((chunk, n_chunks, compaction_group(n_chunks)), (32, 157, 13));
    assert!(n_spikes.div_ceil(chunk).div_ceil(13) > 2, "the step's spikes span more than two groups");
    let spiking = |i: usize| f64::from(f[i]);
    for (what, weights) in [("dense", RowWeights::Dense(rows.weights.clone())), ("table", table_weights(&rows, scale))]
    {
        let synapses = rows.synapse_rows(weights);
        let mut rec = SpikeRecord::new(rows.n, 4);
        rec.compact(&flags(&mut r, rows.n, 0.1), 0);
        rec.compact(&vec![1; rows.n], 1);
        rec.compact(&f, 2);
        let mut ring = vec![0i64; rows.layout.n_channels * rows.layout.slots * rows.layout.n_pad];
        deliver_spikes(&synapses, &rec, 2, scale, 11, &mut ring);
        assert_eq!(ring, rows.direct(&spiking, scale, 11), "{what} weights");
        // Every neuron spiking (step 1) delivers every synapse.
        let mut all = vec![0i64; ring.len()];
        deliver_spikes(&synapses, &rec, 1, scale, 11, &mut all);
        assert_eq!(all, rows.direct(&|_| 1.0, scale, 11), "{what} weights, all spiking");
    }
}

/// The piece prefix counts ceil(len / 32) per segment: empty segments add nothing, 33 synapses are two pieces.
#[test]
fn segment_pieces_count_32_synapse_pieces() {
    assert_eq!(segment_pieces(&[0]), vec![0]);
    assert_eq!(segment_pieces(&[0, 0, 1, 33, 65, 65, 161]), vec![0, 0, 1, 2, 3, 3, 6]);
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
