//! Weights in compressed sparse row form with a fixed sparsity mask and a transpose index (for `Wᵀ e` without
//! atomics and for column operations). A dense matrix is the CSR matrix with every entry present.

use neurotwin_kernels::host::PcCsr;
use neurotwin_models::rng::CounterRng;

/// A `rows × cols` matrix: entries of row `i` are `row_ptr[i]..row_ptr[i + 1]` of `col_idx`/`vals` (columns
/// ascending); the transpose lists, for column `j`, entries `t_ptr[j]..t_ptr[j + 1]` with their original row
/// `t_row` (ascending) and index `t_perm` into `vals`. `row_of[k]` is the row of entry `k`.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    pub row_ptr: Vec<u32>,
    pub col_idx: Vec<u32>,
    pub vals: Vec<f64>,
    pub row_of: Vec<u32>,
    pub t_ptr: Vec<u32>,
    pub t_row: Vec<u32>,
    pub t_perm: Vec<u32>,
}

impl Csr {
    /// The mask given by `(row, col)` pairs (any order, duplicates merged), all values 0.
    ///
    /// # Panics
    /// If a pair is out of range or the matrix has 2^32 entries or more.
    pub fn from_mask(rows: usize, cols: usize, pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let mut p: Vec<(u32, u32)> = pairs
            .into_iter()
            .map(|(i, j)| {
                assert!(i < rows && j < cols, "mask entry ({i}, {j}) outside {rows} × {cols}");
                (i as u32, j as u32)
            })
            .collect();
        p.sort_unstable();
        p.dedup();
        assert!(p.len() < u32::MAX as usize, "too many entries");
        let mut row_ptr = vec![0u32; rows + 1];
        for &(i, _) in &p {
            row_ptr[i as usize + 1] += 1;
        }
        for i in 0..rows {
            row_ptr[i + 1] += row_ptr[i];
        }
        let col_idx: Vec<u32> = p.iter().map(|&(_, j)| j).collect();
        let row_of: Vec<u32> = p.iter().map(|&(i, _)| i).collect();
        let mut t_ptr = vec![0u32; cols + 1];
        for &j in &col_idx {
            t_ptr[j as usize + 1] += 1;
        }
        for j in 0..cols {
            t_ptr[j + 1] += t_ptr[j];
        }
        let mut fill: Vec<u32> = t_ptr[..cols].to_vec();
        let mut t_row = vec![0u32; p.len()];
        let mut t_perm = vec![0u32; p.len()];
        // Entries in row-major order, so each column's transposed entries come out with ascending rows.
        for (k, &(i, j)) in p.iter().enumerate() {
            let pos = fill[j as usize] as usize;
            fill[j as usize] += 1;
            t_row[pos] = i;
            t_perm[pos] = k as u32;
        }
        Self { rows, cols, row_ptr, col_idx, vals: vec![0.0; p.len()], row_of, t_ptr, t_row, t_perm }
    }

    /// Every entry present.
    pub fn dense(rows: usize, cols: usize) -> Self {
        Self::from_mask(rows, cols, (0..rows).flat_map(|i| (0..cols).map(move |j| (i, j))))
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.vals.len()
    }

    /// Borrowed structure for the host-built kernels.
    pub fn view(&self) -> PcCsr<'_> {
        PcCsr {
            rows: self.rows,
            cols: self.cols,
            row_ptr: &self.row_ptr,
            col_idx: &self.col_idx,
            t_ptr: &self.t_ptr,
            t_row: &self.t_row,
            t_perm: &self.t_perm,
        }
    }

    /// Row-major dense copy (absent entries 0).
    pub fn to_dense(&self) -> Vec<f64> {
        let mut d = vec![0.0; self.rows * self.cols];
        for (k, (&i, &j)) in self.row_of.iter().zip(&self.col_idx).enumerate() {
            d[i as usize * self.cols + j as usize] = self.vals[k];
        }
        d
    }

    /// Column `j` as a dense vector of length `rows`.
    pub fn column(&self, j: usize) -> Vec<f64> {
        let mut c = vec![0.0; self.rows];
        for k in self.t_ptr[j] as usize..self.t_ptr[j + 1] as usize {
            c[self.t_row[k] as usize] = self.vals[self.t_perm[k] as usize];
        }
        c
    }

    /// Sets every entry to `scale · N(0, 1)`: entry `k` draws from `rng` at (neuron = k, step = 0) by
    /// Box–Muller, so the values depend only on the seed and the mask.
    pub fn randomize(&mut self, rng: CounterRng, scale: f64) {
        for (k, v) in self.vals.iter_mut().enumerate() {
            *v = scale * normal(rng, k as u32, 0);
        }
    }
}

/// A standard normal number from the counter-based generator at (`neuron`, `step`) (Box–Muller).
pub fn normal(rng: CounterRng, neuron: u32, step: u64) -> f64 {
    let [u1, u2] = rng.uniform2(neuron, step, 0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_index_is_consistent() {
        let mut m = Csr::from_mask(3, 4, [(2, 1), (0, 3), (1, 1), (0, 0), (2, 1)]);
        assert_eq!(m.nnz(), 4);
        m.vals = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(m.to_dense(), vec![1.0, 0.0, 0.0, 2.0, 0.0, 3.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0]);
        assert_eq!(m.column(1), vec![0.0, 3.0, 4.0]);
        assert_eq!(m.t_ptr, vec![0, 1, 3, 3, 4]);
        assert_eq!(m.t_row, vec![0, 1, 2, 0]);
    }
}
