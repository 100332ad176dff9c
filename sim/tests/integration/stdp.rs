//! Spike-timing-dependent plasticity (`neurotwin_sim::plasticity`) against independent truth: NEST 3.10's
//! `stdp_synapse` and `stdp_nn_symm_synapse` weight trajectories on the same spike trains
//! (`sim/tests/data/nest_stdp_reference.json`, from `scripts/make_nest_stdp_reference.py`), the analytic STDP window
//! of one spike pair, and the same spikes and weights for any thread count in a recurrent network whose activity
//! depends on the weights.

use std::sync::Arc;

use neurotwin_connectome::{CompiledNetwork, GapMatrix, Neuron, Synapse, SynapseMatrix};
use neurotwin_models::lif_exp::LifExpParams;
use neurotwin_models::stdp::{Pairing, StdpParams};
use neurotwin_models::testing::exc_inh_channels;
use neurotwin_models::{CompiledModel, NeuronParams};
use neurotwin_sim::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    dt_ms: f64,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    pairing: String,
    tau_plus_ms: f64,
    tau_minus_ms: f64,
    lambda_: f64,
    alpha: f64,
    mu_plus: f64,
    mu_minus: f64,
    w_max: f64,
    delay_steps: u16,
    w0: f64,
    pre_steps: Vec<u64>,
    post_steps: Vec<u64>,
    weights: Vec<f64>,
}

/// `n` neurons that never fire by themselves (threshold far away, no refractoriness): they spike only when a
/// train forces them.
fn silent_setup(n: u32, syn: Vec<Synapse>, dt_ms: f64, steps: u64, events: Vec<(u32, u64)>) -> SimSetup {
    let neurons = (0..n).map(|i| Neuron::new(i as u64, format!("n{i}"))).collect();
    let network = Arc::new(CompiledNetwork::from_parts(
        "stdp",
        vec![],
        neurons,
        exc_inh_channels(),
        SynapseMatrix::from_synapses(n, n, syn).unwrap(),
        GapMatrix::from_junctions(n, &[]).unwrap(),
        dt_ms,
    ));
    let params = LifExpParams { v_th: 1e9, t_ref: 0.0, ..Default::default() };
    let model = CompiledModel::compile(&[NeuronParams::LifExp(params)], &network.receptors, dt_ms).unwrap();
    let (trains, _) = SpikeTrains::from_events(events, n as usize, steps).unwrap();
    SimSetup {
        param_set: vec![0; n as usize],
        network,
        model,
        init: vec![],
        stimuli: vec![],
        seed: 1,
        steps,
        spike_trains: Arc::new(trains),
        plasticity: Default::default(),
    }
}

fn projection(name: &str, rule: StdpParams, pre: u32, post: u32) -> PlasticProjection {
    PlasticProjection {
        name: name.into(),
        rule: PlasticRule::Stdp(rule),
        pre: Some(vec![pre]),
        post: Some(vec![post]),
        channel: Some(0),
    }
}

fn run_on(kind: BackendKind, setup: &SimSetup, every: u64) -> SimRecording {
    let spec = RecordSpec { weights_every_steps: every, ..Default::default() };
    let mut backend = make_backend(kind, setup).unwrap();
    run(setup, &Default::default(), &spec, backend.as_mut(), &Default::default()).unwrap()
}

fn run_cpu(setup: &SimSetup, every: u64) -> SimRecording {
    run_on(BackendKind::Cpu, setup, every)
}

