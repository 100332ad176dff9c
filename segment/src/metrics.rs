//! Segmentation and synapse metrics with the CREMI challenge's definitions (<https://cremi.org>,
//! `cremi_python/cremi/evaluation`):
//!
//! - **VOI** (variation of information, Meilă 2007, J Multivar Anal 98:873), split into
//!   *split* = H(seg | gt) and *merge* = H(gt | seg), conditional entropies in **bits** over the voxels
//!   whose ground-truth label is not 0 (ground-truth background ignored; the segmentation's label 0 is
//!   an ordinary label). Lower is better; 0 = identical up to relabelling.
//! - **Adapted Rand error** (SNEMI3D / CREMI; Arganda-Carreras et al. 2015, Front Neuroanat 9:142):
//!   `1 - F` of Rand precision and recall from the contingency table `n_ij` (gt label i ≠ 0, seg label
//!   j), exactly as CREMI's `adapted_rand`: with `a_i = Σ_j n_ij` (all seg labels), `b_j = Σ_{i} n_ij`
//!   (seg j ≠ 0), `c = Σ_i n_i0` and `N` = all voxels, precision = `(Σ n_ij² + c/N) / (Σ b_j² + c/N)`,
//!   recall = `(Σ n_ij² + c/N) / Σ a_i²` (sums of n_ij² over seg j ≠ 0).
//! - **Synapse detection** precision / recall / F1: predicted and true synapse positions (nm) are matched
//!   one-to-one greedily in order of increasing distance within a radius (as CREMI's cleft/partner
//!   evaluation matches within a tolerance).
//!
//! All are computed from a contingency table held in a `HashMap`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::SegmentError;
use crate::volume::Volume;

/// Segmentation scores against ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentationScores {
    /// H(seg | gt) in bits: over-segmentation.
    pub voi_split: f64,
    /// H(gt | seg) in bits: under-segmentation.
    pub voi_merge: f64,
    /// 1 − Rand F-score (CREMI's adapted Rand error).
    pub adapted_rand_error: f64,
    pub rand_precision: f64,
    pub rand_recall: f64,
    /// Voxels with a non-zero ground-truth label (the ones VOI counts).
    pub voxels: u64,
}

impl SegmentationScores {
    pub fn voi(&self) -> f64 {
        self.voi_split + self.voi_merge
    }
}

/// Contingency counts n[(gt, seg)] over all voxels (gt 0 included; callers filter).
pub fn contingency(seg: &[u64], gt: &[u64]) -> HashMap<(u64, u64), u64> {
    let mut t = HashMap::new();
    add_contingency(&mut t, seg, gt);
    t
}

/// Adds the counts of `seg` against `gt` to `t` (runs of equal pairs take one map update each), so that a
/// table can be accumulated block by block.
pub fn add_contingency(t: &mut HashMap<(u64, u64), u64>, seg: &[u64], gt: &[u64]) {
    let mut pairs = seg.iter().zip(gt);
    let Some((&s0, &g0)) = pairs.next() else { return };
    let mut run = ((g0, s0), 1u64);
    for (&s, &g) in pairs {
        if (g, s) == run.0 {
            run.1 += 1;
        } else {
            *t.entry(run.0).or_insert(0) += run.1;
            run = ((g, s), 1);
        }
    }
    *t.entry(run.0).or_insert(0) += run.1;
}

/// Scores `seg` against `gt` (same shape). Fails on a shape mismatch or when `gt` has no labelled voxel.
pub fn evaluate(seg: &Volume<u64>, gt: &Volume<u64>) -> Result<SegmentationScores, SegmentError> {
    if seg.shape != gt.shape {
        return Err(SegmentError::Invalid(format!(
            "segmentation shape {:?} differs from ground-truth shape {:?} (z, y, x)",
            seg.shape, gt.shape
        )));
    }
    scores_from_table(&contingency(&seg.data, &gt.data), seg.len() as u64)
}

