//! Acceptance 3: the CPU backend and the host-built CUDA kernels agree on inference and learning. Both
//! evaluate every output element with the same IEEE-754 double operations in the same order (no FMA: Rust
//! never contracts, the kernels use __dmul_rn/__dadd_rn and the host build `-ffp-contract=off`; the only
//! library function, sqrt, is correctly rounded on both), so the required tolerance is 0: bit-identical.

use neurotwin_models::rng::{CounterRng, Stream};
use neurotwin_predictive::csr::normal;
use neurotwin_predictive::data::{Direction, connectome_masks, layer_neurons};
use neurotwin_predictive::{Activation, Backend, Cpu, Csr, HostKernels, Layer, PcNetwork, PcState, infer, learn};

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn net_from(masks: Vec<Csr>, act: Activation, l1: f64) -> PcNetwork {
    let mut sizes: Vec<usize> = masks.iter().map(|m| m.rows).collect();
    sizes.push(masks.last().unwrap().cols);
    let n = sizes.len();
    let layers = (0..n)
        .map(|l| Layer {
            size: sizes[l],
            precision: if l + 1 == n { 0.5 } else { 1.0 },
            l1: if l > 0 { l1 } else { 0.0 },
        })
        .collect();
    let mut masks = masks;
    let rng = CounterRng::new(3, Stream::Connectivity);
    for (l, w) in masks.iter_mut().enumerate() {
        w.randomize(rng.substream(l as u32 + 1), 0.3);
    }
    PcNetwork::new(layers, act, masks)
}

/// Trains `batches` batches on both backends and returns (max |Δr|, max |Δe|, max |ΔW|, max |ΔF|) over all
/// layers and steps.
fn compare(net: &PcNetwork, batches: usize, batch: usize, ff: bool) -> [f64; 4] {
    let mut nets = [net.clone(), net.clone()];
    let backends: [&dyn Backend; 2] = [&Cpu, &HostKernels];
    let mut d = [0.0f64; 4];
    let rng = CounterRng::new(9, Stream::PoissonInput);
    for b in 0..batches {
        let x: Vec<f64> = (0..batch * net.layers[0].size).map(|k| normal(rng, k as u32, b as u64)).collect();
        let mut states = Vec::new();
        let mut energies = Vec::new();
        for (n, be) in nets.iter_mut().zip(backends) {
            let mut s = PcState::new(n, batch);
            s.set_input(n, be, &x, ff);
            energies.push(infer(n, &mut s, 0.05, 40, be));
            learn(n, &s, 0.05, Some(1.0), be);
            states.push(s);
        }
        for l in 0..net.layers.len() {
            d[0] = d[0].max(max_diff(&states[0].r[l], &states[1].r[l]));
            d[1] = d[1].max(max_diff(&states[0].e[l], &states[1].e[l]));
        }
        for l in 0..net.weights.len() {
            d[2] = d[2].max(max_diff(&nets[0].weights[l].vals, &nets[1].weights[l].vals));
        }
        d[3] = d[3].max(max_diff(&energies[0], &energies[1]));
    }
    d
}

#[test]
fn dense_relu_network_agrees_bitwise() {
    let net = net_from(vec![Csr::dense(36, 24), Csr::dense(24, 12)], Activation::Relu, 0.02);
    let d = compare(&net, 4, 8, true);
    println!("dense relu 36-24-12: max |Δr| {:e}, |Δe| {:e}, |ΔW| {:e}, |ΔF| {:e}", d[0], d[1], d[2], d[3]);
    assert_eq!(d, [0.0; 4]);
}

#[test]
fn connectome_masked_network_agrees_bitwise() {
    let c = neurotwin_connectome::load_celegans_bundled().unwrap();
    let types = [vec!["sensory".to_string()], vec!["interneuron".to_string()], vec!["motor".to_string()]];
    let groups = layer_neurons(&c, &types).unwrap();
    let masks = connectome_masks(&c, &groups, Direction::Either).unwrap();
    for a in [Activation::Linear, Activation::Relu] {
        let net = net_from(masks.clone(), a, 0.01);
        let d = compare(&net, 3, 4, a == Activation::Relu);
        println!(
            "celegans {:?} {:?} nnz {:?}: max |Δr| {:e}, |Δe| {:e}, |ΔW| {:e}, |ΔF| {:e}",
            a,
            net.layers.iter().map(|l| l.size).collect::<Vec<_>>(),
            net.weights.iter().map(Csr::nnz).collect::<Vec<_>>(),
            d[0],
            d[1],
            d[2],
            d[3]
        );
        assert_eq!(d, [0.0; 4]);
    }
}

