//! Exporters that write a [`Connectome`](crate::Connectome) in other tools' formats: SONATA circuits
//! ([`sonata`]), the inverse of [`crate::import::sonata`].

pub mod sonata;

pub use self::sonata::{GapJunctions, NodeModel, PopulationLayout, SonataWriteOptions, write_sonata};
