//! Scenario features end to end on small networks: sweeps, receptor block dose–response, silencing,
//! cuts, per-cell-type parameters, state recording, trials, determinism across thread counts.

use std::path::{Path, PathBuf};

use neurotwin_scenarios::runner::{prepare_all, simulate, simulate_on, trial_seed};
use neurotwin_scenarios::{RunRequest, run_scenario};
use neurotwin_sim::BackendKind;

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("s.toml");
    std::fs::write(&p, text).unwrap();
    p
}

const CUBA_1K: &str = r#"name = "cuba1k"
[network]
generator = { kind = "cuba", n = 1000, k = 80 }
[run]
duration_ms = 400.0
seed = 3
"#;

#[test]
fn sweep_over_block_dose_lowers_rate_monotonically_and_writes_one_folder_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{CUBA_1K}\n[[perturbation]]\nkind = \"block\"\nreceptor = \"exc\"\ndose = 0.0\nic50 = 1.0\nhill = 1.0\n\n[sweep]\nparam = \"perturbation.0.dose\"\nvalues = [0.0, 0.3, 1.0, 3.0, 30.0]\n"
    );
    let path = write(dir.path(), &text);
    let out = dir.path().join("out");
    let res = run_scenario(&RunRequest { scenario: path, out_dir: Some(out.clone()), ..Default::default() }).unwrap();
    assert_eq!(res.len(), 5);
    let rates: Vec<f64> = res.iter().map(|r| r.summary.mean_rate_hz).collect();
    for w in rates.windows(2) {
        assert!(w[1] <= w[0], "rate must fall as the excitatory block grows: {rates:?}");
    }
    // CUBA neurons are pacemakers (E_L = -49 mV above V_th = -50 mV), so removing excitation lowers
    // the rate without silencing the network.
    assert!(rates[4] < 0.7 * rates[0], "97 % excitatory block must lower the rate clearly: {rates:?}");
    for r in &res {
        let d = r.summary.output_dir.as_ref().unwrap();
        assert!(d.join("spikes.h5").is_file() && d.join("summary.json").is_file());
    }
    assert!(out.join("summary.json").is_file());
    assert_eq!(res[2].summary.sweep_value.as_deref(), Some("1.0"));
}

#[test]
fn inhibitory_block_raises_rate() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), CUBA_1K);
    let blocked = dir.path().join("b.toml");
    std::fs::write(
        &blocked,
        format!("{CUBA_1K}\n[[perturbation]]\nkind = \"block\"\nreceptor = \"inh\"\ndose = 9.0\nic50 = 1.0\n"),
    )
    .unwrap();
    let rate = |p: PathBuf| {
        let s = prepare_all(&RunRequest { scenario: p, ..Default::default() }).unwrap();
        let run = &s.points[0].run;
        simulate(run, run.setup.seed, false, "t").unwrap().0.mean_rate_hz(&[])
    };
    let (a, b) = (rate(base), rate(blocked));
    assert!(b > 1.5 * a, "blocking 90 % of inhibition must raise the rate: {a} -> {b}");
}

#[test]
fn silence_cut_cell_types_and_state_recording() {
    let dir = tempfile::tempdir().unwrap();
    // E neurons are E0..E799, I neurons I0..I199 (generator names; cell types "E" and "I").
    let text = format!(
        r#"{CUBA_1K}
[model]
model = "lif_exp"
c_m = 200.0
tau_m = 20.0
e_l = -49.0
v_th = -50.0
v_reset = -60.0
t_ref = 5.0
tau_syn_ex = 5.0
tau_syn_in = 10.0
[model.cell_types.I]
v_th = 1000.0

[init]
V_m = {{ dist = "uniform", lo = -60.0, hi = -50.0 }}

[[perturbation]]
kind = "silence"
targets = {{ pattern = "E[0-9]" }}
start_ms = 100.0
stop_ms = 200.0

[[perturbation]]
kind = "cut"
pre = {{ cell_type = "E" }}
post = {{ names = ["E5"] }}

[record]
state = [{{ var = "I_syn_exc", targets = {{ names = ["E5", "E6"] }}, every_ms = 0.1 }}]
"#
    );
    let path = write(dir.path(), &text);
    let s = prepare_all(&RunRequest { scenario: path, ..Default::default() }).unwrap();
    let run = &s.points[0].run;
    let (rec, _, _) = simulate(run, run.setup.seed, false, "t").unwrap();
    let names = &run.setup.network.neurons;
    // per-cell-type override: inhibitory neurons can never reach threshold
    let i_spikes = rec.spike_neurons.iter().filter(|&&i| names[i as usize].cell_type == "I").count();
    assert_eq!(i_spikes, 0);
    assert!(!rec.spike_neurons.is_empty());
    // silence window: E0..E9 emit nothing in [100, 200) ms
    let silenced: Vec<u32> = (0..10).collect();
    for (&st, &n) in rec.spike_steps.iter().zip(&rec.spike_neurons) {
        if silenced.contains(&n) {
            assert!(!(1000..2000).contains(&st), "silenced neuron {n} spiked at step {st}");
        }
    }
    // cut: E5 receives no excitatory input at all, E6 does
    let t = &rec.state[0];
    let e5: f64 = t.values.iter().step_by(2).map(|x| x.abs()).sum();
    let e6: f64 = t.values.iter().skip(1).step_by(2).map(|x| x.abs()).sum();
    assert_eq!(e5, 0.0);
    assert!(e6 > 0.0);
    assert_eq!(t.times_ms.len(), 4000);
}

