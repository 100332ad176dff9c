//! The pipeline on phantoms with exact ground truth: segmentation quality at two noise levels, the
//! metric reacting to a corrupted boundary map, synapse detection and block-wise == whole.

use neurotwin_segment::metrics::{SegmentationScores, evaluate, match_synapses};
use neurotwin_segment::phantom::{Phantom, PhantomConfig, generate};
use neurotwin_segment::pipeline::{PipelineConfig, PipelineOutput, run, segment_boundary};
use neurotwin_segment::volume::Volume;
use std::collections::HashMap;

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

fn phantom(noise: f64) -> Phantom {
    generate(&PhantomConfig { noise, ..Default::default() })
}

fn pipeline(ph: &Phantom, cfg: &PipelineConfig) -> PipelineOutput {
    run(&ph.raw, None, None, cfg, "phantom", vec!["phantom".into()]).unwrap()
}

fn print(label: &str, s: &SegmentationScores) {
    println!(
        "{label}: VOI split {:.4} merge {:.4} (total {:.4}) bits, adapted Rand error {:.4}",
        s.voi_split,
        s.voi_merge,
        s.voi(),
        s.adapted_rand_error
    );
}

/// Measured (2026-11-23, default config, primary threshold 0.5; noise σ in units of the [0, 1] image
/// where membranes are 0.5 darker than cytoplasm): noise 0.1 → VOI split 0.0001, merge 0.0001,
/// ARE 0.0000; noise 0.4 → split 0.0100, merge 0.0073 (total 0.0174), ARE 0.0018. Asserted with a
/// margin: VOI ≤ 0.02 / 0.06 bits, ARE ≤ 0.005 / 0.01.
#[test]
fn phantom_two_noise_levels() {
    for (noise, max_voi, max_are) in [(0.1, 0.02, 0.005), (0.4, 0.06, 0.01)] {
        let ph = phantom(noise);
        let out = pipeline(&ph, &filter_config());
        let (t, seg) = &out.segmentations[0];
        let s = evaluate(seg, &ph.labels).unwrap();
        print(&format!("phantom noise {noise}, threshold {t}"), &s);
        for (t, seg) in &out.segmentations[1..] {
            print(&format!("  threshold {t}"), &evaluate(seg, &ph.labels).unwrap());
        }
        assert!(s.voi() <= max_voi, "noise {noise}: VOI {} > {max_voi}", s.voi());
        assert!(s.adapted_rand_error <= max_are, "noise {noise}: ARE {} > {max_are}", s.adapted_rand_error);
        assert!(out.report.thresholds.len() == 4 && out.report.fragments >= 14);
    }
}

/// Erasing the membranes in a slab (boundary map set to 0 for a third of the z range) must worsen VOI
/// (merges across the erased membranes): the metric is alive.
#[test]
fn corrupted_boundary_map_worsens_voi() {
    let ph = phantom(0.05);
    let cfg = PipelineConfig { thresholds: vec![0.5], ..filter_config() };
    let out = pipeline(&ph, &cfg);
    let good = evaluate(&out.segmentations[0].1, &ph.labels).unwrap();
    let mut bad_map = out.boundary.clone();
    let sl = bad_map.slice_len();
    for z in 10..21 {
        bad_map.data[z * sl..(z + 1) * sl].iter_mut().for_each(|v| *v = 0.0);
    }
    let segs = segment_boundary(&bad_map, &cfg).unwrap().segmentations;
    let bad = evaluate(&segs[0].1, &ph.labels).unwrap();
    print("intact boundary map", &good);
    print("membranes erased in z 10..21", &bad);
    assert!(bad.voi_merge > good.voi_merge + 0.5, "merge {} vs {}", bad.voi_merge, good.voi_merge);
    assert!(bad.voi() > good.voi() + 0.5);
    assert!(bad.adapted_rand_error > good.adapted_rand_error + 0.1);
}

/// The ground-truth cell holding most of a segment's labelled voxels.
fn majority_cell(seg: &Volume<u64>, gt: &Volume<u64>) -> HashMap<u64, u64> {
    let mut c: HashMap<(u64, u64), usize> = HashMap::new();
    for (&s, &g) in seg.data.iter().zip(&gt.data) {
        if g != 0 {
            *c.entry((s, g)).or_default() += 1;
        }
    }
    let mut best: HashMap<u64, (usize, u64)> = HashMap::new();
    for ((s, g), n) in c {
        let e = best.entry(s).or_insert((0, 0));
        if n > e.0 || (n == e.0 && g < e.1) {
            *e = (n, g);
        }
    }
    best.into_iter().map(|(s, (_, g))| (s, g)).collect()
}

