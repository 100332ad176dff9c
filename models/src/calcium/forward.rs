//! Forward model: spikes or graded activity → free calcium → fluorescence → ΔF/F frames with noise.
//!
//! **Calcium.** Each spike adds the difference of exponentials of [`IndicatorParams`]. On the simulation
//! grid `t_k = k·dt` this is integrated exactly with two decaying states, `a_k = d·a_{k−1} + …`,
//! `b_k = r·b_{k−1} + …`, `d = e^{−dt/τ_d}`, `r = e^{−dt/τ_r}`, `c_k = c_rest + A (a_k − b_k)`. Eliminating
//! `a` and `b` gives the AR(2) form of OASIS (Friedrich, Zhou & Paninski 2017, PLoS Comput Biol
//! 13:e1005423), `c_t = γ₁ c_{t−1} + γ₂ c_{t−2} + s_t` with `γ₁ = d + r`, `γ₂ = −d·r` (AR(1), `γ = d`, when
//! `τ_rise = 0`); see [`ForwardModel::ar_coefficients`]. Spike times between grid points are handled
//! exactly: a spike at `t_s ∈ (t_{k−1}, t_k]` enters at step `k` with weights `e^{−(t_k−t_s)/τ}`.
//!
//! **Fluorescence.** `F_k = F0 (1 + ΔF/F(c_k))` with the Hill curve of [`IndicatorParams::dff`]; `F0` is the
//! resting fluorescence in detected photons per frame ([`ImagingParams::f0_photons`]).
//!
//! **Frames.** Frame `i` starts at `i·P` (`P` = frame period). [`Sampling::Point`] takes `F` at the sim step
//! nearest to `i·P` (a raster scan visiting the neuron once per frame); [`Sampling::Exposure`] averages `F`
//! over the sim steps in `[i·P, i·P + exposure)` (a camera exposure, or a neuron whose pixels are scanned
//! over the whole frame).
//!
//! **Noise.** Per frame, `F̃ = F + √(κ F)·z₁ + σ_read·z₂` (Gaussian approximation of Poisson shot noise with
//! excess-noise factor κ, plus Gaussian read noise), `z₁, z₂` standard normals by Box–Muller from
//! `CounterRng::new(seed, Stream::ImagingNoise).uniform2(neuron, frame, 0)`. Every sample is therefore a
//! pure function of (seed, neuron, frame): results do not depend on the thread count or evaluation order.
//! The reported ΔF/F is `F̃/F0 − 1` with the true `F0` (no baseline estimation). Box–Muller uses the
//! platform `ln`/`sqrt`/`cos`/`sin`, so traces are bit-identical on one platform, not across libms.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::indicator::IndicatorParams;
use super::{CalciumError, bad_input, check};
use crate::rng::{CounterRng, Stream};

/// Largest number of simulation steps one call accepts (2^32; 5 days at dt = 0.1 ms).
pub const MAX_STEPS: usize = 1 << 32;

/// How a frame samples the fluorescence of a neuron.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sampling {
    /// Instantaneous value at the frame start `i·P` (nearest simulation step).
    Point,
    /// Mean over `[i·P, i·P + exposure_ms)`; `exposure_ms` (ms) must lie in `(0, frame_period_ms]`.
    Exposure {
        /// Exposure (integration) time per frame (ms).
        exposure_ms: f64,
    },
}

/// Microscope/acquisition parameters: frame rate, sampling and noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagingParams {
    /// Frame period P (ms); 33.33 ms for 30 Hz.
    pub frame_period_ms: f64,
    /// Point sample or exposure average per frame.
    pub sampling: Sampling,
    /// Resting fluorescence F0 of one neuron: mean detected photons per frame at `c_rest` (photons).
    /// Sets the shot-noise level: the baseline ΔF/F noise is `√(κ/F0)` without read noise.
    pub f0_photons: f64,
    /// Excess-noise factor κ multiplying the Poisson variance (1 = ideal photon counting, ≈ 1.2–1.5
    /// for a photomultiplier; 0 disables shot noise). Dimensionless, ≥ 0.
    pub shot_noise_factor: f64,
    /// Standard deviation of additive Gaussian read/background noise per frame (photons), ≥ 0.
    pub read_noise_photons: f64,
}

