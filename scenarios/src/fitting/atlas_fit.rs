//! Fitting a twin to a signal-propagation atlas, with k-fold cross-validation over stimulated neurons
//! and baselines on the same held-out pairs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use neurotwin_fit::atlas::{AtlasProtocol, AtlasTask, BackendKind, StimExample};
use neurotwin_fit::rate::{Activation, RateModel, RateValues};
use neurotwin_fit::spec::build_params;
use neurotwin_fit::testing::SplitMix;
use neurotwin_fit::train::EpochRecord;
use neurotwin_fit::{FitError, FitNetwork, ParamSet};
use neurotwin_imaging::stats::{pearson, roc_auc};
use serde::Serialize;

use super::FitScenarioFile;
use crate::atlas::data::{PropagationAtlas, read_atlas};
use crate::build::Ctx;
use crate::error::ScenarioError;

/// Everything a fit needs, checked before any work starts.
pub struct AtlasPlan {
    pub atlas_path: PathBuf,
    pub atlas: PropagationAtlas,
    pub strain: String,
    pub net: FitNetwork,
    pub params: ParamSet,
    pub protocol: AtlasProtocol,
    pub activation: Activation,
    /// Step (ms).
    pub dt: f64,
    /// Where simulations and gradients run (set by the caller; `Cpu` by default).
    pub backend: BackendKind,
    pub examples: Vec<StimExample>,
    /// q-value of each example's pairs (same order as its responders).
    pub q: Vec<Vec<f64>>,
    pub unmatched: Vec<String>,
}

/// Held-out scores of one predictor.
#[derive(Clone, Debug, Serialize)]
pub struct Score {
    pub predictor: String,
    /// Pearson r of predicted vs measured ΔF/F over the pairs.
    pub pearson_r: Option<f64>,
    /// ROC AUC of |prediction| (−hops: minus the hop count) for responders (q < threshold).
    pub auc: Option<f64>,
}

/// Scores of the fitted twin and every baseline on one set of pairs.
#[derive(Clone, Debug, Serialize)]
pub struct BaselineScores {
    pub strain: String,
    pub n_stimulated: usize,
    pub n_pairs: usize,
    pub n_responders: usize,
    pub scores: Vec<Score>,
}

impl BaselineScores {
    pub fn get(&self, predictor: &str) -> Option<&Score> {
        self.scores.iter().find(|s| s.predictor == predictor)
    }
}

/// One scored pair.
#[derive(Clone, Debug, Serialize)]
pub struct PairRow {
    pub strain: String,
    /// `fold1` … (cross-validation, held out) or `final` (the twin fitted on everything).
    pub fit: String,
    pub stimulated: String,
    pub responder: String,
    pub measured: f64,
    pub q: f64,
    pub is_responder: bool,
    pub fitted: f64,
    pub unfitted: f64,
    pub direct: f64,
    pub hops: Option<u32>,
    pub neuron_mean: f64,
}

/// One epoch of one fit.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryRow {
    pub fit: String,
    pub restart: u64,
    #[serde(flatten)]
    pub epoch: EpochRecord,
}

/// What `neurotwin fit` reports for an atlas fit.
#[derive(Clone, Debug, Serialize)]
pub struct AtlasFitReport {
    pub name: String,
    pub strain: String,
    pub folds: usize,
    pub restarts: u64,
    pub n_neurons: usize,
    pub n_connections: usize,
    pub n_fitted_numbers: usize,
    pub unmatched_atlas_neurons: Vec<String>,
    /// Held-out (cross-validated) scores on the fitted strain.
    pub cross_validated: BaselineScores,
    /// The final twin (fitted on every stimulation) scored, unchanged, on other strains.
    pub other_strains: Vec<BaselineScores>,
    /// Final twin: epoch of the best validation loss and that loss.
    pub final_best_epoch: usize,
    pub final_val_loss: f64,
    pub fitted_params: BTreeMap<String, BTreeMap<String, f64>>,
    pub initial_params: BTreeMap<String, BTreeMap<String, f64>>,
    pub seconds: f64,
    #[serde(skip)]
    pub pairs: Vec<PairRow>,
    #[serde(skip)]
    pub history: Vec<HistoryRow>,
    #[serde(skip)]
    pub fitted: ParamSet,
    #[serde(skip)]
    pub model: FittedModelInfo,
}

