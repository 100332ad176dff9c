//! The graded conductance neuron of C. elegans models, differentiable: the simulator's
//! [`neurotwin_models::graded`] model (Wicks, Roehrig & Rankin 1996, J Neurosci 16:4017; Kunert,
//! Shlizerman & Kutz 2014, Phys Rev E 89:052805) on a [`FitNetwork`], with exact reverse-mode gradients.
//!
//! Units: potentials in mV, conductances in nS, currents in pA, capacitance in pF, time in ms.
//!
//! Dynamics (step `h = dt`, one step of delay on chemical synapses and gap junctions, as in the
//! simulator, where a neuron's activation of step `t` reaches its targets at `t + 1` and the gap
//! currents use the partners' previous potentials):
//!
//! - activation `s_j = σ(β_j (V_j − θ_j))` ([`neurotwin_models::detmath::sigmoid`]);
//! - conductance of neuron `i` on receptor channel `c`: `G_ic = Σ_{m ∈ in(i), receptor c} w_m s_pre(m)`,
//!   `w_m = count_m × strength_m` (nS per unit activation; the conductance has no sign, the channel's
//!   reversal potential decides its effect);
//! - gap coupling `e_ij = junctions_ij × gap_class` (nS), taken implicitly like the simulator's
//!   [`neurotwin_models::GapInput`];
//! - `g_i = (g_L,i + Σ_j e_ij) + Σ_c G_ic` (channels in order),
//!   `D_i = (((g_L,i E_L,i + I_b,i) + γ_i u_i) + Σ_j e_ij V_j) + Σ_c G_ic E_ic`,
//!   `V∞_i = D_i / g_i`, `x_i = exp(−h g_i / C)` ([`neurotwin_models::detmath::exp`]),
//!   `V_i^{t+1} = V∞_i + (V_i^t − V∞_i) x_i` — the exact solution over one step with the conductances
//!   held, the same expression, in the same order of operations, as `models/src/graded.rs`;
//! - `E_ic = e_exc,i` on excitatory channels, `e_inh,i` on inhibitory ones (the channel's `excitatory`
//!   flag in [`FitNetwork::receptors`]).
//!
//! Parameters ([`ParamSet`] blocks, built by [`crate::spec::build_params`] with model `"graded"`):
//! per neuron `g_l` (leak conductance, nS, positive), `e_l` (leak reversal `E_cell`, mV), `theta`
//! (sigmoid midpoint `V_th`, mV), `slope` (β, 1/mV, positive), `bias` (`I_e`, pA), `gain` (γ, pA per
//! unit of input `u`), `e_exc` and `e_inh` (reversal potentials, mV; optional blocks, defaults 0 and
//! −48 mV as [`GradedParams`]); per connection class `strength` (nS per synapse, positive); per gap
//! class `gap` (nS per junction). The membrane capacitance `C` (pF) is a model constant (1 pF as in
//! [`GradedParams`]; τ = C/g_L = 100 ms at the default 0.01 nS). Synapse signs of the network are not
//! used (a learned sign has no meaning for a conductance: keep `strength` positive, `lo = 0`).
//!
//! The initial state is `V^0 = E_L` (the simulator's resting state) unless [`Input::v0`] gives one; the
//! [`Objective`] observes `V^t` (mV), `t = 0 … T`. Teacher forcing ([`Input::clamp`]) overwrites
//! clamped neurons after every step, as in [`crate::rate`].
//!
//! Gradients are those of the discrete dynamics (discrete adjoint, checkpointed BPTT as in
//! [`crate::rate`]). With `λ = dL/dV^{t+1}`, `k = −h/C`:
//! `ā_D,i = λ_i (1 − x_i)/g_i`, `ā_g,i = λ_i ((1 − x_i)(−V∞_i/g_i) + (V_i^t − V∞_i) k x_i)`,
//! `ρ_ic = ā_D,i E_ic + ā_g,i` (adjoint of `G_ic`), `A_j = Σ_{m ∈ out(j)} w_m ρ_{post(m), c(m)}`;
//! `dL/dw_m = Σ_t ρ s_pre(m)`, `dL/de_ij = Σ_t ā_D,i V_j + ā_g,i`, `dL/dg_L = Σ_t ā_D E_L + ā_g`,
//! `dL/dE_L = Σ_t ā_D g_L` (+ `λ^0` when `V^0 = E_L`), `dL/dI_b = Σ_t ā_D`, `dL/dγ = Σ_t ā_D u`,
//! `dL/de_exc,i = Σ_t ā_D,i Σ_{c exc} G_ic`, `dL/dθ_j = −Σ_t A_j β_j s_j(1 − s_j)`,
//! `dL/dβ_j = Σ_t A_j (V_j − θ_j) s_j(1 − s_j)`, and
//! `λ^t_k = λ_k x_k + β_k s_k(1 − s_k) A_k + Σ_{j ∈ gap(k)} e_kj ā_D,j + ∂ℓ_t/∂V^t_k` (the gap sum uses
//! `e_jk = e_kj`: junctions and gap classes are symmetric).
//!
//! Every sum runs in a fixed order (a channel's inputs in CSR order, channels in index order, a neuron's
//! outputs in ascending connection order, group sums in element order), so losses and gradients are
//! bit-identical for any thread count and checkpoint interval.
//!
//! Simplifications shared with the simulator: Kunert et al.'s first-order synaptic variable is replaced
//! by the instantaneous sigmoid, and `V_th` is a parameter instead of the network's equilibrium.

