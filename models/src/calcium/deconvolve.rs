//! Spike inference from fluorescence: OASIS for the AR(1) calcium model (Friedrich, Zhou & Paninski
//! 2017, "Fast online deconvolution of calcium imaging data", PLoS Comput Biol 13:e1005423), estimation
//! of its parameters, event extraction and event-detection scoring.
//!
//! OASIS solves `min_c ½‖c − (y − b)‖² + λ‖s‖₁` subject to `s_t = c_t − γ c_{t−1} ≥ s_min` wherever
//! `s_t ≠ 0` (and `s_t ≥ 0` when `s_min = 0`), by the pool-adjacent-violators algorithm: every frame opens
//! a pool (a run of frames with `c_t = v γ^{t−t₀}`); while the new pool violates the constraint against its
//! predecessor (`γ^{l} v_prev + s_min > v`) the two are merged with the closed-form weighted update
//! (their eq. 10–12). The λ term is absorbed into the data as `y_t − λ(1 − γ)` (`y_T − λ` for the last
//! frame). With `s_min > 0` this is the paper's hard-threshold variant (non-convex; greedy solution). Cost
//! O(T) amortised.
//!
//! Units: frames for time; `y`, `c`, `s`, `λ`, `s_min`, `σ` in the units of the trace (ΔF/F here).

use super::{CalciumError, bad_input, check};

/// Options of [`oasis_ar1`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OasisOptions {
    /// AR(1) coefficient γ = e^{−P/τ_decay} per frame, in (0, 1) (see [`gamma_from_tau`]).
    pub gamma: f64,
    /// Sparsity penalty λ ≥ 0 (trace units).
    pub lambda: f64,
    /// Minimum size of a non-zero spike, ≥ 0 (trace units); 0 gives plain non-negative deconvolution.
    pub s_min: f64,
    /// Fluorescence baseline b subtracted before deconvolution (trace units; 0 for ΔF/F).
    pub baseline: f64,
}

/// Result of [`oasis_ar1`].
#[derive(Clone, Debug, PartialEq)]
pub struct OasisResult {
    /// Denoised calcium `c_t` (trace units), one per frame.
    pub calcium: Vec<f64>,
    /// Inferred spike amounts `s_t = c_t − γ c_{t−1}` ≥ 0 (trace units); `s_0 = c_0` is the initial calcium,
    /// not necessarily a spike.
    pub spikes: Vec<f64>,
}

/// A pool of frames `[start, start + len)` with `c = value · γ^{t − start}` and weight `weight`.
#[derive(Clone, Copy, Debug)]
struct Pool {
    value: f64,
    weight: f64,
    start: usize,
    len: usize,
}

/// The AR(1) coefficient per frame for decay time `tau_ms` (ms) and frame period `frame_period_ms` (ms):
/// `γ = e^{−P/τ}`.
pub fn gamma_from_tau(tau_ms: f64, frame_period_ms: f64) -> Result<f64, CalciumError> {
    check("tau_ms", tau_ms, tau_ms > 0.0, "decay time constant must be positive (ms)")?;
    check("frame_period_ms", frame_period_ms, frame_period_ms > 0.0, "frame period must be positive (ms)")?;
    Ok((-frame_period_ms / tau_ms).exp())
}

/// OASIS AR(1) deconvolution of the trace `y` (one value per frame).
pub fn oasis_ar1(y: &[f64], opts: &OasisOptions) -> Result<OasisResult, CalciumError> {
    let g = opts.gamma;
    check("gamma", g, g > 0.0 && g < 1.0, "AR(1) coefficient must lie in (0, 1); use gamma_from_tau")?;
    check("lambda", opts.lambda, opts.lambda >= 0.0, "sparsity penalty must be >= 0")?;
    check("s_min", opts.s_min, opts.s_min >= 0.0, "minimum spike size must be >= 0")?;
    check("baseline", opts.baseline, true, "baseline must be finite")?;
    check_trace("y", y)?;
    let pools = pool_adjacent_violators(y, opts);
    Ok(solution_from_pools(&pools, g, y.len()))
}

/// The merged pools of OASIS for data `y` (validated).
fn pool_adjacent_violators(y: &[f64], opts: &OasisOptions) -> Vec<Pool> {
    let (g, last) = (opts.gamma, y.len().saturating_sub(1));
    let mut pools: Vec<Pool> = Vec::with_capacity(y.len() / 4 + 1);
    for (t, &yt) in y.iter().enumerate() {
        let penalty = if t == last { opts.lambda } else { opts.lambda * (1.0 - g) };
        pools.push(Pool { value: yt - opts.baseline - penalty, weight: 1.0, start: t, len: 1 });
        while let [.., prev, next] = pools[..] {
            if prev.value * g.powi(prev.len as i32) + opts.s_min <= next.value {
                break;
            }
            pools.pop();
            let last_pool = pools.len() - 1;
            pools[last_pool] = merge(prev, next, g);
        }
    }
    pools
}

