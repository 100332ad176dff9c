//! Synapses whose weights change during the run: which chemical synapses learn and by which STDP rule
//! ([`Plasticity`], part of `SimSetup`), their state ([`PlasticSynapses`]: weight, presynaptic trace and last pre
//! spike per synapse; a short history of postsynaptic spikes per target), and the pass a backend runs once per
//! step after the step's spikes are known ([`PlasticSynapses::step`]). The weight arithmetic is
//! `neurotwin_models::stdp`.
//!
//! Timing follows NEST's `stdp_synapse` (Morrison et al. 2008) with the whole synaptic delay `d` dendritic: a pre
//! spike at step `n` pairs with post spikes at steps `m < n − d` (depression, trace evaluated at `n − d`), and a
//! post spike at step `m` pairs with the pre spikes before `m + d` (potentiation, trace evaluated at `m + d`).
//! NEST applies a post spike's potentiation when the next pre spike arrives; here it is applied at step `m + d`,
//! so the weight a pre spike delivers is the same and the weight read between pre spikes already holds it.
//! Within step `n`: first the potentiation of post spikes at `n − d`, then, for each pre spike of step `n`, the
//! depression, the delivery of the new weight (into ring slot `n + d`) and the presynaptic trace update.
//! Deliberate difference: before a synapse's first pre spike nothing is potentiated (NEST's
//! `stdp_nn_symm_synapse` pairs earlier post spikes with a phantom pre spike at t = 0).
//!
//! Reward-modulated STDP (`PlasticRule::Dopamine`, [`dopamine`]): the same pairs change an eligibility trace, and
//! the weight follows it times the dopamine trace of a set of dopamine neurons (module docs there).
//!
//! Bounded memory: the potentiation at step `n` needs the post spikes of steps `n − D .. n − 1` and the
//! depression needs the last post spike before `n − d`, so each target keeps its last `D + 2` post spikes (`D` the
//! largest plastic delay; a neuron spikes at most once per step) instead of NEST's unbounded archive.

use std::sync::Arc;

use neurotwin_connectome::{CompiledNetwork, Synapse, SynapseMatrix};
use neurotwin_models::stdp::{DopamineParams, Pairing, StdpParams, trace_decay as decay};

use crate::error::SimError;
use crate::setup::SimSetup;

pub mod dopamine;

use dopamine::DopamineState;

/// How the synapses of a projection learn.
#[derive(Clone, Debug, PartialEq)]
pub enum PlasticRule {
    /// Pair-based STDP (NEST `stdp_synapse`, `stdp_nn_symm_synapse`).
    Stdp(StdpParams),
    /// Reward-modulated STDP with an eligibility trace and the dopamine of `neurons`.
    Dopamine(DopamineRule),
}

/// A three-factor rule: its parameters, the dopamine neurons whose spikes reach every synapse `delay_steps` later
/// (NEST's volume transmitter), and how often every synapse's weight is brought up to date (`update_every_steps`;
/// weights are also updated at their own synapse's spikes and at every dopamine spike).
#[derive(Clone, Debug, PartialEq)]
pub struct DopamineRule {
    pub params: DopamineParams,
    /// Dopamine neurons (indices, ascending).
    pub neurons: Vec<u32>,
    /// Steps from a dopamine neuron's spike to its effect on the dopamine trace (≥ 1).
    pub delay_steps: u16,
    /// Steps between updates of every weight (≥ 1).
    pub update_every_steps: u32,
}

