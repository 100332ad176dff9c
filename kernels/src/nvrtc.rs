//! Compiling [`KERNELS`] with NVRTC (cudarc's raw `nvrtc` API, library loaded at run time): a cubin for the
//! device's architecture where NVRTC supports a binary-compatible one, PTX otherwise ([`crate::arch`]).
//!
//! Every function first checks that `libnvrtc` can be loaded (cudarc panics on first use otherwise) and
//! returns a one-line `Err` instead. Options are exactly `--fmad=false` and the target's `-arch=…` (the kernels
//! mirror the CPU bit for bit; see the crate README).
//!
//! Loading the result with cudarc's driver API: a [`Kind::Cubin`] with
//! `ctx.load_module(Ptx::from_binary(compiled.bytes.clone()))`, a [`Kind::Ptx`] with
//! `ctx.load_module(Ptx::from_src(compiled.ptx_text().unwrap()))`.

use std::collections::HashMap;
use std::ffi::{CString, c_char};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::nvrtc::{result, sys};

use crate::arch::{self, Target};
use crate::{KERNELS, KernelSource, nvrtc_source};

/// What NVRTC produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An ELF cubin (`nvrtcGetCUBIN`).
    Cubin,
    /// PTX text (`nvrtcGetPTX`), without the trailing NUL.
    Ptx,
}

/// One compiled kernel unit.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Cubin or PTX.
    pub kind: Kind,
    /// The cubin image, or the PTX text as bytes (no NUL).
    pub bytes: Vec<u8>,
    /// NVRTC's program log (warnings; empty when there were none).
    pub log: String,
}

impl Compiled {
    /// The PTX text (`None` for a cubin).
    pub fn ptx_text(&self) -> Option<String> {
        match self.kind {
            Kind::Ptx => Some(String::from_utf8_lossy(&self.bytes).into_owned()),
            Kind::Cubin => None,
        }
    }
}

/// Whether `libnvrtc` can be loaded (by the names cudarc tries: `libnvrtc.so`, `libnvrtc.so.12`, …).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library by its candidate names.
    unsafe { sys::is_culib_present() }
}

fn ensure_nvrtc() -> Result<(), String> {
    if nvrtc_present() {
        Ok(())
    } else {
        Err("libnvrtc could not be loaded (needed to compile the CUDA kernels): put libnvrtc.so.12 on the loader path \
             (LD_LIBRARY_PATH)"
            .into())
    }
}

/// NVRTC's own version `(major, minor)` (`nvrtcVersion`), e.g. `(12, 9)`.
pub fn nvrtc_version() -> Result<(u32, u32), String> {
    ensure_nvrtc()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present; both pointers are valid for one write each.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }.result().map_err(|e| format!("nvrtcVersion failed: {e}"))?;
    Ok((major as u32, minor as u32))
}

/// The real architectures NVRTC can compile for (`nvrtcGetSupportedArchs`), ascending, as `10 * major + minor`.
pub fn supported_archs() -> Result<Vec<u32>, String> {
    ensure_nvrtc()?;
    let mut n = 0;
    // SAFETY: the library is present; `n` is valid for one write.
    unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) }
        .result()
        .map_err(|e| format!("nvrtcGetNumSupportedArchs failed: {e}"))?;
    let mut archs = vec![0; n.max(0) as usize];
    // SAFETY: `archs` has room for the `n` entries NVRTC writes.
    unsafe { sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) }
        .result()
        .map_err(|e| format!("nvrtcGetSupportedArchs failed: {e}"))?;
    let mut archs: Vec<u32> = archs.into_iter().map(|a| a as u32).collect();
    archs.sort_unstable();
    Ok(archs)
}

/// An NVRTC program, destroyed when dropped (on every path out of [`compile_unit`]).
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `create_program` and is destroyed only here, once.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

/// Bytes NVRTC hands out through a size query and a copy call; for text (`text`: PTX, log) without the trailing
/// NUL. A cubin is kept byte for byte (an ELF image may end in zero bytes).
fn fetch_bytes(
    prog: &Program,
    size: unsafe fn(sys::nvrtcProgram, *mut usize) -> sys::nvrtcResult,
    copy: unsafe fn(sys::nvrtcProgram, *mut c_char) -> sys::nvrtcResult,
    text: bool,
) -> Result<Vec<u8>, sys::nvrtcResult> {
    let mut n = 0usize;
    // SAFETY: `prog` is live; `n` is valid for one write.
    unsafe { size(prog.0, &mut n) }.result().map_err(|e| e.0)?;
    let mut buf = vec![0u8; n];
    // SAFETY: `buf` holds the `n` bytes NVRTC reported for this program.
    unsafe { copy(prog.0, buf.as_mut_ptr().cast()) }.result().map_err(|e| e.0)?;
    while text && buf.last() == Some(&0) {
        buf.pop();
    }
    Ok(buf)
}

