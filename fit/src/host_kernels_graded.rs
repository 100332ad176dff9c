//! The graded conductance model's loss and gradient with every per-step array operation done by the CUDA C
//! kernels of `kernels/cuda/fit_graded.cu`, compiled for the host (`neurotwin_kernels::host`): the same
//! forward pass and checkpointed backward pass as [`GradedModel::loss_and_grad`], launch for launch what a GPU
//! would run, with the [`Objective`]'s `observe`/`inject` (and copies of checkpoints and of the initial
//! state) left on the host. The result is bit-identical to the CPU code (tested in
//! `fit/tests/integration/host_kernels_graded.rs`), which proves the kernels before a device path exists.
//!
//! Per forward step: `graded_fit_pulse_input`, `graded_fit_activation`, `graded_fit_step`, `graded_fit_clamp`.
//! Per adjoint step: `graded_fit_pulse_input`, `graded_fit_activation`, `graded_fit_adjoint_terms`,
//! `graded_fit_adjoint_lambda`. Once at the end (when `V^0 = E_L`): `graded_fit_initial_grad`.

use neurotwin_kernels::host::{
    GradedFitAdjoint, GradedFitClampMap, GradedFitGradAcc, GradedFitGraph, GradedFitParams, GradedFitPulses,
    graded_fit_activation, graded_fit_adjoint_lambda, graded_fit_adjoint_terms, graded_fit_clamp,
    graded_fit_initial_grad, graded_fit_pulse_input, graded_fit_step, graded_fit_step_broken_for_test,
};

use crate::graded::{GradedGrads, GradedModel, GradedValues};
use crate::network::FitNetwork;
use crate::rate::{Input, Objective};

/// The graded model of one network, run by the host build of the kernels.
pub struct HostKernelGraded<'a> {
    net: &'a FitNetwork,
    /// `−h/C`, the very number [`GradedModel`] uses.
    minus_h_over_c: f64,
    excitatory: Vec<u8>,
    row_ptr: Vec<u64>,
    ch_ptr: Vec<u64>,
    ch_conn: Vec<u32>,
    out_ptr: Vec<u64>,
    out_slot: Vec<u32>,
    gap_ptr: Vec<u64>,
    broken_step: bool,
}

/// What one forward step needs besides the states.
struct Forward<'g> {
    g: GradedFitGraph<'g>,
    p: GradedFitParams<'g>,
    pulses: GradedFitPulses,
    clamp: Option<(GradedFitClampMap, &'g [f64])>,
    broken_step: bool,
}

/// Per-step scratch: the input `u^t`, the activations of `V^t` and the channel conductances.
struct Scratch {
    u: Vec<f64>,
    s: Vec<f64>,
    gch: Vec<f64>,
}

impl Forward<'_> {
    fn scratch(&self) -> Scratch {
        let n = self.g.n_neurons();
        Scratch { u: vec![0.0; n], s: vec![0.0; n], gch: vec![0.0; n * self.g.n_channels()] }
    }

    /// Teacher forcing of `V^t` (nothing without a clamp).
    fn clamp(&self, t: usize, v: &mut [f64]) {
        if let Some((map, values)) = &self.clamp {
            let w = map.width();
            graded_fit_clamp(map, &values[t * w..(t + 1) * w], v);
        }
    }

    /// `V^{t+1}` (clamped) from `V^t`.
    fn step(&self, t: usize, v: &[f64], sc: &mut Scratch, v_next: &mut [f64]) {
        graded_fit_pulse_input(&self.pulses, t as u64, &mut sc.u);
        graded_fit_activation(v, self.p.theta, self.p.slope, &mut sc.s);
        let step = if self.broken_step { graded_fit_step_broken_for_test } else { graded_fit_step };
        step(&self.g, &self.p, &sc.u, v, &sc.s, &mut sc.gch, v_next);
        self.clamp(t + 1, v_next);
    }

    fn initial(&self, input: &Input) -> Vec<f64> {
        let mut v = if input.v0.is_empty() { self.p.e_l.to_vec() } else { input.v0.clone() };
        self.clamp(0, &mut v);
        v
    }
}

impl<'a> HostKernelGraded<'a> {
    /// The same network, step and capacitance as `m` (its channel index and `−h/C` included).
    pub fn from_model(m: &GradedModel<'a>) -> Self {
        let net = m.net;
        let u64s = |x: &[usize]| x.iter().map(|&p| p as u64).collect();
        Self {
            net,
            minus_h_over_c: m.minus_h_over_c,
            excitatory: m.excitatory.iter().map(|&x| u8::from(x)).collect(),
            row_ptr: u64s(&net.row_ptr),
            ch_ptr: u64s(&m.ch_ptr),
            ch_conn: m.ch_conn.clone(),
            out_ptr: u64s(&net.out_ptr),
            out_slot: m.out_slot.clone(),
            gap_ptr: u64s(&net.gap_ptr),
            broken_step: false,
        }
    }

    /// Runs the forward step built with `NEUROTWIN_BREAK_FOR_TEST` (one reordered sum). Exists only so that
    /// tests can prove the bit-for-bit comparison detects such a change.
    #[doc(hidden)]
    pub fn with_broken_step_for_test(mut self) -> Self {
        self.broken_step = true;
        self
    }

