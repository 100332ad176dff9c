//! Poisson counts from counter-based uniforms, by inversion of the cumulative distribution
//! (Devroye 1986, "Non-Uniform Random Variate Generation", ch. X.3). Inversion uses only `+ * /` and
//! comparisons after a host-side `exp(-λ)`, so the CUDA kernels reproduce it exactly. Means above
//! [`MAX_LAMBDA_PER_DRAW`] are split into equal parts drawn from independent 128-bit blocks.

use crate::rng::CounterRng;

/// Largest mean drawn from one uniform (keeps the inversion loop short and e^{-λ} far from underflow).
pub const MAX_LAMBDA_PER_DRAW: f64 = 32.0;

/// Entries of the tabulated cumulative distribution ([`PoissonTable::cdf`]).
const CDF_LEN: usize = 16;

/// Host-side precomputation for a Poisson distribution of mean `lambda` (events per step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoissonTable {
    /// Mean of each part.
    pub lambda_part: f64,
    /// e^{-lambda_part}
    pub exp_neg: f64,
    /// Number of parts (independent draws summed).
    pub parts: u32,
    /// `F(0) .. F(cdf_len - 1)` and the last term `p(cdf_len - 1)`, computed by the recurrence of
    /// [`PoissonTable::invert_recurrence`] (same operations, same order, hence the same bits), so that
    /// [`PoissonTable::invert`] counts table entries below `u` instead of dividing per step of the search.
    cdf: [f64; CDF_LEN],
    cdf_len: usize,
    /// Entries a `u` within the table needs to be compared with: up to the first equal to the last, `F(cdf_len −
    /// 1)`. The sum stops growing once its terms fall below half its last unit (F reaches 1 − 2^-53 or so for
    /// small means: λ = 0.031 after 8 of the 16 entries), and no `u` ≤ F(cdf_len − 1) exceeds the entries after.
    scan_len: usize,
    p_last: f64,
}

impl PoissonTable {
    /// `lambda` must be finite and >= 0 (callers validate user input).
    pub fn new(lambda: f64) -> Self {
        assert!(lambda.is_finite() && lambda >= 0.0, "Poisson mean must be finite and >= 0");
        let parts = (lambda / MAX_LAMBDA_PER_DRAW).ceil().max(1.0) as u32;
        let lambda_part = lambda / parts as f64;
        let exp_neg = (-lambda_part).exp();
        // The recurrence's states k = 0, 1, …, stopping after the first p == 0 (where it stops too).
        let mut cdf = [f64::INFINITY; CDF_LEN];
        let (mut p, mut f) = (exp_neg, exp_neg);
        cdf[0] = f;
        let mut cdf_len = 1;
        while cdf_len < CDF_LEN && p != 0.0 {
            p = p * lambda_part / cdf_len as f64;
            f += p;
            cdf[cdf_len] = f;
            cdf_len += 1;
        }
        let top = cdf[cdf_len - 1];
        let scan_len = cdf[..cdf_len].iter().position(|&f| f == top).map_or(cdf_len, |j| j + 1);
        Self { lambda_part, exp_neg, parts, cdf, cdf_len, scan_len, p_last: p }
    }

    /// The Poisson count for `(neuron, step)`; `draw_base` reserves the draw indices
    /// `draw_base .. draw_base + ceil(parts / 2)`.
    #[inline]
    pub fn sample(&self, rng: &CounterRng, neuron: u32, step: u64, draw_base: u32) -> u32 {
        if self.lambda_part == 0.0 {
            return 0;
        }
        let mut total = 0;
        let mut part = 0;
        while part < self.parts {
            let u = rng.uniform2(neuron, step, draw_base + part / 2);
            total += self.invert(u[0]);
            if part + 1 < self.parts {
                total += self.invert(u[1]);
            }
            part += 2;
        }
        total
    }