/// What a fitted-parameter file says about its model (so `neurotwin run` can check it later).
#[derive(Clone, Debug, Default, Serialize)]
pub struct FittedModelInfo {
    pub model: String,
    pub activation: String,
    pub dt_ms: f64,
    /// Name of the fit scenario.
    pub network: String,
    /// The fit scenario file (its `[network]` and `[fit.params]` rebuild the parameter layout).
    pub scenario: String,
}

/// Most steps of a fit protocol (far beyond any fit that finishes; keeps step arithmetic from overflowing).
const MAX_STEPS: f64 = 1e9;

fn steps_of(ctx: &Ctx, v: &toml::Spanned<f64>, dt: f64, what: &str) -> Result<usize, ScenarioError> {
    let x = *v.get_ref();
    let r = x / dt;
    if !(x.is_finite() && x >= 0.0) || (r - r.round()).abs() > 1e-6 * r.max(1.0) {
        return Err(ctx.at(v, format!("`{what}` = {x} must be ≥ 0 and a multiple of fit.dt_ms = {dt}")));
    }
    if r > MAX_STEPS {
        return Err(ctx.at(v, format!("`{what}` = {x} ms is {r:.3e} steps of fit.dt_ms = {dt}; at most {MAX_STEPS:e}")));
    }
    Ok(r.round() as usize)
}

/// Examples (one per stimulated neuron) of a strain, and the atlas names not in the network.
fn examples_of(
    net: &FitNetwork,
    atlas: &PropagationAtlas,
    strain: &str,
) -> (Vec<StimExample>, Vec<Vec<f64>>, Vec<String>) {
    let index: HashMap<&str, u32> = net.names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
    // Per stimulated neuron: responders, measured ΔF/F, q-values.
    type Pairs = (Vec<u32>, Vec<f64>, Vec<f64>);
    let mut by_stim: BTreeMap<u32, Pairs> = BTreeMap::new();
    let mut unmatched = std::collections::BTreeSet::new();
    if let Some(s) = atlas.strain(strain) {
        for p in &s.pairs {
            let (Some(&j), Some(&i)) = (index.get(p.stimulated.as_str()), index.get(p.responder.as_str())) else {
                for n in [&p.stimulated, &p.responder] {
                    if !index.contains_key(n.as_str()) {
                        unmatched.insert(n.clone());
                    }
                }
                continue;
            };
            if i == j || !p.dff.is_finite() {
                continue;
            }
            let e = by_stim.entry(j).or_default();
            e.0.push(i);
            e.1.push(p.dff);
            e.2.push(p.q);
        }
    }
    let mut examples = Vec::new();
    let mut q = Vec::new();
    for (j, (responders, measured, qs)) in by_stim {
        examples.push(StimExample { stimulated: j, responders, measured });
        q.push(qs);
    }
    (examples, q, unmatched.into_iter().collect())
}

