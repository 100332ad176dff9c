//! The backend interface (Arbor-style split: one engine, several backends, one test suite run against
//! all of them). A backend owns the neuron state and the spike-delivery buffers and advances the whole
//! network by one step; the engine owns time, perturbation schedules and recording.
//!
//! Two ways to drive a backend: [`Backend::step`] returns each step's spikes at once (tests, interactive
//! use); [`Backend::advance`] + [`Backend::drain_spikes`] let a backend keep up to
//! [`Backend::spike_window`] steps of spikes where they were produced (the GPU's spike record) and hand them
//! over in one transfer — what the engine uses. Both give the same spikes.

pub use neurotwin_kernels::backend_kind::BackendKind;

use crate::control::StepControl;
use crate::cpu::CpuBackend;
use crate::cuda::CudaBackend;
use crate::error::SimError;
use crate::host_kernels::HostKernelBackend;
use crate::setup::SimSetup;

/// Where the simulation runs.
pub trait Backend: Send {
    /// Short name (`cpu`, `cuda`, `cuda-host`).
    fn name(&self) -> &'static str;

    /// Advances all neurons from step `step` to `step + 1` and delivers what they emit. Returns the
    /// neurons that spiked in this step, ascending (empty for graded models). Must not be called while
    /// advanced steps are waiting to be drained.
    fn step(&mut self, step: u64, control: &StepControl) -> Result<&[u32], SimError>;

    /// Like [`Backend::step`], but the step's spikes are only handed over by the next
    /// [`Backend::drain_spikes`]. At most [`Backend::spike_window`] steps may be advanced between drains.
    fn advance(&mut self, step: u64, control: &StepControl) -> Result<(), SimError>;

    /// Passes the spikes of every step advanced since the last drain to `sink(step, neurons)` (ascending
    /// neurons), in step order, and empties the window.
    fn drain_spikes(&mut self, sink: &mut dyn FnMut(u64, &[u32])) -> Result<(), SimError>;

    /// How many steps [`Backend::advance`] can buffer before a drain (at least 1).
    fn spike_window(&self) -> usize;

    /// Current value of state variable `var` for each of `neurons` (appended to `out`).
    fn read_state(&self, var: usize, neurons: &[u32], out: &mut Vec<f64>);

    /// Fixed-point scale of the spike-delivery buffers: weights are accumulated exactly as integers in
    /// units of `2^-exponent` (see `cpu::DeliveryScale`).
    fn delivery_scale_exponent(&self) -> i32;

    /// The plastic synapses with their current weights (after the last advanced step; a GPU copies them back);
    /// `None` when the run has none.
    fn plastic_synapses(&mut self) -> Result<Option<&crate::plasticity::PlasticSynapses>, SimError> {
        Ok(None)
    }

    /// Starts measuring this backend's own phases of a step (`crate::profile`); a backend that cannot split
    /// its step (work queued asynchronously on a device) ignores it.
    fn start_profiling(&mut self) {}

    /// Writes the phases measured since [`Backend::start_profiling`] into `t` and returns the seconds of them
    /// spent inside `drain_spikes` (exchange, remote delivery); `None` when this backend does not split its
    /// step.
    fn profile_into(&self, _t: &mut crate::profile::PhaseTimes) -> Option<f64> {
        None
    }
}

/// Trials that run at the same time on one GPU: two, so that one trial's host work (building, drains, outputs)
/// overlaps the other's kernels; more would only queue on the same device and add per-trial device memory (the
/// network's arrays are shared between live trials, `launch::NetworkBufs`).
pub const GPU_TRIALS_AT_ONCE: usize = 2;

/// How many of `threads` parallel trials to run at once on backend `kind`: at most [`GPU_TRIALS_AT_ONCE`] when the
/// trials run on a GPU (`cuda`, or `auto` with a CUDA device present), else `threads`.
pub fn trials_at_once(kind: BackendKind, threads: usize) -> usize {
    let on_gpu = match kind {
        BackendKind::Cuda => true,
        BackendKind::Auto => !crate::cuda::cuda_status().devices.is_empty(),
        BackendKind::Cpu | BackendKind::CudaHost => false,
    };
    if on_gpu { threads.clamp(1, GPU_TRIALS_AT_ONCE) } else { threads }
}

/// Creates the backend of kind `kind` for a setup. [`BackendKind::Auto`] falls back to the CPU (saying so on
/// stderr) only when CUDA is unavailable; any other CUDA error is returned.
pub fn make_backend(kind: BackendKind, setup: &SimSetup) -> Result<Box<dyn Backend>, SimError> {
    Ok(match kind {
        BackendKind::Cpu => Box::new(CpuBackend::new(setup)?),
        BackendKind::CudaHost => Box::new(HostKernelBackend::new(setup)?),
        BackendKind::Cuda => Box::new(CudaBackend::new(setup)?),
        BackendKind::Auto => match CudaBackend::new(setup) {
            Ok(b) => Box::new(b),
            Err(SimError::BackendUnavailable { reason, .. }) => {
                eprintln!("note: CUDA backend unavailable ({reason}); running on the CPU");
                Box::new(CpuBackend::new(setup)?)
            }
            Err(e) => return Err(e),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GPU trials run at most two at a time, host trials as many as asked; `auto` without a CUDA device runs on
    /// the CPU and keeps every thread.
    #[test]
    fn trials_at_once_caps_gpu_trials_only() {
        for threads in [1, 2, 3, 16] {
            assert_eq!(trials_at_once(BackendKind::Cpu, threads), threads);
            assert_eq!(trials_at_once(BackendKind::CudaHost, threads), threads);
            assert_eq!(trials_at_once(BackendKind::Cuda, threads), threads.min(2));
        }
        assert_eq!(trials_at_once(BackendKind::Cuda, 0), 1);
        if crate::cuda::cuda_status().devices.is_empty() {
            assert_eq!(trials_at_once(BackendKind::Auto, 16), 16);
        } else {
            assert_eq!(trials_at_once(BackendKind::Auto, 16), 2);
        }
    }
}
