//! The whole front end: raw EM → boundary map → fragments → agglomerated segmentations → synapses →
//! connectome, with a serde configuration whose defaults work on the phantoms and a report.

use std::time::Instant;

use neurotwin_connectome::Connectome;
use serde::{Deserialize, Serialize};

use crate::agglomerate::agglomerate;
use crate::blockwise::{check_block, fragments_chunked};
use crate::boundary::{BoundaryModel, BoundarySource, RawSource, maps_blockwise};
use crate::error::SegmentError;
use crate::io::check_boundary;
use crate::membrane::MembraneConfig;
use crate::metrics::{SegmentationScores, SynapseScores};
use crate::rag;
use crate::synapses::{Synapse, SynapseConfig, SynapsePoint, assign_points, detect};
use crate::to_connectome::{SegmentInfo, build, segment_infos};
use crate::volume::Volume;
use crate::watershed::{WatershedConfig, renumber};

/// Pipeline configuration (lengths in nm, sizes in voxels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Where the boundary map comes from: the shipped U-Net (default; it beats the membrane filter on held-out
    /// FIB-SEM slices, README), the membrane filter, or a U-Net from a weights file.
    pub boundary: BoundarySource,
    /// Parameters of the membrane filter (used by `boundary: "sheetness"`).
    pub membrane: MembraneConfig,
    pub watershed: WatershedConfig,
    /// Agglomeration thresholds on the mean boundary value; the first one gives the segmentation used for
    /// synapses and the connectome, the others are extra outputs (and scored with ground truth).
    /// Default `[0.7, 0.5, 0.6, 0.8]`: 0.7 is what `neurotwin segment tune` chose for the shipped U-Net on the
    /// slices it was trained on (gala crop, slices 0–24; README), never on the held-out ones.
    pub thresholds: Vec<f64>,
    pub synapses: SynapseConfig,
    /// Detect synapses (ignored when synapse points are given).
    pub detect_synapses: bool,
    /// Segments with at least this many voxels become neurons.
    pub min_neuron_voxels: u64,
    /// The fragment grid (voxels, z y x): watershed runs per grid cell; part of the algorithm.
    pub fragment_chunk: [usize; 3],
    /// Processing block (voxels, z y x; a multiple of `fragment_chunk`); `None` = whole volume.
    pub block: Option<[usize; 3]>,
    /// Show progress bars.
    pub progress: bool,
    /// What scores a region-graph edge for agglomeration: the mean boundary value of the voxels on the contact
    /// (default), or one minus the mean affinity across it (an affinity U-Net's channels; waterz's
    /// mean-affinity agglomeration). Fragments come from the boundary map either way.
    pub edge_score: EdgeScore,
}

/// How agglomeration scores an edge between two regions (serde: `"boundary"` or `"affinity"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum EdgeScore {
    /// Mean boundary value over the face pairs of the contact ([`rag::build`]).
    #[default]
    Boundary,
    /// One minus the mean affinity over the voxel edges crossing the contact ([`rag::build_affinity`]).
    Affinity,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            boundary: BoundarySource::Unet { backend: neurotwin_kernels::backend_kind::BackendKind::Cpu },
            membrane: MembraneConfig::default(),
            watershed: WatershedConfig::default(),
            thresholds: vec![0.7, 0.5, 0.6, 0.8],
            synapses: SynapseConfig::default(),
            detect_synapses: true,
            min_neuron_voxels: 500,
            fragment_chunk: [64, 256, 256],
            block: None,
            progress: false,
            edge_score: EdgeScore::Boundary,
        }
    }
}

/// Wall times of the stages in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub boundary_s: f64,
    pub watershed_s: f64,
    pub agglomeration_s: f64,
    pub synapses_s: f64,
    pub connectome_s: f64,
    pub total_s: f64,
}

/// Segments at one threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub threshold: f64,
    pub segments: usize,
    /// Scores against ground truth, when given.
    pub scores: Option<SegmentationScores>,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    pub shape: [usize; 3],
    pub voxel_nm: [f64; 3],
    /// `membrane filter`, `U-Net (…)` or `given`.
    pub boundary_source: String,
    pub fragments: usize,
    pub thresholds: Vec<ThresholdResult>,
    pub neurons: usize,
    pub synapses: usize,
    pub connections: usize,
    pub synapse_scores: Option<SynapseScores>,
    pub timings: Timings,
}

