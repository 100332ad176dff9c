//! Pair-based spike-timing-dependent plasticity (STDP): the weight rule of NEST's `stdp_synapse` (Gütig et al.
//! 2003 weight dependence, all-to-all pairing; Morrison et al. 2008 "Phenomenological models of synaptic
//! plasticity based on spike timing", Biol. Cybern. 98) and of `stdp_nn_symm_synapse` (symmetric
//! nearest-neighbour pairing), as plain parameters and functions that every backend shares. The per-synapse
//! bookkeeping (traces, delays, which post spikes pair with which pre spike) lives in `neurotwin-sim`
//! (`plasticity.rs`); everything here is arithmetic on one weight.
//!
//! Weights are normalised by `w_max`: potentiation adds `λ·(1 − w/w_max)^μ₊·K₊`, depression subtracts
//! `α·λ·(w/w_max)^μ₋·K₋`, and the result is clipped to [0, 1]·`w_max`. `μ = 0` is the additive rule (hard bounds),
//! `μ = 1` the multiplicative one (soft bounds, van Rossum et al. 2000), values in between Gütig et al.'s.
//! Powers use [`crate::detmath::powf`] so that every platform computes the same bits.

use serde::{Deserialize, Serialize};

use crate::detmath;

/// Which spike pairs change a weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// Every pre spike pairs with every post spike (traces add up; NEST `stdp_synapse`).
    AllToAll,
    /// Each pre spike pairs with the nearest preceding post spike, each post spike with the nearest preceding
    /// pre spike (traces reset to 1; NEST `stdp_nn_symm_synapse`, Morrison et al. 2008 Fig. 7A).
    Nearest,
}

/// Parameters of one STDP rule. Defaults are NEST 3's `stdp_synapse` (and `iaf_*`'s `tau_minus`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StdpParams {
    pub pairing: Pairing,
    /// Time constant of the presynaptic trace K₊ (ms). NEST: 20 ms.
    pub tau_plus_ms: f64,
    /// Time constant of the postsynaptic trace K₋ (ms). NEST: the target neuron's `tau_minus`, 20 ms.
    pub tau_minus_ms: f64,
    /// Step of potentiation λ, relative to `w_max`. NEST: 0.01.
    pub lambda: f64,
    /// Asymmetry α: depression steps are α·λ. NEST: 1.
    pub alpha: f64,
    /// Weight-dependence exponent of potentiation μ₊ (0 additive, 1 multiplicative). NEST: 1.
    pub mu_plus: f64,
    /// Weight-dependence exponent of depression μ₋. NEST: 1.
    pub mu_minus: f64,
    /// Bound of the weight (model's synaptic unit, e.g. pA); the other bound is 0, and weights keep its sign.
    /// NEST: 100.
    pub w_max: f64,
}

impl Default for StdpParams {
    fn default() -> Self {
        Self {
            pairing: Pairing::AllToAll,
            tau_plus_ms: 20.0,
            tau_minus_ms: 20.0,
            lambda: 0.01,
            alpha: 1.0,
            mu_plus: 1.0,
            mu_minus: 1.0,
            w_max: 100.0,
        }
    }
}

