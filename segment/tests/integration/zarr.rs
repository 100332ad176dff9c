//! Zarr input: a phantom written as Zarr v3 arrays (zarrs) segments exactly like the same phantom in HDF5,
//! whole and with the boundary stage reading the store block by block; a hand-written Zarr v2 array with a
//! `voxel_size` attribute; wrong dtype / rank, missing array and missing store give clear errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use neurotwin_segment::RawSource;
use neurotwin_segment::boundary::BoundarySource;
use neurotwin_segment::cnn::BackendKind;
use neurotwin_segment::io::{Data, NEURON_IDS, RAW, read_labels, read_raw, write_volumes};
use neurotwin_segment::phantom::{PhantomConfig, generate};
use neurotwin_segment::pipeline::{PipelineConfig, run, run_source};
use neurotwin_segment::volume::Volume;
use neurotwin_segment::zarr::{self, ZarrRaw, write_array};

/// The default configuration with the membrane filter and its thresholds: phantoms are synthetic (8 × 8 × 16 nm
/// voxels, their own contrast and noise), outside what the shipped U-Net was trained on (FIB-SEM), so the
/// pipeline tests here use the filter.
fn filter_config() -> PipelineConfig {
    PipelineConfig {
        boundary: neurotwin_segment::boundary::BoundarySource::Sheetness,
        thresholds: vec![0.5, 0.3, 0.4, 0.6],
        ..PipelineConfig::default()
    }
}

