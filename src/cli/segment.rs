//! `neurotwin segment`: EM volume → boundary map → segmentation → synapses → connectome, scored against
//! ground truth when given. Outputs (all-or-nothing): `segmentation.h5`, `connectome.h5`, `report.json`.
//!
//! Input is HDF5 (a file) or Zarr v3/v2 (a directory store, read with `zarrs`); the boundary map comes from
//! the membrane filter, a U-Net (`--cnn WEIGHTS.safetensors`) or a given map (`--boundary`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use neurotwin_segment::boundary::{BoundarySource, RawSource};
use neurotwin_segment::cnn::{BackendKind, check_cnn_backend};
use neurotwin_segment::io::{
    Data, NEURON_IDS, PartnerSites, read_boundary, read_labels, read_partner_sites, read_raw, write_volumes,
};
use neurotwin_segment::metrics::{evaluate, match_synapses};
use neurotwin_segment::output::{Writer, write_all, write_json};
use neurotwin_segment::pipeline::{PipelineConfig, PipelineOutput, PipelineReport, run_source};
use neurotwin_segment::synapses::{SynapsePoint, read_points_csv};
use neurotwin_segment::volume::Volume;
use neurotwin_segment::zarr::{self, ZarrRaw, is_zarr};

use super::table::render;

/// Voxel size assumed when the volume has no `resolution` attribute and no --voxel-size is given.
const DEFAULT_VOXEL_NM: [f64; 3] = [10.0, 10.0, 10.0];

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SegmentArgs {
    #[command(subcommand)]
    pub action: Option<SegmentAction>,
    /// EM volume: an HDF5 file (CREMI layout `volumes/raw`, or any 3D uint8 dataset, see --raw-dataset) or a
    /// Zarr v3/v2 store (a directory; the array path inside it by --raw-dataset; voxel size from the array
    /// attribute `resolution` or `voxel_size`, nm z y x). With --block, the boundary stage reads a Zarr
    /// volume block by block.
    #[arg(required = true)]
    pub volume: Option<PathBuf>,
    /// Output folder (created): segmentation.h5, connectome.h5, report.json.
    #[arg(short, long, required = true)]
    pub out: Option<PathBuf>,
    /// Dataset (HDF5) or array path (Zarr) holding the raw EM (uint8, z y x).
    #[arg(long, default_value = "volumes/raw")]
    pub raw_dataset: String,
    /// Use this boundary map instead of the membrane filter: FILE:DATASET (HDF5) or STORE.zarr:ARRAY (Zarr);
    /// float in [0, 1] or uint8.
    #[arg(long, value_name = "FILE:DATASET")]
    pub boundary: Option<String>,
    /// Ground-truth labels, FILE[:DATASET] (HDF5) or STORE.zarr[:ARRAY] (Zarr; integer labels), default
    /// dataset volumes/labels/neuron_ids; 0 = ignored. With CREMI synapse annotations in an HDF5 FILE,
    /// synapse precision/recall/F1 are reported too.
    #[arg(long, value_name = "FILE[:DATASET]")]
    pub ground_truth: Option<String>,
    /// Agglomeration thresholds (mean boundary, 0..1); the first gives the connectome.
    #[arg(long, value_delimiter = ',', value_name = "T1,T2,...")]
    pub thresholds: Option<Vec<f64>>,
    /// Process in blocks of Z,Y,X voxels (a multiple of --chunk).
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X")]
    pub block: Option<Vec<usize>>,
    /// Fragment grid Z,Y,X voxels (watershed per grid cell; default 64,256,256).
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X")]
    pub chunk: Option<Vec<usize>>,
    /// Voxel size Z,Y,X in nm (overrides the file's `resolution`; default 10,10,10 when absent).
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X")]
    pub voxel_size: Option<Vec<f64>>,
    /// Annotated synapse points instead of cleft detection: CSV with z,y,x (nm) and optional pre,post.
    #[arg(long, value_name = "CSV")]
    pub synapses: Option<PathBuf>,
    /// Annotated true synapse points for precision/recall/F1: CSV with z,y,x (nm) (instead of the
    /// ground-truth file's CREMI annotations).
    #[arg(long, value_name = "CSV")]
    pub gt_synapses: Option<PathBuf>,
    /// Segments with at least this many voxels become neurons (default 500).
    #[arg(long)]
    pub min_neuron_voxels: Option<u64>,
    /// Matching radius (nm) for synapse precision/recall against ground truth.
    #[arg(long, default_value_t = 100.0)]
    pub synapse_radius: f64,
    /// Boundary map from a 3D U-Net with these weights (safetensors, layout of neurotwin_segment::cnn)
    /// instead of the membrane filter. Raw u8 is fed as v/255; an affinity network's boundary is
    /// 1 - mean of its 3 affinities.
    #[arg(long, value_name = "WEIGHTS.safetensors")]
    pub cnn: Option<PathBuf>,
    /// Where the U-Net runs: cpu (rayon), cuda (GPU 0; refused with the reason when none is usable), auto (the
    /// GPU when usable, else the CPU) or cuda-host (the CUDA kernels built for the host); all bit-identical.
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub cnn_backend: Option<BackendKind>,
    /// Boundary map from raw EM: `unet` (the shipped U-Net trained on FIB-SEM, segment/weights/MODEL_CARD.md)
    /// or `sheetness` (the multi-scale Hessian membrane filter, no training); default: the configuration's.
    #[arg(long, value_enum, value_name = "METHOD")]
    pub boundary_source: Option<BoundaryChoice>,
    /// Pipeline configuration (JSON; fields of PipelineConfig, missing ones take their defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Replace the files of an earlier run in the output folder (only those; inputs are never replaced).
    #[arg(long)]
    pub overwrite: bool,
    /// Segment a Zarr volume larger than memory: every stage block by block (--block required) between Zarr
    /// arrays, writing segmentation.zarr (fragments, one segmentation per threshold, the boundary map when
    /// computed) and report.json; no synapses or connectome. Results equal the in-memory run voxel for voxel.
    #[arg(long)]
    pub out_of_core: bool,
    /// What scores a region-graph edge: `boundary` (mean boundary value on the contact) or `affinity` (one minus
    /// the mean affinity across it; needs an affinity U-Net, --cnn); default: the configuration's.
    #[arg(long, value_enum, value_name = "SCORE")]
    pub edge_score: Option<neurotwin_segment::pipeline::EdgeScore>,
}

