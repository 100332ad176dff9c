//! The `cuda` backend.
//!
//! - Everywhere: without a usable GPU, `CudaBackend::new` returns `BackendUnavailable` with a one-line reason
//!   (and never panics), and `cuda_status()` describes what is missing.
//! - On a machine with an NVIDIA GPU, a driver and libnvrtc on the loader path (ignored by default):
//!
//!   ```text
//!   cargo test -p neurotwin-sim --test gpu_conformance -- --ignored
//!   ```
//!
//!   runs the CPU backend and the CUDA backend on small networks and requires identical spike trains and
//!   identical final membrane potentials, bit for bit.

use neurotwin_connectome::generators::{GeneratedNetwork, brunel, cuba};
use neurotwin_models::{CompiledModel, NeuronParams};
use neurotwin_sim::cuda::{CudaBackend, compile_kernels, cuda_status};
use neurotwin_sim::*;

const DT: f64 = 0.1;
const STEPS: u64 = 1000; // 100 ms

fn generated_setup(g: GeneratedNetwork, seed: u64, steps: u64) -> SimSetup {
    SimSetup::from_generated(g, seed, steps).unwrap()
}

/// CUBA (lif_exp, 4000 neurons).
fn cuba_setup() -> SimSetup {
    let g = cuba(&Default::default(), 1, DT).unwrap();
    generated_setup(g, 1, STEPS)
}

/// Brunel (lif_delta, Poisson background), order 50 (250 neurons).
fn brunel_setup() -> SimSetup {
    let cfg = brunel::BrunelConfig { order: 50, ..Default::default() };
    let g = brunel(&cfg, 3, DT).unwrap();
    generated_setup(g, 3, STEPS)
}

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

#[test]
fn models_without_a_kernel_are_unavailable() {
    let mut setup = cuba_setup();
    setup.model = CompiledModel::compile(
        &[NeuronParams::Izhikevich(Default::default())],
        &setup.network.receptors,
        setup.network.dt_ms,
    )
    .unwrap();
    setup.init.clear();
    match CudaBackend::new(&setup) {
        Err(SimError::BackendUnavailable { reason, .. }) => {
            assert_eq!(reason, "model izhikevich has no CUDA kernel yet")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("izhikevich must be rejected"),
    }
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

/// Spike steps, spike neurons and the final V_m bit patterns of every neuron.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    steps: Vec<u64>,
    neurons: Vec<u32>,
    v_bits: Vec<u64>,
}

fn outcome(setup: &SimSetup, backend: &mut dyn Backend) -> Outcome {
    let rec = run(setup, &Default::default(), &Default::default(), backend, &Default::default()).unwrap();
    let all: Vec<u32> = (0..setup.n_neurons() as u32).collect();
    let mut v = Vec::new();
    backend.read_state(0, &all, &mut v);
    Outcome { steps: rec.spike_steps, neurons: rec.spike_neurons, v_bits: v.iter().map(|x| x.to_bits()).collect() }
}

fn check_identical(label: &str, setup: &SimSetup, min_spikes: usize) {
    let mut gpu = CudaBackend::new(setup).unwrap_or_else(|e| panic!("{label}: {e} (status: {:?})", cuda_status()));
    let mut cpu = CpuBackend::new(setup).unwrap();
    assert_eq!(gpu.name(), "cuda");
    assert_eq!(gpu.delivery_scale_exponent(), cpu.delivery_scale_exponent());
    let a = outcome(setup, &mut cpu);
    let b = outcome(setup, &mut gpu);
    assert!(a.steps.len() >= min_spikes, "{label}: network too quiet ({} spikes)", a.steps.len());
    assert_eq!(a.steps.len(), b.steps.len(), "{label}: spike counts differ (cpu vs cuda)");
    if let Some(k) = (0..a.steps.len()).find(|&k| (a.steps[k], a.neurons[k]) != (b.steps[k], b.neurons[k])) {
        panic!(
            "{label}: spike #{k} differs: cpu ({}, n{}) vs cuda ({}, n{})",
            a.steps[k], a.neurons[k], b.steps[k], b.neurons[k]
        );
    }
    assert!(a.v_bits == b.v_bits, "{label}: final V_m differs");
    eprintln!("{label}: {} spikes, identical on cpu and cuda ({})", a.steps.len(), gpu.device_name());
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn cuba_cpu_and_cuda_spikes_are_identical() {
    check_identical("CUBA 4000", &cuba_setup(), 100);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn brunel_lif_delta_cpu_and_cuda_spikes_are_identical() {
    check_identical("Brunel order 50", &brunel_setup(), 50);
}
