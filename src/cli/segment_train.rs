//! `neurotwin segment train`: fits a boundary U-Net to raw EM with ground-truth labels (slices [0, K) along z
//! train; slices [K, end) give the validation loss and play no part in the fit). Outputs (all-or-nothing):
//! `unet.safetensors`, `training.json` (settings, data, history, timings) and `loss.png`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use neurotwin_segment::cnn::train::{CpuOps, HostKernelOps, TrainOps};
use neurotwin_segment::cnn::train::{HistoryEntry, TrainConfig, TrainingVolume, train};
use neurotwin_segment::cnn::{BackendKind, UNet3d, UNetSpec};
use neurotwin_segment::io::{NEURON_IDS, read_labels, read_raw};

use super::segment::file_dataset;

/// The files `segment train` writes.
const TRAIN_FILES: [&str; 3] = ["unet.safetensors", "training.json", "loss.png"];

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// EM volume: an HDF5 file (dataset by --raw-dataset; uint8, z y x).
    pub volume: PathBuf,
    /// Ground-truth labels, FILE[:DATASET] (HDF5; default volumes/labels/neuron_ids); 0 = boundary/unlabelled.
    #[arg(long, value_name = "FILE[:DATASET]")]
    pub ground_truth: String,
    /// Dataset holding the raw EM.
    #[arg(long, default_value = "volumes/raw")]
    pub raw_dataset: String,
    /// Train on z-slices [0, K) only; slices [K, end) give the validation loss (default: all slices train, no
    /// validation).
    #[arg(long, value_name = "K")]
    pub train_slices: Option<usize>,
    /// Output folder (created): unet.safetensors, training.json, loss.png.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Architecture (JSON, the fields of neurotwin_segment::cnn::UNetSpec); default: the shipped network's.
    #[arg(long, value_name = "JSON")]
    pub arch: Option<PathBuf>,
    /// Start from these weights (safetensors) instead of a random initialisation.
    #[arg(long, value_name = "WEIGHTS.safetensors")]
    pub init: Option<PathBuf>,
    /// Optimiser steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Patch size Z,Y,X (multiples of the pool product).
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X")]
    pub patch: Option<Vec<usize>>,
    /// Patches per step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of the initial weights, patch positions and augmentation.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Evaluate the validation loss every N steps (and after the last).
    #[arg(long, default_value_t = 25)]
    pub eval_every: usize,
    /// Where the layers run: cpu (rayon) or cuda-host (the CUDA kernels built for the host; bit-identical,
    /// slower: for verification).
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendKind,
    /// Replace the files of an earlier run in the output folder.
    #[arg(long)]
    pub overwrite: bool,
}

/// The architecture of the shipped boundary network (`segment/weights/`): 8 channels at full resolution, two
/// poolings (in-plane first, then isotropic), 3×3×3 convolutions, two per block.
pub fn default_spec() -> UNetSpec {
    UNetSpec {
        in_channels: 1,
        out_channels: 1,
        output: neurotwin_segment::cnn::OutputKind::Boundary,
        base_channels: 8,
        channel_factor: 2,
        depth: 2,
        pool: vec![[1, 2, 2], [2, 2, 2]],
        kernels: vec![[3, 3, 3], [3, 3, 3], [3, 3, 3]],
        convs_per_block: 2,
    }
}

/// `neurotwin segment train`: trains, publishes the outputs and prints a summary line.
pub fn train_command(a: &TrainArgs) -> anyhow::Result<()> {
    let o = train_outcome(a)?;
    let last = o.history.last().expect("at least one step");
    println!(
        "trained {} steps in {:.1} s: last batch loss {:.4}{}; wrote {}",
        last.step,
        last.seconds,
        last.train_loss,
        last.validation_loss.map_or(String::new(), |v| format!(", validation loss {v:.4}")),
        a.out.display()
    );
    Ok(())
}

