//! Fitting to a signal-propagation atlas (Randi, Sharma, Dvali & Leifer 2023, Nature 623:406): each
//! example is one stimulated neuron `j` with the measured mean ΔF/F of its responders `i`.
//!
//! Protocol: the rate model starts at rest (V = 0), the stimulated neuron receives a step input of
//! `amplitude` during `stim`, and the response of neuron `i` is the mean of `V_i` over the `window`
//! minus the same mean in a control run without stimulation (so slow drifts of the unstimulated network
//! cancel). Read-out: the identity — `V` is measured in units of ΔF/F (a stated linear read-out; the
//! model's scale is free through its strengths and biases).
//!
//! Loss: the mean squared error over the batch's measured pairs, `(1/N) Σ (r_ij − y_ij)²`. Its gradient
//! flows through every stimulated run and, with the opposite sign, through the control run.

use rayon::prelude::*;

use crate::error::FitError;
use crate::host_kernels::HostKernelRate;
use crate::params::ParamSet;
use crate::rate::{Input, Objective, Pulse, RateGrads, RateModel, RateValues};

/// Timing of one in-silico stimulation (steps of the model's `dt`).
#[derive(Clone, Debug, PartialEq)]
pub struct AtlasProtocol {
    pub steps: usize,
    /// Stimulation `[start, stop)`.
    pub stim: (usize, usize),
    /// Response window `[start, stop)` over which `V` is averaged (`stop ≤ steps + 1`).
    pub window: (usize, usize),
    /// Input during the stimulation (model units; multiplied by the neuron's `gain`).
    pub amplitude: f64,
}

/// One stimulated neuron and its measured responders.
#[derive(Clone, Debug, PartialEq)]
pub struct StimExample {
    pub stimulated: u32,
    pub responders: Vec<u32>,
    /// Measured ΔF/F of each responder.
    pub measured: Vec<f64>,
}

pub use neurotwin_kernels::backend_kind::BackendKind;

/// The backend a fit runs for `kind`: [`BackendKind::Cpu`] (`RateModel`, rayon) or [`BackendKind::CudaHost`]
/// (the CUDA kernels of `kernels/cuda/fit_rate.cu` compiled for the host, [`HostKernelRate`]: bit-identical to
/// the CPU, for verification). [`BackendKind::Auto`] runs on the CPU; [`BackendKind::Cuda`] is refused.
pub fn check_fit_backend(kind: BackendKind) -> Result<BackendKind, String> {
    match kind {
        BackendKind::Cpu | BackendKind::Auto => Ok(BackendKind::Cpu),
        BackendKind::CudaHost => Ok(BackendKind::CudaHost),
        BackendKind::Cuda => Err(format!(
            "--backend {kind}: use cpu or cuda-host (fitting on a GPU device is not built yet; its kernels are verified on the host)"
        )),
    }
}

/// The atlas fitting task on one rate model.
pub struct AtlasTask<'a> {
    pub model: RateModel<'a>,
    pub protocol: AtlasProtocol,
    pub checkpoint_every: usize,
    /// Where simulations and gradients run: [`BackendKind::CudaHost`] runs the host kernels, any other kind the
    /// CPU (pass the kind through [`check_fit_backend`] first to refuse [`BackendKind::Cuda`]).
    pub backend: BackendKind,
}

/// Mean of `V` over the window, for chosen neurons.
struct WindowMean {
    window: (usize, usize),
    neurons: Vec<u32>,
    sum: Vec<f64>,
}

impl WindowMean {
    fn len(&self) -> f64 {
        (self.window.1 - self.window.0) as f64
    }
}

/// A stimulated run's share of the loss.
struct StimLoss {
    mean: WindowMean,
    control: Vec<f64>,
    measured: Vec<f64>,
    norm: f64,
    d_response: Vec<f64>,
}

