//! Conformance of the `cuda-host` backend (the CUDA C kernels of `neurotwin-kernels`, compiled for the host
//! and launched in the order the CUDA backend does) with the CPU backend: identical spike trains (steps and
//! neurons), identical sampled V_m traces and identical final membrane potentials, bit for bit, on three
//! networks — CUBA (lif_exp), Brunel (lif_delta, Poisson background) and the bundled C. elegans connectome
//! (lif_exp, gap junctions, activation, a receptor block with wash-in and a silenced set) — and on a random
//! network for each of the five models (lif_exp, lif_delta, izhikevich, adex, graded), plus proof that a
//! deliberately broken delivery kernel is caught. The engine drives both through `advance`/`drain_spikes`
//! (the cuda-host backend keeps a window of spikes in its device-style spike record, the CPU backend one
//! step), so the windowed spike path is what is compared.

use super::suite;

use neurotwin_sim::host_kernels::HostKernelBackend;
use neurotwin_sim::*;
use suite::*;

fn host(setup: &SimSetup) -> Box<dyn Backend> {
    Box::new(HostKernelBackend::new(setup).unwrap())
}

fn check_identical(label: &str, setup: &SimSetup, p: &PerturbationSchedule, min_spikes: usize) -> Outcome {
    suite::check_identical(label, setup, p, min_spikes, &host)
}

#[test]
fn cuba_4000_is_bit_identical() {
    check_identical("CUBA 4000", &cuba_setup(), &Default::default(), 1000);
}

#[test]
fn brunel_order_200_is_bit_identical() {
    check_identical("Brunel order 200", &brunel_setup(), &Default::default(), 1000);
}

#[test]
fn celegans_with_block_and_silencing_is_bit_identical() {
    let (setup, p) = celegans_setup();
    let o = check_identical("C. elegans", &setup, &p, 200);
    // The perturbations were exercised: the silenced cells are quiet in their window, the touch cells fire.
    let s = &p.silencing[0];
    let in_window = |k: usize| (s.start_step..s.stop_step).contains(&o.steps[k]);
    assert!(!(0..o.steps.len()).any(|k| in_window(k) && s.targets.contains(&o.neurons[k])));
    let touch = &setup.stimuli[1].targets;
    assert!((0..o.steps.len()).filter(|&k| touch.contains(&o.neurons[k])).count() >= 20, "touch cells must fire");
}

/// The comparison is sharp: the delivery kernel built with `NEUROTWIN_BREAK_FOR_TEST` (dropping the last
/// synapse of each segment) gives different spikes on the worm.
#[test]
fn broken_delivery_kernel_is_detected() {
    let (setup, p) = celegans_setup();
    let mut cpu = CpuBackend::new(&setup).unwrap();
    let mut broken = HostKernelBackend::new_with_broken_delivery_for_test(&setup).unwrap();
    let a = outcome(&setup, &p, &mut cpu);
    let b = outcome(&setup, &p, &mut broken);
    assert_ne!((a.steps, a.neurons), (b.steps, b.neurons), "a broken delivery kernel went unnoticed");
}

#[test]
fn random_dense_network_lif_exp_is_bit_identical() {
    let (setup, p) = random_setup(Kind::LifExp);
    check_identical("random dense lif_exp", &setup, &p, 1000);
}

#[test]
fn random_dense_network_lif_delta_is_bit_identical() {
    let (setup, p) = random_setup(Kind::LifDelta);
    check_identical("random dense lif_delta", &setup, &p, 1000);
}

#[test]
fn random_dense_network_izhikevich_is_bit_identical() {
    let (setup, p) = random_setup(Kind::Izhikevich);
    check_identical("random dense izhikevich", &setup, &p, 1000);
}

#[test]
fn random_dense_network_adex_is_bit_identical() {
    let (setup, p) = random_setup(Kind::Adex);
    check_identical("random dense adex", &setup, &p, 1000);
}

/// Graded neurons emit no spikes; the sampled V_m traces (which depend on every delivered activity) must be
/// identical, and must actually move.
#[test]
fn random_dense_network_graded_is_bit_identical() {
    let (setup, p) = random_setup(Kind::Graded);
    let o = check_identical("random dense graded", &setup, &p, 0);
    let v: Vec<f64> = o.trace_bits.iter().map(|&b| f64::from_bits(b)).collect();
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(hi - lo > 5.0, "graded V_m range {lo}..{hi} mV: the network is not driven");
}

/// `step` (spikes at once) and the engine's `advance`/`drain_spikes` (a window of spikes in the record) give
/// the same spikes on the cuda-host backend.
#[test]
fn step_by_step_equals_windowed_drain() {
    let setup = brunel_setup();
    let steps = 600;
    let mut a = HostKernelBackend::new(&setup).unwrap();
    let control = StepControl::new(setup.network.receptors.len(), setup.n_neurons());
    let mut direct = Vec::new();
    for step in 0..steps {
        direct.extend(a.step(step, &control).unwrap().iter().map(|&i| (step, i)));
    }
    let mut b = HostKernelBackend::new(&setup).unwrap();
    assert!(b.spike_window() > 1);
    let mut windowed = Vec::new();
    for step in 0..steps {
        b.advance(step, &control).unwrap();
        if (step + 1) % b.spike_window() as u64 == 0 || step + 1 == steps {
            b.drain_spikes(&mut |st, s| windowed.extend(s.iter().map(|&i| (st, i)))).unwrap();
        }
    }
    assert!(direct.len() > 1000, "{} spikes", direct.len());
    assert_eq!(direct, windowed);
    // Advancing beyond the window without a drain is refused, not overwritten.
    for step in 0..b.spike_window() as u64 {
        b.advance(steps + step, &control).unwrap();
    }
    assert!(b.advance(steps + 99, &control).is_err());
}
