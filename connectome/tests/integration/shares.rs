//! One process's share of a generated network (`*_part`): exactly the whole network's synapses onto its
//! targets, in the same rows and order, with the other fields unchanged; the shares of all ranks together hold
//! every synapse once.

use neurotwin_connectome::generators::{
    BrunelConfig, CubaConfig, CubaConnectivity, FlyBrainConfig, GeneratedNetwork, Pd14Config, brunel, brunel_part,
    cuba, cuba_part, flybrain, flybrain_part, potjans_diesmann, potjans_diesmann_part,
};
use neurotwin_connectome::{Share, Synapse};

type Build = Box<dyn Fn(&Share) -> GeneratedNetwork>;

fn check(label: &str, whole: GeneratedNetwork, part: Build) {
    let all = whole.network.chemical.synapses();
    let n = whole.n_neurons();
    assert!(all.len() > 1000, "{label}: too few synapses to test ({})", all.len());
    for size in [2usize, 3, 4] {
        let (mut held, mut next) = (0, 0);
        for rank in 0..size {
            let share = Share::new(rank, size).unwrap();
            let g = part(&share);
            // The ranks' targets tile the network in block-aligned ranges.
            let keep = g.network.held_targets.clone().expect("a share");
            assert_eq!(keep.start, next, "{label}: rank {rank} of {size}");
            assert!(keep.start.is_multiple_of(64), "{label}");
            next = keep.end;
            let want: Vec<Synapse> = all.iter().copied().filter(|s| keep.contains(&s.post)).collect();
            let got = g.network.chemical.synapses();
            assert!(
                got == want,
                "{label}: rank {rank} of {size}: {} synapses, the whole network has {} onto {keep:?}",
                got.len(),
                want.len()
            );
            assert_eq!(g.network.chemical.check(), Ok(()), "{label}");
            assert_eq!(g.network.neurons, whole.network.neurons, "{label}");
            assert_eq!(g.populations, whole.populations, "{label}");
            assert_eq!(g.background, whole.background, "{label}");
            assert_eq!(g.network.report.synapses, want.len() as u64, "{label}: the report counts the held synapses");
            held += got.len();
        }
        assert_eq!(next, n, "{label}: {size} ranks together");
        assert_eq!(held, all.len(), "{label}: {size} ranks together");
    }
    assert_eq!(whole.network.held_targets, None);
}

#[test]
fn each_generator_builds_exactly_its_share() {
    let cuba_cfg = CubaConfig { n: 1000, k: 50, ..Default::default() };
    check("cuba", cuba(&cuba_cfg, 3, 0.1).unwrap(), {
        let c = cuba_cfg.clone();
        Box::new(move |s| cuba_part(&c, 3, 0.1, s).unwrap())
    });
    let bern = CubaConfig { connectivity: CubaConnectivity::Bernoulli, ..cuba_cfg };
    check("cuba bernoulli", cuba(&bern, 4, 0.1).unwrap(), Box::new(move |s| cuba_part(&bern, 4, 0.1, s).unwrap()));
    let br = BrunelConfig { order: 100, ..Default::default() };
    check("brunel", brunel(&br, 5, 0.1).unwrap(), Box::new(move |s| brunel_part(&br, 5, 0.1, s).unwrap()));
    // Dense weights (normal), many delays, rows longer than one batch of `from_rows_part`.
    let pd = Pd14Config { n_scaling: 0.05, k_scaling: 0.05, ..Default::default() };
    check(
        "pd14",
        potjans_diesmann(&pd, 6, 0.1).unwrap(),
        Box::new(move |s| potjans_diesmann_part(&pd, 6, 0.1, s).unwrap()),
    );
    let fly = FlyBrainConfig { scale: 0.02, ..Default::default() };
    check("flybrain", flybrain(&fly, 7, 0.1).unwrap(), Box::new(move |s| flybrain_part(&fly, 7, 0.1, s).unwrap()));
}

/// A compiled whole network cut to shares (`keep_share`, the importers' path) holds exactly the whole network's
/// synapses onto each share, balanced on the counted synapses (PD14's populations differ 4.6× in in-degree: equal
/// neuron counts would not do); the generator's split on expected in-degrees is balanced too. Whole-network
/// consumers refuse a share.
#[test]
fn shares_are_balanced_on_synapses_and_writers_refuse_them() {
    let cfg = Pd14Config { n_scaling: 0.05, k_scaling: 0.1, ..Default::default() };
    let whole = potjans_diesmann(&cfg, 8, 0.1).unwrap();
    let total = whole.network.chemical.n_synapses() as f64;
    let size = 4;
    let mut cut = whole.network.clone();
    for rank in 0..size {
        let share = Share::new(rank, size).unwrap();
        cut = whole.network.clone();
        cut.keep_share(&share).unwrap();
        let keep = cut.held_targets.clone().unwrap();
        let want: Vec<Synapse> =
            whole.network.chemical.synapses().into_iter().filter(|s| keep.contains(&s.post)).collect();
        assert!(cut.chemical.synapses() == want, "rank {rank}: keep_share holds other synapses");
        let part = potjans_diesmann_part(&cfg, 8, 0.1, &share).unwrap();
        for (what, held) in [("counted", want.len() as f64), ("expected", part.network.chemical.n_synapses() as f64)] {
            let frac = held * size as f64 / total;
            assert!(
                (frac - 1.0).abs() < 0.05,
                "rank {rank} of {size} ({what} in-degrees): {frac:.3} of an equal share"
            );
        }
        // Equal neuron counts would be far off.
        let naive = share.targets(whole.n_neurons());
        let naive_frac =
            whole.network.chemical.targets.iter().filter(|t| naive.contains(t)).count() as f64 * size as f64 / total;
        if rank == 0 {
            assert!((naive_frac - 1.0).abs() > 0.2, "equal neuron counts: {naive_frac:.3} of an equal share");
        }
    }
    // Cutting again changes nothing.
    let again = cut.clone();
    cut.keep_share(&Share::new(size - 1, size).unwrap()).unwrap();
    assert!(cut == again);
    let dir = tempfile::tempdir().unwrap();
    let err = neurotwin_connectome::write_compiled(dir.path().join("x.h5"), &cut).unwrap_err().to_string();
    assert!(err.contains("needs the whole network") && err.contains("one MPI rank's share"), "{err}");
    assert!(!dir.path().join("x.h5").exists());
}