/// The first line of an NVRTC log that reports an error (else its first non-empty line).
fn first_error_line(log: &str) -> Option<&str> {
    let lines = || log.lines().map(str::trim).filter(|l| !l.is_empty());
    lines().find(|l| l.contains("error")).or_else(|| lines().next())
}

/// Compiles one unit for `target` with options exactly `--fmad=false` and [`Target::arch_option`]. `Err` names
/// the `.cu` file, the target and the first error line of NVRTC's log. Not cached: see [`compile_cached`].
pub fn compile_unit(unit: &KernelSource, target: Target) -> Result<Compiled, String> {
    ensure_nvrtc()?;
    let fail = |what: String| format!("NVRTC failed on {} ({target}): {what}", unit.file);
    let src = CString::new(nvrtc_source(unit)).map_err(|_| fail("source contains a NUL byte".into()))?;
    let name = CString::new(unit.file).map_err(|_| fail("file name contains a NUL byte".into()))?;
    // `src` and `name` outlive `prog` (declared before it, so dropped after it).
    let prog = Program(result::create_program(&src, Some(&name)).map_err(|e| fail(e.to_string()))?);
    let options = ["--fmad=false".to_string(), target.arch_option()];
    // SAFETY: `prog` is live until dropped at the end of this function.
    let status = unsafe { result::compile_program(prog.0, &options) };
    let log = fetch_bytes(&prog, sys::nvrtcGetProgramLogSize, sys::nvrtcGetProgramLog, true)
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    if let Err(e) = status {
        return Err(fail(first_error_line(&log).map_or_else(|| e.to_string(), str::to_string)));
    }
    let (kind, bytes) = match target {
        Target::Cubin { .. } => (Kind::Cubin, fetch_bytes(&prog, sys::nvrtcGetCUBINSize, sys::nvrtcGetCUBIN, false)),
        Target::Ptx { .. } => (Kind::Ptx, fetch_bytes(&prog, sys::nvrtcGetPTXSize, sys::nvrtcGetPTX, true)),
    };
    let bytes = bytes.map_err(|e| fail(format!("cannot read the {kind:?} ({e:?})")))?;
    if bytes.is_empty() {
        return Err(fail(format!("NVRTC returned an empty {kind:?}")));
    }
    Ok(Compiled { kind, bytes, log })
}

/// Compiled units as `(unit name, compiled)`, in [`KERNELS`] order.
pub type CompiledUnits = Vec<(&'static str, Arc<Compiled>)>;

type Cache = Mutex<HashMap<(&'static str, Target), Arc<Compiled>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// [`compile_unit`] through a per-process cache keyed by (unit name, target): a unit is compiled once per
/// process and target; failures are not cached.
pub fn compile_cached(unit: &KernelSource, target: Target) -> Result<Arc<Compiled>, String> {
    // A panic inside NVRTC while the lock was held leaves the map itself consistent: keep using it.
    let mut map = cache().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(hit) = map.get(&(unit.name, target)) {
        return Ok(hit.clone());
    }
    let compiled = Arc::new(compile_unit(unit, target)?);
    map.insert((unit.name, target), compiled.clone());
    Ok(compiled)
}

/// Every unit of [`KERNELS`] for `target` (cached), as `(unit name, compiled)` in [`KERNELS`] order.
pub fn compile_all(target: Target) -> Result<CompiledUnits, String> {
    KERNELS.iter().map(|k| Ok((k.name, compile_cached(k, target)?))).collect()
}

/// For a GPU of compute capability `cc_major.cc_minor` (the driver's device attributes): chooses the target from
/// [`supported_archs`] ([`arch::choose_target`]) and compiles every unit of [`KERNELS`] for it (cached).
/// `Err` is a one-line reason (no libnvrtc, GPU too old for this NVRTC, compile error).
pub fn compile_for_device(cc_major: i32, cc_minor: i32) -> Result<(Target, CompiledUnits), String> {
    let gpu = arch::compute_capability(cc_major, cc_minor)?;
    let target = arch::choose_target(&supported_archs()?, gpu)?;
    Ok((target, compile_all(target)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without libnvrtc every entry point returns the one-line reason instead of letting cudarc panic (runs
    /// where the library is absent; the integration tests cover the other case).
    #[test]
    fn missing_library_is_an_error() {
        if nvrtc_present() {
            return;
        }
        for err in [supported_archs().unwrap_err(), compile_for_device(9, 0).unwrap_err()] {
            assert!(err.contains("libnvrtc") && !err.contains('\n'), "{err}");
        }
        assert!(nvrtc_version().is_err() && compile_unit(&KERNELS[0], Target::Ptx { compute: 80 }).is_err());
    }

    #[test]
    fn first_error_line_picks_the_error() {
        let log = "\nfoo.cu(3): warning: unused\nfoo.cu(7): error: identifier \"x\" is undefined\n\n1 error detected";
        assert_eq!(first_error_line(log), Some("foo.cu(7): error: identifier \"x\" is undefined"));
        assert_eq!(first_error_line("  \n just a note \n"), Some("just a note"));
        assert_eq!(first_error_line(""), None);
    }
}