/// Measured: F1 = 1.0 (6/6 clefts within 100 nm, no false positives) at noise 0.1 and 0.4, partners
/// (pre and post) right for 6/6. Asserted: F1 ≥ 0.8, partners right ≥ 80 %.
#[test]
fn synapse_detection_on_phantoms() {
    for noise in [0.1, 0.4] {
        let ph = phantom(noise);
        let out = pipeline(&ph, &filter_config());
        let pred: Vec<[f64; 3]> = out.synapses.iter().map(|s| s.position_nm).collect();
        let gt: Vec<[f64; 3]> = ph.synapses.iter().map(|s| s.position_nm).collect();
        let sc = match_synapses(&pred, &gt, 100.0);
        // Partner check: each true synapse's nearest prediction, mapped to ground-truth cells.
        let cell = majority_cell(&out.segmentations[0].1, &ph.labels);
        let mut right = 0;
        for g in &ph.synapses {
            let near = out.synapses.iter().min_by(|a, b| {
                let d = |p: [f64; 3]| (0..3).map(|k| (p[k] - g.position_nm[k]).powi(2)).sum::<f64>();
                d(a.position_nm).total_cmp(&d(b.position_nm))
            });
            if let Some(p) = near
                && cell.get(&p.pre) == Some(&g.pre)
                && cell.get(&p.post) == Some(&g.post)
            {
                right += 1;
            }
        }
        println!(
            "noise {noise}: synapses predicted {}, true {}, TP {}, precision {:.3} recall {:.3} F1 {:.3}; partners \
             right {right}/{}; confidences {:?}",
            sc.predicted,
            sc.ground_truth,
            sc.true_positives,
            sc.precision,
            sc.recall,
            sc.f1,
            ph.synapses.len(),
            out.synapses.iter().map(|s| (s.confidence * 100.0).round() / 100.0).collect::<Vec<_>>()
        );
        assert!(ph.synapses.len() >= 5);
        assert!(sc.f1 >= 0.8, "F1 {}", sc.f1);
        assert!(right * 10 >= ph.synapses.len() * 8, "partners right {right}/{}", ph.synapses.len());
        assert!(out.synapses.iter().all(|s| (0.0..=1.0).contains(&s.confidence)));
        // The connectome has the synapses as connections between segment neurons.
        assert!(out.connectome.connections.len() >= 4 && out.connectome.neurons.len() >= 10);
    }
}

/// A volume larger than the block, processed block-wise, equals the whole-volume run label for label
/// (same fragment grid); and the chunked fragment grid costs almost nothing against a single-chunk
/// watershed after agglomeration (VOI between the two printed and bounded).
#[test]
fn blockwise_equals_whole() {
    let ph = phantom(0.15);
    let base = PipelineConfig { fragment_chunk: [16, 40, 40], thresholds: vec![0.5, 0.3], ..filter_config() };
    let whole = pipeline(&ph, &base);
    for block in [[16, 40, 40], [32, 40, 80], [16, 80, 40]] {
        let cfg = PipelineConfig { block: Some(block), ..base.clone() };
        let b = pipeline(&ph, &cfg);
        assert!(b.boundary.data == whole.boundary.data, "boundary map differs with block {block:?}");
        assert_eq!(b.fragments, whole.fragments, "fragments differ with block {block:?}");
        for ((t, s1), (_, s2)) in b.segmentations.iter().zip(&whole.segmentations) {
            assert_eq!(s1, s2, "segmentation at threshold {t} differs with block {block:?}");
        }
        assert_eq!(b.synapses, whole.synapses);
    }
    let single = pipeline(&ph, &PipelineConfig { fragment_chunk: [32, 80, 80], ..base.clone() });
    let s_whole = evaluate(&whole.segmentations[0].1, &ph.labels).unwrap();
    let s_single = evaluate(&single.segmentations[0].1, &ph.labels).unwrap();
    // Compare the two on the cell interiors (membrane voxels' side is arbitrary).
    let mut single_in = single.segmentations[0].1.clone();
    single_in.data.iter_mut().zip(&ph.labels.data).for_each(|(s, &g)| *s = if g == 0 { 0 } else { *s });
    let between = evaluate(&whole.segmentations[0].1, &single_in).unwrap();
    print("fragment grid 16x40x40", &s_whole);
    print("single chunk", &s_single);
    print("grid vs single chunk", &between);
    assert!(between.voi() < 0.1);
    // Block sizes that are not a multiple of the chunk are refused.
    let bad = PipelineConfig { block: Some([16, 30, 40]), ..base };
    let e = run(&ph.raw, None, None, &bad, "p", vec![]).unwrap_err().to_string();
    assert!(e.contains("multiple of the fragment chunk"), "{e}");
}

/// Imported synapse points (CSV, positions only): partners come from the segmentation and the
/// vesicle side; given partners are kept; malformed CSV names the line.
#[test]
fn imported_synapse_points() {
    use neurotwin_segment::synapses::{SynapseConfig, assign_points, read_points_csv};
    let ph = phantom(0.1);
    let out = pipeline(&ph, &PipelineConfig { detect_synapses: false, ..filter_config() });
    assert!(out.synapses.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("syn.csv");
    let mut text = String::from("z,y,x,pre,post\n");
    for s in &ph.synapses {
        text.push_str(&format!("{},{},{},,\n", s.position_nm[0], s.position_nm[1], s.position_nm[2]));
    }
    text.push_str("10,20,30,7,9\n");
    std::fs::write(&p, text).unwrap();
    let pts = read_points_csv(&p).unwrap();
    assert_eq!(pts.len(), ph.synapses.len() + 1);
    let seg = &out.segmentations[0].1;
    let syn = assign_points(&pts, &ph.raw, seg, &SynapseConfig::default());
    assert_eq!(syn.len(), pts.len());
    let cell = majority_cell(seg, &ph.labels);
    let right = ph.synapses.iter().zip(&syn).filter(|(g, s)| cell[&s.pre] == g.pre && cell[&s.post] == g.post).count();
    println!("imported points: partners right {right}/{}", ph.synapses.len());
    assert!(right * 10 >= ph.synapses.len() * 8);
    let last = syn.last().unwrap();
    assert_eq!((last.pre, last.post, last.confidence), (7, 9, 1.0));
    std::fs::write(&p, "z,y,x\n1,2,oops\n").unwrap();
    let e = read_points_csv(&p).unwrap_err().to_string();
    assert!(e.contains("syn.csv:2") && e.contains("column x"), "{e}");
    std::fs::write(&p, "a,b\n").unwrap();
    let e = read_points_csv(&p).unwrap_err().to_string();
    assert!(e.contains("must name columns z, y, x"), "{e}");
}
