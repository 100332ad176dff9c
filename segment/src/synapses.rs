//! Synapses: cleft detection, partner assignment, confidence; or import of annotated synapse points.
//!
//! - **Cleft score** = darkness at a coarser scale (σ = `cleft_sigma_nm`: clefts are thicker and darker
//!   than plain membranes, so they stay dark after smoothing that washes thin membranes out; measured
//!   from the smoothed image's median to its 0.5th percentile) × boundary probability (membrane
//!   apposition), in [0, 1]. Clefts = 26-connected components of
//!   `score ≥ cleft_threshold` with at least `min_cleft_voxels` voxels (the classical
//!   threshold-and-components detector, e.g. Kreshuk et al. 2011, PLoS ONE 6:e24899; Becker et al. 2012,
//!   IEEE TMI 31:474 learn the score instead).
//! - **Partners**: the two segments holding most voxels of the cleft and its 1-voxel shell; the
//!   presynaptic one is the side whose voxels (cleft excluded) in a cylinder on the cleft (the cleft's
//!   plane fitted by principal components; radius = the cleft's in-plane extent, `side_radius_nm` deep on
//!   each side) are darker on average — the vesicle cloud (Kreshuk et al. 2015, "Who is talking to
//!   whom", PLoS ONE 10:e0132781, use the same cue with a classifier); the other is postsynaptic.
//! - **Confidence** ∈ [0, 1] = mean cleft score × `Δ / (Δ + 0.05)` with Δ the darkness difference between
//!   the two sides (an ambiguous side assignment lowers it).
//! - **Import**: CSV with a header naming columns `z`, `y`, `x` (nm) and optionally `pre`, `post`
//!   (segment ids); points without partners get them from the segmentation as above.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SegmentError;
use crate::membrane::{gaussian_blur, to_unit};
use crate::volume::Volume;

/// Synapse detection parameters (lengths in nm, sizes in voxels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynapseConfig {
    pub cleft_sigma_nm: f64,
    pub cleft_threshold: f32,
    pub min_cleft_voxels: usize,
    /// Depth (nm) on each side of a cleft in which the two sides' darkness is compared (the radius of
    /// the sphere for imported points).
    pub side_radius_nm: f64,
}

impl Default for SynapseConfig {
    fn default() -> Self {
        Self { cleft_sigma_nm: 12.0, cleft_threshold: 0.8, min_cleft_voxels: 50, side_radius_nm: 150.0 }
    }
}

/// A synapse between two segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Synapse {
    pub pre: u64,
    pub post: u64,
    /// Cleft centre (or the imported point) in nm, z y x.
    pub position_nm: [f64; 3],
    pub confidence: f32,
    /// Cleft voxels (0 for imported points).
    pub voxels: usize,
}

/// An annotated synapse point (CSV import).
#[derive(Clone, Debug, PartialEq)]
pub struct SynapsePoint {
    pub position_nm: [f64; 3],
    pub pre: Option<u64>,
    pub post: Option<u64>,
}

/// Cleft score in [0, 1] (see the module documentation). The darkness of the smoothed image is
/// measured between its median (cytoplasm: most voxels) and its 0.5th percentile (the darkest
/// structures), so it does not depend on the noise level.
pub fn cleft_score(raw: &Volume<u8>, boundary: &Volume<f32>, cfg: &SynapseConfig) -> Volume<f32> {
    let g = gaussian_blur(&to_unit(raw), cfg.cleft_sigma_nm);
    let mut sorted = g.data.clone();
    sorted.sort_unstable_by(f32::total_cmp);
    let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    let (lo, hi) = (at(0.005), at(0.5));
    let span = (hi - lo).max(1e-3);
    let data = g.data.iter().zip(&boundary.data).map(|(v, b)| ((hi - v) / span).clamp(0.0, 1.0) * b).collect();
    Volume { shape: raw.shape, voxel_nm: raw.voxel_nm, data }
}

