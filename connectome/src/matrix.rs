//! `SynapseMatrix`: chemical synapses compiled to CSR by presynaptic neuron.
//!
//! Each row (presynaptic neuron) is split into *segments* of synapses sharing a receptor class and a
//! delay; inside a segment, targets are sorted. A spike is delivered segment by segment: one ring-buffer
//! slot and one channel per segment, a sorted run of targets inside it. Per synapse the matrix stores a
//! 32-bit target and the weight — as `f32` or, when the matrix has at most 65,536 distinct weights (true
//! of count-based connectome weights), as a 16-bit index into an exact weight table. Segment headers
//! cost 15 bytes each, row pointers 4 bytes per neuron; [`SynapseMatrix::bytes_per_synapse`] counts all.

use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ConnectomeError;

/// One synapse before compilation (indices, not external ids).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Synapse {
    pub pre: u32,
    pub post: u32,
    /// Weight in the neuron model's synaptic unit (pA, mV or nS), signed.
    pub weight: f32,
    /// Delay in time steps (>= 1).
    pub delay: u16,
    /// Receptor class index.
    pub receptor: u8,
}

/// Weight storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Weights {
    /// One `f32` per synapse.
    Dense(Vec<f32>),
    /// `values[index[k]]` is the weight of synapse `k`; exact (no quantisation).
    Table { values: Vec<f32>, index: Vec<u16> },
}

/// Read-only weights of one segment.
#[derive(Clone, Copy, Debug)]
pub enum WeightSlice<'a> {
    Dense(&'a [f32]),
    Table(&'a [f32], &'a [u16]),
}

impl WeightSlice<'_> {
    #[inline]
    pub fn get(&self, k: usize) -> f32 {
        match self {
            WeightSlice::Dense(w) => w[k],
            WeightSlice::Table(v, i) => v[i[k] as usize],
        }
    }
}

/// One segment of a row: all synapses with this receptor and delay.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub receptor: u8,
    /// Delay in steps (>= 1).
    pub delay: u16,
    pub targets: &'a [u32],
    pub weights: WeightSlice<'a>,
}

/// Chemical synapses in compressed sparse rows by presynaptic neuron. Invariants (checked by
/// [`SynapseMatrix::check`]): rows are split into segments ordered by (receptor, delay); targets are
/// sorted inside a segment and `< n_post`; delays are >= 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynapseMatrix {
    pub n_pre: u32,
    pub n_post: u32,
    /// Segments of row `i` are `row_segments[i] .. row_segments[i + 1]`.
    pub row_segments: Vec<u32>,
    /// Synapses of segment `s` are `segment_start[s] .. segment_start[s + 1]`.
    pub segment_start: Vec<u64>,
    pub segment_delay: Vec<u16>,
    pub segment_receptor: Vec<u8>,
    pub targets: Vec<u32>,
    pub weights: Weights,
}

/// Largest number of distinct weights stored as a table.
pub const MAX_TABLE_WEIGHTS: usize = 1 << 16;

impl SynapseMatrix {
    /// Builds the matrix from synapses in any order (parallel sort). The result does not depend on the
    /// input order: synapses are ordered by (pre, receptor, delay, post, weight).
    pub fn from_synapses(n_pre: u32, n_post: u32, mut syn: Vec<Synapse>) -> Result<Self, ConnectomeError> {
        if let Some(s) = syn.par_iter().find_any(|s| s.pre >= n_pre || s.post >= n_post) {
            return Err(ConnectomeError::Compile(format!(
                "synapse {} -> {} is outside the {n_pre} x {n_post} matrix",
                s.pre, s.post
            )));
        }
        if let Some(s) = syn.par_iter().find_any(|s| s.delay == 0 || !s.weight.is_finite()) {
            return Err(ConnectomeError::Compile(format!(
                "synapse {} -> {}: delay {} steps / weight {}: delays must be >= 1 step, weights finite",
                s.pre, s.post, s.delay, s.weight
            )));
        }
        syn.par_sort_unstable_by_key(|s| (s.pre, s.receptor, s.delay, s.post, s.weight.to_bits()));
        let n = syn.len();
        // Segment boundaries: where (pre, receptor, delay) changes.
        let boundary: Vec<usize> = (0..n)
            .into_par_iter()
            .filter(|&k| {
                k == 0 || {
                    let (a, b) = (&syn[k - 1], &syn[k]);
                    (a.pre, a.receptor, a.delay) != (b.pre, b.receptor, b.delay)
                }
            })
            .collect();
        let n_seg = boundary.len();
        let mut segment_start: Vec<u64> = boundary.iter().map(|&k| k as u64).collect();
        segment_start.push(n as u64);
        let segment_delay: Vec<u16> = boundary.iter().map(|&k| syn[k].delay).collect();
        let segment_receptor: Vec<u8> = boundary.iter().map(|&k| syn[k].receptor).collect();
        // Row pointers over segments.
        let mut row_segments = vec![0u32; n_pre as usize + 1];
        for &k in &boundary {
            row_segments[syn[k].pre as usize + 1] += 1;
        }
        for i in 0..n_pre as usize {
            row_segments[i + 1] += row_segments[i];
        }
        debug_assert_eq!(row_segments[n_pre as usize] as usize, n_seg);
        if n_seg > u32::MAX as usize {
            return Err(ConnectomeError::Compile("more than 2^32 segments".into()));
        }
        let targets: Vec<u32> = syn.par_iter().map(|s| s.post).collect();
        let weights = encode_weights(syn.par_iter().map(|s| s.weight).collect());
        Ok(Self { n_pre, n_post, row_segments, segment_start, segment_delay, segment_receptor, targets, weights })
    }

