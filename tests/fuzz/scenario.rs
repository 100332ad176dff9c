//! Target `scenario`: mutated scenario files (all kinds: spiking runs, twin runs, fits, predictive coding),
//! read and prepared as `neurotwin run`/`fit` would before any work, in this process: for a spiking scenario
//! `load::parse` and, when the network is small, `runner::prepare_all` (sweep expansion, network loading and
//! compilation, stimuli, perturbations, read-outs, resource guards); `twin_run::plan`; the fits' `plan`.

use std::path::Path;

use neurotwin_predictive::{is_predictive_scenario, load_scenario};
use neurotwin_scenarios::fitting::{atlas_fit, calcium_fit, is_fit_scenario, read_fit_scenario, twin_run};
use neurotwin_scenarios::load::{parse, read};
use neurotwin_scenarios::runner::{RunRequest, prepare_all};
use neurotwin_scenarios::spec::{GeneratorSpec, ScenarioSpec};

use super::common::{CONNECTIONS_CSV, NEURONS_CSV, scenario};
use super::engine::{Shape, mutate};
use super::harness::{fuzz_in_process, repo};

/// Big generator settings of the bundled scenarios and their small stand-ins (a case must stay fast).
const SHRINK: &[(&str, &str)] = &[
    ("order = 2500", "order = 20"),
    ("order = 500", "order = 20"),
    ("n = 4000, k = 80", "n = 200, k = 20"),
    ("n_scaling = 0.1, k_scaling = 1.0", "n_scaling = 0.004, k_scaling = 1.0"),
    ("kind = \"flybrain\" }", "kind = \"flybrain\", scale = 0.001 }"),
];

fn shrink(text: &str) -> String {
    SHRINK.iter().fold(text.to_string(), |t, (big, small)| t.replace(big, small))
}

/// Fixture scenarios over the small CSV network (`common::scenario`), covering the optional sections.
fn fixtures() -> Vec<String> {
    let extra = [
        "",
        "[record]\nrate_bin_ms = 10.0\n\n[[readout]]\nlabel = \"ab\"\ntargets = { names = [\"A\", \"B\"] }\n\n\
         [[window]]\nlabel = \"w\"\nstart_ms = 10.0\nstop_ms = 50.0\n",
        "[[perturbation]]\nkind = \"block\"\nreceptor = \"ACh\"\ndose = 1.0\nic50 = 1.0\nhill = 1.0\n\n\
         [sweep]\nparam = \"perturbation.0.dose\"\nvalues = [0.0, 1.0, 10.0]\n",
        "[init]\nV_m = { dist = \"uniform\", lo = -65.0, hi = -55.0 }\n\n[[stimulus]]\nname = \"bg\"\nkind = \
         \"poisson\"\ntargets = { all = true }\nrate_hz = 100.0\nweight = 10.0\nreceptor = \"ACh\"\n",
        "[[stimulus]]\nkind = \"current\"\ntargets = { pattern = \"[BC]\" }\namplitude_pa = 5.0\nstart_ms = 10.0\n\
         stop_ms = 30.0\n",
    ];
    let mut v: Vec<String> = extra.iter().map(|e| scenario("duration_ms = 100.0\ndt_ms = 0.1\nseed = 3", e)).collect();
    v.push(scenario("duration_ms = 50.0\ntrials = 2", ""));
    v
}

/// Whether preparing `spec` is quick: generated networks only up to a few hundred thousand synapses, at
/// most 16 sweep points. Non-finite or negative sizes pass (they must be refused quickly).
fn cheap(spec: &ScenarioSpec) -> bool {
    let small = |x: f64, limit: f64| x.is_nan() || x <= limit;
    let net = match &spec.network.generator {
        None => true,
        Some(GeneratorSpec::Cuba(c)) => small(c.n as f64, 2000.0) && small(c.n as f64 * c.k as f64, 2e5),
        Some(GeneratorSpec::Coba(c)) => small(c.n as f64, 2000.0) && small(c.n as f64 * c.k as f64, 2e5),
        Some(GeneratorSpec::Brunel(b)) => {
            let n = 5.0 * b.order as f64;
            let k = if b.indegree_scales_with_n { 0.5 * b.order as f64 } else { b.ce as f64 + b.ci as f64 };
            small(n, 2000.0) && small(n * k, 3e5)
        }
        Some(GeneratorSpec::Pd14(p)) => small(p.n_scaling, 0.01) && small(p.n_scaling * p.k_scaling, 5e-3),
        Some(GeneratorSpec::FlyBrain(f)) => {
            small(f.scale * f.neurons as f64, 2000.0) && small(f.scale * f.connections as f64, 2e5)
        }
    };
    net && spec.sweep.as_ref().is_none_or(|s| s.values.len() <= 16)
}

