//! Host builds of the kernels of `cuda/spikes.cu`: spike compaction into a window's spike record and
//! warp-cooperative delivery of spikes or graded activity, launched with the same grid as on a GPU.

use super::{LANES, WRAPPER_THREADS, blocks_for, len_u32, raw};
use crate::packs::{
    Clock, DeliverGradedArgs, DeliverSpikesArgs, DevPtr, SilenceActivityArgs, SpikeChunkTotalsArgs, SpikeMasksArgs,
    SpikePiecesArgs, SpikeScanGroupsArgs, SpikeScanTopsArgs, SpikeScatterArgs, SpikeWorkArgs, SpikeWorkBaseArgs,
};
use crate::{DELIVERY_BLOCKS, DELIVERY_THREADS, compaction_chunk, compaction_group, segment_pieces, work_chunk};

/// Weights of [`SynapseRows`].
#[derive(Clone, Debug)]
pub enum RowWeights {
    /// One f32 per synapse, converted to fixed point by the kernel.
    Dense(Vec<f32>),
    /// A weight table: synapse `k` has weight `values[index[k]]` (f32), whose fixed-point value (for spikes)
    /// is `fixed_table[index[k]]`, converted on the host with the kernel's rounding.
    Table { index: Vec<u16>, values: Vec<f32>, fixed_table: Vec<i64> },
}

/// The chemical synapse matrix (`SynapseMatrix`: CSR by presynaptic neuron, segments of equal receptor and
/// delay) for `deliver_spikes`, validated once together with the ring layout it writes into.
#[derive(Clone, Debug)]
pub struct SynapseRows {
    n_pre: usize,
    n_channels: usize,
    slots: usize,
    n_pad: usize,
    row_segments: Vec<u32>,
    segment_start: Vec<u64>,
    /// `segment_pieces(segment_start)`: 32-synapse pieces before each segment.
    seg_piece: Vec<u64>,
    segment_delay: Vec<u16>,
    segment_receptor: Vec<u8>,
    targets: Vec<u32>,
    weights: RowWeights,
}

/// Ring layout of [`SynapseRows`]: `ring[((receptor * slots) + slot) * n_pad + target]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLayout {
    /// Receptor channels.
    pub n_channels: usize,
    /// Delay slots (max delay + 1).
    pub slots: usize,
    /// Row width (neurons rounded up to whole blocks of 64).
    pub n_pad: usize,
}