/// `--boundary-source`: the boundary map made from raw EM without a weights file.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundaryChoice {
    /// The multi-scale Hessian sheetness membrane filter.
    Sheetness,
    /// The shipped U-Net.
    Unet,
}

/// The subcommands of `neurotwin segment`.
#[derive(clap::Subcommand, Debug)]
pub enum SegmentAction {
    /// Score a segmentation against ground truth: VOI split and merge (bits), adapted Rand error and the CREMI
    /// score sqrt(VOI · adapted Rand error), over the voxels whose ground-truth label is not 0 (CREMI's
    /// definitions). Any label volume scores, ours or another tool's.
    Score(ScoreArgs),
    /// Choose the agglomeration threshold honestly: segment the first --tune-slices z-slices, pick the threshold
    /// with the lowest VOI against their ground truth, and report that threshold's scores on the remaining
    /// (held-out) slices, which play no part in the choice. Writes the result and a --config file.
    Tune(TuneArgs),
    /// Write a synthetic EM volume of any size (Voronoi cells of a jittered lattice, exact ground truth) as Zarr,
    /// block by block: raw EM, a boundary map and labels, e.g. to try --out-of-core on more voxels than memory.
    Synthetic(super::segment_ooc::SyntheticArgs),
    /// Train a boundary U-Net on raw EM with ground-truth labels (slices [0, K) train, the rest validate); writes
    /// unet.safetensors (for --cnn), training.json and loss.png.
    Train(super::segment_train::TrainArgs),
}

#[derive(clap::Args, Debug)]
pub struct TuneArgs {
    /// EM volume: an HDF5 file (dataset by --raw-dataset).
    pub volume: PathBuf,
    /// Ground-truth labels, FILE[:DATASET] (default volumes/labels/neuron_ids); 0 = ignored.
    #[arg(long, value_name = "FILE[:DATASET]")]
    pub ground_truth: String,
    /// Slices [0, K) along z tune the threshold; slices [K, end) are held out and only reported.
    #[arg(long, value_name = "K")]
    pub tune_slices: usize,
    /// Output: the tuning result as JSON (`config` inside is a --config for `neurotwin segment`).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Dataset holding the raw EM (uint8, z y x).
    #[arg(long, default_value = "volumes/raw")]
    pub raw_dataset: String,
    /// A boundary map instead of the membrane filter, FILE:DATASET (as `segment --boundary`).
    #[arg(long, value_name = "FILE:DATASET")]
    pub boundary: Option<String>,
    /// Pipeline configuration (JSON, as `segment --config`); its thresholds are replaced by the grid.
    #[arg(long, value_name = "JSON")]
    pub config: Option<PathBuf>,
    /// Boundary map from a 3D U-Net with these weights (as `segment --cnn`).
    #[arg(long, value_name = "WEIGHTS.safetensors", conflicts_with = "boundary")]
    pub cnn: Option<PathBuf>,
    /// Where the U-Net runs (as `segment --cnn-backend`).
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub cnn_backend: Option<BackendKind>,
    /// Candidate thresholds (default 0.1, 0.2, …, 0.9).
    #[arg(long, value_delimiter = ',', value_name = "T1,T2,...")]
    pub thresholds: Option<Vec<f64>>,
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// The segmentation: FILE[:DATASET] (HDF5; without DATASET every `volumes/segmentations/*` of a
    /// `segmentation.h5`, else `volumes/labels/neuron_ids`) or STORE.zarr:ARRAY; integer labels.
    pub segmentation: String,
    /// Ground-truth labels: FILE[:DATASET] (HDF5, default `volumes/labels/neuron_ids`) or STORE.zarr:ARRAY;
    /// 0 = unlabelled (ignored).
    pub ground_truth: String,
    /// Also write the scores as JSON to this file (written atomically).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

impl SegmentArgs {
    /// The EM volume (clap requires it without a subcommand).
    fn volume(&self) -> &Path {
        self.volume.as_deref().unwrap_or(Path::new(""))
    }

