//! Which part of a network one process holds when a run is split across processes (MPI ranks).
//!
//! Neurons are owned in blocks of [`BLOCK`] (the CPU backend's unit of update): rank `r` of `size` owns blocks
//! `[r·B/size, (r+1)·B/size)` of the `B = ⌈n/64⌉` blocks, one contiguous range, and holds only the synapses
//! whose *target* it owns (the rows of every presynaptic neuron, restricted to its targets), as NEST and Arbor
//! store each synapse on the rank of its target. The ranks together hold every synapse exactly once.
//!
//! **Balance.** Blocks are split either in equal numbers ([`Share::targets`]) or so that each rank holds about
//! the same number of synapses ([`Share::targets_by_cost`] with the expected or counted incoming synapses per
//! block): a network whose populations differ in in-degree (PD14: 1,100 to 5,100 inputs a neuron) would
//! otherwise put up to twice the synapses, memory and delivery work on one rank.
//!
//! This is the one definition of the split: the generators and importers build a rank's part with it and record
//! it in `CompiledNetwork::held_targets`, and the distributed backend (`neurotwin_sim::distributed`) updates
//! exactly the neurons of that part.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::ConnectomeError;
use crate::network::Connectome;

/// Neurons per block of ownership (the CPU backend's 64-lane block).
pub const BLOCK: u32 = 64;

/// Rank `rank` of `size` processes (`rank < size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    rank: u32,
    size: u32,
}

impl Share {
    /// The whole network (one process).
    pub const WHOLE: Share = Share { rank: 0, size: 1 };

    /// Rank `rank` of `size`; refuses `size == 0` or `rank >= size`.
    pub fn new(rank: usize, size: usize) -> Result<Self, ConnectomeError> {
        if size == 0 || rank >= size || size > u32::MAX as usize {
            return Err(ConnectomeError::Compile(format!("invalid process group: rank {rank} of {size}")));
        }
        Ok(Self { rank: rank as u32, size: size as u32 })
    }

    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    pub fn size(&self) -> usize {
        self.size as usize
    }

    /// Whether this is the whole network.
    pub fn is_whole(&self) -> bool {
        self.size == 1
    }

    /// The blocks of [`BLOCK`] neurons this rank owns, of a network of `n_neurons`.
    pub fn blocks(&self, n_neurons: u32) -> Range<u32> {
        let b = n_neurons.div_ceil(BLOCK) as u64;
        let (r, s) = (self.rank as u64, self.size as u64);
        (r * b / s) as u32..((r + 1) * b / s) as u32
    }

    /// The neurons (postsynaptic targets) this rank owns, of a network of `n_neurons`.
    pub fn targets(&self, n_neurons: u32) -> Range<u32> {
        neurons_of(self.blocks(n_neurons), n_neurons)
    }

    /// The blocks this rank owns when the split balances `cost` (one non-negative value per block, e.g. its
    /// incoming synapses): rank `r`'s range starts at the first block whose preceding blocks cost at least
    /// `r/size` of the total (summed in block order, so every rank computes the same boundaries).
    pub fn blocks_by_cost(&self, cost: &[f64]) -> Range<u32> {
        let total: f64 = cost.iter().sum();
        if !(total.is_finite() && total > 0.0) {
            return self.blocks(cost.len() as u32 * BLOCK);
        }
        let boundary = |k: u32| -> u32 {
            if k == 0 {
                return 0;
            }
            if k == self.size {
                return cost.len() as u32;
            }
            let goal = total * k as f64 / self.size as f64;
            let mut sum = 0.0;
            for (b, &c) in cost.iter().enumerate() {
                if sum >= goal {
                    return b as u32;
                }
                sum += c;
            }
            cost.len() as u32
        };
        boundary(self.rank)..boundary(self.rank + 1)
    }

