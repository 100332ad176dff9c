//! Per-step control computed by the engine and handed to the backend: receptor gains (drug-like block
//! and scaling) and the silenced-neuron mask.

use serde::{Deserialize, Serialize};

/// A receptor antagonist: fraction blocked follows the Hill equation
/// `block = dose^n / (dose^n + IC50^n)` (Hill 1910; the standard dose–response form, e.g. Neubig et al.
/// 2003, Pharmacol. Rev. 55:597), approached exponentially with the wash-in time constant after
/// `start_ms` and released with the wash-out time constant after `stop_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceptorBlock {
    pub channel: usize,
    /// Concentration (any unit, the same as `ic50`).
    pub dose: f64,
    pub ic50: f64,
    pub hill: f64,
    pub start_ms: f64,
    pub stop_ms: f64,
    /// Wash-in / wash-out time constants (ms); 0 = instantaneous.
    pub tau_on_ms: f64,
    pub tau_off_ms: f64,
}

impl ReceptorBlock {
    /// Steady-state blocked fraction at this dose.
    pub fn steady_block(&self) -> f64 {
        let d = self.dose.powf(self.hill);
        d / (d + self.ic50.powf(self.hill))
    }

    /// Blocked fraction at time `t_ms`.
    pub fn block_at(&self, t_ms: f64) -> f64 {
        let b = self.steady_block();
        let rise = |dt: f64| if self.tau_on_ms > 0.0 { 1.0 - (-dt / self.tau_on_ms).exp() } else { 1.0 };
        if t_ms < self.start_ms {
            0.0
        } else if t_ms < self.stop_ms {
            b * rise(t_ms - self.start_ms)
        } else {
            let at_stop = b * rise(self.stop_ms - self.start_ms);
            if self.tau_off_ms > 0.0 { at_stop * (-(t_ms - self.stop_ms) / self.tau_off_ms).exp() } else { 0.0 }
        }
    }
}

/// A silenced set of neurons during `[start_step, stop_step)`: they emit nothing (no spikes, no graded
/// output) — like a hyperpolarising optogenetic silencer or a lesion of the cells' output.
#[derive(Clone, Debug, PartialEq)]
pub struct Silencing {
    pub targets: Vec<u32>,
    pub start_step: u64,
    pub stop_step: u64,
}

/// Time-dependent perturbations, evaluated by the engine each step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerturbationSchedule {
    /// Constant per-channel gain factors (weight scaling by receptor), multiplied together.
    pub channel_scale: Vec<(usize, f64)>,
    pub blocks: Vec<ReceptorBlock>,
    pub silencing: Vec<Silencing>,
}

/// What the backend receives for one step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepControl {
    /// Multiplier of each receptor channel's input (1 = untouched).
    pub channel_gain: Vec<f64>,
    /// Bit `i % 64` of word `i / 64` set = neuron `i` silenced.
    pub silenced: Vec<u64>,
    /// Incremented whenever `silenced` changes (lets device backends skip uploads).
    pub silenced_version: u64,
}

impl StepControl {
    pub fn new(n_channels: usize, n_neurons: usize) -> Self {
        Self { channel_gain: vec![1.0; n_channels], silenced: vec![0; n_neurons.div_ceil(64)], silenced_version: 0 }
    }

    /// Updates gains and mask for step `step` (time `step * dt_ms`).
    pub fn update(&mut self, p: &PerturbationSchedule, step: u64, dt_ms: f64) {
        let t = step as f64 * dt_ms;
        for g in self.channel_gain.iter_mut() {
            *g = 1.0;
        }
        for &(c, s) in &p.channel_scale {
            self.channel_gain[c] *= s;
        }
        for b in &p.blocks {
            self.channel_gain[b.channel] *= 1.0 - b.block_at(t);
        }
        let changed = p.silencing.iter().any(|s| step == s.start_step || step == s.stop_step) || step == 0;
        if changed {
            self.silenced.iter_mut().for_each(|w| *w = 0);
            for s in &p.silencing {
                if (s.start_step..s.stop_step).contains(&step) {
                    for &i in &s.targets {
                        self.silenced[i as usize / 64] |= 1 << (i % 64);
                    }
                }
            }
            self.silenced_version += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> ReceptorBlock {
        ReceptorBlock {
            channel: 0,
            dose: 10.0,
            ic50: 10.0,
            hill: 1.0,
            start_ms: 100.0,
            stop_ms: 1000.0,
            tau_on_ms: 50.0,
            tau_off_ms: 0.0,
        }
    }

    #[test]
    fn hill_block_at_ic50_is_half_and_steep_hill_is_switch_like() {
        assert!((block().steady_block() - 0.5).abs() < 1e-12);
        let b = ReceptorBlock { dose: 20.0, hill: 4.0, ..block() };
        assert!((b.steady_block() - 16.0 / 17.0).abs() < 1e-12);
    }

    #[test]
    fn wash_in_is_exponential_and_wash_out_instant() {
        let b = block();
        assert_eq!(b.block_at(99.0), 0.0);
        let one_tau = b.block_at(150.0);
        assert!((one_tau - 0.5 * (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert_eq!(b.block_at(1000.0), 0.0);
    }

    #[test]
    fn gains_multiply_and_silencing_window_applies() {
        let p = PerturbationSchedule {
            channel_scale: vec![(1, 0.5)],
            blocks: vec![ReceptorBlock { tau_on_ms: 0.0, ..block() }],
            silencing: vec![Silencing { targets: vec![3, 70], start_step: 5, stop_step: 7 }],
        };
        let mut c = StepControl::new(2, 100);
        c.update(&p, 0, 0.1);
        assert_eq!(c.silenced, vec![0, 0]);
        c.update(&p, 5, 0.1);
        assert_eq!(c.silenced, vec![1 << 3, 1 << 6]);
        c.update(&p, 1500, 0.1);
        assert_eq!(c.channel_gain, vec![0.5, 0.5]);
    }
}
