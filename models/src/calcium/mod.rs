//! Calcium-imaging observation model and spike inference.
//!
//! * [`indicator`]: genetically encoded calcium indicator (GECI) parameters — kinetics, 1-AP ΔF/F,
//!   Hill binding curve — with presets for GCaMP6s/6f, jGCaMP7f and jGCaMP8m.
//! * [`forward`]: spikes (or a graded activity trace) → free calcium (difference of exponentials, the
//!   AR(2) model of Friedrich, Zhou & Paninski 2017) → fluorescence (saturating Hill curve) → ΔF/F at the
//!   imaging frame rate, with shot and read noise from the counter-based RNG (`Stream::ImagingNoise`).
//! * [`deconvolve`]: OASIS for AR(1) (Friedrich, Zhou & Paninski 2017, PLoS Comput Biol 13:e1005423),
//!   estimation of γ and the noise level, event extraction and event-detection scoring.
//!
//! Units: time in ms (frames where stated), calcium in µM, fluorescence in detected photons per frame,
//! ΔF/F dimensionless (0.2 = 20 %).

pub mod deconvolve;
pub mod forward;
pub mod indicator;

pub use deconvolve::{
    EventOptions, EventScore, OasisOptions, OasisResult, estimate_gamma_ar1, estimate_noise_psd, event_times_ms,
    gamma_from_tau, oasis_ar1, score_events, spike_events,
};
pub use forward::{ActivityMapping, Drive, ForwardModel, ImagingParams, Sampling};
pub use indicator::{IndicatorParams, PRESET_NAMES, PublishedKinetics};

/// Errors of the calcium module: a parameter or an input that cannot be used, with the fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CalciumError {
    /// A parameter is NaN, infinite or outside its valid range.
    #[error("calcium-imaging parameter `{field}` = {value}: {why}")]
    BadParameter {
        /// Name of the offending field (as in the scenario file).
        field: String,
        /// The rejected value.
        value: f64,
        /// What is wrong and how to fix it.
        why: String,
    },
    /// An input array (spike times, trace) cannot be used.
    #[error("calcium-imaging input `{what}`: {why}")]
    BadInput {
        /// Which input.
        what: String,
        /// What is wrong and how to fix it.
        why: String,
    },
}

/// Checks that `value` is finite and satisfies `ok`, else a [`CalciumError::BadParameter`] naming `field`.
pub(crate) fn check(field: &str, value: f64, ok: bool, why: &str) -> Result<(), CalciumError> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        Err(CalciumError::BadParameter { field: field.to_string(), value, why: why.to_string() })
    }
}

/// A [`CalciumError::BadInput`].
pub(crate) fn bad_input(what: &str, why: impl Into<String>) -> CalciumError {
    CalciumError::BadInput { what: what.to_string(), why: why.into() }
}