    fn forward<'g>(&'g self, p: &'g GradedValues, input: &'g Input) -> Forward<'g> {
        let net = self.net;
        let g = GradedFitGraph::new(
            net.n,
            &self.excitatory,
            &self.row_ptr,
            &net.pre,
            &net.receptor,
            &self.ch_ptr,
            &self.ch_conn,
            &self.out_ptr,
            &net.out_conn,
            &self.out_slot,
            &self.gap_ptr,
            &net.gap_nbr,
        );
        let params = GradedFitParams {
            minus_h_over_c: self.minus_h_over_c,
            w: &p.w,
            e: &p.e,
            g_l: &p.g_l,
            e_l: &p.e_l,
            theta: &p.theta,
            slope: &p.slope,
            bias: &p.bias,
            gain: &p.gain,
            e_exc: &p.e_exc,
            e_inh: &p.e_inh,
        };
        let pulses: Vec<_> =
            input.pulses.iter().map(|q| (q.neuron, q.start as u64, q.stop as u64, q.amplitude)).collect();
        let clamp = input.clamp.as_ref().map(|c| (GradedFitClampMap::new(net.n, &c.neurons), &c.values[..]));
        Forward { g, p: params, pulses: GradedFitPulses::new(net.n, &pulses), clamp, broken_step: self.broken_step }
    }

    /// The loss only (one forward pass), as [`GradedModel::loss`].
    pub fn loss(&self, p: &GradedValues, input: &Input, obj: &mut dyn Objective) -> f64 {
        let n = self.net.n;
        let f = self.forward(p, input);
        let mut sc = f.scratch();
        let mut v = f.initial(input);
        let mut next = vec![0.0; n];
        obj.observe(0, &v);
        for t in 0..input.steps {
            f.step(t, &v, &mut sc, &mut next);
            std::mem::swap(&mut v, &mut next);
            obj.observe(t + 1, &v);
        }
        obj.finish()
    }

    /// Loss and gradient by checkpointed BPTT, as [`GradedModel::loss_and_grad`] (bit for bit).
    pub fn loss_and_grad(
        &self,
        p: &GradedValues,
        input: &Input,
        obj: &mut dyn Objective,
        checkpoint_every: usize,
    ) -> (f64, GradedGrads) {
        let n = self.net.n;
        let k = checkpoint_every.max(1);
        let steps = input.steps;
        let f = self.forward(p, input);
        let mut sc = f.scratch();

        // Forward: observe every state, keep V^0, V^k, V^2k, ….
        let mut checkpoints: Vec<Vec<f64>> = Vec::with_capacity(steps / k + 1);
        let mut v = f.initial(input);
        let mut next = vec![0.0; n];
        obj.observe(0, &v);
        for t in 0..steps {
            if t % k == 0 {
                checkpoints.push(v.clone());
            }
            f.step(t, &v, &mut sc, &mut next);
            std::mem::swap(&mut v, &mut next);
            obj.observe(t + 1, &v);
        }
        let loss = obj.finish();

        let mut acc = GradedFitGradAcc::zeros(&f.g);
        let mut adj = GradedFitAdjoint::zeros(&f.g);
        obj.inject(steps, &v, &mut adj.lambda);

        let mut seg_v: Vec<Vec<f64>> = (0..=k).map(|_| vec![0.0; n]).collect();
        let clamp_map = f.clamp.as_ref().map(|(m, _)| m);
        for (ci, cp) in checkpoints.iter().enumerate().rev() {
            let start = ci * k;
            let end = (start + k).min(steps);
            seg_v[0].copy_from_slice(cp);
            for t in start..end {
                let r = t - start;
                let (head, tail) = seg_v.split_at_mut(r + 1);
                f.step(t, &head[r], &mut sc, &mut tail[0]);
            }
            for t in (start..end).rev() {
                let r = t - start;
                let vt = &seg_v[r];
                graded_fit_pulse_input(&f.pulses, t as u64, &mut sc.u);
                graded_fit_activation(vt, f.p.theta, f.p.slope, &mut sc.s);
                graded_fit_adjoint_terms(&f.g, &f.p, clamp_map, &sc.u, vt, &sc.s, &mut adj, &mut acc);
                graded_fit_adjoint_lambda(&f.g, &f.p, vt, &sc.s, &mut adj, &mut acc);
                obj.inject(t, vt, &mut adj.lambda_prev);
                std::mem::swap(&mut adj.lambda, &mut adj.lambda_prev);
            }
        }
        // V^0 = E_L when no initial state is given (clamped neurons start from data).
        if input.v0.is_empty() {
            graded_fit_initial_grad(clamp_map, &mut adj.lambda, &mut acc.e_l);
        }
        let GradedFitGradAcc { g_l, e_l, theta, slope, bias, gain, e_exc, e_inh, w, e } = acc;
        (loss, GradedGrads { g_l, e_l, theta, slope, bias, gain, e_exc, e_inh, w, e })
    }
}
