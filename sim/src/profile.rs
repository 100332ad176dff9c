//! Where a run's time goes: wall-clock seconds per phase of the step loop, measured when
//! [`crate::RunOptions::profile`] is set (`neurotwin run --profile`). Off by default: nothing is timed then.
//!
//! Phases, in the order of a step:
//! - `control`: the perturbation schedule (receptor block, wash-in, silencing) for the step;
//! - `update`: the neuron update — ring gather, external inputs, the model's integration (CPU: all blocks, in
//!   parallel); `inputs_cpu` is the part of it spent building external inputs (Poisson and current stimuli,
//!   prescribed spike trains, gap junctions), summed over the worker threads, so it is CPU time, not wall time;
//! - `compaction`: the spike list from the per-block spike masks;
//! - `delivery`: spikes into the delay ring;
//! - `exchange`: spikes exchanged between processes (distributed runs only);
//! - `recording`: draining spikes to the recording, rate bins and state samples;
//! - `other`: the rest of the loop (progress, cancellation checks, backend steps a backend does not split).
//!
//! A backend that cannot split its step (the CUDA backends: their work is asynchronous) reports it whole as
//! `backend_step`.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Seconds per phase of one run (see the module documentation). Phases a backend does not measure are 0.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhaseTimes {
    pub control_s: f64,
    pub update_s: f64,
    /// CPU time (summed over threads) inside `update_s` spent on external inputs.
    pub inputs_cpu_s: f64,
    pub compaction_s: f64,
    pub delivery_s: f64,
    pub exchange_s: f64,
    /// A backend's step as one figure when it does not split it (CUDA backends), else 0.
    pub backend_step_s: f64,
    pub recording_s: f64,
    pub other_s: f64,
    /// The whole step loop.
    pub total_s: f64,
    /// How the backend ran its step, in words (CPU: which update path and whether in parallel); empty if
    /// it does not say.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub strategy: String,
}

impl PhaseTimes {
    /// The phases as (name, seconds) in step order, `inputs_cpu` left out (it is part of `update`).
    pub fn phases(&self) -> [(&'static str, f64); 8] {
        [
            ("control", self.control_s),
            ("update", self.update_s),
            ("compaction", self.compaction_s),
            ("delivery", self.delivery_s),
            ("exchange", self.exchange_s),
            ("backend step", self.backend_step_s),
            ("recording", self.recording_s),
            ("other", self.other_s),
        ]
    }

    /// A table of the phases with their share of the loop, for the terminal.
    pub fn table(&self) -> String {
        let total = self.total_s.max(f64::MIN_POSITIVE);
        let mut s = format!("{:<13} {:>9} {:>7}\n", "phase", "seconds", "share");
        for (name, t) in self.phases() {
            if t > 0.0 || matches!(name, "update" | "delivery" | "recording") {
                s.push_str(&format!("{name:<13} {t:>9.4} {:>6.1}%\n", 100.0 * t / total));
            }
        }
        s.push_str(&format!("{:<13} {:>9.4}\n", "total", self.total_s));
        if self.inputs_cpu_s > 0.0 {
            s.push_str(&format!(
                "(external inputs: {:.4} s of CPU time summed over threads, inside update)\n",
                self.inputs_cpu_s
            ));
        }
        if !self.strategy.is_empty() {
            s.push_str(&self.strategy);
            s.push('\n');
        }
        s
    }
}

/// What a backend measures of its own step (added to by the step, read once at the end).
#[derive(Debug, Default)]
pub struct BackendPhases {
    pub update: Duration,
    pub compaction: Duration,
    pub delivery: Duration,
    pub exchange: Duration,
    /// The part of `delivery` spent delivering other processes' spikes (inside `drain_spikes`).
    pub remote_delivery: Duration,
    /// Nanoseconds of external-input work, added to by the worker threads.
    pub inputs_cpu_ns: AtomicU64,
}

impl BackendPhases {
    /// Writes the measured phases into `t`.
    pub fn fill(&self, t: &mut PhaseTimes) {
        t.update_s = self.update.as_secs_f64();
        t.compaction_s = self.compaction.as_secs_f64();
        t.delivery_s = self.delivery.as_secs_f64();
        t.exchange_s = self.exchange.as_secs_f64();
        t.inputs_cpu_s = self.inputs_cpu_ns.load(Ordering::Relaxed) as f64 * 1e-9;
    }
}

/// Time since `since`, then `since` moved to now: one phase ends and the next begins.
#[inline]
pub fn lap(since: &mut Instant) -> Duration {
    let now = Instant::now();
    let d = now - *since;
    *since = now;
    d
}
