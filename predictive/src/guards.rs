//! Checks of a predictive-coding scenario before it runs (issue 20): every numeric field finite and in its
//! range (the error names the field and the range), and the memory and time of the run estimated and
//! checked against the limits of [`neurotwin_io::budget`] (`--max-memory`, `--force`) before anything is
//! allocated. While it runs, a free energy that stops being finite is an error naming the step size or the
//! learning rate to lower, not a summary full of NaN.
//!
//! **Memory** (bytes): weights 32 per entry (value, column, row, transpose index and permutation; the
//! generated input's teacher holds a second copy), the states of a training batch and of the two evaluation
//! batches 40 per unit and sample (`r`, `mu`, `e`, `f(r)`, bottom-up drive, f64), input batches and the
//! teacher's samples 16 per unit and sample, the free-energy series 16 per inference step.
//!
//! **Time**: [`FLOP_S`] per floating-point operation (lower bound, all cores) for `4·nnz + 12·units` per sample
//! and inference step plus `2·nnz` per sample and learning step, and [`STEP_S`] per inference step
//! (sequential). Measured: 2.3e8 flop/s for `pc_image_patches` (debug build, 2 loaded cores); the bound
//! allows a machine over 400× faster.

use std::path::Path;

use neurotwin_io::budget;

use crate::PcError;
use crate::model::PcNetwork;
use crate::scenario::{InputSpec, PcScenario, RunOptions, build_network};

/// Lower bound of the time of one floating-point operation of inference or learning (s), all cores.
pub const FLOP_S: f64 = 1e-11;
/// Lower bound of the sequential cost of one inference step of a batch (s).
pub const STEP_S: f64 = 50e-9;
/// Bytes per weight entry: f64 value, u32 column, row, transpose row and permutation, with room for the
/// mask's construction.
const BYTES_PER_WEIGHT: f64 = 32.0;

fn spec_err(path: &Path, key: &str, msg: impl std::fmt::Display) -> PcError {
    PcError::Spec(format!("{}: `{key}`: {msg}", path.display()))
}

/// `x` finite and `>= 0` (`strict`: `> 0`).
fn check_sign(path: &Path, key: &str, x: f64, strict: bool) -> Result<(), PcError> {
    let ok = x.is_finite() && if strict { x > 0.0 } else { x >= 0.0 };
    if ok {
        return Ok(());
    }
    let want = if strict { "a finite number > 0" } else { "a finite number >= 0" };
    Err(spec_err(path, key, format!("{x} is not valid: must be {want}")))
}

/// Checks every numeric field of a parsed scenario (names the field and its valid range).
pub fn validate(s: &PcScenario, path: &Path) -> Result<(), PcError> {
    let net = &s.network;
    for (key, values) in [("network.precisions", &net.precisions), ("network.sparsity", &net.sparsity)] {
        for (l, &x) in values.iter().flatten().enumerate() {
            check_sign(path, &format!("{key}[{l}]"), x, false)?;
        }
    }
    check_sign(path, "network.init_scale", net.init_scale, false)?;
    if let Some(c) = net.normalize_columns {
        check_sign(path, "network.normalize_columns", c, true)?;
    }
    match &s.input {
        InputSpec::Patches { scale, .. } => check_sign(path, "input.scale", *scale, true)?,
        InputSpec::Generated { teacher_scale, noise } => {
            check_sign(path, "input.teacher_scale", *teacher_scale, false)?;
            check_sign(path, "input.noise", *noise, false)?;
        }
    }
    if s.inference.steps == 0 {
        return Err(spec_err(path, "inference.steps", "must be at least 1"));
    }
    check_sign(path, "inference.dt", s.inference.dt, true)?;
    // Euler inference shrinks r_l by (1 − dt·π_l) per step on its own error alone: dt·π_l >= 2 diverges.
    let pi = net.precisions.as_ref().map_or(1.0, |p| p.iter().skip(1).fold(0.0f64, |m, &x| m.max(x)));
    if pi > 0.0 && s.inference.dt * pi >= 2.0 {
        return Err(spec_err(
            path,
            "inference.dt",
            format!(
                "{} times the largest precision of a non-input layer ({pi}) is {} >= 2: Euler inference diverges; \
                 use dt < {}",
                s.inference.dt,
                s.inference.dt * pi,
                2.0 / pi
            ),
        ));
    }
    if let Some(t) = &s.training {
        if t.batch_size == 0 {
            return Err(spec_err(path, "training.batch_size", "must be at least 1"));
        }
        check_sign(path, "training.eta", t.eta, false)?;
    }
    if s.output.eval_batch == Some(0) {
        return Err(spec_err(path, "output.eval_batch", "must be at least 1"));
    }
    Ok(())
}