impl PlasticRule {
    /// Checks the parameters; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        match self {
            PlasticRule::Stdp(r) => r.check(),
            PlasticRule::Dopamine(d) => {
                d.params.check()?;
                if d.delay_steps == 0 {
                    return Err("the dopamine delay must be at least one step".into());
                }
                if d.update_every_steps == 0 {
                    return Err("the update interval must be at least one step".into());
                }
                Ok(())
            }
        }
    }

    /// The weight range `[lo, hi]` the rule keeps (STDP: between 0 and `w_max`, with its sign).
    pub fn bounds(&self) -> (f64, f64) {
        match self {
            PlasticRule::Stdp(r) => (r.w_max.min(0.0), r.w_max.max(0.0)),
            PlasticRule::Dopamine(d) => (d.params.w_min, d.params.w_max),
        }
    }

    /// The postsynaptic trace's time constant (ms).
    pub fn tau_minus_ms(&self) -> f64 {
        match self {
            PlasticRule::Stdp(r) => r.tau_minus_ms,
            PlasticRule::Dopamine(d) => d.params.tau_minus_ms,
        }
    }

    /// Pairing of the postsynaptic trace.
    fn pairing(&self) -> Pairing {
        match self {
            PlasticRule::Stdp(r) => r.pairing,
            PlasticRule::Dopamine(_) => Pairing::AllToAll,
        }
    }

    /// The presynaptic trace's time constant (ms).
    fn tau_plus_ms(&self) -> f64 {
        match self {
            PlasticRule::Stdp(r) => r.tau_plus_ms,
            PlasticRule::Dopamine(d) => d.params.tau_plus_ms,
        }
    }
}

/// Entries of a [`DecayTable`]: intervals up to this many steps are looked up (64 KiB per table).
const DECAY_TABLE_STEPS: usize = 8192;

/// [`decay`] (`neurotwin_models::stdp::trace_decay`) for 0..[`DECAY_TABLE_STEPS`] steps of one time constant, computed once by the same function (so a
/// looked-up value has the bits of a computed one, and of the kernels' `nt_stdp_decay`).
#[derive(Clone, Debug)]
struct DecayTable {
    tau_ms: f64,
    values: Vec<f64>,
}

impl DecayTable {
    fn new(dt_ms: f64, tau_ms: f64) -> Self {
        Self { tau_ms, values: (0..DECAY_TABLE_STEPS as u64).map(|s| decay(s, dt_ms, tau_ms)).collect() }
    }

    #[inline]
    fn get(&self, steps: u64, dt_ms: f64) -> f64 {
        match self.values.get(steps as usize) {
            Some(&v) => v,
            None => decay(steps, dt_ms, self.tau_ms),
        }
    }
}

/// One group of plastic synapses: the chemical synapses from `pre` to `post` on receptor channel `channel`, all
/// following `rule`.
#[derive(Clone, Debug, PartialEq)]
pub struct PlasticProjection {
    pub name: String,
    pub rule: PlasticRule,
    /// Presynaptic neurons (indices); `None`: every neuron.
    pub pre: Option<Vec<u32>>,
    /// Postsynaptic neurons (indices); `None`: every neuron.
    pub post: Option<Vec<u32>>,
    /// Receptor channel; `None`: every channel.
    pub channel: Option<u8>,
}

/// Which synapses learn. A synapse follows the first projection that selects it; the others stay fixed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plasticity {
    pub projections: Vec<PlasticProjection>,
}

impl Plasticity {
    pub fn is_empty(&self) -> bool {
        self.projections.is_empty()
    }

    /// How many of `net`'s chemical synapses these projections select (what [`PlasticSynapses::split`] takes out),
    /// for estimates before a run.
    pub fn count_selected(&self, net: &CompiledNetwork) -> Result<u64, SimError> {
        let select = Selector::new(net.n_neurons(), self)?;
        let mut count = 0;
        for pre in 0..net.n_neurons() as u32 {
            for seg in net.chemical.row(pre) {
                count +=
                    seg.targets.iter().filter(|&&post| select.projection_of(pre, post, seg.receptor).is_some()).count()
                        as u64;
            }
        }
        Ok(count)
    }
}

/// Which projection selects a synapse: per projection, its presynaptic and postsynaptic neurons as masks and its
/// channel.
struct Selector<'a> {
    projections: &'a [PlasticProjection],
    pre: Vec<Vec<bool>>,
    post: Vec<Vec<bool>>,
}

