//! Raster + population-rate figure (PNG, plotters) for one run.

use std::path::Path;

use neurotwin_sim::{SimError, SimRecording};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub(crate) fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Kept spikes a raster shows in full (one dot each); a run with more is drawn as a density of spikes per pixel
/// cell (a dot per spike would cover the panel, and holding them all would grow with the run).
pub const RASTER_MAX_SPIKES: usize = 1 << 21;
/// Width of the population-rate bins (ms).
const RATE_BIN_MS: f64 = 5.0;
/// Density cells: time columns and neuron rows of the raster panel.
const GRID_COLUMNS: usize = 1100;
const GRID_ROWS: usize = 540;

/// What a raster figure shows, gathered spike by spike as a run goes ([`RasterSpikes::push`]) or from a finished
/// recording: up to [`RASTER_MAX_SPIKES`] kept spikes, then a count per pixel cell instead; and the population
/// rate in 5 ms bins. Memory is bounded whatever the run's length.
pub struct RasterSpikes {
    dt_ms: f64,
    t_max: f64,
    n_neurons: usize,
    /// The spikes as (step, neuron) while they fit, else `None`.
    list: Option<(Vec<u64>, Vec<u32>)>,
    /// Spikes per (column, row) cell, row-major by neuron row; filled once the list overflowed.
    grid: Vec<u32>,
    rate_counts: Vec<u64>,
    rate_bin: f64,
}

impl RasterSpikes {
    /// An empty raster of a run of `steps` steps of `dt_ms` over `n_neurons` neurons.
    pub fn new(dt_ms: f64, steps: u64, n_neurons: usize) -> Self {
        let t_max = (steps as f64 * dt_ms).max(dt_ms);
        let rate_bin = RATE_BIN_MS.max(dt_ms);
        let nb = (t_max / rate_bin).ceil() as usize;
        Self {
            dt_ms,
            t_max,
            n_neurons,
            list: Some((Vec::new(), Vec::new())),
            grid: Vec::new(),
            rate_counts: vec![0; nb.max(1)],
            rate_bin,
        }
    }

    /// The kept spikes of a finished recording.
    pub fn from_recording(rec: &SimRecording, n_neurons: usize) -> Self {
        let mut r = Self::new(rec.dt_ms, rec.steps, n_neurons);
        for (&s, &i) in rec.spike_steps.iter().zip(&rec.spike_neurons) {
            r.push(s, std::slice::from_ref(&i));
        }
        r
    }

    /// Adds the kept spikes of step `step`.
    pub fn push(&mut self, step: u64, neurons: &[u32]) {
        let t = (step + 1) as f64 * self.dt_ms;
        let nb = self.rate_counts.len();
        self.rate_counts[((t - 1e-9) / self.rate_bin).floor().clamp(0.0, (nb - 1) as f64) as usize] +=
            neurons.len() as u64;
        if let Some((steps, ids)) = &mut self.list {
            if steps.len() + neurons.len() <= RASTER_MAX_SPIKES {
                steps.extend(std::iter::repeat_n(step, neurons.len()));
                ids.extend_from_slice(neurons);
                return;
            }
            // Too many to draw one by one: from now on, counts per cell.
            let (steps, ids) = self.list.take().unwrap_or_default();
            self.grid = vec![0; GRID_COLUMNS * GRID_ROWS];
            for (&s, &i) in steps.iter().zip(&ids) {
                self.count(s, i);
            }
        }
        for &i in neurons {
            self.count(step, i);
        }
    }

    fn count(&mut self, step: u64, neuron: u32) {
        let t = (step + 1) as f64 * self.dt_ms;
        let c = ((t / self.t_max) * GRID_COLUMNS as f64).floor().clamp(0.0, (GRID_COLUMNS - 1) as f64) as usize;
        let r = (neuron as usize * GRID_ROWS / self.n_neurons.max(1)).min(GRID_ROWS - 1);
        self.grid[r * GRID_COLUMNS + c] += 1;
    }
}

/// Draws spikes (one dot per spike; `highlight` neurons in colour, labelled; a density per pixel cell beyond
/// [`RASTER_MAX_SPIKES`]) above the mean rate of all neurons in 5 ms bins. Written atomically.
pub fn raster_png(
    path: &Path,
    title: &str,
    raster: &RasterSpikes,
    highlight: &[(String, Vec<u32>)],
) -> Result<(), SimError> {
    ensure_font();
    let err = |e: &dyn std::fmt::Display| SimError::Output { path: path.into(), message: e.to_string() };
    neurotwin_sim::output::write_atomically(path, |tmp| {
        let tmp_png = tmp.with_extension("png");
        draw(&tmp_png, title, raster, highlight).map_err(|e| err(&e))?;
        std::fs::rename(&tmp_png, tmp).map_err(|e| err(&e))
    })
}

