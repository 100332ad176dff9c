//! The differentiable graded conductance model (`neurotwin_fit::graded`): gradients against central
//! finite differences in f64 (fourth-order stencil) for every parameter class, bit-identical gradients
//! for any thread count and with or without checkpointing, and the forward pass against independent
//! truth (the simulator's `neurotwin_models::graded::update_block`, and an analytic steady state).

#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;

use neurotwin_connectome::{CompileOptions, Connection, Connectome, Neuron, TransmitterMap, compile};
use neurotwin_fit::FitNetwork;
use neurotwin_fit::graded::{GradedModel, GradedValues};
use neurotwin_fit::params::ParamSet;
use neurotwin_fit::rate::{Clamp, Input, Pulse};
use neurotwin_fit::spec::{ParamSpec, build_params};
use neurotwin_fit::testing::{Mse, SplitMix, check_gradient_fd, random_network};
use neurotwin_models::graded::{GradedParams, activation};
use neurotwin_models::{BlockInput, BlockOutput, CompiledModel, GapInput, LANES, NeuronParams};

/// Step (ms) of every test.
const DT: f64 = 0.5;

/// Every parameter class fitted (conductances and the slope positive), groups spread by `seed`.
/// Values: τ = C/g_L ≈ 7–15 ms at C = 1 pF; synaptic and gap conductances of the order of g_L, so that
/// the network, not the leak alone, shapes the trajectory; θ near rest so that activations vary.
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

/// Current pulses (pA before the gain) on two neurons; `V^0 = E_L` unless `v0` is given.
fn input(n: usize, steps: usize, v0: bool) -> Input {
    Input {
        steps,
        v0: if v0 { (0..n).map(|i| -40.0 + 2.0 * (i % 7) as f64).collect() } else { Vec::new() },
        pulses: vec![
            Pulse { neuron: 0, start: 3, stop: 12, amplitude: 3.0 },
            Pulse { neuron: (n / 2) as u32, start: 5, stop: 20, amplitude: -2.0 },
        ],
        clamp: None,
    }
}

fn loss_of(net: &FitNetwork, p: &ParamSet, inp: &Input, seed: u64) -> f64 {
    let v = GradedValues::from_params(net, p);
    let mut obj = Mse::new(net.n, inp.steps, seed, -60.0, -10.0);
    GradedModel::new(net, DT).loss(&v, inp, &mut obj)
}

fn grad_of(net: &FitNetwork, p: &ParamSet, inp: &Input, seed: u64, k: usize) -> (f64, Vec<f64>) {
    let v = GradedValues::from_params(net, p);
    let mut obj = Mse::new(net.n, inp.steps, seed, -60.0, -10.0);
    let (loss, g) = GradedModel::new(net, DT).loss_and_grad(&v, inp, &mut obj, k);
    let mut raw = vec![0.0; p.raw.len()];
    g.reduce(net, p, &mut raw);
    (loss, raw)
}

/// Checks every raw number against the fourth-order central difference (h = 1e-3 on the raw numbers,
/// as for the rate and LIF models); returns the worst relative error per parameter class.
fn check_fd(net: &FitNetwork, p: &ParamSet, inp: &Input, seed: u64, what: &str) -> BTreeMap<String, f64> {
    let (loss, g) = grad_of(net, p, inp, seed, 7);
    let worst = check_gradient_fd(&format!("graded ({what})"), p, loss, &g, 1e-3, |q| loss_of(net, q, inp, seed));
    worst.into_iter().map(|(k, v)| (k, v.2)).collect()
}

#[test]
fn graded_gradient_matches_finite_differences() {
    let net = random_network(24, 4, 41);
    assert!(net.receptors.iter().any(|r| r.excitatory) && net.receptors.iter().any(|r| !r.excitatory));
    assert!(net.n_gap_entries() > 0);
    let p = graded_params(&net, 42);
    // V^0 = E_L: the initial state depends on e_l too.
    check_fd(&net, &p, &input(net.n, 40, false), 43, "V0 = E_L");
}

