//! One network simulated by several processes (MPI ranks), with exactly the spikes of one process.
//!
//! **Partition.** Neurons are owned in blocks of 64 (the CPU backend's unit of update). By default each rank
//! owns one contiguous range of blocks ([`Partition::Contiguous`]: rank `r` of `size` owns blocks
//! `[r·B/size, (r+1)·B/size)`, [`neurotwin_connectome::Share`]), holds state and delay rings only for them
//! ([`CpuBackend::new_part`]) and delivers spikes only to its own targets. The network itself may be the whole
//! one or, as `neurotwin run` under `mpirun` builds it, only this rank's share: the synapses onto its targets
//! (`CompiledNetwork::held_targets`, built by the generators' `*_part` forms or cut by `keep_share`), so that
//! memory is split too. [`Partition::RoundRobin`] (block `b` on rank `b mod size`, NEST-style) is kept for
//! comparison on whole networks: it balances cell types that are stored in runs, but every rank then holds
//! state and rings over almost the whole network and delivers every spike to almost every target.
//!
//! **Agreement.** Before the first step the ranks exchange, in one collective, their network size, owned
//! blocks, largest input weight sum and smallest delay: the blocks must tile the network in rank order, the
//! fixed-point scale and the exchange interval are the largest and smallest over all ranks (each rank sees
//! only the synapses onto its targets), so every rank computes exactly what one process would.
//!
//! **Exchange interval D.** A spike emitted at step `t` reaches its targets at `t + delay` with
//! `delay ≥ D`, the network's minimum synaptic delay in steps (NEST's and Arbor's min-delay epoch). So the
//! ranks need each other's spikes only once every `D` steps: [`DistributedBackend::advance`] updates the
//! owned blocks and delivers their spikes locally at once (into the spike queue or the delay ring, as in one
//! process: `delivery.rs`); [`DistributedBackend::drain_spikes`] gathers the spikes of all ranks (one collective,
//! [`SpikeExchange::all_gather`] ≈ `MPI_Allgatherv`), hands the remote ones with their *emission* step `t_e` to the
//! queue (which delivers at once the segments due in the next step and keeps the rest, `SpikeQueue::late`) or to
//! ring slot `(t_e + delay) mod slots`, and hands every spike (local and remote, ascending per step) to the sink,
//! so each rank records the full raster. [`Backend::spike_window`] is `D`, so the engine drains at least every
//! `D` steps; it may drain earlier (state samples, the end), which is still correct: a drained spike was emitted
//! at most `D` steps ago, so its earliest target step is not yet updated (and with the ring its latest one is
//! less than `slots` steps ahead).
//!
//! **Why the spikes are identical to one process.** Synaptic input is summed as 64-bit integers (independent
//! of the order of additions) and every random number is counter-based, keyed on (seed, stream, neuron,
//! step). A neuron's trajectory therefore depends only on the set of spikes that reach it in each step,
//! which the exchange makes the same as in one process.
//!
//! **Limits (more than one rank).** Gap junctions and graded models couple neurons through every neuron's
//! voltage or activity in every step, not through delayed spikes; they are refused with an error (run them in
//! one process). State reads ([`Backend::read_state`]) gather the values from the owning ranks (a collective,
//! so every rank must read the same neurons at the same time, as the engine does).
//!
//! **Cost.** With the contiguous partition and a network built as this rank's share, the neuron update, spike
//! delivery and the memory of synapses, state and rings are split across ranks. Every rank still keeps the
//! neuron table, the per-neuron parameter-set and stimulus indices and a row pointer per presynaptic neuron
//! (O(n) each), and receives every spike (one `Allgatherv` of 8 bytes per spike every `D` steps).

use std::sync::{Arc, Barrier, Mutex};

use crate::backend::Backend;
use crate::control::StepControl;
use crate::cpu::{CpuBackend, DeliveryScale};
use crate::delivery::Timing;
use crate::error::SimError;
use crate::setup::SimSetup;
use neurotwin_connectome::Share;
use neurotwin_models::LANES;

/// Exchange interval used when the network has no synapses (the spikes are then needed only for recording).
const INTERVAL_WITHOUT_SYNAPSES: usize = 64;

