//! The generated fly brain: degree statistics against the configured FlyWire targets, determinism,
//! matrix invariants and configuration errors.

use neurotwin_connectome::SynapseMatrix;
use neurotwin_connectome::generators::flybrain::FLY_POPULATIONS;
use neurotwin_connectome::generators::{EXC, FlyBrainConfig, GeneratedNetwork, INH, flybrain};
use neurotwin_connectome::matrix::Weights;

fn small(scale: f64) -> FlyBrainConfig {
    FlyBrainConfig { scale, ..FlyBrainConfig::default() }
}

/// Degree and count statistics of a generated network.
struct Stats {
    n: u32,
    connections: u64,
    synapses: f64,
    min_count: f64,
    mean_in: f64,
    max_in: u32,
    max_out: u32,
    local: f64,
}

fn stats(g: &GeneratedNetwork, w: f64) -> Stats {
    let m = &g.network.chemical;
    let n = m.n_pre;
    let mut indeg = vec![0u32; n as usize];
    let (mut synapses, mut min_count, mut max_out, mut local) = (0.0, f64::INFINITY, 0u32, 0u64);
    for pre in 0..n {
        let mut out = 0;
        for seg in m.row(pre) {
            for (k, &t) in seg.targets.iter().enumerate() {
                let count = (seg.weights.get(k) as f64 / w).abs();
                assert_eq!(count, count.round(), "weight = integer count × weight per synapse");
                synapses += count;
                min_count = min_count.min(count);
                indeg[t as usize] += 1;
                out += 1;
                local += (g.network.neurons[t as usize].region == g.network.neurons[pre as usize].region) as u64;
            }
        }
        max_out = max_out.max(out);
    }
    let connections = m.n_synapses();
    Stats {
        n,
        connections,
        synapses,
        min_count,
        mean_in: connections as f64 / n as f64,
        max_in: *indeg.iter().max().unwrap(),
        max_out,
        local: local as f64 / connections as f64,
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b
}

/// At scale 0.01 (1,393 neurons): mean out-degree within 10 % of 108.4 (the sample mean of 1,393 lognormal
/// degrees with σ = 1 has a relative s.d. of ≈ 3.5 %), synapses per connection within 3 % of 3.61 and
/// never below the minimum, transmitter fractions to ±1 neuron, a heavy in-degree tail (max ≥ 5 × mean),
/// exact integer-count weights with the right signs, and a table-encoded matrix of < 8 bytes per
/// connection.
#[test]
fn scale_001_matches_the_configured_statistics() {
    let cfg = small(0.01);
    let g = flybrain(&cfg, 7, 0.1).unwrap();
    let s = stats(&g, cfg.weight_per_synapse_pa);
    assert_eq!(s.n, 1393);
    let out = s.connections as f64 / s.n as f64;
    println!(
        "scale 0.01: {} neurons, {} connections (mean out-degree {out:.1}, target {:.1}), {:.0} synapses \
         ({:.3}/connection, target {:.3}), max in-degree {} (mean {:.1}), max out-degree {}, local {:.3}",
        s.n,
        s.connections,
        cfg.mean_out_degree(),
        s.synapses,
        s.synapses / s.connections as f64,
        cfg.mean_synapses_per_connection(),
        s.max_in,
        s.mean_in,
        s.max_out,
        s.local
    );
    assert!(rel(out, cfg.mean_out_degree()) < 0.10, "mean out-degree {out}");
    assert!(rel(s.synapses / s.connections as f64, cfg.mean_synapses_per_connection()) < 0.03);
    assert!(s.min_count >= cfg.min_synapses_per_connection as f64);
    assert!(s.max_in as f64 >= 5.0 * s.mean_in, "max in-degree {} vs mean {}", s.max_in, s.mean_in);
    assert!(s.max_out as f64 >= 5.0 * out);
    // transmitter fractions and signs
    let fr = [cfg.frac_ach, cfg.frac_gaba, cfg.frac_glu, cfg.frac_modulatory];
    for ((p, f), (name, receptor)) in g.populations.iter().zip(fr).zip(FLY_POPULATIONS) {
        assert_eq!(p.name, name);
        assert!((p.len() as f64 - f * s.n as f64).abs() <= 1.0, "{name}: {} neurons", p.len());
        for pre in p.range.clone() {
            for seg in g.network.chemical.row(pre) {
                assert_eq!(seg.receptor, receptor);
                let positive = (0..seg.targets.len()).all(|k| seg.weights.get(k) > 0.0);
                assert_eq!(positive, receptor == EXC);
                assert!(seg.targets.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicate connections");
                assert!(!seg.targets.contains(&pre), "no autapses");
            }
        }
    }
    assert_eq!(g.network.receptors[INH as usize].name, "inh");
    let m = &g.network.chemical;
    m.check().unwrap();
    assert!(matches!(m.weights, Weights::Table { .. }));
    assert!(m.bytes_per_synapse() < 8.0, "{}", m.bytes_per_synapse());
    assert_eq!(m.max_delay(), 18);
}

/// The direct CSR construction equals what `SynapseMatrix::from_synapses` builds from the same synapses.
#[test]
fn direct_csr_equals_from_synapses() {
    let g = flybrain(&small(0.005), 3, 0.1).unwrap();
    let m = &g.network.chemical;
    let again = SynapseMatrix::from_synapses(m.n_pre, m.n_post, m.synapses()).unwrap();
    assert_eq!(&again, m);
}

/// The Codex-thresholded preset: every connection has ≥ 5 synapses, 12.65 on average (±3 %).
#[test]
fn thresholded_preset() {
    let cfg = FlyBrainConfig { scale: 0.01, ..FlyBrainConfig::thresholded_v783() };
    let g = flybrain(&cfg, 1, 0.1).unwrap();
    let s = stats(&g, cfg.weight_per_synapse_pa);
    assert!(s.min_count >= 5.0);
    let mean = s.synapses / s.connections as f64;
    assert!(rel(mean, 34_153_566.0 / 2_700_513.0) < 0.03, "{mean}");
    assert!(rel(s.connections as f64 / s.n as f64, cfg.mean_out_degree()) < 0.10);
}

/// Same seed → identical network, whatever the number of threads; another seed → another network.
#[test]
fn deterministic_across_thread_counts() {
    let cfg = small(0.01);
    let build = |threads: usize, seed: u64| {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| flybrain(&cfg, seed, 0.1))
    };
    let a = build(1, 11).unwrap();
    for threads in [2, 3, 8] {
        assert!(a == build(threads, 11).unwrap(), "{threads} threads differ");
    }
    assert!(a == flybrain(&cfg, 11, 0.1).unwrap());
    assert!(a.network.chemical != build(2, 12).unwrap().network.chemical);
}

/// Bad values are errors naming the field, never panics.
#[test]
fn bad_configuration_is_an_error_naming_the_field() {
    let d = FlyBrainConfig::default;
    let cases: Vec<(FlyBrainConfig, &str)> = vec![
        (FlyBrainConfig { scale: -1.0, ..d() }, "scale"),
        (FlyBrainConfig { scale: f64::NAN, ..d() }, "scale"),
        (FlyBrainConfig { scale: 0.0, ..d() }, "scale"),
        (FlyBrainConfig { scale: 1e-9, ..d() }, "scale"),
        (FlyBrainConfig { neurons: 0, ..d() }, "scale"),
        (FlyBrainConfig { connections: 0, ..d() }, "connections"),
        (FlyBrainConfig { synapses: 1000, ..d() }, "synapses"),
        (FlyBrainConfig { min_synapses_per_connection: 0, ..d() }, "min_synapses_per_connection"),
        (FlyBrainConfig { max_synapses_per_connection: 100_000, ..d() }, "max_synapses_per_connection"),
        (FlyBrainConfig { out_degree_sigma: f64::NAN, ..d() }, "out_degree_sigma"),
        (FlyBrainConfig { in_degree_sigma: -1.0, ..d() }, "in_degree_sigma"),
        (FlyBrainConfig { synapse_count_sigma: 0.0, ..d() }, "synapse_count_sigma"),
        (FlyBrainConfig { regions: 0, ..d() }, "regions"),
        (FlyBrainConfig { local_fraction: 1.5, ..d() }, "local_fraction"),
        (FlyBrainConfig { partner_regions: 0, ..d() }, "partner_regions"),
        (FlyBrainConfig { frac_ach: 0.9, ..d() }, "sum to 1"),
        (FlyBrainConfig { frac_glu: f64::INFINITY, ..d() }, "frac_glu"),
        (FlyBrainConfig { weight_per_synapse_pa: f64::NAN, ..d() }, "weight_per_synapse_pa"),
        (FlyBrainConfig { background_rate_hz: -5.0, ..d() }, "background_rate_hz"),
        (FlyBrainConfig { scale: 0.0007, ..d() }, "connections"),
    ];
    for (cfg, field) in cases {
        let e = match flybrain(&cfg, 1, 0.1) {
            Ok(_) => panic!("{field}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(field), "{field}: {e}");
    }
    assert!(flybrain(&small(0.01), 1, f64::NAN).is_err());
    assert!(flybrain(&FlyBrainConfig { delay_ms: 0.0, scale: 0.01, ..d() }, 1, 0.1).is_err());
}

/// Full-scale statistics (slow; `cargo test --release -p neurotwin-connectome --test integration --
/// --ignored --nocapture flybrain::full_scale_statistics`).
#[test]
#[ignore]
fn full_scale_statistics() {
    let cfg = FlyBrainConfig::default();
    let t = std::time::Instant::now();
    let g = flybrain(&cfg, 1, 0.1).unwrap();
    let build_s = t.elapsed().as_secs_f64();
    let s = stats(&g, cfg.weight_per_synapse_pa);
    let m = &g.network.chemical;
    println!(
        "full scale: built in {build_s:.2} s; {} neurons, {} connections (mean out-degree {:.2}), {:.0} synapses \
         ({:.3}/connection), min count {}, max in-degree {} (mean {:.1}), max out-degree {}, within-region {:.3}; \
         matrix {} bytes = {:.2} bytes/connection = {:.2} bytes/synapse, {}",
        s.n,
        s.connections,
        s.connections as f64 / s.n as f64,
        s.synapses,
        s.synapses / s.connections as f64,
        s.min_count,
        s.max_in,
        s.mean_in,
        s.max_out,
        s.local,
        m.bytes(),
        m.bytes_per_synapse(),
        m.bytes() as f64 / s.synapses,
        m.weight_encoding()
    );
    assert!(rel(s.connections as f64, 15_091_983.0) < 0.02);
    assert!(rel(s.synapses, 54_492_922.0) < 0.02);
}
