//! The leaky rate model of connectome-constrained fitting, after flyvis (Lappalainen et al. 2024,
//! Nature 634:1132, Methods "Network dynamics"):
//!
//! `τ_i dV_i/dt = −V_i + b_i + Σ_j w_ij f_j(V_j) + Σ_j e_ij (V_j − V_i) + γ_i u_i(t)`,
//! `w_ij = sign_j × count_ij × s_class(i,j) [× ρ_ij]`, `e_ij = junctions_ij × g_class(i,j)`,
//!
//! with `f = slope · max(0, V − θ)` (ReLU) or `f = σ(slope · (V − θ))` (sigmoid). Units are arbitrary
//! (dimensionless activity); τ in ms. Integrated at step `dt` (`α = dt/τ`) by a linearly implicit
//! (IMEX) Euler step: the neuron's own leak and gap-junction conductance are taken at `t + 1`, the
//! inputs from other neurons at `t`,
//! `V_i^{t+1} = (V_i^t + α_i P_i^t) / D_i`, `P_i = b_i + Σ_j w_ij f_j(V_j^t) + Σ_j e_ij V_j^t + γ_i u_i^t`,
//! `D_i = 1 + α_i (1 + Σ_j e_ij)`.
//! For `τ ≫ dt` this is flyvis' explicit Euler step to first order; unlike it, it stays stable for any
//! gap-junction strength (seen: with explicit Euler the worm's non-neuronal cells, coupled by up to
//! 2,000 junctions, made `V` reach 1e54 within 80 steps at 0.02 per junction). Teacher forcing overwrites
//! clamped neurons with data after every step.
//!
//! Gradients are exact for the discrete dynamics (the discrete adjoint, i.e. backpropagation through
//! time): with `λ^t = dL/dV^t` and `μ_i = α_i λ^{t+1}_i / D_i`,
//! `λ^t_k = λ^{t+1}_k / D_k + f'_k Σ_{i ∈ out(k)} w_ik μ_i + Σ_{j ∈ gap(k)} e_kj μ_j + ∂ℓ_t/∂V^t_k`,
//! `dL/dα_i = Σ_t λ^{t+1}_i (P_i^t − (1 + Σ_j e_ij) V_i^{t+1}) / D_i`, `dL/db_i = Σ_t μ_i`,
//! `dL/dγ_i = Σ_t μ_i u_i^t`, `dL/dw_ij = Σ_t μ_i f_j(V_j^t)`, `dL/de_ij = Σ_t μ_i (V^t_j − V^{t+1}_i)`,
//! `dL/dθ_k = Σ_t a_k ∂f_k/∂θ`, `a_k = Σ_{i ∈ out(k)} w_ik μ_i` (and likewise for the slope).
//! States are kept every `checkpoint_every` steps and recomputed in between (checkpointed BPTT, Griewank
//! 1992): memory `(T/k + 2k) n` numbers for `T` steps, one extra forward pass of compute.
//!
//! Every sum runs in a fixed order (a row in CSR order, a neuron's outputs in ascending connection
//! order), so results are bit-identical for any thread count. The same expressions, in the same order,
//! are what a kernel must evaluate to match.

use serde::{Deserialize, Serialize};

use crate::error::FitError;
use crate::exec::{PAR_MIN_NEURONS, fill, for_rows};
use crate::network::FitNetwork;
use crate::params::ParamSet;

/// Output nonlinearity `f`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `slope · max(0, V − θ)` (flyvis uses the ReLU).
    Relu,
    /// `σ(slope · (V − θ))`.
    Sigmoid,
}

/// Names of the parameter blocks the rate model reads (`weight_scale` is optional).
pub const RATE_NEURON_BLOCKS: [&str; 5] = ["tau", "bias", "gain", "theta", "slope"];