    /// Builds the matrix row by row, without holding all synapses at once (the generators' path for hundreds of
    /// millions of synapses): row `i` has exactly `row_len[i]` synapses, which `fill(i, &mut row)` pushes into
    /// an empty buffer in any order; rows are generated in parallel, sorted and written straight into the CSR
    /// arrays. The result equals [`SynapseMatrix::from_synapses`] of all rows' synapses. Peak memory: the
    /// matrix plus one row buffer per thread.
    pub fn from_rows<F>(n_pre: u32, n_post: u32, row_len: &[usize], fill: F) -> Result<Self, ConnectomeError>
    where
        F: Fn(u32, &mut Vec<Synapse>) + Sync,
    {
        if row_len.len() != n_pre as usize {
            return Err(ConnectomeError::Compile(format!("{} row lengths for {n_pre} rows", row_len.len())));
        }
        let total: usize = row_len.iter().sum();
        let mut targets = vec![0u32; total];
        let mut weights = vec![0f32; total];
        let mut parts: Vec<(u32, &mut [u32], &mut [f32])> = Vec::with_capacity(n_pre as usize);
        {
            let (mut t_rest, mut w_rest): (&mut [u32], &mut [f32]) = (&mut targets, &mut weights);
            for (pre, &len) in row_len.iter().enumerate() {
                let (t, tt) = t_rest.split_at_mut(len);
                let (w, wt) = w_rest.split_at_mut(len);
                parts.push((pre as u32, t, w));
                t_rest = tt;
                w_rest = wt;
            }
        }
        let rows: Vec<Result<RowSegments, ConnectomeError>> = parts
            .into_par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(row, scratch): &mut (Vec<Synapse>, Vec<Synapse>), (pre, t, w)| {
                    row.clear();
                    fill(pre, row);
                    if row.len() != t.len() {
                        return Err(ConnectomeError::Compile(format!(
                            "row {pre}: {} synapses generated, {} announced",
                            row.len(),
                            t.len()
                        )));
                    }
                    check_row(row, pre, n_pre, n_post)?;
                    sort_row(row, scratch);
                    Ok(row_segments_into(row, t, w))
                },
            )
            .collect();
        let mut index = SegmentIndex::new(n_pre);
        for r in rows {
            for (receptor, delay, len) in r? {
                index.push_segment(receptor, delay, len as u64);
            }
            index.end_row()?;
        }
        Ok(index.into_matrix(n_pre, n_post, targets, encode_weights(weights)))
    }

    /// [`SynapseMatrix::from_rows`] restricted to the targets in `keep` (one process's share of a network,
    /// `crate::share`), for rows whose length is not known in advance: `fill(i, &mut row)` pushes all of row
    /// `i`'s synapses, those onto targets outside `keep` are dropped. The result equals
    /// [`SynapseMatrix::retain_targets`] of the whole matrix. Rows are generated in parallel in batches of
    /// [`ROW_BATCH`] and appended in order, so peak memory is the kept matrix plus one batch of rows.
    pub fn from_rows_part<F>(n_pre: u32, n_post: u32, keep: Range<u32>, fill: F) -> Result<Self, ConnectomeError>
    where
        F: Fn(u32, &mut Vec<Synapse>) + Sync,
    {
        let (mut targets, mut weights) = (Vec::new(), Vec::new());
        let mut index = SegmentIndex::new(n_pre);
        for first in (0..n_pre).step_by(ROW_BATCH as usize) {
            let rows: Vec<Result<KeptRow, ConnectomeError>> = (first..n_pre.min(first.saturating_add(ROW_BATCH)))
                .into_par_iter()
                .map_init(
                    || (Vec::new(), Vec::new()),
                    |(row, scratch): &mut (Vec<Synapse>, Vec<Synapse>), pre| {
                        row.clear();
                        fill(pre, row);
                        check_row(row, pre, n_pre, n_post)?;
                        row.retain(|s| keep.contains(&s.post));
                        sort_row(row, scratch);
                        let (mut t, mut w) = (vec![0u32; row.len()], vec![0f32; row.len()]);
                        let segments = row_segments_into(row, &mut t, &mut w);
                        Ok((segments, t, w))
                    },
                )
                .collect();
            for r in rows {
                let (segments, t, w) = r?;
                for (receptor, delay, len) in segments {
                    index.push_segment(receptor, delay, len as u64);
                }
                index.end_row()?;
                targets.extend_from_slice(&t);
                weights.extend_from_slice(&w);
            }
        }
        targets.shrink_to_fit();
        Ok(index.into_matrix(n_pre, n_post, targets, encode_weights(weights)))
    }

    /// The matrix of only the synapses onto targets in `keep` (one process's share, `crate::share`): the same
    /// rows and order, segments left empty dropped, the weight encoding chosen afresh (a table may now fit;
    /// every weight keeps its exact value).
    pub fn retain_targets(&self, keep: Range<u32>) -> Self {
        let mut index = SegmentIndex::new(self.n_pre);
        let (mut targets, mut weights) = (Vec::new(), Vec::new());
        for pre in 0..self.n_pre {
            for seg in self.row(pre) {
                let (a, b) =
                    (seg.targets.partition_point(|&t| t < keep.start), seg.targets.partition_point(|&t| t < keep.end));
                if a == b {
                    continue;
                }
                targets.extend_from_slice(&seg.targets[a..b]);
                weights.extend((a..b).map(|k| seg.weights.get(k)));
                index.push_segment(seg.receptor, seg.delay, (b - a) as u64);
            }
            // A share of a valid matrix has at most its segments.
            index.end_row().expect("no more segments than the whole matrix");
        }
        index.into_matrix(self.n_pre, self.n_post, targets, encode_weights(weights))
    }

    pub fn n_synapses(&self) -> u64 {
        self.targets.len() as u64
    }

    pub fn n_segments(&self) -> usize {
        self.segment_delay.len()
    }

    /// Largest delay (steps); 0 for an empty matrix.
    pub fn max_delay(&self) -> u16 {
        self.segment_delay.iter().copied().max().unwrap_or(0)
    }

    /// Number of receptor classes referenced (max index + 1).
    pub fn n_receptors_used(&self) -> usize {
        self.segment_receptor.iter().map(|&r| r as usize + 1).max().unwrap_or(0)
    }

    /// Number of synapses of presynaptic neuron `pre` (all its segments).
    #[inline]
    pub fn row_synapses(&self, pre: u32) -> u64 {
        let (a, b) = (self.row_segments[pre as usize] as usize, self.row_segments[pre as usize + 1] as usize);
        self.segment_start[b] - self.segment_start[a]
    }

    /// Segments of presynaptic neuron `pre`.
    #[inline]
    pub fn row(&self, pre: u32) -> impl Iterator<Item = Segment<'_>> + '_ {
        let (a, b) = (self.row_segments[pre as usize] as usize, self.row_segments[pre as usize + 1] as usize);
        (a..b).map(move |s| self.segment(s))
    }

    #[inline]
    pub fn segment(&self, s: usize) -> Segment<'_> {
        let (a, b) = (self.segment_start[s] as usize, self.segment_start[s + 1] as usize);
        Segment {
            receptor: self.segment_receptor[s],
            delay: self.segment_delay[s],
            targets: &self.targets[a..b],
            weights: match &self.weights {
                Weights::Dense(w) => WeightSlice::Dense(&w[a..b]),
                Weights::Table { values, index } => WeightSlice::Table(values, &index[a..b]),
            },
        }
    }

    /// Weight of synapse `k` (in matrix order).
    pub fn weight(&self, k: usize) -> f32 {
        match &self.weights {
            Weights::Dense(w) => w[k],
            Weights::Table { values, index } => values[index[k] as usize],
        }
    }

    /// All synapses in matrix order.
    pub fn synapses(&self) -> Vec<Synapse> {
        let mut out = Vec::with_capacity(self.targets.len());
        for pre in 0..self.n_pre {
            for s in self.row_segments[pre as usize]..self.row_segments[pre as usize + 1] {
                let s = s as usize;
                for k in self.segment_start[s] as usize..self.segment_start[s + 1] as usize {
                    out.push(Synapse {
                        pre,
                        post: self.targets[k],
                        weight: self.weight(k),
                        delay: self.segment_delay[s],
                        receptor: self.segment_receptor[s],
                    });
                }
            }
        }
        out
    }

    /// Heap bytes of the compiled matrix.
    pub fn bytes(&self) -> u64 {
        let w = match &self.weights {
            Weights::Dense(w) => w.len() * 4,
            Weights::Table { values, index } => values.len() * 4 + index.len() * 2,
        };
        (self.row_segments.len() * 4
            + self.segment_start.len() * 8
            + self.segment_delay.len() * 2
            + self.segment_receptor.len()
            + self.targets.len() * 4
            + w) as u64
    }

    /// Bytes per synapse including all index overhead (NaN for an empty matrix).
    pub fn bytes_per_synapse(&self) -> f64 {
        self.bytes() as f64 / self.n_synapses() as f64
    }

    /// Human-readable weight encoding.
    pub fn weight_encoding(&self) -> String {
        match &self.weights {
            Weights::Dense(_) => "f32 per synapse".into(),
            Weights::Table { values, .. } => format!("u16 index into {} exact f32 weights", values.len()),
        }
    }

    /// Verifies the structural invariants (used after reading a stored matrix).
    pub fn check(&self) -> Result<(), String> {
        let n_seg = self.segment_delay.len();
        if self.row_segments.len() != self.n_pre as usize + 1
            || self.segment_start.len() != n_seg + 1
            || self.segment_receptor.len() != n_seg
        {
            return Err("array lengths do not match the row and segment counts".into());
        }
        if self.row_segments[0] != 0 || *self.row_segments.last().unwrap() as usize != n_seg {
            return Err("row pointers must start at 0 and end at the number of segments".into());
        }
        if self.row_segments.windows(2).any(|w| w[0] > w[1]) || self.segment_start.windows(2).any(|w| w[0] > w[1]) {
            return Err("row or segment pointers decrease".into());
        }
        if self.segment_start[0] != 0 || *self.segment_start.last().unwrap() as usize != self.targets.len() {
            return Err("segment pointers must cover the synapse arrays exactly".into());
        }
        let n_w = match &self.weights {
            Weights::Dense(w) => w.len(),
            Weights::Table { values, index } => {
                if index.iter().any(|&i| i as usize >= values.len()) {
                    return Err("weight index out of table range".into());
                }
                index.len()
            }
        };
        if n_w != self.targets.len() {
            return Err("weight count differs from target count".into());
        }
        if self.segment_delay.contains(&0) {
            return Err("a delay of 0 steps".into());
        }
        if self.targets.iter().any(|&t| t >= self.n_post) {
            return Err("a target index >= n_post".into());
        }
        Ok(())
    }
}

