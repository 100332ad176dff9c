//! Outputs (issue 20, defects 2, 5, 6, 7, 8): no command writes over one of its inputs, a run folder is
//! published whole or not at all (errors, failed sweep points, signals), an earlier run is replaced only with
//! `--overwrite` and then without stale files, and every output honours the umask.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::*;

/// The small CSV network and a valid scenario over it.
fn csv_network(dir: &Path, run: &str, extra: &str) -> PathBuf {
    write(dir, "neurons.csv", NEURONS_CSV);
    write(dir, "connections.csv", CONNECTIONS_CSV);
    write(dir, "s.toml", &scenario(run, extra))
}

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_below(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

/// Asserts `dir` holds no partial output: no staging folder, no temporary file.
fn assert_no_partial(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains("staging") && !name.ends_with(".tmp"),
                "partial output left: {}",
                e.path().display()
            );
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn run_output_cannot_replace_a_connections_file_named_nodes_csv() {
    // Defect 2: `run -o` into the folder of a connections file named nodes.csv overwrote it.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "neurons.csv", NEURONS_CSV);
    write(d, "nodes.csv", CONNECTIONS_CSV);
    let s = scenario("duration_ms = 50", "").replace("connections.csv", "nodes.csv");
    write(d, "s.toml", &s);
    let o = neurotwin(&["run", "s.toml", "-o", "."], d);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("nodes.csv") && e.contains("input"), "{e}");
    assert_eq!(std::fs::read_to_string(d.join("nodes.csv")).unwrap(), CONNECTIONS_CSV);
    // Not even with --overwrite.
    let o = neurotwin(&["run", "s.toml", "-o", ".", "--overwrite"], d);
    assert!(!o.status.success());
    assert_eq!(std::fs::read_to_string(d.join("nodes.csv")).unwrap(), CONNECTIONS_CSV);
    assert_no_partial(d);
}

