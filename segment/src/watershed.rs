//! Over-segmentation into fragments: seeded watershed on a boundary map.
//!
//! 1. Threshold the boundary map (`b < seed_threshold` = cell interior).
//! 2. Exact squared Euclidean distance transform of the interior to the nearest boundary voxel, in nm
//!    with the anisotropic voxel size: separable lower envelope of parabolas (Felzenszwalb & Huttenlocher
//!    2012, "Distance transforms of sampled functions", Theory of Computing 8:415).
//! 3. Seeds: voxels where the distance (nm) is at least `min_seed_distance_nm` and equals the maximum of a
//!    box of ± `seed_radius_nm` around it (a separable maximum filter), grouped into 26-connected
//!    components, one seed label each (the scheme of Funke et al. 2018's affinity watershed, IEEE TPAMI
//!    41:1669, and of scikit-image's `peak_local_max`).
//! 4. Priority flood from the seeds in increasing boundary value (Meyer 1991, "Un algorithme optimal de
//!    ligne de partage des eaux"; Beucher & Meyer 1993); equal values first-in first-out, the queue
//!    initialised in voxel-index order, so the result is deterministic.
//! 5. Fragments smaller than `min_fragment_voxels` are merged into the neighbour with the lowest mean
//!    boundary value along their contact.
//!
//! Everything here works on one block in isolation (the block border is not a boundary).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use crate::unionfind::UnionFind;
use crate::volume::{Volume, face_neighbours};

/// Watershed parameters (lengths in nm, sizes in voxels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatershedConfig {
    /// Boundary values below this are cell interior for the distance transform.
    pub seed_threshold: f32,
    /// Seeds need at least this distance (nm) to the nearest boundary voxel.
    pub min_seed_distance_nm: f64,
    /// Half-width (nm) of the maximum filter: seeds are the largest distance within this box.
    pub seed_radius_nm: f64,
    /// Fragments with fewer voxels are merged into a neighbour.
    pub min_fragment_voxels: usize,
}

impl Default for WatershedConfig {
    fn default() -> Self {
        Self { seed_threshold: 0.5, min_seed_distance_nm: 16.0, seed_radius_nm: 40.0, min_fragment_voxels: 20 }
    }
}

const FAR: f64 = 1e20;

