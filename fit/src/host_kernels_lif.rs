//! The LIF model's loss and surrogate gradient with every per-step array operation done by the CUDA C kernels
//! of `kernels/cuda/fit_lif.cu`, compiled for the host (`neurotwin_kernels::host`): the same forward pass and
//! checkpointed BPTT as [`LifModel::loss_and_grad`], launch for launch what a GPU would run, with the
//! [`Objective`]'s `observe`/`inject` (and copies of checkpoints) left on the host. The result is bit-identical
//! to the CPU code (tested in `fit/tests/integration/host_kernels_lif.rs`).
//!
//! Once: `lif_alpha` (and `β_s = detmath::exp(−dt/τ_syn)` on the host, as [`LifModel`] computes it). Per
//! forward step: `lif_pulse_input`, `lif_spike`, `lif_step`; after the last one `lif_spike` of the final state.
//! Start of the backward pass: `lif_spike` of the final state, `lif_adjoint_final`. Per backward step:
//! `lif_pulse_input`, `lif_adjoint_mu`, the objective's `inject` on the host, `lif_adjoint_lambda`,
//! `lif_grad_edges`. At the end: `lif_tau_grad`.

use neurotwin_kernels::host::{
    LifAdjoint, LifGradAcc, LifGraph, LifParams, LifPulses, LifSpikeFn, LifStepIn, lif_adjoint_final,
    lif_adjoint_lambda, lif_adjoint_mu, lif_alpha, lif_grad_edges, lif_pulse_input, lif_spike, lif_step,
    lif_step_broken_for_test, lif_tau_grad,
};

use crate::lif::{LifModel, SpikeFn};
use crate::network::FitNetwork;
use crate::rate::{Input, Objective, RateGrads, RateValues};

/// The LIF model of one network, run by the host build of the kernels.
pub struct HostKernelLif<'a> {
    net: &'a FitNetwork,
    dt: f64,
    tau_syn: f64,
    kappa: f64,
    spike_fn: SpikeFn,
    row_ptr: Vec<u64>,
    out_ptr: Vec<u64>,
    /// Postsynaptic neuron of `net.out_conn[m]`.
    out_post: Vec<u32>,
    gap_ptr: Vec<u64>,
    broken_step: bool,
}

/// What one forward step needs besides the states.
struct Forward<'g> {
    g: LifGraph<'g>,
    p: LifParams<'g>,
    pulses: LifPulses,
    broken_step: bool,
}

/// `(V, I)` of every neuron at one step.
type StatePair = (Vec<f64>, Vec<f64>);

impl Forward<'_> {
    /// From `(V^t, I^t)`: `s` = `S^t`, the step's `drive`, `(V^{t+1}, I^{t+1})`; `u` receives `u^t`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        t: usize,
        v: &[f64],
        i_syn: &[f64],
        u: &mut [f64],
        s: &mut [f64],
        drive: &mut [f64],
        v_next: &mut [f64],
        i_next: &mut [f64],
    ) {
        lif_pulse_input(&self.pulses, t as u64, u);
        lif_spike(self.p.spike_fn, self.p.kappa, v, self.p.theta, s);
        let step = if self.broken_step { lif_step_broken_for_test } else { lif_step };
        step(&self.g, &self.p, LifStepIn { u, v, i_syn, s }, drive, v_next, i_next);
    }
}

impl<'a> HostKernelLif<'a> {
    pub fn new(net: &'a FitNetwork, dt: f64, tau_syn: f64, kappa: f64, spike_fn: SpikeFn) -> Self {
        let post = net.post_of_connections();
        let out_post = net.out_conn.iter().map(|&c| post[c as usize]).collect();
        let u64s = |x: &[usize]| x.iter().map(|&p| p as u64).collect();
        Self {
            net,
            dt,
            tau_syn,
            kappa,
            spike_fn,
            row_ptr: u64s(&net.row_ptr),
            out_ptr: u64s(&net.out_ptr),
            out_post,
            gap_ptr: u64s(&net.gap_ptr),
            broken_step: false,
        }
    }

    /// The same network, step, synaptic time constant, surrogate steepness and spike function as `m`.
    pub fn from_model(m: &LifModel<'a>) -> Self {
        Self::new(m.net, m.dt, m.tau_syn, m.kappa, m.spike_fn)
    }

    /// Runs the forward step built with `NEUROTWIN_BREAK_FOR_TEST` (one reordered sum). Exists only so that
    /// tests can prove the bit-for-bit comparison detects such a change.
    #[doc(hidden)]
    pub fn with_broken_step_for_test(mut self) -> Self {
        self.broken_step = true;
        self
    }

