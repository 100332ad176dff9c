//! Outputs of `neurotwin fit`: `summary.json` (cross-validated metrics, baselines, scores on other
//! strains, fitted values), `fitted_params.json` (what a later run loads), `fit_history.csv` (every
//! epoch of every fit), `pairs.csv` (one row per scored pair with every predictor), `loss.png`
//! (train/validation loss of the final fit) and `predicted_vs_measured.png` (held-out pairs). Every file
//! is written to a temporary file and renamed; nothing is written before the fit has finished.

use std::io::Write;
use std::path::{Path, PathBuf};

use neurotwin_sim::SimError;
use neurotwin_sim::output::write_atomically;
use plotters::prelude::*;

use super::atlas_fit::{AtlasFitReport, HistoryRow, PairRow};
use super::calcium_fit::{CalciumFitReport, TracePanel};
use crate::error::ScenarioError;

fn out_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Output { path: path.into(), message: e.to_string() }
}

fn write_text(path: &Path, text: &str) -> Result<(), SimError> {
    write_atomically(path, |tmp| std::fs::write(tmp, text).map_err(|e| out_err(path, e)))
}

/// The fitted parameters as a later run reads them.
pub fn fitted_params_json(report: &AtlasFitReport) -> serde_json::Value {
    serde_json::json!({
        "format": "neurotwin-fitted-params/1",
        "model": report.model,
        "values": report.fitted_params,
        "raw": report.fitted.raw,
        "blocks": report.fitted.blocks,
    })
}

/// Writes every output into `dir`; returns the paths.
pub fn write_atlas_fit(dir: &Path, r: &AtlasFitReport) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut paths = Vec::new();
    let summary = dir.join("summary.json");
    write_text(&summary, &serde_json::to_string_pretty(r).map_err(|e| out_err(&summary, e))?)?;
    paths.push(summary);
    let fitted = dir.join("fitted_params.json");
    write_text(&fitted, &serde_json::to_string_pretty(&fitted_params_json(r)).map_err(|e| out_err(&fitted, e))?)?;
    paths.push(fitted);

    let hist = dir.join("fit_history.csv");
    let mut s = String::from("fit,restart,epoch,train_loss,val_loss,lr,seconds,steps_per_s\n");
    for h in &r.history {
        let e = &h.epoch;
        s += &format!(
            "{},{},{},{:e},{:e},{:e},{:.4},{:.3}\n",
            h.fit, h.restart, e.epoch, e.train_loss, e.val_loss, e.lr, e.seconds, e.steps_per_s
        );
    }
    write_text(&hist, &s)?;
    paths.push(hist);

    let pairs = dir.join("pairs.csv");
    write_atomically(&pairs, |tmp| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(tmp).map_err(|e| out_err(&pairs, e))?);
        let mut w = || -> std::io::Result<()> {
            writeln!(
                f,
                "strain,fit,stimulated,responder,measured_dff,q,is_responder,fitted,unfitted,direct_wiring,hops,neuron_mean"
            )?;
            for p in &r.pairs {
                writeln!(
                    f,
                    "{},{},{},{},{},{},{},{:e},{:e},{},{},{:e}",
                    p.strain,
                    p.fit,
                    p.stimulated,
                    p.responder,
                    p.measured,
                    p.q,
                    p.is_responder,
                    p.fitted,
                    p.unfitted,
                    p.direct,
                    p.hops.map_or(String::new(), |h| h.to_string()),
                    p.neuron_mean
                )?;
            }
            f.flush()
        };
        w().map_err(|e| out_err(&pairs, e))
    })?;
    paths.push(pairs);

    crate::plot::ensure_font();
    let loss = dir.join("loss.png");
    png(&loss, |p| draw_loss(p, r))?;
    paths.push(loss);
    let scatter = dir.join("predicted_vs_measured.png");
    png(&scatter, |p| draw_scatter(p, r))?;
    paths.push(scatter);
    Ok(paths)
}

