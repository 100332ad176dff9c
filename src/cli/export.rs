//! `neurotwin export nwb RUN_DIR -o OUT.nwb`: a finished run's spikes and their simulated calcium imaging as
//! an NWB 2.x file (`neurotwin_imaging::nwb_write`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use neurotwin_imaging::nwb_write::{DffSeries, NwbContent, SessionMeta, SpikeUnits, SubjectMeta, iso8601, write_nwb};
use neurotwin_models::calcium::{Drive, ForwardModel, ImagingParams, IndicatorParams, PRESET_NAMES};
use neurotwin_scenarios::calcium_compare::simulated::{SimulatedActivity, simulated_imaging};
use neurotwin_sim::readback::read_run_spikes;

/// Time step of the calcium forward model (ms), as `neurotwin compare` uses (spike times enter exactly).
const CALCIUM_DT_MS: f64 = 1.0;

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub what: ExportWhat,
}

#[derive(Subcommand, Debug)]
pub enum ExportWhat {
    /// A run directory (spikes.h5, nodes.csv, summary.json of `neurotwin run`) as an NWB 2.x file: the spikes
    /// as the units table and their simulated ΔF/F (calcium forward model) as a RoiResponseSeries in
    /// processing/ophys/DfOverF/dff.
    Nwb(NwbArgs),
}

#[derive(Args, Debug)]
pub struct NwbArgs {
    /// Run directory written by `neurotwin run` (one trial: spikes.h5, nodes.csv, summary.json).
    pub run_dir: PathBuf,
    /// Output NWB file.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Calcium indicator preset of the forward model: GCaMP6s, GCaMP6f, GCaMP7f, GCaMP8m (case-insensitive).
    #[arg(long, default_value = "GCaMP6s")]
    pub indicator: String,
    /// Imaging frame rate (Hz); each frame averages the fluorescence over its period.
    #[arg(long, default_value_t = 10.0)]
    pub frame_rate_hz: f64,
    /// Add shot noise (Poisson-like, counter-based RNG) to the ΔF/F frames; default noise-free.
    #[arg(long)]
    pub noise: bool,
    /// Resting photons per neuron and frame; sets the shot-noise level (baseline ΔF/F noise = 1/√F0).
    #[arg(long, default_value_t = 1000.0)]
    pub f0_photons: f64,
    /// Seed of the imaging noise (default: the run's seed from summary.json).
    #[arg(long)]
    pub noise_seed: Option<u64>,
    /// Species of the connectome, Latin binomial (e.g. "Caenorhabditis elegans"), for /general/subject.
    #[arg(long)]
    pub species: Option<String>,
    /// Subject sex (default: XX, the hermaphrodite, for C. elegans; otherwise U = unknown).
    #[arg(long)]
    pub sex: Option<String>,
}

pub fn export(a: ExportArgs) -> anyhow::Result<()> {
    match a.what {
        ExportWhat::Nwb(n) => export_nwb(&n),
    }
}

/// The preset's canonical spelling (as in [`PRESET_NAMES`]) for a user-given indicator name.
fn canonical_indicator(name: &str) -> Option<&'static str> {
    let want = IndicatorParams::preset(name)?;
    PRESET_NAMES.iter().copied().find(|p| IndicatorParams::preset(p).as_ref() == Some(&want))
}

/// `summary.json` of a run (an object, or a one-element array).
fn read_summary(dir: &Path) -> anyhow::Result<serde_json::Value> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("reading {} (is {} a `neurotwin run` output folder?)", path.display(), dir.display())
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    match v {
        serde_json::Value::Array(mut a) if a.len() == 1 => Ok(a.remove(0)),
        serde_json::Value::Array(a) => bail!(
            "{}: holds {} runs; export one run folder (a trial or sweep point) at a time",
            path.display(),
            a.len()
        ),
        v => Ok(v),
    }
}

/// A run to export: what `neurotwin run` wrote in its folder, or a Python `RunResult` holds.
pub struct RunSpikes {
    /// Neuron names (blank names become `node<i>`).
    pub names: Vec<String>,
    /// Spike times per neuron (ms).
    pub times_ms: Vec<Vec<f64>>,
    /// SONATA population name.
    pub population: String,
    /// The run's summary (`summary.json`): `duration_ms`, `dt_ms`, `seed`, `scenario`, `model` are read.
    pub summary: serde_json::Value,
    /// Where the run came from, for the file's description (a folder, or "Python").
    pub source: String,
    /// When the run wrote its spikes (ISO 8601), the session's start time.
    pub started: String,
}

