//! Generated benchmark networks reproduce the mean rates of the peer simulators (NEST 3.10, Brian2
//! 2.11) run on the same parameters. References measured on this project's machine with
//! ../shared/peers (2026-11-23):
//! - CUBA 4000 neurons, K = 80: NEST 5.13–5.18 Hz, Brian2 5.10 Hz (peers/results/summary-2026-11-23.md);
//! - Brunel 2000, order 500 (N = 2500, CE = 1000, CI = 250): NEST 32.42 / 32.73 / 32.48 Hz for seeds
//!   1–3 (`run_bench.sh brunel_nest_0.2 brunel_nest.py --scale 0.2 --threads 1 --seed S`).
//!
//! Full sizes are checked in `benches/networks.rs`.

use std::path::PathBuf;

use neurotwin_scenarios::RunRequest;
use neurotwin_scenarios::runner::{prepare_all, simulate, trial_seed};

/// Mean rate over `trials` trials (same network, different initial state and input seeds).
fn mean_rate(scenario: &str, trials: u32) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("s.toml");
    std::fs::write(&path, scenario).unwrap();
    let prepared = prepare_all(&RunRequest { scenario: path, ..Default::default() }).unwrap();
    let run = &prepared.points[0].run;
    (0..trials)
        .map(|t| {
            let (rec, _, _) = simulate(run, trial_seed(run.setup.seed, t), false, "test").unwrap();
            rec.mean_rate_hz(&[])
        })
        .collect()
}

fn within(rates: &[f64], reference: f64, tolerance: f64) {
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let rel = (mean - reference).abs() / reference;
    assert!(
        rel <= tolerance,
        "mean rate {mean:.3} Hz (trials {rates:?}) vs peer {reference} Hz: {:.1} % off",
        rel * 100.0
    );
}

#[test]
fn cuba_4k_matches_nest_and_brian2() {
    let rates = mean_rate(
        r#"name = "cuba"
[network]
generator = { kind = "cuba", n = 4000, k = 80 }
[run]
duration_ms = 1000.0
seed = 1
"#,
        3,
    );
    // peers: NEST 5.13–5.18, Brian2 5.10 → reference 5.15 Hz, 5 %
    within(&rates, 5.15, 0.05);
}

#[test]
fn brunel_order_500_matches_nest() {
    let rates = mean_rate(
        r#"name = "brunel"
[network]
generator = { kind = "brunel", order = 500 }
[run]
duration_ms = 1000.0
seed = 1
"#,
        2,
    );
    // NEST seeds 1–3: 32.42, 32.73, 32.48 → 32.54 Hz, 5 %
    within(&rates, 32.54, 0.05);
}