impl<'a> Selector<'a> {
    /// Checks every projection's rule and neuron indices (`n` neurons); errors name the projection.
    fn new(n: usize, plasticity: &'a Plasticity) -> Result<Self, SimError> {
        let projections = &plasticity.projections;
        if projections.len() > u8::MAX as usize {
            return Err(SimError::Setup(format!("{} plastic projections; at most 255", projections.len())));
        }
        let mask = |name: &str, side: &str, ids: &Option<Vec<u32>>| -> Result<Vec<bool>, SimError> {
            let mut keep = vec![ids.is_none(); n];
            for &i in ids.iter().flatten() {
                *keep.get_mut(i as usize).ok_or_else(|| {
                    SimError::Setup(format!(
                        "plastic projection `{name}`: {side} neuron #{i} out of range ({n} neurons)"
                    ))
                })? = true;
            }
            Ok(keep)
        };
        let (mut pre, mut post) = (Vec::new(), Vec::new());
        for p in projections {
            p.rule.check().map_err(|e| SimError::Setup(format!("plastic projection `{}`: {e}", p.name)))?;
            if let PlasticRule::Dopamine(d) = &p.rule
                && let Some(&i) = d.neurons.iter().find(|&&i| i as usize >= n)
            {
                return Err(SimError::Setup(format!(
                    "plastic projection `{}`: dopamine neuron #{i} out of range ({n} neurons)",
                    p.name
                )));
            }
            pre.push(mask(&p.name, "presynaptic", &p.pre)?);
            post.push(mask(&p.name, "postsynaptic", &p.post)?);
        }
        Ok(Self { projections, pre, post })
    }

    /// The first projection selecting synapse `pre -> post` on channel `receptor`.
    fn projection_of(&self, pre: u32, post: u32, receptor: u8) -> Option<usize> {
        (0..self.projections.len()).find(|&p| {
            self.projections[p].channel.is_none_or(|c| c == receptor)
                && self.pre[p][pre as usize]
                && self.post[p][post as usize]
        })
    }
}

/// The network a backend builds its fixed synapses from and the plastic synapses taken out of it: `setup`'s own
/// network and `None` without plasticity. Refuses plasticity with a graded model.
pub fn split_setup(setup: &SimSetup) -> Result<(Arc<CompiledNetwork>, Option<PlasticSynapses>), SimError> {
    if setup.plasticity.is_empty() {
        return Ok((setup.network.clone(), None));
    }
    if !setup.model.is_spiking() {
        return Err(SimError::Setup("plastic synapses (STDP) need a spiking model".into()));
    }
    let (fixed, plastic) = PlasticSynapses::split(&setup.network, &setup.plasticity)?;
    Ok((Arc::new(fixed), Some(plastic)))
}

/// No pre spike yet.
pub const NEVER: i64 = i64::MIN;
/// No history row (the neuron is not the target of a plastic synapse).
pub const NO_ROW: u32 = u32::MAX;
/// `f64`s per rule in [`PlasticSynapses::rule_table`] — the layout `kernels/cuda/stdp.cu` reads.
pub const RULE_WORDS: usize = 18;

