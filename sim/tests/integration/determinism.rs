//! Same setup + seed ⇒ bit-identical spikes for 1 and 2 threads; a different seed ⇒ different spikes.

use std::sync::Arc;

use neurotwin_connectome::{CompiledNetwork, GapMatrix, Neuron, Synapse, SynapseMatrix};
use neurotwin_models::lif_exp::LifExpParams;
use neurotwin_models::{CompiledModel, CounterRng, NeuronParams, ReceptorChannel, SequenceRng, Stream};
use neurotwin_sim::*;

/// A random excitatory/inhibitory network with heterogeneous delays, gap junctions and Poisson drive,
/// large enough (3000 neurons) to use the parallel update and delivery paths.
fn setup(seed: u64) -> SimSetup {
    let n = 3000u32;
    let mut syn = Vec::new();
    for post in 0..n {
        let mut r = SequenceRng::new(CounterRng::new(99, Stream::Connectivity), post);
        for k in 0..60 {
            let pre = r.below(n as u64) as u32;
            let exc = pre < 2400;
            syn.push(Synapse {
                pre,
                post,
                weight: if exc { 30.0 } else { -120.0 } * (1.0 + 0.1 * k as f32 / 60.0),
                delay: 1 + r.below(20) as u16,
                receptor: if exc { 0 } else { 1 },
            });
        }
    }
    let gaps: Vec<(u32, u32, f32)> = (0..200).map(|i| (i, i + 1, 0.5)).collect();
    let receptors = vec![
        ReceptorChannel { name: "exc".into(), excitatory: true },
        ReceptorChannel { name: "inh".into(), excitatory: false },
    ];
    let network = Arc::new(CompiledNetwork::from_parts(
        "det",
        vec![],
        (0..n).map(|i| Neuron::new(i as u64, format!("n{i}"))).collect(),
        receptors,
        SynapseMatrix::from_synapses(n, n, syn).unwrap(),
        GapMatrix::from_junctions(n, &gaps).unwrap(),
        0.1,
    ));
    let model =
        CompiledModel::compile(&[NeuronParams::LifExp(LifExpParams::default())], &network.receptors, 0.1).unwrap();
    SimSetup {
        spike_trains: Default::default(),
        plasticity: Default::default(),
        param_set: vec![0; n as usize],
        model,
        init: vec![StateInit { var: 0, rule: InitRule::Uniform { lo: -70.0, hi: -56.0 }, targets: None }],
        stimuli: vec![Stimulus {
            name: "bg".into(),
            kind: StimulusKind::Poisson { rate_hz: 9000.0, weight: 30.0, channel: 0 },
            targets: (0..n).collect(),
            start_step: 0,
            stop_step: 3000,
        }],
        network,
        seed,
        steps: 3000,
    }
}

fn spikes(seed: u64, threads: usize) -> (Vec<u64>, Vec<u32>) {
    let s = setup(seed);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut b = CpuBackend::new(&s).unwrap();
        let rec = run(&s, &Default::default(), &Default::default(), &mut b, &Default::default()).unwrap();
        (rec.spike_steps, rec.spike_neurons)
    })
}

#[test]
fn identical_across_threads_and_runs_and_seed_sensitive() {
    let a = spikes(7, 1);
    assert!(a.0.len() > 2000, "network must be active: {} spikes", a.0.len());
    let b = spikes(7, 2);
    assert_eq!(a, b, "1 thread vs 2 threads differ");
    let c = spikes(7, 2);
    assert_eq!(b, c, "two runs with the same seed differ");
    let d = spikes(8, 2);
    assert_ne!(a, d, "a different seed gave identical spikes");
}

/// The spike queue (`spike_queue.rs`, one input row per channel) gives the delay ring's spikes and membrane
/// potentials bit for bit, on 1 and 2 threads: delays of 1 to 20 steps on two receptors with gap junctions and a
/// Poisson drive, and the graded model (amounts other than 1, delays 1 to 15); and the queue is refused where the
/// plastic pass adds to the rows.
#[test]
fn spike_queue_equals_the_delay_ring() {
    use neurotwin_sim::delivery::Timing;
    let graded = super::suite::random_setup(super::suite::Kind::Graded).0;
    for (name, s, steps) in [("random E/I", setup(7), 600u64), ("graded", graded, 300)] {
        let control = StepControl::new(s.network.receptors.len(), s.n_neurons());
        let all: Vec<u32> = (0..s.n_neurons() as u32).collect();
        let run_with = |timing: Timing, threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut b = CpuBackend::with_delivery_timing(&s, timing).unwrap();
                assert_eq!(b.delivery_strategy().timing, timing);
                let mut spikes = Vec::new();
                let mut v_sum = Vec::new();
                for step in 0..steps {
                    spikes.extend(b.step(step, &control).unwrap().iter().map(|&i| (step, i)));
                    let mut v = Vec::new();
                    b.read_state(0, &all, &mut v);
                    v_sum.push(v.iter().map(|x| x.to_bits()).fold(0u64, |a, x| a.rotate_left(7) ^ x));
                }
                (spikes, v_sum)
            })
        };
        let ring = run_with(Timing::Ring, 1);
        assert!(ring.0.len() > 300 || name == "graded", "{name}: network must be active: {} spikes", ring.0.len());
        for threads in [1, 2] {
            assert!(
                run_with(Timing::Queue, threads) == ring,
                "{name}: queue on {threads} thread(s) differs from the ring"
            );
        }
    }
}