/// Chooses the table encoding when it is exact and smaller.
/// The row and segment arrays of a [`SynapseMatrix`] being built row by row (`push_segment` for each segment of
/// a row in order, then `end_row`): the one place that lays them out.
pub(crate) struct SegmentIndex {
    row_segments: Vec<u32>,
    segment_start: Vec<u64>,
    segment_delay: Vec<u16>,
    segment_receptor: Vec<u8>,
}

impl SegmentIndex {
    pub(crate) fn new(n_pre: u32) -> Self {
        let mut row_segments = Vec::with_capacity(n_pre as usize + 1);
        row_segments.push(0);
        Self { row_segments, segment_start: vec![0], segment_delay: Vec::new(), segment_receptor: Vec::new() }
    }

    /// Appends a segment of `len` synapses to the current row.
    pub(crate) fn push_segment(&mut self, receptor: u8, delay: u16, len: u64) {
        let end = self.segment_start.last().copied().unwrap_or(0) + len;
        self.segment_start.push(end);
        self.segment_delay.push(delay);
        self.segment_receptor.push(receptor);
    }

    /// Closes the current row; refuses more than 2^32 segments.
    pub(crate) fn end_row(&mut self) -> Result<(), ConnectomeError> {
        let n = u32::try_from(self.segment_delay.len())
            .map_err(|_| ConnectomeError::Compile("more than 2^32 segments".into()))?;
        self.row_segments.push(n);
        Ok(())
    }

