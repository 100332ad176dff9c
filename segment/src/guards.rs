//! Resource guards of the segmentation pipeline (issue 20): the memory and time of a run are estimated from
//! the volume's shape *before* anything is read or allocated, and refused beyond the limits of
//! [`neurotwin_io::budget`] (`--max-memory`, `--force`) with the estimate and what to shrink. A processing
//! block bounds only the boundary stage: the boundary map, the fragments and every segmentation are whole
//! volumes in memory (see the crate documentation), so a huge volume is refused even with `--block` — and
//! pointed to `--out-of-core` ([`crate::out_of_core`], which has its own estimate).
//!
//! **Memory** (bytes per voxel of the volume): raw EM 1 (u8; read whole for synapse detection, and at the
//! start for HDF5 input), boundary map 4 (f32), fragments 8 (u64) plus 8 while the fragment grid's cells are
//! assembled or the fragments counted, one segmentation per threshold 8 (u64) each, a ground truth 8 (u64).
//! The boundary stage needs [`BOUNDARY_STAGE_BYTES`] per voxel of the region it processes at once (the
//! whole volume, or one block with its context margin). A U-Net needs more (its feature maps): the
//! estimate is then a lower bound.
//!
//! **Time**: [`VOXEL_S`] per voxel, a lower bound (the membrane filter alone blurs the volume at two scales
//! and solves a 3 × 3 eigenproblem per voxel and scale).

use neurotwin_io::budget;

use crate::error::SegmentError;
use crate::membrane::margin_voxels;
use crate::pipeline::PipelineConfig;

/// Working memory of the membrane filter per voxel of the region it processes (bytes): the image in [0, 1],
/// a blurred copy and its blur buffer, the darkness map, the sheetness maximum and the result (f32 each) and
/// the darkness blur buffer.
pub const BOUNDARY_STAGE_BYTES: f64 = 28.0;
/// Lower bound of the time per voxel of the whole pipeline (s), all cores together.
pub const VOXEL_S: f64 = 2e-9;

/// What besides the raw volume a run reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// A boundary map is given (read whole; no boundary stage).
    pub boundary_given: bool,
    /// A ground-truth label volume is read (whole) for scoring.
    pub ground_truth: bool,
}

/// Estimated peak memory of a run on a volume of `shape` voxels (z, y, x) (bytes).
pub fn memory_bytes(shape: [usize; 3], voxel_nm: [f64; 3], cfg: &PipelineConfig, inputs: Inputs) -> f64 {
    let voxels = budget::product(&shape.map(|s| s as f64));
    let thresholds = cfg.thresholds.len() as f64;
    let kept = 1.0 + 4.0 + if inputs.ground_truth { 8.0 } else { 0.0 };
    let stage = if inputs.boundary_given {
        0.0
    } else {
        let region = match cfg.block {
            None => voxels,
            Some(b) => {
                let m = margin_voxels(&cfg.membrane, voxel_nm);
                budget::product(&[0, 1, 2].map(|a| (b[a].min(shape[a]) + 2 * m[a]).min(shape[a]) as f64))
            }
        };
        region * BOUNDARY_STAGE_BYTES
    };
    let later = voxels * (8.0 + 8.0 + 8.0 * thresholds);
    voxels * kept + stage.max(later)
}

/// Refuses a run on a volume of `shape` voxels whose memory or time exceeds the limits (memory first).
pub fn check_pipeline(
    shape: [usize; 3],
    voxel_nm: [f64; 3],
    cfg: &PipelineConfig,
    inputs: Inputs,
) -> Result<(), SegmentError> {
    let what = match cfg.block {
        Some(b) => format!("segmenting a volume of {shape:?} voxels (z, y, x) in blocks of {b:?}"),
        None => format!("segmenting a volume of {shape:?} voxels (z, y, x)"),
    };
    let fix = "segment it out of core (--out-of-core with --block, for a Zarr volume: every stage block by block), \
               or a smaller region of the volume (without --out-of-core a processing block bounds only the boundary \
               stage: the boundary map, the fragments and each segmentation are whole volumes of 4, 8 and 8 bytes per \
               voxel), give fewer --thresholds";
    let err = |e: neurotwin_io::IoError| SegmentError::Invalid(e.to_string());
    budget::check_memory(&what, memory_bytes(shape, voxel_nm, cfg, inputs), fix).map_err(err)?;
    let voxels = budget::product(&shape.map(|s| s as f64));
    budget::check_time(&what, voxels * VOXEL_S, "segment a smaller region of the volume").map_err(err)
}

/// Refuses reading `elements` values of `bytes_per_element` bytes each from dataset `name` of `path` when
/// that alone exceeds the memory limit (every whole-volume read checks this first).
pub fn check_read(
    path: &std::path::Path,
    name: &str,
    elements: f64,
    bytes_per_element: usize,
) -> Result<(), SegmentError> {
    let what = format!("reading it whole ({elements:.3e} values)");
    budget::check_memory(&what, elements * bytes_per_element as f64, "use a smaller volume or crop it first")
        .map_err(|e| SegmentError::dataset(path, name, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_volumes_dominate_and_a_block_bounds_only_the_boundary_stage() {
        let cfg = PipelineConfig::default(); // four thresholds
        let shape = [100, 1000, 1000];
        let v = 1e8;
        let whole = memory_bytes(shape, [10.0; 3], &cfg, Inputs::default());
        // raw + boundary kept, then max(28 B boundary stage, 16 + 4 × 8 B labels)
        assert_eq!(whole, v * (5.0 + 48.0));
        let blocked = memory_bytes(
            shape,
            [10.0; 3],
            &PipelineConfig { block: Some([64, 256, 256]), ..cfg.clone() },
            Inputs::default(),
        );
        assert_eq!(blocked, whole, "labels are whole volumes whatever the block");
        let one = PipelineConfig { thresholds: vec![0.5], ..cfg.clone() };
        let b = memory_bytes(shape, [10.0; 3], &one, Inputs::default());
        assert_eq!(b, v * (5.0 + 28.0), "the boundary stage of the whole volume dominates");
        let b =
            memory_bytes(shape, [10.0; 3], &PipelineConfig { block: Some([64, 256, 256]), ..one }, Inputs::default());
        assert_eq!(b, v * (5.0 + 24.0), "with a block the stage is small");
        let huge = memory_bytes([100_000; 3], [10.0; 3], &cfg, Inputs::default());
        assert!(huge > 5e16, "{huge}");
    }
}
