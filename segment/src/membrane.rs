//! Classical boundary (membrane) map without learned weights: Gaussian smoothing, multi-scale Hessian
//! "sheetness" for dark sheet-like structures (cell membranes), combined with intensity darkness.
//!
//! - Gaussian smoothing: separable, one 1D pass per axis, σ given in nm and converted per axis with the
//!   voxel size (anisotropy-aware); borders replicate the edge voxel.
//! - Hessian: central second differences in nm of the smoothed image, scale-normalised by σ² (Lindeberg
//!   1998, "Feature detection with automatic scale selection", IJCV 30:79); eigenvalues of the symmetric
//!   3×3 matrix in closed form (Smith 1961, "Eigenvalues of a symmetric 3×3 matrix", CACM 4:168).
//! - Sheetness: with eigenvalues sorted |λ1| ≤ |λ2| ≤ |λ3| and λ3 > 0 (a *dark* sheet: intensity rises on
//!   both sides), `exp(-Ra²/2α²)·(1-exp(-Rb²/2β²))·(1-exp(-S²/2c²))` with Ra = |λ2|/|λ3|,
//!   Rb = |2|λ3|-|λ2|-|λ1||/|λ3|, S = ‖λ‖ (Descoteaux, Audette, Chinzei & Siddiqi 2006, "Bone
//!   enhancement filtering", Comput Aided Surg 11:247; after Frangi, Niessen, Vincken & Viergever 1998,
//!   MICCAI, LNCS 1496:130); maximum over scales.
//! - Darkness: `(hi - I_σ)/(hi - lo)` clipped to [0, 1], with lo/hi the 2nd/98th intensity percentiles of
//!   the whole volume (global, so that block-wise processing gives identical values).
//! - Boundary probability = `w · sheetness + (1 - w) · darkness` ∈ [0, 1].
//!
//! Every output voxel depends only on input voxels within [`margin_voxels`], so a block computed with
//! that much context equals the same region of a whole-volume computation bit for bit.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::volume::Volume;

/// Parameters of the membrane filter (lengths in nm).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MembraneConfig {
    /// Hessian scales σ in nm (about half the membrane thickness and up).
    pub scales_nm: Vec<f64>,
    /// Smoothing σ in nm before the darkness term.
    pub darkness_sigma_nm: f64,
    /// Weight `w` of sheetness against darkness.
    pub sheet_weight: f64,
    /// Descoteaux's α (sheet vs line), β (sheet vs blob) and c (structure strength, in intensity units
    /// of the [0, 1]-scaled image).
    pub alpha: f64,
    pub beta: f64,
    pub c: f64,
}

impl Default for MembraneConfig {
    fn default() -> Self {
        Self { scales_nm: vec![8.0, 16.0], darkness_sigma_nm: 6.0, sheet_weight: 0.5, alpha: 0.5, beta: 0.5, c: 0.05 }
    }
}

/// Kernel radius in voxels along each axis for a Gaussian of σ nm (0 when the axis is not smoothed).
pub fn kernel_radius(sigma_nm: f64, voxel_nm: [f64; 3]) -> [usize; 3] {
    voxel_nm.map(|v| {
        let s = sigma_nm / v;
        if s < 0.1 { 0 } else { (3.0 * s).ceil() as usize }
    })
}

/// Context (voxels along z, y, x) a block needs for its core to equal the whole-volume filter.
pub fn margin_voxels(cfg: &MembraneConfig, voxel_nm: [f64; 3]) -> [usize; 3] {
    let mut m = kernel_radius(cfg.darkness_sigma_nm, voxel_nm);
    for &s in &cfg.scales_nm {
        let r = kernel_radius(s, voxel_nm);
        for a in 0..3 {
            m[a] = m[a].max(r[a] + 1);
        }
    }
    m
}

fn kernel(sigma_vox: f64) -> Vec<f32> {
    if sigma_vox < 0.1 {
        return vec![1.0];
    }
    let r = (3.0 * sigma_vox).ceil() as i64;
    let w: Vec<f64> = (-r..=r).map(|k| (-(k * k) as f64 / (2.0 * sigma_vox * sigma_vox)).exp()).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|v| (v / s) as f32).collect()
}

