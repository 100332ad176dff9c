//! Metrics against hand-computed values (CREMI definitions: gt label 0 ignored; logs base 2).

use neurotwin_segment::metrics::{evaluate, match_synapses, scores_from_table};
use neurotwin_segment::volume::Volume;
use std::collections::HashMap;

fn vol(data: Vec<u64>) -> Volume<u64> {
    Volume::from_vec([1, 1, data.len()], [1.0; 3], data).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Identical up to relabelling → 0 everywhere.
#[test]
fn identical_is_zero() {
    let gt = vol(vec![1, 1, 2, 2, 2, 3, 0, 0]);
    let seg = vol(vec![7, 7, 5, 5, 5, 9, 4, 7]); // gt-0 voxels may hold anything
    let s = evaluate(&seg, &gt).unwrap();
    assert!(close(s.voi_split, 0.0) && close(s.voi_merge, 0.0), "{s:?}");
    assert!(close(s.adapted_rand_error, 0.0), "{s:?}");
}

/// gt = four cells of 2 voxels (1 1 2 2 3 3 4 4); seg = one segment.
/// split = H(seg|gt) = 0; merge = H(gt|seg) = H(gt) = log2 4 = 2 bits.
/// Rand: Σ a_i² = 4·2² = 16; Σ n_ij² = 16; Σ b_j² = 8² = 64 → precision 16/64 = 0.25, recall 1,
/// F = 2·0.25/1.25 = 0.4, ARE = 0.6.
#[test]
fn full_merge() {
    let gt = vol(vec![1, 1, 2, 2, 3, 3, 4, 4]);
    let seg = vol(vec![1; 8]);
    let s = evaluate(&seg, &gt).unwrap();
    assert!(close(s.voi_split, 0.0), "{s:?}");
    assert!(close(s.voi_merge, 2.0), "{s:?}");
    assert!(close(s.rand_precision, 0.25) && close(s.rand_recall, 1.0));
    assert!(close(s.adapted_rand_error, 0.6), "{s:?}");
}

/// gt = two cells of 4 voxels; seg = every voxel its own segment.
/// split = H(seg|gt) = Σ_i p_i · log2 |cell i| = 0.5·2 + 0.5·2 = 2 bits; merge = 0.
/// Rand: Σ a_i² = 16 + 16 = 32; Σ n_ij² = 8; Σ b_j² = 8 → precision 1, recall 8/32 = 0.25,
/// F = 0.4, ARE = 0.6.
#[test]
fn full_split() {
    let gt = vol(vec![1, 1, 1, 1, 2, 2, 2, 2]);
    let seg = vol((1..=8).collect());
    let s = evaluate(&seg, &gt).unwrap();
    assert!(close(s.voi_split, 2.0), "{s:?}");
    assert!(close(s.voi_merge, 0.0), "{s:?}");
    assert!(close(s.adapted_rand_error, 0.6), "{s:?}");
}

/// A mixed case, gt 0 ignored: gt = 1 1 1 2 2 0, seg = 1 1 2 2 2 1. Over the 5 labelled voxels:
/// n(1,1)=2, n(1,2)=1, n(2,2)=2. split = H(seg|gt) = (3/5)·H(2/3,1/3) + (2/5)·0 = 0.6·0.918295834 =
/// 0.550977500; merge = H(gt|seg): seg 1 holds {gt1:2} → 0, seg 2 holds {gt1:1, gt2:2} → (3/5)·0.918295834
/// = 0.550977500. Rand: Σ a_i² = 9 + 4 = 13, Σ b_j² = 2² + 3² = 13, Σ n_ij² = 4 + 1 + 4 = 9 →
/// precision = recall = 9/13, ARE = 1 − 9/13 = 4/13.
#[test]
fn mixed_case_by_hand() {
    let gt = vol(vec![1, 1, 1, 2, 2, 0]);
    let seg = vol(vec![1, 1, 2, 2, 2, 1]);
    let s = evaluate(&seg, &gt).unwrap();
    let h = -(2.0f64 / 3.0) * (2.0f64 / 3.0).log2() - (1.0 / 3.0) * (1.0f64 / 3.0).log2();
    assert!((h - 0.918_295_834).abs() < 1e-9);
    assert!(close(s.voi_split, 0.6 * h) && close(s.voi_merge, 0.6 * h), "{s:?}");
    assert!(close(s.adapted_rand_error, 4.0 / 13.0), "{s:?}");
    assert_eq!(s.voxels, 5);
}

/// Segmentation label 0 (CREMI's c/N term): gt = 1 1 2 2, seg = 0 0 1 1 (N = 4 voxels).
/// c = 2, Σ n_ij² (seg≠0) = 4, Σ b_j² = 4 → precision = (4 + 0.5)/(4 + 0.5) = 1,
/// recall = 4.5 / (4 + 4) = 0.5625, F = 2·0.5625/1.5625 = 0.72, ARE = 0.28.
#[test]
fn segmentation_zero_as_cremi() {
    let mut t = HashMap::new();
    t.insert((1u64, 0u64), 2u64);
    t.insert((2, 1), 2);
    let s = scores_from_table(&t, 4).unwrap();
    assert!(close(s.rand_precision, 1.0) && close(s.rand_recall, 0.5625), "{s:?}");
    assert!(close(s.adapted_rand_error, 0.28), "{s:?}");
}

#[test]
fn empty_ground_truth_and_shape_mismatch_are_errors() {
    let e = evaluate(&vol(vec![1, 2]), &vol(vec![0, 0])).unwrap_err().to_string();
    assert!(e.contains("no labelled voxel"), "{e}");
    let e = evaluate(&vol(vec![1, 2, 3]), &vol(vec![1, 1])).unwrap_err().to_string();
    assert!(e.contains("differs from ground-truth shape"), "{e}");
}

/// Greedy one-to-one matching: two predictions near one true synapse count once.
/// pred: (0,0,0), (0,0,30), (0,0,500); gt: (0,0,10), (0,0,1000); radius 50 →
/// TP 1, precision 1/3, recall 1/2, F1 = 2·(1/3)(1/2)/(5/6) = 0.4.
#[test]
fn synapse_matching_by_hand() {
    let s = match_synapses(
        &[[0.0, 0.0, 0.0], [0.0, 0.0, 30.0], [0.0, 0.0, 500.0]],
        &[[0.0, 0.0, 10.0], [0.0, 0.0, 1000.0]],
        50.0,
    );
    assert_eq!(s.true_positives, 1);
    assert!(close(s.f1, 0.4), "{s:?}");
    let s = match_synapses(&[], &[], 50.0);
    assert!(close(s.f1, 1.0));
}