/// Everything a run produces.
#[derive(Clone, Debug)]
pub struct PipelineOutput {
    pub boundary: Volume<f32>,
    pub fragments: Volume<u64>,
    /// One segmentation per threshold, in the configured order (labels 1..=n in scan order).
    pub segmentations: Vec<(f64, Volume<u64>)>,
    pub segments: Vec<SegmentInfo>,
    pub synapses: Vec<Synapse>,
    pub connectome: Connectome,
    pub report: PipelineReport,
}

impl PipelineConfig {
    /// Checks parameters; messages name the field.
    pub fn validate(&self) -> Result<(), SegmentError> {
        if self.thresholds.is_empty() || self.thresholds.iter().any(|t| !(0.0..=1.0).contains(t)) {
            return Err(SegmentError::Invalid(format!(
                "thresholds {:?}: give at least one agglomeration threshold, each a mean boundary value between 0 \
                 and 1 (--thresholds T1,T2,... or `thresholds` in --config)",
                self.thresholds
            )));
        }
        if self.membrane.scales_nm.is_empty()
            || self.membrane.scales_nm.iter().any(|s| s.is_nan() || s.is_infinite() || *s <= 0.0)
        {
            return Err(SegmentError::Invalid("membrane.scales_nm: give at least one scale > 0 nm".into()));
        }
        if let Some(b) = self.block {
            check_block(b, self.fragment_chunk)?;
        } else if self.fragment_chunk.contains(&0) {
            return Err(SegmentError::Invalid("fragment_chunk must be positive".into()));
        }
        crate::watershed::check_fragment_chunk(self.fragment_chunk)?;
        Ok(())
    }
}

/// Fragments and segmentations of a boundary map.
#[derive(Clone, Debug)]
pub struct Segmented {
    /// Watershed fragments (ids `(chunk index << 32) | local id`).
    pub fragments: Volume<u64>,
    /// One segmentation per threshold, in the configured order (labels 1..=n in scan order).
    pub segmentations: Vec<(f64, Volume<u64>)>,
    pub watershed_s: f64,
    pub agglomeration_s: f64,
}

/// Fragments and one segmentation per threshold from a boundary map (edge score `boundary`).
pub fn segment_boundary(boundary: &Volume<f32>, cfg: &PipelineConfig) -> Result<Segmented, SegmentError> {
    segment_maps(boundary, None, cfg)
}

/// Fragments (from the boundary map) and one segmentation per threshold, edges scored as `cfg.edge_score`
/// says: `affinities` (the z, y, x channels of an affinity network, same shape) are needed for
/// [`EdgeScore::Affinity`].
pub fn segment_maps(
    boundary: &Volume<f32>,
    affinities: Option<&[Volume<f32>]>,
    cfg: &PipelineConfig,
) -> Result<Segmented, SegmentError> {
    cfg.validate()?;
    check_boundary(boundary).map_err(SegmentError::Invalid)?;
    let affinities = match (cfg.edge_score, affinities) {
        (EdgeScore::Boundary, _) => None,
        (EdgeScore::Affinity, Some(a)) if a.len() == 3 && a.iter().all(|c| c.shape == boundary.shape) => Some(a),
        (EdgeScore::Affinity, _) => {
            return Err(SegmentError::Invalid(
                "edge_score \"affinity\" needs the three affinity channels of an affinity U-Net, of the boundary \
                 map's shape (a given boundary map has none: use \"edge_score\": \"boundary\")"
                    .into(),
            ));
        }
    };
    let t0 = Instant::now();
    let fragments = fragments_chunked(boundary, &cfg.watershed, cfg.fragment_chunk, cfg.progress);
    let t_ws = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let g = match affinities {
        Some(a) => rag::build_affinity(&fragments, a),
        None => rag::build(&fragments, boundary),
    };
    let ag = agglomerate(&g, &cfg.thresholds);
    let segs = ag
        .maps
        .iter()
        .zip(&cfg.thresholds)
        .map(|(m, &t)| {
            let mut s = fragments.map(|l| m.get(l).copied().unwrap_or(*l));
            renumber(&mut s);
            (t, s)
        })
        .collect();
    Ok(Segmented { fragments, segmentations: segs, watershed_s: t_ws, agglomeration_s: t1.elapsed().as_secs_f64() })
}

