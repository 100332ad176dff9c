//! The conformance suite run against every backend (Arbor-style): the networks, perturbations and the
//! bit-for-bit comparison with the CPU backend. Used by `conformance_host_kernels.rs` (the CUDA C kernels
//! compiled for the host, always) and `gpu_conformance.rs` (the CUDA backend, on a machine with a GPU).
#![allow(dead_code)]

use std::sync::Arc;

use neurotwin_connectome::generators::{GeneratedNetwork, brunel, cuba};
use neurotwin_connectome::{
    CompileOptions, CompiledNetwork, GapMatrix, Neuron, Synapse, SynapseMatrix, TransmitterMap, Weights, compile,
    load_celegans_bundled,
};
use neurotwin_models::adex::{AdexParams, SynapseType};
use neurotwin_models::graded::GradedParams;
use neurotwin_models::izhikevich::IzhikevichParams;
use neurotwin_models::lif_cond_exp::LifCondExpParams;
use neurotwin_models::lif_delta::LifDeltaParams;
use neurotwin_models::lif_exp::LifExpParams;
use neurotwin_models::{CompiledModel, CounterRng, NeuronParams, ReceptorChannel, SequenceRng, Stream};
use neurotwin_sim::*;

pub const DT: f64 = 0.1;
pub const STEPS: u64 = 3000; // 300 ms

pub fn generated_setup(g: GeneratedNetwork, seed: u64, steps: u64) -> SimSetup {
    SimSetup::from_generated(g, seed, steps).unwrap()
}

pub fn cuba_setup() -> SimSetup {
    let g = cuba(&Default::default(), 1, DT).unwrap();
    assert_eq!(g.network.n_neurons(), 4000);
    generated_setup(g, 1, STEPS)
}

/// CUBA 4000 with what changes the CPU's fused ring-to-spikes pass, in part of the run: a Poisson stimulus on
/// neurons 700..1500 (the 12 blocks inside that range take the fused pass with their drive, the 2 blocks it
/// cuts take the general path), a receptor block of the
/// inhibitory channel from 100 to 200 ms with wash-in and wash-out (every block takes the general path while a
/// channel gain is in force), and silencing of 64 neurons from 50 to 250 ms (on both paths). Returns the
/// setup, the schedule, and the silenced neurons.
pub fn cuba_mixed_paths_setup() -> (SimSetup, PerturbationSchedule, Vec<u32>) {
    let mut setup = cuba_setup();
    setup.stimuli.push(Stimulus {
        name: "drive".into(),
        kind: StimulusKind::Poisson { rate_hz: 2000.0, weight: 0.5, channel: 0 },
        targets: (700..1500).collect(),
        start_step: 0,
        stop_step: STEPS,
    });
    let silenced: Vec<u32> = (2000..2064).collect();
    let p = PerturbationSchedule {
        channel_scale: vec![],
        blocks: vec![ReceptorBlock {
            channel: 1,
            dose: 10.0,
            ic50: 1.0,
            hill: 1.0,
            start_ms: 100.0,
            stop_ms: 200.0,
            tau_on_ms: 5.0,
            tau_off_ms: 5.0,
        }],
        silencing: vec![Silencing { targets: silenced.clone(), start_step: 500, stop_step: 2500 }],
    };
    (setup, p, silenced)
}

pub fn brunel_setup() -> SimSetup {
    let cfg = brunel::BrunelConfig { order: 200, ..Default::default() };
    let g = brunel(&cfg, 3, DT).unwrap();
    assert!(matches!(g.populations[0].params, NeuronParams::LifDelta(_)));
    generated_setup(g, 3, STEPS)
}

/// The bundled worm as in `scenarios/celegans_touch.toml` (300 ms), with a receptor block on ACh
/// (dose = IC50 → half block, 20 ms wash-in and wash-out, so the gain changes every step) and AVAL/AVAR
/// silenced for 100 ms.
pub fn celegans_setup() -> (SimSetup, PerturbationSchedule) {
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
        spike_trains: Default::default(),
        plasticity: Default::default(),
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

/// Spike steps, spike neurons, V_m of every neuron sampled every 97 steps and at the end (bit patterns).
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub steps: Vec<u64>,
    pub neurons: Vec<u32>,
    pub trace_bits: Vec<u64>,
    pub v_bits: Vec<u64>,
}

