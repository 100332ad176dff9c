//! Counter-based random numbers (Philox4x32-10, Salmon et al. 2011, "Parallel random numbers: as easy as
//! 1, 2, 3", SC'11).
//!
//! Every random number in a simulation is a pure function of `(seed, stream, neuron, step, draw)`: no
//! generator state is shared between threads, so results do not depend on the thread count or on the order
//! in which neurons are visited, and the CUDA kernels (issue: GPU backend) can reproduce them bit for bit.

/// Philox multipliers and Weyl key increments (Salmon et al. 2011, Table 2).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds: maps a 128-bit counter and a 64-bit key to 128 random bits.
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for _ in 0..10 {
        let p0 = (M0 as u64) * (c[0] as u64);
        let p1 = (M1 as u64) * (c[2] as u64);
        c = [((p1 >> 32) as u32) ^ c[1] ^ k[0], p1 as u32, ((p0 >> 32) as u32) ^ c[3] ^ k[1], p0 as u32];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// Named random streams, so that different uses of randomness never collide.
/// The numeric values are part of the reproducibility contract: never renumber them.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Initial state (e.g. uniform initial membrane potential).
    InitialState = 1,
    /// Poisson input to neurons (one sub-stream per stimulus, see [`CounterRng::substream`]).
    PoissonInput = 2,
    /// Optogenetic-like activation (forced spikes).
    Activation = 3,
    /// Network generators (connectivity, weights, delays).
    Connectivity = 4,
    /// Per-trial variation.
    Trial = 5,
    /// Shot/read noise of the calcium-imaging forward model.
    ImagingNoise = 6,
}

/// A keyed counter-based generator. Cheap to copy; holds no mutable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterRng {
    key: [u32; 2],
    stream: u32,
}

impl CounterRng {
    pub fn new(seed: u64, stream: Stream) -> Self {
        Self { key: [seed as u32, (seed >> 32) as u32], stream: stream as u32 }
    }

    /// A sub-stream of this stream (e.g. stimulus number `k` of the Poisson stream). Distinct `k` give
    /// independent numbers; `k` must stay below 2^16.
    pub fn substream(self, k: u32) -> Self {
        debug_assert!(k < (1 << 16));
        Self { key: self.key, stream: self.stream | (k << 16) }
    }

    /// 128 random bits for (neuron, step, draw). `draw` distinguishes several 128-bit blocks needed by one
    /// neuron in one step; it shares the counter word with the stream id (bits 8..16 of the stream word are
    /// reserved for it, so `draw` < 256).
    #[inline]
    pub fn bits(&self, neuron: u32, step: u64, draw: u32) -> [u32; 4] {
        debug_assert!(draw < 256);
        philox4x32_10([step as u32, (step >> 32) as u32, neuron, self.stream ^ (draw << 8)], self.key)
    }

    /// Two uniform numbers in the open interval (0, 1) with 53 random bits each.
    #[inline]
    pub fn uniform2(&self, neuron: u32, step: u64, draw: u32) -> [f64; 2] {
        let b = self.bits(neuron, step, draw);
        [u64_to_open_unit(b[0], b[1]), u64_to_open_unit(b[2], b[3])]
    }

