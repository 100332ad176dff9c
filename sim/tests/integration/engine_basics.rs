//! Engine behaviour on hand-made networks with known answers.

use std::sync::Arc;

use neurotwin_connectome::{CompiledNetwork, GapMatrix, Neuron, Synapse, SynapseMatrix};
use neurotwin_models::lif_exp::LifExpParams;
use neurotwin_models::{CompiledModel, NeuronParams};
use neurotwin_sim::*;

use neurotwin_models::testing::exc_inh_channels as channels;

fn net(n: u32, syn: Vec<Synapse>, gap: &[(u32, u32, f32)]) -> Arc<CompiledNetwork> {
    let neurons = (0..n).map(|i| Neuron::new(i as u64, format!("n{i}"))).collect();
    Arc::new(CompiledNetwork::from_parts(
        "test",
        vec![],
        neurons,
        channels(),
        SynapseMatrix::from_synapses(n, n, syn).unwrap(),
        GapMatrix::from_junctions(n, gap).unwrap(),
        0.1,
    ))
}

fn setup(network: Arc<CompiledNetwork>, params: LifExpParams, stimuli: Vec<Stimulus>, steps: u64) -> SimSetup {
    setup_with(network, NeuronParams::LifExp(params), stimuli, steps)
}

fn setup_with(network: Arc<CompiledNetwork>, params: NeuronParams, stimuli: Vec<Stimulus>, steps: u64) -> SimSetup {
    let model = CompiledModel::compile(&[params], &network.receptors, network.dt_ms).unwrap();
    SimSetup {
        param_set: vec![0; network.n_neurons()],
        network,
        model,
        init: vec![],
        stimuli,
        seed: 1,
        steps,
        spike_trains: Default::default(),
        plasticity: Default::default(),
    }
}

/// Forces neuron 0 to fire in step 10 (activation with p ≈ 1 in a one-step window).
fn kick(step: u64) -> Stimulus {
    Stimulus {
        name: "kick".into(),
        kind: StimulusKind::Activation { rate_hz: 1e12, amplitude_pa: 0.0 },
        targets: vec![0],
        start_step: step,
        stop_step: step + 1,
    }
}

fn probe(var: usize, name: &str, neurons: Vec<u32>) -> RecordSpec {
    RecordSpec { state: vec![StateProbe { var, var_name: name.into(), neurons, every_steps: 1 }], ..Default::default() }
}

#[test]
fn spike_arrives_after_exactly_the_delay_with_the_exact_weight() {
    let w = 16.2f32;
    let n = net(2, vec![Synapse { pre: 0, post: 1, weight: w, delay: 7, receptor: 0 }], &[]);
    let s = setup(n, LifExpParams::default(), vec![kick(10)], 40);
    let mut b = CpuBackend::new(&s).unwrap();
    // state var 2 = I_syn_exc
    let rec = run(&s, &Default::default(), &probe(2, "I_syn_exc", vec![1]), &mut b, &Default::default()).unwrap();
    assert_eq!(rec.spike_steps, vec![10]);
    assert_eq!(rec.spike_neurons, vec![0]);
    let i = &rec.state[0].values;
    // values[k] is I_syn after step k; the spike of step 10 lands in step 17.
    assert_eq!(i[16], 0.0);
    assert_eq!(i[17], w as f64, "delivered weight must be exact");
    let p11 = (-0.1f64 / 2.0).exp();
    assert!((i[18] - w as f64 * p11).abs() < 1e-12);
}

#[test]
fn silenced_neuron_emits_nothing_and_receptor_block_scales_input() {
    let n = net(2, vec![Synapse { pre: 0, post: 1, weight: 100.0, delay: 1, receptor: 0 }], &[]);
    let s = setup(n.clone(), LifExpParams::default(), vec![kick(5)], 20);
    let silence = PerturbationSchedule {
        silencing: vec![Silencing { targets: vec![0], start_step: 0, stop_step: 20 }],
        ..Default::default()
    };
    let mut b = CpuBackend::new(&s).unwrap();
    let rec = run(&s, &silence, &probe(2, "I", vec![1]), &mut b, &Default::default()).unwrap();
    assert!(rec.spike_steps.is_empty());
    assert!(rec.state[0].values.iter().all(|&x| x == 0.0));

    let block = PerturbationSchedule {
        blocks: vec![ReceptorBlock {
            channel: 0,
            dose: 3.0,
            ic50: 1.0,
            hill: 1.0,
            start_ms: 0.0,
            stop_ms: 1e9,
            tau_on_ms: 0.0,
            tau_off_ms: 0.0,
        }],
        ..Default::default()
    };
    let mut b = CpuBackend::new(&s).unwrap();
    let rec = run(&s, &block, &probe(2, "I", vec![1]), &mut b, &Default::default()).unwrap();
    // 75 % block: a quarter of the weight arrives.
    assert!((rec.state[0].values[6] - 25.0).abs() < 1e-12, "{}", rec.state[0].values[6]);
}

