//! Connectomes for neurotwin: the data model, importers (CSV, C. elegans, own HDF5), the
//! neurotransmitter → receptor map, the compiler to sparse synaptic matrices, graph queries and
//! generators of standard benchmark networks.

pub mod compile;
pub mod error;
pub mod export;
pub mod gap;
pub mod generators;
pub mod graph;
pub mod hdf5io;
pub mod import;
pub mod matrix;
pub mod network;
pub mod share;
pub mod transmitter;

pub use compile::{CompileOptions, CompileReport, CompiledNetwork, compile};
pub use error::ConnectomeError;
pub use export::{PopulationLayout, SonataWriteOptions, write_sonata};
pub use gap::GapMatrix;
pub use graph::{ConnectomeGraph, HubMetric, NeuronRef, PathMetric, PathOptions};
pub use hdf5io::{read_compiled, read_connectome, write_compiled, write_connectome};
pub use import::{CsvLayout, SonataCircuit, load_celegans_bundled, read_csv, read_sonata};
pub use matrix::{Segment, Synapse, SynapseMatrix, WeightSlice, Weights};
pub use network::{Connection, Connectome, Neuron, SynapseKind};
pub use share::{ConnectomeShare, ReceptorUse, Share};
pub use transmitter::{TransmitterMap, TransmitterRule};
