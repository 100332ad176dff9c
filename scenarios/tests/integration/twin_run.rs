//! Twin runs (`[twin]` scenarios): a fitted or unfitted rate-model twin under a receptor block, silencing
//! and scaling. Checked against direct [`RateModel`] runs: dose 0 is bit-identical to no perturbation, an
//! infinite dose is bit-identical to the network with the blocked class's weights set to 0 (and a huge
//! finite dose within 1e-12), the block's effect shrinks monotonically with dose on a network whose
//! answer is known (linear regime), other receptor classes are untouched; fitted files that do not match
//! their fit scenario, unknown receptor classes and bad input are refused with located messages and
//! nothing written.

use std::path::{Path, PathBuf};

use neurotwin_fit::ParamSet;
use neurotwin_fit::rate::{Input, RateModel, RateValues};
use neurotwin_scenarios::fitting::twin_run::{
    TwinPlan, TwinRunReport, execute, plan, read_twin_scenario, run_twin, simulate,
};

// A small network: S (sensory, ACh) → I, J (ACh); I → M (ACh); J → M (Glu, excitatory); a gap junction
// I–J; and a separate glutamatergic pathway T → K.
const NEURONS: &str = "id,name,cell_type,transmitter
1,S,sensory,ACh
2,I,inter,ACh
3,J,inter,Glu
4,M,motor,ACh
5,T,sensory,Glu
6,K,inter,ACh
";
const CONNECTIONS: &str = "pre,post,count,type
1,2,5,chemical
1,3,3,chemical
2,4,4,chemical
3,4,2,chemical
2,3,2,electrical
5,6,3,chemical
";

/// A fit scenario over the small network; `params` replaces the default parameter tables.
fn fit_toml(activation: &str, params: &str) -> String {
    format!(
        r#"name = "toy-fit"
[network]
connections = "connections.csv"
neurons = "neurons.csv"
transmitters = "celegans"

[fit]
model = "rate"
activation = "{activation}"
dt_ms = 10.0
data = "propagation-atlas"
stim_start_ms = 100.0
stim_stop_ms = 300.0
response_stop_ms = 1000.0
{params}
"#
    )
}

/// ReLU with θ = −1: every V stays above −1 (inputs are excitatory, V starts at 0), so the network is
/// linear and responses are known in form.
const LINEAR_PARAMS: &str = r#"
[fit.params.tau]
grouping = "cell_type"
init = 50.0
lo = 10.0

[fit.params.theta]
grouping = "cell_type"
init = -1.0

[fit.params.slope]
init = 1.0
lo = 0.0

[fit.params.strength]
grouping = "receptor"
init = 0.3
lo = 0.0

[fit.params.gap]
init = 0.05
lo = 0.0
"#;

/// A twin scenario; `perturbation` and `extra` are appended.
fn twin_toml(twin: &str, perturbation: &str, extra: &str) -> String {
    format!(
        r#"name = "toy-twin"
[twin]
fit_scenario = "fit.toml"
{twin}

[run]
duration_ms = 1000.0

[[stimulus]]
targets = {{ names = ["S", "T"] }}
amplitude = 2.0
start_ms = 100.0
stop_ms = 300.0

{perturbation}

[[readout]]
label = "M"
targets = {{ names = ["M"] }}

[[readout]]
label = "K"
targets = {{ names = ["K"] }}

[[window]]
label = "response"
start_ms = 100.0
stop_ms = 1000.0
{extra}
"#
    )
}

const BLOCK: &str = r#"[[perturbation]]
kind = "block"
receptor = "ACh"
dose = 0.0
ic50 = 1.0
hill = 1.0
"#;

struct Toy {
    dir: tempfile::TempDir,
}

