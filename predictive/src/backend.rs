//! The two implementations of the per-step operations: [`Cpu`] (Rust, rayon over output elements) and
//! [`HostKernels`] (the CUDA C kernels of `neurotwin_kernels::PREDICTIVE` compiled for the host). Both compute
//! every output element with the same operations in the same order (no fused multiply–add), so they agree bit
//! for bit; the GPU backend ([`crate::cuda::Cuda`]) launches the very same kernels with the same grids.

use std::sync::Arc;

use rayon::prelude::*;

use crate::csr::Csr;
use crate::model::Activation;

/// Minimum elements per rayon task of the elementwise operations (keeps small layers on one thread: below this
/// the cost of waking workers exceeds the work).
const MIN_LEN: usize = 8192;

/// Minimum outputs per rayon task for products whose outputs cost about `per_output` multiply–adds each.
fn min_len_for(per_output: usize) -> usize {
    ((1usize << 15) / per_output.max(1)).max(16)
}

/// Per-step operations of predictive coding. Batches are sample-major (`batch × n`).
pub trait Backend: Sync {
    /// `fr = f(r)`.
    fn activate(&self, act: Activation, r: &[f64], fr: &mut [f64]);
    /// `y[b] = W x[b]`.
    fn spmm(&self, w: &Csr, batch: usize, x: &[f64], y: &mut [f64]);
    /// `y[b] = Wᵀ x[b]`.
    fn spmm_t(&self, w: &Csr, batch: usize, x: &[f64], y: &mut [f64]);
    /// `e = precision (r − mu)`.
    fn error(&self, precision: f64, r: &[f64], mu: &[f64], e: &mut [f64]);
    /// `r = r + dt (f'(r) bu − e)`, then soft threshold at `dt l1` when `l1 > 0`.
    fn infer_update(&self, act: Activation, dt: f64, l1: f64, e: &[f64], bu: &[f64], r: &mut [f64]);
    /// `W[i, j] += eta Σ_b e[b, i] fr[b, j]` on existing entries.
    fn learn(&self, w: &mut Csr, batch: usize, eta: f64, e: &[f64], fr: &[f64]);
    /// Scales each non-empty column of `W` to norm `target`.
    fn col_normalize(&self, w: &mut Csr, target: f64);
}

pub use neurotwin_kernels::backend_kind::BackendKind;

/// The backend object for `kind`, with the kind that actually runs. [`BackendKind::Cuda`] is the GPU
/// ([`crate::cuda::Cuda`] on device 0); without a usable GPU it is refused with the device's one-line reason.
/// [`BackendKind::Auto`] runs on the GPU when device 0 opens, else on the CPU (saying why on stderr).
pub fn backend_for(kind: BackendKind) -> Result<(BackendKind, Arc<dyn Backend>), String> {
    match kind {
        BackendKind::Cpu => Ok((BackendKind::Cpu, Arc::new(Cpu))),
        BackendKind::CudaHost => Ok((BackendKind::CudaHost, Arc::new(HostKernels))),
        BackendKind::Cuda => Ok((BackendKind::Cuda, Arc::new(crate::cuda::Cuda::new()?))),
        BackendKind::Auto => match crate::cuda::Cuda::new() {
            Ok(gpu) => Ok((BackendKind::Cuda, Arc::new(gpu))),
            Err(reason) => {
                eprintln!("note: CUDA backend unavailable ({reason}); running predictive coding on the CPU");
                Ok((BackendKind::Cpu, Arc::new(Cpu)))
            }
        },
    }
}

#[inline]
fn f(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Linear => x,
        Activation::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
    }
}