/// `(f, ∂f/∂V, ∂f/∂θ, ∂f/∂slope)` at `v`.
#[inline]
pub fn activation(a: Activation, v: f64, theta: f64, slope: f64) -> (f64, f64, f64, f64) {
    let x = v - theta;
    match a {
        Activation::Relu => {
            if x > 0.0 {
                (slope * x, slope, -slope, x)
            } else {
                (0.0, 0.0, 0.0, 0.0)
            }
        }
        Activation::Sigmoid => {
            let s = neurotwin_models::detmath::sigmoid(slope * x);
            let ds = s * (1.0 - s);
            let d = slope * ds;
            (s, d, -d, x * ds)
        }
    }
}

/// Every parameter of the rate model at element level.
#[derive(Clone, Debug, PartialEq)]
pub struct RateValues {
    pub tau: Vec<f64>,
    pub bias: Vec<f64>,
    pub gain: Vec<f64>,
    pub theta: Vec<f64>,
    pub slope: Vec<f64>,
    /// Strength of each connection's class.
    pub strength: Vec<f64>,
    /// Per-connection weight scale (1 when the model has none).
    pub scale: Option<Vec<f64>>,
    /// Signed weight of each connection: `sign × count × strength × scale`.
    pub w: Vec<f64>,
    /// Gap strength of each entry's class.
    pub gap: Vec<f64>,
    /// Coupling of each gap entry: `junctions × gap`.
    pub e: Vec<f64>,
}

impl RateValues {
    /// Expands the parameter set (blocks `tau`, `bias`, `gain`, `theta`, `slope`, `strength`, `gap`,
    /// optionally `weight_scale`).
    pub fn from_params(net: &FitNetwork, p: &ParamSet) -> Self {
        let strength = p.element_values("strength");
        let scale = p.block("weight_scale").map(|_| p.element_values("weight_scale"));
        let w = (0..net.n_connections())
            .map(|c| {
                let base = net.sign[c] as f64 * net.count[c] as f64 * strength[c];
                match &scale {
                    Some(s) => base * s[c],
                    None => base,
                }
            })
            .collect();
        let gap = p.element_values("gap");
        let e = gap.iter().zip(&net.gap_count).map(|(g, &k)| k as f64 * g).collect();
        Self {
            tau: p.element_values("tau"),
            bias: p.element_values("bias"),
            gain: p.element_values("gain"),
            theta: p.element_values("theta"),
            slope: if p.block("slope").is_some() { p.element_values("slope") } else { vec![1.0; net.n] },
            strength,
            scale,
            w,
            gap,
            e,
        }
    }
}

/// d loss / d every element of [`RateValues`].
#[derive(Clone, Debug, PartialEq)]
pub struct RateGrads {
    pub tau: Vec<f64>,
    pub bias: Vec<f64>,
    pub gain: Vec<f64>,
    pub theta: Vec<f64>,
    pub slope: Vec<f64>,
    /// d loss / d w (per connection).
    pub w: Vec<f64>,
    /// d loss / d e (per gap entry).
    pub e: Vec<f64>,
}

impl RateGrads {
    pub fn zeros(n: usize, n_conn: usize, n_gap: usize) -> Self {
        Self {
            tau: vec![0.0; n],
            bias: vec![0.0; n],
            gain: vec![0.0; n],
            theta: vec![0.0; n],
            slope: vec![0.0; n],
            w: vec![0.0; n_conn],
            e: vec![0.0; n_gap],
        }
    }