#[test]
fn scenario_spikes_identical_for_1_and_2_threads_and_trials_differ() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), CUBA_1K);
    let s = prepare_all(&RunRequest { scenario: path, ..Default::default() }).unwrap();
    let run = &s.points[0].run;
    let spikes = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let (r, _, _) = simulate(run, seed, false, "t").unwrap();
            (r.spike_steps, r.spike_neurons)
        })
    };
    let a = spikes(1, 3);
    assert!(a.0.len() > 100);
    assert_eq!(a, spikes(2, 3));
    assert_ne!(a, spikes(2, trial_seed(3, 1)));
}

/// The bundled `scenarios/cuba_equations.toml` (the CUBA neuron written as equations in `[model]`) prepares from
/// its file and gives the spikes of `scenarios/cuba.toml` (the built-in `lif_exp`) over 300 ms; a mistake in the
/// equations is reported with the file, the equation's line and column, and a suggestion, and nothing runs.
#[test]
fn equation_model_scenario_gives_the_built_in_spikes_and_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spikes = |file: &str| {
        let text =
            std::fs::read_to_string(repo.join(file)).unwrap().replace("duration_ms = 1000.0", "duration_ms = 300.0");
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let prepared = prepare_all(&RunRequest { scenario: path, ..Default::default() }).unwrap();
        let run = &prepared.points[0].run;
        let (rec, _, _) = simulate(run, run.setup.seed, false, "t").unwrap();
        (rec.spike_steps, rec.spike_neurons)
    };
    let built_in = spikes("cuba.toml");
    assert!(built_in.0.len() > 4000, "{} spikes", built_in.0.len());
    assert_eq!(spikes("cuba_equations.toml"), built_in);

    let text = std::fs::read_to_string(repo.join("cuba_equations.toml"))
        .unwrap()
        .replace("dI_ex/dt = -I_ex/tau_syn_ex : pA", "dI_ex/dt = -I_ex/tau_syn_exx : pA");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let e = prepare_all(&RunRequest { scenario: path, ..Default::default() }).err().expect("refused").to_string();
    // The file line of the offending equation: `equations = """` is line 12, the second equation line 14.
    assert!(e.contains("bad.toml:14:") && e.contains("equations line 2, column 18"), "{e}");
    assert!(e.contains("unknown name `tau_syn_exx` (did you mean `tau_syn_ex`?)"), "{e}");
}