impl Toy {
    fn new(activation: &str, params: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("neurons.csv"), NEURONS).unwrap();
        std::fs::write(dir.path().join("connections.csv"), CONNECTIONS).unwrap();
        std::fs::write(dir.path().join("fit.toml"), fit_toml(activation, params)).unwrap();
        Self { dir }
    }

    fn linear() -> Self {
        Self::new("relu", LINEAR_PARAMS)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn plan(&self, text: &str) -> Result<TwinPlan, String> {
        let p = self.write("twin.toml", text);
        let f = read_twin_scenario(&p).map_err(|e| e.to_string())?;
        plan(&f).map_err(|e| e.to_string())
    }

    /// The error of a scenario that must be refused.
    fn err(&self, text: &str) -> String {
        match self.plan(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    fn report(&self, text: &str) -> TwinRunReport {
        let p = self.write("twin.toml", text);
        let f = read_twin_scenario(&p).unwrap();
        let pl = plan(&f).unwrap_or_else(|e| panic!("{e}"));
        execute(&f, &pl)
    }

    /// A fitted-parameter file for the fit scenario as `neurotwin fit` writes it, with every raw number
    /// shifted by `shift`; `edit` may change the JSON.
    fn fitted_file(&self, shift: f64, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
        let f = read_twin_scenario(&self.write("probe.toml", &twin_toml("", "", ""))).unwrap();
        let pl = plan(&f).unwrap();
        let mut p: ParamSet = pl.twin.unfitted.clone();
        p.raw.iter_mut().for_each(|r| *r += shift);
        let mut v = serde_json::json!({
            "format": "neurotwin-fitted-params/1",
            "model": {"model": "rate", "activation": "relu", "dt_ms": 10.0, "network": "toy-fit",
                      "scenario": self.path("fit.toml").display().to_string()},
            "values": p.to_values(),
            "raw": p.raw,
            "blocks": p.blocks,
        });
        edit(&mut v);
        self.write("fitted.json", &serde_json::to_string_pretty(&v).unwrap())
    }
}

/// `twin.toml:N` of the first line of `text` holding `needle`.
fn at(text: &str, needle: &str) -> String {
    let n = text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("`{needle}` not in the text")) + 1;
    format!("twin.toml:{n}")
}

fn response(r: &TwinRunReport, twin: &str, group: &str) -> Vec<f64> {
    r.responses(twin, group, "response").into_iter().map(|v| v.unwrap()).collect()
}

/// A direct run of the rate model: the plan's stimulus, no perturbation machinery.
fn direct(pl: &TwinPlan, values: &RateValues) -> Vec<Vec<f64>> {
    let model = RateModel::new(&pl.twin.net, pl.twin.dt, pl.twin.activation);
    let input = Input { steps: pl.steps, v0: vec![], pulses: pl.points[0].inputs.pulses.clone(), clamp: None };
    model.trajectory(values, &input)
}

fn bits(t: &[Vec<f64>]) -> Vec<Vec<u64>> {
    t.iter().map(|r| r.iter().map(|x| x.to_bits()).collect()).collect()
}

fn ach_zeroed(pl: &TwinPlan, v: &RateValues) -> RateValues {
    let net = &pl.twin.net;
    let ach = net.receptors.iter().position(|r| r.name == "ACh").unwrap() as u8;
    let mut z = v.clone();
    (0..net.n_connections()).filter(|&c| net.receptor[c] == ach).for_each(|c| z.w[c] = 0.0);
    z
}

fn run_point(pl: &TwinPlan, k: usize, params: &ParamSet) -> Vec<Vec<f64>> {
    let model = RateModel::new(&pl.twin.net, pl.twin.dt, pl.twin.activation);
    simulate(&model, &RateValues::from_params(&pl.twin.net, params), &pl.points[k].inputs, true)
}

#[test]
fn dose_zero_is_bit_identical_to_no_perturbation() {
    let toy = Toy::new("sigmoid", &LINEAR_PARAMS.replace("init = -1.0", "init = 0.5"));
    let pl = toy.plan(&twin_toml("", BLOCK, "")).unwrap();
    let v = RateValues::from_params(&pl.twin.net, &pl.twin.unfitted);
    assert_eq!(bits(&run_point(&pl, 0, &pl.twin.unfitted)), bits(&direct(&pl, &v)));
    // … and through the whole report: the same numbers as a file without the perturbation.
    let a = toy.report(&twin_toml("", BLOCK, ""));
    let b = toy.report(&twin_toml("", "", ""));
    for g in ["M", "K"] {
        let (x, y) = (response(&a, "unfitted", g), response(&b, "unfitted", g));
        assert_eq!(x[0].to_bits(), y[0].to_bits(), "{g}: {x:?} vs {y:?}");
    }
    // A wash-in that starts later, at dose 0, changes nothing either.
    let washed = BLOCK.replace("hill = 1.0", "hill = 1.0\nstart_ms = 200.0\ntau_on_ms = 50.0");
    let pl2 = toy.plan(&twin_toml("", &washed, "")).unwrap();
    assert_eq!(bits(&run_point(&pl2, 0, &pl2.twin.unfitted)), bits(&direct(&pl2, &v)));
}

#[test]
fn infinite_dose_equals_the_network_without_the_blocked_class() {
    for (activation, params) in
        [("relu", LINEAR_PARAMS.to_string()), ("sigmoid", LINEAR_PARAMS.replace("init = -1.0", "init = 0.5"))]
    {
        let toy = Toy::new(activation, &params);
        let pl = toy.plan(&twin_toml("", &BLOCK.replace("dose = 0.0", "dose = inf"), "")).unwrap();
        let v = RateValues::from_params(&pl.twin.net, &pl.twin.unfitted);
        let zeroed = direct(&pl, &ach_zeroed(&pl, &v));
        assert_eq!(bits(&run_point(&pl, 0, &pl.twin.unfitted)), bits(&zeroed), "{activation}: dose = inf");
        // The ACh class matters here (the comparison is not vacuous).
        assert_ne!(bits(&direct(&pl, &v)), bits(&zeroed));
        let pl = toy.plan(&twin_toml("", &BLOCK.replace("dose = 0.0", "dose = 1e15"), "")).unwrap();
        let huge = run_point(&pl, 0, &pl.twin.unfitted);
        let worst = huge.iter().flatten().zip(zeroed.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst <= 1e-12, "{activation}: dose 1e15 differs from the zeroed network by {worst:e}");
    }
}

#[test]
fn block_shrinks_the_ach_pathway_monotonically_and_leaves_other_classes_alone() {
    let toy = Toy::linear();
    let sweep = "[sweep]\nparam = \"perturbation.0.dose\"\nvalues = [0.0, 0.3, 1.0, 3.0, 10.0, 100.0, inf]\n";
    let r = toy.report(&twin_toml("", BLOCK, sweep));
    let m = response(&r, "unfitted", "M");
    assert!(m[0] > 1e-3, "the stimulus must reach M: {m:?}");
    for w in m.windows(2) {
        assert!(w[1] < w[0], "M's response must fall with dose: {m:?}");
    }
    // Through ACh only: at a full block M's response is gone exactly.
    assert_eq!(*m.last().unwrap(), 0.0, "{m:?}");
    // Linear network: M's response is a(1 − b)² + c(1 − b) (path S→I→M has two ACh synapses, S→J→M one,
    // the gap junction I–J mixes them at first order in each); check the steady-block fractions.
    let blocks: Vec<f64> = r.points.iter().map(|p| p.blocks[0].steady_block).collect();
    let want = [0.0, 0.3 / 1.3, 0.5, 0.75, 10.0 / 11.0, 100.0 / 101.0, 1.0];
    for (b, w) in blocks.iter().zip(want) {
        assert!((b - w).abs() < 1e-15, "{blocks:?}");
    }
    // T → K is glutamatergic: the same to the last bit at every dose.
    let k = response(&r, "unfitted", "K");
    assert!(k[0] > 1e-3);
    assert!(k.iter().all(|x| x.to_bits() == k[0].to_bits()), "{k:?}");
}

#[test]
fn silence_and_scale_behave_as_documented() {
    let toy = Toy::linear();
    // Silencing S for the whole run: nothing downstream responds (S is held at 0, with no output).
    let silence = "[[perturbation]]\nkind = \"silence\"\ntargets = { names = [\"S\"] }\n";
    let r = toy.report(&twin_toml("", silence, ""));
    assert_eq!(response(&r, "unfitted", "M"), vec![0.0]);
    assert!(response(&r, "unfitted", "K")[0] > 1e-3);
    // Scale ACh by 0 equals dose = inf; scale by 1 equals no perturbation.
    let scale = |f: &str| format!("[[perturbation]]\nkind = \"scale\"\nreceptor = \"ACh\"\nfactor = {f}\n");
    let zero = toy.report(&twin_toml("", &scale("0.0"), ""));
    let inf = toy.report(&twin_toml("", &BLOCK.replace("dose = 0.0", "dose = inf"), ""));
    let one = toy.report(&twin_toml("", &scale("1.0"), ""));
    let none = toy.report(&twin_toml("", "", ""));
    assert_eq!(response(&zero, "unfitted", "M")[0].to_bits(), response(&inf, "unfitted", "M")[0].to_bits());
    assert_eq!(response(&one, "unfitted", "M")[0].to_bits(), response(&none, "unfitted", "M")[0].to_bits());
    // Silencing only after the stimulus lets part of the response through.
    let late = "[[perturbation]]\nkind = \"silence\"\ntargets = { names = [\"I\", \"J\"] }\nstart_ms = 500.0\n";
    let part = response(&toy.report(&twin_toml("", late, "")), "unfitted", "M")[0];
    let full = response(&none, "unfitted", "M")[0];
    assert!(part > 0.0 && part < full, "{part} vs {full}");
}

#[test]
fn fitted_and_unfitted_toy_twins_differ_and_the_fitted_raw_numbers_are_used() {
    let toy = Toy::linear();
    let fitted = toy.fitted_file(0.3, |_| {});
    let r = toy.report(&twin_toml(
        &format!("fitted = \"{}\"\ncompare_unfitted = true", fitted.file_name().unwrap().to_str().unwrap()),
        BLOCK,
        "",
    ));
    assert_eq!(r.twins(), vec!["fitted".to_string(), "unfitted".to_string()]);
    let (f, u) = (response(&r, "fitted", "M")[0], response(&r, "unfitted", "M")[0]);
    assert!((f - u).abs() > 1e-6 * u.abs(), "fitted {f} vs unfitted {u}");
    // The fitted twin is the layout with the file's raw numbers.
    let pl = toy.plan(&twin_toml("fitted = \"fitted.json\"", "", "")).unwrap();
    let (_, p) = pl.twin.fitted.as_ref().unwrap();
    let want: Vec<f64> = pl.twin.unfitted.raw.iter().map(|r| r + 0.3).collect();
    assert_eq!(p.raw, want);
}

#[test]
fn mismatched_fitted_files_are_refused_with_the_block_and_the_fix() {
    let toy = Toy::linear();
    let twin = twin_toml("fitted = \"fitted.json\"", BLOCK, "");
    // Fitted with another grouping of tau (global): the group labels differ.
    let other = Toy::new("relu", &LINEAR_PARAMS.replacen("grouping = \"cell_type\"\ninit = 50.0", "init = 50.0", 1));
    let f = other.fitted_file(0.0, |_| {});
    std::fs::copy(&f, toy.path("fitted.json")).unwrap();
    let e = toy.err(&twin);
    assert!(e.contains("fitted.json") && e.contains("`tau`") && e.contains("refit"), "{e}");
    // Another network name, activation, step; a hand-edited value; a wrong format; a missing file.
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|v| v["model"]["network"] = "other-fit".into()), "other-fit"),
        (Box::new(|v| v["model"]["activation"] = "sigmoid".into()), "activation"),
        (Box::new(|v| v["model"]["dt_ms"] = 5.0.into()), "dt_ms"),
        (Box::new(|v| v["values"]["gap"]["all"] = 7.0.into()), "values.gap.all"),
        (Box::new(|v| v["format"] = "something-else".into()), "format"),
        (
            Box::new(|v| {
                v["raw"].as_array_mut().unwrap().pop();
            }),
            "raw numbers",
        ),
        (Box::new(|v| v["blocks"].as_array_mut().unwrap().truncate(2)), "parameter blocks"),
    ];
    for (edit, want) in cases {
        toy.fitted_file(0.1, edit);
        let e = toy.err(&twin);
        assert!(e.contains("fitted.json") && e.contains(want), "want `{want}` in: {e}");
    }
    std::fs::remove_file(toy.path("fitted.json")).unwrap();
    let e = toy.err(&twin);
    assert!(e.contains(&format!("{}:", at(&twin, "fitted.json"))) && e.contains("neurotwin fit"), "{e}");
}

