//! A spiking LIF network trained with surrogate gradients.
//!
//! Dynamics (dimensionless potentials, rest 0; explicit Euler at step `dt`, `α = dt/τ_m`,
//! `β_s = e^{−dt/τ_syn}`):
//! `S^t = H(V^t − θ)`,
//! `I^{t+1} = β_s I^t + Σ_j w_ij S_j^t`,
//! `V^{t+1} = V^t + α (−V^t + b + I^t + Σ_j e_ij (V_j^t − V_i^t) + γ u^t) − θ S^t` (reset by subtraction).
//!
//! The Heaviside `H` has no useful derivative; the backward pass uses the SuperSpike surrogate
//! (Zenke & Ganguli 2018, Neural Comput 30:1514; the "fast sigmoid" of Neftci, Mostafa & Zenke 2019,
//! IEEE Signal Process Mag 36:51): `ψ(x) = ½κ / (1 + κ|x|)²`, the exact derivative of the fast sigmoid
//! `S̃(x) = ½ (1 + κx / (1 + κ|x|))`. With [`SpikeFn::FastSigmoid`] the forward pass uses `S̃` itself,
//! so the same backward code computes an *exact* gradient, which is what the finite-difference tests
//! check; [`SpikeFn::Heaviside`] is the spiking network used for fitting. The reset is differentiated
//! (not detached).
//!
//! The loss sees the spike output `S^t` (the [`Objective`] is handed `S^t`, not `V^t`). Parameters come
//! in the same blocks as the rate model ([`RateValues`]; `theta` is the threshold, `slope` is unused).

use crate::exec::{PAR_MIN_NEURONS, fill, for_rows};
use crate::network::FitNetwork;
use crate::rate::{Input, Objective, RateGrads, RateValues};

/// Spike nonlinearity of the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpikeFn {
    /// `H(x)`, 1 for `x > 0`: a spiking network.
    Heaviside,
    /// `½ (1 + κx / (1 + κ|x|))`: the relaxed network whose exact derivative is the surrogate.
    FastSigmoid,
}

/// `(V, I)` of every neuron at one step.
type StatePair = (Vec<f64>, Vec<f64>);

/// The LIF network.
pub struct LifModel<'a> {
    pub net: &'a FitNetwork,
    /// Step (ms).
    pub dt: f64,
    /// Synaptic time constant (ms), not fitted.
    pub tau_syn: f64,
    /// Surrogate steepness κ (per unit of potential); Zenke & Ganguli use 10 for a threshold of 1.
    pub kappa: f64,
    pub spike_fn: SpikeFn,
    out_post: Vec<u32>,
    par: bool,
}

/// Surrogate derivative `ψ(x) = ½κ / (1 + κ|x|)²`.
#[inline]
pub fn surrogate(kappa: f64, x: f64) -> f64 {
    let d = 1.0 + kappa * x.abs();
    0.5 * kappa / (d * d)
}

impl<'a> LifModel<'a> {
    pub fn new(net: &'a FitNetwork, dt: f64, tau_syn: f64, kappa: f64, spike_fn: SpikeFn) -> Self {
        let post = net.post_of_connections();
        let out_post = net.out_conn.iter().map(|&c| post[c as usize]).collect();
        Self { net, dt, tau_syn, kappa, spike_fn, out_post, par: net.n >= PAR_MIN_NEURONS }
    }

    pub fn with_parallel(mut self, par: bool) -> Self {
        self.par = par;
        self
    }

    #[inline]
    fn spike(&self, x: f64) -> f64 {
        match self.spike_fn {
            SpikeFn::Heaviside => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            SpikeFn::FastSigmoid => 0.5 * (1.0 + self.kappa * x / (1.0 + self.kappa * x.abs())),
        }
    }

    fn beta_s(&self) -> f64 {
        neurotwin_models::detmath::exp(-self.dt / self.tau_syn)
    }

