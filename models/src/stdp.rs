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
}

/// e^{−steps·dt/τ}: the decay of a trace of time constant `tau_ms` over `steps` steps of `dt_ms` — the one formula
/// of every STDP trace (the kernels' `nt_stdp_decay` computes the same operations).
#[inline]
pub fn trace_decay(steps: u64, dt_ms: f64, tau_ms: f64) -> f64 {
    detmath::exp(-(steps as f64 * dt_ms) / tau_ms)
}

/// Reward-modulated (three-factor) STDP: spike pairs change an eligibility trace `c` instead of the weight, a
/// dopamine trace `n` follows the spikes of a set of dopamine neurons, and the weight follows
/// dw/dt = c·(n − b), clipped to [`w_min`, `w_max`] (Izhikevich 2007, Cereb. Cortex 17:2443; the equations of NEST's
/// `stdp_dopamine_synapse`, Potjans et al. 2010). A pre-before-post pair adds `a_plus·K₊` to `c`, a post-before-pre
/// pair subtracts `a_minus·K₋` (all-to-all traces with τ₊, τ₋); `c` decays with τ_c; each dopamine spike adds
/// 1/τ_n to `n`, which decays with τ_n. Defaults are NEST 3's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DopamineParams {
    /// Eligibility step of a pre-before-post pair. NEST: 1.
    pub a_plus: f64,
    /// Eligibility step of a post-before-pre pair. NEST: 1.5.
    pub a_minus: f64,
    /// Presynaptic trace time constant (ms). NEST: 20 ms.
    pub tau_plus_ms: f64,
    /// Postsynaptic trace time constant (ms). NEST: the target's `tau_minus`, 20 ms.
    pub tau_minus_ms: f64,
    /// Eligibility trace time constant (ms). NEST: 1000 ms.
    pub tau_c_ms: f64,
    /// Dopamine trace time constant (ms). NEST: 200 ms.
    pub tau_n_ms: f64,
    /// Dopamine baseline b (1/ms). NEST: 0.
    pub b: f64,
    /// Weight bounds (model's synaptic unit). NEST: 0 and 200.
    pub w_min: f64,
    pub w_max: f64,
}

impl Default for DopamineParams {
    fn default() -> Self {
        Self {
            a_plus: 1.0,
            a_minus: 1.5,
            tau_plus_ms: 20.0,
            tau_minus_ms: 20.0,
            tau_c_ms: 1000.0,
            tau_n_ms: 200.0,
            b: 0.0,
            w_min: 0.0,
            w_max: 200.0,
        }
    }
}

impl DopamineParams {
    /// Checks the values (time constants positive, steps and baseline finite, `w_min <= w_max`); the message
    /// names the field.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("tau_plus_ms", self.tau_plus_ms),
            ("tau_minus_ms", self.tau_minus_ms),
            ("tau_c_ms", self.tau_c_ms),
            ("tau_n_ms", self.tau_n_ms),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("`{name}` must be a positive time (ms), got {v}"));
            }
        }
        for (name, v) in [("a_plus", self.a_plus), ("a_minus", self.a_minus), ("b", self.b)] {
            if !v.is_finite() {
                return Err(format!("`{name}` must be finite, got {v}"));
            }
        }
        if !(self.w_min.is_finite() && self.w_max.is_finite() && self.w_min <= self.w_max) {
            return Err(format!(
                "`w_min` ({}) and `w_max` ({}) must be finite with w_min <= w_max",
                self.w_min, self.w_max
            ));
        }
        Ok(())
    }

    /// Whether weight `w` lies in [`w_min`, `w_max`].
    pub fn in_bounds(&self, w: f64) -> bool {
        (self.w_min..=self.w_max).contains(&w)
    }

    /// `w` after `dt_ms` of dw/dt = c·(n − b) from eligibility `c0` and dopamine `n0` at the start (both decaying,
    /// no spike in between), clipped: w + c0·(n0·τ_s·(1 − e^{−Δ/τ_s}) − b·τ_c·(1 − e^{−Δ/τ_c})), 1/τ_s = 1/τ_c + 1/τ_n
    /// (NEST's `update_weight_`, written as it is there).
    #[inline]
    pub fn integrate_weight(&self, w: f64, c0: f64, n0: f64, dt_ms: f64) -> f64 {
        let inv_tau_s = (self.tau_c_ms + self.tau_n_ms) / (self.tau_c_ms * self.tau_n_ms);
        let minus_dt = -dt_ms;
        let w = w - c0
            * (n0 / inv_tau_s * detmath::expm1(inv_tau_s * minus_dt)
                - self.b * self.tau_c_ms * detmath::expm1(minus_dt / self.tau_c_ms));
        w.clamp(self.w_min, self.w_max)
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

    /// The closed form integrates dw/dt = c·(n − b) exactly: it equals a fine Runge–Kutta integration of the
    /// ODE, and two half steps equal one whole step (the traces carried across the split).
    #[test]
    fn dopamine_weight_integral_is_exact() {
        let p = DopamineParams { b: 0.0008, w_max: 1e9, w_min: -1e9, ..Default::default() };
        let (c0, n0, t) = (0.7, 0.02, 350.0);
        let closed = p.integrate_weight(10.0, c0, n0, t);
        // RK4 on (w, c, n) with 350 000 steps of 1 µs.
        let f = |y: [f64; 3]| [y[1] * (y[2] - p.b), -y[1] / p.tau_c_ms, -y[2] / p.tau_n_ms];
        let (mut y, h) = ([10.0, c0, n0], 1e-3);
        for _ in 0..350_000 {
            let k1 = f(y);
            let k2 = f(std::array::from_fn(|i| y[i] + 0.5 * h * k1[i]));
            let k3 = f(std::array::from_fn(|i| y[i] + 0.5 * h * k2[i]));
            let k4 = f(std::array::from_fn(|i| y[i] + h * k3[i]));
            y = std::array::from_fn(|i| y[i] + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]));
        }
        assert!((closed - y[0]).abs() < 1e-9, "closed {closed}, RK4 {}", y[0]);
        let half = p.integrate_weight(10.0, c0, n0, t / 2.0);
        let (c1, n1) = (c0 * (-t / 2.0 / p.tau_c_ms).exp(), n0 * (-t / 2.0 / p.tau_n_ms).exp());
        assert!((p.integrate_weight(half, c1, n1, t / 2.0) - closed).abs() < 1e-12);
        // Clipped at the bounds.
        let bounded = DopamineParams { w_max: 10.5, ..p };
        assert_eq!(bounded.integrate_weight(10.0, c0, n0, t), 10.5);
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
