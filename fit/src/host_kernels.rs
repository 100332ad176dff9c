//! The rate model's loss and gradient with every per-step array operation done by the CUDA C kernels of
//! `kernels/cuda/fit_rate.cu`, compiled for the host (`neurotwin_kernels::host`): the same forward pass and
//! checkpointed backward pass as [`RateModel::loss_and_grad`], launch for launch what a GPU would run, with
//! the [`Objective`]'s `observe`/`inject` (and copies of checkpoints) left on the host. The result is
//! bit-identical to the CPU code (tested in `fit/tests/integration/host_kernels.rs`), which proves the kernels before a
//! device path exists.
//!
//! Per forward step: `rate_pulse_input`, `rate_activation`, `rate_step`, `rate_clamp`. Per adjoint step:
//! `rate_pulse_input`, `rate_adjoint_mu`, `rate_adjoint_lambda`, `rate_grad_edges`. Once: `rate_coeffs` and
//! `rate_tau_grad`.

use neurotwin_kernels::host::{
    RateActivation, RateAdjoint, RateAdjointStates, RateClampMap, RateCoeffs, RateGradAcc, RateGraph, RateParams,
    RatePulses, rate_activation, rate_adjoint_lambda, rate_adjoint_mu, rate_clamp, rate_coeffs, rate_grad_edges,
    rate_pulse_input, rate_step, rate_step_broken_for_test, rate_tau_grad,
};

use crate::network::FitNetwork;
use crate::rate::{Activation, Input, Objective, RateGrads, RateModel, RateValues};

/// The rate model of one network, run by the host build of the kernels.
pub struct HostKernelRate<'a> {
    net: &'a FitNetwork,
    dt: f64,
    activation: Activation,
    row_ptr: Vec<u64>,
    out_ptr: Vec<u64>,
    /// Postsynaptic neuron of `net.out_conn[m]`.
    out_post: Vec<u32>,
    gap_ptr: Vec<u64>,
    broken_step: bool,
}

/// What one forward step needs besides the states.
struct Forward<'g> {
    g: RateGraph<'g>,
    p: RateParams<'g>,
    k: RateCoeffs,
    pulses: RatePulses,
    clamp: Option<(RateClampMap, &'g [f64])>,
    broken_step: bool,
}

/// Per-step scratch: the input `u^t` and `f(V^t)`.
struct Scratch {
    u: Vec<f64>,
    fv: Vec<f64>,
}

impl Forward<'_> {
    /// Teacher forcing of `V^t` (nothing without a clamp).
    fn clamp(&self, t: usize, v: &mut [f64]) {
        if let Some((map, values)) = &self.clamp {
            let w = map.width();
            rate_clamp(map, &values[t * w..(t + 1) * w], v);
        }
    }

    /// `V^{t+1}` (clamped) and `P^t` from `V^t`.
    fn step(&self, t: usize, v: &[f64], s: &mut Scratch, drive: &mut [f64], v_next: &mut [f64]) {
        rate_pulse_input(&self.pulses, t as u64, &mut s.u);
        rate_activation(self.p.activation, v, self.p.theta, self.p.slope, &mut s.fv);
        let step = if self.broken_step { rate_step_broken_for_test } else { rate_step };
        step(&self.g, &self.p, &self.k, &s.u, v, &s.fv, drive, v_next);
        self.clamp(t + 1, v_next);
    }

    fn initial(&self, input: &Input) -> Vec<f64> {
        let mut v = if input.v0.is_empty() { vec![0.0; self.g.n_neurons()] } else { input.v0.clone() };
        self.clamp(0, &mut v);
        v
    }
}

impl<'a> HostKernelRate<'a> {
    pub fn new(net: &'a FitNetwork, dt: f64, activation: Activation) -> Self {
        let post = net.post_of_connections();
        let out_post = net.out_conn.iter().map(|&c| post[c as usize]).collect();
        let u64s = |x: &[usize]| x.iter().map(|&p| p as u64).collect();
        Self {
            net,
            dt,
            activation,
            row_ptr: u64s(&net.row_ptr),
            out_ptr: u64s(&net.out_ptr),
            out_post,
            gap_ptr: u64s(&net.gap_ptr),
            broken_step: false,
        }
    }

    /// The same network, step and activation as `m`.
    pub fn from_model(m: &RateModel<'a>) -> Self {
        Self::new(m.net, m.dt, m.activation)
    }

    /// Runs the forward step built with `NEUROTWIN_BREAK_FOR_TEST` (one reordered sum). Exists only so that
    /// tests can prove the bit-for-bit comparison detects such a change.
    #[doc(hidden)]
    pub fn with_broken_step_for_test(mut self) -> Self {
        self.broken_step = true;
        self
    }

