//! Scenario files for the predictive-coding model (`model = "predictive_coding"`): parsing (serde, unknown keys
//! rejected, errors with file, line and column), building the network and its input, training, evaluation and
//! outputs. See `scenarios/pc_*.toml`.
//!
//! ```toml
//! name = "pc_image_patches"
//! model = "predictive_coding"
//! seed = 7
//!
//! [network]
//! layers = [64, 96]             # sizes, input first (or [network.connectome], which sets them)
//! activation = "linear"         # linear | relu
//! precisions = [1.0, 0.0]       # per layer; the last is the prior precision of the top layer
//! sparsity = [0.0, 0.3]         # L1 prior weight per layer (layer 0 ignored)
//! init_scale = 0.1              # initial weights scale · N(0, 1) on the mask
//! normalize_columns = 1.0       # optional: column norm of W_0 after each update
//! feedforward_init = false      # start inference from a bottom-up sweep (needed with relu)
//!
//! [network.connectome]          # optional: masks from a connectome
//! source = "celegans"
//! layers = [["sensory"], ["interneuron"], ["motor"]]   # cell types per layer
//! direction = "either"          # either | top_down | bottom_up
//!
//! [input]
//! kind = "patches"              # patches (file, patch, scale) | generated (teacher_scale, noise)
//! file = "data/images/natural_whitened.h5"
//! patch = 8
//!
//! [inference]
//! steps = 100
//! dt = 0.1
//!
//! [training]                    # optional
//! batches = 300
//! batch_size = 100
//! eta = 0.5
//!
//! [output]
//! dir = "out/pc_image_patches"  # default out/<name>
//! eval_batch = 100              # samples of the evaluation batch
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use neurotwin_models::rng::{CounterRng, Stream};
use serde::{Deserialize, Serialize};

use crate::PcError;
use crate::backend::BackendKind;
use crate::csr::Csr;
use crate::data::{Direction, Images, Teacher, connectome_masks, layer_neurons};
use crate::metrics::{RfStats, rf_stats};
use crate::model::{Activation, Layer, PcNetwork, PcState, infer, learn};
use crate::output;

/// A predictive-coding scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcScenario {
    pub name: String,
    pub model: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub network: NetworkSpec,
    pub input: InputSpec,
    pub inference: InferenceSpec,
    #[serde(default)]
    pub training: Option<TrainingSpec>,
    #[serde(default)]
    pub output: OutputSpec,
}

fn default_seed() -> u64 {
    1
}
fn default_init_scale() -> f64 {
    0.1
}
fn default_scale() -> f64 {
    1.0
}
fn default_eval_batch() -> usize {
    100
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    #[serde(default)]
    pub layers: Option<Vec<usize>>,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub precisions: Option<Vec<f64>>,
    #[serde(default)]
    pub sparsity: Option<Vec<f64>>,
    #[serde(default = "default_init_scale")]
    pub init_scale: f64,
    #[serde(default)]
    pub normalize_columns: Option<f64>,
    #[serde(default)]
    pub feedforward_init: bool,
    #[serde(default)]
    pub connectome: Option<ConnectomeSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectomeSpec {
    pub source: String,
    pub layers: Vec<Vec<String>>,
    #[serde(default)]
    pub direction: Direction,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputSpec {
    /// Random square patches of whitened natural images.
    Patches {
        file: PathBuf,
        patch: usize,
        #[serde(default = "default_scale")]
        scale: f64,
    },
    /// Samples of a teacher network with the same masks.
    Generated {
        #[serde(default = "default_scale")]
        teacher_scale: f64,
        #[serde(default)]
        noise: f64,
    },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceSpec {
    pub steps: usize,
    pub dt: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    pub batches: usize,
    pub batch_size: usize,
    pub eta: f64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default = "default_eval_batch_opt")]
    pub eval_batch: Option<usize>,
}

fn default_eval_batch_opt() -> Option<usize> {
    Some(default_eval_batch())
}

/// Whether a TOML file declares `model = "predictive_coding"` at the top level (other scenario files are for
/// the spiking engine). Unreadable or unparsable files give `false` (the normal loader reports them).
pub fn is_predictive_scenario(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    let Ok(v) = text.parse::<toml::Table>() else { return false };
    v.get("model").and_then(|m| m.as_str()) == Some("predictive_coding")
}

/// Parses and checks a scenario file.
pub fn load_scenario(path: &Path) -> Result<PcScenario, PcError> {
    let text = std::fs::read_to_string(path).map_err(|e| PcError::Spec(format!("{}: {e}", path.display())))?;
    let s: PcScenario = toml::from_str(&text).map_err(|e| PcError::Spec(format!("{}: {e}", path.display())))?;
    let bad = |key: &str, msg: String| Err(PcError::Spec(format!("{}: `{key}`: {msg}", path.display())));
    if s.model != "predictive_coding" {
        return bad("model", format!("expected \"predictive_coding\", found {:?}", s.model));
    }
    if s.network.layers.is_some() == s.network.connectome.is_some() {
        return bad("network", "give exactly one of `layers` (sizes) and `[network.connectome]`".into());
    }
    if let Some(l) = &s.network.layers
        && (l.len() < 2 || l.contains(&0))
    {
        return bad("network.layers", "need at least two layers, each of size > 0".into());
    }
    if let Some(c) = &s.network.connectome {
        if c.source != "celegans" {
            return bad("network.connectome.source", format!("unknown source {:?} (celegans)", c.source));
        }
        if c.layers.len() < 2 {
            return bad("network.connectome.layers", "need at least two layers".into());
        }
    }
    if let InputSpec::Patches { patch, .. } = &s.input
        && *patch == 0
    {
        return bad("input.patch", "must be > 0".into());
    }
    crate::guards::validate(&s, path)?;
    Ok(s)
}

/// Options from the command line.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub out_dir: Option<PathBuf>,
    pub backend: BackendKind,
    /// Overrides `training.batches` (e.g. for quick checks).
    pub batches: Option<usize>,
    /// `--overwrite`: replace an earlier run's files in the output folder (only those; never an input).
    pub overwrite: bool,
}

