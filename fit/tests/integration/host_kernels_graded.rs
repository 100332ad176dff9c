//! The graded conductance model run by the host build of its CUDA C kernels (`kernels/cuda/fit_graded.cu`,
//! through `neurotwin_fit::host_kernels_graded`) against the CPU code (`GradedModel`): the loss and every
//! element gradient equal bit for bit, with and without teacher forcing, with and without an initial state,
//! for several checkpoint intervals and networks (one spanning three launch blocks); and a deliberately
//! reordered sum in the kernel is detected.

#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;

use neurotwin_fit::FitNetwork;
use neurotwin_fit::graded::{GradedGrads, GradedModel, GradedValues};
use neurotwin_fit::host_kernels_graded::HostKernelGraded;
use neurotwin_fit::params::ParamSet;
use neurotwin_fit::rate::{Clamp, Input, Pulse};
use neurotwin_fit::spec::{ParamSpec, build_params};
use neurotwin_fit::testing::{Mse, SplitMix, random_network};

/// Step (ms).
const DT: f64 = 0.5;

/// Every parameter class fitted, groups spread by `seed` (as in `graded_gradients.rs`).
fn graded_params(net: &FitNetwork, seed: u64) -> ParamSet {
    let mut specs = BTreeMap::new();
    specs.insert("g_l".into(), ParamSpec::fitted("cell_type", 0.1, Some(0.0), None));
    specs.insert("e_l".into(), ParamSpec::fitted("cell_type", -35.0, None, None));
    specs.insert("theta".into(), ParamSpec::fitted("cell_type", -33.0, None, None));
    specs.insert("slope".into(), ParamSpec::fitted("cell_type", 0.15, Some(0.0), None));
    specs.insert("bias".into(), ParamSpec::fitted("cell_type", 0.3, None, None));
    specs.insert("gain".into(), ParamSpec::fitted("neuron", 1.0, Some(0.0), None));
    specs.insert("e_exc".into(), ParamSpec::fitted("global", 0.0, None, None));
    specs.insert("e_inh".into(), ParamSpec::fitted("global", -48.0, None, None));
    specs.insert("strength".into(), ParamSpec::fitted("type_pair", 0.04, Some(0.0), None));
    specs.insert("gap".into(), ParamSpec::fitted("type_pair", 0.03, Some(0.0), None));
    let mut p = build_params(net, "graded", &specs).expect("graded parameters build");
    let mut r = SplitMix(seed);
    for x in p.raw.iter_mut() {
        *x += 0.3 * (r.uniform() - 0.5);
    }
    p
}

/// Pulses (two overlapping on neuron 0, so their order matters), an initial state (or `V^0 = E_L`), and
/// optionally a clamp on a few neurons, one of them listed twice with different values (the last wins).
fn input(n: usize, steps: usize, v0: bool, clamp: bool, seed: u64) -> Input {
    let clamp = clamp.then(|| {
        let neurons = vec![1, (n / 3) as u32, 1, (n - 1) as u32];
        let mut r = SplitMix(seed);
        let values = (0..(steps + 1) * neurons.len()).map(|_| -50.0 + 30.0 * r.uniform()).collect();
        Clamp { neurons, values }
    });
    Input {
        steps,
        v0: if v0 { (0..n).map(|i| -40.0 + 2.0 * (i % 7) as f64).collect() } else { vec![] },
        pulses: vec![
            Pulse { neuron: 0, start: 2, stop: 12, amplitude: 3.0 },
            Pulse { neuron: (n / 2) as u32, start: 5, stop: 20, amplitude: -2.0 },
            Pulse { neuron: 0, start: 6, stop: 9, amplitude: 1.37 },
        ],
        clamp,
    }
}

