//! The distributed backend (`neurotwin_sim::distributed`) without MPI: 1, 2 and 3 "ranks" as threads joined by
//! the in-process `ThreadExchange`, each updating its share of 64-neuron blocks (contiguous ranges, and
//! round-robin) and exchanging spikes every min-delay interval. Every rank must record exactly the spikes of one
//! plain `CpuBackend` — same steps, same neurons — and the same sampled and final V_m (gathered from the owners),
//! bit for bit. The engine samples V_m every 97 steps, so drains also happen earlier than the exchange interval.

use super::suite::*;

use std::sync::Arc;

use neurotwin_connectome::{GapMatrix, SynapseMatrix};
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
    // CUBA (4000 lif_exp neurons, 63 blocks: the parallel update path) with delays of 3..=18 steps.
    let mut setup = cuba_setup();
    let mut net = (*setup.network).clone();
    let n = net.n_neurons() as u32;
    let mut syn = net.chemical.synapses();
    for s in &mut syn {
        s.delay = 3 + ((s.pre * 7 + s.post * 13) % 16) as u16;
    }
    net.chemical = SynapseMatrix::from_synapses(n, n, syn).unwrap();
    setup.network = Arc::new(net);
    assert_eq!(exchange_interval(&setup.network), 3);
    check("cuba, delays 3..=18", &setup, &PerturbationSchedule::default(), &[2, 3], &BOTH, 1000);
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

#[test]
fn refuses_gap_junctions_and_graded_models_on_several_ranks() {
    let mut xs = ThreadExchange::group(2).into_iter();
    let (setup, _) = random_setup(Kind::LifExp);
    let err = DistributedBackend::new(&setup, xs.next().unwrap()).err().expect("gap junctions must be refused");
    assert!(err.to_string().contains("gap-junction"), "{err}");
    let (setup, _) = random_setup(Kind::Graded);
    let err = DistributedBackend::new(&without_gaps(setup), xs.next().unwrap()).err().expect("graded refused");
    assert!(err.to_string().contains("graded"), "{err}");
    // One rank is a plain CPU run: everything is allowed.
    let (setup, _) = random_setup(Kind::LifExp);
    assert!(DistributedBackend::new(&setup, ThreadExchange::group(1).pop().unwrap()).is_ok());
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