/// Each synapse's weight trajectory equals NEST's: the weight transmitted by every pre spike (NEST's
/// weight_recorder) against neurotwin's weight after that step, for all-to-all pairing with additive, multiplicative
/// and Gütig weight dependence and for nearest-neighbour pairing, at delays of 1 and 15 steps, on Poisson trains
/// with pairs on the edges of the pairing windows. Tolerance 1e-12 · w_max: the two differ only in the last bits of
/// `exp` and `pow` (neurotwin's deterministic ones against glibc's), over 50–75 updates each.
#[test]
fn weights_match_nest_stdp_synapse_on_the_same_spike_trains() {
    let text = include_str!("../data/nest_stdp_reference.json");
    let reference: Reference = serde_json::from_str(text).unwrap();
    assert_eq!(reference.cases.len(), 8);
    let steps = 20_100;
    let mut syn = Vec::new();
    let mut events = Vec::new();
    let mut projections = Vec::new();
    for (k, c) in reference.cases.iter().enumerate() {
        let (pre, post) = (2 * k as u32, 2 * k as u32 + 1);
        syn.push(Synapse { pre, post, weight: c.w0 as f32, delay: c.delay_steps, receptor: 0 });
        events.extend(c.pre_steps.iter().map(|&s| (pre, s)));
        events.extend(c.post_steps.iter().map(|&s| (post, s)));
        let rule = StdpParams {
            pairing: if c.pairing == "nearest" { Pairing::Nearest } else { Pairing::AllToAll },
            tau_plus_ms: c.tau_plus_ms,
            tau_minus_ms: c.tau_minus_ms,
            lambda: c.lambda_,
            alpha: c.alpha,
            mu_plus: c.mu_plus,
            mu_minus: c.mu_minus,
            w_max: c.w_max,
        };
        projections.push(projection(&c.name, rule, pre, post));
    }
    let n = 2 * reference.cases.len() as u32;
    let mut setup = silent_setup(n, syn, reference.dt_ms, steps, events);
    setup.plasticity = Arc::new(Plasticity { projections });
    let rec = run_cpu(&setup, 1);
    // The CUDA kernels' host build gives the same weights bit for bit (the comparison with NEST below then holds
    // for both).
    let on_kernels = run_on(BackendKind::CudaHost, &setup, 1);
    assert_eq!(on_kernels.weights, rec.weights);
    assert_eq!((&on_kernels.spike_steps, &on_kernels.spike_neurons), (&rec.spike_steps, &rec.spike_neurons));
    let w = rec.weights.as_ref().expect("weights recorded");
    assert_eq!(w.len(), reference.cases.len());
    assert_eq!(w.times_ms.len() as u64, steps + 1);
    for (k, c) in reference.cases.iter().enumerate() {
        // The neurons fired exactly their trains (the premise of the comparison).
        assert_eq!(rec.train(2 * k as u32), c.pre_steps, "{}: pre train", c.name);
        assert_eq!(rec.train(2 * k as u32 + 1), c.post_steps, "{}: post train", c.name);
        let syn = w.projection.iter().position(|&p| p as usize == k).unwrap();
        assert_eq!(c.weights.len(), c.pre_steps.len());
        let mut worst = 0.0f64;
        for (i, (&p, &nest)) in c.pre_steps.iter().zip(&c.weights).enumerate() {
            let ours = w.snapshot(p as usize + 1)[syn];
            let err = (ours - nest).abs();
            worst = worst.max(err);
            assert!(err <= 1e-12 * c.w_max, "{}: pre spike #{i} at step {p}: neurotwin {ours}, NEST {nest}", c.name);
        }
        let moved = (c.weights.last().unwrap() - c.w0).abs();
        assert!(moved > 1.0, "{}: the trains must move the weight for the test to mean anything ({moved})", c.name);
        eprintln!("{}: {} updates, largest difference from NEST {worst:.2e}", c.name, c.weights.len());
    }
}