/// The worm (`scenarios/celegans_touch.toml`: Cook 2019 connectome, five receptor classes, gap junctions through
/// `I_stim`, Poisson background, optogenetic activation) with its `lif_exp` neuron written as equations gives the
/// built-in model's spikes exactly over the scenario's 1 s, on the CPU backend and with the generated kernel on
/// `cuda-host`.
#[test]
fn equation_lif_gives_the_built_in_spikes_on_the_worm() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(repo.join("celegans_touch.toml")).unwrap();
    let (head, rest) = text.split_once("[model]").unwrap();
    let tail = &rest[rest.find("[init]").unwrap()..];
    let channels = [("ACh", "ex"), ("GABA", "in"), ("Glu_exc", "ex"), ("Glu_inh", "in"), ("other", "ex")];
    let currents: Vec<String> = channels.iter().map(|(c, _)| format!("I_{c}")).collect();
    let mut equations = format!("dV_m/dt = -(V_m - E_L)/tau_m + ({} + I_stim)/C_m : mV\n", currents.join(" + "));
    for (c, kind) in channels {
        equations += &format!("dI_{c}/dt = -I_{c}/tau_syn_{kind} : pA\n");
    }
    let inputs: Vec<String> = channels.iter().map(|(c, _)| format!("{c} = \"I_{c} += w\"")).collect();
    let model = format!(
        "[model]\nmodel = \"equations\"\nequations = \"\"\"\n{equations}\"\"\"\nthreshold = \"V_m >= V_th\"\n\
         reset = \"V_m = V_reset\"\nrefractory = \"t_ref\"\nclamp = [\"V_m\"]\ninit = {{ V_m = \"E_L\" }}\n\
         inputs = {{ {} }}\n[model.parameters]\nC_m = \"50 pF\"\ntau_m = \"20 ms\"\nE_L = \"-65 mV\"\nV_th = \"-50 mV\"\n\
         V_reset = \"-65 mV\"\nt_ref = \"2 ms\"\ntau_syn_ex = \"5 ms\"\ntau_syn_in = \"10 ms\"\n\n",
        inputs.join(", ")
    );
    let spikes = |name: &str, text: &str, backend: BackendKind| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let prepared = prepare_all(&RunRequest { scenario: path, ..Default::default() }).unwrap();
        let run = &prepared.points[0].run;
        let (rec, _, _) = simulate_on(backend, run, run.setup.seed, false, "t").unwrap();
        (rec.spike_steps, rec.spike_neurons)
    };
    let built_in = spikes("builtin.toml", &text, BackendKind::Cpu);
    assert!(built_in.0.len() > 3000, "{} spikes", built_in.0.len());
    let equations = format!("{head}{model}{tail}");
    assert_eq!(spikes("equations.toml", &equations, BackendKind::Cpu), built_in);
    // The generated kernel, built for the host, in the GPU's step sequence (`cuda-host`).
    assert_eq!(spikes("equations.toml", &equations, BackendKind::CudaHost), built_in);
}

/// The bundled `scenarios/celegans_shiu_equations.toml` (the worm with Shiu et al. 2024's neuron written as
/// equations: synaptic variable `x` held during refractoriness and reset with the membrane) prepares from its file
/// and runs; the gentle touch drives the touch receptors and raises the backward command interneuron AVD over its
/// rate before the touch.
#[test]
fn shiu_neuron_scenario_runs_on_the_worm() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let prepared =
        prepare_all(&RunRequest { scenario: repo.join("celegans_shiu_equations.toml"), ..Default::default() }).unwrap();
    let run = &prepared.points[0].run;
    assert_eq!(run.setup.model.state_names(), ["v", "x", "refractory"]);
    let (rec, _, _) = simulate(run, run.setup.seed, false, "t").unwrap();
    let rate = |names: &[&str], from: u64, to: u64| {
        let ids: Vec<u32> =
            names.iter().map(|n| run.setup.network.neurons.iter().position(|x| x.name == *n).unwrap() as u32).collect();
        let k = rec
            .spike_steps
            .iter()
            .zip(&rec.spike_neurons)
            .filter(|(s, i)| (from..to).contains(*s) && ids.contains(i))
            .count();
        k as f64 / ids.len() as f64 / ((to - from) as f64 * 1e-4)
    };
    let (touch, avd) = (["ALML", "ALMR", "AVM"], ["AVDL", "AVDR"]);
    assert!(rate(&touch, 3000, 7000) > 40.0 && rate(&touch, 0, 3000) < 10.0, "{}", rate(&touch, 3000, 7000));
    assert!(
        rate(&avd, 3000, 7000) > 1.3 * rate(&avd, 0, 3000),
        "{} vs {}",
        rate(&avd, 3000, 7000),
        rate(&avd, 0, 3000)
    );
}

