//! Region adjacency graph of a label volume: for every pair of touching labels, the sum and count of
//! boundary values on the face pairs between them, in fixed point (boundary × 65,535, two voxels per
//! face pair) so that sums are exact integers and independent of the order of accumulation (block-wise
//! and parallel construction give the same graph bit for bit).

use std::collections::HashMap;

use rayon::prelude::*;

use crate::volume::Volume;

/// Fixed-point scale of boundary values.
pub const SCALE: u64 = 65_535;

/// Boundary statistics of one edge: sum over face pairs of q(b_u) + q(b_v), with q(b) = round(b · 65,535),
/// and the number of face pairs. Mean boundary = sum / (2 · count · 65,535).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeStats {
    pub sum: u64,
    pub count: u64,
}

impl EdgeStats {
    pub fn mean(&self) -> f64 {
        self.sum as f64 / (2.0 * self.count as f64 * SCALE as f64)
    }
    pub fn add(&mut self, o: EdgeStats) {
        self.sum += o.sum;
        self.count += o.count;
    }
    /// Exact comparison of means (cross-multiplied in u128).
    pub fn cmp_mean(&self, o: &EdgeStats) -> std::cmp::Ordering {
        (self.sum as u128 * o.count as u128).cmp(&(o.sum as u128 * self.count as u128))
    }
}

/// Region adjacency graph: edges keyed by (smaller label, larger label); voxel counts per label.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rag {
    pub edges: HashMap<(u64, u64), EdgeStats>,
    pub sizes: HashMap<u64, u64>,
}

fn q(b: f32) -> u64 {
    (b.clamp(0.0, 1.0) as f64 * SCALE as f64).round() as u64
}

/// Builds the graph of `labels` (label 0 is a region like any other) with boundary values `boundary`;
/// rayon-parallel over z-slices.
pub fn build(labels: &Volume<u64>, boundary: &Volume<f32>) -> Rag {
    build_core(labels, boundary, labels.shape)
}

/// The part of the graph owned by a block: `labels` and `boundary` cover the block's core `[0, core)` and
/// at most one more voxel on the high side of each axis (the next block's first plane); every face pair whose
/// lower voxel lies in the core is counted, and only core voxels add to the sizes. The parts of blocks that
/// tile a volume sum ([`Rag::add`]) to [`build`] of the whole volume, exactly.
pub fn build_core(labels: &Volume<u64>, boundary: &Volume<f32>, core: [usize; 3]) -> Rag {
    build_with(labels, core, |i, j, _| q(boundary.data[i]) + q(boundary.data[j]))
}

/// The graph with affinity edge scores (waterz's mean-affinity agglomeration, Funke et al. 2018): the face pair
/// (u, v = u + e_a) scores 1 − `affinities[a]` at v (the affinity of v to u, as an affinity network predicts
/// it), so an edge's mean is 1 − the mean affinity across the contact; the same fixed-point scale as
/// boundary scores (the pair counts the value twice), so thresholds mean the same. `affinities` are the z, y
/// and x channels over the same box as `labels`; `core` as in [`build_core`].
pub fn build_affinity_core(labels: &Volume<u64>, affinities: &[Volume<f32>], core: [usize; 3]) -> Rag {
    build_with(labels, core, |_, j, axis| 2 * q(1.0 - affinities[axis].data[j]))
}

/// [`build`] with affinity edge scores ([`build_affinity_core`]) over the whole volume.
pub fn build_affinity(labels: &Volume<u64>, affinities: &[Volume<f32>]) -> Rag {
    build_affinity_core(labels, affinities, labels.shape)
}

/// The graph of `labels` over `core` with the score of the face pair (i, j) along `axis` (0 = z, 1 = y, 2 = x;
/// j the higher voxel) given by `pair` in fixed point.
fn build_with(labels: &Volume<u64>, core: [usize; 3], pair: impl Fn(usize, usize, usize) -> u64 + Sync) -> Rag {
    let [nz, ny, nx] = labels.shape;
    let sl = ny * nx;
    let parts: Vec<Rag> = (0..core[0])
        .into_par_iter()
        .map(|z| {
            let mut r = Rag::default();
            for y in 0..core[1] {
                // Sizes count runs of equal labels along the row (one map update per run).
                let mut run = (labels.data[(z * ny + y) * nx], 0u64);
                for x in 0..core[2] {
                    let i = (z * ny + y) * nx + x;
                    let a = labels.data[i];
                    if a != run.0 {
                        *r.sizes.entry(run.0).or_default() += run.1;
                        run = (a, 0);
                    }
                    run.1 += 1;
                    for (ok, j, axis) in [(x + 1 < nx, i + 1, 2), (y + 1 < ny, i + nx, 1), (z + 1 < nz, i + sl, 0)] {
                        if !ok {
                            continue;
                        }
                        let b = labels.data[j];
                        if a != b {
                            let e = r.edges.entry((a.min(b), a.max(b))).or_default();
                            e.sum += pair(i, j, axis);
                            e.count += 1;
                        }
                    }
                }
                *r.sizes.entry(run.0).or_default() += run.1;
            }
            r
        })
        .collect();
    let mut out = Rag::default();
    for p in parts {
        out.add(p);
    }
    out
}

impl Rag {
    /// Adds `other`'s edge statistics and sizes to this graph's (exact integer sums).
    pub fn add(&mut self, other: Rag) {
        for (k, v) in other.edges {
            self.edges.entry(k).or_default().add(v);
        }
        for (k, v) in other.sizes {
            *self.sizes.entry(k).or_default() += v;
        }
    }
}
