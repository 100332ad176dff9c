//! Every kernel module of [`KERNELS`] compiles with NVRTC for `compute_80` and `compute_90` (`fmad=false`), its
//! PTX defines every listed entry point and contains no FMA; with `NEUROTWIN_PTXAS` set, `ptxas -O3 -v` prints
//! the register/spill report per kernel.
//!
//! Needs `libnvrtc.so.12` on the loader path (no GPU, no CUDA install): `scripts/setup-cuda-tools.sh` installs
//! NVIDIA's pip wheels into `.venv-cuda` and writes `.venv-cuda/env.sh`; `make test` sets everything up. Without
//! the library the test prints SKIP, unless `NEUROTWIN_REQUIRE_NVRTC=1`, when it fails.

use std::path::PathBuf;
use std::process::Command;

use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use neurotwin_kernels::{KERNELS, nvrtc_source};

const ARCHS: &[(&str, &str)] = &[("compute_80", "sm_80"), ("compute_90", "sm_90")];

/// Whether the PTX defines kernel `name` (`.entry name(` or `.visible .entry name(`).
fn has_entry(ptx: &str, name: &str) -> bool {
    ptx.lines().any(|line| {
        let l = line.trim_start();
        let rest = l.strip_prefix(".visible ").unwrap_or(l);
        rest.strip_prefix(".entry ")
            .is_some_and(|r| r.strip_prefix(name).is_some_and(|after| after.trim_start().starts_with('(')))
    })
}

#[test]
fn kernels_compile_with_nvrtc() {
    // cudarc panics on first use if it cannot load the library: check first.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        if std::env::var("NEUROTWIN_REQUIRE_NVRTC").as_deref() == Ok("1") {
            panic!(
                "NEUROTWIN_REQUIRE_NVRTC=1 but libnvrtc.so.12 cannot be loaded: run scripts/setup-cuda-tools.sh and \
                 put NEUROTWIN_NVRTC_LIB_DIR from .venv-cuda/env.sh on LD_LIBRARY_PATH"
            );
        }
        println!("SKIP: libnvrtc not found (run scripts/setup-cuda-tools.sh)");
        return;
    }
    let ptxas = std::env::var_os("NEUROTWIN_PTXAS").filter(|p| !p.is_empty()).map(PathBuf::from);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nvrtc_compile");
    std::fs::create_dir_all(&dir).unwrap();

    for k in KERNELS {
        let src = nvrtc_source(k);
        for &(arch, sm) in ARCHS {
            let opts = CompileOptions { arch: Some(arch), fmad: Some(false), ..Default::default() };
            let ptx = compile_ptx_with_opts(&src, opts)
                .unwrap_or_else(|e| panic!("{} ({arch}): NVRTC failed: {e:?}", k.file))
                .to_src();
            for e in k.entry_points {
                assert!(has_entry(&ptx, e), "{} ({arch}): no `.entry {e}` in the PTX", k.file);
            }
            assert!(!ptx.contains("fma.rn"), "{} ({arch}): PTX contains fma.rn", k.file);

            let stem = k.file.trim_end_matches(".cu").replace('/', "_");
            let ptx_path = dir.join(format!("{stem}.{sm}.ptx"));
            std::fs::write(&ptx_path, &ptx).unwrap();
            println!("nvrtc: {} -> {} ({} bytes)", k.file, ptx_path.display(), ptx.len());

            if let Some(ptxas) = &ptxas {
                let out = Command::new(ptxas)
                    .arg(format!("-arch={sm}"))
                    .args(["-O3", "-v"])
                    .arg(&ptx_path)
                    .arg("-o")
                    .arg(ptx_path.with_extension("cubin"))
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run {}: {e}", ptxas.display()));
                let report =
                    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
                assert!(out.status.success(), "ptxas failed on {} ({sm}):\n{report}", k.file);
                println!("ptxas -arch={sm} -O3 -v {}:", k.file);
                for line in report.lines() {
                    println!("    {line}");
                }
            }
        }
    }
}
