//! Brunel (2000) delta network generator.

use neurotwin_connectome::generators::{BackgroundInput, BrunelConfig, EXC, INH, VInit, brunel};
use neurotwin_connectome::{Synapse, SynapseMatrix};
use neurotwin_models::NeuronParams;

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

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
fn fixed_indegrees_weights_delay_and_background_as_the_nest_example() {
    // in-degrees fixed at 1000/250 (the peer benchmark) on a small network: sources repeat (multapses)
    let cfg = BrunelConfig { order: 100, ..Default::default() };
    let g = brunel(&cfg, 1, 0.1).unwrap();
    let net = &g.network;
    assert_eq!(net.n_neurons(), 500);
    assert_eq!(net.chemical.n_synapses(), 500 * 1250);
    for (post, syn) in incoming(&net.chemical).iter().enumerate() {
        let e = syn.iter().filter(|s| s.receptor == EXC).count();
        let i = syn.iter().filter(|s| s.receptor == INH).count();
        assert_eq!((e, i), (1000, 250), "neuron {post}");
        for s in syn {
            assert_eq!(s.delay, 15);
            if s.receptor == EXC {
                assert!(s.pre < 400 && s.weight == 0.1f32);
            } else {
                assert!(s.pre >= 400 && s.weight == -0.5f32);
            }
        }
    }
    assert_eq!(cfg.background_rate_hz(), 20_000.0);
    assert_eq!(g.background.len(), 2);
    for (k, b) in g.background.iter().enumerate() {
        assert_eq!(
            b,
            &BackgroundInput::Poisson { population: k, rate_hz: 20_000.0, weight: 0.1, receptor: "exc".into() }
        );
    }
    for p in &g.populations {
        assert_eq!(p.v_init, VInit::Rest);
        let NeuronParams::LifDelta(q) = &p.params else { panic!("lif_delta expected") };
        assert_eq!((q.tau_m, q.e_l, q.v_th, q.v_reset, q.t_ref, q.c_m, q.i_e), (20.0, 0.0, 20.0, 0.0, 2.0, 1.0, 0.0));
    }
    assert_eq!(g.populations[1].range, 400..500);
    assert_eq!(net.neurons[400].name, "I0");
    assert!(g.expected_rate_hz.is_none());
    let (r, _) = BrunelConfig::default().expected_rate_hz(0.1).unwrap();
    assert!((31.5..32.1).contains(&r));
    assert!(BrunelConfig { g: 4.0, ..Default::default() }.expected_rate_hz(0.1).is_none());
}

#[test]
fn indegrees_scaled_with_n_and_without_multapses() {
    let cfg = BrunelConfig { order: 250, indegree_scales_with_n: true, allow_multapses: false, ..Default::default() };
    assert_eq!(cfg.indegrees(), (100, 25));
    assert_eq!(cfg.background_rate_hz(), 20_000.0);
    let g = brunel(&cfg, 9, 0.1).unwrap();
    for v in incoming(&g.network.chemical) {
        assert_eq!(v.len(), 125);
        assert!(v.windows(2).all(|w| w[0].pre != w[1].pre));
    }
    // without multapses, more inputs than sources is an error
    assert!(brunel(&BrunelConfig { order: 100, allow_multapses: false, ..Default::default() }, 1, 0.1).is_err());
}

#[test]
fn deterministic_for_a_seed_and_thread_count_independent() {
    let cfg = BrunelConfig { order: 200, ce: 160, ci: 40, ..Default::default() };
    let a = in_pool(1, || brunel(&cfg, 11, 0.1).unwrap());
    let b = in_pool(2, || brunel(&cfg, 11, 0.1).unwrap());
    assert_eq!(a, b);
    assert_ne!(a.network.chemical, brunel(&cfg, 12, 0.1).unwrap().network.chemical);
}