fn draw(
    path: &Path,
    title: &str,
    raster: &RasterSpikes,
    highlight: &[(String, Vec<u32>)],
) -> Result<(), Box<dyn std::error::Error>> {
    let n_neurons = raster.n_neurons;
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(600);
    let t_max = raster.t_max;
    let empty = (Vec::new(), Vec::new());
    let (steps, neurons) = raster.list.as_ref().unwrap_or(&empty);
    let times: Vec<f64> = steps.iter().map(|&s| (s + 1) as f64 * raster.dt_ms).collect();
    // Okabe & Ito (2008) colour-blind-safe palette, then two extra distinct colours.
    let palette = [
        RGBColor(213, 94, 0),
        RGBColor(0, 114, 178),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(230, 159, 0),
        RGBColor(240, 228, 66),
        RGBColor(120, 60, 160),
        RGBColor(140, 90, 40),
    ];
    let mut colour_of = vec![None; n_neurons];
    for (g, (_, ids)) in highlight.iter().enumerate() {
        for &i in ids {
            colour_of[i as usize] = Some(palette[g % palette.len()]);
        }
    }
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..(n_neurons.max(1) as f64))?;
    chart.configure_mesh().x_desc("time (ms)").y_desc("neuron index").disable_mesh().draw()?;
    if raster.list.is_none() {
        // Density: each cell's shade grows with its spikes (log scale), up to the busiest cell.
        let max = raster.grid.iter().copied().max().unwrap_or(0).max(1) as f64;
        let (dc, dr) = (t_max / GRID_COLUMNS as f64, n_neurons.max(1) as f64 / GRID_ROWS as f64);
        chart.draw_series(raster.grid.iter().enumerate().filter(|(_, c)| **c > 0).map(|(k, &c)| {
            let (r, col) = (k / GRID_COLUMNS, k % GRID_COLUMNS);
            let shade = 0.15 + 0.85 * (c as f64).ln_1p() / max.ln_1p();
            let (x0, y0) = (col as f64 * dc, r as f64 * dr);
            Rectangle::new([(x0, y0), (x0 + dc, y0 + dr)], BLACK.mix(shade).filled())
        }))?;
    }
    chart.draw_series(
        times
            .iter()
            .zip(neurons)
            .filter(|(_, i)| colour_of[**i as usize].is_none())
            .map(|(&t, &i)| Circle::new((t, i as f64 + 0.5), 1, BLACK.mix(0.6).filled())),
    )?;
    for (g, (label, ids)) in highlight.iter().enumerate() {
        let c = palette[g % palette.len()];
        let set: std::collections::HashSet<u32> = ids.iter().copied().collect();
        chart
            .draw_series(
                times
                    .iter()
                    .zip(neurons)
                    .filter(|(_, i)| set.contains(i))
                    .map(move |(&t, &i)| Circle::new((t, i as f64 + 0.5), 2, c.filled())),
            )?
            .label(label.clone())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
    }
    if !highlight.is_empty() {
        chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
    }
    // Mean rate of all neurons in 5 ms bins.
    let bin = raster.rate_bin;
    let rates: Vec<f64> =
        raster.rate_counts.iter().map(|&c| c as f64 / n_neurons.max(1) as f64 / (bin * 1e-3)).collect();
    let r_max = rates.iter().copied().fold(1.0, f64::max) * 1.1;
    let mut rc = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..r_max)?;
    rc.configure_mesh().x_desc("time (ms)").y_desc("mean rate (Hz)").draw()?;
    rc.draw_series(LineSeries::new(rates.iter().enumerate().map(|(k, &r)| ((k as f64 + 0.5) * bin, r)), &BLUE))?;
    root.present()?;
    Ok(())
}

/// Bins of the weight histogram.
const WEIGHT_BINS: usize = 50;

/// The plastic weights' figure: the distribution at the start and at the end of the run (all synapses; bins over
/// the projections' weight ranges `bounds`, 0 included) above the mean weight of each projection at every snapshot. Written
/// atomically.
pub fn weights_png(
    path: &Path,
    title: &str,
    w: &neurotwin_sim::WeightRecording,
    bounds: &[(f64, f64)],
) -> Result<(), SimError> {
    ensure_font();
    let err = |e: &dyn std::fmt::Display| SimError::Output { path: path.into(), message: e.to_string() };
    neurotwin_sim::output::write_atomically(path, |tmp| {
        let tmp_png = tmp.with_extension("png");
        draw_weights(&tmp_png, title, w, bounds).map_err(|e| err(&e))?;
        std::fs::rename(&tmp_png, tmp).map_err(|e| err(&e))
    })
}