impl ImagingParams {
    /// Frame-averaging (full exposure) acquisition at `frame_rate_hz` (Hz) with ideal shot noise
    /// (κ = 1), no read noise and the given `f0_photons` (photons per frame).
    pub fn new(frame_rate_hz: f64, f0_photons: f64) -> Self {
        let frame_period_ms = 1000.0 / frame_rate_hz;
        Self {
            frame_period_ms,
            sampling: Sampling::Exposure { exposure_ms: frame_period_ms },
            f0_photons,
            shot_noise_factor: 1.0,
            read_noise_photons: 0.0,
        }
    }

    /// Checks every field, naming the first invalid one.
    pub fn validate(&self) -> Result<(), CalciumError> {
        let p = self.frame_period_ms;
        check("frame_period_ms", p, p > 0.0, "frame period must be positive (ms), e.g. 33.33 for 30 Hz")?;
        if let Sampling::Exposure { exposure_ms } = self.sampling {
            check(
                "sampling.exposure_ms",
                exposure_ms,
                exposure_ms > 0.0 && exposure_ms <= p,
                "exposure must be positive and not longer than frame_period_ms (ms)",
            )?;
        }
        check("f0_photons", self.f0_photons, self.f0_photons > 0.0, "resting photons per frame must be positive")?;
        check(
            "shot_noise_factor",
            self.shot_noise_factor,
            self.shot_noise_factor >= 0.0,
            "must be >= 0 (1 = Poisson)",
        )?;
        check("read_noise_photons", self.read_noise_photons, self.read_noise_photons >= 0.0, "must be >= 0 (photons)")
    }

    /// Standard deviation of the baseline ΔF/F noise per frame, `√(κ F0 + σ_read²)/F0` (dimensionless).
    pub fn baseline_noise_dff(&self) -> f64 {
        (self.shot_noise_factor * self.f0_photons + self.read_noise_photons.powi(2)).sqrt() / self.f0_photons
    }
}

/// Mapping from a graded activity trace (rate or voltage) to calcium influx for non-spiking or rate
/// neurons: influx in *spike equivalents per ms* is `gain · max(x − threshold, 0)`. With `x` a firing rate
/// in Hz, `threshold = 0` and `gain = 0.001` the mean calcium equals that of a Poisson spike train of that
/// rate (ignoring the Hill nonlinearity). For a voltage in mV, `threshold` is the activation voltage of
/// the voltage-gated calcium channels and `gain` has units spikes/(ms·mV).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityMapping {
    /// Activity level below which there is no calcium influx (units of the trace).
    pub threshold: f64,
    /// Influx per unit of rectified activity (spike equivalents per ms per trace unit), ≥ 0.
    pub gain: f64,
}

/// What drives the calcium of one neuron.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Drive<'a> {
    /// Spike times (ms, ≥ 0, any order); spikes after the simulated duration are ignored.
    SpikeTimes(&'a [f64]),
    /// Spike count per simulation step `k` (spikes at `t_k = k·dt`); steps beyond the slice have none.
    SpikeCounts(&'a [u32]),
    /// Graded activity per simulation step (units of the mapping), converted by `mapping`.
    Activity {
        /// One value per simulation step.
        trace: &'a [f64],
        /// Activity → calcium influx.
        mapping: ActivityMapping,
    },
}

/// Calcium entering at one simulation step: weights added to the decay and rise states.
#[derive(Clone, Copy, Debug)]
struct Injection {
    step: usize,
    decay: f64,
    rise: f64,
}

/// Forward model of one imaging experiment: indicator, acquisition and simulation time step.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardModel {
    indicator: IndicatorParams,
    imaging: ImagingParams,
    dt_ms: f64,
    /// Calcium (µM) per unit of the unnormalised kernel, `Δc_1AP / k(t_peak)`.
    amplitude_um: f64,
    /// e^{−dt/τ_d}, e^{−dt/τ_r} (0 when τ_r = 0).
    decay_step: f64,
    rise_step: f64,
}

