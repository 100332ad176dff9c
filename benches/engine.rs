//! Micro-benchmarks of the CPU backend: the two per-step kernels (neuron update, spike delivery) and whole steps
//! of CUBA 100,000 with the built-in `lif_exp` against the same neuron written as equations (native code and the
//! interpreter). Run: `cargo bench --bench engine`.

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

/// Whole steps (update and delivery, 10 steps = 1 ms an iteration, the run continuing across iterations) of CUBA
/// 100,000 (k = 80, `scenarios/cuba.toml` at 25× the size): the built-in `lif_exp` against NEST's `iaf_psc_exp`
/// written as equations (`scenarios/cuba_equations.toml`), run by its native code and by the interpreter. All three
/// give the same spikes, so they do the same work. Issue 18's bar: native within 20 % of the built-in.
fn equation_model(c: &mut Criterion) {
    use neurotwin_connectome::generators::{CubaConfig, cuba};
    use neurotwin_sim::native_models::EngineChoice;
    let n = 100_000u32;
    let equations = neurotwin_models::testing::cuba_iaf_psc_exp_equations();
    let setup = |eq: bool| {
        let mut g = cuba(&CubaConfig { n, k: 80, ..Default::default() }, 1, 0.1).unwrap();
        if eq {
            g.populations.iter_mut().for_each(|p| p.params = NeuronParams::Equations(equations.clone()));
        }
        SimSetup::from_generated(g, 1, u64::MAX).unwrap()
    };
    let (built_in, eq) = (setup(false), setup(true));
    let mut g = c.benchmark_group("cuba_100k_1ms");
    g.throughput(Throughput::Elements(10 * n as u64));
    g.sample_size(30);
    let cases = [
        ("lif_exp_built_in", &built_in, EngineChoice::Interpreter),
        ("equations_native", &eq, EngineChoice::Native),
        ("equations_interpreter", &eq, EngineChoice::Interpreter),
    ];
    for (label, s, engine) in cases {
        let mut b = CpuBackend::with_equation_engine(s, engine).unwrap();
        let ctl = StepControl::new(1, n as usize);
        let mut step = 0;
        g.bench_function(label, |bench| {
            bench.iter(|| {
                for _ in 0..10 {
                    black_box(b.step(step, &ctl).unwrap().len());
                    step += 1;
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // criterion's HTML plots need a system font; our figures are drawn elsewhere
    config = Criterion::default().without_plots();
    targets = neuron_update, spike_delivery, equation_model
}
criterion_main!(benches);
