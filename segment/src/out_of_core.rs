//! Segmentation of volumes larger than memory: every stage runs block by block between chunked Zarr arrays,
//! and only the region adjacency graph of the fragments (a few hundred bytes per fragment, not per voxel)
//! is held whole.
//!
//! Passes, each over the processing blocks in z-major order (the block a multiple of the fragment grid):
//! 1. **Boundary** (raw EM input only): [`boundary_of_block`] (context read from the raw array, core
//!    kept) → `volumes/boundary` (f32).
//! 2. **Fragments**: the block's boundary map → seeded watershed per fragment-grid cell
//!    ([`fragments_of_block`], ids `(cell index << 32) | local id`) → `volumes/fragments` (u64); for every
//!    fragment its first voxel in the volume's scan order is kept (8 bytes per fragment).
//! 3. **Graph**: fragments and boundary of the block plus one plane beyond its high faces →
//!    [`build_core`]: the face pairs whose lower voxel lies in the block. The blocks' parts sum to the graph
//!    of the whole volume exactly (fixed-point integer sums).
//! 4. **Agglomeration** of the whole graph ([`agglomerate`], in memory), and the segments numbered 1..n in
//!    the order of their first voxel in scan order — the numbering [`renumber`](crate::watershed::renumber)
//!    gives a whole volume.
//! 5. **Relabelling**: the block's fragments → one segmentation per threshold
//!    (`volumes/segmentations/t{threshold}`, u64), and the contingency table against ground truth when one
//!    is given (VOI and adapted Rand from the table, [`scores_from_table`]).
//!
//! **Guarantee**: for every processing block that is a multiple of the fragment grid, the fragments and
//! every segmentation equal those of the in-memory pipeline ([`crate::pipeline::segment_boundary`] with the
//! same grid) voxel for voxel, labels included; the boundary map equals the whole-volume map bit for bit
//! ([`crate::boundary`]). So two block sizes give identical results (tested).
//!
//! **Memory**: one block (plus context for the boundary stage, one plane for the graph) of each array a pass
//! touches, the watershed's working set of the grid cells in flight, the codec buffers, and the graph
//! ([`GRAPH_BYTES_PER_FRAGMENT`]). [`memory_bytes`] estimates the block part before anything is read; the
//! graph is checked once the fragments are counted. The report gives the measured peak (VmHWM) beside the
//! estimate.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use neurotwin_io::budget;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::agglomerate::agglomerate;
use crate::blockwise::{check_block, fragments_of_block, progress, tiles};
use crate::boundary::{BoundaryModel, RawSource, boundary_of_block};
use crate::error::SegmentError;
use crate::guards::BOUNDARY_STAGE_BYTES;
use crate::metrics::{SegmentationScores, add_contingency, scores_from_table};
use crate::pipeline::{PipelineConfig, ThresholdResult};
use crate::rag::{Rag, build_core};
use crate::volume::Volume;
use crate::zarr::ZarrVolume;

/// Array of the boundary map computed from raw EM.
pub const BOUNDARY_ARRAY: &str = "volumes/boundary";
/// Array of the watershed fragments.
pub const FRAGMENTS_ARRAY: &str = "volumes/fragments";

/// Array of the segmentation at threshold `t` (the name the in-memory pipeline's HDF5 output uses).
pub fn segmentation_array(t: f64) -> String {
    format!("volumes/segmentations/t{t}")
}

/// Working memory of the seeded watershed per voxel of a fragment-grid cell (bytes): the cell's boundary
/// (f32), interior mask, distance transform and its 1D buffers (f64), maximum filter (f64), labels (u64),
/// the flood's priority queue (16 bytes per queued voxel) and the small-fragment maps.
pub const WATERSHED_BYTES: f64 = 64.0;

/// Memory of the region adjacency graph and the agglomeration per fragment (bytes): the graph's edge and
/// size maps, the agglomeration's adjacency maps and heap (about seven edges per fragment, each held in
/// both directions), the first-voxel and label tables.
pub const GRAPH_BYTES_PER_FRAGMENT: f64 = 1200.0;

/// Where the boundary map comes from.
pub enum Input<'a> {
    /// Raw EM read region by region and the boundary model; the map is written to [`BOUNDARY_ARRAY`].
    Raw { src: &'a dyn RawSource, model: &'a BoundaryModel },
    /// A boundary map (float in [0, 1] or uint8) read block by block, with the volume's voxel size (nm).
    Boundary { map: &'a ZarrVolume, voxel_nm: [f64; 3] },
}

