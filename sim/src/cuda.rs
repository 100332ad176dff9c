//! The `cuda` backend: the CUDA C kernels of `neurotwin-kernels`, compiled at run time with NVRTC (through
//! cudarc, loading `libcuda` and `libnvrtc` dynamically) and launched on one stream in exactly the order the
//! `cuda-host` backend ([`HostKernelBackend`]) runs them on the host:
//!
//! `gather_input` → `stimulus_input` → `gap_current` → `apply_channel_gain` → `<model>_update` →
//! `apply_silence_and_flag` → compaction (`spike_masks`, `spike_chunk_totals`, `spike_scan_chunks`,
//! `spike_scatter`) → `deliver_spikes` → `snapshot_v` (graded models: `silence_activity` → `deliver_graded`).
//!
//! The device buffers have the layouts of [`HostKernelBackend`] (block-major state, fixed-point delay ring,
//! `[block][channel][lane]` synaptic input), so both backends — and the CPU backend — must agree bit for bit;
//! `tests/integration/gpu_conformance.rs` checks that on a machine with a GPU.
//!
//! No host round trip inside the step loop: the spike flags are compacted on the device into the window's
//! spike record, `deliver_spikes` reads its list from there with a fixed grid (warp-cooperative over each
//! row), and the record (offsets + spike ids) is copied back once per window of up to 100 steps
//! ([`Backend::drain_spikes`]). Host→device copies happen only when the receptor gains or the silenced set
//! change. What is not done yet: CUDA graphs (each step is 8–12 launches; at ~3 µs each that is the floor for
//! small networks) and a per-neuron state layout tuned for coalescing (the block-major layout is shared with
//! the CPU backend).
//!
//! Building never panics when CUDA is missing: [`CudaBackend::new`] returns
//! [`SimError::BackendUnavailable`] with a one-line reason (no libcuda, no device, no libnvrtc, NVRTC or
//! module-load failure, model without a kernel). [`cuda_status`] reports what is installed.
//!
//! [`HostKernelBackend`]: crate::host_kernels::HostKernelBackend

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx, compile_ptx_with_opts};
use neurotwin_connectome::Weights;
use neurotwin_kernels::host::StimulusParams;
use neurotwin_kernels::{DELIVERY_BLOCKS, DELIVERY_THREADS, KERNELS, NETWORK, SPIKES, compaction_chunk, nvrtc_source};
use neurotwin_models::LANES;

use crate::backend::Backend;
use crate::control::StepControl;
use crate::cpu::DeliveryScale;
use crate::error::SimError;
use crate::host_kernels::HostKernelBackend;
use crate::kernel_tables::{ParamArray, model_table, stimulus_tables};
use crate::setup::{SimSetup, initial_block_state};

/// Threads per block of every launch (all kernels are one thread per element, no shared memory).
const BLOCK: u32 = 256;

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

/// [`StimulusParams`] (`#[repr(C)]`, 64 bytes, the layout of `struct nt_stimulus`) as a device type.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default)]
struct DevStimulus(StimulusParams);

// SAFETY: `StimulusParams` is `#[repr(C)]` plain old data (u64, f64, u32 fields, no padding, 64 bytes) with the
// field order of `struct nt_stimulus`; `DevStimulus` is a transparent wrapper.
unsafe impl DeviceRepr for DevStimulus {}

/// One per-set parameter array of the model kernel on the device.
enum DevParam {
    F64(CudaSlice<f64>),
    U32(CudaSlice<u32>),
}

/// The neuron model's kernel and its parameter tables on the device, in the kernel's argument order.
struct DevModel {
    update: CudaFunction,
    params: Vec<DevParam>,
    spiking: bool,
}

enum DevWeights {
    Dense(CudaSlice<f32>),
    Table { index: CudaSlice<u16>, values: CudaSlice<f32>, fixed_table: CudaSlice<i64> },
}

struct DevGap {
    row_ptr: CudaSlice<u64>,
    partner: CudaSlice<u32>,
    conductance: CudaSlice<f32>,
    /// Graded models: Σ g and Σ g V_j per neuron (`gap_conductance`).
    g: CudaSlice<f64>,
    gv: CudaSlice<f64>,
}

/// Prescribed spike trains on the device (`SpikeTrains`, CSR by train).
struct DevTrains {
    n_trains: u32,
    neurons: CudaSlice<u32>,
    ptr: CudaSlice<u64>,
    steps: CudaSlice<u32>,
}

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
    spike_scan_chunks: CudaFunction,
    spike_scatter: CudaFunction,
    deliver_spikes: CudaFunction,
    deliver_graded: CudaFunction,
    silence_activity: CudaFunction,
}

