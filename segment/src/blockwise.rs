//! Block-wise processing with overlap and consistent labels across blocks.
//!
//! Design (after the block-wise pipeline of Funke et al. 2018, IEEE TPAMI 41:1669, with daisy):
//! - the boundary source (membrane filter or U-Net, [`crate::boundary::boundary_blockwise`]) runs on each
//!   block padded by its context margin; only the block's core is kept. Both are local and the filter's
//!   global input (the intensity range) is computed once for the whole volume, so the boundary map is
//!   bit-identical to a whole-volume run ([`boundary_map_blockwise`] is the membrane filter alone on an
//!   in-memory volume);
//! - fragments (seeded watershed) are computed per cell of a fixed *fragment grid* (`chunk` voxels,
//!   part of the algorithm, not of the processing); a fragment's global id is
//!   `(chunk index << 32) | local id`, so ids agree whatever block processed the chunk;
//! - the region adjacency graph is built over the whole label volume (edges crossing block and chunk faces
//!   included; fixed-point sums, so the graph does not depend on the order of accumulation) and
//!   agglomeration stitches fragments across faces with union-find (crate::agglomerate).
//!
//! What holds exactly: for any processing block that is a multiple of the fragment chunk, the
//! segmentation is identical (label for label) to processing the volume as one block with the same
//! chunk grid. It is *not* identical to a watershed without a chunk grid: fragments are cut at chunk
//! faces and re-joined by agglomeration (they are usually joined, since the cut runs through cell interior
//! with low boundary values).

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::error::SegmentError;
use crate::membrane::{MembraneConfig, boundary_map, margin_voxels};
use crate::volume::Volume;
use crate::watershed::{WatershedConfig, fragments};

/// Boxes `[lo, hi)` tiling `shape` with step `block` (z-major order).
pub fn tiles(shape: [usize; 3], block: [usize; 3]) -> Vec<([usize; 3], [usize; 3])> {
    let mut out = Vec::new();
    for z in (0..shape[0]).step_by(block[0]) {
        for y in (0..shape[1]).step_by(block[1]) {
            for x in (0..shape[2]).step_by(block[2]) {
                let lo = [z, y, x];
                let hi = [(z + block[0]).min(shape[0]), (y + block[1]).min(shape[1]), (x + block[2]).min(shape[2])];
                out.push((lo, hi));
            }
        }
    }
    out
}

fn progress(n: usize, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(n as u64);
    if let Ok(s) = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} blocks ({elapsed})") {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

/// Checks a block size against the volume and the fragment chunk.
pub fn check_block(block: [usize; 3], chunk: [usize; 3]) -> Result<(), SegmentError> {
    if block.contains(&0) || chunk.contains(&0) {
        return Err(SegmentError::Invalid(format!(
            "block {block:?} and fragment chunk {chunk:?} (voxels, z y x) must be positive"
        )));
    }
    if (0..3).any(|a| !block[a].is_multiple_of(chunk[a])) {
        return Err(SegmentError::Invalid(format!(
            "block {block:?} must be a multiple of the fragment chunk {chunk:?} along every axis (voxels, z y x)"
        )));
    }
    Ok(())
}

/// Copies `core` (a volume of the block's core) into `dst` at `lo`.
pub fn paste<T: Copy>(dst: &mut Volume<T>, lo: [usize; 3], core: &Volume<T>) {
    for z in 0..core.shape[0] {
        for y in 0..core.shape[1] {
            let s = core.idx(z, y, 0);
            let d = dst.idx(lo[0] + z, lo[1] + y, lo[2]);
            dst.data[d..d + core.shape[2]].copy_from_slice(&core.data[s..s + core.shape[2]]);
        }
    }
}

/// Boundary map of `raw`, block by block (`block = None`: in one piece). `range` is the global
/// intensity range ([`crate::membrane::intensity_range`]).
pub fn boundary_map_blockwise(
    raw: &Volume<u8>,
    cfg: &MembraneConfig,
    range: (f32, f32),
    block: Option<[usize; 3]>,
    show_progress: bool,
) -> Volume<f32> {
    let Some(block) = block else {
        return boundary_map(raw, cfg, range);
    };
    let m = margin_voxels(cfg, raw.voxel_nm);
    let mut out = Volume::filled(raw.shape, raw.voxel_nm, 0f32);
    let t = tiles(raw.shape, block);
    let pb = progress(t.len(), "membranes", show_progress);
    for (lo, hi) in t {
        let plo = [0, 1, 2].map(|a| lo[a].saturating_sub(m[a]));
        let phi = [0, 1, 2].map(|a| (hi[a] + m[a]).min(raw.shape[a]));
        let b = boundary_map(&raw.crop(plo, phi), cfg, range);
        let core = b.crop([0, 1, 2].map(|a| lo[a] - plo[a]), [0, 1, 2].map(|a| hi[a] - plo[a]));
        paste(&mut out, lo, &core);
        pb.inc(1);
    }
    pb.finish_and_clear();
    out
}

/// Fragments of a boundary map on the fragment grid `chunk`, ids `(chunk index << 32) | local id`;
/// chunks run in parallel (rayon).
pub fn fragments_chunked(
    boundary: &Volume<f32>,
    cfg: &WatershedConfig,
    chunk: [usize; 3],
    show_progress: bool,
) -> Volume<u64> {
    let t = tiles(boundary.shape, chunk);
    let pb = progress(t.len(), "watershed", show_progress);
    let parts: Vec<Volume<u64>> = t
        .par_iter()
        .enumerate()
        .map(|(k, &(lo, hi))| {
            let (mut f, _) = fragments(&boundary.crop(lo, hi), cfg);
            f.data.iter_mut().for_each(|l| *l |= (k as u64) << 32);
            pb.inc(1);
            f
        })
        .collect();
    pb.finish_and_clear();
    let mut out = Volume::filled(boundary.shape, boundary.voxel_nm, 0u64);
    for ((lo, _), p) in t.iter().zip(&parts) {
        paste(&mut out, *lo, p);
    }
    out
}
