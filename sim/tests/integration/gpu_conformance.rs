//! The `cuda` backend.
//!
//! - Everywhere: without a usable GPU, `CudaBackend::new` returns `BackendUnavailable` with a one-line reason
//!   (and never panics), and `cuda_status()` describes what is missing.
//! - On a machine with an NVIDIA GPU, a driver and libnvrtc on the loader path (ignored by default):
//!
//!   ```text
//!   cargo test -p neurotwin-sim --test integration -- --ignored gpu_conformance::
//!   ```
//!
//!   runs the conformance suite (`suite::conformance_suite!`: CUBA, Brunel, the C. elegans scenario with a
//!   receptor block and a silenced set, a random network for each of the five neuron models, step-by-step vs
//!   windowed drain) on the CPU backend and the CUDA backend and requires identical spike trains, sampled V_m
//!   traces and final membrane potentials, bit for bit — the same suite, from the same macro, that
//!   `conformance_host_kernels.rs` runs on the host build of the kernels with the same launch sequence.

use super::suite::{self, cuba_setup};

use neurotwin_sim::cuda::{CudaBackend, compile_kernels, cuda_status};
use neurotwin_sim::*;

fn gpu_usable() -> bool {
    let s = cuda_status();
    s.driver.is_ok() && !s.devices.is_empty() && s.nvrtc.is_ok()
}

#[test]
fn unavailable_cuda_is_an_error_not_a_panic() {
    let status = cuda_status();
    eprintln!("cuda_status: {status:?}");
    if let Err(reason) = &status.driver {
        assert!(!reason.is_empty());
        assert!(status.devices.is_empty(), "no devices without a driver");
    }
    if gpu_usable() {
        eprintln!("SKIP: a GPU is usable here; the --ignored tests cover it");
        return;
    }
    match CudaBackend::new(&cuba_setup()) {
        Err(SimError::BackendUnavailable { backend, reason }) => {
            assert_eq!(backend, "cuda");
            assert!(!reason.is_empty() && !reason.contains('\n'), "one-line reason: {reason:?}");
            eprintln!("cuda unavailable: {reason}");
        }
        Err(e) => panic!("expected BackendUnavailable, got {e}"),
        Ok(_) => panic!("CudaBackend::new succeeded without a usable GPU"),
    }
}

/// This project's reference machine has no NVIDIA driver: the status must say so (skipped where one exists).
#[test]
fn status_reports_missing_driver_without_libcuda() {
    // SAFETY: only tries to dlopen the library.
    if unsafe { cudarc::driver::sys::is_culib_present() } {
        eprintln!("SKIP: libcuda is present");
        return;
    }
    let s = cuda_status();
    let reason = s.driver.expect_err("no libcuda, but cuda_status reports a driver");
    assert!(reason.contains("libcuda"), "{reason}");
    assert!(s.devices.is_empty());
}

/// The backend's NVRTC step (fmad off, every unit) works for common architectures; needs libnvrtc on the
/// loader path but no GPU (`.venv-cuda/env.sh`), else it is skipped.
#[test]
fn kernels_compile_for_the_device_architecture() {
    // SAFETY: only tries to dlopen the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        assert!(compile_kernels(8, 0).unwrap_err().contains("libnvrtc"));
        eprintln!("SKIP: libnvrtc not found");
        return;
    }
    for (major, minor) in [(7, 5), (8, 0), (8, 6), (9, 0)] {
        let units = compile_kernels(major, minor).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(units.len(), neurotwin_kernels::KERNELS.len());
        for (name, _, ptx) in &units {
            let src = ptx.to_src();
            assert!(src.contains(&format!(".target sm_{major}{minor}")), "{name}: wrong target");
            assert!(!src.contains("fma.rn"), "{name}: PTX contains fma.rn");
        }
    }
}

fn gpu(setup: &SimSetup) -> Box<dyn Backend> {
    let b = CudaBackend::new(setup).unwrap_or_else(|e| panic!("{e} (status: {:?})", cuda_status()));
    eprintln!("device: {}", b.device_name());
    Box::new(b)
}

suite::conformance_suite!(suite_gpu, gpu, #[ignore = "needs a CUDA GPU"]);

/// On the GPU, replaying captured CUDA graphs gives the spikes and V_m of launching every kernel directly, through
/// a wash-in (`suite::graph_replay_equals_direct`), for a spiking and the graded model.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_graph_replay_equals_direct_launches() {
    for kind in [suite::Kind::LifExp, suite::Kind::Graded] {
        let (setup, _) = suite::random_setup(kind);
        let mut direct = CudaBackend::new(&setup).unwrap_or_else(|e| panic!("{e}"));
        direct.set_use_graphs(false);
        suite::graph_replay_equals_direct(kind, 300, gpu(&setup).as_mut(), &mut direct);
    }
}

/// PD14 at 10 % scale (7,717 neurons, ≈ 30 M synapses, Poisson background) for 250 steps without state sampling:
/// two and a half full 100-step spike windows on the GPU, many compaction chunks and ≈ 150 delivery pieces per
/// spike — spikes and final V_m bit-identical to the CPU backend.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_pd14_at_10_percent_over_250_steps_is_bit_identical() {
    use neurotwin_connectome::generators::{Pd14Config, potjans_diesmann};
    let g = potjans_diesmann(&Pd14Config { n_scaling: 0.1, ..Default::default() }, 5, 0.1).unwrap();
    let setup = suite::generated_setup(g, 5, 250);
    let all: Vec<u32> = (0..setup.n_neurons() as u32).collect();
    let outcome = |b: &mut dyn Backend| {
        let rec = run(&setup, &Default::default(), &RecordSpec::default(), b, &Default::default()).unwrap();
        let mut v = Vec::new();
        b.read_state(0, &all, &mut v);
        (rec.spike_steps, rec.spike_neurons, v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
    };
    let cpu = outcome(&mut CpuBackend::new(&setup).unwrap());
    let mut gpu = CudaBackend::new(&setup).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gpu.spike_window(), 100);
    let gpu = outcome(&mut gpu);
    assert!(cpu.0.len() > 100, "PD14 must spike ({} spikes)", cpu.0.len());
    assert_eq!(cpu, gpu, "PD14 at 10 %: the GPU differs from the CPU");
}