#[test]
fn import_cannot_replace_its_source() {
    // Defect 2: `import a.csv -o a.csv` replaced the CSV by HDF5.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "a.csv", CONNECTIONS_CSV);
    let o = neurotwin(&["import", "a.csv", "-o", "a.csv"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(d.join("a.csv")).unwrap(), CONNECTIONS_CSV);
}

#[test]
fn import_to_sonata_with_overwrite_keeps_foreign_files_and_the_source() {
    // Defect 2: `import … --to sonata -o DIR --overwrite` deleted every other file in DIR, the source too.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir(d.join("dir")).unwrap();
    write(&d.join("dir"), "a.csv", CONNECTIONS_CSV);
    write(&d.join("dir"), "notes.txt", "mine");
    let o = neurotwin(&["import", "dir/a.csv", "--to", "sonata", "-o", "dir", "--overwrite"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(d.join("dir/a.csv")).unwrap(), CONNECTIONS_CSV);
    assert_eq!(std::fs::read_to_string(d.join("dir/notes.txt")).unwrap(), "mine");
    assert!(d.join("dir/circuit_config.json").is_file());
    // A second export needs --overwrite, and then still keeps the foreign files.
    let o = neurotwin(&["import", "dir/a.csv", "--to", "sonata", "-o", "dir"], d);
    assert!(!o.status.success() && stderr(&o).contains("--overwrite"), "{}", stderr(&o));
    let o = neurotwin(&["import", "dir/a.csv", "--to", "sonata", "-o", "dir", "--overwrite"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(d.join("dir/notes.txt")).unwrap(), "mine");
    assert_no_partial(d);
}

#[test]
fn export_nwb_cannot_replace_the_runs_spikes() {
    // Defect 2: `export nwb RUN -o RUN/spikes.h5` replaced the run's spike file.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    csv_network(d, "duration_ms = 100", "");
    let o = neurotwin(&["run", "s.toml", "-o", "run"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(d.join("run/spikes.h5")).unwrap();
    let o = neurotwin(&["export", "nwb", "run", "-o", "run/spikes.h5"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("run/spikes.h5")).unwrap(), before);
}

#[test]
fn segment_cannot_replace_its_volume() {
    // Defect 2: `segment VOL -o DIR` with VOL = DIR/segmentation.h5 replaced the volume.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir(d.join("out")).unwrap();
    let vol = d.join("out/segmentation.h5");
    let ph = neurotwin_segment::phantom::generate(&neurotwin_segment::phantom::PhantomConfig {
        noise: 0.1,
        ..Default::default()
    });
    neurotwin_segment::io::write_volumes(
        &vol,
        &[(neurotwin_segment::io::RAW, neurotwin_segment::io::Data::U8(&ph.raw))],
        None,
    )
    .unwrap();
    let before = std::fs::read(&vol).unwrap();
    let o = neurotwin(&["segment", "out/segmentation.h5", "-o", "out"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&vol).unwrap(), before);
    assert_no_partial(d);
}

#[test]
fn sonata_spike_report_cannot_replace_an_input_spike_file() {
    // Defect 2: output_dir + spikes_file equal to an input spike file replaced the input.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sonata/300_intfire");
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("c");
    copy_tree(&src, &d);
    let cfg = d.join("simulation_config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace("\"output_dir\": \"$OUTPUT_DIR\"", "\"output_dir\": \"$INPUT_DIR\"")
        .replace("\"spikes_file\": \"spikes.h5\"", "\"spikes_file\": \"lgn_spikes.h5\"")
        .replace("\"tstop\": 3000.0", "\"tstop\": 100.0");
    std::fs::write(&cfg, text).unwrap();
    let before = std::fs::read(d.join("inputs/lgn_spikes.h5")).unwrap();
    let o = neurotwin(&["run", "config.json"], &d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("inputs/lgn_spikes.h5")).unwrap(), before);
    assert_no_partial(&d);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_rerun_needs_overwrite_and_leaves_no_stale_files() {
    // Defect 7: an old raster.png/state.h5 stayed beside a new run's files; summary.json was overwritten
    // silently.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let state = "\n[[record.state]]\nvar = \"V_m\"\ntargets = { all = true }\n";
    let s1 = scenario("duration_ms = 60", "") + state;
    write(d, "neurons.csv", NEURONS_CSV);
    write(d, "connections.csv", CONNECTIONS_CSV);
    write(d, "s.toml", &s1);
    let o = neurotwin(&["run", "s.toml", "-o", "out"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("out/state.h5").is_file() && d.join("out/raster.png").is_file());
    let summary = std::fs::read(d.join("out/summary.json")).unwrap();
    // Without --overwrite: refused before simulating, nothing changed.
    let o = neurotwin(&["run", "s.toml", "-o", "out"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--overwrite"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("out/summary.json")).unwrap(), summary);
    // With --overwrite and no state/raster asked: the old run's state.h5 and raster.png go.
    write(d, "notes.txt", "");
    std::fs::copy(d.join("notes.txt"), d.join("out/notes.txt")).unwrap();
    write(d, "s.toml", &(scenario("duration_ms = 60", "") + "\n[output]\nraster = false\n"));
    let o = neurotwin(&["run", "s.toml", "-o", "out", "--overwrite"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!d.join("out/state.h5").exists() && !d.join("out/raster.png").exists());
    assert!(d.join("out/summary.json").is_file() && d.join("out/notes.txt").is_file());
}

/// Mode bits of `p`.
fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Runs `neurotwin ARGS` under `umask`.
fn under_umask(umask: &str, args: &[&str], cwd: &Path) -> std::process::Output {
    let mut cmd = format!("umask {umask}; exec \"$0\"");
    for a in args {
        cmd.push_str(&format!(" '{a}'"));
    }
    command("sh").arg("-c").arg(cmd).arg(bin()).current_dir(cwd).output().unwrap()
}

#[test]
fn outputs_honour_the_umask() {
    // Defect 8: spikes.h5, nodes.csv, summary.json, state.h5 were written 0600 whatever the umask.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let state = "\n[[record.state]]\nvar = \"V_m\"\ntargets = { all = true }\n";
    write(d, "neurons.csv", NEURONS_CSV);
    write(d, "connections.csv", CONNECTIONS_CSV);
    write(d, "s.toml", &(scenario("duration_ms = 300", "") + state));
    for (umask, want) in [("022", 0o644), ("027", 0o640)] {
        let out = format!("out{umask}");
        let o = under_umask(umask, &["run", "s.toml", "-o", &out], d);
        assert!(o.status.success(), "{}", stderr(&o));
        for f in ["spikes.h5", "nodes.csv", "summary.json", "state.h5", "raster.png"] {
            assert_eq!(mode(&d.join(&out).join(f)), want, "{f} under umask {umask}");
        }
        let dir_mode = if umask == "022" { 0o755 } else { 0o750 };
        assert_eq!(mode(&d.join(&out)), dir_mode, "{out}");
    }
    // The HDF5 connectome and the NWB export too.
    let o = under_umask("027", &["import", "connections.csv", "--neurons", "neurons.csv", "-o", "net.h5"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&d.join("net.h5")), 0o640);
    let o = under_umask("027", &["export", "nwb", "out027", "-o", "run.nwb"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&d.join("run.nwb")), 0o640);
}

/// A scenario that runs for a while (about a second in a debug build) and writes a large state report,
/// so that signals land in the simulation and in the write phase.
fn slow_scenario(dir: &Path, sweep: bool) -> PathBuf {
    let sweep = if sweep { "\n[sweep]\nparam = \"run.seed\"\nvalues = [1, 2, 3, 4, 5, 6]\n" } else { "" };
    write(
        dir,
        "slow.toml",
        &format!(
            r#"name = "slow"

[network]
generator = {{ kind = "brunel", order = 200, g = 5.0, eta = 2.0 }}

[run]
duration_ms = 300.0
dt_ms = 0.1
seed = 1

[[record.state]]
var = "V_m"
targets = {{ all = true }}
every_ms = 0.2
{sweep}"#
        ),
    )
}

/// Starts `neurotwin ARGS`, sends SIGINT after `after`, waits; returns the exit code (None: killed by a
/// signal, which the handler must prevent).
fn interrupt_after(args: &[&str], cwd: &Path, after: Duration) -> Option<i32> {
    let mut child =
        command(bin()).args(args).current_dir(cwd).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(after);
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    child.wait().unwrap().code()
}

/// The folder holds a complete run: the manifest lists every file present (besides itself), each exists.
fn assert_complete_run(dir: &Path) {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".neurotwin-run.json")).unwrap()).unwrap();
    let listed: Vec<String> = m["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
    let mut present: Vec<String> = files_below(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .filter(|p| p != ".neurotwin-run.json")
        .collect();
    present.sort();
    assert_eq!(present, listed);
    for f in &listed {
        if f.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
        }
    }
}

#[test]
fn a_signal_at_any_moment_leaves_the_previous_run_or_a_complete_new_one() {
    // Defects 5 and 6: a signal during the run or its write phase left spikes.h5 + nodes.csv without
    // summary.json, and a 0-byte .raster.png.*.tmp.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    slow_scenario(d, false);
    let started = Instant::now();
    let o = neurotwin(&["run", "slow.toml", "-o", "out"], d);
    let full = started.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_complete_run(&d.join("out"));
    let mut previous = snapshot(&d.join("out"));
    let mut outcomes = Vec::new();
    for frac in [0.1, 0.5, 0.8, 0.9, 0.97, 1.05] {
        let code = interrupt_after(&["run", "slow.toml", "-o", "out", "--overwrite"], d, full.mul_f64(frac));
        assert!(code.is_some(), "killed by the signal at {frac} of the run: no cleanup ran");
        assert_no_partial(d);
        let now = snapshot(&d.join("out"));
        if code == Some(0) {
            assert_complete_run(&d.join("out"));
        } else {
            assert_eq!(code, Some(130), "SIGINT exit status");
            // A signal that lands after the commit (while the summary is printed) ends the process with 130
            // too; the folder then holds the complete new run. Anything else must be the previous run.
            if now != previous {
                assert_complete_run(&d.join("out"));
            }
        }
        outcomes.push((frac, code));
        previous = now;
    }
    assert!(outcomes.iter().any(|o| o.1 == Some(130)), "no signal landed during the run: {outcomes:?}");
}

#[test]
fn an_interrupted_sweep_leaves_nothing() {
    // Defect 5: an interrupted sweep left 4 of 6 run folders and no top-level summary.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    slow_scenario(d, true);
    let code = interrupt_after(&["run", "slow.toml", "-o", "sweep", "--threads", "2"], d, Duration::from_millis(1500));
    assert_eq!(code, Some(130));
    assert!(!d.join("sweep").exists(), "{:?}", files_below(&d.join("sweep")));
    assert_no_partial(d);
}

#[test]
fn a_sweep_point_that_fails_publishes_nothing() {
    // Defect 5: after one point failed, the other points' folders stayed, without a top-level summary. Here
    // the third point cannot be written (a file is in the way of its folder).
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    csv_network(d, "duration_ms = 50", "\n[sweep]\nparam = \"run.duration_ms\"\nvalues = [50, 60, 70]\n");
    std::fs::create_dir(d.join("out")).unwrap();
    write(&d.join("out"), "duration_ms=70", "in the way");
    let o = neurotwin(&["run", "s.toml", "-o", "out", "--overwrite"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("duration_ms=70"), "{}", stderr(&o));
    let left: Vec<PathBuf> = files_below(&d.join("out"));
    assert_eq!(left, vec![d.join("out/duration_ms=70")], "partial sweep published");
    assert_no_partial(d);
}

#[test]
fn compare_cannot_replace_its_recording() {
    // Defect 2 (compare): a recording where the report writes `<recording>/comparison.csv` was overwritten.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let all =
        "\n[[stimulus]]\nkind = \"activation\"\ntargets = { names = [\"A\", \"B\", \"C\", \"D\"] }\nrate_hz = 50.0\n";
    csv_network(d, "duration_ms = 20000", all);
    let o = neurotwin(&["run", "s.toml", "-o", "run"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut rec = String::from("time_s,A,B,C,D\n");
    for k in 0..200 {
        let t = k as f64 * 0.1;
        rec += &format!("{t},{},{},{},{}\n", t.sin(), (1.3 * t + 1.0).sin(), (0.7 * t).cos(), (2.1 * t + 0.5).sin());
    }
    std::fs::create_dir_all(d.join("out/comparison.csv")).unwrap();
    write(&d.join("out/comparison.csv"), "comparison.csv", &rec);
    let args = ["compare", "--sim", "run", "--recording", "out/comparison.csv/comparison.csv", "--format", "csv"];
    let o = neurotwin(&[&args[..], &["-o", "out", "--overwrite"]].concat(), d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(d.join("out/comparison.csv/comparison.csv")).unwrap(), rec);
    // Elsewhere the same comparison works, and its files honour the umask (defect 8: compare_summary.json
    // was written 0600).
    let o = under_umask("022", &[&args[..], &["-o", "cmp"]].concat(), d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&d.join("cmp/compare_summary.json")), 0o644);
    assert_no_partial(d);
}

#[test]
fn pc_cannot_replace_its_image_file() {
    // Defect 2 (pc): the image-patch file inside the output folder, named like an output, was overwritten.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/images/natural_whitened.h5");
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::copy(&images, d.join("out/weights.h5")).unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pc_image_patches.toml"))
        .unwrap()
        .replace("data/images/natural_whitened.h5", "out/weights.h5");
    write(d, "pc.toml", &text);
    let o = neurotwin(&["pc", "pc.toml", "-o", "out", "--batches", "1"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("out/weights.h5")).unwrap(), std::fs::read(&images).unwrap());
    assert_no_partial(d);
}

#[test]
fn fit_cannot_write_into_a_folder_holding_its_atlas() {
    // No command writes over its inputs: a fit refuses an output folder that holds its atlas.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let atlas = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/celegans/funatlas_pairs.csv");
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::copy(&atlas, d.join("out/pairs.csv")).unwrap();
    let text = "name = \"tiny\"\n[network]\nsource = \"celegans\"\n[fit]\nmodel = \"rate\"\nactivation = \"sigmoid\"\n\
                dt_ms = 500.0\ndata = \"propagation-atlas\"\natlas = \"out/pairs.csv\"\nscore_strains = [\"unc31\"]\n\
                stim_start_ms = 1000.0\nstim_stop_ms = 3000.0\nresponse_stop_ms = 6000.0\nstim_amplitude = 5.0\n\
                folds = 2\n[fit.train]\nepochs = 1\n[fit.params.theta]\ninit = 2.0\n";
    write(d, "fit.toml", text);
    let o = neurotwin(&["fit", "fit.toml", "-o", "out", "--overwrite"], d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("out/pairs.csv")).unwrap(), std::fs::read(&atlas).unwrap());
    assert_no_partial(d);
}

#[test]
fn an_occupied_output_folder_is_reported_before_simulating() {
    // Defect 17: output-folder problems were reported only after the whole simulation. This run would take
    // minutes; the refusal must come at once (the child is killed after 30 s, which fails the test).
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    csv_network(d, "duration_ms = 50", "");
    let o = neurotwin(&["run", "s.toml", "-o", "out"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    write(d, "long.toml", &scenario("duration_ms = 100000000", ""));
    let mut child = command(bin())
        .args(["run", "long.toml", "-o", "out"])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = status.expect("the occupied folder was not reported before simulating");
    assert!(!status.success());
    let mut e = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut e).unwrap();
    assert!(e.contains("--overwrite"), "{e}");
}
