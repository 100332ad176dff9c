//! The fitting loop: mini-batches of training examples, Adam with a cosine learning-rate schedule,
//! early stopping on a validation loss (the best parameters are kept), an optional anatomy prior that
//! pulls per-connection weight scales to 1, and a clear stop on any non-finite loss or gradient.
//!
//! Deterministic: batches are drawn by a seeded generator, and a batch's gradient is the sum of its
//! examples' gradients in example order, whatever the number of threads.

use serde::{Deserialize, Serialize};

use crate::adam::{Adam, cosine_schedule};
use crate::error::FitError;
use crate::params::ParamSet;
use crate::testing::SplitMix;

/// How a fit runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainOptions {
    /// Passes over the training examples.
    pub epochs: usize,
    /// Examples per gradient step.
    pub batch_size: usize,
    /// Adam learning rate (on the raw, reparametrised numbers).
    pub lr: f64,
    /// The cosine schedule ends at `lr × lr_floor`.
    pub lr_floor: f64,
    /// Stop after this many epochs without a better validation loss (0: never).
    pub patience: usize,
    /// Seed of the batch order.
    pub seed: u64,
    /// Weight of the anatomy prior `Σ (ρ − 1)²` on per-connection weight scales (when fitted).
    pub weight_scale_penalty: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { epochs: 60, batch_size: 32, lr: 0.05, lr_floor: 0.05, patience: 12, seed: 1, weight_scale_penalty: 1e-3 }
    }
}

/// One epoch of the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Mean of the batch losses of the epoch (each taken before its update).
    pub train_loss: f64,
    /// Validation loss after the epoch (NaN without validation examples).
    pub val_loss: f64,
    pub lr: f64,
    /// Wall time of the epoch (s).
    pub seconds: f64,
    /// Gradient steps per second in this epoch.
    pub steps_per_s: f64,
}

/// Result of [`train`].
#[derive(Clone, Debug)]
pub struct Trained {
    /// The parameters with the best validation loss (the last ones without validation).
    pub params: ParamSet,
    pub best_epoch: usize,
    pub best_val_loss: f64,
    pub history: Vec<EpochRecord>,
}

/// Adds the anatomy prior on `weight_scale` (if present and fitted) to `loss` and `grad`.
pub fn anatomy_prior(p: &ParamSet, weight: f64, grad: &mut [f64]) -> f64 {
    let Some(b) = p.block("weight_scale") else { return 0.0 };
    if !b.fitted || weight == 0.0 {
        return 0.0;
    }
    let mut loss = 0.0;
    for k in 0..b.n_groups() {
        let raw = p.raw[b.offset + k];
        let rho = b.transforms[k].value(raw);
        loss += weight * (rho - 1.0) * (rho - 1.0);
        grad[b.offset + k] += weight * 2.0 * (rho - 1.0) * b.transforms[k].derivative(raw);
    }
    loss
}

/// `(params, example indices) → (mean loss, gradient on params.raw)`.
pub type BatchGrad<'a> = dyn Fn(&ParamSet, &[usize]) -> Result<(f64, Vec<f64>), FitError> + Sync + 'a;

