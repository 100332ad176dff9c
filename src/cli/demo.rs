//! `neurotwin demo`: the bundled C. elegans gentle-touch scenario.

use std::path::PathBuf;

use neurotwin_scenarios::{BackendKind, RunRequest, run_scenario};

use super::table::render;

/// The demo scenario, built into the binary (it uses only the bundled, also built-in, C. elegans data), so
/// a binary copied anywhere runs it.
pub use neurotwin_scenarios::DEMO_SCENARIO;

pub fn demo(out: PathBuf, backend: BackendKind) -> anyhow::Result<()> {
    let req = RunRequest {
        scenario: PathBuf::from("celegans_touch.toml (built in)"),
        text: Some(DEMO_SCENARIO.to_string()),
        out_dir: Some(out.clone()),
        progress: true,
        backend,
        // The demo's folder is its own: a second demo replaces the first (only its files).
        overwrite: true,
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