    /// Segment `s`'s synapses are `starts()[s] .. starts()[s + 1]`, on receptor `receptors()[s]`.
    pub(crate) fn starts(&self) -> &[u64] {
        &self.segment_start
    }

    pub(crate) fn receptors(&self) -> &[u8] {
        &self.segment_receptor
    }

    pub(crate) fn into_matrix(self, n_pre: u32, n_post: u32, targets: Vec<u32>, weights: Weights) -> SynapseMatrix {
        let Self { row_segments, segment_start, segment_delay, segment_receptor } = self;
        SynapseMatrix { n_pre, n_post, row_segments, segment_start, segment_delay, segment_receptor, targets, weights }
    }
}

/// Rows generated at once by [`SynapseMatrix::from_rows_part`].
pub const ROW_BATCH: u32 = 2048;

/// Per row: its (receptor, delay, length) segments.
type RowSegments = Vec<(u8, u16, u32)>;

/// One row of [`SynapseMatrix::from_rows_part`]: its segments, targets and weights.
type KeptRow = (RowSegments, Vec<u32>, Vec<f32>);

/// Refuses a row with a synapse of another row, outside the matrix, with delay 0 or a non-finite weight.
fn check_row(row: &[Synapse], pre: u32, n_pre: u32, n_post: u32) -> Result<(), ConnectomeError> {
    match row.iter().find(|s| s.pre != pre || s.post >= n_post || s.delay == 0 || !s.weight.is_finite()) {
        Some(s) => Err(ConnectomeError::Compile(format!(
            "synapse {} -> {} in row {pre} (delay {} steps, weight {}): must lie in the {n_pre} x {n_post} \
             matrix with a delay >= 1 step and a finite weight",
            s.pre, s.post, s.delay, s.weight
        ))),
        None => Ok(()),
    }
}

