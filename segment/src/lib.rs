//! The segmentation front end: an EM volume becomes a boundary map (classical membrane filter or a 3D
//! U-Net), segments (seeded watershed + hierarchical agglomeration), synapses (cleft detection and partner
//! assignment) and finally a connectome the compiler consumes; scored with VOI, adapted Rand and synapse F1.
//!
//! Modules, one job each: [`volume`] (the 3D array), [`io`] (CREMI / plain HDF5), [`zarr`] (Zarr v3/v2
//! arrays, read region by region), [`phantom`] (test volumes with exact ground truth), [`membrane`]
//! (classical boundary map), [`cnn`] (3D U-Net inference), [`boundary`] (boundary sources, block by block
//! from a region-readable raw source), [`watershed`] (fragments), [`rag`] +
//! [`agglomerate`] (waterz-style merging), [`blockwise`] (blocks with overlap), [`out_of_core`] (volumes larger than memory, Zarr to Zarr),
//! [`synthetic`] (test volumes of any size, generated region by region), [`metrics`] (VOI, adapted
//! Rand, synapse F1), [`synapses`], [`to_connectome`], [`pipeline`], [`output`] (all-or-nothing output
//! folders); helpers [`hash`] (counter-based random numbers) and [`unionfind`].
//!
//! Memory: the in-memory pipeline ([`pipeline`]) reads the raw volume block by block for the boundary stage
//! when given a processing block, but holds the boundary map (f32), fragments and segmentations (u64) whole,
//! and reads the raw volume (u8) whole for synapse detection. [`out_of_core`] runs every stage block by
//! block between Zarr arrays (segmentation only, no synapses), holding only the fragments' graph whole.

pub mod agglomerate;
pub mod blockwise;
pub mod boundary;
pub mod cnn;
pub mod error;
pub mod guards;
pub mod hash;
pub mod io;
pub mod membrane;
pub mod metrics;
pub mod out_of_core;
pub mod output;
pub mod phantom;
pub mod pipeline;
pub mod rag;
pub mod synapses;
pub mod synthetic;
pub mod to_connectome;
pub mod unionfind;
pub mod volume;
pub mod watershed;
pub mod zarr;

pub use boundary::{BoundarySource, RawSource};
pub use error::SegmentError;
pub use pipeline::{PipelineConfig, PipelineOutput, PipelineReport};
pub use volume::Volume;
