//! The `cuda` backend: the shared kernel backend ([`KernelBackend`], `crate::launch`) on a launcher that runs
//! the CUDA C kernels of `neurotwin-kernels` on a GPU, compiled at run time with NVRTC (through cudarc, loading
//! `libcuda` and `libnvrtc` dynamically) and launched on one stream. The launch sequence — order, arguments,
//! grids — is `crate::launch`'s, the one the `cuda-host` backend ([`HostKernelBackend`]) runs on the host, so
//! the host conformance tests cover it; `tests/integration/gpu_conformance.rs` runs the same suite here on a
//! machine with a GPU.
//!
//! No host round trip inside the step loop: the spike flags are compacted on the device into the window's
//! spike record (a hierarchical scan), the step's (spike, 32-synapse piece) items are numbered on the device
//! and `deliver_spikes` spreads them over a fixed grid of warps, and the record (offsets + spike ids) is
//! copied back once per window of up to 100 steps ([`Backend::drain_spikes`]). Host→device copies happen only
//! when the receptor gains or the silenced set change, and for the 16-byte step clock when a window is drained.
//! Each step is one CUDA graph launch: the step's 14–20 kernel launches are captured once per step shape on the
//! backend's own stream and replayed (`crate::launch`; `NEUROTWIN_CUDA_GRAPHS=0` launches them one by one). Not
//! done yet: kernel fusion and a per-neuron state layout tuned for coalescing (the block-major layout is shared
//! with the CPU backend).
//!
//! Building never panics when CUDA is missing: [`CudaBackend::new`] returns
//! [`SimError::BackendUnavailable`] with a one-line reason (no libcuda, no device, no libnvrtc, NVRTC or
//! module-load failure, model without a kernel). [`cuda_status`] reports what is installed.
//!
//! [`HostKernelBackend`]: crate::host_kernels::HostKernelBackend
//! [`Backend::drain_spikes`]: crate::backend::Backend::drain_spikes

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaGraph, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DriverError, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use neurotwin_kernels::arch::Target;
use neurotwin_kernels::device::Device;
use neurotwin_kernels::packs::{self, DevPtr, KernelArgs, KernelFn};
use neurotwin_kernels::{DELIVERY_THREADS, KERNELS, delivery_blocks_for};

use crate::error::SimError;
use crate::launch::{Elem, Grid, KernelBackend, Launcher, Plan};
use crate::setup::SimSetup;

/// What [`cuda_status`] found.
#[derive(Clone, Debug)]
pub struct CudaStatus {
    /// `Ok(driver API version)` if libcuda loads, else why not.
    pub driver: Result<String, String>,
    /// One line per device: ordinal, name, compute capability (empty without a driver or devices).
    pub devices: Vec<String>,
    /// `Ok(NVRTC version)` if libnvrtc loads, else why not.
    pub nvrtc: Result<String, String>,
}

/// Probes the CUDA driver, the devices and NVRTC. Never panics (a failure is reported in the fields).
pub fn cuda_status() -> CudaStatus {
    let (driver, devices) = catch_unwind(probe_driver)
        .unwrap_or_else(|_| (Err("the CUDA driver library panicked while being probed".into()), Vec::new()));
    let nvrtc = catch_unwind(probe_nvrtc).unwrap_or_else(|_| Err("libnvrtc panicked while being probed".into()));
    CudaStatus { driver, devices, nvrtc }
}

fn probe_driver() -> (Result<String, String>, Vec<String>) {
    use cudarc::driver::{result, sys};
    // SAFETY: only tries to dlopen the library by its candidate names.
    if !unsafe { sys::is_culib_present() } {
        return (Err("libcuda could not be loaded (no NVIDIA driver installed)".into()), Vec::new());
    }
    let mut v = 0;
    // SAFETY: the library is present; cuDriverGetVersion writes one int and needs no cuInit.
    let version = match unsafe { sys::cuDriverGetVersion(&mut v) }.result() {
        Ok(()) => format!("CUDA driver API {}.{}", v / 1000, (v % 1000) / 10),
        Err(e) => return (Err(format!("cuDriverGetVersion failed: {e}")), Vec::new()),
    };
    let count = match CudaContext::device_count() {
        Ok(c) => c,
        // cuInit fails with CUDA_ERROR_NO_DEVICE on a machine with a driver but no GPU.
        Err(e) => return (Ok(format!("{version}; no usable device: {e}")), Vec::new()),
    };
    let devices = (0..count)
        .map(|i| {
            let describe = || -> Result<String, result::DriverError> {
                let dev = result::device::get(i)?;
                let name = result::device::get_name(dev)?;
                use sys::CUdevice_attribute::{
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR as MAJOR,
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR as MINOR,
                };
                // SAFETY: `dev` was returned by cuDeviceGet.
                let (major, minor) =
                    unsafe { (result::device::get_attribute(dev, MAJOR)?, result::device::get_attribute(dev, MINOR)?) };
                Ok(format!("#{i}: {name} (compute capability {major}.{minor})"))
            };
            describe().unwrap_or_else(|e| format!("#{i}: cannot query: {e}"))
        })
        .collect();
    (Ok(version), devices)
}