impl ForwardModel {
    /// Validates the parameters and precomputes propagators for the simulation step `dt_ms` (ms), which
    /// must be positive and not longer than the frame period.
    pub fn new(indicator: IndicatorParams, imaging: ImagingParams, dt_ms: f64) -> Result<Self, CalciumError> {
        imaging.validate()?;
        let ok = dt_ms > 0.0 && dt_ms <= imaging.frame_period_ms;
        check("dt_ms", dt_ms, ok, "simulation step must be positive and not longer than the frame period (ms)")?;
        let amplitude_um = indicator.ca_per_spike_um()? / indicator.kernel(indicator.peak_time_ms());
        let rise_step = if indicator.tau_rise_ms > 0.0 { (-dt_ms / indicator.tau_rise_ms).exp() } else { 0.0 };
        let decay_step = (-dt_ms / indicator.tau_decay_ms).exp();
        Ok(Self { indicator, imaging, dt_ms, amplitude_um, decay_step, rise_step })
    }

    /// The indicator parameters.
    pub fn indicator(&self) -> &IndicatorParams {
        &self.indicator
    }

    /// The acquisition parameters.
    pub fn imaging(&self) -> &ImagingParams {
        &self.imaging
    }

    /// Simulation time step (ms).
    pub fn dt_ms(&self) -> f64 {
        self.dt_ms
    }

    /// Peak calcium increment of one isolated spike (µM).
    pub fn ca_per_spike_um(&self) -> f64 {
        self.amplitude_um * self.indicator.kernel(self.indicator.peak_time_ms())
    }

    /// OASIS AR coefficients `[γ₁, γ₂]` of the calcium for a sampling interval `step_ms` (ms):
    /// `γ₁ = e^{−h/τ_d} + e^{−h/τ_r}`, `γ₂ = −e^{−h/τ_d} e^{−h/τ_r}` (`γ₂ = 0`, AR(1), when `τ_rise = 0`).
    pub fn ar_coefficients(&self, step_ms: f64) -> Result<[f64; 2], CalciumError> {
        check("step_ms", step_ms, step_ms > 0.0, "sampling interval must be positive (ms)")?;
        let d = (-step_ms / self.indicator.tau_decay_ms).exp();
        let r = if self.indicator.tau_rise_ms > 0.0 { (-step_ms / self.indicator.tau_rise_ms).exp() } else { 0.0 };
        Ok([d + r, -d * r])
    }

    /// Number of simulation steps covering `duration_ms` (ms): `round(duration/dt)`.
    /// Errors for durations above [`MAX_STEPS`] steps.
    pub fn n_steps(&self, duration_ms: f64) -> Result<usize, CalciumError> {
        check("duration_ms", duration_ms, duration_ms >= 0.0, "duration must be finite and >= 0 (ms)")?;
        let steps = (duration_ms / self.dt_ms).round();
        check("duration_ms", duration_ms, steps <= MAX_STEPS as f64, "more than 2^32 simulation steps; split the run")?;
        Ok(steps as usize)
    }

    /// Number of complete frames within `duration_ms` (ms).
    pub fn n_frames(&self, duration_ms: f64) -> Result<usize, CalciumError> {
        let n_steps = self.n_steps(duration_ms)?;
        let mut n = (duration_ms / self.imaging.frame_period_ms).floor() as usize + 1;
        while n > 0 && self.frame_window(n - 1).1 > n_steps {
            n -= 1;
        }
        Ok(n)
    }

    /// Start time of frame `frame` (ms).
    pub fn frame_time_ms(&self, frame: usize) -> f64 {
        frame as f64 * self.imaging.frame_period_ms
    }

    /// Simulation steps `[first, end)` sampled by frame `i`.
    fn frame_window(&self, i: usize) -> (usize, usize) {
        let start_ms = self.frame_time_ms(i);
        let first = (start_ms / self.dt_ms).round() as usize;
        let end = match self.imaging.sampling {
            Sampling::Point => first + 1,
            Sampling::Exposure { exposure_ms } => ((start_ms + exposure_ms) / self.dt_ms).round() as usize,
        };
        (first, end.max(first + 1))
    }