impl SynapseRows {
    /// Panics if the arrays are inconsistent, a receptor is `>= n_channels`, a target `>= n_pad` or a table
    /// index out of range.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n_pre: usize,
        ring: RingLayout,
        row_segments: Vec<u32>,
        segment_start: Vec<u64>,
        segment_delay: Vec<u16>,
        segment_receptor: Vec<u8>,
        targets: Vec<u32>,
        weights: RowWeights,
    ) -> Self {
        Self::check(n_pre, ring, &row_segments, &segment_start, &segment_delay, &segment_receptor, &targets);
        match &weights {
            RowWeights::Dense(w) => assert_eq!(w.len(), targets.len(), "one weight per synapse"),
            RowWeights::Table { index, values, fixed_table } => {
                assert_eq!(index.len(), targets.len(), "one weight index per synapse");
                assert_eq!(values.len(), fixed_table.len(), "one fixed-point value per table weight");
                assert!(index.iter().all(|&k| (k as usize) < fixed_table.len()), "weight index out of range");
            }
        }
        Self {
            n_pre,
            n_channels: ring.n_channels,
            slots: ring.slots,
            n_pad: ring.n_pad,
            row_segments,
            seg_piece: segment_pieces(&segment_start),
            segment_start,
            segment_delay,
            segment_receptor,
            targets,
            weights,
        }
    }

    /// The structural checks of [`SynapseRows::new`] on borrowed arrays (everything but the weights), for
    /// callers that keep the arrays elsewhere (e.g. in device memory) and launch the raw kernels themselves.
    ///
    /// # Panics
    /// As [`SynapseRows::new`].
    pub fn check(
        n_pre: usize,
        ring: RingLayout,
        row_segments: &[u32],
        segment_start: &[u64],
        segment_delay: &[u16],
        segment_receptor: &[u8],
        targets: &[u32],
    ) {
        let n_seg = segment_delay.len();
        assert!(ring.slots > 0 && ring.n_channels > 0, "slots and n_channels must be > 0");
        assert_eq!(row_segments.len(), n_pre + 1, "row_segments must have n_pre + 1 entries");
        assert_eq!(row_segments[0], 0, "row_segments[0] must be 0");
        assert!(row_segments.windows(2).all(|w| w[0] <= w[1]), "row_segments must be non-decreasing");
        assert_eq!(row_segments[n_pre] as usize, n_seg, "row_segments[n_pre] must equal the number of segments");
        assert_eq!(segment_receptor.len(), n_seg, "one receptor per segment");
        assert_eq!(segment_start.len(), n_seg + 1, "segment_start must have n_segments + 1 entries");
        assert_eq!(segment_start[0], 0, "segment_start[0] must be 0");
        assert!(segment_start.windows(2).all(|w| w[0] <= w[1]), "segment_start must be non-decreasing");
        assert_eq!(segment_start[n_seg] as usize, targets.len(), "segment_start must end at the number of synapses");
        assert!(segment_receptor.iter().all(|&r| (r as usize) < ring.n_channels), "receptor out of range");
        assert!(targets.iter().all(|&t| (t as usize) < ring.n_pad), "target out of range");
    }
}

/// The spike record of a window of up to `window` steps (the device buffers of `cuda/spikes.cu`): window step
/// `k`'s spikes are `rec_spikes[rec_base[k]..rec_base[k + 1]]`, ascending. Sized for every neuron spiking in
/// every step, so it cannot overflow.
#[derive(Clone, Debug)]
pub struct SpikeRecord {
    n_neurons: usize,
    window: usize,
    chunk: u32,
    group: u32,
    masks: Vec<u64>,
    chunk_offset: Vec<u64>,
    group_offset: Vec<u64>,
    rec_base: Vec<u64>,
    rec_spikes: Vec<u32>,
}

impl SpikeRecord {
    /// A record for `n_neurons` neurons and `window >= 1` steps.
    pub fn new(n_neurons: usize, window: usize) -> Self {
        assert!(window >= 1, "the window must hold at least one step");
        let n_words = n_neurons.div_ceil(LANES);
        let chunk = compaction_chunk(n_words);
        let n_chunks = n_words.div_ceil(chunk as usize);
        let group = compaction_group(n_chunks);
        let n_groups = n_chunks.div_ceil(group as usize);
        Self {
            n_neurons,
            window,
            chunk,
            group,
            masks: vec![0; n_words.max(1)],
            chunk_offset: vec![0; n_chunks.max(1)],
            group_offset: vec![0; n_groups.max(1)],
            rec_base: vec![0; window + 1],
            rec_spikes: vec![0; (window * n_neurons).max(1)],
        }
    }

