//! The network, its state and the three operations: prediction ([`predict`]), inference ([`infer`]) and
//! learning ([`learn`]), written once against [`Backend`].

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::csr::Csr;

/// The nonlinearity `f` applied to a layer before it predicts the layer below.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// f(x) = x (the linear model of the MAP test and of sparse coding).
    #[default]
    Linear,
    /// f(x) = max(x, 0).
    Relu,
}

/// One layer: its size, the precision `pi_l` of its prediction error (for the top layer: of the zero-mean
/// Gaussian prior) and the weight `lambda_l` of an L1 (Laplace) prior on its units (ignored for layer 0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub size: usize,
    pub precision: f64,
    pub l1: f64,
}

/// Layers `0..=L` and weights `W_l` (`size_l × size_{l+1}`, `l < L`).
#[derive(Clone, Debug, PartialEq)]
pub struct PcNetwork {
    pub layers: Vec<Layer>,
    pub activation: Activation,
    pub weights: Vec<Csr>,
}

impl PcNetwork {
    /// A network with the given layers and weight masks (values as given).
    ///
    /// # Panics
    /// If there are fewer than two layers or a weight matrix does not match the layer sizes.
    pub fn new(layers: Vec<Layer>, activation: Activation, weights: Vec<Csr>) -> Self {
        assert!(layers.len() >= 2, "a predictive-coding network needs an input and at least one hidden layer");
        assert_eq!(weights.len(), layers.len() - 1, "one weight matrix between each pair of adjacent layers");
        for (l, w) in weights.iter().enumerate() {
            assert_eq!((w.rows, w.cols), (layers[l].size, layers[l + 1].size), "W_{l} must be size_{l} × size_{l}+1");
        }
        Self { layers, activation, weights }
    }

    /// Index of the top layer.
    pub fn top(&self) -> usize {
        self.layers.len() - 1
    }
}

/// Per-layer arrays for a batch (each `batch × size_l`, sample-major): representations `r`, predictions `mu`,
/// errors `e`, activations `fr = f(r)` and bottom-up drive `bu = W_{l-1}ᵀ e_{l-1}` (unused for layer 0).
#[derive(Clone, Debug, PartialEq)]
pub struct PcState {
    pub batch: usize,
    pub r: Vec<Vec<f64>>,
    pub mu: Vec<Vec<f64>>,
    pub e: Vec<Vec<f64>>,
    pub fr: Vec<Vec<f64>>,
    pub bu: Vec<Vec<f64>>,
}

impl PcState {
    /// All zeros.
    pub fn new(net: &PcNetwork, batch: usize) -> Self {
        let z = || net.layers.iter().map(|l| vec![0.0; l.size * batch]).collect::<Vec<_>>();
        Self { batch, r: z(), mu: z(), e: z(), fr: z(), bu: z() }
    }

    /// Clamps the input layer to `x` (`batch × size_0`) and resets the hidden layers: to 0, or with
    /// `feedforward`, to a bottom-up sweep `r_{l+1} = W_lᵀ r_l` (needed with ReLU, whose f'(0) = 0 would
    /// otherwise keep units at 0).
    pub fn set_input(&mut self, net: &PcNetwork, backend: &dyn Backend, x: &[f64], feedforward: bool) {
        assert_eq!(x.len(), self.r[0].len(), "input must be batch × size_0");
        self.r[0].copy_from_slice(x);
        for l in 1..net.layers.len() {
            if feedforward {
                let (lo, hi) = self.r.split_at_mut(l);
                backend.spmm_t(&net.weights[l - 1], self.batch, &lo[l - 1], &mut hi[0]);
            } else {
                self.r[l].fill(0.0);
            }
        }
    }
}

/// Predictions and errors for the current representations: `fr_l = f(r_l)` (l ≥ 1), `mu_l = W_l fr_{l+1}`
/// (`mu_L = 0`), `e_l = pi_l (r_l − mu_l)`.
pub fn predict(net: &PcNetwork, s: &mut PcState, backend: &dyn Backend) {
    let top = net.top();
    for l in 1..=top {
        backend.activate(net.activation, &s.r[l], &mut s.fr[l]);
    }
    for l in 0..top {
        backend.spmm(&net.weights[l], s.batch, &s.fr[l + 1], &mut s.mu[l]);
    }
    s.mu[top].fill(0.0);
    for l in 0..=top {
        backend.error(net.layers[l].precision, &s.r[l], &s.mu[l], &mut s.e[l]);
    }
}

/// Free energy of the whole batch for the current `r` and `mu` (call [`predict`] first):
/// `Σ_l ½ pi_l |r_l − mu_l|² + Σ_{l≥1} lambda_l |r_l|₁` (sequential sums, the same for every backend).
pub fn energy(net: &PcNetwork, s: &PcState) -> f64 {
    let mut total = 0.0;
    for (l, layer) in net.layers.iter().enumerate() {
        let sq: f64 = s.r[l].iter().zip(&s.mu[l]).map(|(r, m)| (r - m) * (r - m)).sum();
        total += 0.5 * layer.precision * sq;
        if l > 0 && layer.l1 > 0.0 {
            total += layer.l1 * s.r[l].iter().map(|r| r.abs()).sum::<f64>();
        }
    }
    total
}

/// `steps` synchronous inference steps of size `dt` on every non-input layer. Returns the free energy before
/// each step and after the last (`steps + 1` values); leaves `mu`, `e` and `fr` consistent with the final `r`.
pub fn infer(net: &PcNetwork, s: &mut PcState, dt: f64, steps: usize, backend: &dyn Backend) -> Vec<f64> {
    let mut energies = Vec::with_capacity(steps + 1);
    for _ in 0..steps {
        predict(net, s, backend);
        energies.push(energy(net, s));
        for l in 1..=net.top() {
            backend.spmm_t(&net.weights[l - 1], s.batch, &s.e[l - 1], &mut s.bu[l]);
            backend.infer_update(net.activation, dt, net.layers[l].l1, &s.e[l], &s.bu[l], &mut s.r[l]);
        }
    }
    predict(net, s, backend);
    energies.push(energy(net, s));
    energies
}

/// One learning step from the current errors and activations (call after [`infer`]):
/// `W_l += (eta / batch) Σ_b e_l[b] f(r_{l+1}[b])ᵀ` on the existing entries; then, with `normalize`, the
/// columns of `W_0` are scaled to that norm (the usual constraint of sparse coding, which keeps the L1 prior
/// from shrinking the code while the basis grows).
pub fn learn(net: &mut PcNetwork, s: &PcState, eta: f64, normalize: Option<f64>, backend: &dyn Backend) {
    let eta_b = eta / s.batch as f64;
    for l in 0..net.top() {
        backend.learn(&mut net.weights[l], s.batch, eta_b, &s.e[l], &s.fr[l + 1]);
    }
    if let Some(target) = normalize {
        backend.col_normalize(&mut net.weights[0], target);
    }
}
