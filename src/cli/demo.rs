//! `neurotwin demo`: the bundled C. elegans gentle-touch scenario.

use std::path::PathBuf;

use neurotwin_scenarios::{BackendChoice, RunRequest, run_scenario};

use super::table::render;

/// The demo scenario, shipped in the repository.
pub fn demo_scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios").join("celegans_touch.toml")
}

pub fn demo(out: PathBuf, backend: BackendChoice) -> anyhow::Result<()> {
    let req = RunRequest {
        scenario: demo_scenario(),
        out_dir: Some(out.clone()),
        progress: true,
        backend,
        ..Default::default()
    };
    let results = run_scenario(&req)?;
    let s = &results[0].summary;
    println!(
        "C. elegans gentle touch: {} neurons, {} chemical synapses, {} gap-junction entries ({}), {} ms, seed {}",
        s.neurons, s.synapses, s.gap_junction_entries, s.model, s.duration_ms, s.seed
    );
    let windows: Vec<String> =
        s.readout.first().map(|r| r.windows_hz.iter().map(|(w, _)| format!("{w} (Hz)")).collect()).unwrap_or_default();
    let mut header = vec!["read-out", "neurons"];
    header.extend(windows.iter().map(|s| s.as_str()));
    let rows: Vec<Vec<String>> = s
        .readout
        .iter()
        .map(|r| {
            let names = if r.neurons.len() <= 3 {
                r.neurons.join(" ")
            } else {
                format!("{} … ({} cells)", r.neurons[..3].join(" "), r.neurons.len())
            };
            let mut row = vec![r.label.clone(), names];
            row.extend(r.windows_hz.iter().map(|(_, hz)| format!("{hz:.1}")));
            row
        })
        .collect();
    println!("{}", render(&header, &rows));
    println!("mean rate of all neurons: {:.2} Hz; simulated in {:.2} s on {}", s.mean_rate_hz, s.wall_s, s.backend);
    println!("outputs: {0}/spikes.h5 (SONATA), {0}/summary.json, {0}/raster.png", out.display());
    Ok(())
}