    /// `self += other`, element by element (callers add in a fixed order).
    pub fn add(&mut self, o: &RateGrads) {
        for (a, b) in [
            (&mut self.tau, &o.tau),
            (&mut self.bias, &o.bias),
            (&mut self.gain, &o.gain),
            (&mut self.theta, &o.theta),
            (&mut self.slope, &o.slope),
            (&mut self.w, &o.w),
            (&mut self.e, &o.e),
        ] {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
    }

    /// Reduces element gradients to the raw numbers of `p` (added into `grad`).
    pub fn reduce(&self, net: &FitNetwork, v: &RateValues, p: &ParamSet, grad: &mut [f64]) {
        for (name, g) in [
            ("tau", &self.tau),
            ("bias", &self.bias),
            ("gain", &self.gain),
            ("theta", &self.theta),
            ("slope", &self.slope),
        ] {
            p.reduce(name, g, grad);
        }
        let d_strength: Vec<f64> = (0..net.n_connections())
            .map(|c| {
                let base = net.sign[c] as f64 * net.count[c] as f64;
                match &v.scale {
                    Some(s) => self.w[c] * base * s[c],
                    None => self.w[c] * base,
                }
            })
            .collect();
        p.reduce("strength", &d_strength, grad);
        if let Some(_s) = &v.scale {
            let d_scale: Vec<f64> = (0..net.n_connections())
                .map(|c| self.w[c] * (net.sign[c] as f64 * net.count[c] as f64 * v.strength[c]))
                .collect();
            p.reduce("weight_scale", &d_scale, grad);
        }
        let d_gap: Vec<f64> = self.e.iter().zip(&net.gap_count).map(|(g, &k)| g * k as f64).collect();
        p.reduce("gap", &d_gap, grad);
    }
}

/// A step input `u_i(t) = amplitude` on one neuron for steps `[start, stop)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pulse {
    pub neuron: u32,
    pub start: usize,
    pub stop: usize,
    pub amplitude: f64,
}

/// Teacher forcing: after every step, `V_k := values[t][k]` for the clamped neurons (and at t = 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Clamp {
    pub neurons: Vec<u32>,
    /// `(steps + 1) × neurons.len()`, row `t` holding the values of `V^t`.
    pub values: Vec<f64>,
}

/// One simulation's inputs.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Input {
    pub steps: usize,
    /// Initial state (0 everywhere when empty).
    pub v0: Vec<f64>,
    pub pulses: Vec<Pulse>,
    pub clamp: Option<Clamp>,
}

impl Input {
    /// `u^t`: the sum of the pulses active at step `t`, per neuron.
    pub fn u_at(&self, t: usize, u: &mut [f64]) {
        u.fill(0.0);
        for p in &self.pulses {
            if t >= p.start && t < p.stop {
                u[p.neuron as usize] += p.amplitude;
            }
        }
    }

    /// Overwrites the clamped neurons of `v` with their data at step `t`.
    pub fn apply_clamp(&self, t: usize, v: &mut [f64]) {
        if let Some(c) = &self.clamp {
            let k = c.neurons.len();
            for (m, &i) in c.neurons.iter().enumerate() {
                v[i as usize] = c.values[t * k + m];
            }
        }
    }

    /// Zeroes the clamped neurons' entries (their state is data, not a function of the parameters).
    pub fn zero_clamped(&self, g: &mut [f64]) {
        if let Some(c) = &self.clamp {
            for &i in &c.neurons {
                g[i as usize] = 0.0;
            }
        }
    }

    /// Checks sizes against a network of `n` neurons.
    pub fn check(&self, n: usize) -> Result<(), FitError> {
        if !self.v0.is_empty() && self.v0.len() != n {
            return Err(FitError::Data(format!("initial state has {} values for {n} neurons", self.v0.len())));
        }
        for p in &self.pulses {
            if p.neuron as usize >= n || p.start > p.stop || !p.amplitude.is_finite() {
                return Err(FitError::Data(format!("bad input pulse {p:?} for {n} neurons")));
            }
        }
        if let Some(c) = &self.clamp {
            if c.values.len() != (self.steps + 1) * c.neurons.len() {
                return Err(FitError::Data(format!(
                    "clamp holds {} values; {} steps × {} neurons need {}",
                    c.values.len(),
                    self.steps,
                    c.neurons.len(),
                    (self.steps + 1) * c.neurons.len()
                )));
            }
            if c.neurons.iter().any(|&i| i as usize >= n) {
                return Err(FitError::Data(format!("clamped neuron outside the {n} neurons")));
            }
            if let Some(k) = c.values.iter().position(|v| !v.is_finite()) {
                return Err(FitError::Data(format!(
                    "clamp value at step {}, clamped neuron #{} is not finite",
                    k / c.neurons.len().max(1),
                    k % c.neurons.len().max(1)
                )));
            }
        }
        Ok(())
    }
}

