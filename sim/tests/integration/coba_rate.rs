//! The COBA benchmark (conductance synapses, `lif_cond_exp`) against its peers' measured rate.

use neurotwin_connectome::generators::{CobaConfig, coba};
use neurotwin_sim::*;

/// COBA 4000 for 1 s on seeds 1–3 (network and initial state): the mean rate lies within 3 % of the peers'
/// measured mean (`CobaConfig::expected_rate_hz`: NEST 3.10 `iaf_cond_exp` and Brian2 2.11 on the same
/// network, 10 seeds each), and every seed within 8 % (the peers' own seed-to-seed spread is ±2 %).
#[test]
fn coba_4000_fires_at_the_peers_rate() {
    let (expected, _) = CobaConfig::default().expected_rate_hz(0.1).unwrap();
    let steps = 10_000;
    let rates: Vec<f64> = (1..=3)
        .map(|seed| {
            let g = coba(&CobaConfig::default(), seed, 0.1).unwrap();
            let n = g.network.n_neurons() as f64;
            let setup = SimSetup::from_generated(g, seed, steps).unwrap();
            let mut b = CpuBackend::new(&setup).unwrap();
            let rec = run(&setup, &Default::default(), &Default::default(), &mut b, &Default::default()).unwrap();
            rec.spike_steps.len() as f64 / n
        })
        .collect();
    let mean = rates.iter().sum::<f64>() / 3.0;
    assert!((mean / expected - 1.0).abs() < 0.03, "mean {mean} Hz vs peers {expected} Hz ({rates:?})");
    for r in &rates {
        assert!((r / expected - 1.0).abs() < 0.08, "{r} Hz vs peers {expected} Hz ({rates:?})");
    }
}
