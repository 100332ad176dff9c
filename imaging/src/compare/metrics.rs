//! Per-neuron and population metrics of a simulated-vs-recorded comparison, the options and the result
//! types. See the [module documentation](super) for the definitions.

use neurotwin_models::calcium::{
    EventOptions, IndicatorParams, OasisOptions, PRESET_NAMES, estimate_gamma_ar1, estimate_noise_psd, gamma_from_tau,
    oasis_ar1, spike_events,
};
use serde::{Deserialize, Serialize};

use super::resample::{Aligned, ResampleMethod, ResampleOptions, TimeBase, TraceSet, align_traces};
use crate::error::ImagingError;
use crate::labels::LabelMap;
use crate::recording::{CalciumRecording, SignalKind};
use crate::stats::{lagged_xcorr, nan_mean, nan_median, pearson, spearman};

/// One matched neuron: its row in the simulation, its row in the recording and the name to report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeuronPair {
    /// Row in the simulated traces.
    pub sim_row: usize,
    /// Row in the recording.
    pub rec_row: usize,
    /// Name used in the report (normally the connectome name).
    pub name: String,
}

impl NeuronPair {
    /// The pairs of a [`LabelMap`] built with the simulation's neuron names as the connectome names:
    /// `sim_row` = [`LabelMatch::neuron`](crate::LabelMatch::neuron), `rec_row` = its `row`, name = its
    /// connectome `name`. The simulated rows must be in the order of the name list given to
    /// [`LabelMap::build`].
    pub fn from_label_map(map: &LabelMap) -> Vec<NeuronPair> {
        map.matches.iter().map(|m| NeuronPair { sim_row: m.neuron, rec_row: m.row, name: m.name.clone() }).collect()
    }
}

/// Where the AR(1) coefficient γ of the deconvolution comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DecayRule {
    /// The decay time constant of a calcium-indicator preset (`GCaMP6s`, `GCaMP6f`, `GCaMP7f`, `GCaMP8m`;
    /// see [`IndicatorParams::preset`]): `γ = exp(−Δt/τ_decay)` with `Δt` the common frame interval.
    Indicator(String),
    /// A decay time constant τ in seconds: `γ = exp(−Δt/τ)`.
    TauS(f64),
    /// γ estimated from each trace by [`estimate_gamma_ar1`] (noise-corrected Yule–Walker, 5 lags); the
    /// neuron gets no event rate when the estimate fails (no transients).
    Estimate,
}

/// How event rates are obtained: OASIS AR(1) deconvolution ([`oasis_ar1`]) of each trace on the common
/// time base, then events = frames with an inferred spike amount above `s_min / 2` ([`spike_events`]).
///
/// Per trace: the trace is split at NaN frames; runs shorter than 16 frames are left out. On the longest
/// run, σ = [`estimate_noise_psd`] (trace units; it over-estimates σ by ~10 % when transients carry
/// high-frequency power) and γ per [`DecayRule`]. The baseline `b` subtracted
/// before deconvolution is `Q_q − Φ⁻¹(q)·σ`, `Q_q` the `baseline_quantile` quantile of the run's values:
/// for a trace that sits at its baseline with Gaussian noise in most frames, the q-quantile is
/// `b + Φ⁻¹(q)σ`, so this undoes the noise offset (q = 0.1: `b = Q_0.1 + 1.28σ`). The hard threshold is
/// `s_min = max(s_min_sigma · σ, s_min_floor)` (trace units), λ = 0. Rate = events / (frames used × Δt).
/// An event is a frame with a calcium jump: several spikes within one frame count once, so the event
/// rate underestimates the spike rate when spikes cluster within a frame interval.
///
/// Accuracy (forward model of neurotwin-models, GCaMP6s, 10 Hz, Poisson 0.5 Hz, 1000 s, defaults
/// otherwise; `tests/integration/compare.rs`): with [`DecayRule::Indicator`] −9 … 0 % for baseline noise
/// σ = 0.025–0.05 ΔF/F (1 AP = 0.23 ΔF/F), but about −64 % at σ = 0.1 (spikes below the 2σ threshold are
/// missed). With [`DecayRule::Estimate`] −5 … −2 % at σ = 0.05 but +20 … +29 % at σ = 0.025 (no merge
/// window without a known rise time, so rises split over two frames count twice). The threshold is
/// relative to σ, not to the one-spike amplitude, so event rates of traces with very different SNR are not
/// comparable: comparable; compare sim and rec at matched noise (add noise to the simulation with the forward model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeconvolutionOptions {
    /// Source of γ (default [`DecayRule::Estimate`]).
    pub decay: DecayRule,
    /// Minimum spike size in units of the noise σ (dimensionless, ≥ 0; default 2).
    pub s_min_sigma: f64,
    /// Lower bound on the minimum spike size in trace units (≥ 0; default 0). Set it (e.g. to half the
    /// one-spike ΔF/F) for noise-free simulated traces, whose σ estimate is near 0.
    pub s_min_floor: f64,
    /// Quantile q in (0, 0.5] of the baseline rule (dimensionless; default 0.1).
    pub baseline_quantile: f64,
    /// Events within this many frames after an event are merged into it. `None` (default) = automatic:
    /// with [`DecayRule::Indicator`], `ceil(t_peak / Δt) − 1` (`t_peak` the indicator's time to peak,
    /// `Δt` the frame interval), because an AR(1) model splits a transient whose rise spans several frames
    /// into several "spikes" (GCaMP6s at 10 Hz: 1 frame; GCaMP7f at 1.7 Hz: 0); otherwise 0. Merging
    /// also joins genuine spikes in adjacent frames (a fraction ≈ rate × merge window of them).
    pub merge_within_frames: Option<usize>,
}

