//! The backend interface (Arbor-style split: one engine, several backends, one test suite run against
//! all of them). A backend owns the neuron state and the spike-delivery buffers and advances the whole
//! network by one step; the engine owns time, perturbation schedules and recording.

use crate::control::StepControl;
use crate::error::SimError;

/// Where the simulation runs.
pub trait Backend: Send {
    /// Short name (`cpu`, `cuda`, `cuda-host`).
    fn name(&self) -> &'static str;

    /// Advances all neurons from step `step` to `step + 1` and delivers what they emit. Returns the
    /// neurons that spiked in this step, ascending (empty for graded models).
    fn step(&mut self, step: u64, control: &StepControl) -> Result<&[u32], SimError>;

    /// Current value of state variable `var` for each of `neurons` (appended to `out`).
    fn read_state(&self, var: usize, neurons: &[u32], out: &mut Vec<f64>);

    /// Fixed-point scale of the spike-delivery buffers: weights are accumulated exactly as integers in
    /// units of `2^-exponent` (see `cpu::DeliveryScale`).
    fn delivery_scale_exponent(&self) -> i32;
}
