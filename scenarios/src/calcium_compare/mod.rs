//! Simulated vs recorded calcium imaging: a scenario's (or a finished run's) spikes go through the calcium
//! forward model at the recording's frame rate and are compared neuron by neuron and as a population
//! (correlation structure) with a real recording — NWB 2.x, plain HDF5, CSV or the Flavell lab's
//! whole-brain worms (Dag et al. 2023, Cell 186:2574). Recordings with a reversal series also get the
//! recording-only check that AVA activity goes with reversals, through the same code.
//!
//! Time: the simulation's t = 0 is the recording's first frame. Spontaneous activity is not locked to the
//! animal's, so per-neuron correlations are expected near zero there; the correlation structure among the
//! named neurons is the meaningful comparison.
//!
//! Configured by a scenario's `[compare]` section with `kind = "recording"`, or given on the command line
//! (`neurotwin compare --sim RUN --recording FILE`).

pub mod explain;
pub mod simulated;

pub use simulated::SimulatedActivity;

use std::path::{Path, PathBuf};

use neurotwin_imaging::compare::{
    Aligned, BehaviourRelation, CompareOptions, Comparison, DecayRule, DeconvolutionOptions, NeuronPair, TraceSet,
    align_traces, behaviour_relation, compare_aligned, plot_corr_matrices, plot_traces, write_csv, write_json,
};
use neurotwin_imaging::{
    CalciumRecording, FlavellOptions, ImagingError, LabelMap, LabelMapOptions, NanPolicy, NwbOptions, SignalKind,
    list_flavell_worms, read_csv, read_flavell, read_nwb, read_plain_h5,
};
use neurotwin_models::calcium::{ActivityMapping, IndicatorParams, PRESET_NAMES};
use serde::Serialize;

use crate::build::{Ctx, non_negative, prepare};
use crate::error::ScenarioError;
use crate::load::ScenarioFile;
use crate::runner::{BackendKind, simulate_on};
use neurotwin_sim::{RecordSpec, SpikeSelection, StateProbe};

/// File formats of recordings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RecordingFormat {
    Nwb,
    PlainH5,
    Csv,
    /// `<uid>-data.h5` files of the Flavell lab plus their NeuroPAL label JSON.
    Flavell,
}

impl RecordingFormat {
    /// Parses `nwb`, `plain-h5`, `csv`, `flavell`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "nwb" => Some(Self::Nwb),
            "plain-h5" => Some(Self::PlainH5),
            "csv" => Some(Self::Csv),
            "flavell" => Some(Self::Flavell),
            _ => None,
        }
    }
}

/// What to compare with and how.
#[derive(Clone, Debug)]
pub struct RecordingConfig {
    /// A file, or for `flavell` a data file or a folder of them.
    pub path: PathBuf,
    pub format: RecordingFormat,
    /// NWB: name (or path suffix) of the `RoiResponseSeries` to read (`None`: the only one).
    pub series: Option<String>,
    /// Flavell label JSON (default: `neuropal_labels.json` next to the data).
    pub labels: Option<PathBuf>,
    /// Flavell worm uid (`None`: every worm in the folder, or the given file's worm).
    pub worm: Option<String>,
    /// Flavell identities below this confidence (1–5) are ignored.
    pub min_confidence: f64,
    pub indicator_name: String,
    pub indicator: IndicatorParams,
    /// Largest lag of the cross-correlations (s).
    pub max_lag_s: f64,
    /// Graded models: V_m (mV) → calcium influx (spike equivalents per ms per mV above `threshold`).
    pub voltage_mapping: ActivityMapping,
    /// What to do with a recorded neuron that is NaN in every frame (`--nan-policy`, `[compare] nan_policy`).
    pub nan_policy: NanPolicy,
}

/// Parses a NaN policy as the CLI and scenarios spell it: `error` or `drop-rows` (also `drop_rows`).
pub fn parse_nan_policy(s: &str) -> Option<NanPolicy> {
    match s {
        "error" => Some(NanPolicy::Error),
        "drop-rows" | "drop_rows" => Some(NanPolicy::DropRows),
        _ => None,
    }
}