    /// Steps the record holds.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Kernels `spike_masks`, `spike_chunk_totals`, `spike_scan_groups`, `spike_scan_tops`, `spike_scatter`:
    /// appends the neurons whose flag is non-zero as window step `k` (steps `0..k` must have been compacted
    /// since the window began).
    pub fn compact(&mut self, spiked: &[u8], k: usize) {
        assert_eq!(spiked.len(), self.n_neurons, "one flag per neuron");
        assert!(k < self.window, "window step {k} beyond the window of {}", self.window);
        let n_words = self.n_neurons.div_ceil(LANES);
        let n_chunks = n_words.div_ceil(self.chunk as usize);
        let n_groups = n_chunks.div_ceil(self.group as usize);
        let clock = Clock::at(0, len_u32(k));
        let masks = SpikeMasksArgs {
            spiked: DevPtr::host(spiked.as_ptr()),
            masks: DevPtr::host(self.masks.as_mut_ptr()),
            n_neurons: len_u32(self.n_neurons),
            pad: 0,
        };
        let totals = SpikeChunkTotalsArgs {
            masks: DevPtr::host(self.masks.as_ptr()),
            chunk_offset: DevPtr::host(self.chunk_offset.as_mut_ptr()),
            n_words: len_u32(n_words),
            chunk: self.chunk,
        };
        let groups = SpikeScanGroupsArgs {
            chunk_offset: DevPtr::host(self.chunk_offset.as_mut_ptr()),
            group_offset: DevPtr::host(self.group_offset.as_mut_ptr()),
            n_chunks: len_u32(n_chunks),
            group: self.group,
        };
        let tops = SpikeScanTopsArgs {
            group_offset: DevPtr::host(self.group_offset.as_mut_ptr()),
            rec_base: DevPtr::host(self.rec_base.as_mut_ptr()),
            clock: DevPtr::host(&clock),
            n_groups: len_u32(n_groups),
            pad: 0,
        };
        let scatter = SpikeScatterArgs {
            masks: DevPtr::host(self.masks.as_ptr()),
            chunk_offset: DevPtr::host(self.chunk_offset.as_ptr()),
            group_offset: DevPtr::host(self.group_offset.as_ptr()),
            rec_spikes: DevPtr::host(self.rec_spikes.as_mut_ptr()),
            n_words: len_u32(n_words),
            chunk: self.chunk,
            group: self.group,
            pad: 0,
        };
        // SAFETY: masks holds max(n_words, 1) words (threads w < n_words write masks[w], read spiked[< n_neurons]);
        // chunk_offset holds max(n_chunks, 1) entries (threads c < n_chunks read masks of their chunk, < n_words);
        // the group scan's threads g < n_groups read/write chunk_offset[< n_chunks] and write group_offset[g]
        // (max(n_groups, 1) entries); the top scan reads/writes group_offset[< n_groups] and rec_base[k],
        // rec_base[k + 1] with k + 1 <= window; the scatter reads chunk_offset[c], group_offset[c / group] with
        // c / group < n_groups and writes rec_spikes from rec_base[k] on, at most n_neurons per step, so below
        // (k + 1) * n_neurons <= rec_spikes.len() (rec_base[k] <= k * n_neurons by induction over the steps). The
        // pointers stay valid across the launches (no buffer is resized) and the clock (k) is a live local.
        unsafe {
            raw::spike_masks(blocks_for(n_words), WRAPPER_THREADS, &masks);
            raw::spike_chunk_totals(blocks_for(n_chunks), WRAPPER_THREADS, &totals);
            raw::spike_scan_groups(blocks_for(n_groups), WRAPPER_THREADS, &groups);
            raw::spike_scan_tops(1, 1, &tops);
            raw::spike_scatter(blocks_for(n_chunks), WRAPPER_THREADS, &scatter);
        }
    }

    /// The record offsets: window step `k`'s spikes are `rec_spikes[rec_base[k]..rec_base[k + 1]]` (valid for
    /// the steps compacted in this window; `window + 1` entries).
    pub fn rec_base(&self) -> &[u64] {
        &self.rec_base
    }

    /// Words of 64 neurons per compaction chunk and chunks per group of this record's scan
    /// ([`compaction_chunk`], [`compaction_group`]).
    pub fn chunk_and_group(&self) -> (u32, u32) {
        (self.chunk, self.group)
    }

    /// The spikes of window step `k` (valid once `compact(.., k)` ran in this window).
    pub fn step_spikes(&self, k: usize) -> &[u32] {
        &self.rec_spikes[self.rec_base[k] as usize..self.rec_base[k + 1] as usize]
    }
}