/// 1D squared distance transform of `f` with sample spacing² `h2` (Felzenszwalb & Huttenlocher 2012).
fn dt1d(f: &[f64], h2: f64, d: &mut [f64], v: &mut [usize], zb: &mut [f64]) {
    let n = f.len();
    let mut k = 0usize;
    v[0] = 0;
    zb[0] = f64::NEG_INFINITY;
    zb[1] = f64::INFINITY;
    let key = |q: usize| f[q] + h2 * (q * q) as f64;
    for q in 1..n {
        let mut s = (key(q) - key(v[k])) / (2.0 * h2 * (q - v[k]) as f64);
        while s <= zb[k] {
            k -= 1;
            s = (key(q) - key(v[k])) / (2.0 * h2 * (q - v[k]) as f64);
        }
        k += 1;
        v[k] = q;
        zb[k] = s;
        zb[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, dq) in d.iter_mut().enumerate().take(n) {
        while zb[k + 1] < q as f64 {
            k += 1;
        }
        let dx = q as f64 - v[k] as f64;
        *dq = h2 * dx * dx + f[v[k]];
    }
}

/// Exact Euclidean distance (nm) from every voxel to the nearest voxel where `is_boundary` is true;
/// [`f64::INFINITY`] when there is none. Anisotropic: the voxel size of `shape_of` is honoured.
pub fn distance_transform(mask_boundary: &Volume<bool>) -> Volume<f64> {
    let [nz, ny, nx] = mask_boundary.shape;
    let mut g: Vec<f64> = mask_boundary.data.iter().map(|&b| if b { 0.0 } else { FAR }).collect();
    let nmax = nz.max(ny).max(nx);
    let (mut f, mut d, mut v, mut zb) = (vec![0.0; nmax], vec![0.0; nmax], vec![0usize; nmax], vec![0.0; nmax + 1]);
    let strides = [ny * nx, nx, 1];
    for axis in [2usize, 1, 0] {
        let n = mask_boundary.shape[axis];
        let h2 = mask_boundary.voxel_nm[axis].powi(2);
        let st = strides[axis];
        // Every line along `axis`: start indices over the other two axes.
        let (a_len, b_len, a_st, b_st) = match axis {
            2 => (nz, ny, ny * nx, nx),
            1 => (nz, nx, ny * nx, 1),
            _ => (ny, nx, nx, 1),
        };
        for a in 0..a_len {
            for b in 0..b_len {
                let base = a * a_st + b * b_st;
                for q in 0..n {
                    f[q] = g[base + q * st];
                }
                dt1d(&f[..n], h2, &mut d[..n], &mut v[..n], &mut zb[..n + 1]);
                for q in 0..n {
                    g[base + q * st] = d[q];
                }
            }
        }
    }
    let data = g.into_iter().map(|x| if x >= FAR * 0.5 { f64::INFINITY } else { x.sqrt() }).collect();
    Volume { shape: mask_boundary.shape, voxel_nm: mask_boundary.voxel_nm, data }
}

/// Separable box maximum filter with half-widths `r` voxels (z, y, x).
fn max_filter(v: &Volume<f64>, r: [usize; 3]) -> Vec<f64> {
    let [_, ny, nx] = v.shape;
    let mut cur = v.data.clone();
    let strides = [ny * nx, nx, 1];
    for axis in [2usize, 1, 0] {
        if r[axis] == 0 {
            continue;
        }
        let n = v.shape[axis];
        let st = strides[axis];
        let mut out = cur.clone();
        for (i, o) in out.iter_mut().enumerate() {
            let c = (i / st) % n;
            let lo = c.saturating_sub(r[axis]);
            let hi = (c + r[axis]).min(n - 1);
            let base = i - c * st;
            let mut m = f64::NEG_INFINITY;
            for q in lo..=hi {
                m = m.max(cur[base + q * st]);
            }
            *o = m;
        }
        cur = out;
    }
    cur
}

/// Seed labels (1..=n, 0 = no seed) and their count.
pub fn seeds(boundary: &Volume<f32>, cfg: &WatershedConfig) -> (Volume<u64>, u64) {
    let mask = boundary.map(|&b| b >= cfg.seed_threshold);
    let dt = distance_transform(&mask);
    let r = boundary.voxel_nm.map(|v| (cfg.seed_radius_nm / v).round() as usize);
    let mx = max_filter(&dt, r);
    let is_seed: Vec<bool> =
        dt.data.iter().zip(&mx).map(|(&d, &m)| d >= cfg.min_seed_distance_nm && (d == m || d.is_infinite())).collect();
    let mut lab = Volume::filled(boundary.shape, boundary.voxel_nm, 0u64);
    let [nz, ny, nx] = boundary.shape;
    let mut n = 0u64;
    let mut stack = Vec::new();
    for i in 0..is_seed.len() {
        if !is_seed[i] || lab.data[i] != 0 {
            continue;
        }
        n += 1;
        lab.data[i] = n;
        stack.push(i);
        while let Some(j) = stack.pop() {
            let [z, y, x] = lab.coords(j);
            for dz in -1i64..=1 {
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (zz, yy, xx) = (z as i64 + dz, y as i64 + dy, x as i64 + dx);
                        if zz < 0 || yy < 0 || xx < 0 || zz >= nz as i64 || yy >= ny as i64 || xx >= nx as i64 {
                            continue;
                        }
                        let k = (zz as usize * ny + yy as usize) * nx + xx as usize;
                        if is_seed[k] && lab.data[k] == 0 {
                            lab.data[k] = n;
                            stack.push(k);
                        }
                    }
                }
            }
        }
    }
    (lab, n)
}

