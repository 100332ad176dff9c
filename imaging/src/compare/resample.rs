//! Putting two trace sets (two [`CalciumRecording`]s, or a simulation and a recording) on a common time base.
//!
//! # Rule
//!
//! 1. **Interval**: the overlap `[max(start_a, start_b), min(stop_a, stop_b)]` of the two frame-time
//!    ranges (seconds, both on the same clock: subtract offsets first if needed). No overlap, or an
//!    overlap holding fewer than two frames of the common base, is an error.
//! 2. **Frame rate**: the coarser (lower) of the two, each estimated as 1 / median frame interval.
//! 3. **Grid** ([`GridRule`]): by default the coarser series' own frame times inside the overlap
//!    ([`GridRule::CoarserTimestamps`]), so the coarser series (normally the recording) is used exactly as
//!    measured — interpolating it at off-frame times would average neighbouring noise samples and lower
//!    its noise variance (by up to one half at mid-frame), which biases correlations and explained
//!    variance. [`GridRule::Uniform`] instead uses `t_k = start + k/f` (`f` the coarser rate).
//! 4. **Values**, per series, from its step ratio `q = Δt_grid / Δt_series` (median intervals):
//!    * `q < ResampleOptions::bin_factor` (default 2): **linear interpolation** between the two
//!      series frames bracketing `t_k`; a grid time equal to a frame time (within 10⁻⁹ of an interval)
//!      takes that frame; if either bracketing frame is NaN the result is NaN (a gap is never bridged).
//!      Error bound for a smooth signal: `|f − L f| ≤ h² max|f''| / 8` (`h` the series' frame interval).
//!    * `q ≥ bin_factor`: **cell mean**: the exact time average, over the grid frame's cell
//!      `[t_k − Δ₋/2, t_k + Δ₊/2)` (`Δ₋`, `Δ₊` the grid intervals before and after `t_k`; the first and
//!      last cells are symmetric; clipped to the series' time range), of the series' piecewise-linear
//!      interpolant ([`bin_mean`]). This is a boxcar anti-aliasing filter: point-sampling a much finer
//!      series would alias its fast fluctuations (noise, spikes) into the slow grid, while the mean is what
//!      a camera exposure over the frame would have measured. Averaging the interpolant rather than the
//!      raw frames in the cell keeps the average centred on `t_k` (a plain mean of 2–3 frames is off-centre
//!      by up to half a series interval). Error for a smooth signal, cell width `c`:
//!      `≤ max|f''| (c²/24 + h²/8)` — the boxcar itself attenuates a sinusoid of frequency `ν` by
//!      `sin(πνc)/(πνc)`. Segments next to a NaN frame are left out; the cell is NaN when they cover more
//!      than half of it.

use serde::{Deserialize, Serialize};

use crate::error::ImagingError;
use crate::recording::CalciumRecording;
use crate::stats::nan_median;

/// Which times form the common time base (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GridRule {
    /// The frame times of the series with the coarser (lower) frame rate, inside the overlap (default):
    /// that series is used without interpolation.
    #[default]
    CoarserTimestamps,
    /// A uniform grid `start + k/f` over the overlap at the coarser frame rate `f`.
    Uniform,
}

/// How one series was brought onto the common time base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResampleMethod {
    /// Values taken as they are (the series' own frame times form the grid).
    Identity,
    /// Linear interpolation between bracketing frames (NaN next to a NaN frame).
    Linear,
    /// Mean over the frames in each grid cell (downsampling by at least `bin_factor`).
    BinMean,
}

/// Options of [`align`] / [`align_traces`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResampleOptions {
    /// How the grid is chosen (default [`GridRule::CoarserTimestamps`]).
    pub grid: GridRule,
    /// Downsampling ratio (grid interval / series interval, dimensionless) from which bin means replace
    /// linear interpolation; must be finite and ≥ 1 (default 2). `f64::MAX` always interpolates.
    pub bin_factor: f64,
}

impl Default for ResampleOptions {
    fn default() -> Self {
        Self { grid: GridRule::CoarserTimestamps, bin_factor: 2.0 }
    }
}

