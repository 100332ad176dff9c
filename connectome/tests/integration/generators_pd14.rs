//! Potjans & Diesmann (2014) microcircuit generator: derived parameters against NEST's example, synapse
//! counts per projection, weight and delay statistics, determinism.
//!
//! Reference numbers marked "numpy" were computed with the example's own `network_params.py` and
//! `helpers.py` (nest-simulator commit e0a0745546eb75f7d50a7e433c32d0c2b7376513) under numpy 2.x;
//! the totals at (N, K) = (1, 1), (0.1, 1), (0.1, 0.1), (0.5, 1) also equal the recurrent connection
//! counts NEST 3.10 reported in the peer benchmarks (summary-2026-11-23.md).

use neurotwin_connectome::generators::pd14_params::{self as p, N_POP};
use neurotwin_connectome::generators::{BackgroundInput, EXC, INH, Pd14Config, Pd14Derived, VInit, potjans_diesmann};
use neurotwin_models::NeuronParams;

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

fn cfg(n: f64, k: f64) -> Pd14Config {
    Pd14Config { n_scaling: n, k_scaling: k, ..Default::default() }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

#[test]
fn derived_totals_match_nest() {
    for (n, k, total) in
        [(1.0, 1.0, 298_880_968u64), (0.1, 1.0, 29_888_097), (0.1, 0.1, 2_988_807), (0.5, 1.0, 149_440_485)]
    {
        assert_eq!(Pd14Derived::new(&cfg(n, k)).unwrap().total_synapses(), total, "N={n} K={k}");
    }
    let full = Pd14Derived::new(&Pd14Config::default()).unwrap();
    assert_eq!(full.num_neurons, p::FULL_NUM_NEURONS);
    assert_eq!(full.total_neurons(), 77_169);
    assert_eq!(full.ext_indegrees, p::K_EXT);
    assert_eq!(full.dc_amp, [0.0; N_POP]);
    // numpy: PSC_over_PSP 585.3899568613896, PSC_ext 87.80849352920843
    assert!(close(full.psc_over_psp, 585.3899568613896, 1e-13));
    assert!(close(full.weight_ext, 87.80849352920843, 1e-13));
    assert!(close(full.weight_matrix_mean[0][2], 2.0 * 87.80849352920843, 1e-13), "L4E->L23E doubled");
    assert!(close(full.weight_matrix_mean[3][1], -4.0 * 87.80849352920843, 1e-13));
    assert!(close(full.weight_matrix_mean[5][6], 87.80849352920843, 1e-13));
    assert_eq!(full.delay_matrix_mean[2][3], 0.75);
    assert_eq!(full.delay_matrix_mean[2][4], 1.5);
    let d = Pd14Derived::new(&cfg(0.1, 1.0)).unwrap();
    assert_eq!(d.num_neurons, [2068, 583, 2192, 548, 485, 106, 1440, 295]);
}

#[test]
fn derived_k_scaling_matches_the_example_helpers() {
    // numpy, N_scaling 0.02, K_scaling 0.05
    let d = Pd14Derived::new(&cfg(0.02, 0.05)).unwrap();
    assert_eq!(d.num_neurons, [414, 117, 438, 110, 97, 21, 288, 59]);
    let want: [[u64; 8]; 8] = [
        [45500, 22324, 20254, 9671, 3294, 0, 2271, 0],
        [17444, 5019, 4105, 1690, 2221, 0, 353, 0],
        [3504, 757, 24483, 17414, 715, 7, 14624, 0],
        [8114, 93, 9934, 5223, 88, 0, 8811, 0],
        [10614, 1817, 5508, 152, 2041, 2408, 1439, 0],
        [1241, 169, 608, 13, 320, 430, 132, 0],
        [4681, 556, 6728, 1320, 4112, 305, 8373, 10828],
        [2261, 17, 220, 8, 402, 25, 2888, 1354],
    ];
    assert_eq!(d.num_synapses, want);
    assert_eq!(d.total_synapses(), 298_883);
    assert_eq!(d.ext_indegrees, [80, 75, 105, 95, 100, 95, 145, 105]);
    assert!(close(d.weight_ext, 392.69152106632095, 1e-12));
    let dc = [
        32.967971832731905,
        127.59253748895497,
        128.27213444180126,
        130.56646799821345,
        142.4069195485319,
        172.23101895161471,
        49.786208570910844,
        174.5306046741789,
    ];
    for (i, (got, want)) in d.dc_amp.iter().zip(dc).enumerate() {
        assert!(close(*got, want, 1e-12), "DC {i}: {got} vs {want}");
    }
    // numpy, K_scaling 0.1
    let d = Pd14Derived::new(&cfg(0.1, 0.1)).unwrap();
    assert!(close(d.weight_ext, 277.67483746045554, 1e-12));
    assert!(close(d.dc_amp[0], 29.035009174000606, 1e-12) && close(d.dc_amp[7], 153.70971965061688, 1e-12));
    // no Poisson input: DC = bg_rate K_ext PSC_ext tau_syn / 1000
    let d = Pd14Derived::new(&Pd14Config { poisson_input: false, ..Default::default() }).unwrap();
    assert!(close(d.dc_amp[0], 8.0 * 1600.0 * 87.80849352920843 * 0.5e-3, 1e-13));
}

#[test]
fn generated_counts_weights_and_delays_follow_the_rules() {
    let c = cfg(0.02, 0.05);
    let dt = 0.1;
    let g = potjans_diesmann(&c, 55, dt).unwrap();
    let d = Pd14Derived::new(&c).unwrap();
    let net = &g.network;
    assert_eq!(g.n_neurons(), d.total_neurons());
    assert_eq!(net.chemical.n_synapses(), d.total_synapses());
    let pop = g.population_index();
    let mut count = [[0u64; N_POP]; N_POP];
    // per projection: sum and sum of squares of weights, delays (ms)
    let mut w = vec![(0.0f64, 0.0f64); N_POP * N_POP];
    let (mut de, mut di) = (Vec::new(), Vec::new());
    let mut indeg_l23e = vec![0u32; d.num_neurons[0] as usize];
    for s in net.chemical.synapses() {
        let (t, src) = (pop[s.post as usize] as usize, pop[s.pre as usize] as usize);
        count[t][src] += 1;
        let x = s.weight as f64;
        w[t * N_POP + src].0 += x;
        w[t * N_POP + src].1 += x * x;
        assert_eq!(s.receptor, if p::is_excitatory(src) { EXC } else { INH });
        assert!(if p::is_excitatory(src) { x >= 0.0 } else { x <= 0.0 }, "sign flipped: {x}");
        assert!(s.delay >= 1);
        if p::is_excitatory(src) { &mut de } else { &mut di }.push(s.delay as f64 * dt);
        if (t, src) == (0, 0) {
            indeg_l23e[s.post as usize] += 1;
        }
    }
    assert_eq!(count, d.num_synapses, "synapses per projection");
    for t in 0..N_POP {
        for src in 0..N_POP {
            let n = count[t][src] as f64;
            if n < 1000.0 {
                continue;
            }
            let (s1, s2) = w[t * N_POP + src];
            let mean = s1 / n;
            let sd = (s2 / n - mean * mean).sqrt();
            let m = d.weight_matrix_mean[t][src];
            assert!((mean - m).abs() < 5.0 * 0.1 * m.abs() / n.sqrt() + 1e-3, "{t}<-{src}: mean {mean} vs {m}");
            assert!((sd / m.abs() - 0.1).abs() < 0.1 * 6.0 / (2.0 * n).sqrt() + 1e-3, "{t}<-{src}: sd {sd}");
        }
    }
    // delays: normal(mean, mean/2) redrawn below dt/2, rounded to the grid
    for (v, mean) in [(&de, 1.5), (&di, 0.75)] {
        let (m, sd) = grid_truncated_normal_moments(mean, 0.5 * mean, dt);
        let n = v.len() as f64;
        let got = v.iter().sum::<f64>() / n;
        let got_sd = (v.iter().map(|x| (x - got).powi(2)).sum::<f64>() / n).sqrt();
        assert!((got - m).abs() < 5.0 * sd / n.sqrt(), "delay mean {got} vs {m}");
        assert!((got_sd / sd - 1.0).abs() < 0.02, "delay sd {got_sd} vs {sd}");
    }
    // targets uniform: in-degrees of L23E <- L23E have mean K/N and multinomial variance
    let n_t = indeg_l23e.len() as f64;
    let mean = indeg_l23e.iter().map(|&x| x as f64).sum::<f64>() / n_t;
    let var = indeg_l23e.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n_t - 1.0);
    assert!((mean - 45500.0 / 414.0).abs() < 1e-9);
    let want = 45500.0 / 414.0 * (1.0 - 1.0 / 414.0);
    assert!((var / want - 1.0).abs() < 0.25, "in-degree variance {var} vs {want}");
}

