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
//! Bounded memory: the potentiation at step `n` needs the post spikes of steps `n − D .. n − 1` and the
//! depression needs the last post spike before `n − d`, so each target keeps its last `D + 2` post spikes (`D` the
//! largest plastic delay; a neuron spikes at most once per step) instead of NEST's unbounded archive.

use neurotwin_connectome::{CompiledNetwork, Synapse, SynapseMatrix};
use neurotwin_models::stdp::{Pairing, StdpParams};

use crate::error::SimError;

/// One group of plastic synapses: the chemical synapses from `pre` to `post` on receptor channel `channel`, all
/// following `rule`.
#[derive(Clone, Debug, PartialEq)]
pub struct PlasticProjection {
    pub name: String,
    pub rule: StdpParams,
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

/// No pre spike yet.
const NEVER: i64 = i64::MIN;

/// The last post spikes of each target of one projection (a ring per target) with the postsynaptic trace K₋
/// just after each of them.
#[derive(Clone, Debug)]
struct PostHistory {
    rule: StdpParams,
    /// History row of each neuron (`u32::MAX`: not a target of this projection).
    row_of: Vec<u32>,
    cap: usize,
    /// `steps[row · cap + k]`, `k_minus[row · cap + k]`: ring entries; `len[row]` held, `head[row]` next write.
    steps: Vec<i64>,
    k_minus: Vec<f64>,
    len: Vec<u32>,
    head: Vec<u32>,
}

impl PostHistory {
    fn new(rule: StdpParams, targets: &[bool], cap: usize) -> Self {
        let mut row_of = vec![u32::MAX; targets.len()];
        let mut rows = 0u32;
        for (j, _) in targets.iter().enumerate().filter(|(_, t)| **t) {
            row_of[j] = rows;
            rows += 1;
        }
        let rows = rows as usize;
        Self {
            rule,
            row_of,
            cap,
            steps: vec![NEVER; rows * cap],
            k_minus: vec![0.0; rows * cap],
            len: vec![0; rows],
            head: vec![0; rows],
        }
    }

    /// Neuron `j` spiked at `step`: K₋ ← K₋·e^{−Δt/τ₋} + 1 (NEST's `ArchivingNode::set_spiketime`).
    fn push(&mut self, j: u32, step: i64, dt_ms: f64) {
        let row = self.row_of[j as usize];
        if row == u32::MAX {
            return;
        }
        let (row, cap) = (row as usize, self.cap);
        let k = if self.len[row] == 0 {
            1.0
        } else {
            let last = (self.head[row] as usize + cap - 1) % cap;
            let (s, k) = (self.steps[row * cap + last], self.k_minus[row * cap + last]);
            k * self.rule.decay_minus((step - s) as u64, dt_ms) + 1.0
        };
        let at = row * cap + self.head[row] as usize;
        self.steps[at] = step;
        self.k_minus[at] = k;
        self.head[row] = ((self.head[row] as usize + 1) % cap) as u32;
        self.len[row] = (self.len[row] + 1).min(cap as u32);
    }

    /// The postsynaptic trace of neuron `j` at step `t` from its spikes strictly before `t` (NEST's
    /// `get_K_value`; the nearest-neighbour trace counts only the last of them): 0 before any.
    fn trace_before(&self, j: u32, t: i64, dt_ms: f64) -> f64 {
        let row = self.row_of[j as usize] as usize;
        let cap = self.cap;
        for back in 1..=self.len[row] as usize {
            let at = row * cap + (self.head[row] as usize + cap - back) % cap;
            let s = self.steps[at];
            if s < t {
                let decay = self.rule.decay_minus((t - s) as u64, dt_ms);
                return match self.rule.pairing {
                    Pairing::AllToAll => self.k_minus[at] * decay,
                    Pairing::Nearest => decay,
                };
            }
        }
        0.0
    }
}

/// The plastic synapses of a network and their state, in rows by presynaptic neuron (matrix order within a row).
#[derive(Clone, Debug)]
pub struct PlasticSynapses {
    dt_ms: f64,
    /// Name of each projection (the index in `projection`).
    pub names: Vec<String>,
    rules: Vec<StdpParams>,
    /// Synapses of presynaptic neuron `i`: `row_ptr[i] .. row_ptr[i + 1]`.
    row_ptr: Vec<usize>,
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
    k_plus: Vec<f64>,
    /// Step of the last pre spike ([`NEVER`]: none yet).
    last_pre: Vec<i64>,
    /// Synapses onto neuron `j`, by delay: `col_syn[col_ptr[j] .. col_ptr[j + 1]]`.
    col_ptr: Vec<usize>,
    col_syn: Vec<u32>,
    history: Vec<PostHistory>,
    /// Largest plastic delay (steps).
    max_delay: usize,
    /// Targets of plastic synapses that spiked in step `s`: `recent[s mod (max_delay + 1)]`.
    recent: Vec<Vec<u32>>,
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
            rules: projections.iter().map(|p| p.rule).collect(),
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
            history: Vec::new(),
            max_delay: 0,
            recent: Vec::new(),
        };
        for pre in 0..n as u32 {
            for seg in m.row(pre) {
                for (k, &post) in seg.targets.iter().enumerate() {
                    let w = seg.weights.get(k);
                    match select.projection_of(pre, post, seg.receptor) {
                        None => fixed.push(Synapse { pre, post, weight: w, delay: seg.delay, receptor: seg.receptor }),
                        Some(p) => {
                            let rule = &projections[p].rule;
                            if !rule.in_bounds(w as f64) {
                                return Err(SimError::Setup(format!(
                                    "plastic projection `{}`: synapse {} -> {} has weight {w}, outside [0, w_max = {}] \
                                     (STDP keeps a weight between 0 and w_max, with w_max's sign); select only \
                                     synapses of that sign (e.g. by `receptor`) or change `w_max`",
                                    projections[p].name,
                                    net.neurons[pre as usize].name,
                                    net.neurons[post as usize].name,
                                    rule.w_max
                                )));
                            }
                            s.pre.push(pre);
                            s.post.push(post);
                            s.delay.push(seg.delay);
                            s.channel.push(seg.receptor);
                            s.projection.push(p as u8);
                            s.weight.push(w as f64);
                            s.max_delay = s.max_delay.max(seg.delay as usize);
                        }
                    }
                }
            }
            s.row_ptr[pre as usize + 1] = s.pre.len();
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
        let cap = s.max_delay + 2;
        for (p, proj) in projections.iter().enumerate() {
            let mut targets = vec![false; n];
            for k in (0..n_syn).filter(|&k| s.projection[k] as usize == p) {
                targets[s.post[k] as usize] = true;
            }
            s.history.push(PostHistory::new(proj.rule, &targets, cap));
        }
        s.recent = vec![Vec::new(); s.max_delay + 1];
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
        self.max_delay as u16
    }