    /// Total free calcium (µM) at every simulation step `t_k = k·dt`, `k < round(duration/dt)`.
    pub fn calcium_um(&self, drive: &Drive, duration_ms: f64) -> Result<Vec<f64>, CalciumError> {
        let n_steps = self.n_steps(duration_ms)?;
        let mut stepper = Stepper::new(self.injections(drive, n_steps)?);
        Ok((0..n_steps).map(|_| self.indicator.ca_rest_um + self.amplitude_um * stepper.step(self)).collect())
    }

    /// Noise-free ΔF/F at every simulation step (dimensionless).
    pub fn dff_sim(&self, drive: &Drive, duration_ms: f64) -> Result<Vec<f64>, CalciumError> {
        Ok(self.calcium_um(drive, duration_ms)?.into_iter().map(|c| self.indicator.dff(c)).collect())
    }

    /// Noise-free ΔF/F per frame (dimensionless), sampled as [`ImagingParams::sampling`] says.
    pub fn dff_frames(&self, drive: &Drive, duration_ms: f64) -> Result<Vec<f64>, CalciumError> {
        let n_steps = self.n_steps(duration_ms)?;
        let n_frames = self.n_frames(duration_ms)?;
        let mut stepper = Stepper::new(self.injections(drive, n_steps)?);
        Ok((0..n_frames).map(|i| self.frame_dff(&mut stepper, i)).collect())
    }

    /// ΔF/F per frame with shot and read noise for neuron id `neuron`, seeded by `seed`.
    pub fn dff_frames_noisy(
        &self,
        drive: &Drive,
        duration_ms: f64,
        seed: u64,
        neuron: u32,
    ) -> Result<Vec<f64>, CalciumError> {
        let rng = CounterRng::new(seed, Stream::ImagingNoise);
        let mut frames = self.dff_frames(drive, duration_ms)?;
        for (i, v) in frames.iter_mut().enumerate() {
            *v = self.add_noise(*v, &rng, neuron, i as u64);
        }
        Ok(frames)
    }

    /// [`ForwardModel::dff_frames_noisy`] for many neurons in parallel (rayon); neuron `j` of `drives`
    /// gets id `first_neuron + j`, so the result equals computing the neurons one at a time.
    pub fn dff_frames_noisy_batch(
        &self,
        drives: &[Drive],
        duration_ms: f64,
        seed: u64,
        first_neuron: u32,
    ) -> Result<Vec<Vec<f64>>, CalciumError> {
        if first_neuron as u64 + drives.len() as u64 > u32::MAX as u64 + 1 {
            return Err(bad_input("drives", "neuron ids first_neuron + index must fit in u32"));
        }
        drives
            .par_iter()
            .enumerate()
            .map(|(j, d)| self.dff_frames_noisy(d, duration_ms, seed, first_neuron + j as u32))
            .collect()
    }

    /// Noise-free ΔF/F of frame `i`, advancing `stepper` through the frame's window.
    fn frame_dff(&self, stepper: &mut Stepper, i: usize) -> f64 {
        let (first, end) = self.frame_window(i);
        while stepper.next_step < first {
            stepper.step(self);
        }
        let sum: f64 = (first..end)
            .map(|_| self.indicator.f_over_fmin(self.indicator.ca_rest_um + self.amplitude_um * stepper.step(self)))
            .sum();
        sum / (end - first) as f64 / self.indicator.f_over_fmin(self.indicator.ca_rest_um) - 1.0
    }

    /// Adds shot and read noise to a clean ΔF/F sample of (neuron, frame).
    fn add_noise(&self, dff: f64, rng: &CounterRng, neuron: u32, frame: u64) -> f64 {
        let im = &self.imaging;
        let f = im.f0_photons * (1.0 + dff);
        let [z1, z2] = box_muller(rng.uniform2(neuron, frame, 0));
        let noisy = f + (im.shot_noise_factor * f.max(0.0)).sqrt() * z1 + im.read_noise_photons * z2;
        noisy / im.f0_photons - 1.0
    }

