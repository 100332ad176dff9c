//! The neurotwin engine: a backend trait, the CPU backend (rayon), per-step control (drug-like receptor
//! block, silencing), recorders and outputs.

pub mod backend;
pub mod control;
pub mod cpu;
pub mod cuda;
pub mod delivery;
pub mod distributed;
pub mod engine;
pub mod error;
pub mod generated_models;
pub mod host_kernels;
mod kernel_tables;
pub mod launch;
pub mod native_models;
pub mod output;
pub mod plasticity;
pub mod profile;
pub mod readback;
pub mod record;
pub mod setup;
pub mod spike_queue;
pub mod spike_report;
pub mod spike_trains;
pub mod state_report;

pub use backend::{Backend, BackendKind, GPU_TRIALS_AT_ONCE, make_backend, trials_at_once};
pub use control::{PerturbationSchedule, ReceptorBlock, Silencing, StepControl};
pub use cpu::CpuBackend;
pub use engine::{RunOptions, RunSink, run, run_streaming};
pub use error::SimError;
pub use plasticity::{DopamineRule, PlasticProjection, PlasticRule, PlasticSynapses, Plasticity};
pub use profile::PhaseTimes;
pub use record::{RateGroup, RecordSpec, SimRecording, SpikeSelection, StateProbe, WeightRecording};
pub use setup::{InitRule, SimSetup, StateInit, Stimulus, StimulusKind};
pub use spike_trains::{SpikeTrainStats, SpikeTrains};
