//! Conformance of the `cuda-host` backend (the CUDA C kernels of `neurotwin-kernels`, compiled for the host
//! and launched in the order the CUDA backend will) with the CPU backend: identical spike trains (steps and
//! neurons) and identical final membrane potentials, bit for bit, on three networks — CUBA (lif_exp, dense
//! weights), Brunel (lif_delta, Poisson background) and the bundled C. elegans connectome (lif_exp, gap
//! junctions, activation, a receptor block with wash-in and a silenced set) — plus proof that a deliberately
//! broken delivery kernel is caught.

use std::sync::Arc;

use neurotwin_connectome::generators::{GeneratedNetwork, brunel, cuba};
use neurotwin_connectome::{
    CompileOptions, CompiledNetwork, GapMatrix, Neuron, Synapse, SynapseMatrix, TransmitterMap, Weights, compile,
    load_celegans_bundled,
};
use neurotwin_models::lif_delta::LifDeltaParams;
use neurotwin_models::lif_exp::LifExpParams;
use neurotwin_models::{CompiledModel, CounterRng, NeuronParams, ReceptorChannel, SequenceRng, Stream};
use neurotwin_sim::host_kernels::HostKernelBackend;
use neurotwin_sim::*;

const DT: f64 = 0.1;
const STEPS: u64 = 3000; // 300 ms

fn generated_setup(g: GeneratedNetwork, seed: u64, steps: u64) -> SimSetup {
    SimSetup::from_generated(g, seed, steps).unwrap()
}

fn cuba_setup() -> SimSetup {
    let g = cuba(&Default::default(), 1, DT).unwrap();
    assert_eq!(g.network.n_neurons(), 4000);
    generated_setup(g, 1, STEPS)
}

fn brunel_setup() -> SimSetup {
    let cfg = brunel::BrunelConfig { order: 200, ..Default::default() };
    let g = brunel(&cfg, 3, DT).unwrap();
    assert!(matches!(g.populations[0].params, NeuronParams::LifDelta(_)));
    generated_setup(g, 3, STEPS)
}

/// The bundled worm as in `scenarios/celegans_touch.toml` (300 ms), with a receptor block on ACh
/// (dose = IC50 → half block, 20 ms wash-in and wash-out, so the gain changes every step) and AVAL/AVAR
/// silenced for 100 ms.
fn celegans_setup() -> (SimSetup, PerturbationSchedule) {
    let c = load_celegans_bundled().unwrap();
    let opt = CompileOptions {
        dt_ms: DT,
        transmitters: TransmitterMap::celegans(),
        weight_per_synapse: 2.0,
        default_delay_ms: 1.0,
        gap_per_junction_ns: 0.05,
        ..Default::default()
    };
    let network = Arc::new(compile(&c, &opt).unwrap());
    assert!(!network.gap.is_empty(), "the worm has gap junctions");
    let params = LifExpParams {
        c_m: 50.0,
        tau_m: 20.0,
        e_l: -65.0,
        v_th: -50.0,
        v_reset: -65.0,
        t_ref: 2.0,
        tau_syn_ex: 5.0,
        tau_syn_in: 10.0,
        ..Default::default()
    };
    let model = CompiledModel::compile(&[NeuronParams::LifExp(params)], &network.receptors, DT).unwrap();
    let n = network.n_neurons();
    let id = |name: &str| network.neurons.iter().position(|x| x.name == name).unwrap() as u32;
    let ach = network.receptors.iter().position(|r| r.name == "ACh").unwrap();
    let mut touch = vec![id("ALML"), id("ALMR"), id("AVM")];
    touch.sort_unstable();
    let mut silenced = vec![id("AVAL"), id("AVAR")];
    silenced.sort_unstable();
    let setup = SimSetup {
        model,
        param_set: vec![0; n],
        init: vec![StateInit { var: 0, rule: InitRule::Uniform { lo: -65.0, hi: -55.0 }, targets: None }],
        stimuli: vec![
            Stimulus {
                name: "background".into(),
                kind: StimulusKind::Poisson { rate_hz: 250.0, weight: 20.0, channel: ach as u8 },
                targets: (0..n as u32).collect(),
                start_step: 0,
                stop_step: STEPS,
            },
            Stimulus {
                name: "gentle touch".into(),
                kind: StimulusKind::Activation { rate_hz: 60.0, amplitude_pa: 0.0 },
                targets: touch,
                start_step: 500,
                stop_step: 2500,
            },
        ],
        network,
        seed: 1,
        steps: STEPS,
    };
    let perturbations = PerturbationSchedule {
        channel_scale: vec![],
        blocks: vec![ReceptorBlock {
            channel: ach,
            dose: 3.0,
            ic50: 3.0,
            hill: 1.0,
            start_ms: 100.0,
            stop_ms: 250.0,
            tau_on_ms: 20.0,
            tau_off_ms: 20.0,
        }],
        silencing: vec![Silencing { targets: silenced, start_step: 1200, stop_step: 2200 }],
    };
    (setup, perturbations)
}