use neurotwin_models::detmath;
use neurotwin_models::graded::GradedParams;
use rayon::prelude::*;

use crate::exec::{PAR_MIN_NEURONS, fill, for_rows};
use crate::network::FitNetwork;
use crate::params::ParamSet;
use crate::rate::{Input, Objective};

/// Names of the per-neuron parameter blocks the graded model reads (`e_exc`, `e_inh` are optional).
pub const GRADED_NEURON_BLOCKS: [&str; 8] = ["g_l", "e_l", "theta", "slope", "bias", "gain", "e_exc", "e_inh"];

/// Every parameter of the graded model at element level.
#[derive(Clone, Debug, PartialEq)]
pub struct GradedValues {
    /// Leak conductance (nS).
    pub g_l: Vec<f64>,
    /// Leak reversal potential `E_cell` (mV).
    pub e_l: Vec<f64>,
    /// Sigmoid midpoint `V_th` (mV).
    pub theta: Vec<f64>,
    /// Sigmoid slope β (1/mV).
    pub slope: Vec<f64>,
    /// Bias current `I_e` (pA).
    pub bias: Vec<f64>,
    /// Input gain γ (pA per unit of `u`).
    pub gain: Vec<f64>,
    /// Reversal potential of excitatory channels (mV), per postsynaptic neuron.
    pub e_exc: Vec<f64>,
    /// Reversal potential of inhibitory channels (mV), per postsynaptic neuron.
    pub e_inh: Vec<f64>,
    /// Conductance per synapse of each connection's class (nS).
    pub strength: Vec<f64>,
    /// Maximal conductance of each connection: `count × strength` (nS).
    pub w: Vec<f64>,
    /// Conductance per junction of each gap entry's class (nS).
    pub gap: Vec<f64>,
    /// Coupling conductance of each gap entry: `junctions × gap` (nS).
    pub e: Vec<f64>,
}

impl GradedValues {
    /// Expands the parameter set (blocks `g_l`, `e_l`, `theta`, `slope`, `bias`, `gain`, `strength`,
    /// `gap`, optionally `e_exc`, `e_inh`).
    pub fn from_params(net: &FitNetwork, p: &ParamSet) -> Self {
        let defaults = GradedParams::default();
        let optional = |name: &str, default: f64| {
            if p.block(name).is_some() { p.element_values(name) } else { vec![default; net.n] }
        };
        let strength = p.element_values("strength");
        let w = strength.iter().zip(&net.count).map(|(s, &k)| k as f64 * s).collect();
        let gap = p.element_values("gap");
        let e = gap.iter().zip(&net.gap_count).map(|(g, &k)| k as f64 * g).collect();
        Self {
            g_l: p.element_values("g_l"),
            e_l: p.element_values("e_l"),
            theta: p.element_values("theta"),
            slope: p.element_values("slope"),
            bias: p.element_values("bias"),
            gain: p.element_values("gain"),
            e_exc: optional("e_exc", defaults.e_exc),
            e_inh: optional("e_inh", defaults.e_inh),
            strength,
            w,
            gap,
            e,
        }
    }
}

