//! `neurotwin run`.

use std::path::PathBuf;

use neurotwin_scenarios::{BackendKind, RunRequest, RunResult, run_scenario};

use super::table::render;

/// `mpirun -np N neurotwin run …` (feature `mpi`): one network across N ranks, see src/cli/mpi.rs.
#[cfg(feature = "mpi")]
#[path = "mpi.rs"]
mod mpi;

/// The arguments of `neurotwin run`.
pub struct RunArgs {
    pub scenario: PathBuf,
    pub out: Option<PathBuf>,
    pub threads: Option<usize>,
    pub json: bool,
    pub backend: BackendKind,
    pub overwrite: bool,
    /// Time each phase of the step loop and print the split (`summary.json` gets `phases`).
    pub profile: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let RunArgs { scenario, out, threads, json, backend, overwrite, profile } = args;
    let kind = if neurotwin_scenarios::fitting::twin_run::is_twin_scenario_file(&scenario) {
        Some("twin")
    } else if neurotwin_predictive::is_predictive_scenario(&scenario) {
        Some("predictive-coding")
    } else if neurotwin_scenarios::sonata::is_sonata_config(&scenario) {
        Some("SONATA")
    } else {
        None
    };
    if let (true, Some(kind)) = (profile, kind) {
        anyhow::bail!(
            "{}: --profile times spiking scenario runs; a {kind} run has no step profile",
            scenario.display()
        );
    }
    if neurotwin_scenarios::fitting::twin_run::is_twin_scenario_file(&scenario) {
        return run_twin(&scenario, out, threads, json, backend, overwrite);
    }
    if neurotwin_predictive::is_predictive_scenario(&scenario) {
        return super::pc::run_predictive(&scenario, out, json, backend, overwrite);
    }
    if neurotwin_scenarios::sonata::is_sonata_config(&scenario) {
        return run_sonata(&scenario, out, threads, json, backend, overwrite);
    }
    let req = RunRequest { scenario, out_dir: out, threads, progress: true, backend, overwrite, text: None, profile };
    #[cfg(feature = "mpi")]
    if mpi::run(&req, json)? {
        return Ok(());
    }
    let results = run_scenario(&req)?;
    if json {
        let all: Vec<_> = results.iter().map(|r| &r.summary).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    print_summary(&results);
    print_phases(&results);
    Ok(())
}

/// With `--profile`: each run's time per phase of the step loop.
fn print_phases(results: &[RunResult]) {
    for r in results {
        if let Some(p) = &r.summary.phases {
            let s = &r.summary;
            let which = match &s.sweep_value {
                Some(v) => format!("{} = {v}, trial {}", s.sweep_param.as_deref().unwrap_or("sweep"), s.trial),
                None => format!("trial {}", s.trial),
            };
            println!(
                "\ntime per phase ({}, {which}, {} backend, {} threads):\n{}",
                s.scenario,
                s.backend,
                s.threads,
                p.table()
            );
        }
    }
}

/// A twin run (`[twin]`: a fitted or unfitted rate-model twin under stimuli and perturbations), see
/// `neurotwin_scenarios::fitting::twin_run`.
fn run_twin(
    scenario: &std::path::Path,
    out: Option<PathBuf>,
    threads: Option<usize>,
    json: bool,
    backend: BackendKind,
    overwrite: bool,
) -> anyhow::Result<()> {
    use neurotwin_scenarios::fitting::twin_run::{read_twin_scenario, run_twin};
    if matches!(backend, BackendKind::Cuda | BackendKind::CudaHost) {
        anyhow::bail!("{}: a twin run uses the CPU rate model; run it without --backend", scenario.display());
    }
    let file = read_twin_scenario(scenario)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.unwrap_or(0)).build()?;
    let (report, dir) = pool.install(|| run_twin(&file, out.as_deref(), overwrite))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{}: twin of {} ({} neurons, {} connections, {} model, {}), dt {} ms, {} ms; fitted parameters: {}",
        report.scenario,
        report.fit_scenario,
        report.neurons,
        report.connections,
        report.model,
        report.activation,
        report.dt_ms,
        report.duration_ms,
        report.fitted_params.as_deref().unwrap_or("none (unfitted initial parameters)")
    );
    let twins = report.twins();
    let param = report.sweep_param.clone().unwrap_or_else(|| "point".into());
    for w in &report.windows {
        let mut header: Vec<String> = vec![param.clone()];
        let n_blocks = report.points.first().map_or(0, |p| p.blocks.len());
        for k in 0..n_blocks {
            header.push(format!("{} block", report.points[0].blocks[k].receptor));
        }
        for g in &report.readout {
            for t in &twins {
                header.push(format!("{} {t}", g.label));
            }
        }
        let columns: Vec<(String, String, Vec<Option<f64>>)> = report
            .readout
            .iter()
            .flat_map(|g| twins.iter().map(move |t| (g.label.clone(), t.clone())))
            .map(|(g, t)| {
                let r = report.responses(&t, &g, &w.label);
                (g, t, r)
            })
            .collect();
        let rows: Vec<Vec<String>> = report
            .points
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let mut row = vec![p.value.clone().unwrap_or_else(|| "-".into())];
                row.extend(p.blocks.iter().map(|b| format!("{:.0} %", 100.0 * b.steady_block)));
                row.extend(columns.iter().map(|c| c.2[k].map_or("n/a".into(), |v| format!("{v:.4}"))));
                row
            })
            .collect();
        println!("\nresponse (mean V − control) in window `{}` ({}–{} ms):", w.label, w.start_ms, w.stop_ms);
        let h: Vec<&str> = header.iter().map(String::as_str).collect();
        println!("{}", render(&h, &rows));
    }
    println!(
        "outputs in {}: summary.json, dose_response.csv, dose_response.png ({:.2} s)",
        dir.display(),
        report.wall_s
    );
    Ok(())
}

