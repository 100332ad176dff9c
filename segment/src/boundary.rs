//! Boundary sources: the classical membrane filter ([`crate::membrane`]) or a 3D U-Net ([`crate::cnn`]),
//! computed block by block from a [`RawSource`] (an in-memory volume or a region-readable store such as a
//! Zarr array, [`crate::zarr`]), so that the boundary stage never holds more than one block of raw EM and of
//! network activations.
//!
//! # The U-Net as a boundary source
//! - Input: raw u8 normalised to `v / 255` in [0, 1] (f32), one channel, no other rescaling (train the network
//!   on the same normalisation).
//! - Output: [`OutputKind::Boundary`] → the boundary probability is the network's channel directly;
//!   [`OutputKind::Affinities`] → boundary = `1 − (a_z + a_y + a_x) / 3` (f32, clamped to [0, 1]): a voxel
//!   with low affinity to its neighbours lies on a boundary.
//! - Blockwise == whole, bit for bit. Each output voxel of the U-Net depends on the input within its
//!   receptive-field radius ([`cnn_context`], computed from the architecture: every convolution adds
//!   `max(p, k-1-p)` voxels at its level, a pooling by `f` divides the reach by `f` (rounded up), an
//!   upsampling multiplies it by `f`, a concatenation takes the larger reach of its two inputs). Inference
//!   pads its input by edge replication to a multiple of the pool product `P` ([`UNetSpec::total_pool`]) and
//!   max-pools on a grid anchored at the input's origin; its 'same' convolutions zero-pad. Zero padding at
//!   the volume's faces would erase membranes there (half of a membrane detector's support would see
//!   black), so the volume is first extended by edge replication by `q` = the receptive radius rounded up to
//!   a multiple of `P` on every side (as the membrane filter replicates edges), and the network runs on that
//!   extended volume; the output is cropped back. A block is read from the same (virtual) extended volume
//!   with a context margin of at least the receptive radius and with its read box aligned to `P`: the low
//!   corner rounded *down* to a multiple of `P` (at least `-q`), the high corner rounded *up* to a multiple
//!   of `P` (at most `shape + q`). Then
//!   (1) the pooling grids of block and whole volume coincide; (2) a read box not reaching the extended
//!   volume's high end needs no padding (its size is a multiple of `P`); (3) one reaching it is padded
//!   exactly as the whole extended volume is; (4) the zero padding of the 'same' convolutions at a read-box
//!   face inside the extended volume reaches no deeper than the receptive radius, so the block's core is
//!   untouched. The core of every block is thus computed from exactly the same numbers in the same order as
//!   in a whole-volume run. (Whole-volume inference is the one-block case of the same code.)
//! - The membrane filter is local with a margin of [`margin_voxels`] and needs no alignment; its one global
//!   input, the intensity range, is computed from a histogram of the whole source (streamed block by block).

use std::borrow::Cow;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::blockwise::{paste, tiles};
use crate::cnn::{BackendKind, OutputKind, Tensor, UNet3d, UNetSpec, check_cnn_backend};
use crate::error::SegmentError;
use crate::membrane::{MembraneConfig, boundary_map, intensity_range, margin_voxels, range_from_histogram};
use crate::volume::Volume;

/// A raw EM volume that can be read region by region.
pub trait RawSource: Sync {
    /// Voxels along z, y, x.
    fn shape(&self) -> [usize; 3];
    /// Voxel size along z, y, x in nm.
    fn voxel_nm(&self) -> [f64; 3];
    /// The box `[lo, hi)` (voxel coordinates z, y, x, inside the volume).
    fn read(&self, lo: [usize; 3], hi: [usize; 3]) -> Result<Volume<u8>, SegmentError>;
    /// The whole volume in memory, when it already is.
    fn in_memory(&self) -> Option<&Volume<u8>> {
        None
    }
    /// The whole volume (borrowed when in memory, else read).
    fn whole(&self) -> Result<Cow<'_, Volume<u8>>, SegmentError> {
        match self.in_memory() {
            Some(v) => Ok(Cow::Borrowed(v)),
            None => Ok(Cow::Owned(self.read([0; 3], self.shape())?)),
        }
    }
}