pub fn outcome(setup: &SimSetup, p: &PerturbationSchedule, backend: &mut dyn Backend) -> Outcome {
    let all: Vec<u32> = (0..setup.n_neurons() as u32).collect();
    let spec = RecordSpec {
        state: vec![StateProbe { var: 0, var_name: "V_m".into(), neurons: all.clone(), every_steps: 97 }],
        ..Default::default()
    };
    let rec = run(setup, p, &spec, backend, &Default::default()).unwrap();
    let mut v = Vec::new();
    backend.read_state(0, &all, &mut v);
    Outcome {
        steps: rec.spike_steps,
        neurons: rec.spike_neurons,
        trace_bits: rec.state[0].values.iter().map(|x| x.to_bits()).collect(),
        v_bits: v.iter().map(|x| x.to_bits()).collect(),
    }
}

/// A random network exercising what the three benchmark networks do not: dense f32 weights (converted to fixed
/// point by the kernel, many distinct values), three channels with delays 1..=15, two parameter sets, normal
/// initial V_m, a DC current stimulus, Poisson input with a mean above 32 per step (several parts and draw
/// indices), a constant channel scale and a receptor block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    LifExp,
    LifDelta,
    Izhikevich,
    Adex,
    Graded,
    LifCondExp,
    /// AdEx with conductance synapses (NEST `aeif_cond_exp`).
    AdexCond,
    /// LIF with alpha conductances (NEST `iaf_cond_alpha`).
    LifCondAlpha,
}