/// Kernel `deliver_spikes` on the spikes of window step `k` of `record`: for every spiking neuron, adds the
/// fixed-point weight of each of its synapses (dense: `round_ties_even(w * scale)`) to
/// `ring[((receptor * slots) + (step + delay) % slots) * n_pad + target]` with integer atomics.
pub fn deliver_spikes(rows: &SynapseRows, record: &SpikeRecord, k: usize, scale: f64, step: u64, ring: &mut [i64]) {
    run_deliver(false, rows, record, k, scale, step, ring);
}

/// The same kernel built with `NEUROTWIN_BREAK_FOR_TEST` (drops the last synapse of every segment). Exists
/// only so that tests can prove the backend conformance check detects a broken delivery.
#[doc(hidden)]
pub fn deliver_spikes_broken_for_test(
    rows: &SynapseRows,
    record: &SpikeRecord,
    k: usize,
    scale: f64,
    step: u64,
    ring: &mut [i64],
) {
    run_deliver(true, rows, record, k, scale, step, ring);
}

fn run_deliver(
    broken: bool,
    rows: &SynapseRows,
    record: &SpikeRecord,
    k: usize,
    scale: f64,
    step: u64,
    ring: &mut [i64],
) {
    assert_eq!(ring.len(), rows.n_channels * rows.slots * rows.n_pad, "ring does not match the layout");
    assert_eq!(record.n_neurons, rows.n_pre, "the spike record must cover the presynaptic neurons");
    assert!(k < record.window, "window step {k} beyond the window");
    assert!(record.rec_base[k] <= record.rec_base[k + 1], "window step {k} was not compacted");
    let (weights, weight_index, fixed_table) = match &rows.weights {
        RowWeights::Dense(w) => (DevPtr::host(w.as_ptr()), DevPtr::NULL, DevPtr::NULL),
        RowWeights::Table { index, fixed_table, .. } => {
            (DevPtr::NULL, DevPtr::host(index.as_ptr()), DevPtr::host(fixed_table.as_ptr()))
        }
    };
    let clock = Clock::at(step, len_u32(k));
    let work = number_pieces(rows, record, &clock);
    let args = DeliverSpikesArgs {
        rec_base: DevPtr::host(record.rec_base.as_ptr()),
        rec_spikes: DevPtr::host(record.rec_spikes.as_ptr()),
        work_start: DevPtr::host(work.start.as_ptr()),
        work_total: DevPtr::host(work.total.as_ptr()),
        row_segments: DevPtr::host(rows.row_segments.as_ptr()),
        seg_piece: DevPtr::host(rows.seg_piece.as_ptr()),
        segment_start: DevPtr::host(rows.segment_start.as_ptr()),
        segment_delay: DevPtr::host(rows.segment_delay.as_ptr()),
        segment_receptor: DevPtr::host(rows.segment_receptor.as_ptr()),
        targets: DevPtr::host(rows.targets.as_ptr()),
        weights,
        weight_index,
        fixed_table,
        ring: DevPtr::host(ring.as_mut_ptr()),
        clock: DevPtr::host(&clock),
        scale,
        slots: len_u32(rows.slots),
        n_pad: len_u32(rows.n_pad),
    };
    let f = if broken { raw::deliver_spikes_broken_for_test } else { raw::deliver_spikes };
    // SAFETY: `SynapseRows::new` checked the CSR structure (row_segments, segment_start, per-segment arrays),
    // receptors < n_channels, targets < n_pad and table indices, and seg_piece is its piece prefix (n_seg + 1
    // entries); the record's spikes of step k are neuron ids < n_neurons = n_pre written by `compact` within
    // rec_spikes; work_start (n_pre entries) and work_total[0..2] were written by `number_pieces` for step k, so
    // every piece w < work_total[1] maps to a spike j < its spike count and a segment of that spike's row, and
    // the synapse index is below that segment's end; slots are taken modulo `slots`, so every ring index is
    // < n_channels * slots * n_pad = ring.len(). Exactly one of `weights` / (`weight_index`, `fixed_table`) is
    // non-null. The clock (step, k) is a live local.
    unsafe { f(DELIVERY_BLOCKS, DELIVERY_THREADS, &args) };
}

