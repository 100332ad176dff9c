//! Reward-modulated STDP (three-factor; `neurotwin_models::stdp::DopamineParams`, Izhikevich 2007): the spike pairs
//! of [`super::PlasticSynapses::step`] change each synapse's eligibility trace `c` instead of its weight, and the
//! weight follows dw/dt = c·(n − b) with `n` the projection's dopamine trace (1/τ_n per dopamine spike, arriving
//! `delay_steps` after the spike of a dopamine neuron; NEST's volume transmitter).
//!
//! Exact and event-driven: between two evaluation points `c` and `n` decay exponentially, so the weight change is
//! the closed-form integral `DopamineParams::integrate_weight`, clipped to [w_min, w_max] at every evaluation point.
//! A synapse is evaluated at its own pairs (a post spike reaching it, a pre spike), at every dopamine arrival since
//! its last evaluation, and when every weight is brought up to date (every `update_every_steps` steps, which bounds
//! the dopamine history kept). Without clipping the weights do not depend on these points (tested); with it, they
//! are those of a weight clipped at each of them (as in NEST).

use std::collections::VecDeque;

use neurotwin_models::stdp::DopamineParams;

use super::{DopamineRule, PlasticRule, PlasticSynapses, decay};

/// The dopamine of one projection.
#[derive(Clone, Debug)]
pub struct DopamineState {
    /// `(step, n just after it)` of the last update of every weight (first entry) and of each dopamine arrival
    /// since, ascending and unique.
    entries: Vec<(i64, f64)>,
    /// Dopamine arrivals still ahead: `(step, spikes)`, ascending.
    pending: VecDeque<(i64, u32)>,
    /// Whether each neuron is a dopamine neuron of the projection.
    is_source: Vec<bool>,
    /// The projection's synapses.
    members: Vec<u32>,
}

impl DopamineState {
    pub(super) fn new(rule: &DopamineRule, n: usize, members: Vec<u32>) -> Self {
        let mut is_source = vec![false; n];
        rule.neurons.iter().filter(|&&i| (i as usize) < n).for_each(|&i| is_source[i as usize] = true);
        Self { entries: vec![(0, 0.0)], pending: VecDeque::new(), is_source, members }
    }

    /// The dopamine trace at step `t` (≥ the first entry's step) and the index of the entry it decays from.
    fn trace_at(&self, t: i64, dt_ms: f64, tau_n_ms: f64) -> (f64, usize) {
        let k = self.entries.partition_point(|e| e.0 <= t).saturating_sub(1);
        let (at, n) = self.entries[k];
        (n * decay((t - at) as u64, dt_ms, tau_n_ms), k)
    }
}

/// Weight `w` and eligibility `c` of one synapse carried from `t_eval` to step `t` through the dopamine arrivals in
/// between (each one an evaluation point); `t_eval` becomes `t`.
fn advance(p: &DopamineParams, state: &DopamineState, dt_ms: f64, w: &mut f64, c: &mut f64, t_eval: &mut i64, t: i64) {
    if t <= *t_eval {
        return;
    }
    let (mut n, mut k) = state.trace_at(*t_eval, dt_ms, p.tau_n_ms);
    let mut from = *t_eval;
    loop {
        let next = match state.entries.get(k + 1) {
            Some(&(s, n_next)) if s <= t => Some((s, n_next)),
            _ => None,
        };
        let to = next.map_or(t, |(s, _)| s);
        let span = (to - from) as u64;
        *w = p.integrate_weight(*w, *c, n, span as f64 * dt_ms);
        *c *= decay(span, dt_ms, p.tau_c_ms);
        from = to;
        match next {
            Some((_, n_next)) => {
                n = n_next;
                k += 1;
            }
            None => break,
        }
    }
    *t_eval = t;
}

impl PlasticSynapses {
    /// Whether any projection follows reward-modulated STDP.
    pub fn has_dopamine(&self) -> bool {
        self.rules.iter().any(|r| matches!(r, PlasticRule::Dopamine(_)))
    }