/// 26-connected components of `mask` (voxel lists, in scan order of their first voxel).
fn components(mask: &Volume<bool>) -> Vec<Vec<usize>> {
    let [nz, ny, nx] = mask.shape;
    let mut seen = vec![false; mask.len()];
    let mut out = Vec::new();
    for i in 0..mask.len() {
        if !mask.data[i] || seen[i] {
            continue;
        }
        seen[i] = true;
        let mut comp = vec![i];
        let mut k = 0;
        while k < comp.len() {
            let [z, y, x] = mask.coords(comp[k]);
            k += 1;
            for dz in -1i64..=1 {
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (zz, yy, xx) = (z as i64 + dz, y as i64 + dy, x as i64 + dx);
                        if zz < 0 || yy < 0 || xx < 0 || zz >= nz as i64 || yy >= ny as i64 || xx >= nx as i64 {
                            continue;
                        }
                        let j = (zz as usize * ny + yy as usize) * nx + xx as usize;
                        if mask.data[j] && !seen[j] {
                            seen[j] = true;
                            comp.push(j);
                        }
                    }
                }
            }
        }
        out.push(comp);
    }
    out
}

/// Where the two sides of a synapse are compared: a sphere around the centre, or a cylinder on the
/// cleft's normal (`radius` in the cleft plane, `depth` along the normal on both sides).
#[derive(Clone, Copy, Debug)]
enum Region {
    Sphere { r: f64 },
    Cylinder { normal: [f64; 3], radius: f64, depth: f64 },
}

impl Region {
    fn extent(&self) -> f64 {
        match *self {
            Region::Sphere { r } => r,
            Region::Cylinder { radius, depth, .. } => radius.hypot(depth),
        }
    }
    fn contains(&self, d: [f64; 3]) -> bool {
        let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        match *self {
            Region::Sphere { r } => d2 <= r * r,
            Region::Cylinder { normal, radius, depth } => {
                let a = d[0] * normal[0] + d[1] * normal[1] + d[2] * normal[2];
                a.abs() <= depth && d2 - a * a <= radius * radius
            }
        }
    }
}

/// Mean darkness (1 − raw/255) of the voxels of segments `a` and `b` in `region` around `c`.
#[allow(clippy::too_many_arguments)]
fn side_darkness(
    raw: &Volume<u8>,
    seg: &Volume<u64>,
    excluded: &dyn Fn(usize) -> bool,
    c: [f64; 3],
    region: Region,
    a: u64,
    b: u64,
) -> (f64, f64) {
    let v = raw.voxel_nm;
    let r = region.extent();
    let lo = [0, 1, 2].map(|k| ((c[k] - r) / v[k]).floor().max(0.0) as usize);
    let hi = [0, 1, 2].map(|k| (((c[k] + r) / v[k]).ceil().max(0.0) as usize + 1).min(raw.shape[k]));
    let (mut sa, mut na, mut sb, mut nb) = (0.0, 0u64, 0.0, 0u64);
    for z in lo[0]..hi[0] {
        for y in lo[1]..hi[1] {
            for x in lo[2]..hi[2] {
                let p = raw.position_nm([z, y, x]);
                let i = raw.idx(z, y, x);
                if !region.contains([p[0] - c[0], p[1] - c[1], p[2] - c[2]]) || excluded(i) {
                    continue;
                }
                let dk = 1.0 - raw.data[i] as f64 / 255.0;
                if seg.data[i] == a {
                    sa += dk;
                    na += 1;
                } else if seg.data[i] == b {
                    sb += dk;
                    nb += 1;
                }
            }
        }
    }
    (if na > 0 { sa / na as f64 } else { 0.0 }, if nb > 0 { sb / nb as f64 } else { 0.0 })
}

/// Orders two segments into (pre, post) by side darkness; returns (pre, post, contrast Δ).
#[allow(clippy::too_many_arguments)]
fn orient(
    raw: &Volume<u8>,
    seg: &Volume<u64>,
    excluded: &dyn Fn(usize) -> bool,
    c: [f64; 3],
    region: Region,
    a: u64,
    b: u64,
) -> (u64, u64, f64) {
    let (da, db) = side_darkness(raw, seg, excluded, c, region, a, b);
    if da >= db { (a, b, da - db) } else { (b, a, db - da) }
}