    /// The output folder (clap requires it without a subcommand).
    fn out(&self) -> &Path {
        self.out.as_deref().unwrap_or(Path::new(""))
    }
}

fn segment_inputs(a: &SegmentArgs) -> neurotwin_io::inputs::InputSet {
    let mut set = neurotwin_io::inputs::InputSet::new();
    if a.volume().is_dir() {
        set.add_tree(a.volume());
    } else {
        set.add(a.volume());
    }
    for spec in [&a.boundary, &a.ground_truth].into_iter().flatten() {
        let file = spec.rsplit_once(':').map_or(spec.as_str(), |(f, _)| f);
        set.add(Path::new(spec)).add(Path::new(file));
    }
    for p in [&a.synapses, &a.gt_synapses, &a.cnn, &a.config].into_iter().flatten() {
        set.add(p);
    }
    set
}

pub(super) fn three<T: Copy>(v: &[T], what: &str) -> anyhow::Result<[T; 3]> {
    match v {
        [a, b, c] => Ok([*a, *b, *c]),
        _ => bail!("{what} needs three comma-separated values Z,Y,X, got {}", v.len()),
    }
}

/// Splits FILE:DATASET at the last ':' (a missing dataset gives `default`).
pub(super) fn file_dataset(spec: &str, default: Option<&str>, flag: &str) -> anyhow::Result<(PathBuf, String)> {
    match spec.rsplit_once(':') {
        Some((f, d)) if !f.is_empty() && !d.is_empty() => Ok((PathBuf::from(f), d.to_string())),
        _ => match default {
            Some(d) => Ok((PathBuf::from(spec), d.to_string())),
            None => bail!("{flag} {spec:?}: give FILE:DATASET, e.g. {flag} probs.h5:stack"),
        },
    }
}

/// What the run reads besides the raw volume, each checked against the raw volume's shape (z, y, x).
struct Given {
    /// Boundary map of `--boundary` (values in [0, 1]), on the raw volume's voxel size.
    boundary: Option<Volume<f32>>,
    /// Ground-truth labels of `--ground-truth` and, from a CREMI HDF5 file, its synapse partner sites.
    ground_truth: Option<(Volume<u64>, Option<Vec<PartnerSites>>)>,
    /// Annotated synapse points of `--synapses` (nm), used instead of cleft detection.
    points: Option<Vec<SynapsePoint>>,
    /// True synapse positions (nm) for precision/recall/F1.
    true_synapses: Option<Vec<[f64; 3]>>,
}

/// A finished segmentation: the run's report (scored where ground truth was given), what `report.json` holds, the
/// output folder and the files written there.
pub struct SegmentOutcome {
    pub name: String,
    pub report: SegmentReport,
    pub scored: bool,
    pub json: serde_json::Value,
    pub out_dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// The report of an in-memory or an out-of-core run.
pub enum SegmentReport {
    InMemory(PipelineReport),
    OutOfCore(neurotwin_segment::out_of_core::OutOfCoreReport),
}

pub fn segment(a: SegmentArgs) -> anyhow::Result<()> {
    match &a.action {
        Some(SegmentAction::Score(s)) => return score_command(s),
        Some(SegmentAction::Tune(t)) => return tune_command(t),
        Some(SegmentAction::Train(t)) => return super::segment_train::train_command(t),
        Some(SegmentAction::Synthetic(s)) => return super::segment_ooc::synthetic_command(s),
        None => {}
    }
    let o = segment_outcome(&a)?;
    match &o.report {
        SegmentReport::InMemory(r) => print_summary(&o.name, r, o.scored, &o.out_dir),
        SegmentReport::OutOfCore(r) => super::segment_ooc::print_out_of_core(r, &o.out_dir),
    }
    Ok(())
}

/// Runs the pipeline `a` asks for and publishes its outputs (all-or-nothing), printing only progress and notes.
pub fn segment_outcome(a: &SegmentArgs) -> anyhow::Result<SegmentOutcome> {
    if a.action.is_some() || a.volume.is_none() || a.out.is_none() {
        bail!("segment: give VOLUME and --out to segment (scores come from `neurotwin segment score SEG GT`)");
    }
    let cfg = configure(a)?;
    // The output folder is checked before any work: no input replaced, an earlier run only with --overwrite.
    let expected: &[&str] = if a.out_of_core { &["report.json"] } else { &OUTPUT_FILES };
    let run_dir =
        neurotwin_io::run_dir::RunDir::create(a.out(), "neurotwin segment", segment_inputs(a), a.overwrite, expected)?;
    let voxel = a.voxel_size.as_deref().map(|v| three(v, "--voxel-size")).transpose()?;
    if let Some(v) = voxel {
        neurotwin_segment::volume::check_voxel(v)?;
    }
    let name = a.volume().file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "segmented".into());
    if a.out_of_core {
        if cfg.block.is_none() {
            bail!("--out-of-core needs a processing block: --block Z,Y,X (a multiple of --chunk, e.g. 128,512,512)");
        }
        let src = open_raw(a, voxel)?;
        let (report, json) = super::segment_ooc::out_of_core_outcome(a, &cfg, run_dir, src.as_ref())?;
        let scored = report.thresholds.iter().any(|t| t.scores.is_some());
        let files = [super::segment_ooc::STORE, "report.json"].iter().map(|f| a.out().join(f)).collect();
        return Ok(SegmentOutcome {
            name,
            report: SegmentReport::OutOfCore(report),
            scored,
            json,
            out_dir: a.out().to_path_buf(),
            files,
        });
    }
    check_resources(a, &cfg, voxel.unwrap_or(DEFAULT_VOXEL_NM))?;
    let src = open_raw(a, voxel)?;
    let mut given = read_given(a, src.shape(), src.voxel_nm())?;

