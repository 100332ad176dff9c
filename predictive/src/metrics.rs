//! Receptive-field measures for square image bases (columns of `W_0` as `p × p` patches).
//!
//! * Orientation selectivity index (OSI) from the 2-D power spectrum without DC:
//!   `OSI = |Σ_k P(k) e^{2iθ_k}| / Σ_k P(k)`, θ_k the angle of frequency k: 1 for a single orientation
//!   (a grating or a Gabor), about `1/sqrt(#frequencies)` for white noise.
//! * Participation ratio `PR = (Σ w²)² / (N Σ w⁴)`: the fraction of pixels carrying the weight; about 1/3 for
//!   Gaussian noise, small for localised fields.
//! * A field counts as "Gabor-like" when it is oriented (OSI ≥ 0.5) and localised (PR ≤ 0.25).

use serde::Serialize;

/// OSI threshold of an oriented field.
pub const OSI_ORIENTED: f64 = 0.5;
/// Participation-ratio threshold of a localised field.
pub const PR_LOCALISED: f64 = 0.25;

/// Measures of one field.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FieldMeasure {
    pub osi: f64,
    pub participation: f64,
}

/// Summary over a set of fields.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RfStats {
    pub fields: usize,
    pub mean_osi: f64,
    pub mean_participation: f64,
    /// Fraction with OSI ≥ [`OSI_ORIENTED`].
    pub frac_oriented: f64,
    /// Fraction with PR ≤ [`PR_LOCALISED`].
    pub frac_localised: f64,
    /// Fraction both oriented and localised.
    pub frac_gabor_like: f64,
}

/// OSI and participation ratio of a `p × p` field (row-major).
pub fn field_measure(w: &[f64], p: usize) -> FieldMeasure {
    assert_eq!(w.len(), p * p);
    let mut num_re = 0.0;
    let mut num_im = 0.0;
    let mut den = 0.0;
    let signed = |k: usize| if k <= p / 2 { k as f64 } else { k as f64 - p as f64 };
    for ky in 0..p {
        for kx in 0..p {
            if kx == 0 && ky == 0 {
                continue;
            }
            let (mut re, mut im) = (0.0, 0.0);
            for y in 0..p {
                for x in 0..p {
                    let ph = -std::f64::consts::TAU * ((kx * x) as f64 + (ky * y) as f64) / p as f64;
                    re += w[y * p + x] * ph.cos();
                    im += w[y * p + x] * ph.sin();
                }
            }
            let power = re * re + im * im;
            let theta = signed(ky).atan2(signed(kx));
            num_re += power * (2.0 * theta).cos();
            num_im += power * (2.0 * theta).sin();
            den += power;
        }
    }
    let osi = if den > 0.0 { (num_re * num_re + num_im * num_im).sqrt() / den } else { 0.0 };
    let s2: f64 = w.iter().map(|v| v * v).sum();
    let s4: f64 = w.iter().map(|v| v * v * v * v).sum();
    let participation = if s4 > 0.0 { s2 * s2 / (w.len() as f64 * s4) } else { 0.0 };
    FieldMeasure { osi, participation }
}

/// Summary of many fields.
pub fn rf_stats(fields: &[Vec<f64>], p: usize) -> RfStats {
    let m: Vec<FieldMeasure> = fields.iter().map(|f| field_measure(f, p)).collect();
    let n = m.len().max(1) as f64;
    let frac = |pred: &dyn Fn(&FieldMeasure) -> bool| m.iter().filter(|x| pred(x)).count() as f64 / n;
    RfStats {
        fields: m.len(),
        mean_osi: m.iter().map(|x| x.osi).sum::<f64>() / n,
        mean_participation: m.iter().map(|x| x.participation).sum::<f64>() / n,
        frac_oriented: frac(&|x| x.osi >= OSI_ORIENTED),
        frac_localised: frac(&|x| x.participation <= PR_LOCALISED),
        frac_gabor_like: frac(&|x| x.osi >= OSI_ORIENTED && x.participation <= PR_LOCALISED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gabor_is_oriented_and_localised() {
        let p = 8;
        let mut g = vec![0.0; p * p];
        for y in 0..p {
            for x in 0..p {
                let (dx, dy) = (x as f64 - 3.5, y as f64 - 3.5);
                g[y * p + x] = (-(dx * dx + dy * dy) / 4.0).exp() * (1.3 * dx).cos();
            }
        }
        let m = field_measure(&g, p);
        assert!(m.osi > 0.5 && m.participation < 0.25, "{m:?}");
    }
}
