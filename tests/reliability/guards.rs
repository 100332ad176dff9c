//! Resource guards: a request whose memory or time is absurd is refused at once, before anything is
//! allocated, with the estimate and how to shrink the request or raise the limit (`--max-memory`,
//! `--force`); nonsense numeric parameters of predictive coding and `segment` are rejected naming the field
//! and the valid range. Every command here runs under a 10 s watchdog: a hang or an abort is a failure.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use super::common::*;

/// Runs `neurotwin args` in `cwd`, killing it after 10 s (a hang is a failure, reported as such).
fn neurotwin_limited(args: &[&str], cwd: &Path) -> Output {
    let out = cwd.join(".stdout");
    let err = cwd.join(".stderr");
    let mut child = command(bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run neurotwin");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().ok();
            child.wait().ok();
            panic!("neurotwin {args:?} still running after 10 s (a hang instead of a refusal)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() };
    std::fs::remove_file(out).ok();
    std::fs::remove_file(err).ok();
    o
}

/// A clean refusal: exit status 1 (not a signal, not a panic), every piece of `expect` in the message.
fn assert_refused(o: &Output, expect: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "expected a clean refusal (exit 1), got {:?}:\n{err}", o.status);
    assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{err}");
    for e in expect {
        assert!(err.contains(e), "the message should mention `{e}`:\n{err}");
    }
    err
}

/// Writes the small network and `text` as `s.toml` into a fresh folder and runs `neurotwin run s.toml`
/// with `args`; returns the folder (kept alive) and the output.
fn run_scenario_text(text: &str, args: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "neurons.csv", NEURONS_CSV);
    write(dir.path(), "connections.csv", CONNECTIONS_CSV);
    write(dir.path(), "s.toml", text);
    let mut all = vec!["run", "s.toml", "-o", "out"];
    all.extend_from_slice(args);
    let o = neurotwin_limited(&all, dir.path());
    (dir, o)
}

/// Refused with the estimate (memory or time) and the limit to raise; nothing written.
fn assert_budget_refusal(text: &str, args: &[&str], expect: &[&str]) {
    let (dir, o) = run_scenario_text(text, args);
    let err = assert_refused(&o, expect);
    assert!(err.contains("s.toml"), "the message should name the scenario file:\n{err}");
    assert!(err.contains("needs about") || err.contains("would take about"), "no estimate:\n{err}");
    assert!(err.contains("--max-memory") || err.contains("--force"), "no way to raise the limit:\n{err}");
    assert!(!dir.path().join("out").exists(), "output written for a refused run:\n{err}");
}

#[test]
fn run_of_1e12_ms_is_refused_with_the_estimate() {
    assert_budget_refusal(&scenario("duration_ms = 1e12", ""), &[], &["run.duration_ms"]);
    // Rate time series of 1e11 bins: 8e11 bytes would be allocated at the start of the run.
    let bins = scenario("duration_ms = 1e10", "[record]\nrate_bin_ms = 0.1\n");
    assert_budget_refusal(&bins, &[], &["needs about", "rate_bin_ms"]);
}

#[test]
fn a_billion_trials_are_refused_with_the_estimate() {
    assert_budget_refusal(&scenario("duration_ms = 10.0\ntrials = 1000000000", ""), &[], &["run.trials"]);
}

#[test]
fn poisson_rate_of_1e12_hz_is_refused_naming_the_field() {
    let poisson = "[[stimulus]]\nkind = \"poisson\"\ntargets = { names = [\"B\"] }\nrate_hz = 1e12\nweight = 1.0\n\
                   receptor = \"ACh\"\n";
    let (_dir, o) = run_scenario_text(&scenario("duration_ms = 100.0", poisson), &[]);
    assert_refused(&o, &["s.toml", "stimulus #1 (poisson)", "rate_hz = 1000000000000", "at most 163840000 Hz"]);
}

#[test]
fn generated_network_of_1e8_neurons_is_refused_with_the_estimate() {
    let make = |table: &str| format!("name = \"g\"\n\n[network]\n{table}\n\n[run]\nduration_ms = 10.0\n");
    for (table, field) in [
        ("generator = { kind = \"cuba\", n = 100000000 }", "n = 100000000"),
        ("generator = { kind = \"brunel\", order = 20000000 }", "order = 20000000"),
        ("generator = { kind = \"pd14\", n_scaling = 50.0 }", "n_scaling = 50"),
        ("generator = { kind = \"flybrain\", scale = 1000.0 }", "scale = 1000"),
    ] {
        let (dir, o) = run_scenario_text(&make(table), &[]);
        let err = assert_refused(&o, &["[network] generator", field, "needs about", "--max-memory"]);
        assert!(!dir.path().join("out").exists(), "{err}");
    }
}