/// A loss on the trajectory `V^0 … V^T`.
pub trait Objective {
    /// Every state, in order `t = 0 … T`, during the forward pass.
    fn observe(&mut self, t: usize, v: &[f64]);
    /// After the forward pass: the loss.
    fn finish(&mut self) -> f64;
    /// Adds `∂loss/∂V^t` (explicit dependence only) into `grad`; called for `t = T … 0` after `finish`.
    fn inject(&self, t: usize, v: &[f64], grad: &mut [f64]);
}

/// The rate model of one network.
pub struct RateModel<'a> {
    pub net: &'a FitNetwork,
    /// Step (ms).
    pub dt: f64,
    pub activation: Activation,
    /// Postsynaptic neuron of `net.out_conn[k]`.
    out_post: Vec<u32>,
    par: bool,
}

/// Per-neuron constants of one parameter set.
struct Coeffs {
    alpha: Vec<f64>,
    c: Vec<f64>,
    d: Vec<f64>,
}

/// Scratch buffers of one step.
struct Step {
    fv: Vec<f64>,
    u: Vec<f64>,
}

impl<'a> RateModel<'a> {
    pub fn new(net: &'a FitNetwork, dt: f64, activation: Activation) -> Self {
        let post = net.post_of_connections();
        let out_post = net.out_conn.iter().map(|&c| post[c as usize]).collect();
        Self { net, dt, activation, out_post, par: net.n >= PAR_MIN_NEURONS }
    }

    /// Forces serial (`false`) or parallel (`true`) loops inside one simulation (results are identical).
    pub fn with_parallel(mut self, par: bool) -> Self {
        self.par = par;
        self
    }

    /// Per-neuron step constants: `α = dt/τ`, `c = 1 + Σ_j e_ij`, `D = 1 + α c`.
    fn coeffs(&self, p: &RateValues) -> Coeffs {
        let net = self.net;
        let alpha: Vec<f64> = p.tau.iter().map(|&tau| self.dt / tau).collect();
        let c: Vec<f64> = (0..net.n)
            .map(|i| {
                let mut g = 0.0;
                for e in net.gap_ptr[i]..net.gap_ptr[i + 1] {
                    g += p.e[e];
                }
                1.0 + g
            })
            .collect();
        let d = alpha.iter().zip(&c).map(|(a, c)| 1.0 + a * c).collect();
        Coeffs { alpha, c, d }
    }

    /// One step: `drive` (= `P`, the explicit inputs) and `v_next` from `v` (inputs `u`; `fv` is filled
    /// with `f(v)`).
    fn step(&self, p: &RateValues, k: &Coeffs, v: &[f64], s: &mut Step, drive: &mut [f64], v_next: &mut [f64]) {
        let a = self.activation;
        fill(self.par, &mut s.fv, |j| activation(a, v[j], p.theta[j], p.slope[j]).0);
        let net = self.net;
        let (fv, u) = (&s.fv, &s.u);
        fill(self.par, drive, |i| {
            let mut syn = 0.0;
            for c in net.row_ptr[i]..net.row_ptr[i + 1] {
                syn += p.w[c] * fv[net.pre[c] as usize];
            }
            let mut gap = 0.0;
            for g in net.gap_ptr[i]..net.gap_ptr[i + 1] {
                gap += p.e[g] * v[net.gap_nbr[g] as usize];
            }
            ((p.bias[i] + syn) + gap) + p.gain[i] * u[i]
        });
        let drive: &[f64] = drive;
        fill(self.par, v_next, |i| (v[i] + k.alpha[i] * drive[i]) / k.d[i]);
    }

    fn initial(&self, input: &Input) -> Vec<f64> {
        let mut v = if input.v0.is_empty() { vec![0.0; self.net.n] } else { input.v0.clone() };
        input.apply_clamp(0, &mut v);
        v
    }

    /// The whole trajectory `V^0 … V^T` (row t), for reports and tests.
    pub fn trajectory(&self, p: &RateValues, input: &Input) -> Vec<Vec<f64>> {
        let n = self.net.n;
        let coeffs = self.coeffs(p);
        let mut s = Step { fv: vec![0.0; n], u: vec![0.0; n] };
        let mut drive = vec![0.0; n];
        let mut out = vec![self.initial(input)];
        for t in 0..input.steps {
            input.u_at(t, &mut s.u);
            let mut next = vec![0.0; n];
            self.step(p, &coeffs, &out[t], &mut s, &mut drive, &mut next);
            input.apply_clamp(t + 1, &mut next);
            out.push(next);
        }
        out
    }