impl Objective for StimLoss {
    fn observe(&mut self, t: usize, v: &[f64]) {
        if t >= self.mean.window.0 && t < self.mean.window.1 {
            for (s, &i) in self.mean.sum.iter_mut().zip(&self.mean.neurons) {
                *s += v[i as usize];
            }
        }
    }
    fn finish(&mut self) -> f64 {
        let w = self.mean.len();
        let mut loss = 0.0;
        self.d_response = vec![0.0; self.measured.len()];
        for k in 0..self.measured.len() {
            let i = self.mean.neurons[k] as usize;
            let r = self.mean.sum[k] / w - self.control[i];
            let d = r - self.measured[k];
            loss += d * d / self.norm;
            self.d_response[k] = 2.0 * d / self.norm;
        }
        loss
    }
    fn inject(&self, t: usize, _v: &[f64], grad: &mut [f64]) {
        if t >= self.mean.window.0 && t < self.mean.window.1 {
            let w = self.mean.len();
            for (k, &i) in self.mean.neurons.iter().enumerate() {
                grad[i as usize] += self.d_response[k] / w;
            }
        }
    }
}

/// The control run: records window means of every neuron; in the backward pass injects a fixed
/// gradient on them (its loss share is accounted for by the stimulated runs).
struct ControlRun {
    mean: WindowMean,
    coef: Vec<f64>,
}

impl Objective for ControlRun {
    fn observe(&mut self, t: usize, v: &[f64]) {
        if t >= self.mean.window.0 && t < self.mean.window.1 {
            self.mean.sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        }
    }
    fn finish(&mut self) -> f64 {
        0.0
    }
    fn inject(&self, t: usize, _v: &[f64], grad: &mut [f64]) {
        if t >= self.mean.window.0 && t < self.mean.window.1 {
            let w = self.mean.len();
            grad.iter_mut().zip(&self.coef).for_each(|(g, c)| *g += c / w);
        }
    }
}