impl Default for DeconvolutionOptions {
    fn default() -> Self {
        Self {
            decay: DecayRule::Estimate,
            s_min_sigma: 2.0,
            s_min_floor: 0.0,
            baseline_quantile: 0.1,
            merge_within_frames: None,
        }
    }
}

impl DeconvolutionOptions {
    /// Checks every field, naming the first invalid one and the valid range.
    pub fn validate(&self) -> Result<(), ImagingError> {
        let bad = |m: String| Err(ImagingError::Compare(format!("deconvolution option {m}")));
        match &self.decay {
            DecayRule::Indicator(name) if IndicatorParams::preset(name).is_none() => {
                return bad(format!("decay: unknown indicator {name:?}; use one of {PRESET_NAMES:?}"));
            }
            DecayRule::TauS(tau) if !(tau.is_finite() && *tau > 0.0) => {
                return bad(format!("decay: TauS({tau}) must be a positive decay time constant in seconds"));
            }
            _ => {}
        }
        if !(self.s_min_sigma.is_finite() && self.s_min_sigma >= 0.0) {
            return bad(format!("s_min_sigma = {} must be finite and >= 0 (multiples of σ)", self.s_min_sigma));
        }
        if !(self.s_min_floor.is_finite() && self.s_min_floor >= 0.0) {
            return bad(format!("s_min_floor = {} must be finite and >= 0 (trace units)", self.s_min_floor));
        }
        if !(self.baseline_quantile > 0.0 && self.baseline_quantile <= 0.5) {
            return bad(format!("baseline_quantile = {} must lie in (0, 0.5]", self.baseline_quantile));
        }
        Ok(())
    }
}

/// Options of [`compare`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// Largest lag searched by the lagged cross-correlation, in seconds (≥ 0; default 10 s).
    pub max_lag_s: f64,
    /// A neuron is compared only if both traces are finite in at least this many common frames (≥ 3;
    /// default 20).
    pub min_valid_frames: usize,
    /// Event-rate estimation; `None` skips it (default `Some(DeconvolutionOptions::default())`).
    pub deconvolution: Option<DeconvolutionOptions>,
    /// Common time base rule.
    pub resample: ResampleOptions,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            max_lag_s: 10.0,
            min_valid_frames: 20,
            deconvolution: Some(DeconvolutionOptions::default()),
            resample: ResampleOptions::default(),
        }
    }
}

