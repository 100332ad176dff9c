//! Element-wise loops that run serially or on the rayon pool with identical results: each output element
//! is computed by the same sequential code either way, so the thread count never changes a bit.

use rayon::prelude::*;

/// Networks with at least this many neurons are updated in parallel inside one simulation; smaller ones
/// run serially (their experiments are batched in parallel instead).
pub const PAR_MIN_NEURONS: usize = 8192;

/// Rows per parallel task.
const CHUNK: usize = 512;

/// `out[i] = f(i)` for every `i`.
pub fn fill<F>(par: bool, out: &mut [f64], f: F)
where
    F: Fn(usize) -> f64 + Sync,
{
    if par {
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
            for (k, o) in chunk.iter_mut().enumerate() {
                *o = f(c * CHUNK + k);
            }
        });
    } else {
        for (i, o) in out.iter_mut().enumerate() {
            *o = f(i);
        }
    }
}

/// Calls `f(i, row)` for every row `i` of a CSR-shaped array `data` (`row_ptr` has `n + 1` entries).
pub fn for_rows<F>(par: bool, row_ptr: &[usize], data: &mut [f64], f: F)
where
    F: Fn(usize, &mut [f64]) + Sync,
{
    let n = row_ptr.len() - 1;
    if !par {
        for i in 0..n {
            f(i, &mut data[row_ptr[i]..row_ptr[i + 1]]);
        }
        return;
    }
    let mut parts: Vec<(usize, &mut [f64])> = Vec::with_capacity(n.div_ceil(CHUNK));
    let mut rest = data;
    let mut first = 0;
    while first < n {
        let last = (first + CHUNK).min(n);
        let (head, tail) = rest.split_at_mut(row_ptr[last] - row_ptr[first]);
        parts.push((first, head));
        rest = tail;
        first = last;
    }
    parts.into_par_iter().for_each(|(first, block)| {
        let base = row_ptr[first];
        let last = (first + CHUNK).min(n);
        for i in first..last {
            f(i, &mut block[row_ptr[i] - base..row_ptr[i + 1] - base]);
        }
    });
}