/// The bundled STDP scenario (`scenarios/stdp_song2000.toml`, Song et al. 2000) shortened to 20 s: the weights
/// move within [0, w_max], `weights.h5` holds every snapshot exactly as recorded (synapse identities included),
/// `weights.png` is drawn and the summary reports the group.
#[test]
fn stdp_scenario_learns_and_writes_its_weights() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = repo.join("../data").canonicalize().unwrap();
    let text = std::fs::read_to_string(repo.join("stdp_song2000.toml"))
        .unwrap()
        .replace("duration_ms = 300000.0", "duration_ms = 20000.0")
        .replace("\"../data", &format!("\"{}", data.display()));
    let path = write(dir.path(), &text);
    let out = dir.path().join("out");
    let res =
        run_scenario(&RunRequest { scenario: path.clone(), out_dir: Some(out.clone()), ..Default::default() }).unwrap();
    let rec = &res[0].recording;
    let w = rec.weights.as_ref().expect("weights recorded");
    assert_eq!((w.len(), w.times_ms.len()), (4000, 11), "4000 synapses, a snapshot every 2 s from 0 to 20 s");
    let (first, last) = (w.snapshot(0), w.snapshot(10));
    assert!(last.iter().all(|&x| (0.0..=13.0).contains(&x)));
    let moved = first.iter().zip(last).filter(|(a, b)| (*a - *b).abs() > 0.1).count();
    assert!(moved > 3000, "{moved} of 4000 weights moved by more than 0.1 pA");
    let s = &res[0].summary.plasticity[0];
    assert_eq!((s.name.as_str(), s.synapses), ("input-to-output", 4000));
    assert!((s.mean_weight_start - first.iter().sum::<f64>() / 4000.0).abs() < 1e-9);

    let f = hdf5::File::open(out.join("weights.h5")).unwrap();
    let data: Vec<f64> = f.dataset("weights/data").unwrap().read_raw().unwrap();
    assert_eq!(f.dataset("weights/data").unwrap().shape(), vec![11, 4000]);
    assert_eq!(data, w.values);
    let pre: Vec<u64> = f.dataset("synapses/pre_node_id").unwrap().read_raw().unwrap();
    let post: Vec<u64> = f.dataset("synapses/post_node_id").unwrap().read_raw().unwrap();
    assert!(pre.iter().all(|&i| i < 1000) && post.iter().all(|&j| (1000..1004).contains(&j)));
    let delay: Vec<f64> = f.dataset("synapses/delay_ms").unwrap().read_raw().unwrap();
    assert!(delay.iter().all(|&d| (d - 1.0).abs() < 1e-12));
    assert!(std::fs::metadata(out.join("weights.png")).unwrap().len() > 10_000);
}

/// Mistakes in a `[[plasticity]]` section are refused before anything runs, with the file, the line of the
/// offending value and what is allowed.
#[test]
fn plasticity_mistakes_get_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{CUBA_1K}\n[[plasticity]]\nrule = \"stdp\"\nreceptor = \"exc\"\n");
    let cases = [
        (
            "pairing = \"nearest_neighbour\"\nw_max = 40.0\n",
            11,
            "unknown pairing `nearest_neighbour`; known: all_to_all, nearest",
        ),
        ("w_max = 40.0\nlambda = -0.1\n", 12, "`lambda` must be finite and >= 0"),
        ("tau_plus_ms = 20.0\n", 9, "needs `w_max`"),
        ("w_max = 40.0\nmu_plus = 0.4\n", 12, "set weight_dependence = \"power\""),
        ("w_max = 40.0\nweight_dependence = \"power\"\nmu_plus = 0.4\n", 12, "needs `mu_minus`"),
        ("w_max = 5.0\n", 0, "outside [0, w_max = 5]"),
        ("w_max = 40.0\na_plus = 1.0\n", 12, "`a_plus` is not a parameter of rule = \"stdp\""),
    ];
    for (extra, line, message) in cases {
        let path = write(dir.path(), &format!("{base}{extra}"));
        let e = match prepare_all(&RunRequest { scenario: path.clone(), ..Default::default() }) {
            Err(e) => e.to_string(),
            // Weights outside the bound are found when the backend splits the matrix.
            Ok(p) => simulate(&p.points[0].run, 1, false, "t").expect_err("refused").to_string(),
        };
        assert!(e.contains(message), "{extra}: {e}");
        if line > 0 {
            assert!(e.contains(&format!("s.toml:{line}:")), "{extra}: {e}");
        }
    }
}