impl CompareOptions {
    /// Checks every field, naming the first invalid one and the valid range.
    pub fn validate(&self) -> Result<(), ImagingError> {
        if !(self.max_lag_s.is_finite() && self.max_lag_s >= 0.0) {
            return Err(ImagingError::Compare(format!(
                "max_lag_s = {} must be finite and >= 0 (seconds; `[compare] max_lag_s` in a scenario)",
                self.max_lag_s
            )));
        }
        if self.min_valid_frames < 3 {
            return Err(ImagingError::Compare(format!(
                "min_valid_frames = {} must be >= 3 (a correlation needs three frames)",
                self.min_valid_frames
            )));
        }
        if let Some(d) = &self.deconvolution {
            d.validate()?;
        }
        self.resample.validate()
    }
}

/// Metrics of one matched neuron (simulated vs recorded trace on the common time base).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronComparison {
    /// Reported name.
    pub name: String,
    /// Row in the simulation.
    pub sim_row: usize,
    /// Row in the recording.
    pub rec_row: usize,
    /// Pearson r of sim and rec at zero lag (dimensionless).
    pub r: f64,
    /// R² of the least-squares fit `rec ≈ a·sim + b` (dimensionless); equals r² for one regressor.
    pub r2_fit: f64,
    /// Fitted gain `a` (rec units per sim unit).
    pub fit_slope: f64,
    /// Fitted offset `b` (rec units).
    pub fit_intercept: f64,
    /// Un-fitted explained variance `1 − var(rec − sim)/var(rec)` (dimensionless, ≤ 1, can be negative);
    /// only when both are ΔF/F. Variances are about the mean, so a constant offset is not penalised, a
    /// gain error is.
    pub ev_raw: Option<f64>,
    /// Peak Pearson r of the lagged cross-correlation within ±`max_lag_s` (dimensionless).
    pub xcorr_peak_r: f64,
    /// Lag of that peak (s); positive = the recording lags the simulation.
    pub xcorr_lag_s: f64,
    /// Event rate of the simulated trace after deconvolution (Hz); `None` if not computed or failed.
    pub event_rate_sim_hz: Option<f64>,
    /// Event rate of the recorded trace after deconvolution (Hz).
    pub event_rate_rec_hz: Option<f64>,
    /// `event_rate_rec_hz / event_rate_sim_hz` (dimensionless; `None` when the sim rate is 0 or missing).
    pub event_rate_ratio: Option<f64>,
    /// `event_rate_rec_hz − event_rate_sim_hz` (Hz).
    pub event_rate_diff_hz: Option<f64>,
    /// Common frames where both traces are finite.
    pub n_frames_used: usize,
    /// Why an event rate is missing, if one is.
    pub notes: Vec<String>,
}

/// Why a matched neuron was not compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCause {
    /// Fewer common frames where both traces are finite than [`CompareOptions::min_valid_frames`].
    #[default]
    TooFewFrames,
    /// The simulated trace is constant over the common frames.
    ConstantSimulated,
    /// The recorded trace is constant over the common frames.
    ConstantRecorded,
}

/// A matched neuron that was not compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedNeuron {
    /// Reported name.
    pub name: String,
    /// Row in the simulation.
    pub sim_row: usize,
    /// Row in the recording.
    pub rec_row: usize,
    /// Why, in words.
    pub reason: String,
    /// Why, as a category.
    #[serde(default)]
    pub cause: SkipCause,
    /// Common frames where both traces are finite.
    #[serde(default)]
    pub n_frames: usize,
}

/// Population-level summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PopulationSummary {
    /// Neurons compared.
    pub n_neurons: usize,
    /// Neurons skipped.
    pub n_skipped: usize,
    /// Median of the per-neuron r (dimensionless).
    pub median_r: Option<f64>,
    /// Mean of the per-neuron r (dimensionless).
    pub mean_r: Option<f64>,
    /// Pearson r between the off-diagonal upper triangles of the sim and rec correlation matrices.
    pub corr_similarity_r: Option<f64>,
    /// Spearman ρ of the same upper triangles.
    pub corr_similarity_spearman: Option<f64>,
    /// Mean |C_sim − C_rec| over the upper-triangle pairs where both are defined (dimensionless).
    pub corr_mean_abs_diff: Option<f64>,
    /// Neuron pairs (upper triangle) where both correlations are defined.
    pub n_pairs_used: usize,
}

