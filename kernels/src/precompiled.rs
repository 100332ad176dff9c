//! Cubins compiled ahead of time, for GPU machines without a usable NVRTC.
//!
//! A borrowed GPU machine may have only CUDA 13's `libnvrtc.so.13`, which this build's cudarc (CUDA 12 API)
//! does not load, or no NVRTC at all. The driver API loads a cubin without NVRTC, so `scripts/gpu-bundle.sh`
//! ships cubins made here (`neurotwin kernels --cubin-dir DIR`) and the CUDA backend reads them from the folder
//! named by [`KERNEL_DIR_ENV`] before trying NVRTC.
//!
//! File names are `<unit>.<source hash>.sm_<XY>.cubin`. The hash ([`source_hash`]) covers the exact text NVRTC
//! compiles, so a cubin of an edited kernel is never loaded: a stale folder is reported, not used.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::arch::{self, Target};
use crate::nvrtc::{Compiled, CompiledUnits, Kind, compile_unit};
use crate::{KERNELS, KernelSource, nvrtc_source};

/// Environment variable naming a folder of precompiled cubins.
pub const KERNEL_DIR_ENV: &str = "NEUROTWIN_KERNEL_DIR";

/// FNV-1a (64 bit; Fowler, Noll & Vo, IETF draft-eastlake-fnv, 2011) of the text NVRTC compiles for `unit`,
/// as 16 hex digits. Not cryptographic: it detects edits, not tampering.
pub fn source_hash(unit: &KernelSource) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in nvrtc_source(unit).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The file name of `unit`'s cubin for `sm_<sm>`.
pub fn cubin_name(unit: &KernelSource, sm: u32) -> String {
    format!("{}.{}.sm_{sm}.cubin", unit.name, source_hash(unit))
}

/// Compiles every unit of [`KERNELS`] to a cubin for each of `archs` (`10 * major + minor`) with NVRTC and
/// writes them into `dir` (created if missing); returns the files written. Needs libnvrtc, no GPU.
pub fn write_cubins(dir: &Path, archs: &[u32]) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::with_capacity(KERNELS.len() * archs.len());
    for &sm in archs {
        for unit in KERNELS {
            let c = compile_unit(unit, Target::Cubin { sm })?;
            let path = dir.join(cubin_name(unit, sm));
            let tmp = path.with_extension("cubin.tmp");
            std::fs::write(&tmp, &c.bytes)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The architectures for which `dir` holds a current cubin of every unit, ascending.
pub fn complete_archs(dir: &Path) -> Vec<u32> {
    (1..=200).filter(|&sm| KERNELS.iter().all(|u| dir.join(cubin_name(u, sm)).is_file())).collect()
}

/// Loads the cubins in `dir` for a GPU of compute capability `cc_major.cc_minor`: the highest complete
/// architecture that runs on it ([`arch::choose_target`] restricted to cubins). `Err` is a one-line reason
/// naming the folder and what it holds (e.g. only cubins of an older kernel source).
pub fn load_for_device(dir: &Path, cc_major: i32, cc_minor: i32) -> Result<(Target, CompiledUnits), String> {
    let gpu = arch::compute_capability(cc_major, cc_minor)?;
    let archs = complete_archs(dir);
    let target = match arch::choose_target(&archs, gpu) {
        Ok(t @ Target::Cubin { .. }) => t,
        _ => {
            let found = if archs.is_empty() {
                "no complete set of cubins for this kernel source".to_string()
            } else {
                let list: Vec<String> = archs.iter().map(|a| format!("sm_{a}")).collect();
                format!("cubins for {}", list.join(", "))
            };
            return Err(format!(
                "{} ({KERNEL_DIR_ENV}) has {found}, none runs on compute capability {cc_major}.{cc_minor}: \
                 rebuild it with `neurotwin kernels --cubin-dir {} --arch {cc_major}{cc_minor}`",
                dir.display(),
                dir.display()
            ));
        }
    };
    let Target::Cubin { sm } = target else { unreachable!("matched above") };
    let mut units = Vec::with_capacity(KERNELS.len());
    for unit in KERNELS {
        let path = dir.join(cubin_name(unit, sm));
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if !bytes.starts_with(b"\x7fELF") {
            return Err(format!("{} is not a cubin (no ELF header): rebuild the folder", path.display()));
        }
        units.push((unit.name, Arc::new(Compiled { kind: Kind::Cubin, bytes, log: String::new() })));
    }
    Ok((target, units))
}

/// The kernels for a GPU of compute capability `cc_major.cc_minor`: from the folder in [`KERNEL_DIR_ENV`] if
/// set, else compiled by NVRTC ([`crate::nvrtc::compile_for_device`]). `Err` is a one-line reason.
pub fn kernels_for_device(cc_major: i32, cc_minor: i32) -> Result<(Target, CompiledUnits), String> {
    match std::env::var_os(KERNEL_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => load_for_device(Path::new(&dir), cc_major, cc_minor),
        None => crate::nvrtc::compile_for_device(cc_major, cc_minor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_fnv1a_and_changes_with_the_source() {
        // FNV-1a 64 test vectors from the reference implementation: "" and "a".
        let fnv = |s: &str| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in s.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h
        };
        assert_eq!(fnv(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c);
        let a = source_hash(&KERNELS[0]);
        let mut edited = KERNELS[0];
        edited.source = "extern \"C\" __global__ void other() {}";
        assert_ne!(a, source_hash(&edited));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn a_missing_or_stale_folder_is_a_located_error() {
        let dir = std::env::temp_dir().join(format!("nt-precompiled-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A cubin of every unit but under another source hash: stale, never loaded.
        for u in KERNELS {
            std::fs::write(dir.join(format!("{}.0000000000000000.sm_90.cubin", u.name)), b"\x7fELF").unwrap();
        }
        let e = load_for_device(&dir, 9, 0).unwrap_err();
        assert!(
            e.contains(&dir.display().to_string()) && e.contains("no complete set") && e.contains("--arch 90"),
            "{e}"
        );
        // Current names for sm_80 only: a 9.0 GPU runs sm_80 cubins? No (different major): refused.
        for u in KERNELS {
            std::fs::write(dir.join(cubin_name(u, 80)), b"\x7fELF-test").unwrap();
        }
        assert_eq!(complete_archs(&dir), vec![80]);
        assert!(load_for_device(&dir, 9, 0).unwrap_err().contains("cubins for sm_80,"));
        // An 8.6 GPU takes them (same major, higher minor).
        let (t, units) = load_for_device(&dir, 8, 6).unwrap();
        assert_eq!(t, Target::Cubin { sm: 80 });
        assert_eq!(units.len(), KERNELS.len());
        assert_eq!(units[0].1.bytes, b"\x7fELF-test");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
