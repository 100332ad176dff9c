//! Gradients against central finite differences in f64 (fourth-order stencil), for every parameter
//! class of the rate model (ReLU and sigmoid) and of the LIF network with its surrogate made exact
//! (fast-sigmoid forward pass); bit-identical gradients for any thread count and with or without
//! checkpointing.

#![allow(clippy::needless_range_loop)]

use neurotwin_fit::FitNetwork;
use neurotwin_fit::lif::{LifModel, SpikeFn};
use neurotwin_fit::params::ParamSet;
use neurotwin_fit::rate::{Activation, Input, Pulse, RateModel, RateValues};
use neurotwin_fit::testing::{Mse, all_fitted_params, check_gradient_fd, random_network};

fn input(n: usize, steps: usize) -> Input {
    Input {
        steps,
        v0: (0..n).map(|i| 0.05 * (i % 7) as f64).collect(),
        pulses: vec![
            Pulse { neuron: 0, start: 3, stop: 12, amplitude: 0.8 },
            Pulse { neuron: (n / 2) as u32, start: 5, stop: 20, amplitude: -0.4 },
        ],
        clamp: None,
    }
}

enum Which {
    Rate(Activation),
    Lif,
}

fn loss_of(net: &FitNetwork, which: &Which, p: &ParamSet, inp: &Input, seed: u64) -> f64 {
    let v = RateValues::from_params(net, p);
    let mut obj = Mse::new(net.n, inp.steps, seed, 0.0, if matches!(which, Which::Lif) { 1.0 } else { 0.5 });
    match which {
        Which::Rate(a) => RateModel::new(net, 1.0, *a).loss(&v, inp, &mut obj),
        Which::Lif => LifModel::new(net, 1.0, 5.0, 5.0, SpikeFn::FastSigmoid).loss(&v, inp, &mut obj),
    }
}

fn grad_of(net: &FitNetwork, which: &Which, p: &ParamSet, inp: &Input, seed: u64, k: usize) -> (f64, Vec<f64>) {
    let v = RateValues::from_params(net, p);
    let mut obj = Mse::new(net.n, inp.steps, seed, 0.0, if matches!(which, Which::Lif) { 1.0 } else { 0.5 });
    let (loss, g) = match which {
        Which::Rate(a) => RateModel::new(net, 1.0, *a).loss_and_grad(&v, inp, &mut obj, k),
        Which::Lif => LifModel::new(net, 1.0, 5.0, 5.0, SpikeFn::FastSigmoid).loss_and_grad(&v, inp, &mut obj, k),
    };
    let mut raw = vec![0.0; p.raw.len()];
    g.reduce(net, &v, p, &mut raw);
    (loss, raw)
}

/// Checks every raw number: returns the worst relative error per block.
fn check_fd(which: Which, model: &str, seed: u64) {
    let net = random_network(24, 4, seed);
    let p = all_fitted_params(&net, model, true, seed + 1);
    let inp = input(net.n, 40);
    let (loss, g) = grad_of(&net, &which, &p, &inp, seed + 2, 7);
    assert!(loss.is_finite() && loss > 0.0);
    check_gradient_fd(model, &p, loss, &g, 1e-3, |q| loss_of(&net, &which, q, &inp, seed + 2));
}

#[test]
fn rate_relu_gradient_matches_finite_differences() {
    check_fd(Which::Rate(Activation::Relu), "rate", 11);
}

#[test]
fn rate_sigmoid_gradient_matches_finite_differences() {
    check_fd(Which::Rate(Activation::Sigmoid), "rate", 21);
}

#[test]
fn lif_surrogate_gradient_matches_finite_differences_of_the_relaxed_network() {
    check_fd(Which::Lif, "lif", 31);
}

#[test]
fn checkpointing_does_not_change_a_bit() {
    let net = random_network(30, 5, 5);
    let p = all_fitted_params(&net, "rate", true, 6);
    let inp = input(net.n, 53);
    let w = Which::Rate(Activation::Sigmoid);
    let (l1, g1) = grad_of(&net, &w, &p, &inp, 7, 1);
    for k in [2, 7, 10, 53, 100] {
        let (lk, gk) = grad_of(&net, &w, &p, &inp, 7, k);
        assert_eq!(l1.to_bits(), lk.to_bits());
        assert!(g1.iter().zip(&gk).all(|(a, b)| a.to_bits() == b.to_bits()), "checkpoint every {k}");
    }
}

fn grads_with(net: &FitNetwork, p: &ParamSet, inp: &Input, lif: bool, par: bool, threads: usize) -> (f64, Vec<f64>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let v = RateValues::from_params(net, p);
        let mut obj = Mse::new(net.n, inp.steps, 3, 0.0, 0.5);
        let (loss, g) = if lif {
            LifModel::new(net, 1.0, 5.0, 5.0, SpikeFn::Heaviside).with_parallel(par).loss_and_grad(&v, inp, &mut obj, 8)
        } else {
            RateModel::new(net, 1.0, Activation::Relu).with_parallel(par).loss_and_grad(&v, inp, &mut obj, 8)
        };
        let mut raw = vec![0.0; p.raw.len()];
        g.reduce(net, &v, p, &mut raw);
        (loss, raw)
    })
}

#[test]
fn gradients_are_bit_identical_for_any_thread_count() {
    // Several parallel chunks (512 neurons each).
    let net = random_network(1800, 12, 9);
    for (lif, model) in [(false, "rate"), (true, "lif")] {
        let p = all_fitted_params(&net, model, true, 10);
        let inp = input(net.n, 30);
        let serial = grads_with(&net, &p, &inp, lif, false, 1);
        assert!(serial.1.iter().any(|&x| x != 0.0));
        for threads in [1, 2, 3] {
            let par = grads_with(&net, &p, &inp, lif, true, threads);
            assert_eq!(serial.0.to_bits(), par.0.to_bits(), "{model}: loss, {threads} threads");
            assert!(
                serial.1.iter().zip(&par.1).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{model}: gradient differs with {threads} threads"
            );
        }
    }
}

#[test]
fn heaviside_network_spikes_and_its_surrogate_gradient_is_finite() {
    let net = random_network(40, 6, 12);
    let p = all_fitted_params(&net, "lif", false, 13);
    let mut v = RateValues::from_params(&net, &p);
    // Suprathreshold drive (bias above the threshold): regular firing.
    v.bias.iter_mut().for_each(|b| *b = 1.3);
    let inp = input(net.n, 200);
    let model = LifModel::new(&net, 1.0, 5.0, 5.0, SpikeFn::Heaviside);
    let spikes: f64 = model.spikes(&v, &inp).iter().flatten().sum();
    assert!(spikes > 10.0, "the test network should spike ({spikes} spikes)");
    let mut obj = Mse::new(net.n, inp.steps, 3, 0.0, 0.1);
    let (_, g) = model.loss_and_grad(&v, &inp, &mut obj, 16);
    assert!(g.tau.iter().chain(&g.w).chain(&g.theta).all(|x| x.is_finite()));
    assert!(g.w.iter().any(|&x| x != 0.0));
}
