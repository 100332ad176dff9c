//! The synaptic input of one full block for the fused ring-to-spikes passes (`update_full_block_2ch_from_ring`
//! of `lif_exp` and `lif_delta`): each channel's fixed-point ring sums converted (`x as f64 * inv_scale`, exact:
//! integer to nearest double, then a power of two) and cleared, plus at most one extra term per channel and lane
//! (a Poisson drive's `count * weight`) — the same operations, in the same order, as the CPU backend's ring
//! gather followed by its stimulus sum.

use crate::model::LANES;

/// Channel-major input `[2 * LANES]` of a block from its two ring slots (cleared) and the optional extra terms.
pub(crate) fn two_channels(
    ring0: &mut [i64],
    ring1: &mut [i64],
    inv_scale: f64,
    extra: Option<&[f64]>,
) -> [f64; 2 * LANES] {
    let mut syn = [0.0; 2 * LANES];
    for (ch, ring) in [ring0, ring1].into_iter().enumerate() {
        for (x, s) in ring[..LANES].iter_mut().zip(&mut syn[ch * LANES..(ch + 1) * LANES]) {
            *s = *x as f64 * inv_scale;
            *x = 0;
        }
    }
    if let Some(e) = extra {
        syn.iter_mut().zip(e).for_each(|(s, e)| *s += e);
    }
    syn
}

/// [`two_channels`] for lanes `k..k + 8` on AVX-512: the two channels' inputs, the ring entries cleared.
///
/// # Safety
/// The CPU must support AVX-512F and DQ; `ring0`, `ring1` and (if present) `extra` must hold `k + 8` entries
/// (`extra`: `LANES + k + 8`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
#[inline]
pub(crate) unsafe fn two_channels_avx512(
    ring0: *mut i64,
    ring1: *mut i64,
    k: usize,
    scale: std::arch::x86_64::__m512d,
    extra: Option<&[f64]>,
) -> (std::arch::x86_64::__m512d, std::arch::x86_64::__m512d) {
    use std::arch::x86_64::*;
    // SAFETY: the caller guarantees the lengths and the CPU features.
    unsafe {
        let (pr0, pr1) = (ring0.add(k), ring1.add(k));
        let mut s0 = _mm512_mul_pd(_mm512_cvtepi64_pd(_mm512_loadu_si512(pr0 as *const _)), scale);
        let mut s1 = _mm512_mul_pd(_mm512_cvtepi64_pd(_mm512_loadu_si512(pr1 as *const _)), scale);
        _mm512_storeu_si512(pr0 as *mut _, _mm512_setzero_si512());
        _mm512_storeu_si512(pr1 as *mut _, _mm512_setzero_si512());
        if let Some(e) = extra {
            s0 = _mm512_add_pd(s0, _mm512_loadu_pd(e.as_ptr().add(k)));
            s1 = _mm512_add_pd(s1, _mm512_loadu_pd(e.as_ptr().add(LANES + k)));
        }
        (s0, s1)
    }
}

/// [`two_channels`] for lanes `k..k + 4` on AVX2: the two channels' inputs, the ring entries cleared. The
/// i64 → f64 conversion is [`crate::avx2::i64_to_f64`] (rounds to nearest, as `x as f64` does).
///
/// # Safety
/// The CPU must support AVX2; `ring0`, `ring1` and (if present) `extra` must hold `k + 4` entries
/// (`extra`: `LANES + k + 4`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn two_channels_avx2(
    ring0: *mut i64,
    ring1: *mut i64,
    k: usize,
    scale: std::arch::x86_64::__m256d,
    extra: Option<&[f64]>,
) -> (std::arch::x86_64::__m256d, std::arch::x86_64::__m256d) {
    use crate::avx2::i64_to_f64;
    use std::arch::x86_64::*;
    // SAFETY: the caller guarantees the lengths and the CPU features.
    unsafe {
        let (pr0, pr1) = (ring0.add(k), ring1.add(k));
        let mut s0 = _mm256_mul_pd(i64_to_f64(_mm256_loadu_si256(pr0 as *const _)), scale);
        let mut s1 = _mm256_mul_pd(i64_to_f64(_mm256_loadu_si256(pr1 as *const _)), scale);
        _mm256_storeu_si256(pr0 as *mut _, _mm256_setzero_si256());
        _mm256_storeu_si256(pr1 as *mut _, _mm256_setzero_si256());
        if let Some(e) = extra {
            s0 = _mm256_add_pd(s0, _mm256_loadu_pd(e.as_ptr().add(k)));
            s1 = _mm256_add_pd(s1, _mm256_loadu_pd(e.as_ptr().add(LANES + k)));
        }
        (s0, s1)
    }
}
