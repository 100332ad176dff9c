//! Hierarchical agglomeration of fragments by the mean boundary value along their shared surface, the
//! "waterz" scheme (Funke, Tschopp, Grisaitis, Sheridan, Singh, Saalfeld & Turaga 2018, "Large scale
//! image segmentation with structured loss based deep learning for connectome reconstruction", IEEE
//! TPAMI 41:1669; mean-affinity agglomeration also in Zlateski & Seung 2015, arXiv:1505.00249).
//!
//! Edges are merged in increasing order of mean boundary; after a merge the merged region's edges to
//! each neighbour are the sums of the two former edges (so the score stays the mean over the whole
//! shared surface). Merging stops at a threshold; a list of thresholds yields one segmentation per
//! threshold in a single pass. Ties are broken by the edge's label pair, the merged region keeps the
//! smaller label: the result is deterministic.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use crate::rag::{EdgeStats, Rag};
use crate::unionfind::UnionFind;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Item {
    stats: EdgeStats,
    a: u64,
    b: u64,
}

impl Ord for Item {
    fn cmp(&self, o: &Self) -> Ordering {
        self.stats.cmp_mean(&o.stats).then(self.a.cmp(&o.a)).then(self.b.cmp(&o.b))
    }
}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// One merge of the hierarchy: regions `a` and `b` (current roots) merged at mean boundary `score`.
#[derive(Clone, Debug, PartialEq)]
pub struct Merge {
    pub a: u64,
    pub b: u64,
    pub score: f64,
}

/// Result: for every threshold (in the order given), a map fragment → segment label (the smallest
/// fragment label of the segment); plus the merge history up to the largest threshold.
#[derive(Clone, Debug, Default)]
pub struct Agglomeration {
    pub thresholds: Vec<f64>,
    pub maps: Vec<HashMap<u64, u64>>,
    pub merges: Vec<Merge>,
}

/// Agglomerates the graph's regions (label 0 takes part like any label; callers that use 0 for
/// "no region" should not pass it).
pub fn agglomerate(rag: &Rag, thresholds: &[f64]) -> Agglomeration {
    let mut adj: HashMap<u64, HashMap<u64, EdgeStats>> = HashMap::new();
    let mut heap = BinaryHeap::new();
    for (&(a, b), &s) in &rag.edges {
        adj.entry(a).or_default().insert(b, s);
        adj.entry(b).or_default().insert(a, s);
        heap.push(Reverse(Item { stats: s, a, b }));
    }
    let mut order: Vec<usize> = (0..thresholds.len()).collect();
    order.sort_by(|&i, &j| thresholds[i].total_cmp(&thresholds[j]));
    let mut uf = UnionFind::new();
    let mut maps = vec![HashMap::new(); thresholds.len()];
    let mut merges = Vec::new();
    let mut labels: Vec<u64> = rag.sizes.keys().copied().collect();
    labels.sort_unstable();
    for &ti in &order {
        let t = thresholds[ti];
        while let Some(Reverse(top)) = heap.peek().copied() {
            let current = adj.get(&top.a).and_then(|m| m.get(&top.b)).copied();
            if current != Some(top.stats) {
                heap.pop();
                continue; // stale
            }
            if top.stats.mean() > t {
                break;
            }
            heap.pop();
            let keep = top.a.min(top.b);
            let gone = top.a.max(top.b);
            merges.push(Merge { a: keep, b: gone, score: top.stats.mean() });
            uf.union(keep, gone);
            let gone_adj = adj.remove(&gone).unwrap_or_default();
            if let Some(k) = adj.get_mut(&keep) {
                k.remove(&gone);
            }
            let mut touched: Vec<u64> = Vec::new();
            for (n, s) in gone_adj {
                if n == keep {
                    continue;
                }
                if let Some(m) = adj.get_mut(&n) {
                    m.remove(&gone);
                }
                let k = adj.entry(keep).or_default();
                k.entry(n).or_default().add(s);
                let merged = k[&n];
                adj.entry(n).or_default().insert(keep, merged);
                touched.push(n);
            }
            touched.sort_unstable();
            for n in touched {
                let s = adj[&keep][&n];
                heap.push(Reverse(Item { stats: s, a: keep.min(n), b: keep.max(n) }));
            }
        }
        maps[ti] = labels.iter().map(|&l| (l, uf.find(l))).collect();
    }
    Agglomeration { thresholds: thresholds.to_vec(), maps, merges }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(sum: u64, count: u64) -> EdgeStats {
        EdgeStats { sum, count }
    }

    #[test]
    fn merges_in_order_and_updates_means() {
        // Chain 1 - 2 - 3 with means 0.1 and 0.5 (in units of 2·65535), and 1 - 3 with 0.3.
        let u = 2 * crate::rag::SCALE;
        let mut rag = Rag::default();
        rag.edges.insert((1, 2), e(u / 10, 1));
        rag.edges.insert((2, 3), e(u / 2, 1));
        rag.edges.insert((1, 3), e(3 * u / 10, 1));
        for l in 1..=3 {
            rag.sizes.insert(l, 10);
        }
        let ag = agglomerate(&rag, &[0.05, 0.2, 0.39, 0.41]);
        assert_eq!(ag.maps[0][&2], 2);
        assert_eq!(ag.maps[1][&2], 1);
        assert_eq!(ag.maps[1][&3], 3);
        // After 1+2 merge, the edge to 3 has mean (0.5 + 0.3) / 2 = 0.4.
        assert_eq!(ag.maps[2][&3], 3);
        assert_eq!(ag.maps[3][&3], 1);
        assert!((ag.merges[1].score - 0.4).abs() < 1e-9);
    }
}