fn probe_nvrtc() -> Result<String, String> {
    use cudarc::nvrtc::sys;
    // SAFETY: only tries to dlopen the library by its candidate names.
    if !unsafe { sys::is_culib_present() } {
        return Err("libnvrtc could not be loaded (install the CUDA toolkit or the nvidia-cuda-nvrtc wheel)".into());
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present; nvrtcVersion writes two ints.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }.result().map_err(|e| format!("nvrtcVersion failed: {e}"))?;
    Ok(format!("NVRTC {major}.{minor}"))
}

/// Device memory the spike record may take: the window is the largest number of steps (at most
/// [`MAX_SPIKE_WINDOW`]) whose worst case (every neuron spiking every step) fits.
const SPIKE_RECORD_BYTES: usize = 256 << 20;
/// Longest window between spike transfers (steps).
const MAX_SPIKE_WINDOW: usize = 100;

/// The `cuda` backend (see the module documentation).
pub type CudaBackend = KernelBackend<CudaLauncher>;

/// Launches each kernel on one stream of device 0 (no synchronisation inside a step); buffers are
/// `CudaSlice`s.
pub struct CudaLauncher {
    /// The backend's own stream: every copy, launch and graph of the backend is ordered on it.
    stream: Arc<CudaStream>,
    /// Every step kernel by entry point name.
    fns: Vec<(&'static str, CudaFunction)>,
    device_name: String,
    /// Whether the stream is being captured.
    capturing: bool,
    /// Blocks of the delivery grid: enough to fill the device (`delivery_blocks_for`).
    delivery_blocks: u32,
}

fn unavailable(reason: impl Into<String>) -> SimError {
    SimError::BackendUnavailable { backend: "cuda".into(), reason: reason.into() }
}

fn driver_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> SimError + '_ {
    move |e| unavailable(format!("{what}: {e}"))
}

fn cfg(g: Grid) -> LaunchConfig {
    LaunchConfig { grid_dim: (g.blocks, 1, 1), block_dim: (g.threads, 1, 1), shared_mem_bytes: 0 }
}

/// Every unit of [`KERNELS`] as PTX for compute capability `major.minor` (`--fmad=false`; through
/// [`neurotwin_kernels::nvrtc`], cached), as `(unit name, file, PTX)`. The backend itself loads cubins (see
/// `neurotwin_kernels::device`); this is the PTX fallback, kept for checks without a GPU. `Err` is a one-line reason (no
/// libnvrtc, compile error).
pub fn compile_kernels(major: i32, minor: i32) -> Result<Vec<(&'static str, &'static str, Ptx)>, String> {
    let compute = neurotwin_kernels::arch::compute_capability(major, minor)?;
    let units = neurotwin_kernels::nvrtc::compile_all(Target::Ptx { compute })?;
    Ok(KERNELS
        .iter()
        .zip(units)
        .map(|(k, (name, c))| (name, k.file, Ptx::from_src(c.ptx_text().unwrap_or_default())))
        .collect())
}

impl KernelBackend<CudaLauncher> {
    /// Builds the backend on device 0. The setup is first validated exactly as the `cuda-host` backend does
    /// ([`Plan::new`]: invalid setups give the same [`SimError::Setup`]); a missing driver, device or NVRTC or
    /// a failed compilation give [`SimError::BackendUnavailable`].
    pub fn new(setup: &SimSetup) -> Result<Self, SimError> {
        let plan = Plan::new(setup, "cuda")?;
        let device = neurotwin_kernels::device::device(0).map_err(unavailable)?;
        // An equation-defined model's generated kernel: compiled by NVRTC for this device and loaded beside the
        // fixed units.
        let generated = plan.generated_kernel();
        if let Some(g) = generated {
            device.load_generated(&g.0.unit).map_err(unavailable)?;
        }
        let launcher = CudaLauncher::new(&device, generated.map(|g| (g.0.unit.name, g.0.step.name)))?;
        let b = match catch_unwind(AssertUnwindSafe(|| Self::from_plan(launcher, plan))) {
            Ok(r) => r?,
            Err(_) => return Err(unavailable("the CUDA driver panicked while uploading the network")),
        };
        b.launcher().stream.synchronize().map_err(driver_err("initial upload"))?;
        Ok(b)
    }

    /// Name of the device the backend runs on.
    pub fn device_name(&self) -> &str {
        &self.launcher().device_name
    }
}

