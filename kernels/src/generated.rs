//! Kernels generated at run time (equation-defined models, `neurotwin_models::equations::cuda_source`): the
//! NVRTC-ready translation unit of a generated source, and its **host build** — the same source compiled by the
//! system C++ compiler through `host/shim.h` (`-ffp-contract=off`, as `build.rs` compiles the fixed kernels) into
//! a shared library loaded with `libloading`, so that tests run exactly the code a GPU gets and compare it bit for
//! bit with the CPU interpreter. The host build needs `c++` (or `$CXX`) at run time; NVRTC needs nothing else.

use std::path::PathBuf;
use std::process::Command;

use crate::host::{LifExpStepInput, generated_model_args};
use crate::native_cache::NativeCache;
use crate::packs::{HostEntry, ModelArgs, NeuronStepArgs};
use crate::{KernelSource, inline_headers, nvrtc_source};

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
    let update = format!("{}_update", unit.name);
    let step = format!("{}_step", unit.name);
    let cpp = format!(
        "{}\nNT_HOST_ENTRY({update}, nt_model_args)\nNT_HOST_ENTRY({step}, nt_neuron_step_args)\n",
        nvrtc_source(unit)
    );
    let (lib, dir) = build_shared_library(unit.name, unit.file, &cpp, &["-O2"])?;
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

