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
    let [nz, ny, nx] = labels.shape;
    let sl = ny * nx;
    let parts: Vec<Rag> = (0..nz)
        .into_par_iter()
        .map(|z| {
            let mut r = Rag::default();
            for y in 0..ny {
                for x in 0..nx {
                    let i = (z * ny + y) * nx + x;
                    let a = labels.data[i];
                    *r.sizes.entry(a).or_default() += 1;
                    for (ok, j) in [(x + 1 < nx, i + 1), (y + 1 < ny, i + nx), (z + 1 < nz, i + sl)] {
                        if !ok {
                            continue;
                        }
                        let b = labels.data[j];
                        if a != b {
                            let e = r.edges.entry((a.min(b), a.max(b))).or_default();
                            e.sum += q(boundary.data[i]) + q(boundary.data[j]);
                            e.count += 1;
                        }
                    }
                }
            }
            r
        })
        .collect();
    let mut out = Rag::default();
    for p in parts {
        for (k, v) in p.edges {
            out.edges.entry(k).or_default().add(v);
        }
        for (k, v) in p.sizes {
            *out.sizes.entry(k).or_default() += v;
        }
    }
    out
}
