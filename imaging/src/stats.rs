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
}