/// The window's spike record on the device (`cuda/spikes.cu`): step k's spikes are
/// `rec_spikes[rec_base[k]..rec_base[k + 1]]`, sized for every neuron spiking in every step of the window.
struct DevRecord {
    window: usize,
    chunk: u32,
    n_words: usize,
    n_chunks: usize,
    masks: CudaSlice<u64>,
    chunk_offset: CudaSlice<u64>,
    rec_base: CudaSlice<u64>,
    rec_spikes: CudaSlice<u32>,
    /// Host copies made at each drain.
    rec_base_host: Vec<u64>,
    rec_spikes_host: Vec<u32>,
}

/// Device memory the spike record may take: the window is the largest number of steps (at most
/// [`MAX_SPIKE_WINDOW`]) whose worst case (every neuron spiking every step) fits.
const SPIKE_RECORD_BYTES: usize = 256 << 20;
/// Longest window between spike transfers (steps).
const MAX_SPIKE_WINDOW: usize = 100;

/// See the module documentation.
pub struct CudaBackend {
    stream: Arc<CudaStream>,
    fns: NetworkFns,
    model: DevModel,
    n: usize,
    n_pad: usize,
    n_state: usize,
    n_ch: usize,
    slots: usize,
    n_synapses: u64,
    seed: u64,
    fixed: DeliveryScale,
    device_name: String,
    param_set: CudaSlice<u16>,
    /// Block-major state, `state[(block * n_state + var) * 64 + lane]`.
    state: CudaSlice<f64>,
    /// `ring[((ch * slots) + slot) * n_pad + neuron]`, fixed point in units of 2^-S.
    ring: CudaSlice<i64>,
    stim_ptr: CudaSlice<u32>,
    stim_of: CudaSlice<u32>,
    stimuli: CudaSlice<DevStimulus>,
    trains: Option<DevTrains>,
    gap: Option<DevGap>,
    row_segments: CudaSlice<u32>,
    segment_start: CudaSlice<u64>,
    segment_delay: CudaSlice<u16>,
    segment_receptor: CudaSlice<u8>,
    targets: CudaSlice<u32>,
    weights: DevWeights,
    syn: CudaSlice<f64>,
    i_ext: CudaSlice<f64>,
    forced: CudaSlice<u64>,
    spiked: CudaSlice<u8>,
    activity: CudaSlice<f64>,
    v_prev: CudaSlice<f64>,
    gain: CudaSlice<f64>,
    silenced: CudaSlice<u64>,
    record: DevRecord,
    /// Steps advanced since the last drain (window step k = index).
    pending: Vec<u64>,
    /// Host mirrors: the gain / silencing mask last uploaded; the spikes of the last `step` call.
    gain_host: Vec<f64>,
    silenced_host: Vec<u64>,
    spikes: Vec<u32>,
}

fn unavailable(reason: impl Into<String>) -> SimError {
    SimError::BackendUnavailable { backend: "cuda".into(), reason: reason.into() }
}

fn driver_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> SimError + '_ {
    move |e| unavailable(format!("{what}: {e}"))
}

/// Uploads `data`; an empty slice becomes one zero element (a zero-byte allocation may fail), which no kernel
/// reads.
fn upload<T: DeviceRepr + Default + Clone>(stream: &Arc<CudaStream>, data: &[T]) -> Result<CudaSlice<T>, SimError> {
    let r = if data.is_empty() { stream.clone_htod(&[T::default()][..]) } else { stream.clone_htod(data) };
    r.map_err(driver_err("cannot upload a buffer"))
}