    fn forward<'g>(&'g self, p: &'g RateValues, input: &Input, alpha: &'g [f64]) -> Forward<'g> {
        let net = self.net;
        let g = LifGraph::new(
            net.n,
            &self.row_ptr,
            &net.pre,
            &self.out_ptr,
            &net.out_conn,
            &self.out_post,
            &self.gap_ptr,
            &net.gap_nbr,
        );
        let spike_fn = match self.spike_fn {
            SpikeFn::Heaviside => LifSpikeFn::Heaviside,
            SpikeFn::FastSigmoid => LifSpikeFn::FastSigmoid,
        };
        let params = LifParams {
            spike_fn,
            kappa: self.kappa,
            // As LifModel::beta_s.
            beta: neurotwin_models::detmath::exp(-self.dt / self.tau_syn),
            w: &p.w,
            e: &p.e,
            bias: &p.bias,
            gain: &p.gain,
            theta: &p.theta,
            alpha,
        };
        let pulses: Vec<_> =
            input.pulses.iter().map(|q| (q.neuron, q.start as u64, q.stop as u64, q.amplitude)).collect();
        Forward { g, p: params, pulses: LifPulses::new(net.n, &pulses), broken_step: self.broken_step }
    }

    fn alpha(&self, p: &RateValues) -> Vec<f64> {
        let mut alpha = vec![0.0; self.net.n];
        lif_alpha(self.dt, &p.tau, &mut alpha);
        alpha
    }

    fn initial(&self, input: &Input) -> Vec<f64> {
        if input.v0.is_empty() { vec![0.0; self.net.n] } else { input.v0.clone() }
    }

    /// Forward pass; observes `S^t` for t = 0 … T; keeps (V, I) every `k` steps when asked; returns `V^T`.
    fn run(
        &self,
        f: &Forward,
        input: &Input,
        obj: &mut dyn Objective,
        mut checkpoints: Option<(usize, &mut Vec<StatePair>)>,
    ) -> Vec<f64> {
        let n = self.net.n;
        let (mut v, mut i_syn) = (self.initial(input), vec![0.0; n]);
        let (mut vn, mut inx) = (vec![0.0; n], vec![0.0; n]);
        let (mut s, mut drive, mut u) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for t in 0..input.steps {
            if let Some((k, cps)) = checkpoints.as_mut()
                && t % *k == 0
            {
                cps.push((v.clone(), i_syn.clone()));
            }
            f.step(t, &v, &i_syn, &mut u, &mut s, &mut drive, &mut vn, &mut inx);
            obj.observe(t, &s);
            std::mem::swap(&mut v, &mut vn);
            std::mem::swap(&mut i_syn, &mut inx);
        }
        lif_spike(f.p.spike_fn, f.p.kappa, &v, f.p.theta, &mut s);
        obj.observe(input.steps, &s);
        v
    }

    /// The loss only (one forward pass), as [`LifModel::loss`].
    pub fn loss(&self, p: &RateValues, input: &Input, obj: &mut dyn Objective) -> f64 {
        let alpha = self.alpha(p);
        let f = self.forward(p, input, &alpha);
        self.run(&f, input, obj, None);
        obj.finish()
    }

    /// Loss and surrogate gradient by checkpointed BPTT, as [`LifModel::loss_and_grad`] (bit for bit).
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
        let alpha = self.alpha(p);
        let f = self.forward(p, input, &alpha);
        let mut cps = Vec::new();
        let v_end = self.run(&f, input, obj, Some((k, &mut cps)));
        let loss = obj.finish();

        let mut acc = LifGradAcc::zeros(&f.g);
        let mut adj = LifAdjoint::zeros(n);
        // The final state's explicit term, through S^T = S(V^T − θ).
        lif_spike(f.p.spike_fn, f.p.kappa, &v_end, f.p.theta, &mut adj.s);
        obj.inject(steps, &adj.s, &mut adj.d_s);
        lif_adjoint_final(&f.g, &f.p, &v_end, &mut adj, &mut acc);

        // Segment buffers: states (V, I) of steps s … s + k − 1 and the drives of those steps.
        let mut seg: Vec<StatePair> = (0..k).map(|_| (vec![0.0; n], vec![0.0; n])).collect();
        let mut seg_drive: Vec<Vec<f64>> = (0..k).map(|_| vec![0.0; n]).collect();
        let (mut s, mut u, mut vn, mut inx) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for (ci, (cv, ci_syn)) in cps.iter().enumerate().rev() {
            let start = ci * k;
            let end = (start + k).min(steps);
            seg[0].0.copy_from_slice(cv);
            seg[0].1.copy_from_slice(ci_syn);
            for t in start..end {
                let r = t - start;
                let (head, tail) = seg.split_at_mut(r + 1);
                let (v, i_syn) = (&head[r].0, &head[r].1);
                let (a, b) = match tail.first_mut() {
                    Some((a, b)) => (a, b),
                    None => (&mut vn, &mut inx),
                };
                f.step(t, v, i_syn, &mut u, &mut s, &mut seg_drive[r], a, b);
            }
            for t in (start..end).rev() {
                let r = t - start;
                let v = &seg[r].0;
                lif_pulse_input(&f.pulses, t as u64, &mut u);
                lif_adjoint_mu(&f.g, &f.p, v, &seg_drive[r], &u, &mut adj, &mut acc);
                // dL/dS^t's explicit term, from the loss.
                adj.d_s.fill(0.0);
                obj.inject(t, &adj.s, &mut adj.d_s);
                lif_adjoint_lambda(&f.g, &f.p, v, &mut adj, &mut acc);
                lif_grad_edges(&f.g, v, &adj, &mut acc);
                std::mem::swap(&mut adj.lambda, &mut adj.lambda_prev);
                std::mem::swap(&mut adj.nu, &mut adj.nu_prev);
            }
        }
        let mut tau = vec![0.0; n];
        lif_tau_grad(&acc.alpha, &alpha, &p.tau, &mut tau);
        let LifGradAcc { bias, gain, theta, w, e, .. } = acc;
        (loss, RateGrads { tau, bias, gain, theta, slope: vec![0.0; n], w, e })
    }
}