/// How to export: the flags of `neurotwin export nwb` other than the run and the output file.
pub struct NwbOptions {
    pub indicator: String,
    pub frame_rate_hz: f64,
    pub noise: bool,
    pub f0_photons: f64,
    pub noise_seed: Option<u64>,
    pub species: Option<String>,
    pub sex: Option<String>,
}

fn export_nwb(a: &NwbArgs) -> anyhow::Result<()> {
    let opts = NwbOptions {
        indicator: a.indicator.clone(),
        frame_rate_hz: a.frame_rate_hz,
        noise: a.noise,
        f0_photons: a.f0_photons,
        noise_seed: a.noise_seed,
        species: a.species.clone(),
        sex: a.sex.clone(),
    };
    check_nwb_options(&opts)?;
    let dir = &a.run_dir;
    super::compare::check_run_folder("run folder", dir)?;
    // The export reads the run's files: it must not replace one of them (e.g. -o RUN/spikes.h5).
    let mut inputs = neurotwin_io::inputs::InputSet::new();
    for f in ["spikes.h5", "nodes.csv", "summary.json", "state.h5"] {
        inputs.add(&dir.join(f));
    }
    inputs.check_output(&a.out, "file with -o")?;
    let spikes = read_run_spikes(dir)?;
    let started = std::fs::metadata(dir.join("spikes.h5"))
        .and_then(|m| m.modified())
        .map(iso8601)
        .unwrap_or_else(|_| iso8601(std::time::SystemTime::now()));
    let run = RunSpikes {
        names: spikes.names,
        times_ms: spikes.times_ms,
        population: spikes.population,
        summary: read_summary(dir)?,
        source: dir.display().to_string(),
        started,
    };
    let line = write_run_nwb(&run, &opts, &a.out).with_context(|| format!("exporting the run in {}", dir.display()))?;
    println!("{line}");
    Ok(())
}

/// The indicator preset and the frame rate of `o`, checked before anything is read.
fn check_nwb_options(o: &NwbOptions) -> anyhow::Result<(&'static str, IndicatorParams)> {
    let Some(indicator_name) = canonical_indicator(&o.indicator) else {
        bail!("--indicator `{}`: presets are {}", o.indicator, PRESET_NAMES.join(", "))
    };
    let indicator = IndicatorParams::preset(indicator_name).context("indicator preset")?;
    if !(o.frame_rate_hz.is_finite() && o.frame_rate_hz > 0.0) {
        bail!("--frame-rate-hz {}: must be a positive rate in Hz", o.frame_rate_hz);
    }
    Ok((indicator_name, indicator))
}