fn png(path: &Path, draw: impl FnOnce(&Path) -> Result<(), Box<dyn std::error::Error>>) -> Result<(), SimError> {
    write_atomically(path, |tmp| {
        let tmp_png = tmp.with_extension("png");
        draw(&tmp_png).map_err(|e| out_err(path, e))?;
        std::fs::rename(&tmp_png, tmp).map_err(|e| out_err(path, e))
    })
}

fn draw_loss(path: &Path, r: &AtlasFitReport) -> Result<(), Box<dyn std::error::Error>> {
    let fin: Vec<_> = r.history.iter().filter(|h| h.fit == "final").collect();
    let restarts = fin.iter().map(|h| h.restart).max().map_or(1, |m| m + 1);
    let ys: Vec<f64> =
        fin.iter().flat_map(|h| [h.epoch.train_loss, h.epoch.val_loss]).filter(|v| v.is_finite() && *v > 0.0).collect();
    let (lo, hi) = ys.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo.log10() - 0.1, hi.log10() + 0.1) } else { (-3.0, 0.0) };
    let max_epoch = fin.iter().map(|h| h.epoch.epoch).max().unwrap_or(1) as f64;
    let root = BitMapBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: final fit, loss per epoch (log10)", r.name), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_epoch + 1.0, lo..hi)?;
    chart.configure_mesh().x_desc("epoch").y_desc("log10 mean squared error").draw()?;
    for restart in 0..restarts {
        let of = |f: fn(&super::atlas_fit::HistoryRow) -> f64| -> Vec<(f64, f64)> {
            fin.iter()
                .filter(|h| h.restart == restart)
                .map(|h| (h.epoch.epoch as f64, f(h)))
                .filter(|p| p.1.is_finite() && p.1 > 0.0)
                .map(|(x, y)| (x, y.log10()))
                .collect()
        };
        let train = RGBColor(0, 114, 178);
        let val = RGBColor(213, 94, 0);
        let s = chart.draw_series(LineSeries::new(of(|h| h.epoch.train_loss), train.stroke_width(2)))?;
        if restart == 0 {
            s.label("training").legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], train.stroke_width(2)));
        }
        let s = chart.draw_series(LineSeries::new(of(|h| h.epoch.val_loss), val.stroke_width(2)))?;
        if restart == 0 {
            s.label("validation").legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], val.stroke_width(2)));
        }
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn draw_scatter(path: &Path, r: &AtlasFitReport) -> Result<(), Box<dyn std::error::Error>> {
    let held: Vec<&PairRow> = r.pairs.iter().filter(|p| p.fit != "final").collect();
    let lim = held
        .iter()
        .flat_map(|p| [p.measured.abs(), p.fitted.abs(), p.unfitted.abs()])
        .filter(|v| v.is_finite())
        .fold(0.05f64, f64::max)
        .min(2.0);
    let root = BitMapBackend::new(path, (1040, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let cv = &r.cross_validated;
    for (area, (title, pick, score)) in panels.iter().zip([
        ("fitted twin (held out)", (|p: &PairRow| p.fitted) as fn(&PairRow) -> f64, cv.get("fitted twin")),
        ("unfitted model", (|p: &PairRow| p.unfitted) as fn(&PairRow) -> f64, cv.get("unfitted model")),
    ]) {
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{title}: r {} AUC {}", fmt(score.and_then(|s| s.pearson_r)), fmt(score.and_then(|s| s.auc))),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(-lim..lim, -lim..lim)?;
        chart.configure_mesh().x_desc("measured ΔF/F").y_desc("predicted").draw()?;
        chart.draw_series(LineSeries::new([(-lim, -lim), (lim, lim)], BLACK.mix(0.3)))?;
        chart.draw_series(held.iter().map(|p| {
            let c = if p.is_responder { RGBColor(213, 94, 0) } else { RGBColor(120, 120, 120) };
            Circle::new((p.measured.clamp(-lim, lim), pick(p).clamp(-lim, lim)), 2, c.filled())
        }))?;
    }
    root.present()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// `data = "calcium"`: summary.json (held-out r per predictor, pooled and per test worm, the protocol and
// every worm's split), fitted_params.json (same layout as the atlas fit's), fit_history.csv, neurons.csv
// (one row per scored held-out neuron with every predictor's r), loss.png and heldout_traces.png
// (recorded vs predicted traces of six held-out neurons of the test worms: the two best, two median and
// two worst by the fitted twin's r).

/// The fitted parameters of a calcium fit as a later run reads them (layout of [`fitted_params_json`]).
pub fn calcium_fitted_params_json(report: &CalciumFitReport) -> serde_json::Value {
    serde_json::json!({
        "format": "neurotwin-fitted-params/1",
        "model": report.model,
        "values": report.fitted_params,
        "raw": report.fitted.raw,
        "blocks": report.fitted.blocks,
    })
}

fn history_csv(history: &[HistoryRow]) -> String {
    let mut s = String::from("fit,restart,epoch,train_loss,val_loss,lr,seconds,steps_per_s\n");
    for h in history {
        let e = &h.epoch;
        s += &format!(
            "{},{},{},{:e},{:e},{:e},{:.4},{:.3}\n",
            h.fit, h.restart, e.epoch, e.train_loss, e.val_loss, e.lr, e.seconds, e.steps_per_s
        );
    }
    s
}

fn opt_r(x: Option<f64>) -> String {
    x.map_or(String::new(), |v| format!("{v:.6}"))
}

/// Writes every output of a calcium fit into `dir`; returns the paths.
pub fn write_calcium_fit(dir: &Path, r: &CalciumFitReport) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut paths = Vec::new();
    let summary = dir.join("summary.json");
    write_text(&summary, &serde_json::to_string_pretty(r).map_err(|e| out_err(&summary, e))?)?;
    paths.push(summary);
    let fitted = dir.join("fitted_params.json");
    write_text(
        &fitted,
        &serde_json::to_string_pretty(&calcium_fitted_params_json(r)).map_err(|e| out_err(&fitted, e))?,
    )?;
    paths.push(fitted);
    let hist = dir.join("fit_history.csv");
    write_text(&hist, &history_csv(&r.history))?;
    paths.push(hist);

    let neurons = dir.join("neurons.csv");
    let mut s = String::from(
        "worm,set,neuron,n_direct_inputs,best_driven_neuron,r_fitted,r_unfitted,r_direct_wiring,r_ridge,r_best_driven\n",
    );
    for n in &r.neurons {
        s += &format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            n.worm,
            n.set,
            n.neuron,
            n.n_direct_inputs,
            n.best_driven_neuron.as_deref().unwrap_or(""),
            opt_r(n.r_fitted),
            opt_r(n.r_unfitted),
            opt_r(n.r_direct),
            opt_r(n.r_ridge),
            opt_r(n.r_best_driven)
        );
    }
    write_text(&neurons, &s)?;
    paths.push(neurons);

    crate::plot::ensure_font();
    let loss = dir.join("loss.png");
    png(&loss, |p| draw_loss_history(p, &r.name, &r.history))?;
    paths.push(loss);
    let traces = dir.join("heldout_traces.png");
    png(&traces, |p| draw_traces(p, r))?;
    paths.push(traces);
    Ok(paths)
}

/// Train and validation loss per epoch (log10) of every restart of the fit labelled `final`.
fn draw_loss_history(path: &Path, name: &str, history: &[HistoryRow]) -> Result<(), Box<dyn std::error::Error>> {
    let fin: Vec<&HistoryRow> = history.iter().filter(|h| h.fit == "final").collect();
    let restarts = fin.iter().map(|h| h.restart).max().map_or(1, |m| m + 1);
    let ys: Vec<f64> =
        fin.iter().flat_map(|h| [h.epoch.train_loss, h.epoch.val_loss]).filter(|v| v.is_finite() && *v > 0.0).collect();
    let (lo, hi) = ys.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo.log10() - 0.1, hi.log10() + 0.1) } else { (-3.0, 0.0) };
    let max_epoch = fin.iter().map(|h| h.epoch.epoch).max().unwrap_or(1) as f64;
    let root = BitMapBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{name}: loss per epoch (log10)"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_epoch + 1.0, lo..hi)?;
    chart.configure_mesh().x_desc("epoch").y_desc("log10 mean squared error").draw()?;
    let train = RGBColor(0, 114, 178);
    let val = RGBColor(213, 94, 0);
    for restart in 0..restarts {
        let of = |f: fn(&HistoryRow) -> f64| -> Vec<(f64, f64)> {
            fin.iter()
                .filter(|h| h.restart == restart)
                .map(|h| (h.epoch.epoch as f64, f(h)))
                .filter(|p| p.1.is_finite() && p.1 > 0.0)
                .map(|(x, y)| (x, y.log10()))
                .collect()
        };
        let s = chart.draw_series(LineSeries::new(of(|h| h.epoch.train_loss), train.stroke_width(2)))?;
        if restart == 0 {
            s.label("training").legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], train.stroke_width(2)));
        }
        let s = chart.draw_series(LineSeries::new(of(|h| h.epoch.val_loss), val.stroke_width(2)))?;
        if restart == 0 {
            s.label("validation").legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], val.stroke_width(2)));
        }
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// Indices of the panels shown: two best, two around the median and two worst by the fitted r.
fn chosen_panels(panels: &[TracePanel]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..panels.len()).filter(|&k| panels[k].r_fitted.is_some()).collect();
    order.sort_by(|&a, &b| panels[b].r_fitted.unwrap_or(0.0).total_cmp(&panels[a].r_fitted.unwrap_or(0.0)));
    let m = order.len();
    let mut pick: Vec<usize> = Vec::new();
    let mid = m / 2;
    for k in [0, 1, mid.saturating_sub(1), mid, m.saturating_sub(2), m.saturating_sub(1)] {
        if k < m && !pick.contains(&order[k]) {
            pick.push(order[k]);
        }
    }
    pick
}