/// The plastic synapses of a network and their state, in the layout the CPU pass and the CUDA kernels
/// (`kernels/cuda/stdp.cu`) share: rows by presynaptic neuron (matrix order within a row), columns by
/// postsynaptic neuron and delay, and one ring of recent spikes per target (its history row) with the
/// postsynaptic trace of every projection after each spike.
#[derive(Clone, Debug)]
pub struct PlasticSynapses {
    pub dt_ms: f64,
    /// Name of each projection (the index in `projection`).
    pub names: Vec<String>,
    pub rules: Vec<PlasticRule>,
    /// Synapses of presynaptic neuron `i`: `row_ptr[i] .. row_ptr[i + 1]` (n + 1 entries).
    pub row_ptr: Vec<u32>,
    pub pre: Vec<u32>,
    pub post: Vec<u32>,
    /// Delay (steps, ≥ 1).
    pub delay: Vec<u16>,
    /// Receptor channel.
    pub channel: Vec<u8>,
    /// Projection index.
    pub projection: Vec<u8>,
    /// Current weight (model's synaptic unit).
    pub weight: Vec<f64>,
    /// Presynaptic trace K₊ just after the last pre spike (all-to-all pairing).
    pub k_plus: Vec<f64>,
    /// Step of the last pre spike ([`NEVER`]: none yet).
    pub last_pre: Vec<i64>,
    /// Synapses onto neuron `j`, by delay then synapse: `col_syn[col_ptr[j] .. col_ptr[j + 1]]` (n + 1 entries).
    pub col_ptr: Vec<u32>,
    pub col_syn: Vec<u32>,
    /// History row of each neuron ([`NO_ROW`]: not a target) and the neuron of each row.
    pub hist_row_of: Vec<u32>,
    pub hist_neuron: Vec<u32>,
    /// Entries per row: the largest plastic delay + 2 (module docs).
    pub hist_cap: u32,
    /// `hist_steps[row · cap + e]`: step of entry `e`; `hist_k[(p · rows + row) · cap + e]`: projection `p`'s K₋
    /// just after it; `hist_len[row]` entries held, `hist_head[row]` the next written.
    pub hist_steps: Vec<i64>,
    pub hist_k: Vec<f64>,
    pub hist_len: Vec<u32>,
    pub hist_head: Vec<u32>,
    /// Largest plastic delay (steps).
    pub max_delay: u16,
    /// Targets of plastic synapses that spiked in step `s`: `recent[s mod (max_delay + 1)]` (the CPU pass's
    /// shortcut; the kernels scan the history rows instead).
    recent: Vec<Vec<u32>>,
    /// Reward-modulated projections only (empty otherwise): each synapse's eligibility trace and the step its
    /// weight and eligibility were last evaluated at; each projection's dopamine.
    elig: Vec<f64>,
    t_eval: Vec<i64>,
    dopamine: Vec<Option<DopamineState>>,
    /// The last step processed (−1 before the first).
    last_step: i64,
    /// Per projection: the decays of its presynaptic and postsynaptic traces.
    decay_plus: Vec<DecayTable>,
    decay_minus: Vec<DecayTable>,
}

