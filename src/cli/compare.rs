//! `neurotwin compare`: the scenario's model against real data, as its `[compare]` section says.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use neurotwin_io::inputs::InputSet;
use neurotwin_io::run_dir::RunDir;
use neurotwin_models::calcium::{IndicatorParams, PRESET_NAMES};
use neurotwin_scenarios::BackendKind;
use neurotwin_scenarios::atlas::{AtlasReport, report::write_report, run_atlas};
use neurotwin_scenarios::calcium_compare::{
    DEFAULT_VOLTAGE_MAPPING, RecordingConfig, RecordingFormat, RecordingResult, SimulatedActivity, compare_spikes,
    load_recordings, parse_nan_policy, run_recording_compare, write_recording_report,
};
use neurotwin_scenarios::load::read;
use neurotwin_sim::readback::read_run_spikes;

use super::table::render;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Scenario file with a [compare] section (e.g. scenarios/celegans_atlas.toml); or use --sim and
    /// --recording.
    #[arg(required_unless_present = "sim")]
    pub scenario: Option<PathBuf>,
    /// A finished run's output folder (spikes.h5 + nodes.csv + summary.json) to compare instead of
    /// simulating.
    #[arg(long, requires = "recording", conflicts_with = "scenario")]
    pub sim: Option<PathBuf>,
    /// Recording to compare --sim with (a file, or a folder of Flavell worms).
    #[arg(long)]
    pub recording: Option<PathBuf>,
    /// Format of --recording: nwb, plain-h5, csv, flavell.
    #[arg(long, default_value = "nwb")]
    pub format: String,
    /// NWB: the RoiResponseSeries to read (name or path suffix), when the file holds several.
    #[arg(long)]
    pub series: Option<String>,
    /// Flavell label JSON (default: neuropal_labels.json next to the data).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// What to do with a recorded neuron that is NaN in every frame: error, or drop-rows (leave it out).
    #[arg(long, default_value = "error")]
    pub nan_policy: String,
    /// Calcium indicator of the forward model (GCaMP6s, GCaMP6f, GCaMP7f, GCaMP8m).
    #[arg(long, default_value = "GCaMP7f")]
    pub indicator: String,
    /// Output folder (default: out/<scenario name>/compare, or RUN/compare with --sim).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Backend for the simulations: cpu, cuda, auto, cuda-host.
    #[arg(long, default_value = "cpu")]
    pub backend: BackendKind,
    /// Replace the files of an earlier comparison in the output folder (only those; inputs never).
    #[arg(long)]
    pub overwrite: bool,
}

/// What a comparison found: the propagation atlas' report, or one result per recording.
pub enum Compared {
    Atlas(Box<AtlasReport>),
    Recordings(Vec<RecordingResult>),
}

impl Compared {
    /// The report as JSON, as the output folder holds it: the atlas report (`atlas_summary.json`), or one entry
    /// per recording with its matching and comparison (`compare_summary.json`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Compared::Atlas(r) => serde_json::to_value(r).unwrap_or(serde_json::Value::Null),
            Compared::Recordings(rs) => serde_json::to_value(rs).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A finished comparison: what it found, the output folder and the files written there.
pub struct CompareOutcome {
    pub compared: Compared,
    pub out_dir: PathBuf,
    pub files: Vec<PathBuf>,
}

pub fn compare(a: CompareArgs) -> anyhow::Result<()> {
    let o = compare_outcome(&a)?;
    match &o.compared {
        Compared::Atlas(r) => print_atlas(r),
        Compared::Recordings(rs) => print_recordings(rs),
    }
    print_outputs(&o.files);
    Ok(())
}

/// Runs the comparison `a` asks for and publishes its outputs (printing nothing but progress and notes).
pub fn compare_outcome(a: &CompareArgs) -> anyhow::Result<CompareOutcome> {
    if let Some(run_dir) = &a.sim {
        return compare_run(a, run_dir);
    }
    let scenario = a.scenario.clone().context("give a scenario file, or --sim RUN --recording FILE")?;
    let file = read(&scenario)?;
    let Some(c) = &file.spec.compare else {
        bail!("{}: no [compare] section (kind = \"propagation-atlas\" or \"recording\")", scenario.display());
    };
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("out").join(&file.spec.name).join("compare"));
    // Inputs: the scenario's network files and the data it compares with (resolved beside the scenario
    // or as given).
    let mut inputs = neurotwin_scenarios::inputs::scenario_inputs(&file.path, &file.spec);
    let base = file.path.parent().unwrap_or(Path::new("."));
    for p in [&c.atlas, &c.recording, &c.labels].into_iter().flatten() {
        add_input(&mut inputs, &base.join(p.get_ref()));
        add_input(&mut inputs, Path::new(p.get_ref()));
    }
    match c.kind.get_ref().as_str() {
        "propagation-atlas" => {
            let run_dir = open_out(&out, inputs, a.overwrite, &["atlas_summary.json"])?;
            let report = run_atlas(&file, a.backend, true)?;
            let files =
                write_report(run_dir.staging(), &report).with_context(|| format!("writing {}", out.display()))?;
            let files = publish(run_dir, &files)?;
            Ok(CompareOutcome { compared: Compared::Atlas(Box::new(report)), out_dir: out, files })
        }
        "recording" => {
            let run_dir = open_out(&out, inputs, a.overwrite, &[])?;
            let results = run_recording_compare(&file, a.backend, true)?;
            let files = write_recording_report(run_dir.staging(), &results)?;
            let files = publish(run_dir, &files)?;
            print_notes(&results);
            Ok(CompareOutcome { compared: Compared::Recordings(results), out_dir: out, files })
        }
        other => bail!(
            "{}: [compare] kind `{other}` is not supported (use \"propagation-atlas\" or \"recording\")",
            scenario.display()
        ),
    }
}