/// Merges pool `b` into its predecessor `a` (Friedrich et al. 2017, eq. 11–12).
fn merge(a: Pool, b: Pool, g: f64) -> Pool {
    let gl = g.powi(a.len as i32);
    let weight = a.weight + gl * gl * b.weight;
    let value = (a.weight * a.value + gl * b.weight * b.value) / weight;
    Pool { value, weight, start: a.start, len: a.len + b.len }
}

/// Calcium and spikes from pools; pool values are clipped at 0 (`c ≥ 0`).
fn solution_from_pools(pools: &[Pool], g: f64, n: usize) -> OasisResult {
    let mut calcium = vec![0.0; n];
    let mut spikes = vec![0.0; n];
    let mut previous_end = 0.0;
    for p in pools {
        let v = p.value.max(0.0);
        let mut c = v;
        for slot in &mut calcium[p.start..p.start + p.len] {
            *slot = c;
            c *= g;
        }
        spikes[p.start] = if p.start == 0 { v } else { (v - g * previous_end).max(0.0) };
        previous_end = calcium[p.start + p.len - 1];
    }
    OasisResult { calcium, spikes }
}

/// Noise standard deviation σ of `y` from its power spectrum: the mean of a Welch periodogram (segments of
/// 256 frames or the whole trace if shorter, Hann window, 50 % overlap) over the upper half of the
/// frequency range, `f ∈ [f_s/4, f_s/2]`, where calcium transients contribute little and white noise gives
/// `E[P(f)] = σ²` (Friedrich et al. 2017, Methods, following Pnevmatikakis et al. 2016). Needs ≥ 16 frames.
/// Slightly overestimates σ when fast transients carry power at high frequency. Cost O(T · 64).
pub fn estimate_noise_psd(y: &[f64]) -> Result<f64, CalciumError> {
    check_trace("y", y)?;
    if y.len() < 16 {
        return Err(bad_input("y", "noise estimation needs at least 16 frames"));
    }
    let w = y.len().min(256);
    let window: Vec<f64> = (0..w).map(|n| 0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / w as f64).cos()).collect();
    let norm: f64 = window.iter().map(|x| x * x).sum();
    let twiddle: Vec<(f64, f64)> = (0..w)
        .map(|j| {
            let phi = std::f64::consts::TAU * j as f64 / w as f64;
            (phi.cos(), phi.sin())
        })
        .collect();
    let (mut total, mut count) = (0.0, 0usize);
    let mut start = 0;
    while start + w <= y.len() {
        let seg = &y[start..start + w];
        let mean = seg.iter().sum::<f64>() / w as f64;
        let x: Vec<f64> = seg.iter().zip(&window).map(|(v, h)| (v - mean) * h).collect();
        for k in w.div_ceil(4)..=w / 2 {
            total += dft_power(&x, k, &twiddle) / norm;
            count += 1;
        }
        start += (w / 2).max(1);
    }
    Ok((total / count as f64).sqrt())
}

/// |X_k|² of the DFT of `x` at bin `k`, with a table of cos/sin of 2πj/W.
fn dft_power(x: &[f64], k: usize, twiddle: &[(f64, f64)]) -> f64 {
    let w = x.len();
    let (mut re, mut im) = (0.0, 0.0);
    for (n, v) in x.iter().enumerate() {
        let (c, s) = twiddle[(k * n) % w];
        re += v * c;
        im -= v * s;
    }
    re * re + im * im
}

/// AR(1) coefficient γ of `y` from its sample autocovariance `r(j)`, corrected for white noise of standard
/// deviation `sigma` (trace units): the least-squares solution of the Yule–Walker equations
/// `r(k) = γ (r(k−1) − σ² δ_{k,1})`, `k = 1..=lags` (the estimator of Friedrich et al. 2017 and
/// Pnevmatikakis et al. 2016, Neuron 89:285, for p = 1). `lags` ≥ 1 (e.g. 5). Errors if no decaying
/// correlation is found (γ outside (0, 1)), e.g. for a trace without transients.
pub fn estimate_gamma_ar1(y: &[f64], sigma: f64, lags: usize) -> Result<f64, CalciumError> {
    check_trace("y", y)?;
    check("sigma", sigma, sigma >= 0.0, "noise standard deviation must be >= 0")?;
    if lags == 0 || y.len() <= lags + 1 {
        return Err(bad_input("y", format!("need lags >= 1 and more than lags + 1 frames (lags = {lags})")));
    }
    let r = autocovariance(y, lags);
    let (mut num, mut den) = (0.0, 0.0);
    for k in 1..=lags {
        let lhs = if k == 1 { r[0] - sigma * sigma } else { r[k - 1] };
        num += r[k] * lhs;
        den += lhs * lhs;
    }
    let gamma = num / den;
    if gamma.is_finite() && gamma > 0.0 && gamma < 1.0 {
        Ok(gamma)
    } else {
        Err(bad_input("y", format!("estimated AR(1) coefficient {gamma} is outside (0, 1): no calcium transients?")))
    }
}