/// d loss / d every element of [`GradedValues`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradedGrads {
    pub g_l: Vec<f64>,
    pub e_l: Vec<f64>,
    pub theta: Vec<f64>,
    pub slope: Vec<f64>,
    pub bias: Vec<f64>,
    pub gain: Vec<f64>,
    pub e_exc: Vec<f64>,
    pub e_inh: Vec<f64>,
    /// d loss / d w (per connection).
    pub w: Vec<f64>,
    /// d loss / d e (per gap entry).
    pub e: Vec<f64>,
}

impl GradedGrads {
    pub fn zeros(n: usize, n_conn: usize, n_gap: usize) -> Self {
        Self {
            g_l: vec![0.0; n],
            e_l: vec![0.0; n],
            theta: vec![0.0; n],
            slope: vec![0.0; n],
            bias: vec![0.0; n],
            gain: vec![0.0; n],
            e_exc: vec![0.0; n],
            e_inh: vec![0.0; n],
            w: vec![0.0; n_conn],
            e: vec![0.0; n_gap],
        }
    }

    fn neuron_blocks(&self) -> [(&'static str, &Vec<f64>); 8] {
        [
            ("g_l", &self.g_l),
            ("e_l", &self.e_l),
            ("theta", &self.theta),
            ("slope", &self.slope),
            ("bias", &self.bias),
            ("gain", &self.gain),
            ("e_exc", &self.e_exc),
            ("e_inh", &self.e_inh),
        ]
    }

    /// `self += other`, element by element (callers add in a fixed order).
    pub fn add(&mut self, o: &GradedGrads) {
        for (a, b) in [
            (&mut self.g_l, &o.g_l),
            (&mut self.e_l, &o.e_l),
            (&mut self.theta, &o.theta),
            (&mut self.slope, &o.slope),
            (&mut self.bias, &o.bias),
            (&mut self.gain, &o.gain),
            (&mut self.e_exc, &o.e_exc),
            (&mut self.e_inh, &o.e_inh),
            (&mut self.w, &o.w),
            (&mut self.e, &o.e),
        ] {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
    }

    /// Reduces element gradients to the raw numbers of `p` (added into `grad`).
    pub fn reduce(&self, net: &FitNetwork, p: &ParamSet, grad: &mut [f64]) {
        for (name, g) in self.neuron_blocks() {
            p.reduce(name, g, grad);
        }
        let d_strength: Vec<f64> = self.w.iter().zip(&net.count).map(|(g, &k)| g * k as f64).collect();
        p.reduce("strength", &d_strength, grad);
        let d_gap: Vec<f64> = self.e.iter().zip(&net.gap_count).map(|(g, &k)| g * k as f64).collect();
        p.reduce("gap", &d_gap, grad);
    }
}

/// The graded conductance network of one [`FitNetwork`].
pub struct GradedModel<'a> {
    pub net: &'a FitNetwork,
    /// Step `h` (ms).
    pub dt: f64,
    /// Membrane capacitance `C` (pF), not fitted.
    pub c_m: f64,
    /// `−h/C` (ms/pF), as the simulator's `minus_h_over_c`.
    pub(crate) minus_h_over_c: f64,
    /// Number of receptor channels.
    pub(crate) n_ch: usize,
    /// Whether each channel is excitatory.
    pub(crate) excitatory: Vec<bool>,
    /// Connections of (neuron `i`, channel `c`): `ch_conn[ch_ptr[i n_ch + c] .. ch_ptr[i n_ch + c + 1]]`,
    /// in CSR order.
    pub(crate) ch_ptr: Vec<usize>,
    pub(crate) ch_conn: Vec<u32>,
    /// For `net.out_conn[m]`: the index `post × n_ch + receptor` of its conductance.
    pub(crate) out_slot: Vec<u32>,
    par: bool,
}

/// Per-step scratch: activations, channel conductances and the external input.
struct Scratch {
    s: Vec<f64>,
    gch: Vec<f64>,
    u: Vec<f64>,
}

/// One neuron's step quantities.
struct Terms {
    g_tot: f64,
    v_inf: f64,
    x: f64,
}

/// Scratch of the backward pass.
struct Backward {
    /// `(ā_D, ā_g, x)` per neuron.
    terms: Vec<[f64; 3]>,
    rho: Vec<f64>,
    a_out: Vec<f64>,
    lambda_prev: Vec<f64>,
}

/// `out[i] = f(i)` for `i < n`, serially or on the rayon pool (each element computed by the same code).
fn map_into<T: Send, F: Fn(usize) -> T + Sync + Send>(par: bool, n: usize, out: &mut Vec<T>, f: F) {
    if par {
        (0..n).into_par_iter().map(f).collect_into_vec(out);
    } else {
        out.clear();
        out.extend((0..n).map(f));
    }
}

impl<'a> GradedModel<'a> {
    /// The model at step `dt` (ms) with the default capacitance of [`GradedParams`] (1 pF).
    pub fn new(net: &'a FitNetwork, dt: f64) -> Self {
        let n_ch = net.receptors.len();
        let excitatory = net.receptors.iter().map(|r| r.excitatory).collect();
        let mut ch_ptr = vec![0usize; net.n * n_ch + 1];
        let mut ch_conn = Vec::with_capacity(net.n_connections());
        for i in 0..net.n {
            for c in 0..n_ch {
                for m in net.row_ptr[i]..net.row_ptr[i + 1] {
                    if net.receptor[m] as usize == c {
                        ch_conn.push(m as u32);
                    }
                }
                ch_ptr[i * n_ch + c + 1] = ch_conn.len();
            }
        }
        let post = net.post_of_connections();
        let out_slot =
            net.out_conn.iter().map(|&c| post[c as usize] * n_ch as u32 + net.receptor[c as usize] as u32).collect();
        let c_m = GradedParams::default().c_m;
        Self {
            net,
            dt,
            c_m,
            minus_h_over_c: -dt / c_m,
            n_ch,
            excitatory,
            ch_ptr,
            ch_conn,
            out_slot,
            par: net.n >= PAR_MIN_NEURONS,
        }
    }