    /// [`PoissonTable::sample`] for the 64 neurons `neuron0 .. neuron0 + 64` at once (the first `lanes`
    /// are written to `counts`): the same draws and the same counts, with the random numbers generated for
    /// the whole block ([`CounterRng::uniform2_block`]).
    pub fn sample_block(
        &self,
        rng: &CounterRng,
        neuron0: u32,
        lanes: usize,
        step: u64,
        draw_base: u32,
        counts: &mut [u32; 64],
    ) {
        #[cfg(target_arch = "x86_64")]
        if crate::rng::has_avx512() {
            // SAFETY: the CPU supports AVX-512F, DQ and VL (checked just above).
            return unsafe { self.sample_block_avx512(rng, neuron0, lanes, step, draw_base, counts) };
        }
        #[cfg(target_arch = "x86_64")]
        if crate::avx2::has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.sample_block_avx2(rng, neuron0, lanes, step, draw_base, counts) };
        }
        self.sample_block_portable(rng, neuron0, lanes, step, draw_base, counts)
    }

    /// `out[l] = counts[l] as f64 * weight` for the 64 lanes (a Poisson drive's input), converted and multiplied
    /// four lanes at a time on AVX2 (the baseline build converts and multiplies two); exact conversions of counts
    /// below 2^31 and the same multiply, so the same bits.
    pub fn counts_times(counts: &[u32; 64], weight: f64, out: &mut [f64]) {
        assert!(out.len() >= 64);
        #[cfg(target_arch = "x86_64")]
        if crate::avx2::has_avx2() && counts.iter().all(|&c| c < 1 << 31) {
            // SAFETY: the CPU supports AVX2 (checked just above); `out` holds 64 entries (asserted).
            return unsafe { counts_times_avx2(counts, weight, out) };
        }
        out[..64].iter_mut().zip(counts).for_each(|(x, &c)| *x = c as f64 * weight);
    }

    /// [`PoissonTable::sample_block`] compiled for AVX2 (4 lanes per compare in the block inversion, where the
    /// baseline x86-64 build compares 2); the same comparisons and counts.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn sample_block_avx2(
        &self,
        rng: &CounterRng,
        neuron0: u32,
        lanes: usize,
        step: u64,
        draw_base: u32,
        counts: &mut [u32; 64],
    ) {
        self.sample_block_portable(rng, neuron0, lanes, step, draw_base, counts)
    }

    /// [`PoissonTable::sample_block`] compiled for AVX-512 (8 lanes per compare in the block inversion); the
    /// comparisons and integer counts are the same, so are the results.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    unsafe fn sample_block_avx512(
        &self,
        rng: &CounterRng,
        neuron0: u32,
        lanes: usize,
        step: u64,
        draw_base: u32,
        counts: &mut [u32; 64],
    ) {
        self.sample_block_portable(rng, neuron0, lanes, step, draw_base, counts)
    }

    #[inline(always)]
    fn sample_block_portable(
        &self,
        rng: &CounterRng,
        neuron0: u32,
        lanes: usize,
        step: u64,
        draw_base: u32,
        counts: &mut [u32; 64],
    ) {
        counts.fill(0);
        if self.lambda_part == 0.0 {
            return;
        }
        let (mut u0, mut u1) = ([0.0; 64], [0.0; 64]);
        let mut part = 0;
        while part < self.parts {
            if part + 1 < self.parts {
                rng.uniform2_block(neuron0, step, draw_base + part / 2, &mut u0, &mut u1);
                self.invert_block(&u0, lanes, counts);
                self.invert_block(&u1, lanes, counts);
            } else {
                rng.uniform_block(neuron0, step, draw_base + part / 2, &mut u0);
                self.invert_block(&u0, lanes, counts);
            }
            part += 2;
        }
    }

    /// `counts[l] += invert(u[l])` for the first `lanes` lanes. When every `u` lies within the table (the usual
    /// case: the table reaches past the 0.9999… quantile for means up to a few per step), the count of tabulated
    /// F(j) below `u` is taken entry by entry over all lanes, which vectorises (compare, add); otherwise lane by
    /// lane. The same integer counts either way (tested against [`PoissonTable::invert`]).
    #[inline(always)]
    pub fn invert_block(&self, u: &[f64; 64], lanes: usize, counts: &mut [u32; 64]) {
        let (u, counts) = (&u[..lanes], &mut counts[..lanes]);
        let top = self.cdf[self.cdf_len - 1];
        if u.iter().fold(true, |all, &x| all & (x <= top)) {
            for &f in &self.cdf[..self.scan_len] {
                for (c, &x) in counts.iter_mut().zip(u) {
                    *c += (x > f) as u32;
                }
            }
        } else {
            for (c, &x) in counts.iter_mut().zip(u) {
                *c += self.invert(x);
            }
        }
    }

    /// Smallest k with F(k) >= u: the number of tabulated F(j) below `u` (F is non-decreasing), continuing
    /// the recurrence beyond the table only in the far tail. Equal to [`PoissonTable::invert_recurrence`] for
    /// every `u` (tested), which is what the CUDA kernels compute.
    #[inline]
    pub fn invert(&self, u: f64) -> u32 {
        let n = self.cdf_len;
        if u <= self.cdf[n - 1] {
            return self.cdf[..self.scan_len].iter().map(|&f| (u > f) as u32).sum();
        }
        if self.p_last == 0.0 {
            // The recurrence stopped at the first zero term.
            return (n - 1) as u32;
        }
        self.recurrence_from((n - 1) as u32, self.p_last, self.cdf[n - 1], u)
    }

    /// Smallest k with F(k) >= u by the recurrence `p(k) = p(k−1) λ / k`, `F(k) = F(k−1) + p(k)` from
    /// `p(0) = F(0) = e^{−λ}`, stopping at a zero term or k = 10,000 (`nt_poisson_invert` in the kernels).
    #[inline]
    pub fn invert_recurrence(&self, u: f64) -> u32 {
        self.recurrence_from(0, self.exp_neg, self.exp_neg, u)
    }

    /// The recurrence continued from state `k` (term `p = p(k)`, sum `f = F(k)`) until `F(k) >= u`.
    #[inline]
    fn recurrence_from(&self, mut k: u32, mut p: f64, mut f: f64, u: f64) -> u32 {
        while u > f && k < 10_000 {
            k += 1;
            p = p * self.lambda_part / k as f64;
            f += p;
            if p == 0.0 {
                break;
            }
        }
        k
    }
}

