//! Small random networks and parameter sets for tests and benchmarks (deterministic for a seed).

use std::collections::BTreeMap;

use neurotwin_connectome::{CompileOptions, Connection, Connectome, Neuron, TransmitterMap, compile};

use crate::network::FitNetwork;
use crate::params::ParamSet;
use crate::rate::Objective;
use crate::spec::{ParamSpec, build_params};

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny deterministic generator for test data.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` neurons of three cell types (`a`, `b`, `c`), about `k` inputs each with 1–5 synapses, a fifth
/// of them inhibitory, and gap junctions between about `n/2` pairs.
pub fn random_network(n: usize, k: usize, seed: u64) -> FitNetwork {
    let mut r = SplitMix(seed);
    let types = ["a", "b", "c"];
    let neurons = (0..n)
        .map(|i| {
            let mut x = Neuron::new(i as u64 + 1, format!("n{i}"));
            x.cell_type = types[i % 3].into();
            x
        })
        .collect();
    let mut connections = Vec::new();
    for post in 0..n {
        for _ in 0..k {
            let pre = (r.next_u64() % n as u64) as usize;
            if pre == post {
                continue;
            }
            let mut c = Connection::chemical(pre as u64 + 1, post as u64 + 1, 1.0 + (r.next_u64() % 5) as f32);
            // Inhibition by presynaptic neuron (Dale's principle): every fifth neuron.
            c.receptor = Some(if pre % 5 == 4 { "inh" } else { "exc" }.into());
            connections.push(c);
        }
    }
    for _ in 0..n / 2 {
        let a = (r.next_u64() % n as u64) as usize;
        let b = (r.next_u64() % n as u64) as usize;
        if a != b {
            connections.push(Connection::electrical(a as u64 + 1, b as u64 + 1, 1.0 + (r.next_u64() % 3) as f32));
        }
    }
    let c = Connectome { name: "random".into(), provenance: vec![], neurons, connections };
    let opt = CompileOptions {
        dt_ms: 1.0,
        transmitters: TransmitterMap::exc_inh(),
        weight_per_synapse: 1.0,
        gap_per_junction_ns: 1.0,
        ..Default::default()
    };
    let net = compile(&c, &opt).expect("random network compiles");
    FitNetwork::from_compiled(&net, 1.0, 1.0, &[]).expect("random network reads")
}

/// Every parameter class of `model` fitted, with group-wise initial values spread by `seed` so that
/// no two groups are equal; `weight_scale` included when `per_connection_scale`.
pub fn all_fitted_params(net: &FitNetwork, model: &str, per_connection_scale: bool, seed: u64) -> ParamSet {
    let mut specs = BTreeMap::new();
    let lif = model == "lif";
    specs.insert("tau".into(), ParamSpec::fitted("cell_type", 12.0, Some(2.0), None));
    specs.insert("bias".into(), ParamSpec::fitted("cell_type", if lif { 0.6 } else { 0.3 }, None, None));
    specs.insert("gain".into(), ParamSpec::fitted("neuron", 1.0, Some(0.0), None));
    specs.insert("theta".into(), ParamSpec::fitted("cell_type", if lif { 0.8 } else { 0.1 }, None, None));
    if !lif {
        specs.insert("slope".into(), ParamSpec::fitted("global", 1.5, Some(0.0), Some(10.0)));
    }
    specs.insert("strength".into(), ParamSpec::fitted("type_pair", 0.08, Some(0.0), None));
    specs.insert("gap".into(), ParamSpec::fitted("type_pair", 0.02, Some(0.0), None));
    if per_connection_scale {
        specs.insert("weight_scale".into(), ParamSpec::fitted("connection", 1.0, Some(0.0), None));
    }
    let mut p = build_params(net, model, &specs).expect("test parameters build");
    let mut r = SplitMix(seed);
    for x in p.raw.iter_mut() {
        *x += 0.3 * (r.uniform() - 0.5);
    }
    p
}

/// `Σ_t Σ_i c_i (x_i^t − y_i^t)²` over the observed vector, with fixed random targets `y` uniform in
/// `[lo, hi)` and weights `c` uniform in `[0, 1)`: a loss whose gradient reaches every state.
pub struct Mse {
    target: Vec<Vec<f64>>,
    weight: Vec<f64>,
    sum: f64,
}

impl Mse {
    pub fn new(n: usize, steps: usize, seed: u64, lo: f64, hi: f64) -> Self {
        let mut r = SplitMix(seed);
        let target = (0..=steps).map(|_| (0..n).map(|_| lo + (hi - lo) * r.uniform()).collect()).collect();
        let weight = (0..n).map(|_| r.uniform()).collect();
        Self { target, weight, sum: 0.0 }
    }
}

impl Objective for Mse {
    fn observe(&mut self, t: usize, v: &[f64]) {
        for ((x, y), c) in v.iter().zip(&self.target[t]).zip(&self.weight) {
            let d = x - y;
            self.sum += c * d * d;
        }
    }
    fn finish(&mut self) -> f64 {
        std::mem::take(&mut self.sum)
    }
    fn inject(&self, t: usize, v: &[f64], grad: &mut [f64]) {
        for (((g, x), y), c) in grad.iter_mut().zip(v).zip(&self.target[t]).zip(&self.weight) {
            *g += 2.0 * c * (x - y);
        }
    }
}

/// Checks the gradient `g` of `loss` (at `p`) against the fourth-order central difference of
/// `loss_at` with step `h` on every raw number: relative error ≤ 1e-6 where the difference rises well
/// above the stencil's round-off floor (~10 ε L / h), agreement within that floor elsewhere; every class
/// must have numbers of both kinds checked relatively and a non-zero gradient. Panics with the parameter
/// named; returns `(numbers, checked relatively, worst relative error)` per class.
pub fn check_gradient_fd(
    what: &str,
    p: &ParamSet,
    loss: f64,
    g: &[f64],
    h: f64,
    loss_at: impl Fn(&ParamSet) -> f64,
) -> BTreeMap<String, (usize, usize, f64)> {
    assert!(loss.is_finite() && loss > 0.0, "{what}: loss {loss}");
    assert_eq!(g.len(), p.raw.len(), "{what}: one gradient entry per raw number");
    let noise = 10.0 * f64::EPSILON * loss / h;
    let mut worst: BTreeMap<String, (usize, usize, f64)> = BTreeMap::new();
    for (k, &gk) in g.iter().enumerate() {
        let at = |d: f64| {
            let mut q = p.clone();
            q.raw[k] += d;
            loss_at(&q)
        };
        let fd = (-at(2.0 * h) + 8.0 * at(h) - 8.0 * at(-h) + at(-2.0 * h)) / (12.0 * h);
        let rel = (gk - fd).abs() / fd.abs().max(gk.abs()).max(f64::MIN_POSITIVE);
        let block = p.describe(k).split('[').next().unwrap_or_default().to_string();
        let w = worst.entry(block).or_insert((0, 0, 0.0));
        w.0 += 1;
        if fd.abs() < 1e3 * noise {
            assert!(
                (gk - fd).abs() <= noise,
                "{what}: d loss / d {} = {} by BPTT, {} by finite differences (beyond round-off {noise:.1e})",
                p.describe(k),
                gk,
                fd
            );
            continue;
        }
        w.1 += 1;
        w.2 = w.2.max(rel);
        assert!(
            rel <= 1e-6,
            "{what}: d loss / d {} = {} by BPTT, {} by finite differences (relative error {rel:.2e})",
            p.describe(k),
            gk,
            fd
        );
    }
    eprintln!("{what}: (numbers, checked relatively, worst relative error) per class: {worst:?}");
    for (class, (_, checked, _)) in &worst {
        assert!(*checked > 0, "{what}: no number of class {class} rose above the round-off floor");
    }
    for b in &p.blocks {
        let nonzero = (b.offset..b.offset + b.n_groups()).filter(|&k| g[k] != 0.0).count();
        assert!(nonzero > 0, "{what}: parameter class {} has no gradient at all", b.name);
    }
    worst
}