/// Centroid, unit normal (least-variance direction) and in-plane radius (nm) of a set of voxels.
fn plane_fit(v: &Volume<u64>, voxels: &[usize]) -> ([f64; 3], [f64; 3], f64) {
    let pts: Vec<[f64; 3]> = voxels.iter().map(|&i| v.position_nm(v.coords(i))).collect();
    let n = pts.len() as f64;
    let mut c = [0.0; 3];
    for p in &pts {
        (0..3).for_each(|k| c[k] += p[k] / n);
    }
    let mut m = [[0.0f64; 3]; 3];
    for p in &pts {
        for a in 0..3 {
            for b in 0..3 {
                m[a][b] += (p[a] - c[a]) * (p[b] - c[b]) / n;
            }
        }
    }
    let l = crate::membrane::sym3_eigenvalues(m[0][0], m[1][1], m[2][2], m[0][1], m[0][2], m[1][2]);
    let lmin = l.iter().copied().fold(f64::INFINITY, f64::min);
    let r = [0, 1, 2].map(|a| {
        let mut row = m[a];
        row[a] -= lmin;
        row
    });
    let cr =
        |a: [f64; 3], b: [f64; 3]| [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
    let cands = [cr(r[0], r[1]), cr(r[0], r[2]), cr(r[1], r[2])];
    let nn = |x: [f64; 3]| (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]).sqrt();
    let best = cands.into_iter().max_by(|a, b| nn(*a).total_cmp(&nn(*b))).unwrap_or([1.0, 0.0, 0.0]);
    let normal = if nn(best) > 0.0 { best.map(|x| x / nn(best)) } else { [1.0, 0.0, 0.0] };
    let radius = pts
        .iter()
        .map(|p| {
            let d = [p[0] - c[0], p[1] - c[1], p[2] - c[2]];
            let a = d[0] * normal[0] + d[1] * normal[1] + d[2] * normal[2];
            (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] - a * a).max(0.0).sqrt()
        })
        .fold(0.0, f64::max);
    (c, normal, radius)
}