    fn forward<'g>(&'g self, p: &'g RateValues, input: &'g Input) -> Forward<'g> {
        let net = self.net;
        let g = RateGraph::new(
            net.n,
            &self.row_ptr,
            &net.pre,
            &self.out_ptr,
            &net.out_conn,
            &self.out_post,
            &self.gap_ptr,
            &net.gap_nbr,
        );
        let activation = match self.activation {
            Activation::Relu => RateActivation::Relu,
            Activation::Sigmoid => RateActivation::Sigmoid,
        };
        let params =
            RateParams { activation, w: &p.w, e: &p.e, bias: &p.bias, gain: &p.gain, theta: &p.theta, slope: &p.slope };
        let k = rate_coeffs(&g, self.dt, &p.tau, &p.e);
        let pulses: Vec<_> =
            input.pulses.iter().map(|q| (q.neuron, q.start as u64, q.stop as u64, q.amplitude)).collect();
        let clamp = input.clamp.as_ref().map(|c| (RateClampMap::new(net.n, &c.neurons), &c.values[..]));
        Forward { g, p: params, k, pulses: RatePulses::new(net.n, &pulses), clamp, broken_step: self.broken_step }
    }

    /// The loss only (one forward pass), as [`RateModel::loss`].
    pub fn loss(&self, p: &RateValues, input: &Input, obj: &mut dyn Objective) -> f64 {
        let n = self.net.n;
        let f = self.forward(p, input);
        let mut s = Scratch { u: vec![0.0; n], fv: vec![0.0; n] };
        let mut drive = vec![0.0; n];
        let mut v = f.initial(input);
        let mut next = vec![0.0; n];
        obj.observe(0, &v);
        for t in 0..input.steps {
            f.step(t, &v, &mut s, &mut drive, &mut next);
            std::mem::swap(&mut v, &mut next);
            obj.observe(t + 1, &v);
        }
        obj.finish()
    }

    /// Loss and gradient by checkpointed BPTT, as [`RateModel::loss_and_grad`] (bit for bit).
    pub fn loss_and_grad(
        &self,
        p: &RateValues,
        input: &Input,
        obj: &mut dyn Objective,
        checkpoint_every: usize,
    ) -> (f64, RateGrads) {
        let n = self.net.n;
        let k = checkpoint_every.max(1);
        let steps = input.steps;
        let f = self.forward(p, input);
        let mut s = Scratch { u: vec![0.0; n], fv: vec![0.0; n] };
        let mut drive = vec![0.0; n];

        // Forward: observe every state, keep V^0, V^k, V^2k, ….
        let mut checkpoints: Vec<Vec<f64>> = Vec::with_capacity(steps / k + 1);
        let mut v = f.initial(input);
        let mut next = vec![0.0; n];
        obj.observe(0, &v);
        for t in 0..steps {
            if t % k == 0 {
                checkpoints.push(v.clone());
            }
            f.step(t, &v, &mut s, &mut drive, &mut next);
            std::mem::swap(&mut v, &mut next);
            obj.observe(t + 1, &v);
        }
        let loss = obj.finish();

        let mut acc = RateGradAcc::zeros(&f.g);
        let mut adj = RateAdjoint::zeros(n);
        obj.inject(steps, &v, &mut adj.lambda);

        // Segment buffers: states V^s … V^e and the explicit inputs P of steps s … e − 1.
        let mut seg_v: Vec<Vec<f64>> = (0..=k).map(|_| vec![0.0; n]).collect();
        let mut seg_drive: Vec<Vec<f64>> = (0..k).map(|_| vec![0.0; n]).collect();
        let clamp_map = f.clamp.as_ref().map(|(m, _)| m);
        for (ci, cp) in checkpoints.iter().enumerate().rev() {
            let start = ci * k;
            let end = (start + k).min(steps);
            seg_v[0].copy_from_slice(cp);
            for t in start..end {
                let r = t - start;
                let (head, tail) = seg_v.split_at_mut(r + 1);
                f.step(t, &head[r], &mut s, &mut seg_drive[r], &mut tail[0]);
            }
            for t in (start..end).rev() {
                let r = t - start;
                rate_pulse_input(&f.pulses, t as u64, &mut s.u);
                let st = RateAdjointStates { v: &seg_v[r], v_next: &seg_v[r + 1], drive: &seg_drive[r], u: &s.u };
                rate_adjoint_mu(&f.g, &f.p, &f.k, clamp_map, st, &mut adj, &mut acc);
                rate_adjoint_lambda(&f.g, &f.p, &f.k, &seg_v[r], &mut adj, &mut acc);
                rate_grad_edges(&f.g, st, &adj, &mut acc);
                obj.inject(t, &seg_v[r], &mut adj.lambda_prev);
                std::mem::swap(&mut adj.lambda, &mut adj.lambda_prev);
            }
        }
        let mut tau = vec![0.0; n];
        rate_tau_grad(&acc.alpha, &f.k.alpha, &p.tau, &mut tau);
        let RateGradAcc { bias, gain, theta, slope, w, e, .. } = acc;
        (loss, RateGrads { tau, bias, gain, theta, slope, w, e })
    }
}
