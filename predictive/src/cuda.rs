//! The GPU backend ([`Cuda`]): every [`Backend`] operation launches the matching kernel of `cuda/predictive.cu`
//! (`neurotwin_kernels::PREDICTIVE`, unit `predictive`) on a CUDA device opened through the per-process cache
//! [`neurotwin_kernels::device::device`], with exactly the 1-D grid of the host build (128 threads per block,
//! `⌈n / 128⌉` blocks, one thread per output element; `kernels/host/kernels_host_predictive.cpp`). The kernels
//! have no atomics and NVRTC compiles them with `--fmad=false`, so results are bit-identical to [`Cpu`] and
//! [`HostKernels`].
//!
//! First version: each operation uploads its inputs (including the CSR structure), launches one kernel,
//! downloads its outputs and synchronises the stream; nothing stays resident on the device between calls.
//! Device-resident tensors are a later optimisation.
//!
//! Building never panics when CUDA is missing: [`Cuda::new`] returns a one-line reason (no libcuda, no device,
//! no NVRTC and no precompiled cubins, a module-load failure). A CUDA error *after* the device opened (out of
//! memory, a lost device) panics with a one-line message, since [`Backend`]'s operations return nothing.
//!
//! [`Cpu`]: crate::backend::Cpu
//! [`HostKernels`]: crate::backend::HostKernels

use std::sync::{Arc, Mutex, PoisonError};

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits};
use neurotwin_kernels::device::Device;

use crate::backend::Backend;
use crate::csr::Csr;
use crate::model::Activation;

/// Threads per block of every predictive-coding launch (`NT_THREADS_PER_BLOCK` of the host build).
const THREADS_PER_BLOCK: u32 = 128;

/// Name of the kernel unit (`neurotwin_kernels::PREDICTIVE.name`).
const UNIT: &str = "predictive";

/// The entry points of the `predictive` unit.
struct Kernels {
    activate: CudaFunction,
    spmm: CudaFunction,
    spmm_t: CudaFunction,
    error: CudaFunction,
    infer_update: CudaFunction,
    learn: CudaFunction,
    col_normalize: CudaFunction,
}

impl Kernels {
    fn load(device: &Device) -> Result<Self, String> {
        let f = |name: &str| device.function(UNIT, name);
        Ok(Self {
            activate: f("pc_activate")?,
            spmm: f("pc_spmm")?,
            spmm_t: f("pc_spmm_t")?,
            error: f("pc_error")?,
            infer_update: f("pc_infer_update")?,
            learn: f("pc_learn")?,
            col_normalize: f("pc_col_normalize")?,
        })
    }
}

/// Predictive coding on a CUDA GPU (see the module documentation).
pub struct Cuda {
    device: Arc<Device>,
    /// The backend's own stream; the lock makes each operation (upload, launch, download, synchronise) atomic
    /// when the backend is shared between threads.
    stream: Mutex<Arc<CudaStream>>,
    kernels: Kernels,
}

impl std::fmt::Debug for Cuda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cuda({:?})", self.device)
    }
}

impl Cuda {
    /// The backend on device 0. `Err` is the device's one-line reason when no usable GPU is there.
    pub fn new() -> Result<Self, String> {
        Self::on(0)
    }

    /// The backend on device `ordinal`, with its own stream. `Err` is a one-line reason.
    pub fn on(ordinal: usize) -> Result<Self, String> {
        let device = neurotwin_kernels::device::device(ordinal)?;
        let kernels = Kernels::load(&device)?;
        let stream = device.new_stream()?;
        Ok(Self { device, stream: Mutex::new(stream), kernels })
    }

    /// The device's name (e.g. "NVIDIA H100 80GB HBM3").
    pub fn device_name(&self) -> &str {
        self.device.name()
    }

    /// Runs `op` on the backend's stream, panicking with a one-line message if the driver fails.
    fn run(&self, what: &str, op: impl FnOnce(&Arc<CudaStream>) -> Result<(), String>) {
        let stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = op(&stream) {
            panic!("predictive coding on the GPU ({}): {what} failed: {e}", self.device.name());
        }
    }
}

