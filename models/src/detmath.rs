//! Deterministic elementary functions built only from IEEE-754 `+ - * /`, rounding and bit manipulation.
//!
//! Platform `exp` implementations (glibc, CUDA's libdevice) differ in the last bits; models that need an
//! exponential inside the per-step update (AdEx, graded synapses) use these instead so that the CPU backend
//! and the CUDA kernels produce bit-identical trajectories. Accuracy: < 2 ulp over the tested range.

/// ln 2 split into a high part with trailing zero bits and the remainder (fdlibm's `ln2_hi`/`ln2_lo`).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
const LOG2_E: f64 = std::f64::consts::LOG2_E;

/// e^x without fused multiply–add, identical on every IEEE-754 platform.
/// Saturates to `+inf` above 709.78 and to 0 below −745.
#[inline]
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.78 {
        return f64::INFINITY;
    }
    if x < -745.0 {
        return 0.0;
    }
    exp_core(x)
}

/// [`exp`] of every element, bit-identical to it element by element, written without branches (the special
/// cases are selected after the fact from a clamped argument) and one stage of the polynomial at a time over all
/// elements, so that the compiler vectorises every stage and the independent elements hide the latency of the
/// Horner chain (the operations of each element are those of [`exp`], in the same order).
#[inline(always)]
pub fn exp_lanes<const N: usize>(x: &mut [f64; N]) {
    let mut k = [0.0f64; N];
    let mut r = [0.0f64; N];
    for l in 0..N {
        // Clamped into the finite range so that the exponent arithmetic stays in range; NaN stays NaN.
        let xi = x[l];
        let xc = xi.clamp(-745.0, 709.78);
        k[l] = (xc * LOG2_E).round_ties_even();
        r[l] = (xc - k[l] * LN2_HI) - k[l] * LN2_LO;
    }
    let mut p = [TAYLOR[0]; N];
    for d in &TAYLOR[1..] {
        for l in 0..N {
            p[l] = p[l] * r[l] + d;
        }
    }
    for l in 0..N {
        let xi = x[l];
        let y = scale_by_pow2(p[l], k[l] as i32);
        x[l] = if xi.is_nan() {
            xi
        } else if xi > 709.78 {
            f64::INFINITY
        } else if xi < -745.0 {
            0.0
        } else {
            y
        };
    }
}

/// Coefficients of the Taylor series of e^r to degree 13, highest first (Horner order).
const TAYLOR: [f64; 14] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// e^x for −745 ≤ x ≤ 709.78 (the one polynomial of [`exp`] and [`exp_lanes`]).
#[inline(always)]
fn exp_core(x: f64) -> f64 {
    // x = k ln2 + r, |r| <= ln2/2 (Cody–Waite reduction with a two-part ln 2).
    let k = (x * LOG2_E).round_ties_even();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor series of e^r to degree 13 (truncation error < 2e-17 for |r| <= 0.347), Horner form.
    let mut p = TAYLOR[0];
    for d in &TAYLOR[1..] {
        p = p * r + d;
    }
    scale_by_pow2(p, k as i32)
}

/// `x * 2^k` for a normal `x` in [0.5, 2], split in two steps so that subnormal results stay exact-ish.
#[inline]
fn scale_by_pow2(x: f64, k: i32) -> f64 {
    let half = k / 2;
    x * pow2(half) * pow2(k - half)
}

#[inline]
fn pow2(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// e^x − 1 without fused multiply–add, identical on every IEEE-754 platform, accurate near 0: for |x| ≤ ln2/2 the
/// Taylor series of [`exp`] without its constant term (x·(1 + x/2 + … + x^12/13!), Horner form), else `exp(x) − 1`
/// (where the subtraction loses at most two bits). Relative error ≤ 4 ulp (tested).
pub fn expm1(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.abs() > 0.5 * std::f64::consts::LN_2 {
        return exp(x) - 1.0;
    }
    let mut p = TAYLOR[0];
    for d in &TAYLOR[1..TAYLOR.len() - 1] {
        p = p * x + d;
    }
    p * x
}

/// 2·Σ_{k≥1} z^k / (2k+1) for k = 1..11, highest first (Horner order in z): the series of
/// 2·atanh(s)/s − 2 in z = s² (truncation error < 2e-20 for z ≤ 0.0295).
const ATANH_SERIES: [f64; 11] = [
    2.0 / 23.0,
    2.0 / 21.0,
    2.0 / 19.0,
    2.0 / 17.0,
    2.0 / 15.0,
    2.0 / 13.0,
    2.0 / 11.0,
    2.0 / 9.0,
    2.0 / 7.0,
    2.0 / 5.0,
    2.0 / 3.0,
];

/// Natural logarithm without fused multiply–add, identical on every IEEE-754 platform (< 2 ulp, tested).
/// `x = m · 2^k` with `m` in (√½, √2]; `ln m = f − s·(f − T(s²))` with `f = m − 1`, `s = f/(2 + f)` and `T` the
/// atanh series (the main term `f` is exact); `ln x = k·ln2_hi + (k·ln2_lo + ln m)`. NaN and negative → NaN,
/// ±0 → −inf, +inf → +inf.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let (x, mut k) = if x < f64::MIN_POSITIVE { (x * pow2(54), -54) } else { (x, 0) };
    let bits = x.to_bits();
    k += ((bits >> 52) & 0x7ff) as i32 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let mut t = ATANH_SERIES[0];
    for c in &ATANH_SERIES[1..] {
        t = t * z + c;
    }
    let ln_m = f - s * (f - t * z);
    let k = k as f64;
    k * LN2_HI + (k * LN2_LO + ln_m)
}

