//! Affinity agglomeration (issue 17, waterz's mean-affinity scoring): the edge statistics are 1 − the affinity
//! across each contact; with affinities made from the ground truth (the independent truth an affinity network
//! learns) agglomeration rejoins every cell from its pieces exactly; an affinity U-Net's channels come
//! block by block bit for bit, and the pipeline refuses affinity scores without an affinity network.

use neurotwin_segment::agglomerate::agglomerate;
use neurotwin_segment::boundary::{BoundaryModel, BoundarySource, maps_blockwise};
use neurotwin_segment::cnn::train::affinity_target;
use neurotwin_segment::cnn::{BackendKind, OutputKind, UNet3d, UNetSpec};
use neurotwin_segment::metrics::evaluate;
use neurotwin_segment::pipeline::{EdgeScore, PipelineConfig, run};
use neurotwin_segment::rag::{SCALE, build_affinity};
use neurotwin_segment::synthetic::{SyntheticConfig, region};
use neurotwin_segment::volume::Volume;

/// The three channels of `affinity_target` as volumes.
fn channels(labels: &Volume<u64>) -> Vec<Volume<f32>> {
    let (t, _) = affinity_target(&labels.data, labels.shape);
    t.chunks(labels.len())
        .map(|c| Volume { shape: labels.shape, voxel_nm: labels.voxel_nm, data: c.to_vec() })
        .collect()
}

#[test]
fn an_edge_scores_one_minus_the_mean_affinity_across_its_contact() {
    // Two regions split at x = 3 in a 2 × 2 × 6 box; the x affinities of the voxels at x = 3 (to x = 2) are
    // 0.25 and 0.75 alternately: mean 0.5, score 0.5. Affinities elsewhere do not count.
    let shape = [2, 2, 6];
    let labels = Volume { shape, voxel_nm: [1.0; 3], data: (0..24).map(|i| if i % 6 < 3 { 1 } else { 2 }).collect() };
    let mut aff = vec![Volume::filled(shape, [1.0; 3], 0.9f32); 3];
    for (k, i) in (0..24).filter(|i| i % 6 == 3).enumerate() {
        aff[2].data[i] = if k % 2 == 0 { 0.25 } else { 0.75 };
    }
    let g = build_affinity(&labels, &aff);
    let e = g.edges[&(1, 2)];
    assert_eq!(e.count, 4);
    assert_eq!(e.sum, 2 * (2 * (0.75f64 * SCALE as f64).round() as u64 + 2 * (0.25f64 * SCALE as f64).round() as u64));
    assert!((e.mean() - 0.5).abs() < 1e-5, "{}", e.mean());
    assert_eq!(g.edges.len(), 1);
}

#[test]
fn true_affinities_rejoin_every_cell_from_its_pieces() {
    // Fragments: each synthetic cell cut into pieces by a 6-voxel grid. Affinities made from the ground truth
    // score every contact inside a cell 0 and every contact between cells 1, so agglomeration at 0.5 returns the
    // cells exactly (VOI 0).
    let cfg = SyntheticConfig { shape: [18, 48, 48], cell_nm: 250.0, ..Default::default() };
    let gt = region(&cfg, [0; 3], cfg.shape).labels;
    let mut pieces = gt.clone();
    for (i, l) in pieces.data.iter_mut().enumerate() {
        let c = gt.coords(i);
        *l = *l * 1000 + ((c[0] / 6) * 100 + (c[1] / 6) * 10 + c[2] / 6) as u64;
    }
    let g = build_affinity(&pieces, &channels(&gt));
    let ag = agglomerate(&g, &[0.5]);
    let joined = pieces.map(|f| ag.maps[0][f]);
    let s = evaluate(&joined, &gt).unwrap();
    assert!(s.voi() < 1e-12 && s.adapted_rand_error < 1e-12, "{s:?}");
    assert!(g.edges.values().all(|e| e.mean() == 0.0 || e.mean() == 1.0));
}

fn affinity_net() -> UNet3d {
    let spec = UNetSpec {
        in_channels: 1,
        out_channels: 3,
        output: OutputKind::Affinities,
        base_channels: 2,
        channel_factor: 2,
        depth: 1,
        pool: vec![[1, 2, 2]],
        kernels: vec![[1, 3, 3], [3, 3, 3]],
        convs_per_block: 1,
    };
    UNet3d::random(spec, 5).unwrap()
}

#[test]
fn affinity_channels_blockwise_equal_whole_and_need_an_affinity_network() {
    let cfg = SyntheticConfig { shape: [12, 40, 36], cell_nm: 200.0, ..Default::default() };
    let raw = region(&cfg, [0; 3], cfg.shape).raw;
    let model = BoundaryModel::Cnn { net: Box::new(affinity_net()), backend: BackendKind::Cpu };
    let whole = maps_blockwise(&raw, &model, None, true, false).unwrap();
    assert_eq!(whole.len(), 4);
    for block in [[4, 16, 16], [12, 20, 36]] {
        assert_eq!(maps_blockwise(&raw, &model, Some(block), true, false).unwrap(), whole, "{block:?}");
    }
    // The boundary map is 1 − the mean of the three channels.
    let i = raw.idx(6, 20, 18);
    let mean = (whole[1].data[i] + whole[2].data[i] + whole[3].data[i]) / 3.0;
    assert!((whole[0].data[i] - (1.0 - mean).clamp(0.0, 1.0)).abs() < 1e-6);
    // Through the pipeline with the weights in a file.
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("aff.safetensors");
    affinity_net().save(&w).unwrap();
    let pc = PipelineConfig {
        boundary: BoundarySource::Cnn { weights: w, backend: BackendKind::Cpu },
        edge_score: EdgeScore::Affinity,
        thresholds: vec![0.5],
        detect_synapses: false,
        fragment_chunk: [12, 20, 18],
        ..PipelineConfig::default()
    };
    let a = run(&raw, None, None, &pc, "a", vec![]).unwrap();
    let b = run(&raw, None, None, &PipelineConfig { block: Some([12, 20, 18]), ..pc.clone() }, "a", vec![]).unwrap();
    assert_eq!(a.segmentations, b.segmentations);
    // Without an affinity network (the membrane filter, a given boundary map) affinity scores are refused.
    let sheet = PipelineConfig { boundary: BoundarySource::Sheetness, ..pc.clone() };
    let e = run(&raw, None, None, &sheet, "a", vec![]).unwrap_err().to_string();
    assert!(e.contains("affinity") && e.contains("edge_score"), "{e}");
    let e = run(&raw, Some(raw.map(|_| 0.5f32)), None, &pc, "a", vec![]).unwrap_err().to_string();
    assert!(e.contains("--boundary"), "{e}");
}