    /// The neurons this rank owns of a network of `n_neurons` when the split balances `block_cost`
    /// (`⌈n/64⌉` values; see [`Share::blocks_by_cost`]).
    pub fn targets_by_cost(&self, n_neurons: u32, block_cost: &[f64]) -> Range<u32> {
        if self.is_whole() {
            return 0..n_neurons;
        }
        debug_assert_eq!(block_cost.len(), n_neurons.div_ceil(BLOCK) as usize);
        neurons_of(self.blocks_by_cost(block_cost), n_neurons)
    }
}

/// The neurons of a range of blocks, clipped to the network.
fn neurons_of(blocks: Range<u32>, n_neurons: u32) -> Range<u32> {
    let clip = |k: u32| (k as u64 * BLOCK as u64).min(n_neurons as u64) as u32;
    clip(blocks.start)..clip(blocks.end)
}

/// What one rank of a split run reads of a connectome file ([`crate::hdf5io::read_connectome_share`],
/// [`crate::import::sonata::read_sonata_share`]) before compiling it ([`crate::compile::compile_share`]).
#[derive(Clone, Debug)]
pub struct ConnectomeShare {
    /// Every neuron, and only the connections onto the share's targets (and every electrical one, which a split
    /// run refuses with its own error).
    pub connectome: Connectome,
    /// The neurons whose incoming synapses this rank holds: `share`'s blocks, balanced on the chemical
    /// connections onto each block of 64 neurons.
    pub targets: std::ops::Range<u32>,
    /// The largest synapse count of any chemical connection of the whole file without an explicit weight, and
    /// whether any chemical connection has one (for checks that need the whole network).
    pub largest_count: f32,
    pub any_chemical: bool,
    pub any_weighted: bool,
    /// Every distinct (transmitter, receptor) of the whole file's chemical connections, which decide the receptor
    /// channels ([`crate::compile::compile_share`]).
    pub receptor_uses: Vec<ReceptorUse>,
}

/// Chemical connections of a file that share a transmitter (the connection's, else its presynaptic neuron's)
/// and a receptor class name.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceptorUse {
    pub transmitter: Option<String>,
    pub receptor: Option<String>,
    /// The largest count among them without an explicit weight (0 if none), and whether any has a weight.
    pub largest_count: f32,
    pub weighted: bool,
    /// The first of them: row in `/connections`, pre- and postsynaptic ids (for error messages).
    pub first_row: usize,
    pub pre: u64,
    pub post: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts tile the network in block-aligned ranges, in rank order, for sizes that do and do not divide
    /// the number of blocks, and for more ranks than blocks.
    #[test]
    fn the_parts_tile_the_network() {
        for n in [0u32, 1, 63, 64, 65, 1000, 77_169] {
            for size in 1..=9usize {
                let mut next = 0;
                for rank in 0..size {
                    let t = Share::new(rank, size).unwrap().targets(n);
                    assert_eq!(t.start, next, "n {n}, rank {rank} of {size}");
                    assert!(t.start.is_multiple_of(BLOCK) || t.start == n);
                    next = t.end;
                }
                assert_eq!(next, n);
            }
        }
        assert!(Share::new(2, 2).is_err());
        // Balanced by cost: still a tiling; equal costs give nearly equal ranges; a heavy half is split finer.
        let mut cost = vec![1.0; 100];
        for size in 1..=7usize {
            let mut next = 0;
            for rank in 0..size {
                let b = Share::new(rank, size).unwrap().blocks_by_cost(&cost);
                assert_eq!(b.start, next);
                next = b.end;
            }
            assert_eq!(next, 100);
        }
        cost[..50].fill(3.0);
        let (a, b) = (Share::new(0, 2).unwrap().blocks_by_cost(&cost), Share::new(1, 2).unwrap().blocks_by_cost(&cost));
        assert_eq!((a.clone(), b.clone()), (0..34, 34..100), "150 of 200 cost units before block 34 split 50/50");
        assert_eq!(Share::new(0, 2).unwrap().targets_by_cost(6400, &cost), 0..34 * 64);
        assert!(Share::new(0, 0).is_err());
        assert_eq!(Share::WHOLE.targets(100), 0..100);
    }
}