/// Default voltage → calcium mapping for graded neurons: influx starts at −40 mV (activation of the
/// L-type channel EGL-19 in C. elegans muscle and neurons lies around −40 to −30 mV; Jospin et al. 2002,
/// J Physiol 544:373) and 0.02 spike equivalents per ms per mV above it (a neuron held 10 mV above
/// threshold carries the calcium of a 200 Hz spike train in this model's units — a scale, not a fit).
pub const DEFAULT_VOLTAGE_MAPPING: ActivityMapping = ActivityMapping { threshold: -40.0, gain: 0.02 };

/// A recording and the name it is reported under (worm uid or file name).
pub struct NamedRecording {
    pub name: String,
    pub recording: CalciumRecording,
}

/// The comparison with one recording.
#[derive(Clone, Debug, Serialize)]
pub struct RecordingResult {
    pub recording: String,
    pub source: PathBuf,
    /// Time of the recording's first frame (s, its own clock), subtracted so that both start at 0.
    pub time_offset_s: f64,
    pub labelled_rois: usize,
    pub matched: usize,
    pub unmatched_labels: Vec<String>,
    /// The unmatched labels with the network names they were probably meant as (`AVLA (did you mean AVAL?)`).
    pub unmatched_described: Vec<String>,
    pub comparison: Comparison,
    /// AVAL/AVAR vs the reversal series, when the recording has one (recording only).
    pub ava_reversal: Vec<BehaviourRelation>,
    #[serde(skip)]
    pub aligned: Option<Aligned>,
}

/// Reads and validates a `[compare]` section with `kind = "recording"`.
pub fn recording_config(file: &ScenarioFile) -> Result<RecordingConfig, ScenarioError> {
    let ctx = Ctx { path: &file.path, text: &file.text };
    let Some(c) = &file.spec.compare else {
        return Err(ctx.file("no [compare] section: add one with kind = \"recording\""));
    };
    if c.kind.get_ref() != "recording" {
        return Err(ctx.at(&c.kind, format!("[compare] kind `{}` is not `recording`", c.kind.get_ref())));
    }
    let base = file.path.parent().unwrap_or(Path::new("."));
    let Some(rec) = &c.recording else {
        return Err(ctx.at(&c.kind, "[compare]: missing `recording` (a file, or a folder of Flavell worms)"));
    };
    let format = match &c.format {
        Some(f) => RecordingFormat::parse(f.get_ref())
            .ok_or_else(|| ctx.at(f, format!("format `{}`: use nwb, plain-h5, csv or flavell", f.get_ref())))?,
        None => return Err(ctx.at(&c.kind, "[compare]: missing `format` (nwb, plain-h5, csv or flavell)")),
    };
    let min_confidence = match &c.min_confidence {
        Some(m) if (0.0..=5.0).contains(m.get_ref()) => *m.get_ref(),
        Some(m) => return Err(ctx.at(m, format!("min_confidence = {}: must be in [0, 5]", m.get_ref()))),
        None => 0.0,
    };
    let max_lag_s = match &c.max_lag_s {
        Some(m) => non_negative(&ctx, m, "max_lag_s")?,
        None => 15.0,
    };
    let nan_policy = match &c.nan_policy {
        Some(p) => parse_nan_policy(p.get_ref())
            .ok_or_else(|| ctx.at(p, format!("nan_policy = \"{}\": use \"error\" or \"drop-rows\"", p.get_ref())))?,
        None => NanPolicy::Error,
    };
    let indicator_name = c.indicator.as_ref().map_or("GCaMP7f".to_string(), |s| s.get_ref().clone());
    let indicator = IndicatorParams::preset(&indicator_name).ok_or_else(|| {
        let msg = format!("unknown indicator `{indicator_name}`; presets: {}", PRESET_NAMES.join(", "));
        match &c.indicator {
            Some(s) => ctx.at(s, msg),
            None => ctx.file(msg),
        }
    })?;
    Ok(RecordingConfig {
        path: base.join(rec.get_ref()),
        format,
        series: c.series.as_ref().map(|x| x.get_ref().clone()),
        labels: c.labels.as_ref().map(|l| base.join(l.get_ref())),
        worm: c.worm.as_ref().map(|w| w.get_ref().clone()),
        min_confidence,
        indicator_name,
        indicator,
        max_lag_s,
        voltage_mapping: DEFAULT_VOLTAGE_MAPPING,
        nan_policy,
    })
}