    /// Sets the membrane capacitance (pF).
    pub fn with_capacitance(mut self, c_m: f64) -> Self {
        self.c_m = c_m;
        self.minus_h_over_c = -self.dt / c_m;
        self
    }

    /// Forces serial (`false`) or parallel (`true`) loops inside one simulation (results are identical).
    pub fn with_parallel(mut self, par: bool) -> Self {
        self.par = par;
        self
    }

    fn scratch(&self) -> Scratch {
        let n = self.net.n;
        Scratch { s: vec![0.0; n], gch: vec![0.0; n * self.n_ch], u: vec![0.0; n] }
    }

    /// Reversal potential of neuron `i`'s channel `c` (mV).
    #[inline]
    fn reversal(&self, p: &GradedValues, i: usize, c: usize) -> f64 {
        if self.excitatory[c] { p.e_exc[i] } else { p.e_inh[i] }
    }

    /// Activations `s` and channel conductances `G` of the state `v`.
    fn synapses(&self, p: &GradedValues, v: &[f64], sc: &mut Scratch) {
        fill(self.par, &mut sc.s, |j| detmath::sigmoid(p.slope[j] * (v[j] - p.theta[j])));
        let (s, net) = (&sc.s, self.net);
        fill(self.par, &mut sc.gch, |ic| {
            let mut acc = 0.0;
            for m in self.ch_ptr[ic]..self.ch_ptr[ic + 1] {
                let c = self.ch_conn[m] as usize;
                acc += p.w[c] * s[net.pre[c] as usize];
            }
            acc
        });
    }

    /// `g_i`, `V∞_i` and `x_i` of neuron `i` (the simulator's `update_block`, term by term).
    #[inline]
    fn terms(&self, p: &GradedValues, i: usize, v: &[f64], gch: &[f64], u_i: f64) -> Terms {
        let net = self.net;
        let (mut gap_g, mut gap_gv) = (0.0, 0.0);
        for e in net.gap_ptr[i]..net.gap_ptr[i + 1] {
            gap_g += p.e[e];
            gap_gv += p.e[e] * v[net.gap_nbr[e] as usize];
        }
        let mut g_tot = p.g_l[i] + gap_g;
        let mut drive = p.g_l[i] * p.e_l[i] + p.bias[i] + p.gain[i] * u_i + gap_gv;
        for c in 0..self.n_ch {
            let g = gch[i * self.n_ch + c];
            g_tot += g;
            drive += g * self.reversal(p, i, c);
        }
        let v_inf = drive / g_tot;
        Terms { g_tot, v_inf, x: detmath::exp(self.minus_h_over_c * g_tot) }
    }

