//! Which code to ask NVRTC for, given the GPU and the NVRTC at hand (pure logic, no CUDA library needed).
//!
//! Architectures and compute capabilities are written as one number `10 * major + minor` (8.9 → `89`, 12.0 →
//! `120`), as `nvrtcGetSupportedArchs` returns them. The rules, from NVIDIA's documentation:
//!
//! - **cubin** (CUDA C++ Programming Guide, §"Binary Compatibility"): "a cubin object generated for compute
//!   capability X.y will only execute on devices of compute capability X.z where z ≥ y" — never across major
//!   revisions, never to a lower minor. The same section: "Binary compatibility is supported only for the
//!   desktop. It is not supported for Tegra. Also, the binary compatibility between desktop and Tegra is not
//!   supported." — so a Tegra arch ([`TEGRA_ARCHS`]) only runs on exactly that arch. Architecture-specific
//!   variants (`sm_90a`, `sm_100f`) are not in NVRTC's list and are never chosen.
//! - **PTX** (same guide, §"PTX Compatibility"): "PTX code produced for some specific compute capability can
//!   always be compiled to binary code of greater or equal compute capability", across majors too; the driver
//!   JIT-compiles it at load time.
//! - **PTX versus driver** (CUDA Compatibility guide, §"Minor Version Compatibility", and the PTX ISA release
//!   notes, one PTX ISA version per CUDA release, e.g. CUDA 12.9 → ISA 8.8): the driver's JIT accepts PTX only
//!   up to the ISA of its own CUDA version, so PTX from NVRTC X.Y loads only on a driver for CUDA ≥ X.Y
//!   (else `CUDA_ERROR_UNSUPPORTED_PTX_VERSION`). A cubin is not JIT-compiled and has no such requirement.

use std::fmt;

/// Tegra (integrated, Jetson) compute capabilities: 3.2 (K1), 5.3 (TX1/Nano), 6.2 (TX2), 7.2 (Xavier), 8.7
/// (Orin), 10.1 (Thor, CUDA 12.8–12.9) and 11.0 (Thor, CUDA ≥ 13.0). Source: NVIDIA's "CUDA GPUs – Compute
/// Capability" table and the CUDA 13.0 release notes (sm_101 renamed sm_110).
pub const TEGRA_ARCHS: &[u32] = &[32, 53, 62, 72, 87, 101, 110];

/// What NVRTC is asked to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Machine code for `sm_<sm>` (`-arch=sm_XY`, taken with `nvrtcGetCUBIN`); loads without the driver's JIT.
    Cubin {
        /// Architecture, `10 * major + minor`.
        sm: u32,
    },
    /// PTX for `compute_<compute>` (`-arch=compute_XY`), JIT-compiled by the driver at load time.
    Ptx {
        /// Virtual architecture, `10 * major + minor`.
        compute: u32,
    },
}