#[test]
fn zarr_equals_hdf5() {
    let ph = generate(&PhantomConfig { noise: 0.1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("p.h5");
    let store = dir.path().join("p.zarr");
    write_volumes(&h5, &[(RAW, Data::U8(&ph.raw)), (NEURON_IDS, Data::U64(&ph.labels))], None).unwrap();
    write_array(&store, RAW, &ph.raw, [8, 32, 32]).unwrap();
    write_array(&store, NEURON_IDS, &ph.labels, [16, 40, 40]).unwrap();

    let (h5_raw, _) = read_raw(&h5, RAW, [1.0; 3]).unwrap();
    let z = ZarrRaw::open(&store, RAW, [1.0; 3]).unwrap();
    assert!(z.voxel_from_attribute && z.voxel_nm == ph.raw.voxel_nm && z.shape() == ph.raw.shape);
    assert_eq!(*z.whole().unwrap(), h5_raw);
    assert_eq!(z.read([3, 10, 20], [9, 41, 77]).unwrap(), h5_raw.crop([3, 10, 20], [9, 41, 77]));
    let gt = zarr::read_labels(&store, NEURON_IDS, [1.0; 3]).unwrap();
    assert_eq!(gt, read_labels(&h5, NEURON_IDS, [1.0; 3]).unwrap());

    let cfg = PipelineConfig { fragment_chunk: [16, 40, 40], ..filter_config() };
    let a = run(&h5_raw, None, None, &cfg, "p", vec![]).unwrap();
    let b = run_source(&z, None, None, &cfg, "p", vec![]).unwrap();
    // The boundary stage reading the store block by block (synapse detection still reads it whole).
    let blocked = PipelineConfig { block: Some([16, 40, 40]), ..cfg.clone() };
    let c = run_source(&z, None, None, &blocked, "p", vec![]).unwrap();
    for o in [&b, &c] {
        assert_eq!(o.boundary, a.boundary);
        assert_eq!(o.segmentations, a.segmentations);
        assert_eq!(o.synapses.len(), a.synapses.len());
        assert_eq!(o.connectome.connections.len(), a.connectome.connections.len());
    }
    let s = neurotwin_segment::metrics::evaluate(&b.segmentations[0].1, &gt).unwrap();
    println!(
        "Zarr phantom: {} segments, VOI {:.4} (== HDF5, whole and blockwise)",
        b.report.thresholds[0].segments,
        s.voi()
    );
}

/// A Zarr v2 array written by hand (uncompressed, `.zarray` + `.zattrs` + chunk files `z.y.x`).
fn write_v2(dir: &std::path::Path, name: &str, dtype: &str, shape: [usize; 3], chunk: [usize; 3], bytes: &[u8]) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join(".zarray"),
        format!(
            r#"{{"zarr_format":2,"shape":{shape:?},"chunks":{chunk:?},"dtype":"{dtype}","compressor":null,"fill_value":0,"order":"C","filters":null}}"#
        ),
    )
    .unwrap();
    std::fs::write(d.join(".zattrs"), r#"{"voxel_size":[40.0,4.0,4.0]}"#).unwrap();
    let esz = bytes.len() / shape.iter().product::<usize>();
    for cz in 0..shape[0] / chunk[0] {
        for cy in 0..shape[1] / chunk[1] {
            for cx in 0..shape[2] / chunk[2] {
                let mut c = Vec::new();
                for z in 0..chunk[0] {
                    for y in 0..chunk[1] {
                        let i = ((cz * chunk[0] + z) * shape[1] + cy * chunk[1] + y) * shape[2] + cx * chunk[2];
                        c.extend_from_slice(&bytes[i * esz..(i + chunk[2]) * esz]);
                    }
                }
                std::fs::write(d.join(format!("{cz}.{cy}.{cx}")), c).unwrap();
            }
        }
    }
}

#[test]
fn zarr_v2_with_voxel_size_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("v2.zarr");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join(".zgroup"), r#"{"zarr_format":2}"#).unwrap();
    let shape = [4, 6, 8];
    let raw: Vec<u8> = (0..shape.iter().product::<usize>()).map(|i| (i * 7 % 251) as u8).collect();
    write_v2(&store, "raw", "|u1", shape, [2, 3, 4], &raw);
    let labels: Vec<u32> = (0..raw.len() as u32).map(|i| i / 10).collect();
    let lb: Vec<u8> = labels.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_v2(&store, "labels", "<u4", shape, [2, 3, 4], &lb);
    // A store that is itself one array is named `/`.
    let e = ZarrRaw::open(store.join("raw"), "volumes/raw", [1.0; 3]).err().unwrap().to_string();
    assert!(e.contains("--raw-dataset /"), "{e}");
    assert_eq!(ZarrRaw::open(store.join("raw"), "/", [1.0; 3]).unwrap().shape(), shape);
    let z = ZarrRaw::open(&store, "raw", [1.0; 3]).unwrap();
    assert!(z.voxel_from_attribute);
    assert_eq!(z.voxel_nm, [40.0, 4.0, 4.0]);
    assert_eq!(z.whole().unwrap().data, raw);
    assert_eq!(
        z.read([1, 2, 3], [3, 5, 8]).unwrap(),
        Volume::from_vec(shape, [40.0, 4.0, 4.0], raw.clone()).unwrap().crop([1, 2, 3], [3, 5, 8])
    );
    let l = zarr::read_labels(&store, "labels", [1.0; 3]).unwrap();
    assert_eq!(l.data, labels.iter().map(|&v| v as u64).collect::<Vec<_>>());
}