/// Separable Gaussian smoothing with σ in nm (per-axis σ = σ_nm / voxel size); rayon-parallel over
/// z-slices. Borders replicate the edge voxel.
pub fn gaussian_blur(v: &Volume<f32>, sigma_nm: f64) -> Volume<f32> {
    let [nz, ny, nx] = v.shape;
    let sl = ny * nx;
    let mut cur = v.data.clone();
    for axis in [2usize, 1, 0] {
        let k = kernel(sigma_nm / v.voxel_nm[axis]);
        if k.len() == 1 {
            continue;
        }
        let r = (k.len() / 2) as i64;
        let src = &cur;
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(sl).enumerate().for_each(|(z, o)| {
            for y in 0..ny {
                for x in 0..nx {
                    let (pos, n) = match axis {
                        2 => (x as i64, nx as i64),
                        1 => (y as i64, ny as i64),
                        _ => (z as i64, nz as i64),
                    };
                    let mut acc = 0f32;
                    for (j, w) in k.iter().enumerate() {
                        let q = (pos + j as i64 - r).clamp(0, n - 1) as usize;
                        let i = match axis {
                            2 => (z * ny + y) * nx + q,
                            1 => (z * ny + q) * nx + x,
                            _ => (q * ny + y) * nx + x,
                        };
                        acc += w * src[i];
                    }
                    o[y * nx + x] = acc;
                }
            }
        });
        cur = out;
    }
    Volume { shape: v.shape, voxel_nm: v.voxel_nm, data: cur }
}

/// The 2nd and 98th percentiles of an 8-bit volume, scaled to [0, 1] (`hi > lo` guaranteed).
pub fn intensity_range(raw: &Volume<u8>) -> (f32, f32) {
    let mut h = [0u64; 256];
    for &v in &raw.data {
        h[v as usize] += 1;
    }
    range_from_histogram(&h)
}

/// [`intensity_range`] from a histogram of the 8-bit values (so that a volume read block by block gives the
/// same range as one in memory).
pub fn range_from_histogram(h: &[u64; 256]) -> (f32, f32) {
    let n: u64 = h.iter().sum();
    let pct = |p: f64| {
        let target = ((n as f64) * p).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, c) in h.iter().enumerate() {
            acc += c;
            if acc >= target {
                return crate::volume::unit_intensity(i as u8);
            }
        }
        1.0
    };
    let (lo, hi) = (pct(0.02), pct(0.98));
    if hi > lo { (lo, hi) } else { (lo.min(0.99), lo.min(0.99) + 0.01) }
}

/// Raw u8 → f32 in [0, 1].
pub fn to_unit(raw: &Volume<u8>) -> Volume<f32> {
    raw.map(|&v| crate::volume::unit_intensity(v))
}

/// Darkness in [0, 1] of an image smoothed with σ nm, relative to the intensity range (lo, hi).
pub fn darkness(img: &Volume<f32>, sigma_nm: f64, range: (f32, f32)) -> Volume<f32> {
    let g = gaussian_blur(img, sigma_nm);
    let (lo, hi) = range;
    g.map(|&v| ((hi - v) / (hi - lo)).clamp(0.0, 1.0))
}

/// Eigenvalues of the symmetric matrix [[a, d, e], [d, b, f], [e, f, c]] (Smith 1961), any order.
pub fn sym3_eigenvalues(a: f64, b: f64, c: f64, d: f64, e: f64, f: f64) -> [f64; 3] {
    let p1 = d * d + e * e + f * f;
    if p1 <= 1e-30 * (a * a + b * b + c * c).max(1e-300) {
        return [a, b, c];
    }
    let q = (a + b + c) / 3.0;
    let p2 = (a - q).powi(2) + (b - q).powi(2) + (c - q).powi(2) + 2.0 * p1;
    let p = (p2 / 6.0).sqrt();
    let (ba, bb, bc) = ((a - q) / p, (b - q) / p, (c - q) / p);
    let (bd, be, bf) = (d / p, e / p, f / p);
    let det = ba * (bb * bc - bf * bf) - bd * (bd * bc - bf * be) + be * (bd * bf - bb * be);
    let r = (det / 2.0).clamp(-1.0, 1.0);
    let phi = r.acos() / 3.0;
    let l1 = q + 2.0 * p * phi.cos();
    let l3 = q + 2.0 * p * (phi + 2.0 * std::f64::consts::PI / 3.0).cos();
    [l1, 3.0 * q - l1 - l3, l3]
}

/// Descoteaux et al. 2006 sheetness of a *dark* sheet from Hessian eigenvalues.
pub fn dark_sheetness(l: [f64; 3], alpha: f64, beta: f64, c: f64) -> f64 {
    let mut s = l;
    s.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    let [l1, l2, l3] = s;
    if l3 <= 0.0 {
        return 0.0;
    }
    let ra = l2.abs() / l3.abs();
    let rb = (2.0 * l3.abs() - l2.abs() - l1.abs()).abs() / l3.abs();
    let s2 = l1 * l1 + l2 * l2 + l3 * l3;
    (-(ra * ra) / (2.0 * alpha * alpha)).exp()
        * (1.0 - (-(rb * rb) / (2.0 * beta * beta)).exp())
        * (1.0 - (-s2 / (2.0 * c * c)).exp())
}