/// Reads the atlas, builds the network and parameters, and checks every setting.
pub fn plan(file: &FitScenarioFile) -> Result<AtlasPlan, ScenarioError> {
    let ctx = Ctx { path: &file.path, text: &file.text };
    let fit = &file.spec.fit;
    let dt = crate::build::positive(&ctx, &fit.dt_ms, "fit.dt_ms")?;
    let atlas_rel = fit
        .atlas
        .as_ref()
        .ok_or_else(|| ctx.at(&fit.data, "`fit.data` = \"propagation-atlas\" needs `atlas` (the pairs CSV)"))?;
    let base = file.path.parent().unwrap_or(Path::new("."));
    let atlas_path = base.join(atlas_rel.get_ref());
    let atlas = read_atlas(&atlas_path)?;
    let strain = fit.strain.as_ref().map(|s| s.get_ref().clone()).unwrap_or_else(|| "wt".into());
    for s in fit.strain.iter().chain(&fit.score_strains) {
        if atlas.strain(s.get_ref()).is_none() {
            return Err(ctx.at(
                s,
                format!(
                    "strain `{}` is not in {} (strains: {})",
                    s.get_ref(),
                    atlas_path.display(),
                    atlas.strain_names().join(", ")
                ),
            ));
        }
    }
    if atlas.strain(&strain).is_none() {
        return Err(ctx.file(format!(
            "strain `{strain}` is not in {} (strains: {})",
            atlas_path.display(),
            atlas.strain_names().join(", ")
        )));
    }
    let stim0 = steps_of(&ctx, &fit.stim_start_ms, dt, "fit.stim_start_ms")?;
    let stim1 = steps_of(&ctx, &fit.stim_stop_ms, dt, "fit.stim_stop_ms")?;
    let stop = steps_of(&ctx, &fit.response_stop_ms, dt, "fit.response_stop_ms")?;
    if !(stim0 < stim1 && stim1 <= stop) {
        return Err(ctx.at(&fit.stim_stop_ms, "need stim_start_ms < stim_stop_ms ≤ response_stop_ms"));
    }
    if fit.folds < 2 {
        return Err(ctx.file(format!("`fit.folds` = {}: cross-validation needs at least 2 folds", fit.folds)));
    }
    if !(fit.validation_fraction >= 0.0 && fit.validation_fraction < 0.9) {
        return Err(
            ctx.file(format!("`fit.validation_fraction` = {}: use a value in [0, 0.9)", fit.validation_fraction))
        );
    }
    if !(fit.stim_amplitude.is_finite() && fit.q_threshold.is_finite()) {
        return Err(ctx.file("`fit.stim_amplitude` and `fit.q_threshold` must be finite"));
    }
    let t = &fit.train;
    if t.epochs == 0 || t.batch_size == 0 || !(t.lr > 0.0 && t.lr.is_finite()) {
        return Err(ctx.file("[fit.train]: epochs and batch_size must be ≥ 1 and lr > 0"));
    }
    let activation = super::activation(file)?;
    let net = super::fit_network(file)?;
    let params = build_params(&net, "rate", &fit.params).map_err(|e| ctx.file(format!("[fit.params]: {e}")))?;
    // τ must stay above dt for a stable Euler step: refuse bounds that allow less.
    if let Some(b) = params.block("tau") {
        for (k, tr) in b.transforms.iter().enumerate() {
            let lo = match *tr {
                neurotwin_fit::Transform::Positive { lo } | neurotwin_fit::Transform::Bounded { lo, .. } => lo,
                neurotwin_fit::Transform::Identity => f64::NEG_INFINITY,
            };
            if b.fitted && lo < dt {
                return Err(ctx.file(format!(
                    "[fit.params.tau]: group `{}` may fall below dt_ms = {dt} (lower bound {lo}); set `lo = {dt}` or more (explicit Euler needs τ ≥ dt)",
                    b.labels[k]
                )));
            }
        }
    }
    let (examples, q, unmatched) = examples_of(&net, &atlas, &strain);
    if examples.len() < fit.folds {
        return Err(ctx.file(format!(
            "the atlas strain `{strain}` has {} stimulated neurons with measured responders in this network; {} folds need at least as many (do the atlas names match the connectome's? unmatched: {})",
            examples.len(),
            fit.folds,
            unmatched.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let protocol =
        AtlasProtocol { steps: stop, stim: (stim0, stim1), window: (stim0, stop + 1), amplitude: fit.stim_amplitude };
    let plan = AtlasPlan {
        atlas_path,
        atlas,
        strain,
        net,
        params,
        protocol,
        activation,
        dt,
        backend: BackendKind::Cpu,
        examples,
        q,
        unmatched,
    };
    task(&plan, fit.checkpoint_every).check(&plan.examples).map_err(|e| ctx.file(format!("{e}")))?;
    Ok(plan)
}

fn task(plan: &AtlasPlan, checkpoint_every: usize) -> AtlasTask<'_> {
    AtlasTask {
        model: RateModel::new(&plan.net, plan.dt, plan.activation),
        protocol: plan.protocol.clone(),
        checkpoint_every,
        backend: plan.backend,
    }
}

/// Shuffled indices `0..n` (seeded Fisher–Yates).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut r = SplitMix(seed);
    for i in (1..n).rev() {
        let j = (r.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Fits on `train_idx` (early stopping on a split of it) from every restart; returns the best.
#[allow(clippy::too_many_arguments)]
fn fit_once(
    plan: &AtlasPlan,
    file: &FitScenarioFile,
    label: &str,
    train_idx: &[usize],
    bar: &ProgressBar,
    history: &mut Vec<HistoryRow>,
) -> Result<(ParamSet, usize, f64), ScenarioError> {
    let fit = &file.spec.fit;
    let t = task(plan, fit.checkpoint_every);
    let order = shuffled(train_idx.len(), fit.seed ^ 0xA11A5 ^ (label.len() as u64 * 7919));
    let n_val =
        if train_idx.len() >= 5 { ((train_idx.len() as f64) * fit.validation_fraction).round() as usize } else { 0 };
    let val: Vec<usize> = order[..n_val].iter().map(|&k| train_idx[k]).collect();
    let tr: Vec<usize> = order[n_val..].iter().map(|&k| train_idx[k]).collect();
    let examples = &plan.examples;
    let grad = |p: &ParamSet, idx: &[usize]| -> Result<(f64, Vec<f64>), FitError> {
        let b: Vec<&StimExample> = idx.iter().map(|&k| &examples[tr[k]]).collect();
        Ok(t.loss_and_grad(p, &b))
    };
    let val_refs: Vec<&StimExample> = val.iter().map(|&k| &examples[k]).collect();
    let val_loss = |p: &ParamSet| -> Result<f64, FitError> {
        Ok(if val_refs.is_empty() { f64::NAN } else { t.loss(p, &val_refs) })
    };
    super::fit_with_restarts(file, label, &plan.params, tr.len(), &grad, &val_loss, bar, history)
}

/// Anatomy baselines: signed direct count j → i (chemical, plus gap junctions) and hop distances.
struct Anatomy {
    direct: HashMap<(u32, u32), f64>,
    next: Vec<Vec<u32>>,
}

impl Anatomy {
    fn new(net: &FitNetwork) -> Self {
        let mut direct: HashMap<(u32, u32), f64> = HashMap::new();
        let mut next = vec![Vec::new(); net.n];
        for i in 0..net.n {
            for c in net.row_ptr[i]..net.row_ptr[i + 1] {
                let j = net.pre[c];
                *direct.entry((j, i as u32)).or_default() += net.sign[c] as f64 * net.count[c] as f64;
                next[j as usize].push(i as u32);
            }
            for g in net.gap_ptr[i]..net.gap_ptr[i + 1] {
                let j = net.gap_nbr[g];
                *direct.entry((j, i as u32)).or_default() += net.gap_count[g] as f64;
                next[j as usize].push(i as u32);
            }
        }
        Self { direct, next }
    }

    fn hops_from(&self, j: u32) -> Vec<Option<u32>> {
        let mut d = vec![None; self.next.len()];
        d[j as usize] = Some(0);
        let mut q = VecDeque::from([j]);
        while let Some(a) = q.pop_front() {
            let da = d[a as usize].unwrap_or(0);
            for &b in &self.next[a as usize] {
                if d[b as usize].is_none() {
                    d[b as usize] = Some(da + 1);
                    q.push_back(b);
                }
            }
        }
        d
    }
}

/// Mean measured response of each neuron as a responder over the given examples (0 where unseen).
fn neuron_means(n: usize, examples: &[&StimExample]) -> Vec<f64> {
    let mut sum = vec![0.0; n];
    let mut count = vec![0usize; n];
    for e in examples {
        for (&i, &y) in e.responders.iter().zip(&e.measured) {
            sum[i as usize] += y;
            count[i as usize] += 1;
        }
    }
    sum.iter().zip(&count).map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 }).collect()
}

/// Scores every predictor on `rows`.
pub fn score_rows(strain: &str, rows: &[PairRow]) -> BaselineScores {
    let measured: Vec<f64> = rows.iter().map(|r| r.measured).collect();
    let positive: Vec<bool> = rows.iter().map(|r| r.is_responder).collect();
    let hops: Vec<f64> = rows.iter().map(|r| r.hops.map_or(-1e9, |h| -(h as f64))).collect();
    let mut scores = Vec::new();
    type Predictor = fn(&PairRow) -> f64;
    let predictors: [(&str, Predictor); 4] = [
        ("fitted twin", |r| r.fitted),
        ("unfitted model", |r| r.unfitted),
        ("direct wiring", |r| r.direct),
        ("per-neuron mean (no connectome)", |r| r.neuron_mean),
    ];
    for (name, f) in predictors {
        let x: Vec<f64> = rows.iter().map(f).collect();
        let mag: Vec<f64> = x.iter().map(|v| v.abs()).collect();
        scores.push(Score { predictor: name.into(), pearson_r: pearson(&x, &measured), auc: roc_auc(&mag, &positive) });
    }
    let reachable: Vec<usize> = (0..rows.len()).filter(|&k| rows[k].hops.is_some()).collect();
    let hx: Vec<f64> = reachable.iter().map(|&k| hops[k]).collect();
    let hy: Vec<f64> = reachable.iter().map(|&k| measured[k]).collect();
    scores.push(Score { predictor: "-hops".into(), pearson_r: pearson(&hx, &hy), auc: roc_auc(&hops, &positive) });
    let mut stim: Vec<&str> = rows.iter().map(|r| r.stimulated.as_str()).collect();
    stim.sort_unstable();
    stim.dedup();
    BaselineScores {
        strain: strain.into(),
        n_stimulated: stim.len(),
        n_pairs: rows.len(),
        n_responders: positive.iter().filter(|&&p| p).count(),
        scores,
    }
}

/// Pair rows of `examples` under the given predictions.
#[allow(clippy::too_many_arguments)]
fn rows_for(
    plan: &AtlasPlan,
    anatomy: &Anatomy,
    strain: &str,
    fit_label: &str,
    examples: &[(&StimExample, &[f64])],
    fitted: &RateValues,
    unfitted: &RateValues,
    means: &[f64],
    q_threshold: f64,
    checkpoint_every: usize,
) -> Vec<PairRow> {
    use rayon::prelude::*;
    let t = task(plan, checkpoint_every);
    let (cf, cu) = (t.control(fitted), t.control(unfitted));
    examples
        .par_iter()
        .map(|(e, q)| {
            let pf = t.predict(fitted, e.stimulated, &cf);
            let pu = t.predict(unfitted, e.stimulated, &cu);
            let hops = anatomy.hops_from(e.stimulated);
            e.responders
                .iter()
                .zip(&e.measured)
                .zip(q.iter())
                .map(|((&i, &y), &qv)| PairRow {
                    strain: strain.into(),
                    fit: fit_label.into(),
                    stimulated: plan.net.names[e.stimulated as usize].clone(),
                    responder: plan.net.names[i as usize].clone(),
                    measured: y,
                    q: qv,
                    is_responder: qv < q_threshold,
                    fitted: pf[i as usize],
                    unfitted: pu[i as usize],
                    direct: anatomy.direct.get(&(e.stimulated, i)).copied().unwrap_or(0.0),
                    hops: hops[i as usize],
                    neuron_mean: means[i as usize],
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect()
}

/// Cross-validates, fits the final twin and scores it.
pub fn run(file: &FitScenarioFile, plan: &AtlasPlan, progress: bool) -> Result<AtlasFitReport, ScenarioError> {
    let t0 = std::time::Instant::now();
    let fit = &file.spec.fit;
    let n_ex = plan.examples.len();
    let anatomy = Anatomy::new(&plan.net);
    let unfitted = RateValues::from_params(&plan.net, &plan.params);
    let fits = fit.folds as u64 + 1;
    let bar = ProgressBar::with_draw_target(
        Some(fits * fit.restarts.max(1) * fit.train.epochs as u64),
        if progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        ProgressStyle::with_template("fit [{bar:25}] {pos}/{len} epochs {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut history = Vec::new();
    let order = shuffled(n_ex, fit.seed);
    let mut rows = Vec::new();
    for k in 0..fit.folds {
        let held: Vec<usize> = (0..n_ex).filter(|&m| m % fit.folds == k).map(|m| order[m]).collect();
        let train_idx: Vec<usize> = (0..n_ex).filter(|&m| m % fit.folds != k).map(|m| order[m]).collect();
        let label = format!("fold{}", k + 1);
        let (params, _, _) = fit_once(plan, file, &label, &train_idx, &bar, &mut history)?;
        let fitted = RateValues::from_params(&plan.net, &params);
        let train_refs: Vec<&StimExample> = train_idx.iter().map(|&m| &plan.examples[m]).collect();
        let means = neuron_means(plan.net.n, &train_refs);
        let held_ex: Vec<(&StimExample, &[f64])> =
            held.iter().map(|&m| (&plan.examples[m], plan.q[m].as_slice())).collect();
        rows.extend(rows_for(
            plan,
            &anatomy,
            &plan.strain,
            &label,
            &held_ex,
            &fitted,
            &unfitted,
            &means,
            fit.q_threshold,
            fit.checkpoint_every,
        ));
    }
    let cross_validated = score_rows(&plan.strain, &rows);

    // The final twin: every stimulation (with the validation split for early stopping).
    let all: Vec<usize> = (0..n_ex).collect();
    let (final_params, final_best_epoch, final_val_loss) = fit_once(plan, file, "final", &all, &bar, &mut history)?;
    bar.finish_and_clear();
    let fitted = RateValues::from_params(&plan.net, &final_params);
    let all_refs: Vec<&StimExample> = plan.examples.iter().collect();
    let means = neuron_means(plan.net.n, &all_refs);
    let mut other_strains = Vec::new();
    for s in &fit.score_strains {
        let strain = s.get_ref();
        let (ex, q, _) = examples_of(&plan.net, &plan.atlas, strain);
        let pairs: Vec<(&StimExample, &[f64])> = ex.iter().zip(&q).map(|(e, q)| (e, q.as_slice())).collect();
        let r = rows_for(
            plan,
            &anatomy,
            strain,
            "final",
            &pairs,
            &fitted,
            &unfitted,
            &means,
            fit.q_threshold,
            fit.checkpoint_every,
        );
        other_strains.push(score_rows(strain, &r));
        rows.extend(r);
    }
    let model = FittedModelInfo {
        model: "rate".into(),
        activation: match plan.activation {
            Activation::Relu => "relu".into(),
            Activation::Sigmoid => "sigmoid".into(),
        },
        dt_ms: plan.dt,
        network: file.spec.name.clone(),
        scenario: file.path.canonicalize().unwrap_or_else(|_| file.path.clone()).display().to_string(),
    };
    Ok(AtlasFitReport {
        name: file.spec.name.clone(),
        strain: plan.strain.clone(),
        folds: fit.folds,
        restarts: fit.restarts.max(1),
        n_neurons: plan.net.n,
        n_connections: plan.net.n_connections(),
        n_fitted_numbers: plan.params.fitted_mask().iter().filter(|&&m| m).count(),
        unmatched_atlas_neurons: plan.unmatched.clone(),
        cross_validated,
        other_strains,
        final_best_epoch,
        final_val_loss,
        fitted_params: final_params.to_values(),
        initial_params: plan.params.to_values(),
        seconds: t0.elapsed().as_secs_f64(),
        pairs: rows,
        history,
        fitted: final_params,
        model,
    })
}
