//! Every kernel unit of [`KERNELS`] compiles through [`nvrtc::compile_unit`] (`--fmad=false`) to a **cubin** for
//! sm_80, sm_89 and sm_90 (an ELF64 image for `EM_CUDA` whose symbol table has every listed entry point as a
//! global function) and to **PTX** for compute_80 and compute_90 (every entry point is a `.entry`, no FMA, the
//! `.target` matches); with `NEUROTWIN_PTXAS` set, `ptxas -arch=sm_90 -O3 -v` prints the register/spill report
//! per kernel. Prints per-unit cubin sizes and the total compile time.
//!
//! Needs `libnvrtc.so.12` on the loader path (no GPU, no CUDA install): `scripts/setup-cuda-tools.sh` installs
//! NVIDIA's pip wheels into `.venv-cuda` and writes `.venv-cuda/env.sh`; `make test` sets everything up. Without
//! the library the tests print SKIP, unless `NEUROTWIN_REQUIRE_NVRTC=1`, when they fail.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use neurotwin_kernels::arch::Target;
use neurotwin_kernels::nvrtc::{self, Kind};
use neurotwin_kernels::{KERNELS, KernelSource};

use crate::cubin_elf;

/// Architectures every unit is compiled for as a cubin (Ampere A100, Ada, Hopper).
const CUBIN_ARCHS: &[u32] = &[80, 89, 90];
/// Virtual architectures every unit is compiled for as PTX.
const PTX_ARCHS: &[u32] = &[80, 90];
/// The one architecture of the ptxas report (one per unit keeps CI short).
const PTXAS_ARCH: u32 = 90;

/// `true` when libnvrtc can be loaded; otherwise prints SKIP, or panics under `NEUROTWIN_REQUIRE_NVRTC=1`.
pub fn nvrtc_or_skip() -> bool {
    // cudarc panics on first use if it cannot load the library: `nvrtc_present` checks first.
    if nvrtc::nvrtc_present() {
        return true;
    }
    if std::env::var("NEUROTWIN_REQUIRE_NVRTC").as_deref() == Ok("1") {
        panic!(
            "NEUROTWIN_REQUIRE_NVRTC=1 but libnvrtc.so.12 cannot be loaded: run scripts/setup-cuda-tools.sh and put \
             NEUROTWIN_NVRTC_LIB_DIR from .venv-cuda/env.sh on LD_LIBRARY_PATH"
        );
    }
    println!("SKIP: libnvrtc not found (run scripts/setup-cuda-tools.sh)");
    false
}

/// Whether the PTX defines kernel `name` (`.entry name(` or `.visible .entry name(`).
fn has_entry(ptx: &str, name: &str) -> bool {
    ptx.lines().any(|line| {
        let l = line.trim_start();
        let rest = l.strip_prefix(".visible ").unwrap_or(l);
        rest.strip_prefix(".entry ")
            .is_some_and(|r| r.strip_prefix(name).is_some_and(|after| after.trim_start().starts_with('(')))
    })
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nvrtc_compile");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stem(k: &KernelSource) -> String {
    k.file.trim_end_matches(".cu").replace('/', "_")
}

/// Checks one cubin: ELF magic, ELF64 for `EM_CUDA` and architecture `sm`, every entry point a global function,
/// a made-up name absent.
pub fn check_cubin(k: &KernelSource, sm: u32, bytes: &[u8]) {
    assert!(bytes.starts_with(b"\x7fELF"), "{} (sm_{sm}): no ELF magic", k.file);
    let elf = cubin_elf::parse(bytes).unwrap_or_else(|e| panic!("{} (sm_{sm}): bad ELF: {e}", k.file));
    assert_eq!(elf.machine, cubin_elf::EM_CUDA, "{} (sm_{sm}): e_machine", k.file);
    let found = elf.cuda_sm().unwrap_or_else(|| panic!("{}: unknown cubin ELF ABI {}", k.file, elf.abi_version));
    assert_eq!(found, sm, "{} (sm_{sm}): e_flags {:#x} name another architecture", k.file, elf.flags);
    for e in k.entry_points {
        assert!(elf.has_global_function(e), "{} (sm_{sm}): no global function symbol `{e}` in the cubin", k.file);
    }
    assert!(!elf.has_global_function("nt_no_such_kernel"), "{}: symbol check accepts anything", k.file);
}