/// Result of [`compare`]: per-neuron rows, skipped neurons, population summary, the two correlation
/// matrices and the time base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The common time base (start/stop s, frame rate Hz).
    pub time_base: TimeBase,
    /// How the simulation was resampled.
    pub method_sim: ResampleMethod,
    /// How the recording was resampled.
    pub method_rec: ResampleMethod,
    /// One row per compared neuron, in the order of the pairs.
    pub neurons: Vec<NeuronComparison>,
    /// Neurons not compared, with the reason.
    pub skipped: Vec<SkippedNeuron>,
    /// Population summary.
    pub population: PopulationSummary,
    /// Names of the rows/columns of the matrices (= `neurons` order).
    pub matrix_names: Vec<String>,
    /// Neuron × neuron Pearson correlation of the simulated traces over time, row-major (`None` =
    /// undefined, e.g. a constant trace).
    pub sim_corr: Vec<Option<f64>>,
    /// Same for the recorded traces.
    pub rec_corr: Vec<Option<f64>>,
    /// The options used.
    pub options: CompareOptions,
}

impl Comparison {
    /// The skipped neurons as `name: reason` joined by `; ` (empty if none was skipped).
    pub fn skipped_summary(&self) -> String {
        self.skipped.iter().map(|k| format!("{}: {}", k.name, k.reason)).collect::<Vec<_>>().join("; ")
    }
}

/// Compares simulated traces `sim` with recorded traces `rec` for the matched `pairs`: aligns them
/// ([`align_traces`]; `sim` = first series) and computes [`compare_aligned`]. Build `sim` with
/// [`CalciumRecording::new`] from the simulation's names, frame times (s) and traces (kind `DfOverF` for
/// forward-modelled ΔF/F). Errors for invalid options, no time overlap or a pair naming a missing row.
pub fn compare(
    sim: &CalciumRecording,
    rec: &CalciumRecording,
    pairs: &[NeuronPair],
    opts: &CompareOptions,
) -> Result<Comparison, ImagingError> {
    opts.validate()?;
    let aligned = align_traces(&TraceSet::of("simulation", sim), &TraceSet::of("recording", rec), &opts.resample)?;
    let both_dff = sim.kind == SignalKind::DfOverF && rec.kind == SignalKind::DfOverF;
    compare_aligned(&aligned, pairs, both_dff, opts)
}

/// The metrics of [`compare`] on already aligned traces (`a` = simulation, `b` = recording); `both_dff`
/// enables `ev_raw`.
pub fn compare_aligned(
    al: &Aligned,
    pairs: &[NeuronPair],
    both_dff: bool,
    opts: &CompareOptions,
) -> Result<Comparison, ImagingError> {
    opts.validate()?;
    let m = al.time_s.len();
    if m != al.time_base.n_frames || al.a.len() != al.n_a * m || al.b.len() != al.n_b * m {
        return Err(ImagingError::Compare(format!(
            "inconsistent Aligned: {m} grid times, time_base.n_frames {}, {} values for {} sim rows, {} for {} \
             recorded rows; build it with align or align_traces",
            al.time_base.n_frames,
            al.a.len(),
            al.n_a,
            al.b.len(),
            al.n_b
        )));
    }
    for p in pairs {
        if p.sim_row >= al.n_a || p.rec_row >= al.n_b {
            return Err(ImagingError::Compare(format!(
                "pair {:?}: sim_row {} / rec_row {} out of range (the simulation has {} rows, the recording {}); \
                 build the pairs from a LabelMap of these two",
                p.name, p.sim_row, p.rec_row, al.n_a, al.n_b
            )));
        }
    }
    let dt = al.time_base.dt_s();
    let max_lag = (opts.max_lag_s / dt).round() as usize;
    let (mut neurons, mut skipped) = (Vec::new(), Vec::new());
    for p in pairs {
        let (s, r) = (al.a_trace(p.sim_row), al.b_trace(p.rec_row));
        match neuron_metrics(s, r, p, both_dff, max_lag, dt, opts) {
            Ok(n) => neurons.push(n),
            Err(k) => skipped.push(k),
        }
    }
    let sim_rows: Vec<&[f64]> = neurons.iter().map(|n| al.a_trace(n.sim_row)).collect();
    let rec_rows: Vec<&[f64]> = neurons.iter().map(|n| al.b_trace(n.rec_row)).collect();
    let (sim_corr, rec_corr) = (corr_matrix(&sim_rows), corr_matrix(&rec_rows));
    let rs: Vec<f64> = neurons.iter().map(|n| n.r).collect();
    let mut population = matrix_similarity(&sim_corr, &rec_corr, neurons.len());
    population.n_neurons = neurons.len();
    population.n_skipped = skipped.len();
    population.median_r = nan_median(&rs);
    population.mean_r = nan_mean(&rs);
    Ok(Comparison {
        time_base: al.time_base.clone(),
        method_sim: al.method_a,
        method_rec: al.method_b,
        matrix_names: neurons.iter().map(|n| n.name.clone()).collect(),
        neurons,
        skipped,
        population,
        sim_corr,
        rec_corr,
        options: opts.clone(),
    })
}