impl Input<'_> {
    fn shape(&self) -> [usize; 3] {
        match self {
            Input::Raw { src, .. } => src.shape(),
            Input::Boundary { map, .. } => map.shape,
        }
    }
    fn voxel_nm(&self) -> [f64; 3] {
        match self {
            Input::Raw { src, .. } => src.voxel_nm(),
            Input::Boundary { voxel_nm, .. } => *voxel_nm,
        }
    }
}

/// Wall times of the passes (s).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutOfCoreTimings {
    pub boundary_s: f64,
    pub fragments_s: f64,
    pub graph_s: f64,
    pub agglomeration_s: f64,
    pub relabel_s: f64,
    pub total_s: f64,
}

/// What an out-of-core run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutOfCoreReport {
    pub shape: [usize; 3],
    pub voxel_nm: [f64; 3],
    pub block: [usize; 3],
    pub fragment_chunk: [usize; 3],
    pub blocks: usize,
    /// `membrane filter`, `U-Net (…)` or `given`.
    pub boundary_source: String,
    pub fragments: u64,
    pub graph_edges: u64,
    pub thresholds: Vec<ThresholdResult>,
    /// Arrays written to the output store.
    pub arrays: Vec<String>,
    /// Bytes a u64 label volume of this shape would take in memory.
    pub whole_label_volume_bytes: f64,
    /// Estimated peak memory (bytes): [`memory_bytes`] plus the graph.
    pub estimated_peak_bytes: f64,
    /// Measured peak resident memory of the process (bytes, VmHWM; 0 where unavailable).
    pub peak_rss_bytes: u64,
    pub timings: OutOfCoreTimings,
}

/// Estimated memory of the block passes (bytes) for a volume of `shape`: the largest of the passes' block
/// working sets, plus the codec buffers of the chunks in flight. `boundary_region` is the voxel count of one
/// block's read box for the boundary stage (`None` when the boundary map is given).
pub fn memory_bytes(shape: [usize; 3], cfg: &PipelineConfig, boundary_region: Option<f64>, scored: bool) -> f64 {
    let block = cfg.block.unwrap_or(shape);
    let clip = |b: [usize; 3], extra: usize| budget::product(&[0, 1, 2].map(|a| (b[a] + extra).min(shape[a]) as f64));
    let (core, plus_one) = (clip(block, 0), clip(block, 1));
    let cell = clip(cfg.fragment_chunk, 0);
    let in_flight = (rayon::current_num_threads() as f64).min((core / cell).ceil()).max(1.0);
    let thresholds = cfg.thresholds.len() as f64;
    let boundary_stage = boundary_region.map_or(0.0, |r| r * BOUNDARY_STAGE_BYTES + core * 4.0);
    let fragments = core * (4.0 + 8.0 + 8.0) + in_flight * cell * WATERSHED_BYTES;
    let graph = plus_one * (8.0 + 4.0);
    let relabel = core * (8.0 + 8.0 * thresholds.min(1.0) + if scored { 8.0 } else { 0.0 });
    let codec = in_flight * cell * 8.0 * 2.0;
    boundary_stage.max(fragments).max(graph).max(relabel) + codec
}