/// What a run measured (also written as `summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct PcSummary {
    pub scenario: String,
    pub backend: BackendKind,
    pub layer_sizes: Vec<usize>,
    pub weights_nnz: Vec<usize>,
    pub training_batches: usize,
    /// Mean free energy per sample after inference, first and last training batch.
    pub train_energy_first: Option<f64>,
    pub train_energy_last: Option<f64>,
    /// Evaluation batch: free energy per sample before and after inference, and whether it never increased.
    pub eval_energy_initial: f64,
    pub eval_energy_final: f64,
    pub eval_energy_monotone: bool,
    /// Largest relative increase of the evaluation energy between consecutive steps (0 when monotone).
    pub eval_energy_max_increase: f64,
    /// |x − mu_0|² / |x|² over the evaluation batch, with the initial and with the learned weights.
    pub reconstruction_error_initial: f64,
    pub reconstruction_error_final: f64,
    /// Receptive-field measures of W_0 (image patches only): initial random and learned weights.
    pub rf_random: Option<RfStats>,
    pub rf_learned: Option<RfStats>,
    pub wall_s: f64,
    pub output_dir: PathBuf,
}

fn resolve(scenario_path: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let dir = scenario_path.parent().unwrap_or(Path::new("."));
    for cand in [dir.join(p), dir.join("..").join(p)] {
        if cand.exists() {
            return cand;
        }
    }
    p.to_path_buf()
}

enum Source {
    Patches { images: Images, p: usize, scale: f64, rng: CounterRng },
    Teacher(Box<Teacher>),
}

impl Source {
    fn batch(&self, index: u64, n: usize) -> Vec<f64> {
        match self {
            Source::Patches { images, p, scale, rng } => images.patches(*rng, index, n, *p, *scale),
            Source::Teacher(t) => t.sample(index, n),
        }
    }
}