impl RawSource for Volume<u8> {
    fn shape(&self) -> [usize; 3] {
        self.shape
    }
    fn voxel_nm(&self) -> [f64; 3] {
        self.voxel_nm
    }
    fn read(&self, lo: [usize; 3], hi: [usize; 3]) -> Result<Volume<u8>, SegmentError> {
        Ok(self.crop(lo, hi))
    }
    fn in_memory(&self) -> Option<&Volume<u8>> {
        Some(self)
    }
}

/// How the boundary map is made (serde: `"sheetness"`, `{"unet": {"backend": "cpu"}}` or
/// `{"cnn": {"weights": "unet.safetensors", "backend": "cpu"}}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum BoundarySource {
    /// The classical multi-scale Hessian sheetness + darkness filter ([`crate::membrane`]); needs no weights.
    Sheetness,
    /// The shipped U-Net trained on FIB-SEM with ground truth ([`crate::cnn::shipped_boundary_net`]; weights and
    /// model card in `segment/weights/`).
    Unet {
        /// Where the U-Net runs (see [`check_cnn_backend`]).
        #[serde(default)]
        backend: BackendKind,
    },
    /// A 3D U-Net with weights from a safetensors file (layout in [`crate::cnn`]).
    Cnn {
        weights: PathBuf,
        /// Where the U-Net runs (`"cpu"`, `"cuda"`, `"auto"` or `"cuda-host"`; see [`check_cnn_backend`]).
        #[serde(default)]
        backend: BackendKind,
    },
}

/// A boundary source ready to run (weights loaded, global statistics computed).
#[derive(Clone, Debug)]
pub enum BoundaryModel {
    Sheetness { cfg: MembraneConfig, range: (f32, f32) },
    Cnn { net: Box<UNet3d>, backend: BackendKind },
}

/// Receptive-field radius of a U-Net in input voxels (z, y, x): a block read with at least this much context
/// (and aligned to the pool product) gives the same output in its core as the whole volume. See the module
/// documentation for the rule.
pub fn cnn_context(spec: &UNetSpec) -> [usize; 3] {
    let conv = |reach: &mut [usize; 3], k: [usize; 3]| {
        for _ in 0..spec.convs_per_block {
            for a in 0..3 {
                reach[a] += k[a] / 2; // max((k-1)/2, k-1-(k-1)/2)
            }
        }
    };
    let mut reach = [0usize; 3];
    let mut skips = Vec::with_capacity(spec.depth);
    for l in 0..spec.depth {
        conv(&mut reach, spec.kernels[l]);
        skips.push(reach);
        reach = [0, 1, 2].map(|a| reach[a].div_ceil(spec.pool[l][a]));
    }
    conv(&mut reach, spec.kernels[spec.depth]);
    for l in (0..spec.depth).rev() {
        reach = [0, 1, 2].map(|a| (reach[a] * spec.pool[l][a]).max(skips[l][a]));
        conv(&mut reach, spec.kernels[l]);
    }
    reach
}

/// Boundary probability of a raw box through a U-Net as it stands (the network's own zero padding at the
/// box faces; normalisation and affinity reduction in the module documentation). The pipeline uses
/// [`cnn_boundary`], which replicates the volume's faces first.
pub fn cnn_boundary_unpadded(
    net: &UNet3d,
    raw: &Volume<u8>,
    backend: BackendKind,
) -> Result<Volume<f32>, SegmentError> {
    Ok(cnn_maps_unpadded(net, raw, backend, false)?.swap_remove(0))
}

/// The boundary map of a raw box through a U-Net as it stands and, with `affinities` (an affinity network
/// only), its three affinity channels (z, y, x; channel c at voxel v is the affinity of v to v − e_c, clamped
/// to [0, 1]) after it.
fn cnn_maps_unpadded(
    net: &UNet3d,
    raw: &Volume<u8>,
    backend: BackendKind,
    affinities: bool,
) -> Result<Vec<Volume<f32>>, SegmentError> {
    let input = Tensor::from_volume(raw.shape, raw.data.iter().map(|&v| crate::volume::unit_intensity(v)).collect())?;
    let y = net.predict_with(&input, backend)?;
    let vol = |data: Vec<f32>| Volume { shape: raw.shape, voxel_nm: raw.voxel_nm, data };
    match net.spec().output {
        OutputKind::Boundary if affinities => Err(SegmentError::Invalid(
            "affinity edge scores need an affinity network (output \"affinities\"); this U-Net predicts a boundary \
             map: use \"edge_score\": \"boundary\""
                .into(),
        )),
        OutputKind::Boundary => Ok(vec![vol(y.channel(0).iter().map(|v| v.clamp(0.0, 1.0)).collect())]),
        OutputKind::Affinities => {
            let (az, ay, ax) = (y.channel(0), y.channel(1), y.channel(2));
            let b = (0..az.len()).map(|i| (1.0 - (az[i] + ay[i] + ax[i]) / 3.0).clamp(0.0, 1.0)).collect();
            let mut maps = vec![vol(b)];
            if affinities {
                maps.extend([az, ay, ax].map(|c| vol(c.iter().map(|v| v.clamp(0.0, 1.0)).collect())));
            }
            Ok(maps)
        }
    }
}