/// Adds an input file, or every file of an input folder (a folder of Flavell worms).
fn add_input(inputs: &mut InputSet, p: &Path) {
    if p.is_dir() {
        inputs.add_tree(p);
    } else {
        inputs.add(p);
    }
}

/// Opens the output folder before any simulation (the shared policy: no input replaced, an earlier
/// comparison only with --overwrite); outputs go to its staging area.
fn open_out(out: &Path, inputs: InputSet, overwrite: bool, expected: &[&str]) -> anyhow::Result<RunDir> {
    Ok(RunDir::create(out, "neurotwin compare", inputs, overwrite, expected)?)
}

/// Publishes the staged outputs; returns their final paths.
fn publish(run_dir: RunDir, staged: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let (stage, dir) = (run_dir.staging().to_path_buf(), run_dir.dir().to_path_buf());
    run_dir.commit()?;
    Ok(staged.iter().map(|p| p.strip_prefix(&stage).map_or_else(|_| p.clone(), |r| dir.join(r))).collect())
}

/// Files every `neurotwin run` output folder holds.
const RUN_FILES: [&str; 3] = ["spikes.h5", "nodes.csv", "summary.json"];

/// Checks that `dir` (given as `what`, e.g. `--sim`) is the output folder of one run, saying what is
/// wrong and what to give instead.
pub(crate) fn check_run_folder(what: &str, dir: &Path) -> anyhow::Result<()> {
    let expected = "give the output folder of `neurotwin run` (it holds spikes.h5, nodes.csv and summary.json)";
    if !dir.exists() {
        bail!("{what} {}: folder does not exist; {expected}", dir.display());
    }
    if !dir.is_dir() {
        bail!("{what} {}: is a file, not a folder; {expected}", dir.display());
    }
    let missing: Vec<&str> = RUN_FILES.iter().copied().filter(|f| !dir.join(f).is_file()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let hint = match first_run_below(dir) {
        Some(one) => format!("; it holds several runs: give one of them, e.g. {}", one.display()),
        None => format!("; {expected}"),
    };
    bail!("{what} {}: not a run folder: missing {}{hint}", dir.display(), missing.join(", "))
}

/// The first folder one or two levels below `dir` that holds a run's spikes.h5 (sweeps and several trials
/// write `<point>/trial-<k>/`).
fn first_run_below(dir: &Path) -> Option<PathBuf> {
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let level1 = subdirs(dir);
    let level2 = level1.iter().flat_map(|d| subdirs(d));
    level1.iter().cloned().chain(level2).find(|d| d.join("spikes.h5").is_file())
}

/// `--sim RUN --recording FILE`: a finished run against a recording.
fn compare_run(a: &CompareArgs, run_dir: &Path) -> anyhow::Result<CompareOutcome> {
    let Some(recording) = &a.recording else { bail!("--sim needs --recording FILE") };
    let Some(format) = RecordingFormat::parse(&a.format) else {
        bail!("--format `{}`: use nwb, plain-h5, csv or flavell", a.format)
    };
    let Some(indicator) = IndicatorParams::preset(&a.indicator) else {
        bail!("--indicator `{}`: presets are {}", a.indicator, PRESET_NAMES.join(", "))
    };
    let Some(nan_policy) = parse_nan_policy(&a.nan_policy) else {
        bail!("--nan-policy `{}`: use error or drop-rows", a.nan_policy)
    };
    check_run_folder("--sim", run_dir)?;
    let spikes = read_run_spikes(run_dir)?;
    let summary = run_dir.join("summary.json");
    let text = std::fs::read_to_string(&summary).with_context(|| format!("reading {}", summary.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", summary.display()))?;
    let Some(duration_ms) = v["duration_ms"].as_f64() else {
        bail!("{}: no `duration_ms` (is it a neurotwin run summary?)", summary.display())
    };
    let cfg = RecordingConfig {
        path: recording.clone(),
        format,
        series: a.series.clone(),
        labels: a.labels.clone(),
        worm: None,
        min_confidence: 0.0,
        indicator_name: a.indicator.clone(),
        indicator,
        max_lag_s: 15.0,
        voltage_mapping: DEFAULT_VOLTAGE_MAPPING,
        nan_policy,
    };
    let recordings = load_recordings(&cfg)?;
    let results =
        compare_spikes(&SimulatedActivity::Spikes(&spikes.times_ms), &spikes.names, duration_ms, &recordings, &cfg)?;
    let out = a.out.clone().unwrap_or_else(|| run_dir.join("compare"));
    let mut inputs = InputSet::new();
    for f in ["spikes.h5", "nodes.csv", "summary.json", "state.h5"] {
        inputs.add(&run_dir.join(f));
    }
    add_input(&mut inputs, recording);
    if let Some(l) = &a.labels {
        inputs.add(l);
    }
    let out_dir = open_out(&out, inputs, a.overwrite, &[])?;
    let files = write_recording_report(out_dir.staging(), &results)?;
    let files = publish(out_dir, &files)?;
    print_notes(&results);
    Ok(CompareOutcome { compared: Compared::Recordings(results), out_dir: out, files })
}

fn print_outputs(files: &[PathBuf]) {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    println!("outputs: {}", names.join(", "));
}

/// Notes on stderr: recording labels that matched no neuron (with suggestions) and skipped neurons.
fn print_notes(results: &[RecordingResult]) {
    for r in results {
        if !r.unmatched_described.is_empty() {
            eprintln!(
                "note: {}: {} recording label(s) match no neuron of the network and were left out: {}",
                r.recording,
                r.unmatched_described.len(),
                r.unmatched_described.join(", ")
            );
        }
        if !r.comparison.skipped.is_empty() {
            eprintln!("note: {}: not compared: {}", r.recording, r.comparison.skipped_summary());
        }
    }
}

fn print_recordings(results: &[RecordingResult]) {
    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:+.3}"));
    let header =
        ["recording", "matched", "median r", "corr-matrix r", "corr-matrix Spearman", "AVA~reversal r (lagged peak)"];
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let p = &r.comparison.population;
            let ava: Vec<String> = r
                .ava_reversal
                .iter()
                .map(|b| {
                    format!(
                        "{} {} ({} at {}s)",
                        b.neuron,
                        f(b.zero_lag_r),
                        f(b.peak_r),
                        b.peak_lag_s.map_or("?".into(), |l| format!("{l:+.1}"))
                    )
                })
                .collect();
            vec![
                r.recording.clone(),
                format!("{}/{}", r.matched, r.labelled_rois),
                f(p.median_r),
                f(p.corr_similarity_r),
                f(p.corr_similarity_spearman),
                ava.join("; "),
            ]
        })
        .collect();
    println!("{}", render(&header, &rows));
}

fn print_atlas(r: &AtlasReport) {
    println!(
        "{}: {} stimulated neurons, {} model, response = {:?} over {:.0}–{:.0} ms ({} trial(s), {})",
        r.scenario,
        r.stimulated.len(),
        r.model,
        r.unit,
        r.response_window_ms.0,
        r.response_window_ms.1,
        r.trials,
        r.indicator
    );
    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let header =
        ["strain", "pairs", "responders", "AUC model", "AUC direct wiring", "AUC -hops", "sign agree", "Spearman"];
    let rows: Vec<Vec<String>> = r
        .strains
        .iter()
        .map(|s| {
            vec![
                s.strain.clone(),
                s.n_pairs.to_string(),
                s.n_responders.to_string(),
                f(s.auc_model),
                f(s.auc_direct),
                f(s.auc_hops),
                format!("{} (n={})", f(s.sign_agreement), s.n_sign_pairs),
                f(s.spearman_amplitude),
            ]
        })
        .collect();
    println!("{}", render(&header, &rows));
    println!("{}", r.verdict);
}
