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
//! when the receptor gains or the silenced set change. What is not done yet: CUDA graphs (each step of a
//! spiking network with synapses is 14–19 launches; at ~3 µs each that is the floor for small networks) and a per-neuron state layout tuned for coalescing (the block-major layout is shared with
//! the CPU backend).
//!
//! Building never panics when CUDA is missing: [`CudaBackend::new`] returns
//! [`SimError::BackendUnavailable`] with a one-line reason (no libcuda, no device, no libnvrtc, NVRTC or
//! module-load failure, model without a kernel). [`cuda_status`] reports what is installed.
//!
//! [`HostKernelBackend`]: crate::host_kernels::HostKernelBackend
//! [`Backend::drain_spikes`]: crate::backend::Backend::drain_spikes
#![allow(clippy::too_many_arguments)] // the launch methods take exactly the kernels' arguments

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DriverError, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use neurotwin_kernels::arch::Target;
use neurotwin_kernels::nvrtc::Kind as CompiledKind;
use neurotwin_kernels::{KERNELS, NETWORK, SPIKES};

use crate::error::SimError;
use crate::launch::{DevStimulus, Elem, Grid, KernelBackend, Launcher, ModelKind, ModelOut, ParamBuf, Plan};
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

/// The loaded functions of the network units (`cuda/network.cu`, `cuda/spikes.cu`).
struct NetworkFns {
    gather_input: CudaFunction,
    stimulus_input: CudaFunction,
    spike_train_input: CudaFunction,
    gap_current: CudaFunction,
    gap_conductance: CudaFunction,
    apply_channel_gain: CudaFunction,
    apply_silence_and_flag: CudaFunction,
    snapshot_v: CudaFunction,
    spike_masks: CudaFunction,
    spike_chunk_totals: CudaFunction,
    spike_scan_groups: CudaFunction,
    spike_scan_tops: CudaFunction,
    spike_scatter: CudaFunction,
    spike_pieces: CudaFunction,
    spike_work: CudaFunction,
    spike_work_base: CudaFunction,
    deliver_spikes: CudaFunction,
    deliver_graded: CudaFunction,
    silence_activity: CudaFunction,
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
    stream: Arc<CudaStream>,
    fns: NetworkFns,
    /// The model kernels, by [`ModelKind`].
    models: Vec<(ModelKind, CudaFunction)>,
    device_name: String,
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

/// Opens device 0 and compiles/loads every kernel unit; `Err` is a one-line reason.
/// The loaded kernel modules by unit name ([`KERNELS`] order).
type Modules = Vec<(&'static str, Arc<CudaModule>)>;

fn open_device() -> Result<(Arc<CudaContext>, Modules), String> {
    // SAFETY: only tries to dlopen the library by its candidate names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("libcuda could not be loaded (no NVIDIA driver installed)".into());
    }
    let count = CudaContext::device_count().map_err(|e| format!("CUDA driver error: {e}"))?;
    if count < 1 {
        return Err("the CUDA driver reports no device".into());
    }
    let ctx = CudaContext::new(0).map_err(|e| format!("cannot create a context on device 0: {e}"))?;
    let (major, minor) = ctx.compute_capability().map_err(|e| format!("cannot query the device: {e}"))?;
    // Precompiled cubins (NEUROTWIN_KERNEL_DIR) or NVRTC: a cubin for the highest architecture supported up to
    // the GPU's (no driver JIT, so no PTX-ISA requirement on the driver); PTX only when NVRTC knows no
    // binary-compatible architecture.
    let (target, units) = neurotwin_kernels::precompiled::kernels_for_device(major, minor)?;
    let mut modules = Vec::with_capacity(units.len());
    for (name, compiled) in units {
        let image = match compiled.kind {
            CompiledKind::Cubin => Ptx::from_binary(compiled.bytes.clone()),
            CompiledKind::Ptx => Ptx::from_src(compiled.ptx_text().unwrap_or_default()),
        };
        let module = ctx.load_module(image).map_err(|e| load_failure(name, target, &e.to_string()))?;
        modules.push((name, module));
    }
    Ok((ctx, modules))
}

/// The one-line reason a module did not load: for PTX, whether this driver is too old for this NVRTC's PTX.
fn load_failure(unit: &str, target: Target, err: &str) -> String {
    let mut why = format!("cannot load the {target} of kernel unit {unit}: {err}");
    if let Target::Ptx { .. } = target {
        let mut v = 0;
        // SAFETY: libcuda is loaded (a context exists); cuDriverGetVersion writes one int.
        let driver = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) }.result().map(|()| v as u32);
        if let (Ok(d), Ok(nvrtc)) = (driver, neurotwin_kernels::nvrtc::nvrtc_version())
            && let Some(problem) = neurotwin_kernels::arch::ptx_load_problem(d, nvrtc)
        {
            why = format!("{why} ({problem})");
        }
    }
    why
}

