//! Simulated vs recorded calcium: common time base, per-neuron and population metrics, CSV/JSON report and
//! figures.
//!
//! Workflow: build the simulated traces as a [`CalciumRecording`](crate::CalciumRecording) (names, frame times in s,
//! neurons × frames; kind `DfOverF` for forward-modelled ΔF/F), match neurons with a
//! [`LabelMap`](crate::LabelMap) → [`NeuronPair::from_label_map`], then [`compare`] →
//! [`write_csv`]/[`write_json`] and [`plot_traces`]/[`plot_corr_matrices`] (which also need the
//! [`Aligned`] traces from [`align`]).
//!
//! # Definitions (all on the common time base of [`resample`], per neuron over the frames where both
//! traces are finite)
//!
//! * `r`: Pearson correlation of sim and rec.
//! * `r2_fit`: R² of the least-squares fit `rec ≈ a·sim + b`. With a single regressor this equals `r²`
//!   (the fit removes any gain and offset mismatch); `fit_slope` = `a` = `r·sd(rec)/sd(sim)`,
//!   `fit_intercept` = `b`.
//! * `ev_raw` (only when both are ΔF/F): `1 − var(rec − sim)/var(rec)`, the variance of the recording
//!   explained by the simulation *without* fitting; penalises gain errors, can be negative.
//! * `xcorr_peak_r`, `xcorr_lag_s`: the largest Pearson r between `sim[k]` and `rec[k + L]` over
//!   `|L| ≤ round(max_lag_s · f)` frames (`f` the common frame rate), each lag on its own overlap
//!   ([`stats::lagged_xcorr`](crate::stats::lagged_xcorr)); lag in s = `L / f`, **positive = the recording
//!   lags the simulation**.
//! * Event rates: OASIS AR(1) deconvolution of each trace on the common time base, see
//!   [`DeconvolutionOptions`]; ratio = rec/sim, difference = rec − sim (Hz).
//! * Population: neuron × neuron Pearson matrices of the compared neurons over time, for sim and for rec;
//!   their similarity is the Pearson r (and Spearman ρ) between the off-diagonal upper triangles, plus the
//!   mean absolute difference of those entries.
//!
//! Neurons with fewer than [`CompareOptions::min_valid_frames`] common finite frames, or a constant trace,
//! are listed in [`Comparison::skipped`] with the reason.
//!
//! [`behaviour_relation`] relates a recorded neuron to a behaviour series of the same recording (e.g.
//! AVA vs `reversal_vec` in the Flavell-lab worms).

pub mod metrics;
pub mod plot;
pub mod report;
pub mod resample;

pub use metrics::{
    BehaviourRelation, CompareOptions, Comparison, DecayRule, DeconvolutionOptions, EventRate, NeuronComparison,
    NeuronPair, PopulationSummary, SkipCause, SkippedNeuron, behaviour_relation, compare, compare_aligned, event_rate,
};
pub use plot::{plot_corr_matrices, plot_traces};
pub use report::{read_json, write_csv, write_json};
pub use resample::{
    Aligned, GridRule, ResampleMethod, ResampleOptions, TimeBase, TraceSet, align, align_traces, bin_mean,
    interp_linear,
};
