//! `RunOptions::profile` (`neurotwin run --profile`): profiling changes no result, the phases account for the
//! whole step loop, and work is attributed to the phase that does it. The checks are structural (a phase with no
//! work is exactly zero, one with work is positive, the parts sum to the whole), never a speed.

use super::suite::*;

use neurotwin_connectome::generators::{brunel, cuba};
use neurotwin_sim::distributed::{DistributedBackend, ThreadExchange};
use neurotwin_sim::host_kernels::HostKernelBackend;
use neurotwin_sim::*;

fn brunel_short() -> SimSetup {
    let cfg = brunel::BrunelConfig { order: 200, ..Default::default() };
    generated_setup(brunel(&cfg, 3, DT).unwrap(), 3, 600)
}

fn cuba_short() -> SimSetup {
    generated_setup(cuba(&Default::default(), 1, DT).unwrap(), 1, 300)
}

fn record(setup: &SimSetup, backend: &mut dyn Backend, profile: bool) -> SimRecording {
    let opts = RunOptions { profile, ..Default::default() };
    run(setup, &PerturbationSchedule::default(), &RecordSpec::default(), backend, &opts).unwrap()
}

/// Every phase is finite and ≥ 0, and they add up to the loop (to rounding: the clocks are read back to back).
fn check_accounts(label: &str, p: &PhaseTimes) {
    let all = [
        p.control_s,
        p.update_s,
        p.inputs_cpu_s,
        p.compaction_s,
        p.delivery_s,
        p.exchange_s,
        p.backend_step_s,
        p.recording_s,
        p.other_s,
        p.total_s,
    ];
    assert!(all.iter().all(|x| x.is_finite() && *x >= 0.0), "{label}: {p:?}");
    let sum: f64 = p.phases().iter().map(|(_, s)| s).sum();
    assert!((sum - p.total_s).abs() <= 1e-3 * p.total_s + 1e-6, "{label}: phases sum to {sum}, loop {}", p.total_s);
    assert!(p.total_s > 0.0, "{label}: {p:?}");
}

#[test]
fn profiling_changes_no_spike_and_splits_the_cpu_step() {
    let setup = brunel_short();
    let plain = record(&setup, &mut CpuBackend::new(&setup).unwrap(), false);
    let timed = record(&setup, &mut CpuBackend::new(&setup).unwrap(), true);
    assert!(plain.phases.is_none());
    assert!(plain.spike_steps.len() > 1000, "Brunel must spike: {}", plain.spike_steps.len());
    assert_eq!(plain.spike_steps, timed.spike_steps);
    assert_eq!(plain.spike_neurons, timed.spike_neurons);
    let p = timed.phases.expect("profiled run has phases");
    check_accounts("brunel", &p);
    // Brunel: Poisson background (external input) and spikes to deliver; one process, a CPU step split in parts.
    assert!(p.update_s > 0.0 && p.delivery_s > 0.0 && p.compaction_s > 0.0 && p.inputs_cpu_s > 0.0, "{p:?}");
    assert_eq!((p.exchange_s, p.backend_step_s), (0.0, 0.0), "{p:?}");
}

#[test]
fn a_network_without_external_input_spends_no_time_on_it() {
    // CUBA has no stimulus, spike train or gap junction: external-input time is exactly zero, not clock noise.
    let setup = cuba_short();
    let p = record(&setup, &mut CpuBackend::new(&setup).unwrap(), true).phases.unwrap();
    check_accounts("cuba", &p);
    assert_eq!(p.inputs_cpu_s, 0.0, "{p:?}");
    assert!(p.update_s > 0.0, "{p:?}");
}

#[test]
fn kernel_backends_report_their_step_whole() {
    let setup = cuba_short();
    let p = record(&setup, &mut HostKernelBackend::new(&setup).unwrap(), true).phases.unwrap();
    check_accounts("cuda-host", &p);
    assert!(p.backend_step_s > 0.0, "{p:?}");
    assert_eq!((p.update_s, p.compaction_s, p.delivery_s, p.inputs_cpu_s), (0.0, 0.0, 0.0, 0.0), "{p:?}");
}

#[test]
fn distributed_ranks_report_the_exchange_and_keep_their_spikes() {
    let setup = brunel_short();
    let one = record(&setup, &mut CpuBackend::new(&setup).unwrap(), false);
    let ranks: Vec<SimRecording> = std::thread::scope(|s| {
        let handles: Vec<_> = ThreadExchange::group(2)
            .into_iter()
            .map(|x| {
                let setup = &setup;
                s.spawn(move || record(setup, &mut DistributedBackend::new(setup, x).unwrap(), true))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (rank, r) in ranks.iter().enumerate() {
        assert_eq!(r.spike_steps, one.spike_steps, "rank {rank}");
        assert_eq!(r.spike_neurons, one.spike_neurons, "rank {rank}");
        let p = r.phases.as_ref().unwrap();
        check_accounts(&format!("rank {rank}"), p);
        assert!(p.exchange_s > 0.0 && p.delivery_s > 0.0 && p.update_s > 0.0, "rank {rank}: {p:?}");
    }
}

/// The CPU backend says how it updates: CUBA 4000 has 62 full blocks whose only input is the delay ring (the
/// fused pass) and one partial block, too little work to pay for a parallel step; a Poisson stimulus on
/// neurons 700..1500 takes the fused pass with the drive in the 12 blocks inside the range (11..=22) and puts
/// the 2 blocks it cuts (10 and 23) on the general path; Brunel of order 200 (lif_delta, one Poisson drive per
/// population) has 14 full blocks on the fused pass with their drive, the block that straddles the 800
/// excitatory and 200 inhibitory neurons (two drives) and a partial one on the general path. The profile carries
/// the same words.
#[test]
fn the_cpu_backend_states_its_update_strategy() {
    let cuba = cuba_setup();
    let s = CpuBackend::new(&cuba).unwrap().update_strategy();
    assert!(s.contains("62 of 63 blocks on the fused") && s.contains("on one thread"), "{s}");
    let (mixed, _, _) = cuba_mixed_paths_setup();
    let s = CpuBackend::new(&mixed).unwrap().update_strategy();
    assert!(
        s.contains("60 of 63 blocks on the fused ring-to-spikes pass (12 of them with their Poisson drive)"),
        "{s}"
    );
    let brunel = brunel_short();
    let s = CpuBackend::new(&brunel).unwrap().update_strategy();
    assert!(
        s.contains("14 of 16 blocks on the fused ring-to-spikes pass (14 of them with their Poisson drive)"),
        "{s}"
    );
    let timed = record(&cuba_short(), &mut CpuBackend::new(&cuba_short()).unwrap(), true);
    let p = timed.phases.expect("profiled");
    assert!(p.strategy.starts_with("update: 62 of 63 blocks"), "{}", p.strategy);
}
