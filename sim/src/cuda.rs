//! The `cuda` backend: the CUDA C kernels of `neurotwin-kernels`, compiled at run time with NVRTC (through
//! cudarc, loading `libcuda` and `libnvrtc` dynamically) and launched on one stream in exactly the order the
//! `cuda-host` backend ([`HostKernelBackend`]) runs them on the host:
//!
//! `gather_input` → `stimulus_input` → `gap_current` → `apply_channel_gain` → `lif_exp_update` /
//! `lif_delta_update` → `apply_silence_and_flag` → compaction → `deliver_spikes` → `snapshot_v`.
//!
//! The device buffers have the layouts of [`HostKernelBackend`] (block-major state, fixed-point delay ring,
//! `[block][channel][lane]` synaptic input), so both backends — and the CPU backend — must agree bit for bit;
//! `tests/gpu_conformance.rs` checks that on a machine with a GPU.
//!
//! Compaction: the spike flags are copied back after every step and compacted (ascending neuron order) on the
//! host, then the list is uploaded for `deliver_spikes`. That costs two small transfers and a stream
//! synchronisation per step. The next step is a device-side exclusive scan over the flags (plus a scatter)
//! feeding `deliver_spikes` directly, with the spike list copied to the host only at record intervals.
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
use neurotwin_kernels::{KERNELS, LIF_DELTA, LIF_EXP, NETWORK, nvrtc_source};
use neurotwin_models::{CompiledModel, LANES};

use crate::backend::Backend;
use crate::control::StepControl;
use crate::cpu::DeliveryScale;
use crate::error::SimError;
use crate::host_kernels::HostKernelBackend;
use crate::kernel_tables::{ModelTable, model_table, stimulus_tables};
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

/// The neuron model's kernel and its parameter tables on the device.
struct DevModel {
    update: CudaFunction,
    p22: CudaSlice<f64>,
    p20: CudaSlice<f64>,
    e_l: CudaSlice<f64>,
    theta: CudaSlice<f64>,
    reset: CudaSlice<f64>,
    i_e: CudaSlice<f64>,
    refractory_steps: CudaSlice<u32>,
    extra: ModelExtra,
}

/// The model-specific trailing parameter arrays.
enum ModelExtra {
    /// `lif_exp_update(…, p11, p21, …)`.
    LifExp { p11: CudaSlice<f64>, p21: CudaSlice<f64> },
    /// `lif_delta_update(…, keep_refractory_input, …)`.
    LifDelta { keep_refractory_input: CudaSlice<f64> },
}

enum DevWeights {
    Dense(CudaSlice<f32>),
    Table { index: CudaSlice<u16>, fixed_table: CudaSlice<i64> },
}

struct DevGap {
    row_ptr: CudaSlice<u64>,
    partner: CudaSlice<u32>,
    conductance: CudaSlice<f32>,
}