/// `rule = "stdp_dopamine"` (reward-modulated STDP): a CUBA network whose excitatory synapses learn under the
/// dopamine of 20 neurons driven at 50 Hz runs on the CPU and moves its weights; the CUDA kernels (`cuda-host`) give
/// the same spikes and the same weights at every snapshot (mid-run ones included); its own mistakes get located
/// errors.
#[test]
fn dopamine_plasticity_runs_and_its_mistakes_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "{CUBA_1K}\n[[stimulus]]\nkind = \"activation\"\nrate_hz = 50.0\ntargets = {{ ids = [0, 1, 2, 3, 4, 5, 6, 7, 8, \
         9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19] }}\n[[plasticity]]\nrule = \"stdp_dopamine\"\nreceptor = \"exc\"\n"
    );
    let good = format!(
        "{base}dopamine = {{ ids = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19] }}\nw_max = 100.0\ntau_c_ms = 200.0\n"
    );
    let path = write(dir.path(), &good);
    let prepared = prepare_all(&RunRequest { scenario: path, ..Default::default() }).unwrap();
    let run = &prepared.points[0].run;
    let mut run = run.clone();
    run.record.weights_every_steps = run.setup.steps / 4;
    let (rec, _, _) = simulate(&run, 1, false, "t").unwrap();
    let (kernel_rec, _, _) = simulate_on(BackendKind::CudaHost, &run, 1, false, "t").unwrap();
    assert_eq!((&rec.spike_steps, &rec.spike_neurons), (&kernel_rec.spike_steps, &kernel_rec.spike_neurons));
    let (w, kw) = (rec.weights.unwrap(), kernel_rec.weights.unwrap());
    let snapshots = w.times_ms.len();
    assert!(snapshots >= 5 && kw.times_ms == w.times_ms, "{:?} vs {:?}", w.times_ms, kw.times_ms);
    for s in 0..snapshots {
        let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert!(bits(w.snapshot(s)) == bits(kw.snapshot(s)), "snapshot {s}: cpu and cuda-host weights differ");
    }
    let moved = w.snapshot(0).iter().zip(w.snapshot(snapshots - 1)).filter(|(a, b)| a != b).count();
    assert!(moved * 2 > w.len(), "{moved} of {} weights moved", w.len());

    let cases = [
        ("w_max = 100.0\n", 13, "needs `dopamine`"),
        ("dopamine = { ids = [0] }\nlambda = 0.1\n", 16, "`lambda` is not a parameter of rule = \"stdp_dopamine\""),
        ("dopamine = { ids = [0] }\ntau_c_ms = -1.0\n", 16, "`tau_c_ms` must be a positive time"),
        ("dopamine = { ids = [0] }\nw_min = 5.0\nw_max = 1.0\n", 17, "w_min <= w_max"),
    ];
    for (extra, line, message) in cases {
        let path = write(dir.path(), &format!("{base}{extra}"));
        let e = prepare_all(&RunRequest { scenario: path, ..Default::default() }).err().expect("refused").to_string();
        assert!(e.contains(message) && e.contains(&format!("s.toml:{line}:")), "{extra}: {e}");
    }
}

/// `[model.cell_types.X.parameters]` of an equation-defined model overrides the parameters it names and keeps the
/// others of `[model.parameters]`: CUBA 1000 as equations with the inhibitory cells' threshold raised out of reach
/// (one parameter) keeps their other parameters (the excitatory cells fire, the inhibitory ones never), and a
/// misspelt override is still refused.
#[test]
fn equation_cell_type_overrides_merge_into_the_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let text = |override_line: &str| {
        format!(
            r#"{CUBA_1K}
[model]
model = "equations"
method = "exact"
equations = """
dV/dt = -(V - E_L)/tau_m + (I_ex + I_in + I_stim)/C_m : mV
dI_ex/dt = -I_ex/tau_syn_ex : pA
dI_in/dt = -I_in/tau_syn_in : pA
"""
threshold = "V >= V_th"
reset = "V = V_reset"
refractory = "t_ref"
clamp = ["V"]
init = {{ V = "E_L" }}
inputs = {{ exc = "I_ex += w", inh = "I_in += w" }}
[model.parameters]
C_m = "200 pF"
tau_m = "20 ms"
E_L = "-49 mV"
V_th = "-50 mV"
V_reset = "-60 mV"
t_ref = "5 ms"
tau_syn_ex = "5 ms"
tau_syn_in = "10 ms"
[model.cell_types.I.parameters]
{override_line}

[init]
V = {{ dist = "uniform", lo = -60.0, hi = -50.0 }}
"#
        )
    };
    let path = write(dir.path(), &text("V_th = \"1000 mV\""));
    let s = prepare_all(&RunRequest { scenario: path, ..Default::default() }).unwrap();
    let run = &s.points[0].run;
    let (rec, _, _) = simulate(run, run.setup.seed, false, "t").unwrap();
    let names = &run.setup.network.neurons;
    let is_i = |i: &u32| names[*i as usize].cell_type == "I";
    assert_eq!(rec.spike_neurons.iter().filter(|i| is_i(i)).count(), 0, "inhibitory threshold out of reach");
    assert!(rec.spike_neurons.iter().filter(|i| !is_i(i)).count() > 100, "excitatory cells fire");
    let path = write(dir.path(), &text("V_thr = \"1000 mV\""));
    let e = prepare_all(&RunRequest { scenario: path, ..Default::default() }).err().map(|e| e.to_string());
    assert!(e.as_deref().is_some_and(|e| e.contains("`V_thr`") && e.contains("did you mean `V_th`")), "{e:?}");
}
