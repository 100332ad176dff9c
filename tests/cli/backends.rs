//! Backend selection: `cuda` fails cleanly without a GPU, `auto` falls back to the CPU and says so,
//! `cuda-host` (the CUDA kernels compiled for the host) reproduces the CPU's spikes.

use super::common::*;

fn cuda_usable() -> bool {
    let o = neurotwin(&["doctor"], std::path::Path::new("."));
    stdout(&o).contains("backend `auto` will use: cuda")
}

#[test]
fn doctor_reports_cuda_state() {
    let o = neurotwin(&["doctor"], std::path::Path::new("."));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("CUDA driver:") && out.contains("NVRTC:") && out.contains("backend `auto` will use:"),
        "{out}"
    );
}

#[test]
fn cuda_without_gpu_fails_with_one_line_reason_and_no_output() {
    if cuda_usable() {
        eprintln!("SKIP: a CUDA GPU is present; this test is for machines without one");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = neurotwin(&["demo", "-o", "d", "--backend", "cuda"], dir.path());
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "one line expected:\n{err}");
    assert!(err.contains("cuda") && err.contains("not available"), "{err}");
    assert!(files_below(&dir.path().join("d")).is_empty());
}

#[test]
fn auto_falls_back_to_cpu_and_cuda_host_matches_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let run = |backend: &str, out: &str| {
        let o = neurotwin(&["demo", "-o", out, "--backend", backend], dir.path());
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(out).join("summary.json")).unwrap()).unwrap();
        (o, v)
    };
    let (_, cpu) = run("cpu", "cpu");
    let (host_o, host) = run("cuda-host", "host");
    assert_eq!(host["backend"], "cuda-host", "{}", stdout(&host_o));
    assert_eq!(cpu["total_spikes"], host["total_spikes"]);
    assert_eq!(cpu["readout"], host["readout"]);
    let a = std::fs::read(dir.path().join("cpu/spikes.h5")).unwrap().len();
    assert!(a > 0);
    if !cuda_usable() {
        let (o, auto) = run("auto", "auto");
        assert_eq!(auto["backend"], "cpu");
        assert!(stderr(&o).contains("running on the CPU"), "{}", stderr(&o));
        assert_eq!(auto["total_spikes"], cpu["total_spikes"]);
    }
}

/// `neurotwin kernels` writes a cubin of every kernel unit (ELF images) for the requested architectures, and
/// `doctor` reads that folder through NEUROTWIN_KERNEL_DIR; a bad architecture is refused before any work.
#[test]
fn kernels_writes_a_cubin_folder_that_doctor_recognises() {
    let dir = tempfile::tempdir().unwrap();
    let bad = neurotwin(&["kernels", "--cubin-dir", "k", "--arch", "8"], dir.path());
    assert!(!bad.status.success() && stderr(&bad).contains("--arch 8"), "{}", stderr(&bad));
    assert!(!dir.path().join("k").exists());
    let doctor = neurotwin(&["doctor"], dir.path());
    if !stdout(&doctor).contains("compiles cubins for") {
        if std::env::var("NEUROTWIN_REQUIRE_NVRTC").as_deref() == Ok("1") {
            panic!("NEUROTWIN_REQUIRE_NVRTC=1 but doctor finds no NVRTC:\n{}", stdout(&doctor));
        }
        eprintln!("SKIP: no libnvrtc (run scripts/setup-cuda-tools.sh)");
        return;
    }
    let o = neurotwin(&["kernels", "--cubin-dir", "k", "--arch", "80"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let files = files_below(&dir.path().join("k"));
    assert_eq!(files.len(), neurotwin_kernels::KERNELS.len(), "{files:?}");
    for f in &files {
        assert!(f.to_string_lossy().ends_with(".sm_80.cubin"), "{}", f.display());
        assert!(std::fs::read(f).unwrap().starts_with(b"\x7fELF"), "{}", f.display());
    }
    let o = command(bin()).arg("doctor").env("NEUROTWIN_KERNEL_DIR", dir.path().join("k")).output().unwrap();
    assert!(stdout(&o).contains("NEUROTWIN_KERNEL_DIR") && stdout(&o).contains("(sm_80)"), "{}", stdout(&o));
}
