//! How well predicted responses reproduce a measured propagation map, with anatomy-only baselines.
//!
//! Pairs scored: measured (stimulated j, responder i) pairs with j ≠ i, both neurons in the connectome and
//! j simulated. A pair is a *responder* when its q-value is below the threshold (Randi et al. 2023 use
//! q < 0.05). Metrics:
//! - `auc_model`: ROC AUC of the predicted |response| for telling responders from non-responders;
//! - `auc_direct`: the same for the direct anatomical connection strength j → i (|chemical weight| + gap
//!   conductance), and `auc_hops` for minus the number of synaptic hops from j to i (chemical and gap
//!   junctions): what wiring alone predicts, without dynamics;
//! - `sign_agreement`: among responders with a non-zero prediction, the fraction whose predicted sign equals
//!   the measured sign of ΔF/F;
//! - `spearman_amplitude`: Spearman correlation of predicted and measured response among responders.

use std::collections::{HashMap, VecDeque};

use neurotwin_connectome::CompiledNetwork;
use neurotwin_imaging::stats::{roc_auc, spearman};
use serde::Serialize;

use super::data::AtlasStrain;
use super::experiment::PredictedResponses;

/// One scored pair.
#[derive(Clone, Debug, Serialize)]
pub struct ScoredPair {
    pub stimulated: String,
    pub responder: String,
    pub measured_dff: f64,
    pub q: f64,
    pub is_responder: bool,
    pub predicted: f64,
    pub direct_strength: f64,
    /// Synaptic hops from the stimulated neuron (`None`: unreachable).
    pub hops: Option<u32>,
}

/// The scores of one strain.
#[derive(Clone, Debug, Serialize)]
pub struct StrainScore {
    pub strain: String,
    pub q_threshold: f64,
    pub n_pairs: usize,
    pub n_responders: usize,
    pub auc_model: Option<f64>,
    pub auc_direct: Option<f64>,
    pub auc_hops: Option<f64>,
    pub sign_agreement: Option<f64>,
    pub n_sign_pairs: usize,
    pub spearman_amplitude: Option<f64>,
    /// Atlas neurons not found in the connectome (their pairs are left out).
    pub unmatched_neurons: Vec<String>,
    pub pairs: Vec<ScoredPair>,
}

/// Anatomy of the compiled network as seen by the baselines.
pub struct Anatomy {
    /// `strength[(j, i)]`: Σ |chemical weight| of j → i plus gap conductance between them.
    strength: HashMap<(u32, u32), f64>,
    /// Out-neighbours of each neuron (chemical targets and gap partners).
    next: Vec<Vec<u32>>,
}

impl Anatomy {
    pub fn new(net: &CompiledNetwork) -> Self {
        let n = net.n_neurons();
        let mut strength: HashMap<(u32, u32), f64> = HashMap::new();
        let mut next = vec![Vec::new(); n];
        let m = &net.chemical;
        for j in 0..n as u32 {
            for seg in m.row(j) {
                for (k, &i) in seg.targets.iter().enumerate() {
                    *strength.entry((j, i)).or_default() += (seg.weights.get(k) as f64).abs();
                    next[j as usize].push(i);
                }
            }
        }
        let g = &net.gap;
        if !g.is_empty() {
            for i in 0..n {
                for k in g.row_ptr[i] as usize..g.row_ptr[i + 1] as usize {
                    let j = g.partner[k];
                    *strength.entry((j, i as u32)).or_default() += g.conductance[k] as f64;
                    next[j as usize].push(i as u32);
                }
            }
        }
        for v in &mut next {
            v.sort_unstable();
            v.dedup();
        }
        Self { strength, next }
    }

    /// Direct strength of j → i (0 without a connection).
    pub fn direct(&self, j: u32, i: u32) -> f64 {
        self.strength.get(&(j, i)).copied().unwrap_or(0.0)
    }