fn fields(g: &GradedGrads) -> [(&'static str, &[f64]); 10] {
    [
        ("g_l", &g.g_l),
        ("e_l", &g.e_l),
        ("theta", &g.theta),
        ("slope", &g.slope),
        ("bias", &g.bias),
        ("gain", &g.gain),
        ("e_exc", &g.e_exc),
        ("e_inh", &g.e_inh),
        ("w", &g.w),
        ("e", &g.e),
    ]
}

/// The first element (field, index, cpu, kernels) whose bits differ, if any.
fn first_difference(a: &GradedGrads, b: &GradedGrads) -> Option<(&'static str, usize, f64, f64)> {
    for ((name, x), (_, y)) in fields(a).into_iter().zip(fields(b)) {
        assert_eq!(x.len(), y.len(), "{name}: lengths differ");
        if let Some(i) = (0..x.len()).find(|&i| x[i].to_bits() != y[i].to_bits()) {
            return Some((name, i, x[i], y[i]));
        }
    }
    None
}

fn mse(net: &FitNetwork, inp: &Input) -> Mse {
    Mse::new(net.n, inp.steps, 3, -60.0, -10.0)
}

fn cpu_and_kernels(
    net: &FitNetwork,
    v: &GradedValues,
    inp: &Input,
    k: usize,
    broken: bool,
) -> ((f64, GradedGrads), (f64, GradedGrads)) {
    let model = GradedModel::new(net, DT);
    let cpu = model.loss_and_grad(v, inp, &mut mse(net, inp), k);
    let mut host = HostKernelGraded::from_model(&model);
    if broken {
        host = host.with_broken_step_for_test();
    }
    let kern = host.loss_and_grad(v, inp, &mut mse(net, inp), k);
    (cpu, kern)
}

#[test]
fn graded_kernels_match_cpu_bit_for_bit() {
    let mut cases = 0;
    // (neurons, inputs per neuron, seed): 300 neurons span 3 launch blocks of 128 threads.
    for (n, deg, seed) in [(24, 4, 41), (45, 6, 2), (300, 8, 3)] {
        let net = random_network(n, deg, seed);
        assert!(net.n_gap_entries() > 0 && net.n_connections() > 0);
        assert!(net.receptors.iter().any(|r| r.excitatory) && net.receptors.iter().any(|r| !r.excitatory));
        let p = graded_params(&net, seed + 10);
        let v = GradedValues::from_params(&net, &p);
        let steps = 31;
        for clamp in [false, true] {
            for (ki, k) in [1, 4, 7, 31, 100].into_iter().enumerate() {
                let v0 = (ki + n) % 2 == 0;
                let inp = input(net.n, steps, v0, clamp, seed + 20);
                inp.check(net.n).unwrap();
                let ((lc, gc), (lk, gk)) = cpu_and_kernels(&net, &v, &inp, k, false);
                let what = format!("n = {n}, clamp {clamp}, v0 {v0}, checkpoint every {k}");
                assert!(lc.is_finite() && lc > 0.0, "{what}: loss {lc}");
                assert_eq!(lc.to_bits(), lk.to_bits(), "{what}: loss {lc} on the CPU, {lk} by the kernels");
                if let Some((name, i, x, y)) = first_difference(&gc, &gk) {
                    panic!("{what}: d loss / d {name}[{i}] = {x:e} on the CPU, {y:e} by the kernels");
                }
                // Every class carries a gradient, so the comparison is not between zeros.
                for (name, x) in fields(&gc) {
                    assert!(x.iter().all(|g| g.is_finite()), "{what}: non-finite gradient for {name}");
                    assert!(x.iter().any(|&g| g != 0.0), "{what}: no gradient for {name}");
                }
                if clamp {
                    // Clamped neurons' inputs get no gradient at all (nothing flows back through data).
                    assert!(gc.bias[1] == 0.0 && gc.bias[n - 1] == 0.0, "{what}");
                    assert!(gc.e_l[1] == 0.0 && gc.e_l[n - 1] == 0.0, "{what}");
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 3 * 2 * 5);
}

#[test]
fn graded_kernel_loss_matches_cpu_bit_for_bit() {
    let net = random_network(60, 5, 7);
    let p = graded_params(&net, 8);
    let v = GradedValues::from_params(&net, &p);
    for clamp in [false, true] {
        for v0 in [false, true] {
            let inp = input(net.n, 40, v0, clamp, 9);
            let model = GradedModel::new(&net, DT);
            let cpu = model.loss(&v, &inp, &mut mse(&net, &inp));
            let kern = HostKernelGraded::from_model(&model).loss(&v, &inp, &mut mse(&net, &inp));
            assert_eq!(cpu.to_bits(), kern.to_bits(), "clamp {clamp}, v0 {v0}: {cpu} vs {kern}");
        }
    }
}

#[test]
fn graded_capacitance_and_short_runs_match() {
    let net = random_network(20, 3, 5);
    let p = graded_params(&net, 6);
    let v = GradedValues::from_params(&net, &p);
    for steps in [0, 1] {
        let inp = Input { steps, ..Default::default() };
        let ((lc, gc), (lk, gk)) = cpu_and_kernels(&net, &v, &inp, 3, false);
        assert_eq!(lc.to_bits(), lk.to_bits(), "{steps} steps");
        assert_eq!(first_difference(&gc, &gk), None, "{steps} steps");
    }
    // Another capacitance: −h/C is taken from the model.
    let inp = input(net.n, 25, false, true, 7);
    let model = GradedModel::new(&net, DT).with_capacitance(2.7);
    let (lc, gc) = model.loss_and_grad(&v, &inp, &mut mse(&net, &inp), 6);
    let (lk, gk) = HostKernelGraded::from_model(&model).loss_and_grad(&v, &inp, &mut mse(&net, &inp), 6);
    assert_eq!(lc.to_bits(), lk.to_bits());
    assert_eq!(first_difference(&gc, &gk), None);
}

/// Negative control: the kernel build with `(g_L E_L + I_b) + (γ u + Σ e V)` instead of
/// `((g_L E_L + I_b) + γ u) + Σ e V` in the forward step is caught by the same comparison.
#[test]
fn graded_reordered_sum_in_the_kernel_is_detected() {
    let net = random_network(45, 6, 2);
    let p = graded_params(&net, 12);
    let v = GradedValues::from_params(&net, &p);
    let inp = input(net.n, 31, true, false, 22);
    let ((lc, gc), (lk, gk)) = cpu_and_kernels(&net, &v, &inp, 4, true);
    assert!(
        lc.to_bits() != lk.to_bits() || first_difference(&gc, &gk).is_some(),
        "the reordered kernel gave the CPU's loss and gradient bit for bit"
    );
    // ... while the difference is only rounding.
    assert!((lc - lk).abs() <= 1e-9 * lc.abs(), "{lc} vs {lk}");
}
