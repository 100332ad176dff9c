//! The rate model run by the host build of its CUDA C kernels (`kernels/cuda/fit_rate.cu`, through
//! `neurotwin_fit::host_kernels`) against the CPU code (`RateModel`): the loss and every element gradient equal
//! bit for bit, for ReLU and sigmoid, with and without teacher forcing, for several checkpoint intervals and
//! networks; and a deliberately reordered sum in the kernel is detected.

#![allow(clippy::needless_range_loop)]

use neurotwin_fit::FitNetwork;
use neurotwin_fit::host_kernels::HostKernelRate;
use neurotwin_fit::rate::{Activation, Clamp, Input, Pulse, RateGrads, RateModel, RateValues};
use neurotwin_fit::testing::{Mse, SplitMix, all_fitted_params, random_network};

/// Pulses (two overlapping on neuron 0, so their order matters), an initial state (or none), and
/// optionally a clamp on a few neurons, one of them listed twice with different values (the last wins).
fn input(n: usize, steps: usize, v0: bool, clamp: bool, seed: u64) -> Input {
    let clamp = clamp.then(|| {
        let neurons = vec![1, (n / 3) as u32, 1, (n - 1) as u32];
        let mut r = SplitMix(seed);
        let values = (0..(steps + 1) * neurons.len()).map(|_| r.uniform() - 0.3).collect();
        Clamp { neurons, values }
    });
    Input {
        steps,
        v0: if v0 { (0..n).map(|i| 0.05 * (i % 7) as f64 - 0.1).collect() } else { vec![] },
        pulses: vec![
            Pulse { neuron: 0, start: 2, stop: 12, amplitude: 0.8 },
            Pulse { neuron: (n / 2) as u32, start: 5, stop: 20, amplitude: -0.4 },
            Pulse { neuron: 0, start: 6, stop: 9, amplitude: 0.37 },
        ],
        clamp,
    }
}