    /// Hops from `j` to every neuron (breadth-first; `None` when unreachable).
    pub fn hops_from(&self, j: u32) -> Vec<Option<u32>> {
        let mut d = vec![None; self.next.len()];
        d[j as usize] = Some(0);
        let mut q = VecDeque::from([j]);
        while let Some(u) = q.pop_front() {
            let du = d[u as usize].unwrap_or(0);
            for &v in &self.next[u as usize] {
                if d[v as usize].is_none() {
                    d[v as usize] = Some(du + 1);
                    q.push_back(v);
                }
            }
        }
        d
    }
}

/// Scores `predicted` against one strain of the atlas; `names[i]` is connectome neuron i's name.
pub fn score_strain(
    strain: &AtlasStrain,
    predicted: &PredictedResponses,
    names: &[String],
    anatomy: &Anatomy,
    q_threshold: f64,
) -> StrainScore {
    let index: HashMap<String, u32> =
        names.iter().enumerate().map(|(i, n)| (n.to_ascii_uppercase(), i as u32)).collect();
    let find = |name: &str| index.get(&name.to_ascii_uppercase()).copied();
    let row_of: HashMap<u32, usize> = predicted.stimulated.iter().enumerate().map(|(k, &j)| (j, k)).collect();
    let mut hops_cache: HashMap<u32, Vec<Option<u32>>> = HashMap::new();
    let mut unmatched: Vec<String> = Vec::new();
    let mut pairs = Vec::new();
    for p in &strain.pairs {
        let (Some(j), Some(i)) = (find(&p.stimulated), find(&p.responder)) else {
            for name in [&p.stimulated, &p.responder] {
                if find(name).is_none() && !unmatched.contains(name) {
                    unmatched.push(name.clone());
                }
            }
            continue;
        };
        let Some(&k) = row_of.get(&j) else { continue };
        if i == j {
            continue;
        }
        let hops = hops_cache.entry(j).or_insert_with(|| anatomy.hops_from(j))[i as usize];
        pairs.push(ScoredPair {
            stimulated: p.stimulated.clone(),
            responder: p.responder.clone(),
            measured_dff: p.dff,
            q: p.q,
            is_responder: p.q < q_threshold,
            predicted: predicted.response[k][i as usize],
            direct_strength: anatomy.direct(j, i),
            hops,
        });
    }
    unmatched.sort();
    let positive: Vec<bool> = pairs.iter().map(|p| p.is_responder).collect();
    let col = |f: &dyn Fn(&ScoredPair) -> f64| pairs.iter().map(f).collect::<Vec<f64>>();
    let auc_model = roc_auc(&col(&|p| p.predicted.abs()), &positive);
    let auc_direct = roc_auc(&col(&|p| p.direct_strength), &positive);
    let auc_hops = roc_auc(&col(&|p| p.hops.map_or(-1e9, |h| -(h as f64))), &positive);
    let responders: Vec<&ScoredPair> = pairs.iter().filter(|p| p.is_responder).collect();
    let signed: Vec<&&ScoredPair> = responders.iter().filter(|p| p.predicted != 0.0 && p.measured_dff != 0.0).collect();
    let agree = signed.iter().filter(|p| (p.predicted > 0.0) == (p.measured_dff > 0.0)).count();
    let sign_agreement = (!signed.is_empty()).then(|| agree as f64 / signed.len() as f64);
    let spearman_amplitude = spearman(
        &responders.iter().map(|p| p.predicted).collect::<Vec<_>>(),
        &responders.iter().map(|p| p.measured_dff).collect::<Vec<_>>(),
    );
    StrainScore {
        strain: strain.name.clone(),
        q_threshold,
        n_pairs: pairs.len(),
        n_responders: responders.len(),
        auc_model,
        auc_direct,
        auc_hops,
        sign_agreement,
        n_sign_pairs: signed.len(),
        spearman_amplitude,
        unmatched_neurons: unmatched,
        pairs,
    }
}
