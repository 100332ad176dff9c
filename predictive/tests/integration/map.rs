//! Acceptance 1: inference on a linear model converges to the closed-form MAP estimate
//! r* = (WᵀW + λI)⁻¹ Wᵀx within 1e-4, and the free energy never increases during inference; for dense and
//! connectome-style sparse masks, on the CPU and on the host-built CUDA kernels.

use neurotwin_models::rng::{CounterRng, Stream};
use neurotwin_predictive::csr::normal;
use neurotwin_predictive::{Activation, Backend, Cpu, Csr, HostKernels, Layer, PcNetwork, PcState, infer};

/// Solves the symmetric positive definite system A r = b (n × n, row-major) by Cholesky.
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            l[i * n + j] = if i == j { (a[i * n + i] - s).sqrt() } else { (a[i * n + j] - s) / l[j * n + j] };
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    x
}

/// Largest eigenvalue of WᵀW by power iteration.
fn lipschitz(w: &Csr) -> f64 {
    let mut v = vec![1.0; w.cols];
    let mut lam = 0.0;
    for _ in 0..500 {
        let mut u = vec![0.0; w.rows];
        Cpu.spmm(w, 1, &v, &mut u);
        let mut z = vec![0.0; w.cols];
        Cpu.spmm_t(w, 1, &u, &mut z);
        lam = z.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = z.iter().map(|x| x / lam).collect();
    }
    lam
}

fn check(mask: Csr, lambda: f64, backend: &dyn Backend, label: &str) {
    let (n0, n1) = (mask.rows, mask.cols);
    let mut w = mask;
    w.randomize(CounterRng::new(11, Stream::Connectivity), 1.0 / (n0 as f64).sqrt());
    let rng = CounterRng::new(12, Stream::PoissonInput);
    let x: Vec<f64> = (0..n0).map(|i| normal(rng, i as u32, 0)).collect();

    // Closed form: (WᵀW + λI) r = Wᵀx.
    let d = w.to_dense();
    let mut a = vec![0.0; n1 * n1];
    for i in 0..n1 {
        for j in 0..n1 {
            a[i * n1 + j] =
                (0..n0).map(|k| d[k * n1 + i] * d[k * n1 + j]).sum::<f64>() + if i == j { lambda } else { 0.0 };
        }
    }
    let b: Vec<f64> = (0..n1).map(|j| (0..n0).map(|k| d[k * n1 + j] * x[k]).sum()).collect();
    let r_map = solve_spd(&a, &b, n1);

    let dt = 1.0 / (lipschitz(&w) + lambda);
    let net = PcNetwork::new(
        vec![Layer { size: n0, precision: 1.0, l1: 0.0 }, Layer { size: n1, precision: lambda, l1: 0.0 }],
        Activation::Linear,
        vec![w],
    );
    let mut s = PcState::new(&net, 1);
    s.set_input(&net, backend, &x, false);
    let energies = infer(&net, &mut s, dt, 3000, backend);
    let err = s.r[1].iter().zip(&r_map).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max);
    // Exact arithmetic gives F_{t+1} <= F_t (gradient descent with dt <= 1 / L on a quadratic). Once converged,
    // F is evaluated as a sum of ~n0 + n1 rounded terms, so consecutive values may differ by a few ulps of F:
    // the check allows 64 ε |F_t| (≈ 1.4e-14 relative), far below any real increase.
    let worst_increase =
        energies.windows(2).map(|p| (p[1] - p[0]) - 64.0 * f64::EPSILON * p[0].abs()).fold(f64::NEG_INFINITY, f64::max);
    println!(
        "{label}: {n0}×{n1}, nnz {}, dt {dt:.4}, max |r − r_MAP| = {err:.3e}, F: {:.6} → {:.6}, largest step change {worst_increase:.3e}",
        net.weights[0].nnz(),
        energies[0],
        energies[energies.len() - 1]
    );
    assert!(err < 1e-4, "{label}: MAP error {err}");
    assert!(worst_increase <= 0.0, "{label}: free energy increased by {worst_increase}");
}

#[test]
fn linear_inference_converges_to_map_dense() {
    check(Csr::dense(40, 20), 0.1, &Cpu, "dense cpu");
    check(Csr::dense(40, 20), 0.1, &HostKernels, "dense cuda-host");
}

#[test]
fn linear_inference_converges_to_map_sparse() {
    // A random 30 % mask (with a diagonal band so that WᵀW + λI is well conditioned).
    let rng = CounterRng::new(5, Stream::Connectivity);
    let (n0, n1) = (60, 30);
    let pairs = (0..n0)
        .flat_map(|i| (0..n1).map(move |j| (i, j)))
        .filter(|&(i, j)| i % n1 == j || rng.uniform((i * n1 + j) as u32, 0, 0) < 0.3);
    let mask = Csr::from_mask(n0, n1, pairs);
    check(mask.clone(), 0.05, &Cpu, "sparse cpu");
    check(mask, 0.05, &HostKernels, "sparse cuda-host");
}