/// Spike steps, spike neurons and the final V_m bit patterns of every neuron.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    steps: Vec<u64>,
    neurons: Vec<u32>,
    v_bits: Vec<u64>,
}

fn outcome(setup: &SimSetup, p: &PerturbationSchedule, backend: &mut dyn Backend) -> Outcome {
    let rec = run(setup, p, &Default::default(), backend, &Default::default()).unwrap();
    let all: Vec<u32> = (0..setup.n_neurons() as u32).collect();
    let mut v = Vec::new();
    backend.read_state(0, &all, &mut v);
    Outcome { steps: rec.spike_steps, neurons: rec.spike_neurons, v_bits: v.iter().map(|x| x.to_bits()).collect() }
}

/// Runs both backends and requires identical outcomes; returns the outcome.
fn check_identical(label: &str, setup: &SimSetup, p: &PerturbationSchedule, min_spikes: usize) -> Outcome {
    let mut cpu = CpuBackend::new(setup).unwrap();
    let mut hk = HostKernelBackend::new(setup).unwrap();
    assert_eq!(hk.name(), "cuda-host");
    assert_eq!(hk.delivery_scale_exponent(), cpu.delivery_scale_exponent());
    let a = outcome(setup, p, &mut cpu);
    let b = outcome(setup, p, &mut hk);
    assert!(a.steps.len() >= min_spikes, "{label}: network too quiet ({} spikes)", a.steps.len());
    assert_eq!(a.steps.len(), b.steps.len(), "{label}: spike counts differ (cpu vs cuda-host)");
    if let Some(k) = (0..a.steps.len()).find(|&k| (a.steps[k], a.neurons[k]) != (b.steps[k], b.neurons[k])) {
        panic!(
            "{label}: spike #{k} differs: cpu ({}, n{}) vs cuda-host ({}, n{})",
            a.steps[k], a.neurons[k], b.steps[k], b.neurons[k]
        );
    }
    assert!(a.v_bits == b.v_bits, "{label}: final V_m differs");
    eprintln!("{label}: {} spikes, identical on cpu and cuda-host", a.steps.len());
    a
}

#[test]
fn cuba_4000_is_bit_identical() {
    check_identical("CUBA 4000", &cuba_setup(), &Default::default(), 1000);
}

#[test]
fn brunel_order_200_is_bit_identical() {
    check_identical("Brunel order 200", &brunel_setup(), &Default::default(), 1000);
}

#[test]
fn celegans_with_block_and_silencing_is_bit_identical() {
    let (setup, p) = celegans_setup();
    let o = check_identical("C. elegans", &setup, &p, 200);
    // The perturbations were exercised: the silenced cells are quiet in their window, the touch cells fire.
    let s = &p.silencing[0];
    let in_window = |k: usize| (s.start_step..s.stop_step).contains(&o.steps[k]);
    assert!(!(0..o.steps.len()).any(|k| in_window(k) && s.targets.contains(&o.neurons[k])));
    let touch = &setup.stimuli[1].targets;
    assert!((0..o.steps.len()).filter(|&k| touch.contains(&o.neurons[k])).count() >= 20, "touch cells must fire");
}

/// The comparison is sharp: the delivery kernel built with `NEUROTWIN_BREAK_FOR_TEST` (dropping the last
/// synapse of each segment) gives different spikes on the worm.
#[test]
fn broken_delivery_kernel_is_detected() {
    let (setup, p) = celegans_setup();
    let mut cpu = CpuBackend::new(&setup).unwrap();
    let mut broken = HostKernelBackend::new_with_broken_delivery_for_test(&setup).unwrap();
    let a = outcome(&setup, &p, &mut cpu);
    let b = outcome(&setup, &p, &mut broken);
    assert_ne!((a.steps, a.neurons), (b.steps, b.neurons), "a broken delivery kernel went unnoticed");
}

