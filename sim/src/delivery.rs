//! Spike delivery of the CPU backend: each synapse of a delivered segment adds its fixed-point weight to its
//! target's entry in an input row (exact integer sums, so the order of additions never changes a bit).
//!
//! Two choices per network, made once and printed by `--profile` ([`DeliveryStrategy`]):
//! - **when**: at emission into the delay ring slot `emission + delay` ([`Timing::Ring`]), or at the end of step
//!   `emission + delay − 1` from the spike queue into one input row per channel ([`Timing::Queue`],
//!   `crate::spike_queue`), which keeps the rows the delivery writes and the update reads in the cache;
//! - **how**: one add after another, or with a software prefetch of the entry a few synapses ahead when the rows
//!   written per step are larger than a core's L2 cache ([`Adds`]).

use neurotwin_connectome::{CompiledNetwork, Segment, WeightSlice, Weights};

use crate::cpu::{DeliveryScale, SharedMut};

/// When spikes reach the input rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// At emission, into the delay ring (`max_delay + 1` rows per channel). Needed where synapses are added from
    /// outside the step (plasticity, other processes' spikes).
    Ring,
    /// From the spike queue, one step before arrival, into a single row per channel.
    Queue,
}

/// How a segment's synapses are added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adds {
    /// One add after another: the rows written per step fit in a core's L2 cache, where a prefetch is an extra
    /// instruction per synapse for nothing (micro-benchmark of the loop, a 100 KB row: ≈ 2.0 ns a synapse
    /// without, 2.6 ns with).
    Plain,
    /// The entry [`PREFETCH_AHEAD`] synapses ahead is requested while this one is added: the rows written per
    /// step are larger than L2, and each add would otherwise wait for a miss (PD14 full scale with the ring, 1 s:
    /// 26.7 → 15.8 s).
    Prefetch,
}

/// The delivery strategy of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryStrategy {
    pub timing: Timing,
    pub adds: Adds,
    /// Bytes of input rows one step's deliveries may write (what decided `adds`).
    pub row_bytes: u64,
}

/// Rows written per step beyond this many bytes take [`Adds::Prefetch`]: 512 KiB, the L2 cache of a Zen 2/3 core
/// (1–2 MiB on newer cores; smaller is the safe side).
pub const PREFETCH_MIN_ROW_BYTES: u64 = 512 * 1024;

/// How many synapses ahead [`Adds::Prefetch`] requests the entry it will add to.
pub const PREFETCH_AHEAD: usize = 16;

impl DeliveryStrategy {
    /// The strategy for input rows of `row_entries` targets, `receptors` channels and `delays` distinct delays;
    /// `queue_allowed` when nothing adds to the rows from outside the step; `timing` when the caller chose it.
    /// `NEUROTWIN_DELIVERY` (words `ring`,
    /// `queue`, `plain`, `prefetch`, joined by `+`) overrides either choice, for A/B measurements.
    pub fn choose(
        row_entries: usize,
        receptors: usize,
        delays: usize,
        queue_allowed: bool,
        timing: Option<Timing>,
    ) -> Self {
        let asked = std::env::var("NEUROTWIN_DELIVERY").unwrap_or_default();
        let has = |w: &str| asked.split('+').any(|x| x.trim() == w);
        let timing = timing.unwrap_or(if queue_allowed && !has("ring") { Timing::Queue } else { Timing::Ring });
        let rows = match timing {
            Timing::Queue => receptors.max(1),
            Timing::Ring => receptors.max(1) * delays.max(1),
        };
        let row_bytes = (row_entries * 8 * rows) as u64;
        let adds = if has("prefetch") {
            Adds::Prefetch
        } else if has("plain") || row_bytes <= PREFETCH_MIN_ROW_BYTES {
            Adds::Plain
        } else {
            Adds::Prefetch
        };
        Self { timing, adds, row_bytes }
    }

    /// In words, for `--profile`.
    pub fn describe(&self) -> String {
        let timing = match self.timing {
            Timing::Queue => "spikes queued until their delay ends, one input row per channel",
            Timing::Ring => "at emission into the delay ring",
        };
        let adds = match self.adds {
            Adds::Plain => "plain adds",
            Adds::Prefetch => "adds with prefetch",
        };
        format!(
            "delivery: {timing}; {adds} ({:.1} MB of rows written per step, prefetch above {:.1} MB)",
            self.row_bytes as f64 / 1e6,
            PREFETCH_MIN_ROW_BYTES as f64 / 1e6
        )
    }
}

