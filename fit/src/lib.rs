//! Twin calibration: connectome-constrained models whose unknown physiology is fitted to recordings by
//! gradient descent.
//!
//! The wiring (who connects to whom, synapse counts, transmitter signs) stays as compiled; what is
//! learned are per-cell-type (or per-neuron, or global) physiological parameters and per-class synaptic
//! strengths, in the manner of flyvis (Lappalainen et al. 2024, Nature 634:1132: `w_ij = sign_j ×
//! count_ij × strength_{type(j), type(i)}`).
//!
//! - [`network`]: the connectome as the fitting code reads it (chemical connections in CSR by
//!   postsynaptic neuron plus a transpose index, gap junctions), with a parameter class per connection.
//! - [`params`]: named parameter blocks, groups (cell type, neuron, type pair, receptor, global),
//!   reparametrisations for bounds and positivity, and the reduction of element gradients to groups.
//! - [`rate`]: the leaky rate model (explicit Euler) with exact reverse-mode gradients (discrete adjoint,
//!   checkpointed backpropagation through time).
//! - [`lif`]: a spiking LIF network with surrogate gradients (SuperSpike fast sigmoid).
//! - [`adam`]: the optimiser.
//!
//! Determinism: every sum is taken in a fixed order (a neuron's inputs in CSR order, a parameter group's
//! elements in index order), whatever the number of threads, so losses and gradients are bit-identical
//! for any thread count.

pub mod adam;
pub mod atlas;
pub mod error;
pub mod exec;
pub mod graded;
pub mod host_kernels;
pub mod host_kernels_graded;
pub mod host_kernels_lif;
pub mod lif;
pub mod network;
pub mod params;
pub mod rate;
pub mod spec;
pub mod testing;
pub mod train;

pub use error::FitError;
pub use network::{FitNetwork, StrengthGrouping};
pub use params::{ParamBlock, ParamSet, Transform};