impl ResampleOptions {
    /// Checks `bin_factor` (≥ 1, not NaN).
    pub fn validate(&self) -> Result<(), ImagingError> {
        if self.bin_factor.is_finite() && self.bin_factor >= 1.0 {
            Ok(())
        } else {
            Err(ImagingError::Compare(format!(
                "bin_factor = {} must be finite and >= 1 (a downsampling ratio; a very large value always \
                 interpolates)",
                self.bin_factor
            )))
        }
    }
}

/// The common time base of two series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeBase {
    /// Time of the first common frame (s, on the inputs' clock).
    pub start_s: f64,
    /// Time of the last common frame (s).
    pub stop_s: f64,
    /// Frame rate of the grid (Hz): 1 / median grid interval.
    pub frame_rate_hz: f64,
    /// Number of common frames.
    pub n_frames: usize,
    /// How the grid was chosen.
    pub grid: GridRule,
}

impl TimeBase {
    /// Median frame interval of the grid (s), `1 / frame_rate_hz`; lags in frames are converted to
    /// seconds with it.
    pub fn dt_s(&self) -> f64 {
        1.0 / self.frame_rate_hz
    }
}

/// Two trace sets on a common time base: `a` (the first argument, the simulation in
/// [`compare`](super::compare)) and `b` (the second, the recording), both row-major rows × frames.
#[derive(Clone, Debug, PartialEq)]
pub struct Aligned {
    /// The common time base.
    pub time_base: TimeBase,
    /// Grid times (s), `time_base.n_frames` of them.
    pub time_s: Vec<f64>,
    /// Rows of the first series, resampled (row-major, `n_a × n_frames`, unit of the input).
    pub a: Vec<f64>,
    /// Number of rows of `a`.
    pub n_a: usize,
    /// How `a` was resampled.
    pub method_a: ResampleMethod,
    /// Rows of the second series, resampled (row-major, `n_b × n_frames`, unit of the input).
    pub b: Vec<f64>,
    /// Number of rows of `b`.
    pub n_b: usize,
    /// How `b` was resampled.
    pub method_b: ResampleMethod,
}

impl Aligned {
    /// Row `i` of the first series on the grid. Panics if `i >= n_a`.
    pub fn a_trace(&self, i: usize) -> &[f64] {
        let m = self.time_s.len();
        &self.a[i * m..(i + 1) * m]
    }

    /// Row `i` of the second series on the grid. Panics if `i >= n_b`.
    pub fn b_trace(&self, i: usize) -> &[f64] {
        let m = self.time_s.len();
        &self.b[i * m..(i + 1) * m]
    }
}

/// One trace set as given by a caller: frame times (s) and row-major rows × frames values.
#[derive(Clone, Copy, Debug)]
pub struct TraceSet<'a> {
    /// What it is, for error messages (e.g. `simulation`).
    pub name: &'a str,
    /// Frame times (s), finite and strictly increasing.
    pub time_s: &'a [f64],
    /// Values, row-major `n_rows × time_s.len()`; NaN = missing.
    pub traces: &'a [f64],
    /// Number of rows.
    pub n_rows: usize,
}

impl<'a> TraceSet<'a> {
    /// The traces of a [`CalciumRecording`], named `name`.
    pub fn of(name: &'a str, r: &'a CalciumRecording) -> Self {
        Self { name, time_s: &r.time_s, traces: &r.traces, n_rows: r.n_neurons }
    }

    fn check(&self) -> Result<f64, ImagingError> {
        let bad = |m: String| Err(ImagingError::Compare(format!("{}: {m}", self.name)));
        let m = self.time_s.len();
        if m < 2 {
            return bad(format!("{m} frame(s): at least two frame times are needed to resample"));
        }
        if self.traces.len() != self.n_rows * m {
            return bad(format!(
                "{} values for {} rows × {m} frames: traces must be row-major rows × frames",
                self.traces.len(),
                self.n_rows
            ));
        }
        if let Some(k) = self.time_s.iter().position(|t| !t.is_finite()) {
            return bad(format!("frame time [{k}] is {}: every frame needs a finite time (s)", self.time_s[k]));
        }
        if let Some(k) = self.time_s.windows(2).position(|w| w[1] <= w[0]) {
            return bad(format!(
                "frame times are not strictly increasing at [{}] = {} after {}; sort the frames",
                k + 1,
                self.time_s[k + 1],
                self.time_s[k]
            ));
        }
        if let Some(k) = self.traces.iter().position(|v| v.is_infinite()) {
            return bad(format!("value {k} is infinite: use NaN for missing values"));
        }
        let d: Vec<f64> = self.time_s.windows(2).map(|w| w[1] - w[0]).collect();
        Ok(nan_median(&d).unwrap_or(f64::NAN))
    }
}

