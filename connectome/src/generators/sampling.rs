//! Random connectivity rules shared by the generators, mirroring NEST's connection builders
//! (`nestkernel/conn_builder.cpp`): fixed in-degree (sources uniform with replacement, autapses allowed,
//! or without replacement), pairwise Bernoulli, and fixed total number (source and target of each
//! synapse uniform and independent).
//!
//! Every rule reads its random numbers from [`Draws`] sequences keyed by a projection sub-stream and a
//! postsynaptic or presynaptic neuron (or a fixed-size chunk of draws), so the result does not depend on how rayon
//! splits the work.

use neurotwin_models::{CounterRng, SequenceRng, Stream};
use rayon::prelude::*;
use std::collections::HashSet;
use std::ops::Range;

use crate::error::ConnectomeError;
use crate::matrix::Synapse;

/// Synapses generated from one `Draws` sequence by the fixed-total-number rule.
pub(crate) const CHUNK: u64 = 1 << 16;

/// The root generator of all connectivity randomness for `seed`.
pub(crate) fn root(seed: u64) -> CounterRng {
    CounterRng::new(seed, Stream::Connectivity)
}

/// A sequence of random numbers for one (projection, key) pair.
pub(crate) struct Draws {
    seq: SequenceRng,
    spare: Option<f64>,
}

impl Draws {
    /// `substream` < 2^16 identifies the projection, `key` the postsynaptic neuron or chunk.
    pub(crate) fn new(root: CounterRng, substream: u32, key: u32) -> Self {
        debug_assert!(substream < (1 << 16));
        Self { seq: SequenceRng::new(root.substream(substream), key), spare: None }
    }

    /// Uniform in (0, 1).
    #[inline]
    pub(crate) fn uniform(&mut self) -> f64 {
        self.seq.uniform()
    }

    /// Uniform integer in `0..n` (n > 0).
    #[inline]
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        self.seq.below(n as u64) as u32
    }

    /// Standard normal deviate (Marsaglia's polar method, both numbers of a pair used).
    #[inline]
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        loop {
            let (u, v) = (2.0 * self.uniform() - 1.0, 2.0 * self.uniform() - 1.0);
            let s = u * u + v * v;
            if s < 1.0 && s > 0.0 {
                let f = (-2.0 * s.ln() / s).sqrt();
                self.spare = Some(v * f);
                return u * f;
            }
        }
    }
}

fn placeholder() -> Synapse {
    Synapse { pre: 0, post: 0, weight: 0.0, delay: 1, receptor: 0 }
}

/// Inputs of every postsynaptic neuron from one source population with a fixed in-degree.
#[derive(Clone, Debug)]
pub(crate) struct Indegree {
    pub sources: Range<u32>,
    pub k: u32,
    pub weight: f32,
    pub delay: u16,
    pub receptor: u8,
    pub substream: u32,
}

/// NEST `fixed_indegree` onto postsynaptic neurons `posts` (a process's share, or all): every neuron gets exactly `k` synapses
/// from each input. With `multapses` the sources are drawn uniformly with replacement (NEST's default,
/// `allow_multapses=True`); without, a uniform `k`-subset (Floyd's algorithm). Autapses are allowed.
pub(crate) fn fixed_indegree(
    root: CounterRng,
    posts: Range<u32>,
    inputs: &[Indegree],
    multapses: bool,
) -> Result<Vec<Synapse>, ConnectomeError> {
    for p in inputs {
        let n_src = p.sources.len() as u64;
        if p.k > 0 && n_src == 0 {
            return Err(ConnectomeError::Compile(format!("in-degree {} from an empty source population", p.k)));
        }
        if !multapses && p.k as u64 > n_src {
            return Err(ConnectomeError::Compile(format!(
                "in-degree {} exceeds the {n_src} sources: not possible without multapses",
                p.k
            )));
        }
    }
    let per: usize = inputs.iter().map(|p| p.k as usize).sum();
    let total =
        (posts.len()).checked_mul(per).ok_or_else(|| ConnectomeError::Compile("synapse count overflows".into()))?;
    let mut out = vec![placeholder(); total];
    if per == 0 {
        return Ok(out);
    }
    out.par_chunks_mut(per).enumerate().for_each(|(k, slot)| {
        let post = posts.start + k as u32;
        let mut off = 0;
        let mut chosen: HashSet<u32> = HashSet::new();
        for p in inputs {
            let k = p.k as usize;
            let s = &mut slot[off..off + k];
            off += k;
            let mut d = Draws::new(root, p.substream, post);
            let n_src = p.sources.len() as u32;
            let make = |pre: u32| Synapse { pre, post, weight: p.weight, delay: p.delay, receptor: p.receptor };
            if multapses {
                for x in s.iter_mut() {
                    *x = make(p.sources.start + d.below(n_src));
                }
            } else {
                // Floyd's algorithm: a uniform k-subset of 0..n_src in k draws.
                chosen.clear();
                for (x, j) in s.iter_mut().zip(n_src - p.k..n_src) {
                    let t = d.below(j + 1);
                    // j is larger than every earlier pick, so it is new whenever t is not.
                    let pick = if chosen.insert(t) {
                        t
                    } else {
                        chosen.insert(j);
                        j
                    };
                    *x = make(p.sources.start + pick);
                }
            }
        }
    });
    Ok(out)
}

