//! Output files: learned weights and reconstructions (HDF5), energy traces (CSV) and receptive fields (PNG).

use std::path::Path;

use plotters::prelude::*;

use crate::PcError;
use crate::csr::Csr;

fn herr(path: &Path) -> impl Fn(hdf5::Error) -> PcError + '_ {
    move |e| PcError::Output(format!("{}: {e}", path.display()))
}

/// `weights.h5`: group `W{l}` per weight matrix with `row_ptr`, `col_idx`, `values` (CSR) and attributes
/// `rows`, `cols`; plus `dense` (rows × cols) when the matrix has at most 2^22 cells.
pub fn write_weights(path: &Path, weights: &[Csr]) -> Result<(), PcError> {
    let e = herr(path);
    let f = hdf5::File::create(path).map_err(&e)?;
    for (l, w) in weights.iter().enumerate() {
        let g = f.create_group(&format!("W{l}")).map_err(&e)?;
        g.new_dataset_builder().with_data(&w.row_ptr).create("row_ptr").map_err(&e)?;
        g.new_dataset_builder().with_data(&w.col_idx).create("col_idx").map_err(&e)?;
        g.new_dataset_builder().with_data(&w.vals).create("values").map_err(&e)?;
        g.new_attr::<u64>().create("rows").and_then(|a| a.write_scalar(&(w.rows as u64))).map_err(&e)?;
        g.new_attr::<u64>().create("cols").and_then(|a| a.write_scalar(&(w.cols as u64))).map_err(&e)?;
        if w.rows * w.cols <= 1 << 22 {
            let d = w.to_dense();
            g.new_dataset::<f64>()
                .shape([w.rows, w.cols])
                .create("dense")
                .and_then(|ds| ds.write_raw(&d))
                .map_err(&e)?;
        }
    }
    Ok(())
}

/// `reconstructions.h5`: `input` and `reconstruction` (`batch × size_0`, the prediction `mu_0` after inference)
/// and `code` (`batch × size_1`, the first hidden layer).
pub fn write_reconstructions(
    path: &Path,
    batch: usize,
    input: &[f64],
    reconstruction: &[f64],
    code: &[f64],
) -> Result<(), PcError> {
    let e = herr(path);
    let f = hdf5::File::create(path).map_err(&e)?;
    for (name, d) in [("input", input), ("reconstruction", reconstruction), ("code", code)] {
        f.new_dataset::<f64>()
            .shape([batch, d.len() / batch.max(1)])
            .create(name)
            .and_then(|ds| ds.write_raw(d))
            .map_err(&e)?;
    }
    Ok(())
}

/// A CSV file with a header and rows.
pub fn write_csv(path: &Path, header: &str, rows: impl IntoIterator<Item = String>) -> Result<(), PcError> {
    let mut s = String::from(header);
    s.push('\n');
    for r in rows {
        s.push_str(&r);
        s.push('\n');
    }
    std::fs::write(path, s).map_err(|e| PcError::Output(format!("{}: {e}", path.display())))
}

/// Receptive fields as a grid of `p × p` gray tiles (each scaled to its own maximum |w|: mid-gray 0, white
/// positive, black negative), `zoom` pixels per weight, 1-weight gaps.
pub fn write_fields_png(path: &Path, fields: &[Vec<f64>], p: usize, zoom: u32) -> Result<(), PcError> {
    let n = fields.len().max(1);
    let gc = (n as f64).sqrt().ceil() as usize;
    let gr = n.div_ceil(gc);
    let cell = (p as u32 + 1) * zoom;
    let (w, h) = (gc as u32 * cell + zoom, gr as u32 * cell + zoom);
    let err = |e: &dyn std::fmt::Display| PcError::Output(format!("{}: {e}", path.display()));
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&RGBColor(60, 60, 60)).map_err(|e| err(&e))?;
    for (t, f) in fields.iter().enumerate() {
        let (ty, tx) = (t / gc, t % gc);
        let m = f.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
        for y in 0..p {
            for x in 0..p {
                let g = (127.5 + 127.5 * f[y * p + x] / m).clamp(0.0, 255.0) as u8;
                let x0 = (tx as u32 * cell + zoom + x as u32 * zoom) as i32;
                let y0 = (ty as u32 * cell + zoom + y as u32 * zoom) as i32;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + zoom as i32, y0 + zoom as i32)],
                    RGBColor(g, g, g).filled(),
                ))
                .map_err(|e| err(&e))?;
            }
        }
    }
    root.present().map_err(|e| err(&e))
}
