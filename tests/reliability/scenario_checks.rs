//! Scenario files (`neurotwin run scenario.toml`): nonsense is rejected before simulating, with an error
//! naming the field and the valid range; the scenario's settings are honoured; `name` cannot leave the
//! working folder.

use std::path::Path;
use std::process::Output;

use super::common::*;

const RUN_100MS: &str = "duration_ms = 100.0";

/// Writes the small network and `text` as `s.toml` into `dir` and runs `neurotwin <cmd> s.toml <args>`.
fn run_in(dir: &Path, cmd: &str, text: &str, args: &[&str]) -> Output {
    write(dir, "neurons.csv", NEURONS_CSV);
    write(dir, "connections.csv", CONNECTIONS_CSV);
    write(dir, "s.toml", text);
    let mut all = vec![cmd, "s.toml"];
    all.extend_from_slice(args);
    neurotwin(&all, dir)
}

/// Runs `text` and asserts a clean rejection before anything is written: non-zero exit, no panic, every
/// piece of `expect` in the message, and no output folder.
fn rejected(text: &str, expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(dir.path(), "run", text, &[]);
    let err = stderr(&o);
    assert!(!o.status.success(), "accepted:\n{text}\nstdout: {}", stdout(&o));
    assert!(!err.contains("panicked"), "{err}");
    for e in expect {
        assert!(err.contains(e), "error should mention `{e}`:\n{err}\nscenario:\n{text}");
    }
    assert!(!dir.path().join("out").exists(), "output written for a rejected scenario:\n{err}");
}

/// `threads` of the run summaries printed by `--json`.
fn summary_threads(o: &Output) -> Vec<u64> {
    assert!(o.status.success(), "{}", stderr(o));
    let v: serde_json::Value = serde_json::from_str(&stdout(o)).expect("--json prints JSON");
    v.as_array().unwrap().iter().map(|s| s["threads"].as_u64().unwrap()).collect()
}

#[test]
fn run_threads_from_scenario_is_used_and_cli_overrides_it() {
    // A count that differs from the default (all cores) on any machine.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let want = if cores == 1 { 2 } else { 1 };
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(&format!("duration_ms = 10.0\nthreads = {want}"), "");
    assert_eq!(summary_threads(&run_in(dir.path(), "run", &text, &["--json"])), vec![want as u64]);
    let other = want + 1;
    let o = run_in(dir.path(), "run", &text, &["--json", "--threads", &other.to_string(), "-o", "o2"]);
    assert_eq!(summary_threads(&o), vec![other as u64]);
}

#[test]
fn scenario_name_must_be_a_plain_folder_name() {
    let root = tempfile::tempdir().unwrap();
    let abs = root.path().join("abs");
    let abs = abs.to_str().unwrap().replace('\\', "/");
    let cases: [(&str, &str); 5] = [
        ("../../x", "e.g. name = \"x\""),
        (&abs, "name = \""),
        ("a/b", "e.g. name = \"a_b\""),
        ("", "must not be empty"),
        (".hidden", "e.g. name = \"hidden\""),
    ];
    for (name, hint) in cases {
        let work = root.path().join("w").join("d");
        std::fs::create_dir_all(&work).unwrap();
        let text = scenario(RUN_100MS, "").replacen("name = \"t\"", &format!("name = {name:?}"), 1);
        let o = run_in(&work, "run", &text, &[]);
        let err = stderr(&o);
        assert!(!o.status.success(), "name {name:?} accepted");
        assert!(err.contains("`name`") && err.contains(hint), "name {name:?}: {err}");
        let written: Vec<_> = files_below(root.path())
            .into_iter()
            .filter(|p| !["neurons.csv", "connections.csv", "s.toml"].iter().any(|f| p.ends_with(f)))
            .collect();
        assert!(written.is_empty(), "name {name:?} wrote {written:?}");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1, "name {name:?} made a folder in the root");
        std::fs::remove_dir_all(root.path().join("w")).unwrap();
    }
    let long = "n".repeat(101);
    rejected(&scenario(RUN_100MS, "").replacen("\"t\"", &format!("\"{long}\""), 1), &["`name`", "100 characters"]);
}

#[test]
fn readout_window_outside_the_run_or_shorter_than_a_step_is_rejected() {
    let readout = "[[readout]]\nlabel = \"b\"\ntargets = { names = [\"B\"] }\n";
    let window = |a: f64, b: f64| format!("{readout}[[window]]\nlabel = \"w\"\nstart_ms = {a:?}\nstop_ms = {b:?}\n");
    rejected(&scenario(RUN_100MS, &window(200.0, 300.0)), &["window `w`", "stop_ms", "run.duration_ms = 100"]);
    rejected(&scenario(RUN_100MS, &window(50.0, 150.0)), &["window `w`", "stop_ms = 150", "<= 100"]);
    rejected(&scenario(RUN_100MS, &window(10.0, 10.04)), &["window `w`", "shorter than one time step", "0.1"]);
}

#[test]
fn stimulus_starting_at_or_after_the_end_of_the_run_is_rejected() {
    for start in ["100.0", "250.0"] {
        let extra = format!("start_ms = {start}\n");
        rejected(
            &scenario(RUN_100MS, &extra),
            &["stimulus #0", &format!("start_ms = {}", start.trim_end_matches(".0")), "run.duration_ms = 100"],
        );
    }
}

#[test]
fn perturbation_starting_at_or_after_the_end_of_the_run_is_rejected() {
    let block = "[[perturbation]]\nkind = \"block\"\nreceptor = \"ACh\"\ndose = 1.0\nic50 = 1.0\nstart_ms = 100.0\n";
    rejected(&scenario(RUN_100MS, block), &["perturbation #0 (block)", "start_ms = 100", "run.duration_ms = 100"]);
    let silence = "[[perturbation]]\nkind = \"silence\"\ntargets = { names = [\"B\"] }\nstart_ms = 300.0\n";
    rejected(&scenario(RUN_100MS, silence), &["perturbation #0 (silence)", "start_ms = 300", "run.duration_ms = 100"]);
}

