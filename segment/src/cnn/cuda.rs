//! The U-Net layers on a GPU: the kernels of `kernels/cuda/cnn.cu` (kernel unit `cnn`) launched through cudarc on
//! a stream of its own on [`neurotwin_kernels::device::device`]`(0)`, each with the grid its host entry point in
//! `kernels/host/kernels_host_cnn.cpp` uses (one thread per output element, [`THREADS`] per block), so the results
//! are bit-identical to the `cuda-host` and `cpu` backends (no atomics; NVRTC compiles with `--fmad=false`).
//!
//! Activations stay on the device: [`Gpu::upload`] copies the (padded) input block once, every layer allocates its
//! output on the device, and [`Gpu::download`] copies the last one back. The weights of a network are uploaded
//! once per forward pass ([`Gpu::upload_conv`]; not cached across passes). The context has no event tracking, so
//! every operation is ordered on the one stream and [`Gpu::download`] synchronises before returning.
//!
//! Never panics when CUDA is missing: every failure is a [`CnnError::Backend`] with a one-line reason.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DriverError, LaunchConfig, PushKernelArg};
use neurotwin_kernels::device::device;

use super::layers::Conv3d;
use super::{CnnError, Tensor};

/// Threads per block of every CNN launch: `NT_THREADS_PER_BLOCK` of `kernels/host/shim.h`.
const THREADS: u32 = 128;

/// The kernel unit holding the CNN kernels (`kernels/cuda/cnn.cu`).
const UNIT: &str = "cnn";

/// Whether the GPU path can run: `Ok(device name)` when device 0 opens with every kernel unit loaded, else the
/// one-line reason (no driver, no device, no NVRTC and no precompiled cubins, ...).
pub(crate) fn gpu_device_name() -> Result<String, String> {
    device(0).map(|d| d.name().to_string())
}

fn backend_err(what: &str) -> impl Fn(DriverError) -> CnnError + '_ {
    move |e| CnnError::Backend(format!("CUDA {what}: {e}"))
}

/// `n` as the kernels' 32-bit element count, or a one-line reason.
fn count_u32(n: usize) -> Result<u32, CnnError> {
    u32::try_from(n).map_err(|_| {
        CnnError::Backend(format!("a tensor of {n} elements is too large for the CUDA kernels (limit 2^32 - 1)"))
    })
}