#[test]
fn kernels_compile_to_cubin() {
    if !nvrtc_or_skip() {
        return;
    }
    let dir = out_dir();
    let start = Instant::now();
    let mut total = vec![0usize; CUBIN_ARCHS.len()];
    for k in KERNELS {
        let mut sizes = Vec::new();
        for (i, &sm) in CUBIN_ARCHS.iter().enumerate() {
            let c = nvrtc::compile_unit(k, Target::Cubin { sm }).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.kind, Kind::Cubin);
            check_cubin(k, sm, &c.bytes);
            std::fs::write(dir.join(format!("{}.sm_{sm}.cubin", stem(k))), &c.bytes).unwrap();
            sizes.push(format!("sm_{sm} {} B", c.bytes.len()));
            total[i] += c.bytes.len();
        }
        println!("cubin: {:<20} {}", k.file, sizes.join(", "));
    }
    println!(
        "cubin: {} units x {:?}: total {:?} B, compiled in {:.1} s",
        KERNELS.len(),
        CUBIN_ARCHS,
        total,
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn kernels_compile_to_ptx() {
    if !nvrtc_or_skip() {
        return;
    }
    let ptxas = std::env::var_os("NEUROTWIN_PTXAS").filter(|p| !p.is_empty()).map(PathBuf::from);
    let dir = out_dir();
    let start = Instant::now();
    for k in KERNELS {
        for &compute in PTX_ARCHS {
            let c = nvrtc::compile_unit(k, Target::Ptx { compute }).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.kind, Kind::Ptx);
            let ptx = c.ptx_text().unwrap();
            assert!(!ptx.contains('\0'), "{} (compute_{compute}): NUL in the PTX text", k.file);
            assert!(
                ptx.lines().any(|l| l.trim() == format!(".target sm_{compute}")),
                "{} (compute_{compute}): no `.target sm_{compute}`",
                k.file
            );
            for e in k.entry_points {
                assert!(has_entry(&ptx, e), "{} (compute_{compute}): no `.entry {e}` in the PTX", k.file);
            }
            assert!(!ptx.contains("fma.rn"), "{} (compute_{compute}): PTX contains fma.rn", k.file);
            let ptx_path = dir.join(format!("{}.sm_{compute}.ptx", stem(k)));
            std::fs::write(&ptx_path, &ptx).unwrap();
            println!("nvrtc: {} -> {} ({} bytes)", k.file, ptx_path.display(), ptx.len());
            if compute == PTXAS_ARCH
                && let Some(ptxas) = &ptxas
            {
                ptxas_report(ptxas, k, &ptx_path);
            }
        }
    }
    println!("ptx: {} units x {PTX_ARCHS:?} compiled in {:.1} s", KERNELS.len(), start.elapsed().as_secs_f64());
}