    /// [`CounterRng::uniform2`] for the 64 consecutive neurons `neuron0 .. neuron0 + 64` at once:
    /// `first[l], second[l]` = `uniform2(neuron0 + l, step, draw)`, bit for bit. The Philox rounds run over
    /// all lanes in structure-of-arrays form, which vectorises (AVX2 when the CPU has it, checked at run
    /// time; integer arithmetic, so the instruction set cannot change the result).
    pub fn uniform2_block(&self, neuron0: u32, step: u64, draw: u32, first: &mut [f64; 64], second: &mut [f64; 64]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports AVX-512F, DQ and VL (checked just above).
            return unsafe { self.uniform2_block_avx512(neuron0, step, draw, first, second) };
        }
        #[cfg(target_arch = "x86_64")]
        if crate::avx2::has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.uniform2_block_avx2(neuron0, step, draw, first, second) };
        }
        self.uniform2_block_soa(neuron0, step, draw, first, second)
    }

    /// The first numbers of [`Self::uniform2_block`] only: `first[l]` = `uniform2(neuron0 + l, step, draw)[0]`
    /// (the Philox rounds are the same; on AVX2 the second numbers are not converted).
    pub fn uniform_block(&self, neuron0: u32, step: u64, draw: u32, first: &mut [f64; 64]) {
        #[cfg(target_arch = "x86_64")]
        if !has_avx512() && crate::avx2::has_avx2() {
            let c2: [u32; 64] = std::array::from_fn(|l| neuron0.wrapping_add(l as u32));
            let (c0, c1) = ([step as u32; 64], [(step >> 32) as u32; 64]);
            // SAFETY: the CPU supports AVX2 (checked just above); `second` is not written when SECOND is false.
            return unsafe { self.philox_lanes_avx2::<false>(&c0, &c1, &c2, draw, first, &mut [0.0; 64]) };
        }
        self.uniform2_block(neuron0, step, draw, first, &mut [0.0; 64])
    }

    /// The block with AVX-512: 16 Philox lanes per instruction, and the 53-bit integer → f64 conversion in one
    /// instruction (`vcvtuqq2pd`, AVX-512DQ; AVX2 has none, so it converts lane by lane). Exact integer
    /// arithmetic and an exact conversion: the same bits as every other path (tested).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    unsafe fn uniform2_block_avx512(
        &self,
        neuron0: u32,
        step: u64,
        draw: u32,
        first: &mut [f64; 64],
        second: &mut [f64; 64],
    ) {
        self.uniform2_block_soa(neuron0, step, draw, first, second)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn uniform2_block_avx2(
        &self,
        neuron0: u32,
        step: u64,
        draw: u32,
        first: &mut [f64; 64],
        second: &mut [f64; 64],
    ) {
        let c2: [u32; 64] = std::array::from_fn(|l| neuron0.wrapping_add(l as u32));
        // SAFETY: the caller guarantees AVX2.
        unsafe {
            self.philox_lanes_avx2::<true>(&[step as u32; 64], &[(step >> 32) as u32; 64], &c2, draw, first, second)
        }
    }

    #[inline(always)]
    fn uniform2_block_soa(&self, neuron0: u32, step: u64, draw: u32, first: &mut [f64; 64], second: &mut [f64; 64]) {
        debug_assert!(draw < 256);
        let c0 = [step as u32; 64];
        let c1 = [(step >> 32) as u32; 64];
        let c2: [u32; 64] = std::array::from_fn(|l| neuron0.wrapping_add(l as u32));
        self.philox_lanes(c0, c1, c2, draw, first, second)
    }

    /// `uniform2(neuron, step0 + l, draw)` for the 64 lanes `l` (consecutive steps of one neuron; the step wraps
    /// at 2^64 as the counter does), with the same dispatch as [`Self::uniform2_block`].
    pub fn uniform2_steps_block(
        &self,
        neuron: u32,
        step0: u64,
        draw: u32,
        first: &mut [f64; 64],
        second: &mut [f64; 64],
    ) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports AVX-512F, DQ and VL (checked just above).
            return unsafe { self.uniform2_steps_block_avx512(neuron, step0, draw, first, second) };
        }
        #[cfg(target_arch = "x86_64")]
        if crate::avx2::has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.uniform2_steps_block_avx2(neuron, step0, draw, first, second) };
        }
        self.uniform2_steps_block_soa(neuron, step0, draw, first, second)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    unsafe fn uniform2_steps_block_avx512(
        &self,
        neuron: u32,
        step0: u64,
        draw: u32,
        first: &mut [f64; 64],
        second: &mut [f64; 64],
    ) {
        self.uniform2_steps_block_soa(neuron, step0, draw, first, second)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn uniform2_steps_block_avx2(
        &self,
        neuron: u32,
        step0: u64,
        draw: u32,
        first: &mut [f64; 64],
        second: &mut [f64; 64],
    ) {
        let step = |l: usize| step0.wrapping_add(l as u64);
        let c0: [u32; 64] = std::array::from_fn(|l| step(l) as u32);
        let c1: [u32; 64] = std::array::from_fn(|l| (step(l) >> 32) as u32);
        // SAFETY: the caller guarantees AVX2.
        unsafe { self.philox_lanes_avx2::<true>(&c0, &c1, &[neuron; 64], draw, first, second) }
    }

    /// [`Self::philox_lanes`] with the AVX2 kernels of [`crate::avx2`]: eight lanes at a time, the four counter
    /// words in registers through all ten rounds (the autovectorised lane loops spill them to the stack), and the
    /// 53-bit integers converted without a trip through general registers. Integer arithmetic and the same
    /// roundings, so the same bits (tested).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn philox_lanes_avx2<const SECOND: bool>(
        &self,
        c0: &[u32; 64],
        c1: &[u32; 64],
        c2: &[u32; 64],
        draw: u32,
        first: &mut [f64; 64],
        second: &mut [f64; 64],
    ) {
        use crate::avx2::{open_unit4, philox8};
        use std::arch::x86_64::*;
        let mut round_keys = [[0u32; 2]; 10];
        let mut k = self.key;
        for r in &mut round_keys {
            *r = k;
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let c3 = _mm256_set1_epi32((self.stream ^ (draw << 8)) as i32);
        for g in (0..64).step_by(8) {
            // SAFETY: g + 8 <= 64 for every array; the caller guarantees AVX2.
            unsafe {
                let load = |a: &[u32; 64]| _mm256_loadu_si256(a.as_ptr().add(g).cast());
                let [o0, o1, o2, o3] = philox8([load(c0), load(c1), load(c2), c3], &round_keys, [M0, M1]);
                let (low, high) = (_mm256_castsi256_si128, _mm256_extracti128_si256::<1>);
                _mm256_storeu_pd(first.as_mut_ptr().add(g), open_unit4(low(o0), low(o1)));
                _mm256_storeu_pd(first.as_mut_ptr().add(g + 4), open_unit4(high(o0), high(o1)));
                if SECOND {
                    _mm256_storeu_pd(second.as_mut_ptr().add(g), open_unit4(low(o2), low(o3)));
                    _mm256_storeu_pd(second.as_mut_ptr().add(g + 4), open_unit4(high(o2), high(o3)));
                }
            }
        }
    }

    #[inline(always)]
    fn uniform2_steps_block_soa(
        &self,
        neuron: u32,
        step0: u64,
        draw: u32,
        first: &mut [f64; 64],
        second: &mut [f64; 64],
    ) {
        debug_assert!(draw < 256);
        let step = |l: usize| step0.wrapping_add(l as u64);
        let c0: [u32; 64] = std::array::from_fn(|l| step(l) as u32);
        let c1: [u32; 64] = std::array::from_fn(|l| (step(l) >> 32) as u32);
        self.philox_lanes(c0, c1, [neuron; 64], draw, first, second)
    }

    /// Philox4x32-10 on 64 lanes of counters `(c0, c1, c2, stream ^ draw << 8)` under this stream's key, written
    /// out as two uniforms per lane, as [`Self::uniform2`] maps them; plain lane loops the caller's target
    /// features vectorise.
    #[inline(always)]
    fn philox_lanes(
        &self,
        mut c0: [u32; 64],
        mut c1: [u32; 64],
        mut c2: [u32; 64],
        draw: u32,
        first: &mut [f64; 64],
        second: &mut [f64; 64],
    ) {
        let mut c3 = [self.stream ^ (draw << 8); 64];
        let (mut k0, mut k1) = (self.key[0], self.key[1]);
        for _ in 0..10 {
            for l in 0..64 {
                let p0 = (M0 as u64) * (c0[l] as u64);
                let p1 = (M1 as u64) * (c2[l] as u64);
                let n0 = ((p1 >> 32) as u32) ^ c1[l] ^ k0;
                let n2 = ((p0 >> 32) as u32) ^ c3[l] ^ k1;
                c0[l] = n0;
                c1[l] = p1 as u32;
                c2[l] = n2;
                c3[l] = p0 as u32;
            }
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        for l in 0..64 {
            first[l] = u64_to_open_unit(c0[l], c1[l]);
            second[l] = u64_to_open_unit(c2[l], c3[l]);
        }
    }

    /// One uniform number in (0, 1).
    #[inline]
    pub fn uniform(&self, neuron: u32, step: u64, draw: u32) -> f64 {
        self.uniform2(neuron, step, draw)[0]
    }
}

/// Whether the CPU has the AVX-512 subsets the block paths use (F, DQ, VL); checked at run time (cached by the
/// standard library). The paths chosen by it compute exactly what the portable ones do.
/// Asked per block on the hot path, so the answer is kept in one byte (0: not yet known, 1: no, 2: yes).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx512() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => {
            let yes = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl");
            KNOWN.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// Maps 64 random bits to a double in the open interval (0, 1): 53 bits, centred in their cell.
#[inline]
pub fn u64_to_open_unit(hi: u32, lo: u32) -> f64 {
    let x = (((hi as u64) << 32) | lo as u64) >> 11;
    (x as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// A sequential view of a counter stream for host-side construction code (network generators): the
/// `i`-th number of the sequence is `rng.bits(key, i / 2, 0)`, so a generator can hand each presynaptic
/// or postsynaptic neuron its own sequence and build in parallel without changing the result.
#[derive(Clone, Debug)]
pub struct SequenceRng {
    rng: CounterRng,
    key: u32,
    /// The counter of the next block to compute.
    counter: u64,
    /// Numbers computed ahead, `buf[pos..len]` not yet handed out: one counter (2 numbers) at a time for the
    /// first `SCALAR_COUNTERS` counters, then 64 counters (128 numbers) at a time with the block Philox — the
    /// same sequence either way (tested); short sequences compute nothing ahead that they do not use.
    buf: [f64; 128],
    pos: usize,
    len: usize,
}

/// Counters a sequence computes one at a time before it switches to blocks of 64 (a sequence of a few numbers,
/// e.g. one neuron's initial state, should not compute 128).
const SCALAR_COUNTERS: u64 = 8;

impl SequenceRng {
    pub fn new(rng: CounterRng, key: u32) -> Self {
        Self { rng, key, counter: 0, buf: [0.0; 128], pos: 0, len: 0 }
    }

    /// Next uniform number in (0, 1).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        if self.pos == self.len {
            self.refill();
        }
        let u = self.buf[self.pos];
        self.pos += 1;
        u
    }

    #[cold]
    fn refill(&mut self) {
        if self.counter < SCALAR_COUNTERS {
            let [a, b] = self.rng.uniform2(self.key, self.counter, 0);
            (self.buf[0], self.buf[1], self.len) = (a, b, 2);
            self.counter += 1;
        } else {
            let (mut a, mut b) = ([0.0; 64], [0.0; 64]);
            self.rng.uniform2_steps_block(self.key, self.counter, 0, &mut a, &mut b);
            for l in 0..64 {
                (self.buf[2 * l], self.buf[2 * l + 1]) = (a[l], b[l]);
            }
            self.len = 128;
            self.counter = self.counter.wrapping_add(64);
        }
        self.pos = 0;
    }

    /// Uniform integer in `0..n` (n > 0), by Lemire's multiply-shift on 53 random bits (bias < 2^-20 for
    /// n < 2^32).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.uniform() * n as f64) as u64).min(n - 1)
    }

    /// Standard normal deviate (Box–Muller; host-side only: uses the platform's `ln`, `sqrt`, `cos`).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block over consecutive steps gives `uniform2` lane by lane, on every instruction-set path, across the
    /// 2^32 carry of the step counter and its 2^64 wrap.
    #[test]
    fn steps_block_equals_scalar_uniforms() {
        let rng = CounterRng::new(0xabcd_ef01_2345, Stream::Connectivity).substream(11);
        let (mut a, mut b) = ([0.0; 64], [0.0; 64]);
        for (neuron, step0) in [(0u32, 0u64), (77_168, (1 << 32) - 20), (u32::MAX, u64::MAX - 30)] {
            rng.uniform2_steps_block(neuron, step0, 0, &mut a, &mut b);
            let (mut pa, mut pb) = ([0.0; 64], [0.0; 64]);
            rng.uniform2_steps_block_soa(neuron, step0, 0, &mut pa, &mut pb);
            for l in 0..64 {
                let u = rng.uniform2(neuron, step0.wrapping_add(l as u64), 0);
                assert_eq!((a[l].to_bits(), b[l].to_bits()), (u[0].to_bits(), u[1].to_bits()), "lane {l}");
                assert_eq!((pa[l].to_bits(), pb[l].to_bits()), (u[0].to_bits(), u[1].to_bits()), "lane {l}");
            }
        }
    }

    /// The sequence is `uniform2(key, i / 2, 0)[i % 2]` for its first 10,000 numbers, through the switch from
    /// single counters to blocks, whatever mix of `uniform`, `below` and `normal` consumes it.
    #[test]
    fn sequence_is_the_counter_stream_in_order() {
        let rng = CounterRng::new(42, Stream::Connectivity).substream(5);
        let expected = |i: u64| rng.uniform2(9, i / 2, 0)[(i % 2) as usize];
        let mut seq = SequenceRng::new(rng, 9);
        for i in 0..10_000u64 {
            assert_eq!(seq.uniform().to_bits(), expected(i).to_bits(), "number {i}");
        }
        let mut seq = SequenceRng::new(rng, 9);
        let mut i = 0u64;
        while i < 3_000 {
            let n = 1000 + i;
            assert_eq!(seq.below(n), ((expected(i) * n as f64) as u64).min(n - 1), "number {i}");
            let (u1, u2) = (expected(i + 1), expected(i + 2));
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            assert_eq!(seq.normal().to_bits(), z.to_bits(), "numbers {} and {}", i + 1, i + 2);
            i += 3;
        }
    }

    /// Known-answer tests from the Random123 distribution (kat_vectors, philox4x32_10).
    #[test]
    fn block_uniforms_equal_scalar_ones() {
        let rng = CounterRng::new(0x1234_5678_9abc, Stream::PoissonInput).substream(7);
        let (mut a, mut b) = ([0.0; 64], [0.0; 64]);
        for (neuron0, step, draw) in [(0u32, 0u64, 0u32), (64, 12_345, 3), (u32::MAX - 10, u64::MAX - 1, 255)] {
            rng.uniform2_block(neuron0, step, draw, &mut a, &mut b);
            for l in 0..64 {
                let u = rng.uniform2(neuron0.wrapping_add(l as u32), step, draw);
                assert_eq!((a[l].to_bits(), b[l].to_bits()), (u[0].to_bits(), u[1].to_bits()), "lane {l}");
            }
        }
    }

    /// Every instruction-set path this CPU has gives the portable path's bits.
    #[test]
    fn every_block_path_gives_the_same_bits() {
        let rng = CounterRng::new(0xfeed_beef, Stream::PoissonInput).substream(3);
        let block = |f: &dyn Fn(&mut [f64; 64], &mut [f64; 64])| {
            let (mut a, mut b) = ([0.0; 64], [0.0; 64]);
            f(&mut a, &mut b);
            (a.map(f64::to_bits), b.map(f64::to_bits))
        };
        // Edge counters, then 300 scrambled ones (every bit of the counter words exercised).
        let mut cases = vec![(0u32, 0u64, 0u32), (640, 99_999, 17), (u32::MAX - 63, u64::MAX, 255)];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push((x as u32, x.rotate_left(23), (x >> 56) as u32));
        }
        for (neuron0, step, draw) in cases {
            let steps_portable = block(&|a, b| rng.uniform2_steps_block_soa(neuron0, step, draw, a, b));
            #[cfg(target_arch = "x86_64")]
            if crate::avx2::has_avx2() {
                // SAFETY: AVX2 checked just above.
                let v = block(&|a, b| unsafe { rng.uniform2_steps_block_avx2(neuron0, step, draw, a, b) });
                assert_eq!(v, steps_portable, "steps avx2 at {neuron0} {step} {draw}");
            }
            let portable = block(&|a, b| rng.uniform2_block_soa(neuron0, step, draw, a, b));
            let mut only_first = [0.0; 64];
            rng.uniform_block(neuron0, step, draw, &mut only_first);
            assert_eq!(only_first.map(f64::to_bits), portable.0, "first numbers at {neuron0} {step} {draw}");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: AVX2 checked just above.
                    let v = block(&|a, b| unsafe { rng.uniform2_block_avx2(neuron0, step, draw, a, b) });
                    assert_eq!(v, portable, "avx2 at {neuron0} {step} {draw}");
                }
                if has_avx512() {
                    // SAFETY: AVX-512F/DQ/VL checked just above.
                    let v = block(&|a, b| unsafe { rng.uniform2_block_avx512(neuron0, step, draw, a, b) });
                    assert_eq!(v, portable, "avx512 at {neuron0} {step} {draw}");
                }
            }
        }
    }

    #[test]
    fn philox_known_answers() {
        assert_eq!(philox4x32_10([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
        assert_eq!(
            philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn uniform_moments_and_independence_of_streams() {
        let a = CounterRng::new(7, Stream::PoissonInput);
        let b = CounterRng::new(7, Stream::Activation);
        let n = 200_000;
        let (mut s, mut s2, mut same) = (0.0, 0.0, 0);
        for i in 0..n {
            let u = a.uniform(i % 1000, (i / 1000) as u64, 0);
            assert!(u > 0.0 && u < 1.0);
            s += u;
            s2 += u * u;
            if u == b.uniform(i % 1000, (i / 1000) as u64, 0) {
                same += 1;
            }
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!((mean - 0.5).abs() < 0.003, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.002, "var {var}");
        assert_eq!(same, 0);
    }
}