    /// One step `v → v_next` (the input `u` is in `sc.u`).
    fn step(&self, p: &GradedValues, v: &[f64], sc: &mut Scratch, v_next: &mut [f64]) {
        self.synapses(p, v, sc);
        let (gch, u) = (&sc.gch, &sc.u);
        fill(self.par, v_next, |i| {
            let t = self.terms(p, i, v, gch, u[i]);
            t.v_inf + (v[i] - t.v_inf) * t.x
        });
    }

    fn initial(&self, p: &GradedValues, input: &Input) -> Vec<f64> {
        let mut v = if input.v0.is_empty() { p.e_l.clone() } else { input.v0.clone() };
        input.apply_clamp(0, &mut v);
        v
    }

    /// The whole trajectory `V^0 … V^T` (mV, row t), for reports and tests.
    pub fn trajectory(&self, p: &GradedValues, input: &Input) -> Vec<Vec<f64>> {
        let mut sc = self.scratch();
        let mut out = vec![self.initial(p, input)];
        for t in 0..input.steps {
            input.u_at(t, &mut sc.u);
            let mut next = vec![0.0; self.net.n];
            self.step(p, &out[t], &mut sc, &mut next);
            input.apply_clamp(t + 1, &mut next);
            out.push(next);
        }
        out
    }