fn draw_weights(
    path: &Path,
    title: &str,
    w: &neurotwin_sim::WeightRecording,
    bounds: &[(f64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(430);
    let snapshots = w.times_ms.len();
    let lo = bounds.iter().map(|b| b.0).fold(0.0, f64::min);
    let hi = bounds.iter().map(|b| b.1).fold(0.0, f64::max);
    let width = (hi - lo).max(f64::MIN_POSITIVE) / WEIGHT_BINS as f64;
    let histogram = |t: usize| {
        let mut counts = vec![0u64; WEIGHT_BINS];
        for &x in w.snapshot(t) {
            let b = (((x - lo) / width).floor().max(0.0) as usize).min(WEIGHT_BINS - 1);
            counts[b] += 1;
        }
        counts
    };
    let (start, end) = (histogram(0), histogram(snapshots.saturating_sub(1)));
    let c_max = start.iter().chain(&end).copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("{title} — {} plastic synapses", w.len()), ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(lo..hi, 0.0..c_max)?;
    chart.configure_mesh().x_desc("weight").y_desc("synapses").disable_mesh().draw()?;
    let (blue, orange) = (RGBColor(0, 114, 178), RGBColor(213, 94, 0));
    for (counts, colour, label) in [
        (&start, blue, format!("t = {} ms", w.times_ms[0])),
        (&end, orange, format!("t = {} ms", w.times_ms[snapshots - 1])),
    ] {
        chart
            .draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(b, &c)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], colour.mix(0.45).filled())
            }))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.mix(0.45).filled()));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
    // Mean weight of each projection at every snapshot.
    let t_max = w.times_ms.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
    let mut mc = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, lo..hi)?;
    mc.configure_mesh().x_desc("time (ms)").y_desc("mean weight").draw()?;
    let palette = [RGBColor(0, 158, 115), RGBColor(204, 121, 167), RGBColor(86, 180, 233), RGBColor(230, 159, 0)];
    for (p, name) in w.projection_names.iter().enumerate() {
        let mine: Vec<usize> = (0..w.len()).filter(|&k| w.projection[k] as usize == p).collect();
        let n = mine.len().max(1) as f64;
        let c = palette[p % palette.len()];
        let series = (0..snapshots).map(|t| {
            let s = w.snapshot(t);
            (w.times_ms[t], mine.iter().map(|&k| s[k]).sum::<f64>() / n)
        });
        mc.draw_series(LineSeries::new(series, c.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2)));
    }
    mc.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// Curves of a loss (or any positive quantity) against a step count on a log10 axis, one colour per curve with
/// a legend; points that are not finite and positive are left out. Written atomically.
pub fn loss_curves_png(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), SimError> {
    ensure_font();
    let err = |e: &dyn std::fmt::Display| SimError::Output { path: path.into(), message: e.to_string() };
    let keep = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().filter(|p| p.0.is_finite() && p.1.is_finite() && p.1 > 0.0).map(|&(x, y)| (x, y.log10())).collect()
    };
    let kept: Vec<(&str, Vec<(f64, f64)>)> = curves.iter().map(|(n, p)| (*n, keep(p))).collect();
    let all = kept.iter().flat_map(|(_, p)| p.iter());
    let (x0, x1, y0, y1) = all.fold((f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.0), a.1.max(p.0), a.2.min(p.1), a.3.max(p.1))
    });
    let (x0, x1) = if x0.is_finite() { (x0, x1.max(x0 + 1.0)) } else { (0.0, 1.0) };
    let (y0, y1) = if y0.is_finite() { (y0 - 0.05, y1 + 0.05) } else { (-1.0, 0.0) };
    let colours = [RGBColor(0, 114, 178), RGBColor(213, 94, 0), RGBColor(0, 158, 115), RGBColor(204, 121, 167)];
    neurotwin_sim::output::write_atomically(path, |tmp| {
        // The bitmap backend picks the encoder from the extension: draw to `.png`, then move into place.
        let tmp_png = tmp.with_extension("png");
        let draw = || -> Result<(), Box<dyn std::error::Error>> {
            let root = BitMapBackend::new(&tmp_png, (760, 480)).into_drawing_area();
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            chart.configure_mesh().x_desc(x_desc).y_desc(format!("log10 {y_desc}")).draw()?;
            for (i, (name, pts)) in kept.iter().enumerate() {
                let c = colours[i % colours.len()];
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c.stroke_width(2)));
                // Sparse curves (evaluations every N steps) also get a marker per point.
                if pts.len() <= 200 {
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
                }
            }
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
            root.present()?;
            Ok(())
        };
        draw().map_err(|e| err(&e))?;
        std::fs::rename(&tmp_png, tmp).map_err(|e| err(&e))
    })
}