/// Inputs from one source population, each pair connected with probability `p`.
#[derive(Clone, Debug)]
pub(crate) struct Pairwise {
    pub sources: Range<u32>,
    pub p: f64,
    pub weight: f32,
    pub delay: u16,
    pub receptor: u8,
    pub substream: u32,
}

/// NEST `pairwise_bernoulli` onto postsynaptic neurons `posts` (autapses allowed), sampled per
/// postsynaptic neuron by geometric skipping over the sources.
pub(crate) fn pairwise_bernoulli(
    root: CounterRng,
    posts: Range<u32>,
    inputs: &[Pairwise],
) -> Result<Vec<Synapse>, ConnectomeError> {
    for p in inputs {
        if !(0.0..=1.0).contains(&p.p) {
            return Err(ConnectomeError::Compile(format!("connection probability {} outside [0, 1]", p.p)));
        }
    }
    Ok(posts
        .into_par_iter()
        .flat_map_iter(|post| {
            let mut v = Vec::new();
            for p in inputs {
                let make = |pre: u32| Synapse { pre, post, weight: p.weight, delay: p.delay, receptor: p.receptor };
                let n_src = p.sources.len() as u64;
                if p.p >= 1.0 {
                    v.extend(p.sources.clone().map(make));
                    continue;
                }
                if p.p <= 0.0 {
                    continue;
                }
                let mut d = Draws::new(root, p.substream, post);
                let log_q = (-p.p).ln_1p();
                let mut i = 0u64;
                loop {
                    let skip = (d.uniform().ln() / log_q).floor();
                    if skip >= (n_src - i) as f64 {
                        break;
                    }
                    i += skip as u64;
                    v.push(make(p.sources.start + i as u32));
                    i += 1;
                    if i >= n_src {
                        break;
                    }
                }
            }
            v
        })
        .collect())
}

/// A projection with a fixed total number of synapses.
#[derive(Clone, Debug)]
pub(crate) struct TotalNumber {
    pub sources: Range<u32>,
    pub targets: Range<u32>,
    pub n: u64,
    pub receptor: u8,
    /// Sub-streams `2·substream` (source counts) and `2·substream + 1` (rows) are used.
    pub substream: u32,
}