/// The per-step numbering of the (spike, 32-synapse piece) items of `deliver_spikes`.
struct Pieces {
    /// First piece of each spike of the step (n_neurons entries, the step's spike count used).
    start: Vec<u64>,
    /// `[0, number of pieces]`.
    total: Vec<u64>,
}

/// Kernels `spike_pieces`, `spike_work`, `spike_scan_groups`, `spike_scan_tops`, `spike_work_base`: numbers the
/// pieces of the spikes of window step `clock.k` with the grids of the GPU step sequence.
fn number_pieces(rows: &SynapseRows, record: &SpikeRecord, clock: &Clock) -> Pieces {
    let max_spikes = record.n_neurons;
    let chunk = work_chunk(max_spikes);
    let n_chunks = max_spikes.div_ceil(chunk as usize);
    let group = compaction_group(n_chunks);
    let n_groups = n_chunks.div_ceil(group as usize);
    let mut start = vec![0u64; max_spikes.max(1)];
    let mut chunk_total = vec![0u64; n_chunks.max(1)];
    let mut group_total = vec![0u64; n_groups.max(1)];
    let mut total = vec![0u64; 2];
    let pieces = SpikePiecesArgs {
        rec_base: DevPtr::host(record.rec_base.as_ptr()),
        rec_spikes: DevPtr::host(record.rec_spikes.as_ptr()),
        row_segments: DevPtr::host(rows.row_segments.as_ptr()),
        seg_piece: DevPtr::host(rows.seg_piece.as_ptr()),
        work_start: DevPtr::host(start.as_mut_ptr()),
        clock: DevPtr::host(clock),
        max_spikes: len_u32(max_spikes),
        pad: 0,
    };
    let work = SpikeWorkArgs {
        rec_base: DevPtr::host(record.rec_base.as_ptr()),
        work_start: DevPtr::host(start.as_mut_ptr()),
        work_chunk: DevPtr::host(chunk_total.as_mut_ptr()),
        clock: DevPtr::host(clock),
        max_spikes: len_u32(max_spikes),
        chunk,
    };
    let groups = SpikeScanGroupsArgs {
        chunk_offset: DevPtr::host(chunk_total.as_mut_ptr()),
        group_offset: DevPtr::host(group_total.as_mut_ptr()),
        n_chunks: len_u32(n_chunks),
        group,
    };
    // A null clock: the top scan runs with k = 0 (total[0] = 0, total[1] = the step's pieces).
    let tops = SpikeScanTopsArgs {
        group_offset: DevPtr::host(group_total.as_mut_ptr()),
        rec_base: DevPtr::host(total.as_mut_ptr()),
        clock: DevPtr::NULL,
        n_groups: len_u32(n_groups),
        pad: 0,
    };
    let base = SpikeWorkBaseArgs {
        rec_base: DevPtr::host(record.rec_base.as_ptr()),
        work_chunk: DevPtr::host(chunk_total.as_ptr()),
        work_group: DevPtr::host(group_total.as_ptr()),
        work_start: DevPtr::host(start.as_mut_ptr()),
        clock: DevPtr::host(clock),
        max_spikes: len_u32(max_spikes),
        chunk,
        group,
        pad: 0,
    };
    // SAFETY: spike_pieces: threads j < min(count, n_neurons) read rec_base[k], rec_base[k + 1] (k < window)
    // and the step's spike j (within rec_spikes; ids < n_pre, so row_segments[id + 1] and seg_piece of a segment
    // index <= n_seg are in bounds) and write start[j] (n_neurons entries). spike_work: threads c < n_chunks
    // read and write start[j] for j < min((c + 1) * chunk, count) <= n_neurons and write chunk_total[c]
    // (n_chunks). spike_scan_groups: threads g < n_groups over chunk_total[< n_chunks], group_total[g].
    // spike_scan_tops: one thread, group_total[< n_groups] and total[0], total[1] (k = 0). spike_work_base:
    // threads j < min(count, n_neurons) read chunk_total[j / chunk] and group_total[j / chunk / group], both in
    // bounds, and update start[j]. k = clock.k < window (checked by the caller); the vectors are not resized
    // between the launches, so the packs' pointers stay valid, and the clock outlives the call.
    unsafe {
        raw::spike_pieces(blocks_for(max_spikes), WRAPPER_THREADS, &pieces);
        raw::spike_work(blocks_for(n_chunks), WRAPPER_THREADS, &work);
        raw::spike_scan_groups(blocks_for(n_groups), WRAPPER_THREADS, &groups);
        raw::spike_scan_tops(1, 1, &tops);
        raw::spike_work_base(blocks_for(max_spikes), WRAPPER_THREADS, &base);
    }
    Pieces { start, total }
}

