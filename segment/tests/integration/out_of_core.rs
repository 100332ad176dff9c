//! Out-of-core segmentation (issue 17): Zarr to Zarr, block by block, equals the in-memory pipeline voxel for
//! voxel (fragments, every segmentation, label numbers and scores) for two block sizes, from a given boundary
//! map and from raw EM through the membrane filter; the memory estimate refuses a block too large before
//! anything is read.

use neurotwin_segment::boundary::{BoundaryModel, BoundarySource};
use neurotwin_segment::metrics::evaluate;
use neurotwin_segment::out_of_core::{
    BOUNDARY_ARRAY, FRAGMENTS_ARRAY, Input, OutOfCoreReport, segment_out_of_core, segmentation_array,
};
use neurotwin_segment::pipeline::{PipelineConfig, segment_boundary};
use neurotwin_segment::synthetic::{self, SyntheticConfig};
use neurotwin_segment::volume::Volume;
use neurotwin_segment::zarr::{self, ZarrRaw, ZarrVolume};

fn config(block: [usize; 3]) -> PipelineConfig {
    PipelineConfig {
        boundary: BoundarySource::Sheetness,
        thresholds: vec![0.5, 0.3],
        fragment_chunk: [24, 48, 48],
        block: Some(block),
        ..PipelineConfig::default()
    }
}

fn synthetic_store(dir: &std::path::Path) -> (SyntheticConfig, std::path::PathBuf) {
    let cfg =
        SyntheticConfig { shape: [48, 96, 96], cell_nm: 250.0, membrane_nm: 30.0, noise: 0.1, ..Default::default() };
    let store = dir.join("synthetic.zarr");
    // Written in blocks and chunks other than the ones segmented.
    synthetic::write_zarr(&cfg, &store, [16, 64, 64], [16, 32, 32], false).unwrap();
    (cfg, store)
}

fn read_u64(store: &std::path::Path, name: &str) -> Volume<u64> {
    zarr::read_labels(store, name, [1.0; 3]).unwrap()
}

#[test]
fn boundary_map_input_equals_the_in_memory_pipeline_for_two_block_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let (syn, store) = synthetic_store(dir.path());
    let map = ZarrVolume::open(&store, synthetic::BOUNDARY).unwrap();
    let gt_array = ZarrVolume::open(&store, synthetic::LABELS).unwrap();
    let boundary = zarr::read_boundary(&store, synthetic::BOUNDARY, [1.0; 3]).unwrap();
    let gt = read_u64(&store, synthetic::LABELS);

    let whole = segment_boundary(&boundary, &config([24, 48, 48])).unwrap();
    let mut reports: Vec<OutOfCoreReport> = Vec::new();
    for (k, block) in [[24, 48, 48], [48, 48, 96]].into_iter().enumerate() {
        let out = dir.path().join(format!("out{k}.zarr"));
        let input = Input::Boundary { map: &map, voxel_nm: syn.voxel_nm };
        let r = segment_out_of_core(&input, &out, Some(&gt_array), &config(block)).unwrap();
        assert_eq!(read_u64(&out, FRAGMENTS_ARRAY).data, whole.fragments.data, "fragments, block {block:?}");
        for (t, seg) in &whole.segmentations {
            let got = read_u64(&out, &segmentation_array(*t));
            assert_eq!(got.data, seg.data, "segmentation at threshold {t}, block {block:?}");
            let res = r.thresholds.iter().find(|x| x.threshold == *t).unwrap();
            assert_eq!(res.segments as u64, seg.data.iter().copied().max().unwrap());
            assert_eq!(res.scores.as_ref(), Some(&evaluate(seg, &gt).unwrap()), "scores at {t}");
        }
        assert!(!out.join(BOUNDARY_ARRAY).exists(), "a given boundary map is not copied");
        reports.push(r);
    }
    assert_eq!(reports[0].blocks, 2 * 2 * 2);
    assert_eq!(reports[1].blocks, 2);
    assert_eq!(reports[0].fragments, reports[1].fragments);
    assert_eq!(reports[0].graph_edges, reports[1].graph_edges);
    // The synthetic cells are found (a small volume: cells cut by its faces leave slivers without a seed).
    let s = reports[0].thresholds[0].scores.as_ref().unwrap();
    assert!(s.voi() < 0.8 && s.adapted_rand_error < 0.15, "{s:?}");
}

#[test]
fn raw_input_equals_the_in_memory_pipeline_and_writes_the_boundary_map() {
    let dir = tempfile::tempdir().unwrap();
    let (syn, store) = synthetic_store(dir.path());
    let raw = ZarrRaw::open(&store, synthetic::RAW, [1.0; 3]).unwrap();
    assert_eq!(raw.voxel_nm, syn.voxel_nm);
    let cfg = config([24, 48, 48]);
    let model = BoundaryModel::load(&cfg.boundary, &cfg.membrane, &raw, cfg.block).unwrap();
    let whole_boundary = neurotwin_segment::boundary::boundary_blockwise(&raw, &model, None, false).unwrap();
    let whole = segment_boundary(&whole_boundary, &cfg).unwrap();
    for (k, block) in [[24, 48, 48], [48, 96, 48]].into_iter().enumerate() {
        let out = dir.path().join(format!("raw{k}.zarr"));
        let r = segment_out_of_core(&Input::Raw { src: &raw, model: &model }, &out, None, &config(block)).unwrap();
        assert_eq!(r.boundary_source, "membrane filter");
        let b = zarr::read_boundary(&out, BOUNDARY_ARRAY, [1.0; 3]).unwrap();
        assert_eq!(b.data, whole_boundary.data, "boundary map, block {block:?}");
        for (t, seg) in &whole.segmentations {
            assert_eq!(read_u64(&out, &segmentation_array(*t)).data, seg.data, "threshold {t}, block {block:?}");
        }
        assert!(r.thresholds.iter().all(|x| x.scores.is_none()));
    }
}

#[test]
fn a_block_too_large_for_memory_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("declared.zarr");
    // Declared only (no chunk written): 4096³ uint8 voxels.
    let map = ZarrVolume::create::<u8>(&store, "b", [4096; 3], [64, 256, 256], [10.0; 3]).unwrap();
    let out = dir.path().join("out.zarr");
    let cfg = PipelineConfig { fragment_chunk: [64, 256, 256], ..config([4096, 4096, 4096]) };
    let e = segment_out_of_core(&Input::Boundary { map: &map, voxel_nm: [10.0; 3] }, &out, None, &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs about") && e.contains("--block"), "{e}");
    assert!(!out.exists(), "nothing written");
}
