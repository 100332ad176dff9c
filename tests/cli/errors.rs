//! Bad input: every class exits non-zero with a message that names the file, the line or key, and
//! leaves no output behind.

use super::common::*;

struct Case {
    neurons: &'static str,
    connections: &'static str,
    scenario: String,
}

fn valid() -> Case {
    Case { neurons: NEURONS_CSV, connections: CONNECTIONS_CSV, scenario: scenario("duration_ms = 20.0", "") }
}

/// Runs the case and checks the failure; returns stderr.
fn fails(case: Case, expect: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "neurons.csv", case.neurons);
    write(dir.path(), "connections.csv", case.connections);
    write(dir.path(), "s.toml", &case.scenario);
    let out = dir.path().join("out");
    let o = neurotwin(&["run", "s.toml", "-o", out.to_str().unwrap()], dir.path());
    let err = stderr(&o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {err}");
    for e in expect {
        assert!(err.contains(e), "stderr lacks `{e}`:\n{err}");
    }
    assert!(!err.contains("panicked"), "must not panic:\n{err}");
    assert!(files_below(&out).is_empty(), "output left behind: {:?}", files_below(&out));
    err
}

#[test]
fn valid_case_runs_and_writes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let c = valid();
    write(dir.path(), "neurons.csv", c.neurons);
    write(dir.path(), "connections.csv", c.connections);
    write(dir.path(), "s.toml", &c.scenario);
    let o = neurotwin(&["run", "s.toml", "-o", "out"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["spikes.h5", "summary.json", "raster.png"] {
        assert!(dir.path().join("out").join(f).is_file(), "missing {f}");
    }
}

#[test]
fn missing_scenario_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = neurotwin(&["run", "nope.toml"], dir.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope.toml"), "{}", stderr(&o));
}

#[test]
fn missing_connectome_file() {
    let mut c = valid();
    c.scenario = c.scenario.replace("connections.csv", "missing.csv");
    fails(c, &["missing.csv"]);
}

#[test]
fn malformed_csv_row_reports_line() {
    let mut c = valid();
    c.connections = "pre,post,count\n1,2,5\n2,3,abc\n";
    fails(c, &["connections.csv", ":3"]);
}

#[test]
fn connection_to_unknown_neuron_id() {
    let mut c = valid();
    c.connections = "pre,post,count\n1,2,5\n2,99,3\n";
    fails(c, &["connections.csv", "99"]);
}

#[test]
fn negative_synapse_count() {
    let mut c = valid();
    c.connections = "pre,post,count\n1,2,-5\n";
    fails(c, &["connections.csv", ":2"]);
}

#[test]
fn nan_weight() {
    let mut c = valid();
    c.connections = "pre,post,count,weight\n1,2,5,NaN\n";
    fails(c, &["connections.csv", ":2"]);
}

#[test]
fn unknown_scenario_key_names_line_and_key() {
    let mut c = valid();
    c.scenario = scenario("duration_ms = 20.0\ndurration = 3", "");
    fails(c, &["s.toml:", "durration"]);
}

#[test]
fn unknown_neuron_name_in_target() {
    let mut c = valid();
    c.scenario = c.scenario.replace("names = [\"A\"]", "names = [\"AVAQ\"]");
    fails(c, &["s.toml:", "AVAQ"]);
}

#[test]
fn non_positive_dt() {
    let mut c = valid();
    c.scenario = scenario("duration_ms = 20.0\ndt_ms = 0.0", "");
    fails(c, &["s.toml:", "dt_ms"]);
    let mut c = valid();
    c.scenario = scenario("duration_ms = 20.0\ndt_ms = -0.1", "");
    fails(c, &["s.toml:", "dt_ms"]);
}

#[test]
fn duration_not_multiple_of_dt() {
    let mut c = valid();
    c.scenario = scenario("duration_ms = 20.05\ndt_ms = 0.1", "");
    fails(c, &["s.toml:", "not a multiple"]);
}

#[test]
fn unknown_receptor_and_bad_dose() {
    let mut c = valid();
    c.scenario = scenario(
        "duration_ms = 20.0",
        "[[perturbation]]\nkind = \"block\"\nreceptor = \"NMDA\"\ndose = 1.0\nic50 = 1.0\n",
    );
    fails(c, &["s.toml:", "NMDA", "ACh"]);
    let mut c = valid();
    c.scenario = scenario(
        "duration_ms = 20.0",
        "[[perturbation]]\nkind = \"block\"\nreceptor = \"ACh\"\ndose = -1.0\nic50 = 1.0\n",
    );
    fails(c, &["s.toml:", "dose"]);
}
