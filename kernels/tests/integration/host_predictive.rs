//! The host-built predictive-coding kernels (`cuda/predictive.cu`) against straightforward Rust references
//! written from the kernel documentation (same operations in the same order, so equality is exact), on a
//! small irregular CSR matrix with empty rows and columns and a batch of 3.

#![allow(clippy::needless_range_loop)] // index loops mirror the kernels

use neurotwin_kernels::host::{
    PC_LINEAR, PC_RELU, PcCsr, pc_activate, pc_col_normalize, pc_error, pc_infer_update, pc_learn, pc_spmm, pc_spmm_t,
};

struct Mat {
    rows: usize,
    cols: usize,
    row_ptr: Vec<u32>,
    col_idx: Vec<u32>,
    vals: Vec<f64>,
    t_ptr: Vec<u32>,
    t_row: Vec<u32>,
    t_perm: Vec<u32>,
}

impl Mat {
    /// Entries (row, col, value), given sorted by row then column.
    fn new(rows: usize, cols: usize, entries: &[(u32, u32, f64)]) -> Self {
        let mut row_ptr = vec![0u32; rows + 1];
        for &(i, _, _) in entries {
            row_ptr[i as usize + 1] += 1;
        }
        for i in 0..rows {
            row_ptr[i + 1] += row_ptr[i];
        }
        let mut t_ptr = vec![0u32; cols + 1];
        for &(_, j, _) in entries {
            t_ptr[j as usize + 1] += 1;
        }
        for j in 0..cols {
            t_ptr[j + 1] += t_ptr[j];
        }
        let mut fill = t_ptr.clone();
        let (mut t_row, mut t_perm) = (vec![0; entries.len()], vec![0; entries.len()]);
        for (k, &(i, j, _)) in entries.iter().enumerate() {
            let p = fill[j as usize] as usize;
            fill[j as usize] += 1;
            t_row[p] = i;
            t_perm[p] = k as u32;
        }
        Self {
            rows,
            cols,
            row_ptr,
            col_idx: entries.iter().map(|e| e.1).collect(),
            vals: entries.iter().map(|e| e.2).collect(),
            t_ptr,
            t_row,
            t_perm,
        }
    }
    fn view(&self) -> PcCsr<'_> {
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
}

/// 4 × 5, row 2 and column 3 empty.
fn mat() -> Mat {
    Mat::new(
        4,
        5,
        &[(0, 0, 0.5), (0, 2, -1.25), (0, 4, 0.3), (1, 1, 2.0), (1, 2, 0.1), (3, 0, -0.7), (3, 1, 0.2), (3, 4, 1.9)],
    )
}

fn seq(n: usize, a: f64) -> Vec<f64> {
    (0..n).map(|k| ((k as f64 + 1.0) * a).sin()).collect()
}

#[test]
fn spmm_and_transpose_match_reference() {
    let m = mat();
    let b = 3;
    let x = seq(b * m.cols, 0.7);
    let mut y = vec![f64::NAN; b * m.rows];
    pc_spmm(m.view(), &m.vals, b, &x, &mut y);
    for s in 0..b {
        for i in 0..m.rows {
            let mut acc = 0.0f64;
            for k in m.row_ptr[i] as usize..m.row_ptr[i + 1] as usize {
                acc += m.vals[k] * x[s * m.cols + m.col_idx[k] as usize];
            }
            assert_eq!(y[s * m.rows + i].to_bits(), acc.to_bits(), "spmm ({s}, {i})");
        }
    }
    let xt = seq(b * m.rows, 1.3);
    let mut yt = vec![f64::NAN; b * m.cols];
    pc_spmm_t(m.view(), &m.vals, b, &xt, &mut yt);
    let dense: Vec<f64> = {
        let mut d = vec![0.0; m.rows * m.cols];
        for i in 0..m.rows {
            for k in m.row_ptr[i] as usize..m.row_ptr[i + 1] as usize {
                d[i * m.cols + m.col_idx[k] as usize] = m.vals[k];
            }
        }
        d
    };
    for s in 0..b {
        for j in 0..m.cols {
            // Rows ascending, skipping absent entries: the same sum as the kernel's.
            let mut acc = 0.0f64;
            for i in 0..m.rows {
                if (m.row_ptr[i]..m.row_ptr[i + 1]).any(|k| m.col_idx[k as usize] == j as u32) {
                    acc += dense[i * m.cols + j] * xt[s * m.rows + i];
                }
            }
            assert_eq!(yt[s * m.cols + j].to_bits(), acc.to_bits(), "spmm_t ({s}, {j})");
        }
    }
    assert!(yt[3] == 0.0 && yt[m.cols + 3] == 0.0, "empty column gives 0");
}

