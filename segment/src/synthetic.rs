//! Synthetic EM volumes of any size, generated region by region: what tests the out-of-core pipeline
//! ([`crate::out_of_core`]) on volumes larger than memory, with exact ground truth.
//!
//! Cells are the Voronoi regions of one seed per cell of a cubic lattice of spacing `cell_nm`, each seed
//! jittered uniformly within the middle 40 % of its lattice cell ([0.3, 0.7] of the spacing on every axis;
//! jittered-lattice Voronoi tessellations are a standard packed-cell phantom, e.g. the synthetic data of
//! Jain et al. 2007, ICCV). With that jitter the nearest seed of any point lies in the 3 × 3 × 3 lattice
//! cells around it (the own seed is at most √3 · 0.7 ≈ 1.21 spacings away, any seed two cells off at
//! least 1.3), so every voxel is computed from 27 candidate seeds without any global state: a region's
//! values depend only on the configuration and the voxel, never on the block that produced it.
//!
//! At a point whose nearest seeds are s₁ and s₂ the distance to their Voronoi face is
//! `(|p − s₂|² − |p − s₁|²) / (2 |s₂ − s₁|)`; the membrane profile across the face is a Gaussian of full
//! width at half maximum `membrane_nm` (σ = FWHM / 2.3548). The boundary map is that profile plus uniform
//! noise of standard deviation `noise`; raw EM is `0.75 − 0.5 · profile` plus independent noise (membranes
//! dark), both clamped to [0, 1] and stored as uint8. Ground truth: the nearest seed's lattice cell, a
//! positive u64 id. Noise comes from the counter-based hash of [`crate::hash`] keyed on (seed, stream, voxel).

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blockwise::{progress, tiles};
use crate::error::SegmentError;
use crate::hash::{hash3, uniform};
use crate::volume::Volume;
use crate::zarr::ZarrVolume;

/// Array names of a written synthetic volume (the CREMI layout).
pub const RAW: &str = "volumes/raw";
pub const BOUNDARY: &str = "volumes/boundary";
pub const LABELS: &str = "volumes/labels/neuron_ids";

/// Parameters of a synthetic volume (lengths in nm).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Voxels along z, y, x.
    pub shape: [usize; 3],
    /// Voxel size along z, y, x (nm).
    pub voxel_nm: [f64; 3],
    /// Lattice spacing (nm): about the cells' diameter.
    pub cell_nm: f64,
    /// Full width at half maximum of the membrane profile (nm).
    pub membrane_nm: f64,
    /// Standard deviation of the uniform noise added to the boundary map and the raw image ([0, 1] units).
    pub noise: f64,
    /// Random seed.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self { shape: [64, 256, 256], voxel_nm: [10.0; 3], cell_nm: 400.0, membrane_nm: 40.0, noise: 0.1, seed: 1 }
    }
}

/// One generated region.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticRegion {
    pub raw: Volume<u8>,
    pub boundary: Volume<u8>,
    pub labels: Volume<u64>,
}

impl SyntheticConfig {
    /// Checks the parameters; messages name the field.
    pub fn validate(&self) -> Result<(), SegmentError> {
        if self.shape.contains(&0) {
            return Err(SegmentError::Invalid(format!("shape {:?}: every axis needs at least one voxel", self.shape)));
        }
        crate::volume::check_voxel(self.voxel_nm)?;
        let min_voxel = self.voxel_nm.iter().copied().fold(f64::INFINITY, f64::min);
        if !(self.cell_nm.is_finite() && self.cell_nm >= 2.0 * min_voxel) {
            return Err(SegmentError::Invalid(format!(
                "cell_nm {}: the lattice spacing must be finite and at least two voxels ({} nm)",
                self.cell_nm,
                2.0 * min_voxel
            )));
        }
        if !(self.membrane_nm.is_finite() && self.membrane_nm > 0.0) {
            return Err(SegmentError::Invalid(format!("membrane_nm {}: give a width > 0 nm", self.membrane_nm)));
        }
        if !(self.noise.is_finite() && (0.0..=1.0).contains(&self.noise)) {
            return Err(SegmentError::Invalid(format!("noise {}: give a standard deviation in [0, 1]", self.noise)));
        }
        Ok(())
    }

    /// Lattice cells per axis (the seeds of cells −1 and n are needed at the faces).
    fn lattice(&self) -> [i64; 3] {
        [0, 1, 2].map(|a| (self.shape[a] as f64 * self.voxel_nm[a] / self.cell_nm).ceil() as i64 + 1)
    }

    /// Position (nm) of the seed of lattice cell `c` (may be −1 or n along an axis).
    fn seed_of(&self, c: [i64; 3]) -> [f64; 3] {
        let key = self.cell_key(c);
        [0, 1, 2].map(|a| (c[a] as f64 + 0.3 + 0.4 * uniform(self.seed, 100 + a as u64, key)) * self.cell_nm)
    }