impl StdpParams {
    /// Checks the values: time constants positive, λ, α and the exponents finite and non-negative, `w_max`
    /// finite and not 0. The message names the field.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [("tau_plus_ms", self.tau_plus_ms), ("tau_minus_ms", self.tau_minus_ms)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("`{name}` must be a positive time (ms), got {v}"));
            }
        }
        for (name, v) in
            [("lambda", self.lambda), ("alpha", self.alpha), ("mu_plus", self.mu_plus), ("mu_minus", self.mu_minus)]
        {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("`{name}` must be finite and >= 0, got {v}"));
            }
        }
        if !self.w_max.is_finite() || self.w_max == 0.0 {
            return Err(format!("`w_max` must be finite and not 0, got {}", self.w_max));
        }
        Ok(())
    }

    /// Whether weight `w` lies between 0 and `w_max` (inclusive; the rule's domain).
    pub fn in_bounds(&self, w: f64) -> bool {
        let x = w / self.w_max;
        (0.0..=1.0).contains(&x)
    }

    /// `w` after a potentiating pair whose presynaptic trace is `k_plus` (NEST's `facilitate_`).
    #[inline]
    pub fn facilitate(&self, w: f64, k_plus: f64) -> f64 {
        let x = w / self.w_max;
        let norm = x + self.lambda * detmath::powf(1.0 - x, self.mu_plus) * k_plus;
        if norm < 1.0 { norm * self.w_max } else { self.w_max }
    }

    /// `w` after a depressing pair whose postsynaptic trace is `k_minus` (NEST's `depress_`).
    #[inline]
    pub fn depress(&self, w: f64, k_minus: f64) -> f64 {
        let x = w / self.w_max;
        let norm = x - self.alpha * self.lambda * detmath::powf(x, self.mu_minus) * k_minus;
        if norm > 0.0 { norm * self.w_max } else { 0.0 }
    }

    /// e^{−steps·dt/τ₊}: the decay of the presynaptic trace over `steps` steps of `dt_ms`.
    #[inline]
    pub fn decay_plus(&self, steps: u64, dt_ms: f64) -> f64 {
        detmath::exp(-(steps as f64 * dt_ms) / self.tau_plus_ms)
    }

    /// e^{−steps·dt/τ₋}: the decay of the postsynaptic trace over `steps` steps of `dt_ms`.
    #[inline]
    pub fn decay_minus(&self, steps: u64, dt_ms: f64) -> f64 {
        detmath::exp(-(steps as f64 * dt_ms) / self.tau_minus_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Additive rule (μ = 0): one pair moves the weight by exactly λ·w_max·K (up) or α·λ·w_max·K (down), clipped
    /// at the bounds; the multiplicative rule (μ = 1) scales the step by the distance to the bound.
    #[test]
    fn steps_and_bounds_follow_the_definition() {
        let add = StdpParams { mu_plus: 0.0, mu_minus: 0.0, alpha: 1.5, ..Default::default() };
        assert!((add.facilitate(50.0, 0.5) - (50.0 + 0.01 * 100.0 * 0.5)).abs() < 1e-12);
        assert!((add.depress(50.0, 0.5) - (50.0 - 1.5 * 0.01 * 100.0 * 0.5)).abs() < 1e-12);
        assert_eq!(add.facilitate(99.9, 1.0), 100.0);
        assert_eq!(add.depress(0.1, 1.0), 0.0);
        let mul = StdpParams::default();
        assert!((mul.facilitate(80.0, 1.0) - (80.0 + 0.01 * 20.0)).abs() < 1e-12);
        assert!((mul.depress(80.0, 1.0) - (80.0 - 0.01 * 80.0)).abs() < 1e-12);
        // Gütig et al. 2003: μ = 0.4 steps by (1 − w/w_max)^0.4.
        let g = StdpParams { mu_plus: 0.4, mu_minus: 0.4, ..Default::default() };
        let up = 100.0 * 0.01 * 0.75f64.powf(0.4);
        assert!((g.facilitate(25.0, 1.0) - (25.0 + up)).abs() < 1e-12);
        // Inhibitory synapses: negative weight and bound, the same normalised rule.
        let inh = StdpParams { w_max: -100.0, ..Default::default() };
        assert!((inh.facilitate(-80.0, 1.0) - (-80.0 - 0.01 * 20.0)).abs() < 1e-12);
        assert!(inh.in_bounds(-3.0) && !inh.in_bounds(3.0) && !add.in_bounds(100.5));
    }

    #[test]
    fn check_names_the_field() {
        let bad = StdpParams { tau_minus_ms: 0.0, ..Default::default() };
        assert!(bad.check().unwrap_err().contains("tau_minus_ms"));
        let bad = StdpParams { w_max: 0.0, ..Default::default() };
        assert!(bad.check().unwrap_err().contains("w_max"));
        let bad = StdpParams { mu_plus: f64::NAN, ..Default::default() };
        assert!(bad.check().unwrap_err().contains("mu_plus"));
        assert!(StdpParams::default().check().is_ok());
    }
}
