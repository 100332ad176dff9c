//! Importers that build a [`Connectome`](crate::Connectome) from files: a generic CSV reader (which also
//! understands the public FlyWire and neuPrint layouts, see [`csv`]), SONATA circuits ([`sonata`]) and the
//! bundled C. elegans hermaphrodite connectome of Cook et al. 2019 ([`celegans`]).

pub mod celegans;
pub mod csv;
pub mod neuroml;
pub mod sonata;

pub use self::celegans::{
    CELEGANS_NAME, celegans_data_dir, load_celegans_bundled, load_celegans_embedded, load_celegans_from,
};
pub use self::csv::{CsvLayout, read_csv};
pub use self::neuroml::{NeuroMlNetwork, read_lems_simulation, read_neuroml};
pub use self::sonata::{
    NodePopulation, SonataCircuit, SonataConfig, SonataNodeType, SonataShare, read_sonata, read_sonata_share,
};