pub fn random_setup(kind: Kind) -> (SimSetup, PerturbationSchedule) {
    // Weight scale (pA, mV or nS per synapse), Poisson weight, DC current and activation amplitude per model.
    let (w_scale, poisson_w, dc, act_pa) = match kind {
        Kind::LifExp => (20.0, 1.0, 100.0, 0.0),
        Kind::LifDelta => (0.3, 0.02, 20.0, 0.0),
        Kind::Izhikevich => (0.3, 0.02, 3.0, 0.0),
        Kind::Adex => (40.0, 4.0, 700.0, 0.0),
        Kind::Graded => (0.4, 0.05, 40.0, 60.0),
        Kind::LifCondExp => (2.0, 0.3, 150.0, 0.0),
        Kind::AdexCond => (2.0, 0.3, 700.0, 0.0),
        Kind::LifCondAlpha => (1.0, 0.15, 150.0, 0.0),
    };
    let n = 700u32;
    let mut syn = Vec::new();
    for post in 0..n {
        let mut r = SequenceRng::new(CounterRng::new(5, Stream::Connectivity), post);
        for _ in 0..40 {
            let pre = r.below(n as u64) as u32;
            let receptor = (pre % 3) as u8;
            let w = (0.2 + r.uniform()) as f32 * if receptor == 1 { -4.0 } else { 1.0 };
            syn.push(Synapse { pre, post, weight: w * w_scale as f32, delay: 1 + r.below(15) as u16, receptor });
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
    let sets = match kind {
        Kind::LifExp => vec![
            NeuronParams::LifExp(LifExpParams::default()),
            NeuronParams::LifExp(LifExpParams { tau_m: 15.0, t_ref: 1.0, ..Default::default() }),
        ],
        Kind::LifDelta => vec![
            NeuronParams::LifDelta(LifDeltaParams::default()),
            NeuronParams::LifDelta(LifDeltaParams { refractory_input: true, tau_m: 15.0, ..Default::default() }),
        ],
        Kind::Izhikevich => vec![
            NeuronParams::Izhikevich(IzhikevichParams::default()),
            NeuronParams::Izhikevich(IzhikevichParams { a: 0.1, b: 0.2, c: -65.0, d: 2.0, ..Default::default() }),
        ],
        Kind::Adex => vec![
            NeuronParams::Adex(AdexParams::default()),
            NeuronParams::Adex(AdexParams { a: 2.0, b: 60.0, tau_w: 100.0, ..Default::default() }),
        ],
        Kind::Graded => vec![
            NeuronParams::Graded(GradedParams::default()),
            NeuronParams::Graded(GradedParams { beta: 0.2, ..Default::default() }),
        ],
        Kind::LifCondExp => vec![
            NeuronParams::LifCondExp(LifCondExpParams::default()),
            NeuronParams::LifCondExp(LifCondExpParams {
                tau_syn_ex: 5.0,
                tau_syn_in: 10.0,
                g_l: 10.0,
                ..Default::default()
            }),
        ],
        Kind::LifCondAlpha => vec![
            NeuronParams::LifCondAlpha(LifCondExpParams::default()),
            NeuronParams::LifCondAlpha(LifCondExpParams {
                tau_syn_ex: 5.0,
                tau_syn_in: 10.0,
                g_l: 10.0,
                ..Default::default()
            }),
        ],
        Kind::AdexCond => vec![
            NeuronParams::Adex(AdexParams { synapses: SynapseType::Conductance, ..Default::default() }),
            NeuronParams::Adex(AdexParams {
                synapses: SynapseType::Conductance,
                a: 2.0,
                b: 60.0,
                tau_w: 100.0,
                tau_syn_ex: 3.0,
                ..Default::default()
            }),
        ],
    };
    let model = CompiledModel::compile(&sets, &network.receptors, DT).unwrap();
    // Prescribed spike trains (spiking models): a whole block (640..700) and a few scattered neurons, 30 random
    // steps each (duplicates merged), so several trains OR into one word of the forced mask.
    let spike_trains = if kind == Kind::Graded {
        Default::default()
    } else {
        let mut events = Vec::new();
        for i in (640..700).chain([3, 64, 65, 300]) {
            let mut r = SequenceRng::new(CounterRng::new(9, Stream::Connectivity), i);
            events.extend((0..30).map(|_| (i, r.below(STEPS))));
        }
        Arc::new(SpikeTrains::from_events(events, n as usize, STEPS).unwrap().0)
    };
    let setup = SimSetup {
        spike_trains,
        plasticity: Default::default(),
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
                kind: StimulusKind::Activation { rate_hz: 40.0, amplitude_pa: act_pa },
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
        silencing: vec![Silencing { targets: (200..260).collect(), start_step: 800, stop_step: 1600 }],
    };
    (setup, p)
}

/// CUBA 1000 with NEST's `iaf_psc_exp` written as equations (`model = "equations"`): the CPU runs its native code,
/// kernel backends its generated CUDA kernel.
pub fn equation_cuba_setup() -> SimSetup {
    let mut g = cuba(&neurotwin_connectome::generators::CubaConfig { n: 1000, ..Default::default() }, 4, 0.1).unwrap();
    let eq = neurotwin_models::testing::cuba_iaf_psc_exp_equations();
    for p in &mut g.populations {
        p.params = NeuronParams::Equations(eq.clone());
    }
    SimSetup::from_generated(g, 4, 3000).unwrap()
}

/// Runs the CPU backend and `other` (built by `make`) on `setup` and requires identical spike trains,
/// sampled V_m traces and final V_m; returns the CPU outcome.
pub fn check_identical(
    label: &str,
    setup: &SimSetup,
    p: &PerturbationSchedule,
    min_spikes: usize,
    make: &dyn Fn(&SimSetup) -> Box<dyn Backend>,
) -> Outcome {
    let mut cpu = CpuBackend::new(setup).unwrap();
    let mut other = make(setup);
    let name = other.name();
    assert_eq!(other.delivery_scale_exponent(), cpu.delivery_scale_exponent());
    let a = outcome(setup, p, &mut cpu);
    let b = outcome(setup, p, other.as_mut());
    assert!(a.steps.len() >= min_spikes, "{label}: network too quiet ({} spikes)", a.steps.len());
    assert_eq!(a.steps.len(), b.steps.len(), "{label}: spike counts differ (cpu vs {name})");
    if let Some(k) = (0..a.steps.len()).find(|&k| (a.steps[k], a.neurons[k]) != (b.steps[k], b.neurons[k])) {
        panic!(
            "{label}: spike #{k} differs: cpu ({}, n{}) vs {name} ({}, n{})",
            a.steps[k], a.neurons[k], b.steps[k], b.neurons[k]
        );
    }
    assert!(a.trace_bits == b.trace_bits, "{label}: sampled V_m traces differ (cpu vs {name})");
    assert!(a.v_bits == b.v_bits, "{label}: final V_m differs (cpu vs {name})");
    eprintln!("{label}: {} spikes, identical on cpu and {name}", a.steps.len());
    a
}

/// CUBA 1000 whose excitatory synapses learn (two projections: E→E additive all-to-all STDP, E→I multiplicative
/// nearest-neighbour), so that spikes depend on the weights as they change, for 3000 steps; every neuron is forced
/// to fire in steps 1000 and 2000, whose plasticity phases are then large enough for the CPU's parallel path.
pub fn plastic_setup() -> SimSetup {
    use neurotwin_connectome::generators::{CubaConfig, cuba};
    use neurotwin_models::stdp::{Pairing, StdpParams};
    let g = cuba(&CubaConfig { n: 1000, ..Default::default() }, 5, 0.1).unwrap();
    let n_exc = g.populations[0].range.end;
    let n = g.network.n_neurons() as u32;
    let mut setup = SimSetup::from_generated(g, 5, 3000).unwrap();
    let additive =
        StdpParams { mu_plus: 0.0, mu_minus: 0.0, lambda: 0.005, alpha: 1.1, w_max: 40.0, ..Default::default() };
    let nearest = StdpParams { pairing: Pairing::Nearest, lambda: 0.02, w_max: 30.0, ..Default::default() };
    let exc: Vec<u32> = (0..n_exc).collect();
    let projection = |name: &str, rule, post: Vec<u32>| PlasticProjection {
        name: name.into(),
        rule: PlasticRule::Stdp(rule),
        pre: Some(exc.clone()),
        post: Some(post),
        channel: None,
    };
    setup.plasticity = std::sync::Arc::new(Plasticity {
        projections: vec![projection("ee", additive, exc.clone()), projection("ei", nearest, (n_exc..n).collect())],
    });
    for at in [1000, 2000] {
        setup.stimuli.push(Stimulus {
            name: format!("burst-{at}"),
            kind: StimulusKind::Activation { rate_hz: 1e12, amplitude_pa: 0.0 },
            targets: (0..n).collect(),
            start_step: at,
            stop_step: at + 1,
        });
    }
    setup
}

/// [`plastic_setup`] with its E→E projection reward-modulated (`stdp_dopamine`, weights clipped to [0, 40] pA, the
/// first 40 inhibitory neurons its dopamine neurons after 15 steps, every weight updated each 250 steps) and a
/// strong eligibility, so that dopamine moves the weights during the run.
pub fn dopamine_setup() -> SimSetup {
    use neurotwin_models::stdp::DopamineParams;
    let mut setup = plastic_setup();
    let mut plasticity = (*setup.plasticity).clone();
    let n_exc = 800u32;
    let params = DopamineParams {
        a_plus: 2.0,
        a_minus: 2.5,
        tau_n_ms: 20.0,
        b: 0.01,
        w_min: 0.0,
        w_max: 40.0,
        ..Default::default()
    };
    plasticity.projections[0].rule = PlasticRule::Dopamine(neurotwin_sim::DopamineRule {
        params,
        neurons: (n_exc..n_exc + 40).collect(),
        delay_steps: 15,
        update_every_steps: 250,
    });
    setup.plasticity = std::sync::Arc::new(plasticity);
    setup
}

/// [`plastic_setup`] on the CPU and on `make`'s backend: identical spikes, V_m and, at the end, weights.
pub fn plastic_case(make: MakeBackend) {
    plastic_case_of("plastic CUBA 1000", plastic_setup(), make);
}

/// [`dopamine_setup`] on the CPU and on `make`'s backend: identical spikes, V_m and weights (read as
/// `current_weights`, carried to the last step), and the weights moved.
pub fn dopamine_case(make: MakeBackend) {
    let setup = dopamine_setup();
    let initial: Vec<f64> = neurotwin_sim::plasticity::split_setup(&setup).unwrap().1.unwrap().weight;
    let end = plastic_case_of("reward-modulated CUBA 1000", setup, make);
    let moved = end.iter().zip(&initial).filter(|(a, b)| a != b).count();
    assert!(moved > end.len() / 10, "dopamine moved {moved} of {} weights", end.len());
}

/// `setup` on the CPU and on `make`'s backend: identical spikes, V_m and final weights (returned).
fn plastic_case_of(label: &str, setup: SimSetup, make: MakeBackend) -> Vec<f64> {
    let mut cpu = CpuBackend::new(&setup).unwrap();
    let mut other = make(&setup);
    let name = other.name();
    assert_eq!(other.delivery_scale_exponent(), cpu.delivery_scale_exponent());
    let a = outcome(&setup, &Default::default(), &mut cpu);
    let b = outcome(&setup, &Default::default(), other.as_mut());
    assert!(a.steps.len() > 1000, "network too quiet ({} spikes)", a.steps.len());
    assert!(a == b, "{label}: spikes or V_m differ (cpu vs {name})");
    let w = |b: &mut dyn Backend| -> Vec<f64> { b.plastic_synapses().unwrap().unwrap().current_weights().into_owned() };
    let (wa, wb) = (w(&mut cpu), w(other.as_mut()));
    let bits = |w: &[f64]| w.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    if let Some(k) = (0..wa.len()).find(|&k| wa[k].to_bits() != wb[k].to_bits()) {
        panic!("{label}: weight {k} differs (cpu {} vs {name} {})", wa[k], wb[k]);
    }
    assert!(bits(&wa) == bits(&wb));
    eprintln!("{label}: {} spikes, {} plastic weights identical on cpu and {name}", a.steps.len(), wa.len());
    wa
}

/// Builds the backend under test for a setup.
pub type MakeBackend = fn(&SimSetup) -> Box<dyn Backend>;

/// The C. elegans scenario, plus proof that its perturbations were exercised: the silenced cells are quiet in
/// their window and the touch cells fire.
pub fn celegans_case(make: MakeBackend) {
    let (setup, p) = celegans_setup();
    let o = check_identical("C. elegans", &setup, &p, 200, &make);
    let s = &p.silencing[0];
    let in_window = |k: usize| (s.start_step..s.stop_step).contains(&o.steps[k]);
    assert!(!(0..o.steps.len()).any(|k| in_window(k) && s.targets.contains(&o.neurons[k])));
    let touch = &setup.stimuli[1].targets;
    assert!((0..o.steps.len()).filter(|&k| touch.contains(&o.neurons[k])).count() >= 20, "touch cells must fire");
}

/// The random network of `kind`. Graded neurons emit no spikes: their sampled V_m traces (which depend on every
/// delivered activity) must be identical, and must actually move.
pub fn random_case(kind: Kind, make: MakeBackend) {
    let (setup, p) = random_setup(kind);
    let min = if kind == Kind::Graded { 0 } else { 1000 };
    let o = check_identical(&format!("random dense {kind:?}"), &setup, &p, min, &make);
    if kind == Kind::Graded {
        let v: Vec<f64> = o.trace_bits.iter().map(|&b| f64::from_bits(b)).collect();
        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(hi - lo > 5.0, "graded V_m range {lo}..{hi} mV: the network is not driven");
    }
}

/// `step` (spikes at once) and `advance`/`drain_spikes` (a window of spikes in the record) give the same
/// spikes; advancing beyond the window without a drain is refused, not overwritten.
pub fn step_equals_windowed_drain(make: MakeBackend) {
    let setup = brunel_setup();
    let steps = 600;
    let control = StepControl::new(setup.network.receptors.len(), setup.n_neurons());
    let mut a = make(&setup);
    let mut direct = Vec::new();
    for step in 0..steps {
        direct.extend(a.step(step, &control).unwrap().iter().map(|&i| (step, i)));
    }
    let mut b = make(&setup);
    assert!(b.spike_window() > 1);
    let mut windowed = Vec::new();
    for step in 0..steps {
        b.advance(step, &control).unwrap();
        if (step + 1) % b.spike_window() as u64 == 0 || step + 1 == steps {
            b.drain_spikes(&mut |st, s| windowed.extend(s.iter().map(|&i| (st, i)))).unwrap();
        }
    }
    assert!(direct.len() > 1000, "{} spikes", direct.len());
    assert_eq!(direct, windowed);
    for step in 0..b.spike_window() as u64 {
        b.advance(steps + step, &control).unwrap();
    }
    assert!(b.advance(steps + 999, &control).is_err());
}

/// The comparison is sharp: a backend with a deliberately broken delivery kernel (`make_broken`) gives
/// different spikes on the worm.
pub fn broken_kernel_case(make_broken: MakeBackend) {
    let (setup, p) = celegans_setup();
    let mut cpu = CpuBackend::new(&setup).unwrap();
    let mut broken = make_broken(&setup);
    let a = outcome(&setup, &p, &mut cpu);
    let b = outcome(&setup, &p, broken.as_mut());
    assert_ne!((a.steps, a.neurons), (b.steps, b.neurons), "a broken delivery kernel went unnoticed");
}

/// Neurons of [`volley_setup`].
pub const VOLLEY_N: u32 = 6000;
/// Steps of [`volley_setup`].
pub const VOLLEY_STEPS: u64 = 400;
/// Steps at which every neuron of [`volley_setup`] is forced to spike.
pub const VOLLEY_AT: [u64; 4] = [20, 120, 220, 320];

/// Synchronous volleys: 6000 lif_delta neurons, each receiving 60 synapses whose rows split into two segments of
/// about 30 synapses (receptor = pre % 2, delay 1 + pre % 3 or one more), Poisson background, and prescribed
/// spike trains that make every neuron spike at [`VOLLEY_AT`] (6000 spikes in one step) plus 10 % of the neurons
/// at 20 random steps each. Sized so that every level of the compaction scan (words → chunks → groups) and of
/// the per-step scan over the spike list that numbers the delivery pieces has more than two items.
pub fn volley_setup() -> SimSetup {
    let n = VOLLEY_N;
    let mut syn = Vec::new();
    for post in 0..n {
        let mut r = SequenceRng::new(CounterRng::new(21, Stream::Connectivity), post);
        for _ in 0..60 {
            let pre = r.below(n as u64) as u32;
            let receptor = (pre % 2) as u8;
            let w = if receptor == 1 { -0.4 } else { 0.2 } * (0.5 + r.uniform()) as f32;
            syn.push(Synapse { pre, post, weight: w, delay: 1 + (pre % 3) as u16 + r.below(2) as u16, receptor });
        }
    }
    let m = SynapseMatrix::from_synapses(n, n, syn).unwrap();
    let receptors = ["ex", "in"]
        .iter()
        .enumerate()
        .map(|(k, name)| ReceptorChannel { name: name.to_string(), excitatory: k == 0 })
        .collect();
    let network = Arc::new(CompiledNetwork::from_parts(
        "volleys",
        vec![],
        (0..n).map(|i| Neuron::new(i as u64, format!("n{i}"))).collect(),
        receptors,
        m,
        GapMatrix::from_junctions(n, &[]).unwrap(),
        DT,
    ));
    let model =
        CompiledModel::compile(&[NeuronParams::LifDelta(LifDeltaParams::default())], &network.receptors, DT).unwrap();
    let mut events: Vec<(u32, u64)> = (0..n).flat_map(|i| VOLLEY_AT.map(|s| (i, s))).collect();
    for i in (0..n).step_by(10) {
        let mut r = SequenceRng::new(CounterRng::new(22, Stream::Connectivity), i);
        events.extend((0..20).map(|_| (i, r.below(VOLLEY_STEPS))));
    }
    let spike_trains = Arc::new(SpikeTrains::from_events(events, n as usize, VOLLEY_STEPS).unwrap().0);
    SimSetup {
        spike_trains,
        plasticity: Default::default(),
        model,
        param_set: vec![0; n as usize],
        init: vec![StateInit { var: 0, rule: InitRule::Uniform { lo: -70.0, hi: -55.0 }, targets: None }],
        stimuli: vec![Stimulus {
            name: "background".into(),
            kind: StimulusKind::Poisson { rate_hz: 20_000.0, weight: 0.1, channel: 0 },
            targets: (0..n).collect(),
            start_step: 0,
            stop_step: VOLLEY_STEPS,
        }],
        network,
        seed: 23,
        steps: VOLLEY_STEPS,
    }
}

/// The volleys of [`volley_setup`], bit-identical with the CPU backend; the volley steps have more than 1024
/// spikes each (checked on the CPU outcome).
pub fn volley_case(make: MakeBackend) {
    use neurotwin_kernels::{compaction_chunk, compaction_group, work_chunk};
    // Compaction: 94 words in chunks of 4 → 24 chunks in groups of 5 → 5 groups.
    let words = (VOLLEY_N as usize).div_ceil(64);
    let chunks = words.div_ceil(compaction_chunk(words) as usize);
    assert_eq!((words, compaction_chunk(words), chunks, compaction_group(chunks)), (94, 4, 24, 5));
    // Piece numbering: spikes in chunks of 32 → 188 chunks in groups of 14; 1025 spikes already fill 33 chunks in
    // 3 groups.
    let piece_chunks = (VOLLEY_N as usize).div_ceil(work_chunk(VOLLEY_N as usize) as usize);
    assert_eq!((work_chunk(VOLLEY_N as usize), piece_chunks, compaction_group(piece_chunks)), (32, 188, 14));
    let setup = volley_setup();
    let o = check_identical("synchronous volleys 6000", &setup, &Default::default(), 30_000, &make);
    for at in VOLLEY_AT {
        let count = o.steps.iter().filter(|&&s| s == at).count();
        assert!(count > 1024, "step {at}: {count} spikes");
    }
}

/// The conformance suite for one backend: `conformance_suite!(module, constructor)` (plus
/// `broken = constructor` for a backend that can build a deliberately broken delivery kernel, and/or an
/// attribute such as `#[ignore = "needs a CUDA GPU"]` for every case). Each case runs the CPU backend and the
/// backend built by `constructor: fn(&SimSetup) -> Box<dyn Backend>` and requires identical spike trains,
/// sampled V_m traces and final V_m, bit for bit.
macro_rules! conformance_suite {
    ($module:ident, $make:path $(, broken = $broken:path)? $(, #[$attr:meta])?) => {
        mod $module {
            use super::*;
            use $crate::suite::{self, Kind};

            #[test]
            $(#[$attr])?
            fn cuba_4000_is_bit_identical() {
                suite::check_identical("CUBA 4000", &suite::cuba_setup(), &Default::default(), 1000, &$make);
            }

            #[test]
            $(#[$attr])?
            fn cuba_4000_on_fused_and_general_paths_is_bit_identical() {
                let (setup, p, silenced) = suite::cuba_mixed_paths_setup();
                let o = suite::check_identical("CUBA 4000, mixed paths", &setup, &p, 1000, &$make);
                let quiet = (0..o.steps.len())
                    .filter(|&k| (500..2500).contains(&o.steps[k]) && silenced.contains(&o.neurons[k]))
                    .count();
                assert_eq!(quiet, 0, "silenced neurons fired in their window");
            }

            #[test]
            $(#[$attr])?
            fn plastic_cuba_1000_spikes_and_weights_are_bit_identical() {
                suite::plastic_case($make);
            }

            #[test]
            $(#[$attr])?
            fn equation_defined_cuba_1000_is_bit_identical() {
                suite::check_identical("equations CUBA 1000", &suite::equation_cuba_setup(), &Default::default(), 1000, &$make);
            }

            #[test]
            $(#[$attr])?
            fn reward_modulated_cuba_1000_spikes_and_weights_are_bit_identical() {
                suite::dopamine_case($make);
            }

            #[test]
            $(#[$attr])?
            fn brunel_order_200_is_bit_identical() {
                suite::check_identical("Brunel order 200", &suite::brunel_setup(), &Default::default(), 1000, &$make);
            }

            #[test]
            $(#[$attr])?
            fn celegans_with_block_and_silencing_is_bit_identical() {
                suite::celegans_case($make);
            }

            #[test]
            $(#[$attr])?
            fn random_dense_network_lif_exp_is_bit_identical() {
                suite::random_case(Kind::LifExp, $make);
            }

            #[test]
            $(#[$attr])?
            fn random_dense_network_lif_delta_is_bit_identical() {
                suite::random_case(Kind::LifDelta, $make);
            }

            #[test]
            $(#[$attr])?
            fn random_dense_network_izhikevich_is_bit_identical() {
                suite::random_case(Kind::Izhikevich, $make);
            }

            #[test]
            $(#[$attr])?
            fn random_dense_network_adex_is_bit_identical() {
                suite::random_case(Kind::Adex, $make);
            }

            #[test]
            $(#[$attr])?
            fn random_dense_network_graded_is_bit_identical() {
                suite::random_case(Kind::Graded, $make);
            }

            #[test]
            $(#[$attr])?
            fn random_dense_network_lif_cond_exp_is_bit_identical() {
                suite::random_case(Kind::LifCondExp, $make);
            }

            #[test]
            $(#[$attr])?
            fn random_dense_network_adex_conductance_is_bit_identical() {
                suite::random_case(Kind::AdexCond, $make);
            }

            #[test]
            $(#[$attr])?
            fn random_dense_network_lif_cond_alpha_is_bit_identical() {
                suite::random_case(Kind::LifCondAlpha, $make);
            }

            #[test]
            $(#[$attr])?
            fn synchronous_volleys_of_6000_spikes_are_bit_identical() {
                suite::volley_case($make);
            }

            #[test]
            $(#[$attr])?
            fn step_by_step_equals_windowed_drain() {
                suite::step_equals_windowed_drain($make);
            }

            $(
                #[test]
                fn broken_delivery_kernel_is_detected() {
                    suite::broken_kernel_case($broken);
                }
            )?
        }
    };
}
pub(crate) use conformance_suite;

/// Runs `graphs` and `direct` (the same setup `kind`'s random network) through `steps` steps of a wash-in — a new
/// gain on channel 0 every step, 4 neurons' silencing toggled every 7 steps, windows drained at irregular points
/// (at most 11 steps apart) — and requires the same spikes and final V_m bit for bit.
pub fn graph_replay_equals_direct(kind: Kind, steps: u64, graphs: &mut dyn Backend, direct: &mut dyn Backend) {
    let (setup, _) = random_setup(kind);
    let n = setup.n_neurons();
    let mut control = StepControl::new(setup.network.receptors.len(), n);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for step in 0..steps {
        control.channel_gain[0] = 1.0 - step as f64 / (steps as f64 * 4.0 / 3.0);
        if step % 7 == 0 {
            control.silenced[0] ^= 0b1011;
        }
        graphs.advance(step, &control).unwrap();
        direct.advance(step, &control).unwrap();
        if step % 5 == 3 || step % 11 == 0 {
            graphs.drain_spikes(&mut |st, x| a.extend(x.iter().map(|&i| (st, i)))).unwrap();
            direct.drain_spikes(&mut |st, x| b.extend(x.iter().map(|&i| (st, i)))).unwrap();
        }
    }
    graphs.drain_spikes(&mut |st, x| a.extend(x.iter().map(|&i| (st, i)))).unwrap();
    direct.drain_spikes(&mut |st, x| b.extend(x.iter().map(|&i| (st, i)))).unwrap();
    assert!(kind == Kind::Graded || !a.is_empty(), "{kind:?}: the network must spike");
    assert_eq!(a, b, "{kind:?}: spikes differ between graph replay and direct launches");
    let all: Vec<u32> = (0..n as u32).collect();
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    graphs.read_state(0, &all, &mut va);
    direct.read_state(0, &all, &mut vb);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&va), bits(&vb), "{kind:?}: V_m differs between graph replay and direct launches");
}