    let boundary = given.boundary.take();
    let out = run_source(src.as_ref(), boundary, given.points.as_deref(), &cfg, &name, provenance(a, &cfg))?;
    let report = score(&out, &given, a.synapse_radius)?;
    let json = write_outputs(run_dir, a, &cfg, &out, &report)?;
    let files = OUTPUT_FILES.iter().map(|f| a.out().join(f)).collect();
    Ok(SegmentOutcome {
        name,
        report: SegmentReport::InMemory(report),
        scored: given.ground_truth.is_some(),
        json,
        out_dir: a.out().to_path_buf(),
        files,
    })
}

/// The files every segmentation writes.
const OUTPUT_FILES: [&str; 3] = ["segmentation.h5", "connectome.h5", "report.json"];

/// Checks the flags and builds the pipeline configuration: the `--config` file (or the defaults), then
/// the flags over it.
fn configure(a: &SegmentArgs) -> anyhow::Result<PipelineConfig> {
    if !(a.synapse_radius.is_finite() && a.synapse_radius > 0.0) {
        bail!(
            "--synapse-radius {}: the matching radius must be a finite number > 0 (nm), e.g. --synapse-radius 100",
            a.synapse_radius
        );
    }
    let mut cfg: PipelineConfig = match &a.config {
        Some(p) => read_config(p)?,
        None => PipelineConfig::default(),
    };
    if let Some(t) = &a.thresholds {
        cfg.thresholds = t.clone();
    }
    if let Some(c) = &a.chunk {
        cfg.fragment_chunk = three(c, "--chunk")?;
    }
    if let Some(b) = &a.block {
        cfg.block = Some(three(b, "--block")?);
    }
    if let Some(m) = a.min_neuron_voxels {
        cfg.min_neuron_voxels = m;
    }
    if let Some(e) = a.edge_score {
        cfg.edge_score = e;
    }
    match (&a.cnn, a.cnn_backend.map(check_cnn_backend).transpose()?) {
        (Some(w), b) => {
            cfg.boundary = BoundarySource::Cnn { weights: w.clone(), backend: b.unwrap_or_default() };
        }
        (None, Some(b)) => match &mut cfg.boundary {
            BoundarySource::Cnn { backend, .. } | BoundarySource::Unet { backend } => *backend = b,
            BoundarySource::Sheetness => {
                bail!(
                    "--cnn-backend needs a U-Net: --cnn WEIGHTS.safetensors, --boundary-source unet, or one in --config"
                )
            }
        },
        (None, None) => {}
    }
    if let Some(m) = a.boundary_source {
        if a.cnn.is_some() {
            bail!("--boundary-source and --cnn both choose the boundary map: use one");
        }
        let backend = a.cnn_backend.unwrap_or_default();
        cfg.boundary = match m {
            BoundaryChoice::Sheetness => BoundarySource::Sheetness,
            BoundaryChoice::Unet => BoundarySource::Unet { backend },
        };
        if m == BoundaryChoice::Sheetness && a.cnn_backend.is_some() {
            bail!("--cnn-backend with --boundary-source sheetness: the membrane filter runs on the CPU");
        }
    }
    if a.boundary.is_some() && a.cnn.is_some() {
        bail!("--boundary and --cnn both give the boundary map: use one");
    }
    if a.boundary.is_some() && a.boundary_source.is_some() {
        bail!("--boundary and --boundary-source both give the boundary map: use one");
    }
    cfg.progress = true;
    cfg.validate()?;
    Ok(cfg)
}

/// What the run will allocate, checked from the volume's shape before anything is read (`default_voxel`
/// in nm, z y x).
fn check_resources(a: &SegmentArgs, cfg: &PipelineConfig, default_voxel: [f64; 3]) -> anyhow::Result<()> {
    let shape = if is_zarr(a.volume()) {
        zarr::open_array(a.volume(), &a.raw_dataset)?.1
    } else {
        neurotwin_segment::io::volume_shape(a.volume(), &a.raw_dataset)?
    };
    let inputs = neurotwin_segment::guards::Inputs {
        boundary_given: a.boundary.is_some(),
        ground_truth: a.ground_truth.is_some(),
    };
    neurotwin_segment::guards::check_pipeline(shape, default_voxel, cfg, inputs)
        .with_context(|| a.volume().display().to_string())?;
    Ok(())
}

/// The raw source: a Zarr store (read region by region) or an HDF5 dataset (read whole). `voxel` (nm,
/// z y x) is `--voxel-size`; without it the file's attribute, else [`DEFAULT_VOXEL_NM`] with a note.
fn open_raw(a: &SegmentArgs, voxel: Option<[f64; 3]>) -> anyhow::Result<Box<dyn RawSource>> {
    let default_voxel = voxel.unwrap_or(DEFAULT_VOXEL_NM);
    if is_zarr(a.volume()) {
        let mut z = ZarrRaw::open(a.volume(), &a.raw_dataset, default_voxel)?;
        if let Some(v) = voxel {
            z.voxel_nm = v;
        } else if !z.voxel_from_attribute {
            eprintln!(
                "note: {} array {} has no `resolution`/`voxel_size` attribute; assuming {DEFAULT_VOXEL_NM:?} nm voxels \
                 (z, y, x) — set --voxel-size",
                a.volume().display(),
                a.raw_dataset
            );
        }
        Ok(Box::new(z))
    } else {
        let (mut raw, found) = read_raw(a.volume(), &a.raw_dataset, default_voxel)?;
        match voxel {
            Some(v) => raw.voxel_nm = v,
            None if !found => eprintln!(
                "note: {} has no `resolution` attribute; assuming {DEFAULT_VOXEL_NM:?} nm voxels (z, y, x) — set --voxel-size",
                a.volume().display()
            ),
            None => {}
        }
        Ok(Box::new(raw))
    }
}

/// Reads the boundary map, ground truth and synapse points the flags give, for a raw volume of `shape`
/// (z, y, x) and `voxel_nm` (nm).
fn read_given(a: &SegmentArgs, shape: [usize; 3], voxel_nm: [f64; 3]) -> anyhow::Result<Given> {
    let boundary = a.boundary.as_deref().map(|spec| given_boundary(spec, shape, voxel_nm)).transpose()?;
    let ground_truth = a.ground_truth.as_deref().map(|spec| given_ground_truth(spec, shape, voxel_nm)).transpose()?;
    let points = a.synapses.as_deref().map(read_points_csv).transpose()?;
    // True synapse positions (nm): a CSV, else the midpoints of the ground truth's CREMI partner sites.
    let true_synapses: Option<Vec<[f64; 3]>> = match (&a.gt_synapses, &ground_truth) {
        (Some(csv), _) => Some(read_points_csv(csv)?.into_iter().map(|p| p.position_nm).collect()),
        (None, Some((_, Some(sites)))) => {
            Some(sites.iter().map(|s| [0, 1, 2].map(|k| 0.5 * (s.pre_nm[k] + s.post_nm[k]))).collect())
        }
        _ => None,
    };
    Ok(Given { boundary, ground_truth, points, true_synapses })
}

/// The boundary map of `--boundary FILE:DATASET`, given the raw volume's `voxel_nm`.
fn given_boundary(spec: &str, shape: [usize; 3], voxel_nm: [f64; 3]) -> anyhow::Result<Volume<f32>> {
    let (f, d) = file_dataset(spec, None, "--boundary")?;
    let mut b = if is_zarr(&f) { zarr::read_boundary(&f, &d, voxel_nm)? } else { read_boundary(&f, &d, voxel_nm)? };
    check_shape(&f, &d, b.shape, shape)?;
    b.voxel_nm = voxel_nm;
    Ok(b)
}

/// The labels of `--ground-truth FILE[:DATASET]` and, from an HDF5 file, its CREMI partner sites.
fn given_ground_truth(
    spec: &str,
    shape: [usize; 3],
    voxel_nm: [f64; 3],
) -> anyhow::Result<(Volume<u64>, Option<Vec<PartnerSites>>)> {
    let (f, d) = file_dataset(spec, Some(NEURON_IDS), "--ground-truth")?;
    let (g, sites) = if is_zarr(&f) {
        (zarr::read_labels(&f, &d, voxel_nm)?, None)
    } else {
        (read_labels(&f, &d, voxel_nm)?, read_partner_sites(&f)?)
    };
    check_shape(&f, &d, g.shape, shape)?;
    Ok((g, sites))
}

/// Dataset `d` of file `f` must have the raw volume's `shape` (z, y, x).
fn check_shape(f: &Path, d: &str, got: [usize; 3], shape: [usize; 3]) -> anyhow::Result<()> {
    if got != shape {
        bail!("{}: dataset `{d}` has shape {:?} but the raw volume {:?} (z, y, x)", f.display(), got, shape);
    }
    Ok(())
}

/// The provenance line of the outputs: input, dataset, boundary source and thresholds.
fn provenance(a: &SegmentArgs, cfg: &PipelineConfig) -> Vec<String> {
    vec![format!(
        "neurotwin segment {} (dataset {}; boundary: {}; thresholds {:?})",
        a.volume().display(),
        a.raw_dataset,
        match (&a.boundary, &cfg.boundary) {
            (Some(b), _) => b.clone(),
            (None, BoundarySource::Cnn { weights, backend }) => format!("U-Net {} ({backend:?})", weights.display()),
            (None, BoundarySource::Sheetness) => "membrane filter".into(),
            (None, BoundarySource::Unet { backend }) => {
                format!("shipped U-Net {} ({backend:?})", neurotwin_segment::cnn::SHIPPED_WEIGHTS)
            }
        },
        cfg.thresholds
    )]
}

/// The run's report with the scores against the ground truth (segmentation per threshold) and the true
/// synapses (matched within `radius_nm`), where given.
fn score(out: &PipelineOutput, given: &Given, radius_nm: f64) -> anyhow::Result<PipelineReport> {
    let mut report = out.report.clone();
    if let Some((g, _)) = &given.ground_truth {
        for (r, (_, seg)) in report.thresholds.iter_mut().zip(&out.segmentations) {
            r.scores = Some(evaluate(seg, g)?);
        }
    }
    if let Some(truth) = &given.true_synapses {
        let pred: Vec<[f64; 3]> = out.synapses.iter().map(|s| s.position_nm).collect();
        report.synapse_scores = Some(match_synapses(&pred, truth, radius_nm));
    }
    Ok(report)
}

/// Outputs, all-or-nothing: `segmentation.h5`, `connectome.h5` and `report.json` in `run_dir`.
fn write_outputs(
    run_dir: neurotwin_io::run_dir::RunDir,
    a: &SegmentArgs,
    cfg: &PipelineConfig,
    out: &PipelineOutput,
    report: &PipelineReport,
) -> anyhow::Result<serde_json::Value> {
    let seg_names: Vec<String> = out.segmentations.iter().map(|(t, _)| format!("volumes/segmentations/t{t}")).collect();
    let json = serde_json::json!({
        "input": { "volume": a.volume(), "raw_dataset": a.raw_dataset, "boundary": a.boundary,
                   "ground_truth": a.ground_truth, "synapse_points": a.synapses, "cnn": a.cnn,
                   "format": if is_zarr(a.volume()) { "zarr" } else { "hdf5" } },
        "config": cfg,
        "report": report,
        "segmentation_datasets": seg_names,
        "segments": out.segments,
        "synapses": out.synapses,
    });
    let files: Vec<(&str, Writer<'_>)> = vec![
        (
            "segmentation.h5",
            Box::new(|p: &Path| {
                let mut ds: Vec<(&str, Data<'_>)> = vec![
                    (NEURON_IDS, Data::U64(&out.segmentations[0].1)),
                    ("volumes/fragments", Data::U64(&out.fragments)),
                    ("volumes/boundary", Data::F32(&out.boundary)),
                ];
                for (n, (_, s)) in seg_names.iter().zip(&out.segmentations) {
                    ds.push((n.as_str(), Data::U64(s)));
                }
                write_volumes(p, &ds, None)
            }),
        ),
        ("connectome.h5", Box::new(|p: &Path| Ok(neurotwin_connectome::write_connectome(p, &out.connectome)?))),
        ("report.json", Box::new(|p: &Path| write_json(p, &json))),
    ];
    write_all(run_dir, files)?;
    Ok(json)
}

/// Prints the run's summary, the table of thresholds (with scores when `scored` against ground truth)
/// and the synapse scores.
fn print_summary(name: &str, r: &PipelineReport, scored: bool, out_dir: &Path) {
    println!(
        "{}: {:?} voxels of {:?} nm, boundary: {}, {} fragments → {} neurons, {} synapses, {} connections ({:.2} s)",
        name,
        r.shape,
        r.voxel_nm,
        r.boundary_source,
        r.fragments,
        r.neurons,
        r.synapses,
        r.connections,
        r.timings.total_s
    );
    let rows: Vec<Vec<String>> = r
        .thresholds
        .iter()
        .map(|t| {
            let mut row = vec![t.threshold.to_string(), t.segments.to_string()];
            if let Some(s) = &t.scores {
                row.extend([
                    format!("{:.4}", s.voi_split),
                    format!("{:.4}", s.voi_merge),
                    format!("{:.4}", s.voi()),
                    format!("{:.4}", s.adapted_rand_error),
                ]);
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
    if let Some(s) = &r.synapse_scores {
        println!(
            "synapses: {} predicted, {} annotated, {} matched within {} nm: precision {:.3}, recall {:.3}, F1 {:.3}",
            s.predicted, s.ground_truth, s.true_positives, s.radius_nm, s.precision, s.recall, s.f1
        );
    }
    println!("wrote {}/{{segmentation.h5, connectome.h5, report.json}}", out_dir.display());
}

/// The label volumes a `segment score` argument names: FILE:DATASET or STORE.zarr:ARRAY, or a FILE whose
/// `volumes/segmentations/*` (a `segmentation.h5`, one per threshold) or else `default` dataset is meant.
fn label_volumes(spec: &str, default: &str, what: &str) -> anyhow::Result<Vec<(String, Volume<u64>)>> {
    let voxel = DEFAULT_VOXEL_NM;
    let (file, dataset) = match spec.rsplit_once(':') {
        Some((f, d)) if !f.is_empty() && !d.is_empty() => (PathBuf::from(f), Some(d.to_string())),
        _ => (PathBuf::from(spec), None),
    };
    if !file.exists() {
        bail!("{what} {}: no such file or store", file.display());
    }
    if is_zarr(&file) {
        let Some(d) = dataset else { bail!("{what} {}: name the array, STORE.zarr:ARRAY", file.display()) };
        return Ok(vec![(d.clone(), zarr::read_labels(&file, &d, voxel)?)]);
    }
    let names = match dataset {
        Some(d) => vec![d],
        None => {
            let per_threshold = neurotwin_segment::io::datasets_in(&file, "volumes/segmentations")?;
            if per_threshold.is_empty() {
                vec![default.to_string()]
            } else {
                per_threshold.into_iter().map(|n| format!("volumes/segmentations/{n}")).collect()
            }
        }
    };
    names.into_iter().map(|d| Ok((d.clone(), read_labels(&file, &d, voxel)?))).collect()
}

/// `neurotwin segment score SEG GT`: every segmentation SEG names against GT, as a table (and JSON).
fn score_command(s: &ScoreArgs) -> anyhow::Result<()> {
    let gt = label_volumes(&s.ground_truth, NEURON_IDS, "ground truth")?;
    let Some((gt_name, gt)) = gt.into_iter().next() else { bail!("ground truth {}: no labels", s.ground_truth) };
    let segs = label_volumes(&s.segmentation, NEURON_IDS, "segmentation")?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for (name, seg) in &segs {
        let sc = evaluate(seg, &gt)
            .with_context(|| format!("scoring {}:{name} against {}", s.segmentation, s.ground_truth))?;
        let cremi = (sc.voi() * sc.adapted_rand_error).sqrt();
        rows.push(vec![
            name.clone(),
            format!("{:.4}", sc.voi_split),
            format!("{:.4}", sc.voi_merge),
            format!("{:.4}", sc.voi()),
            format!("{:.4}", sc.adapted_rand_error),
            format!("{cremi:.4}"),
        ]);
        json.push(serde_json::json!({ "dataset": name, "scores": sc, "voi": sc.voi(), "cremi_score": cremi }));
    }
    println!(
        "{} against {} ({gt_name}; {} labelled voxels):",
        s.segmentation,
        s.ground_truth,
        gt.data.iter().filter(|&&g| g != 0).count()
    );
    println!("{}", render(&["dataset", "VOI split", "VOI merge", "VOI", "adapted Rand", "CREMI score"], &rows));
    if let Some(path) = &s.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "segmentation": s.segmentation, "ground_truth": s.ground_truth, "results": json,
        }))?;
        if [&s.segmentation, &s.ground_truth].iter().any(|spec| same_file(path, &file_of(spec))) {
            bail!("--json {}: that is an input; write the scores elsewhere", path.display());
        }
        neurotwin_io::atomic::write_file(path, |tmp| -> anyhow::Result<()> {
            std::fs::write(tmp, text.as_bytes()).with_context(|| tmp.display().to_string())
        })
        .with_context(|| path.display().to_string())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `neurotwin segment tune`: the threshold chosen on the tuning slices, reported on the held-out ones.
fn tune_command(t: &TuneArgs) -> anyhow::Result<()> {
    if is_zarr(&t.volume) {
        bail!(
            "segment tune {}: reads HDF5 volumes (convert the Zarr array, or segment it with --thresholds)",
            t.volume.display()
        );
    }
    let inputs =
        [Some(t.volume.clone()), Some(file_of(&t.ground_truth)), t.boundary.as_deref().map(file_of), t.cnn.clone()];
    if inputs.iter().flatten().any(|i| same_file(&t.out, i)) {
        bail!("--out {}: that is an input; write the result elsewhere", t.out.display());
    }
    let mut cfg: PipelineConfig = match &t.config {
        Some(p) => read_config(p)?,
        None => PipelineConfig::default(),
    };
    cfg.thresholds = t.thresholds.clone().unwrap_or_else(|| (1..=9).map(|k| k as f64 / 10.0).collect());
    cfg.detect_synapses = false;
    if let Some(w) = &t.cnn {
        cfg.boundary = BoundarySource::Cnn { weights: w.clone(), backend: t.cnn_backend.unwrap_or_default() };
    } else if t.cnn_backend.is_some() {
        bail!("--cnn-backend needs --cnn WEIGHTS");
    }
    cfg.validate()?;
    let (raw, _) = read_raw(&t.volume, &t.raw_dataset, DEFAULT_VOXEL_NM)?;
    let z = raw.shape[0];
    if t.tune_slices == 0 || t.tune_slices >= z {
        bail!("--tune-slices {}: give K with 0 < K < {z} (the volume has {z} slices along z)", t.tune_slices);
    }
    let (gt, _) = given_ground_truth(&t.ground_truth, raw.shape, raw.voxel_nm)?;
    let boundary = t.boundary.as_deref().map(|b| given_boundary(b, raw.shape, raw.voxel_nm)).transpose()?;
    let k = t.tune_slices;
    let part = |z0: usize,
                z1: usize,
                label: &str|
     -> anyhow::Result<Vec<neurotwin_segment::metrics::SegmentationScores>> {
        let out = neurotwin_segment::pipeline::run(
            &raw.z_slab(z0, z1),
            boundary.as_ref().map(|b| b.z_slab(z0, z1)),
            None,
            &cfg,
            label,
            vec![],
        )?;
        let g = gt.z_slab(z0, z1);
        out.segmentations
            .iter()
            .map(|(th, seg)| evaluate(seg, &g).with_context(|| format!("{label} slices [{z0}, {z1}), threshold {th}")))
            .collect()
    };
    let tuning = part(0, k, "tuning")?;
    let held_out = part(k, z, "held-out")?;
    // The choice sees the tuning slices only: lowest VOI, the first of equals.
    let best = (0..tuning.len()).fold(0, |b, i| if tuning[i].voi() < tuning[b].voi() { i } else { b });
    let chosen = cfg.thresholds[best];
    let rows: Vec<Vec<String>> = cfg
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, th)| {
            vec![
                format!("{th}{}", if i == best { " *" } else { "" }),
                format!("{:.4}", tuning[i].voi()),
                format!("{:.4}", tuning[i].adapted_rand_error),
                format!("{:.4}", held_out[i].voi()),
                format!("{:.4}", held_out[i].adapted_rand_error),
            ]
        })
        .collect();
    println!("{}: tuning slices [0, {k}), held-out slices [{k}, {z})", t.volume.display());
    println!("{}", render(&["threshold", "VOI tuning", "ARAND tuning", "VOI held-out", "ARAND held-out"], &rows));
    println!(
        "chosen on the tuning slices: threshold {chosen}; held-out VOI {:.4} (split {:.4}, merge {:.4}), adapted Rand error {:.4}",
        held_out[best].voi(),
        held_out[best].voi_split,
        held_out[best].voi_merge,
        held_out[best].adapted_rand_error
    );
    let mut chosen_cfg = cfg.clone();
    chosen_cfg.thresholds = vec![chosen];
    chosen_cfg.detect_synapses = PipelineConfig::default().detect_synapses;
    let json = serde_json::json!({
        "volume": t.volume, "raw_dataset": t.raw_dataset, "ground_truth": t.ground_truth, "boundary": t.boundary,
        "tuning_slices": [0, k], "held_out_slices": [k, z], "thresholds": cfg.thresholds,
        "procedure": "every threshold segments both parts; the lowest VOI on the tuning slices is chosen; the held-out scores are reported, never used",
        "chosen_threshold": chosen, "tuning": tuning, "held_out": held_out, "config": chosen_cfg,
    });
    let text = serde_json::to_string_pretty(&json)?;
    neurotwin_io::atomic::write_file(&t.out, |tmp| -> anyhow::Result<()> {
        std::fs::write(tmp, text.as_bytes()).with_context(|| tmp.display().to_string())
    })
    .with_context(|| t.out.display().to_string())?;
    println!("wrote {}", t.out.display());
    Ok(())
}

/// A pipeline configuration file (`--config`): a `PipelineConfig` as JSON, or the result of `segment tune` (its
/// `config`, holding the chosen threshold).
fn read_config(p: &Path) -> anyhow::Result<PipelineConfig> {
    let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?;
    let mut v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", p.display()))?;
    if v.get("chosen_threshold").is_some()
        && let Some(c) = v.get_mut("config")
    {
        v = c.take();
    }
    serde_json::from_value(v).with_context(|| format!("{}: invalid pipeline configuration", p.display()))
}

/// The file of a FILE[:DATASET] argument.
fn file_of(spec: &str) -> PathBuf {
    PathBuf::from(spec.rsplit_once(':').map_or(spec, |(f, _)| f))
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    a.canonicalize().ok().is_some_and(|a| b.canonicalize().ok() == Some(a))
}