/// Priority flood of `labels` (0 = unlabelled) over increasing boundary values. Equal values are
/// processed first-in first-out (Barnes, Lehman & Mulla 2014, "Priority-flood", Comput Geosci 62:117),
/// so fronts advance evenly over plateaus (quantised boundary maps have large ones); the initial queue
/// is filled in voxel-index order, so the result is deterministic. Voxels no seed reaches stay 0.
///
/// A voxel enters the queue once, with the label of the first neighbour that reaches it: every later entry
/// of the same voxel would carry the same boundary value and a later position, so it could never be popped
/// first (the result equals queueing every (voxel, neighbour) pair; a test checks it against that). A map
/// whose values are all levels of uint8 (`v / 255`) is queued in 256 FIFO buckets; any other in a binary heap
/// whose 16-byte entries pack the value's bits and the queue position in one `u64` (hence fewer than 2^32
/// voxels per call, which [`check_fragment_chunk`] ensures). Both give the same order.
pub fn flood(boundary: &Volume<f32>, labels: &mut Volume<u64>) {
    assert!(labels.len() < 1 << 32, "flood: {} voxels, more than 2^32 in one fragment-grid cell", labels.len());
    let levels: Option<Vec<u8>> = boundary.data.iter().map(|&b| eight_bit_level(b)).collect();
    match levels {
        Some(levels) => flood_with(labels, &mut BucketQueue::new(levels)),
        None => flood_with(labels, &mut HeapQueue { heap: BinaryHeap::new(), boundary: &boundary.data, counter: 0 }),
    }
}

/// The level `v` of a boundary value that is exactly `v / 255` ([`crate::volume::unit_intensity`], a map
/// stored as uint8), else `None`.
fn eight_bit_level(b: f32) -> Option<u8> {
    let v = (b * 255.0).round();
    (0.0..=255.0).contains(&v).then_some(v as u8).filter(|&v| crate::volume::unit_intensity(v) == b)
}

/// The flood's queue: voxels in increasing boundary value, first in first out among equal values.
trait FloodQueue {
    fn push(&mut self, voxel: usize);
    fn pop(&mut self) -> Option<usize>;
}

/// A binary heap on (boundary value bits, queue position) packed in one `u64`, for any boundary values.
struct HeapQueue<'a> {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    boundary: &'a [f32],
    counter: u64,
}

impl FloodQueue for HeapQueue<'_> {
    fn push(&mut self, j: usize) {
        let key = u64::from(self.boundary[j].max(0.0).to_bits()) << 32;
        self.heap.push(Reverse((key | self.counter, j as u32)));
        self.counter += 1;
    }
    fn pop(&mut self) -> Option<usize> {
        self.heap.pop().map(|Reverse((_, j))| j as usize)
    }
}

/// 256 first-in first-out buckets, one per level of a map stored as uint8: the same order as [`HeapQueue`]
/// (levels are monotone in the value, positions increase within a bucket) at a fraction of its cost.
struct BucketQueue {
    levels: Vec<u8>,
    buckets: Vec<std::collections::VecDeque<u32>>,
    /// No bucket below this one holds a voxel.
    lowest: usize,
}

impl BucketQueue {
    fn new(levels: Vec<u8>) -> Self {
        Self { levels, buckets: vec![std::collections::VecDeque::new(); 256], lowest: 256 }
    }
}

impl FloodQueue for BucketQueue {
    fn push(&mut self, j: usize) {
        let b = self.levels[j] as usize;
        self.buckets[b].push_back(j as u32);
        self.lowest = self.lowest.min(b);
    }
    fn pop(&mut self) -> Option<usize> {
        while self.lowest < 256 {
            if let Some(j) = self.buckets[self.lowest].pop_front() {
                return Some(j as usize);
            }
            self.lowest += 1;
        }
        None
    }
}

/// The flood over `queue` (see [`flood`]).
fn flood_with(labels: &mut Volume<u64>, queue: &mut impl FloodQueue) {
    let mut pending = vec![0u64; labels.len()];
    let mut nb = Vec::with_capacity(6);
    for i in 0..labels.len() {
        let l = labels.data[i];
        if l == 0 {
            continue;
        }
        face_neighbours(labels.shape, labels.coords(i), &mut nb);
        for &j in &nb {
            if labels.data[j] == 0 && pending[j] == 0 {
                pending[j] = l;
                queue.push(j);
            }
        }
    }
    while let Some(i) = queue.pop() {
        let l = pending[i];
        labels.data[i] = l;
        face_neighbours(labels.shape, labels.coords(i), &mut nb);
        for &j in &nb {
            if labels.data[j] == 0 && pending[j] == 0 {
                pending[j] = l;
                queue.push(j);
            }
        }
    }
}

/// The most voxels one fragment-grid cell may hold (the flood packs queue positions in 32 bits).
pub const MAX_CELL_VOXELS: u64 = (1 << 32) - 1;