/// Every unit of [`KERNELS`] as PTX for compute capability `major.minor` (`--fmad=false`; through
/// [`neurotwin_kernels::nvrtc`], cached), as `(unit name, file, PTX)`. The backend itself loads cubins (see
/// `open_device`); this is the PTX fallback, kept for checks without a GPU. `Err` is a one-line reason (no
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
        let (ctx, modules) = match catch_unwind(open_device) {
            Ok(Ok(x)) => x,
            Ok(Err(reason)) => return Err(unavailable(reason)),
            Err(_) => return Err(unavailable("the CUDA libraries panicked while loading (missing symbols?)")),
        };
        let launcher = CudaLauncher::new(&ctx, &modules)?;
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
    /// Loads every step kernel from the compiled modules onto the context's default stream.
    fn new(ctx: &Arc<CudaContext>, modules: &Modules) -> Result<Self, SimError> {
        let function = |unit: &str, name: &str| -> Result<CudaFunction, SimError> {
            let m = modules.iter().find(|(u, _)| *u == unit).map(|(_, m)| m);
            let m = m.ok_or_else(|| unavailable(format!("kernel unit {unit} was not loaded")))?;
            m.load_function(name).map_err(driver_err(name))
        };
        let net = |name: &str| function(NETWORK.name, name);
        let spk = |name: &str| function(SPIKES.name, name);
        let fns = NetworkFns {
            gather_input: net("gather_input")?,
            stimulus_input: net("stimulus_input")?,
            spike_train_input: net("spike_train_input")?,
            gap_current: net("gap_current")?,
            gap_conductance: net("gap_conductance")?,
            apply_channel_gain: net("apply_channel_gain")?,
            apply_silence_and_flag: net("apply_silence_and_flag")?,
            snapshot_v: net("snapshot_v")?,
            spike_masks: spk("spike_masks")?,
            spike_chunk_totals: spk("spike_chunk_totals")?,
            spike_scan_groups: spk("spike_scan_groups")?,
            spike_scan_tops: spk("spike_scan_tops")?,
            spike_scatter: spk("spike_scatter")?,
            spike_pieces: spk("spike_pieces")?,
            spike_work: spk("spike_work")?,
            spike_work_base: spk("spike_work_base")?,
            deliver_spikes: spk("deliver_spikes")?,
            deliver_graded: spk("deliver_graded")?,
            silence_activity: spk("silence_activity")?,
        };
        let mut models = Vec::with_capacity(ModelKind::ALL.len());
        for kind in ModelKind::ALL {
            let (unit, entry) = kind.unit_and_entry();
            models.push((kind, function(unit, entry)?));
        }
        let device_name = ctx.name().unwrap_or_else(|_| "device 0".into());
        Ok(Self { stream: ctx.default_stream(), fns, models, device_name })
    }
}

impl Launcher for CudaLauncher {
    type Buf<T: Elem> = CudaSlice<T>;
    type Error = DriverError;
    const NAME: &'static str = "cuda";

    fn spike_window(&self, n: usize) -> usize {
        (SPIKE_RECORD_BYTES / (4 * n.max(1))).clamp(1, MAX_SPIKE_WINDOW)
    }

    fn upload<T: Elem>(&self, data: &[T]) -> Result<CudaSlice<T>, DriverError> {
        if data.is_empty() { self.stream.clone_htod(&[T::default()][..]) } else { self.stream.clone_htod(data) }
    }

    fn zeros<T: Elem>(&self, len: usize) -> Result<CudaSlice<T>, DriverError> {
        self.stream.alloc_zeros::<T>(len.max(1))
    }