fn neuron_metrics(
    s: &[f64],
    r: &[f64],
    p: &NeuronPair,
    both_dff: bool,
    max_lag: usize,
    dt: f64,
    opts: &CompareOptions,
) -> Result<NeuronComparison, SkippedNeuron> {
    let (vs, vr): (Vec<f64>, Vec<f64>) = s.iter().zip(r).filter(|(a, b)| a.is_finite() && b.is_finite()).unzip();
    let n = vs.len();
    let skip = |cause: SkipCause, reason: String| SkippedNeuron {
        name: p.name.clone(),
        sim_row: p.sim_row,
        rec_row: p.rec_row,
        reason,
        cause,
        n_frames: n,
    };
    if n < opts.min_valid_frames {
        return Err(skip(
            SkipCause::TooFewFrames,
            format!(
                "only {n} frame(s) where both traces are finite, at least {} are needed ({:.1} s at {:.3} Hz)",
                opts.min_valid_frames,
                opts.min_valid_frames as f64 * dt,
                1.0 / dt
            ),
        ));
    }
    let Some(corr) = pearson(&vs, &vr) else {
        let (cause, which) = if variance(&vs) <= 0.0 {
            (SkipCause::ConstantSimulated, "simulated")
        } else {
            (SkipCause::ConstantRecorded, "recorded")
        };
        return Err(skip(
            cause,
            format!("the {which} trace of {} is constant over the {n} common frames: correlation undefined", p.name),
        ));
    };
    let (ms, mr) = (mean(&vs), mean(&vr));
    let (var_s, var_r) = (variance(&vs), variance(&vr));
    let slope = corr * (var_r / var_s).sqrt();
    let resid: Vec<f64> = vs.iter().zip(&vr).map(|(a, b)| b - a).collect();
    let (xr, xl) = lagged_xcorr(s, r, max_lag).unwrap_or((corr, 0));
    let mut notes = Vec::new();
    let (mut rate_s, mut rate_r) = (None, None);
    if let Some(d) = &opts.deconvolution {
        match event_rate(s, 1.0 / dt, d) {
            Ok(e) => rate_s = Some(e.rate_hz),
            Err(e) => notes.push(format!("simulated event rate: {e}")),
        }
        match event_rate(r, 1.0 / dt, d) {
            Ok(e) => rate_r = Some(e.rate_hz),
            Err(e) => notes.push(format!("recorded event rate: {e}")),
        }
    }
    let (ratio, diff) = match (rate_s, rate_r) {
        (Some(a), Some(b)) => ((a > 0.0).then(|| b / a), Some(b - a)),
        _ => (None, None),
    };
    Ok(NeuronComparison {
        name: p.name.clone(),
        sim_row: p.sim_row,
        rec_row: p.rec_row,
        r: corr,
        r2_fit: corr * corr,
        fit_slope: slope,
        fit_intercept: mr - slope * ms,
        ev_raw: both_dff.then(|| 1.0 - variance(&resid) / var_r),
        xcorr_peak_r: xr,
        xcorr_lag_s: xl as f64 * dt,
        event_rate_sim_hz: rate_s,
        event_rate_rec_hz: rate_r,
        event_rate_ratio: ratio,
        event_rate_diff_hz: diff,
        n_frames_used: n,
        notes,
    })
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Population variance (divide by n) of finite `x`.
fn variance(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
}

/// Neuron × neuron Pearson matrix (row-major), pairwise deletion over frames; diagonal 1 where defined.
fn corr_matrix(rows: &[&[f64]]) -> Vec<Option<f64>> {
    let n = rows.len();
    let mut c = vec![None; n * n];
    for i in 0..n {
        for j in i..n {
            let v = pearson(rows[i], rows[j]);
            c[i * n + j] = v;
            c[j * n + i] = v;
        }
    }
    c
}

fn matrix_similarity(a: &[Option<f64>], b: &[Option<f64>], n: usize) -> PopulationSummary {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in i + 1..n {
            if let (Some(p), Some(q)) = (a[i * n + j], b[i * n + j]) {
                x.push(p);
                y.push(q);
            }
        }
    }
    let diff: Vec<f64> = x.iter().zip(&y).map(|(p, q)| (p - q).abs()).collect();
    PopulationSummary {
        n_neurons: n,
        n_skipped: 0,
        median_r: None,
        mean_r: None,
        corr_similarity_r: pearson(&x, &y),
        corr_similarity_spearman: spearman(&x, &y),
        corr_mean_abs_diff: nan_mean(&diff),
        n_pairs_used: x.len(),
    }
}

