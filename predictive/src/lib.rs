//! Rate-based hierarchical predictive coding (Rao & Ballard 1999; Bogacz 2017; Millidge et al. 2021) on dense
//! or connectome-masked sparse weights.
//!
//! Layers `l = 0..=L` hold representation units `r_l` (layer 0 is the input, clamped to the data). Layer `l < L`
//! is predicted from the layer above, `mu_l = W_l f(r_{l+1})`; the top layer is predicted by a zero-mean prior
//! (`mu_L = 0`). Error units are precision weighted, `e_l = pi_l (r_l - mu_l)`, and the free energy is
//!
//! ```text
//! F = sum_l 1/2 pi_l |r_l - mu_l|^2 + sum_{l>=1} lambda_l |r_l|_1
//! ```
//!
//! Inference is an Euler (for `lambda_l > 0`: proximal, ISTA) descent on F for the non-input layers,
//! `r_l <- r_l + dt (f'(r_l) * W_{l-1}^T e_{l-1} - e_l)`, and learning is the local rule
//! `dW_l = eta <e_l f(r_{l+1})^T>` over a batch, applied to the existing entries of `W_l` only (a fixed mask).
//!
//! Precision: f64 everywhere. Acceptance asks for the closed-form MAP within 1e-4 and a monotone free energy:
//! in f64 both hold with margins of many orders of magnitude, so the tests check the algorithm, not rounding.
//! The CUDA kernels (`neurotwin_kernels::PREDICTIVE`) mirror the CPU backend operation by operation, so the
//! CPU, the host-built kernels and the GPU ([`Cuda`]) agree bit for bit.

pub mod backend;
pub mod csr;
pub mod cuda;
pub mod data;
pub mod guards;
pub mod metrics;
pub mod model;
pub mod output;
pub mod scenario;

pub use backend::{Backend, BackendKind, Cpu, HostKernels, backend_for};
pub use csr::Csr;
pub use cuda::Cuda;
pub use model::{Activation, Layer, PcNetwork, PcState, energy, infer, learn, predict};
pub use scenario::{PcScenario, PcSummary, RunOptions, is_predictive_scenario, load_scenario, run_scenario};

/// Errors of scenario loading, data reading and output writing.
#[derive(Debug, thiserror::Error)]
pub enum PcError {
    /// A scenario file is invalid (message names the file and the key, with line/column when known).
    #[error("{0}")]
    Spec(String),
    /// Reading input data or the connectome failed.
    #[error("{0}")]
    Data(String),
    /// Writing an output failed.
    #[error("{0}")]
    Output(String),
}
