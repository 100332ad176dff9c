//! AVX2 building blocks for the block paths on x86-64 CPUs without AVX-512 (Zen 2/3, most Intel client parts):
//! the Philox rounds on 8 lanes in registers, and exact integer → f64 conversions, which AVX2 lacks (before
//! AVX-512DQ, x86 converts 64-bit integers one lane at a time through a general register).
//!
//! Everything here is integer arithmetic or a single IEEE rounding of an exact value, so each function gives the
//! same bits as the portable Rust it replaces (tests below compare them on edge values and random inputs).
//! The conversions use the exponent-bias technique (an integer placed in the mantissa of a double of known
//! exponent, the exponent's value then subtracted exactly), described for SSE2 by Agner Fog, "Optimizing
//! subroutines in assembly language" (2023), §13.7.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Whether the CPU has AVX2 (checked once; the standard library caches the answer too).
#[inline]
pub fn has_avx2() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => {
            let yes = std::arch::is_x86_feature_detected!("avx2");
            KNOWN.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// 2^52 and 2^84 as doubles, and their bit patterns: a 32-bit integer `x` or-ed into the low mantissa bits of
/// 2^52 is the double `2^52 + x`; shifted up by 32 bits of value, into 2^84, the double `2^84 + x · 2^32`.
const TWO52_BITS: i64 = 0x4330_0000_0000_0000;
const TWO84_BITS: i64 = 0x4530_0000_0000_0000;
/// 2^84 + 2^63: the bits of 2^84 with the sign bit of a 32-bit high word flipped in (see [`i64_to_f64`]).
const TWO84_63_BITS: i64 = 0x4530_0000_8000_0000;
/// 2^84 + 2^63 + 2^52 as a double (exactly representable: the unit in the last place at 2^84 is 2^32).
const TWO84_63_52: f64 = f64::from_bits(0x4530_0000_8010_0000);

/// `x as f64` for four signed 64-bit integers, rounded to nearest like `cvtsi2sd`: the high 32 bits (signed)
/// become `hi · 2^32 − 2^52` exactly, the low 32 bits `2^52 + lo` exactly, and their sum is the only rounding.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub unsafe fn i64_to_f64(v: __m256i) -> __m256d {
    let lo = _mm256_blend_epi32::<0b0101_0101>(_mm256_set1_epi64x(TWO52_BITS), v);
    let hi = _mm256_xor_si256(_mm256_srli_epi64::<32>(v), _mm256_set1_epi64x(TWO84_63_BITS));
    let hi = _mm256_sub_pd(_mm256_castsi256_pd(hi), _mm256_set1_pd(TWO84_63_52));
    _mm256_add_pd(hi, _mm256_castsi256_pd(lo))
}

/// `x as f64` for four integers below 2^53 (exact): `2^84 + hi · 2^32 − 2^84` and `2^52 + lo − 2^52` are exact,
/// and so is their sum.
///
/// # Safety
/// The CPU must support AVX2; every lane must be below 2^53 (otherwise the result is wrong, not undefined).
#[target_feature(enable = "avx2")]
#[inline]
pub unsafe fn u53_to_f64(v: __m256i) -> __m256d {
    let lo = _mm256_blend_epi32::<0b0101_0101>(_mm256_set1_epi64x(TWO52_BITS), v);
    let hi = _mm256_or_si256(_mm256_srli_epi64::<32>(v), _mm256_set1_epi64x(TWO84_BITS));
    let hi = _mm256_sub_pd(_mm256_castsi256_pd(hi), _mm256_castsi256_pd(_mm256_set1_epi64x(TWO84_BITS)));
    let lo = _mm256_sub_pd(_mm256_castsi256_pd(lo), _mm256_castsi256_pd(_mm256_set1_epi64x(TWO52_BITS)));
    _mm256_add_pd(hi, lo)
}

/// The low and high 32 bits of `a · m` for eight unsigned 32-bit lanes (`m` in the low half of every 64-bit lane).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn mul_lo_hi(a: __m256i, m: __m256i) -> (__m256i, __m256i) {
    let even = _mm256_mul_epu32(a, m);
    let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), m);
    let lo = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
    let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
    (lo, hi)
}

