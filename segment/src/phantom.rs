//! Phantom EM volumes with exact ground truth, for tests and benchmarks.
//!
//! Cells are the 3D Voronoi regions of seed points (Voronoi tessellations are the usual phantom of
//! packed neuropil, e.g. the synthetic data of Jain et al. 2007, ICCV); a voxel whose distance (nm) to the
//! nearest Voronoi face is below half the membrane thickness is membrane (dark). The exact distance to
//! the face between cells i and j at point p is `(|p-s_j|² - |p-s_i|²) / (2|s_j-s_i|)`.
//! Synapses are darker, thicker discs on chosen cell contacts (clefts) with a cloud of dark dots
//! (vesicles) on the presynaptic side. The image is then blurred (Gaussian, σ in nm) and Gaussian noise
//! is added. All randomness is counter-based ([`crate::hash`]): a result depends only on the
//! configuration, never on thread scheduling.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::hash::{hash3, normal, uniform};
use crate::io::NO_CLEFT;
use crate::membrane::gaussian_blur;
use crate::volume::Volume;

/// Phantom parameters (lengths in nm; intensities in [0, 1]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhantomConfig {
    /// Voxels along z, y, x.
    pub shape: [usize; 3],
    /// Voxel size along z, y, x in nm.
    pub voxel_nm: [f64; 3],
    /// Number of cells (Voronoi seeds).
    pub cells: usize,
    /// Minimum distance between seeds in nm (avoids tiny cells).
    pub min_seed_distance_nm: f64,
    /// Membrane thickness in nm.
    pub membrane_nm: f64,
    /// Gaussian blur σ in nm (the microscope's point-spread function).
    pub blur_nm: f64,
    /// Standard deviation of the additive Gaussian noise (intensity units, image in [0, 1]).
    pub noise: f64,
    /// Number of synapses to place.
    pub synapses: usize,
    /// Cleft disc radius in nm.
    pub cleft_radius_nm: f64,
    /// Cleft thickness in nm (thicker than a membrane).
    pub cleft_nm: f64,
    /// Vesicles per synapse and their radius in nm.
    pub vesicles: usize,
    pub vesicle_radius_nm: f64,
    pub seed: u64,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        Self {
            shape: [32, 80, 80],
            voxel_nm: [16.0, 8.0, 8.0],
            cells: 14,
            min_seed_distance_nm: 160.0,
            membrane_nm: 20.0,
            blur_nm: 6.0,
            noise: 0.05,
            synapses: 6,
            cleft_radius_nm: 50.0,
            cleft_nm: 36.0,
            vesicles: 24,
            vesicle_radius_nm: 15.0,
            seed: 1,
        }
    }
}

/// A ground-truth synapse: presynaptic and postsynaptic cell ids and positions in nm (z, y, x).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GtSynapse {
    pub pre: u64,
    pub post: u64,
    /// Cleft centre.
    pub position_nm: [f64; 3],
    /// CREMI-style sites 60 nm into the pre- and postsynaptic cell.
    pub pre_site_nm: [f64; 3],
    pub post_site_nm: [f64; 3],
}

/// A phantom volume with its exact ground truth.
#[derive(Clone, Debug)]
pub struct Phantom {
    pub raw: Volume<u8>,
    /// Cell id (1-based) per voxel, 0 on membranes (CREMI/gala convention: 0 = background, ignored by
    /// the metrics).
    pub labels: Volume<u64>,
    /// Cell id of every voxel, membranes included (the exact Voronoi partition).
    pub cells: Volume<u64>,
    /// Cleft id (1-based) per voxel, [`NO_CLEFT`] elsewhere.
    pub clefts: Volume<u64>,
    pub synapses: Vec<GtSynapse>,
}

const INTERIOR: f64 = 0.75;
const MEMBRANE: f64 = 0.25;
const CLEFT: f64 = 0.06;
const VESICLE: f64 = 0.3;

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn add_s(a: [f64; 3], s: f64, b: [f64; 3]) -> [f64; 3] {
    [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]]
}
fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// Nearest seed, the cell across the nearest Voronoi face and the distance (nm) to that face.
fn nearest(p: [f64; 3], seeds: &[[f64; 3]]) -> (usize, usize, f64) {
    let d2: Vec<f64> = seeds.iter().map(|s| dot(sub(p, *s), sub(p, *s))).collect();
    let mut i = 0;
    for k in 1..seeds.len() {
        if d2[k] < d2[i] {
            i = k;
        }
    }
    let (mut j, mut face) = (usize::MAX, f64::INFINITY);
    for k in 0..seeds.len() {
        if k != i {
            let f = (d2[k] - d2[i]) / (2.0 * norm(sub(seeds[k], seeds[i])));
            if f < face {
                face = f;
                j = k;
            }
        }
    }
    (i, j, face)
}

