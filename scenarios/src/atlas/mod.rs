//! Structure–function test on the C. elegans signal-propagation atlas (Randi, Sharma, Dvali & Leifer 2023,
//! Nature 623:406): the scenario's model is stimulated one atlas neuron at a time and its predicted
//! responders are compared with the measured ones, for wild type and for `unc-31` mutants (no
//! dense-core-vesicle release, hence no neuropeptide signalling), next to what the wiring alone predicts.
//!
//! Configured by a scenario's `[compare]` section with `kind = "propagation-atlas"`; run by
//! `neurotwin compare SCENARIO`.

pub mod data;
pub mod experiment;
pub mod report;
pub mod score;

use std::path::PathBuf;

use neurotwin_models::calcium::IndicatorParams;
use serde::Serialize;

use crate::build::{Ctx, PreparedRun, non_negative, positive, prepare};
use crate::error::ScenarioError;
use crate::load::ScenarioFile;
use crate::runner::BackendKind;
use crate::spec::CompareSpec;
use crate::targets::NeuronLookup;

pub use data::{AtlasPair, AtlasStrain, PropagationAtlas, read_atlas};
pub use experiment::{AtlasProtocol, PredictedResponses, ResponseUnit, predict_responses};
pub use score::{Anatomy, ScoredPair, StrainScore, score_strain};

/// Everything `[compare] kind = "propagation-atlas"` configures.
#[derive(Clone, Debug)]
pub struct AtlasConfig {
    pub atlas: PathBuf,
    pub strains: Vec<String>,
    pub protocol: AtlasProtocol,
    pub indicator_name: String,
    pub q_threshold: f64,
    /// Neurons allowed to be stimulated (`None`: every atlas neuron in the connectome).
    pub stimulated: Option<Vec<u32>>,
}

/// The result of one comparison (serialised to `atlas_summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct AtlasReport {
    pub scenario: String,
    pub atlas: PathBuf,
    pub model: String,
    pub unit: ResponseUnit,
    pub indicator: String,
    pub stim_rate_hz: f64,
    pub stim_window_ms: (f64, f64),
    pub response_window_ms: (f64, f64),
    pub trials: u32,
    pub stimulated: Vec<String>,
    pub strains: Vec<StrainScore>,
    /// Which strain the simulated responses agree with better (by AUC), in words.
    pub verdict: String,
}

/// Reads and validates the `[compare]` section of `file` (which must be a propagation-atlas comparison).
pub fn atlas_config(file: &ScenarioFile, run: &PreparedRun) -> Result<AtlasConfig, ScenarioError> {
    let ctx = Ctx { path: &file.path, text: &file.text };
    let Some(c) = &file.spec.compare else {
        return Err(ctx.file("no [compare] section: add one with kind = \"propagation-atlas\" or \"recording\""));
    };
    if c.kind.get_ref() != "propagation-atlas" {
        return Err(ctx.at(&c.kind, format!("[compare] kind `{}` is not `propagation-atlas`", c.kind.get_ref())));
    }
    let base = file.path.parent().unwrap_or(std::path::Path::new("."));
    let atlas = match &c.atlas {
        Some(a) => base.join(a.get_ref()),
        None => {
            return Err(
                ctx.at(&c.kind, "[compare]: missing `atlas` (the pairs CSV, e.g. data/celegans/funatlas_pairs.csv)")
            );
        }
    };
    let dt = run.setup.network.dt_ms;
    let steps = run.setup.steps;
    let ms = |v: &Option<toml::Spanned<f64>>, default: f64, what: &str| -> Result<f64, ScenarioError> {
        match v {
            Some(x) => non_negative(&ctx, x, what),
            None => Ok(default),
        }
    };
    let duration = steps as f64 * dt;
    let stim_start = ms(&c.stim_start_ms, duration * 0.2, "stim_start_ms")?;
    let stim_stop = ms(&c.stim_stop_ms, duration * 0.6, "stim_stop_ms")?;
    let response_stop = ms(&c.response_stop_ms, duration, "response_stop_ms")?;
    if !(stim_start < stim_stop && stim_stop <= response_stop && response_stop <= duration + 1e-9) {
        return Err(ctx.at(
            &c.kind,
            format!(
                "[compare]: need stim_start_ms < stim_stop_ms <= response_stop_ms <= run duration ({duration} ms); \
                 got {stim_start}, {stim_stop}, {response_stop}"
            ),
        ));
    }
    let rate_hz = match &c.stim_rate_hz {
        Some(r) => positive(&ctx, r, "stim_rate_hz")?,
        None => 60.0,
    };
    let amplitude_pa = match &c.stim_amplitude_pa {
        Some(a) => positive(&ctx, a, "stim_amplitude_pa")?,
        None => 50.0,
    };
    let q_threshold = match &c.q_threshold {
        Some(q) if (0.0..=1.0).contains(q.get_ref()) && *q.get_ref() > 0.0 => *q.get_ref(),
        Some(q) => return Err(ctx.at(q, format!("q_threshold = {}: must be in (0, 1]", q.get_ref()))),
        None => 0.05,
    };
    let trials = match &c.trials {
        Some(t) if *t.get_ref() >= 1 => *t.get_ref(),
        Some(t) => return Err(ctx.at(t, "trials must be >= 1")),
        None => 1,
    };
    let (indicator_name, indicator) = indicator(&ctx, c)?;
    let strains = match &c.strains {
        Some(s) => s.iter().map(|x| x.get_ref().clone()).collect(),
        None => vec!["wt".to_string(), "unc31".to_string()],
    };
    let stimulated = match &c.stimulated {
        Some(t) => {
            let lookup = NeuronLookup::new(&run.setup.network.neurons);
            Some(lookup.resolve(t, &file.path, &file.text, "[compare] stimulated")?)
        }
        None => None,
    };
    let to_step = |t: f64| ((t / dt).round() as u64).min(steps);
    let protocol = AtlasProtocol {
        rate_hz,
        amplitude_pa,
        stim_steps: (to_step(stim_start), to_step(stim_stop)),
        response_steps: (to_step(stim_start), to_step(response_stop)),
        trials,
        indicator,
    };
    if let (Err(e), Some(a)) = (std::fs::File::open(&atlas), &c.atlas) {
        let shown = atlas.display();
        return Err(ctx.at(a, format!("[compare] atlas = {:?}: cannot read {shown}: {e}", a.get_ref())));
    }
    Ok(AtlasConfig { atlas, strains, protocol, indicator_name, q_threshold, stimulated })
}