impl AtlasTask<'_> {
    fn sim_loss(&self, v: &RateValues, input: &Input, obj: &mut dyn Objective) -> f64 {
        match self.backend {
            BackendKind::CudaHost => HostKernelRate::from_model(&self.model).loss(v, input, obj),
            _ => self.model.loss(v, input, obj),
        }
    }

    fn sim_grad(&self, v: &RateValues, input: &Input, obj: &mut dyn Objective) -> (f64, RateGrads) {
        match self.backend {
            BackendKind::CudaHost => {
                HostKernelRate::from_model(&self.model).loss_and_grad(v, input, obj, self.checkpoint_every)
            }
            _ => self.model.loss_and_grad(v, input, obj, self.checkpoint_every),
        }
    }

    fn input(&self, stimulated: Option<u32>) -> Input {
        let p = &self.protocol;
        Input {
            steps: p.steps,
            v0: Vec::new(),
            pulses: stimulated
                .map(|j| vec![Pulse { neuron: j, start: p.stim.0, stop: p.stim.1, amplitude: p.amplitude }])
                .unwrap_or_default(),
            clamp: None,
        }
    }

    fn window_mean(&self, neurons: Vec<u32>) -> WindowMean {
        let k = neurons.len();
        WindowMean { window: self.protocol.window, neurons, sum: vec![0.0; k] }
    }

    /// Window mean of every neuron in the control run.
    pub fn control(&self, v: &RateValues) -> Vec<f64> {
        let n = self.model.net.n;
        let mut obj = ControlRun { mean: self.window_mean((0..n as u32).collect()), coef: vec![0.0; n] };
        self.sim_loss(v, &self.input(None), &mut obj);
        let w = obj.mean.len();
        obj.mean.sum.iter().map(|s| s / w).collect()
    }

    /// Predicted response of every neuron to stimulating `j` (given the control means).
    pub fn predict(&self, v: &RateValues, j: u32, control: &[f64]) -> Vec<f64> {
        let n = self.model.net.n;
        let mut obj = ControlRun { mean: self.window_mean((0..n as u32).collect()), coef: vec![0.0; n] };
        self.sim_loss(v, &self.input(Some(j)), &mut obj);
        let w = obj.mean.len();
        obj.mean.sum.iter().zip(control).map(|(s, c)| s / w - c).collect()
    }

    /// Validates the protocol and the examples against the network.
    pub fn check(&self, examples: &[StimExample]) -> Result<(), FitError> {
        let p = &self.protocol;
        let n = self.model.net.n;
        if p.window.0 >= p.window.1 || p.window.1 > p.steps + 1 || p.stim.0 > p.stim.1 || p.stim.1 > p.steps {
            return Err(FitError::Data(format!(
                "protocol: stimulation steps {:?} and response window {:?} must lie within the {} steps, window non-empty",
                p.stim, p.window, p.steps
            )));
        }
        for e in examples {
            if e.stimulated as usize >= n || e.responders.iter().any(|&i| i as usize >= n) {
                return Err(FitError::Data(format!(
                    "example of neuron #{} names neurons outside the network",
                    e.stimulated
                )));
            }
            if let Some(k) = e.measured.iter().position(|y| !y.is_finite()) {
                return Err(FitError::Data(format!(
                    "measured response of {} to {} is not finite ({})",
                    self.model.net.names[e.responders[k] as usize],
                    self.model.net.names[e.stimulated as usize],
                    e.measured[k]
                )));
            }
        }
        Ok(())
    }

    /// Mean squared error over the pairs of `examples` (forward passes only).
    pub fn loss(&self, p: &ParamSet, examples: &[&StimExample]) -> f64 {
        let v = RateValues::from_params(self.model.net, p);
        let control = self.control(&v);
        let norm: usize = examples.iter().map(|e| e.measured.len()).sum();
        let losses: Vec<f64> = examples
            .par_iter()
            .map(|e| {
                let mut obj = self.stim_loss(e, &control, norm as f64);
                self.sim_loss(&v, &self.input(Some(e.stimulated)), &mut obj)
            })
            .collect();
        losses.iter().sum()
    }

    fn stim_loss(&self, e: &StimExample, control: &[f64], norm: f64) -> StimLoss {
        StimLoss {
            mean: self.window_mean(e.responders.clone()),
            control: control.to_vec(),
            measured: e.measured.clone(),
            norm: norm.max(1.0),
            d_response: Vec::new(),
        }
    }

    /// Loss over the pairs of `examples` and its gradient with respect to `p.raw`.
    pub fn loss_and_grad(&self, p: &ParamSet, examples: &[&StimExample]) -> (f64, Vec<f64>) {
        let net = self.model.net;
        let v = RateValues::from_params(net, p);
        let control = self.control(&v);
        let norm: usize = examples.iter().map(|e| e.measured.len()).sum();
        let per: Vec<(f64, RateGrads, Vec<f64>)> = examples
            .par_iter()
            .map(|e| {
                let mut obj = self.stim_loss(e, &control, norm as f64);
                let (loss, g) = self.sim_grad(&v, &self.input(Some(e.stimulated)), &mut obj);
                (loss, g, obj.d_response)
            })
            .collect();
        let mut total = RateGrads::zeros(net.n, net.n_connections(), net.n_gap_entries());
        let mut loss = 0.0;
        // d loss / d control mean: minus every stimulated run's d loss / d response.
        let mut coef = vec![0.0; net.n];
        for (e, (l, g, d)) in examples.iter().zip(&per) {
            loss += l;
            total.add(g);
            for (&i, dr) in e.responders.iter().zip(d) {
                coef[i as usize] -= dr;
            }
        }
        let mut obj = ControlRun { mean: self.window_mean((0..net.n as u32).collect()), coef };
        let (_, g_control) = self.sim_grad(&v, &self.input(None), &mut obj);
        total.add(&g_control);
        let mut raw = vec![0.0; p.raw.len()];
        total.reduce(net, &v, p, &mut raw);
        (loss, raw)
    }
}

#[cfg(test)]
mod backend_tests {
    use super::*;

    #[test]
    fn fit_backend_check_runs_auto_on_the_cpu_and_refuses_cuda() {
        assert_eq!(check_fit_backend(BackendKind::Cpu), Ok(BackendKind::Cpu));
        assert_eq!(check_fit_backend(BackendKind::Auto), Ok(BackendKind::Cpu));
        assert_eq!(check_fit_backend(BackendKind::CudaHost), Ok(BackendKind::CudaHost));
        let e = check_fit_backend(BackendKind::Cuda).unwrap_err();
        assert!(e.starts_with("--backend cuda: use cpu or cuda-host") && !e.contains('\n'), "{e}");
    }
}
