//! Opening a CUDA device with every kernel unit loaded, once per process and device (candle's
//! `get_or_load_func` pattern): [`device`] creates the context, compiles or loads the units for the device's
//! architecture ([`crate::precompiled::kernels_for_device`]: a precompiled cubin folder, else NVRTC), loads them
//! as modules and caches the result; [`Device::function`] looks an entry point up by unit and name. Every GPU
//! consumer (the spiking engine, predictive coding, the segmentation CNN) goes through it, so a process compiles
//! and loads each unit once.
//!
//! Never panics when CUDA is missing: every failure is a one-line reason.

use std::panic::catch_unwind;
use std::sync::{Arc, Mutex, PoisonError};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};
use cudarc::nvrtc::Ptx;

use crate::arch::Target;
use crate::nvrtc::Kind;

/// One opened device: its context and every kernel unit loaded as a module.
pub struct Device {
    ctx: Arc<CudaContext>,
    target: Target,
    modules: Vec<(&'static str, Arc<CudaModule>)>,
    /// Units generated at run time (equation-defined models), compiled by NVRTC and loaded on first use.
    generated: Mutex<Vec<(&'static str, Arc<CudaModule>)>>,
    name: String,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({}, {})", self.name, self.target)
    }
}

/// The opened devices of this process, by ordinal.
static DEVICES: Mutex<Vec<(usize, Arc<Device>)>> = Mutex::new(Vec::new());

/// Device `ordinal` with every kernel unit loaded, opened on first use and cached for the process. `Err` is a
/// one-line reason (no libcuda, no such device, no libnvrtc and no precompiled cubins, a compile or load failure).
pub fn device(ordinal: usize) -> Result<Arc<Device>, String> {
    let mut devices = DEVICES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, d)) = devices.iter().find(|(o, _)| *o == ordinal) {
        return Ok(d.clone());
    }
    let d = match catch_unwind(|| Device::open(ordinal)) {
        Ok(r) => Arc::new(r?),
        Err(_) => return Err("the CUDA libraries panicked while loading (missing symbols?)".into()),
    };
    devices.push((ordinal, d.clone()));
    Ok(d)
}

impl Device {
    fn open(ordinal: usize) -> Result<Self, String> {
        // SAFETY: only tries to dlopen the library by its candidate names.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err("libcuda could not be loaded (no NVIDIA driver installed)".into());
        }
        let count = CudaContext::device_count().map_err(|e| format!("CUDA driver error: {e}"))?;
        if (count.max(0) as usize) <= ordinal {
            return Err(format!("the CUDA driver reports {count} device(s), so there is no device #{ordinal}"));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| format!("cannot create a context on device {ordinal}: {e}"))?;
        // Every consumer orders its work on streams it owns and synchronises explicitly; cudarc's per-buffer
        // events would only add work and would break CUDA graph capture (a wait on an event recorded outside
        // the capture). Switched off before any buffer of this context exists.
        // SAFETY: no buffer of this context exists yet.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = ctx.compute_capability().map_err(|e| format!("cannot query the device: {e}"))?;
        // Precompiled cubins (NEUROTWIN_KERNEL_DIR) or NVRTC: a cubin for the highest architecture supported up to
        // the GPU's (no driver JIT, so no PTX-ISA requirement on the driver); PTX only when NVRTC knows no
        // binary-compatible architecture.
        let (target, units) = crate::precompiled::kernels_for_device(major, minor)?;
        let mut modules = Vec::with_capacity(units.len());
        for (name, compiled) in units {
            let image = match compiled.kind {
                Kind::Cubin => Ptx::from_binary(compiled.bytes.clone()),
                Kind::Ptx => Ptx::from_src(compiled.ptx_text().unwrap_or_default()),
            };
            let module = ctx.load_module(image).map_err(|e| load_failure(name, target, &e.to_string()))?;
            modules.push((name, module));
        }
        let name = ctx.name().unwrap_or_else(|_| format!("device {ordinal}"));
        Ok(Self { ctx, target, modules, generated: Mutex::new(Vec::new()), name })
    }

    /// The device's context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// A new stream of its own for a consumer (graph capture needs a stream other than the legacy default one).
    pub fn new_stream(&self) -> Result<Arc<CudaStream>, String> {
        self.ctx.new_stream().map_err(|e| format!("cannot create a CUDA stream: {e}"))
    }

    /// What the kernels were compiled to (a cubin architecture or PTX).
    pub fn target(&self) -> Target {
        self.target
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Entry point `name` of kernel unit `unit` (a [`crate::KernelSource::name`], fixed or loaded by
    /// [`Device::load_generated`]).
    pub fn function(&self, unit: &str, name: &str) -> Result<CudaFunction, String> {
        let generated = self.generated.lock().unwrap_or_else(PoisonError::into_inner);
        let module = self.modules.iter().chain(generated.iter()).find(|(u, _)| *u == unit).map(|(_, m)| m);
        let module = module.ok_or_else(|| format!("kernel unit {unit} was not loaded"))?;
        module.load_function(name).map_err(|e| format!("{unit}::{name}: {e}"))
    }

    /// Compiles a unit generated at run time (`crate::generated::kernel_source`) with NVRTC for this device's
    /// target and loads it, once per process (by unit name). Needs libnvrtc even when the fixed units came from a
    /// precompiled folder.
    pub fn load_generated(&self, unit: &crate::KernelSource) -> Result<(), String> {
        let mut generated = self.generated.lock().unwrap_or_else(PoisonError::into_inner);
        if generated.iter().any(|(u, _)| *u == unit.name) {
            return Ok(());
        }
        let compiled = crate::nvrtc::compile_unit(unit, self.target)
            .map_err(|e| format!("the generated kernel {}: {e}", unit.file))?;
        let image = match compiled.kind {
            Kind::Cubin => Ptx::from_binary(compiled.bytes.clone()),
            Kind::Ptx => Ptx::from_src(compiled.ptx_text().unwrap_or_default()),
        };
        let module = self.ctx.load_module(image).map_err(|e| load_failure(unit.name, self.target, &e.to_string()))?;
        generated.push((unit.name, module));
        Ok(())
    }
}

/// The one-line reason a module did not load: for PTX, whether this driver is too old for this NVRTC's PTX.
fn load_failure(unit: &str, target: Target, err: &str) -> String {
    let mut why = format!("cannot load the {target} of kernel unit {unit}: {err}");
    if let Target::Ptx { .. } = target {
        let mut v = 0;
        // SAFETY: libcuda is loaded (a context exists); cuDriverGetVersion writes one int.
        let driver = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) }.result().map(|()| v as u32);
        if let (Ok(d), Ok(nvrtc)) = (driver, crate::nvrtc::nvrtc_version())
            && let Some(problem) = crate::arch::ptx_load_problem(d, nvrtc)
        {
            why = format!("{why} ({problem})");
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a usable GPU, opening a device is a one-line reason, not a panic, and asking again gives the same
    /// answer (nothing half-opened is cached).
    #[test]
    fn no_device_is_a_one_line_reason() {
        let first = device(0);
        if first.is_ok() {
            eprintln!("SKIP: a CUDA device is usable here");
            return;
        }
        let reason = first.unwrap_err();
        assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
        assert_eq!(device(0).unwrap_err(), reason);
        assert!(device(7).is_err());
    }
}