/// The pipeline's U-Net boundary map of a whole in-memory volume (faces extended by edge replication, see
/// the module documentation); equal to [`boundary_blockwise`] with any block.
pub fn cnn_boundary(net: &UNet3d, raw: &Volume<u8>, backend: BackendKind) -> Result<Volume<f32>, SegmentError> {
    boundary_blockwise(raw, &BoundaryModel::Cnn { net: Box::new(net.clone()), backend }, None, false)
}

/// The box `[lo, hi)` of the edge-replicated infinite extension of `src` (coordinates may lie outside the
/// volume): reads the part inside the volume and replicates its faces.
pub fn read_extended(src: &dyn RawSource, lo: [i64; 3], hi: [i64; 3]) -> Result<Volume<u8>, SegmentError> {
    let shape = src.shape();
    let n = shape.map(|s| s as i64);
    let rlo = [0, 1, 2].map(|a| lo[a].clamp(0, n[a] - 1) as usize);
    let rhi = [0, 1, 2].map(|a| (hi[a].clamp(1, n[a]) as usize).max(rlo[a] + 1));
    let inner = src.read(rlo, rhi)?;
    if (0..3).all(|a| lo[a] == rlo[a] as i64 && hi[a] == rhi[a] as i64) {
        return Ok(inner);
    }
    let out_shape = [0, 1, 2].map(|a| (hi[a] - lo[a]) as usize);
    let mut data = Vec::with_capacity(out_shape.iter().product());
    let clamp = |a: usize, v: i64| (v.clamp(rlo[a] as i64, rhi[a] as i64 - 1) as usize) - rlo[a];
    for z in lo[0]..hi[0] {
        for y in lo[1]..hi[1] {
            let row = inner.idx(clamp(0, z), clamp(1, y), 0);
            data.extend((lo[2]..hi[2]).map(|x| inner.data[row + clamp(2, x)]));
        }
    }
    Ok(Volume { shape: out_shape, voxel_nm: inner.voxel_nm, data })
}

/// Histogram of an 8-bit source, streamed block by block (`block = None`: whole).
pub fn histogram(src: &dyn RawSource, block: Option<[usize; 3]>) -> Result<[u64; 256], SegmentError> {
    let mut h = [0u64; 256];
    let mut add = |v: &Volume<u8>| v.data.iter().for_each(|&x| h[x as usize] += 1);
    if let Some(v) = src.in_memory() {
        add(v);
        return Ok(h);
    }
    let shape = src.shape();
    for (lo, hi) in tiles(shape, block.unwrap_or(shape)) {
        add(&src.read(lo, hi)?);
    }
    Ok(h)
}

impl BoundaryModel {
    /// Prepares `source` for `src`: loads and checks the U-Net weights, or computes the membrane filter's
    /// intensity range over the whole source (streamed in `block`s).
    pub fn load(
        source: &BoundarySource,
        membrane: &MembraneConfig,
        src: &dyn RawSource,
        block: Option<[usize; 3]>,
    ) -> Result<Self, SegmentError> {
        match source {
            BoundarySource::Sheetness => {
                let range = match src.in_memory() {
                    Some(v) => intensity_range(v),
                    None => range_from_histogram(&histogram(src, block)?),
                };
                Ok(Self::Sheetness { cfg: membrane.clone(), range })
            }
            BoundarySource::Cnn { weights, backend } => {
                let backend = check_cnn_backend(*backend)?;
                let net = UNet3d::load(weights)?;
                if net.spec().in_channels != 1 {
                    return Err(SegmentError::Invalid(format!(
                        "{}: the U-Net takes {} input channels; a boundary network for raw EM takes 1",
                        weights.display(),
                        net.spec().in_channels
                    )));
                }
                if net.training().is_none() {
                    eprintln!(
                        "note: {}: the weights carry no training record (not written by `neurotwin segment train`); \
                         make sure they were trained for this kind of EM",
                        weights.display()
                    );
                }
                Ok(Self::Cnn { net: Box::new(net), backend })
            }
            BoundarySource::Unet { backend } => {
                let backend = check_cnn_backend(*backend)?;
                Ok(Self::Cnn { net: Box::new(crate::cnn::shipped_boundary_net()?), backend })
            }
        }
    }