/// Multi-scale dark-sheetness in [0, 1] of an image in [0, 1]; rayon-parallel over z-slices.
pub fn sheetness(img: &Volume<f32>, cfg: &MembraneConfig) -> Volume<f32> {
    let [nz, ny, nx] = img.shape;
    let sl = ny * nx;
    let [hz, hy, hx] = img.voxel_nm;
    let mut best = vec![0f32; img.len()];
    for &sigma in &cfg.scales_nm {
        let g = gaussian_blur(img, sigma);
        let s2 = sigma * sigma;
        let gd = &g.data;
        best.par_chunks_mut(sl).enumerate().for_each(|(z, o)| {
            let zm = z.saturating_sub(1);
            let zp = (z + 1).min(nz - 1);
            for y in 0..ny {
                let ym = y.saturating_sub(1);
                let yp = (y + 1).min(ny - 1);
                for x in 0..nx {
                    let xm = x.saturating_sub(1);
                    let xp = (x + 1).min(nx - 1);
                    let at = |z: usize, y: usize, x: usize| gd[(z * ny + y) * nx + x] as f64;
                    let c0 = at(z, y, x);
                    let dzz = (at(zp, y, x) - 2.0 * c0 + at(zm, y, x)) / (hz * hz);
                    let dyy = (at(z, yp, x) - 2.0 * c0 + at(z, ym, x)) / (hy * hy);
                    let dxx = (at(z, y, xp) - 2.0 * c0 + at(z, y, xm)) / (hx * hx);
                    let dzy = (at(zp, yp, x) - at(zp, ym, x) - at(zm, yp, x) + at(zm, ym, x)) / (4.0 * hz * hy);
                    let dzx = (at(zp, y, xp) - at(zp, y, xm) - at(zm, y, xp) + at(zm, y, xm)) / (4.0 * hz * hx);
                    let dyx = (at(z, yp, xp) - at(z, yp, xm) - at(z, ym, xp) + at(z, ym, xm)) / (4.0 * hy * hx);
                    let l = sym3_eigenvalues(dzz * s2, dyy * s2, dxx * s2, dzy * s2, dzx * s2, dyx * s2);
                    let v = dark_sheetness(l, cfg.alpha, cfg.beta, cfg.c) as f32;
                    let i = y * nx + x;
                    if v > o[i] {
                        o[i] = v;
                    }
                }
            }
        });
    }
    Volume { shape: img.shape, voxel_nm: img.voxel_nm, data: best }
}

/// Boundary probability in [0, 1] from raw EM (see the module documentation). `range` is the global
/// intensity range from [`intensity_range`].
pub fn boundary_map(raw: &Volume<u8>, cfg: &MembraneConfig, range: (f32, f32)) -> Volume<f32> {
    let img = to_unit(raw);
    let sheet = sheetness(&img, cfg);
    let dark = darkness(&img, cfg.darkness_sigma_nm, range);
    let w = cfg.sheet_weight as f32;
    let data = sheet.data.iter().zip(&dark.data).map(|(s, d)| (w * s + (1.0 - w) * d).clamp(0.0, 1.0)).collect();
    Volume { shape: raw.shape, voxel_nm: raw.voxel_nm, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvalues_of_diagonal_and_rotated() {
        let mut l = sym3_eigenvalues(1.0, 2.0, 3.0, 0.0, 0.0, 0.0);
        l.sort_by(f64::total_cmp);
        assert_eq!(l, [1.0, 2.0, 3.0]);
        // [[2,1,0],[1,2,0],[0,0,5]] has eigenvalues 1, 3, 5.
        let mut l = sym3_eigenvalues(2.0, 2.0, 5.0, 1.0, 0.0, 0.0);
        l.sort_by(f64::total_cmp);
        for (a, b) in l.iter().zip([1.0, 3.0, 5.0]) {
            assert!((a - b).abs() < 1e-9, "{l:?}");
        }
    }

    #[test]
    fn blur_preserves_constant_and_mass() {
        let v = Volume::filled([5, 6, 7], [20.0, 10.0, 10.0], 0.5f32);
        let b = gaussian_blur(&v, 15.0);
        assert!(b.data.iter().all(|x| (x - 0.5).abs() < 1e-6));
    }

    #[test]
    fn dark_plane_is_a_sheet() {
        // A dark plane x = 10 in a bright volume: sheetness high on it, ~0 far away.
        let mut v = Volume::filled([8, 8, 21], [10.0; 3], 0.8f32);
        for z in 0..8 {
            for y in 0..8 {
                let i = v.idx(z, y, 10);
                v.data[i] = 0.2;
            }
        }
        let s = sheetness(&v, &MembraneConfig::default());
        assert!(s.data[s.idx(4, 4, 10)] > 0.5, "{}", s.data[s.idx(4, 4, 10)]);
        assert!(s.data[s.idx(4, 4, 2)] < 0.05);
    }
}
