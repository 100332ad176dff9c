//! Writing a [`Comparison`]: a CSV table (one row per compared neuron, the summary in `#` comment lines
//! above the header) and the full result as JSON. Both are written atomically: to a temporary file in the
//! same folder, then renamed over the target, so a reader never sees a half-written file.

use std::fmt::Write as _;
use std::path::Path;

use super::metrics::Comparison;
use crate::error::ImagingError;

/// Calls `write` with a temporary path next to `path` (same folder, hidden name ending in `ext`), then
/// renames it to `path`; the temporary file is removed if anything fails.
pub(crate) fn write_atomically(
    path: &Path,
    ext: &str,
    write: impl FnOnce(&Path) -> Result<(), ImagingError>,
) -> Result<(), ImagingError> {
    if path.file_name().is_none() {
        return Err(ImagingError::Output {
            path: path.into(),
            message: "the path has no file name; give a file path such as out/compare.csv".into(),
        });
    }
    neurotwin_io::atomic::write_file_ext(path, ext, write)
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x}"))
}

/// Quotes a CSV field if it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// The CSV text of [`write_csv`].
pub fn csv_text(c: &Comparison) -> String {
    let p = &c.population;
    let tb = &c.time_base;
    let mut s = String::new();
    let _ = writeln!(s, "# neurotwin simulated-vs-recorded calcium comparison");
    let _ = writeln!(
        s,
        "# time base: {} .. {} s, {} frames at {:.6} Hz ({:?}); sim {:?}, rec {:?}",
        tb.start_s, tb.stop_s, tb.n_frames, tb.frame_rate_hz, tb.grid, c.method_sim, c.method_rec
    );
    let _ = writeln!(
        s,
        "# n_neurons = {}, n_skipped = {}, median_r = {}, mean_r = {}",
        p.n_neurons,
        p.n_skipped,
        opt(p.median_r),
        opt(p.mean_r)
    );
    let _ = writeln!(
        s,
        "# corr-matrix similarity: r = {}, spearman = {}, mean |diff| = {}, over {} neuron pairs",
        opt(p.corr_similarity_r),
        opt(p.corr_similarity_spearman),
        opt(p.corr_mean_abs_diff),
        p.n_pairs_used
    );
    for k in &c.skipped {
        let _ = writeln!(s, "# skipped {} (sim row {}, rec row {}): {}", k.name, k.sim_row, k.rec_row, k.reason);
    }
    s.push_str(
        "name,sim_row,rec_row,r,r2_fit,fit_slope,fit_intercept,ev_raw,xcorr_peak_r,xcorr_lag_s,\
         event_rate_sim_hz,event_rate_rec_hz,event_rate_ratio,event_rate_diff_hz,n_frames_used\n",
    );
    for n in &c.neurons {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            field(&n.name),
            n.sim_row,
            n.rec_row,
            n.r,
            n.r2_fit,
            n.fit_slope,
            n.fit_intercept,
            opt(n.ev_raw),
            n.xcorr_peak_r,
            n.xcorr_lag_s,
            opt(n.event_rate_sim_hz),
            opt(n.event_rate_rec_hz),
            opt(n.event_rate_ratio),
            opt(n.event_rate_diff_hz),
            n.n_frames_used
        );
    }
    s
}

/// Writes the per-neuron table as CSV (`#` comment lines with the summary and skipped neurons, then a
/// header row; empty field = not available; units: r dimensionless, lags s, rates Hz), atomically.
pub fn write_csv(path: &Path, c: &Comparison) -> Result<(), ImagingError> {
    let text = csv_text(c);
    write_atomically(path, "csv", |tmp| std::fs::write(tmp, &text).map_err(|e| ImagingError::io(tmp, e)))
}

/// Writes the full [`Comparison`] as pretty-printed JSON (missing values as `null`), atomically.
pub fn write_json(path: &Path, c: &Comparison) -> Result<(), ImagingError> {
    let text = serde_json::to_string_pretty(c)
        .map_err(|e| ImagingError::Output { path: path.into(), message: format!("JSON encoding: {e}") })?;
    write_atomically(path, "json", |tmp| std::fs::write(tmp, &text).map_err(|e| ImagingError::io(tmp, e)))
}

/// Reads a [`Comparison`] written by [`write_json`].
pub fn read_json(path: &Path) -> Result<Comparison, ImagingError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImagingError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| ImagingError::parse(path, e.line() as u64, format!("not a comparison written by write_json: {e}")))
}