    /// Short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Sheetness { .. } => "membrane filter".into(),
            Self::Cnn { net, backend } => format!(
                "U-Net ({}, depth {}, {:?}{})",
                match net.spec().output {
                    OutputKind::Boundary => "boundary",
                    OutputKind::Affinities => "affinities",
                },
                net.spec().depth,
                backend,
                net.training().map_or(String::new(), |r| format!(
                    "; trained on {} slices {}",
                    r["volume"].as_str().unwrap_or("?"),
                    r["training_slices"]
                ))
            ),
        }
    }

    /// Context margin (voxels, z y x) a block needs.
    pub fn context(&self, voxel_nm: [f64; 3]) -> [usize; 3] {
        match self {
            Self::Sheetness { cfg, .. } => margin_voxels(cfg, voxel_nm),
            Self::Cnn { net, .. } => cnn_context(net.spec()),
        }
    }

    /// Read boxes are aligned to this grid (voxels, z y x).
    pub fn alignment(&self) -> [usize; 3] {
        match self {
            Self::Sheetness { .. } => [1; 3],
            Self::Cnn { net, .. } => net.spec().total_pool(),
        }
    }

    /// The boundary map of a box of raw EM as it stands (no face handling beyond the method's own).
    pub fn predict_box(&self, raw: &Volume<u8>) -> Result<Volume<f32>, SegmentError> {
        Ok(self.predict_maps(raw, false)?.swap_remove(0))
    }

    /// The boundary map of a box and, with `affinities`, the affinity network's three channels after it (an
    /// error for the membrane filter and boundary networks).
    pub fn predict_maps(&self, raw: &Volume<u8>, affinities: bool) -> Result<Vec<Volume<f32>>, SegmentError> {
        match self {
            Self::Sheetness { .. } if affinities => Err(SegmentError::Invalid(
                "affinity edge scores need an affinity U-Net (--cnn WEIGHTS with output \"affinities\"); the membrane \
                 filter gives a boundary map only: use \"edge_score\": \"boundary\""
                    .into(),
            )),
            Self::Sheetness { cfg, range } => Ok(vec![boundary_map(raw, cfg, *range)]),
            Self::Cnn { net, backend } => cnn_maps_unpadded(net, raw, *backend, affinities),
        }
    }

    /// How far (voxels, z y x) the volume is virtually extended by edge replication on every side: 0 for
    /// the membrane filter (it replicates edges itself), the context rounded up to the alignment for a U-Net.
    pub fn extension(&self, voxel_nm: [f64; 3]) -> [usize; 3] {
        match self {
            Self::Sheetness { .. } => [0; 3],
            Self::Cnn { .. } => {
                let (m, al) = (self.context(voxel_nm), self.alignment());
                [0, 1, 2].map(|a| m[a].next_multiple_of(al[a]))
            }
        }
    }

    /// The read box (coordinates of the extended volume, may be negative) of the core `[lo, hi)` in a
    /// volume of `shape`: context added, aligned, limited to the extended volume.
    pub fn read_box(&self, lo: [usize; 3], hi: [usize; 3], shape: [usize; 3], voxel_nm: [f64; 3]) -> [[i64; 3]; 2] {
        let (m, al, q) = (self.context(voxel_nm), self.alignment(), self.extension(voxel_nm));
        let plo = [0, 1, 2].map(|a| {
            let v = lo[a] as i64 - m[a] as i64;
            (v.div_euclid(al[a] as i64) * al[a] as i64).max(-(q[a] as i64))
        });
        let phi = [0, 1, 2].map(|a| ((hi[a] + m[a]).next_multiple_of(al[a]).min(shape[a] + q[a])) as i64);
        [plo, phi]
    }
}

