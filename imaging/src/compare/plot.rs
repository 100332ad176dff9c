//! PNG figures of a [`Comparison`] (plotters, bitmap backend, embedded DejaVu Sans font): overlaid traces
//! of the best and worst neurons, and the two correlation matrices side by side. Written atomically (a
//! temporary `.png` in the same folder, then renamed).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use super::metrics::Comparison;
use super::report::write_atomically;
use super::resample::Aligned;
use crate::error::ImagingError;

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn render(path: &Path, draw: impl FnOnce(&Path) -> DrawResult) -> Result<(), ImagingError> {
    ensure_font();
    write_atomically(path, "png", |tmp| {
        draw(tmp).map_err(|e| ImagingError::Output { path: path.into(), message: format!("drawing: {e}") })
    })
}

/// Overlaid simulated and recorded traces (z-scored over their finite frames, dimensionless, against
/// time in s on the common time base) of the 3 best and 3 worst compared neurons by r (fewer if fewer were
/// compared), one panel each; the legend gives r and the cross-correlation peak and lag. `al` must be the
/// [`Aligned`] traces the comparison was computed from. Errors if nothing was compared or writing fails.
pub fn plot_traces(path: &Path, c: &Comparison, al: &Aligned) -> Result<(), ImagingError> {
    let mut order: Vec<usize> = (0..c.neurons.len()).collect();
    order.sort_by(|&a, &b| c.neurons[b].r.total_cmp(&c.neurons[a].r));
    let picked: Vec<usize> =
        if order.len() <= 6 { order } else { order[..3].iter().chain(&order[order.len() - 3..]).copied().collect() };
    if picked.is_empty() {
        return Err(ImagingError::Compare(format!(
            "no compared neuron to plot; every matched neuron was skipped: {}",
            c.skipped_summary()
        )));
    }
    if al.time_s.len() != c.time_base.n_frames || c.neurons.iter().any(|n| n.sim_row >= al.n_a || n.rec_row >= al.n_b) {
        return Err(ImagingError::Compare(
            "the aligned traces do not belong to this comparison; pass the Aligned used to compute it".into(),
        ));
    }
    render(path, |tmp| {
        let root = BitMapBackend::new(tmp, (1400, 230 * picked.len() as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        for (k, (area, &i)) in root.split_evenly((picked.len(), 1)).iter().zip(&picked).enumerate() {
            let rank = if k < 3 || picked.len() <= 3 { "best" } else { "worst" };
            trace_panel(area, c, al, i, rank)?;
        }
        root.present()?;
        Ok(())
    })
}

fn zscore(x: &[f64]) -> Vec<f64> {
    let f: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    let m = f.iter().sum::<f64>() / f.len().max(1) as f64;
    let sd = (f.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / f.len().max(1) as f64).sqrt();
    x.iter().map(|v| if sd > 0.0 { (v - m) / sd } else { v - m }).collect()
}

fn trace_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    c: &Comparison,
    al: &Aligned,
    i: usize,
    rank: &str,
) -> DrawResult {
    let n = &c.neurons[i];
    let (s, r) = (zscore(al.a_trace(n.sim_row)), zscore(al.b_trace(n.rec_row)));
    let t = &al.time_s;
    let lim = s.iter().chain(&r).filter(|v| v.is_finite()).fold(1.0f64, |m, v| m.max(v.abs())) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{} ({rank} by r)", n.name), ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(50)
        .build_cartesian_2d(t[0]..t[t.len() - 1], -lim..lim)?;
    chart.configure_mesh().x_desc("time (s)").y_desc("z-score").disable_mesh().draw()?;
    let colours = [RGBColor(0, 114, 178), RGBColor(213, 94, 0)];
    let labels = [
        "simulated".to_string(),
        format!("recorded: r = {:.2}, xcorr peak {:.2} at lag {:+.2} s", n.r, n.xcorr_peak_r, n.xcorr_lag_s),
    ];
    for ((y, colour), label) in [&s, &r].into_iter().zip(colours).zip(labels) {
        // One line per run of finite frames, so gaps stay visible.
        let segments = t.iter().zip(y.iter()).collect::<Vec<_>>();
        let mut first = true;
        for run in segments.split(|(_, v)| !v.is_finite()).filter(|r| !r.is_empty()) {
            let series =
                chart.draw_series(LineSeries::new(run.iter().map(|(a, b)| (**a, **b)), colour.stroke_width(2)))?;
            if first {
                series
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
                first = false;
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}

/// Diverging colour map for a correlation in [−1, 1]: blue (−1) → white (0) → red (+1); grey when undefined.
fn diverging(v: Option<f64>) -> RGBColor {
    let Some(v) = v.filter(|v| v.is_finite()) else { return RGBColor(180, 180, 180) };
    let v = v.clamp(-1.0, 1.0);
    let (end, w) = if v < 0.0 { ((33.0, 102.0, 172.0), -v) } else { ((178.0, 24.0, 43.0), v) };
    let mix = |e: f64| (255.0 + (e - 255.0) * w).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// The simulated and recorded neuron × neuron correlation matrices side by side (same neuron order, the
/// order of [`Comparison::matrix_names`]; names on the axes when there are at most 40), a diverging colour
/// map from −1 (blue) through 0 (white) to +1 (red), undefined entries grey, a colour bar, and the
/// similarity r and Spearman ρ in the title. Errors if fewer than two neurons were compared.
pub fn plot_corr_matrices(path: &Path, c: &Comparison) -> Result<(), ImagingError> {
    let n = c.matrix_names.len();
    if n < 2 || c.sim_corr.len() != n * n || c.rec_corr.len() != n * n {
        let skipped = if c.skipped.is_empty() { String::new() } else { format!("; skipped: {}", c.skipped_summary()) };
        return Err(ImagingError::Compare(format!(
            "{n} compared neuron(s): correlation matrices need at least two{skipped}"
        )));
    }
    let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    let title = format!(
        "correlation matrices ({n} neurons): similarity r = {}, Spearman = {}, mean |diff| = {}",
        fmt(c.population.corr_similarity_r),
        fmt(c.population.corr_similarity_spearman),
        fmt(c.population.corr_mean_abs_diff)
    );
    render(path, |tmp| {
        let root = BitMapBackend::new(tmp, (1500, 760)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(&title, ("sans-serif", 20))?;
        let (left, rest) = root.split_horizontally(680);
        let (mid, bar) = rest.split_horizontally(680);
        matrix_panel(&left, "simulation", &c.sim_corr, &c.matrix_names)?;
        matrix_panel(&mid, "recording", &c.rec_corr, &c.matrix_names)?;
        colour_bar(&bar)?;
        root.present()?;
        Ok(())
    })
}

fn matrix_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    title: &str,
    m: &[Option<f64>],
    names: &[String],
) -> DrawResult {
    let n = names.len();
    let with_names = n <= 40;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title} (columns in the row order)"), ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(if with_names { 70 } else { 40 })
        .build_cartesian_2d(0.0..n as f64, n as f64..0.0)?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh().label_style(("sans-serif", 11)).x_desc("neuron index");
    if with_names {
        mesh.y_labels(0);
    }
    mesh.draw()?;
    chart.draw_series((0..n * n).map(|k| {
        let (i, j) = ((k / n) as f64, (k % n) as f64);
        Rectangle::new([(j, i), (j + 1.0, i + 1.0)], diverging(m[k]).filled())
    }))?;
    if with_names {
        // Row names to the left of the matrix, vertically centred on their row.
        let font_px =
            ((chart.backend_coord(&(0.0, 1.0)).1 - chart.backend_coord(&(0.0, 0.0)).1) as f64 * 0.8).clamp(6.0, 12.0);
        let style =
            TextStyle::from(("sans-serif", font_px).into_font()).color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center));
        let (bx, by) = area.get_base_pixel();
        for (k, name) in names.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, k as f64 + 0.5));
            area.draw(&Text::new(name.clone(), (x - bx - 4, y - by), style.clone()))?;
        }
    }
    Ok(())
}

fn colour_bar(area: &DrawingArea<BitMapBackend, Shift>) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .caption("r", ("sans-serif", 16))
        .margin_top(60)
        .margin_bottom(60)
        .margin_left(10)
        .margin_right(20)
        .right_y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, -1.0..1.0)?;
    chart.configure_mesh().disable_mesh().disable_x_axis().y_labels(9).label_style(("sans-serif", 12)).draw()?;
    let steps = 200;
    chart.draw_series((0..steps).map(|k| {
        let lo = -1.0 + 2.0 * k as f64 / steps as f64;
        let hi = lo + 2.0 / steps as f64;
        Rectangle::new([(0.0, lo), (1.0, hi)], diverging(Some(0.5 * (lo + hi))).filled())
    }))?;
    Ok(())
}