impl PlasticSynapses {
    /// Splits the chemical synapses of `net` into the fixed ones (the returned network, otherwise unchanged) and
    /// the plastic ones selected by `plasticity`. Errors name the projection: an initial weight outside
    /// [0, `w_max`], a projection that selects nothing, more than 255 projections, a neuron out of range.
    pub fn split(net: &CompiledNetwork, plasticity: &Plasticity) -> Result<(CompiledNetwork, Self), SimError> {
        let n = net.n_neurons();
        let m = &net.chemical;
        let projections = &plasticity.projections;
        let select = Selector::new(n, plasticity)?;
        let mut fixed = Vec::new();
        let mut s = PlasticSynapses {
            dt_ms: net.dt_ms,
            names: projections.iter().map(|p| p.name.clone()).collect(),
            rules: projections.iter().map(|p| p.rule.clone()).collect(),
            row_ptr: vec![0; n + 1],
            pre: Vec::new(),
            post: Vec::new(),
            delay: Vec::new(),
            channel: Vec::new(),
            projection: Vec::new(),
            weight: Vec::new(),
            k_plus: Vec::new(),
            last_pre: Vec::new(),
            col_ptr: vec![0; n + 1],
            col_syn: Vec::new(),
            hist_row_of: vec![NO_ROW; n],
            hist_neuron: Vec::new(),
            hist_cap: 0,
            hist_steps: Vec::new(),
            hist_k: Vec::new(),
            hist_len: Vec::new(),
            hist_head: Vec::new(),
            max_delay: 0,
            recent: Vec::new(),
            elig: Vec::new(),
            t_eval: Vec::new(),
            dopamine: Vec::new(),
            last_step: -1,
            decay_plus: projections.iter().map(|p| DecayTable::new(net.dt_ms, p.rule.tau_plus_ms())).collect(),
            decay_minus: projections.iter().map(|p| DecayTable::new(net.dt_ms, p.rule.tau_minus_ms())).collect(),
        };
        for pre in 0..n as u32 {
            for seg in m.row(pre) {
                for (k, &post) in seg.targets.iter().enumerate() {
                    let w = seg.weights.get(k);
                    match select.projection_of(pre, post, seg.receptor) {
                        None => fixed.push(Synapse { pre, post, weight: w, delay: seg.delay, receptor: seg.receptor }),
                        Some(p) => {
                            let (lo, hi) = projections[p].rule.bounds();
                            if !(lo..=hi).contains(&(w as f64)) {
                                let (range, fix) = match &projections[p].rule {
                                    PlasticRule::Stdp(r) => (
                                        format!("[0, w_max = {}]", r.w_max),
                                        "STDP keeps a weight between 0 and w_max, with w_max's sign; select only \
                                         synapses of that sign (e.g. by `receptor`) or change `w_max`",
                                    ),
                                    PlasticRule::Dopamine(_) => {
                                        (format!("[w_min = {lo}, w_max = {hi}]"), "change `w_min` or `w_max`")
                                    }
                                };
                                return Err(SimError::Setup(format!(
                                    "plastic projection `{}`: synapse {} -> {} has weight {w}, outside {range} ({fix})",
                                    projections[p].name,
                                    net.neurons[pre as usize].name,
                                    net.neurons[post as usize].name,
                                )));
                            }
                            s.pre.push(pre);
                            s.post.push(post);
                            s.delay.push(seg.delay);
                            s.channel.push(seg.receptor);
                            s.projection.push(p as u8);
                            s.weight.push(w as f64);
                            s.max_delay = s.max_delay.max(seg.delay);
                        }
                    }
                }
            }
            s.row_ptr[pre as usize + 1] = u32::try_from(s.pre.len())
                .map_err(|_| SimError::Setup("more than 2^32 - 1 plastic synapses".into()))?;
        }
        for (p, proj) in projections.iter().enumerate() {
            if !s.projection.contains(&(p as u8)) {
                return Err(SimError::Setup(format!(
                    "plastic projection `{}` selects no synapse (check its pre, post and receptor)",
                    proj.name
                )));
            }
        }
        let n_syn = s.pre.len();
        s.k_plus = vec![0.0; n_syn];
        s.last_pre = vec![NEVER; n_syn];
        // Columns: synapses onto each neuron, by delay, then synapse order.
        for &j in &s.post {
            s.col_ptr[j as usize + 1] += 1;
        }
        for j in 0..n {
            s.col_ptr[j + 1] += s.col_ptr[j];
        }
        let mut col: Vec<u32> = (0..n_syn as u32).collect();
        col.sort_by_key(|&k| (s.post[k as usize], s.delay[k as usize], k));
        s.col_syn = col;
        // One history row per target, in neuron order.
        for j in 0..n {
            if s.col_ptr[j] != s.col_ptr[j + 1] {
                s.hist_row_of[j] = s.hist_neuron.len() as u32;
                s.hist_neuron.push(j as u32);
            }
        }
        let rows = s.hist_neuron.len();
        s.hist_cap = s.max_delay as u32 + 2;
        let cap = s.hist_cap as usize;
        s.hist_steps = vec![NEVER; rows * cap];
        s.hist_k = vec![0.0; projections.len() * rows * cap];
        s.hist_len = vec![0; rows];
        s.hist_head = vec![0; rows];
        s.recent = vec![Vec::new(); s.max_delay as usize + 1];
        s.init_dopamine(n);
        let chemical = SynapseMatrix::from_synapses(m.n_pre, m.n_post, fixed)
            .map_err(|e| SimError::Setup(format!("the fixed synapses after taking out the plastic ones: {e}")))?;
        let fixed_net = CompiledNetwork {
            name: net.name.clone(),
            provenance: net.provenance.clone(),
            neurons: net.neurons.clone(),
            receptors: net.receptors.clone(),
            chemical,
            gap: net.gap.clone(),
            dt_ms: net.dt_ms,
            report: net.report.clone(),
            held_targets: net.held_targets.clone(),
        };
        Ok((fixed_net, s))
    }

    /// Number of plastic synapses.
    pub fn len(&self) -> usize {
        self.pre.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pre.is_empty()
    }

    /// Largest delay of a plastic synapse (steps).
    pub fn max_delay(&self) -> u16 {
        self.max_delay
    }

