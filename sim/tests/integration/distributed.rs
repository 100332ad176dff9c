//! The distributed backend (`neurotwin_sim::distributed`) without MPI: 1, 2 and 3 "ranks" as threads joined by
//! the in-process `ThreadExchange`, each updating its share of 64-neuron blocks (contiguous ranges, and
//! round-robin) and exchanging spikes every min-delay interval. Every rank must record exactly the spikes of one
//! plain `CpuBackend` — same steps, same neurons — and the same sampled and final V_m (gathered from the owners),
//! bit for bit. The engine samples V_m every 97 steps, so drains also happen earlier than the exchange interval.

use super::suite::*;

use std::sync::Arc;

use neurotwin_connectome::generators::{
    BrunelConfig, CubaConfig, FlyBrainConfig, GeneratedNetwork, Pd14Config, brunel_part, cuba_part, flybrain_part,
    potjans_diesmann_part,
};
use neurotwin_connectome::{GapMatrix, Share, SynapseMatrix};
use neurotwin_sim::delivery::Timing;
use neurotwin_sim::distributed::{DistributedBackend, Partition, ThreadExchange, exchange_interval};
use neurotwin_sim::*;

/// Runs `setup` on `size` ranks (threads) and returns each rank's outcome.
fn run_ranks(setup: &SimSetup, p: &PerturbationSchedule, size: usize, partition: Partition) -> Vec<Outcome> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ThreadExchange::group(size)
            .into_iter()
            .map(|x| {
                s.spawn(move || {
                    let mut b = DistributedBackend::with_partition(setup, x, partition).unwrap();
                    assert_eq!(b.spike_window(), exchange_interval(&setup.network));
                    outcome(setup, p, &mut b)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The single-process CPU outcome and, for each size, every rank's outcome must be identical.
fn check(
    label: &str,
    setup: &SimSetup,
    p: &PerturbationSchedule,
    sizes: &[usize],
    partitions: &[Partition],
    min_spikes: usize,
) {
    let mut cpu = CpuBackend::new(setup).unwrap();
    let a = outcome(setup, p, &mut cpu);
    assert!(a.steps.len() >= min_spikes, "{label}: network too quiet ({} spikes)", a.steps.len());
    for (&size, &partition) in sizes.iter().flat_map(|s| partitions.iter().map(move |p| (s, p))) {
        for (rank, b) in run_ranks(setup, p, size, partition).iter().enumerate() {
            let who = format!("{label}: rank {rank} of {size} ({partition:?})");
            assert_eq!(a.steps.len(), b.steps.len(), "{who}: spike counts differ from one process");
            if let Some(k) = (0..a.steps.len()).find(|&k| (a.steps[k], a.neurons[k]) != (b.steps[k], b.neurons[k])) {
                panic!(
                    "{who}: spike #{k} differs: one process ({}, n{}) vs ({}, n{})",
                    a.steps[k], a.neurons[k], b.steps[k], b.neurons[k]
                );
            }
            assert!(a.trace_bits == b.trace_bits, "{who}: sampled V_m differs from one process");
            assert!(a.v_bits == b.v_bits, "{who}: final V_m differs from one process");
        }
        eprintln!("{label}: {} spikes, identical on 1 process and {size} ranks ({partition:?})", a.steps.len());
    }
}

const BOTH: [Partition; 2] = [Partition::Contiguous, Partition::RoundRobin];

fn without_gaps(mut setup: SimSetup) -> SimSetup {
    let mut net = (*setup.network).clone();
    net.gap = GapMatrix::empty(net.n_neurons() as u32);
    setup.network = Arc::new(net);
    setup
}

#[test]
fn brunel_two_and_three_ranks_are_spike_identical() {
    let setup = brunel_setup();
    assert_eq!(exchange_interval(&setup.network), 15, "Brunel: D = 1.5 ms = 15 steps");
    check("brunel", &setup, &PerturbationSchedule::default(), &[1, 2, 3], &BOTH, 1000);
}

#[test]
fn cuba_with_heterogeneous_delays_is_spike_identical() {
    let setup = cuba_heterogeneous_delays();
    assert_eq!(exchange_interval(&setup.network), 3);
    check("cuba, delays 3..=18", &setup, &PerturbationSchedule::default(), &[2, 3], &BOTH, 1000);
}

/// CUBA (4000 lif_exp neurons, 63 blocks: the parallel update path) with delays of 3..=18 steps.
fn cuba_heterogeneous_delays() -> SimSetup {
    let mut setup = cuba_setup();
    let mut net = (*setup.network).clone();
    let n = net.n_neurons() as u32;
    let mut syn = net.chemical.synapses();
    for s in &mut syn {
        s.delay = 3 + ((s.pre * 7 + s.post * 13) % 16) as u16;
    }
    net.chemical = SynapseMatrix::from_synapses(n, n, syn).unwrap();
    setup.network = Arc::new(net);
    setup
}

/// Remote spikes join the spike queue late (at the exchange) and must reach their targets in the same steps as
/// through the delay ring, including segments due in the very step after the drain (delay = D, emitted at a
/// window's first step), with drains every D steps and earlier (state samples).
#[test]
fn ranks_with_the_spike_queue_equal_ranks_with_the_delay_ring() {
    let setup = cuba_heterogeneous_delays();
    let p = PerturbationSchedule::default();
    let mut cpu = CpuBackend::new(&setup).unwrap();
    let one = outcome(&setup, &p, &mut cpu);
    assert!(one.steps.len() > 1000, "{} spikes", one.steps.len());
    for timing in [None, Some(Timing::Ring), Some(Timing::Queue)] {
        let ranks: Vec<(Timing, Outcome)> = std::thread::scope(|s| {
            let handles: Vec<_> = ThreadExchange::group(3)
                .into_iter()
                .map(|x| {
                    let setup = &setup;
                    let p = &p;
                    s.spawn(move || {
                        let mut b = match timing {
                            None => DistributedBackend::new(setup, x).unwrap(),
                            Some(t) => DistributedBackend::with_delivery_timing(setup, x, t).unwrap(),
                        };
                        (b.delivery_strategy().timing, outcome(setup, p, &mut b))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (rank, (used, b)) in ranks.iter().enumerate() {
            // Without a choice, ranks queue their spikes, as one process does.
            assert_eq!(*used, timing.unwrap_or(Timing::Queue), "rank {rank}");
            assert!(
                (&one.steps, &one.neurons, &one.trace_bits, &one.v_bits)
                    == (&b.steps, &b.neurons, &b.trace_bits, &b.v_bits),
                "rank {rank} of 3 with {used:?}: spikes or V_m differ from one process"
            );
        }
    }
}

#[test]
fn random_networks_are_spike_identical() {
    // Dense f32 weights, three channels, delays 1..=15 (D = 1), spike trains, activation, DC and Poisson input,
    // a receptor block and silencing; gap junctions removed (refused by distributed runs).
    for kind in [Kind::LifExp, Kind::LifDelta, Kind::Izhikevich, Kind::Adex] {
        let (setup, p) = random_setup(kind);
        let setup = without_gaps(setup);
        let partitions = if kind == Kind::LifExp { &BOTH[..] } else { &[Partition::Contiguous][..] };
        check(&format!("random {kind:?}"), &setup, &p, &[2, 3], partitions, 200);
    }
}

/// Builds a backend on each of `size` ranks (threads) and returns each rank's error message, if any.
fn build_errors(setups: &[SimSetup]) -> Vec<Option<String>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ThreadExchange::group(setups.len())
            .into_iter()
            .zip(setups)
            .map(|(x, setup)| s.spawn(move || DistributedBackend::new(setup, x).err().map(|e| e.to_string())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn refuses_gap_junctions_graded_models_and_plasticity_on_several_ranks() {
    let (setup, _) = random_setup(Kind::LifExp);
    for err in build_errors(&[setup.clone(), setup]) {
        let err = err.expect("gap junctions must be refused");
        assert!(err.contains("rank 0 of 2: ") && err.contains("gap-junction"), "{err}");
    }
    let (setup, _) = random_setup(Kind::Graded);
    let setup = without_gaps(setup);
    for err in build_errors(&[setup.clone(), setup]) {
        let err = err.expect("graded refused");
        assert!(err.contains("graded"), "{err}");
    }
    // Plastic synapses are not split across processes: refused on every rank, with the way out.
    let plastic = super::suite::plastic_setup();
    for err in build_errors(&[plastic.clone(), plastic.clone()]) {
        let err = err.expect("plasticity refused");
        assert!(err.contains("plastic synapses") && err.contains("without mpirun"), "{err}");
    }
    // One rank is a plain CPU run: everything is allowed.
    let (setup, _) = random_setup(Kind::LifExp);
    assert!(DistributedBackend::new(&setup, ThreadExchange::group(1).pop().unwrap()).is_ok());
    // `mpirun -np 1` with plastic synapses is the plain CPU run, spike for spike (its scale leaves room for w_max).
    let mut one = DistributedBackend::new(&plastic, ThreadExchange::group(1).pop().unwrap()).unwrap();
    let mut cpu = CpuBackend::new(&plastic).unwrap();
    let a = super::suite::outcome(&plastic, &Default::default(), &mut one);
    let b = super::suite::outcome(&plastic, &Default::default(), &mut cpu);
    assert!(a.steps.len() > 1000 && a == b, "one-rank plastic run differs from the CPU backend's");
}

#[test]
fn advancing_past_the_window_is_an_error() {
    let setup = brunel_setup();
    let mut b = DistributedBackend::new(&setup, ThreadExchange::group(1).pop().unwrap()).unwrap();
    let control = StepControl::new(setup.network.receptors.len().max(1), setup.n_neurons());
    for step in 0..b.spike_window() as u64 {
        b.advance(step, &control).unwrap();
    }
    let err = b.advance(b.spike_window() as u64, &control).unwrap_err();
    assert!(err.to_string().contains("without drain_spikes"), "{err}");
    let mut n = 0;
    b.drain_spikes(&mut |_, _| n += 1).unwrap();
    assert_eq!(n, b.spike_window());
    let err = b.advance(100, &control).and_then(|_| b.advance(102, &control)).unwrap_err();
    assert!(err.to_string().contains("consecutive"), "{err}");
}

/// Runs each rank on its own share of a generated network (`part(share)`: only the synapses onto its targets,
/// as `neurotwin run` under mpirun builds it) and requires the spikes and V_m of one process on the whole
/// network, and each rank's synapse count to be its share's.
fn check_shares(
    label: &str,
    part: &(dyn Fn(&Share) -> GeneratedNetwork + Sync),
    seed: u64,
    steps: u64,
    sizes: &[usize],
) {
    let whole = SimSetup::from_generated(part(&Share::WHOLE), seed, steps).unwrap();
    let total = whole.network.chemical.n_synapses();
    let mut cpu = CpuBackend::new(&whole).unwrap();
    let p = &PerturbationSchedule::default();
    let a = outcome(&whole, p, &mut cpu);
    assert!(a.steps.len() >= 500, "{label}: network too quiet ({} spikes)", a.steps.len());
    for &size in sizes {
        let results: Vec<(Outcome, Vec<u64>, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = ThreadExchange::group(size)
                .into_iter()
                .enumerate()
                .map(|(rank, x)| {
                    s.spawn(move || {
                        let share = Share::new(rank, size).unwrap();
                        let setup = SimSetup::from_generated(part(&share), seed, steps).unwrap();
                        let held = setup.network.chemical.n_synapses();
                        let mut b = DistributedBackend::new(&setup, x).unwrap();
                        let per_rank = b.synapses_per_rank().to_vec();
                        (outcome(&setup, p, &mut b), per_rank, held)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (rank, (b, per_rank, held)) in results.iter().enumerate() {
            let who = format!("{label}: rank {rank} of {size}, own share");
            assert!(a.steps == b.steps && a.neurons == b.neurons, "{who}: spikes differ from one process");
            assert!(a.trace_bits == b.trace_bits && a.v_bits == b.v_bits, "{who}: V_m differs from one process");
            assert_eq!(per_rank.iter().sum::<u64>(), total, "{who}: the shares hold every synapse once");
            assert_eq!(per_rank[rank], *held, "{who}");
            // Neuron-count blocks of a network without structure along the index: each rank holds ≈ 1/size.
            let frac = *held as f64 / total as f64;
            assert!((frac - 1.0 / size as f64).abs() < 0.25 / size as f64, "{who}: holds {frac:.3} of the synapses");
        }
        eprintln!("{label}: {} spikes, identical on 1 process and {size} ranks holding their shares", a.steps.len());
    }
}

#[test]
fn ranks_holding_only_their_share_are_spike_identical() {
    check_shares(
        "brunel",
        &|s| brunel_part(&BrunelConfig { order: 200, ..Default::default() }, 3, DT, s).unwrap(),
        3,
        2000,
        &[2, 3],
    );
    check_shares("cuba", &|s| cuba_part(&CubaConfig::default(), 1, DT, s).unwrap(), 1, 2000, &[3]);
    let pd = Pd14Config { n_scaling: 0.03, k_scaling: 0.1, ..Default::default() };
    check_shares("pd14", &|s| potjans_diesmann_part(&pd, 5, DT, s).unwrap(), 5, 1500, &[2, 3]);
    let fly = FlyBrainConfig { scale: 0.02, ..Default::default() };
    check_shares("flybrain", &|s| flybrain_part(&fly, 7, DT, s).unwrap(), 7, 1500, &[3]);
}

/// A rank whose network was built for another share (or another process count) is refused on every rank with
/// the same message, and no rank waits forever.
#[test]
fn a_rank_with_the_wrong_share_stops_every_rank() {
    let cfg = BrunelConfig { order: 100, ..Default::default() };
    let setup = |share: Share| SimSetup::from_generated(brunel_part(&cfg, 3, DT, &share).unwrap(), 3, 100).unwrap();
    // Rank 1 holds rank 1 of 3's share in a group of 2.
    let errs = build_errors(&[setup(Share::new(0, 2).unwrap()), setup(Share::new(1, 3).unwrap())]);
    let first = errs[0].clone().expect("refused");
    assert!(first.contains("do not tile the network") && first.contains("built for another process count"), "{first}");
    assert_eq!(errs[1].as_deref(), Some(first.as_str()), "the same error on every rank");
    // A share in a single-process backend is refused too.
    let err = CpuBackend::new(&setup(Share::new(1, 2).unwrap())).err().expect("refused").to_string();
    assert!(err.contains("needs the whole network"), "{err}");
}