fn fields(g: &RateGrads) -> [(&'static str, &[f64]); 7] {
    [
        ("tau", &g.tau),
        ("bias", &g.bias),
        ("gain", &g.gain),
        ("theta", &g.theta),
        ("slope", &g.slope),
        ("w", &g.w),
        ("e", &g.e),
    ]
}

/// The first element (field, index, cpu, kernels) whose bits differ, if any.
fn first_difference(a: &RateGrads, b: &RateGrads) -> Option<(&'static str, usize, f64, f64)> {
    for ((name, x), (_, y)) in fields(a).into_iter().zip(fields(b)) {
        assert_eq!(x.len(), y.len(), "{name}: lengths differ");
        if let Some(i) = (0..x.len()).find(|&i| x[i].to_bits() != y[i].to_bits()) {
            return Some((name, i, x[i], y[i]));
        }
    }
    None
}

fn cpu_and_kernels(
    net: &FitNetwork,
    v: &RateValues,
    inp: &Input,
    a: Activation,
    k: usize,
    broken: bool,
) -> ((f64, RateGrads), (f64, RateGrads)) {
    let model = RateModel::new(net, 1.0, a);
    let cpu = model.loss_and_grad(v, inp, &mut Mse::new(net.n, inp.steps, 3, 0.0, 0.5), k);
    let mut host = HostKernelRate::from_model(&model);
    if broken {
        host = host.with_broken_step_for_test();
    }
    let kern = host.loss_and_grad(v, inp, &mut Mse::new(net.n, inp.steps, 3, 0.0, 0.5), k);
    (cpu, kern)
}

#[test]
fn kernels_match_cpu_bit_for_bit() {
    let mut cases = 0;
    // (neurons, inputs per neuron, seed, per-connection weight scale): 300 neurons span 3 launch blocks.
    for (n, deg, seed, scale) in [(24, 4, 1, true), (45, 6, 2, false), (300, 8, 3, true)] {
        let net = random_network(n, deg, seed);
        assert!(net.n_gap_entries() > 0 && net.n_connections() > 0);
        let p = all_fitted_params(&net, "rate", scale, seed + 10);
        let v = RateValues::from_params(&net, &p);
        let steps = 31;
        for a in [Activation::Relu, Activation::Sigmoid] {
            for clamp in [false, true] {
                for (ki, k) in [1, 4, 7, 31, 100].into_iter().enumerate() {
                    let inp = input(net.n, steps, (ki + n) % 2 == 0, clamp, seed + 20);
                    let ((lc, gc), (lk, gk)) = cpu_and_kernels(&net, &v, &inp, a, k, false);
                    let what = format!("n = {n}, {a:?}, clamp {clamp}, checkpoint every {k}");
                    assert!(lc.is_finite() && lc > 0.0, "{what}: loss {lc}");
                    assert_eq!(lc.to_bits(), lk.to_bits(), "{what}: loss {lc} on the CPU, {lk} by the kernels");
                    if let Some((name, i, x, y)) = first_difference(&gc, &gk) {
                        panic!("{what}: d loss / d {name}[{i}] = {x:e} on the CPU, {y:e} by the kernels");
                    }
                    // Every class carries a gradient, so the comparison is not between zeros.
                    for (name, x) in fields(&gc) {
                        assert!(x.iter().any(|&g| g != 0.0 && g.is_finite()), "{what}: no gradient for {name}");
                    }
                    if clamp {
                        // Clamped neurons' inputs get no gradient at all (nothing flows back through data).
                        assert!(gc.bias[1] == 0.0 && gc.bias[n - 1] == 0.0, "{what}");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 3 * 2 * 2 * 5);
}

#[test]
fn kernel_loss_matches_cpu_bit_for_bit() {
    let net = random_network(60, 5, 7);
    let p = all_fitted_params(&net, "rate", true, 8);
    let v = RateValues::from_params(&net, &p);
    for a in [Activation::Relu, Activation::Sigmoid] {
        for clamp in [false, true] {
            let inp = input(net.n, 40, true, clamp, 9);
            let model = RateModel::new(&net, 1.0, a);
            let cpu = model.loss(&v, &inp, &mut Mse::new(net.n, inp.steps, 4, 0.0, 0.5));
            let kern = HostKernelRate::from_model(&model).loss(&v, &inp, &mut Mse::new(net.n, inp.steps, 4, 0.0, 0.5));
            assert_eq!(cpu.to_bits(), kern.to_bits(), "{a:?}, clamp {clamp}: {cpu} vs {kern}");
        }
    }
}

#[test]
fn no_steps_and_no_pulses_match() {
    let net = random_network(20, 3, 5);
    let p = all_fitted_params(&net, "rate", false, 6);
    let v = RateValues::from_params(&net, &p);
    for steps in [0, 1] {
        let inp = Input { steps, ..Default::default() };
        let ((lc, gc), (lk, gk)) = cpu_and_kernels(&net, &v, &inp, Activation::Sigmoid, 3, false);
        assert_eq!(lc.to_bits(), lk.to_bits(), "{steps} steps");
        assert_eq!(first_difference(&gc, &gk), None, "{steps} steps");
    }
}

/// Negative control: the kernel build with `bias + (syn + gap)` instead of `(bias + syn) + gap` in the
/// forward step is caught by the same comparison.
#[test]
fn reordered_sum_in_the_kernel_is_detected() {
    let net = random_network(45, 6, 2);
    let p = all_fitted_params(&net, "rate", true, 12);
    let v = RateValues::from_params(&net, &p);
    let inp = input(net.n, 31, true, false, 22);
    let ((lc, gc), (lk, gk)) = cpu_and_kernels(&net, &v, &inp, Activation::Sigmoid, 4, true);
    assert!(
        lc.to_bits() != lk.to_bits() || first_difference(&gc, &gk).is_some(),
        "the reordered kernel gave the CPU's loss and gradient bit for bit"
    );
    // ... while the difference is only rounding.
    assert!((lc - lk).abs() <= 1e-12 * lc.abs(), "{lc} vs {lk}");
}