/// NEST `fixed_total_number` (multapses and autapses allowed): each of the `n` synapses of a projection
/// has a uniform source and a uniform target, independently; `weight_delay(projection, draws)` draws its
/// weight and delay.
///
/// Built by presynaptic neuron, so that the output is already in the order of
/// [`SynapseMatrix::from_synapses`](crate::SynapseMatrix::from_synapses) (whose sort then only verifies
/// it): (1) the number of synapses of every source neuron is the histogram of `n` uniform source draws
/// (a multinomial sample; [`CHUNK`] draws per `Draws` sequence, chunks counted in parallel); (2) every
/// presynaptic neuron draws the targets, weights and delays of its synapses from its own sequence per
/// projection, in parallel over neurons, and sorts its row by (receptor, delay, target, weight).
#[cfg(test)]
pub(crate) fn fixed_total_number<F>(
    root: CounterRng,
    n_neurons: u32,
    projections: &[TotalNumber],
    weight_delay: F,
) -> Result<Vec<Synapse>, ConnectomeError>
where
    F: Fn(usize, &mut Draws) -> (f32, u16) + Sync,
{
    let (counts, row_len) = total_number_counts(root, n_neurons, projections)?;
    let total: usize = row_len.iter().sum();
    let mut out = vec![placeholder(); total];
    let mut rest: &mut [Synapse] = &mut out;
    let mut rows = Vec::with_capacity(n_neurons as usize);
    for (pre, &len) in row_len.iter().enumerate() {
        let (head, tail) = rest.split_at_mut(len);
        rows.push((pre as u32, head));
        rest = tail;
    }
    rows.into_par_iter().for_each_init(Vec::new, |buf, (pre, row)| {
        buf.clear();
        total_number_row(root, projections, &counts, pre, &weight_delay, buf);
        row.copy_from_slice(buf);
        // the order of `SynapseMatrix::from_synapses`: (pre, receptor, delay, post, weight bits)
        row.sort_unstable_by_key(|s| {
            ((s.receptor as u128) << 80)
                | ((s.delay as u128) << 64)
                | ((s.post as u128) << 32)
                | s.weight.to_bits() as u128
        });
    });
    Ok(out)
}

/// [`fixed_total_number`] built straight into a [`SynapseMatrix`] with
/// [`SynapseMatrix::from_rows`](crate::SynapseMatrix::from_rows): the same matrix, without the list of all
/// synapses (16 bytes each) in between. With a `keep` range short of all neurons (a process's share), only the
/// synapses onto `keep` are kept ([`SynapseMatrix::from_rows_part`](crate::SynapseMatrix::from_rows_part)):
/// every row is still drawn in full (its targets, weights and delays come from one sequence), so the time is
/// not split, the memory is.
pub(crate) fn fixed_total_number_matrix<F>(
    root: CounterRng,
    n_neurons: u32,
    projections: &[TotalNumber],
    keep: Range<u32>,
    weight_delay: F,
) -> Result<crate::SynapseMatrix, ConnectomeError>
where
    F: Fn(usize, &mut Draws) -> (f32, u16) + Sync,
{
    let (counts, row_len) = total_number_counts(root, n_neurons, projections)?;
    let fill = |pre, row: &mut Vec<Synapse>| total_number_row(root, projections, &counts, pre, &weight_delay, row);
    if keep == (0..n_neurons) {
        crate::SynapseMatrix::from_rows(n_neurons, n_neurons, &row_len, fill)
    } else {
        crate::SynapseMatrix::from_rows_part(n_neurons, n_neurons, keep, fill)
    }
}

