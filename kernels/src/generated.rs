//! Kernels generated at run time (equation-defined models, `neurotwin_models::equations::cuda_source`): the
//! NVRTC-ready translation unit of a generated source, and its **host build** — the same source compiled by the
//! system C++ compiler through `host/shim.h` (`-ffp-contract=off`, as `build.rs` compiles the fixed kernels) into
//! a shared library loaded with `libloading`, so that tests run exactly the code a GPU gets and compare it bit for
//! bit with the CPU interpreter. The host build needs `c++` (or `$CXX`) at run time; NVRTC needs nothing else.

use std::path::PathBuf;
use std::process::Command;

use crate::host::{LifExpStepInput, generated_model_args};
use crate::packs::{HostEntry, ModelArgs, NeuronStepArgs};
use crate::{KernelSource, nvrtc_source};

/// A generated unit as a [`KernelSource`] with entry points `<name>_update` and `<name>_step` (the strings are
/// leaked: one per generated model and process).
pub fn kernel_source(name: &str, source: String) -> KernelSource {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let entries: &'static [&'static str] =
        Box::leak(vec![leak(format!("{name}_update")), leak(format!("{name}_step"))].into_boxed_slice());
    KernelSource {
        name: leak(name.to_string()),
        file: leak(format!("generated/{name}.cu")),
        source: leak(source),
        entry_points: entries,
    }
}

type UpdateFn = unsafe extern "C" fn(u32, u32, *const ModelArgs);

/// The host build of a generated model kernel.
pub struct HostBuild {
    _lib: libloading::Library,
    update: UpdateFn,
    step: HostEntry<NeuronStepArgs>,
    n_state: usize,
    n_channels: usize,
    dir: PathBuf,
}

/// Threads per block of the host launches (as the fixed kernels' wrappers).
const THREADS: u32 = 128;

/// Compiles `unit` (from [`kernel_source`]) for the host and loads it. `n_state` is the model's state variables per
/// neuron (with the refractory counter), `n_channels` its receptor channels. Errors name the compiler and its
/// first error line.
pub fn host_build(unit: &KernelSource, n_state: usize, n_channels: usize) -> Result<HostBuild, String> {
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // One folder per build: a library path is loaded once per process by the dynamic loader.
    let dir = std::env::temp_dir().join(format!("neurotwin-generated-{}-{}-{k}", unit.name, std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let shim = include_str!("../host/shim.h");
    std::fs::write(dir.join("shim.h"), shim).map_err(|e| format!("{}: {e}", dir.display()))?;
    let update = format!("{}_update", unit.name);
    let step = format!("{}_step", unit.name);
    let cpp = format!(
        "#include \"shim.h\"\n{}\nNT_HOST_ENTRY({update}, nt_model_args)\nNT_HOST_ENTRY({step}, nt_neuron_step_args)\n",
        nvrtc_source(unit)
    );
    let src = dir.join("generated.cpp");
    std::fs::write(&src, cpp).map_err(|e| format!("{}: {e}", src.display()))?;
    let lib_path = dir.join("libgenerated.so");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let out = Command::new(&cxx)
        .args(["-x", "c++", "-std=c++17", "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC", "-o"])
        .arg(&lib_path)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run the C++ compiler `{cxx}` for the host build of {}: {e}", unit.file))?;
    if !out.status.success() {
        let log = String::from_utf8_lossy(&out.stderr);
        let first = log.lines().find(|l| l.contains("error")).unwrap_or("(no error line)");
        return Err(format!("`{cxx}` failed on the host build of {}: {first}", unit.file));
    }
    // SAFETY: the library was just built from our source; its initialisers only set up thread-locals of the shim.
    let lib = unsafe { libloading::Library::new(&lib_path) }.map_err(|e| format!("{}: {e}", lib_path.display()))?;
    let symbol = format!("nt_host_{update}");
    // SAFETY: NT_HOST_ENTRY defines `void nt_host_<kernel>(unsigned, unsigned, const nt_model_args*)`, whose
    // layout `ModelArgs` mirrors (tested in packs.rs).
    let update: UpdateFn = unsafe { *lib.get::<UpdateFn>(symbol.as_bytes()).map_err(|e| format!("{symbol}: {e}"))? };
    let symbol = format!("nt_host_{step}");
    // SAFETY: as above, with `nt_neuron_step_args`, mirrored by `NeuronStepArgs`.
    let step: HostEntry<NeuronStepArgs> =
        unsafe { *lib.get::<HostEntry<NeuronStepArgs>>(symbol.as_bytes()).map_err(|e| format!("{symbol}: {e}"))? };
    Ok(HostBuild { _lib: lib, update, step, n_state, n_channels, dir })
}

impl Drop for HostBuild {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl HostBuild {
    /// The host entry of `<name>_step` (steps 1–5 fused, as every model's step kernel), valid while `self` lives.
    pub fn step_entry(&self) -> HostEntry<NeuronStepArgs> {
        self.step
    }

    /// Runs `<name>_update` over `input.i_ext.len()` neurons: `state` block-major with whole blocks of `n_state`
    /// variables; `spiked[i]` receives 1 when neuron `i` fired.
    pub fn update(&self, state: &mut [f64], input: &LifExpStepInput, spiked: &mut [u8]) {
        let n = input.i_ext.len();
        let n_blocks = n.div_ceil(64);
        assert_eq!(state.len(), n_blocks * self.n_state * 64, "state must hold whole blocks of {} vars", self.n_state);
        assert_eq!(input.syn.len(), n_blocks * self.n_channels * 64, "syn must hold n_blocks * n_channels * 64");
        assert!(input.param_set.len() == n && spiked.len() == n && input.forced.len() == n_blocks);
        let args = generated_model_args(self.n_channels, state, input, spiked);
        // SAFETY: the lengths are checked above against what the generated kernel indexes (state and syn within
        // block i / 64, param_set/i_ext/spiked[i], forced[i / 64]); the per-set constants are inside the library;
        // parameter sets must be < the number the source was generated for (the caller's contract).
        unsafe { (self.update)(n.div_ceil(THREADS as usize) as u32, THREADS, &args) };
    }
}
