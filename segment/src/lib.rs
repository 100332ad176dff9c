//! The segmentation front end: an EM volume becomes a boundary map (classical membrane filter or a 3D
//! U-Net), segments (seeded watershed + hierarchical agglomeration), synapses (cleft detection and partner
//! assignment) and finally a connectome the compiler consumes; scored with VOI, adapted Rand and synapse F1.
//!
//! Modules, one job each: [`volume`] (the 3D array), [`io`] (CREMI / plain HDF5), [`zarr`] (Zarr v3/v2
//! arrays, read region by region), [`phantom`] (test volumes with exact ground truth), [`membrane`]
//! (classical boundary map), [`cnn`] (3D U-Net inference), [`boundary`] (boundary sources, block by block
//! from a region-readable raw source), [`watershed`] (fragments), [`rag`] +
//! [`agglomerate`] (waterz-style merging), [`blockwise`] (blocks with overlap), [`metrics`] (VOI, adapted
//! Rand, synapse F1), [`synapses`], [`to_connectome`], [`pipeline`], [`output`] (all-or-nothing output
//! folders); helpers [`hash`] (counter-based random numbers) and [`unionfind`].
//!
//! Memory: with a processing block, the boundary stage (membrane filter or U-Net, the stage with the
//! largest working set) reads the raw volume block by block from its source; the boundary map (f32),
//! fragments and segmentations (u64) are whole volumes in memory, and the raw volume (u8) is read whole for
//! synapse detection.

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
pub mod output;
pub mod phantom;
pub mod pipeline;
pub mod rag;
pub mod synapses;
pub mod to_connectome;
pub mod unionfind;
pub mod volume;
pub mod watershed;
pub mod zarr;

pub use boundary::{BoundarySource, RawSource};
pub use error::SegmentError;
pub use pipeline::{PipelineConfig, PipelineOutput, PipelineReport};
pub use volume::Volume;
