//! COBA (Vogels & Abbott 2005, conductance synapses) generator: the CUBA wiring with conductance weights and
//! NEST `iaf_cond_exp` parameters; split runs.

use neurotwin_connectome::generators::{CobaConfig, CubaConfig, VInit, coba, coba_part, cuba};
use neurotwin_connectome::share::Share;
use neurotwin_models::NeuronParams;

/// For equal size, in-degree, connectivity and seed, COBA has exactly CUBA's synapses (pre, post, receptor,
/// delay), with the conductance jumps 6 nS and −67 nS as weights; the populations carry the benchmark's
/// `lif_cond_exp` parameters.
#[test]
fn coba_has_the_cuba_wiring_with_conductance_weights() {
    let (n, seed) = (1000, 7);
    let g = coba(&CobaConfig { n, ..Default::default() }, seed, 0.1).unwrap();
    let c = cuba(&CubaConfig { n, ..Default::default() }, seed, 0.1).unwrap();
    let key = |s: &neurotwin_connectome::Synapse| (s.pre, s.post, s.receptor, s.delay);
    let a: Vec<_> = g.network.chemical.synapses();
    let b: Vec<_> = c.network.chemical.synapses();
    assert_eq!(a.len(), 80_000);
    assert_eq!(a.iter().map(key).collect::<Vec<_>>(), b.iter().map(key).collect::<Vec<_>>());
    for s in &a {
        let w = if s.pre < 800 { 6.0f32 } else { -67.0 };
        assert_eq!(s.weight, w, "{s:?}");
    }
    assert_eq!(g.network.name, "coba-N1000-K80");
    assert!(g.network.provenance[0].contains("Vogels TP, Abbott LF (2005)"));
    for p in &g.populations {
        assert_eq!(p.v_init, VInit::Uniform { lo: -60.0, hi: -50.0 });
        let NeuronParams::LifCondExp(q) = &p.params else { panic!("lif_cond_exp expected") };
        assert_eq!(
            (q.c_m, q.g_l, q.e_l, q.v_th, q.v_reset, q.t_ref, q.i_e),
            (200.0, 10.0, -60.0, -50.0, -60.0, 5.0, 200.0)
        );
        assert_eq!((q.e_ex, q.e_in, q.tau_syn_ex, q.tau_syn_in), (0.0, -80.0, 5.0, 10.0));
    }
    assert!(g.expected_rate_hz.is_none(), "no peer measured N=1000");
    let (r, src) = CobaConfig::default().expected_rate_hz(0.1).unwrap();
    assert!(r == 16.42 && src.contains("NEST") && src.contains("Brian2"), "{r} {src}");
    assert!(CobaConfig::default().expected_rate_hz(0.05).is_none());
    let e = coba(&CobaConfig { i_e_pa: f64::NAN, ..Default::default() }, 1, 0.1).unwrap_err().to_string();
    assert!(e.contains("COBA") && e.contains("i_e_pa"), "{e}");
    let e = coba(&CobaConfig { n: 0, ..Default::default() }, 1, 0.1).unwrap_err().to_string();
    assert!(e.contains("COBA: n must be > 0"), "{e}");
}

/// A process's share holds exactly the whole network's synapses onto its targets.
#[test]
fn coba_part_holds_the_whole_networks_synapses_onto_its_share() {
    let cfg = CobaConfig { n: 1000, ..Default::default() };
    let whole = coba(&cfg, 3, 0.1).unwrap();
    let mut total = 0;
    for rank in 0..3 {
        let share = Share::new(rank, 3).unwrap();
        let part = coba_part(&cfg, 3, 0.1, &share).unwrap();
        let held = part.network.held_targets.clone().unwrap();
        let mine: Vec<_> = part.network.chemical.synapses();
        let expect: Vec<_> = whole.network.chemical.synapses().into_iter().filter(|s| held.contains(&s.post)).collect();
        assert_eq!(mine, expect, "rank {rank}");
        total += mine.len();
    }
    assert_eq!(total as u64, whole.network.chemical.n_synapses());
}