#[test]
fn graded_gradient_matches_finite_differences_with_teacher_forcing() {
    let net = random_network(24, 4, 51);
    let p = graded_params(&net, 52);
    let mut inp = input(net.n, 40, true);
    let clamped = vec![1u32, 5, 17];
    let mut r = SplitMix(53);
    let values = (0..(inp.steps + 1) * clamped.len()).map(|_| -50.0 + 30.0 * r.uniform()).collect();
    inp.clamp = Some(Clamp { neurons: clamped, values });
    inp.check(net.n).unwrap();
    check_fd(&net, &p, &inp, 54, "clamped, given V0");
}

#[test]
fn graded_checkpointing_does_not_change_a_bit() {
    let net = random_network(30, 5, 5);
    let p = graded_params(&net, 6);
    let inp = input(net.n, 53, false);
    let (l1, g1) = grad_of(&net, &p, &inp, 7, 1);
    assert!(g1.iter().any(|&x| x != 0.0));
    for k in [2, 7, 10, 53, 100] {
        let (lk, gk) = grad_of(&net, &p, &inp, 7, k);
        assert_eq!(l1.to_bits(), lk.to_bits());
        assert!(g1.iter().zip(&gk).all(|(a, b)| a.to_bits() == b.to_bits()), "checkpoint every {k}");
    }
    // The loss of the forward-only pass is the same number.
    assert_eq!(loss_of(&net, &p, &inp, 7).to_bits(), l1.to_bits());
}

fn grads_with(net: &FitNetwork, p: &ParamSet, inp: &Input, par: bool, threads: usize) -> (f64, Vec<f64>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let v = GradedValues::from_params(net, p);
        let mut obj = Mse::new(net.n, inp.steps, 3, -60.0, -10.0);
        let (loss, g) = GradedModel::new(net, DT).with_parallel(par).loss_and_grad(&v, inp, &mut obj, 8);
        let mut raw = vec![0.0; p.raw.len()];
        g.reduce(net, p, &mut raw);
        (loss, raw)
    })
}

#[test]
fn graded_gradients_are_bit_identical_for_any_thread_count() {
    // Several parallel chunks (512 neurons each).
    let net = random_network(1800, 12, 9);
    let p = graded_params(&net, 10);
    let inp = input(net.n, 30, false);
    let serial = grads_with(&net, &p, &inp, false, 1);
    assert!(serial.1.iter().all(|x| x.is_finite()));
    for b in &p.blocks {
        assert!((b.offset..b.offset + b.n_groups()).any(|k| serial.1[k] != 0.0), "no gradient for {}", b.name);
    }
    for threads in [1, 2, 3] {
        let par = grads_with(&net, &p, &inp, true, threads);
        assert_eq!(serial.0.to_bits(), par.0.to_bits(), "loss, {threads} threads");
        assert!(
            serial.1.iter().zip(&par.1).all(|(a, b)| a.to_bits() == b.to_bits()),
            "gradient differs with {threads} threads"
        );
    }
}

/// Three neurons: `n0 → n1` (excitatory, 2 synapses), `n2 → n1` (inhibitory, 1 synapse), and a gap
/// junction `n1 ↔ n2` (3 junctions); per-neuron parameters all different.
fn tiny() -> (FitNetwork, ParamSet) {
    let neurons = (0..3).map(|i| Neuron::new(i + 1, format!("n{i}"))).collect();
    let mut exc = Connection::chemical(1, 2, 2.0);
    exc.receptor = Some("exc".into());
    let mut inh = Connection::chemical(3, 2, 1.0);
    inh.receptor = Some("inh".into());
    let connections = vec![exc, inh, Connection::electrical(2, 3, 3.0)];
    let c = Connectome { name: "tiny".into(), provenance: vec![], neurons, connections };
    let opt = CompileOptions {
        dt_ms: DT,
        transmitters: TransmitterMap::exc_inh(),
        weight_per_synapse: 1.0,
        gap_per_junction_ns: 1.0,
        ..Default::default()
    };
    let net = FitNetwork::from_compiled(&compile(&c, &opt).unwrap(), 1.0, 1.0, &[]).unwrap();
    assert_eq!((net.n, net.n_connections(), net.n_gap_entries()), (3, 2, 2));
    let per_neuron = |grouping: &str, vals: [f64; 3], lo: Option<f64>| {
        let mut s = ParamSpec::fitted(grouping, vals[0], lo, None);
        s.init_groups = (0..3).map(|i| (format!("n{i}"), vals[i])).collect();
        s
    };
    let mut specs = BTreeMap::new();
    specs.insert("g_l".into(), per_neuron("neuron", [0.08, 0.12, 0.05], Some(0.0)));
    specs.insert("e_l".into(), per_neuron("neuron", [-30.0, -36.0, -41.0], None));
    specs.insert("theta".into(), per_neuron("neuron", [-33.0, -35.0, -38.0], None));
    specs.insert("slope".into(), per_neuron("neuron", [0.125, 0.2, 0.1], Some(0.0)));
    specs.insert("bias".into(), per_neuron("neuron", [0.4, -0.2, 0.1], None));
    specs.insert("gain".into(), per_neuron("neuron", [1.5, 1.0, 0.7], Some(0.0)));
    specs.insert("e_exc".into(), per_neuron("neuron", [0.0, -2.0, 1.0], None));
    specs.insert("e_inh".into(), per_neuron("neuron", [-48.0, -45.0, -50.0], None));
    specs.insert("strength".into(), ParamSpec::fitted("connection", 0.07, Some(0.0), None));
    specs.insert("gap".into(), ParamSpec::fitted("global", 0.04, Some(0.0), None));
    (net.clone(), build_params(&net, "graded", &specs).unwrap())
}

