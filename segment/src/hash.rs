//! Counter-based pseudo-random numbers: every value is a pure function of (seed, stream, index), so
//! generation is deterministic and order-independent (parallel-safe). SplitMix64 finaliser (Steele,
//! Lea & Flood 2014, "Fast splittable pseudorandom number generators", OOPSLA).

/// SplitMix64 finaliser of `x`.
#[inline]
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A 64-bit hash of (seed, stream, index).
#[inline]
pub fn hash3(seed: u64, stream: u64, index: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ index)
}

/// Uniform in [0, 1) from (seed, stream, index).
#[inline]
pub fn uniform(seed: u64, stream: u64, index: u64) -> f64 {
    (hash3(seed, stream, index) >> 11) as f64 / (1u64 << 53) as f64
}

/// Standard normal from (seed, stream, index) (Box–Muller on two counter-based uniforms).
#[inline]
pub fn normal(seed: u64, stream: u64, index: u64) -> f64 {
    let u1 = uniform(seed, stream, 2 * index).max(1e-300);
    let u2 = uniform(seed, stream, 2 * index + 1);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