struct NetworkFns {
    gather_input: CudaFunction,
    stimulus_input: CudaFunction,
    gap_current: CudaFunction,
    apply_channel_gain: CudaFunction,
    apply_silence_and_flag: CudaFunction,
    deliver_spikes: CudaFunction,
    snapshot_v: CudaFunction,
}

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
    v_prev: CudaSlice<f64>,
    gain: CudaSlice<f64>,
    silenced: CudaSlice<u64>,
    /// Spike list for `deliver_spikes` (capacity: every neuron).
    spike_list: CudaSlice<u32>,
    /// Host mirrors: the gain / silencing mask last uploaded, the flags of this step, the compacted list.
    gain_host: Vec<f64>,
    silenced_host: Vec<u64>,
    spiked_host: Vec<u8>,
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
    /// does (invalid setups give the same [`SimError::Setup`]); a missing driver, device or NVRTC, a failed
    /// compilation or a model without a kernel give [`SimError::BackendUnavailable`].
    pub fn new(setup: &SimSetup) -> Result<Self, SimError> {
        let model_name = match &setup.model {
            CompiledModel::LifExp(_) => None,
            CompiledModel::LifDelta(_) => None,
            CompiledModel::Izhikevich(_) => Some("izhikevich"),
            CompiledModel::Adex(_) => Some("adex"),
            CompiledModel::Graded(_) => Some("graded"),
        };
        if let Some(m) = model_name {
            return Err(unavailable(format!("model {m} has no CUDA kernel yet")));
        }
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

        let up_f64 = |v: &[f64]| upload(&stream, v);
        let model = match model_table(&setup.model, n_ch)? {
            ModelTable::LifExp(t) => DevModel {
                update: function(LIF_EXP.name, "lif_exp_update")?,
                p22: up_f64(&t.p22)?,
                p20: up_f64(&t.p20)?,
                e_l: up_f64(&t.e_l)?,
                theta: up_f64(&t.theta)?,
                reset: up_f64(&t.reset)?,
                i_e: up_f64(&t.i_e)?,
                refractory_steps: upload(&stream, &t.refractory_steps)?,
                extra: ModelExtra::LifExp { p11: up_f64(&t.p11)?, p21: up_f64(&t.p21)? },
            },
            ModelTable::LifDelta(t) => DevModel {
                update: function(LIF_DELTA.name, "lif_delta_update")?,
                p22: up_f64(&t.p22)?,
                p20: up_f64(&t.p20)?,
                e_l: up_f64(&t.e_l)?,
                theta: up_f64(&t.theta)?,
                reset: up_f64(&t.reset)?,
                i_e: up_f64(&t.i_e)?,
                refractory_steps: upload(&stream, &t.refractory_steps)?,
                extra: ModelExtra::LifDelta { keep_refractory_input: up_f64(&t.keep_refractory_input)? },
            },
        };
        let fns = NetworkFns {
            gather_input: function(NETWORK.name, "gather_input")?,
            stimulus_input: function(NETWORK.name, "stimulus_input")?,
            gap_current: function(NETWORK.name, "gap_current")?,
            apply_channel_gain: function(NETWORK.name, "apply_channel_gain")?,
            apply_silence_and_flag: function(NETWORK.name, "apply_silence_and_flag")?,
            deliver_spikes: function(NETWORK.name, "deliver_spikes")?,
            snapshot_v: function(NETWORK.name, "snapshot_v")?,
        };

        let m = &net.chemical;
        let weights = match &m.weights {
            Weights::Dense(w) => DevWeights::Dense(upload(&stream, w)?),
            Weights::Table { values, index } => {
                let table: Vec<i64> = values.iter().map(|&w| fixed.to_fixed(w as f64)).collect();
                DevWeights::Table { index: upload(&stream, index)?, fixed_table: upload(&stream, &table)? }
            }
        };
        let (stim_ptr, stim_of, params) = stimulus_tables(setup, n_ch)?;
        let stimuli: Vec<DevStimulus> = params.into_iter().map(DevStimulus).collect();
        let gap = if net.gap.is_empty() {
            None
        } else {
            let g = &net.gap;
            Some(DevGap {
                row_ptr: upload(&stream, &g.row_ptr)?,
                partner: upload(&stream, &g.partner)?,
                conductance: upload(&stream, &g.conductance)?,
            })
        };
        let zeros_f64 = |len: usize| stream.alloc_zeros::<f64>(len.max(1)).map_err(driver_err("cannot allocate"));
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
            gap,
            row_segments: upload(&stream, &m.row_segments)?,
            segment_start: upload(&stream, &m.segment_start)?,
            segment_delay: upload(&stream, &m.segment_delay)?,
            segment_receptor: upload(&stream, &m.segment_receptor)?,
            targets: upload(&stream, &m.targets)?,
            weights,
            syn: zeros_f64(n_pad * n_ch)?,
            i_ext: zeros_f64(n)?,
            forced: stream.alloc_zeros::<u64>(n_blocks.max(1)).map_err(driver_err("cannot allocate"))?,
            spiked: stream.alloc_zeros::<u8>(n.max(1)).map_err(driver_err("cannot allocate"))?,
            v_prev: zeros_f64(n_pad)?,
            gain: upload(&stream, &vec![1.0; n_ch])?,
            silenced: stream.alloc_zeros::<u64>(n_blocks.max(1)).map_err(driver_err("cannot allocate"))?,
            spike_list: stream.alloc_zeros::<u32>(n.max(1)).map_err(driver_err("cannot allocate"))?,
            gain_host: vec![1.0; n_ch],
            silenced_host: vec![0; n_blocks],
            spiked_host: vec![0; n],
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
        let spiking = 1u32;
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

        // 3. Gap junctions from the previous step's voltages.
        if let Some(g) = &self.gap {
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

        // 5. Neuron model.
        let m = &self.model;
        let mut l = s.launch_builder(&m.update);
        l.arg(&n).arg(&n_ch).arg(&mut self.state).arg(&self.param_set);
        l.arg(&m.p22).arg(&m.p20).arg(&m.e_l).arg(&m.theta).arg(&m.reset).arg(&m.i_e).arg(&m.refractory_steps);
        match &m.extra {
            ModelExtra::LifExp { p11, p21 } => l.arg(p11).arg(p21),
            ModelExtra::LifDelta { keep_refractory_input } => l.arg(keep_refractory_input),
        };
        l.arg(&self.syn).arg(&self.i_ext).arg(&self.forced).arg(&mut self.spiked);
        // SAFETY: lif_exp_update(unsigned int n_neurons, unsigned int n_channels, double* state, const unsigned
        // short* param_set, const double* p22, p20, e_l, theta, reset, i_e, const unsigned int* refractory_steps,
        // const double* p11, const double* p21, const double* syn, const double* i_ext, const unsigned long long*
        // forced, unsigned char* spiked) — lif_delta_update has `const double* keep_refractory_input` in place of
        // p11, p21. state holds n_blocks * n_state * 64 values (n_state = 2 + n_ch resp. 3), param_set n entries
        // < n_sets (validated), per-set tables n_sets (* n_ch) entries, syn n_pad * n_ch, i_ext and spiked n,
        // forced n_blocks; threads i < n stay within block i / 64.
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
        if self.silenced_host.iter().any(|&w| w != 0) {
            let mut l = s.launch_builder(&self.fns.apply_silence_and_flag);
            l.arg(&n).arg(&self.silenced).arg(&mut self.spiked);
            // SAFETY: apply_silence_and_flag(unsigned int n_neurons, const unsigned long long* silenced,
            // unsigned char* spiked): silenced has n_blocks words, spiked n entries; threads i < n.
            unsafe { l.launch(cfg(self.n)) }?;
        }

        // 7. Compaction on the host (synchronous copy of the flags; see the module docs for the device scan).
        s.memcpy_dtoh(&self.spiked, &mut self.spiked_host[..])?;
        self.spikes.clear();
        self.spikes.extend(self.spiked_host.iter().enumerate().filter(|&(_, &f)| f != 0).map(|(i, _)| i as u32));

        // 8. Delivery with integer atomics.
        if !self.spikes.is_empty() && self.n_synapses > 0 {
            s.memcpy_htod(&self.spikes[..], &mut self.spike_list)?;
            let n_spikes = self.spikes.len() as u32;
            let scale = self.fixed.scale;
            let null = 0u64;
            let mut l = s.launch_builder(&self.fns.deliver_spikes);
            l.arg(&n_spikes).arg(&self.spike_list).arg(&self.row_segments).arg(&self.segment_start);
            l.arg(&self.segment_delay).arg(&self.segment_receptor).arg(&self.targets);
            match &self.weights {
                DevWeights::Dense(w) => l.arg(w).arg(&null).arg(&null),
                DevWeights::Table { index, fixed_table } => l.arg(&null).arg(index).arg(fixed_table),
            };
            l.arg(&scale).arg(&step).arg(&slots).arg(&n_pad).arg(&mut self.ring);
            // SAFETY: deliver_spikes(unsigned int n_spikes, const unsigned int* spikes, const unsigned int*
            // row_segments, const unsigned long long* segment_start, const unsigned short* segment_delay, const
            // unsigned char* segment_receptor, const unsigned int* targets, const float* weights, const unsigned
            // short* weight_index, const long long* fixed_table, double scale, unsigned long long step, unsigned
            // int slots, unsigned int n_pad, long long* ring): the CSR structure, receptors < n_ch, targets < n
            // and table indices were validated by `SynapseRows::new` (cuda-host validation); spikes are < n and
            // n_spikes <= spike_list.len(); exactly one of weights / (weight_index, fixed_table) is a device
            // pointer, the others are a null 64-bit pointer value; ring indices are < n_ch * slots * n_pad.
            unsafe { l.launch(cfg(self.spikes.len())) }?;
        }
        Ok(())
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn step(&mut self, step: u64, control: &StepControl) -> Result<&[u32], SimError> {
        if self.n == 0 {
            return Ok(&[]);
        }
        self.step_inner(step, control).map_err(|e| unavailable(format!("CUDA error in step {step}: {e}")))?;
        // 9. Voltages for the next step's gap junctions.
        self.snapshot_v()?;
        Ok(&self.spikes)
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