/// Independent truth for the forward pass, (1): the simulator's neuron update. The tiny network is run
/// with `neurotwin_models::graded::update_block` (one lane per neuron, each with its own compiled
/// `GradedParams`, through the `CompiledModel` API), its synaptic conductances and gap inputs assembled
/// here as the engine delivers them (last step's activity `out.activity` × count × strength per channel;
/// `Σ g`, `Σ g V_j` of the previous potentials); the two trajectories agree to the bit.
#[test]
fn graded_forward_pass_equals_the_simulators_update_block() {
    let (net, p) = tiny();
    let v = GradedValues::from_params(&net, &p);
    let steps = 400;
    let inp = Input {
        steps,
        v0: Vec::new(),
        pulses: vec![
            Pulse { neuron: 0, start: 20, stop: 120, amplitude: 4.0 },
            Pulse { neuron: 2, start: 200, stop: 260, amplitude: 2.5 },
        ],
        clamp: None,
    };
    let ours = GradedModel::new(&net, DT).trajectory(&v, &inp);

    // The simulator's parameter sets, from the expanded values (not from our model's internals).
    let sets: Vec<NeuronParams> = (0..3)
        .map(|i| {
            NeuronParams::Graded(GradedParams {
                c_m: 1.0,
                g_l: v.g_l[i],
                e_l: v.e_l[i],
                e_exc: v.e_exc[i],
                e_inh: v.e_inh[i],
                e_rev: BTreeMap::new(),
                beta: v.slope[i],
                v_th: Some(v.theta[i]),
                i_e: v.bias[i],
            })
        })
        .collect();
    let model = CompiledModel::compile(&sets, &net.receptors, DT).unwrap();
    let CompiledModel::Graded(compiled) = &model else { unreachable!() };
    let exc = net.receptors.iter().position(|r| r.excitatory).unwrap();
    let inh = net.receptors.iter().position(|r| !r.excitatory).unwrap();
    let strength = |pre: usize| {
        let c = (0..net.n_connections()).find(|&c| net.pre[c] as usize == pre).unwrap();
        net.count[c] as f64 * v.strength[c]
    };
    let (w01, w21) = (strength(0), strength(2));
    let e12 = 3.0 * v.gap[0];

    let param_set: Vec<u16> = (0..LANES as u16).map(|l| l.min(2)).collect();
    let mut state = vec![0.0; LANES];
    for i in 0..3 {
        state[i] = model.initial_state(i)[0];
    }
    // Activity of V^0 (the engine would have delivered the previous step's output).
    let mut act: Vec<f64> = (0..3).map(|i| activation(&compiled[i], state[i])).collect();
    let mut theirs = vec![state[..3].to_vec()];
    for t in 0..steps {
        let mut syn = vec![0.0; net.receptors.len() * LANES];
        syn[exc * LANES + 1] = w01 * act[0];
        syn[inh * LANES + 1] = w21 * act[2];
        let (mut g, mut gv) = (vec![0.0; LANES], vec![0.0; LANES]);
        g[1] = e12;
        gv[1] = e12 * state[2];
        g[2] = e12;
        gv[2] = e12 * state[1];
        let mut i_ext = vec![0.0; LANES];
        for pl in &inp.pulses {
            if t >= pl.start && t < pl.stop {
                i_ext[pl.neuron as usize] = v.gain[pl.neuron as usize] * pl.amplitude;
            }
        }
        let input = BlockInput {
            n: 3,
            param_set: &param_set,
            syn: &syn,
            i_ext: &i_ext,
            forced: 0,
            gap: Some(GapInput { g: &g, gv: &gv }),
        };
        let mut out = BlockOutput::default();
        model.update_block(&mut state, &input, &mut out);
        act = out.activity[..3].to_vec();
        theirs.push(state[..3].to_vec());
    }
    // The trajectory moves (the test is not comparing resting states).
    let spread = |i: usize| {
        let xs = theirs.iter().map(|r| r[i]);
        xs.clone().fold(f64::MIN, f64::max) - xs.fold(f64::MAX, f64::min)
    };
    assert!((0..3).all(|i| spread(i) > 1.0), "spreads {:?}", (0..3).map(spread).collect::<Vec<_>>());
    for t in 0..=steps {
        for i in 0..3 {
            assert_eq!(
                ours[t][i].to_bits(),
                theirs[t][i].to_bits(),
                "step {t}, neuron {i}: {} vs {}",
                ours[t][i],
                theirs[t][i]
            );
        }
    }
}