/// Segments the volume `input` describes into the Zarr store `store` (created; arrays [`FRAGMENTS_ARRAY`],
/// one [`segmentation_array`] per threshold, and [`BOUNDARY_ARRAY`] for raw input). `ground_truth` (same
/// shape) adds scores. `cfg.block` is required; `cfg.progress` shows one bar per pass. Not atomic: the
/// caller writes into a staging folder.
pub fn segment_out_of_core(
    input: &Input<'_>,
    store: &Path,
    ground_truth: Option<&ZarrVolume>,
    cfg: &PipelineConfig,
) -> Result<OutOfCoreReport, SegmentError> {
    cfg.validate()?;
    let t_all = Instant::now();
    let (shape, voxel_nm) = (input.shape(), input.voxel_nm());
    let Some(block) = cfg.block else {
        return Err(SegmentError::Invalid("out-of-core segmentation needs a processing block (--block Z,Y,X)".into()));
    };
    check_block(block, cfg.fragment_chunk)?;
    if cfg.edge_score != crate::pipeline::EdgeScore::Boundary {
        return Err(SegmentError::Invalid(
            "out-of-core segmentation scores edges by the boundary map only (edge_score \"boundary\"); affinity \
             scores run in memory"
                .into(),
        ));
    }
    if let Some(g) = ground_truth
        && g.shape != shape
    {
        return Err(SegmentError::Invalid(format!(
            "the ground truth {} has shape {:?} but the volume {:?} (z, y, x): they must match",
            g.name(),
            g.shape,
            shape
        )));
    }
    let chunk = [0, 1, 2].map(|a| cfg.fragment_chunk[a].min(shape[a]));
    let boundary_region = match input {
        Input::Raw { model, .. } => {
            let [plo, phi] = model.read_box([0; 3], [0, 1, 2].map(|a| block[a].min(shape[a])), shape, voxel_nm);
            Some(budget::product(&[0, 1, 2].map(|a| (phi[a] - plo[a]) as f64)))
        }
        Input::Boundary { .. } => None,
    };
    let estimate = memory_bytes(shape, cfg, boundary_region, ground_truth.is_some());
    let what = format!("segmenting a volume of {shape:?} voxels (z, y, x) out of core in blocks of {block:?}");
    let fix = "give a smaller --block (and --chunk, the fragment grid)";
    budget::check_memory(&what, estimate, fix).map_err(|e| SegmentError::Invalid(e.to_string()))?;
    let voxels = budget::product(&shape.map(|s| s as f64));
    budget::check_time(&what, voxels * crate::guards::VOXEL_S, "segment a smaller region of the volume")
        .map_err(|e| SegmentError::Invalid(e.to_string()))?;

    let t = tiles(shape, block);
    let mut timings = OutOfCoreTimings::default();
    let mut arrays = Vec::new();

    // 1. Boundary map (raw input only).
    let t0 = Instant::now();
    let computed;
    let (bmap, source) = match input {
        Input::Raw { src, model } => {
            let out = ZarrVolume::create::<f32>(store, BOUNDARY_ARRAY, shape, chunk, voxel_nm)?;
            let pb = progress(t.len(), "boundary", cfg.progress);
            for &(lo, hi) in &t {
                out.write(lo, &boundary_of_block(*src, model, lo, hi)?)?;
                pb.inc();
            }
            pb.finish();
            arrays.push(BOUNDARY_ARRAY.to_string());
            computed = out;
            (&computed, model.describe())
        }
        Input::Boundary { map, .. } => (*map, "given".to_string()),
    };
    timings.boundary_s = t0.elapsed().as_secs_f64();

    // 2. Fragments, and each fragment's first voxel in scan order.
    let t1 = Instant::now();
    let fragments = ZarrVolume::create::<u64>(store, FRAGMENTS_ARRAY, shape, chunk, voxel_nm)?;
    arrays.push(FRAGMENTS_ARRAY.to_string());
    let n_cells = tiles(shape, chunk).len();
    let mut firsts: Vec<Vec<u64>> = vec![Vec::new(); n_cells];
    let pb = progress(t.len(), "watershed", cfg.progress);
    let hidden = crate::blockwise::Progress::hidden();
    for &(lo, hi) in &t {
        let b = bmap.boundary(lo, hi, voxel_nm)?;
        let f = fragments_of_block(&b, lo, shape, &cfg.watershed, chunk, &hidden);
        fragments.write(lo, &f.labels)?;
        for (k, first) in f.firsts {
            firsts[k as usize] = first;
        }
        pb.inc();
    }
    pb.finish();
    timings.fragments_s = t1.elapsed().as_secs_f64();
    let n_fragments: u64 = firsts.iter().map(|f| f.len() as u64).sum();
    let graph_bytes = n_fragments as f64 * GRAPH_BYTES_PER_FRAGMENT;
    budget::check_memory(
        &format!("agglomerating {n_fragments} fragments"),
        graph_bytes + estimate,
        "raise the watershed's seed radius or minimum fragment size (fewer fragments), or give a larger fragment \
         grid (--chunk)",
    )
    .map_err(|e| SegmentError::Invalid(e.to_string()))?;

    // 3. The region adjacency graph, block by block.
    let t2 = Instant::now();
    let mut rag = Rag::default();
    let pb = progress(t.len(), "graph", cfg.progress);
    for &(lo, hi) in &t {
        let reach = [0, 1, 2].map(|a| (hi[a] + 1).min(shape[a]));
        let ext = [0, 1, 2].map(|a| reach[a] - lo[a]);
        let labels = Volume { shape: ext, voxel_nm, data: fragments.labels(lo, reach)? };
        let b = bmap.boundary(lo, reach, voxel_nm)?;
        rag.add(build_core(&labels, &b, [0, 1, 2].map(|a| hi[a] - lo[a])));
        pb.inc();
    }
    pb.finish();
    timings.graph_s = t2.elapsed().as_secs_f64();
    let graph_edges = rag.edges.len() as u64;

    // 4. Agglomeration and the numbering of the segments.
    let t3 = Instant::now();
    let ag = agglomerate(&rag, &cfg.thresholds);
    drop(rag);
    let tables: Vec<(Vec<Vec<u64>>, u64)> = ag.maps.iter().map(|m| label_tables(m, &firsts)).collect();
    drop(ag);
    timings.agglomeration_s = t3.elapsed().as_secs_f64();

    // 5. Relabelling (and the contingency tables against ground truth).
    let t4 = Instant::now();
    let outputs: Vec<ZarrVolume> = cfg
        .thresholds
        .iter()
        .map(|&th| ZarrVolume::create::<u64>(store, &segmentation_array(th), shape, chunk, voxel_nm))
        .collect::<Result<_, _>>()?;
    arrays.extend(outputs.iter().map(|o| o.name().to_string()));
    let mut tables_gt: Vec<HashMap<(u64, u64), u64>> = vec![HashMap::new(); cfg.thresholds.len()];
    let pb = progress(t.len(), "relabel", cfg.progress);
    for &(lo, hi) in &t {
        let core = [0, 1, 2].map(|a| hi[a] - lo[a]);
        let frag = fragments.labels(lo, hi)?;
        let gt = ground_truth.map(|g| g.labels(lo, hi)).transpose()?;
        for ((out, (table, _)), counts) in outputs.iter().zip(&tables).zip(tables_gt.iter_mut()) {
            let seg: Vec<u64> =
                frag.par_iter().map(|&f| table[(f >> 32) as usize][(f & 0xFFFF_FFFF) as usize - 1]).collect();
            if let Some(g) = &gt {
                add_contingency(counts, &seg, g);
            }
            out.write(lo, &Volume { shape: core, voxel_nm, data: seg })?;
        }
        pb.inc();
    }
    pb.finish();
    timings.relabel_s = t4.elapsed().as_secs_f64();

    let thresholds = cfg
        .thresholds
        .iter()
        .zip(&tables)
        .zip(&tables_gt)
        .map(|((&threshold, (_, segments)), counts)| {
            let scores: Option<SegmentationScores> =
                ground_truth.map(|_| scores_from_table(counts, voxels as u64)).transpose()?;
            Ok(ThresholdResult { threshold, segments: *segments as usize, scores })
        })
        .collect::<Result<Vec<_>, SegmentError>>()?;
    timings.total_s = t_all.elapsed().as_secs_f64();
    Ok(OutOfCoreReport {
        shape,
        voxel_nm,
        block,
        fragment_chunk: cfg.fragment_chunk,
        blocks: t.len(),
        boundary_source: source,
        fragments: n_fragments,
        graph_edges,
        thresholds,
        arrays,
        whole_label_volume_bytes: voxels * 8.0,
        estimated_peak_bytes: estimate + graph_bytes,
        peak_rss_bytes: budget::peak_rss_bytes(),
        timings,
    })
}

