//! Neuron dynamics for neurotwin: parameter sets with units and sources, exact or well-defined per-step
//! updates over blocks of neurons, counter-based random numbers and deterministic math shared with the
//! CUDA kernels.

pub mod adex;
pub mod avx2;
pub mod calcium;
pub mod detmath;
pub mod equations;
pub mod graded;
pub mod izhikevich;
pub mod lif_cond_exp;
pub mod lif_delta;
pub mod lif_exp;
pub mod model;
#[cfg(test)]
mod nest_reference;
pub mod poisson;
pub mod ring_input;
pub mod rng;
pub mod stdp;
pub mod testing;

pub use model::{BlockInput, BlockOutput, CompiledModel, GapInput, LANES, ModelError, NeuronParams, ReceptorChannel};
pub use rng::{CounterRng, SequenceRng, Stream};