/// Sparse coding (L1 prior, proximal steps) on a two-layer linear model: the free energy is non-increasing
/// for dt ≤ 1 / L (ISTA), on both backends.
#[test]
fn l1_inference_energy_is_monotone() {
    let net = net_from(vec![Csr::dense(30, 45)], Activation::Linear, 0.2);
    let rng = CounterRng::new(4, Stream::PoissonInput);
    let x: Vec<f64> = (0..30).map(|k| normal(rng, k, 0)).collect();
    for be in [&Cpu as &dyn Backend, &HostKernels] {
        let mut s = PcState::new(&net, 1);
        s.set_input(&net, be, &x, false);
        let e = infer(&net, &mut s, 0.05, 500, be);
        let worst = e.windows(2).map(|p| (p[1] - p[0]) - 64.0 * f64::EPSILON * p[0].abs()).fold(f64::MIN, f64::max);
        assert!(worst <= 0.0, "energy increased by {worst}");
        assert!(e[e.len() - 1] < e[0]);
    }
}

/// Runs `batches` batches of inference (`steps` steps each) and learning on the C. elegans-masked 3-layer
/// network on `be`; returns every array it produced: per batch the final r, e, mu, f(r) and bottom-up drive of every layer, the
/// free energy of every step, then the learned weights.
fn celegans_run(be: &dyn Backend, act: Activation, batches: usize, steps: usize) -> Vec<Vec<f64>> {
    let c = neurotwin_connectome::load_celegans_bundled().unwrap();
    let types = [vec!["sensory".to_string()], vec!["interneuron".to_string()], vec!["motor".to_string()]];
    let groups = layer_neurons(&c, &types).unwrap();
    let masks = connectome_masks(&c, &groups, Direction::Either).unwrap();
    let mut net = net_from(masks, act, 0.01);
    let batch = 8;
    let rng = CounterRng::new(11, Stream::PoissonInput);
    let mut out = Vec::new();
    for b in 0..batches {
        let x: Vec<f64> = (0..batch * net.layers[0].size).map(|k| normal(rng, k as u32, b as u64)).collect();
        let mut s = PcState::new(&net, batch);
        s.set_input(&net, be, &x, act == Activation::Relu);
        out.push(infer(&net, &mut s, 0.05, steps, be));
        learn(&mut net, &s, 0.05, Some(1.0), be);
        for l in 0..net.layers.len() {
            out.extend([s.r[l].clone(), s.e[l].clone(), s.mu[l].clone(), s.fr[l].clone(), s.bu[l].clone()]);
        }
    }
    out.extend(net.weights.iter().map(|w| w.vals.clone()));
    out
}

/// The GPU backend launches the kernels of `cuda/predictive.cu` with the host build's grids: a few hundred
/// inference and learning steps on the connectome-masked network give bit-identical arrays (every r, e, mu,
/// f(r), free energy and weight) on `Cuda`, `HostKernels` and `Cpu`.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_agrees_bitwise_with_the_cpu_and_the_host_kernels() {
    let gpu = neurotwin_predictive::Cuda::new().unwrap_or_else(|e| panic!("no usable GPU: {e}"));
    println!("GPU: {}", gpu.device_name());
    for act in [Activation::Linear, Activation::Relu] {
        let (batches, steps) = (6, 50);
        let runs: Vec<Vec<Vec<f64>>> = [&gpu as &dyn Backend, &HostKernels, &Cpu]
            .into_iter()
            .map(|be| celegans_run(be, act, batches, steps))
            .collect();
        assert!(runs[0].iter().flatten().any(|&v| v != 0.0), "{act:?}: the GPU produced only zeros");
        for (name, other) in [("HostKernels", &runs[1]), ("Cpu", &runs[2])] {
            assert_eq!(runs[0].len(), other.len());
            for (i, (g, o)) in runs[0].iter().zip(other).enumerate() {
                let same = g.len() == o.len() && g.iter().zip(o).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{act:?}: array #{i} differs between Cuda and {name} (max |Δ| {:e})", max_diff(g, o));
            }
        }
    }
}