/// Writes a sorted row's targets and weights into `t` and `w` (of the row's length) and returns its segments.
fn row_segments_into(row: &[Synapse], t: &mut [u32], w: &mut [f32]) -> RowSegments {
    let mut segments: RowSegments = Vec::new();
    for (k, s) in row.iter().enumerate() {
        t[k] = s.post;
        w[k] = s.weight;
        match segments.last_mut() {
            Some(last) if (last.0, last.1) == (s.receptor, s.delay) => last.2 += 1,
            _ => segments.push((s.receptor, s.delay, 1)),
        }
    }
    segments
}

/// Sorts one row's synapses by (receptor, delay, post, weight bits), the order of
/// [`SynapseMatrix::from_synapses`]: by (receptor, delay, post) first — a radix sort for rows of
/// `RADIX_MIN_ROW` or more (`radix_sort_row`), a comparison sort on a packed 56-bit key below — then the rare
/// runs of equal keys (multapses with equal delay) by weight bits. The result is the same either way: the order
/// is total up to synapses equal in every field.
fn sort_row(row: &mut [Synapse], scratch: &mut Vec<Synapse>) {
    let key = |s: &Synapse| ((s.receptor as u64) << 48) | ((s.delay as u64) << 32) | s.post as u64;
    if row.len() >= RADIX_MIN_ROW {
        radix_sort_row(row, scratch);
    } else {
        row.sort_unstable_by_key(key);
    }
    let mut a = 0;
    while a < row.len() {
        let k = key(&row[a]);
        let mut b = a + 1;
        while b < row.len() && key(&row[b]) == k {
            b += 1;
        }
        if b - a > 1 {
            row[a..b].sort_unstable_by_key(|s| s.weight.to_bits());
        }
        a = b;
    }
}

/// Rows at least this long are radix-sorted (below, the comparison sort's few passes win).
const RADIX_MIN_ROW: usize = 64;
/// Bits per radix digit: 2,048 counters (8 KiB) stay in L1.
const RADIX_DIGIT_BITS: u32 = 11;