impl Target {
    /// The NVRTC option selecting this target: `-arch=sm_XY` or `-arch=compute_XY`.
    pub fn arch_option(self) -> String {
        match self {
            Target::Cubin { sm } => format!("-arch=sm_{sm}"),
            Target::Ptx { compute } => format!("-arch=compute_{compute}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Target::Cubin { sm } => write!(f, "cubin for sm_{sm}"),
            Target::Ptx { compute } => write!(f, "PTX for compute_{compute}"),
        }
    }
}

/// `10 * major + minor` from the two device attributes; `Err` for values no GPU reports (negative, minor ≥ 10).
pub fn compute_capability(major: i32, minor: i32) -> Result<u32, String> {
    if !(0..10).contains(&minor) || major < 0 {
        return Err(format!("invalid compute capability {major}.{minor} reported by the driver"));
    }
    Ok(major as u32 * 10 + minor as u32)
}

/// `X.Y` for an arch number.
fn dotted(arch: u32) -> String {
    format!("{}.{}", arch / 10, arch % 10)
}

/// Whether a cubin for `sm` executes on a GPU of compute capability `gpu` (module doc: same major, minor ≤ the
/// GPU's, exact match for Tegra).
pub fn cubin_runs_on(sm: u32, gpu: u32) -> bool {
    if TEGRA_ARCHS.contains(&sm) || TEGRA_ARCHS.contains(&gpu) {
        return sm == gpu;
    }
    sm / 10 == gpu / 10 && sm <= gpu
}

/// Whether PTX for `compute` can be JIT-compiled for a GPU of compute capability `gpu` (any `compute ≤ gpu`).
pub fn ptx_runs_on(compute: u32, gpu: u32) -> bool {
    compute <= gpu
}

/// The target for a GPU of compute capability `gpu` given the architectures NVRTC supports (`supported`, from
/// `nvrtcGetSupportedArchs`): a cubin for the highest supported arch that runs on the GPU ([`cubin_runs_on`]),
/// else PTX for the highest supported arch ≤ the GPU's, else `Err` with a one-line reason (the GPU is older than
/// anything this NVRTC supports).
pub fn choose_target(supported: &[u32], gpu: u32) -> Result<Target, String> {
    if let Some(sm) = supported.iter().copied().filter(|&a| cubin_runs_on(a, gpu)).max() {
        return Ok(Target::Cubin { sm });
    }
    if let Some(compute) = supported.iter().copied().filter(|&a| ptx_runs_on(a, gpu)).max() {
        return Ok(Target::Ptx { compute });
    }
    match supported.iter().min() {
        Some(&oldest) => Err(format!(
            "GPU of compute capability {} is older than anything this NVRTC supports (oldest: sm_{oldest}); use an \
             older CUDA toolkit's NVRTC",
            dotted(gpu)
        )),
        None => Err("NVRTC reports no supported GPU architecture".into()),
    }
}

/// CUDA version as `cuDriverGetVersion` encodes it: `1000 * major + 10 * minor` (12.9 → 12090).
pub fn cuda_version(major: u32, minor: u32) -> u32 {
    1000 * major + 10 * minor
}

/// Whether PTX from NVRTC `nvrtc = (major, minor)` can be JIT-loaded by a driver reporting `driver_version`
/// (`cuDriverGetVersion`, e.g. 12020 for CUDA 12.2): the driver must be at least NVRTC's CUDA version (module
/// doc). Cubins do not need this.
pub fn ptx_loadable(driver_version: u32, nvrtc: (u32, u32)) -> bool {
    driver_version >= cuda_version(nvrtc.0, nvrtc.1)
}

/// Oldest Linux driver branch of a CUDA release (CUDA Toolkit release notes, "CUDA Toolkit and Corresponding
/// Driver Versions"); `None` where not listed here.
fn driver_branch(major: u32, minor: u32) -> Option<u32> {
    const BRANCHES: &[((u32, u32), u32)] = &[
        ((11, 8), 520),
        ((12, 0), 525),
        ((12, 1), 530),
        ((12, 2), 535),
        ((12, 3), 545),
        ((12, 4), 550),
        ((12, 5), 555),
        ((12, 6), 560),
        ((12, 8), 570),
        ((12, 9), 575),
        ((13, 0), 580),
    ];
    BRANCHES.iter().find(|(v, _)| *v == (major, minor)).map(|&(_, b)| b)
}

/// `None` when PTX from NVRTC `nvrtc` loads on a driver reporting `driver_version` ([`ptx_loadable`]), else the
/// one-line reason and what to do, for an error message after a failed PTX load.
pub fn ptx_load_problem(driver_version: u32, nvrtc: (u32, u32)) -> Option<String> {
    if ptx_loadable(driver_version, nvrtc) {
        return None;
    }
    let (major, minor) = nvrtc;
    let branch = driver_branch(major, minor).map(|b| format!(" (R{b} or newer)")).unwrap_or_default();
    Some(format!(
        "PTX from NVRTC {major}.{minor} needs a driver for CUDA {major}.{minor} or newer{branch}, but this driver \
         supports CUDA {}.{}: update the driver, or use an NVRTC no newer than the driver",
        driver_version / 1000,
        driver_version % 1000 / 10
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NVRTC 12.9 (`nvidia-cuda-nvrtc-cu12==12.9.86`, read with `nvrtcGetSupportedArchs`).
    const NVRTC_12_9: &[u32] = &[50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90, 100, 101, 103, 120, 121];
    /// Like NVRTC 12.8 (CUDA 12.8 release notes: adds sm_100, sm_101, sm_120).
    const NVRTC_12_8: &[u32] = &[50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90, 100, 101, 120];
    /// Like NVRTC 12.0 (up to Hopper).
    const NVRTC_12_0: &[u32] = &[50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90];
    /// Like NVRTC 11.4 (sm_87 new, no sm_89/sm_90 yet).
    const NVRTC_11_4: &[u32] = &[35, 37, 50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87];
    /// Like NVRTC 13.0 (drops Maxwell, Pascal and Volta; Thor is sm_110).
    const NVRTC_13_0: &[u32] = &[75, 80, 86, 87, 89, 90, 100, 103, 110, 120, 121];

    fn cubin(sm: u32) -> Result<Target, String> {
        Ok(Target::Cubin { sm })
    }
    fn ptx(compute: u32) -> Result<Target, String> {
        Ok(Target::Ptx { compute })
    }

    /// Expected targets worked out by hand from the rules quoted in the module doc (cubin: same major, minor ≤
    /// GPU's, Tegra exact; else PTX for the highest arch ≤ GPU; else error), one row per case.
    #[test]
    fn target_table() {
        type Row = (&'static [u32], u32, Result<Target, String>, &'static str);
        let rows: &[Row] = &[
            (NVRTC_12_9, 90, cubin(90), "H100: exact"),
            (NVRTC_12_9, 89, cubin(89), "L4/RTX 4090: exact"),
            (NVRTC_12_9, 86, cubin(86), "A10/RTX 3090: exact"),
            (NVRTC_12_9, 80, cubin(80), "A100: exact"),
            (NVRTC_12_9, 75, cubin(75), "T4: exact"),
            (NVRTC_12_9, 120, cubin(120), "RTX 5090: exact"),
            (NVRTC_12_9, 103, cubin(103), "B300: exact"),
            (NVRTC_12_8, 103, cubin(100), "B300 with 12.8: sm_100 (sm_101 is Thor, Tegra)"),
            (NVRTC_12_8, 121, cubin(120), "GB10 with 12.8: sm_120 runs on 12.1"),
            (NVRTC_12_0, 89, cubin(89), "Ada with 12.0"),
            (NVRTC_11_4, 89, cubin(86), "Ada with 11.4: sm_86 runs on 8.9, sm_87 is Tegra"),
            (NVRTC_11_4, 90, ptx(87), "H100 with 11.4: no 9.x cubin, PTX for the highest ≤ 9.0"),
            (NVRTC_12_0, 100, ptx(90), "B200 with 12.0: no cubin across majors"),
            (NVRTC_12_0, 120, ptx(90), "RTX 5090 with 12.0: PTX"),
            (NVRTC_12_8, 110, ptx(101), "Thor (CUDA 13 numbering) with 12.8: PTX"),
            (NVRTC_12_9, 87, cubin(87), "Orin: exact Tegra arch"),
            (&[80, 86, 90], 87, ptx(86), "Orin without sm_87: desktop cubins do not run on Tegra"),
            (&[53, 60, 61, 70], 62, ptx(61), "TX2 without sm_62"),
            (&[80, 87, 90], 89, cubin(80), "desktop 8.9 never takes a Tegra sm_87 cubin"),
            (NVRTC_13_0, 70, Err(String::new()), "V100 with 13.0: older than sm_75"),
            (NVRTC_13_0, 61, Err(String::new()), "P100-class with 13.0"),
            (NVRTC_13_0, 90, cubin(90), "H100 with 13.0"),
            (NVRTC_13_0, 110, cubin(110), "Thor with 13.0"),
            (NVRTC_13_0, 121, cubin(121), "GB10 with 13.0"),
            (NVRTC_12_9, 37, Err(String::new()), "K80 with 12.9"),
            (&[], 90, Err(String::new()), "empty list"),
            (&[90], 91, cubin(90), "hypothetical 9.1 runs sm_90"),
            (&[91], 90, Err(String::new()), "cubin and PTX never run on a lower minor"),
        ];
        for (supported, gpu, want, why) in rows {
            let got = choose_target(supported, *gpu);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{why}: GPU {gpu}"),
                (Err(_), Err(msg)) => {
                    assert!(!msg.is_empty() && !msg.contains('\n'), "{why}: {msg:?}");
                }
                _ => panic!("{why}: GPU {gpu}: expected {want:?}, got {got:?}"),
            }
        }
    }

    /// The error names the GPU's capability and NVRTC's oldest arch.
    #[test]
    fn too_old_message() {
        let msg = choose_target(NVRTC_13_0, 70).unwrap_err();
        assert!(msg.contains("7.0") && msg.contains("sm_75"), "{msg}");
    }

    /// Pairwise cubin rules straight from the guide's sentence, incl. the Tegra note.
    #[test]
    fn cubin_rules() {
        let rows = [
            (80, 80, true),
            (80, 86, true),
            (80, 89, true),
            (86, 89, true),
            (89, 86, false),
            (86, 80, false),
            (80, 90, false),
            (90, 100, false),
            (100, 103, true),
            (120, 121, true),
            (75, 80, false),
            (80, 87, false),
            (87, 87, true),
            (87, 89, false),
            (72, 75, false),
            (70, 72, false),
            (101, 103, false),
            (100, 101, false),
        ];
        for (sm, gpu, want) in rows {
            assert_eq!(cubin_runs_on(sm, gpu), want, "cubin sm_{sm} on {gpu}");
        }
        assert!(ptx_runs_on(80, 120) && ptx_runs_on(87, 90) && ptx_runs_on(90, 90) && !ptx_runs_on(90, 89));
    }

    /// Driver/NVRTC pairs: PTX loads when the driver's CUDA version ≥ NVRTC's (PTX ISA 8.8 of NVRTC 12.9 needs
    /// CUDA 12.9, R575).
    #[test]
    fn ptx_driver_table() {
        let rows = [
            (12020, (12, 9), false, "R535 vs NVRTC 12.9"),
            (12080, (12, 9), false, "R570 vs NVRTC 12.9"),
            (12090, (12, 9), true, "R575 vs NVRTC 12.9"),
            (13000, (12, 9), true, "R580 vs NVRTC 12.9"),
            (12020, (12, 2), true, "same version"),
            (12020, (12, 0), true, "older NVRTC"),
            (12040, (12, 6), false, "R550 vs NVRTC 12.6"),
            (12090, (13, 0), false, "R575 vs NVRTC 13.0"),
            (11080, (12, 0), false, "CUDA 11.8 driver vs NVRTC 12.0"),
            (13010, (13, 0), true, "13.1 driver vs NVRTC 13.0"),
        ];
        for (driver, nvrtc, want, why) in rows {
            assert_eq!(ptx_loadable(driver, nvrtc), want, "{why}");
            let problem = ptx_load_problem(driver, nvrtc);
            assert_eq!(problem.is_none(), want, "{why}: {problem:?}");
        }
        let msg = ptx_load_problem(12020, (12, 9)).unwrap();
        assert!(msg.contains("12.9") && msg.contains("R575") && msg.contains("CUDA 12.2") && !msg.contains('\n'));
    }

    #[test]
    fn options_and_capability() {
        assert_eq!(Target::Cubin { sm: 90 }.arch_option(), "-arch=sm_90");
        assert_eq!(Target::Ptx { compute: 80 }.arch_option(), "-arch=compute_80");
        assert_eq!(Target::Cubin { sm: 120 }.to_string(), "cubin for sm_120");
        assert_eq!(compute_capability(9, 0), Ok(90));
        assert_eq!(compute_capability(12, 1), Ok(121));
        assert!(compute_capability(8, 10).is_err() && compute_capability(-1, 0).is_err());
        assert_eq!(cuda_version(12, 9), 12090);
    }
}