/// Builds the network (random initial weights on the mask) from a checked scenario.
pub fn build_network(s: &PcScenario) -> Result<PcNetwork, PcError> {
    let (sizes, masks) = if let Some(c) = &s.network.connectome {
        let con = neurotwin_connectome::load_celegans_bundled().map_err(|e| PcError::Data(e.to_string()))?;
        let groups = layer_neurons(&con, &c.layers)?;
        let masks = connectome_masks(&con, &groups, c.direction)?;
        (groups.iter().map(Vec::len).collect::<Vec<_>>(), masks)
    } else {
        let sizes = s.network.layers.clone().unwrap_or_default();
        let masks = sizes.windows(2).map(|w| Csr::dense(w[0], w[1])).collect();
        (sizes, masks)
    };
    let n = sizes.len();
    let per_layer = |v: &Option<Vec<f64>>, key: &str, default: &dyn Fn(usize) -> f64| -> Result<Vec<f64>, PcError> {
        match v {
            None => Ok((0..n).map(default).collect()),
            Some(v) if v.len() == n => Ok(v.clone()),
            Some(v) => Err(PcError::Spec(format!("`network.{key}` has {} values for {n} layers", v.len()))),
        }
    };
    let prec = per_layer(&s.network.precisions, "precisions", &|_| 1.0)?;
    let l1 = per_layer(&s.network.sparsity, "sparsity", &|_| 0.0)?;
    let layers = (0..n).map(|l| Layer { size: sizes[l], precision: prec[l], l1: l1[l] }).collect();
    let mut net = PcNetwork::new(layers, s.network.activation, masks);
    let rng = CounterRng::new(s.seed, Stream::Connectivity);
    for (l, w) in net.weights.iter_mut().enumerate() {
        w.randomize(rng.substream(l as u32 + 1), s.network.init_scale);
    }
    if let Some(t) = s.network.normalize_columns {
        crate::backend::Backend::col_normalize(&crate::backend::Cpu, &mut net.weights[0], t);
    }
    Ok(net)
}

fn sq_rel(x: &[f64], mu: &[f64]) -> f64 {
    let num: f64 = x.iter().zip(mu).map(|(a, b)| (a - b) * (a - b)).sum();
    let den: f64 = x.iter().map(|a| a * a).sum();
    if den > 0.0 { num / den } else { 0.0 }
}

