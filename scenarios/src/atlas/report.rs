//! Outputs of the propagation comparison: `atlas_summary.json` (every score), `atlas_pairs.csv` (one row
//! per scored pair and strain) and `atlas_roc.png` (ROC curves of the model and the anatomy baselines per
//! strain). Every file is written to a temporary file and renamed.

use std::io::Write;
use std::path::Path;

use neurotwin_sim::SimError;
use neurotwin_sim::output::write_atomically;
use plotters::prelude::*;

use super::AtlasReport;
use super::score::{ScoredPair, StrainScore};

fn out_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Output { path: path.into(), message: e.to_string() }
}

/// Writes the three outputs into `dir`; returns their paths.
pub fn write_report(dir: &Path, report: &AtlasReport) -> Result<Vec<std::path::PathBuf>, SimError> {
    let json = dir.join("atlas_summary.json");
    write_atomically(&json, |tmp| {
        let text = serde_json::to_string_pretty(report).map_err(|e| out_err(&json, e))?;
        std::fs::write(tmp, text).map_err(|e| out_err(&json, e))
    })?;
    let csv = dir.join("atlas_pairs.csv");
    write_atomically(&csv, |tmp| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(tmp).map_err(|e| out_err(&csv, e))?);
        let mut w = || -> std::io::Result<()> {
            writeln!(f, "strain,stimulated,responder,measured_dff,q,is_responder,predicted,direct_strength,hops")?;
            for s in &report.strains {
                for p in &s.pairs {
                    let hops = p.hops.map_or(String::new(), |h| h.to_string());
                    writeln!(
                        f,
                        "{},{},{},{},{},{},{:e},{},{}",
                        s.strain,
                        p.stimulated,
                        p.responder,
                        p.measured_dff,
                        p.q,
                        p.is_responder,
                        p.predicted,
                        p.direct_strength,
                        hops
                    )?;
                }
            }
            f.flush()
        };
        w().map_err(|e| out_err(&csv, e))
    })?;
    let png = dir.join("atlas_roc.png");
    roc_png(&png, &report.strains)?;
    Ok(vec![json, csv, png])
}

/// ROC curve (false-positive rate, true-positive rate) of `score` for the responders of `pairs`; ties are
/// taken together (one diagonal step).
pub fn roc_curve(pairs: &[ScoredPair], score: impl Fn(&ScoredPair) -> f64) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, bool)> =
        pairs.iter().map(|p| (score(p), p.is_responder)).filter(|x| x.0.is_finite()).collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n_pos = v.iter().filter(|x| x.1).count().max(1) as f64;
    let n_neg = v.iter().filter(|x| !x.1).count().max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut out = vec![(0.0, 0.0)];
    let mut k = 0;
    while k < v.len() {
        let mut e = k;
        while e < v.len() && v[e].0 == v[k].0 {
            if v[e].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            e += 1;
        }
        out.push((fp / n_neg, tp / n_pos));
        k = e;
    }
    out
}

fn roc_png(path: &Path, strains: &[StrainScore]) -> Result<(), SimError> {
    crate::plot::ensure_font();
    write_atomically(path, |tmp| {
        let tmp_png = tmp.with_extension("png");
        draw_roc(&tmp_png, strains).map_err(|e| out_err(path, e))?;
        std::fs::rename(&tmp_png, tmp).map_err(|e| out_err(path, e))
    })
}

/// A ROC curve to draw: label, AUC, colour, score of a pair.
type Curve<'a> = (&'a str, Option<f64>, RGBColor, Box<dyn Fn(&ScoredPair) -> f64>);

fn draw_roc(path: &Path, strains: &[StrainScore]) -> Result<(), Box<dyn std::error::Error>> {
    let w = 520 * strains.len().max(1) as u32;
    let root = BitMapBackend::new(path, (w, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, strains.len().max(1)));
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    for (area, s) in panels.iter().zip(strains) {
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{}: {} responders / {} pairs", s.strain, s.n_responders, s.n_pairs), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart.configure_mesh().x_desc("false-positive rate").y_desc("true-positive rate").draw()?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
        let curves: [Curve; 3] = [
            ("simulated |response|", s.auc_model, RGBColor(213, 94, 0), Box::new(|p: &ScoredPair| p.predicted.abs())),
            ("direct wiring", s.auc_direct, RGBColor(0, 114, 178), Box::new(|p: &ScoredPair| p.direct_strength)),
            (
                "-hops",
                s.auc_hops,
                RGBColor(0, 158, 115),
                Box::new(|p: &ScoredPair| p.hops.map_or(-1e9, |h| -(h as f64))),
            ),
        ];
        for (label, auc, colour, f) in curves {
            chart
                .draw_series(LineSeries::new(roc_curve(&s.pairs, f), colour.stroke_width(2)))?
                .label(format!("{label} (AUC {})", fmt(auc)))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    }
    root.present()?;
    Ok(())
}
