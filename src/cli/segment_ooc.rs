//! `neurotwin segment VOLUME.zarr --out-of-core --block Z,Y,X -o OUT`: segmentation of a Zarr volume larger than
//! memory, every stage block by block (`neurotwin_segment::out_of_core`); outputs `segmentation.zarr` (fragments,
//! one segmentation per threshold, the boundary map when computed) and `report.json`, published together.
//! And `neurotwin segment synthetic`: a synthetic Zarr volume of any size with exact ground truth, to try it.

use std::path::{Path, PathBuf};

use anyhow::bail;
use neurotwin_io::budget::human_bytes;
use neurotwin_segment::boundary::{BoundaryModel, RawSource};
use neurotwin_segment::io::NEURON_IDS;
use neurotwin_segment::out_of_core::{Input, OutOfCoreReport, segment_out_of_core};
use neurotwin_segment::output::{write_all, write_json};
use neurotwin_segment::pipeline::PipelineConfig;
use neurotwin_segment::synthetic::{self, SyntheticConfig};
use neurotwin_segment::zarr::{ZarrVolume, is_zarr};

use super::segment::{SegmentArgs, file_dataset, three};
use super::table::render;

/// The output store of an out-of-core run, inside the output folder.
pub const STORE: &str = "segmentation.zarr";

/// Runs the out-of-core pipeline `a` asks for (with `cfg` from the flags) and publishes its outputs.
pub(super) fn out_of_core_outcome(
    a: &SegmentArgs,
    cfg: &PipelineConfig,
    run_dir: neurotwin_io::run_dir::RunDir,
    src: &dyn RawSource,
) -> anyhow::Result<(OutOfCoreReport, serde_json::Value)> {
    let volume = a.volume.as_deref().unwrap_or(Path::new(""));
    if !is_zarr(volume) {
        bail!(
            "{}: --out-of-core reads a Zarr store (a directory) region by region; an HDF5 file is read whole — \
             convert it to Zarr (e.g. with zarr-python) or drop --out-of-core",
            volume.display()
        );
    }
    if a.synapses.is_some() || a.gt_synapses.is_some() {
        bail!("--out-of-core segments only (no synapses or connectome): drop --synapses / --gt-synapses");
    }
    let (shape, voxel_nm) = (src.shape(), src.voxel_nm());
    let open = |spec: &str, default: Option<&str>, flag: &str| -> anyhow::Result<ZarrVolume> {
        let (f, d) = file_dataset(spec, default, flag)?;
        if !is_zarr(&f) {
            bail!("{flag} {spec}: --out-of-core reads Zarr arrays (STORE.zarr:ARRAY), not HDF5");
        }
        let v = ZarrVolume::open(&f, &d)?;
        if v.shape != shape {
            bail!("{}: array `{d}` has shape {:?} but the raw volume {:?} (z, y, x)", f.display(), v.shape, shape);
        }
        Ok(v)
    };
    let map = a.boundary.as_deref().map(|s| open(s, None, "--boundary")).transpose()?;
    let gt = a.ground_truth.as_deref().map(|s| open(s, Some(NEURON_IDS), "--ground-truth")).transpose()?;
    let store = run_dir.staging().join(STORE);
    let report = match &map {
        Some(map) => segment_out_of_core(&Input::Boundary { map, voxel_nm }, &store, gt.as_ref(), cfg)?,
        None => {
            let model = BoundaryModel::load(&cfg.boundary, &cfg.membrane, src, cfg.block)?;
            segment_out_of_core(&Input::Raw { src, model: &model }, &store, gt.as_ref(), cfg)?
        }
    };
    let json = serde_json::json!({
        "input": { "volume": volume, "raw_dataset": a.raw_dataset, "boundary": a.boundary,
                   "ground_truth": a.ground_truth, "cnn": a.cnn, "format": "zarr", "out_of_core": true },
        "config": cfg,
        "report": report,
        "store": STORE,
    });
    write_all(run_dir, vec![("report.json", Box::new(|p: &Path| write_json(p, &json)))])?;
    Ok((report, json))
}

