//! The SONATA conformance cases, each run from its own config files against the reference simulator's spike report
//! (`expected_output/spikes.h5`, BioNet/NEURON with event-driven IntFire1 cells):
//! - `300_intfire`, the example circuit of AllenInstitute/sonata (per-type delays, `nsyns` per edge);
//! - `bmtk_intfire`, built and simulated with BMTK 1.2.0 + NEURON 9.0.2 by `scripts/make_bmtk_sim.py` (one edge
//!   row per synapse, per-synapse delays 1.0–3.0 ms, negative inhibitory weights, Poisson inputs from bmtk's
//!   generator, inline node sets, a simulation config naming its network).
//!
//! The models are the same (IntFire1 ≡ lif_delta with V_th = 1, reset 0, input ignored while refractory), but
//! the reference integrates exactly between events while we step on a 0.1 ms grid (input times rounded to the
//! grid, see `neurotwin_scenarios::sonata`). Bars: the per-population and per-cell-type rates within 1 %; the
//! per-cell spike counts correlate (r > 0.999); at least 99 % of the reference spikes are matched by one of ours
//! of the same cell within 0.05 ms (half a step: ours lie on the grid), and vice versa. Measured when written:
//! 4,320 spikes vs 4,322, rates −0.05 % (v1), all but two spikes matched.

use std::path::{Path, PathBuf};

use neurotwin_scenarios::BackendKind;
use neurotwin_scenarios::sonata::run_sonata;

fn circuit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sonata/300_intfire/config.json")
}

fn bmtk_circuit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sonata/bmtk_intfire/simulation_config.json")
}

/// (node id, time ms) of population `pop` in a SONATA spike file.
fn read_spikes(path: &Path, pop: &str) -> Vec<(u64, f64)> {
    let (ids, t) = neurotwin_sim::readback::read_sonata_spikes(path, pop).unwrap();
    ids.into_iter().zip(t).collect()
}

/// Fraction of `a`'s spikes with a spike of the same node in `b` within `tol` ms (each of `b` used once).
fn matched_fraction(a: &[(u64, f64)], b: &[(u64, f64)], n_nodes: usize, tol: f64) -> f64 {
    let mut by_node: Vec<Vec<(f64, bool)>> = vec![Vec::new(); n_nodes];
    for &(i, t) in b {
        by_node[i as usize].push((t, false));
    }
    by_node.iter_mut().for_each(|v| v.sort_by(|x, y| x.0.total_cmp(&y.0)));
    let mut hit = 0;
    for &(i, t) in a {
        if let Some(x) = by_node[i as usize].iter_mut().find(|x| !x.1 && (x.0 - t).abs() <= tol + 1e-9) {
            x.1 = true;
            hit += 1;
        }
    }
    hit as f64 / a.len().max(1) as f64
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

#[test]
fn intfire_300_matches_the_reference_simulator() {
    let out = tempfile::tempdir().unwrap();
    let (sim, result) = run_sonata(&circuit(), Some(out.path()), BackendKind::Cpu, false, false).unwrap();
    let ours = read_spikes(&sim.spikes_file, "v1");
    let reference = read_spikes(&circuit().parent().unwrap().join("expected_output/spikes.h5"), "v1");
    let n_v1 = 300;
    // Inputs were replayed completely.
    let lgn = sim.inputs.iter().find(|(n, _)| n == "LGN_spikes").unwrap().1;
    let tw = sim.inputs.iter().find(|(n, _)| n == "TW_spikes").unwrap().1;
    eprintln!("inputs: LGN {lgn:?}, TW {tw:?}");
    assert_eq!(lgn.events + lgn.merged + lgn.after_end, 2738);
    assert_eq!(tw.events + tw.merged + tw.after_end, 295);
    // Per population and per cell type (v1 nodes 0..240 excitatory, 240..300 inhibitory, see v1_nodes.h5).
    let secs = 3.0;
    let rate = |s: &[(u64, f64)], lo: u64, hi: u64| {
        s.iter().filter(|(i, _)| (lo..hi).contains(i)).count() as f64 / (hi - lo) as f64 / secs
    };
    let types = sim.run.record.rate_groups.clone();
    eprintln!("rate groups: {:?}", types.iter().map(|g| (&g.name, g.neurons.len())).collect::<Vec<_>>());
    for (label, lo, hi) in [("v1", 0, 300), ("v1:LIF_exc", 0, 240), ("v1:LIF_inh", 240, 300)] {
        let (a, b) = (rate(&ours, lo, hi), rate(&reference, lo, hi));
        eprintln!("{label}: ours {a:.3} Hz, reference {b:.3} Hz ({:+.2} %)", 100.0 * (a / b - 1.0));
        assert!((a / b - 1.0).abs() < 0.01, "{label}: rate {a:.3} Hz vs reference {b:.3} Hz");
    }
    let counts = |s: &[(u64, f64)]| {
        let mut c = vec![0.0; n_v1];
        s.iter().for_each(|&(i, _)| c[i as usize] += 1.0);
        c
    };
    let r = pearson(&counts(&ours), &counts(&reference));
    let f_ref = matched_fraction(&reference, &ours, n_v1, 0.05);
    let f_ours = matched_fraction(&ours, &reference, n_v1, 0.05);
    eprintln!(
        "spikes: ours {}, reference {}; per-cell count r = {r:.4}; matched within 0.05 ms: {:.2} % of reference, {:.2} % of ours; wall {:.2} s",
        ours.len(),
        reference.len(),
        100.0 * f_ref,
        100.0 * f_ours,
        result.summary.wall_s
    );
    assert!(r > 0.999, "per-cell spike counts r = {r}");
    assert!(f_ref > 0.99 && f_ours > 0.99, "matched {f_ref} / {f_ours}");
}

/// The BMTK-built network (see the module documentation): cortex 0..80 excitatory, 80..100 inhibitory, 2 s.
#[test]
fn bmtk_built_network_matches_bmtk_bionet() {
    let out = tempfile::tempdir().unwrap();
    let (sim, _) = run_sonata(&bmtk_circuit(), Some(out.path()), BackendKind::Cpu, false, false).unwrap();
    let ours = read_spikes(&sim.spikes_file, "cortex");
    let reference = read_spikes(&bmtk_circuit().parent().unwrap().join("expected_output/spikes.h5"), "cortex");
    let input = sim.inputs[0].1;
    // 12 Hz Poisson trains: one pair of spikes of one node falls into one 0.1 ms step and is merged (a neuron
    // spikes at most once per step) — the one input event BioNet delivers and we do not.
    assert_eq!((input.events, input.merged, input.after_end), (1464, 1, 0), "{input:?}");
    let rate = |s: &[(u64, f64)], lo: u64, hi: u64| {
        s.iter().filter(|(i, _)| (lo..hi).contains(i)).count() as f64 / (hi - lo) as f64 / 2.0
    };
    for (label, lo, hi, tol) in [("cortex", 0, 100, 0.01), ("exc", 0, 80, 0.01), ("inh", 80, 100, 0.03)] {
        let (a, b) = (rate(&ours, lo, hi), rate(&reference, lo, hi));
        eprintln!("{label}: ours {a:.3} Hz, BMTK/BioNet {b:.3} Hz ({:+.2} %)", 100.0 * (a / b - 1.0));
        assert!((a / b - 1.0).abs() < tol, "{label}: rate {a:.3} Hz vs BMTK {b:.3} Hz");
    }
    // Grid effects are larger here than on 300_intfire: inhibitory cells have τ = 7 ms (a 0.05 ms shift of an
    // input changes m by up to 0.7 %), and an input within 0.05 ms of the end of a 3 ms refractory period falls on
    // the other side of it. Measured when written: 94.7 % of BMTK's spikes matched within 0.05 ms, 97.5 % within
    // 1 ms; rates −0.35 % (all), −0.10 % (exc), −2.8 % (inh).
    for (tol, bar) in [(0.05, 0.93), (1.0, 0.97)] {
        let f_ref = matched_fraction(&reference, &ours, 100, tol);
        let f_ours = matched_fraction(&ours, &reference, 100, tol);
        eprintln!(
            "spikes: ours {}, BMTK {}; matched within {tol} ms: {:.2} % of BMTK's, {:.2} % of ours",
            ours.len(),
            reference.len(),
            100.0 * f_ref,
            100.0 * f_ours
        );
        assert!(f_ref > bar && f_ours > bar, "within {tol} ms: matched {f_ref} / {f_ours}");
    }
}

/// The host build of the CUDA kernels (with the `spike_train_input` kernel) gives the CPU backend's spikes on
/// the real circuit.
#[test]
fn intfire_300_cuda_host_equals_cpu() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (_, cpu) = run_sonata(&circuit(), Some(a.path()), BackendKind::Cpu, false, false).unwrap();
    let (_, host) = run_sonata(&circuit(), Some(b.path()), BackendKind::CudaHost, false, false).unwrap();
    assert!(cpu.recording.spike_steps.len() > 7000, "inputs and v1 spikes: {}", cpu.recording.spike_steps.len());
    assert_eq!(cpu.recording.spike_steps, host.recording.spike_steps);
    assert_eq!(cpu.recording.spike_neurons, host.recording.spike_neurons);
}