/// `x^y` for `x ≥ 0` as `e^{y·ln x}` from [`exp`] and [`ln`], deterministic; exact for `y = 0` (1, also at
/// `x = 0`) and `y = 1` (`x`), and 0 for `x = 0`, `y > 0`. Relative error ≈ (1 + |y·ln x|) ulp. Negative or NaN
/// `x` → NaN.
pub fn powf(x: f64, y: f64) -> f64 {
    if y == 0.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if x == 0.0 && y > 0.0 {
        return 0.0;
    }
    exp(y * ln(x))
}

/// Logistic function 1 / (1 + e^{-x}), deterministic.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_two_ulp() {
        let mut worst = 0u64;
        let mut x = -740.0;
        while x < 709.0 {
            let (a, b) = (exp(x), x.exp());
            let ulps = (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
            worst = worst.max(ulps);
            x += 0.0137;
        }
        assert!(worst <= 2, "worst ulp distance {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(f64::NAN).is_nan());
    }

    /// The branch-free lane form equals the scalar one bit for bit: ordinary arguments over the whole range,
    /// the saturation edges and beyond, ±0, ±inf and NaN.
    #[test]
    fn exp_lanes_equals_exp_bit_for_bit() {
        let mut xs: Vec<f64> = (0..20_000).map(|i| -760.0 + 1480.0 * (i as f64 * 0.618_033_988_749).fract()).collect();
        xs.extend((0..4000).map(|i| -3.0 + 6.0 * i as f64 / 4000.0));
        xs.extend([
            709.78,
            709.780_000_000_1,
            -745.0,
            -745.000_000_001,
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            1e-300,
            -1e-300,
        ]);
        while !xs.len().is_multiple_of(64) {
            xs.push(0.5);
        }
        for chunk in xs.chunks_exact(64) {
            let mut lanes: [f64; 64] = chunk.try_into().unwrap();
            exp_lanes(&mut lanes);
            for (&x, &y) in chunk.iter().zip(&lanes) {
                assert_eq!(y.to_bits(), exp(x).to_bits(), "exp({x:e})");
            }
        }
    }

    /// `ln` against the platform's (correctly rounded in glibc) to 2 ulp over normal and subnormal arguments,
    /// with the special values; `powf` against `f64::powf` to the bound its doc states.
    #[test]
    fn ln_and_powf_match_libm() {
        let mut worst = 0u64;
        let mut xs: Vec<f64> = (0..200_000).map(|i| 10f64.powf(-300.0 + 600.0 * i as f64 / 200_000.0)).collect();
        xs.extend((0..20_000).map(|i| 0.5 + 1.5 * i as f64 / 20_000.0));
        xs.extend([1.0, 2.0, 0.5, std::f64::consts::SQRT_2, 1.0 + f64::EPSILON, 1.0 - f64::EPSILON / 2.0, 5e-324]);
        for &x in &xs {
            let (a, b) = (ln(x), x.ln());
            let ulps = (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
            assert!(ulps <= 2 || (a - b).abs() < 1e-300, "ln({x:e}) = {a:e}, libm {b:e}");
            worst = worst.max(ulps);
        }
        assert!(worst <= 2, "worst ulp distance {worst}");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f64::NAN).is_nan());
        for &x in &[1e-9, 0.013, 0.25, 0.5, 0.77, 0.999, 1.0] {
            for &y in &[0.0, 0.05, 0.4, 1.0, 1.7] {
                let (a, b) = (powf(x, y), x.powf(y));
                let bound = (1.0 + (y * x.ln()).abs()) * 4.0 * f64::EPSILON;
                assert!((a - b).abs() <= bound * b.abs(), "powf({x}, {y}) = {a:e}, libm {b:e}");
            }
        }
        assert_eq!((powf(0.0, 0.0), powf(0.0, 0.4), powf(0.3, 1.0)), (1.0, 0.0, 0.3));
    }

    #[test]
    fn expm1_matches_libm() {
        let mut worst = 0u64;
        let mut x = -40.0;
        while x < 40.0 {
            for y in [x, x * 1e-9, x * 1e-3] {
                let (a, b) = (expm1(y), y.exp_m1());
                let ulps = (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
                worst = worst.max(ulps);
            }
            x += 0.00731;
        }
        assert!(worst <= 4, "worst ulp distance {worst}");
        assert_eq!((expm1(0.0), expm1(-0.0).to_bits()), (0.0, (-0.0f64).to_bits()));
    }

    #[test]
    fn sigmoid_is_symmetric() {
        for x in [-30.0, -2.5, 0.0, 0.7, 12.0] {
            assert!((sigmoid(x) + sigmoid(-x) - 1.0).abs() < 1e-15);
        }
    }
}