/// Layer sizes and weight entries of the network a scenario builds.
#[derive(Clone, Debug, PartialEq)]
pub struct Dims {
    pub sizes: Vec<usize>,
    /// Entries of each weight matrix `W_l` (`size_l × size_{l+1}` when dense).
    pub nnz: Vec<f64>,
}

impl Dims {
    /// Dense weights between consecutive layers of `sizes`.
    pub fn dense(sizes: &[usize]) -> Self {
        Self { sizes: sizes.to_vec(), nnz: sizes.windows(2).map(|w| w[0] as f64 * w[1] as f64).collect() }
    }
}

/// Estimated memory (bytes) and time (s) of a run, and the fields that dominate each.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub bytes: f64,
    pub seconds: f64,
    /// The field that makes most of the memory (`training.batch_size`, `output.eval_batch`, `network.layers`,
    /// `inference.steps`).
    pub memory_field: &'static str,
}

/// The estimate for scenario `s` with network `dims` (see the module documentation for the model).
pub fn estimate(s: &PcScenario, opts: &RunOptions, dims: &Dims) -> Estimate {
    let units: f64 = dims.sizes.iter().map(|&n| n as f64).sum();
    let size0 = dims.sizes.first().copied().unwrap_or(0) as f64;
    let nnz: f64 = dims.nnz.iter().sum();
    let eval = s.output.eval_batch.unwrap_or(100).max(1) as f64;
    let (batch, batches) = match &s.training {
        Some(t) => (t.batch_size as f64, opts.batches.unwrap_or(t.batches) as f64),
        None => (0.0, 0.0),
    };
    let steps = s.inference.steps as f64;
    let teacher = matches!(s.input, InputSpec::Generated { .. });
    let parts = [
        ("network.layers", nnz * BYTES_PER_WEIGHT * if teacher { 2.0 } else { 1.0 }),
        ("training.batch_size", batch * (units * 40.0 + units * 16.0)),
        ("output.eval_batch", eval * (2.0 * units * 40.0 + units * 16.0 + size0 * 8.0)),
        ("inference.steps", (steps + 1.0) * 16.0 + batches * 8.0),
    ];
    let bytes = parts.iter().map(|p| p.1).sum();
    let memory_field = parts.iter().fold(parts[0], |a, b| if b.1 > a.1 { *b } else { a }).0;
    let samples = batches * batch + 2.0 * eval;
    let flops = steps * samples * (4.0 * nnz + 12.0 * units) + batches * batch * 2.0 * nnz;
    let seconds = flops * FLOP_S + steps * (batches + 2.0) * STEP_S;
    Estimate { bytes, seconds, memory_field }
}

/// Refuses a run whose estimate exceeds the limits (memory first); the message names the file, the estimate
/// and the fields to lower.
pub fn check_resources(s: &PcScenario, opts: &RunOptions, dims: &Dims, path: &Path) -> Result<(), PcError> {
    let e = estimate(s, opts, dims);
    let err = |e: neurotwin_io::IoError| PcError::Spec(format!("{}: {e}", path.display()));
    let what = format!("predictive coding on layers {:?} ({} weights)", dims.sizes, dims.nnz.iter().sum::<f64>());
    let fix = match e.memory_field {
        "network.layers" => "use smaller network.layers",
        "training.batch_size" => "lower training.batch_size",
        "output.eval_batch" => "lower output.eval_batch",
        _ => "lower inference.steps",
    };
    budget::check_memory(&what, e.bytes, fix).map_err(err)?;
    budget::check_time(
        &what,
        e.seconds,
        "lower inference.steps, training.batches, training.batch_size or output.eval_batch",
    )
    .map_err(err)
}

