//! This machine's memory bandwidth, STREAM-style (McCalpin 1995): copy `a = b` and triad `a = b + s·c` over
//! arrays of 2^25 f64 (256 MiB each, far beyond any cache), split across all rayon threads, best of 10.
//! `NEUROTWIN_STREAM_BYTES` sets the total working set of the three arrays instead (e.g. a network's, so
//! that a cache-resident network is held to cache bandwidth), with enough repetitions for ≥ 0.1 s.
//! Bytes counted as STREAM does (copy 16 B, triad 24 B per element; write-allocate traffic not counted).
//! Prints one line `STREAM {"copy_gbs": …, "triad_gbs": …, "threads": …}` used by benches/peers/compare.py
//! for the bandwidth floor. Run: `cargo bench --bench stream`.

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;

fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n = std::env::var("NEUROTWIN_STREAM_BYTES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(1 << 25, |bytes| (bytes / 24).max(4096));
    let reps = ((1usize << 25) / n).clamp(10, 100_000);
    let mut a = vec![0.0f64; n];
    let b = vec![1.0f64; n];
    let c = vec![2.0f64; n];
    let chunk = (n / (4 * rayon::current_num_threads().max(1))).max(512);
    // Touch everything once so that page faults are not timed.
    a.par_chunks_mut(chunk).for_each(|x| x.fill(0.5));
    let copy = best(reps, || {
        a.par_chunks_mut(chunk).zip(b.par_chunks(chunk)).for_each(|(x, y)| x.copy_from_slice(y));
        black_box(&a);
    });
    let s = 3.0;
    let triad = best(reps, || {
        a.par_chunks_mut(chunk).zip(b.par_chunks(chunk)).zip(c.par_chunks(chunk)).for_each(|((x, y), z)| {
            for ((xi, yi), zi) in x.iter_mut().zip(y).zip(z) {
                *xi = yi + s * zi;
            }
        });
        black_box(&a);
    });
    let gbs = |bytes_per_elem: f64, t: f64| bytes_per_elem * n as f64 / t / 1e9;
    println!(
        "STREAM {{\"copy_gbs\": {:.2}, \"triad_gbs\": {:.2}, \"threads\": {}, \"working_set_bytes\": {}}}",
        gbs(16.0, copy),
        gbs(24.0, triad),
        rayon::current_num_threads(),
        24 * n
    );
}