#[test]
fn zarr_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bad.zarr");
    let labels = Volume::from_vec([2, 3, 4], [1.0; 3], (0..24u64).collect()).unwrap();
    write_array(&store, "labels", &labels, [2, 3, 4]).unwrap();
    let floats = Volume::from_vec([2, 3, 4], [1.0; 3], vec![0.5f32; 24]).unwrap();
    write_array(&store, "floats", &floats, [2, 3, 4]).unwrap();
    // A rank-2 array, written with zarrs directly.
    let fs = Arc::new(zarrs::filesystem::FilesystemStore::new(&store).unwrap());
    let a = zarrs::array::ArrayBuilder::new(
        vec![4u64, 5],
        vec![4u64, 5],
        zarrs::array::data_type::uint8(),
        zarrs::array::FillValue::from(0u8),
    )
    .build(fs, "/flat")
    .unwrap();
    a.store_metadata().unwrap();

    let err = |r: Result<ZarrRaw, neurotwin_segment::SegmentError>| {
        let e = r.err().expect("must fail").to_string();
        println!("{e}");
        e
    };
    let e = err(ZarrRaw::open(&store, "labels", [1.0; 3]));
    assert!(e.contains("bad.zarr") && e.contains("`labels`") && e.contains("expected uint8"), "{e}");
    let e = err(ZarrRaw::open(&store, "flat", [1.0; 3]));
    assert!(e.contains("`flat`") && e.contains("rank 2"), "{e}");
    let e = err(ZarrRaw::open(&store, "volumes/raw", [1.0; 3]));
    assert!(e.contains("`volumes/raw`") && e.contains("missing") && e.contains("labels"), "{e}");
    let e = err(ZarrRaw::open(dir.path().join("nope.zarr"), "raw", [1.0; 3]));
    assert!(e.contains("nope.zarr") && e.contains("not found"), "{e}");
    assert_eq!(zarr::read_boundary(&store, "floats", [1.0; 3]).unwrap().data, vec![0.5f32; 24]);
    let e = zarr::read_boundary(&store, "labels", [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("`labels`") && e.contains("expected float32"), "{e}");
    let nan = Volume::from_vec([1, 1, 2], [1.0; 3], vec![0.5f32, f32::NAN]).unwrap();
    write_array(&store, "nan", &nan, [1, 1, 2]).unwrap();
    let e = zarr::read_boundary(&store, "nan", [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("`nan`") && e.contains("NaN"), "{e}");
    let e = zarr::read_labels(&store, "floats", [1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("`floats`") && e.contains("integer label type"), "{e}");
    println!("{e}");
}

/// A raw source that records the largest region read.
struct Counting<'a> {
    inner: &'a ZarrRaw,
    max_voxels: AtomicUsize,
    reads: AtomicUsize,
}

impl RawSource for Counting<'_> {
    fn shape(&self) -> [usize; 3] {
        self.inner.shape()
    }
    fn voxel_nm(&self) -> [f64; 3] {
        self.inner.voxel_nm()
    }
    fn read(&self, lo: [usize; 3], hi: [usize; 3]) -> Result<Volume<u8>, neurotwin_segment::SegmentError> {
        let n = (0..3).map(|a| hi[a] - lo[a]).product::<usize>();
        self.max_voxels.fetch_max(n, Ordering::Relaxed);
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read(lo, hi)
    }
}

/// With a block and no synapse stage, the Zarr volume is only ever read one block (plus context) at a time,
/// for the membrane filter (histogram pass + filter pass) and for the U-Net.
#[test]
fn blockwise_reads_only_blocks() {
    let ph = generate(&PhantomConfig { noise: 0.1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("p.zarr");
    write_array(&store, RAW, &ph.raw, [8, 40, 40]).unwrap();
    let z = ZarrRaw::open(&store, RAW, [1.0; 3]).unwrap();
    let w = dir.path().join("e.safetensors");
    neurotwin_segment::cnn::edge_detector([1.0, 1.5, 1.5], 25.0, 0.08).unwrap().save(&w).unwrap();
    let block = [8, 40, 40];
    let base = PipelineConfig { block: Some(block), fragment_chunk: block, detect_synapses: false, ..filter_config() };
    for cfg in [
        base.clone(),
        PipelineConfig {
            boundary: BoundarySource::Cnn { weights: w.clone(), backend: BackendKind::Cpu },
            ..base.clone()
        },
    ] {
        let c = Counting { inner: &z, max_voxels: AtomicUsize::new(0), reads: AtomicUsize::new(0) };
        let out = run_source(&c, None, None, &cfg, "p", vec![]).unwrap();
        let whole = run(&ph.raw, None, None, &PipelineConfig { block: None, ..cfg.clone() }, "p", vec![]).unwrap();
        assert_eq!(out.segmentations, whole.segmentations);
        let (max, reads) = (c.max_voxels.into_inner(), c.reads.into_inner());
        println!(
            "{}: {reads} region reads, the largest {max} voxels ({:.0} % of the volume)",
            out.report.boundary_source,
            100.0 * max as f64 / ph.raw.len() as f64
        );
        assert!(reads >= 8 && max * 2 < ph.raw.len(), "{reads} reads, largest {max}");
    }
}