    /// The dopamine states of the projections (`None` for pair-based STDP) and the per-synapse eligibility and
    /// evaluation step, set up by `split` when a projection needs them.
    pub(super) fn init_dopamine(&mut self, n: usize) {
        if !self.has_dopamine() {
            return;
        }
        self.elig = vec![0.0; self.len()];
        self.t_eval = vec![0; self.len()];
        self.dopamine = self
            .rules
            .iter()
            .enumerate()
            .map(|(p, r)| match r {
                PlasticRule::Dopamine(d) => {
                    let members =
                        (0..self.len() as u32).filter(|&k| self.projection[k as usize] as usize == p).collect();
                    Some(DopamineState::new(d, n, members))
                }
                PlasticRule::Stdp(_) => None,
            })
            .collect();
    }

    /// Synapse `k` (of a reward-modulated projection) evaluated at step `t`.
    pub(super) fn advance_dopamine(&mut self, k: usize, t: i64) {
        let p = self.projection[k] as usize;
        let (PlasticRule::Dopamine(rule), Some(state)) = (&self.rules[p], &self.dopamine[p]) else { return };
        advance(&rule.params, state, self.dt_ms, &mut self.weight[k], &mut self.elig[k], &mut self.t_eval[k], t);
    }

    /// Start of step `now`: the dopamine arriving now joins each projection's trace.
    pub(super) fn dopamine_arrivals(&mut self, now: i64) {
        for (rule, state) in self.rules.iter().zip(self.dopamine.iter_mut()) {
            let (PlasticRule::Dopamine(rule), Some(state)) = (rule, state) else { continue };
            while let Some(&(at, count)) = state.pending.front() {
                if at > now {
                    break;
                }
                state.pending.pop_front();
                let (n, _) = state.trace_at(at, self.dt_ms, rule.params.tau_n_ms);
                let n = n + count as f64 / rule.params.tau_n_ms;
                match state.entries.last_mut() {
                    Some(last) if last.0 == at => last.1 = n,
                    _ => state.entries.push((at, n)),
                }
            }
        }
    }

    /// End of step `now` with its spikes: the dopamine neurons' spikes are scheduled, and every `update_every_steps`
    /// steps every weight is brought up to date and the dopamine history restarts from now.
    pub(super) fn dopamine_end_of_step(&mut self, now: i64, spikes: &[u32]) {
        for p in 0..self.dopamine.len() {
            let (PlasticRule::Dopamine(rule), Some(state)) = (&self.rules[p], &mut self.dopamine[p]) else { continue };
            let count = spikes.iter().filter(|&&i| state.is_source[i as usize]).count() as u32;
            if count > 0 {
                state.pending.push_back((now + rule.delay_steps as i64, count));
            }
            if (now as u64 + 1).is_multiple_of(rule.update_every_steps as u64) {
                for &k in &state.members {
                    let k = k as usize;
                    advance(
                        &rule.params,
                        state,
                        self.dt_ms,
                        &mut self.weight[k],
                        &mut self.elig[k],
                        &mut self.t_eval[k],
                        now,
                    );
                }
                let (n, _) = state.trace_at(now, self.dt_ms, rule.params.tau_n_ms);
                state.entries.clear();
                state.entries.push((now, n));
            }
        }
    }

    /// The weights at the end of the last step: the stored ones, with reward-modulated synapses carried to that
    /// step on copies (reading changes no state, so snapshots do not add evaluation points).
    pub fn current_weights(&self) -> std::borrow::Cow<'_, [f64]> {
        if !self.has_dopamine() || self.last_step < 0 {
            return std::borrow::Cow::Borrowed(&self.weight);
        }
        let mut w = self.weight.clone();
        for (p, (rule, state)) in self.rules.iter().zip(&self.dopamine).enumerate() {
            let (PlasticRule::Dopamine(rule), Some(state)) = (rule, state) else { continue };
            for &k in &state.members {
                let k = k as usize;
                debug_assert_eq!(self.projection[k] as usize, p);
                let (mut c, mut t) = (self.elig[k], self.t_eval[k]);
                advance(&rule.params, state, self.dt_ms, &mut w[k], &mut c, &mut t, self.last_step);
            }
        }
        std::borrow::Cow::Owned(w)
    }
}