/// Biased sample autocovariance r(0..=lags) of `y`.
fn autocovariance(y: &[f64], lags: usize) -> Vec<f64> {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    (0..=lags).map(|j| y.iter().zip(&y[j..]).map(|(a, b)| (a - mean) * (b - mean)).sum::<f64>() / n).collect()
}

/// Options of [`spike_events`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventOptions {
    /// Minimum inferred spike amount for an event (trace units), ≥ 0.
    pub threshold: f64,
    /// Events starting within this many frames after the previous event are merged into it (a spike whose
    /// rise is split over two frames by an AR(1) model); 0 merges nothing.
    pub merge_within_frames: usize,
}

/// Frames at which the inferred spike amount exceeds the threshold (frame 0, the initial calcium, is
/// skipped), merging events closer than `merge_within_frames`.
pub fn spike_events(spikes: &[f64], opts: &EventOptions) -> Result<Vec<usize>, CalciumError> {
    check("threshold", opts.threshold, opts.threshold >= 0.0, "event threshold must be >= 0")?;
    check_trace("spikes", spikes)?;
    let mut events: Vec<usize> = Vec::new();
    for (t, &s) in spikes.iter().enumerate().skip(1) {
        if s <= opts.threshold {
            continue;
        }
        if events.last().is_some_and(|&e| t - e <= opts.merge_within_frames) {
            continue;
        }
        events.push(t);
    }
    Ok(events)
}

/// Times (ms) of event frames for frame period `frame_period_ms` (ms): frame `i` ↦ `i · P`, the start of
/// the frame in which the inferred calcium jump is first seen (the spike happened before it, within about
/// one frame plus the indicator's time to peak).
pub fn event_times_ms(events: &[usize], frame_period_ms: f64) -> Vec<f64> {
    events.iter().map(|&i| i as f64 * frame_period_ms).collect()
}

/// Event-detection score (counts and rates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventScore {
    /// Detected events matched to a true event.
    pub true_positives: usize,
    /// Detected events without a match.
    pub false_positives: usize,
    /// True events without a match.
    pub misses: usize,
    /// TP / (TP + FP); 1 when nothing was detected.
    pub precision: f64,
    /// TP / (TP + misses); 1 when there were no true events.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
}

/// Scores detected event times against true event times (both in frames, any order, fractional allowed):
/// greedy one-to-one matching in time order, a pair matching when `|t_true − t_detected| ≤ tolerance`
/// (frames).
pub fn score_events(truth: &[f64], detected: &[f64], tolerance: f64) -> Result<EventScore, CalciumError> {
    check("tolerance", tolerance, tolerance >= 0.0, "tolerance must be >= 0 (frames)")?;
    check_trace("truth", truth)?;
    check_trace("detected", detected)?;
    let (t, d) = (sorted(truth), sorted(detected));
    let (mut i, mut j, mut tp) = (0, 0, 0);
    while i < t.len() && j < d.len() {
        if (t[i] - d[j]).abs() <= tolerance {
            tp += 1;
            i += 1;
            j += 1;
        } else if t[i] < d[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    Ok(score_from_counts(tp, d.len() - tp, t.len() - tp))
}

fn score_from_counts(tp: usize, fp: usize, misses: usize) -> EventScore {
    let ratio = |a: usize, b: usize| if a + b == 0 { 1.0 } else { a as f64 / (a + b) as f64 };
    let (precision, recall) = (ratio(tp, fp), ratio(tp, misses));
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    EventScore { true_positives: tp, false_positives: fp, misses, precision, recall, f1 }
}

fn sorted(x: &[f64]) -> Vec<f64> {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Rejects NaN and infinite samples.
fn check_trace(what: &str, y: &[f64]) -> Result<(), CalciumError> {
    match y.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(bad_input(what, format!("sample {i} is {} (must be finite)", y[i]))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noiseless_ar1_trace_is_recovered_exactly() {
        let g = 0.9;
        let truth = [0.0, 0.0, 1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0];
        let mut c = 0.0;
        let y: Vec<f64> = truth
            .iter()
            .map(|s| {
                c = g * c + s;
                c
            })
            .collect();
        let r = oasis_ar1(&y, &OasisOptions { gamma: g, lambda: 0.0, s_min: 0.0, baseline: 0.0 }).expect("ok");
        for (a, b) in r.spikes.iter().zip(truth) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn scoring_matches_greedily_in_time_order() {
        let s = score_events(&[10.0, 20.0, 30.0], &[11.0, 19.5, 25.0, 40.0], 2.0).expect("ok");
        assert_eq!((s.true_positives, s.false_positives, s.misses), (2, 2, 1));
        assert!((s.f1 - 2.0 * 0.5 * (2.0 / 3.0) / (0.5 + 2.0 / 3.0)).abs() < 1e-12);
    }
}