/// The 1-D grid of the host entry points: `ceil(n / THREADS)` blocks of [`THREADS`] threads.
fn grid(n: u32) -> LaunchConfig {
    LaunchConfig { grid_dim: (n.div_ceil(THREADS), 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// Elements of `c × dims`, checked to fit the kernels' 32-bit indexing.
fn elements(c: usize, dims: [usize; 3]) -> Result<u32, CnnError> {
    let n = [c, dims[0], dims[1], dims[2]].iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    count_u32(n.unwrap_or(usize::MAX))
}

/// An f32 tensor resident on the device, `[c, z, y, x]` (x fastest), as [`Tensor`].
pub(crate) struct DevTensor {
    shape: [usize; 4],
    buf: CudaSlice<f32>,
}

impl DevTensor {
    /// Number of channels.
    pub(crate) fn channels(&self) -> usize {
        self.shape[0]
    }

    /// Spatial dimensions `[z, y, x]`.
    pub(crate) fn dims(&self) -> [usize; 3] {
        [self.shape[1], self.shape[2], self.shape[3]]
    }
}

/// A [`Conv3d`]'s weights and bias on the device.
pub(crate) struct DevConv {
    cin: usize,
    cout: usize,
    kernel: [usize; 3],
    weight: CudaSlice<f32>,
    bias: CudaSlice<f32>,
}

/// One forward pass's stream with the CNN entry points of the `cnn` unit.
pub(crate) struct Gpu {
    stream: Arc<CudaStream>,
    conv: CudaFunction,
    relu: CudaFunction,
    sigmoid: CudaFunction,
    maxpool: CudaFunction,
    upsample: CudaFunction,
    concat: CudaFunction,
}

impl Gpu {
    /// Opens (or reuses) device 0 and creates a stream; `Err` is the one-line reason the GPU is unusable.
    pub(crate) fn open() -> Result<Self, CnnError> {
        let dev = device(0).map_err(|why| CnnError::Backend(format!("--cnn-backend cuda: no usable GPU: {why}")))?;
        let f = |name: &str| dev.function(UNIT, name).map_err(CnnError::Backend);
        Ok(Self {
            stream: dev.new_stream().map_err(CnnError::Backend)?,
            conv: f("cnn_conv3d_same")?,
            relu: f("cnn_relu")?,
            sigmoid: f("cnn_sigmoid")?,
            maxpool: f("cnn_maxpool3d")?,
            upsample: f("cnn_upsample_nearest3d")?,
            concat: f("cnn_concat_channels")?,
        })
    }

    /// Copies `t` to the device (ordered on the stream).
    pub(crate) fn upload(&self, t: &Tensor) -> Result<DevTensor, CnnError> {
        let d = t.dims();
        elements(t.channels(), d)?;
        let buf = self.stream.clone_htod(t.data()).map_err(backend_err("upload"))?;
        Ok(DevTensor { shape: t.shape(), buf })
    }

    /// Copies a convolution's weights and bias to the device.
    pub(crate) fn upload_conv(&self, c: &Conv3d) -> Result<DevConv, CnnError> {
        count_u32(c.weight().len())?;
        let weight = self.stream.clone_htod(c.weight()).map_err(backend_err("weight upload"))?;
        let bias = self.stream.clone_htod(c.bias()).map_err(backend_err("bias upload"))?;
        Ok(DevConv { cin: c.in_channels(), cout: c.out_channels(), kernel: c.kernel(), weight, bias })
    }

    /// Copies `t` back to the host, after everything queued before it (synchronises the stream).
    pub(crate) fn download(&self, t: &DevTensor) -> Result<Tensor, CnnError> {
        let mut data = vec![0f32; t.buf.len()];
        self.stream.memcpy_dtoh(&t.buf, &mut data).map_err(backend_err("download"))?;
        self.stream.synchronize().map_err(backend_err("synchronize"))?;
        Tensor::new(t.shape, data)
    }

    fn alloc(&self, shape: [usize; 4]) -> Result<DevTensor, CnnError> {
        let n = elements(shape[0], [shape[1], shape[2], shape[3]])?;
        let buf = self.stream.alloc_zeros::<f32>(n as usize).map_err(backend_err("allocation"))?;
        Ok(DevTensor { shape, buf })
    }

    /// `cnn_conv3d_same` of `x` (`c.cin` channels) into a new `c.cout`-channel tensor.
    pub(crate) fn conv(&self, c: &DevConv, x: &DevTensor) -> Result<DevTensor, CnnError> {
        let d = x.dims();
        if x.channels() != c.cin {
            return Err(CnnError::Shape(format!("Conv3d expects {} input channels, got {}", c.cin, x.channels())));
        }
        let mut out = self.alloc([c.cout, d[0], d[1], d[2]])?;
        let n = elements(c.cout, d)?;
        if n == 0 {
            return Ok(out);
        }
        let [cin, cout, nz, ny, nx, kz, ky, kx] =
            [c.cin, c.cout, d[0], d[1], d[2], c.kernel[0], c.kernel[1], c.kernel[2]].map(|v| v as u32);
        let mut l = self.stream.launch_builder(&self.conv);
        l.arg(&cin).arg(&cout).arg(&nz).arg(&ny).arg(&nx).arg(&kz).arg(&ky).arg(&kx);
        l.arg(&x.buf).arg(&c.weight).arg(&c.bias).arg(&mut out.buf);
        // SAFETY: the argument types match cnn_conv3d_same's (8 × unsigned int, 3 × const float*, float*); x holds
        // cin·nz·ny·nx, weight cout·cin·kz·ky·kx (Conv3d::new checked it), bias cout and out cout·nz·ny·nx elements,
        // all < 2^32; the grid covers n = cout·nz·ny·nx threads, each writing out[t] for t < n and reading only
        // in-volume taps.
        unsafe { l.launch(grid(n)) }.map_err(backend_err("launch of cnn_conv3d_same"))?;
        Ok(out)
    }

    /// `cnn_relu` in place.
    pub(crate) fn relu(&self, x: &mut DevTensor) -> Result<(), CnnError> {
        self.pointwise(&self.relu, "cnn_relu", x)
    }

    /// `cnn_sigmoid` in place (the deterministic exponential of `detmath.cuh`).
    pub(crate) fn sigmoid(&self, x: &mut DevTensor) -> Result<(), CnnError> {
        self.pointwise(&self.sigmoid, "cnn_sigmoid", x)
    }

    fn pointwise(&self, f: &CudaFunction, name: &str, x: &mut DevTensor) -> Result<(), CnnError> {
        let n = count_u32(x.buf.len())?;
        if n == 0 {
            return Ok(());
        }
        let mut l = self.stream.launch_builder(f);
        l.arg(&n).arg(&mut x.buf);
        // SAFETY: (unsigned int n, float* x) as the kernel declares; thread t touches x[t] only for t < n = x.len().
        unsafe { l.launch(grid(n)) }.map_err(|e| CnnError::Backend(format!("CUDA launch of {name}: {e}")))?;
        Ok(())
    }

    /// `cnn_maxpool3d` with window = stride = `factor` (each dimension a multiple of its factor).
    pub(crate) fn maxpool(&self, factor: [usize; 3], x: &DevTensor) -> Result<DevTensor, CnnError> {
        let (c, d) = (x.channels(), x.dims());
        if factor.contains(&0) || (0..3).any(|a| !d[a].is_multiple_of(factor[a])) {
            return Err(CnnError::Shape(format!("MaxPool3d factor {factor:?} must be > 0 and divide the dims {d:?}")));
        }
        let od = [d[0] / factor[0], d[1] / factor[1], d[2] / factor[2]];
        let mut out = self.alloc([c, od[0], od[1], od[2]])?;
        let n = elements(c, od)?;
        if n == 0 {
            return Ok(out);
        }
        let [c, nz, ny, nx, fz, fy, fx] = [c, d[0], d[1], d[2], factor[0], factor[1], factor[2]].map(|v| v as u32);
        let mut l = self.stream.launch_builder(&self.maxpool);
        l.arg(&c).arg(&nz).arg(&ny).arg(&nx).arg(&fz).arg(&fy).arg(&fx).arg(&x.buf).arg(&mut out.buf);
        // SAFETY: (7 × unsigned int, const float*, float*) as the kernel declares; x holds c·nz·ny·nx and out
        // c·(nz/fz)·(ny/fy)·(nx/fx) elements (< 2^32); the factors divide the dims, so each window of output t < n
        // lies inside its input channel.
        unsafe { l.launch(grid(n)) }.map_err(backend_err("launch of cnn_maxpool3d"))?;
        Ok(out)
    }

    /// `cnn_upsample_nearest3d` by `factor`.
    pub(crate) fn upsample(&self, factor: [usize; 3], x: &DevTensor) -> Result<DevTensor, CnnError> {
        let (c, d) = (x.channels(), x.dims());
        if factor.contains(&0) {
            return Err(CnnError::Shape(format!("Upsample factor {factor:?} must be > 0")));
        }
        let ud = [d[0] * factor[0], d[1] * factor[1], d[2] * factor[2]];
        let mut out = self.alloc([c, ud[0], ud[1], ud[2]])?;
        let n = elements(c, ud)?;
        if n == 0 {
            return Ok(out);
        }
        let [c, nz, ny, nx, fz, fy, fx] = [c, d[0], d[1], d[2], factor[0], factor[1], factor[2]].map(|v| v as u32);
        let mut l = self.stream.launch_builder(&self.upsample);
        l.arg(&c).arg(&nz).arg(&ny).arg(&nx).arg(&fz).arg(&fy).arg(&fx).arg(&x.buf).arg(&mut out.buf);
        // SAFETY: (7 × unsigned int, const float*, float*) as the kernel declares; out holds n = c·nz·fz·ny·fy·nx·fx
        // elements (< 2^32) and output t reads input (ch, z/fz, y/fy, x/fx), inside x's c·nz·ny·nx elements.
        unsafe { l.launch(grid(n)) }.map_err(backend_err("launch of cnn_upsample_nearest3d"))?;
        Ok(out)
    }

    /// `cnn_concat_channels`: `[a; b]` along channels (same spatial dimensions).
    pub(crate) fn concat(&self, a: &DevTensor, b: &DevTensor) -> Result<DevTensor, CnnError> {
        let d = a.dims();
        if d != b.dims() {
            return Err(CnnError::Shape(format!("concat of dims {:?} and {:?}", d, b.dims())));
        }
        let mut out = self.alloc([a.channels() + b.channels(), d[0], d[1], d[2]])?;
        let n = count_u32(out.buf.len())?;
        if n == 0 {
            return Ok(out);
        }
        let [ca, cb, nvox] = [a.channels(), b.channels(), d[0] * d[1] * d[2]].map(|v| v as u32);
        let mut l = self.stream.launch_builder(&self.concat);
        l.arg(&ca).arg(&cb).arg(&nvox).arg(&a.buf).arg(&b.buf).arg(&mut out.buf);
        // SAFETY: (3 × unsigned int, 2 × const float*, float*) as the kernel declares; a holds ca·nvox, b cb·nvox and
        // out n = (ca + cb)·nvox elements (< 2^32); output t reads a[t] for t < ca·nvox, else b[t - ca·nvox].
        unsafe { l.launch(grid(n)) }.map_err(backend_err("launch of cnn_concat_channels"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grid is the host entry points' `nt_grid_1d(n, 128)`: enough 128-thread blocks to cover n, no more.
    #[test]
    fn grid_covers_every_element_with_the_host_block_size() {
        for (n, blocks) in [(1u32, 1u32), (128, 1), (129, 2), (1000, 8), (u32::MAX, 33_554_432)] {
            let g = grid(n);
            assert_eq!(g.grid_dim, (blocks, 1, 1), "n = {n}");
            assert_eq!(g.block_dim, (128, 1, 1));
            assert!(u64::from(blocks) * 128 >= u64::from(n) && u64::from(blocks - 1) * 128 < u64::from(n));
        }
    }

    /// A kernel parameter as the launches above push it: `unsigned int` (a `u32` scalar) or a device pointer.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Param {
        U32,
        Ptr,
    }
    use Param::{Ptr, U32};

    /// The argument lists of [`Gpu::conv`], [`Gpu::pointwise`] (relu, sigmoid), [`Gpu::maxpool`],
    /// [`Gpu::upsample`] and [`Gpu::concat`], in push order.
    const PUSHED: [(&str, &[Param]); 6] = [
        ("cnn_conv3d_same", &[U32, U32, U32, U32, U32, U32, U32, U32, Ptr, Ptr, Ptr, Ptr]),
        ("cnn_relu", &[U32, Ptr]),
        ("cnn_sigmoid", &[U32, Ptr]),
        ("cnn_maxpool3d", &[U32, U32, U32, U32, U32, U32, U32, Ptr, Ptr]),
        ("cnn_upsample_nearest3d", &[U32, U32, U32, U32, U32, U32, U32, Ptr, Ptr]),
        ("cnn_concat_channels", &[U32, U32, U32, Ptr, Ptr, Ptr]),
    ];

    /// The `.param` types of entry `name` in NVRTC's PTX: `.u32` → `U32`, `.u64` (a 64-bit pointer) → `Ptr`.
    fn ptx_params(ptx: &str, name: &str) -> Vec<Param> {
        let start = ptx.find(&format!(".entry {name}(")).unwrap_or_else(|| panic!("no entry {name} in the PTX"));
        let body = &ptx[start..start + ptx[start..].find(')').expect("end of the parameter list")];
        body.lines()
            .filter_map(|l| l.trim().strip_prefix(".param "))
            .map(|p| match p.split_whitespace().next() {
                Some(".u32") => U32,
                Some(".u64") => Ptr,
                other => panic!("{name}: unexpected parameter type {other:?}"),
            })
            .collect()
    }

    /// The launches push exactly the parameters `kernels/cuda/cnn.cu` declares (count, order, 32-bit scalars vs
    /// pointers), read from the PTX NVRTC makes of the `cnn` unit: a signature change in the `.cu` file without
    /// the matching launch change fails here, without a GPU. Skipped (with a message) where libnvrtc is absent.
    #[test]
    fn launch_arguments_match_the_ptx_signatures() {
        if !neurotwin_kernels::nvrtc::nvrtc_present() {
            eprintln!("SKIP: libnvrtc not loadable (run scripts/setup-cuda-tools.sh and set LD_LIBRARY_PATH)");
            return;
        }
        let unit = neurotwin_kernels::KERNELS.iter().find(|k| k.name == UNIT).expect("the cnn unit");
        let target = neurotwin_kernels::arch::Target::Ptx { compute: 80 };
        let ptx = neurotwin_kernels::nvrtc::compile_unit(unit, target).unwrap().ptx_text().unwrap();
        assert_eq!(unit.entry_points.len(), PUSHED.len(), "every entry point of the unit is launched");
        for (name, params) in PUSHED {
            assert!(unit.entry_points.contains(&name), "{name}");
            assert_eq!(ptx_params(&ptx, name), params, "{name}");
        }
    }

    /// Element counts beyond the kernels' 32-bit indexing are a one-line error, not a wrapped launch.
    #[test]
    fn oversized_tensors_are_refused() {
        assert_eq!(elements(3, [4, 5, 6]).unwrap(), 360);
        let e = elements(2, [1 << 16, 1 << 8, 1 << 8]).unwrap_err().to_string();
        assert!(e.contains("too large for the CUDA kernels") && !e.contains('\n'), "{e}");
        assert!(elements(usize::MAX, [2, 1, 1]).is_err());
    }
}
