//! `neurotwin compare`: the scenario's model against real data, as its `[compare]` section says.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use neurotwin_models::calcium::{IndicatorParams, PRESET_NAMES};
use neurotwin_scenarios::BackendChoice;
use neurotwin_scenarios::atlas::{AtlasReport, report::write_report, run_atlas};
use neurotwin_scenarios::calcium_compare::{
    DEFAULT_VOLTAGE_MAPPING, RecordingConfig, RecordingFormat, RecordingResult, SimulatedActivity, compare_spikes,
    load_recordings, run_recording_compare, write_recording_report,
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
    /// Calcium indicator of the forward model (GCaMP6s, GCaMP6f, GCaMP7f, GCaMP8m).
    #[arg(long, default_value = "GCaMP7f")]
    pub indicator: String,
    /// Output folder (default: out/<scenario name>/compare, or RUN/compare with --sim).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Backend for the simulations: cpu, cuda, auto, cuda-host.
    #[arg(long, default_value = "cpu")]
    pub backend: BackendChoice,
}

pub fn compare(a: CompareArgs) -> anyhow::Result<()> {
    if let Some(run_dir) = &a.sim {
        return compare_run(&a, run_dir);
    }
    let scenario = a.scenario.clone().context("give a scenario file, or --sim RUN --recording FILE")?;
    let file = read(&scenario)?;
    let Some(c) = &file.spec.compare else {
        bail!("{}: no [compare] section (kind = \"propagation-atlas\" or \"recording\")", scenario.display());
    };
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("out").join(&file.spec.name).join("compare"));
    match c.kind.get_ref().as_str() {
        "propagation-atlas" => {
            let report = run_atlas(&file, a.backend, true)?;
            let files = write_report(&out, &report).with_context(|| format!("writing {}", out.display()))?;
            print_atlas(&report);
            print_outputs(&files);
            Ok(())
        }
        "recording" => {
            let results = run_recording_compare(&file, a.backend, true)?;
            let files = write_recording_report(&out, &results)?;
            print_recordings(&results);
            print_outputs(&files);
            Ok(())
        }
        other => bail!(
            "{}: [compare] kind `{other}` is not supported (use \"propagation-atlas\" or \"recording\")",
            scenario.display()
        ),
    }
}

/// `--sim RUN --recording FILE`: a finished run against a recording.
fn compare_run(a: &CompareArgs, run_dir: &std::path::Path) -> anyhow::Result<()> {
    let Some(recording) = &a.recording else { bail!("--sim needs --recording FILE") };
    let Some(format) = RecordingFormat::parse(&a.format) else {
        bail!("--format `{}`: use nwb, plain-h5, csv or flavell", a.format)
    };
    let Some(indicator) = IndicatorParams::preset(&a.indicator) else {
        bail!("--indicator `{}`: presets are {}", a.indicator, PRESET_NAMES.join(", "))
    };
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
    };
    let recordings = load_recordings(&cfg)?;
    let results =
        compare_spikes(&SimulatedActivity::Spikes(&spikes.times_ms), &spikes.names, duration_ms, &recordings, &cfg)?;
    let out = a.out.clone().unwrap_or_else(|| run_dir.join("compare"));
    let files = write_recording_report(&out, &results)?;
    print_recordings(&results);
    print_outputs(&files);
    Ok(())
}

fn print_outputs(files: &[PathBuf]) {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    println!("outputs: {}", names.join(", "));
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