/// [`PoissonTable::counts_times`] on AVX2.
///
/// # Safety
/// The CPU must support AVX2; `out` must hold 64 entries and every count must be below 2^31.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn counts_times_avx2(counts: &[u32; 64], weight: f64, out: &mut [f64]) {
    use std::arch::x86_64::*;
    let w = _mm256_set1_pd(weight);
    for k in (0..64).step_by(4) {
        // SAFETY: k + 4 <= 64 entries in both; the counts fit in i32 (the caller's condition).
        unsafe {
            let c = _mm_loadu_si128(counts.as_ptr().add(k).cast());
            _mm256_storeu_pd(out.as_mut_ptr().add(k), _mm256_mul_pd(_mm256_cvtepi32_pd(c), w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    #[test]
    fn block_sampling_equals_per_neuron_sampling() {
        let rng = CounterRng::new(5, Stream::PoissonInput);
        for lambda in [0.0, 0.3, 2.0, 40.0, 150.0] {
            let t = PoissonTable::new(lambda);
            let mut counts = [0u32; 64];
            for step in [0u64, 7, 1000] {
                t.sample_block(&rng, 128, 50, step, 0, &mut counts);
                for (l, &c) in counts.iter().enumerate().take(50) {
                    assert_eq!(c, t.sample(&rng, 128 + l as u32, step, 0), "lambda {lambda}, lane {l}");
                }
                let mut portable = [0u32; 64];
                t.sample_block_portable(&rng, 128, 50, step, 0, &mut portable);
                assert_eq!(portable, counts, "lambda {lambda}: portable path");
                #[cfg(target_arch = "x86_64")]
                if crate::avx2::has_avx2() {
                    let mut avx2 = [0u32; 64];
                    // SAFETY: AVX2 checked just above.
                    unsafe { t.sample_block_avx2(&rng, 128, 50, step, 0, &mut avx2) };
                    assert_eq!(avx2, counts, "lambda {lambda}: AVX2 path");
                }
            }
        }
    }

    #[test]
    fn counts_times_weight_equals_the_lane_by_lane_product() {
        for weight in [87.5, -0.3, 1e-300, 0.0, -0.0] {
            let counts: [u32; 64] = std::array::from_fn(|l| [0, 1, 2, 7, 1000, (1 << 31) - 1][l % 6]);
            let mut out = [9.0; 64];
            PoissonTable::counts_times(&counts, weight, &mut out);
            for l in 0..64 {
                assert_eq!(out[l].to_bits(), (counts[l] as f64 * weight).to_bits(), "weight {weight}, lane {l}");
            }
            let big: [u32; 64] = std::array::from_fn(|l| if l == 5 { u32::MAX } else { 3 });
            PoissonTable::counts_times(&big, weight, &mut out);
            assert_eq!(out[5].to_bits(), (u32::MAX as f64 * weight).to_bits());
        }
    }

    /// The block inversion equals the lane-by-lane one on crafted blocks: every lane at, just below and just above
    /// a tabulated F(k), all lanes inside the table, one lane beyond it (the fallback), and partial blocks.
    #[test]
    fn block_inversion_equals_lane_by_lane() {
        for lambda in [1e-9, 0.02, 0.031, 0.3, 2.0, 7.5, 20.0, 32.0] {
            let t = PoissonTable::new(lambda);
            let mut near: Vec<f64> = Vec::new();
            for &f in &t.cdf[..t.cdf_len] {
                near.extend([f, f64::from_bits(f.to_bits() - 1), f64::from_bits(f.to_bits() + 1)]);
            }
            near.extend([f64::MIN_POSITIVE, 0.5, 1.0 - f64::EPSILON]);
            let near: Vec<f64> = near.into_iter().filter(|u| (0.0..1.0).contains(u)).collect();
            for shift in 0..near.len() {
                let u: [f64; 64] = std::array::from_fn(|l| near[(l + shift) % near.len()]);
                let inside: [f64; 64] = std::array::from_fn(|l| u[l].min(t.cdf[t.cdf_len - 1]));
                for block in [u, inside] {
                    for lanes in [64, 63, 1] {
                        let mut counts = [3u32; 64];
                        t.invert_block(&block, lanes, &mut counts);
                        for l in 0..64 {
                            let want = if l < lanes { 3 + t.invert(block[l]) } else { 3 };
                            assert_eq!(counts[l], want, "lambda {lambda}, lane {l} of {lanes}, u {:e}", block[l]);
                        }
                    }
                }
            }
        }
    }

    fn moments(lambda: f64) -> (f64, f64) {
        let t = PoissonTable::new(lambda);
        let rng = CounterRng::new(11, Stream::PoissonInput);
        let n = 100_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for i in 0..n {
            let k = t.sample(&rng, i % 500, (i / 500) as u64, 0) as f64;
            s += k;
            s2 += k * k;
        }
        let m = s / n as f64;
        (m, s2 / n as f64 - m * m)
    }

    #[test]
    fn mean_and_variance_equal_lambda() {
        for lambda in [0.02, 2.0, 20.0, 150.0] {
            let (m, v) = moments(lambda);
            let se = (lambda / 100_000f64).sqrt();
            assert!((m - lambda).abs() < 5.0 * se, "lambda {lambda}: mean {m}");
            assert!((v / lambda - 1.0).abs() < 0.03, "lambda {lambda}: variance {v}");
        }
    }

    /// The tabulated inversion gives the recurrence's count for every u: on a dense grid, at and next to every
    /// tabulated F(k) (±1 ulp), beyond the table, and at the ends, for means from tiny to the largest part.
    #[test]
    fn tabulated_inversion_equals_the_recurrence() {
        for lambda in [0.0, 1e-9, 0.005, 0.02, 0.031, 0.3, 1.6, 2.0, 7.5, 20.0, 31.9, 32.0, 100.0] {
            let t = PoissonTable::new(lambda);
            if lambda == 0.031 {
                // The fly brain's background: half the table is the plateau at F's last value.
                assert_eq!((t.scan_len, t.cdf_len), (8, 16));
            }
            let mut us: Vec<f64> = (0..=20_000).map(|i| i as f64 / 20_000.0).collect();
            for &f in &t.cdf[..t.cdf_len] {
                us.extend([f, f64::from_bits(f.to_bits() - 1), f64::from_bits(f.to_bits() + 1)]);
            }
            us.extend([f64::MIN_POSITIVE, 1.0 - 1e-16, 1.0 - f64::EPSILON, 0.999_999_999_9]);
            for u in us.into_iter().filter(|u| (0.0..=1.0).contains(u)) {
                assert_eq!(t.invert(u), t.invert_recurrence(u), "lambda {lambda}, u {u:e}");
            }
        }
    }

    #[test]
    fn zero_rate_gives_zero() {
        let t = PoissonTable::new(0.0);
        assert_eq!(t.sample(&CounterRng::new(1, Stream::PoissonInput), 3, 4, 0), 0);
    }
}