#[test]
fn max_memory_refuses_a_moderate_run_that_the_default_limit_lets_through() {
    // About 5 MiB of rate time series (3 cell types × 100,000 bins × 16 bytes).
    let text = scenario("duration_ms = 10000.0", "[record]\nrate_bin_ms = 0.1\n");
    assert_budget_refusal(&text, &["--max-memory", "1M"], &["needs about", "limit of 1.0 MiB (--max-memory)"]);
    let (dir, o) = run_scenario_text(&text, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("out/summary.json").is_file());
}

#[test]
fn force_lifts_the_time_limit() {
    // 1e13 steps of a 4-neuron network: no recording to speak of, but days of stepping.
    let current = "[[stimulus]]\nkind = \"current\"\ntargets = { names = [\"B\"] }\namplitude_pa = 10.0\n";
    let text = scenario("duration_ms = 1e12", current)
        .replace("[[stimulus]]\nkind = \"activation\"\ntargets = { names = [\"A\"] }\nrate_hz = 50.0\n", "");
    assert_budget_refusal(&text, &["--max-memory", "1K"], &["would take about", "--force"]);
    // With --force the time check passes; the (deliberately tiny) memory limit is what refuses it now.
    assert_budget_refusal(&text, &["--force", "--max-memory", "1K"], &["needs about", "--max-memory"]);
}

/// A small predictive-coding scenario with teacher data (no input file); `edit` replaces text in it.
fn pc_text(edits: &[(&str, &str)]) -> String {
    let mut t = "name = \"pc\"\nmodel = \"predictive_coding\"\nseed = 1\n\n[network]\nlayers = [64, 96]\n\
                 precisions = [1.0, 1.0]\nsparsity = [0.0, 0.0]\ninit_scale = 0.1\n\n[input]\nkind = \"generated\"\n\
                 teacher_scale = 0.3\nnoise = 0.1\n\n[inference]\nsteps = 20\ndt = 0.1\n\n[training]\nbatches = 3\n\
                 batch_size = 10\neta = 0.05\n\n[output]\neval_batch = 10\n"
        .to_string();
    for (from, to) in edits {
        assert!(t.contains(from), "{from}");
        t = t.replacen(from, to, 1);
    }
    t
}

fn run_pc(text: &str, args: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "pc.toml", text);
    let mut all = vec!["pc", "pc.toml", "-o", "out"];
    all.extend_from_slice(args);
    let o = neurotwin_limited(&all, dir.path());
    (dir, o)
}

#[test]
fn predictive_coding_batch_of_1e8_and_1e8_steps_are_refused() {
    let (_d, o) = run_pc(&pc_text(&[("batch_size = 10", "batch_size = 100000000")]), &[]);
    assert_refused(&o, &["pc.toml", "needs about", "training.batch_size", "--max-memory"]);
    let (_d, o) = run_pc(&pc_text(&[("eval_batch = 10", "eval_batch = 100000000")]), &[]);
    assert_refused(&o, &["pc.toml", "needs about", "output.eval_batch"]);
    let (_d, o) = run_pc(&pc_text(&[("steps = 20", "steps = 100000000"), ("batches = 3", "batches = 3000")]), &[]);
    assert_refused(&o, &["pc.toml", "would take about", "inference.steps", "--force"]);
    let (_d, o) = run_pc(&pc_text(&[("layers = [64, 96]", "layers = [100000000, 100000000]")]), &[]);
    assert_refused(&o, &["pc.toml", "needs about", "network.layers"]);
}

#[test]
fn predictive_coding_nonsense_parameters_are_rejected_naming_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("precisions = [1.0, 1.0]", "precisions = [1.0, nan]", "network.precisions"),
        ("precisions = [1.0, 1.0]", "precisions = [-1.0, 1.0]", "network.precisions"),
        ("sparsity = [0.0, 0.0]", "sparsity = [0.0, -0.5]", "network.sparsity"),
        ("init_scale = 0.1", "init_scale = nan", "network.init_scale"),
        ("init_scale = 0.1", "init_scale = -1.0", "network.init_scale"),
        ("teacher_scale = 0.3", "teacher_scale = inf", "input.teacher_scale"),
        ("noise = 0.1", "noise = -0.1", "input.noise"),
        ("dt = 0.1", "dt = 1e6", "inference.dt"),
        ("eta = 0.05", "eta = -0.05", "training.eta"),
        ("eta = 0.05", "eta = nan", "training.eta"),
        ("eval_batch = 10", "eval_batch = 0", "output.eval_batch"),
        ("steps = 20", "steps = 0", "inference.steps"),
        ("init_scale = 0.1", "init_scale = 0.1\nnormalize_columns = -1.0", "network.normalize_columns"),
    ];
    for (from, to, field) in cases {
        let (dir, o) = run_pc(&pc_text(&[(from, to)]), &[]);
        let err = assert_refused(&o, &["pc.toml", field]);
        assert!(!stdout(&o).contains("free energy"), "{to}: ran: {}", stdout(&o));
        assert!(!dir.path().join("out").exists(), "{to}: output written: {err}");
    }
}