    /// The loss only (one forward pass, no states kept).
    pub fn loss(&self, p: &RateValues, input: &Input, obj: &mut dyn Objective) -> f64 {
        let n = self.net.n;
        let coeffs = self.coeffs(p);
        let mut s = Step { fv: vec![0.0; n], u: vec![0.0; n] };
        let mut drive = vec![0.0; n];
        let mut v = self.initial(input);
        let mut next = vec![0.0; n];
        obj.observe(0, &v);
        for t in 0..input.steps {
            input.u_at(t, &mut s.u);
            self.step(p, &coeffs, &v, &mut s, &mut drive, &mut next);
            input.apply_clamp(t + 1, &mut next);
            std::mem::swap(&mut v, &mut next);
            obj.observe(t + 1, &v);
        }
        obj.finish()
    }

    /// Loss and its gradient with respect to every element of `p`, by checkpointed BPTT (states kept
    /// every `checkpoint_every` steps; 1 keeps every state).
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
        let coeffs = self.coeffs(p);
        let mut s = Step { fv: vec![0.0; n], u: vec![0.0; n] };
        let mut drive = vec![0.0; n];

        // Forward: observe every state, keep V^0, V^k, V^2k, ….
        let mut checkpoints: Vec<Vec<f64>> = Vec::with_capacity(steps / k + 1);
        let mut v = self.initial(input);
        let mut next = vec![0.0; n];
        obj.observe(0, &v);
        for t in 0..steps {
            if t % k == 0 {
                checkpoints.push(v.clone());
            }
            input.u_at(t, &mut s.u);
            self.step(p, &coeffs, &v, &mut s, &mut drive, &mut next);
            input.apply_clamp(t + 1, &mut next);
            std::mem::swap(&mut v, &mut next);
            obj.observe(t + 1, &v);
        }
        let loss = obj.finish();

        let mut g = RateGrads::zeros(n, net.n_connections(), net.n_gap_entries());
        let mut g_alpha = vec![0.0; n];
        let mut lambda = vec![0.0; n];
        obj.inject(steps, &v, &mut lambda);