/// A finished training run: what `training.json` holds, the history, and the files written.
pub struct TrainOutcome {
    /// The content of `training.json`.
    pub json: serde_json::Value,
    /// Loss per step.
    pub history: Vec<HistoryEntry>,
    /// The output folder and its files.
    pub out_dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Trains as `a` asks and publishes the outputs (all-or-nothing); prints only progress (for the CLI and the
/// Python package).
pub fn train_outcome(a: &TrainArgs) -> anyhow::Result<TrainOutcome> {
    let (gt_file, gt_dataset) = file_dataset(&a.ground_truth, Some(NEURON_IDS), "--ground-truth")?;
    let mut inputs = neurotwin_io::inputs::InputSet::new();
    inputs.add(&a.volume);
    inputs.add(&gt_file);
    if let Some(p) = a.arch.as_ref().or(a.init.as_ref()) {
        inputs.add(p);
    }
    let run_dir =
        neurotwin_io::run_dir::RunDir::create(&a.out, "neurotwin segment train", inputs, a.overwrite, &TRAIN_FILES)?;
    let backend = match a.backend {
        BackendKind::Cpu | BackendKind::Auto => BackendKind::Cpu,
        BackendKind::CudaHost => BackendKind::CudaHost,
        BackendKind::Cuda => bail!("--backend cuda: training runs on cpu or cuda-host (the GPU path is not built yet)"),
    };
    let mut cfg = TrainConfig::default();
    if let Some(s) = a.steps {
        cfg.steps = s;
    }
    if let Some(p) = &a.patch {
        let p: [usize; 3] =
            p.as_slice().try_into().map_err(|_| anyhow::anyhow!("--patch: give Z,Y,X (three sizes)"))?;
        cfg.patch = p;
    }
    if let Some(b) = a.batch {
        cfg.batch = b;
    }
    if let Some(lr) = a.lr {
        cfg.lr = lr;
    }
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    let mut net = match (&a.init, &a.arch) {
        (Some(_), Some(_)) => bail!("--init and --arch: the weights file carries its architecture; give one of them"),
        (Some(w), None) => UNet3d::load(w)?,
        (None, arch) => {
            let spec = match arch {
                Some(p) => {
                    let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?;
                    serde_json::from_str::<UNetSpec>(&text)
                        .with_context(|| format!("{}: not a U-Net architecture (fields of UNetSpec)", p.display()))?
                }
                None => default_spec(),
            };
            UNet3d::random(spec, cfg.seed)?
        }
    };
    let (raw, _) = read_raw(&a.volume, &a.raw_dataset, [10.0; 3])?;
    let labels = read_labels(&gt_file, &gt_dataset, raw.voxel_nm)?;
    if labels.shape != raw.shape {
        bail!(
            "{}: dataset `{gt_dataset}` has shape {:?} but the raw volume {:?} (z, y, x)",
            gt_file.display(),
            labels.shape,
            raw.shape
        );
    }
    let z = raw.shape[0];
    let k = a.train_slices.unwrap_or(z);
    if k == 0 || k > z {
        bail!("--train-slices {k}: give K with 0 < K <= {z} (the volume has {z} slices along z)");
    }
    let output = net.spec().output;
    let data = TrainingVolume::for_output(output, raw.z_slab(0, k), &labels.z_slab(0, k))
        .with_context(|| format!("training slices [0, {k})"))?;
    let validation = (k < z)
        .then(|| TrainingVolume::for_output(output, raw.z_slab(k, z), &labels.z_slab(k, z)))
        .transpose()
        .with_context(|| format!("validation slices [{k}, {z})"))?;
    cfg.validate(&net, &data)?;
    let ops: &dyn TrainOps = if backend == BackendKind::CudaHost { &HostKernelOps } else { &CpuOps };
    eprintln!(
        "training {} steps of {} patch(es) {:?} on slices [0, {k}) of {} ({:.1} % boundary voxels){}",
        cfg.steps,
        cfg.batch,
        cfg.patch,
        a.volume.display(),
        100.0 * data.boundary_fraction(),
        if validation.is_some() { format!("; validation slices [{k}, {z})") } else { String::new() }
    );
    let mut last_val = None;
    let mut progress = |e: &HistoryEntry| {
        last_val = e.validation_loss.or(last_val);
        let val = last_val.map_or(String::new(), |v| format!(", validation {v:.4}"));
        eprint!("\rstep {}/{}: loss {:.4}{val} ({:.0} s)   ", e.step, cfg.steps, e.train_loss, e.seconds);
        let _ = std::io::stderr().flush();
    };
    let history = train(ops, &mut net, &data, validation.as_ref(), &cfg, a.eval_every, &mut progress)?;
    eprintln!();
    let staging = run_dir.staging().to_path_buf();
    let last = history.last().expect("at least one step");
    // What the weights were fitted to and how (not where they ran: both backends give the same bits).
    net.set_training(serde_json::json!({
        "volume": a.volume, "raw_dataset": a.raw_dataset, "ground_truth": a.ground_truth,
        "training_slices": [0, k], "validation_slices": [k, z], "config": cfg,
        "final_train_loss": last.train_loss, "final_validation_loss": last.validation_loss,
    }));
    net.save(staging.join("unet.safetensors"))?;
    let curve = |f: fn(&HistoryEntry) -> Option<f64>| -> Vec<(f64, f64)> {
        history.iter().filter_map(|e| f(e).map(|v| (e.step as f64, v))).collect()
    };
    let mut curves = vec![("training (batch)", curve(|e| Some(e.train_loss)))];
    if validation.is_some() {
        curves.push(("validation (whole slices)", curve(|e| e.validation_loss)));
    }
    neurotwin_scenarios::plot::loss_curves_png(
        &staging.join("loss.png"),
        "U-Net training: class-weighted BCE",
        "step",
        "loss",
        &curves,
    )?;
    let json = serde_json::json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "volume": a.volume, "raw_dataset": a.raw_dataset, "ground_truth": a.ground_truth,
        "training_slices": [0, k], "validation_slices": [k, z],
        "boundary_fraction": data.boundary_fraction(), "positive_fraction": data.positive_fraction(),
        "class_weight": data.class_weight,
        "architecture": net.spec(), "init": a.init, "backend": backend, "config": cfg,
        "history": history,
    });
    std::fs::write(staging.join("training.json"), serde_json::to_string_pretty(&json)?)?;
    run_dir.commit()?;
    let files = TRAIN_FILES.iter().map(|f| a.out.join(f)).collect();
    Ok(TrainOutcome { json, history, out_dir: a.out.clone(), files })
}