/// The analytic window of one spike pair (Bi & Poo 1998 shape; NEST's convention, the delay `d` dendritic):
/// with Δ = (t_post + d) − t_pre, an additive rule changes the weight by λ·w_max·e^{−Δ/τ₊} for Δ > 0,
/// by −α·λ·w_max·e^{Δ/τ₋} for Δ < 0, and not at all for Δ = 0; a multiplicative one scales potentiation by
/// (1 − w/w_max) and depression by w/w_max. One synapse per Δ, each with one pre and one post spike.
#[test]
fn one_pair_follows_the_analytic_stdp_window() {
    let dt = 0.1;
    let d = 7u16;
    let deltas: Vec<i64> = (-80..=80).chain([-400, -250, 250, 400]).collect();
    let additive = StdpParams {
        mu_plus: 0.0,
        mu_minus: 0.0,
        alpha: 1.05,
        tau_plus_ms: 16.8,
        tau_minus_ms: 33.7,
        ..Default::default()
    };
    let multiplicative = StdpParams { lambda: 0.05, ..Default::default() };
    let rules = [additive, multiplicative];
    let (w0, pre_step) = (50.0, 500i64);
    let mut syn = Vec::new();
    let mut events = Vec::new();
    let mut projections = Vec::new();
    let mut k = 0u32;
    for (r, rule) in rules.iter().enumerate() {
        let (mut pres, mut posts) = (Vec::new(), Vec::new());
        for &delta in &deltas {
            let (pre, post) = (2 * k, 2 * k + 1);
            syn.push(Synapse { pre, post, weight: w0 as f32, delay: d, receptor: 0 });
            events.push((pre, pre_step as u64));
            events.push((post, (pre_step + delta - d as i64) as u64));
            pres.push(pre);
            posts.push(post);
            k += 1;
        }
        projections.push(PlasticProjection {
            name: format!("rule{r}"),
            rule: PlasticRule::Stdp(*rule),
            pre: Some(pres),
            post: Some(posts),
            channel: Some(0),
        });
    }
    let steps = 1200;
    let mut setup = silent_setup(2 * k, syn, dt, steps, events);
    setup.plasticity = Arc::new(Plasticity { projections });
    let rec = run_cpu(&setup, steps);
    let w = rec.weights.as_ref().unwrap();
    let last = w.snapshot(w.times_ms.len() - 1);
    let mut checked = 0;
    for (r, rule) in rules.iter().enumerate() {
        for (j, &delta) in deltas.iter().enumerate() {
            // Synapse k = r · |deltas| + j runs from neuron 2k; the recording is in presynaptic order.
            let idx = w.pre.iter().position(|&p| p as usize == 2 * (r * deltas.len() + j)).unwrap();
            let x = w0 / rule.w_max;
            let t = delta as f64 * dt;
            let expected = if delta > 0 {
                rule.lambda * rule.w_max * (1.0 - x).powf(rule.mu_plus) * (-t / rule.tau_plus_ms).exp()
            } else if delta < 0 {
                -rule.alpha * rule.lambda * rule.w_max * x.powf(rule.mu_minus) * (t / rule.tau_minus_ms).exp()
            } else {
                0.0
            };
            let got = last[idx] - w0;
            assert!(
                (got - expected).abs() <= 1e-12 * rule.w_max,
                "rule {r}, Δ = {delta} steps: Δw {got}, analytic {expected}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * deltas.len());
}

/// A recurrent network whose spikes depend on its learning weights (`suite::plastic_setup`: excitatory synapses
/// plastic, Poisson drive) gives bit-identical spikes and weight snapshots on 1 and 3 threads, and the weights did
/// move (the CUDA kernels' host build and a GPU are compared with the CPU by the conformance suite).
#[test]
fn plastic_network_is_identical_for_any_thread_count() {
    let setup = super::suite::plastic_setup();
    let go = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| run_cpu(&setup, 500))
    };
    let (a, b) = (go(1), go(3));
    assert!(a.spike_steps.len() > 1000, "{} spikes", a.spike_steps.len());
    assert_eq!((&a.spike_steps, &a.spike_neurons), (&b.spike_steps, &b.spike_neurons));
    let (wa, wb) = (a.weights.unwrap(), b.weights.unwrap());
    assert_eq!(wa.times_ms.len(), 7);
    assert!(wa.values.iter().zip(&wb.values).all(|(x, y)| x.to_bits() == y.to_bits()));
    let (first, last) = (wa.snapshot(0), wa.snapshot(6));
    let changed = first.iter().zip(last).filter(|(x, y)| x != y).count();
    assert!(changed * 2 > wa.len(), "{changed} of {} weights changed", wa.len());
    assert_eq!(wa.projection_names, ["ee", "ei"]);
}

/// Reward-modulated STDP (`PlasticRule::Dopamine`) against the closed form of one pairing followed by one dopamine
/// spike: the pair sets the eligibility c₁ = a₊·e^{−Δ/τ₊} (pre before post, at the post spike's arrival t₁) or
/// −a₋·e^{−Δ/τ₋} (post before pre, at the pre spike), c decays with τ_c, the dopamine spike arriving at T adds
/// e^{−(t−T)/τ_n}/τ_n, so w(E) = w₀ + c₁·e^{−(T−t₁)/τ_c}·(τ_s/τ_n)·(1 − e^{−(E−T)/τ_s}) − b·c₁·τ_c·(1 − e^{−(E−t₁)/τ_c}),
/// 1/τ_s = 1/τ_c + 1/τ_n. The weights are the same (to 1e-12) whether every weight is brought up to date every
/// step or once in the run: the integration is exact, not stepped. A pairing without dopamine changes nothing.
#[test]
fn dopamine_modulated_stdp_follows_the_closed_form() {
    use neurotwin_models::stdp::DopamineParams;
    let dt = 0.1;
    let params = DopamineParams { w_min: -1000.0, w_max: 1000.0, tau_c_ms: 300.0, ..Default::default() };
    let d = 5u16;
    // (pre step, post step, baseline b, dopamine on)
    let cases = [(100i64, 150i64, 0.0, true), (100, 80, 0.0, true), (100, 150, 0.002, true), (100, 150, 0.0, false)];
    let (w0, dopa_step, dopa_delay, end) = (50.0, 400u64, 10u16, 3000u64);
    let run_with = |every: u32| -> Vec<f64> {
        let mut syn = Vec::new();
        let mut events = Vec::new();
        let mut projections = Vec::new();
        for (k, &(p, q, b, on)) in cases.iter().enumerate() {
            let (pre, post, da) = (3 * k as u32, 3 * k as u32 + 1, 3 * k as u32 + 2);
            syn.push(Synapse { pre, post, weight: w0 as f32, delay: d, receptor: 0 });
            events.extend([(pre, p as u64), (post, q as u64)]);
            if on {
                events.push((da, dopa_step));
            }
            projections.push(PlasticProjection {
                name: format!("case{k}"),
                rule: PlasticRule::Dopamine(DopamineRule {
                    params: DopamineParams { b, ..params },
                    neurons: vec![da],
                    delay_steps: dopa_delay,
                    update_every_steps: every,
                }),
                pre: Some(vec![pre]),
                post: Some(vec![post]),
                channel: Some(0),
            });
        }
        let mut setup = silent_setup(3 * cases.len() as u32, syn, dt, end, events);
        setup.plasticity = Arc::new(Plasticity { projections });
        let w = run_cpu(&setup, end).weights.unwrap();
        let last = w.snapshot(w.times_ms.len() - 1);
        (0..cases.len()).map(|k| last[w.projection.iter().position(|&p| p as usize == k).unwrap()]).collect()
    };
    let (every_step, once) = (run_with(1), run_with(end as u32 + 1));
    let tau_s = 1.0 / (1.0 / params.tau_c_ms + 1.0 / params.tau_n_ms);
    let ms = |steps: i64| steps as f64 * dt;
    // The recording's last snapshot is the state after the last step, at step end − 1.
    let t_end = ms(end as i64 - 1);
    let t_dopa = ms((dopa_step + dopa_delay as u64) as i64);
    for (k, &(p, q, b, on)) in cases.iter().enumerate() {
        let (t1, c1) = if q + (d as i64) > p {
            (ms(q + d as i64), params.a_plus * (-(ms(q + d as i64 - p)) / params.tau_plus_ms).exp())
        } else {
            (ms(p), -params.a_minus * (-(ms(p - d as i64 - q)) / params.tau_minus_ms).exp())
        };
        let dopamine = if on {
            c1 * (-(t_dopa - t1) / params.tau_c_ms).exp() * tau_s / params.tau_n_ms
                * (1.0 - (-(t_end - t_dopa) / tau_s).exp())
        } else {
            0.0
        };
        let expected = w0 + dopamine - b * c1 * params.tau_c_ms * (1.0 - (-(t_end - t1) / params.tau_c_ms).exp());
        assert!((every_step[k] - expected).abs() < 1e-11, "case {k}: {} vs closed form {expected}", every_step[k]);
        assert!((once[k] - every_step[k]).abs() < 1e-12, "case {k}: update interval changed the weight");
        eprintln!("case {k}: w {w0} -> {:.12} (closed form {expected:.12})", every_step[k]);
    }
    assert!(every_step[0] > w0 + 0.1 && every_step[1] < w0 - 0.1, "pairings moved the weights: {every_step:?}");
    assert_eq!(every_step[3], w0, "no dopamine, no change");
}