/// Scores from a contingency table n[(gt, seg)] over `total` voxels (gt label 0 = ignored).
pub fn scores_from_table(t: &HashMap<(u64, u64), u64>, total: u64) -> Result<SegmentationScores, SegmentError> {
    let mut gt_size: HashMap<u64, u64> = HashMap::new();
    let mut seg_size: HashMap<u64, u64> = HashMap::new();
    let mut n = 0u64;
    for (&(g, s), &c) in t {
        if g == 0 {
            continue;
        }
        *gt_size.entry(g).or_default() += c;
        *seg_size.entry(s).or_default() += c;
        n += c;
    }
    if n == 0 {
        return Err(SegmentError::Invalid(
            "the ground truth has no labelled voxel (all 0 = background): nothing to score".into(),
        ));
    }
    let nf = n as f64;
    let (mut split, mut merge) = (0.0, 0.0);
    let (mut sum_ab, mut c0) = (0.0f64, 0.0f64);
    let mut seg_in_gt: HashMap<u64, f64> = HashMap::new();
    // Floating-point sums in the order of the labels (a HashMap's order changes from process to process, and with
    // it the last bits of a sum): the same scores for the same volumes, always.
    let mut cells: Vec<(&(u64, u64), &u64)> = t.iter().collect();
    cells.sort_unstable();
    for (&(g, s), &c) in cells {
        if g == 0 || c == 0 {
            continue;
        }
        let p = c as f64 / nf;
        split -= p * (c as f64 / gt_size[&g] as f64).log2();
        merge -= p * (c as f64 / seg_size[&s] as f64).log2();
        if s == 0 {
            c0 += c as f64;
        } else {
            sum_ab += (c as f64) * (c as f64);
            *seg_in_gt.entry(s).or_default() += c as f64;
        }
    }
    let total = total as f64;
    let sorted = |m: &HashMap<u64, f64>| {
        let mut v: Vec<(u64, f64)> = m.iter().map(|(&k, &x)| (k, x)).collect();
        v.sort_unstable_by_key(|e| e.0);
        v
    };
    let gt_sq: HashMap<u64, f64> = gt_size.iter().map(|(&k, &a)| (k, (a as f64) * (a as f64))).collect();
    let sum_a: f64 = sorted(&gt_sq).iter().map(|e| e.1).sum();
    let sum_b: f64 = sorted(&seg_in_gt).iter().map(|e| e.1 * e.1).sum::<f64>() + c0 / total;
    let sum_ab = sum_ab + c0 / total;
    let precision = if sum_b > 0.0 { sum_ab / sum_b } else { 0.0 };
    let recall = sum_ab / sum_a;
    let f = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    Ok(SegmentationScores {
        voi_split: split.max(0.0),
        voi_merge: merge.max(0.0),
        adapted_rand_error: 1.0 - f,
        rand_precision: precision,
        rand_recall: recall,
        voxels: n,
    })
}

/// Synapse detection scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynapseScores {
    pub true_positives: usize,
    pub predicted: usize,
    pub ground_truth: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Matching radius in nm.
    pub radius_nm: f64,
}

/// Greedy one-to-one matching of predicted to true positions (nm, z y x) within `radius_nm`, closest
/// pairs first (ties by index). 0/0 precision or recall counts as 1.
pub fn match_synapses(pred: &[[f64; 3]], gt: &[[f64; 3]], radius_nm: f64) -> SynapseScores {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, p) in pred.iter().enumerate() {
        for (j, g) in gt.iter().enumerate() {
            let d = ((p[0] - g[0]).powi(2) + (p[1] - g[1]).powi(2) + (p[2] - g[2]).powi(2)).sqrt();
            if d <= radius_nm {
                pairs.push((d, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut up, mut ug) = (vec![false; pred.len()], vec![false; gt.len()]);
    let mut tp = 0;
    for (_, i, j) in pairs {
        if !up[i] && !ug[j] {
            up[i] = true;
            ug[j] = true;
            tp += 1;
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let (p, r) = (ratio(tp, pred.len()), ratio(tp, gt.len()));
    let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
    SynapseScores {
        true_positives: tp,
        predicted: pred.len(),
        ground_truth: gt.len(),
        precision: p,
        recall: r,
        f1,
        radius_nm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same volumes score the same bits however the contingency table's `HashMap` happens to order its
    /// entries (each map gets its own random hasher; sums in hash order differed in the last bits between runs).
    #[test]
    fn scores_do_not_depend_on_the_hash_order() {
        let n = 60_000usize;
        let gt: Vec<u64> = (0..n).map(|i| ((i * 7919) % 97 + (i % 3)) as u64).collect();
        let seg: Vec<u64> = (0..n).map(|i| ((i * 104_729) % 211) as u64).collect();
        let first = scores_from_table(&contingency(&seg, &gt), n as u64).unwrap();
        for _ in 0..20 {
            // A fresh map (new random hasher), filled in reverse.
            let mut t: HashMap<(u64, u64), u64> = HashMap::new();
            for (&s, &g) in seg.iter().zip(&gt).rev() {
                *t.entry((g, s)).or_insert(0) += 1;
            }
            let again = scores_from_table(&t, n as u64).unwrap();
            for (a, b) in [
                (first.voi_split, again.voi_split),
                (first.voi_merge, again.voi_merge),
                (first.adapted_rand_error, again.adapted_rand_error),
            ] {
                assert_eq!(a.to_bits(), b.to_bits());
            }
        }
    }
}