/// Runs a scenario: training (if any), evaluation, outputs. Returns the summary.
pub fn run_scenario(path: &Path, opts: &RunOptions) -> Result<PcSummary, PcError> {
    let t0 = Instant::now();
    let s = load_scenario(path)?;
    let (ran_on, backend) = crate::backend::backend_for(opts.backend).map_err(PcError::Spec)?;
    let backend: &dyn crate::backend::Backend = &*backend;
    let mut net = crate::guards::build_checked(&s, opts, path)?;
    let source = match &s.input {
        InputSpec::Patches { file, patch, scale } => {
            let images = Images::read(&resolve(path, file))?;
            if *patch > images.height || *patch > images.width {
                return Err(PcError::Spec(format!(
                    "{}: input.patch = {patch} is larger than the images of {} ({}×{} pixels); use a patch of at \
                     most {}",
                    path.display(),
                    resolve(path, file).display(),
                    images.height,
                    images.width,
                    images.height.min(images.width)
                )));
            }
            if net.layers[0].size != patch * patch {
                return Err(PcError::Spec(format!(
                    "{}: input layer has {} units but patches have {patch}×{patch} = {} pixels",
                    path.display(),
                    net.layers[0].size,
                    patch * patch
                )));
            }
            Source::Patches { images, p: *patch, scale: *scale, rng: CounterRng::new(s.seed, Stream::PoissonInput) }
        }
        InputSpec::Generated { teacher_scale, noise } => Source::Teacher(Box::new(Teacher::new(
            &net,
            CounterRng::new(s.seed, Stream::Connectivity).substream(100),
            *teacher_scale,
            *noise,
            CounterRng::new(s.seed, Stream::PoissonInput),
        ))),
    };
    let patch = match &s.input {
        InputSpec::Patches { patch, .. } => Some(*patch),
        InputSpec::Generated { .. } => None,
    };
    let out_dir =
        opts.out_dir.clone().or_else(|| s.output.dir.clone()).unwrap_or_else(|| Path::new("out").join(&s.name));
    // The folder policy (no input replaced, an earlier run only with --overwrite) is checked before training;
    // every file goes to the staging folder and is published together at the end.
    let mut inputs = neurotwin_io::inputs::InputSet::new();
    inputs.add(path);
    if let InputSpec::Patches { file, .. } = &s.input {
        inputs.add(&resolve(path, file));
    }
    let run_dir = neurotwin_io::run_dir::RunDir::create(
        &out_dir,
        "neurotwin pc",
        inputs,
        opts.overwrite,
        &["summary.json", "energy.csv", "training.csv", "weights.h5", "reconstructions.h5"],
    )
    .map_err(|e| PcError::Output(e.to_string()))?;
    let stage = run_dir.staging().to_path_buf();
    let fields =
        |net: &PcNetwork| -> Vec<Vec<f64>> { (0..net.weights[0].cols).map(|j| net.weights[0].column(j)).collect() };
    let rf_random = patch.map(|p| rf_stats(&fields(&net), p));

    let (dt, steps, ff) = (s.inference.dt, s.inference.steps, s.network.feedforward_init);
    // Evaluation batch: an index no training batch uses.
    let eval_n = s.output.eval_batch.unwrap_or(default_eval_batch()).max(1);
    let eval_index = u64::MAX;
    let x_eval = source.batch(eval_index, eval_n);
    let mut es = PcState::new(&net, eval_n);
    es.set_input(&net, backend, &x_eval, ff);
    infer(&net, &mut es, dt, steps, backend);
    let reconstruction_error_initial = sq_rel(&x_eval, &es.mu[0]);

    let batches = opts.batches.or(s.training.as_ref().map(|t| t.batches)).unwrap_or(0);
    let mut curve = Vec::with_capacity(batches);
    if let Some(t) = &s.training {
        let mut st = PcState::new(&net, t.batch_size);
        for b in 0..batches {
            let x = source.batch(b as u64, t.batch_size);
            st.set_input(&net, backend, &x, ff);
            let e = infer(&net, &mut st, dt, steps, backend);
            if let Some(&bad) = e.iter().find(|v| !v.is_finite()) {
                return Err(crate::guards::diverged(&s, path, Some(b), bad));
            }
            curve.push(e[e.len() - 1] / t.batch_size as f64);
            learn(&mut net, &st, t.eta, s.network.normalize_columns, backend);
        }
    }

    let mut es = PcState::new(&net, eval_n);
    es.set_input(&net, backend, &x_eval, ff);
    let energies = infer(&net, &mut es, dt, steps, backend);
    if let Some(&bad) = energies.iter().find(|v| !v.is_finite()) {
        return Err(crate::guards::diverged(&s, path, None, bad));
    }
    let max_inc = energies.windows(2).map(|w| (w[1] - w[0]) / w[0].abs().max(1e-300)).fold(0.0f64, f64::max);
    let rf_learned = patch.map(|p| rf_stats(&fields(&net), p));

    output::write_csv(
        &stage.join("energy.csv"),
        "step,free_energy_per_sample",
        energies.iter().enumerate().map(|(i, e)| format!("{i},{}", e / eval_n as f64)),
    )?;
    output::write_csv(
        &stage.join("training.csv"),
        "batch,free_energy_per_sample",
        curve.iter().enumerate().map(|(i, e)| format!("{i},{e}")),
    )?;
    output::write_weights(&stage.join("weights.h5"), &net.weights)?;
    output::write_reconstructions(&stage.join("reconstructions.h5"), eval_n, &x_eval, &es.mu[0], &es.r[1])?;
    if let Some(p) = patch {
        output::write_fields_png(&stage.join("receptive_fields.png"), &fields(&net), p, 6)?;
    }
    let summary = PcSummary {
        scenario: s.name.clone(),
        backend: ran_on,
        layer_sizes: net.layers.iter().map(|l| l.size).collect(),
        weights_nnz: net.weights.iter().map(Csr::nnz).collect(),
        training_batches: curve.len(),
        train_energy_first: curve.first().copied(),
        train_energy_last: curve.last().copied(),
        eval_energy_initial: energies[0] / eval_n as f64,
        eval_energy_final: energies[energies.len() - 1] / eval_n as f64,
        eval_energy_monotone: max_inc <= 0.0,
        eval_energy_max_increase: max_inc.max(0.0),
        reconstruction_error_initial,
        reconstruction_error_final: sq_rel(&x_eval, &es.mu[0]),
        rf_random,
        rf_learned,
        wall_s: t0.elapsed().as_secs_f64(),
        output_dir: out_dir.clone(),
    };
    let json = serde_json::to_string_pretty(&summary).map_err(|e| PcError::Output(e.to_string()))?;
    std::fs::write(stage.join("summary.json"), json)
        .map_err(|e| PcError::Output(format!("{}: {e}", out_dir.join("summary.json").display())))?;
    run_dir.commit().map_err(|e| PcError::Output(e.to_string()))?;
    Ok(summary)
}