/// Result of [`event_rate`] for one trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRate {
    /// Events per second (Hz).
    pub rate_hz: f64,
    /// Number of events.
    pub n_events: usize,
    /// Frames deconvolved (NaN-free runs of ≥ 16 frames).
    pub n_frames_used: usize,
    /// AR(1) coefficient used (per frame).
    pub gamma: f64,
    /// Noise σ (trace units).
    pub sigma: f64,
    /// Hard threshold s_min used (trace units).
    pub s_min: f64,
    /// Baseline subtracted on the longest run (trace units).
    pub baseline: f64,
    /// Events merged within this many frames.
    pub merge_within_frames: usize,
}

/// Event rate of one trace sampled at `frame_rate_hz` (Hz) by OASIS AR(1) deconvolution, with the rules
/// of [`DeconvolutionOptions`]. Errors (as text) when no NaN-free run of 16 frames exists, the options are
/// invalid, or γ cannot be estimated.
pub fn event_rate(trace: &[f64], frame_rate_hz: f64, opts: &DeconvolutionOptions) -> Result<EventRate, ImagingError> {
    opts.validate()?;
    let fail = |m: String| ImagingError::Compare(format!("event rate: {m}"));
    if !(frame_rate_hz.is_finite() && frame_rate_hz > 0.0) {
        return Err(fail(format!("frame rate {frame_rate_hz} Hz must be positive")));
    }
    let runs: Vec<&[f64]> = trace.split(|v| !v.is_finite()).filter(|r| r.len() >= 16).collect();
    let longest = runs.iter().max_by_key(|r| r.len()).ok_or_else(|| {
        fail(format!("no run of >= 16 finite frames in a trace of {} frames (too many NaN frames)", trace.len()))
    })?;
    let sigma = estimate_noise_psd(longest).map_err(|e| fail(e.to_string()))?;
    let dt_ms = 1000.0 / frame_rate_hz;
    let mut merge = opts.merge_within_frames.unwrap_or(0);
    let gamma = match &opts.decay {
        DecayRule::Indicator(name) => {
            let p = IndicatorParams::preset(name).ok_or_else(|| fail(format!("unknown indicator {name:?}")))?;
            if opts.merge_within_frames.is_none() {
                merge = ((p.peak_time_ms() / dt_ms).ceil() as usize).saturating_sub(1);
            }
            gamma_from_tau(p.tau_decay_ms, dt_ms)
        }
        DecayRule::TauS(tau) => gamma_from_tau(tau * 1000.0, dt_ms),
        DecayRule::Estimate => estimate_gamma_ar1(longest, sigma, 5),
    }
    .map_err(|e| fail(e.to_string()))?;
    let q = opts.baseline_quantile;
    let s_min = (opts.s_min_sigma * sigma).max(opts.s_min_floor);
    let (mut n_events, mut n_frames) = (0, 0);
    let mut baseline = 0.0;
    for run in &runs {
        let mut sorted = run.to_vec();
        sorted.sort_by(f64::total_cmp);
        let qv = sorted[((q * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)];
        let b = qv - normal_quantile(q) * sigma;
        if std::ptr::eq(*run, *longest) {
            baseline = b;
        }
        let oasis = OasisOptions { gamma, lambda: 0.0, s_min, baseline: b };
        let res = oasis_ar1(run, &oasis).map_err(|e| fail(e.to_string()))?;
        let ev = EventOptions { threshold: 0.5 * s_min, merge_within_frames: merge };
        n_events += spike_events(&res.spikes, &ev).map_err(|e| fail(e.to_string()))?.len();
        n_frames += run.len();
    }
    Ok(EventRate {
        rate_hz: n_events as f64 / (n_frames as f64 / frame_rate_hz),
        n_events,
        n_frames_used: n_frames,
        gamma,
        sigma,
        s_min,
        baseline,
        merge_within_frames: merge,
    })
}

/// Φ⁻¹(p), the standard normal quantile, for p in (0, 1) (Acklam's rational approximation, relative error
/// < 1.2·10⁻⁹).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Relation between one neuron and a behaviour series of the same recording (see [`behaviour_relation`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BehaviourRelation {
    /// The neuron's label.
    pub neuron: String,
    /// The extra series' name.
    pub extra: String,
    /// Pearson r at zero lag (dimensionless).
    pub zero_lag_r: Option<f64>,
    /// Peak Pearson r of the lagged cross-correlation within ±`max_lag_s`.
    pub peak_r: Option<f64>,
    /// Lag of the peak (s); positive = the neuron lags the behaviour.
    pub peak_lag_s: Option<f64>,
    /// Frames where both are finite.
    pub n_frames: usize,
    /// Frame interval used to convert lags (s): 1 / [`CalciumRecording::frame_rate_hz`].
    pub dt_s: f64,
}