/// Runs the pipeline on `raw`. `given_boundary` replaces the boundary source; `points` replace cleft
/// detection.
pub fn run(
    raw: &Volume<u8>,
    given_boundary: Option<Volume<f32>>,
    points: Option<&[SynapsePoint]>,
    cfg: &PipelineConfig,
    name: &str,
    provenance: Vec<String>,
) -> Result<PipelineOutput, SegmentError> {
    run_source(raw, given_boundary, points, cfg, name, provenance)
}

/// [`run`] on a region-readable raw source (e.g. a Zarr array). The boundary stage reads the raw volume
/// block by block when `cfg.block` is set (one block plus context at a time); the raw volume is read whole
/// only when synapses are detected or annotated points assigned (both need raw intensities), and the
/// boundary map, fragments and segmentations are whole volumes in memory.
pub fn run_source(
    src: &dyn RawSource,
    given_boundary: Option<Volume<f32>>,
    points: Option<&[SynapsePoint]>,
    cfg: &PipelineConfig,
    name: &str,
    provenance: Vec<String>,
) -> Result<PipelineOutput, SegmentError> {
    cfg.validate()?;
    let t_all = Instant::now();
    let (shape, voxel_nm) = (src.shape(), src.voxel_nm());
    let inputs = crate::guards::Inputs { boundary_given: given_boundary.is_some(), ground_truth: false };
    crate::guards::check_pipeline(shape, voxel_nm, cfg, inputs)?;
    let t0 = Instant::now();
    let mut affinities = None;
    let (boundary, source) = match given_boundary {
        Some(_) if cfg.edge_score == EdgeScore::Affinity => {
            return Err(SegmentError::Invalid(
                "edge_score \"affinity\" needs an affinity U-Net's channels; a given boundary map (--boundary) has \
                 none: use \"edge_score\": \"boundary\" or drop --boundary"
                    .into(),
            ));
        }
        Some(b) => {
            if b.shape != shape {
                return Err(SegmentError::Invalid(format!(
                    "the boundary map has shape {:?} but the raw volume {:?} (z, y, x): they must match",
                    b.shape, shape
                )));
            }
            (b, "given".to_string())
        }
        None => {
            let model = BoundaryModel::load(&cfg.boundary, &cfg.membrane, src, cfg.block)?;
            let with_affinities = cfg.edge_score == EdgeScore::Affinity;
            let mut maps = maps_blockwise(src, &model, cfg.block, with_affinities, cfg.progress)?;
            let boundary = maps.remove(0);
            affinities = with_affinities.then_some(maps);
            (boundary, model.describe())
        }
    };
    let boundary_s = t0.elapsed().as_secs_f64();
    let Segmented { fragments, segmentations, watershed_s, agglomeration_s } =
        segment_maps(&boundary, affinities.as_deref(), cfg)?;
    let primary = &segmentations[0].1;
    let t2 = Instant::now();
    let synapses = match points {
        Some(p) => assign_points(p, &*src.whole()?, primary, &cfg.synapses),
        None if cfg.detect_synapses => detect(&*src.whole()?, &boundary, primary, &cfg.synapses),
        None => Vec::new(),
    };
    let synapses_s = t2.elapsed().as_secs_f64();
    let t3 = Instant::now();
    let segments = segment_infos(primary);
    let connectome = build(name, provenance, &segments, &synapses, cfg.min_neuron_voxels)?;
    let connectome_s = t3.elapsed().as_secs_f64();
    let n_frag = {
        let mut v: Vec<u64> = fragments.data.clone();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let report = PipelineReport {
        shape,
        voxel_nm,
        boundary_source: source,
        fragments: n_frag,
        thresholds: segmentations
            .iter()
            .map(|(t, s)| ThresholdResult {
                threshold: *t,
                segments: s.data.iter().copied().max().unwrap_or(0) as usize,
                scores: None,
            })
            .collect(),
        neurons: connectome.neurons.len(),
        synapses: synapses.len(),
        connections: connectome.connections.len(),
        synapse_scores: None,
        timings: Timings {
            boundary_s,
            watershed_s,
            agglomeration_s,
            synapses_s,
            connectome_s,
            total_s: t_all.elapsed().as_secs_f64(),
        },
    };
    Ok(PipelineOutput { boundary, fragments, segmentations, segments, synapses, connectome, report })
}