/// Runs `ptxas -arch=sm_<PTXAS_ARCH> -O3 -v` on the PTX and prints its register/stack/spill report.
fn ptxas_report(ptxas: &PathBuf, k: &KernelSource, ptx_path: &std::path::Path) {
    let sm = format!("sm_{PTXAS_ARCH}");
    let out = Command::new(ptxas)
        .arg(format!("-arch={sm}"))
        .args(["-O3", "-v"])
        .arg(ptx_path)
        .arg("-o")
        .arg(ptx_path.with_extension("ptxas.cubin"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", ptxas.display()));
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "ptxas failed on {} ({sm}):\n{report}", k.file);
    println!("ptxas -arch={sm} -O3 -v {}:", k.file);
    for line in report.lines() {
        println!("    {line}");
    }
}

/// Blackwell (sm_100, sm_120; NVRTC ≥ 12.8) cubins are well-formed too: one small unit each, so CI stays short.
#[test]
fn blackwell_cubins() {
    if !nvrtc_or_skip() {
        return;
    }
    let archs = nvrtc::supported_archs().unwrap();
    for sm in [100, 120] {
        if !archs.contains(&sm) {
            println!("SKIP sm_{sm}: this NVRTC supports {archs:?}");
            continue;
        }
        let k = &neurotwin_kernels::LIF_EXP;
        let c = nvrtc::compile_unit(k, Target::Cubin { sm }).unwrap_or_else(|e| panic!("{e}"));
        check_cubin(k, sm, &c.bytes);
        println!("cubin: {} sm_{sm} {} B", k.file, c.bytes.len());
    }
}

/// The CUDA C generated for equation-defined models (`neurotwin_models::equations::cuda_source`: an exact linear
/// model and an RK4 one with `exp`, `min`, `tanh`, `sqrt` and integer powers) compiles with NVRTC to PTX for
/// compute_80 and to a cubin for sm_90 with both entry points.
#[test]
fn generated_equation_kernels_compile() {
    use neurotwin_kernels::generated::kernel_source;
    use neurotwin_models::equations::{self, EquationParams, Method};
    use neurotwin_models::{CompiledModel, NeuronParams};
    if !nvrtc_or_skip() {
        return;
    }
    let map = neurotwin_models::testing::string_map;
    let model = |method: Method, eq: &str| EquationParams {
        equations: eq.into(),
        threshold: "V >= V_th".into(),
        reset: "V = V_reset".into(),
        refractory: Some("2 ms".into()),
        clamp: vec!["V".into()],
        parameters: map(&[
            ("C_m", "250 pF"),
            ("tau_m", "10 ms"),
            ("E_L", "-70 mV"),
            ("V_th", "-55 mV"),
            ("V_reset", "-70 mV"),
        ]),
        inputs: map(&[("exc", "I_ex += w"), ("inh", "I_ex += w")]),
        init: map(&[("V", "E_L")]),
        method,
        substeps: 2,
        input_timing: Default::default(),
    };
    let cases = [
        (
            "eq_exact",
            model(Method::Exact, "dV/dt = -(V - E_L)/tau_m + (I_ex + I_stim)/C_m : mV\ndI_ex/dt = -I_ex/(2*ms) : pA"),
        ),
        (
            "eq_rk4",
            model(
                Method::Rk4,
                "dV/dt = -(V - E_L)/tau_m + (I_ex + I_stim)/C_m + 2*mV/ms*exp((min(V, 0*mV) - 10*mV)/(2*mV)) \
                 + tanh(sqrt((V/mV)^2)/10)*mV/ms : mV\ndI_ex/dt = -I_ex/(2*ms) : pA",
            ),
        ),
    ];
    let channels = neurotwin_models::testing::exc_inh_channels();
    for (name, p) in cases {
        let m = CompiledModel::compile(&[NeuronParams::Equations(p)], &channels, 0.1).unwrap();
        let CompiledModel::Equations(sets) = &m else { panic!() };
        let unit = kernel_source(name, equations::cuda_source(name, sets).unwrap());
        let ptx = nvrtc::compile_unit(&unit, Target::Ptx { compute: 80 }).unwrap();
        let text = ptx.ptx_text().unwrap();
        for e in unit.entry_points {
            assert!(has_entry(&text, e), "{name}: no .entry {e}");
        }
        assert!(!text.contains("fma.rn"), "{name}: fused multiply-add in the PTX");
        let cubin = nvrtc::compile_unit(&unit, Target::Cubin { sm: 90 }).unwrap();
        assert_eq!(cubin.kind, Kind::Cubin);
        println!("nvrtc: generated {name}: PTX {} bytes, cubin {} bytes", text.len(), cubin.bytes.len());
    }
}