/// A hint that `p` will be written soon (no effect on results; a no-op off x86-64).
#[inline(always)]
fn prefetch_write(p: *const i64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// How many due segments ahead [`Work::Segments`] requests a segment's first targets and weights.
const SEGMENTS_AHEAD: usize = 4;

/// A hint that `p` will be read soon (no effect on results; a no-op off x86-64).
#[inline(always)]
fn prefetch_read<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `targets.partition_point(|&t| t < v)` for sorted `targets`, found by galloping from `guess`: the probes stay
/// near the guess (in its cache lines when it is close), O(log distance) of them.
pub fn lower_bound_near(targets: &[u32], v: u32, guess: usize) -> usize {
    let n = targets.len();
    let g = guess.min(n);
    let mut step = 1;
    if g < n && targets[g] < v {
        // Everything before `lo` is below v.
        let mut lo = g + 1;
        loop {
            let probe = lo + step - 1;
            if probe >= n {
                return lo + targets[lo..].partition_point(|&t| t < v);
            }
            if targets[probe] >= v {
                return lo + targets[lo..probe].partition_point(|&t| t < v);
            }
            lo = probe + 1;
            step *= 2;
        }
    }
    // Everything from `hi` on is at least v.
    let mut hi = g;
    loop {
        if hi == 0 {
            return 0;
        }
        let probe = hi.saturating_sub(step);
        if targets[probe] < v {
            return probe + 1 + targets[probe + 1..hi].partition_point(|&t| t < v);
        }
        hi = probe;
        step *= 2;
    }
}

/// What one step delivers.
#[derive(Clone, Copy)]
pub(crate) enum Work<'a> {
    /// Whole rows of `(presynaptic neuron, amount)`, each segment into ring slot `step + delay`.
    Rows(&'a [(u32, f64)]),
    /// `(segment, amount)` into slot `step + 1` (the spike queue's due segments).
    Segments(&'a [(u32, f64)]),
}

impl Work<'_> {
    /// Synapses it adds (for the choice of threads).
    pub fn synapses(&self, net: &CompiledNetwork) -> u64 {
        let m = &net.chemical;
        match self {
            Work::Rows(r) => r.iter().map(|&(pre, _)| m.row_synapses(pre)).sum(),
            Work::Segments(s) => {
                s.iter().map(|&(k, _)| m.segment_start[k as usize + 1] - m.segment_start[k as usize]).sum()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Work::Rows(r) => r.is_empty(),
            Work::Segments(s) => s.is_empty(),
        }
    }
}

/// One step's delivery into the backend's input rows, run by one or several threads over target ranges.
pub(crate) struct Delivery<'a> {
    pub net: &'a CompiledNetwork,
    pub work: Work<'a>,
    pub fixed: DeliveryScale,
    /// Fixed-point values of a weight table (`Weights::Table`), when the network has one.
    pub fixed_table: Option<&'a [i64]>,
    pub slots: usize,
    pub ring_pad: usize,
    /// The ring's first neuron: target `t` is at `t − ring_lo` in a ring row.
    pub ring_lo: usize,
    pub step: u64,
    pub spiking: bool,
    pub adds: Adds,
}

impl Delivery<'_> {
    /// Delivers to targets in `[lo, hi)`.
    pub fn run(&self, lo: u32, hi: u32, ring: SharedMut<i64>) {
        match self.work {
            Work::Rows(rows) => {
                for &(pre, amount) in rows {
                    for seg in self.net.chemical.row(pre) {
                        self.segment(seg, self.step + seg.delay as u64, amount, lo, hi, ring);
                    }
                }
            }
            Work::Segments(segments) => {
                let m = &self.net.chemical;
                for (i, &(k, amount)) in segments.iter().enumerate() {
                    // The due segments lie anywhere in the matrix, each a miss to start with: the first lines of
                    // the one SEGMENTS_AHEAD on are requested while this one is added.
                    if let Some(&(ahead, _)) = segments.get(i + SEGMENTS_AHEAD) {
                        let start = m.segment_start[ahead as usize] as usize;
                        prefetch_read(m.targets.as_ptr().wrapping_add(start));
                        prefetch_read(m.targets.as_ptr().wrapping_add(start + 16));
                        match &m.weights {
                            Weights::Dense(w) => prefetch_read(w.as_ptr().wrapping_add(start)),
                            Weights::Table { index, .. } => prefetch_read(index.as_ptr().wrapping_add(start)),
                        }
                    }
                    self.segment(m.segment(k as usize), self.step + 1, amount, lo, hi, ring);
                }
            }
        }
    }

    /// The synapses of `seg` onto targets in `[lo, hi)` into the slot of step `arrival`.
    #[inline]
    fn segment(&self, seg: Segment<'_>, arrival: u64, amount: f64, lo: u32, hi: u32, ring: SharedMut<i64>) {
        let len = seg.targets.len();
        let n_post = (self.net.chemical.n_post as u64).max(1);
        // Where a target bound falls in the segment, searched from where it would fall if the targets were spread
        // evenly (a binary search from the middle costs ~log2(len) dependent cache misses).
        let bound = |v: u32| match v as u64 {
            0 => 0,
            v if v >= n_post => len,
            v => lower_bound_near(seg.targets, v as u32, (v * len as u64 / n_post) as usize),
        };
        let (a, b) = (bound(lo), bound(hi));
        if a == b {
            return;
        }
        let slot = (arrival % self.slots as u64) as usize;
        let row = (seg.receptor as usize * self.slots + slot) * self.ring_pad;
        // SAFETY (of the writes in `add_segment`): target t's entry is at base + t (wrapping arithmetic), an entry
        // of this slot row for every t in [lo, hi), which lies in the ring's span and belongs to this task only;
        // the slot row is not the one being read by the neuron update, which has finished.
        let base = ring.0.wrapping_add(row).wrapping_sub(self.ring_lo);
        let targets = &seg.targets[a..b];
        match (seg.weights, self.fixed_table, self.spiking) {
            (WeightSlice::Table(_, idx), Some(tab), true) => {
                let idx = &idx[a..b];
                self.add_segment(base, targets, |k| tab[idx[k] as usize]);
            }
            (w, _, true) => self.add_segment(base, targets, |k| self.fixed.to_fixed(w.get(a + k) as f64)),
            (w, _, false) => self.add_segment(base, targets, |k| self.fixed.to_fixed(w.get(a + k) as f64 * amount)),
        }
    }

    /// `*base.add(targets[k]) += value(k)` for every synapse `k` of a segment's share, with or without the
    /// prefetch of the entry [`PREFETCH_AHEAD`] synapses ahead.
    #[inline(always)]
    fn add_segment(&self, base: *mut i64, targets: &[u32], value: impl Fn(usize) -> i64) {
        let n = targets.len();
        let prefetched = match self.adds {
            Adds::Prefetch => n.saturating_sub(PREFETCH_AHEAD),
            Adds::Plain => 0,
        };
        // SAFETY (of the writes): see `segment`: every target of the share has its entry at base + target.
        for k in 0..prefetched {
            prefetch_write(base.wrapping_add(targets[k + PREFETCH_AHEAD] as usize));
            unsafe { *base.wrapping_add(targets[k] as usize) += value(k) };
        }
        for (k, &t) in targets.iter().enumerate().skip(prefetched) {
            unsafe { *base.wrapping_add(t as usize) += value(k) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neurotwin_models::{CounterRng, Stream};

    /// The galloping search equals the binary search for every value and guess on sorted rows with repeats, gaps
    /// and ends.
    #[test]
    fn search_from_a_guess_equals_binary_search() {
        let rng = CounterRng::new(5, Stream::Trial);
        for len in [0usize, 1, 2, 3, 7, 64, 200] {
            for trial in 0..20u64 {
                let mut t: Vec<u32> = (0..len as u32).map(|k| (rng.uniform(k, trial, 0) * 50.0) as u32).collect();
                t.sort_unstable();
                for v in 0..=52u32 {
                    let want = t.partition_point(|&x| x < v);
                    for guess in [0, 1, len / 3, len / 2, len.saturating_sub(1), len, len + 5, want] {
                        assert_eq!(lower_bound_near(&t, v, guess), want, "len {len}, v {v}, guess {guess}, {t:?}");
                    }
                }
            }
        }
    }
}
