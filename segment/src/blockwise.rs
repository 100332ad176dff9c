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

/// Progress over a count of blocks: a bar on a terminal; elsewhere (a log file, a batch job) one plain line on
/// stderr at every tenth of the way, since indicatif draws nothing without a terminal and a long out-of-core run
/// would otherwise print nothing for an hour.
pub struct Progress {
    bar: ProgressBar,
    plain: Option<PlainProgress>,
}

struct PlainProgress {
    what: String,
    total: u64,
    done: std::sync::atomic::AtomicU64,
    start: std::time::Instant,
}

impl Progress {
    /// Shows nothing.
    pub fn hidden() -> Self {
        Self { bar: ProgressBar::hidden(), plain: None }
    }

    /// One more block done (callable from several threads).
    pub fn inc(&self) {
        self.bar.inc(1);
        if let Some(p) = &self.plain {
            let done = p.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if done == p.total || (done * 10 / p.total.max(1)) != ((done - 1) * 10 / p.total.max(1)) {
                eprintln!("{}: {done}/{} blocks ({:.0} s)", p.what, p.total, p.start.elapsed().as_secs_f64());
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Progress over `n` blocks labelled `what` (nothing unless `show`).
pub fn progress(n: usize, what: &str, show: bool) -> Progress {
    use std::io::IsTerminal;
    if !show {
        return Progress::hidden();
    }
    if !std::io::stderr().is_terminal() {
        let plain =
            PlainProgress { what: what.to_string(), total: n as u64, done: 0.into(), start: std::time::Instant::now() };
        return Progress { bar: ProgressBar::hidden(), plain: Some(plain) };
    }
    let pb = ProgressBar::new(n as u64);
    if let Ok(s) = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} blocks ({elapsed})") {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    Progress { bar: pb, plain: None }
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
        pb.inc();
    }
    pb.finish();
    out
}

/// Index of the fragment-grid cell with low corner `lo` (a multiple of `chunk`) in a volume of `shape`: the
/// cells numbered z-major over the whole volume, as [`tiles`] lists them.
pub fn chunk_index(lo: [usize; 3], shape: [usize; 3], chunk: [usize; 3]) -> u64 {
    let n = [0, 1, 2].map(|a| shape[a].div_ceil(chunk[a]) as u64);
    let c = [0, 1, 2].map(|a| (lo[a] / chunk[a]) as u64);
    (c[0] * n[1] + c[1]) * n[2] + c[2]
}

/// The fragments of one processing block.
#[derive(Clone, Debug)]
pub struct BlockFragments {
    /// Fragment ids `(chunk index << 32) | local id` of the block's voxels.
    pub labels: Volume<u64>,
    /// For each fragment-grid cell of the block: its index ([`chunk_index`]) and, for local ids 1..=n in
    /// order, the fragment's first voxel in the volume's scan order (linear index `(z · ny + y) · nx + x` of
    /// the whole volume) — what numbers the segments in scan order without holding the volume.
    pub firsts: Vec<(u64, Vec<u64>)>,
}

/// Fragments of the block at `lo` of a volume of `volume_shape` whose boundary map is `boundary`, on the
/// fragment grid `chunk` (`lo` a multiple of it); cells run in parallel (rayon). Ids and results depend only
/// on the cell, never on the block.
pub fn fragments_of_block(
    boundary: &Volume<f32>,
    lo: [usize; 3],
    volume_shape: [usize; 3],
    cfg: &WatershedConfig,
    chunk: [usize; 3],
    pb: &Progress,
) -> BlockFragments {
    let t = tiles(boundary.shape, chunk);
    let parts: Vec<(Volume<u64>, u64, Vec<u64>)> = t
        .par_iter()
        .map(|&(clo, chi)| {
            let (mut f, n) = fragments(&boundary.crop(clo, chi), cfg);
            let g = [0, 1, 2].map(|a| lo[a] + clo[a]);
            let k = chunk_index(g, volume_shape, chunk);
            let mut first = vec![u64::MAX; n as usize];
            let [ny, nx] = [volume_shape[1] as u64, volume_shape[2] as u64];
            let mut i = 0;
            for z in 0..f.shape[0] {
                for y in 0..f.shape[1] {
                    let row = ((g[0] + z) as u64 * ny + (g[1] + y) as u64) * nx + g[2] as u64;
                    for x in 0..f.shape[2] {
                        let l = f.data[i] as usize - 1;
                        first[l] = first[l].min(row + x as u64);
                        i += 1;
                    }
                }
            }
            f.data.iter_mut().for_each(|l| *l |= k << 32);
            pb.inc();
            (f, k, first)
        })
        .collect();
    let mut labels = Volume::filled(boundary.shape, boundary.voxel_nm, 0u64);
    let mut firsts = Vec::with_capacity(parts.len());
    for ((clo, _), (p, k, first)) in t.iter().zip(parts) {
        paste(&mut labels, *clo, &p);
        firsts.push((k, first));
    }
    BlockFragments { labels, firsts }
}

/// Fragments of a boundary map on the fragment grid `chunk`, ids `(chunk index << 32) | local id`;
/// chunks run in parallel (rayon).
pub fn fragments_chunked(
    boundary: &Volume<f32>,
    cfg: &WatershedConfig,
    chunk: [usize; 3],
    show_progress: bool,
) -> Volume<u64> {
    let pb = progress(tiles(boundary.shape, chunk).len(), "watershed", show_progress);
    let out = fragments_of_block(boundary, [0; 3], boundary.shape, cfg, chunk, &pb).labels;
    pb.finish();
    out
}