fn draw_traces(path: &Path, r: &CalciumFitReport) -> Result<(), Box<dyn std::error::Error>> {
    let pick = chosen_panels(&r.traces);
    let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(36);
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    title.titled(
        &format!(
            "{}: held-out neurons of test worms (black recorded, blue fitted twin, grey unfitted); median r fitted {}, unfitted {}",
            r.name,
            fmt(r.get(super::calcium_fit::FITTED).and_then(|s| s.median_r)),
            fmt(r.get(super::calcium_fit::UNFITTED).and_then(|s| s.median_r))
        ),
        ("sans-serif", 16),
    )?;
    let areas = body.split_evenly((3, 2));
    for (area, &k) in areas.iter().zip(&pick) {
        let p = &r.traces[k];
        let t_max = p.time_s.last().copied().unwrap_or(1.0).max(1e-9);
        let all = p.recorded.iter().chain(&p.fitted).chain(&p.unfitted).filter(|v| v.is_finite());
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (-1.0, 1.0) };
        let pad = 0.05 * (hi - lo);
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{} {}: r fitted {}, unfitted {}", p.worm, p.neuron, fmt(p.r_fitted), fmt(p.r_unfitted)),
                ("sans-serif", 15),
            )
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..t_max, lo - pad..hi + pad)?;
        chart.configure_mesh().x_desc("time (s)").y_desc("trace").x_labels(6).y_labels(5).draw()?;
        let line = |v: &[f64]| -> Vec<(f64, f64)> {
            p.time_s.iter().zip(v).filter(|(_, y)| y.is_finite()).map(|(&t, &y)| (t, y)).collect()
        };
        chart.draw_series(LineSeries::new(line(&p.unfitted), RGBColor(160, 160, 160).stroke_width(1)))?;
        chart.draw_series(LineSeries::new(line(&p.recorded), BLACK.stroke_width(1)))?;
        chart.draw_series(LineSeries::new(line(&p.fitted), RGBColor(0, 114, 178).stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}