    /// The loss only (one forward pass, no states kept).
    pub fn loss(&self, p: &GradedValues, input: &Input, obj: &mut dyn Objective) -> f64 {
        let mut sc = self.scratch();
        let mut v = self.initial(p, input);
        let mut next = vec![0.0; self.net.n];
        obj.observe(0, &v);
        for t in 0..input.steps {
            input.u_at(t, &mut sc.u);
            self.step(p, &v, &mut sc, &mut next);
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
        p: &GradedValues,
        input: &Input,
        obj: &mut dyn Objective,
        checkpoint_every: usize,
    ) -> (f64, GradedGrads) {
        let net = self.net;
        let n = net.n;
        let k = checkpoint_every.max(1);
        let steps = input.steps;
        let mut sc = self.scratch();

        // Forward: observe every state, keep V^0, V^k, V^2k, ….
        let mut checkpoints: Vec<Vec<f64>> = Vec::with_capacity(steps / k + 1);
        let mut v = self.initial(p, input);
        let mut next = vec![0.0; n];
        obj.observe(0, &v);
        for t in 0..steps {
            if t % k == 0 {
                checkpoints.push(v.clone());
            }
            input.u_at(t, &mut sc.u);
            self.step(p, &v, &mut sc, &mut next);
            input.apply_clamp(t + 1, &mut next);
            std::mem::swap(&mut v, &mut next);
            obj.observe(t + 1, &v);
        }
        let loss = obj.finish();

        let mut g = GradedGrads::zeros(n, net.n_connections(), net.n_gap_entries());
        let mut lambda = vec![0.0; n];
        obj.inject(steps, &v, &mut lambda);

        let mut seg_v: Vec<Vec<f64>> = (0..=k).map(|_| vec![0.0; n]).collect();
        let mut b = Backward {
            terms: Vec::with_capacity(n),
            rho: vec![0.0; n * self.n_ch],
            a_out: vec![0.0; n],
            lambda_prev: vec![0.0; n],
        };
        for (ci, cp) in checkpoints.iter().enumerate().rev() {
            let start = ci * k;
            let end = (start + k).min(steps);
            seg_v[0].copy_from_slice(cp);
            for t in start..end {
                let r = t - start;
                input.u_at(t, &mut sc.u);
                let (head, tail) = seg_v.split_at_mut(r + 1);
                self.step(p, &head[r], &mut sc, &mut tail[0]);
                input.apply_clamp(t + 1, &mut tail[0]);
            }
            for t in (start..end).rev() {
                let r = t - start;
                input.u_at(t, &mut sc.u);
                self.backward_step(p, &seg_v[r], input, &mut sc, &mut lambda, &mut b, &mut g);
                obj.inject(t, &seg_v[r], &mut b.lambda_prev);
                std::mem::swap(&mut lambda, &mut b.lambda_prev);
            }
        }
        // V^0 = E_L when no initial state is given (clamped neurons start from data).
        if input.v0.is_empty() {
            input.zero_clamped(&mut lambda);
            for (ge, l) in g.e_l.iter_mut().zip(&lambda) {
                *ge += l;
            }
        }
        (loss, g)
    }

    /// One step of the adjoint: `lambda` holds `λ^{t+1}` on entry; `b.lambda_prev` receives `λ^t`
    /// (without the loss's explicit term). `v` = `V^t`; `sc.u` holds `u^t`.
    #[allow(clippy::too_many_arguments)]
    fn backward_step(
        &self,
        p: &GradedValues,
        v: &[f64],
        input: &Input,
        sc: &mut Scratch,
        lambda: &mut [f64],
        b: &mut Backward,
        g: &mut GradedGrads,
    ) {
        let net = self.net;
        let par = self.par;
        let n_ch = self.n_ch;
        // V^{t+1} of clamped neurons is data: nothing flows back through it.
        input.zero_clamped(lambda);
        let lambda: &[f64] = lambda;
        self.synapses(p, v, sc);
        let (s, gch, u) = (&sc.s, &sc.gch, &sc.u);
        let k = self.minus_h_over_c;
        map_into(par, net.n, &mut b.terms, |i| {
            let t = self.terms(p, i, v, gch, u[i]);
            let one_minus_x = 1.0 - t.x;
            let a_d = lambda[i] * one_minus_x / t.g_tot;
            let a_g = lambda[i] * (one_minus_x * (-t.v_inf / t.g_tot) + (v[i] - t.v_inf) * (k * t.x));
            [a_d, a_g, t.x]
        });
        let terms: &[[f64; 3]] = &b.terms;
        fill(par, &mut b.rho, |ic| {
            let (i, c) = (ic / n_ch, ic % n_ch);
            terms[i][0] * self.reversal(p, i, c) + terms[i][1]
        });
        let rho: &[f64] = &b.rho;
        fill(par, &mut b.a_out, |j| {
            let mut acc = 0.0;
            for m in net.out_ptr[j]..net.out_ptr[j + 1] {
                acc += p.w[net.out_conn[m] as usize] * rho[self.out_slot[m] as usize];
            }
            acc
        });
        let a_out: &[f64] = &b.a_out;
        for i in 0..net.n {
            let [a_d, a_g, _] = terms[i];
            g.g_l[i] += a_d * p.e_l[i] + a_g;
            g.e_l[i] += a_d * p.g_l[i];
            g.bias[i] += a_d;
            g.gain[i] += a_d * u[i];
            let (mut g_exc, mut g_inh) = (0.0, 0.0);
            for c in 0..n_ch {
                if self.excitatory[c] {
                    g_exc += gch[i * n_ch + c];
                } else {
                    g_inh += gch[i * n_ch + c];
                }
            }
            g.e_exc[i] += a_d * g_exc;
            g.e_inh[i] += a_d * g_inh;
            let ds = s[i] * (1.0 - s[i]);
            g.theta[i] += -(a_out[i] * p.slope[i] * ds);
            g.slope[i] += a_out[i] * (v[i] - p.theta[i]) * ds;
        }
        for_rows(par, &net.row_ptr, &mut g.w, |i, row| {
            let base = net.row_ptr[i];
            for (m, gw) in row.iter_mut().enumerate() {
                let c = base + m;
                *gw += rho[i * n_ch + net.receptor[c] as usize] * s[net.pre[c] as usize];
            }
        });
        for_rows(par, &net.gap_ptr, &mut g.e, |i, row| {
            let base = net.gap_ptr[i];
            let [a_d, a_g, _] = terms[i];
            for (m, ge) in row.iter_mut().enumerate() {
                *ge += a_d * v[net.gap_nbr[base + m] as usize] + a_g;
            }
        });
        fill(par, &mut b.lambda_prev, |kk| {
            let mut gap = 0.0;
            for e in net.gap_ptr[kk]..net.gap_ptr[kk + 1] {
                gap += p.e[e] * terms[net.gap_nbr[e] as usize][0];
            }
            let ds = s[kk] * (1.0 - s[kk]);
            (lambda[kk] * terms[kk][2] + p.slope[kk] * ds * a_out[kk]) + gap
        });
    }
}