/// The boundary map of `src`, block by block (`block = None`: in one piece). Each block's read box is
/// [`BoundaryModel::read_box`] of the edge-replicated extension ([`read_extended`]); only the core is kept,
/// so the result equals the whole-volume map bit for bit. Only one block of raw EM (plus context) is read
/// from `src` at a time.
pub fn boundary_blockwise(
    src: &dyn RawSource,
    model: &BoundaryModel,
    block: Option<[usize; 3]>,
    show_progress: bool,
) -> Result<Volume<f32>, SegmentError> {
    Ok(maps_blockwise(src, model, block, false, show_progress)?.swap_remove(0))
}

/// [`boundary_blockwise`] and, with `affinities`, the affinity network's three channels (z, y, x) after the
/// boundary map, each equal bit for bit to a whole-volume run.
pub fn maps_blockwise(
    src: &dyn RawSource,
    model: &BoundaryModel,
    block: Option<[usize; 3]>,
    affinities: bool,
    show_progress: bool,
) -> Result<Vec<Volume<f32>>, SegmentError> {
    let (shape, voxel) = (src.shape(), src.voxel_nm());
    let n_maps = if affinities { 4 } else { 1 };
    let mut out = vec![Volume { shape, voxel_nm: voxel, data: vec![0f32; shape.iter().product()] }; n_maps];
    let t = tiles(shape, block.unwrap_or(shape));
    let pb = crate::blockwise::progress(t.len(), "boundary", show_progress);
    for (lo, hi) in t {
        for (o, m) in out.iter_mut().zip(maps_of_block(src, model, lo, hi, affinities)?) {
            paste(o, lo, &m);
        }
        pb.inc();
    }
    pb.finish();
    Ok(out)
}

/// The boundary map of the block `[lo, hi)` of `src`: its read box ([`BoundaryModel::read_box`]) of the
/// edge-replicated extension, predicted and cropped to the core — equal bit for bit to the same voxels of a
/// whole-volume map.
pub fn boundary_of_block(
    src: &dyn RawSource,
    model: &BoundaryModel,
    lo: [usize; 3],
    hi: [usize; 3],
) -> Result<Volume<f32>, SegmentError> {
    Ok(maps_of_block(src, model, lo, hi, false)?.swap_remove(0))
}

