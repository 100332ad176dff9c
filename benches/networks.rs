//! Full-size benchmark networks: the simulate phase of 1 s of biological time, after checking that the
//! mean rate is within 5 % of the peers' (NEST 3.10 / Brian2 2.11 on this machine, 2026-11-23:
//! ../shared/peers/results/summary-2026-11-23.md). Run: `cargo bench --bench networks`.
//! Set `NEUROTWIN_BENCH_PD14=1` to add the Potjans–Diesmann microcircuit at 10 % of the neurons.

use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use neurotwin_scenarios::RunRequest;
use neurotwin_scenarios::runner::{PreparedScenario, prepare_all, simulate, trial_seed};

fn prepared(file: &str) -> PreparedScenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(file);
    prepare_all(&RunRequest { scenario: path, ..Default::default() }).expect("scenario")
}

/// Runs three trials, checks the mean rate against the peer reference, then lets criterion time the simulation.
fn bench_network(c: &mut Criterion, file: &str, label: &str, peer_hz: f64) {
    let t0 = Instant::now();
    let p = prepared(file);
    let build_s = t0.elapsed().as_secs_f64();
    let run = &p.points[0].run;
    // mean over 3 trials (same network, different initial states and input seeds)
    let rate = (0..3)
        .map(|t| simulate(run, trial_seed(run.setup.seed, t), false, label).expect("simulate").0.mean_rate_hz(&[]))
        .sum::<f64>()
        / 3.0;
    let off = (rate - peer_hz) / peer_hz;
    eprintln!(
        "{label}: {} neurons, {} synapses ({:.2} B/syn), build {build_s:.2} s, rate {rate:.3} Hz vs peers {peer_hz} Hz ({:+.1} %)",
        run.setup.n_neurons(),
        run.setup.network.chemical.n_synapses(),
        run.setup.network.chemical.bytes_per_synapse(),
        off * 100.0
    );
    assert!(off.abs() <= 0.05, "{label}: rate {rate} Hz is more than 5 % from the peers' {peer_hz} Hz");
    let mut g = c.benchmark_group("networks");
    g.sample_size(10);
    g.bench_function(label, |b| b.iter(|| simulate(run, run.setup.seed, false, label).expect("simulate")));
    g.finish();
}

fn networks(c: &mut Criterion) {
    // NEST 5.13–5.18, Brian2 5.10 (4k, fixed in-degree)
    bench_network(c, "cuba.toml", "cuba_4k_1s", 5.15);
    // NEST 31.87, Brian2 31.65 (order 2500)
    bench_network(c, "brunel.toml", "brunel_12.5k_1s", 31.8);
    if std::env::var_os("NEUROTWIN_BENCH_PD14").is_some() {
        // NEST 3.76, Brian2 3.75 (N = 0.1, K = 1)
        bench_network(c, "pd14.toml", "pd14_0.1_1s", 3.76);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = networks
}
criterion_main!(benches);
