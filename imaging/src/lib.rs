//! Calcium-imaging recordings in: readers for NWB 2.x optical physiology, a plain HDF5 layout, CSV and the
//! Flavell lab's whole-brain data, a [`CalciumRecording`] type (neurons × frames), the mapping of recording labels
//! onto connectome neuron names ([`LabelMap`]) and small statistics ([`stats`]).
//!
//! | format | reader | layout documented in |
//! |---|---|---|
//! | NWB 2.x (`RoiResponseSeries` in `DfOverF`/`Fluorescence`) | [`read_nwb`] | [`nwb`] |
//! | plain HDF5 (`/traces` [neurons, frames], `/timestamps`, `/labels`) | [`read_plain_h5`] / [`write_plain_h5`] | [`plain_h5`] |
//! | CSV (`time_s,<label>,…`, one row per frame) | [`read_csv`] / [`write_csv`] | [`mod@csv`] |
//! | Flavell lab (`<uid>-data.h5` + `neuropal_labels.json`) | [`read_flavell`] | [`flavell`] |
//!
//! Units: times in seconds, rates in Hz, trace values as given by [`SignalKind`] (ΔF/F dimensionless,
//! fluorescence in arbitrary units).
//!
//! Every reader checks the result (one timestamp per frame, strictly increasing finite timestamps, no
//! infinite values, no neuron NaN in every frame unless [`NanPolicy::DropRows`]) and never panics on a bad
//! file: failures are [`ImagingError`]s naming the file, the dataset, line or column, and the fix.
//! Isolated NaN frames are kept as missing values; compare traces with pairwise deletion
//! ([`stats::pearson`]).
//!
//! [`compare`] puts simulated and recorded traces on a common time base and compares them per neuron and
//! as a population (correlations, lagged cross-correlation, event rates after deconvolution), with a
//! CSV/JSON report and PNG figures.

#![warn(missing_docs)]

pub mod compare;
pub mod csv;
pub mod error;
pub mod flavell;
mod h5;
pub mod labels;
pub mod nwb;
pub mod nwb_write;
pub mod plain_h5;
pub mod recording;
pub mod stats;

pub use crate::csv::{read_csv, write_csv};
pub use error::ImagingError;
pub use flavell::{FlavellIdentity, FlavellOptions, FlavellWorm, list_flavell_worms, read_flavell};
pub use labels::{LabelMap, LabelMapOptions, LabelMatch, MatchKind, suggest_names, unpadded_number};
pub use nwb::{NwbOptions, NwbSeriesInfo, list_nwb_series, read_nwb};
pub use plain_h5::{read_plain_h5, write_plain_h5};
pub use recording::{CalciumRecording, ExtraSeries, NanPolicy, SignalKind};