    /// The largest |w| a synapse onto each neuron can reach, summed per neuron (`|w_max|` per synapse): the
    /// plastic part of the delivery buffers' range.
    pub fn max_input_per_target(&self, n: usize) -> Vec<f64> {
        let mut total = vec![0.0; n];
        for (k, &j) in self.post.iter().enumerate() {
            total[j as usize] += self.rules[self.projection[k] as usize].w_max.abs();
        }
        total
    }

    /// The step's plasticity after its spikes `spikes` (ascending) are known: potentiation by the post spikes
    /// of `step − d`, then for each pre spike the depression and `deliver(post, channel, delay, weight)` of the
    /// new weight, then the presynaptic trace (module docs). The same spikes give the same weights whatever the
    /// backend or thread count: every synapse is updated by one sequential loop in a fixed order.
    pub fn step(&mut self, step: u64, spikes: &[u32], mut deliver: impl FnMut(u32, u8, u16, f64)) {
        let now = step as i64;
        let dt = self.dt_ms;
        let d_slots = self.max_delay + 1;
        // The post spikes of this step: history and the list the potentiation of later steps reads.
        let mut mine = std::mem::take(&mut self.recent[step as usize % d_slots]);
        mine.clear();
        for &j in spikes {
            if self.col_ptr[j as usize] != self.col_ptr[j as usize + 1] {
                mine.push(j);
                for h in &mut self.history {
                    h.push(j, now, dt);
                }
            }
        }
        self.recent[step as usize % d_slots] = mine;
        // Potentiation: post spikes of step − d pair with the pre spikes before this step.
        for d in 1..=self.max_delay.min(step as usize) {
            let list = &self.recent[(step as usize - d) % d_slots];
            for &j in list {
                let col = &self.col_syn[self.col_ptr[j as usize]..self.col_ptr[j as usize + 1]];
                let a = col.partition_point(|&k| (self.delay[k as usize] as usize) < d);
                let b = col.partition_point(|&k| (self.delay[k as usize] as usize) <= d);
                for &k in &col[a..b] {
                    let k = k as usize;
                    let last = self.last_pre[k];
                    if last == NEVER {
                        continue;
                    }
                    let rule = &self.rules[self.projection[k] as usize];
                    let decay = rule.decay_plus((now - last) as u64, dt);
                    let k_plus = match rule.pairing {
                        Pairing::AllToAll => self.k_plus[k] * decay,
                        Pairing::Nearest => decay,
                    };
                    self.weight[k] = rule.facilitate(self.weight[k], k_plus);
                }
            }
        }
        // Pre spikes: depression, delivery of the new weight, presynaptic trace.
        for &i in spikes {
            for k in self.row_ptr[i as usize]..self.row_ptr[i as usize + 1] {
                let p = self.projection[k] as usize;
                let rule = &self.rules[p];
                let d = self.delay[k] as i64;
                let k_minus = self.history[p].trace_before(self.post[k], now - d, dt);
                self.weight[k] = rule.depress(self.weight[k], k_minus);
                deliver(self.post[k], self.channel[k], self.delay[k], self.weight[k]);
                let last = self.last_pre[k];
                self.k_plus[k] =
                    if last == NEVER { 1.0 } else { self.k_plus[k] * rule.decay_plus((now - last) as u64, dt) + 1.0 };
                self.last_pre[k] = now;
            }
        }
    }
}