/// Malformed simulation configs give errors naming the file and the fix.
#[test]
fn malformed_simulation_configs_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = circuit().parent().unwrap().to_path_buf();
    let write = |name: &str, sim: serde_json::Value| -> PathBuf {
        let sim_path = dir.path().join(format!("{name}_sim.json"));
        std::fs::write(&sim_path, sim.to_string()).unwrap();
        let top = dir.path().join(format!("{name}.json"));
        let cfg = serde_json::json!({"network": src.join("circuit_config.json"), "simulation": sim_path});
        std::fs::write(&top, cfg.to_string()).unwrap();
        top
    };
    let input = |file: &str, set: &str| {
        serde_json::json!({"run": {"tstop": 100.0, "dt": 0.1},
            "inputs": {"x": {"input_type": "spikes", "module": "h5", "input_file": file, "node_set": set}}})
    };
    let lgn = src.join("inputs/lgn_spikes.h5");
    let cases: Vec<(PathBuf, &str)> = vec![
        (write("no_tstop", serde_json::json!({"run": {"dt": 0.1}})), "run.tstop"),
        (write("neg_dt", serde_json::json!({"run": {"tstop": 10.0, "dt": -0.1}})), "must be positive"),
        (write("unknown_set", input(lgn.to_str().unwrap(), "nowhere")), "node set `nowhere`"),
        (write("missing_file", input("/nonexistent/spikes.h5", "lgn")), "cannot open spike file"),
        // tw has 30 nodes; LGN's spike file names nodes beyond that.
        (write("ids_out_of_range", input(lgn.to_str().unwrap(), "tw")), "ids 0..30"),
        (
            write(
                "current",
                serde_json::json!({"run": {"tstop": 10.0}, "inputs": {"c": {"input_type": "current_clamp"}}}),
            ),
            "not supported",
        ),
    ];
    for (path, needle) in cases {
        let e = match run_sonata(&path, Some(dir.path()), BackendKind::Cpu, false, false) {
            Ok(_) => panic!("{}: accepted", path.display()),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(needle), "{}: `{e}` lacks `{needle}`", path.display());
        assert!(e.contains(".json") || e.contains(".h5"), "error names no file: {e}");
    }
}
