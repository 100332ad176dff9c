//! Small statistics used to compare recordings with each other and with simulations.

/// Pearson correlation coefficient of `x` and `y` (dimensionless, in \[-1, 1\]).
///
/// Missing values are handled by pairwise deletion: a frame is used only when both `x[k]` and `y[k]` are
/// finite (NaN marks a missing frame). Returns `None` when the slices have different lengths, fewer than
/// three frames remain, or either series is constant over the frames used.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() {
        return None;
    }
    let pairs = || x.iter().zip(y).filter(|(a, b)| a.is_finite() && b.is_finite());
    let n = pairs().count();
    if n < 3 {
        return None;
    }
    let (sx, sy) = pairs().fold((0.0, 0.0), |(sx, sy), (a, b)| (sx + a, sy + b));
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in pairs() {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Mean of the finite values of `x` (same unit as `x`); `None` when there are none.
pub fn nan_mean(x: &[f64]) -> Option<f64> {
    let (s, n) = x.iter().filter(|v| v.is_finite()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Pearson correlation (dimensionless) of `x[k]` with `y[k + lag]` over the frames where both exist
/// (`lag` in frames; positive `lag` pairs `x` with later values of `y`, i.e. tests whether `y` *lags* `x`),
/// with pairwise deletion of non-finite values as in [`pearson`]. `None` when the slices differ in length,
/// `|lag| ≥ len`, or [`pearson`] is undefined on the overlap.
pub fn lagged_pearson(x: &[f64], y: &[f64], lag: isize) -> Option<f64> {
    if x.len() != y.len() || lag.unsigned_abs() >= x.len() {
        return None;
    }
    let l = lag.unsigned_abs();
    if lag >= 0 { pearson(&x[..x.len() - l], &y[l..]) } else { pearson(&x[l..], &y[..y.len() - l]) }
}

/// Peak of the lagged cross-correlation: the largest (signed) [`lagged_pearson`]`(x, y, lag)` over
/// `lag ∈ [−max_lag, max_lag]` frames, returned as `(r, lag)`; positive `lag` means `y` lags `x` by `lag`
/// frames. Ties go to the smallest `|lag|` (then the negative one). Each lag uses its own overlap (means
/// and variances recomputed), so r stays a correlation coefficient; large lags use fewer frames. `None`
/// when no lag gives a defined r.
pub fn lagged_xcorr(x: &[f64], y: &[f64], max_lag: usize) -> Option<(f64, isize)> {
    let max_lag = max_lag.min(x.len().saturating_sub(1)) as isize;
    let mut best: Option<(f64, isize)> = None;
    for a in 0..=max_lag {
        for lag in if a == 0 { vec![0] } else { vec![-a, a] } {
            if let Some(r) = lagged_pearson(x, y, lag)
                && best.is_none_or(|(b, _)| r > b)
            {
                best = Some((r, lag));
            }
        }
    }
    best
}

/// Median of the finite values of `x` (same unit as `x`); `None` when there are none.
pub fn nan_median(x: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len();
    Some(if m % 2 == 1 { v[m / 2] } else { 0.5 * (v[m / 2 - 1] + v[m / 2]) })
}

/// Average ranks (1-based; ties share the mean of their ranks) of `x`, which must hold no NaN.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = mean_rank;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation of `x` and `y` (Pearson correlation of their average ranks; dimensionless),
/// with pairwise deletion of non-finite values. `None` as for [`pearson`].
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() {
        return None;
    }
    let (a, b): (Vec<f64>, Vec<f64>) = x.iter().zip(y).filter(|(a, b)| a.is_finite() && b.is_finite()).unzip();
    pearson(&ranks(&a), &ranks(&b))
}

/// Area under the ROC curve of `score` for separating `positive` items from the others: the probability
/// that a random positive scores higher than a random negative, ties counting one half (the Mann–Whitney
/// U statistic divided by n_pos · n_neg). Items with a non-finite score are left out. `None` without at
/// least one positive and one negative.
pub fn roc_auc(score: &[f64], positive: &[bool]) -> Option<f64> {
    if score.len() != positive.len() {
        return None;
    }
    let (s, p): (Vec<f64>, Vec<bool>) = score.iter().zip(positive).filter(|(s, _)| s.is_finite()).unzip();
    let n_pos = p.iter().filter(|&&x| x).count();
    let n_neg = p.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let r = ranks(&s);
    let rank_sum: f64 = r.iter().zip(&p).filter(|(_, pos)| **pos).map(|(r, _)| r).sum();
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_basic_and_nan() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((pearson(&x, &[2.0, 4.0, 6.0, 8.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&x, &[8.0, 6.0, 4.0, 2.0]).unwrap() + 1.0).abs() < 1e-12);
        // The NaN frame is dropped from both series; the rest is perfectly correlated.
        assert!((pearson(&[1.0, f64::NAN, 3.0, 4.0], &[1.0, 100.0, 3.0, 4.0]).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(pearson(&x, &[1.0, 1.0, 1.0, 1.0]), None);
        assert_eq!(pearson(&x, &[1.0]), None);
        assert_eq!(nan_mean(&[1.0, f64::NAN, 3.0]), Some(2.0));
        assert_eq!(nan_mean(&[f64::NAN]), None);
    }

    #[test]
    fn ranks_spearman_auc_against_hand_values() {
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
        // Monotone but non-linear: Spearman 1, Pearson < 1.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [1.0, 4.0, 9.0, 16.0, 100.0];
        assert!((spearman(&x, &y).unwrap() - 1.0).abs() < 1e-12);
        assert!(pearson(&x, &y).unwrap() < 0.95);
        // AUC by hand: positives {0.9, 0.4}, negatives {0.5, 0.1, 0.4}: pairs won 3 + (1 + 0.5) of 6.
        let auc = roc_auc(&[0.9, 0.4, 0.5, 0.1, 0.4], &[true, true, false, false, false]).unwrap();
        assert!((auc - 4.5 / 6.0).abs() < 1e-12, "{auc}");
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(roc_auc(&[1.0, 0.0], &[true, false]), Some(1.0));
        assert_eq!(roc_auc(&[0.0, 1.0], &[true, false]), Some(0.0));
    }

    #[test]
    fn lagged_xcorr_finds_a_known_shift() {
        let x: Vec<f64> = (0..50).map(|k| ((k * 37) % 11) as f64).collect();
        let y: Vec<f64> = (0..50).map(|k| if k >= 3 { x[k - 3] } else { 0.0 }).collect();
        let (r, lag) = lagged_xcorr(&x, &y, 5).unwrap();
        assert_eq!(lag, 3);
        assert!((r - 1.0).abs() < 1e-12);
        assert_eq!(lagged_pearson(&x, &y, 50), None);
        assert_eq!(nan_median(&[3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
    }
}