/// The host build's launch shape for `n` output elements: `⌈n / 128⌉` blocks of 128 threads.
fn grid(n: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(THREADS_PER_BLOCK), 1, 1),
        block_dim: (THREADS_PER_BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `n` as the kernels' `unsigned int`; panics (like the host wrappers) when it does not fit.
fn u32_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("{n} elements exceed the kernels' 32-bit indices"))
}

/// `batch · n`, checked to fit the kernels' 32-bit thread index.
fn batch_len(batch: usize, n: usize) -> u32 {
    u32_len(batch.checked_mul(n).expect("batch size overflows usize"))
}

/// A device copy of `data` (one zero element when `data` is empty: CUDA cannot allocate 0 bytes, and the
/// kernels never read an empty array).
fn upload<T: DeviceRepr + ValidAsZeroBits>(stream: &Arc<CudaStream>, data: &[T]) -> Result<CudaSlice<T>, String> {
    let copy = if data.is_empty() { stream.alloc_zeros(1) } else { stream.clone_htod(data) };
    copy.map_err(|e| format!("copy to the device: {e}"))
}

/// A device array of `len` zeros for a kernel's output (at least one element, as for [`upload`]).
fn zeros(stream: &Arc<CudaStream>, len: usize) -> Result<CudaSlice<f64>, String> {
    stream.alloc_zeros(len.max(1)).map_err(|e| format!("device allocation: {e}"))
}

/// Copies `src` (at least `dst.len()` elements) into `dst` and waits for the stream.
fn download(stream: &Arc<CudaStream>, src: &CudaSlice<f64>, dst: &mut [f64]) -> Result<(), String> {
    let src = src.slice(0..dst.len());
    stream.memcpy_dtoh(&src, dst).map_err(|e| format!("copy from the device: {e}"))?;
    stream.synchronize().map_err(|e| format!("stream synchronisation: {e}"))
}

fn check_ptr(ptr: &[u32], n: usize, nnz: usize, what: &str) {
    assert_eq!(ptr.len(), n + 1, "{what}: pointer array must have n + 1 entries");
    assert_eq!(ptr[0], 0, "{what}: pointer array must start at 0");
    assert!(ptr.windows(2).all(|w| w[0] <= w[1]), "{what}: pointer array must be non-decreasing");
    assert_eq!(ptr[n] as usize, nnz, "{what}: pointer array must end at nnz");
}

/// Checks the CSR structure the kernels index with (so device reads and writes stay in bounds); panics when
/// it is invalid, like the host wrappers of `neurotwin_kernels::host`.
fn check_csr(w: &Csr) {
    let nnz = w.vals.len();
    u32_len(w.rows);
    u32_len(w.cols);
    u32_len(nnz);
    assert!(
        w.col_idx.len() == nnz && w.t_row.len() == nnz && w.t_perm.len() == nnz,
        "CSR arrays must have nnz entries"
    );
    check_ptr(&w.row_ptr, w.rows, nnz, "row_ptr");
    check_ptr(&w.t_ptr, w.cols, nnz, "t_ptr");
    assert!(w.col_idx.iter().all(|&c| (c as usize) < w.cols), "col_idx out of range");
    assert!(w.t_row.iter().all(|&r| (r as usize) < w.rows), "t_row out of range");
    assert!(w.t_perm.iter().all(|&p| (p as usize) < nnz), "t_perm out of range");
    let mut seen = vec![false; nnz];
    for &p in &w.t_perm {
        assert!(!std::mem::replace(&mut seen[p as usize], true), "t_perm must be a permutation");
    }
}

/// The kernels' activation code.
fn kind(act: Activation) -> i32 {
    match act {
        Activation::Linear => neurotwin_kernels::host::PC_LINEAR,
        Activation::Relu => neurotwin_kernels::host::PC_RELU,
    }
}

fn launch_err(name: &str) -> impl FnOnce(cudarc::driver::DriverError) -> String + '_ {
    move |e| format!("launch of {name}: {e}")
}

