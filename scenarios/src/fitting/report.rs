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

use super::atlas_fit::{AtlasFitReport, PairRow};
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