/// The collective the distributed backend needs. Every rank calls it the same number of times, in the same
/// order (as with MPI collectives).
pub trait SpikeExchange: Send {
    /// This process's rank, `0..size`.
    fn rank(&self) -> usize;
    /// Number of processes.
    fn size(&self) -> usize;
    /// The concatenation of every rank's `local`, in rank order (`MPI_Allgatherv`).
    fn all_gather(&mut self, local: &[u64]) -> Result<Vec<u64>, SimError>;
}

/// How blocks of 64 neurons are assigned to ranks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Partition {
    /// Rank `r` owns blocks `[r·B/size, (r+1)·B/size)`; delivery is split too (the default).
    #[default]
    Contiguous,
    /// Block `b` belongs to rank `b mod size`.
    RoundRobin,
}

impl Partition {
    /// Which blocks of 64 of a network of `n_neurons` rank `rank` of `size` owns.
    pub fn owned_blocks(self, n_neurons: usize, rank: usize, size: usize) -> Result<Vec<bool>, SimError> {
        let n_blocks = n_neurons.div_ceil(LANES);
        Ok(match self {
            Partition::Contiguous => {
                let share = Share::new(rank, size).map_err(|e| SimError::Setup(e.to_string()))?;
                let mine = share.blocks(n_neurons as u32);
                (0..n_blocks).map(|k| mine.contains(&(k as u32))).collect()
            }
            Partition::RoundRobin => (0..n_blocks).map(|k| k % size == rank).collect(),
        })
    }
}

/// The network's minimum synaptic delay in steps (at least 1); [`INTERVAL_WITHOUT_SYNAPSES`] without synapses.
/// For a whole network this is the exchange interval; ranks holding shares agree on the minimum over all of them
/// (`agree`), which equals this value of the whole network.
pub fn exchange_interval(net: &neurotwin_connectome::CompiledNetwork) -> usize {
    let m = &net.chemical;
    (0..m.n_segments())
        .map(|s| m.segment(s))
        .filter(|seg| !seg.targets.is_empty())
        .map(|seg| seg.delay as usize)
        .min()
        .map_or(INTERVAL_WITHOUT_SYNAPSES, |d| d.max(1))
}

/// A [`CpuBackend`] that updates this rank's share of the neurons and exchanges spikes every `D` steps.
pub struct DistributedBackend<E: SpikeExchange> {
    inner: CpuBackend,
    /// In a mutex only because [`Backend::read_state`] takes `&self` and gathers.
    exchange: Mutex<E>,
    /// An exchange failure inside `read_state` (which cannot return it), reported by the next call.
    deferred: Mutex<Option<SimError>>,
    rank: usize,
    size: usize,
    /// Per block of 64 neurons: updated by this rank.
    owned: Vec<bool>,
    interval: usize,
    /// First step of the undrained window and how many steps it has.
    window_start: u64,
    pending: usize,
    /// This rank's spikes of the window, `(step − window_start) << 32 | neuron`, ascending.
    local: Vec<u64>,
    /// Synapses held by each rank (the agreement's record), in rank order.
    rank_synapses: Vec<u64>,
    /// Scratch: one step's spikes from all ranks, and the remote ones among them.
    all_step: Vec<u32>,
    remote_step: Vec<u32>,
    /// The spikes returned by [`Backend::step`].
    stepped: Vec<u32>,
    /// Time spent in the spike exchange (two clock reads an exchange), the exchanges and the values received.
    exchange_time: std::time::Duration,
    exchanges: u64,
    exchanged_values: u64,
}

impl<E: SpikeExchange> DistributedBackend<E> {
    /// Builds this rank's part of `setup` with the contiguous partition (the network may be the whole one or this
    /// rank's share). A collective: every rank of the exchange must call it. With more than one rank, refuses gap
    /// junctions and graded models — on every rank, with the failing rank's message.
    pub fn new(setup: &SimSetup, exchange: E) -> Result<Self, SimError> {
        Self::with_partition(setup, exchange, Partition::Contiguous)
    }