/// Independent truth for the forward pass, (2): a closed-form steady state. `n0` has no inputs, so it
/// settles at `V0* = E_L0 + I_0/g_L0` and drives `n1` with the constant conductance
/// `G = 2 strength σ(β0 (V0* − θ0))` (computed with the standard library's `exp`); with `n2`'s
/// inhibitory synapse removed (strength → 0 is not allowed by the positive transform, so `n2` gets
/// θ = 4000 mV, far above any potential: its activation is below 1e-170), `n1` and `n2` obey the linear system
/// `(g_L1 + G + e) V1 − e V2 = g_L1 E_L1 + G E_exc1 + I_1`, `−e V1 + (g_L2 + e) V2 = g_L2 E_L2 + I_2`.
#[test]
fn graded_steady_state_matches_closed_form() {
    let (net, mut p) = tiny();
    let b = p.block("theta").unwrap();
    let k = b.offset + b.labels.iter().position(|l| l == "n2").unwrap();
    p.raw[k] = 4000.0;
    let v = GradedValues::from_params(&net, &p);
    let inp = Input { steps: 20_000, ..Default::default() };
    let traj = GradedModel::new(&net, DT).trajectory(&v, &inp);
    let last = &traj[inp.steps];

    let v0 = v.e_l[0] + v.bias[0] / v.g_l[0];
    let s0 = 1.0 / (1.0 + (-v.slope[0] * (v0 - v.theta[0])).exp());
    let g = 2.0 * v.strength[0] * s0;
    let e = 3.0 * v.gap[0];
    let (a11, a12, a21, a22) = (v.g_l[1] + g + e, -e, -e, v.g_l[2] + e);
    let (b1, b2) = (v.g_l[1] * v.e_l[1] + g * v.e_exc[1] + v.bias[1], v.g_l[2] * v.e_l[2] + v.bias[2]);
    let det = a11 * a22 - a12 * a21;
    let v1 = (b1 * a22 - a12 * b2) / det;
    let v2 = (a11 * b2 - a21 * b1) / det;
    for (i, exact) in [(0, v0), (1, v1), (2, v2)] {
        let rel = (last[i] - exact).abs() / exact.abs();
        assert!(rel <= 1e-9, "neuron {i}: steady state {} vs closed form {exact} (relative {rel:.1e})", last[i]);
    }
    // Not the trivial rest: the synapse and the junction moved n1 and n2 away from E_L.
    assert!((v1 - v.e_l[1]).abs() > 1.0 && (v2 - v.e_l[2]).abs() > 0.5, "v1 {v1}, v2 {v2}");
}
