//! The propagation-atlas comparison: reading the pairs CSV (and its located errors), the anatomy baselines
//! against hand-checked wiring of the bundled worm, the scoring against predictions whose answer is known,
//! and the whole experiment end to end on a few stimulated neurons.

use std::path::{Path, PathBuf};

use neurotwin_connectome::{CompileOptions, TransmitterMap, compile, load_celegans_bundled};
use neurotwin_scenarios::ScenarioError;
use neurotwin_scenarios::atlas::data::parse_atlas;
use neurotwin_scenarios::atlas::report::{roc_curve, write_report};
use neurotwin_scenarios::atlas::{Anatomy, PredictedResponses, ResponseUnit, read_atlas, run_atlas, score_strain};
use neurotwin_scenarios::load::read;
use neurotwin_scenarios::runner::BackendKind;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn atlas_csv() -> PathBuf {
    repo().join("data/celegans/funatlas_pairs.csv")
}

fn err_line(e: ScenarioError) -> (usize, String) {
    match e {
        ScenarioError::At { line, message, .. } => (line, message),
        other => panic!("expected a located error, got {other}"),
    }
}

#[test]
fn bundled_atlas_has_the_published_counts() {
    let a = read_atlas(&atlas_csv()).unwrap();
    assert_eq!(a.strain_names(), ["wt", "unc31"]);
    let wt = a.strain("wt").unwrap();
    let unc = a.strain("unc31").unwrap();
    // Finite dFF entries of funatlas.h5 (see data/celegans/README.md).
    assert_eq!(wt.pairs.len(), 24_074);
    assert_eq!(unc.pairs.len(), 9_228);
    assert_eq!(wt.pairs.iter().filter(|p| p.q < 0.05).count(), 1_309);
    assert_eq!(unc.pairs.iter().filter(|p| p.q < 0.05).count(), 430);
}

#[test]
fn malformed_atlas_lines_are_located() {
    let p = Path::new("atlas.csv");
    let h = "strain,stimulated,responder,dff,q,n_obs\n";
    let cases = [
        ("strain,stim,resp\nwt,A,B,1,0.1,2\n", 1, "header"),
        (&*format!("{h}wt,A,B,1,0.1\n"), 2, "5 fields"),
        (&*format!("{h}wt,A,B,1,0.1,2\nwt,A,C,x,0.1,2\n"), 3, "`dff`"),
        (&*format!("{h}wt,A,B,NaN,0.1,2\n"), 2, "unmeasured"),
        (&*format!("{h}wt,A,B,0.3,1.5,2\n"), 2, "q-value"),
        (&*format!("{h}wt,A,B,0.3,0.5,-2\n"), 2, "`n_obs`"),
        (&*format!("{h}wt,,B,0.3,0.5,2\n"), 2, "`stimulated` is empty"),
    ];
    for (text, line, needle) in cases {
        let (l, m) = err_line(parse_atlas(p, text).unwrap_err());
        assert_eq!(l, line, "{m}");
        assert!(m.contains(needle), "{m:?} should mention {needle}");
    }
    let ok = parse_atlas(p, &format!("{h}wt,A,B,0.3,nan,2\nunc31,A,B,0.1,0.01,1\n")).unwrap();
    assert_eq!(ok.strains.len(), 2);
    assert!(ok.strain("wt").unwrap().pairs[0].q.is_nan());
}

fn worm() -> neurotwin_connectome::CompiledNetwork {
    let c = load_celegans_bundled().unwrap();
    let opt = CompileOptions {
        dt_ms: 0.1,
        transmitters: TransmitterMap::celegans(),
        weight_per_synapse: 2.0,
        default_delay_ms: 1.0,
        gap_per_junction_ns: 0.05,
        ..Default::default()
    };
    compile(&c, &opt).unwrap()
}