#[test]
fn unknown_receptor_class_names_the_valid_ones_at_its_line() {
    let toy = Toy::linear();
    let text = twin_toml("", &BLOCK.replace("\"ACh\"", "\"nicotinic\""), "");
    let e = toy.err(&text);
    assert!(e.contains(&format!("{}:", at(&text, "nicotinic"))), "{e}");
    for want in ["`nicotinic`", "this network has: ACh, Glu_exc"] {
        assert!(e.contains(want), "want `{want}` in: {e}");
    }
}

#[test]
fn bad_input_is_refused_with_file_and_line() {
    let toy = Toy::linear();
    let base = twin_toml("", BLOCK, "");
    // (scenario text, line holding this, more text the message must hold)
    let cases: Vec<(String, &str, &str)> = vec![
        (base.replace("duration_ms = 1000.0", "duration_ms = 1005.0"), "duration_ms", "multiple"),
        (base.replace("duration_ms = 1000.0", "duration_ms = 1000.0\ndt_ms = 0.1"), "dt_ms = 0.1", "remove `dt_ms`"),
        (base.replace("amplitude = 2.0", "amplitude = 2.0\nrate_hz = 3.0"), "rate_hz", "rate_hz"),
        (base.replace("[\"S\", \"T\"]", "[\"S\", \"X9\"]"), "X9", "unknown neuron name `X9`"),
        (twin_toml("compare_unfitted = true", BLOCK, ""), "compare_unfitted", "needs `twin.fitted`"),
        (base.replace("dose = 0.0", "dose = -1.0"), "dose = -1.0", "must be ≥ 0"),
        (base.replace("kind = \"block\"", "kind = \"poison\""), "poison", "block, scale, silence, cut"),
        (base.replace("receptor = \"ACh\"", "receptor = \"ACh\"\nfactor = 2.0"), "kind = \"block\"", "`factor`"),
        (base.replace("fit.toml", "nofit.toml"), "nofit.toml", "is not a file"),
        (twin_toml("", BLOCK, "[sweep]\nparam = \"perturbation.0.dosage\"\nvalues = [1.0]\n"), "dosage", "no key"),
        (
            twin_toml("", BLOCK, "[sweep]\nparam = \"perturbation.0.dose\"\nvalues = [-2.0]\n"),
            "param = ",
            "sweep point 0",
        ),
        (base.replace("stop_ms = 300.0", "stop_ms = 305.0"), "stop_ms = 305.0", "multiple"),
    ];
    for (text, line, want) in cases {
        let e = toy.err(&text);
        let at = at(&text, line);
        assert!(e.contains(&format!("{at}:")) && e.contains(want), "want `{at}` and `{want}` in: {e}");
    }
}