struct Placed {
    pre: usize,
    post: usize,
    centre: [f64; 3],
    /// Unit normal from pre to post.
    n: [f64; 3],
    vesicles: Vec<[f64; 3]>,
}

/// Generates a phantom (deterministic in `cfg`).
pub fn generate(cfg: &PhantomConfig) -> Phantom {
    let [nz, ny, nx] = cfg.shape;
    let ext = [nz as f64 * cfg.voxel_nm[0], ny as f64 * cfg.voxel_nm[1], nx as f64 * cfg.voxel_nm[2]];
    let s = cfg.seed;
    // Seeds: candidates from a counter-based sequence, accepted if far enough from earlier ones.
    let mut seeds: Vec<[f64; 3]> = Vec::new();
    let mut k = 0u64;
    while seeds.len() < cfg.cells.max(2) && k < 100_000 {
        let p = [uniform(s, 1, 3 * k) * ext[0], uniform(s, 1, 3 * k + 1) * ext[1], uniform(s, 1, 3 * k + 2) * ext[2]];
        let min_d = if k < 50_000 { cfg.min_seed_distance_nm } else { 0.0 };
        if seeds.iter().all(|q| norm(sub(p, *q)) >= min_d) {
            seeds.push(p);
        }
        k += 1;
    }
    let tone: Vec<f64> = (0..seeds.len()).map(|c| 0.06 * (uniform(s, 2, c as u64) - 0.5)).collect();

    // Synapses on cell contacts: a random point projected onto its nearest Voronoi face, kept when the
    // disc around it stays on that face and inside the volume.
    let mut placed: Vec<Placed> = Vec::new();
    let r = cfg.cleft_radius_nm;
    let depth = 160.0;
    let mut t = 0u64;
    while placed.len() < cfg.synapses && t < 20_000 {
        t += 1;
        let p = [uniform(s, 3, 3 * t) * ext[0], uniform(s, 3, 3 * t + 1) * ext[1], uniform(s, 3, 3 * t + 2) * ext[2]];
        let (i, j, face) = nearest(p, &seeds);
        let dir = sub(seeds[j], seeds[i]);
        let n = dir.map(|v| v / norm(dir));
        let c = add_s(p, face, n);
        let margin = [r.max(cfg.voxel_nm[0] * 2.0), r + depth * 0.5, r + depth * 0.5];
        if (0..3).any(|a| c[a] < margin[a] || c[a] > ext[a] - margin[a]) {
            continue;
        }
        let (ci, cj, _) = nearest(c, &seeds);
        if !((ci == i && cj == j) || (ci == j && cj == i)) {
            continue;
        }
        // The face must extend over the disc: other faces farther than r + cleft thickness from the centre.
        let clear = (0..seeds.len()).filter(|&k| k != i && k != j).all(|k| {
            let di = dot(sub(c, seeds[i]), sub(c, seeds[i]));
            let dk = dot(sub(c, seeds[k]), sub(c, seeds[k]));
            (dk - di) / (2.0 * norm(sub(seeds[k], seeds[i]))) > r + 0.5 * cfg.membrane_nm
        });
        let pair_used = placed.iter().any(|q| (q.pre == i && q.post == j) || (q.pre == j && q.post == i));
        let far = placed.iter().all(|q| norm(sub(q.centre, c)) > 2.5 * r + 0.5 * depth);
        if !(clear && !pair_used && far) {
            continue;
        }
        let (pre, post, n) = if hash3(s, 4, t) & 1 == 0 { (i, j, n) } else { (j, i, n.map(|v| -v)) };
        // Orthonormal basis of the cleft plane.
        let a = if n[0].abs() < 0.9 { [1.0, 0.0, 0.0] } else { [0.0, 1.0, 0.0] };
        let u = cross(n, a);
        let u = u.map(|v| v / norm(u));
        let w = cross(n, u);
        let vesicles = (0..cfg.vesicles as u64)
            .map(|v| {
                let id = t * 1000 + v;
                let ang = std::f64::consts::TAU * uniform(s, 5, id);
                let rad = 0.8 * r * uniform(s, 6, id).sqrt();
                let off = cfg.cleft_nm * 0.5 + cfg.vesicle_radius_nm + 4.0 + (depth - 40.0) * uniform(s, 7, id);
                let q = add_s(c, -off, n);
                let q = add_s(q, rad * ang.cos(), u);
                add_s(q, rad * ang.sin(), w)
            })
            .collect();
        placed.push(Placed { pre, post, centre: c, n, vesicles });
    }

    let sl = ny * nx;
    let n_vox = nz * sl;
    let mut img = vec![0f32; n_vox];
    let mut labels = vec![0u64; n_vox];
    let mut cells = vec![0u64; n_vox];
    let mut clefts = vec![NO_CLEFT; n_vox];
    let vr2 = cfg.vesicle_radius_nm * cfg.vesicle_radius_nm;
    img.par_chunks_mut(sl)
        .zip(labels.par_chunks_mut(sl))
        .zip(cells.par_chunks_mut(sl).zip(clefts.par_chunks_mut(sl)))
        .enumerate()
        .for_each(|(z, ((im, lab), (cel, clf)))| {
            for y in 0..ny {
                for x in 0..nx {
                    let o = y * nx + x;
                    let p = [z as f64 * cfg.voxel_nm[0], y as f64 * cfg.voxel_nm[1], x as f64 * cfg.voxel_nm[2]];
                    let (i, j, face) = nearest(p, &seeds);
                    cel[o] = i as u64 + 1;
                    let membrane = face < cfg.membrane_nm * 0.5;
                    let mut v = if membrane { MEMBRANE } else { INTERIOR + tone[i] };
                    lab[o] = if membrane { 0 } else { i as u64 + 1 };
                    for (k, q) in placed.iter().enumerate() {
                        let on_pair = (i == q.pre && j == q.post) || (i == q.post && j == q.pre);
                        if on_pair && face < cfg.cleft_nm * 0.5 {
                            let d = sub(p, q.centre);
                            let along = dot(d, q.n);
                            let inplane = (dot(d, d) - along * along).max(0.0).sqrt();
                            if inplane < r {
                                v = CLEFT;
                                clf[o] = k as u64 + 1;
                                lab[o] = 0;
                            }
                        }
                        if i == q.pre && !membrane && q.vesicles.iter().any(|c| dot(sub(p, *c), sub(p, *c)) < vr2) {
                            v = VESICLE;
                        }
                    }
                    im[o] = v as f32;
                }
            }
        });
    let vol = Volume { shape: cfg.shape, voxel_nm: cfg.voxel_nm, data: img };
    let blurred = gaussian_blur(&vol, cfg.blur_nm);
    let raw: Vec<u8> = blurred
        .data
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = *v as f64 + cfg.noise * normal(s, 8, i as u64);
            (x.clamp(0.0, 1.0) * 255.0).round() as u8
        })
        .collect();
    let synapses = placed
        .iter()
        .map(|q| GtSynapse {
            pre: q.pre as u64 + 1,
            post: q.post as u64 + 1,
            position_nm: q.centre,
            pre_site_nm: add_s(q.centre, -60.0, q.n),
            post_site_nm: add_s(q.centre, 60.0, q.n),
        })
        .collect();
    let (shape, voxel_nm) = (cfg.shape, cfg.voxel_nm);
    Phantom {
        raw: Volume { shape, voxel_nm, data: raw },
        labels: Volume { shape, voxel_nm, data: labels },
        cells: Volume { shape, voxel_nm, data: cells },
        clefts: Volume { shape, voxel_nm, data: clefts },
        synapses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_has_ground_truth() {
        let cfg = PhantomConfig { shape: [16, 32, 32], synapses: 2, cells: 6, ..Default::default() };
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a.raw, b.raw);
        assert_eq!(a.synapses, b.synapses);
        let ids: std::collections::BTreeSet<u64> = a.labels.data.iter().copied().filter(|&v| v != 0).collect();
        assert!(ids.len() >= 4, "{ids:?}");
        assert!(a.labels.data.contains(&0), "membranes are labelled 0");
    }
}