#[test]
fn perturbation_fields_that_do_not_apply_to_the_kind_are_rejected() {
    let cases = [
        (
            "kind = \"cut\"\npre = { names = [\"A\"] }\npost = { names = [\"B\"] }\ndose = 3.0",
            "perturbation #0 (cut): `dose` does not apply to this kind (cut uses: pre, post)",
        ),
        (
            "kind = \"silence\"\ntargets = { names = [\"B\"] }\nfactor = 0.5",
            "perturbation #0 (silence): `factor` does not apply",
        ),
        (
            "kind = \"block\"\nreceptor = \"ACh\"\ndose = 1.0\nic50 = 1.0\ntargets = { names = [\"B\"] }",
            "perturbation #0 (block): `targets` does not apply",
        ),
        (
            "kind = \"scale\"\nreceptor = \"ACh\"\nfactor = 0.5\nstart_ms = 10.0",
            "perturbation #0 (scale): `start_ms` does not apply",
        ),
    ];
    for (body, expect) in cases {
        rejected(&scenario(RUN_100MS, &format!("[[perturbation]]\n{body}\n")), &[expect]);
    }
}

#[test]
fn rate_bin_shorter_than_the_time_step_is_rejected() {
    // 0.04 ms rounded to 0 steps (no traces at all); 0.05 ms silently became a 0.1 ms bin
    for bin in ["0.04", "0.05"] {
        let text = scenario(RUN_100MS, &format!("[record]\nrate_bin_ms = {bin}\n"));
        rejected(&text, &[&format!("rate_bin_ms = {bin} is shorter than one time step"), "run.dt_ms = 0.1"]);
    }
}

#[test]
fn negative_min_synapse_count_is_rejected() {
    let text = scenario(RUN_100MS, "").replacen("[network]\n", "[network]\nmin_synapse_count = -5\n", 1);
    rejected(&text, &["min_synapse_count = -5", ">= 0"]);
}

#[test]
fn network_fields_ignored_by_the_source_are_rejected() {
    let celegans = |field: &str| {
        format!(
            "name = \"w\"\n[network]\nsource = \"celegans\"\n{field}\n[model]\nmodel = \"lif_exp\"\n\
             [run]\nduration_ms = 1.0\n"
        )
    };
    rejected(&celegans("layout = \"generic\""), &["`layout`", "does not apply to `source = \"celegans\"`"]);
    rejected(&celegans("neurons = \"neurons.csv\""), &["`neurons`", "does not apply to `source = \"celegans\"`"]);
    let seed = scenario(RUN_100MS, "").replacen("[network]\n", "[network]\nseed = 4\n", 1);
    rejected(&seed, &["`seed`", "does not apply to `connections`", "generator"]);
}

#[test]
fn duplicate_sweep_values_are_rejected() {
    let sweep = "[sweep]\nparam = \"stimulus.0.rate_hz\"\nvalues = [10.0, 20.0, 10.0]\n";
    rejected(&scenario(RUN_100MS, sweep), &["[sweep]", "10.0", "twice", "rate_hz=10.0"]);
}

#[test]
fn duplicate_readout_and_window_labels_are_rejected() {
    let readout = "[[readout]]\nlabel = \"x\"\ntargets = { names = [\"B\"] }\n";
    rejected(&scenario(RUN_100MS, &format!("{readout}{readout}")), &["[[readout]]", "label `x`", "twice"]);
    let window = "[[window]]\nlabel = \"w\"\nstart_ms = 0.0\nstop_ms = 50.0\n";
    rejected(&scenario(RUN_100MS, &format!("{readout}{window}{window}")), &["[[window]]", "label `w`", "twice"]);
}

#[test]
fn min_synapse_count_removing_every_connection_says_so() {
    let poisson = "[[stimulus]]\nkind = \"poisson\"\ntargets = { all = true }\nrate_hz = 10.0\nweight = 1.0\n\
                   receptor = \"ACh\"\n";
    let text = scenario(RUN_100MS, poisson).replacen("[network]\n", "[network]\nmin_synapse_count = 1e9\n", 1);
    rejected(&text, &["min_synapse_count = 1000000000 removes every chemical connection (the largest count is 5)"]);
}

#[test]
fn missing_atlas_file_names_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let compare = "[compare]\nkind = \"propagation-atlas\"\natlas = \"pairs-nowhere.csv\"\n";
    let o = run_in(dir.path(), "compare", &scenario(RUN_100MS, compare), &[]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(!err.contains("cannot read scenario"), "{err}");
    assert!(err.contains("[compare] atlas") && err.contains("pairs-nowhere.csv"), "{err}");
    assert_eq!(files_below(&dir.path().join("out")), Vec::<std::path::PathBuf>::new());
}

#[test]
fn pd14_with_reduced_in_degree_runs() {
    // Found by the scenario fuzzer: `pd14` with `k_scaling < 1` replaces part of the Poisson background by a
    // DC current whose entry has no receptor, and the builder failed with "unknown receptor ``".
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let text = "name = \"pd\"\n[network]\ngenerator = { kind = \"pd14\", n_scaling = 0.01, k_scaling = 0.5 }\n\
                [run]\nduration_ms = 5.0\ndt_ms = 0.1\n";
    write(d, "pd.toml", text);
    let o = neurotwin(&["run", "pd.toml", "-o", "out"], d);
    assert!(o.status.success(), "{}", stderr(&o));
}