/// [`boundary_of_block`] and, with `affinities`, the three affinity channels after it.
fn maps_of_block(
    src: &dyn RawSource,
    model: &BoundaryModel,
    lo: [usize; 3],
    hi: [usize; 3],
    affinities: bool,
) -> Result<Vec<Volume<f32>>, SegmentError> {
    let (shape, voxel) = (src.shape(), src.voxel_nm());
    let [plo, phi] = model.read_box(lo, hi, shape, voxel);
    let mut raw = read_extended(src, plo, phi)?;
    raw.voxel_nm = voxel;
    let maps = model.predict_maps(&raw, affinities)?;
    let off = |c: [usize; 3]| [0, 1, 2].map(|a| (c[a] as i64 - plo[a]) as usize);
    Ok(maps.iter().map(|m| m.crop(off(lo), off(hi))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_of_a_two_level_unet() {
        let spec = UNetSpec {
            in_channels: 1,
            out_channels: 1,
            output: OutputKind::Boundary,
            base_channels: 2,
            channel_factor: 2,
            depth: 2,
            pool: vec![[1, 2, 2], [2, 2, 2]],
            kernels: vec![[1, 3, 3], [3, 3, 3], [3, 3, 3]],
            convs_per_block: 2,
        };
        // level 0: [0,2,2]; pool → [0,1,1]; level 1: [2,3,3]; pool → [1,2,2]; bottom: [3,4,4];
        // up ×2 → [6,8,8], convs → [8,10,10]; up ×[1,2,2] → [8,20,20], convs → [8,22,22].
        assert_eq!(cnn_context(&spec), [8, 22, 22]);
        let ed = crate::cnn::edge_detector([0.0, 1.0, 1.0], 10.0, 0.1).unwrap();
        assert_eq!(cnn_context(ed.spec()), [0, 2, 2]);
    }

    #[test]
    fn boundary_source_in_json() {
        let b: BoundarySource =
            serde_json::from_str(r#"{"cnn": {"weights": "w.safetensors", "backend": "cuda-host"}}"#).unwrap();
        assert_eq!(b, BoundarySource::Cnn { weights: "w.safetensors".into(), backend: BackendKind::CudaHost });
        let b: BoundarySource = serde_json::from_str(r#"{"cnn": {"weights": "w.safetensors"}}"#).unwrap();
        assert_eq!(b, BoundarySource::Cnn { weights: "w.safetensors".into(), backend: BackendKind::Cpu });
        assert_eq!(serde_json::from_str::<BoundarySource>(r#""sheetness""#).unwrap(), BoundarySource::Sheetness);
        assert!(serde_json::from_str::<BoundarySource>(r#"{"cnn": {"weight": "w"}}"#).is_err());
        let b: BoundarySource = serde_json::from_str(r#"{"unet": {}}"#).unwrap();
        assert_eq!(b, BoundarySource::Unet { backend: BackendKind::Cpu });
        let b: BoundarySource = serde_json::from_str(r#"{"unet": {"backend": "cuda-host"}}"#).unwrap();
        assert_eq!(b, BoundarySource::Unet { backend: BackendKind::CudaHost });
    }

    /// The shipped network is a trained boundary U-Net: it loads, carries the record of its training (data and
    /// held-out slices), and the pipeline's `unet` source runs it.
    #[test]
    fn the_shipped_network_loads_with_its_training_record() {
        let net = crate::cnn::shipped_boundary_net().unwrap();
        assert_eq!(net.spec().in_channels, 1);
        assert_eq!(net.spec().output, OutputKind::Boundary);
        assert_eq!(cnn_context(net.spec()), [12, 22, 22], "the model card's receptive field");
        let rec = net.training().expect("the shipped weights carry their training record");
        assert_eq!(rec["training_slices"], serde_json::json!([0, 25]));
        assert_eq!(rec["validation_slices"], serde_json::json!([25, 50]));
        let raw = Volume { shape: [4, 8, 8], voxel_nm: [10.0; 3], data: (0..256).map(|i| (i % 251) as u8).collect() };
        let m = BoundaryModel::load(
            &BoundarySource::Unet { backend: BackendKind::Cpu },
            &MembraneConfig::default(),
            &raw,
            None,
        )
        .unwrap();
        let b = m.predict_box(&raw).unwrap();
        assert!(b.data.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    /// Without a usable GPU, `auto` runs the U-Net on the CPU and `cuda` is refused with the device's one-line
    /// reason before the weights file is read; with one, both resolve to the GPU.
    #[test]
    fn cnn_backend_check_resolves_auto_and_refuses_cuda_without_a_gpu_before_reading_weights() {
        assert_eq!(check_cnn_backend(BackendKind::Cpu).unwrap(), BackendKind::Cpu);
        assert_eq!(check_cnn_backend(BackendKind::CudaHost).unwrap(), BackendKind::CudaHost);
        let gpu = neurotwin_kernels::device::device(0);
        let auto = if gpu.is_ok() { BackendKind::Cuda } else { BackendKind::Cpu };
        assert_eq!(check_cnn_backend(BackendKind::Auto).unwrap(), auto);
        let Err(why) = gpu else {
            assert_eq!(check_cnn_backend(BackendKind::Cuda).unwrap(), BackendKind::Cuda);
            eprintln!("SKIP (refusal part): a CUDA device is usable here");
            return;
        };
        let src: BoundarySource =
            serde_json::from_str(r#"{"cnn": {"weights": "absent.safetensors", "backend": "cuda"}}"#).unwrap();
        let raw = Volume::from_vec([2, 2, 2], [1.0; 3], vec![0u8; 8]).unwrap();
        let e = BoundaryModel::load(&src, &MembraneConfig::default(), &raw, None).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("no usable GPU") && e.contains(&why) && !e.contains('\n'), "{e}");
        assert!(!e.contains("absent.safetensors"), "{e}");
    }

    #[test]
    fn extended_read_replicates_faces() {
        let v = Volume::from_vec([2, 2, 3], [1.0; 3], (0..12u8).collect()).unwrap();
        let e = read_extended(&v, [-1, 0, -2], [2, 3, 4]).unwrap();
        assert_eq!(e.shape, [3, 3, 6]);
        // z = -1 replicates z = 0; y = 2 replicates y = 1; x = -2, -1 replicate x = 0; x = 3 replicates x = 2.
        assert_eq!(&e.data[0..6], &[0, 0, 0, 1, 2, 2]);
        assert_eq!(&e.data[12..18], &[3, 3, 3, 4, 5, 5]);
        assert_eq!(&e.data[e.idx(2, 2, 0)..], &[9, 9, 9, 10, 11, 11]);
        assert_eq!(read_extended(&v, [0, 0, 0], [2, 2, 3]).unwrap(), v);
    }
}