/// A random network exercising what the three benchmark networks do not: dense f32 weights (converted to fixed
/// point by the kernel, many distinct values), three channels with delays 1..=15, two parameter sets, normal
/// initial V_m, a DC current stimulus, Poisson input with a mean above 32 per step (several parts and draw
/// indices), a constant channel scale and a receptor block.
fn random_setup(delta: bool) -> (SimSetup, PerturbationSchedule) {
    let n = 700u32;
    let mut syn = Vec::new();
    for post in 0..n {
        let mut r = SequenceRng::new(CounterRng::new(5, Stream::Connectivity), post);
        for _ in 0..40 {
            let pre = r.below(n as u64) as u32;
            let receptor = (pre % 3) as u8;
            let w = (0.2 + r.uniform()) as f32 * if receptor == 1 { -4.0 } else { 1.0 };
            syn.push(Synapse {
                pre,
                post,
                weight: w * if delta { 0.3 } else { 20.0 },
                delay: 1 + r.below(15) as u16,
                receptor,
            });
        }
    }
    let mut m = SynapseMatrix::from_synapses(n, n, syn).unwrap();
    let dense: Vec<f32> = (0..m.targets.len()).map(|k| m.weight(k)).collect();
    m.weights = Weights::Dense(dense);
    let gaps: Vec<(u32, u32, f32)> = (0..100).map(|i| (3 * i, 3 * i + 7, 0.3 + 0.01 * i as f32)).collect();
    let receptors = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(k, name)| ReceptorChannel { name: name.to_string(), excitatory: k != 1 })
        .collect();
    let network = Arc::new(CompiledNetwork::from_parts(
        "random",
        vec![],
        (0..n).map(|i| Neuron::new(i as u64, format!("n{i}"))).collect(),
        receptors,
        m,
        GapMatrix::from_junctions(n, &gaps).unwrap(),
        DT,
    ));
    assert!(matches!(network.chemical.weights, Weights::Dense(_)));
    let sets = if delta {
        vec![
            NeuronParams::LifDelta(LifDeltaParams::default()),
            NeuronParams::LifDelta(LifDeltaParams { refractory_input: true, tau_m: 15.0, ..Default::default() }),
        ]
    } else {
        vec![
            NeuronParams::LifExp(LifExpParams::default()),
            NeuronParams::LifExp(LifExpParams { tau_m: 15.0, t_ref: 1.0, ..Default::default() }),
        ]
    };
    let model = CompiledModel::compile(&sets, &network.receptors, DT).unwrap();
    let (poisson_w, dc) = if delta { (0.02, 20.0) } else { (1.0, 100.0) };
    let setup = SimSetup {
        model,
        param_set: (0..n).map(|i| (i % 2) as u16).collect(),
        init: vec![StateInit { var: 0, rule: InitRule::Normal { mean: -60.0, sd: 4.0 }, targets: None }],
        stimuli: vec![
            Stimulus {
                name: "dense poisson".into(),
                kind: StimulusKind::Poisson { rate_hz: 500_000.0, weight: poisson_w, channel: 2 },
                targets: (0..n).step_by(2).collect(),
                start_step: 0,
                stop_step: STEPS,
            },
            Stimulus {
                name: "dc".into(),
                kind: StimulusKind::Current { amplitude_pa: dc },
                targets: (100..600).collect(),
                start_step: 200,
                stop_step: 2500,
            },
            Stimulus {
                name: "poisson 2".into(),
                kind: StimulusKind::Poisson { rate_hz: 3000.0, weight: poisson_w * 3.0, channel: 0 },
                targets: (0..n).collect(),
                start_step: 0,
                stop_step: STEPS,
            },
            Stimulus {
                name: "activation".into(),
                kind: StimulusKind::Activation { rate_hz: 40.0, amplitude_pa: 0.0 },
                targets: (0..50).collect(),
                start_step: 100,
                stop_step: 2000,
            },
        ],
        network,
        seed: 11,
        steps: STEPS,
    };
    let p = PerturbationSchedule {
        channel_scale: vec![(0, 0.7)],
        blocks: vec![ReceptorBlock {
            channel: 2,
            dose: 1.0,
            ic50: 2.0,
            hill: 1.5,
            start_ms: 50.0,
            stop_ms: 200.0,
            tau_on_ms: 10.0,
            tau_off_ms: 0.0,
        }],
        silencing: vec![],
    };
    (setup, p)
}

#[test]
fn random_dense_network_lif_exp_is_bit_identical() {
    let (setup, p) = random_setup(false);
    check_identical("random dense lif_exp", &setup, &p, 1000);
}

#[test]
fn random_dense_network_lif_delta_is_bit_identical() {
    let (setup, p) = random_setup(true);
    check_identical("random dense lif_delta", &setup, &p, 1000);
}

/// Models without a kernel are rejected with a setup error naming the model.
#[test]
fn unsupported_model_is_a_setup_error() {
    let mut setup = cuba_setup();
    setup.model = CompiledModel::compile(
        &[NeuronParams::Izhikevich(Default::default())],
        &setup.network.receptors,
        setup.network.dt_ms,
    )
    .unwrap();
    setup.init.clear();
    match HostKernelBackend::new(&setup) {
        Err(SimError::Setup(m)) => assert!(m.contains("izhikevich"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("izhikevich must be rejected"),
    }
}