#[inline]
fn fprime(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Linear => 1.0,
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// The Rust CPU backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

impl Backend for Cpu {
    fn activate(&self, act: Activation, r: &[f64], fr: &mut [f64]) {
        assert_eq!(r.len(), fr.len());
        fr.par_iter_mut().with_min_len(MIN_LEN).zip(r).for_each(|(o, &x)| *o = f(act, x));
    }

    fn spmm(&self, w: &Csr, batch: usize, x: &[f64], y: &mut [f64]) {
        assert_eq!(x.len(), batch * w.cols);
        assert_eq!(y.len(), batch * w.rows);
        let (rows, cols) = (w.rows, w.cols);
        let min_len = min_len_for(w.nnz() / rows.max(1));
        y.par_iter_mut().with_min_len(min_len).enumerate().for_each(|(t, out)| {
            let (b, i) = (t / rows, t % rows);
            let xb = &x[b * cols..(b + 1) * cols];
            let mut acc = 0.0f64;
            for k in w.row_ptr[i] as usize..w.row_ptr[i + 1] as usize {
                acc += w.vals[k] * xb[w.col_idx[k] as usize];
            }
            *out = acc;
        });
    }

    fn spmm_t(&self, w: &Csr, batch: usize, x: &[f64], y: &mut [f64]) {
        assert_eq!(x.len(), batch * w.rows);
        assert_eq!(y.len(), batch * w.cols);
        let (rows, cols) = (w.rows, w.cols);
        let min_len = min_len_for(w.nnz() / cols.max(1));
        y.par_iter_mut().with_min_len(min_len).enumerate().for_each(|(t, out)| {
            let (b, j) = (t / cols, t % cols);
            let xb = &x[b * rows..(b + 1) * rows];
            let mut acc = 0.0f64;
            for k in w.t_ptr[j] as usize..w.t_ptr[j + 1] as usize {
                acc += w.vals[w.t_perm[k] as usize] * xb[w.t_row[k] as usize];
            }
            *out = acc;
        });
    }

    fn error(&self, precision: f64, r: &[f64], mu: &[f64], e: &mut [f64]) {
        assert!(r.len() == mu.len() && r.len() == e.len());
        e.par_iter_mut().with_min_len(MIN_LEN).enumerate().for_each(|(t, o)| *o = precision * (r[t] - mu[t]));
    }

    fn infer_update(&self, act: Activation, dt: f64, l1: f64, e: &[f64], bu: &[f64], r: &mut [f64]) {
        assert!(r.len() == e.len() && r.len() == bu.len());
        r.par_iter_mut().with_min_len(MIN_LEN).enumerate().for_each(|(t, rv)| {
            let x = *rv;
            let g = fprime(act, x) * bu[t] - e[t];
            let mut v = x + dt * g;
            if l1 > 0.0 {
                let thr = dt * l1;
                v = if v > thr {
                    v - thr
                } else if v < -thr {
                    v + thr
                } else {
                    0.0
                };
            }
            *rv = v;
        });
    }

    fn learn(&self, w: &mut Csr, batch: usize, eta: f64, e: &[f64], fr: &[f64]) {
        let (rows, cols) = (w.rows, w.cols);
        assert_eq!(e.len(), batch * rows);
        assert_eq!(fr.len(), batch * cols);
        let (row_of, col_idx) = (&w.row_of, &w.col_idx);
        w.vals.par_iter_mut().with_min_len(min_len_for(batch)).enumerate().for_each(|(k, v)| {
            let (i, j) = (row_of[k] as usize, col_idx[k] as usize);
            let mut acc = 0.0f64;
            for b in 0..batch {
                acc += e[b * rows + i] * fr[b * cols + j];
            }
            *v += eta * acc;
        });
    }

    fn col_normalize(&self, w: &mut Csr, target: f64) {
        let scale: Vec<Option<f64>> = (0..w.cols)
            .into_par_iter()
            .with_min_len(min_len_for(w.nnz() / w.cols.max(1)))
            .map(|j| {
                let mut ss = 0.0f64;
                for k in w.t_ptr[j] as usize..w.t_ptr[j + 1] as usize {
                    let v = w.vals[w.t_perm[k] as usize];
                    ss += v * v;
                }
                (ss > 0.0).then(|| target / ss.sqrt())
            })
            .collect();
        let col_idx = &w.col_idx;
        w.vals.par_iter_mut().with_min_len(MIN_LEN).enumerate().for_each(|(k, v)| {
            if let Some(s) = scale[col_idx[k] as usize] {
                *v *= s;
            }
        });
    }
}

/// The CUDA kernels of `cuda/predictive.cu`, compiled for the host and run sequentially.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostKernels;

fn kind(act: Activation) -> i32 {
    match act {
        Activation::Linear => neurotwin_kernels::host::PC_LINEAR,
        Activation::Relu => neurotwin_kernels::host::PC_RELU,
    }
}

impl Backend for HostKernels {
    fn activate(&self, act: Activation, r: &[f64], fr: &mut [f64]) {
        neurotwin_kernels::host::pc_activate(kind(act), r, fr);
    }
    fn spmm(&self, w: &Csr, batch: usize, x: &[f64], y: &mut [f64]) {
        neurotwin_kernels::host::pc_spmm(w.view(), &w.vals, batch, x, y);
    }
    fn spmm_t(&self, w: &Csr, batch: usize, x: &[f64], y: &mut [f64]) {
        neurotwin_kernels::host::pc_spmm_t(w.view(), &w.vals, batch, x, y);
    }
    fn error(&self, precision: f64, r: &[f64], mu: &[f64], e: &mut [f64]) {
        neurotwin_kernels::host::pc_error(precision, r, mu, e);
    }
    fn infer_update(&self, act: Activation, dt: f64, l1: f64, e: &[f64], bu: &[f64], r: &mut [f64]) {
        neurotwin_kernels::host::pc_infer_update(kind(act), dt, l1, e, bu, r);
    }
    fn learn(&self, w: &mut Csr, batch: usize, eta: f64, e: &[f64], fr: &[f64]) {
        let mut vals = std::mem::take(&mut w.vals);
        neurotwin_kernels::host::pc_learn(w.view(), batch, eta, e, fr, &mut vals);
        w.vals = vals;
    }
    fn col_normalize(&self, w: &mut Csr, target: f64) {
        let mut vals = std::mem::take(&mut w.vals);
        neurotwin_kernels::host::pc_col_normalize(w.view(), target, &mut vals);
        w.vals = vals;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_for_gives_cpu_and_cuda_host_as_asked() {
        assert_eq!(backend_for(BackendKind::Cpu).map(|(k, _)| k), Ok(BackendKind::Cpu));
        assert_eq!(backend_for(BackendKind::CudaHost).map(|(k, _)| k), Ok(BackendKind::CudaHost));
    }

    /// Without a usable GPU, `cuda` is refused with the device's one-line reason and `auto` runs on the CPU;
    /// with one, both run on it.
    #[test]
    fn backend_for_cuda_follows_the_device() {
        match neurotwin_kernels::device::device(0) {
            Err(reason) => {
                let e = backend_for(BackendKind::Cuda).map(|(k, _)| k).unwrap_err();
                assert_eq!(e, reason);
                assert!(!e.is_empty() && !e.contains('\n'), "{e:?}");
                assert_eq!(backend_for(BackendKind::Auto).map(|(k, _)| k), Ok(BackendKind::Cpu));
            }
            Ok(_) => {
                eprintln!("SKIP (no-GPU behaviour): a CUDA device is usable here");
                assert_eq!(backend_for(BackendKind::Cuda).map(|(k, _)| k), Ok(BackendKind::Cuda));
                assert_eq!(backend_for(BackendKind::Auto).map(|(k, _)| k), Ok(BackendKind::Cuda));
            }
        }
    }

    #[test]
    fn backend_for_gives_the_objects_that_compute_the_same_activation() {
        let r = [-1.5, 0.0, 2.25];
        for kind in [BackendKind::Cpu, BackendKind::CudaHost] {
            let (_, b) = backend_for(kind).unwrap();
            let mut fr = [9.0; 3];
            b.activate(Activation::Relu, &r, &mut fr);
            assert_eq!(fr, [0.0, 0.0, 2.25], "{kind}");
        }
    }
}