/// Compiles the C++ translation unit `cpp` (which may `#include` the kernels crate's headers by name, inlined
/// here; `shim.h` comes first) with the system C++ compiler (`$CXX`, else `c++`) into a shared library in a fresh
/// folder and loads it. Always `-ffp-contract=off -fno-fast-math` (no fused multiply-add, IEEE semantics), plus
/// `flags`. `name` names the folder, `file` the source in errors (with the compiler's first error line).
fn build_shared_library(
    name: &str,
    file: &str,
    cpp: &str,
    flags: &[&str],
) -> Result<(libloading::Library, PathBuf), String> {
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // One folder per build: a library path is loaded once per process by the dynamic loader.
    let dir = std::env::temp_dir().join(format!("neurotwin-generated-{name}-{}-{k}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = (|| {
        for (header, text) in
            [("shim.h", include_str!("../host/shim.h")), ("native.h", include_str!("../host/native.h"))]
        {
            std::fs::write(dir.join(header), text).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let src = dir.join("generated.cpp");
        let text = format!("#include \"shim.h\"\n{}", inline_headers(file, cpp));
        std::fs::write(&src, text).map_err(|e| format!("{}: {e}", src.display()))?;
        let lib_path = dir.join("libgenerated.so");
        let cxx = compiler();
        let out = Command::new(&cxx)
            .args(["-x", "c++", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC"])
            .args(flags)
            .arg("-o")
            .arg(&lib_path)
            .arg(&src)
            .output()
            .map_err(|e| format!("cannot run the C++ compiler `{cxx}` (set CXX to another) for {file}: {e}"))?;
        if !out.status.success() {
            let log = String::from_utf8_lossy(&out.stderr);
            let first = log.lines().find(|l| l.contains("error")).unwrap_or("(no error line)");
            return Err(format!("`{cxx}` failed on {file}: {first}"));
        }
        // SAFETY: the library was just built from our source; its initialisers only set up thread-locals of the
        // shim.
        unsafe { libloading::Library::new(&lib_path) }.map_err(|e| format!("{}: {e}", lib_path.display()))
    })();
    match result {
        Ok(lib) => Ok((lib, dir)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// The native CPU block function of an equation-defined model
/// (`neurotwin_models::equations::native_source`): advances the 64 lanes of one block
/// (`state`, `syn`, `i_ext`, `K`, refractory steps, forced lanes) and returns the spike mask.
pub type NativeBlockFn = unsafe extern "C" fn(*mut f64, *const f64, *const f64, *const f64, f64, u64) -> u64;

/// The ring entry of the native code (`<name>_ring`): advances one block reading each input channel's 64
/// fixed-point ring sums (`rings[c]`, cleared), scaled by `inv_scale`, plus the optional extra terms
/// (channel-major, null for none); `K`, refractory steps as for [`NativeBlockFn`]. Returns the spike mask.
pub type NativeRingFn = unsafe extern "C" fn(*mut f64, *const *mut i64, f64, *const f64, *const f64, f64) -> u64;

/// A native block function and the library holding it.
pub struct NativeBuild {
    _lib: libloading::Library,
    block: NativeBlockFn,
    ring: NativeRingFn,
    /// The build folder (removed on drop); `None` when loaded from the cache.
    dir: Option<PathBuf>,
    /// The compiler flags (optimisation, instruction set, vector width).
    pub flags: Vec<&'static str>,
    /// Whether the library came from the on-disk cache (`native_cache.rs`) instead of the compiler.
    pub cached: bool,
}

/// Compiles `source` (from `native_source`, whose functions are named `name` and `<name>_ring`) with `-O3` and
/// the vector instructions of this CPU ([`vector_widths`], detected at run time; never fused multiply–add, so the
/// results do not depend on the instruction set or the vector width), and loads it. `-fno-trapping-math` lets
/// the compiler evaluate both sides of the body's selects in vector registers (it then assumes no
/// floating-point trap is observed: none is enabled in our processes; every value is still one IEEE operation,
/// in order); `-fno-math-errno` makes `sqrt` the correctly rounded instruction without an `errno` call. Needs
/// `c++` (or `$CXX`) at run time.
pub fn native_build(name: &str, source: &str) -> Result<NativeBuild, String> {
    let (_, widest) = vector_widths().swap_remove(0);
    native_build_with(name, source, &widest)
}

/// [`native_build`] with the vector flags `vector` (one entry of [`vector_widths`]).
pub fn native_build_with(name: &str, source: &str, vector: &[&'static str]) -> Result<NativeBuild, String> {
    let mut flags = vec!["-O3", "-fno-trapping-math", "-fno-math-errno"];
    flags.extend(vector);
    // What determines the library: the source, the flags and the compiler (the cache's key).
    let text = format!("{flags:?}\n{}\n{source}", compiler_identity()?);
    let cache = NativeCache::from_env();
    let (lib, dir, cached) = match cache.as_ref().and_then(|c| c.lookup(&text)) {
        Some(path) => {
            // SAFETY: the cached library was built from exactly this text (checked by `lookup`).
            let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| format!("{}: {e}", path.display()))?;
            (lib, None, true)
        }
        None => {
            let (lib, dir) = build_shared_library(name, &format!("generated/{name}.cpp"), source, &flags)?;
            if let Some(c) = &cache {
                // Best effort: a read-only or full cache only costs the next process a compile.
                let _ = c.store(&text, &dir.join("libgenerated.so"));
            }
            (lib, Some(dir), false)
        }
    };
    // SAFETY: `native_source` defines `extern "C" unsigned long long <name>(double*, const double*, const double*,
    // const double*, double, unsigned long long)`, which `NativeBlockFn` mirrors, and `<name>_ring(double*,
    // long long* const*, double, const double*, const double*, double)`, which `NativeRingFn` mirrors.
    let block: NativeBlockFn =
        unsafe { *lib.get::<NativeBlockFn>(name.as_bytes()).map_err(|e| format!("{name}: {e}"))? };
    let ring_name = format!("{name}_ring");
    // SAFETY: as above.
    let ring: NativeRingFn =
        unsafe { *lib.get::<NativeRingFn>(ring_name.as_bytes()).map_err(|e| format!("{ring_name}: {e}"))? };
    Ok(NativeBuild { _lib: lib, block, ring, dir, flags, cached })
}

/// The C++ compiler's `--version` output (once per process and compiler), part of the cache key.
fn compiler_identity() -> Result<String, String> {
    static IDS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
        std::sync::OnceLock::new();
    let cxx = compiler();
    let mut ids = IDS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(id) = ids.get(&cxx) {
        return Ok(id.clone());
    }
    let out = Command::new(&cxx)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run the C++ compiler `{cxx}` (set CXX to another): {e}"))?;
    let id = format!("{cxx}: {}", String::from_utf8_lossy(&out.stdout).trim());
    ids.insert(cxx, id.clone());
    Ok(id)
}

/// The C++ compiler of host builds: `$CXX`, else `c++`.
fn compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "c++".into())
}

/// The vector widths this CPU runs native code at, widest first, each with its compiler flags: `NT_W` (lanes per
/// vector in `host/native.h`) 8 with AVX-512 F/DQ/VL, 4 with AVX2, 2 everywhere (SSE2, or portable loops off
/// x86-64). [`native_build`] takes the first; every width gives the same bits (tested).
pub fn vector_widths() -> Vec<(usize, Vec<&'static str>)> {
    let mut widths = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512dq") && has!("avx512vl") {
            widths.push((8, vec!["-mavx512f", "-mavx512dq", "-mavx512vl", "-DNT_W=8"]));
        }
        if has!("avx2") {
            widths.push((4, vec!["-mavx2", "-DNT_W=4"]));
        }
    }
    widths.push((2, vec!["-DNT_W=2"]));
    widths
}

impl NativeBuild {
    /// Lanes per vector (`NT_W` of the flags).
    pub fn lanes(&self) -> usize {
        self.flags.iter().find_map(|f| f.strip_prefix("-DNT_W=")).and_then(|w| w.parse().ok()).unwrap_or(2)
    }

    /// The block function, valid while `self` lives.
    pub fn block_fn(&self) -> NativeBlockFn {
        self.block
    }

    /// The ring entry, valid while `self` lives.
    pub fn ring_fn(&self) -> NativeRingFn {
        self.ring
    }
}

impl Drop for NativeBuild {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
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
