//! gala's FIB-SEM training crop (../shared/data/em-gala/train-*.h5, 50 × 100 × 200 voxels, 87 ground-truth bodies):
//! VOI split/merge and adapted Rand of (a) our full pipeline from raw EM, (b) our agglomeration on gala's
//! own boundary map, (c) gala's watershed fragments as a baseline. Skips with a message when the data are
//! absent. Run: `cargo test -p neurotwin-segment --test integration -- --nocapture gala::`.

use std::path::PathBuf;

use neurotwin_segment::io::{read_boundary, read_labels, read_raw};
use neurotwin_segment::metrics::{SegmentationScores, evaluate};
use neurotwin_segment::pipeline::{PipelineConfig, run, segment_boundary};

fn dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/em-gala");
    if d.join("train-image.h5").exists() {
        Some(d)
    } else {
        println!("skipped: {} is absent (see /work/shared/data/README.md)", d.display());
        None
    }
}

fn line(label: &str, s: &SegmentationScores) -> String {
    format!(
        "{label:<58} VOI split {:.3} merge {:.3} total {:.3}  ARE {:.3}",
        s.voi_split,
        s.voi_merge,
        s.voi(),
        s.adapted_rand_error
    )
}

const THRESHOLDS: [f64; 8] = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

#[test]
fn gala_volume() {
    let Some(d) = dir() else { return };
    // gala's FIB-SEM crop has no resolution attribute; voxels are taken as isotropic 10 nm.
    let vox = [10.0; 3];
    let (raw, _) = read_raw(d.join("train-image.h5"), "stack", vox).unwrap();
    let gt = read_labels(d.join("train-gt.h5"), "stack", vox).unwrap();
    let p1 = read_boundary(d.join("train-p1.h5"), "stack", vox).unwrap();
    let ws = read_labels(d.join("train-ws.h5"), "stack", vox).unwrap();
    assert_eq!(raw.shape, [50, 100, 200]);

    // (a) is the membrane filter (the shipped U-Net is compared on held-out slices below).
    let cfg = PipelineConfig {
        thresholds: THRESHOLDS.to_vec(),
        boundary: neurotwin_segment::boundary::BoundarySource::Sheetness,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let a = run(&raw, None, None, &cfg, "gala", vec![]).unwrap();
    let ta = t.elapsed();
    let t = std::time::Instant::now();
    let b = segment_boundary(&p1, &cfg).unwrap().segmentations;
    let tb = t.elapsed();
    let c = evaluate(&ws, &gt).unwrap();

    let mut out = Vec::new();
    let mut best = |name: &str, segs: &[(f64, neurotwin_segment::Volume<u64>)]| {
        let mut all: Vec<(f64, SegmentationScores)> =
            segs.iter().map(|(t, s)| (*t, evaluate(s, &gt).unwrap())).collect();
        for (t, s) in &all {
            out.push(line(&format!("  {name}, threshold {t}"), s));
        }
        all.sort_by(|x, y| x.1.voi().total_cmp(&y.1.voi()));
        all.swap_remove(0)
    };
    let (ta_t, sa) = best("(a) our pipeline from raw", &a.segmentations);
    let (tb_t, sb) = best("(b) our agglomeration on gala's boundary map", &b);
    for l in &out {
        println!("{l}");
    }
    println!("{}", line(&format!("(a) our pipeline from raw, best threshold {ta_t} ({:.1} s)", ta.as_secs_f64()), &sa));
    println!("{}", line(&format!("(b) ours on gala's p1, best threshold {tb_t} ({:.1} s)", tb.as_secs_f64()), &sb));
    println!("{}", line("(c) gala's watershed fragments (baseline)", &c));
    println!("fragments: ours from raw {}, gala {}", a.report.fragments, {
        let mut v = ws.data.clone();
        v.sort_unstable();
        v.dedup();
        v.len()
    });
    // Loose sanity bounds (measured values in the report / README).
    assert!(sb.voi() < c.voi(), "(b) {} should beat gala's fragments (c) {}", sb.voi(), c.voi());
    assert!(sa.voi() < 6.0 && sb.adapted_rand_error < 0.9);
}

/// Issue 17, acceptance 2: the shipped U-Net (trained on slices 0–24 only) against the sheetness filter, both from
/// raw EM, with the agglomeration threshold chosen on slices 0–24 and the scores reported on the held-out slices
/// 25–49 (which neither the training nor the choice saw). The trained network must give the lower held-out VOI.
#[test]
fn shipped_unet_beats_the_membrane_filter_on_held_out_slices() {
    use neurotwin_segment::boundary::BoundarySource;
    use neurotwin_segment::cnn::BackendKind;
    let Some(d) = dir() else { return };
    let vox = [10.0; 3];
    let (raw, _) = read_raw(d.join("train-image.h5"), "stack", vox).unwrap();
    let gt = read_labels(d.join("train-gt.h5"), "stack", vox).unwrap();
    let (tune, held) = ((0, 25), (25, 50));
    let thresholds: Vec<f64> = (1..=9).map(|k| k as f64 / 10.0).collect();
    let scores = |boundary: BoundarySource, (z0, z1): (usize, usize)| -> Vec<SegmentationScores> {
        let cfg =
            PipelineConfig { boundary, thresholds: thresholds.clone(), detect_synapses: false, ..Default::default() };
        let part = raw.crop([z0, 0, 0], [z1, 100, 200]);
        let g = gt.crop([z0, 0, 0], [z1, 100, 200]);
        let out = run(&part, None, None, &cfg, "gala", vec![]).unwrap();
        out.segmentations.iter().map(|(_, s)| evaluate(s, &g).unwrap()).collect()
    };
    let mut held_voi = Vec::new();
    for (name, source) in [
        ("sheetness filter", BoundarySource::Sheetness),
        ("shipped U-Net", BoundarySource::Unet { backend: BackendKind::Cpu }),
    ] {
        let t = scores(source.clone(), tune);
        let best = (0..t.len()).fold(0, |b, i| if t[i].voi() < t[b].voi() { i } else { b });
        let h = scores(source, held);
        println!("{}", line(&format!("{name}: chosen {} on slices 0-24, tuning", thresholds[best]), &t[best]));
        println!("{}", line(&format!("{name}: held-out slices 25-49"), &h[best]));
        held_voi.push(h[best].voi());
    }
    assert!(held_voi[1] < held_voi[0], "held-out VOI: U-Net {} vs sheetness {}", held_voi[1], held_voi[0]);
}