#[test]
fn predictive_coding_divergence_is_an_error_not_a_nan_summary() {
    let (_d, o) = run_pc(&pc_text(&[("eta = 0.05", "eta = 1e6")]), &[]);
    let err = assert_refused(&o, &["pc.toml", "diverged", "training.eta"]);
    assert!(!stdout(&o).contains("NaN"), "{err}");
}

/// A phantom CREMI volume (32 × 80 × 80) and its synapse centres as CSV.
fn phantom(dir: &Path) {
    use neurotwin_segment::io::{Data, NEURON_IDS, RAW, write_volumes};
    use neurotwin_segment::phantom::{PhantomConfig, generate};
    let ph = generate(&PhantomConfig { noise: 0.1, ..Default::default() });
    write_volumes(dir.join("ph.h5"), &[(RAW, Data::U8(&ph.raw)), (NEURON_IDS, Data::U64(&ph.labels))], None).unwrap();
    let mut csv = String::from("z,y,x\n");
    for s in &ph.synapses {
        csv.push_str(&format!("{},{},{}\n", s.position_nm[0], s.position_nm[1], s.position_nm[2]));
    }
    write(dir, "syn.csv", &csv);
}

#[test]
fn segment_thresholds_and_synapse_radius_outside_their_range_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    phantom(d);
    let cases: &[(&[&str], &[&str])] = &[
        (&["--thresholds=-0.5"], &["--thresholds", "-0.5", "between 0 and 1"]),
        (&["--thresholds", "0.5,5"], &["--thresholds", "5", "between 0 and 1"]),
        (&["--synapse-radius=-5", "--gt-synapses", "syn.csv"], &["--synapse-radius", "-5", "> 0"]),
        (&["--synapse-radius", "NaN", "--gt-synapses", "syn.csv"], &["--synapse-radius", "NaN", "> 0"]),
    ];
    for (extra, expect) in cases {
        let mut args = vec!["segment", "ph.h5", "-o", "out"];
        args.extend_from_slice(extra);
        let o = neurotwin_limited(&args, d);
        let err = assert_refused(&o, expect);
        assert!(!d.join("out").exists(), "{extra:?}: output written: {err}");
    }
}

#[test]
fn segment_of_a_huge_declared_volume_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A small Zarr array whose metadata then declares a huge shape (no chunk is ever written: cheap on disk).
    let small = neurotwin_segment::volume::Volume::filled([8, 8, 8], [10.0; 3], 0u8);
    let store = d.join("big.zarr");
    neurotwin_segment::zarr::write_array(&store, "volumes/raw", &small, [8, 8, 8]).unwrap();
    let meta_path = store.join("volumes/raw/zarr.json");
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    for (shape, block) in [([100_000u64, 100_000, 100_000], "64,256,256"), ([2000, 4000, 4000], "64,256,256")] {
        meta["shape"] = serde_json::json!(shape);
        std::fs::write(&meta_path, serde_json::to_string(&meta).unwrap()).unwrap();
        let o = neurotwin_limited(&["segment", "big.zarr", "-o", "out", "--block", block], d);
        let err = assert_refused(&o, &["big.zarr", "needs about", "--max-memory", &format!("{shape:?}")]);
        assert!(!d.join("out").exists(), "{err}");
    }
}

#[test]
fn a_patch_larger_than_the_images_is_an_error_not_a_panic() {
    // `Images::patches` asserted (a panic, rc 101) when `input.patch` exceeded the images' size.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pc_image_patches.toml"),
    )
    .unwrap()
    .replace(
        "data/images/natural_whitened.h5",
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/images/natural_whitened.h5").display().to_string(),
    )
    .replace("patch = 8", "patch = 4000")
    .replace("layers = [64, 96]", "layers = [16000000, 96]");
    write(d, "pc.toml", &text);
    let o = neurotwin(&["pc", "pc.toml", "-o", "out", "--batches", "1"], d);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}