/// Zero-lag and lagged cross-correlation between neuron row `neuron_row` of `rec` and its extra series
/// `extra_name` (e.g. `reversal_vec`), lags within ±`max_lag_s` seconds (converted to frames with the
/// recording's median frame interval). Positive lag = the neuron lags the behaviour.
pub fn behaviour_relation(
    rec: &CalciumRecording,
    neuron_row: usize,
    extra_name: &str,
    max_lag_s: f64,
) -> Result<BehaviourRelation, ImagingError> {
    if neuron_row >= rec.n_neurons {
        return Err(ImagingError::Compare(format!(
            "neuron row {neuron_row} is out of range: the recording has {} rows (look the row up by its label)",
            rec.n_neurons
        )));
    }
    let extra = rec.extra(extra_name).ok_or_else(|| {
        let have: Vec<&str> = rec.extra.iter().map(|e| e.name.as_str()).collect();
        ImagingError::Compare(format!("the recording has no extra series {extra_name:?}; it has {have:?}"))
    })?;
    if !(max_lag_s.is_finite() && max_lag_s >= 0.0) {
        return Err(ImagingError::Compare(format!("max_lag_s = {max_lag_s} must be finite and >= 0 (seconds)")));
    }
    let rate = rec.frame_rate_hz().ok_or_else(|| {
        ImagingError::Compare("the recording has fewer than two frames: no frame rate for lags".into())
    })?;
    let y = rec.trace(neuron_row);
    if extra.values.len() != y.len() {
        return Err(ImagingError::Compare(format!(
            "extra series {extra_name:?} has {} values for {} frames",
            extra.values.len(),
            y.len()
        )));
    }
    let x = &extra.values;
    let peak = lagged_xcorr(x, y, (max_lag_s * rate).round() as usize);
    Ok(BehaviourRelation {
        neuron: rec.labels[neuron_row].clone(),
        extra: extra_name.to_string(),
        zero_lag_r: pearson(x, y),
        peak_r: peak.map(|p| p.0),
        peak_lag_s: peak.map(|p| p.1 as f64 / rate),
        n_frames: x.iter().zip(y).filter(|(a, b)| a.is_finite() && b.is_finite()).count(),
        dt_s: 1.0 / rate,
    })
}

#[cfg(test)]
mod tests {
    use super::normal_quantile;

    #[test]
    fn normal_quantile_known_values() {
        assert!((normal_quantile(0.1) + 1.2815515655446004).abs() < 1e-8);
        assert!(normal_quantile(0.5).abs() < 1e-12);
        assert!((normal_quantile(0.01) + 2.3263478740408408).abs() < 1e-8);
    }
}