/// Checks that a fragment-grid cell of `chunk` voxels (z, y, x) fits [`MAX_CELL_VOXELS`].
pub fn check_fragment_chunk(chunk: [usize; 3]) -> Result<(), crate::error::SegmentError> {
    let n = chunk.iter().map(|&c| c as u128).product::<u128>();
    if n > MAX_CELL_VOXELS as u128 {
        return Err(crate::error::SegmentError::Invalid(format!(
            "fragment chunk {chunk:?} holds {n} voxels, more than the watershed's limit of 2^32 - 1 per cell; give a \
             smaller --chunk (e.g. 64,256,256)"
        )));
    }
    Ok(())
}

/// Merges fragments smaller than `min_voxels` into the neighbour with the lowest mean boundary value
/// along their contact (smallest fragments first; ties by label), then renumbers labels 1..=n in scan
/// order. Returns n.
pub fn merge_small(boundary: &Volume<f32>, labels: &mut Volume<u64>, min_voxels: usize) -> u64 {
    let mut size: HashMap<u64, usize> = HashMap::new();
    for &l in &labels.data {
        *size.entry(l).or_default() += 1;
    }
    if min_voxels > 1 && size.values().any(|&s| s < min_voxels) {
        // Contacts between different labels: (sum of boundary means, count).
        let mut contact: HashMap<(u64, u64), (f64, u64)> = HashMap::new();
        let [_, ny, nx] = labels.shape;
        for i in 0..labels.len() {
            let [z, y, x] = labels.coords(i);
            for (ok, j) in [(x + 1 < nx, i + 1), (y + 1 < ny, i + nx), (z + 1 < labels.shape[0], i + ny * nx)] {
                if !ok {
                    continue;
                }
                let (a, b) = (labels.data[i], labels.data[j]);
                if a != b {
                    let e = contact.entry((a.min(b), a.max(b))).or_default();
                    e.0 += 0.5 * (boundary.data[i] + boundary.data[j]) as f64;
                    e.1 += 1;
                }
            }
        }
        let mut edges: Vec<((u64, u64), (f64, u64))> = contact.into_iter().collect();
        edges.sort_by_key(|e| e.0);
        let mut order: Vec<(usize, u64)> =
            size.iter().map(|(&l, &s)| (s, l)).filter(|&(s, _)| s < min_voxels).collect();
        order.sort();
        let mut uf = UnionFind::new();
        let mut root_size: HashMap<u64, usize> = size.clone();
        for (_, l) in order {
            let r = uf.find(l);
            if root_size[&r] >= min_voxels {
                continue;
            }
            let mut acc: HashMap<u64, (f64, u64)> = HashMap::new();
            for &((a, b), (s, c)) in &edges {
                let (ra, rb) = (uf.find(a), uf.find(b));
                if ra == rb {
                    continue;
                }
                let other = if ra == r {
                    rb
                } else if rb == r {
                    ra
                } else {
                    continue;
                };
                let e = acc.entry(other).or_default();
                e.0 += s;
                e.1 += c;
            }
            let best = acc.into_iter().min_by(|x, y| {
                let (mx, my) = (x.1.0 / x.1.1 as f64, y.1.0 / y.1.1 as f64);
                mx.total_cmp(&my).then(y.1.1.cmp(&x.1.1)).then(x.0.cmp(&y.0))
            });
            if let Some((o, _)) = best {
                let total = root_size[&r] + root_size[&o];
                let nr = uf.union(r, o);
                root_size.insert(nr, total);
            }
        }
        for l in labels.data.iter_mut() {
            *l = uf.find(*l);
        }
    }
    renumber(labels)
}

/// Renumbers non-zero labels to 1..=n in order of first appearance (0 stays 0); returns n.
pub fn renumber(labels: &mut Volume<u64>) -> u64 {
    let mut map: HashMap<u64, u64> = HashMap::new();
    for l in labels.data.iter_mut() {
        if *l == 0 {
            continue;
        }
        let n = map.len() as u64 + 1;
        *l = *map.entry(*l).or_insert(n);
    }
    map.len() as u64
}