/// Builds the network of a checked scenario after checking the resources of the run: before building when
/// the layer sizes are given (dense weights), after building a connectome-masked network (its masks, from
/// the bundled C. elegans connectome, are small) when the sizes come from the connectome.
pub fn build_checked(s: &PcScenario, opts: &RunOptions, path: &Path) -> Result<PcNetwork, PcError> {
    if let Some(sizes) = &s.network.layers {
        check_resources(s, opts, &Dims::dense(sizes), path)?;
    }
    let net = build_network(s).map_err(|e| match e {
        PcError::Spec(m) => PcError::Spec(format!("{}: {m}", path.display())),
        other => other,
    })?;
    if s.network.layers.is_none() {
        let dims = Dims {
            sizes: net.layers.iter().map(|l| l.size).collect(),
            nnz: net.weights.iter().map(|w| w.nnz() as f64).collect(),
        };
        check_resources(s, opts, &dims, path)?;
    }
    Ok(net)
}

/// An error for a free energy that stopped being finite: during training batch `batch`, or in the evaluation
/// (`None`).
pub fn diverged(s: &PcScenario, path: &Path, batch: Option<usize>, value: f64) -> PcError {
    let dt = s.inference.dt;
    let msg = match (batch, &s.training) {
        (Some(b), Some(t)) => format!(
            "training diverged at batch {b}: the free energy became {value}; lower training.eta (now {}) or \
             inference.dt (now {dt})",
            t.eta
        ),
        _ => format!(
            "inference diverged: the free energy of the evaluation batch became {value}; lower inference.dt (now \
             {dt}) or the precisions"
        ),
    };
    PcError::Spec(format!("{}: {msg}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(edit: &str) -> PcScenario {
        let text = format!(
            "name = \"t\"\nmodel = \"predictive_coding\"\n[network]\nlayers = [4, 3]\n{edit}\n[input]\nkind = \"generated\"\n\
             [inference]\nsteps = 10\ndt = 0.1\n[training]\nbatches = 2\nbatch_size = 5\neta = 0.1\n"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn estimates_grow_with_the_fields_that_set_them() {
        let opts = RunOptions { out_dir: None, backend: crate::BackendKind::Cpu, batches: None, overwrite: false };
        let s = scenario("");
        let e = estimate(&s, &opts, &Dims::dense(&[4, 3]));
        let mut big = s.clone();
        big.training.as_mut().unwrap().batch_size = 100_000_000;
        let b = estimate(&big, &opts, &Dims::dense(&[4, 3]));
        assert_eq!(b.memory_field, "training.batch_size");
        assert!(b.bytes > 1e10 && b.bytes > 1000.0 * e.bytes, "{b:?}");
        let w = estimate(&s, &opts, &Dims::dense(&[100_000_000, 100_000_000]));
        assert_eq!(w.memory_field, "network.layers");
        assert!(w.bytes > 1e17);
        let mut long = s.clone();
        long.inference.steps = 100_000_000;
        assert!(estimate(&long, &opts, &Dims::dense(&[4, 3])).seconds > 100.0 * e.seconds);
    }

    #[test]
    fn nonsense_values_name_the_field() {
        let p = Path::new("x.toml");
        for (edit, key) in [
            ("precisions = [1.0, nan]", "network.precisions[1]"),
            ("sparsity = [0.0, -1.0]", "network.sparsity[1]"),
            ("init_scale = inf", "network.init_scale"),
            ("normalize_columns = 0.0", "network.normalize_columns"),
            ("precisions = [1.0, 30.0]", "inference.dt"),
        ] {
            let e = validate(&scenario(edit), p).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("x.toml"), "{edit}: {e}");
        }
        assert!(validate(&scenario("precisions = [1.0, 0.0]"), p).is_ok());
    }
}