/// Stable LSD radix sort of a row by (receptor, delay, post), on the row's own ranges: each synapse's rank
/// `((receptor − r_min) · n_delay + (delay − d_min)) · n_post + (post − p_min)` orders exactly as the triple,
/// and needs only as many 11-bit digits as the row's span (2 passes for a full-scale PD14 row of 77 k
/// possible targets and a few dozen delays, instead of a quicksort's dozen passes with unpredictable branches).
fn radix_sort_row(row: &mut [Synapse], scratch: &mut Vec<Synapse>) {
    let (mut r_min, mut r_max, mut d_min, mut d_max, mut p_min, mut p_max) = (u8::MAX, 0, u16::MAX, 0, u32::MAX, 0);
    for s in row.iter() {
        (r_min, r_max) = (r_min.min(s.receptor), r_max.max(s.receptor));
        (d_min, d_max) = (d_min.min(s.delay), d_max.max(s.delay));
        (p_min, p_max) = (p_min.min(s.post), p_max.max(s.post));
    }
    let n_post = (p_max - p_min) as u64 + 1;
    let n_delay = (d_max - d_min) as u64 + 1;
    let span = ((r_max - r_min) as u64 + 1) * n_delay * n_post; // ≤ 2^8 · 2^16 · 2^32
    let rank = |s: &Synapse| {
        ((s.receptor - r_min) as u64 * n_delay + (s.delay - d_min) as u64) * n_post + (s.post - p_min) as u64
    };
    let passes = (64 - (span - 1).leading_zeros()).div_ceil(RADIX_DIGIT_BITS);
    scratch.clear();
    scratch.extend_from_slice(row);
    let mask = (1u64 << RADIX_DIGIT_BITS) - 1;
    let mut counts = [0u32; 1 << RADIX_DIGIT_BITS];
    for pass in 0..passes {
        let shift = pass * RADIX_DIGIT_BITS;
        let digit = |s: &Synapse| ((rank(s) >> shift) & mask) as usize;
        let (from, to): (&[Synapse], &mut [Synapse]) =
            if pass % 2 == 0 { (&*row, &mut scratch[..]) } else { (&scratch[..], &mut *row) };
        counts.fill(0);
        from.iter().for_each(|s| counts[digit(s)] += 1);
        let mut start = 0;
        for c in counts.iter_mut() {
            (*c, start) = (start, start + *c);
        }
        for s in from {
            let d = digit(s);
            to[counts[d] as usize] = *s;
            counts[d] += 1;
        }
    }
    if passes % 2 == 1 {
        row.copy_from_slice(scratch);
    }
}

/// The distinct weight bit patterns, sorted, or `None` as soon as there are more than [`MAX_TABLE_WEIGHTS`]
/// (without a copy of all weights: per-chunk sets, merged).
fn distinct_weights(w: &[f32]) -> Option<Vec<u32>> {
    let sets: Vec<std::collections::HashSet<u32>> = w
        .par_chunks(1 << 20)
        .map(|c| {
            let mut s = std::collections::HashSet::new();
            for x in c {
                s.insert(x.to_bits());
                if s.len() > MAX_TABLE_WEIGHTS {
                    return None;
                }
            }
            Some(s)
        })
        .collect::<Option<_>>()?;
    let mut all = std::collections::HashSet::new();
    for s in sets {
        all.extend(s);
        if all.len() > MAX_TABLE_WEIGHTS {
            return None;
        }
    }
    let mut distinct: Vec<u32> = all.into_iter().collect();
    distinct.sort_unstable();
    Some(distinct)
}