/// Fragments of one block: seeds, flood, small-fragment merging. Labels are 1..=n (n returned); a
/// block without any seed becomes a single fragment.
pub fn fragments(boundary: &Volume<f32>, cfg: &WatershedConfig) -> (Volume<u64>, u64) {
    let (mut lab, n) = seeds(boundary, cfg);
    if n == 0 {
        lab.data.iter_mut().for_each(|l| *l = 1);
        return (lab, 1);
    }
    flood(boundary, &mut lab);
    let n = merge_small(boundary, &mut lab, cfg.min_fragment_voxels);
    (lab, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flood as first written: every (voxel, neighbour) pair queued with its label.
    fn flood_reference(boundary: &Volume<f32>, labels: &mut Volume<u64>) {
        let mut heap: BinaryHeap<Reverse<(u32, u64, usize, u64)>> = BinaryHeap::new();
        let mut nb = Vec::with_capacity(6);
        let key = |b: f32| b.max(0.0).to_bits();
        let mut counter = 0u64;
        for i in 0..labels.len() {
            let l = labels.data[i];
            if l == 0 {
                continue;
            }
            face_neighbours(labels.shape, labels.coords(i), &mut nb);
            for &j in &nb {
                if labels.data[j] == 0 {
                    heap.push(Reverse((key(boundary.data[j]), counter, j, l)));
                    counter += 1;
                }
            }
        }
        while let Some(Reverse((_, _, i, l))) = heap.pop() {
            if labels.data[i] != 0 {
                continue;
            }
            labels.data[i] = l;
            face_neighbours(labels.shape, labels.coords(i), &mut nb);
            for &j in &nb {
                if labels.data[j] == 0 {
                    heap.push(Reverse((key(boundary.data[j]), counter, j, l)));
                    counter += 1;
                }
            }
        }
    }

    #[test]
    fn flood_equals_queueing_every_neighbour_pair() {
        // Quantised values (large plateaus, where the queue order decides) and continuous ones.
        for levels in [4u64, 255, 256, 0] {
            let shape = [9, 23, 17];
            let mut b = Volume::filled(shape, [10.0; 3], 0f32);
            for (i, v) in b.data.iter_mut().enumerate() {
                let u = crate::hash::uniform(7, levels, i as u64) as f32;
                *v = match levels {
                    0 => u,
                    255 => crate::volume::unit_intensity((u * 255.0) as u8), // the bucket queue
                    _ => (u * levels as f32).floor() / levels as f32,
                };
            }
            let mut seeds = Volume::filled(shape, [10.0; 3], 0u64);
            for (k, i) in [5usize, 400, 401, 1700, 3000, 3518].into_iter().enumerate() {
                seeds.data[i] = k as u64 % 4 + 1;
            }
            let (mut a, mut r) = (seeds.clone(), seeds);
            flood(&b, &mut a);
            flood_reference(&b, &mut r);
            assert_eq!(a, r, "levels {levels}");
            assert!(a.data.iter().all(|&l| l != 0));
        }
    }

    #[test]
    fn distance_transform_matches_brute_force_anisotropic() {
        let shape = [5, 7, 6];
        let vox = [30.0, 10.0, 7.0];
        let mut m = Volume::filled(shape, vox, false);
        for i in [3usize, 50, 111, 170] {
            m.data[i] = true;
        }
        let dt = distance_transform(&m);
        for i in 0..m.len() {
            let c = m.coords(i);
            let mut best = f64::INFINITY;
            for j in (0..m.len()).filter(|&j| m.data[j]) {
                let d = m.coords(j);
                let s: f64 = (0..3).map(|a| ((c[a] as f64 - d[a] as f64) * vox[a]).powi(2)).sum();
                best = best.min(s.sqrt());
            }
            assert!((dt.data[i] - best).abs() < 1e-9, "voxel {c:?}: {} vs {best}", dt.data[i]);
        }
    }

    #[test]
    fn two_basins_split_at_the_wall() {
        // A wall at x = 10 separates two boxes: two fragments, split at the wall.
        let mut b = Volume::filled([6, 12, 21], [10.0; 3], 0.0f32);
        for z in 0..6 {
            for y in 0..12 {
                let i = b.idx(z, y, 10);
                b.data[i] = 1.0;
            }
        }
        let (lab, n) = fragments(&b, &WatershedConfig { min_fragment_voxels: 5, ..Default::default() });
        assert_eq!(n, 2);
        assert_ne!(lab.data[lab.idx(3, 5, 2)], lab.data[lab.idx(3, 5, 18)]);
    }
}