/// Step (1) of [`fixed_total_number`]: synapses per source neuron per projection, and per row in total.
fn total_number_counts(
    root: CounterRng,
    n_neurons: u32,
    projections: &[TotalNumber],
) -> Result<(Vec<Vec<u32>>, Vec<usize>), ConnectomeError> {
    let mut counts: Vec<Vec<u32>> = Vec::with_capacity(projections.len());
    for p in projections {
        if p.n > 0 && (p.sources.is_empty() || p.targets.is_empty()) {
            return Err(ConnectomeError::Compile(format!(
                "{} synapses between populations {:?} -> {:?}, one of which is empty",
                p.n, p.sources, p.targets
            )));
        }
        if p.sources.end > n_neurons || p.targets.end > n_neurons {
            return Err(ConnectomeError::Compile(format!(
                "projection {:?} -> {:?} outside the network",
                p.sources, p.targets
            )));
        }
        let n_src = p.sources.len() as u32;
        let n_chunks = p.n.div_ceil(CHUNK);
        if n_chunks > u32::MAX as u64 || p.n > u32::MAX as u64 {
            return Err(ConnectomeError::Compile(format!("projection of {} synapses is too large", p.n)));
        }
        let c = (0..n_chunks)
            .into_par_iter()
            .fold(
                || vec![0u32; n_src as usize],
                |mut acc, c| {
                    let mut d = Draws::new(root, 2 * p.substream, c as u32);
                    for _ in 0..(p.n - c * CHUNK).min(CHUNK) {
                        acc[d.below(n_src) as usize] += 1;
                    }
                    acc
                },
            )
            .reduce(
                || vec![0u32; n_src as usize],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        counts.push(c);
    }
    let mut row_len = vec![0usize; n_neurons as usize];
    for (p, c) in projections.iter().zip(&counts) {
        for (k, &m) in c.iter().enumerate() {
            row_len[p.sources.start as usize + k] += m as usize;
        }
    }
    Ok((counts, row_len))
}

/// Step (2) of [`fixed_total_number`] for one presynaptic neuron: its synapses of every projection, drawn from
/// the neuron's own sequence per projection, pushed in projection order (unsorted).
fn total_number_row<F>(
    root: CounterRng,
    projections: &[TotalNumber],
    counts: &[Vec<u32>],
    pre: u32,
    weight_delay: &F,
    out: &mut Vec<Synapse>,
) where
    F: Fn(usize, &mut Draws) -> (f32, u16),
{
    for (pi, p) in projections.iter().enumerate() {
        if !p.sources.contains(&pre) {
            continue;
        }
        let k = counts[pi][(pre - p.sources.start) as usize];
        if k == 0 {
            continue;
        }
        let n_tgt = p.targets.len() as u32;
        let mut d = Draws::new(root, 2 * p.substream + 1, pre);
        for _ in 0..k {
            let post = p.targets.start + d.below(n_tgt);
            let (weight, delay) = weight_delay(pi, &mut d);
            out.push(Synapse { pre, post, weight, delay, receptor: p.receptor });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed-total-number output is already in `SynapseMatrix::from_synapses` order (so its sort is a
    /// linear check), and every projection has exactly its number of synapses.
    #[test]
    fn fixed_total_number_is_presorted_and_exact() {
        let p = |s: Range<u32>, t: Range<u32>, n, receptor, substream| TotalNumber {
            sources: s,
            targets: t,
            n,
            receptor,
            substream,
        };
        let projections = [p(0..50, 0..80, 150_000, 0, 0), p(50..80, 0..50, 7_000, 1, 1), p(0..50, 50..80, 0, 0, 2)];
        let syn = fixed_total_number(root(3), 80, &projections, |pi, d| {
            ((if pi == 1 { -1.0 } else { 1.0 }) * d.uniform() as f32, 1 + d.below(4) as u16)
        })
        .unwrap();
        let key = |s: &Synapse| (s.pre, s.receptor, s.delay, s.post, s.weight.to_bits());
        assert!(syn.windows(2).all(|w| key(&w[0]) <= key(&w[1])));
        assert_eq!(syn.iter().filter(|s| s.pre < 50).count(), 150_000);
        assert_eq!(syn.iter().filter(|s| s.pre >= 50 && s.post < 50).count(), 7_000);
        assert!(syn.iter().all(|s| (s.pre < 50) == (s.receptor == 0)));
    }

    /// Built straight into CSR, the same synapses give the same matrix as the list through `from_synapses`,
    /// with dense weights (many distinct values) and with a weight table (few), for any thread count.
    #[test]
    fn fixed_total_number_matrix_equals_the_list_path() {
        let p = |s: Range<u32>, t: Range<u32>, n, receptor, substream| TotalNumber {
            sources: s,
            targets: t,
            n,
            receptor,
            substream,
        };
        let projections = [p(0..500, 0..800, 200_000, 0, 0), p(500..800, 0..500, 70_000, 1, 1)];
        let dense =
            |pi: usize, d: &mut Draws| ((if pi == 1 { -1.0 } else { 1.0 }) * d.uniform() as f32, 1 + d.below(9) as u16);
        let table = |pi: usize, d: &mut Draws| (if pi == 1 { -2.0 } else { 0.5 }, 1 + d.below(9) as u16);
        for (label, f) in [("dense", &dense as &(dyn Fn(usize, &mut Draws) -> (f32, u16) + Sync)), ("table", &table)] {
            let list = fixed_total_number(root(7), 800, &projections, f).unwrap();
            let want = crate::SynapseMatrix::from_synapses(800, 800, list).unwrap();
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let got = pool.install(|| fixed_total_number_matrix(root(7), 800, &projections, 0..800, f).unwrap());
                assert!(got == want, "{label}, {threads} threads: matrices differ");
            }
            assert_eq!(matches!(want.weights, crate::Weights::Dense(_)), label == "dense");
        }
    }
}