/// For one agglomeration (`map`: fragment → segment root), the final label of every fragment, as
/// `tables[cell][local id − 1]`, and the number of segments. Segments are numbered 1..=n in the order of
/// their first voxel in the volume's scan order (`firsts[cell][local id − 1]`).
fn label_tables(map: &HashMap<u64, u64>, firsts: &[Vec<u64>]) -> (Vec<Vec<u64>>, u64) {
    let id = |k: usize, l: usize| ((k as u64) << 32) | (l as u64 + 1);
    let root = |k: usize, l: usize| map.get(&id(k, l)).copied().unwrap_or(id(k, l));
    let mut root_first: HashMap<u64, u64> = HashMap::new();
    for (k, cell) in firsts.iter().enumerate() {
        for (l, &first) in cell.iter().enumerate() {
            let e = root_first.entry(root(k, l)).or_insert(u64::MAX);
            *e = (*e).min(first);
        }
    }
    let mut order: Vec<(u64, u64)> = root_first.into_iter().map(|(r, f)| (f, r)).collect();
    order.sort_unstable();
    let label: HashMap<u64, u64> = order.iter().enumerate().map(|(i, &(_, r))| (r, i as u64 + 1)).collect();
    let tables =
        firsts.iter().enumerate().map(|(k, cell)| (0..cell.len()).map(|l| label[&root(k, l)]).collect()).collect();
    (tables, order.len() as u64)
}
