//! The atlas loss (stimulated runs minus a shared control run) has the gradient that finite
//! differences give, and a short fit on responses made by a known parameter set lowers the loss and
//! moves toward those parameters.

use neurotwin_fit::atlas::{AtlasProtocol, AtlasTask, BackendKind, StimExample};
use neurotwin_fit::rate::{Activation, RateModel, RateValues};
use neurotwin_fit::testing::{all_fitted_params, check_gradient_fd, random_network};
use neurotwin_fit::train::{TrainOptions, train};

fn protocol() -> AtlasProtocol {
    AtlasProtocol { steps: 60, stim: (5, 20), window: (5, 61), amplitude: 1.0 }
}

#[test]
fn atlas_gradient_matches_finite_differences() {
    let net = random_network(30, 4, 41);
    let p = all_fitted_params(&net, "rate", false, 42);
    // Sigmoid: smooth, so the stencil never straddles a ReLU kink.
    let task = AtlasTask {
        model: RateModel::new(&net, 1.0, Activation::Sigmoid),
        protocol: protocol(),
        checkpoint_every: 9,
        backend: BackendKind::Cpu,
    };
    let examples: Vec<StimExample> = [0u32, 7, 13]
        .iter()
        .map(|&j| StimExample {
            stimulated: j,
            responders: (0..30).filter(|&i| i != j).collect(),
            measured: (0..29).map(|k| 0.01 * ((k * 7 + j as usize) % 11) as f64 - 0.03).collect(),
        })
        .collect();
    let refs: Vec<&StimExample> = examples.iter().collect();
    task.check(&examples).unwrap();
    let (loss, g) = task.loss_and_grad(&p, &refs);
    assert!((loss - task.loss(&p, &refs)).abs() <= 1e-15 * loss.abs().max(1.0));
    check_gradient_fd("atlas", &p, loss, &g, 1e-3, |q| task.loss(q, &refs));
}

#[test]
fn fitting_recovers_a_known_twin_better_than_its_start() {
    // "Measured" responses come from a known parameter set; the fit starts elsewhere.
    let net = random_network(30, 4, 51);
    let truth = all_fitted_params(&net, "rate", false, 52);
    let task = AtlasTask {
        model: RateModel::new(&net, 1.0, Activation::Relu),
        protocol: protocol(),
        checkpoint_every: 16,
        backend: BackendKind::Cpu,
    };
    let tv = RateValues::from_params(&net, &truth);
    let control = task.control(&tv);
    let examples: Vec<StimExample> = (0..30u32)
        .map(|j| {
            let r = task.predict(&tv, j, &control);
            let responders: Vec<u32> = (0..30).filter(|&i| i != j).collect();
            let measured = responders.iter().map(|&i| r[i as usize]).collect();
            StimExample { stimulated: j, responders, measured }
        })
        .collect();
    let start = all_fitted_params(&net, "rate", false, 99);
    let refs: Vec<&StimExample> = examples.iter().collect();
    let l0 = task.loss(&start, &refs);
    let opts = TrainOptions { epochs: 40, batch_size: 10, lr: 0.05, patience: 0, ..Default::default() };
    let grad = |p: &neurotwin_fit::ParamSet, idx: &[usize]| {
        let b: Vec<&StimExample> = idx.iter().map(|&i| &examples[i]).collect();
        Ok(task.loss_and_grad(p, &b))
    };
    let val = |_: &neurotwin_fit::ParamSet| Ok(f64::NAN);
    let fitted = train(start, examples.len(), &opts, &grad, &val, &mut |_| {}).unwrap();
    let l1 = task.loss(&fitted.params, &refs);
    eprintln!("loss before {l0:.3e}, after {l1:.3e}");
    assert!(l1 < 0.2 * l0, "fit should lower the loss at least 5× (before {l0:.3e}, after {l1:.3e})");
}

#[test]
fn host_kernel_backend_gives_the_cpu_gradient_bit_for_bit() {
    let net = random_network(30, 4, 61);
    let p = all_fitted_params(&net, "rate", true, 62);
    let examples: Vec<StimExample> = [2u32, 9]
        .iter()
        .map(|&j| StimExample {
            stimulated: j,
            responders: (0..30).filter(|&i| i != j).collect(),
            measured: (0..29).map(|k| 0.02 * (k % 5) as f64 - 0.04).collect(),
        })
        .collect();
    let refs: Vec<&StimExample> = examples.iter().collect();
    let task = |backend| AtlasTask {
        model: RateModel::new(&net, 1.0, Activation::Sigmoid),
        protocol: protocol(),
        checkpoint_every: 7,
        backend,
    };
    let (lc, gc) = task(BackendKind::Cpu).loss_and_grad(&p, &refs);
    let (lk, gk) = task(BackendKind::CudaHost).loss_and_grad(&p, &refs);
    assert_eq!(lc.to_bits(), lk.to_bits());
    assert!(gc.iter().any(|&x| x != 0.0));
    assert!(gc.iter().zip(&gk).all(|(a, b)| a.to_bits() == b.to_bits()));
}