        // Segment buffers: states V^s … V^e and the explicit inputs P of steps s … e − 1.
        let mut seg_v: Vec<Vec<f64>> = (0..=k).map(|_| vec![0.0; n]).collect();
        let mut seg_drive: Vec<Vec<f64>> = (0..k).map(|_| vec![0.0; n]).collect();
        // `w` in the transpose order (`w_out[m] = w[out_conn[m]]`), so that the sum over a neuron's outputs
        // reads it sequentially instead of gathering from all of `w` (at 15 M connections that gather
        // missed the cache on every connection and dominated the step). Same values, same order of
        // summation: results are unchanged.
        let mut w_out = vec![0.0; net.out_conn.len()];
        fill(self.par, &mut w_out, |m| p.w[net.out_conn[m] as usize]);
        let mut b =
            Backward { mu: vec![0.0; n], a_out: vec![0.0; n], dfv: vec![0.0; n], lambda_prev: vec![0.0; n], w_out };
        for (ci, cp) in checkpoints.iter().enumerate().rev() {
            let start = ci * k;
            let end = (start + k).min(steps);
            seg_v[0].copy_from_slice(cp);
            for t in start..end {
                let r = t - start;
                input.u_at(t, &mut s.u);
                let (head, tail) = seg_v.split_at_mut(r + 1);
                self.step(p, &coeffs, &head[r], &mut s, &mut seg_drive[r], &mut tail[0]);
                input.apply_clamp(t + 1, &mut tail[0]);
            }
            for t in (start..end).rev() {
                let r = t - start;
                input.u_at(t, &mut s.u);
                let states = (&seg_v[r][..], &seg_v[r + 1][..]);
                self.backward_step(
                    p,
                    &coeffs,
                    states,
                    &seg_drive[r],
                    input,
                    &mut s,
                    &mut lambda,
                    &mut b,
                    &mut g,
                    &mut g_alpha,
                );
                obj.inject(t, &seg_v[r], &mut b.lambda_prev);
                std::mem::swap(&mut lambda, &mut b.lambda_prev);
            }
        }
        for (i, gt) in g.tau.iter_mut().enumerate() {
            // α = dt/τ ⇒ dα/dτ = −α/τ.
            *gt = g_alpha[i] * (-coeffs.alpha[i] / p.tau[i]);
        }
        (loss, g)
    }

    /// One step of the adjoint: `lambda` holds `λ^{t+1}` on entry; `b.lambda_prev` receives `λ^t`
    /// (without the loss's explicit term). `states` = `(V^t, V^{t+1})`, `drive` = `P^t`.
    #[allow(clippy::too_many_arguments)]
    fn backward_step(
        &self,
        p: &RateValues,
        k: &Coeffs,
        states: (&[f64], &[f64]),
        drive: &[f64],
        input: &Input,
        s: &mut Step,
        lambda: &mut [f64],
        b: &mut Backward,
        g: &mut RateGrads,
        g_alpha: &mut [f64],
    ) {
        let net = self.net;
        let a = self.activation;
        let par = self.par;
        let (v, v_next) = states;
        // V^{t+1} of clamped neurons is data: nothing flows back through it.
        input.zero_clamped(lambda);
        let lambda: &[f64] = lambda;
        fill(par, &mut b.mu, |i| (k.alpha[i] * lambda[i]) / k.d[i]);
        let mu: &[f64] = &b.mu;
        for i in 0..net.n {
            g_alpha[i] += lambda[i] * ((drive[i] - k.c[i] * v_next[i]) / k.d[i]);
            g.bias[i] += mu[i];
            g.gain[i] += mu[i] * s.u[i];
        }
        fill(par, &mut s.fv, |j| activation(a, v[j], p.theta[j], p.slope[j]).0);
        fill(par, &mut b.dfv, |j| activation(a, v[j], p.theta[j], p.slope[j]).1);
        let out_post = &self.out_post;
        let w_out = &b.w_out;
        fill(par, &mut b.a_out, |j| {
            let mut acc = 0.0;
            for m in net.out_ptr[j]..net.out_ptr[j + 1] {
                acc += w_out[m] * mu[out_post[m] as usize];
            }
            acc
        });
        let a_out: &[f64] = &b.a_out;
        for j in 0..net.n {
            let (_, _, d_theta, d_slope) = activation(a, v[j], p.theta[j], p.slope[j]);
            g.theta[j] += a_out[j] * d_theta;
            g.slope[j] += a_out[j] * d_slope;
        }
        let fv = &s.fv;
        for_rows(par, &net.row_ptr, &mut g.w, |i, row| {
            let base = net.row_ptr[i];
            for (m, gw) in row.iter_mut().enumerate() {
                *gw += mu[i] * fv[net.pre[base + m] as usize];
            }
        });
        for_rows(par, &net.gap_ptr, &mut g.e, |i, row| {
            let base = net.gap_ptr[i];
            for (m, ge) in row.iter_mut().enumerate() {
                *ge += mu[i] * (v[net.gap_nbr[base + m] as usize] - v_next[i]);
            }
        });
        let dfv: &[f64] = &b.dfv;
        fill(par, &mut b.lambda_prev, |kk| {
            let mut gap = 0.0;
            for e in net.gap_ptr[kk]..net.gap_ptr[kk + 1] {
                gap += p.e[e] * mu[net.gap_nbr[e] as usize];
            }
            (lambda[kk] / k.d[kk] + dfv[kk] * a_out[kk]) + gap
        });
    }
}

/// Scratch buffers of the backward pass.
struct Backward {
    mu: Vec<f64>,
    a_out: Vec<f64>,
    dfv: Vec<f64>,
    lambda_prev: Vec<f64>,
    /// `w[out_conn[m]]` for every `m` (the weights in the transpose order).
    w_out: Vec<f64>,
}