fn imaging_err(path: &Path, e: impl std::fmt::Display) -> ScenarioError {
    ScenarioError::File { path: path.into(), message: e.to_string() }
}

/// A reader's error as a scenario error, without naming the file twice.
fn read_err(p: &Path, e: ImagingError) -> ScenarioError {
    match e {
        ImagingError::Io { path, source } => ScenarioError::Read { path, what: "recording".into(), source },
        ImagingError::Parse { path, line, message } => ScenarioError::At { path, line: line as usize, message },
        ImagingError::Format { path, message } => ScenarioError::File { path, message },
        ImagingError::Hdf5 { path, message } => ScenarioError::File { path, message: format!("HDF5: {message}") },
        other => imaging_err(p, other),
    }
}

/// An error about recording `r`, named by its source file and, when different (Flavell worms), its name.
fn recording_err(r: &NamedRecording, e: impl std::fmt::Display) -> ScenarioError {
    let source = &r.recording.source;
    if source.file_name().is_some_and(|n| n.to_string_lossy() == r.name) {
        imaging_err(source, e)
    } else {
        imaging_err(source, format!("{}: {e}", r.name))
    }
}

/// Reads the recording(s) the configuration names.
pub fn load_recordings(cfg: &RecordingConfig) -> Result<Vec<NamedRecording>, ScenarioError> {
    let p = &cfg.path;
    let stem = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let one = |recording: CalciumRecording| Ok(vec![NamedRecording { name: stem.clone(), recording }]);
    match cfg.format {
        RecordingFormat::Nwb => {
            one(read_nwb(p, &NwbOptions { series: cfg.series.clone(), nan: cfg.nan_policy })
                .map_err(|e| read_err(p, e))?)
        }
        RecordingFormat::PlainH5 => one(read_plain_h5(p, cfg.nan_policy).map_err(|e| read_err(p, e))?),
        RecordingFormat::Csv => one(read_csv(p, SignalKind::DfOverF, cfg.nan_policy).map_err(|e| read_err(p, e))?),
        RecordingFormat::Flavell => {
            // A single data file is read as the worm `[compare] worm` names (default: from its file name).
            let files: Vec<(Option<String>, PathBuf)> = if p.is_dir() {
                let all = list_flavell_worms(p).map_err(|e| read_err(p, e))?;
                all.into_iter()
                    .filter(|(u, _)| cfg.worm.as_ref().is_none_or(|w| w == u))
                    .map(|(u, f)| (Some(u), f))
                    .collect()
            } else {
                let from_name = stem.strip_suffix("-data.h5").map(str::to_string);
                if let (Some(n), Some(w)) = (&from_name, &cfg.worm)
                    && n != w
                {
                    let msg =
                        format!("this is worm `{n}` (file name) but [compare] worm = \"{w}\"; give that worm's file");
                    return Err(imaging_err(p, msg));
                }
                vec![(cfg.worm.clone().or(from_name), p.clone())]
            };
            let dir = if p.is_dir() { p.clone() } else { p.parent().unwrap_or(Path::new(".")).to_path_buf() };
            let labels = cfg.labels.clone().unwrap_or_else(|| dir.join("neuropal_labels.json"));
            let mut out = Vec::new();
            for (uid, file) in files {
                let opts = FlavellOptions {
                    min_confidence: cfg.min_confidence,
                    nan: cfg.nan_policy,
                    uid: uid.clone(),
                    ..Default::default()
                };
                let worm = read_flavell(&file, &labels, &opts).map_err(|e| read_err(&file, e))?;
                let name = uid.unwrap_or_else(|| stem.clone());
                out.push(NamedRecording { name, recording: worm.recording });
            }
            if out.is_empty() {
                return Err(imaging_err(
                    p,
                    format!("no Flavell worm{} here", cfg.worm.as_ref().map_or(String::new(), |w| format!(" `{w}`"))),
                ));
            }
            Ok(out)
        }
    }
}