    /// The largest |w| a synapse onto each neuron can reach, summed per neuron (`|w_max|` per synapse): the
    /// plastic part of the delivery buffers' range.
    pub fn max_input_per_target(&self, n: usize) -> Vec<f64> {
        let mut total = vec![0.0; n];
        for (k, &j) in self.post.iter().enumerate() {
            let (lo, hi) = self.rules[self.projection[k] as usize].bounds();
            total[j as usize] += lo.abs().max(hi.abs());
        }
        total
    }

    /// The rules as the kernels read them (`kernels/cuda/stdp.cu`): [`RULE_WORDS`] `f64`s per projection — τ₊, τ₋,
    /// λ, α, μ₊, μ₋, w_max, pairing (0 all-to-all, 1 nearest), kind (0 pair-based, 1 reward-modulated), then for
    /// reward-modulated rules a₊, a₋, τ_c, τ_n, b, w_min, w_max, the dopamine delay and the update interval (steps).
    pub fn rule_table(&self) -> Vec<f64> {
        let mut table = Vec::with_capacity(self.rules.len() * RULE_WORDS);
        for rule in &self.rules {
            match rule {
                PlasticRule::Stdp(r) => {
                    let pairing = match r.pairing {
                        Pairing::AllToAll => 0.0,
                        Pairing::Nearest => 1.0,
                    };
                    table.extend([r.tau_plus_ms, r.tau_minus_ms, r.lambda, r.alpha, r.mu_plus, r.mu_minus, r.w_max]);
                    table.extend([pairing, 0.0]);
                    table.extend([0.0; 9]);
                }
                PlasticRule::Dopamine(d) => {
                    let p = &d.params;
                    table.extend([p.tau_plus_ms, p.tau_minus_ms, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
                    table.extend([p.a_plus, p.a_minus, p.tau_c_ms, p.tau_n_ms, p.b, p.w_min, p.w_max]);
                    table.extend([d.delay_steps as f64, d.update_every_steps as f64]);
                }
            }
        }
        table
    }

    /// Neuron `j` (a target) spiked at `step`: a new entry in its history row with every projection's
    /// K₋ ← K₋·e^{−Δt/τ₋} + 1 (NEST's `ArchivingNode::set_spiketime`). Kernel `stdp_post_spikes`.
    fn push_post_spike(&mut self, j: u32, step: i64) {
        let row = self.hist_row_of[j as usize] as usize;
        let (cap, rows) = (self.hist_cap as usize, self.hist_neuron.len());
        let head = self.hist_head[row] as usize;
        let last = (head + cap - 1) % cap;
        let first = self.hist_len[row] == 0;
        let since = if first { 0 } else { (step - self.hist_steps[row * cap + last]) as u64 };
        for p in 0..self.rules.len() {
            let at = (p * rows + row) * cap;
            self.hist_k[at + head] =
                if first { 1.0 } else { self.hist_k[at + last] * self.decay_minus[p].get(since, self.dt_ms) + 1.0 };
        }
        self.hist_steps[row * cap + head] = step;
        self.hist_head[row] = ((head + 1) % cap) as u32;
        self.hist_len[row] = (self.hist_len[row] + 1).min(cap as u32);
    }

    /// Projection `p`'s postsynaptic trace of target `j` at step `t` from its spikes strictly before `t` (NEST's
    /// `get_K_value`; the nearest-neighbour trace counts only the last of them); 0 before any.
    fn trace_before(&self, p: usize, j: u32, t: i64) -> f64 {
        let row = self.hist_row_of[j as usize] as usize;
        let (cap, rows) = (self.hist_cap as usize, self.hist_neuron.len());
        let head = self.hist_head[row] as usize;
        for back in 1..=self.hist_len[row] as usize {
            let e = (head + cap - back) % cap;
            let m = self.hist_steps[row * cap + e];
            if m < t {
                let rule = &self.rules[p];
                let decay = self.decay_minus[p].get((t - m) as u64, self.dt_ms);
                return match rule.pairing() {
                    Pairing::AllToAll => self.hist_k[(p * rows + row) * cap + e] * decay,
                    Pairing::Nearest => decay,
                };
            }
        }
        0.0
    }

    /// Potentiation of synapse `k` by a post spike that reaches it now (`step`), from the pre spikes before this
    /// step (none yet: nothing). Kernel `stdp_potentiate`.
    fn potentiate(&mut self, k: usize, step: i64) {
        let last = self.last_pre[k];
        if last == NEVER {
            return;
        }
        let rule = &self.rules[self.projection[k] as usize];
        let decay = self.decay_plus[self.projection[k] as usize].get((step - last) as u64, self.dt_ms);
        match rule {
            PlasticRule::Stdp(rule) => {
                let k_plus = match rule.pairing {
                    Pairing::AllToAll => self.k_plus[k] * decay,
                    Pairing::Nearest => decay,
                };
                self.weight[k] = rule.facilitate(self.weight[k], k_plus);
            }
            PlasticRule::Dopamine(rule) => {
                let step_c = rule.params.a_plus * (self.k_plus[k] * decay);
                self.advance_dopamine(k, step);
                self.elig[k] += step_c;
            }
        }
    }

    /// The step's plasticity after its spikes `spikes` (ascending) are known: the targets' histories, the
    /// potentiation by the post spikes of `step − d`, then for each pre spike the depression and
    /// `deliver(post, channel, delay, weight)` of the new weight, then the presynaptic trace (module docs). Each
    /// synapse is updated at most once per phase, so the order within a phase does not matter: the kernels, which
    /// run a phase in parallel, give the same bits.
    pub fn step(&mut self, step: u64, spikes: &[u32], mut deliver: impl FnMut(u32, u8, u16, f64)) {
        let now = step as i64;
        let d_slots = self.max_delay as usize + 1;
        self.dopamine_arrivals(now);
        // The post spikes of this step: history and the list the potentiation of later steps reads.
        let mut mine = std::mem::take(&mut self.recent[step as usize % d_slots]);
        mine.clear();
        for &j in spikes {
            if self.hist_row_of[j as usize] != NO_ROW {
                mine.push(j);
                self.push_post_spike(j, now);
            }
        }
        self.recent[step as usize % d_slots] = mine;
        // Potentiation: post spikes of step − d pair with the pre spikes before this step.
        for d in 1..=(self.max_delay as usize).min(step as usize) {
            let list = std::mem::take(&mut self.recent[(step as usize - d) % d_slots]);
            for &j in &list {
                let (a, b) = (self.col_ptr[j as usize] as usize, self.col_ptr[j as usize + 1] as usize);
                let col = &self.col_syn[a..b];
                let lo = col.partition_point(|&k| (self.delay[k as usize] as usize) < d);
                let hi = col.partition_point(|&k| (self.delay[k as usize] as usize) <= d);
                for c in a + lo..a + hi {
                    let k = self.col_syn[c] as usize;
                    self.potentiate(k, now);
                }
            }
            self.recent[(step as usize - d) % d_slots] = list;
        }
        // Pre spikes: depression, delivery of the new weight, presynaptic trace.
        for &i in spikes {
            for k in self.row_ptr[i as usize] as usize..self.row_ptr[i as usize + 1] as usize {
                let p = self.projection[k] as usize;
                let k_minus = self.trace_before(p, self.post[k], now - self.delay[k] as i64);
                match &self.rules[p] {
                    PlasticRule::Stdp(rule) => self.weight[k] = rule.depress(self.weight[k], k_minus),
                    PlasticRule::Dopamine(rule) => {
                        let step_c = rule.params.a_minus * k_minus;
                        self.advance_dopamine(k, now);
                        self.elig[k] -= step_c;
                    }
                }
                deliver(self.post[k], self.channel[k], self.delay[k], self.weight[k]);
                let last = self.last_pre[k];
                self.k_plus[k] = if last == NEVER {
                    1.0
                } else {
                    self.k_plus[k] * self.decay_plus[p].get((now - last) as u64, self.dt_ms) + 1.0
                };
                self.last_pre[k] = now;
            }
        }
        self.dopamine_end_of_step(now, spikes);
        self.last_step = now;
    }
}
