//! Host builds of the predictive-coding kernels of `cuda/predictive.cu` (f64, batches sample-major, weights in
//! CSR with an explicit transpose index), launched with a 1-D grid as on a GPU. Every function checks slice
//! lengths and CSR indices (and panics on a mismatch), so the kernels stay in bounds.

use std::ffi::{c_int, c_uint};

use super::len_u32;

/// Activation kind `0`: linear, f(x) = x.
pub const PC_LINEAR: i32 = 0;
/// Activation kind `1`: ReLU, f(x) = max(x, 0), f'(x) = [x > 0].
pub const PC_RELU: i32 = 1;

unsafe extern "C" {
    fn nt_host_pc_activate(n: c_uint, kind: c_int, r: *const f64, fr: *mut f64);
    fn nt_host_pc_spmm(
        rows: c_uint,
        cols: c_uint,
        batch: c_uint,
        row_ptr: *const u32,
        col_idx: *const u32,
        vals: *const f64,
        x: *const f64,
        y: *mut f64,
    );
    fn nt_host_pc_spmm_t(
        rows: c_uint,
        cols: c_uint,
        batch: c_uint,
        t_ptr: *const u32,
        t_row: *const u32,
        t_perm: *const u32,
        vals: *const f64,
        x: *const f64,
        y: *mut f64,
    );
    fn nt_host_pc_error(n: c_uint, precision: f64, r: *const f64, mu: *const f64, e: *mut f64);
    fn nt_host_pc_infer_update(n: c_uint, kind: c_int, dt: f64, l1: f64, e: *const f64, bu: *const f64, r: *mut f64);
    fn nt_host_pc_learn(
        rows: c_uint,
        cols: c_uint,
        batch: c_uint,
        row_ptr: *const u32,
        col_idx: *const u32,
        eta: f64,
        e: *const f64,
        fr: *const f64,
        vals: *mut f64,
    );
    fn nt_host_pc_col_normalize(cols: c_uint, t_ptr: *const u32, t_perm: *const u32, target: f64, vals: *mut f64);
}

/// A CSR matrix (`rows × cols`) with its transpose index, borrowed: `row_ptr` (rows + 1), `col_idx` and `vals`
/// (nnz), `t_ptr` (cols + 1), `t_row` (original row of each transposed entry) and `t_perm` (its index in
/// `vals`).
#[derive(Clone, Copy, Debug)]
pub struct PcCsr<'a> {
    pub rows: usize,
    pub cols: usize,
    pub row_ptr: &'a [u32],
    pub col_idx: &'a [u32],
    pub t_ptr: &'a [u32],
    pub t_row: &'a [u32],
    pub t_perm: &'a [u32],
}

fn check_ptr(ptr: &[u32], n: usize, nnz: usize, what: &str) {
    assert_eq!(ptr.len(), n + 1, "{what}: pointer array must have n + 1 entries");
    assert_eq!(ptr[0], 0, "{what}: pointer array must start at 0");
    assert!(ptr.windows(2).all(|w| w[0] <= w[1]), "{what}: pointer array must be non-decreasing");
    assert_eq!(ptr[n] as usize, nnz, "{what}: pointer array must end at nnz");
}

impl PcCsr<'_> {
    /// Checks the structure (pointer arrays, index ranges) against `nnz` values; panics when invalid.
    fn check(&self, nnz: usize) {
        len_u32(self.rows);
        len_u32(self.cols);
        len_u32(nnz);
        assert_eq!(self.col_idx.len(), nnz, "col_idx must have nnz entries");
        assert_eq!(self.t_row.len(), nnz, "t_row must have nnz entries");
        assert_eq!(self.t_perm.len(), nnz, "t_perm must have nnz entries");
        check_ptr(self.row_ptr, self.rows, nnz, "row_ptr");
        check_ptr(self.t_ptr, self.cols, nnz, "t_ptr");
        assert!(self.col_idx.iter().all(|&c| (c as usize) < self.cols), "col_idx out of range");
        assert!(self.t_row.iter().all(|&r| (r as usize) < self.rows), "t_row out of range");
        assert!(self.t_perm.iter().all(|&p| (p as usize) < nnz), "t_perm out of range");
        let mut seen = vec![false; nnz];
        for &p in self.t_perm {
            assert!(!std::mem::replace(&mut seen[p as usize], true), "t_perm must be a permutation");
        }
    }
}

fn batch_len(batch: usize, n: usize) -> usize {
    let len = batch.checked_mul(n).expect("batch size overflows usize");
    len_u32(len);
    len
}

/// `pc_activate`: `fr = f(r)` elementwise (`kind` [`PC_LINEAR`] or [`PC_RELU`]).
pub fn pc_activate(kind: i32, r: &[f64], fr: &mut [f64]) {
    assert_eq!(r.len(), fr.len(), "r and fr must have the same length");
    let n = len_u32(r.len());
    // SAFETY: the kernel reads r[t] and writes fr[t] for t < n = r.len() = fr.len() only.
    unsafe { nt_host_pc_activate(n, kind, r.as_ptr(), fr.as_mut_ptr()) }
}