/// How recordings are compared: the configured lag range and the indicator's decay for event rates.
fn compare_options(cfg: &RecordingConfig) -> CompareOptions {
    CompareOptions {
        max_lag_s: cfg.max_lag_s,
        deconvolution: Some(DeconvolutionOptions {
            decay: DecayRule::Indicator(cfg.indicator_name.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn label_map(rec: &CalciumRecording, names: &[String]) -> LabelMap {
    LabelMap::build(&rec.labels, names, &LabelMapOptions { case_insensitive: true, ..Default::default() })
}

/// Checks, before anything is simulated or written, that a run of `duration_ms` over the neurons `names`
/// can be compared with each recording: some labels match, and run and recording are long enough.
pub fn check_recordings(
    names: &[String],
    duration_ms: f64,
    recordings: &[NamedRecording],
    cfg: &RecordingConfig,
) -> Result<(), ScenarioError> {
    let min_frames = compare_options(cfg).min_valid_frames;
    for r in recordings {
        let rec = &r.recording;
        let err = |e: String| recording_err(r, format!("cannot compare: {e}"));
        let map = label_map(rec, names);
        if map.matches.is_empty() {
            return Err(err(explain::nothing_matched(&rec.labels, names)));
        }
        let mut matched: Vec<String> = Vec::new();
        for m in &map.matches {
            if !matched.contains(&m.name) {
                matched.push(m.name.clone());
            }
        }
        explain::check_length(duration_ms, rec, &matched, min_frames).map_err(err)?;
    }
    Ok(())
}

/// Compares simulated activity (spike trains or graded voltage of neuron `names[i]`, over `duration_ms`) with each
/// recording: label mapping, forward model at the recording's frame rate, alignment, metrics, AVA–reversal.
/// Errors, before anything is written, when a recording cannot be compared: no label matches, run or
/// recording too short, or fewer than [`explain::MIN_COMPARED`] neurons with usable traces (the message
/// says why for each neuron and what to change).
pub fn compare_spikes(
    activity: &SimulatedActivity,
    names: &[String],
    duration_ms: f64,
    recordings: &[NamedRecording],
    cfg: &RecordingConfig,
) -> Result<Vec<RecordingResult>, ScenarioError> {
    check_recordings(names, duration_ms, recordings, cfg)?;
    let mut out = Vec::new();
    for r in recordings {
        // The simulation starts at the recording's first frame (recordings often carry an absolute clock).
        let mut shifted = r.recording.clone();
        let time_offset_s = shifted.time_s.first().copied().unwrap_or(0.0);
        shifted.time_s.iter_mut().for_each(|t| *t -= time_offset_s);
        let rec = &shifted;
        let err = |e: String| recording_err(r, e);
        let map = label_map(rec, names);
        let mut rows: Vec<usize> = map.matches.iter().map(|m| m.neuron).collect();
        rows.sort_unstable();
        rows.dedup();
        let pairs: Vec<NeuronPair> = map
            .matches
            .iter()
            .map(|m| NeuronPair {
                sim_row: rows.binary_search(&m.neuron).unwrap_or(0),
                rec_row: m.row,
                name: m.name.clone(),
            })
            .collect();
        let sim = simulated::simulated_imaging(
            activity,
            names,
            &rows,
            rec.frame_rate_hz().unwrap_or(1.0),
            duration_ms,
            &cfg.indicator,
        )
        .map_err(err)?;
        let opts = compare_options(cfg);
        let aligned = align_traces(&TraceSet::of("simulation", &sim), &TraceSet::of("recording", rec), &opts.resample)
            .map_err(|e| err(e.to_string()))?;
        let both_dff = rec.kind == SignalKind::DfOverF;
        let comparison = compare_aligned(&aligned, &pairs, both_dff, &opts).map_err(|e| err(e.to_string()))?;
        explain::check_compared(&comparison, duration_ms).map_err(|e| err(format!("cannot compare: {e}")))?;
        let ava_reversal = ["AVAL", "AVAR"]
            .iter()
            .filter_map(|n| rec.index_of(n))
            .filter(|_| rec.extra("reversal_vec").is_some())
            .map(|row| behaviour_relation(rec, row, "reversal_vec", cfg.max_lag_s).map_err(|e| err(e.to_string())))
            .collect::<Result<_, _>>()?;
        let unmatched: Vec<String> = map.unmatched_labels.iter().map(|(_, l)| l.clone()).collect();
        out.push(RecordingResult {
            recording: r.name.clone(),
            source: rec.source.clone(),
            time_offset_s,
            labelled_rois: rec.labels.iter().filter(|l| !l.is_empty()).count(),
            matched: pairs.len(),
            unmatched_labels: unmatched.clone(),
            unmatched_described: explain::describe_unmatched(&unmatched, names),
            comparison,
            ava_reversal,
            aligned: Some(aligned),
        });
    }
    Ok(out)
}

/// Simulates the scenario of `file` (its seed, one trial) and compares it with the configured recordings.
pub fn run_recording_compare(
    file: &ScenarioFile,
    backend: BackendKind,
    progress: bool,
) -> Result<Vec<RecordingResult>, ScenarioError> {
    let mut run = prepare(&file.spec, &file.path, &file.text)?;
    let cfg = recording_config(file)?;
    let recordings = load_recordings(&cfg)?;
    let names: Vec<String> = run.setup.network.neurons.iter().map(|n| n.name.clone()).collect();
    check_recordings(&names, *file.spec.run.duration_ms.get_ref(), &recordings, &cfg)?;
    let n = names.len();
    if run.setup.model.is_spiking() {
        run.record = RecordSpec::default();
        let (rec, _, _) = simulate_on(backend, &run, run.setup.seed, progress, &run.name)?;
        let times = rec.spike_times_by_neuron();
        return compare_spikes(&SimulatedActivity::Spikes(&times), &names, rec.duration_ms(), &recordings, &cfg);
    }
    // Graded models: V_m of every neuron every millisecond drives calcium influx above the threshold.
    let every = (1.0 / run.setup.network.dt_ms).round().max(1.0) as u64;
    let probe = StateProbe { var: 0, var_name: "V_m".into(), neurons: (0..n as u32).collect(), every_steps: every };
    run.record = RecordSpec { spikes: SpikeSelection::None, state: vec![probe], ..Default::default() };
    let (rec, _, _) = simulate_on(backend, &run, run.setup.seed, progress, &run.name)?;
    let mut v_mv = vec![Vec::new(); n];
    for row in rec.state[0].values.chunks(n) {
        v_mv.iter_mut().zip(row).for_each(|(v, x)| v.push(*x));
    }
    let activity =
        SimulatedActivity::Voltage { v_mv: &v_mv, dt_ms: every as f64 * rec.dt_ms, mapping: cfg.voltage_mapping };
    compare_spikes(&activity, &names, rec.duration_ms(), &recordings, &cfg)
}

/// Writes, per recording, `<name>/comparison.csv`, `comparison.json`, `traces.png` and `correlations.png`,
/// and `compare_summary.json` for all; returns the paths written.
pub fn write_recording_report(dir: &Path, results: &[RecordingResult]) -> Result<Vec<PathBuf>, ScenarioError> {
    // Nothing is written unless every figure can be drawn (the correlation matrices need two neurons).
    for r in results {
        let c = &r.comparison;
        if c.neurons.len() < explain::MIN_COMPARED {
            let skipped = if c.skipped.is_empty() { String::new() } else { format!(" ({})", c.skipped_summary()) };
            let msg = format!(
                "{}: {} compared neuron(s), the report needs at least {}{skipped}; nothing written",
                r.recording,
                c.neurons.len(),
                explain::MIN_COMPARED
            );
            return Err(ScenarioError::File { path: dir.into(), message: msg });
        }
    }
    let mut paths = Vec::new();
    for r in results {
        let d = dir.join(&r.recording);
        let e = |p: &Path, x: neurotwin_imaging::ImagingError| imaging_err(p, x);
        let csv = d.join("comparison.csv");
        write_csv(&csv, &r.comparison).map_err(|x| e(&csv, x))?;
        let json = d.join("comparison.json");
        write_json(&json, &r.comparison).map_err(|x| e(&json, x))?;
        let corr = d.join("correlations.png");
        plot_corr_matrices(&corr, &r.comparison).map_err(|x| e(&corr, x))?;
        paths.extend([csv, json, corr]);
        if let Some(al) = &r.aligned {
            let tr = d.join("traces.png");
            plot_traces(&tr, &r.comparison, al).map_err(|x| e(&tr, x))?;
            paths.push(tr);
        }
    }
    let summary = dir.join("compare_summary.json");
    neurotwin_sim::output::write_json(&summary, &results)?;
    paths.push(summary);
    Ok(paths)
}