#[test]
fn gap_junction_current_equals_g_times_voltage_difference() {
    // Two passive neurons (threshold unreachable), one clamped high by a current; the coupling current
    // into the other after one step is g (V0 - V1) with V from the previous step.
    let n = net(2, vec![], &[(0, 1, 2.0)]);
    let p = LifExpParams { v_th: 1e6, ..Default::default() };
    let mut s = setup(n, p.clone(), vec![], 2);
    s.init = vec![StateInit { var: 0, rule: InitRule::Constant { value: -60.0 }, targets: Some(vec![0]) }];
    let mut b = CpuBackend::new(&s).unwrap();
    let rec = run(&s, &Default::default(), &probe(0, "V_m", vec![0, 1]), &mut b, &Default::default()).unwrap();
    let h = 0.1;
    let p22 = (-h / p.tau_m).exp();
    let p20 = p.tau_m / p.c_m * (1.0 - p22);
    // neuron 1 starts at E_L = -70 and receives 2 nS * 10 mV = 20 pA during step 0.
    let v1 = p.e_l + 20.0 * p20;
    assert!((rec.state[0].values[1] - v1).abs() < 1e-12);
    let v0 = p.e_l + (-60.0 - p.e_l) * p22 - 20.0 * p20;
    assert!((rec.state[0].values[0] - v0).abs() < 1e-12);
}

#[test]
fn poisson_input_mean_matches_rate() {
    // 500 passive neurons, Poisson input 1 kHz of 1 pA on a 1000 ms-like count: compare the total count.
    let n = net(500, vec![], &[]);
    let stim = Stimulus {
        name: "bg".into(),
        kind: StimulusKind::Poisson { rate_hz: 1000.0, weight: 1.0, channel: 0 },
        targets: (0..500).collect(),
        start_step: 0,
        stop_step: 1000,
    };
    let p = LifExpParams { v_th: 1e6, tau_syn_ex: 1e9, ..Default::default() };
    let s = setup(n, p, vec![stim], 1000);
    let mut b = CpuBackend::new(&s).unwrap();
    // With τ_syn ≈ ∞ the synaptic current integrates the event count: I = Σ events (pA).
    let rec = run(&s, &Default::default(), &probe(2, "I", (0..500).collect()), &mut b, &Default::default()).unwrap();
    let last = &rec.state[0].values[999 * 500..];
    let mean: f64 = last.iter().sum::<f64>() / 500.0;
    // expected 1000 Hz * 0.1 s = 100 events; sd of the mean = sqrt(100/500)
    assert!((mean - 100.0).abs() < 4.0 * (100.0f64 / 500.0).sqrt() + 0.01, "mean count {mean}");
}