    /// A positive id of lattice cell `c` (cells −1..=n on every axis).
    fn cell_key(&self, c: [i64; 3]) -> u64 {
        let n = self.lattice().map(|v| (v + 2) as u64);
        let s = [0, 1, 2].map(|a| (c[a] + 1) as u64);
        (s[0] * n[1] + s[1]) * n[2] + s[2] + 1
    }
}

/// Uniform noise of standard deviation `sd` from the hash of (seed, stream, index).
fn noise(seed: u64, stream: u64, index: u64, sd: f64) -> f64 {
    let u = (hash3(seed, stream, index) >> 11) as f64 / (1u64 << 53) as f64;
    (2.0 * u - 1.0) * sd * 3f64.sqrt()
}

/// The region `[lo, hi)` of the volume `cfg` describes; rayon-parallel over z-slices.
pub fn region(cfg: &SyntheticConfig, lo: [usize; 3], hi: [usize; 3]) -> SyntheticRegion {
    let shape = [0, 1, 2].map(|a| hi[a] - lo[a]);
    let cell = cfg.cell_nm;
    // Seeds of the lattice cells the region's voxels can reach (one cell of margin).
    let clo = [0, 1, 2].map(|a| (lo[a] as f64 * cfg.voxel_nm[a] / cell).floor() as i64 - 1);
    let chi = [0, 1, 2].map(|a| ((hi[a] as f64 * cfg.voxel_nm[a]) / cell).floor() as i64 + 2);
    let n = [0, 1, 2].map(|a| (chi[a] - clo[a]) as usize);
    let mut seeds = Vec::with_capacity(n[0] * n[1] * n[2]);
    for i in 0..n[0] as i64 {
        for j in 0..n[1] as i64 {
            for k in 0..n[2] as i64 {
                let c = [clo[0] + i, clo[1] + j, clo[2] + k];
                seeds.push((cfg.seed_of(c), cfg.cell_key(c)));
            }
        }
    }
    let sigma = cfg.membrane_nm / 2.3548;
    let [ny, nx] = [cfg.shape[1] as u64, cfg.shape[2] as u64];
    let plane = shape[1] * shape[2];
    let mut raw = vec![0u8; shape.iter().product()];
    let mut bnd = vec![0u8; raw.len()];
    let mut lab = vec![0u64; raw.len()];
    raw.par_chunks_mut(plane.max(1))
        .zip(bnd.par_chunks_mut(plane.max(1)))
        .zip(lab.par_chunks_mut(plane.max(1)))
        .enumerate()
        .for_each(|(z, ((r, b), l))| {
            let gz = lo[0] + z;
            let pz = (gz as f64 + 0.5) * cfg.voxel_nm[0];
            let cz = (pz / cell).floor() as i64 - clo[0];
            for y in 0..shape[1] {
                let gy = lo[1] + y;
                let py = (gy as f64 + 0.5) * cfg.voxel_nm[1];
                let cy = (py / cell).floor() as i64 - clo[1];
                for x in 0..shape[2] {
                    let gx = lo[2] + x;
                    let p = [pz, py, (gx as f64 + 0.5) * cfg.voxel_nm[2]];
                    let cx = (p[2] / cell).floor() as i64 - clo[2];
                    let (mut d1, mut d2, mut s1, mut s2) = (f64::INFINITY, f64::INFINITY, 0usize, 0usize);
                    for dz in -1..=1i64 {
                        for dy in -1..=1i64 {
                            let row = (((cz + dz) as usize) * n[1] + (cy + dy) as usize) * n[2];
                            for dx in -1..=1i64 {
                                let si = row + (cx + dx) as usize;
                                let s = seeds[si].0;
                                let d = (p[0] - s[0]).powi(2) + (p[1] - s[1]).powi(2) + (p[2] - s[2]).powi(2);
                                if d < d1 {
                                    (d2, s2, d1, s1) = (d1, s1, d, si);
                                } else if d < d2 {
                                    (d2, s2) = (d, si);
                                }
                            }
                        }
                    }
                    let (a, c) = (seeds[s1].0, seeds[s2].0);
                    let gap = ((a[0] - c[0]).powi(2) + (a[1] - c[1]).powi(2) + (a[2] - c[2]).powi(2)).sqrt();
                    let face = (d2 - d1) / (2.0 * gap);
                    let profile = (-0.5 * (face / sigma).powi(2)).exp();
                    let index = (gz as u64 * ny + gy as u64) * nx + gx as u64;
                    let q = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    let i = y * shape[2] + x;
                    b[i] = q(profile + noise(cfg.seed, 1, index, cfg.noise));
                    r[i] = q(0.75 - 0.5 * profile + noise(cfg.seed, 2, index, cfg.noise));
                    l[i] = seeds[s1].1;
                }
            }
        });
    let v = |data| Volume { shape, voxel_nm: cfg.voxel_nm, data };
    SyntheticRegion { raw: v(raw), boundary: v(bnd), labels: Volume { shape, voxel_nm: cfg.voxel_nm, data: lab } }
}