    /// Like [`DistributedBackend::new`] with a chosen partition (a network holding only this rank's share
    /// takes the contiguous one).
    pub fn with_partition(setup: &SimSetup, exchange: E, partition: Partition) -> Result<Self, SimError> {
        Self::build(setup, exchange, partition, None)
    }

    /// Like [`DistributedBackend::new`] with the delivery timing chosen by the caller (for tests and
    /// measurements: the spikes are the same either way; see [`CpuBackend::with_delivery_timing`]).
    pub fn with_delivery_timing(setup: &SimSetup, exchange: E, timing: Timing) -> Result<Self, SimError> {
        Self::build(setup, exchange, Partition::Contiguous, Some(timing))
    }

    /// The delivery strategy of this rank's backend.
    pub fn delivery_strategy(&self) -> crate::delivery::DeliveryStrategy {
        self.inner.delivery_strategy()
    }

    fn build(
        setup: &SimSetup,
        mut exchange: E,
        partition: Partition,
        timing: Option<Timing>,
    ) -> Result<Self, SimError> {
        let (rank, size) = (exchange.rank(), exchange.size());
        if size == 0 || rank >= size {
            return Err(SimError::Setup(format!("invalid process group: rank {rank} of {size}")));
        }
        // Every rank takes part in the same collectives whatever happens: a rank that cannot go on says so and
        // all stop with its error (no rank waits forever in a collective the failed one never joins).
        let checked = check_part(setup, rank, size, partition);
        all_ok(&mut exchange, checked.as_ref().err())?;
        let owned = checked?;
        let agreed = agree(&mut exchange, &setup.network, &owned, partition)?;
        let inner = CpuBackend::new_part(setup, owned.clone(), agreed.scale, timing);
        all_ok(&mut exchange, inner.as_ref().err())?;
        let inner = inner?;
        let interval = agreed.interval;
        Ok(Self {
            inner,
            exchange: Mutex::new(exchange),
            deferred: Mutex::new(None),
            rank,
            size,
            owned,
            interval,
            window_start: 0,
            pending: 0,
            local: Vec::new(),
            rank_synapses: agreed.rank_synapses,
            all_step: Vec::new(),
            remote_step: Vec::new(),
            stepped: Vec::new(),
            exchange_time: std::time::Duration::ZERO,
            exchanges: 0,
            exchanged_values: 0,
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The exchange interval `D` in steps (the minimum synaptic delay).
    pub fn interval(&self) -> usize {
        self.interval
    }

    /// Synapses held by each rank, in rank order (the memory split).
    pub fn synapses_per_rank(&self) -> &[u64] {
        &self.rank_synapses
    }

    /// The exchange, for the next run.
    pub fn into_exchange(self) -> E {
        self.exchange.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn take_deferred(&mut self) -> Result<(), SimError> {
        match self.deferred.get_mut().map_err(|_| poisoned())?.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn gather(&mut self, local: &[u64]) -> Result<Vec<u64>, SimError> {
        let started = std::time::Instant::now();
        let all = self.exchange.get_mut().map_err(|_| poisoned())?.all_gather(local);
        self.exchange_time += started.elapsed();
        self.exchanges += 1;
        self.exchanged_values += all.as_ref().map_or(0, |a| a.len() as u64);
        all
    }

    /// Spike exchanges so far and the bytes this rank received in them (8 per spike of every rank).
    pub fn exchange_volume(&self) -> (u64, u64) {
        (self.exchanges, self.exchanged_values * 8)
    }

    /// Seconds spent in the spike exchange so far (waiting for the slowest rank included).
    pub fn exchange_seconds(&self) -> f64 {
        self.exchange_time.as_secs_f64()
    }
}

/// This rank's blocks of `setup`, or why it cannot take part: a network built for another rank's share, gap
/// junctions or a graded model on several ranks.
fn check_part(setup: &SimSetup, rank: usize, size: usize, partition: Partition) -> Result<Vec<bool>, SimError> {
    let net = &setup.network;
    let n = net.n_neurons();
    if net.held_targets.is_some() && partition != Partition::Contiguous {
        return Err(SimError::Setup(
            "a network holding one rank's share is split into contiguous parts; use Partition::Contiguous".into(),
        ));
    }
    if size > 1 {
        if !setup.plasticity.is_empty() {
            return Err(SimError::Setup(
                "plastic synapses (STDP) are not split across processes yet; run the scenario in one process \
                 (without mpirun)"
                    .into(),
            ));
        }
        if !net.gap.is_empty() {
            return Err(SimError::Setup(format!(
                "the network has {} gap-junction entries, which need every neuron's voltage in every step; \
                 distributed runs exchange only delayed spikes, so run it in one process (without mpirun)",
                net.gap.n_entries()
            )));
        }
        if !setup.model.is_spiking() {
            return Err(SimError::Setup(
                "graded models transmit every neuron's activity in every step; distributed runs exchange only \
                 spikes, so run it in one process (without mpirun) or use a spiking model"
                    .into(),
            ));
        }
    }
    match &net.held_targets {
        // The blocks of the share the network was built for (`agree` checks that the shares tile the network).
        Some(held) => {
            let blocks = held.start as usize / LANES..(held.end as usize).div_ceil(LANES);
            let (start, end) = (held.start as usize, held.end as usize);
            if !start.is_multiple_of(LANES) || (!end.is_multiple_of(LANES) && end != n) {
                return Err(SimError::Setup(format!(
                    "the network holds the synapses onto neurons {}..{}, not a range of whole blocks of {LANES}",
                    held.start, held.end
                )));
            }
            Ok((0..n.div_ceil(LANES)).map(|b| blocks.contains(&b)).collect())
        }
        None => partition.owned_blocks(n, rank, size),
    }
}

/// A collective every rank calls at the same point with its own failure, if any: all return `Ok` when every
/// rank succeeded, otherwise the same error on every rank — the lowest failing rank's message, naming the rank.
pub fn all_ok<E: SpikeExchange, D: std::fmt::Display>(exchange: &mut E, failure: Option<D>) -> Result<(), SimError> {
    // [words that follow, message length in bytes, the message's bytes packed 8 to a word]
    let failed = failure.is_some();
    let text = failure.map(|e| e.to_string()).unwrap_or_default();
    let bytes = text.as_bytes();
    let mut mine = vec![0u64, failed as u64 * (bytes.len() as u64 + 1)];
    mine.extend(bytes.chunks(8).map(|c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(w)
    }));
    mine[0] = (mine.len() - 1) as u64;
    let all = exchange.all_gather(&mine)?;
    let (mut k, mut rank) = (0usize, 0usize);
    while k < all.len() {
        let words = all[k] as usize;
        let (len, packed) = (all.get(k + 1).copied().unwrap_or(0), all.get(k + 2..k + 1 + words).unwrap_or(&[]));
        if len > 0 {
            let bytes: Vec<u8> = packed.iter().flat_map(|w| w.to_le_bytes()).take(len as usize - 1).collect();
            return Err(SimError::Setup(format!(
                "rank {rank} of {}: {}",
                exchange.size(),
                String::from_utf8_lossy(&bytes)
            )));
        }
        k += 1 + words;
        rank += 1;
    }
    Ok(())
}

/// What every rank must use alike, agreed in [`agree`].
struct Agreed {
    scale: DeliveryScale,
    interval: usize,
    rank_synapses: Vec<u64>,
}

/// Values each rank contributes to the agreement.
const AGREE_FIELDS: usize = 6;

/// One collective before the first step: every rank sends its network size, owned block range, largest input
/// weight sum, smallest synaptic delay and synapse count; all check the same things and derive the same scale
/// and interval (the largest input and the smallest delay over all ranks, as one process would compute them).
fn agree<E: SpikeExchange>(
    exchange: &mut E,
    net: &neurotwin_connectome::CompiledNetwork,
    owned: &[bool],
    partition: Partition,
) -> Result<Agreed, SimError> {
    let first = owned.iter().position(|&o| o).unwrap_or(owned.len());
    let end = owned.iter().rposition(|&o| o).map_or(first, |b| b + 1);
    let min_delay = (0..net.chemical.n_segments())
        .map(|s| net.chemical.segment(s))
        .filter(|seg| !seg.targets.is_empty())
        .map(|seg| seg.delay as u64)
        .min()
        .unwrap_or(u64::MAX);
    let mine = [
        net.n_neurons() as u64,
        first as u64,
        end as u64,
        DeliveryScale::max_input(net).to_bits(),
        min_delay,
        net.chemical.n_synapses(),
    ];
    let all = exchange.all_gather(&mine)?;
    let size = exchange.size();
    if all.len() != AGREE_FIELDS * size {
        return Err(SimError::Setup(format!(
            "spike exchange: {} values agreed by {size} ranks, expected {}",
            all.len(),
            AGREE_FIELDS * size
        )));
    }
    let ranks: Vec<&[u64]> = all.chunks_exact(AGREE_FIELDS).collect();
    if let Some((r, v)) = ranks.iter().enumerate().find(|(_, v)| v[0] != mine[0]) {
        return Err(SimError::Setup(format!(
            "rank {r} has a network of {} neurons, this rank {}: every rank must build the same network",
            v[0], mine[0]
        )));
    }
    if partition == Partition::Contiguous {
        let mut next = 0;
        for (r, v) in ranks.iter().enumerate() {
            // An empty range (more ranks than blocks) sits anywhere.
            if v[1] < v[2] {
                if v[1] != next {
                    return Err(SimError::Setup(format!(
                        "rank {r} owns blocks {}..{}, expected them to start at {next}: the ranks' parts do not \
                         tile the network (built for another process count?)",
                        v[1], v[2]
                    )));
                }
                next = v[2];
            }
        }
        if next != owned.len() as u64 {
            return Err(SimError::Setup(format!(
                "the ranks own blocks 0..{next} of {}: part of the network is not simulated (built for another \
                 process count?)",
                owned.len()
            )));
        }
    }
    let max_input = ranks.iter().map(|v| f64::from_bits(v[3])).fold(0.0, f64::max);
    let min_delay = ranks.iter().map(|v| v[4]).min().unwrap_or(u64::MAX);
    Ok(Agreed {
        scale: DeliveryScale::for_max_input(max_input),
        interval: if min_delay == u64::MAX { INTERVAL_WITHOUT_SYNAPSES } else { (min_delay as usize).max(1) },
        rank_synapses: ranks.iter().map(|v| v[5]).collect(),
    })
}

fn poisoned() -> SimError {
    SimError::Setup("spike exchange unusable: another thread panicked while using it".into())
}

impl<E: SpikeExchange> Backend for DistributedBackend<E> {
    fn name(&self) -> &'static str {
        if self.size == 1 { "cpu" } else { "cpu-distributed" }
    }

    fn step(&mut self, step: u64, control: &StepControl) -> Result<&[u32], SimError> {
        if self.pending > 0 {
            return Err(SimError::Setup(
                "distributed backend: step called while advanced steps wait to be drained".into(),
            ));
        }
        self.advance(step, control)?;
        let mut out = std::mem::take(&mut self.stepped);
        out.clear();
        self.drain_spikes(&mut |_, s| out.extend_from_slice(s))?;
        self.stepped = out;
        Ok(&self.stepped)
    }

    fn advance(&mut self, step: u64, control: &StepControl) -> Result<(), SimError> {
        self.take_deferred()?;
        if self.pending == self.interval {
            return Err(SimError::Setup(format!(
                "distributed backend: more than {} steps advanced without drain_spikes",
                self.interval
            )));
        }
        if self.pending == 0 {
            self.window_start = step;
        } else if step != self.window_start + self.pending as u64 {
            return Err(SimError::Setup(format!(
                "distributed backend: step {step} advanced after step {}; steps must be consecutive",
                self.window_start + self.pending as u64 - 1
            )));
        }
        let offset = (self.pending as u64) << 32;
        // Updates the owned blocks and delivers their spikes here at once.
        let spikes = self.inner.step(step, control)?;
        self.local.extend(spikes.iter().map(|&i| offset | i as u64));
        self.pending += 1;
        Ok(())
    }

    fn drain_spikes(&mut self, sink: &mut dyn FnMut(u64, &[u32])) -> Result<(), SimError> {
        self.take_deferred()?;
        if self.pending == 0 {
            return Ok(());
        }
        let local = std::mem::take(&mut self.local);
        let mut all = if self.size == 1 {
            local
        } else {
            let all = self.gather(&local);
            self.local = local;
            self.local.clear();
            all?
        };
        // Offset-major, then neuron: each step's spikes ascending.
        all.sort_unstable();
        let n = self.inner.network().n_neurons();
        let mut k = 0;
        for off in 0..self.pending as u64 {
            self.all_step.clear();
            self.remote_step.clear();
            while k < all.len() && all[k] >> 32 == off {
                let i = all[k] as u32;
                if i as usize >= n {
                    return Err(SimError::Setup(format!("spike exchange returned neuron #{i} of {n}")));
                }
                self.all_step.push(i);
                if !self.owned[i as usize / LANES] {
                    self.remote_step.push(i);
                }
                k += 1;
            }
            let t_e = self.window_start + off;
            if !self.remote_step.is_empty() {
                self.inner.deliver_remote_spikes(t_e, &self.remote_step)?;
            }
            sink(t_e, &self.all_step);
        }
        if k != all.len() {
            return Err(SimError::Setup(format!(
                "spike exchange returned a spike {} steps into a window of {}",
                all[k] >> 32,
                self.pending
            )));
        }
        self.pending = 0;
        Ok(())
    }

    fn start_profiling(&mut self) {
        self.inner.start_profiling();
        self.exchange_time = std::time::Duration::ZERO;
    }

    fn profile_into(&self, t: &mut crate::profile::PhaseTimes) -> Option<f64> {
        let remote_delivery_s = self.inner.profile_into(t)?;
        t.exchange_s = self.exchange_time.as_secs_f64();
        Some(t.exchange_s + remote_delivery_s)
    }

    fn spike_window(&self) -> usize {
        self.interval
    }

    fn read_state(&self, var: usize, neurons: &[u32], out: &mut Vec<f64>) {
        if self.size == 1 {
            return self.inner.read_state(var, neurons, out);
        }
        // This rank's values as (position in `neurons`, bits) pairs; the owners together cover every position.
        let mut mine = Vec::new();
        let mut values = Vec::new();
        for (k, &i) in neurons.iter().enumerate() {
            if self.owned[i as usize / LANES] {
                values.clear();
                self.inner.read_state(var, &[i], &mut values);
                mine.push(k as u64);
                mine.push(values[0].to_bits());
            }
        }
        let gathered = match self.exchange.lock() {
            Ok(mut x) => x.all_gather(&mine),
            Err(_) => Err(poisoned()),
        };
        let start = out.len();
        out.resize(start + neurons.len(), f64::NAN);
        match gathered {
            Ok(all) => {
                for pair in all.chunks_exact(2) {
                    if let Some(x) = out.get_mut(start + pair[0] as usize) {
                        *x = f64::from_bits(pair[1]);
                    }
                }
            }
            Err(e) => {
                if let Ok(mut d) = self.deferred.lock() {
                    d.get_or_insert(e);
                }
            }
        }
    }

    fn delivery_scale_exponent(&self) -> i32 {
        self.inner.delivery_scale_exponent()
    }
}

/// An in-process [`SpikeExchange`] between threads (one "rank" per thread), for tests and for checking the
/// partition without MPI. [`ThreadExchange::group`] makes the members; move one into each thread.
pub struct ThreadExchange {
    rank: usize,
    size: usize,
    shared: Arc<ThreadShared>,
}

struct ThreadShared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<u64>>>,
}

impl ThreadExchange {
    /// `size` connected members, rank 0 first.
    pub fn group(size: usize) -> Vec<ThreadExchange> {
        let shared = Arc::new(ThreadShared { barrier: Barrier::new(size), slots: Mutex::new(vec![Vec::new(); size]) });
        (0..size).map(|rank| ThreadExchange { rank, size, shared: shared.clone() }).collect()
    }
}

impl SpikeExchange for ThreadExchange {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&mut self, local: &[u64]) -> Result<Vec<u64>, SimError> {
        self.shared.slots.lock().map_err(|_| poisoned())?[self.rank] = local.to_vec();
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().map_err(|_| poisoned())?.concat();
        // Nobody writes the next round before everyone has read this one.
        self.shared.barrier.wait();
        Ok(all)
    }
}