/// Writes `run` as an NWB 2.x file at `out` (atomically): the spikes as the units table and their simulated ΔF/F
/// (calcium forward model) as `processing/ophys/DfOverF/dff`. Returns the one-line account the CLI prints.
pub fn write_run_nwb(run: &RunSpikes, o: &NwbOptions, out: &std::path::Path) -> anyhow::Result<String> {
    let (indicator_name, indicator) = check_nwb_options(o)?;
    let summary = &run.summary;
    let field = |k: &str| -> anyhow::Result<f64> {
        summary[k].as_f64().with_context(|| format!("summary.json: no number `{k}` (is it a neurotwin run summary?)"))
    };
    let duration_ms = field("duration_ms")?;
    let dt_ms = field("dt_ms")?;
    let seed = o.noise_seed.or_else(|| summary["seed"].as_u64()).unwrap_or(0);
    let scenario = summary["scenario"].as_str().unwrap_or(&run.population).to_string();
    let model = summary["model"].as_str().unwrap_or("?").to_string();

    let names: Vec<String> = run
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| if n.trim().is_empty() { format!("node{i}") } else { n.clone() })
        .collect();
    let n = names.len();
    if n == 0 {
        bail!("the run has no neurons");
    }
    if run.times_ms.len() != n {
        bail!("{} spike trains for {n} neurons", run.times_ms.len());
    }

    // ΔF/F per neuron (neurons × frames) from the calcium forward model.
    let imaging = ImagingParams::new(o.frame_rate_hz, o.f0_photons);
    let fm = ForwardModel::new(indicator.clone(), imaging, CALCIUM_DT_MS).context("calcium forward model")?;
    let n_frames = fm.n_frames(duration_ms).context("calcium forward model")?;
    if n_frames == 0 {
        bail!(
            "the run is {duration_ms} ms long: shorter than one frame at {} Hz; raise --frame-rate-hz",
            o.frame_rate_hz
        );
    }
    if n_frames < n {
        eprintln!(
            "note: {n_frames} frames < {n} ROIs: nwbinspector's check_data_orientation heuristic (CRITICAL) will \
             flag the ΔF/F series although it is stored as NWB requires (frames × ROIs); for a file nwbinspector \
             accepts, simulate longer or raise --frame-rate-hz"
        );
    }
    let traces: Vec<Vec<f64>> = if o.noise {
        let drives: Vec<Drive> = run.times_ms.iter().map(|t| Drive::SpikeTimes(t)).collect();
        fm.dff_frames_noisy_batch(&drives, duration_ms, seed, 0).context("calcium forward model (with noise)")?
    } else {
        let rows: Vec<usize> = (0..n).collect();
        let rec = simulated_imaging(
            &SimulatedActivity::Spikes(&run.times_ms),
            &names,
            &rows,
            o.frame_rate_hz,
            duration_ms,
            &indicator,
        )
        .map_err(|e| anyhow::anyhow!("calcium forward model: {e}"))?;
        (0..n).map(|i| rec.trace(i).to_vec()).collect()
    };
    let data: Vec<Vec<f64>> = (0..n_frames).map(|k| traces.iter().map(|t| t[k]).collect()).collect();

    let noise_text = if o.noise {
        format!("with shot noise (F0 = {} photons/frame, seed {seed})", o.f0_photons)
    } else {
        "noise-free".to_string()
    };
    let mut session = SessionMeta::new(
        "",
        format!(
            "neurotwin simulation of scenario {scenario:?} ({model}, {n} neurons, {duration_ms} ms, dt {dt_ms} ms): \
             simulated spikes and their simulated {indicator_name} ΔF/F at {} Hz ({noise_text}); no animal was recorded",
            o.frame_rate_hz
        ),
        run.started.clone(),
    );
    session.experiment_description = Some(format!(
        "Spiking network simulation exported from {} by `neurotwin export nwb`. Times are seconds from the start of \
         the simulation (session_start_time = when the run wrote its spikes).",
        run.source
    ));
    session.keywords = vec!["simulation".into(), "connectome".into(), "neurotwin".into(), "calcium imaging".into()];
    session.generated_by = vec![("neurotwin".into(), env!("CARGO_PKG_VERSION").into())];
    let elegans = o.species.as_deref().is_some_and(|s| s == "Caenorhabditis elegans" || s == "C. elegans");
    session.subject = SubjectMeta {
        subject_id: scenario.clone(),
        description: format!(
            "no animal: a digital twin simulated by neurotwin (scenario {scenario:?}, population {:?})",
            run.population
        ),
        species: o.species.clone(),
        sex: o.sex.clone().unwrap_or_else(|| if elegans { "XX".into() } else { "U".into() }),
        ..SubjectMeta::default()
    };
    let content = NwbContent {
        session,
        units: Some(SpikeUnits {
            names: names.clone(),
            spike_times_s: run.times_ms.iter().map(|t| t.iter().map(|x| x * 1e-3).collect()).collect(),
            resolution_s: Some(dt_ms * 1e-3),
            description: format!("spikes simulated by neurotwin (scenario {scenario:?}), one unit per neuron"),
        }),
        dff: vec![DffSeries {
            name: "dff".into(),
            description: format!(
                "simulated ΔF/F: the spikes of each neuron through neurotwin's calcium forward model ({indicator_name} \
                 kinetics and Hill saturation, frames averaged over {:.4} ms, {noise_text})",
                1000.0 / o.frame_rate_hz
            ),
            roi_names: names,
            rate_hz: o.frame_rate_hz,
            start_s: 0.0,
            data,
            indicator: indicator_name.to_string(),
            excitation_lambda_nm: 488.0,
            emission_lambda_nm: 510.0,
        }],
    };
    write_nwb(out, &content)?;
    let spikes_total: usize = run.times_ms.iter().map(Vec::len).sum();
    Ok(format!(
        "wrote {}: {n} units ({spikes_total} spikes), ΔF/F {n_frames} frames × {n} ROIs at {} Hz ({indicator_name}, {noise_text})",
        out.display(),
        o.frame_rate_hz
    ))
}