/// Prints an out-of-core run's summary and its table of thresholds.
pub(super) fn print_out_of_core(r: &OutOfCoreReport, out_dir: &Path) {
    println!(
        "{:?} voxels of {:?} nm in {} blocks of {:?}, boundary: {}, {} fragments, {} graph edges ({:.1} s: boundary \
         {:.1}, watershed {:.1}, graph {:.1}, agglomeration {:.1}, relabelling {:.1})",
        r.shape,
        r.voxel_nm,
        r.blocks,
        r.block,
        r.boundary_source,
        r.fragments,
        r.graph_edges,
        r.timings.total_s,
        r.timings.boundary_s,
        r.timings.fragments_s,
        r.timings.graph_s,
        r.timings.agglomeration_s,
        r.timings.relabel_s
    );
    println!(
        "memory: peak {} resident (estimate {}); one u64 label volume of this shape would take {}",
        human_bytes(r.peak_rss_bytes as f64),
        human_bytes(r.estimated_peak_bytes),
        human_bytes(r.whole_label_volume_bytes)
    );
    let scored = r.thresholds.iter().any(|t| t.scores.is_some());
    let rows: Vec<Vec<String>> = r
        .thresholds
        .iter()
        .map(|t| {
            let mut row = vec![t.threshold.to_string(), t.segments.to_string()];
            if let Some(s) = &t.scores {
                row.extend([s.voi_split, s.voi_merge, s.voi(), s.adapted_rand_error].map(|v| format!("{v:.4}")));
            }
            row
        })
        .collect();
    let header: &[&str] = if scored {
        &["threshold", "segments", "VOI split", "VOI merge", "VOI", "adapted Rand error"]
    } else {
        &["threshold", "segments"]
    };
    println!("{}", render(header, &rows));
    println!("wrote {} and report.json in {}", STORE, out_dir.display());
}

#[derive(clap::Args, Debug)]
pub struct SyntheticArgs {
    /// Output folder (created): synthetic.zarr with volumes/raw, volumes/boundary (uint8) and
    /// volumes/labels/neuron_ids (uint64 ground truth).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Voxels Z,Y,X.
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X")]
    pub shape: Vec<usize>,
    /// Voxel size Z,Y,X in nm.
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X", default_value = "10,10,10")]
    pub voxel_size: Vec<f64>,
    /// Lattice spacing of the cells (nm).
    #[arg(long, default_value_t = 400.0)]
    pub cell_nm: f64,
    /// Full width at half maximum of the membranes (nm).
    #[arg(long, default_value_t = 40.0)]
    pub membrane_nm: f64,
    /// Standard deviation of the noise ([0, 1] intensity units).
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Generation block Z,Y,X (a multiple of --chunk).
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X", default_value = "128,512,512")]
    pub block: Vec<usize>,
    /// Zarr chunk Z,Y,X.
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X", default_value = "64,256,256")]
    pub chunk: Vec<usize>,
    /// Replace the files of an earlier run in the output folder.
    #[arg(long)]
    pub overwrite: bool,
}

/// `neurotwin segment synthetic`: writes the volume, then prints what it wrote.
pub fn synthetic_command(a: &SyntheticArgs) -> anyhow::Result<()> {
    let (cfg, store) = synthetic_outcome(a)?;
    let voxels = neurotwin_io::budget::product(&cfg.shape.map(|s| s as f64));
    println!(
        "wrote {} ({:?} voxels of {:?} nm; uncompressed {} of raw, {} of boundary, {} of labels)",
        store.display(),
        cfg.shape,
        cfg.voxel_nm,
        human_bytes(voxels),
        human_bytes(voxels),
        human_bytes(voxels * 8.0)
    );
    Ok(())
}

/// Writes the synthetic volume `a` asks for block by block and publishes it; returns its configuration and
/// the store's path.
pub fn synthetic_outcome(a: &SyntheticArgs) -> anyhow::Result<(SyntheticConfig, PathBuf)> {
    let cfg = SyntheticConfig {
        shape: three(&a.shape, "--shape")?,
        voxel_nm: three(&a.voxel_size, "--voxel-size")?,
        cell_nm: a.cell_nm,
        membrane_nm: a.membrane_nm,
        noise: a.noise,
        seed: a.seed,
    };
    cfg.validate()?;
    let (block, chunk) = (three(&a.block, "--block")?, three(&a.chunk, "--chunk")?);
    let voxels = neurotwin_io::budget::product(&cfg.shape.map(|s| s as f64));
    let block_voxels = neurotwin_io::budget::product(&[0, 1, 2].map(|k| block[k].min(cfg.shape[k]) as f64));
    neurotwin_io::budget::check_memory(
        &format!("generating blocks of {block:?} voxels"),
        block_voxels * 10.0 * 2.0,
        "give a smaller --block",
    )?;
    neurotwin_io::budget::check_time(
        &format!("generating {voxels:.3e} voxels"),
        voxels * 5e-9,
        "give a smaller --shape",
    )?;
    let run_dir = neurotwin_io::run_dir::RunDir::create(
        &a.out,
        "neurotwin segment synthetic",
        neurotwin_io::inputs::InputSet::new(),
        a.overwrite,
        &[],
    )?;
    let store = run_dir.staging().join("synthetic.zarr");
    synthetic::write_zarr(&cfg, &store, block, chunk, true)?;
    run_dir.commit()?;
    Ok((cfg, a.out.join("synthetic.zarr")))
}