fn cfg(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: ((n as u32).div_ceil(BLOCK), 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

fn u32_of(n: usize) -> Result<u32, SimError> {
    u32::try_from(n).map_err(|_| SimError::Setup(format!("{n} elements exceed one launch (2^32 - 1)")))
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
    // SAFETY: only tries to dlopen the library by its candidate names.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err("libnvrtc could not be loaded (needed to compile the kernels)".into());
    }
    let ctx = CudaContext::new(0).map_err(|e| format!("cannot create a context on device 0: {e}"))?;
    let (major, minor) = ctx.compute_capability().map_err(|e| format!("cannot query the device: {e}"))?;
    let mut modules = Vec::with_capacity(KERNELS.len());
    for (name, file, ptx) in compile_kernels(major, minor)? {
        let module =
            ctx.load_module(ptx).map_err(|e| format!("cannot load the PTX of {file} (driver too old?): {e}"))?;
        modules.push((name, module));
    }
    Ok((ctx, modules))
}

/// Compiles every unit of [`KERNELS`] with NVRTC for compute capability `major.minor` (`fmad=false`, as the
/// backend does), returning `(unit name, file, PTX)`. `Err` is a one-line reason (no libnvrtc, compile error).
/// Needs no GPU.
pub fn compile_kernels(major: i32, minor: i32) -> Result<Vec<(&'static str, &'static str, Ptx)>, String> {
    // SAFETY: only tries to dlopen the library by its candidate names.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err("libnvrtc could not be loaded (needed to compile the kernels)".into());
    }
    let mut out = Vec::with_capacity(KERNELS.len());
    for k in KERNELS {
        let opts = CompileOptions {
            fmad: Some(false),
            options: vec![format!("--gpu-architecture=compute_{major}{minor}")],
            name: Some(format!("{}.cu", k.name)),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(nvrtc_source(k), opts).map_err(|e| {
            let detail = match &e {
                CompileError::CompileError { log, .. } => {
                    let log = log.to_string_lossy();
                    log.lines().find(|l| l.contains("error")).unwrap_or("see the NVRTC log").trim().to_string()
                }
                other => format!("{other:?}"),
            };
            format!("NVRTC failed on {} for compute_{major}{minor}: {detail}", k.file)
        })?;
        out.push((k.name, k.file, ptx));
    }
    Ok(out)
}

impl CudaBackend {
    /// Builds the backend on device 0. The setup is first validated exactly as [`HostKernelBackend::new`]
    /// does (invalid setups give the same [`SimError::Setup`]); a missing driver, device or NVRTC or a failed
    /// compilation give [`SimError::BackendUnavailable`].
    pub fn new(setup: &SimSetup) -> Result<Self, SimError> {
        // Same validation as the cuda-host backend (its buffers are dropped right away).
        drop(HostKernelBackend::new(setup)?);

        let (ctx, modules) = match catch_unwind(open_device) {
            Ok(Ok(x)) => x,
            Ok(Err(reason)) => return Err(unavailable(reason)),
            Err(_) => return Err(unavailable("the CUDA libraries panicked while loading (missing symbols?)")),
        };
        let device_name = ctx.name().unwrap_or_else(|_| "device 0".into());
        let stream = ctx.default_stream();
        match catch_unwind(AssertUnwindSafe(|| Self::build(setup, stream, &modules, device_name))) {
            Ok(r) => r,
            Err(_) => Err(unavailable("the CUDA driver panicked while uploading the network")),
        }
    }

    /// Name of the device the backend runs on.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    fn build(
        setup: &SimSetup,
        stream: Arc<CudaStream>,
        modules: &[(&'static str, Arc<CudaModule>)],
        device_name: String,
    ) -> Result<Self, SimError> {
        let function = |unit: &str, name: &str| -> Result<CudaFunction, SimError> {
            let m = modules.iter().find(|(u, _)| *u == unit).map(|(_, m)| m).expect("every KERNELS unit is loaded");
            m.load_function(name).map_err(driver_err(name))
        };
        let net = &setup.network;
        let n = net.n_neurons();
        let n_blocks = n.div_ceil(LANES);
        let n_pad = n_blocks * LANES;
        let n_ch = net.receptors.len();
        let slots = net.chemical.max_delay() as usize + 1;
        let n_state = setup.model.n_state();
        u32_of(n_pad)?;
        let fixed = DeliveryScale::for_network(net);

        let table = model_table(&setup.model, n_ch)?;
        let (unit, entry, arrays) = table.args();
        let mut params = Vec::with_capacity(arrays.len());
        for a in arrays {
            params.push(match a {
                ParamArray::F64(v) => DevParam::F64(upload(&stream, &v)?),
                ParamArray::U32(v) => DevParam::U32(upload(&stream, &v)?),
            });
        }
        let model = DevModel { update: function(unit, entry)?, params, spiking: table.is_spiking() };
        let fns = NetworkFns {
            gather_input: function(NETWORK.name, "gather_input")?,
            stimulus_input: function(NETWORK.name, "stimulus_input")?,
            spike_train_input: function(NETWORK.name, "spike_train_input")?,
            gap_current: function(NETWORK.name, "gap_current")?,
            gap_conductance: function(NETWORK.name, "gap_conductance")?,
            apply_channel_gain: function(NETWORK.name, "apply_channel_gain")?,
            apply_silence_and_flag: function(NETWORK.name, "apply_silence_and_flag")?,
            snapshot_v: function(NETWORK.name, "snapshot_v")?,
            spike_masks: function(SPIKES.name, "spike_masks")?,
            spike_chunk_totals: function(SPIKES.name, "spike_chunk_totals")?,
            spike_scan_chunks: function(SPIKES.name, "spike_scan_chunks")?,
            spike_scatter: function(SPIKES.name, "spike_scatter")?,
            deliver_spikes: function(SPIKES.name, "deliver_spikes")?,
            deliver_graded: function(SPIKES.name, "deliver_graded")?,
            silence_activity: function(SPIKES.name, "silence_activity")?,
        };

        let m = &net.chemical;
        let weights = match &m.weights {
            Weights::Dense(w) => DevWeights::Dense(upload(&stream, w)?),
            Weights::Table { values, index } => {
                let table: Vec<i64> = values.iter().map(|&w| fixed.to_fixed(w as f64)).collect();
                DevWeights::Table {
                    index: upload(&stream, index)?,
                    values: upload(&stream, values)?,
                    fixed_table: upload(&stream, &table)?,
                }
            }
        };
        let (stim_ptr, stim_of, params) = stimulus_tables(setup, n_ch)?;
        let stimuli: Vec<DevStimulus> = params.into_iter().map(DevStimulus).collect();
        let t = &setup.spike_trains;
        t.check_for_run(n, table.is_spiking())?;
        let trains = if t.is_empty() {
            None
        } else {
            Some(DevTrains {
                n_trains: u32_of(t.len())?,
                neurons: upload(&stream, &t.neurons)?,
                ptr: upload(&stream, &t.ptr)?,
                steps: upload(&stream, &t.steps)?,
            })
        };
        let gap = if net.gap.is_empty() {
            None
        } else {
            let g = &net.gap;
            Some(DevGap {
                row_ptr: upload(&stream, &g.row_ptr)?,
                partner: upload(&stream, &g.partner)?,
                conductance: upload(&stream, &g.conductance)?,
                g: stream.alloc_zeros::<f64>(n.max(1)).map_err(driver_err("cannot allocate"))?,
                gv: stream.alloc_zeros::<f64>(n.max(1)).map_err(driver_err("cannot allocate"))?,
            })
        };
        let zeros_f64 = |len: usize| stream.alloc_zeros::<f64>(len.max(1)).map_err(driver_err("cannot allocate"));
        let zeros_u64 = |len: usize| stream.alloc_zeros::<u64>(len.max(1)).map_err(driver_err("cannot allocate"));

        let window = (SPIKE_RECORD_BYTES / (4 * n.max(1))).clamp(1, MAX_SPIKE_WINDOW);
        let chunk = compaction_chunk(n_blocks);
        let n_chunks = n_blocks.div_ceil(chunk as usize);
        let record = DevRecord {
            window,
            chunk,
            n_words: n_blocks,
            n_chunks,
            masks: zeros_u64(n_blocks)?,
            chunk_offset: zeros_u64(n_chunks)?,
            rec_base: zeros_u64(window + 1)?,
            rec_spikes: stream
                .alloc_zeros::<u32>((window * n).max(1))
                .map_err(driver_err("cannot allocate the spike record"))?,
            rec_base_host: vec![0; window + 1],
            rec_spikes_host: Vec::new(),
        };
        let mut b = Self {
            fns,
            model,
            n,
            n_pad,
            n_state,
            n_ch,
            slots,
            n_synapses: m.n_synapses(),
            seed: setup.seed,
            fixed,
            device_name,
            param_set: upload(&stream, &setup.param_set)?,
            state: upload(&stream, &initial_block_state(setup)?)?,
            ring: stream.alloc_zeros::<i64>(n_ch * slots * n_pad).map_err(driver_err("cannot allocate the ring"))?,
            stim_ptr: upload(&stream, &stim_ptr)?,
            stim_of: upload(&stream, &stim_of)?,
            stimuli: upload(&stream, &stimuli)?,
            trains,
            gap,
            row_segments: upload(&stream, &m.row_segments)?,
            segment_start: upload(&stream, &m.segment_start)?,
            segment_delay: upload(&stream, &m.segment_delay)?,
            segment_receptor: upload(&stream, &m.segment_receptor)?,
            targets: upload(&stream, &m.targets)?,
            weights,
            syn: zeros_f64(n_pad * n_ch)?,
            i_ext: zeros_f64(n)?,
            forced: zeros_u64(n_blocks)?,
            spiked: stream.alloc_zeros::<u8>(n.max(1)).map_err(driver_err("cannot allocate"))?,
            activity: zeros_f64(n)?,
            v_prev: zeros_f64(n_pad)?,
            gain: upload(&stream, &vec![1.0; n_ch])?,
            silenced: zeros_u64(n_blocks)?,
            record,
            pending: Vec::with_capacity(window),
            gain_host: vec![1.0; n_ch],
            silenced_host: vec![0; n_blocks],
            spikes: Vec::with_capacity(n),
            stream,
        };
        b.snapshot_v()?;
        b.stream.synchronize().map_err(driver_err("initial upload"))?;
        Ok(b)
    }

    fn snapshot_v(&mut self) -> Result<(), SimError> {
        if self.gap.is_none() || self.n_pad == 0 {
            return Ok(());
        }
        let (n_pad, n_state) = (self.n_pad as u32, self.n_state as u32);
        let mut l = self.stream.launch_builder(&self.fns.snapshot_v);
        l.arg(&n_pad).arg(&n_state).arg(&self.state).arg(&mut self.v_prev);
        // SAFETY: snapshot_v(unsigned int n_pad, unsigned int n_state, const double* state, double* v_prev):
        // n_pad threads read state[(i / 64) * n_state * 64 + i % 64] < n_pad * n_state = state.len() and write
        // v_prev[i] < n_pad.
        unsafe { l.launch(cfg(self.n_pad)) }.map(drop).map_err(driver_err("snapshot_v"))
    }

    /// One step, launched on the stream without waiting for it: window step `k = pending.len()`.
    fn step_inner(&mut self, step: u64, control: &StepControl) -> Result<(), cudarc::driver::DriverError> {
        let n = self.n as u32;
        let n_pad = self.n_pad as u32;
        let n_ch = self.n_ch as u32;
        let slots = self.slots as u32;
        let slot = (step % self.slots as u64) as u32;
        let inv_scale = self.fixed.inv_scale;
        let s = self.stream.clone();

        // 1. Synaptic input of this step, ring slot cleared.
        let mut l = s.launch_builder(&self.fns.gather_input);
        l.arg(&n_pad).arg(&n_ch).arg(&slots).arg(&slot).arg(&mut self.ring).arg(&inv_scale).arg(&mut self.syn);
        // SAFETY: gather_input(unsigned int n_pad, unsigned int n_channels, unsigned int slots, unsigned int slot,
        // long long* ring, double inv_scale, double* syn): slot < slots; threads i < n_pad touch
        // ring[(c * slots + slot) * n_pad + i] < n_ch * slots * n_pad = ring.len() and syn within block i / 64,
        // i.e. < n_pad * n_ch = syn.len().
        unsafe { l.launch(cfg(self.n_pad)) }?;

        // 2. Stimuli (forced mask cleared first; the kernel writes every i_ext[i]).
        s.memset_zeros(&mut self.forced)?;
        let spiking = u32::from(self.model.spiking);
        let seed = self.seed;
        let mut l = s.launch_builder(&self.fns.stimulus_input);
        l.arg(&n).arg(&n_ch).arg(&step).arg(&seed).arg(&spiking);
        l.arg(&self.stim_ptr).arg(&self.stim_of).arg(&self.stimuli);
        l.arg(&mut self.syn).arg(&mut self.i_ext).arg(&mut self.forced);
        // SAFETY: stimulus_input(unsigned int n_neurons, unsigned int n_channels, unsigned long long step,
        // unsigned long long seed, unsigned int spiking, const unsigned int* stim_ptr, const unsigned int* stim_of,
        // const nt_stimulus* stimuli, double* syn, double* i_ext, unsigned long long* forced): the CSR lists
        // (n + 1 pointers into stim_of, indices < stimuli.len(), Poisson channels < n_ch) were built from the
        // setup that `HostKernelBackend::new` validated; threads i < n write syn in block i / 64, i_ext[i] and
        // forced[i / 64]. `DevStimulus` has the 64-byte layout of `struct nt_stimulus`.
        unsafe { l.launch(cfg(self.n)) }?;

        // 2'. Prescribed spike trains into the same mask.
        if let Some(t) = &self.trains {
            let mut l = s.launch_builder(&self.fns.spike_train_input);
            l.arg(&t.n_trains).arg(&step).arg(&t.neurons).arg(&t.ptr).arg(&t.steps).arg(&mut self.forced);
            // SAFETY: spike_train_input(unsigned int n_trains, unsigned long long step, const unsigned int*
            // train_neuron, const unsigned long long* train_ptr, const unsigned int* train_steps, unsigned long
            // long* forced): `SpikeTrains::validate` checked n_trains + 1 non-decreasing pointers ending at
            // steps.len() and neurons < n; threads k < n_trains read within those arrays and OR a bit of
            // forced[neuron / 64] < n_blocks atomically.
            unsafe { l.launch(cfg(t.n_trains as usize)) }?;
        }

        // 3. Gap junctions from the previous step's voltages (graded models: as conductances).
        if let Some(g) = self.gap.as_mut().filter(|_| !self.model.spiking) {
            let mut l = s.launch_builder(&self.fns.gap_conductance);
            l.arg(&n).arg(&g.row_ptr).arg(&g.partner).arg(&g.conductance).arg(&self.v_prev);
            l.arg(&mut g.g).arg(&mut g.gv);
            // SAFETY: gap_conductance(unsigned int n_neurons, const unsigned long long* row_ptr, const unsigned
            // int* partner, const float* conductance, const double* v_prev, double* gap_g, double* gap_gv): the
            // CSR rows were validated as for gap_current; threads i < n write gap_g[i], gap_gv[i] (n entries).
            unsafe { l.launch(cfg(self.n)) }?;
        } else if let Some(g) = &self.gap {
            let mut l = s.launch_builder(&self.fns.gap_current);
            l.arg(&n).arg(&g.row_ptr).arg(&g.partner).arg(&g.conductance).arg(&self.v_prev).arg(&mut self.i_ext);
            // SAFETY: gap_current(unsigned int n_neurons, const unsigned long long* row_ptr, const unsigned int*
            // partner, const float* conductance, const double* v_prev, double* i_ext): row_ptr has n + 1
            // non-decreasing entries ending at partner.len() = conductance.len(), partners < n (validated by
            // `GapRows::new` in the cuda-host validation); v_prev has n_pad >= n entries, i_ext n.
            unsafe { l.launch(cfg(self.n)) }?;
        }

        // 4. Receptor gains, uploaded only when they change, launched only when one is not 1.
        let changed = (0..self.n_ch).any(|c| control.channel_gain.get(c).copied().unwrap_or(1.0) != self.gain_host[c]);
        if changed {
            for (c, g) in self.gain_host.iter_mut().enumerate() {
                *g = control.channel_gain.get(c).copied().unwrap_or(1.0);
            }
            s.memcpy_htod(&self.gain_host, &mut self.gain)?;
        }
        if self.gain_host.iter().any(|&g| g != 1.0) {
            let mut l = s.launch_builder(&self.fns.apply_channel_gain);
            l.arg(&n).arg(&n_ch).arg(&self.gain).arg(&mut self.syn);
            // SAFETY: apply_channel_gain(unsigned int n_neurons, unsigned int n_channels, const double* gain,
            // double* syn): gain has n_ch entries, threads i < n write syn within block i / 64 (< syn.len()).
            unsafe { l.launch(cfg(self.n)) }?;
        }

        // 5. Neuron model: (n, n_channels, state, param_set, <per-set tables>, syn, i_ext, [forced,] out).
        let m = &self.model;
        let mut l = s.launch_builder(&m.update);
        l.arg(&n).arg(&n_ch).arg(&mut self.state).arg(&self.param_set);
        for p in &m.params {
            match p {
                DevParam::F64(x) => l.arg(x),
                DevParam::U32(x) => l.arg(x),
            };
        }
        l.arg(&self.syn).arg(&self.i_ext);
        let null = 0u64;
        if m.spiking {
            l.arg(&self.forced).arg(&mut self.spiked);
        } else {
            match &self.gap {
                Some(g) => l.arg(&g.g).arg(&g.gv),
                None => l.arg(&null).arg(&null),
            };
            l.arg(&mut self.activity);
        }
        // SAFETY: the five model kernels (cuda/lif_exp.cu, lif_delta.cu, izhikevich.cu, adex.cu, graded.cu) take
        // (unsigned int n_neurons, unsigned int n_channels, double* state, const unsigned short* param_set, the
        // per-set tables in the order of `ModelTable::args`, const double* syn, const double* i_ext, then
        // `const unsigned long long* forced, unsigned char* spiked` for spiking models or `const double* gap_g,
        // const double* gap_gv, double* activity` for graded — the gap arrays have n entries or are null).
        // state holds n_blocks * n_state * 64 values, param_set n entries < n_sets (validated by the
        // cuda-host validation), per-set tables n_sets (* n_ch) entries as built by `model_table`, syn
        // n_pad * n_ch, i_ext, spiked and activity n, forced n_blocks; threads i < n stay within block i / 64.
        unsafe { l.launch(cfg(self.n)) }?;

        // 6. Silenced neurons emit nothing (mask uploaded only when it changes).
        let silenced_changed = (0..self.silenced_host.len())
            .any(|b| control.silenced.get(b).copied().unwrap_or(0) != self.silenced_host[b]);
        if silenced_changed {
            for (b, w) in self.silenced_host.iter_mut().enumerate() {
                *w = control.silenced.get(b).copied().unwrap_or(0);
            }
            s.memcpy_htod(&self.silenced_host, &mut self.silenced)?;
        }
        let any_silenced = self.silenced_host.iter().any(|&w| w != 0);
        if !self.model.spiking {
            return self.emit_graded(step, any_silenced);
        }
        if any_silenced {
            let mut l = s.launch_builder(&self.fns.apply_silence_and_flag);
            l.arg(&n).arg(&self.silenced).arg(&mut self.spiked);
            // SAFETY: apply_silence_and_flag(unsigned int n_neurons, const unsigned long long* silenced,
            // unsigned char* spiked): silenced has n_blocks words, spiked n entries; threads i < n.
            unsafe { l.launch(cfg(self.n)) }?;
        }
        self.compact_and_deliver(step)
    }

    /// Steps 7–8 for spiking models: compaction into window step k of the record, then delivery from it.
    fn compact_and_deliver(&mut self, step: u64) -> Result<(), cudarc::driver::DriverError> {
        let s = self.stream.clone();
        let r = &mut self.record;
        let k = self.pending.len() as u32;
        let n = self.n as u32;
        let (n_words, n_chunks, chunk) = (r.n_words as u32, r.n_chunks as u32, r.chunk);

        let mut l = s.launch_builder(&self.fns.spike_masks);
        l.arg(&n).arg(&self.spiked).arg(&mut r.masks);
        // SAFETY: spike_masks(unsigned int n_neurons, const unsigned char* spiked, unsigned long long* masks):
        // threads w < n_words = ceil(n / 64) read spiked[< n] and write masks[w] (masks has n_words entries).
        unsafe { l.launch(cfg(r.n_words)) }?;
        let mut l = s.launch_builder(&self.fns.spike_chunk_totals);
        l.arg(&n_words).arg(&chunk).arg(&r.masks).arg(&mut r.chunk_offset);
        // SAFETY: spike_chunk_totals(unsigned int n_words, unsigned int chunk, const unsigned long long* masks,
        // unsigned long long* chunk_offset): threads c < n_chunks = ceil(n_words / chunk) read masks[< n_words]
        // and write chunk_offset[c] (n_chunks entries).
        unsafe { l.launch(cfg(r.n_chunks)) }?;
        let mut l = s.launch_builder(&self.fns.spike_scan_chunks);
        l.arg(&n_chunks).arg(&k).arg(&mut r.chunk_offset).arg(&mut r.rec_base);
        // SAFETY: spike_scan_chunks(unsigned int n_chunks, unsigned int k, unsigned long long* chunk_offset,
        // unsigned long long* rec_base): one thread; chunk_offset[< n_chunks], rec_base[k] and rec_base[k + 1]
        // with k < window (the caller drains before the window is full) and rec_base of window + 1 entries.
        unsafe { l.launch(cfg(1)) }?;
        let mut l = s.launch_builder(&self.fns.spike_scatter);
        l.arg(&n_words).arg(&chunk).arg(&r.masks).arg(&r.chunk_offset).arg(&mut r.rec_spikes);
        // SAFETY: spike_scatter(unsigned int n_words, unsigned int chunk, const unsigned long long* masks, const
        // unsigned long long* chunk_offset, unsigned int* rec_spikes): threads c < n_chunks write the set bits of
        // their words from chunk_offset[c] on; step k's spikes end at rec_base[k + 1] <= (k + 1) * n <=
        // window * n = rec_spikes.len().
        unsafe { l.launch(cfg(r.n_chunks)) }?;

        if self.n_synapses == 0 {
            return Ok(());
        }
        let (scale, slots, n_pad) = (self.fixed.scale, self.slots as u32, self.n_pad as u32);
        let null = 0u64;
        let mut l = s.launch_builder(&self.fns.deliver_spikes);
        l.arg(&r.rec_base).arg(&k).arg(&r.rec_spikes).arg(&self.row_segments).arg(&self.segment_start);
        l.arg(&self.segment_delay).arg(&self.segment_receptor).arg(&self.targets);
        match &self.weights {
            DevWeights::Dense(w) => l.arg(w).arg(&null).arg(&null),
            DevWeights::Table { index, fixed_table, .. } => l.arg(&null).arg(index).arg(fixed_table),
        };
        l.arg(&scale).arg(&step).arg(&slots).arg(&n_pad).arg(&mut self.ring);
        // SAFETY: deliver_spikes(const unsigned long long* rec_base, unsigned int k, const unsigned int*
        // rec_spikes, const unsigned int* row_segments, const unsigned long long* segment_start, const unsigned
        // short* segment_delay, const unsigned char* segment_receptor, const unsigned int* targets, const float*
        // weights, const unsigned short* weight_index, const long long* fixed_table, double scale, unsigned long
        // long step, unsigned int slots, unsigned int n_pad, long long* ring): the record's step k holds neuron
        // ids < n written by spike_scatter above (same stream); the CSR structure, receptors < n_ch, targets < n
        // and table indices were validated by `SynapseRows::new` (cuda-host validation); exactly one of weights /
        // (weight_index, fixed_table) is a device pointer, the others a null 64-bit value; ring indices are
        // < n_ch * slots * n_pad. The grid is fixed and blockDim is a multiple of 32, as the kernel requires.
        unsafe { l.launch(delivery_cfg()) }?;
        Ok(())
    }

    /// Steps 6–8 for graded models: silenced neurons transmit nothing, then every neuron's activity is sent.
    fn emit_graded(&mut self, step: u64, any_silenced: bool) -> Result<(), cudarc::driver::DriverError> {
        let s = self.stream.clone();
        let n = self.n as u32;
        if any_silenced {
            let mut l = s.launch_builder(&self.fns.silence_activity);
            l.arg(&n).arg(&self.silenced).arg(&mut self.activity);
            // SAFETY: silence_activity(unsigned int n_neurons, const unsigned long long* silenced, double*
            // activity): silenced has n_blocks words, activity n entries; threads i < n.
            unsafe { l.launch(cfg(self.n)) }?;
        }
        if self.n_synapses == 0 {
            return Ok(());
        }
        let (scale, slots, n_pad) = (self.fixed.scale, self.slots as u32, self.n_pad as u32);
        let null = 0u64;
        let mut l = s.launch_builder(&self.fns.deliver_graded);
        l.arg(&n).arg(&self.activity).arg(&self.row_segments).arg(&self.segment_start);
        l.arg(&self.segment_delay).arg(&self.segment_receptor).arg(&self.targets);
        match &self.weights {
            DevWeights::Dense(w) => l.arg(w).arg(&null).arg(&null),
            DevWeights::Table { index, values, .. } => l.arg(&null).arg(index).arg(values),
        };
        l.arg(&scale).arg(&step).arg(&slots).arg(&n_pad).arg(&mut self.ring);
        // SAFETY: deliver_graded(unsigned int n_neurons, const double* activity, const unsigned int*
        // row_segments, const unsigned long long* segment_start, const unsigned short* segment_delay, const
        // unsigned char* segment_receptor, const unsigned int* targets, const float* weights, const unsigned
        // short* weight_index, const float* weight_values, double scale, unsigned long long step, unsigned int
        // slots, unsigned int n_pad, long long* ring): activity has n entries; the matrix was validated as for
        // deliver_spikes; exactly one of weights / (weight_index, weight_values) is a device pointer.
        unsafe { l.launch(delivery_cfg()) }?;
        Ok(())
    }

    fn cuda_err(step: u64) -> impl Fn(cudarc::driver::DriverError) -> SimError {
        move |e| unavailable(format!("CUDA error in step {step}: {e}"))
    }
}

/// The fixed grid of the warp-cooperative delivery kernels (the host build launches the same).
fn delivery_cfg() -> LaunchConfig {
    LaunchConfig { grid_dim: (DELIVERY_BLOCKS, 1, 1), block_dim: (DELIVERY_THREADS, 1, 1), shared_mem_bytes: 0 }
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn step(&mut self, step: u64, control: &StepControl) -> Result<&[u32], SimError> {
        if !self.pending.is_empty() {
            return Err(SimError::Setup("cuda backend: step called with undrained advanced steps".into()));
        }
        self.advance(step, control)?;
        let mut spikes = std::mem::take(&mut self.spikes);
        spikes.clear();
        self.drain_spikes(&mut |_, s| spikes.extend_from_slice(s))?;
        self.spikes = spikes;
        Ok(&self.spikes)
    }

    fn advance(&mut self, step: u64, control: &StepControl) -> Result<(), SimError> {
        if self.pending.len() == self.record.window {
            return Err(SimError::Setup(format!(
                "cuda backend: more than {} steps advanced without drain_spikes",
                self.record.window
            )));
        }
        if self.n > 0 {
            self.step_inner(step, control).map_err(Self::cuda_err(step))?;
            // 9. Voltages for the next step's gap junctions.
            self.snapshot_v()?;
        }
        self.pending.push(step);
        Ok(())
    }

    /// One synchronisation and two copies per window: the record's offsets, then its spikes.
    fn drain_spikes(&mut self, sink: &mut dyn FnMut(u64, &[u32])) -> Result<(), SimError> {
        let steps = std::mem::take(&mut self.pending);
        let Some(&last) = steps.last() else { return Ok(()) };
        if !self.model.spiking || self.n == 0 {
            steps.iter().for_each(|&st| sink(st, &[]));
            return Ok(());
        }
        let r = &mut self.record;
        let err = Self::cuda_err(last);
        let n_steps = steps.len();
        self.stream.memcpy_dtoh(&r.rec_base.slice(0..=n_steps), &mut r.rec_base_host[..=n_steps]).map_err(&err)?;
        self.stream.synchronize().map_err(&err)?;
        let total = r.rec_base_host[n_steps] as usize;
        r.rec_spikes_host.resize(total, 0);
        if total > 0 {
            self.stream.memcpy_dtoh(&r.rec_spikes.slice(0..total), &mut r.rec_spikes_host[..]).map_err(&err)?;
            self.stream.synchronize().map_err(&err)?;
        }
        for (k, &st) in steps.iter().enumerate() {
            sink(st, &r.rec_spikes_host[r.rec_base_host[k] as usize..r.rec_base_host[k + 1] as usize]);
        }
        self.pending = steps;
        self.pending.clear();
        Ok(())
    }

    fn spike_window(&self) -> usize {
        self.record.window
    }

    /// Copies the whole state back (a device error yields NaN for every requested value).
    fn read_state(&self, var: usize, neurons: &[u32], out: &mut Vec<f64>) {
        let state = self.stream.clone_dtoh(&self.state);
        let n_state = self.n_state;
        out.extend(neurons.iter().map(|&i| {
            let i = i as usize;
            match &state {
                Ok(s) => s[(i / LANES) * n_state * LANES + var * LANES + i % LANES],
                Err(_) => f64::NAN,
            }
        }));
    }

    fn delivery_scale_exponent(&self) -> i32 {
        self.fixed.exponent
    }
}