/// The two segments with most voxels among `voxels` (ties by smaller id).
fn two_largest(seg: &Volume<u64>, voxels: impl Iterator<Item = usize>) -> Option<(u64, u64)> {
    let mut count: HashMap<u64, usize> = HashMap::new();
    for i in voxels {
        *count.entry(seg.data[i]).or_default() += 1;
    }
    let mut v: Vec<(u64, usize)> = count.into_iter().filter(|&(l, _)| l != 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    (v.len() >= 2).then(|| (v[0].0, v[1].0))
}

/// Detects synapses: clefts from the cleft score, partners from the segmentation `seg`.
pub fn detect(raw: &Volume<u8>, boundary: &Volume<f32>, seg: &Volume<u64>, cfg: &SynapseConfig) -> Vec<Synapse> {
    let score = cleft_score(raw, boundary, cfg);
    let mask = score.map(|&s| s >= cfg.cleft_threshold);
    let mut out = Vec::new();
    for comp in components(&mask) {
        if comp.len() < cfg.min_cleft_voxels {
            continue;
        }
        let mut shell: Vec<usize> = comp.clone();
        let mut nb = Vec::with_capacity(6);
        for &i in &comp {
            crate::volume::face_neighbours(seg.shape, seg.coords(i), &mut nb);
            shell.extend(nb.iter().copied());
        }
        let Some((a, b)) = two_largest(seg, shell.into_iter()) else { continue };
        let (c, normal, radius) = plane_fit(seg, &comp);
        let excluded = |i: usize| mask.data[i];
        let region = Region::Cylinder { normal, radius: radius.max(seg.voxel_nm[2]), depth: cfg.side_radius_nm };
        let (pre, post, delta) = orient(raw, seg, &excluded, c, region, a, b);
        let mean_score = comp.iter().map(|&i| score.data[i] as f64).sum::<f64>() / comp.len() as f64;
        let conf = (mean_score * delta / (delta + 0.05)).clamp(0.0, 1.0) as f32;
        out.push(Synapse { pre, post, position_nm: c, confidence: conf, voxels: comp.len() });
    }
    out
}

/// Reads annotated synapse points from a CSV file (header with `z`, `y`, `x` in nm; optional `pre`,
/// `post` segment ids; empty cells allowed for pre/post).
pub fn read_points_csv(path: impl AsRef<Path>) -> Result<Vec<SynapsePoint>, SegmentError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| SegmentError::Io { path: path.to_path_buf(), source: e })?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Err(SegmentError::Parse {
            path: path.into(),
            line: 1,
            message: "empty file; expected a header z,y,x[,pre,post]".into(),
        });
    };
    let cols: Vec<String> = header.split(',').map(|c| c.trim().to_lowercase()).collect();
    let col = |n: &str| cols.iter().position(|c| c == n);
    let (Some(cz), Some(cy), Some(cx)) = (col("z"), col("y"), col("x")) else {
        return Err(SegmentError::Parse {
            path: path.into(),
            line: 1,
            message: format!("header {header:?} must name columns z, y, x (nm), optionally pre, post"),
        });
    };
    let (cpre, cpost) = (col("pre"), col("post"));
    let mut out = Vec::new();
    for (ln, line) in lines {
        let f: Vec<&str> = line.split(',').map(|c| c.trim()).collect();
        let perr = |m: String| SegmentError::Parse { path: path.into(), line: ln as u64 + 1, message: m };
        let num = |k: usize, name: &str| -> Result<f64, SegmentError> {
            let s = f.get(k).copied().unwrap_or("");
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| perr(format!("column {name}: {s:?} is not a finite number (nm)")))
        };
        let id = |k: Option<usize>, name: &str| -> Result<Option<u64>, SegmentError> {
            match k.and_then(|k| f.get(k)).copied().filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => {
                    s.parse::<u64>().map(Some).map_err(|_| perr(format!("column {name}: {s:?} is not a segment id")))
                }
            }
        };
        out.push(SynapsePoint {
            position_nm: [num(cz, "z")?, num(cy, "y")?, num(cx, "x")?],
            pre: id(cpre, "pre")?,
            post: id(cpost, "post")?,
        });
    }
    Ok(out)
}

/// Turns annotated points into synapses: given partners are kept (confidence 1); missing ones come
/// from the two largest segments within `side_radius_nm / 2` of the point, oriented by darkness.
/// Points outside the volume or without two segments nearby are dropped.
pub fn assign_points(
    points: &[SynapsePoint],
    raw: &Volume<u8>,
    seg: &Volume<u64>,
    cfg: &SynapseConfig,
) -> Vec<Synapse> {
    let mut out = Vec::new();
    let none = |_: usize| false;
    for p in points {
        if let (Some(pre), Some(post)) = (p.pre, p.post) {
            out.push(Synapse { pre, post, position_nm: p.position_nm, confidence: 1.0, voxels: 0 });
            continue;
        }
        let c = p.position_nm;
        let r = cfg.side_radius_nm * 0.5;
        let v = seg.voxel_nm;
        let lo = [0, 1, 2].map(|k| ((c[k] - r) / v[k]).floor().max(0.0) as usize);
        let hi = [0, 1, 2].map(|k| (((c[k] + r) / v[k]).ceil().max(0.0) as usize + 1).min(seg.shape[k]));
        if (0..3).any(|k| lo[k] >= hi[k]) {
            continue;
        }
        let mut near = Vec::new();
        for z in lo[0]..hi[0] {
            for y in lo[1]..hi[1] {
                for x in lo[2]..hi[2] {
                    near.push(seg.idx(z, y, x));
                }
            }
        }
        let Some((a, b)) = two_largest(seg, near.into_iter()) else { continue };
        let (pre, post, delta) = orient(raw, seg, &none, c, Region::Sphere { r: cfg.side_radius_nm }, a, b);
        let (pre, post) = (p.pre.unwrap_or(pre), p.post.unwrap_or(post));
        let conf = (delta / (delta + 0.05)) as f32;
        out.push(Synapse { pre, post, position_nm: c, confidence: conf, voxels: 0 });
    }
    out
}