/// Aligns two recordings (see the [module documentation](self) for the rule): `a` is usually the
/// simulation, `b` the recording.
pub fn align(a: &CalciumRecording, b: &CalciumRecording, opts: &ResampleOptions) -> Result<Aligned, ImagingError> {
    align_traces(&TraceSet::of("first recording", a), &TraceSet::of("second recording", b), opts)
}

/// Aligns two trace sets given as times + row-major traces (see the [module documentation](self)).
pub fn align_traces(a: &TraceSet, b: &TraceSet, opts: &ResampleOptions) -> Result<Aligned, ImagingError> {
    opts.validate()?;
    let (da, db) = (a.check()?, b.check()?);
    let start = a.time_s[0].max(b.time_s[0]);
    let stop = a.time_s[a.time_s.len() - 1].min(b.time_s[b.time_s.len() - 1]);
    if stop <= start {
        return Err(ImagingError::Compare(format!(
            "no time overlap: {} covers {}..{} s and {} covers {}..{} s; put both on the same clock (e.g. \
             subtract each series' first time) or pick matching segments",
            a.name,
            a.time_s[0],
            a.time_s[a.time_s.len() - 1],
            b.name,
            b.time_s[0],
            b.time_s[b.time_s.len() - 1]
        )));
    }
    let a_coarser = da >= db;
    let (coarse, dt) = if a_coarser { (a, da) } else { (b, db) };
    let tol = 1e-9 * dt;
    let time_s: Vec<f64> = match opts.grid {
        GridRule::CoarserTimestamps => {
            coarse.time_s.iter().copied().filter(|&t| t >= start - tol && t <= stop + tol).collect()
        }
        GridRule::Uniform => {
            let n = ((stop - start) / dt + 1e-9).floor() as usize + 1;
            (0..n).map(|k| start + k as f64 * dt).collect()
        }
    };
    if time_s.len() < 2 {
        return Err(ImagingError::Compare(format!(
            "the overlap {start}..{stop} s holds {} frame(s) at {:.4} Hz: at least two are needed; use longer \
             or better-matched recordings",
            time_s.len(),
            1.0 / dt
        )));
    }
    let d: Vec<f64> = time_s.windows(2).map(|w| w[1] - w[0]).collect();
    let grid_dt = nan_median(&d).unwrap_or(dt);
    let time_base = TimeBase {
        start_s: time_s[0],
        stop_s: time_s[time_s.len() - 1],
        frame_rate_hz: 1.0 / grid_dt,
        n_frames: time_s.len(),
        grid: opts.grid,
    };
    let identity_a = opts.grid == GridRule::CoarserTimestamps && a_coarser;
    let identity_b = opts.grid == GridRule::CoarserTimestamps && !a_coarser;
    let (va, method_a) = resample_set(a, da, &time_s, grid_dt, identity_a, opts.bin_factor);
    let (vb, method_b) = resample_set(b, db, &time_s, grid_dt, identity_b, opts.bin_factor);
    Ok(Aligned { time_base, time_s, a: va, n_a: a.n_rows, method_a, b: vb, n_b: b.n_rows, method_b })
}