    /// Converts a drive into per-step injections sorted by step, ignoring anything at or after `n_steps`.
    fn injections(&self, drive: &Drive, n_steps: usize) -> Result<Vec<Injection>, CalciumError> {
        match *drive {
            Drive::SpikeTimes(times) => self.spike_time_injections(times, n_steps),
            Drive::SpikeCounts(counts) => Ok(counts
                .iter()
                .take(n_steps)
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(step, &n)| self.on_grid(step, n as f64))
                .collect()),
            Drive::Activity { trace, mapping } => self.activity_injections(trace, mapping, n_steps),
        }
    }

    fn spike_time_injections(&self, times: &[f64], n_steps: usize) -> Result<Vec<Injection>, CalciumError> {
        let mut out = Vec::with_capacity(times.len());
        for &t in times {
            if !(t.is_finite() && t >= 0.0) {
                return Err(bad_input("spike times", format!("spike time {t} must be finite and >= 0 (ms)")));
            }
            let step = (t / self.dt_ms).ceil() as usize;
            if step >= n_steps {
                continue;
            }
            let lag = (step as f64 * self.dt_ms - t).max(0.0);
            let rise = if self.indicator.tau_rise_ms > 0.0 { (-lag / self.indicator.tau_rise_ms).exp() } else { 0.0 };
            out.push(Injection { step, decay: (-lag / self.indicator.tau_decay_ms).exp(), rise });
        }
        out.sort_by_key(|inj| inj.step);
        Ok(out)
    }

    fn activity_injections(
        &self,
        trace: &[f64],
        map: ActivityMapping,
        n_steps: usize,
    ) -> Result<Vec<Injection>, CalciumError> {
        check("mapping.threshold", map.threshold, true, "must be finite (units of the trace)")?;
        check("mapping.gain", map.gain, map.gain >= 0.0, "must be finite and >= 0 (spikes per ms per unit)")?;
        let mut out = Vec::with_capacity(trace.len().min(n_steps));
        for (step, &x) in trace.iter().take(n_steps).enumerate() {
            if !x.is_finite() {
                return Err(bad_input("activity trace", format!("value {x} at step {step} must be finite")));
            }
            let amount = map.gain * (x - map.threshold).max(0.0) * self.dt_ms;
            if amount > 0.0 {
                out.push(self.on_grid(step, amount));
            }
        }
        Ok(out)
    }

    /// `amount` spike equivalents exactly at grid time `t_step`.
    fn on_grid(&self, step: usize, amount: f64) -> Injection {
        let rise = if self.indicator.tau_rise_ms > 0.0 { amount } else { 0.0 };
        Injection { step, decay: amount, rise }
    }
}

/// Exact two-state propagation of the difference-of-exponentials kernel through the simulation steps.
struct Stepper {
    injections: Vec<Injection>,
    next_injection: usize,
    next_step: usize,
    decay: f64,
    rise: f64,
}

impl Stepper {
    fn new(injections: Vec<Injection>) -> Self {
        Self { injections, next_injection: 0, next_step: 0, decay: 0.0, rise: 0.0 }
    }

    /// Advances to the next step and returns the unnormalised kernel sum `a − b` there.
    fn step(&mut self, m: &ForwardModel) -> f64 {
        self.decay *= m.decay_step;
        self.rise *= m.rise_step;
        while let Some(inj) = self.injections.get(self.next_injection).filter(|i| i.step == self.next_step) {
            self.decay += inj.decay;
            self.rise += inj.rise;
            self.next_injection += 1;
        }
        self.next_step += 1;
        self.decay - self.rise
    }
}

/// Two independent standard normals from two uniforms in (0, 1) (Box & Muller 1958).
fn box_muller([u1, u2]: [f64; 2]) -> [f64; 2] {
    let r = (-2.0 * u1.ln()).sqrt();
    let phi = std::f64::consts::TAU * u2;
    [r * phi.cos(), r * phi.sin()]
}