/// A SONATA simulation config (`config.json` or `simulation_config.json`), see `neurotwin_scenarios::sonata`.
fn run_sonata(
    config: &std::path::Path,
    out: Option<PathBuf>,
    threads: Option<usize>,
    json: bool,
    backend: BackendKind,
    overwrite: bool,
) -> anyhow::Result<()> {
    #[cfg(feature = "mpi")]
    let distributed = match backend {
        // Under mpirun with several ranks: rank 0 prints, the others are done.
        BackendKind::Cpu => match mpi::run_sonata(config, out.as_deref(), threads, overwrite)? {
            Some(None) => return Ok(()),
            other => other.flatten(),
        },
        _ => None,
    };
    #[cfg(not(feature = "mpi"))]
    let distributed = None;
    let (sim, result) = match distributed {
        Some(done) => done,
        None => {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.unwrap_or(0)).build()?;
            pool.install(|| neurotwin_scenarios::sonata::run_sonata(config, out.as_deref(), backend, true, overwrite))?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&result.summary)?);
        return Ok(());
    }
    for (name, st) in &sim.inputs {
        println!(
            "input {name}: {} spikes replayed ({} merged into an earlier spike of the same step, {} after tstop)",
            st.events, st.merged, st.after_end
        );
    }
    print_summary(std::slice::from_ref(&result));
    print_ranks(std::slice::from_ref(&result));
    let rec = &result.recording;
    let rows: Vec<Vec<String>> = sim
        .report_populations()
        .iter()
        .map(|p| {
            let ids: Vec<u32> = (p.first..p.first + p.count).collect();
            vec![p.name.clone(), p.count.to_string(), format!("{:.3}", rec.mean_rate_hz(&ids))]
        })
        .chain(
            result.summary.rate_by_cell_type_hz.iter().map(|(g, r)| vec![g.clone(), String::new(), format!("{r:.3}")]),
        )
        .collect();
    println!("{}", render(&["population / cell type", "nodes", "rate (Hz)"], &rows));
    println!("spike report (SONATA): {}", sim.spikes_file.display());
    Ok(())
}

pub fn print_summary(results: &[RunResult]) {
    let s0 = &results[0].summary;
    println!(
        "{}: {} neurons, {} synapses ({:.2} bytes/synapse, {}), model {}, dt {} ms, {} ms",
        s0.scenario,
        s0.neurons,
        s0.synapses,
        s0.bytes_per_synapse,
        s0.weight_encoding,
        s0.model,
        s0.dt_ms,
        s0.duration_ms
    );
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let s = &r.summary;
            vec![
                s.sweep_value.clone().unwrap_or_else(|| "-".into()),
                s.trial.to_string(),
                s.seed.to_string(),
                s.total_spikes.to_string(),
                format!("{:.3}", s.mean_rate_hz),
                format!("{:.2}", s.wall_s),
                s.output_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    let sweep = s0.sweep_param.clone().unwrap_or_else(|| "sweep".into());
    println!("{}", render(&[&sweep, "trial", "seed", "spikes", "mean rate (Hz)", "wall (s)", "output"], &rows));
    for r in results {
        for p in &r.summary.plasticity {
            println!(
                "plasticity `{}` (trial {}): {} synapses, mean weight {:.4} -> {:.4}, {:.1} % at a bound at the end \
                 (weights.h5, weights.png)",
                p.name,
                r.summary.trial,
                p.synapses,
                p.mean_weight_start,
                p.mean_weight_end,
                100.0 * p.at_bound_end
            );
        }
    }
}

/// The per-rank split of each run: neurons, synapses, peak memory, times.
pub(crate) fn print_ranks(results: &[RunResult]) {
    for r in results {
        if r.summary.ranks.is_empty() {
            continue;
        }
        println!("\nper rank ({}, trial {}):", r.summary.scenario, r.summary.trial);
        println!(
            "  rank  neurons            synapses        peak RSS   prepare  simulate  exchange (count, MB received)"
        );
        for k in &r.summary.ranks {
            println!(
                "  {:>4}  {:>8}..{:<8}  {:>14}  {:>8.0} MiB  {:>6.2} s  {:>6.2} s  {:>6.2} s ({}, {:.1} MB)",
                k.rank,
                k.neurons[0],
                k.neurons[1],
                k.synapses,
                k.peak_rss_mib,
                k.prepare_s,
                k.simulate_s,
                k.exchange_s,
                k.exchanges,
                k.exchange_bytes as f64 * 1e-6
            );
        }
    }
}
