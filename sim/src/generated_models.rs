//! Equation-defined models (`model = "equations"`) on the kernel backends: the model's generated CUDA C
//! (`neurotwin_models::equations::cuda_source`), built once per process and model for the host
//! (`neurotwin_kernels::generated::host_build`, the system C++ compiler through the shim) and kept loaded, gives the
//! step kernel that the `cuda-host` backend launches in the one step sequence like any built-in model's; the `cuda`
//! backend compiles the same unit with NVRTC and loads it on its device (`Device::load_generated`), so both launch
//! the same source in the same sequence (the host build is kept for the kernel's host entry either way).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, OnceLock};

use neurotwin_kernels::generated::{HostBuild, host_build, kernel_source};
use neurotwin_kernels::packs::{KernelFn, NeuronStepArgs};
use neurotwin_models::equations::{self, Compiled};

use crate::error::SimError;

/// A generated model kernel and the library holding its host build.
pub struct GeneratedModel {
    /// The fused step kernel (`<name>_step`), host entry from the library.
    pub step: KernelFn<NeuronStepArgs>,
    /// The NVRTC unit, which the `cuda` backend compiles and loads on its device (`Device::load_generated`).
    pub unit: neurotwin_kernels::KernelSource,
    _host: HostBuild,
}

/// A model kernel generated in this process, compared by identity.
#[derive(Clone, Copy)]
pub struct GeneratedRef(pub &'static GeneratedModel);

impl PartialEq for GeneratedRef {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}
impl Eq for GeneratedRef {}
impl fmt::Debug for GeneratedRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "generated {}", self.0.step.unit)
    }
}

type Registry = Mutex<HashMap<String, &'static GeneratedModel>>;

/// The host-built kernel of the model with parameter sets `sets` (`n_state` variables, `n_channels` channels),
/// built on first use and kept for the process (one small library per distinct model).
pub fn host_model(sets: &[Compiled], n_state: usize, n_channels: usize) -> Result<GeneratedRef, SimError> {
    let err = |e: String| SimError::Setup(format!("the generated kernel of the equation-defined model: {e}"));
    // The unit is named by a hash of its source (generated once with a fixed name for the hash).
    let probe = equations::cuda_source("eq", sets).map_err(|e| err(e.to_string()))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    probe.hash(&mut h);
    let name = format!("eq_{:016x}", h.finish());
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let mut map = REGISTRY.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&g) = map.get(&probe) {
        return Ok(GeneratedRef(g));
    }
    let unit = kernel_source(&name, equations::cuda_source(&name, sets).map_err(|e| err(e.to_string()))?);
    let host = host_build(&unit, n_state, n_channels).map_err(err)?;
    let step = KernelFn { unit: unit.name, name: unit.entry_points[1], host: host.step_entry() };
    let g: &'static GeneratedModel = Box::leak(Box::new(GeneratedModel { step, unit, _host: host }));
    map.insert(probe, g);
    Ok(GeneratedRef(g))
}