/// Graded cells with strong gap coupling (Kunert et al. 2014 defaults: C = 1 pF, g_L = 10 pS, so a single
/// 2 nS junction gives h·g/C = 0.2 per 0.1 ms step, and a hub with 20 of them 4 — beyond what an explicit
/// coupling current survives): the implicit treatment converges to the exact steady state of the linear
/// two-compartment circuit
/// `g_L (E_L − V1) + g (V2 − V1) + I1 = 0`, `g_L (E_L − V2) + g (V1 − V2) = 0`,
/// and a star of 20 junctions onto one cell stays bounded by the reversal potentials.
#[test]
fn graded_gap_coupling_is_stable_and_reaches_the_circuit_steady_state() {
    use neurotwin_models::graded::GradedParams;
    let graded = |network: Arc<CompiledNetwork>, steps: u64, stimuli: Vec<Stimulus>| {
        setup_with(network, NeuronParams::Graded(GradedParams::default()), stimuli, steps)
    };
    // Two cells, 2 nS junction, 0.2 pA into cell 0.
    let g = 2.0f32;
    let i1 = 0.2;
    let s = graded(
        net(2, vec![], &[(0, 1, g)]),
        20_000,
        vec![Stimulus {
            name: "dc".into(),
            kind: StimulusKind::Current { amplitude_pa: i1 },
            targets: vec![0],
            start_step: 0,
            stop_step: 20_000,
        }],
    );
    let mut b = CpuBackend::new(&s).unwrap();
    run(&s, &Default::default(), &Default::default(), &mut b, &Default::default()).unwrap();
    let mut v = Vec::new();
    b.read_state(0, &[0, 1], &mut v);
    let (gl, el, g) = (0.01, -35.0, g as f64);
    // Solve the 2×2 system by hand: V2 = (g_L E_L + g V1)/(g_L + g); substitute into the first equation.
    let a = gl + g - g * g / (gl + g);
    let v1 = (gl * el + i1 + g * gl * el / (gl + g)) / a;
    let v2 = (gl * el + g * v1) / (gl + g);
    assert!((v[0] - v1).abs() < 1e-6 && (v[1] - v2).abs() < 1e-6, "V = {v:?}, exact ({v1}, {v2})");
    assert!(v[0] > v[1] && v[1] > el, "current flows from cell 0 into cell 1");

    // A hub coupled to 20 cells (40 nS in all, h·g/C = 4), driven by excitatory conductance on the leaves.
    let junctions: Vec<(u32, u32, f32)> = (1..=20).map(|j| (0, j, 2.0)).collect();
    let s = graded(
        net(21, vec![], &junctions),
        5_000,
        vec![Stimulus {
            name: "noise".into(),
            kind: StimulusKind::Poisson { rate_hz: 20_000.0, weight: 0.05, channel: 0 },
            targets: (1..=20).collect(),
            start_step: 0,
            stop_step: 5_000,
        }],
    );
    let mut b = CpuBackend::new(&s).unwrap();
    let all: Vec<u32> = (0..21).collect();
    let rec = run(&s, &Default::default(), &probe(0, "V_m", all), &mut b, &Default::default()).unwrap();
    let (lo, hi) = rec.state[0].values.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(lo >= -48.0 && hi <= 0.0, "V must stay within the reversal potentials: {lo}..{hi} mV");
    assert!(hi > -30.0, "the excitatory drive must depolarise the cells ({hi} mV)");
}

/// A prescribed spike train makes its neuron spike at exactly the listed steps (nothing else drives it), and
/// each spike reaches the target after the delay; the host build of the CUDA kernels does the same. A graded
/// model refuses trains.
#[test]
fn spike_trains_force_spikes_at_their_steps_on_every_backend() {
    let w = 16.2f32;
    let n = net(3, vec![Synapse { pre: 0, post: 1, weight: w, delay: 7, receptor: 0 }], &[]);
    let mut s = setup(n.clone(), LifExpParams::default(), vec![], 200);
    let (trains, stats) =
        SpikeTrains::from_events(vec![(0, 40), (0, 5), (2, 11), (0, 11), (0, 40), (2, 500)], 3, 200).unwrap();
    assert_eq!((stats.merged, stats.after_end), (1, 1));
    s.spike_trains = Arc::new(trains);
    let spec = probe(2, "I_syn_ex", vec![1]);
    let backends: Vec<Box<dyn Backend>> =
        vec![Box::new(CpuBackend::new(&s).unwrap()), Box::new(host_kernels::HostKernelBackend::new(&s).unwrap())];
    for mut b in backends {
        let rec = run(&s, &Default::default(), &spec, b.as_mut(), &Default::default()).unwrap();
        let spikes: Vec<(u64, u32)> = rec.spike_steps.iter().copied().zip(rec.spike_neurons.iter().copied()).collect();
        assert_eq!(spikes, vec![(5, 0), (11, 0), (11, 2), (40, 0)], "{}", b.name());
        // The exponential current of neuron 1 jumps by w at 5 + 7 (sampled at the end of each step).
        let i_syn = &rec.state[0].values;
        assert_eq!(i_syn[11], 0.0, "{}", b.name());
        assert!((i_syn[12] - w as f64).abs() < 1e-9, "{}: I_syn {} after the first spike", b.name(), i_syn[12]);
    }
    let mut g = s.clone();
    g.model = CompiledModel::compile(
        &[NeuronParams::Graded(neurotwin_models::graded::GradedParams::default())],
        &n.receptors,
        n.dt_ms,
    )
    .unwrap();
    let e = CpuBackend::new(&g).err().expect("graded model with trains must be refused").to_string();
    assert!(e.contains("graded"), "{e}");
}
