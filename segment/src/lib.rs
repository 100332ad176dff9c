//! The segmentation front end: an EM volume becomes a boundary map (classical membrane filter or a 3D
//! U-Net), segments (seeded watershed + hierarchical agglomeration), synapses (cleft detection and partner
//! assignment) and finally a connectome the compiler consumes; scored with VOI, adapted Rand and synapse F1.
//!
//! Modules, one job each: [`volume`] (the 3D array), [`io`] (CREMI / plain HDF5), [`phantom`] (test
//! volumes with exact ground truth), [`membrane`] (boundary map), [`watershed`] (fragments), [`rag`] +
//! [`agglomerate`] (waterz-style merging), [`blockwise`] (blocks with overlap), [`metrics`] (VOI, adapted
//! Rand, synapse F1), [`synapses`], [`to_connectome`], [`pipeline`], [`output`] (all-or-nothing output
//! folders); helpers [`hash`] (counter-based random numbers) and [`unionfind`]. Chunked Zarr input is not
//! implemented yet (volumes are read into memory).

pub mod agglomerate;
pub mod blockwise;
pub mod cnn;
pub mod error;
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

pub use error::SegmentError;
pub use pipeline::{PipelineConfig, PipelineOutput, PipelineReport};
pub use volume::Volume;