/// Mean and sd of `dt · ⌊X/dt + ½⌋` for X ~ Normal(mu, sd) conditioned on X >= dt/2 (numerically).
fn grid_truncated_normal_moments(mu: f64, sd: f64, dt: f64) -> (f64, f64) {
    let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
    let h = 1e-5;
    let mut x = 0.5 * dt + 0.5 * h;
    while x < mu + 12.0 * sd {
        let f = (-0.5 * ((x - mu) / sd).powi(2)).exp();
        let y = dt * (x / dt + 0.5).floor();
        z += f;
        m1 += f * y;
        m2 += f * y * y;
        x += h;
    }
    let m = m1 / z;
    (m, (m2 / z - m * m).sqrt())
}

#[test]
fn populations_background_and_metadata() {
    let c = cfg(0.02, 0.05);
    let g = potjans_diesmann(&c, 1, 0.1).unwrap();
    let d = Pd14Derived::new(&c).unwrap();
    let names: Vec<_> = g.populations.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, p::POPULATIONS);
    let mut start = 0;
    for (i, pp) in g.populations.iter().enumerate() {
        assert_eq!(pp.range, start..start + d.num_neurons[i]);
        start += d.num_neurons[i];
        assert_eq!(pp.v_init, VInit::Normal { mean: p::V0_MEAN_OPTIMIZED[i], sd: p::V0_STD_OPTIMIZED[i] });
        let NeuronParams::LifExp(q) = &pp.params else { panic!("lif_exp expected") };
        assert_eq!(
            (q.c_m, q.tau_m, q.e_l, q.v_th, q.v_reset, q.t_ref, q.tau_syn_ex, q.tau_syn_in, q.i_e),
            (250.0, 10.0, -65.0, -50.0, -65.0, 2.0, 0.5, 0.5, 0.0)
        );
        assert_eq!(g.network.neurons[pp.range.start as usize].name, format!("{}0", pp.name));
        assert_eq!(g.network.neurons[pp.range.start as usize].cell_type, pp.name);
        assert_eq!(g.dc_pa(i), d.dc_amp[i]);
    }
    let poisson: Vec<_> = g
        .background
        .iter()
        .filter_map(|b| match b {
            BackgroundInput::Poisson { population, rate_hz, weight, receptor } => {
                Some((*population, *rate_hz, *weight, receptor.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(poisson.len(), 8);
    for (i, rate, weight, receptor) in poisson {
        assert_eq!((rate, weight, receptor), (8.0 * d.ext_indegrees[i] as f64, d.weight_ext, "exc"));
    }
    assert!(g.expected_rate_hz.is_none());
    let (r, src) = Pd14Config::default().expected_rate_hz(0.1).unwrap();
    assert!((3.2..=3.3).contains(&r), "{r} {src}");
    assert_eq!(cfg(0.1, 0.1).expected_rate_hz(0.1).unwrap().0, 2.71);
    // original V0 and no Poisson input
    let g = potjans_diesmann(
        &Pd14Config { poisson_input: false, v0: neurotwin_connectome::generators::V0Type::Original, ..cfg(0.02, 1.0) },
        1,
        0.1,
    );
    let g = g.unwrap();
    assert!(g.populations.iter().all(|p| p.v_init == VInit::Normal { mean: -58.0, sd: 10.0 }));
    assert!(g.background.iter().all(|b| matches!(b, BackgroundInput::Dc { .. })));
    assert_eq!(g.background.len(), 8);
}

#[test]
fn deterministic_for_a_seed_and_thread_count_independent() {
    // K_scaling 0.15: the largest projections exceed one chunk of 2^16 source draws
    let c = cfg(0.02, 0.15);
    assert!(Pd14Derived::new(&c).unwrap().num_synapses[0][0] > 1 << 17);
    let a = in_pool(1, || potjans_diesmann(&c, 55, 0.1).unwrap());
    let b = in_pool(2, || potjans_diesmann(&c, 55, 0.1).unwrap());
    assert_eq!(a, b);
    let again = potjans_diesmann(&c, 55, 0.1).unwrap();
    assert_eq!(a, again);
    let other = potjans_diesmann(&c, 56, 0.1).unwrap();
    assert_ne!(a.network.chemical, other.network.chemical);
    assert_eq!(a.network.chemical.n_synapses(), other.network.chemical.n_synapses());
}

#[test]
fn invalid_scaling_is_an_error() {
    assert!(potjans_diesmann(&cfg(0.0, 1.0), 1, 0.1).is_err());
    assert!(potjans_diesmann(&cfg(0.1, f64::NAN), 1, 0.1).is_err());
    assert!(potjans_diesmann(&cfg(0.01, 0.01), 1, -0.1).is_err());
    assert!(potjans_diesmann(&cfg(0.01, 0.01), 1, 5.0).is_err(), "dt/2 far above the inhibitory delays");
}

/// Full-scale build (~299 M synapses, ~8 GB peak): `cargo test --release -p neurotwin-connectome --test
/// integration -- --ignored --nocapture generators_pd14::`.
#[test]
#[ignore]
fn full_scale_build_time() {
    let n: f64 = std::env::var("PD14_N").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let t = std::time::Instant::now();
    let g = potjans_diesmann(&cfg(n, 1.0), 55, 0.1).unwrap();
    println!(
        "PD14 N_scaling {n}: {} neurons, {} synapses, {:.1} s, {:.2} bytes/synapse, {}",
        g.network.n_neurons(),
        g.network.chemical.n_synapses(),
        t.elapsed().as_secs_f64(),
        g.network.chemical.bytes_per_synapse(),
        g.network.chemical.weight_encoding()
    );
    assert_eq!(g.network.chemical.n_synapses(), Pd14Derived::new(&cfg(n, 1.0)).unwrap().total_synapses());
}
