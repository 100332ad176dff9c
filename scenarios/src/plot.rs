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

/// Draws spikes (one dot per spike; `highlight` neurons in colour, labelled) above the mean rate of all
/// neurons in 5 ms bins. Written atomically.
pub fn raster_png(
    path: &Path,
    title: &str,
    rec: &SimRecording,
    n_neurons: usize,
    highlight: &[(String, Vec<u32>)],
) -> Result<(), SimError> {
    ensure_font();
    let err = |e: &dyn std::fmt::Display| SimError::Output { path: path.into(), message: e.to_string() };
    neurotwin_sim::output::write_atomically(path, |tmp| {
        let tmp_png = tmp.with_extension("png");
        draw(&tmp_png, title, rec, n_neurons, highlight).map_err(|e| err(&e))?;
        std::fs::rename(&tmp_png, tmp).map_err(|e| err(&e))
    })
}

fn draw(
    path: &Path,
    title: &str,
    rec: &SimRecording,
    n_neurons: usize,
    highlight: &[(String, Vec<u32>)],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(600);
    let t_max = rec.duration_ms().max(rec.dt_ms);
    let times = rec.spike_times_ms();
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
    chart.draw_series(
        times
            .iter()
            .zip(&rec.spike_neurons)
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
                    .zip(&rec.spike_neurons)
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
    let bin = 5.0f64.max(rec.dt_ms);
    let nb = (t_max / bin).ceil() as usize;
    let mut counts = vec![0u64; nb.max(1)];
    for &t in &times {
        counts[((t - 1e-9) / bin).floor().clamp(0.0, (nb - 1) as f64) as usize] += 1;
    }
    let rates: Vec<f64> = counts.iter().map(|&c| c as f64 / n_neurons.max(1) as f64 / (bin * 1e-3)).collect();
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