#[test]
fn elementwise_kernels_match_reference() {
    let r = vec![-1.5, -0.0, 0.0, 0.2, 3.0, -0.05];
    let mut fr = vec![f64::NAN; r.len()];
    pc_activate(PC_RELU, &r, &mut fr);
    assert_eq!(fr, vec![0.0, 0.0, 0.0, 0.2, 3.0, 0.0]);
    pc_activate(PC_LINEAR, &r, &mut fr);
    assert_eq!(fr, r);

    let mu = seq(r.len(), 0.9);
    let mut e = vec![f64::NAN; r.len()];
    pc_error(0.75, &r, &mu, &mut e);
    for t in 0..r.len() {
        assert_eq!(e[t].to_bits(), (0.75 * (r[t] - mu[t])).to_bits());
    }

    let bu = seq(r.len(), 2.1);
    for (kind, l1) in [(PC_LINEAR, 0.0), (PC_RELU, 0.0), (PC_LINEAR, 0.8), (PC_RELU, 2.5)] {
        let mut out = r.clone();
        pc_infer_update(kind, 0.1, l1, &e, &bu, &mut out);
        for t in 0..r.len() {
            let fp = if kind == PC_RELU && r[t] <= 0.0 { 0.0 } else { 1.0 };
            let mut v = r[t] + 0.1 * (fp * bu[t] - e[t]);
            if l1 > 0.0 {
                let thr = 0.1 * l1;
                v = if v > thr {
                    v - thr
                } else if v < -thr {
                    v + thr
                } else {
                    0.0
                };
            }
            assert_eq!(out[t].to_bits(), v.to_bits(), "infer_update kind {kind} l1 {l1} t {t}");
        }
    }
}

#[test]
fn learning_and_normalisation_match_reference() {
    let m = mat();
    let b = 3;
    let e = seq(b * m.rows, 0.4);
    let fr = seq(b * m.cols, 1.7);
    let mut vals = m.vals.clone();
    pc_learn(m.view(), b, 0.05, &e, &fr, &mut vals);
    for i in 0..m.rows {
        for k in m.row_ptr[i] as usize..m.row_ptr[i + 1] as usize {
            let j = m.col_idx[k] as usize;
            let mut acc = 0.0f64;
            for s in 0..b {
                acc += e[s * m.rows + i] * fr[s * m.cols + j];
            }
            assert_eq!(vals[k].to_bits(), (m.vals[k] + 0.05 * acc).to_bits(), "learn entry {k}");
        }
    }
    let before = vals.clone();
    pc_col_normalize(m.view(), 1.0, &mut vals);
    for j in 0..m.cols {
        let ks: Vec<usize> = (m.t_ptr[j]..m.t_ptr[j + 1]).map(|p| m.t_perm[p as usize] as usize).collect();
        let ss = ks.iter().fold(0.0f64, |a, &k| a + before[k] * before[k]);
        for &k in &ks {
            assert_eq!(vals[k].to_bits(), (before[k] * (1.0 / ss.sqrt())).to_bits(), "normalize entry {k}");
        }
        if !ks.is_empty() {
            let n2: f64 = ks.iter().map(|&k| vals[k] * vals[k]).sum();
            assert!((n2 - 1.0).abs() < 1e-14);
        }
    }
}

#[test]
#[should_panic(expected = "col_idx out of range")]
fn malformed_csr_is_rejected() {
    let mut m = mat();
    m.col_idx[2] = 9;
    let mut y = vec![0.0; m.rows];
    pc_spmm(m.view(), &m.vals, 1, &[0.0; 5], &mut y);
}