impl Backend for Cuda {
    fn activate(&self, act: Activation, r: &[f64], fr: &mut [f64]) {
        assert_eq!(r.len(), fr.len());
        let n = u32_len(r.len());
        if n == 0 {
            return;
        }
        self.run("pc_activate", |s| {
            let r_d = upload(s, r)?;
            let mut fr_d = zeros(s, fr.len())?;
            let k = kind(act);
            let mut l = s.launch_builder(&self.kernels.activate);
            l.arg(&n).arg(&k).arg(&r_d).arg(&mut fr_d);
            // SAFETY: argument types match `pc_activate(unsigned, int, const double*, double*)`; r_d and fr_d
            // hold n doubles and thread t < n touches index t only.
            unsafe { l.launch(grid(n)) }.map_err(launch_err("pc_activate"))?;
            download(s, &fr_d, fr)
        });
    }

    fn spmm(&self, w: &Csr, batch: usize, x: &[f64], y: &mut [f64]) {
        check_csr(w);
        assert_eq!(x.len(), batch * w.cols);
        assert_eq!(y.len(), batch * w.rows);
        let n = batch_len(batch, w.rows);
        batch_len(batch, w.cols);
        if n == 0 {
            return;
        }
        let (rows, cols, b) = (u32_len(w.rows), u32_len(w.cols), u32_len(batch));
        self.run("pc_spmm", |s| {
            let (row_ptr, col_idx, vals) = (upload(s, &w.row_ptr)?, upload(s, &w.col_idx)?, upload(s, &w.vals)?);
            let x_d = upload(s, x)?;
            let mut y_d = zeros(s, y.len())?;
            let mut l = s.launch_builder(&self.kernels.spmm);
            l.arg(&rows).arg(&cols).arg(&b).arg(&row_ptr).arg(&col_idx).arg(&vals).arg(&x_d).arg(&mut y_d);
            // SAFETY: argument types match pc_spmm's (3 × unsigned, 2 × const unsigned*, 2 × const double*,
            // double*); the CSR structure was checked (pointers within 0..=nnz, col_idx < cols), so thread
            // t < rows·batch reads x[b·cols + col] < x.len() and vals[k], k < nnz, and writes y[t] < y.len().
            unsafe { l.launch(grid(n)) }.map_err(launch_err("pc_spmm"))?;
            download(s, &y_d, y)
        });
    }

    fn spmm_t(&self, w: &Csr, batch: usize, x: &[f64], y: &mut [f64]) {
        check_csr(w);
        assert_eq!(x.len(), batch * w.rows);
        assert_eq!(y.len(), batch * w.cols);
        let n = batch_len(batch, w.cols);
        batch_len(batch, w.rows);
        if n == 0 {
            return;
        }
        let (rows, cols, b) = (u32_len(w.rows), u32_len(w.cols), u32_len(batch));
        self.run("pc_spmm_t", |s| {
            let (t_ptr, t_row, t_perm) = (upload(s, &w.t_ptr)?, upload(s, &w.t_row)?, upload(s, &w.t_perm)?);
            let (vals, x_d) = (upload(s, &w.vals)?, upload(s, x)?);
            let mut y_d = zeros(s, y.len())?;
            let mut l = s.launch_builder(&self.kernels.spmm_t);
            l.arg(&rows).arg(&cols).arg(&b).arg(&t_ptr).arg(&t_row).arg(&t_perm).arg(&vals).arg(&x_d).arg(&mut y_d);
            // SAFETY: argument types match pc_spmm_t's; the transpose index was checked (t_ptr within 0..=nnz,
            // t_row < rows, t_perm < nnz), so thread t < cols·batch reads x[b·rows + row] < x.len() and
            // vals[perm] and writes y[t] < y.len().
            unsafe { l.launch(grid(n)) }.map_err(launch_err("pc_spmm_t"))?;
            download(s, &y_d, y)
        });
    }

    fn error(&self, precision: f64, r: &[f64], mu: &[f64], e: &mut [f64]) {
        assert!(r.len() == mu.len() && r.len() == e.len());
        let n = u32_len(r.len());
        if n == 0 {
            return;
        }
        self.run("pc_error", |s| {
            let (r_d, mu_d) = (upload(s, r)?, upload(s, mu)?);
            let mut e_d = zeros(s, e.len())?;
            let mut l = s.launch_builder(&self.kernels.error);
            l.arg(&n).arg(&precision).arg(&r_d).arg(&mu_d).arg(&mut e_d);
            // SAFETY: argument types match `pc_error(unsigned, double, const double*, const double*, double*)`;
            // every array holds n doubles and thread t < n touches index t only.
            unsafe { l.launch(grid(n)) }.map_err(launch_err("pc_error"))?;
            download(s, &e_d, e)
        });
    }