/// Philox4x32-10 (Salmon et al. 2011) on eight counters at once, the four counter words in four registers;
/// `round_keys[r]` is the key of round `r` (the Weyl sequence, computed once by the caller).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub unsafe fn philox8(c: [__m256i; 4], round_keys: &[[u32; 2]; 10], multipliers: [u32; 2]) -> [__m256i; 4] {
    let m0 = _mm256_set1_epi64x(multipliers[0] as i64);
    let m1 = _mm256_set1_epi64x(multipliers[1] as i64);
    let [mut c0, mut c1, mut c2, mut c3] = c;
    for k in round_keys {
        // SAFETY: the caller guarantees AVX2.
        let ((lo0, hi0), (lo1, hi1)) = unsafe { (mul_lo_hi(c0, m0), mul_lo_hi(c2, m1)) };
        let n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(k[0] as i32));
        let n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(k[1] as i32));
        (c0, c1, c2, c3) = (n0, lo1, n2, lo0);
    }
    [c0, c1, c2, c3]
}

/// `u64_to_open_unit(hi[l], lo[l])` (53 random bits, centred in their cell, in (0, 1)) for the four lanes of
/// `hi` and `lo` (32-bit words): the 53-bit integer converted exactly, then `+ 0.5` and `· 2^-53` rounded as the
/// scalar path rounds them.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub unsafe fn open_unit4(hi: __m128i, lo: __m128i) -> __m256d {
    let (hi, lo) = (_mm256_cvtepu32_epi64(hi), _mm256_cvtepu32_epi64(lo));
    let x = _mm256_or_si256(_mm256_slli_epi64::<21>(hi), _mm256_srli_epi64::<11>(lo));
    // SAFETY: the caller guarantees AVX2; x < 2^53 (21 + 32 bits).
    let d = unsafe { u53_to_f64(x) };
    _mm256_mul_pd(_mm256_add_pd(d, _mm256_set1_pd(0.5)), _mm256_set1_pd(1.0 / (1u64 << 53) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge_and_random_i64() -> Vec<i64> {
        let mut v = vec![0, 1, -1, i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1];
        for e in [31, 32, 52, 53, 54, 62, 63] {
            let p = 1i128 << e;
            for d in -3i128..=3 {
                for s in [1i128, -1] {
                    let x = s * (p + d);
                    if x >= i64::MIN as i128 && x <= i64::MAX as i128 {
                        v.push(x as i64);
                    }
                }
            }
        }
        // Ties at 2^53 .. 2^54 (odd integers round to even) and a deterministic scramble of everything.
        v.extend([(1i64 << 53) + 1, (1i64 << 53) + 3, -(1i64 << 53) - 1, (1i64 << 54) + 2, (1i64 << 54) + 6]);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every magnitude from 1 bit to 64.
            v.push((x >> (i % 64)) as i64);
        }
        v
    }

    #[test]
    fn i64_conversion_rounds_like_the_scalar_one() {
        if !has_avx2() {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        for chunk in edge_and_random_i64().chunks_exact(4) {
            let mut out = [0.0f64; 4];
            // SAFETY: AVX2 checked above; the arrays hold four lanes.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), i64_to_f64(_mm256_loadu_si256(chunk.as_ptr().cast()))) };
            for (x, y) in chunk.iter().zip(out) {
                assert_eq!((*x as f64).to_bits(), y.to_bits(), "{x}");
            }
        }
    }

    #[test]
    fn u53_conversion_is_exact() {
        if !has_avx2() {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        let values: Vec<i64> = edge_and_random_i64().into_iter().map(|x| (x as u64 >> 11) as i64).collect();
        for chunk in values.chunks_exact(4) {
            let mut out = [0.0f64; 4];
            // SAFETY: AVX2 checked above; the arrays hold four lanes.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), u53_to_f64(_mm256_loadu_si256(chunk.as_ptr().cast()))) };
            for (x, y) in chunk.iter().zip(out) {
                assert_eq!((*x as f64).to_bits(), y.to_bits(), "{x}");
            }
        }
    }
}
