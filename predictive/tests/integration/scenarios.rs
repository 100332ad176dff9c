//! The scenario files end to end (acceptance 2 and 4): `scenarios/pc_image_patches.toml` learns oriented
//! receptive fields from natural-image patches (a shortened run here; the full run is reported in the crate
//! README), and the connectome-masked `scenarios/pc_celegans.toml` runs, learns and writes every output, with
//! identical results on the CPU and on the host-built CUDA kernels.

use std::path::{Path, PathBuf};

use neurotwin_predictive::{BackendKind, RunOptions, load_scenario, run_scenario};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(name)
}

#[test]
fn image_patches_learn_oriented_fields() {
    // The scenario with fewer, smaller batches, fewer inference steps and a smaller evaluation batch (debug
    // builds): about 1/40 of the full run's work.
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/images/natural_whitened.h5");
    let text = std::fs::read_to_string(scenario("pc_image_patches.toml"))
        .unwrap()
        .replace("\"data/images/natural_whitened.h5\"", &format!("{:?}", data.display().to_string()))
        .replace("steps = 60", "steps = 30")
        .replace("batch_size = 100", "batch_size = 50")
        .replace("eval_batch = 200", "eval_batch = 50");
    let path = dir.path().join("pc_image_patches_short.toml");
    std::fs::write(&path, text).unwrap();
    let opts = RunOptions {
        out_dir: Some(dir.path().join("out")),
        backend: BackendKind::Cpu,
        batches: Some(100),
        overwrite: false,
    };
    let s = run_scenario(&path, &opts).unwrap();
    let dir = dir.path().join("out");
    let (r, l) = (s.rf_random.unwrap(), s.rf_learned.unwrap());
    println!(
        "random {r:?}\nlearned {l:?}\nreconstruction {} → {}",
        s.reconstruction_error_initial, s.reconstruction_error_final
    );
    assert!(l.mean_osi > 2.0 * r.mean_osi, "learned fields are not more oriented than random ones");
    assert!(l.frac_oriented >= 0.3 && r.frac_oriented < 0.05, "too few oriented fields");
    assert!(l.frac_localised > r.frac_localised + 0.05, "learned fields are not more localised");
    assert!(s.reconstruction_error_final < 0.5 * s.reconstruction_error_initial);
    assert!(s.eval_energy_monotone);
    for f in ["receptive_fields.png", "weights.h5", "reconstructions.h5", "energy.csv", "training.csv", "summary.json"]
    {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn connectome_scenario_runs_on_both_backends() {
    let mut energies = Vec::new();
    for backend in [BackendKind::Cpu, BackendKind::CudaHost] {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions { out_dir: Some(dir.path().into()), backend, batches: Some(20), overwrite: true };
        let s = run_scenario(&scenario("pc_celegans.toml"), &opts).unwrap();
        assert_eq!(s.layer_sizes, vec![77, 70, 135]);
        assert!(s.weights_nnz.iter().all(|&n| n > 0 && n < 77 * 70));
        assert!(s.train_energy_last.unwrap() < s.train_energy_first.unwrap());
        assert!(s.reconstruction_error_final < s.reconstruction_error_initial);
        for f in ["weights.h5", "reconstructions.h5", "energy.csv", "training.csv", "summary.json"] {
            assert!(dir.path().join(f).is_file(), "{f} missing");
        }
        let w = hdf5::File::open(dir.path().join("weights.h5")).unwrap();
        let v: Vec<f64> = w.dataset("W0/values").unwrap().read_raw().unwrap();
        assert_eq!(v.len(), s.weights_nnz[0]);
        energies.push((s.train_energy_last, s.eval_energy_final, v));
    }
    assert_eq!(energies[0], energies[1], "CPU and cuda-host runs differ");
}

#[test]
fn bad_scenarios_are_rejected_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    let base = std::fs::read_to_string(scenario("pc_celegans.toml")).unwrap();
    std::fs::write(&p, base.replace("steps = 50", "steps = 50\nstep_size = 1")).unwrap();
    let e = load_scenario(&p).unwrap_err().to_string();
    assert!(e.contains("step_size") && e.contains("line"), "{e}");
    std::fs::write(&p, base.replace("\"interneuron\"", "\"nonexistent\"")).unwrap();
    let e = run_scenario(
        &p,
        &RunOptions {
            out_dir: Some(dir.path().join("o")),
            backend: BackendKind::Cpu,
            batches: Some(1),
            overwrite: false,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("selects no neuron"), "{e}");
    assert!(neurotwin_predictive::is_predictive_scenario(&scenario("pc_celegans.toml")));
    assert!(!neurotwin_predictive::is_predictive_scenario(&scenario("brunel.toml")));
}

/// Without a usable GPU, `--backend cuda` stops before any work with the device's one-line reason (and writes
/// nothing), while `auto` runs on the CPU with the CPU's results.
#[test]
fn cuda_without_a_gpu_is_refused_and_auto_runs_on_the_cpu() {
    let Err(reason) = neurotwin_predictive::Cuda::new() else {
        eprintln!("SKIP: a CUDA device is usable here");
        return;
    };
    assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
    let dir = tempfile::tempdir().unwrap();
    let opts = |sub: &str, backend| RunOptions {
        out_dir: Some(dir.path().join(sub)),
        backend,
        batches: Some(2),
        overwrite: false,
    };
    let e = run_scenario(&scenario("pc_celegans.toml"), &opts("cuda", BackendKind::Cuda)).unwrap_err().to_string();
    assert_eq!(e, reason);
    assert!(!dir.path().join("cuda/energy.csv").exists());
    let auto = run_scenario(&scenario("pc_celegans.toml"), &opts("auto", BackendKind::Auto)).unwrap();
    assert_eq!(auto.backend, BackendKind::Cpu);
    let cpu = run_scenario(&scenario("pc_celegans.toml"), &opts("cpu", BackendKind::Cpu)).unwrap();
    for f in ["energy.csv", "training.csv"] {
        let read = |sub: &str| std::fs::read(dir.path().join(sub).join(f)).unwrap();
        assert_eq!(read("auto"), read("cpu"), "{f}");
    }
    assert_eq!(auto.eval_energy_final.to_bits(), cpu.eval_energy_final.to_bits());
}

/// The connectome scenario end to end on the GPU: the written energy curves (shortest round-trip decimals, so
/// equal text means equal bits) and the learned weights are identical to the CPU run's.
#[test]
#[ignore = "needs a CUDA GPU"]
fn celegans_scenario_on_the_gpu_matches_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let mut weights = Vec::new();
    for (sub, backend) in [("gpu", BackendKind::Cuda), ("cpu", BackendKind::Cpu)] {
        let opts = RunOptions { out_dir: Some(dir.path().join(sub)), backend, batches: Some(20), overwrite: false };
        let s = run_scenario(&scenario("pc_celegans.toml"), &opts).unwrap();
        assert_eq!(s.backend, backend);
        let w = hdf5::File::open(dir.path().join(sub).join("weights.h5")).unwrap();
        let v: Vec<f64> = w.dataset("W0/values").unwrap().read_raw().unwrap();
        weights.push(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }
    for f in ["energy.csv", "training.csv"] {
        let read = |sub: &str| std::fs::read(dir.path().join(sub).join(f)).unwrap();
        assert_eq!(read("gpu"), read("cpu"), "{f} differs between the GPU and the CPU");
    }
    assert_eq!(weights[0], weights[1], "learned weights differ between the GPU and the CPU");
}
