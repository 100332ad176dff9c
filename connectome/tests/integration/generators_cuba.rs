//! CUBA (Vogels & Abbott 2005) generator: in-degrees, weights, delays, determinism.

use neurotwin_connectome::generators::{CubaConfig, CubaConnectivity, EXC, INH, VInit, cuba};
use neurotwin_connectome::{Synapse, SynapseMatrix};
use neurotwin_models::NeuronParams;

fn small(connectivity: CubaConnectivity) -> CubaConfig {
    CubaConfig { n: 1000, connectivity, ..Default::default() }
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// Synapses grouped by postsynaptic neuron, sorted by (receptor, pre).
fn incoming(m: &SynapseMatrix) -> Vec<Vec<Synapse>> {
    let mut v = vec![Vec::new(); m.n_post as usize];
    for s in m.synapses() {
        v[s.post as usize].push(s);
    }
    for x in &mut v {
        x.sort_by_key(|s| (s.receptor, s.pre));
    }
    v
}

#[test]
fn fixed_indegree_gives_exact_inputs_weights_and_delays() {
    let cfg = small(CubaConnectivity::FixedIndegree);
    let g = cuba(&cfg, 1, 0.1).unwrap();
    let net = &g.network;
    assert_eq!(net.n_neurons(), 1000);
    let names: Vec<_> = net.receptors.iter().map(|r| (r.name.as_str(), r.excitatory)).collect();
    assert_eq!(names, [("exc", true), ("inh", false)]);
    assert_eq!(cfg.indegrees(), (64, 16));
    assert_eq!(net.chemical.n_synapses(), 1000 * 80);
    assert_eq!(net.report.synapses_per_receptor, vec![("exc".to_string(), 64_000), ("inh".to_string(), 16_000)]);
    for (post, syn) in incoming(&net.chemical).iter().enumerate() {
        let exc: Vec<_> = syn.iter().filter(|s| s.receptor == EXC).collect();
        let inh: Vec<_> = syn.iter().filter(|s| s.receptor == INH).collect();
        assert_eq!((exc.len(), inh.len()), (64, 16), "neuron {post}");
        assert!(exc.iter().all(|s| s.pre < 800 && s.weight == 16.2f32 && s.delay == 1));
        assert!(inh.iter().all(|s| (800..1000).contains(&s.pre) && s.weight == -90.0f32 && s.delay == 1));
    }
    assert_eq!(net.chemical.max_delay(), 1);
    assert!(net.gap.is_empty());
    // populations, names, parameters
    assert_eq!(g.populations.len(), 2);
    assert_eq!((g.populations[0].name.as_str(), g.populations[0].range.clone()), ("E", 0..800));
    assert_eq!((g.populations[1].name.as_str(), g.populations[1].range.clone()), ("I", 800..1000));
    assert_eq!(net.neurons[0].name, "E0");
    assert_eq!(net.neurons[799].name, "E799");
    assert_eq!((net.neurons[800].name.as_str(), net.neurons[800].cell_type.as_str()), ("I0", "I"));
    assert_eq!(net.neurons[999].id, 999);
    for p in &g.populations {
        assert_eq!(p.v_init, VInit::Uniform { lo: -60.0, hi: -50.0 });
        let NeuronParams::LifExp(q) = &p.params else { panic!("lif_exp expected") };
        assert_eq!(
            (q.c_m, q.tau_m, q.e_l, q.v_th, q.v_reset, q.t_ref, q.tau_syn_ex, q.tau_syn_in, q.i_e),
            (200.0, 20.0, -49.0, -50.0, -60.0, 5.0, 5.0, 10.0, 0.0)
        );
    }
    assert!(g.background.is_empty());
    assert_eq!(g.population_of(800), Some(1));
    assert!(g.expected_rate_hz.is_none(), "no peer measured N=1000");
}

#[test]
fn sources_are_uniform_with_multapses_like_nest_and_without_on_request() {
    let g = cuba(&small(CubaConnectivity::FixedIndegree), 3, 0.1).unwrap();
    let inc = incoming(&g.network.chemical);
    // with replacement: 64 draws out of 800 give ~2.5 repeated sources per neuron
    let repeats: usize = inc.iter().map(|v| v.windows(2).filter(|w| w[0].pre == w[1].pre).count()).sum();
    assert!((1500..3500).contains(&repeats), "{repeats} multapses");
    // autapses are allowed (NEST default): expected 1000 * 64/800 * ... ≈ 0.08 per E neuron
    // out-degrees: mean exactly N*K_E/N_E, spread binomial-like (variance ≈ mean)
    let mut out = vec![0u32; 1000];
    for s in g.network.chemical.synapses() {
        out[s.pre as usize] += 1;
    }
    let e: Vec<f64> = out[..800].iter().map(|&x| x as f64).collect();
    let mean = e.iter().sum::<f64>() / 800.0;
    let var = e.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 799.0;
    assert_eq!(mean, 80.0);
    assert!((var / mean - 1.0).abs() < 0.2, "variance {var} vs mean {mean}");

    let cfg = CubaConfig { allow_multapses: false, ..small(CubaConnectivity::FixedIndegree) };
    let g = cuba(&cfg, 3, 0.1).unwrap();
    for (post, v) in incoming(&g.network.chemical).iter().enumerate() {
        assert_eq!(v.len(), 80);
        assert!(v.windows(2).all(|w| (w[0].receptor, w[0].pre) != (w[1].receptor, w[1].pre)), "neuron {post}");
    }
}

#[test]
fn bernoulli_has_the_right_mean_count_per_source_population() {
    let cfg = small(CubaConnectivity::Bernoulli);
    let g = cuba(&cfg, 5, 0.1).unwrap();
    let syn = g.network.chemical.synapses();
    let p = 80.0 / 1000.0;
    let (n_e, n_i) = (
        syn.iter().filter(|s| s.receptor == EXC).count() as f64,
        syn.iter().filter(|s| s.receptor == INH).count() as f64,
    );
    let (m_e, m_i) = (800.0 * 1000.0 * p, 200.0 * 1000.0 * p);
    assert!((n_e - m_e).abs() < 5.0 * (m_e * (1.0 - p)).sqrt(), "{n_e} vs {m_e}");
    assert!((n_i - m_i).abs() < 5.0 * (m_i * (1.0 - p)).sqrt(), "{n_i} vs {m_i}");
    assert!(syn.iter().all(|s| (s.receptor == EXC) == (s.pre < 800)));
    // Bernoulli never repeats a pair
    let inc = incoming(&g.network.chemical);
    assert!(inc.iter().all(|v| v.windows(2).all(|w| w[0].pre != w[1].pre)));
    // sources are uniform: E sources in the lower and upper half equally often
    let low = syn.iter().filter(|s| s.pre < 400).count() as f64;
    assert!((low / n_e - 0.5).abs() < 0.01, "{low} of {n_e}");
    // p = 1 connects everything
    let all =
        cuba(&CubaConfig { n: 50, k: 50, connectivity: CubaConnectivity::Bernoulli, ..Default::default() }, 1, 0.1)
            .unwrap();
    assert_eq!(all.network.chemical.n_synapses(), 2500);
    let too_dense = CubaConfig { n: 50, k: 80, connectivity: CubaConnectivity::Bernoulli, ..Default::default() };
    assert!(cuba(&too_dense, 1, 0.1).is_err());
}

#[test]
fn same_seed_same_network_any_thread_count_and_different_seed_differs() {
    for conn in [CubaConnectivity::FixedIndegree, CubaConnectivity::Bernoulli] {
        let cfg = small(conn);
        let a = in_pool(1, || cuba(&cfg, 42, 0.1).unwrap());
        let b = in_pool(2, || cuba(&cfg, 42, 0.1).unwrap());
        let c = cuba(&cfg, 42, 0.1).unwrap();
        assert_eq!(a, b, "{conn:?}: 1 vs 2 threads");
        assert_eq!(a, c, "{conn:?}: repeated build");
        let d = cuba(&cfg, 43, 0.1).unwrap();
        assert_ne!(a.network.chemical, d.network.chemical, "{conn:?}: seed must matter");
    }
    let cfg = CubaConfig { allow_multapses: false, ..small(CubaConnectivity::FixedIndegree) };
    assert_eq!(in_pool(1, || cuba(&cfg, 7, 0.1).unwrap()), in_pool(2, || cuba(&cfg, 7, 0.1).unwrap()));
}

#[test]
fn delays_round_to_steps_and_expected_rate_only_for_measured_configurations() {
    let g = cuba(&CubaConfig { delay_ms: 0.5, ..small(CubaConnectivity::FixedIndegree) }, 1, 0.1).unwrap();
    assert!(g.network.chemical.segment_delay.iter().all(|&d| d == 5));
    assert!(cuba(&small(CubaConnectivity::FixedIndegree), 1, 0.25).is_err(), "0.1 ms < half a 0.25 ms step");
    assert!(cuba(&small(CubaConnectivity::FixedIndegree), 1, 0.0).is_err());
    let d = CubaConfig::default();
    let (r, src) = d.expected_rate_hz(0.1).unwrap();
    assert!((5.1..=5.3).contains(&r) && src.contains("NEST"), "{r} {src}");
    assert!(d.expected_rate_hz(0.05).is_none());
    let b = CubaConfig { connectivity: CubaConnectivity::Bernoulli, ..Default::default() };
    assert!(b.expected_rate_hz(0.1).is_some());
}