    fn infer_update(&self, act: Activation, dt: f64, l1: f64, e: &[f64], bu: &[f64], r: &mut [f64]) {
        assert!(r.len() == e.len() && r.len() == bu.len());
        let n = u32_len(r.len());
        if n == 0 {
            return;
        }
        self.run("pc_infer_update", |s| {
            let (e_d, bu_d) = (upload(s, e)?, upload(s, bu)?);
            let mut r_d = upload(s, r)?;
            let k = kind(act);
            let mut l = s.launch_builder(&self.kernels.infer_update);
            l.arg(&n).arg(&k).arg(&dt).arg(&l1).arg(&e_d).arg(&bu_d).arg(&mut r_d);
            // SAFETY: argument types match `pc_infer_update(unsigned, int, double, double, const double*,
            // const double*, double*)`; every array holds n doubles and thread t < n touches index t only.
            unsafe { l.launch(grid(n)) }.map_err(launch_err("pc_infer_update"))?;
            download(s, &r_d, r)
        });
    }

    fn learn(&self, w: &mut Csr, batch: usize, eta: f64, e: &[f64], fr: &[f64]) {
        check_csr(w);
        assert_eq!(e.len(), batch * w.rows);
        assert_eq!(fr.len(), batch * w.cols);
        batch_len(batch, w.rows);
        batch_len(batch, w.cols);
        let (rows, cols, b) = (u32_len(w.rows), u32_len(w.cols), u32_len(batch));
        if rows == 0 || w.vals.is_empty() {
            return;
        }
        let (row_ptr, col_idx) = (&w.row_ptr, &w.col_idx);
        let vals = &mut w.vals;
        self.run("pc_learn", |s| {
            let (row_ptr, col_idx) = (upload(s, row_ptr)?, upload(s, col_idx)?);
            let (e_d, fr_d) = (upload(s, e)?, upload(s, fr)?);
            let mut vals_d = upload(s, vals)?;
            let mut l = s.launch_builder(&self.kernels.learn);
            l.arg(&rows).arg(&cols).arg(&b).arg(&row_ptr).arg(&col_idx).arg(&eta).arg(&e_d).arg(&fr_d).arg(&mut vals_d);
            // SAFETY: argument types match pc_learn's (3 × unsigned, 2 × const unsigned*, double, 2 × const
            // double*, double*); CSR structure checked, so thread i < rows reads e[b·rows + i] < e.len() and
            // fr[b·cols + j], j = col_idx[k] < cols, and updates vals[k] of its own row only (rows disjoint).
            unsafe { l.launch(grid(rows)) }.map_err(launch_err("pc_learn"))?;
            download(s, &vals_d, vals)
        });
    }

    fn col_normalize(&self, w: &mut Csr, target: f64) {
        check_csr(w);
        let cols = u32_len(w.cols);
        if cols == 0 || w.vals.is_empty() {
            return;
        }
        let (t_ptr, t_perm) = (&w.t_ptr, &w.t_perm);
        let vals = &mut w.vals;
        self.run("pc_col_normalize", |s| {
            let (t_ptr, t_perm) = (upload(s, t_ptr)?, upload(s, t_perm)?);
            let mut vals_d = upload(s, vals)?;
            let mut l = s.launch_builder(&self.kernels.col_normalize);
            l.arg(&cols).arg(&t_ptr).arg(&t_perm).arg(&target).arg(&mut vals_d);
            // SAFETY: argument types match `pc_col_normalize(unsigned, const unsigned*, const unsigned*,
            // double, double*)`; t_ptr lies within 0..=nnz and t_perm < nnz = vals.len(), so thread j < cols
            // touches only vals[t_perm[k]] of its own column.
            unsafe { l.launch(grid(cols)) }.map_err(launch_err("pc_col_normalize"))?;
            download(s, &vals_d, vals)
        });
    }
}
