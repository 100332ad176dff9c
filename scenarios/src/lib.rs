//! Scenario files for neurotwin: a declarative TOML description of network, neuron model, stimuli,
//! drug-like perturbations, recordings, trials and sweeps; parsing with located errors, preparation of
//! run-ready setups, and a runner that executes trials and sweep points in parallel and writes outputs.

pub mod atlas;
pub mod build;
pub mod calcium_compare;
pub mod error;
pub mod fitting;
pub mod guards;
pub mod inputs;
pub mod load;
pub mod neuroml;
pub mod plot;
pub mod runner;
pub mod sonata;
pub mod source;
pub mod spec;
pub mod targets;

pub use build::{PreparedRun, prepare};
pub use error::ScenarioError;
pub use runner::{BackendKind, RunRequest, RunResult, RunSummary, run_scenario};
pub use spec::ScenarioSpec;

/// The demo scenario built into the binaries (`neurotwin demo`, `neurotwin.Scenario.demo()`): gentle touch on the
/// bundled C. elegans connectome.
pub const DEMO_SCENARIO: &str = include_str!("../../scenarios/celegans_touch.toml");