fn indicator(ctx: &Ctx, c: &CompareSpec) -> Result<(String, IndicatorParams), ScenarioError> {
    let name = c.indicator.as_ref().map_or("GCaMP6s".to_string(), |s| s.get_ref().clone());
    match IndicatorParams::preset(&name) {
        Some(p) => Ok((name, p)),
        None => {
            let names = neurotwin_models::calcium::PRESET_NAMES.join(", ");
            match &c.indicator {
                Some(s) => Err(ctx.at(s, format!("unknown indicator `{name}`; presets: {names}"))),
                None => Err(ctx.file(format!("unknown indicator `{name}`; presets: {names}"))),
            }
        }
    }
}

/// Runs the whole comparison for the scenario in `file`.
pub fn run_atlas(file: &ScenarioFile, backend: BackendKind, progress: bool) -> Result<AtlasReport, ScenarioError> {
    let run = prepare(&file.spec, &file.path, &file.text)?;
    let cfg = atlas_config(file, &run)?;
    let atlas = read_atlas(&cfg.atlas)?;
    let mut strains = Vec::new();
    for s in &cfg.strains {
        match atlas.strain(s) {
            Some(st) => strains.push(st),
            None => {
                return Err(ScenarioError::File {
                    path: file.path.clone(),
                    message: format!(
                        "[compare] strain `{s}` is not in {} (it has {:?})",
                        cfg.atlas.display(),
                        atlas.strain_names()
                    ),
                });
            }
        }
    }
    let names: Vec<String> = run.setup.network.neurons.iter().map(|n| n.name.clone()).collect();
    let index = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name)).map(|i| i as u32);
    let mut stimulated: Vec<u32> =
        strains.iter().flat_map(|s| s.pairs.iter()).filter_map(|p| index(&p.stimulated)).collect();
    stimulated.sort_unstable();
    stimulated.dedup();
    if let Some(allowed) = &cfg.stimulated {
        stimulated.retain(|j| allowed.contains(j));
    }
    if stimulated.is_empty() {
        return Err(ScenarioError::File {
            path: file.path.clone(),
            message: "[compare]: no stimulated atlas neuron is in the connectome (check names and `stimulated`)".into(),
        });
    }
    let predicted = predict_responses(&run, &stimulated, &cfg.protocol, backend, progress)?;
    let anatomy = Anatomy::new(&run.setup.network);
    let scores: Vec<StrainScore> =
        strains.iter().map(|s| score_strain(s, &predicted, &names, &anatomy, cfg.q_threshold)).collect();
    let dt = run.setup.network.dt_ms;
    let p = &cfg.protocol;
    Ok(AtlasReport {
        scenario: run.name.clone(),
        atlas: cfg.atlas.clone(),
        model: run.model_name.clone(),
        unit: predicted.unit,
        indicator: cfg.indicator_name.clone(),
        stim_rate_hz: p.rate_hz,
        stim_window_ms: (p.stim_steps.0 as f64 * dt, p.stim_steps.1 as f64 * dt),
        response_window_ms: (p.response_steps.0 as f64 * dt, p.response_steps.1 as f64 * dt),
        trials: p.trials,
        stimulated: stimulated.iter().map(|&j| names[j as usize].clone()).collect(),
        verdict: verdict(&scores),
        strains: scores,
    })
}

/// One sentence saying which strain's measured responders the model predicts better (by AUC).
fn verdict(scores: &[StrainScore]) -> String {
    let rated: Vec<(&str, f64)> = scores.iter().filter_map(|s| s.auc_model.map(|a| (s.strain.as_str(), a))).collect();
    match rated.as_slice() {
        [] => "no strain could be scored".into(),
        [(s, a)] => format!("AUC {a:.3} on {s}"),
        _ => {
            let best = rated.iter().max_by(|a, b| a.1.total_cmp(&b.1)).copied().unwrap_or(rated[0]);
            let list: Vec<String> = rated.iter().map(|(s, a)| format!("{s} {a:.3}")).collect();
            format!("the wiring-only model agrees best with {} (AUC {})", best.0, list.join(", "))
        }
    }
}
