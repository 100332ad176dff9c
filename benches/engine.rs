//! Micro-benchmarks of the two per-step kernels of the CPU backend: neuron update and spike delivery.
//! Run: `cargo bench --bench engine`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use neurotwin_connectome::{CompiledNetwork, GapMatrix, Neuron, Synapse, SynapseMatrix};
use neurotwin_models::lif_exp::LifExpParams;
use neurotwin_models::{CompiledModel, CounterRng, NeuronParams, ReceptorChannel, SequenceRng, Stream};
use neurotwin_sim::{Backend, CpuBackend, SimSetup, StepControl, Stimulus, StimulusKind};

fn network(n: u32, k: u32) -> Arc<CompiledNetwork> {
    let mut syn = Vec::with_capacity((n * k) as usize);
    for pre in 0..n {
        let mut r = SequenceRng::new(CounterRng::new(3, Stream::Connectivity), pre);
        for _ in 0..k {
            syn.push(Synapse { pre, post: r.below(n as u64) as u32, weight: 10.0, delay: 15, receptor: 0 });
        }
    }
    Arc::new(CompiledNetwork::from_parts(
        "bench",
        vec![],
        (0..n).map(|i| Neuron::new(i as u64, "")).collect(),
        vec![ReceptorChannel { name: "exc".into(), excitatory: true }],
        SynapseMatrix::from_synapses(n, n, syn).unwrap(),
        GapMatrix::empty(n),
        0.1,
    ))
}

fn setup(net: Arc<CompiledNetwork>, stimuli: Vec<Stimulus>) -> SimSetup {
    let model = CompiledModel::compile(&[NeuronParams::LifExp(LifExpParams::default())], &net.receptors, 0.1).unwrap();
    SimSetup {
        param_set: vec![0; net.n_neurons()],
        network: net,
        model,
        init: vec![],
        stimuli,
        seed: 1,
        steps: 0,
        spike_trains: Default::default(),
        plasticity: Default::default(),
    }
}

fn neuron_update(c: &mut Criterion) {
    let n = 100_000u32;
    let s = setup(network(n, 0), vec![]);
    let mut b = CpuBackend::new(&s).unwrap();
    let ctl = StepControl::new(1, n as usize);
    let mut step = 0;
    let mut g = c.benchmark_group("neuron_update");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("lif_exp_100k", |bench| {
        bench.iter(|| {
            black_box(b.step(step, &ctl).unwrap().len());
            step += 1;
        })
    });
    g.finish();
}

fn spike_delivery(c: &mut Criterion) {
    // Every neuron fires every step (forced), so each step delivers n·k synaptic events.
    let (n, k) = (20_000u32, 500u32);
    let all = Stimulus {
        name: "all".into(),
        kind: StimulusKind::Activation { rate_hz: 1e12, amplitude_pa: 0.0 },
        targets: (0..n).collect(),
        start_step: 0,
        stop_step: u64::MAX,
    };
    let s = setup(network(n, k), vec![all]);
    let mut b = CpuBackend::new(&s).unwrap();
    let ctl = StepControl::new(1, n as usize);
    let mut step = 0;
    let mut g = c.benchmark_group("spike_delivery");
    g.throughput(Throughput::Elements((n * k) as u64));
    g.sample_size(20);
    g.bench_function("20k_x_500_all_firing", |bench| {
        bench.iter(|| {
            black_box(b.step(step, &ctl).unwrap().len());
            step += 1;
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // criterion's HTML plots need a system font; our figures are drawn elsewhere
    config = Criterion::default().without_plots();
    targets = neuron_update, spike_delivery
}
criterion_main!(benches);