/// Direct strengths and hop counts against synapse counts of Cook et al. 2019 (data/celegans/README.md):
/// ALML → AVDR 3 chemical synapses (2 pA each), AVDL → AVAL 37; AVAL–AVAR 18 gap junctions (0.05 nS each).
#[test]
fn anatomy_baselines_match_known_wiring() {
    let net = worm();
    let id = |n: &str| net.neurons.iter().position(|x| x.name == n).unwrap() as u32;
    let a = Anatomy::new(&net);
    // Gap conductance between two cells, straight from the gap matrix.
    let gap = |i: u32, j: u32| -> f64 {
        let g = &net.gap;
        (g.row_ptr[i as usize]..g.row_ptr[i as usize + 1])
            .filter(|&k| g.partner[k as usize] == j)
            .map(|k| g.conductance[k as usize] as f64)
            .sum()
    };
    assert_eq!(gap(id("ALML"), id("AVDR")), 0.0);
    assert_eq!(a.direct(id("ALML"), id("AVDR")), 6.0);
    assert!((a.direct(id("AVDL"), id("AVAL")) - (74.0 + gap(id("AVAL"), id("AVDL")))).abs() < 1e-9);
    assert!((gap(id("AVAR"), id("AVAL")) - 18.0 * 0.05).abs() < 1e-6);
    assert!(a.direct(id("AVAL"), id("AVAR")) >= gap(id("AVAR"), id("AVAL")));
    let h = a.hops_from(id("ALML"));
    assert_eq!(h[id("ALML") as usize], Some(0));
    assert_eq!(h[id("AVDR") as usize], Some(1));
    // AVA is reached through AVD (ALML → AVDR → AVAL) unless there is a direct connection.
    let hops_ava = h[id("AVAL") as usize].unwrap();
    assert!((1..=2).contains(&hops_ava));
}

/// A prediction equal to the measured responder indicator scores AUC 1; its negation scores 0; the sign
/// agreement of an all-positive prediction is the fraction of responders with positive ΔF/F.
#[test]
fn scoring_recovers_known_answers() {
    let net = worm();
    let names: Vec<String> = net.neurons.iter().map(|n| n.name.clone()).collect();
    let atlas = read_atlas(&atlas_csv()).unwrap();
    let wt = atlas.strain("wt").unwrap();
    let id = |n: &str| names.iter().position(|x| x.eq_ignore_ascii_case(n)).map(|i| i as u32);
    let mut stimulated: Vec<u32> = wt.pairs.iter().filter_map(|p| id(&p.stimulated)).collect();
    stimulated.sort_unstable();
    stimulated.dedup();
    let row = |j: u32| stimulated.iter().position(|&s| s == j).unwrap();
    let mut perfect = vec![vec![0.0; names.len()]; stimulated.len()];
    for p in &wt.pairs {
        if let (Some(j), Some(i)) = (id(&p.stimulated), id(&p.responder))
            && p.q < 0.05
        {
            perfect[row(j)][i as usize] = 1.0;
        }
    }
    let anatomy = Anatomy::new(&net);
    let pred =
        PredictedResponses { stimulated: stimulated.clone(), response: perfect.clone(), unit: ResponseUnit::DeltaDff };
    let s = score_strain(wt, &pred, &names, &anatomy, 0.05);
    assert_eq!(s.auc_model, Some(1.0));
    assert!(s.n_pairs > 20_000 && s.n_responders > 1000, "{} pairs, {} responders", s.n_pairs, s.n_responders);
    assert!(s.pairs.iter().all(|p| p.stimulated != p.responder));
    let positive = s.pairs.iter().filter(|p| p.is_responder && p.measured_dff > 0.0).count();
    let signed = s.pairs.iter().filter(|p| p.is_responder && p.measured_dff != 0.0).count();
    assert_eq!(s.sign_agreement, Some(positive as f64 / signed as f64));
    // The ROC curve of the perfect score goes through (0, 1).
    assert!(roc_curve(&s.pairs, |p| p.predicted).contains(&(0.0, 1.0)));
    let negated: Vec<Vec<f64>> = perfect.iter().map(|r| r.iter().map(|x| 1.0 - x).collect()).collect();
    let pred = PredictedResponses { stimulated, response: negated, unit: ResponseUnit::DeltaDff };
    assert_eq!(score_strain(wt, &pred, &names, &anatomy, 0.05).auc_model, Some(0.0));
    // The anatomy baselines are informative on this atlas (AUC > 0.5), as Randi et al. report.
    assert!(s.auc_direct.unwrap() > 0.5 && s.auc_hops.unwrap() > 0.5, "{:?} {:?}", s.auc_direct, s.auc_hops);
}