/// `pc_spmm`: `y[b] = W x[b]` for each of `batch` vectors (`x`: batch × cols, `y`: batch × rows), each output
/// summed over the row's entries in order from 0, each product and sum rounded separately.
pub fn pc_spmm(w: PcCsr<'_>, vals: &[f64], batch: usize, x: &[f64], y: &mut [f64]) {
    w.check(vals.len());
    assert_eq!(x.len(), batch_len(batch, w.cols), "x must be batch × cols");
    assert_eq!(y.len(), batch_len(batch, w.rows), "y must be batch × rows");
    // SAFETY: the CSR structure was checked (pointers within 0..=nnz, col_idx < cols); thread t < rows·batch
    // reads x[b·cols + col] (< batch·cols = x.len()) and vals[k] (k < nnz), and writes y[t] (< y.len()).
    unsafe {
        nt_host_pc_spmm(
            len_u32(w.rows),
            len_u32(w.cols),
            len_u32(batch),
            w.row_ptr.as_ptr(),
            w.col_idx.as_ptr(),
            vals.as_ptr(),
            x.as_ptr(),
            y.as_mut_ptr(),
        )
    }
}

/// `pc_spmm_t`: `y[b] = Wᵀ x[b]` (`x`: batch × rows, `y`: batch × cols), each output summed over the
/// column's transposed entries in order from 0.
pub fn pc_spmm_t(w: PcCsr<'_>, vals: &[f64], batch: usize, x: &[f64], y: &mut [f64]) {
    w.check(vals.len());
    assert_eq!(x.len(), batch_len(batch, w.rows), "x must be batch × rows");
    assert_eq!(y.len(), batch_len(batch, w.cols), "y must be batch × cols");
    // SAFETY: the transpose index was checked (t_ptr within 0..=nnz, t_row < rows, t_perm < nnz); thread
    // t < cols·batch reads x[b·rows + row] (< x.len()) and vals[perm] and writes y[t] (< y.len()).
    unsafe {
        nt_host_pc_spmm_t(
            len_u32(w.rows),
            len_u32(w.cols),
            len_u32(batch),
            w.t_ptr.as_ptr(),
            w.t_row.as_ptr(),
            w.t_perm.as_ptr(),
            vals.as_ptr(),
            x.as_ptr(),
            y.as_mut_ptr(),
        )
    }
}

/// `pc_error`: `e = precision · (r − mu)` elementwise.
pub fn pc_error(precision: f64, r: &[f64], mu: &[f64], e: &mut [f64]) {
    assert!(r.len() == mu.len() && r.len() == e.len(), "r, mu and e must have the same length");
    let n = len_u32(r.len());
    // SAFETY: the kernel touches index t < n = r.len() = mu.len() = e.len() of each array only.
    unsafe { nt_host_pc_error(n, precision, r.as_ptr(), mu.as_ptr(), e.as_mut_ptr()) }
}

/// `pc_infer_update`: `r = r + dt · (f'(r) · bu − e)`, then soft thresholding at `dt · l1` when `l1 > 0`.
pub fn pc_infer_update(kind: i32, dt: f64, l1: f64, e: &[f64], bu: &[f64], r: &mut [f64]) {
    assert!(r.len() == e.len() && r.len() == bu.len(), "r, e and bu must have the same length");
    let n = len_u32(r.len());
    // SAFETY: the kernel touches index t < n = r.len() = e.len() = bu.len() of each array only.
    unsafe { nt_host_pc_infer_update(n, kind, dt, l1, e.as_ptr(), bu.as_ptr(), r.as_mut_ptr()) }
}

/// `pc_learn`: for every existing entry (i, j), `vals += eta · Σ_b e[b, i] · fr[b, j]` (sum over b in order
/// from 0; `e`: batch × rows, `fr`: batch × cols).
pub fn pc_learn(w: PcCsr<'_>, batch: usize, eta: f64, e: &[f64], fr: &[f64], vals: &mut [f64]) {
    w.check(vals.len());
    assert_eq!(e.len(), batch_len(batch, w.rows), "e must be batch × rows");
    assert_eq!(fr.len(), batch_len(batch, w.cols), "fr must be batch × cols");
    // SAFETY: CSR structure checked; thread i < rows reads e[b·rows + i] (< e.len()), fr[b·cols + j] with
    // j = col_idx[k] < cols (< fr.len()) and updates vals[k] for k in its own row (< nnz); rows are disjoint.
    unsafe {
        nt_host_pc_learn(
            len_u32(w.rows),
            len_u32(w.cols),
            len_u32(batch),
            w.row_ptr.as_ptr(),
            w.col_idx.as_ptr(),
            eta,
            e.as_ptr(),
            fr.as_ptr(),
            vals.as_mut_ptr(),
        )
    }
}

/// `pc_col_normalize`: scales each non-empty column to Euclidean norm `target`.
pub fn pc_col_normalize(w: PcCsr<'_>, target: f64, vals: &mut [f64]) {
    w.check(vals.len());
    // SAFETY: transpose index checked (t_ptr within 0..=nnz, t_perm < nnz = vals.len()); thread j < cols
    // touches only vals[t_perm[k]] of its own column; t_perm is a checked permutation, so columns are disjoint.
    unsafe { nt_host_pc_col_normalize(len_u32(w.cols), w.t_ptr.as_ptr(), w.t_perm.as_ptr(), target, vals.as_mut_ptr()) }
}