#[test]
fn scenario_file() {
    super::set_fuzz_limits();
    let dir = tempfile::tempdir().unwrap();
    let scen = dir.path().join("scenarios");
    std::fs::create_dir(&scen).unwrap();
    // `../data/...` in the bundled scenarios resolves to the repository's data.
    std::os::unix::fs::symlink(repo().join("data"), dir.path().join("data")).unwrap();
    std::fs::write(scen.join("neurons.csv"), NEURONS_CSV).unwrap();
    std::fs::write(scen.join("connections.csv"), CONNECTIONS_CSV).unwrap();
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    for p in super::files_in(&repo().join("scenarios"), &[".toml"]) {
        if p.file_name().is_some_and(|n| n == "Cargo.toml") {
            continue;
        }
        let text = shrink(&std::fs::read_to_string(&p).unwrap());
        std::fs::write(scen.join(p.file_name().unwrap()), &text).unwrap();
        corpus.push(text.into_bytes());
    }
    corpus.extend(fixtures().into_iter().map(String::into_bytes));
    let case = scen.join("case.toml");
    let seeds: Vec<&str> = corpus.iter().map(|b| run_case(&case, b)).collect();
    println!("fuzz scenario: seeds: {seeds:?}");
    assert!(!seeds.contains(&"parse error"), "every seed must parse: {seeds:?}");
    fuzz_in_process(
        "scenario",
        "toml",
        "a scenario file next to the small CSV network and the bundled scenarios",
        |rng| mutate(rng, &corpus, Shape::Text),
        |_, bytes| run_case(&case, bytes),
    );
}

/// Reads the case the way `neurotwin run`/`fit` would (twin run, predictive coding, fit, or spiking scenario)
/// and prepares it; a spiking scenario only when it is cheap (else just parsed). Invalid UTF-8 is covered by
/// the readers.
fn run_case(case: &Path, bytes: &[u8]) -> &'static str {
    std::fs::write(case, bytes).unwrap();
    let text = String::from_utf8_lossy(bytes);
    let ok = |r: bool, what: &'static str| if r { what } else { "refused after parsing" };
    if twin_run::is_twin_scenario_file(case) {
        let Ok(file) = twin_run::read_twin_scenario(case) else { return "parse error" };
        return ok(twin_run::plan(&file).is_ok(), "twin planned");
    }
    if is_predictive_scenario(case) {
        return if load_scenario(case).is_ok() { "predictive loaded" } else { "parse error" };
    }
    if is_fit_scenario(&text) {
        let Ok(file) = read_fit_scenario(case) else { return "parse error" };
        let planned = if file.spec.fit.data.get_ref() == "calcium" {
            calcium_fit::plan(&file).is_ok()
        } else {
            atlas_fit::plan(&file).is_ok()
        };
        return ok(planned, "fit planned");
    }
    match parse(case, &text) {
        Ok(spec) if cheap(&spec) => {
            let req = RunRequest { scenario: case.to_path_buf(), threads: Some(1), ..Default::default() };
            ok(prepare_all(&req).is_ok(), "prepared")
        }
        Ok(_) => "parsed, too big to prepare",
        Err(_) => {
            let _ = read(case);
            "parse error"
        }
    }
}

/// Writes the bundled scenario `name` with `from` replaced by `to` next to its siblings (as the target does)
/// and returns its path.
fn bundled_with(dir: &Path, name: &str, from: &str, to: &str) -> std::path::PathBuf {
    let scen = dir.join("scenarios");
    std::fs::create_dir_all(&scen).unwrap();
    let _ = std::os::unix::fs::symlink(repo().join("data"), dir.join("data"));
    for p in super::files_in(&repo().join("scenarios"), &[".toml"]) {
        std::fs::copy(&p, scen.join(p.file_name().unwrap())).unwrap();
    }
    let text = std::fs::read_to_string(scen.join(name)).unwrap();
    assert!(text.contains(from), "{name} has no `{from}`");
    let path = scen.join(format!("case-{name}"));
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

/// Found by this target: `response_stop_ms = 1e308` in a propagation-atlas fit panicked with "attempt to add
/// with overflow" (scenarios/src/fitting/atlas_fit.rs, the response window `stop + 1` after the step count
/// saturated at usize::MAX); now the step count is refused.
#[test]
fn fit_with_huge_response_window_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = bundled_with(dir.path(), "celegans_fit_atlas.toml", "response_stop_ms = ", "response_stop_ms = 1e308 #");
    let file = read_fit_scenario(&path).unwrap();
    let Err(e) = atlas_fit::plan(&file) else { panic!("a 1e308 ms response window must be refused") };
    let e = e.to_string();
    assert!(e.contains("response_stop_ms") && e.contains("steps"), "{e}");
}

/// The same for a twin run: a duration of 1e308 ms must be refused, not overflow.
#[test]
fn twin_with_huge_duration_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = bundled_with(dir.path(), "celegans_twin_ach_block.toml", "duration_ms = ", "duration_ms = 1e308 #");
    let file = twin_run::read_twin_scenario(&path).unwrap();
    let Err(e) = twin_run::plan(&file) else { panic!("a 1e308 ms twin run must be refused") };
    assert!(e.to_string().contains("duration_ms"), "{e}");
}