/// The whole experiment on three stimulated neurons, 400 ms, one trial: responses exist where the wiring
/// leads, the stimulated neurons' own pairs are excluded, and the outputs are written.
#[test]
fn atlas_experiment_end_to_end_on_a_subset() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"name = "atlas-subset"
[network]
source = "celegans"
transmitters = "celegans"
weight_per_synapse = 2.0
default_delay_ms = 1.0
gap_per_junction_ns = 0.05
[model]
model = "lif_exp"
c_m = 50.0
tau_m = 20.0
e_l = -65.0
v_th = -50.0
v_reset = -65.0
t_ref = 2.0
tau_syn_ex = 5.0
tau_syn_in = 10.0
[run]
duration_ms = 400.0
seed = 2
[[stimulus]]
kind = "poisson"
targets = {{ all = true }}
rate_hz = 250.0
weight = 20.0
receptor = "ACh"
[compare]
kind = "propagation-atlas"
atlas = "{}"
stim_start_ms = 100.0
stim_stop_ms = 300.0
stimulated = {{ names = ["AVJL", "RIML", "ADAR"] }}
"#,
        atlas_csv().display()
    );
    let path = dir.path().join("atlas.toml");
    std::fs::write(&path, text).unwrap();
    let file = read(&path).unwrap();
    let r = run_atlas(&file, BackendKind::Cpu, false).unwrap();
    assert_eq!(r.stimulated, ["ADAR", "AVJL", "RIML"]);
    assert_eq!(r.strains.len(), 2);
    let wt = &r.strains[0];
    assert!(wt.n_pairs > 400, "{} pairs", wt.n_pairs);
    assert!(wt.pairs.iter().all(|p| r.stimulated.contains(&p.stimulated) && p.stimulated != p.responder));
    // Direct targets of a neuron forced to 60 Hz respond more, on average, than unreachable cells.
    let mean = |f: &dyn Fn(&&neurotwin_scenarios::atlas::ScoredPair) -> bool| {
        let v: Vec<f64> = wt.pairs.iter().filter(f).map(|p| p.predicted.abs()).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let direct = mean(&|p| p.hops == Some(1));
    let far = mean(&|p| p.hops.is_none_or(|h| h >= 3));
    assert!(direct > far, "direct targets {direct:e} vs far cells {far:e}");
    let files = write_report(&dir.path().join("out"), &r).unwrap();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(bytes.len() > 100, "{}", f.display());
    }
    assert_eq!(&std::fs::read(&files[2]).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(json["strains"][0]["strain"], "wt");
}

#[test]
fn compare_section_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let base =
        "name = \"x\"\n[network]\nsource = \"celegans\"\n[model]\nmodel = \"lif_exp\"\n[run]\nduration_ms = 100.0\n";
    for (extra, needle) in [
        ("[compare]\nkind = \"propagation-atlas\"\n", "missing `atlas`"),
        (
            "[compare]\nkind = \"propagation-atlas\"\natlas = \"a.csv\"\nstim_start_ms = 90.0\nstim_stop_ms = 50.0\n",
            "stim_start_ms < stim_stop_ms",
        ),
        ("[compare]\nkind = \"propagation-atlas\"\natlas = \"a.csv\"\nindicator = \"GCaMP99\"\n", "unknown indicator"),
        ("[compare]\nkind = \"propagation-atlas\"\natlas = \"a.csv\"\nq_threshold = 2.0\n", "q_threshold"),
        ("[compare]\nkind = \"propagation-atlas\"\natlas = \"a.csv\"\nbogus = 1\n", "unknown field"),
    ] {
        let path = dir.path().join("s.toml");
        std::fs::write(&path, format!("{base}{extra}")).unwrap();
        let e = match read(&path) {
            Ok(f) => run_atlas(&f, BackendKind::Cpu, false).unwrap_err(),
            Err(e) => e,
        };
        let m = e.to_string();
        assert!(m.contains(needle) && m.contains("s.toml:"), "{m:?} should be located and mention {needle}");
    }
}