#[test]
fn outputs_are_written_and_the_output_folder_may_not_hold_an_input() {
    let toy = Toy::linear();
    let sweep = "[sweep]\nparam = \"perturbation.0.dose\"\nvalues = [0.0, 1.0, 10.0]\n";
    let p = toy.write("twin.toml", &twin_toml("", BLOCK, sweep));
    let f = read_twin_scenario(&p).unwrap();
    let out = toy.path("out");
    let (r, dir) = run_twin(&f, Some(&out), false).unwrap();
    assert_eq!(dir, out);
    let csv = std::fs::read_to_string(out.join("dose_response.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "twin,dose,block_ACh,readout,window,mean_v,control_v,response");
    assert_eq!(lines.len(), 1 + 3 * 2, "{csv}");
    assert!(lines[1].starts_with("unfitted,0.0,0,M,response,"), "{}", lines[1]);
    let png = std::fs::read(out.join("dose_response.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["points"].as_array().unwrap().len(), 3);
    assert_eq!(summary["sweep_param"], "perturbation.0.dose");
    assert_eq!(r.points.len(), 3);
    // The three outputs and the run manifest.
    assert_eq!(files(&out).len(), 4, "{:?}", files(&out));
    assert!(out.join(".neurotwin-run.json").is_file());

    // The scenario's own folder as the output: refused, nothing written.
    let e = run_twin(&f, Some(toy.dir.path()), false).unwrap_err().to_string();
    assert!(e.contains("contains the input"), "{e}");
    // A failing check writes nothing.
    let bad = toy.write("bad.toml", &twin_toml("", &BLOCK.replace("\"ACh\"", "\"nope\""), ""));
    let out2 = toy.path("out2");
    assert!(plan(&read_twin_scenario(&bad).unwrap()).is_err());
    assert!(run_twin(&read_twin_scenario(&bad).unwrap(), Some(&out2), false).is_err());
    assert!(!out2.exists());
}

fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect()
}

// ----- the bundled example: the worm twin fitted to the propagation atlas -----

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("celegans_twin_ach_block.toml")
}

#[test]
fn bundled_fitted_twin_matches_its_fit_scenario_and_differs_from_the_unfitted_one() {
    let f = read_twin_scenario(&bundled()).unwrap();
    let pl = plan(&f).unwrap_or_else(|e| panic!("{e}"));
    assert!(pl.twin.fitted.is_some());
    assert_eq!(pl.points.len(), 5);
    assert_ne!(pl.twin.fitted.as_ref().unwrap().1.raw, pl.twin.unfitted.raw);
    let r = execute(&f, &pl);
    for g in ["AVA", "AVD", "AVB"] {
        let (fit, unfit) = (response(&r, "fitted", g), response(&r, "unfitted", g));
        assert!(fit.iter().chain(&unfit).all(|x| x.is_finite()), "{g}: {fit:?} {unfit:?}");
        assert!(fit.iter().zip(&unfit).any(|(a, b)| (a - b).abs() > 1e-9), "{g}: fitted = unfitted: {fit:?}");
    }
    // Dose 0 is the unperturbed fitted twin, bit for bit; an infinite dose is the twin without ACh.
    let (_, fitted) = pl.twin.fitted.as_ref().unwrap();
    let v = RateValues::from_params(&pl.twin.net, fitted);
    assert_eq!(bits(&run_point(&pl, 0, fitted)), bits(&direct(&pl, &v)));
    // The same file with an infinite dose, in another folder (its relative paths made absolute).
    let scen = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(bundled())
        .unwrap()
        .replace("dose = 0.0", "dose = inf")
        .replace("values = [0.0, 0.3, 1.0, 3.0, 10.0]", "values = [inf]")
        .replace("\"celegans_fit_atlas.toml\"", &format!("{:?}", scen.join("celegans_fit_atlas.toml")))
        .replace("\"../data/", &format!("\"{}/../data/", scen.display()));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("inf.toml");
    std::fs::write(&p, text).unwrap();
    let pl_inf = plan(&read_twin_scenario(&p).unwrap()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bits(&run_point(&pl_inf, 0, fitted)), bits(&direct(&pl_inf, &ach_zeroed(&pl_inf, &v))));
}

#[test]
fn bundled_fitted_twin_reproduces_the_fits_own_predictions() {
    // `pairs.csv` of the `neurotwin fit scenarios/celegans_fit_atlas.toml` run that made
    // data/celegans/fitted_twin_atlas.json (unc-31 rows of the final twin, stimulated ADAL; columns
    // `fitted`, `unfitted`): the fit's protocol (step of 5 from 1 s to 3 s, mean V over 1–20 s minus
    // a control run) computed by the fit's own code. Refitting and re-bundling changes the fitted ones.
    let expected = [
        ("ADAR", 6.26934515755404e-2, 1.7885282606772357e-2),
        ("ADER", 2.029378188068809e-2, 2.4850036823311546e-4),
        ("ADLL", 2.7834886061333775e-2, 1.4504882899862032e-3),
    ];
    let scen = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = format!(
        r#"name = "atlas-protocol"
[twin]
fit_scenario = {:?}
fitted = {:?}
compare_unfitted = true
[run]
duration_ms = 20000.0
[[stimulus]]
targets = {{ names = ["ADAL"] }}
amplitude = 5.0
start_ms = 1000.0
stop_ms = 3000.0
[[window]]
label = "response"
start_ms = 1000.0
stop_ms = 20000.0
"#,
        scen.join("celegans_fit_atlas.toml"),
        scen.join("../data/celegans/fitted_twin_atlas.json")
    );
    for (name, _, _) in expected {
        text += &format!("[[readout]]\nlabel = \"{name}\"\ntargets = {{ names = [\"{name}\"] }}\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("atlas.toml");
    std::fs::write(&p, text).unwrap();
    let f = read_twin_scenario(&p).unwrap();
    let r = execute(&f, &plan(&f).unwrap_or_else(|e| panic!("{e}")));
    for (name, fitted, unfitted) in expected {
        for (twin, want) in [("fitted", fitted), ("unfitted", unfitted)] {
            let got = response(&r, twin, name)[0];
            assert!((got - want).abs() <= 1e-12 * want.abs(), "{twin} {name}: {got:e}, the fit predicted {want:e}");
        }
    }
}