/// Writes the volume into the Zarr store `store` block by block (`block` voxels, z y x; chunks of `chunk`):
/// arrays [`RAW`], [`BOUNDARY`] (uint8, zstd) and [`LABELS`] (uint64), each with the voxel size as its
/// `resolution` attribute. Memory: one block of each (10 bytes per voxel). Not atomic (callers stage it).
pub fn write_zarr(
    cfg: &SyntheticConfig,
    store: &Path,
    block: [usize; 3],
    chunk: [usize; 3],
    show_progress: bool,
) -> Result<(), SegmentError> {
    cfg.validate()?;
    crate::blockwise::check_block(block, chunk)?;
    let raw = ZarrVolume::create::<u8>(store, RAW, cfg.shape, chunk, cfg.voxel_nm)?;
    let bnd = ZarrVolume::create::<u8>(store, BOUNDARY, cfg.shape, chunk, cfg.voxel_nm)?;
    let lab = ZarrVolume::create::<u64>(store, LABELS, cfg.shape, chunk, cfg.voxel_nm)?;
    let t = tiles(cfg.shape, block);
    let pb = progress(t.len(), "generating", show_progress);
    for (lo, hi) in t {
        let r = region(cfg, lo, hi);
        raw.write(lo, &r.raw)?;
        bnd.write(lo, &r.boundary)?;
        lab.write(lo, &r.labels)?;
        pb.inc();
    }
    pb.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SyntheticConfig {
        SyntheticConfig { shape: [12, 40, 36], cell_nm: 120.0, ..Default::default() }
    }

    #[test]
    fn labels_are_the_nearest_seed_among_all_seeds() {
        let cfg = small();
        let r = region(&cfg, [0; 3], cfg.shape);
        let n = cfg.lattice();
        let mut all = Vec::new();
        for i in -1..=n[0] {
            for j in -1..=n[1] {
                for k in -1..=n[2] {
                    all.push((cfg.seed_of([i, j, k]), cfg.cell_key([i, j, k])));
                }
            }
        }
        for i in (0..r.labels.len()).step_by(7) {
            let c = r.labels.coords(i);
            let p = [0, 1, 2].map(|a| (c[a] as f64 + 0.5) * cfg.voxel_nm[a]);
            let d = |s: [f64; 3]| (0..3).map(|a| (p[a] - s[a]).powi(2)).sum::<f64>();
            let best = all.iter().min_by(|a, b| d(a.0).total_cmp(&d(b.0))).map(|s| s.1);
            assert_eq!(Some(r.labels.data[i]), best, "voxel {c:?}");
        }
        let mut ids = r.labels.data.clone();
        ids.sort_unstable();
        ids.dedup();
        assert!(ids.len() > 20, "{} cells", ids.len());
    }

    #[test]
    fn a_region_equals_the_same_voxels_of_the_whole_volume() {
        let cfg = small();
        let whole = region(&cfg, [0; 3], cfg.shape);
        let (lo, hi) = ([3, 11, 7], [12, 29, 36]);
        let part = region(&cfg, lo, hi);
        assert_eq!(part.raw, whole.raw.crop(lo, hi));
        assert_eq!(part.boundary, whole.boundary.crop(lo, hi));
        assert_eq!(part.labels, whole.labels.crop(lo, hi));
    }

    #[test]
    fn membranes_lie_on_label_changes() {
        // σ = 20 / 2.3548 ≈ 8.5 nm: the profile is below one half from 10 nm off a face on.
        let cfg = SyntheticConfig { noise: 0.0, cell_nm: 300.0, membrane_nm: 20.0, ..small() };
        let r = region(&cfg, [0; 3], cfg.shape);
        let (mut on_change, mut n_change, mut low_inside, mut n_inside) = (0u64, 0u64, 0u64, 0u64);
        for z in 0..cfg.shape[0] {
            for y in 0..cfg.shape[1] {
                for x in 0..cfg.shape[2] - 1 {
                    let i = r.labels.idx(z, y, x);
                    let b = r.boundary.data[i] as u64;
                    if r.labels.data[i] != r.labels.data[i + 1] {
                        (on_change, n_change) = (on_change + b, n_change + 1);
                    } else {
                        (low_inside, n_inside) = (low_inside + u64::from(b < 128), n_inside + 1);
                    }
                }
            }
        }
        let m_on = on_change as f64 / n_change as f64;
        let low = low_inside as f64 / n_inside as f64;
        assert!(n_change > 100 && m_on > 200.0 && low > 0.6, "boundary at label changes {m_on}, low inside {low}");
    }
}