impl CudaLauncher {
    /// Looks up every step kernel ([`packs::STEP_KERNELS`]) on the device (opened and loaded once per process,
    /// `neurotwin_kernels::device`) and creates the backend's own stream (graph capture needs a stream other than
    /// the legacy default stream; the device has cudarc's event tracking off, as capture requires).
    fn new(device: &Device, generated: Option<(&'static str, &'static str)>) -> Result<Self, SimError> {
        let mut fns = Vec::with_capacity(packs::STEP_KERNELS.len() + 1);
        for &(unit, name) in packs::STEP_KERNELS.iter().chain(generated.as_ref()) {
            fns.push((name, device.function(unit, name).map_err(unavailable)?));
        }
        let stream = device.new_stream().map_err(unavailable)?;
        use cudarc::driver::sys::CUdevice_attribute::{
            CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR as THREADS_PER_SM,
            CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT as SMS,
        };
        let attr = |a| device.context().attribute(a).map_err(driver_err("cannot query the device"));
        let delivery_blocks = delivery_blocks_for(attr(SMS)?.max(1) as u32, attr(THREADS_PER_SM)?.max(32) as u32);
        Ok(Self { stream, fns, device_name: device.name().to_string(), capturing: false, delivery_blocks })
    }

    fn function(&self, name: &str) -> Result<&CudaFunction, DriverError> {
        self.fns
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
            .ok_or(DriverError(cudarc::driver::sys::CUresult::CUDA_ERROR_NOT_FOUND))
    }
}

impl Launcher for CudaLauncher {
    type Buf<T: Elem> = CudaSlice<T>;
    type Error = DriverError;
    type Graph = StepGraph;
    const NAME: &'static str = "cuda";

    fn spike_window(&self, n: usize) -> usize {
        (SPIKE_RECORD_BYTES / (4 * n.max(1))).clamp(1, MAX_SPIKE_WINDOW)
    }

    fn delivery_grid(&self) -> Grid {
        Grid { blocks: self.delivery_blocks, threads: DELIVERY_THREADS }
    }

    fn device_key(&self) -> u64 {
        self.stream.context().ordinal() as u64
    }

    fn upload<T: Elem>(&self, data: &[T]) -> Result<CudaSlice<T>, DriverError> {
        if data.is_empty() { self.stream.clone_htod(&[T::default()][..]) } else { self.stream.clone_htod(data) }
    }

    fn zeros<T: Elem>(&self, len: usize) -> Result<CudaSlice<T>, DriverError> {
        self.stream.alloc_zeros::<T>(len.max(1))
    }

    fn write<T: Elem>(&mut self, src: &[T], dst: &mut CudaSlice<T>) -> Result<(), DriverError> {
        debug_assert!(!self.capturing, "a host-to-device copy inside a captured step");
        if src.is_empty() {
            return Ok(());
        }
        self.stream.memcpy_htod(src, &mut dst.slice_mut(..src.len()))
    }

    fn clear<T: Elem>(&mut self, buf: &mut CudaSlice<T>) -> Result<(), DriverError> {
        self.stream.memset_zeros(buf)
    }

    fn read<T: Elem>(&self, src: &CudaSlice<T>, range: Range<usize>, dst: &mut [T]) -> Result<(), DriverError> {
        self.stream.memcpy_dtoh(&src.slice(range), dst)?;
        self.stream.synchronize()
    }

    fn ptr<T: Elem>(&self, buf: &mut CudaSlice<T>) -> DevPtr<T> {
        DevPtr::from_addr(buf.device_ptr_mut(&self.stream).0)
    }

    fn cptr<T: Elem>(&self, buf: &CudaSlice<T>) -> DevPtr<T> {
        DevPtr::from_addr(buf.device_ptr(&self.stream).0)
    }

    unsafe fn launch<P: KernelArgs>(&mut self, kernel: &KernelFn<P>, g: Grid, args: &P) -> Result<(), DriverError> {
        let f = self.function(kernel.name)?;
        let mut l = self.stream.launch_builder(f);
        l.arg(args);
        // SAFETY: every step kernel takes exactly one argument, its parameter pack, by value; `P` is the pack of
        // `kernel` (the `KernelFn` type ties them) with the layout of the C struct (`KernelArgs`). The caller
        // guarantees the pointers and the grid (the contract of `Launcher::launch`).
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    fn begin_capture(&mut self) -> Result<(), DriverError> {
        self.stream.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)?;
        self.capturing = true;
        Ok(())
    }

    fn end_capture(&mut self) -> Result<StepGraph, DriverError> {
        self.capturing = false;
        let graph = self.stream.end_capture(CUgraphInstantiate_flags(0))?;
        let graph = graph.ok_or(DriverError(cudarc::driver::sys::CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED))?;
        graph.upload()?;
        Ok(StepGraph(graph))
    }

    fn launch_graph(&mut self, graph: &StepGraph) -> Result<(), DriverError> {
        graph.0.launch()
    }
}

impl Drop for CudaLauncher {
    /// Waits for the stream: the backend's buffers (and the network arrays it may share with other backends) are
    /// freed after the launcher, so no kernel of this backend may still be reading them.
    fn drop(&mut self) {
        let _ = self.stream.synchronize();
    }
}

/// A captured step on the GPU (an instantiated CUDA graph on the backend's stream).
pub struct StepGraph(CudaGraph);

// SAFETY: the graph is used only by the backend that owns it, one call at a time (`&mut self` on every launcher
// method); CUDA graph objects may be used from any thread as long as calls are not concurrent.
unsafe impl Send for StepGraph {}