/// Fits `init` on `n_train` examples. `batch_grad(params, examples)` returns the mean loss of the
/// examples and its gradient with respect to `params.raw`; `val_loss(params)` the validation loss (or
/// NaN when there is none). `progress` sees every epoch.
pub fn train(
    init: ParamSet,
    n_train: usize,
    opts: &TrainOptions,
    batch_grad: &BatchGrad<'_>,
    val_loss: &(dyn Fn(&ParamSet) -> Result<f64, FitError> + Sync),
    progress: &mut dyn FnMut(&EpochRecord),
) -> Result<Trained, FitError> {
    if n_train == 0 {
        return Err(FitError::Data("no training examples".into()));
    }
    let mask = init.fitted_mask();
    if !mask.iter().any(|&m| m) {
        return Err(FitError::Param {
            param: "(all)".into(),
            message: "no parameter is fitted: set `fit = true` on at least one".into(),
        });
    }
    let mut p = init;
    let start_raw = p.raw.clone();
    let mut adam = Adam::new(p.raw.len(), opts.lr);
    let batch = opts.batch_size.clamp(1, n_train);
    let batches_per_epoch = n_train.div_ceil(batch);
    let total_steps = opts.epochs * batches_per_epoch;
    let mut rng = SplitMix(opts.seed ^ 0x05EE_DF17);
    let mut order: Vec<usize> = (0..n_train).collect();
    let mut best = (f64::INFINITY, 0usize, p.clone());
    let mut history = Vec::new();
    let mut since_best = 0;
    let mut step = 0usize;
    for epoch in 0..opts.epochs {
        let t0 = std::time::Instant::now();
        // Fisher–Yates with the seeded generator.
        for i in (1..n_train).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut loss_sum = 0.0;
        let mut lr_now = opts.lr;
        for (b, chunk) in order.chunks(batch).enumerate() {
            let (loss, mut grad) = batch_grad(&p, chunk)?;
            let prior = anatomy_prior(&p, opts.weight_scale_penalty, &mut grad);
            let loss = loss + prior;
            if !loss.is_finite() {
                // The likeliest culprit: the fitted number that has moved furthest from its start.
                let culprit = (0..p.raw.len())
                    .filter(|&k| mask[k])
                    .max_by(|&a, &c| (p.raw[a] - start_raw[a]).abs().total_cmp(&(p.raw[c] - start_raw[c]).abs()))
                    .map(|k| describe_moved(&p, k));
                return Err(non_finite("loss", epoch, b, culprit));
            }
            if let Some(k) = grad.iter().position(|g| !g.is_finite()) {
                return Err(non_finite("gradient", epoch, b, Some(p.describe(k))));
            }
            let scale = cosine_schedule(step, total_steps, opts.lr_floor);
            lr_now = opts.lr * scale;
            adam.step(&mut p.raw, &grad, &mask, scale);
            if let Some(k) = p.raw.iter().position(|x| !x.is_finite()) {
                return Err(non_finite("parameter", epoch, b, Some(p.describe(k))));
            }
            loss_sum += loss;
            step += 1;
        }
        let val = val_loss(&p)?;
        let seconds = t0.elapsed().as_secs_f64();
        let rec = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / batches_per_epoch as f64,
            val_loss: val,
            lr: lr_now,
            seconds,
            steps_per_s: batches_per_epoch as f64 / seconds.max(1e-9),
        };
        progress(&rec);
        history.push(rec);
        let score = if val.is_nan() { loss_sum } else { val };
        if !score.is_finite() {
            return Err(non_finite("validation loss", epoch, batches_per_epoch, None));
        }
        if score < best.0 {
            best = (score, epoch + 1, p.clone());
            since_best = 0;
        } else {
            since_best += 1;
            if opts.patience > 0 && since_best >= opts.patience {
                break;
            }
        }
    }
    Ok(Trained { params: best.2, best_epoch: best.1, best_val_loss: best.0, history })
}

/// `block[group] = value` of raw number `k`.
fn describe_moved(p: &ParamSet, k: usize) -> String {
    let value = p
        .blocks
        .iter()
        .find(|b| k >= b.offset && k < b.offset + b.n_groups())
        .map(|b| b.transforms[k - b.offset].value(p.raw[k]));
    match value {
        Some(v) => format!("{} = {v:e}, the fitted number that moved most", p.describe(k)),
        None => p.describe(k),
    }
}

fn non_finite(what: &str, epoch: usize, batch: usize, param: Option<String>) -> FitError {
    FitError::NonFinite {
        what: what.into(),
        where_: match param {
            Some(p) => format!("epoch {}, batch {} (parameter {p})", epoch + 1, batch + 1),
            None => format!("epoch {}, batch {}", epoch + 1, batch + 1),
        },
        hint: "lower `lr`, tighten the parameter bounds (`lo`/`hi`, e.g. tau ≥ dt) or shorten `dt_ms`".into(),
    }
}

/// Adds uniform noise of half-width `jitter` to every fitted raw number (restart `r`; restart 0 keeps
/// the initial values).
pub fn jittered(p: &ParamSet, restart: u64, seed: u64, jitter: f64) -> ParamSet {
    let mut q = p.clone();
    if restart == 0 {
        return q;
    }
    let mask = q.fitted_mask();
    let mut rng = SplitMix(seed.wrapping_mul(0x9E37_79B9).wrapping_add(restart));
    for (x, m) in q.raw.iter_mut().zip(mask) {
        let u = rng.uniform();
        if m {
            *x += jitter * (2.0 * u - 1.0);
        }
    }
    q
}