fn resample_set(
    s: &TraceSet,
    ds: f64,
    grid: &[f64],
    grid_dt: f64,
    identity: bool,
    bin_factor: f64,
) -> (Vec<f64>, ResampleMethod) {
    let m = s.time_s.len();
    let method = if identity {
        ResampleMethod::Identity
    } else if grid_dt / ds >= bin_factor {
        ResampleMethod::BinMean
    } else {
        ResampleMethod::Linear
    };
    let mut out = Vec::with_capacity(s.n_rows * grid.len());
    for i in 0..s.n_rows {
        let row = &s.traces[i * m..(i + 1) * m];
        match method {
            ResampleMethod::Identity => {
                let first = s.time_s.partition_point(|&t| t < grid[0] - 1e-9 * ds);
                out.extend_from_slice(&row[first..first + grid.len()]);
            }
            ResampleMethod::Linear => out.extend(interp_linear(s.time_s, row, grid)),
            ResampleMethod::BinMean => out.extend(bin_mean(s.time_s, row, grid)),
        }
    }
    (out, method)
}

/// Linear interpolation of `(t, y)` at `grid` (all in s), NaN-aware: a grid time between two frames of
/// which one is NaN is NaN; a grid time equal to a frame time (within 10⁻⁹ of the local interval) takes
/// that frame; grid times outside `[t₀, t_last]` (beyond that tolerance) are NaN. `t` must be strictly
/// increasing and as long as `y`.
pub fn interp_linear(t: &[f64], y: &[f64], grid: &[f64]) -> Vec<f64> {
    let n = t.len().min(y.len());
    if n == 0 {
        return vec![f64::NAN; grid.len()];
    }
    let tol = if n > 1 { 1e-9 * (t[n - 1] - t[0]) / (n - 1) as f64 } else { 0.0 };
    grid.iter()
        .map(|&g| {
            // First frame with time >= g.
            let j = t[..n].partition_point(|&x| x < g);
            if j < n && t[j] - g <= tol {
                return y[j];
            }
            if j > 0 && g - t[j - 1] <= tol {
                return y[j - 1];
            }
            if j == 0 || j >= n {
                return f64::NAN;
            }
            let w = (g - t[j - 1]) / (t[j] - t[j - 1]);
            let (a, b) = (y[j - 1], y[j]);
            if a.is_nan() || b.is_nan() { f64::NAN } else { a + w * (b - a) }
        })
        .collect()
}

/// Cell means of `(t, y)` over the cells of `grid` (see the [module documentation](self)): the exact
/// time average over cell `k` = `[g_k − Δ₋/2, g_k + Δ₊/2)` (clipped to `[t₀, t_last]`) of the piecewise-linear
/// interpolant of the series. Segments touching a NaN frame are left out; the cell is NaN when they cover
/// more than half of it, or it lies outside the series. `t` and `grid` in s, strictly increasing.
pub fn bin_mean(t: &[f64], y: &[f64], grid: &[f64]) -> Vec<f64> {
    let n = t.len().min(y.len());
    let g = grid.len();
    (0..g)
        .map(|k| {
            if n < 2 {
                return f64::NAN;
            }
            let before = if k > 0 {
                grid[k] - grid[k - 1]
            } else if g > 1 {
                grid[1] - grid[0]
            } else {
                0.0
            };
            let after = if k + 1 < g { grid[k + 1] - grid[k] } else { before };
            let lo = (grid[k] - 0.5 * before).max(t[0]);
            let hi = (grid[k] + 0.5 * after).min(t[n - 1]);
            if hi <= lo {
                return f64::NAN;
            }
            // Segments [t_j, t_{j+1}] overlapping [lo, hi].
            let first = t[..n].partition_point(|&x| x <= lo).saturating_sub(1);
            let (mut integral, mut valid) = (0.0, 0.0);
            for j in first..n - 1 {
                if t[j] >= hi {
                    break;
                }
                let (a, b) = (t[j].max(lo), t[j + 1].min(hi));
                if b <= a || y[j].is_nan() || y[j + 1].is_nan() {
                    continue;
                }
                let at = |x: f64| y[j] + (y[j + 1] - y[j]) * (x - t[j]) / (t[j + 1] - t[j]);
                integral += 0.5 * (b - a) * (at(a) + at(b));
                valid += b - a;
            }
            if valid <= 0.0 || valid < 0.5 * (hi - lo) { f64::NAN } else { integral / valid }
        })
        .collect()
}