/// Kernel `deliver_graded`: every neuron `i` with `activity[i] != 0` adds `round_ties_even(w * activity[i] *
/// scale)` for each synapse of its row to the ring (layout as [`deliver_spikes`]).
pub fn deliver_graded(rows: &SynapseRows, activity: &[f64], scale: f64, step: u64, ring: &mut [i64]) {
    assert_eq!(ring.len(), rows.n_channels * rows.slots * rows.n_pad, "ring does not match the layout");
    assert_eq!(activity.len(), rows.n_pre, "one activity per presynaptic neuron");
    let (weights, weight_index, weight_values) = match &rows.weights {
        RowWeights::Dense(w) => (DevPtr::host(w.as_ptr()), DevPtr::NULL, DevPtr::NULL),
        RowWeights::Table { index, values, .. } => {
            (DevPtr::NULL, DevPtr::host(index.as_ptr()), DevPtr::host(values.as_ptr()))
        }
    };
    let clock = Clock::at(step, 0);
    let args = DeliverGradedArgs {
        activity: DevPtr::host(activity.as_ptr()),
        row_segments: DevPtr::host(rows.row_segments.as_ptr()),
        segment_start: DevPtr::host(rows.segment_start.as_ptr()),
        segment_delay: DevPtr::host(rows.segment_delay.as_ptr()),
        segment_receptor: DevPtr::host(rows.segment_receptor.as_ptr()),
        targets: DevPtr::host(rows.targets.as_ptr()),
        weights,
        weight_index,
        weight_values,
        ring: DevPtr::host(ring.as_mut_ptr()),
        clock: DevPtr::host(&clock),
        scale,
        n_neurons: len_u32(rows.n_pre),
        slots: len_u32(rows.slots),
        n_pad: len_u32(rows.n_pad),
        pad: 0,
    };
    // SAFETY: as in `run_deliver`; neurons i < n_pre read activity[i] and their validated row; exactly one of
    // `weights` / (`weight_index`, `weight_values`) is non-null and table indices are < values.len() (checked by
    // `new`). The clock (step) is a live local.
    unsafe { raw::deliver_graded(DELIVERY_BLOCKS, DELIVERY_THREADS, &args) };
}

/// Kernel `silence_activity`: `activity[i] = 0` for neurons whose bit `i % 64` of `silenced[i / 64]` is set.
pub fn silence_activity(silenced: &[u64], activity: &mut [f64]) {
    assert!(silenced.len() >= activity.len().div_ceil(LANES), "silenced must have one word per block");
    let n = activity.len();
    let args = SilenceActivityArgs {
        silenced: DevPtr::host(silenced.as_ptr()),
        activity: DevPtr::host(activity.as_mut_ptr()),
        n_neurons: len_u32(n),
        pad: 0,
    };
    // SAFETY: threads i < activity.len() read silenced[i / 64] (length checked) and write activity[i].
    unsafe { raw::silence_activity(blocks_for(n), WRAPPER_THREADS, &args) };
}