    fn write<T: Elem>(&mut self, src: &[T], dst: &mut CudaSlice<T>) -> Result<(), DriverError> {
        if src.is_empty() {
            return Ok(());
        }
        self.stream.memcpy_htod(src, &mut dst.slice_mut(0..src.len()))
    }

    fn clear<T: Elem>(&mut self, buf: &mut CudaSlice<T>) -> Result<(), DriverError> {
        self.stream.memset_zeros(buf)
    }

    fn read<T: Elem>(&self, src: &CudaSlice<T>, range: Range<usize>, dst: &mut [T]) -> Result<(), DriverError> {
        self.stream.memcpy_dtoh(&src.slice(range), dst)?;
        self.stream.synchronize()
    }

    unsafe fn gather_input(
        &mut self,
        g: Grid,
        n_pad: u32,
        n_channels: u32,
        slots: u32,
        slot: u32,
        ring: &mut CudaSlice<i64>,
        inv_scale: f64,
        syn: &mut CudaSlice<f64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.gather_input);
        l.arg(&n_pad).arg(&n_channels).arg(&slots).arg(&slot).arg(ring).arg(&inv_scale).arg(syn);
        // SAFETY: gather_input(unsigned int n_pad, unsigned int n_channels, unsigned int slots, unsigned int slot,
        // long long* ring, double inv_scale, double* syn): the arguments in that order and types; the caller
        // guarantees slot < slots, ring of n_channels * slots * n_pad and syn of n_pad * n_channels entries for
        // the threads i < n_pad the grid covers.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn stimulus_input(
        &mut self,
        g: Grid,
        n_neurons: u32,
        n_channels: u32,
        step: u64,
        seed: u64,
        spiking: u32,
        stim_ptr: &CudaSlice<u32>,
        stim_of: &CudaSlice<u32>,
        stimuli: &CudaSlice<DevStimulus>,
        syn: &mut CudaSlice<f64>,
        i_ext: &mut CudaSlice<f64>,
        forced: &mut CudaSlice<u64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.stimulus_input);
        l.arg(&n_neurons).arg(&n_channels).arg(&step).arg(&seed).arg(&spiking);
        l.arg(stim_ptr).arg(stim_of).arg(stimuli).arg(syn).arg(i_ext).arg(forced);
        // SAFETY: stimulus_input(unsigned int n_neurons, unsigned int n_channels, unsigned long long step,
        // unsigned long long seed, unsigned int spiking, const unsigned int* stim_ptr, const unsigned int* stim_of,
        // const nt_stimulus* stimuli, double* syn, double* i_ext, unsigned long long* forced): the caller
        // guarantees validated CSR lists (n + 1 pointers into stim_of, indices < stimuli.len(), Poisson channels
        // < n_channels); threads i < n write syn in block i / 64, i_ext[i] and forced[i / 64]. `DevStimulus` has
        // the 64-byte layout of `struct nt_stimulus`.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn spike_train_input(
        &mut self,
        g: Grid,
        n_trains: u32,
        step: u64,
        train_neuron: &CudaSlice<u32>,
        train_ptr: &CudaSlice<u64>,
        train_steps: &CudaSlice<u32>,
        forced: &mut CudaSlice<u64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.spike_train_input);
        l.arg(&n_trains).arg(&step).arg(train_neuron).arg(train_ptr).arg(train_steps).arg(forced);
        // SAFETY: spike_train_input(unsigned int n_trains, unsigned long long step, const unsigned int*
        // train_neuron, const unsigned long long* train_ptr, const unsigned int* train_steps, unsigned long long*
        // forced): the caller guarantees n_trains + 1 non-decreasing pointers ending at train_steps.len() and
        // neurons < n; threads k < n_trains OR a bit of forced[neuron / 64] atomically.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn gap_current(
        &mut self,
        g: Grid,
        n_neurons: u32,
        row_ptr: &CudaSlice<u64>,
        partner: &CudaSlice<u32>,
        conductance: &CudaSlice<f32>,
        v_prev: &CudaSlice<f64>,
        i_ext: &mut CudaSlice<f64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.gap_current);
        l.arg(&n_neurons).arg(row_ptr).arg(partner).arg(conductance).arg(v_prev).arg(i_ext);
        // SAFETY: gap_current(unsigned int n_neurons, const unsigned long long* row_ptr, const unsigned int*
        // partner, const float* conductance, const double* v_prev, double* i_ext): the caller guarantees row_ptr
        // of n + 1 non-decreasing entries ending at partner.len() = conductance.len(), partners < n, v_prev of
        // at least n and i_ext of n entries.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn gap_conductance(
        &mut self,
        g: Grid,
        n_neurons: u32,
        row_ptr: &CudaSlice<u64>,
        partner: &CudaSlice<u32>,
        conductance: &CudaSlice<f32>,
        v_prev: &CudaSlice<f64>,
        gap_g: &mut CudaSlice<f64>,
        gap_gv: &mut CudaSlice<f64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.gap_conductance);
        l.arg(&n_neurons).arg(row_ptr).arg(partner).arg(conductance).arg(v_prev).arg(gap_g).arg(gap_gv);
        // SAFETY: gap_conductance(unsigned int n_neurons, const unsigned long long* row_ptr, const unsigned int*
        // partner, const float* conductance, const double* v_prev, double* gap_g, double* gap_gv): the CSR rows
        // as for gap_current; threads i < n write gap_g[i], gap_gv[i] (n entries each).
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn apply_channel_gain(
        &mut self,
        g: Grid,
        n_neurons: u32,
        n_channels: u32,
        gain: &CudaSlice<f64>,
        syn: &mut CudaSlice<f64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.apply_channel_gain);
        l.arg(&n_neurons).arg(&n_channels).arg(gain).arg(syn);
        // SAFETY: apply_channel_gain(unsigned int n_neurons, unsigned int n_channels, const double* gain,
        // double* syn): gain has n_channels entries, threads i < n write syn within block i / 64 (< syn.len()).
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn model_update(
        &mut self,
        g: Grid,
        model: ModelKind,
        n_neurons: u32,
        n_channels: u32,
        state: &mut CudaSlice<f64>,
        param_set: &CudaSlice<u16>,
        params: &[ParamBuf<Self>],
        syn: &CudaSlice<f64>,
        i_ext: &CudaSlice<f64>,
        out: ModelOut<'_, Self>,
    ) -> Result<(), DriverError> {
        let f = &self.models.iter().find(|(k, _)| *k == model).expect("every model kernel is loaded").1;
        let null = 0u64;
        let mut l = self.stream.launch_builder(f);
        l.arg(&n_neurons).arg(&n_channels).arg(state).arg(param_set);
        for p in params {
            match p {
                ParamBuf::F64(x) => l.arg(x),
                ParamBuf::U32(x) => l.arg(x),
            };
        }
        l.arg(syn).arg(i_ext);
        match out {
            ModelOut::Spiking { forced, spiked } => l.arg(forced).arg(spiked),
            ModelOut::Graded { gap, activity } => {
                match gap {
                    Some((gg, gv)) => l.arg(gg).arg(gv),
                    None => l.arg(&null).arg(&null),
                };
                l.arg(activity)
            }
        };
        // SAFETY: the five model kernels (cuda/lif_exp.cu, lif_delta.cu, izhikevich.cu, adex.cu, graded.cu) take
        // (unsigned int n_neurons, unsigned int n_channels, double* state, const unsigned short* param_set, the
        // per-set tables in the order of `ModelTable::args`, const double* syn, const double* i_ext, then
        // `const unsigned long long* forced, unsigned char* spiked` for spiking models or `const double* gap_g,
        // const double* gap_gv, double* activity` for graded — the gap arrays have n entries or are a null 64-bit
        // value). The caller guarantees state of n_blocks * n_state * 64 values, param_set of n entries < n_sets,
        // per-set tables of n_sets (* n_channels) entries, syn n_pad * n_channels, i_ext, spiked and activity n,
        // forced n_blocks; threads i < n stay within block i / 64.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn apply_silence_and_flag(
        &mut self,
        g: Grid,
        n_neurons: u32,
        silenced: &CudaSlice<u64>,
        spiked: &mut CudaSlice<u8>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.apply_silence_and_flag);
        l.arg(&n_neurons).arg(silenced).arg(spiked);
        // SAFETY: apply_silence_and_flag(unsigned int n_neurons, const unsigned long long* silenced, unsigned
        // char* spiked): silenced has n_blocks words, spiked n entries; threads i < n.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn spike_masks(
        &mut self,
        g: Grid,
        n_neurons: u32,
        spiked: &CudaSlice<u8>,
        masks: &mut CudaSlice<u64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.spike_masks);
        l.arg(&n_neurons).arg(spiked).arg(masks);
        // SAFETY: spike_masks(unsigned int n_neurons, const unsigned char* spiked, unsigned long long* masks):
        // threads w < n_words = ceil(n / 64) read spiked[< n] and write masks[w] (masks has n_words entries).
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn spike_chunk_totals(
        &mut self,
        g: Grid,
        n_words: u32,
        chunk: u32,
        masks: &CudaSlice<u64>,
        chunk_offset: &mut CudaSlice<u64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.spike_chunk_totals);
        l.arg(&n_words).arg(&chunk).arg(masks).arg(chunk_offset);
        // SAFETY: spike_chunk_totals(unsigned int n_words, unsigned int chunk, const unsigned long long* masks,
        // unsigned long long* chunk_offset): threads c < n_chunks = ceil(n_words / chunk) read masks[< n_words]
        // and write chunk_offset[c] (n_chunks entries).
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn spike_scan_groups(
        &mut self,
        g: Grid,
        n_chunks: u32,
        group: u32,
        chunk_offset: &mut CudaSlice<u64>,
        group_offset: &mut CudaSlice<u64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.spike_scan_groups);
        l.arg(&n_chunks).arg(&group).arg(chunk_offset).arg(group_offset);
        // SAFETY: spike_scan_groups(unsigned int n_chunks, unsigned int group, unsigned long long* chunk_offset,
        // unsigned long long* group_offset): threads g < n_groups = ceil(n_chunks / group) read and write
        // chunk_offset[g * group .. min((g + 1) * group, n_chunks)) (the caller allocates n_chunks entries) and
        // write group_offset[g] (n_groups entries); the rest return.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn spike_scan_tops(
        &mut self,
        g: Grid,
        n_groups: u32,
        k: u32,
        group_offset: &mut CudaSlice<u64>,
        rec_base: &mut CudaSlice<u64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.spike_scan_tops);
        l.arg(&n_groups).arg(&k).arg(group_offset).arg(rec_base);
        // SAFETY: spike_scan_tops(unsigned int n_groups, unsigned int k, unsigned long long* group_offset,
        // unsigned long long* rec_base): thread 0 only; group_offset[< n_groups], rec_base[k] and rec_base[k + 1]
        // with k < window and rec_base of window + 1 entries.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn spike_scatter(
        &mut self,
        g: Grid,
        n_words: u32,
        chunk: u32,
        group: u32,
        masks: &CudaSlice<u64>,
        chunk_offset: &CudaSlice<u64>,
        group_offset: &CudaSlice<u64>,
        rec_spikes: &mut CudaSlice<u32>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.spike_scatter);
        l.arg(&n_words).arg(&chunk).arg(&group).arg(masks).arg(chunk_offset).arg(group_offset).arg(rec_spikes);
        // SAFETY: spike_scatter(unsigned int n_words, unsigned int chunk, unsigned int group, const unsigned long
        // long* masks, const unsigned long long* chunk_offset, const unsigned long long* group_offset, unsigned
        // int* rec_spikes): threads c < n_chunks = ceil(n_words / chunk) read masks[< n_words], chunk_offset[c]
        // (n_chunks entries) and group_offset[c / group] (c / group < n_groups entries), and write the set bits
        // of their words from their offset on; step k's spikes end at rec_base[k + 1] <= (k + 1) * n <= window
        // * n = rec_spikes.len().
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn spike_pieces(
        &mut self,
        g: Grid,
        max_spikes: u32,
        k: u32,
        rec_base: &CudaSlice<u64>,
        rec_spikes: &CudaSlice<u32>,
        row_segments: &CudaSlice<u32>,
        seg_piece: &CudaSlice<u64>,
        work_start: &mut CudaSlice<u64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.spike_pieces);
        l.arg(&max_spikes).arg(&k).arg(rec_base).arg(rec_spikes).arg(row_segments).arg(seg_piece).arg(work_start);
        // SAFETY: spike_pieces(unsigned int max_spikes, unsigned int k, const unsigned long long* rec_base, const
        // unsigned int* rec_spikes, const unsigned int* row_segments, const unsigned long long* seg_piece, unsigned
        // long long* work_start): threads j < min(max_spikes, count) read rec_base[k], rec_base[k + 1] (k < window,
        // window + 1 entries) and the step's spike rec_spikes[rec_base[k] + j] (count <= max_spikes = n, within
        // the record); its id < n indexes row_segments (n + 1 entries) and seg_piece (n_segments + 1 entries);
        // they write work_start[j] (the caller allocates max_spikes entries); the rest return.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn spike_work(
        &mut self,
        g: Grid,
        max_spikes: u32,
        chunk: u32,
        k: u32,
        rec_base: &CudaSlice<u64>,
        work_start: &mut CudaSlice<u64>,
        work_chunk: &mut CudaSlice<u64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.spike_work);
        l.arg(&max_spikes).arg(&chunk).arg(&k).arg(rec_base).arg(work_start).arg(work_chunk);
        // SAFETY: spike_work(unsigned int max_spikes, unsigned int chunk, unsigned int k, const unsigned long long*
        // rec_base, unsigned long long* work_start, unsigned long long* work_chunk): threads c < ceil(max_spikes /
        // chunk) read rec_base[k], rec_base[k + 1] (k < window, window + 1 entries), read and write work_start[j]
        // for j < min((c + 1) * chunk, count) <= max_spikes (the caller allocates max_spikes entries) and write
        // work_chunk[c] (ceil(max_spikes / chunk) entries).
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn spike_work_base(
        &mut self,
        g: Grid,
        max_spikes: u32,
        chunk: u32,
        group: u32,
        k: u32,
        rec_base: &CudaSlice<u64>,
        work_chunk: &CudaSlice<u64>,
        work_group: &CudaSlice<u64>,
        work_start: &mut CudaSlice<u64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.spike_work_base);
        l.arg(&max_spikes).arg(&chunk).arg(&group).arg(&k).arg(rec_base).arg(work_chunk).arg(work_group);
        l.arg(work_start);
        // SAFETY: spike_work_base(unsigned int max_spikes, unsigned int chunk, unsigned int group, unsigned int k,
        // const unsigned long long* rec_base, const unsigned long long* work_chunk, const unsigned long long*
        // work_group, unsigned long long* work_start): threads j < min(max_spikes, rec_base[k + 1] - rec_base[k])
        // read work_chunk[j / chunk] (< ceil(max_spikes / chunk) entries) and work_group[j / chunk / group]
        // (< ceil(that / group) entries), and update work_start[j] (max_spikes entries); the rest return.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn deliver_spikes(
        &mut self,
        g: Grid,
        rec_base: &CudaSlice<u64>,
        k: u32,
        rec_spikes: &CudaSlice<u32>,
        work_start: &CudaSlice<u64>,
        work_total: &CudaSlice<u64>,
        row_segments: &CudaSlice<u32>,
        seg_piece: &CudaSlice<u64>,
        segment_start: &CudaSlice<u64>,
        segment_delay: &CudaSlice<u16>,
        segment_receptor: &CudaSlice<u8>,
        targets: &CudaSlice<u32>,
        weights: Option<&CudaSlice<f32>>,
        weight_index: Option<&CudaSlice<u16>>,
        fixed_table: Option<&CudaSlice<i64>>,
        scale: f64,
        step: u64,
        slots: u32,
        n_pad: u32,
        ring: &mut CudaSlice<i64>,
    ) -> Result<(), DriverError> {
        let null = 0u64;
        let mut l = self.stream.launch_builder(&self.fns.deliver_spikes);
        l.arg(rec_base).arg(&k).arg(rec_spikes).arg(work_start).arg(work_total).arg(row_segments).arg(seg_piece);
        l.arg(segment_start).arg(segment_delay).arg(segment_receptor).arg(targets);
        match weights {
            Some(w) => l.arg(w),
            None => l.arg(&null),
        };
        match weight_index {
            Some(w) => l.arg(w),
            None => l.arg(&null),
        };
        match fixed_table {
            Some(w) => l.arg(w),
            None => l.arg(&null),
        };
        l.arg(&scale).arg(&step).arg(&slots).arg(&n_pad).arg(ring);
        // SAFETY: deliver_spikes(const unsigned long long* rec_base, unsigned int k, const unsigned int*
        // rec_spikes, const unsigned long long* work_start, const unsigned long long* work_total, const unsigned
        // int* row_segments, const unsigned long long* seg_piece, const unsigned long long* segment_start, const
        // unsigned short* segment_delay, const unsigned char* segment_receptor, const unsigned int* targets, const
        // float* weights, const unsigned short* weight_index, const long long* fixed_table, double scale, unsigned
        // long long step, unsigned int slots, unsigned int n_pad, long long* ring): the record's step k holds
        // neuron ids < n written by spike_scatter before, and work_start (n entries) / work_total (2 entries) its
        // piece numbering written by spike_work .. spike_work_base before (same stream), so each piece w <
        // work_total[1] maps to a spike j < count, a segment of its row (seg_piece: n_segments + 1 entries) and a
        // synapse below that segment's end; the caller guarantees a validated CSR structure, receptors < n_ch,
        // targets < n and table indices, and that exactly one of weights / (weight_index, fixed_table) is given
        // (the others a null 64-bit value); ring indices are < n_ch * slots * n_pad. The grid is fixed and
        // blockDim is a multiple of 32, as the kernel requires.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn deliver_graded(
        &mut self,
        g: Grid,
        n_neurons: u32,
        activity: &CudaSlice<f64>,
        row_segments: &CudaSlice<u32>,
        segment_start: &CudaSlice<u64>,
        segment_delay: &CudaSlice<u16>,
        segment_receptor: &CudaSlice<u8>,
        targets: &CudaSlice<u32>,
        weights: Option<&CudaSlice<f32>>,
        weight_index: Option<&CudaSlice<u16>>,
        weight_values: Option<&CudaSlice<f32>>,
        scale: f64,
        step: u64,
        slots: u32,
        n_pad: u32,
        ring: &mut CudaSlice<i64>,
    ) -> Result<(), DriverError> {
        let null = 0u64;
        let mut l = self.stream.launch_builder(&self.fns.deliver_graded);
        l.arg(&n_neurons).arg(activity).arg(row_segments).arg(segment_start);
        l.arg(segment_delay).arg(segment_receptor).arg(targets);
        match weights {
            Some(w) => l.arg(w),
            None => l.arg(&null),
        };
        match weight_index {
            Some(w) => l.arg(w),
            None => l.arg(&null),
        };
        match weight_values {
            Some(w) => l.arg(w),
            None => l.arg(&null),
        };
        l.arg(&scale).arg(&step).arg(&slots).arg(&n_pad).arg(ring);
        // SAFETY: deliver_graded(unsigned int n_neurons, const double* activity, const unsigned int*
        // row_segments, const unsigned long long* segment_start, const unsigned short* segment_delay, const
        // unsigned char* segment_receptor, const unsigned int* targets, const float* weights, const unsigned
        // short* weight_index, const float* weight_values, double scale, unsigned long long step, unsigned int
        // slots, unsigned int n_pad, long long* ring): activity has n entries; the matrix as for deliver_spikes;
        // exactly one of weights / (weight_index, weight_values) is a device pointer.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn silence_activity(
        &mut self,
        g: Grid,
        n_neurons: u32,
        silenced: &CudaSlice<u64>,
        activity: &mut CudaSlice<f64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.silence_activity);
        l.arg(&n_neurons).arg(silenced).arg(activity);
        // SAFETY: silence_activity(unsigned int n_neurons, const unsigned long long* silenced, double*
        // activity): silenced has n_blocks words, activity n entries; threads i < n.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }

    unsafe fn snapshot_v(
        &mut self,
        g: Grid,
        n_pad: u32,
        n_state: u32,
        state: &CudaSlice<f64>,
        v_prev: &mut CudaSlice<f64>,
    ) -> Result<(), DriverError> {
        let mut l = self.stream.launch_builder(&self.fns.snapshot_v);
        l.arg(&n_pad).arg(&n_state).arg(state).arg(v_prev);
        // SAFETY: snapshot_v(unsigned int n_pad, unsigned int n_state, const double* state, double* v_prev):
        // n_pad threads read state[(i / 64) * n_state * 64 + i % 64] < n_pad * n_state = state.len() and write
        // v_prev[i] < n_pad.
        unsafe { l.launch(cfg(g)) }.map(drop)
    }
}
