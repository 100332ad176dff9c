//! The caller-facing NVRTC API: [`nvrtc::compile_for_device`] picks the target from NVRTC's own architecture
//! list and compiles every unit once per process (cache); errors are one line and name what failed.
//! Skips like `nvrtc_compile` without libnvrtc.

use std::sync::Arc;

use neurotwin_kernels::arch::Target;
use neurotwin_kernels::nvrtc::{self, Kind};
use neurotwin_kernels::{KERNELS, KernelSource};

use crate::nvrtc_compile::{check_cubin, nvrtc_or_skip};

/// PTX ISA version emitted by NVRTC of a CUDA release (PTX ISA release notes).
const PTX_ISA: &[((u32, u32), &str)] = &[((12, 8), "8.7"), ((12, 9), "8.8"), ((13, 0), "9.0")];

#[test]
fn supported_archs_and_version() {
    if !nvrtc_or_skip() {
        return;
    }
    let archs = nvrtc::supported_archs().unwrap();
    println!("NVRTC {:?} supports {archs:?}", nvrtc::nvrtc_version().unwrap());
    assert!(archs.windows(2).all(|w| w[0] < w[1]), "{archs:?}");
    // Every NVRTC from CUDA 11.8 to 13.x compiles for Ampere and Hopper.
    assert!(archs.contains(&80) && archs.contains(&90), "{archs:?}");

    // The version NVRTC reports is the one its PTX header states.
    let version = nvrtc::nvrtc_version().unwrap();
    let ptx = nvrtc::compile_unit(&KERNELS[0], Target::Ptx { compute: 80 }).unwrap().ptx_text().unwrap();
    let header = ptx.lines().find_map(|l| l.trim().strip_prefix(".version ")).expect(".version line").trim();
    match PTX_ISA.iter().find(|(v, _)| *v == version) {
        Some((_, isa)) => assert_eq!(header, *isa, "NVRTC {version:?}"),
        None => println!("NVRTC {version:?} emits PTX ISA {header} (not in the table)"),
    }
}

#[test]
fn compile_for_device_picks_cubin_and_caches() {
    if !nvrtc_or_skip() {
        return;
    }
    // H100 (9.0): NVRTC lists sm_90, so a cubin for exactly sm_90.
    let (target, units) = nvrtc::compile_for_device(9, 0).unwrap();
    assert_eq!(target, Target::Cubin { sm: 90 });
    let names: Vec<&str> = units.iter().map(|(n, _)| *n).collect();
    let want: Vec<&str> = KERNELS.iter().map(|k| k.name).collect();
    assert_eq!(names, want);
    for ((_, c), k) in units.iter().zip(KERNELS) {
        assert_eq!(c.kind, Kind::Cubin, "{}", k.file);
        check_cubin(k, 90, &c.bytes);
    }
    // A second backend on the same device gets the very same compiled images (no recompilation).
    let (target2, units2) = nvrtc::compile_for_device(9, 0).unwrap();
    assert_eq!(target2, target);
    assert!(units.iter().zip(&units2).all(|((_, a), (_, b))| Arc::ptr_eq(a, b)));
}

#[test]
fn unusable_devices_are_one_line_errors() {
    if !nvrtc_or_skip() {
        return;
    }
    // Kepler 3.5 is older than any NVRTC 12 architecture (sm_50 and up).
    let err = nvrtc::compile_for_device(3, 5).unwrap_err();
    assert!(err.contains("3.5") && err.contains("older") && !err.contains('\n'), "{err}");
    let err = nvrtc::compile_for_device(8, 10).unwrap_err();
    assert!(err.contains("8.10") && !err.contains('\n'), "{err}");
}

#[test]
fn compile_error_names_file_target_and_first_error() {
    if !nvrtc_or_skip() {
        return;
    }
    let broken = KernelSource {
        name: "broken",
        file: "cuda/broken.cu",
        source: "extern \"C\" __global__ void k(float *x) {\n  x[0] = nt_undefined_thing;\n}\n",
        entry_points: &["k"],
    };
    let err = nvrtc::compile_unit(&broken, Target::Cubin { sm: 90 }).unwrap_err();
    assert!(err.contains("cuda/broken.cu") && err.contains("sm_90"), "{err}");
    assert!(err.contains("nt_undefined_thing") && err.contains("error"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    let err = nvrtc::compile_unit(&broken, Target::Ptx { compute: 80 }).unwrap_err();
    assert!(err.contains("compute_80") && err.contains("nt_undefined_thing"), "{err}");
    // An architecture NVRTC does not know is refused by NVRTC itself, not by this crate.
    let err = nvrtc::compile_unit(&KERNELS[0], Target::Cubin { sm: 42 }).unwrap_err();
    println!("{err}");
    assert!(err.contains("sm_42") && !err.contains('\n'), "{err}");
}

/// The bundle's cubin folder: what `write_cubins` writes is what `load_for_device` returns (byte for byte the
/// NVRTC cubin), chosen by the binary-compatibility rule for the GPU.
#[test]
fn precompiled_cubins_round_trip() {
    use neurotwin_kernels::precompiled::{complete_archs, load_for_device, write_cubins};
    if !nvrtc_or_skip() {
        return;
    }
    let dir = tempfile_dir("precompiled");
    let written = write_cubins(&dir, &[80]).unwrap();
    assert_eq!(written.len(), KERNELS.len());
    assert_eq!(complete_archs(&dir), vec![80]);
    // An 8.9 GPU (Ada) runs sm_80 cubins; the units are the cached NVRTC output, byte for byte.
    let (target, units) = load_for_device(&dir, 8, 9).unwrap();
    assert_eq!(target, Target::Cubin { sm: 80 });
    for (unit, (name, c)) in KERNELS.iter().zip(&units) {
        assert_eq!(*name, unit.name);
        check_cubin(unit, 80, &c.bytes);
        assert_eq!(c.bytes, nvrtc::compile_cached(unit, Target::Cubin { sm: 80 }).unwrap().bytes, "{}", unit.file);
    }
    // A Hopper GPU cannot run them: a one-line reason that says how to rebuild.
    let e = load_for_device(&dir, 9, 0).unwrap_err();
    assert!(e.contains("--arch 90") && !e.contains('\n'), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let d = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