fn encode_weights(w: Vec<f32>) -> Weights {
    let Some(distinct) = distinct_weights(&w).filter(|_| !w.is_empty()) else {
        return Weights::Dense(w);
    };
    let index: Vec<u16> =
        w.par_iter().map(|x| distinct.binary_search(&x.to_bits()).expect("weight present") as u16).collect();
    Weights::Table { values: distinct.into_iter().map(f32::from_bits).collect(), index }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The radix sort gives the comparison sort's order on rows of every shape: one or many receptors, delays and
    /// targets, offsets far from zero, ranges needing 1 to 4 digits, multapses (equal keys) with different
    /// weights, and rows just above and below the radix threshold.
    #[test]
    fn radix_row_sort_equals_comparison_sort() {
        use neurotwin_models::{CounterRng, SequenceRng, Stream};
        let mut r = SequenceRng::new(CounterRng::new(5, Stream::Connectivity), 0);
        let full = |s: &Synapse| (s.receptor, s.delay, s.post, s.weight.to_bits());
        let mut scratch = Vec::new();
        for (len, n_rec, n_delay, post_lo, n_post) in [
            (63usize, 2u64, 5u64, 0u32, 100u64),
            (64, 1, 1, 0, 1),
            (65, 3, 40, 1_000, 77_169),
            (4_000, 1, 30, 0, 77_169),
            (4_000, 2, 2, u32::MAX - 5_000_000, 5_000_000),
            (10_000, 200, 60_000, 7, u32::MAX as u64 / 2),
            (3_000, 1, 1, 42, 20),
        ] {
            let mut row: Vec<Synapse> = (0..len)
                .map(|_| Synapse {
                    pre: 3,
                    post: post_lo + r.below(n_post) as u32,
                    weight: [1.5f32, -2.0, 0.25][r.below(3) as usize],
                    delay: 1 + r.below(n_delay) as u16,
                    receptor: r.below(n_rec) as u8,
                })
                .collect();
            let mut expected = row.clone();
            expected.sort_by_key(full);
            sort_row(&mut row, &mut scratch);
            assert!(row.iter().map(full).eq(expected.iter().map(full)), "row of {len}");
        }
    }

    fn syn(pre: u32, post: u32, weight: f32, delay: u16, receptor: u8) -> Synapse {
        Synapse { pre, post, weight, delay, receptor }
    }

    #[test]
    fn rows_segments_and_order_do_not_depend_on_input_order() {
        let mut s = vec![
            syn(2, 0, 1.0, 1, 0),
            syn(0, 3, -2.0, 2, 1),
            syn(0, 1, 0.5, 1, 0),
            syn(0, 2, 0.5, 1, 0),
            syn(0, 0, 0.25, 3, 0),
        ];
        let a = SynapseMatrix::from_synapses(3, 4, s.clone()).unwrap();
        s.reverse();
        let b = SynapseMatrix::from_synapses(3, 4, s).unwrap();
        assert_eq!(a, b);
        a.check().unwrap();
        let row0: Vec<_> = a.row(0).map(|g| (g.receptor, g.delay, g.targets.to_vec())).collect();
        assert_eq!(row0, vec![(0, 1, vec![1, 2]), (0, 3, vec![0]), (1, 2, vec![3])]);
        assert_eq!(a.row(1).count(), 0);
        assert_eq!(a.max_delay(), 3);
        assert!(matches!(a.weights, Weights::Table { .. }));
        let mut all = a.synapses();
        all.sort_by_key(|s| (s.pre, s.post));
        assert_eq!(all[0], syn(0, 0, 0.25, 3, 0));
    }

    #[test]
    fn many_distinct_weights_use_dense_storage_and_table_is_exact() {
        let s: Vec<_> = (0..70_000u32).map(|k| syn(k % 100, k % 7, k as f32 * 1e-3, 1, 0)).collect();
        let m = SynapseMatrix::from_synapses(100, 7, s).unwrap();
        assert!(matches!(m.weights, Weights::Dense(_)));
        let s: Vec<_> = (0..70_000u32).map(|k| syn(k % 100, k % 7, (k % 300) as f32 * 0.1, 1, 0)).collect();
        let m = SynapseMatrix::from_synapses(100, 7, s.clone()).unwrap();
        assert!(matches!(m.weights, Weights::Table { .. }));
        let mut got: Vec<f32> = m.synapses().iter().map(|s| s.weight).collect();
        let mut want: Vec<f32> = s.iter().map(|s| s.weight).collect();
        got.sort_by(f32::total_cmp);
        want.sort_by(f32::total_cmp);
        assert_eq!(got, want);
        assert!(m.bytes_per_synapse() < 6.1, "{}", m.bytes_per_synapse());
    }

    #[test]
    fn out_of_range_and_zero_delay_are_errors() {
        assert!(SynapseMatrix::from_synapses(2, 2, vec![syn(0, 2, 1.0, 1, 0)]).is_err());
        assert!(SynapseMatrix::from_synapses(2, 2, vec![syn(0, 1, 1.0, 0, 0)]).is_err());
        assert!(SynapseMatrix::from_synapses(2, 2, vec![syn(0, 1, f32::NAN, 1, 0)]).is_err());
    }
}