    /// One step: spikes `s` of `v`, then `drive`, `v_next`, `i_next`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        p: &RateValues,
        alpha: &[f64],
        v: &[f64],
        i_syn: &[f64],
        u: &[f64],
        s: &mut [f64],
        drive: &mut [f64],
        v_next: &mut [f64],
        i_next: &mut [f64],
    ) {
        let net = self.net;
        fill(self.par, s, |j| self.spike(v[j] - p.theta[j]));
        let s: &[f64] = s;
        let beta = self.beta_s();
        fill(self.par, i_next, |i| {
            let mut syn = 0.0;
            for c in net.row_ptr[i]..net.row_ptr[i + 1] {
                syn += p.w[c] * s[net.pre[c] as usize];
            }
            beta * i_syn[i] + syn
        });
        fill(self.par, drive, |i| {
            let mut gap = 0.0;
            for g in net.gap_ptr[i]..net.gap_ptr[i + 1] {
                gap += p.e[g] * (v[net.gap_nbr[g] as usize] - v[i]);
            }
            (((-v[i] + p.bias[i]) + i_syn[i]) + gap) + p.gain[i] * u[i]
        });
        let drive: &[f64] = drive;
        fill(self.par, v_next, |i| (v[i] + alpha[i] * drive[i]) - p.theta[i] * s[i]);
    }

    fn initial(&self, input: &Input) -> Vec<f64> {
        if input.v0.is_empty() { vec![0.0; self.net.n] } else { input.v0.clone() }
    }

    /// Spike outputs `S^0 … S^T` (row t) and the loss-free trajectory, for reports and tests.
    pub fn spikes(&self, p: &RateValues, input: &Input) -> Vec<Vec<f64>> {
        let mut rec = Recorder(Vec::new());
        self.run(p, input, &mut rec, None);
        rec.0
    }

    /// The loss only.
    pub fn loss(&self, p: &RateValues, input: &Input, obj: &mut dyn Objective) -> f64 {
        self.run(p, input, obj, None);
        obj.finish()
    }

    /// Forward pass; observes `S^t` for t = 0 … T; keeps (V, I) every `k` steps when asked.
    fn run(
        &self,
        p: &RateValues,
        input: &Input,
        obj: &mut dyn Objective,
        mut checkpoints: Option<(usize, &mut Vec<StatePair>)>,
    ) -> (Vec<f64>, Vec<f64>) {
        let n = self.net.n;
        let alpha: Vec<f64> = p.tau.iter().map(|&t| self.dt / t).collect();
        let (mut v, mut i_syn) = (self.initial(input), vec![0.0; n]);
        let (mut vn, mut inx) = (vec![0.0; n], vec![0.0; n]);
        let (mut s, mut drive, mut u) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for t in 0..input.steps {
            if let Some((k, cps)) = checkpoints.as_mut()
                && t % *k == 0
            {
                cps.push((v.clone(), i_syn.clone()));
            }
            input.u_at(t, &mut u);
            self.step(p, &alpha, &v, &i_syn, &u, &mut s, &mut drive, &mut vn, &mut inx);
            obj.observe(t, &s);
            std::mem::swap(&mut v, &mut vn);
            std::mem::swap(&mut i_syn, &mut inx);
        }
        fill(self.par, &mut s, |j| self.spike(v[j] - p.theta[j]));
        obj.observe(input.steps, &s);
        (v, i_syn)
    }

    /// Loss and surrogate gradient (exact for [`SpikeFn::FastSigmoid`]) by checkpointed BPTT.
    pub fn loss_and_grad(
        &self,
        p: &RateValues,
        input: &Input,
        obj: &mut dyn Objective,
        checkpoint_every: usize,
    ) -> (f64, RateGrads) {
        let net = self.net;
        let n = net.n;
        let k = checkpoint_every.max(1);
        let steps = input.steps;
        let alpha: Vec<f64> = p.tau.iter().map(|&t| self.dt / t).collect();
        let beta = self.beta_s();
        let mut cps = Vec::new();
        let (v_end, _) = self.run(p, input, obj, Some((k, &mut cps)));
        let loss = obj.finish();

        let mut g = RateGrads::zeros(n, net.n_connections(), net.n_gap_entries());
        let mut g_alpha = vec![0.0; n];
        // λ = dL/dV^{t+1}, ν = dL/dI^{t+1}.
        let mut lambda = vec![0.0; n];
        let mut nu = vec![0.0; n];
        // The final state's explicit term: through S^T = S(V^T − θ).
        {
            let s_end: Vec<f64> = (0..n).map(|j| self.spike(v_end[j] - p.theta[j])).collect();
            let mut d_s = vec![0.0; n];
            obj.inject(steps, &s_end, &mut d_s);
            for j in 0..n {
                let psi = surrogate(self.kappa, v_end[j] - p.theta[j]);
                lambda[j] = psi * d_s[j];
                g.theta[j] -= psi * d_s[j];
            }
        }
        let mut seg: Vec<(Vec<f64>, Vec<f64>)> = (0..k).map(|_| (vec![0.0; n], vec![0.0; n])).collect();
        let mut seg_drive: Vec<Vec<f64>> = (0..k).map(|_| vec![0.0; n]).collect();
        let (mut s, mut u, mut vn, mut inx) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let (mut mu, mut d_s, mut lambda_prev, mut nu_prev) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for (ci, (cv, ci_syn)) in cps.iter().enumerate().rev() {
            let start = ci * k;
            let end = (start + k).min(steps);
            seg[0].0.copy_from_slice(cv);
            seg[0].1.copy_from_slice(ci_syn);
            for t in start..end {
                let r = t - start;
                input.u_at(t, &mut u);
                let (head, tail) = seg.split_at_mut(r + 1);
                let (v, i_syn) = (&head[r].0, &head[r].1);
                if r + 1 < k {
                    let (a, b) = &mut tail[0];
                    self.step(p, &alpha, v, i_syn, &u, &mut s, &mut seg_drive[r], a, b);
                } else {
                    self.step(p, &alpha, v, i_syn, &u, &mut s, &mut seg_drive[r], &mut vn, &mut inx);
                }
            }
            for t in (start..end).rev() {
                let r = t - start;
                let (v, _i_syn) = (&seg[r].0, &seg[r].1);
                input.u_at(t, &mut u);
                fill(self.par, &mut s, |j| self.spike(v[j] - p.theta[j]));
                let (lam, nuv): (&[f64], &[f64]) = (&lambda, &nu);
                fill(self.par, &mut mu, |i| alpha[i] * lam[i]);
                let mu_r: &[f64] = &mu;
                let drive = &seg_drive[r];
                for i in 0..n {
                    g_alpha[i] += lam[i] * drive[i];
                    g.bias[i] += mu_r[i];
                    g.gain[i] += mu_r[i] * u[i];
                }
                // dL/dS^t: through I^{t+1}, the reset, and the loss's explicit term.
                d_s.fill(0.0);
                obj.inject(t, &s, &mut d_s);
                let out_post = &self.out_post;
                let ds_explicit: &[f64] = &d_s;
                let mut ds_total = vec![0.0; n];
                fill(self.par, &mut ds_total, |j| {
                    let mut acc = 0.0;
                    for m in net.out_ptr[j]..net.out_ptr[j + 1] {
                        acc += p.w[net.out_conn[m] as usize] * nuv[out_post[m] as usize];
                    }
                    (acc - lam[j] * p.theta[j]) + ds_explicit[j]
                });
                let s_r: &[f64] = &s;
                for_rows(self.par, &net.row_ptr, &mut g.w, |i, row| {
                    let base = net.row_ptr[i];
                    for (m, gw) in row.iter_mut().enumerate() {
                        *gw += nuv[i] * s_r[net.pre[base + m] as usize];
                    }
                });
                for_rows(self.par, &net.gap_ptr, &mut g.e, |i, row| {
                    let base = net.gap_ptr[i];
                    for (m, ge) in row.iter_mut().enumerate() {
                        *ge += mu_r[i] * (v[net.gap_nbr[base + m] as usize] - v[i]);
                    }
                });
                for j in 0..n {
                    let psi = surrogate(self.kappa, v[j] - p.theta[j]);
                    // θ enters the reset (−θ S) and the spike function S(V − θ).
                    g.theta[j] += -lam[j] * s_r[j] - psi * ds_total[j];
                }
                fill(self.par, &mut lambda_prev, |kk| {
                    let mut gap = 0.0;
                    for e in net.gap_ptr[kk]..net.gap_ptr[kk + 1] {
                        gap += p.e[e] * (mu_r[net.gap_nbr[e] as usize] - mu_r[kk]);
                    }
                    let psi = surrogate(self.kappa, v[kk] - p.theta[kk]);
                    ((lam[kk] - mu_r[kk]) + psi * ds_total[kk]) + gap
                });
                fill(self.par, &mut nu_prev, |kk| beta * nuv[kk] + mu_r[kk]);
                std::mem::swap(&mut lambda, &mut lambda_prev);
                std::mem::swap(&mut nu, &mut nu_prev);
            }
        }
        for i in 0..n {
            g.tau[i] = g_alpha[i] * (-alpha[i] / p.tau[i]);
        }
        (loss, g)
    }
}

/// Keeps every observed vector.
struct Recorder(Vec<Vec<f64>>);

impl Objective for Recorder {
    fn observe(&mut self, _t: usize, v: &[f64]) {
        self.0.push(v.to_vec());
    }
    fn finish(&mut self) -> f64 {
        0.0
    }
    fn inject(&self, _t: usize, _v: &[f64], _grad: &mut [f64]) {}
}
