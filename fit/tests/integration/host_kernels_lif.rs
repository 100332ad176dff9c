//! The spiking LIF model run by the host build of its CUDA C kernels (`kernels/cuda/fit_lif.cu`, through
//! `neurotwin_fit::host_kernels_lif`) against the CPU code (`LifModel`): the loss and every element gradient
//! equal bit for bit, for the Heaviside and the fast-sigmoid spike function, with and without a per-connection
//! weight scale, for several checkpoint intervals and networks (up to 300 neurons, three launch blocks); and a
//! deliberately reordered sum in the kernel is detected.

#![allow(clippy::needless_range_loop)]

use neurotwin_fit::FitNetwork;
use neurotwin_fit::host_kernels_lif::HostKernelLif;
use neurotwin_fit::lif::{LifModel, SpikeFn};
use neurotwin_fit::rate::{Input, Pulse, RateGrads, RateValues};
use neurotwin_fit::testing::{Mse, all_fitted_params, random_network};

const DT: f64 = 1.0;
const TAU_SYN: f64 = 5.0;
const KAPPA: f64 = 5.0;

/// Pulses (two overlapping on neuron 0, so their order matters; a few more so that many neurons spike) and an
/// initial state (or none).
fn input(n: usize, steps: usize, v0: bool) -> Input {
    let mut pulses = vec![
        Pulse { neuron: 0, start: 2, stop: 12, amplitude: 0.8 },
        Pulse { neuron: (n / 2) as u32, start: 5, stop: 20, amplitude: -0.4 },
        Pulse { neuron: 0, start: 6, stop: 9, amplitude: 0.37 },
    ];
    for i in (1..n).step_by(5) {
        pulses.push(Pulse { neuron: i as u32, start: i % 4, stop: steps.saturating_sub(i % 3), amplitude: 0.45 });
    }
    Input {
        steps,
        v0: if v0 { (0..n).map(|i| 0.15 * (i % 7) as f64 - 0.1).collect() } else { vec![] },
        pulses,
        clamp: None,
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

fn mse(net: &FitNetwork, steps: usize) -> Mse {
    Mse::new(net.n, steps, 3, 0.0, 0.5)
}

fn cpu_and_kernels(
    net: &FitNetwork,
    v: &RateValues,
    inp: &Input,
    spike_fn: SpikeFn,
    k: usize,
    broken: bool,
) -> ((f64, RateGrads), (f64, RateGrads)) {
    let model = LifModel::new(net, DT, TAU_SYN, KAPPA, spike_fn);
    let cpu = model.loss_and_grad(v, inp, &mut mse(net, inp.steps), k);
    let mut host = HostKernelLif::from_model(&model);
    if broken {
        host = host.with_broken_step_for_test();
    }
    let kern = host.loss_and_grad(v, inp, &mut mse(net, inp.steps), k);
    (cpu, kern)
}

#[test]
fn kernels_match_cpu_bit_for_bit() {
    let mut cases = 0;
    // (neurons, inputs per neuron, seed, per-connection weight scale): 300 neurons span 3 launch blocks.
    for (n, deg, seed, scale) in [(24, 4, 1, true), (45, 6, 2, false), (300, 8, 3, true), (300, 8, 4, false)] {
        let net = random_network(n, deg, seed);
        assert!(net.n_gap_entries() > 0 && net.n_connections() > 0);
        let p = all_fitted_params(&net, "lif", scale, seed + 10);
        assert_eq!(p.block("weight_scale").is_some(), scale);
        let v = RateValues::from_params(&net, &p);
        let steps = 29;
        for spike_fn in [SpikeFn::Heaviside, SpikeFn::FastSigmoid] {
            for (ki, k) in [1, 3, 8, 29, 100].into_iter().enumerate() {
                let inp = input(net.n, steps, (ki + n) % 2 == 0);
                if spike_fn == SpikeFn::Heaviside && ki == 0 {
                    // The spiking network does spike (else its gradients would be trivial).
                    let model = LifModel::new(&net, DT, TAU_SYN, KAPPA, spike_fn);
                    let spikes: f64 = model.spikes(&v, &inp).iter().flatten().sum();
                    assert!(spikes >= 10.0, "n = {n}: only {spikes} spikes");
                }
                let ((lc, gc), (lk, gk)) = cpu_and_kernels(&net, &v, &inp, spike_fn, k, false);
                let what = format!("n = {n}, scale {scale}, {spike_fn:?}, checkpoint every {k}");
                assert!(lc.is_finite() && lc > 0.0, "{what}: loss {lc}");
                assert_eq!(lc.to_bits(), lk.to_bits(), "{what}: loss {lc} on the CPU, {lk} by the kernels");
                if let Some((name, i, x, y)) = first_difference(&gc, &gk) {
                    panic!("{what}: d loss / d {name}[{i}] = {x:e} on the CPU, {y:e} by the kernels");
                }
                // Every class but the unused slope carries a gradient, so the comparison is not between zeros.
                for (name, x) in fields(&gc) {
                    if name == "slope" {
                        assert!(x.iter().all(|&g| g == 0.0), "{what}: slope gradient");
                    } else {
                        assert!(x.iter().any(|&g| g != 0.0 && g.is_finite()), "{what}: no gradient for {name}");
                        assert!(x.iter().all(|g| g.is_finite()), "{what}: non-finite gradient for {name}");
                    }
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 4 * 2 * 5);
}

#[test]
fn kernel_loss_matches_cpu_bit_for_bit() {
    let net = random_network(60, 5, 7);
    let p = all_fitted_params(&net, "lif", true, 8);
    let v = RateValues::from_params(&net, &p);
    for spike_fn in [SpikeFn::Heaviside, SpikeFn::FastSigmoid] {
        for v0 in [false, true] {
            let inp = input(net.n, 40, v0);
            let model = LifModel::new(&net, DT, TAU_SYN, KAPPA, spike_fn);
            let cpu = model.loss(&v, &inp, &mut mse(&net, inp.steps));
            let kern = HostKernelLif::from_model(&model).loss(&v, &inp, &mut mse(&net, inp.steps));
            assert_eq!(cpu.to_bits(), kern.to_bits(), "{spike_fn:?}, v0 {v0}: {cpu} vs {kern}");
        }
    }
}

#[test]
fn no_steps_and_no_pulses_match() {
    let net = random_network(20, 3, 5);
    let p = all_fitted_params(&net, "lif", false, 6);
    let v = RateValues::from_params(&net, &p);
    for spike_fn in [SpikeFn::Heaviside, SpikeFn::FastSigmoid] {
        for steps in [0, 1, 2] {
            let inp = Input { steps, ..Default::default() };
            let ((lc, gc), (lk, gk)) = cpu_and_kernels(&net, &v, &inp, spike_fn, 3, false);
            assert_eq!(lc.to_bits(), lk.to_bits(), "{spike_fn:?}, {steps} steps");
            assert_eq!(first_difference(&gc, &gk), None, "{spike_fn:?}, {steps} steps");
        }
    }
}

/// Negative control: the kernel build with `(−v + bias) + (I + gap)` instead of `((−v + bias) + I) + gap` in
/// the forward step is caught by the same comparison.
#[test]
fn reordered_sum_in_the_kernel_is_detected() {
    let net = random_network(45, 6, 2);
    let p = all_fitted_params(&net, "lif", true, 12);
    let v = RateValues::from_params(&net, &p);
    let inp = input(net.n, 29, true);
    for spike_fn in [SpikeFn::FastSigmoid, SpikeFn::Heaviside] {
        let ((lc, gc), (lk, gk)) = cpu_and_kernels(&net, &v, &inp, spike_fn, 4, true);
        assert!(
            lc.to_bits() != lk.to_bits() || first_difference(&gc, &gk).is_some(),
            "{spike_fn:?}: the reordered kernel gave the CPU's loss and gradient bit for bit"
        );
        if spike_fn == SpikeFn::FastSigmoid {
            // ... while the difference is only rounding (a Heaviside spike may flip, so no such bound there).
            assert!((lc - lk).abs() <= 1e-12 * lc.abs(), "{lc} vs {lk}");
        }
    }
}