/// The reward-modulated state as the kernels hold it (`kernels/cuda/stdp.cu`): per projection `cap` history entries
/// (`step`, `n`; `len` used), a ring of `pend_slots` dopamine spike counts by arrival step, and whether each neuron
/// is one of its dopamine neurons (`source`, projection-major); per synapse the eligibility and evaluation step.
/// Without reward-modulated projections every array has one unused element (buffers are never empty).
#[derive(Clone, Debug, PartialEq)]
pub struct DopamineDevice {
    pub cap: u32,
    pub pend_slots: u32,
    pub step: Vec<i64>,
    pub n: Vec<f64>,
    pub len: Vec<u32>,
    pub pending: Vec<u32>,
    pub source: Vec<u8>,
    pub elig: Vec<f64>,
    pub t_eval: Vec<i64>,
}

impl PlasticSynapses {
    /// The reward-modulated state in the kernels' layout ([`DopamineDevice`]), for `n` neurons.
    pub fn dopamine_device(&self, n: usize) -> DopamineDevice {
        fn dop(r: &PlasticRule) -> Option<&DopamineRule> {
            match r {
                PlasticRule::Dopamine(d) => Some(d),
                PlasticRule::Stdp(_) => None,
            }
        }
        if !self.has_dopamine() {
            return DopamineDevice {
                cap: 1,
                pend_slots: 1,
                step: vec![0],
                n: vec![0.0],
                len: vec![0; self.rules.len().max(1)],
                pending: vec![0],
                source: vec![0],
                elig: vec![0.0],
                t_eval: vec![0],
            };
        }
        // Entries since the last update of every weight: that one and at most one arrival per step.
        let cap = self.rules.iter().filter_map(dop).map(|d| d.update_every_steps as usize + 2).max().unwrap_or(1);
        let pend_slots = self.rules.iter().filter_map(dop).map(|d| d.delay_steps as usize + 1).max().unwrap_or(1);
        let n_proj = self.rules.len();
        let mut out = DopamineDevice {
            cap: cap as u32,
            pend_slots: pend_slots as u32,
            step: vec![0; n_proj * cap],
            n: vec![0.0; n_proj * cap],
            len: vec![0; n_proj],
            pending: vec![0; n_proj * pend_slots],
            source: vec![0; n_proj * n],
            elig: self.elig.clone(),
            t_eval: self.t_eval.clone(),
        };
        for (p, state) in self.dopamine.iter().enumerate() {
            let Some(state) = state else { continue };
            for (e, &(at, v)) in state.entries.iter().take(cap).enumerate() {
                out.step[p * cap + e] = at;
                out.n[p * cap + e] = v;
            }
            out.len[p] = state.entries.len().min(cap) as u32;
            for &(at, count) in &state.pending {
                out.pending[p * pend_slots + at as usize % pend_slots] += count;
            }
            for (i, &s) in state.is_source.iter().enumerate().take(n) {
                out.source[p * n + i] = s as u8;
            }
        }
        out
    }

    /// The state read back from the kernels after step `last_step`: weights (already in place), eligibility,
    /// evaluation steps and the projections' dopamine histories, so that [`PlasticSynapses::current_weights`] reads
    /// what the CPU pass would hold. (Dopamine still in flight stays on the device: reading needs only the
    /// arrivals so far.)
    pub fn set_from_device(&mut self, d: &DopamineDevice, last_step: i64) {
        self.last_step = last_step;
        if !self.has_dopamine() {
            return;
        }
        self.elig.clone_from(&d.elig);
        self.t_eval.clone_from(&d.t_eval);
        let cap = d.cap as usize;
        for (p, state) in self.dopamine.iter_mut().enumerate() {
            let Some(state) = state else { continue };
            state.entries = (0..d.len[p] as usize).map(|e| (d.step[p * cap + e], d.n[p * cap + e])).collect::<Vec<_>>();
        }
    }
}
