//! CPU layers (rayon): 'same' 3D convolution, ReLU, sigmoid, max pooling, nearest upsampling, channel
//! concatenation. The operation order matches `kernels/cuda/cnn.cu` exactly (see the module docs).

use rayon::prelude::*;

use super::{CnnError, Tensor};

/// A 3D convolution, stride 1, 'same' zero padding (origin offset `(k - 1) / 2` per axis).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv3d {
    in_channels: usize,
    out_channels: usize,
    kernel: [usize; 3],
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv3d {
    /// `weight` is `[out, in, kz, ky, kx]` row-major, `bias` `[out]`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 3],
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<Self, CnnError> {
        if in_channels == 0 || out_channels == 0 || kernel.contains(&0) {
            return Err(CnnError::Shape(format!(
                "Conv3d needs channels and kernel sizes > 0 (in {in_channels}, out {out_channels}, kernel {kernel:?})"
            )));
        }
        let n = out_channels * in_channels * kernel.iter().product::<usize>();
        if weight.len() != n || bias.len() != out_channels {
            return Err(CnnError::Shape(format!(
                "Conv3d {in_channels}→{out_channels} kernel {kernel:?} needs {n} weights and {out_channels} biases, got \
                 {} and {}",
                weight.len(),
                bias.len()
            )));
        }
        Ok(Self { in_channels, out_channels, kernel, weight, bias })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// `[kz, ky, kx]`.
    pub fn kernel(&self) -> [usize; 3] {
        self.kernel
    }

    /// `[out, in, kz, ky, kx]` row-major.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// `[out]`.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Weights and biases, mutable (training).
    pub(crate) fn params_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.weight, &mut self.bias)
    }

    /// The convolution of `x` (`in_channels` channels); rayon over (output channel, z) planes.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, CnnError> {
        if x.channels() != self.in_channels {
            return Err(CnnError::Shape(format!(
                "Conv3d expects {} input channels, got {}",
                self.in_channels,
                x.channels()
            )));
        }
        let [nz, ny, nx] = x.dims();
        let plane = ny * nx;
        let vol = nz * plane;
        let mut out = Tensor::zeros([self.out_channels, nz, ny, nx]);
        if vol == 0 {
            return Ok(out);
        }
        let [kz, ky, kx] = self.kernel;
        let (pz, py, px) = ((kz - 1) / 2, (ky - 1) / 2, (kx - 1) / 2);
        let taps = kz * ky * kx;
        let input = x.data();
        out.data_mut().par_chunks_mut(plane).enumerate().for_each(|(p, out_plane)| {
            let (co, z) = (p / nz, p % nz);
            out_plane.fill(self.bias[co]);
            for ci in 0..self.in_channels {
                let wc = &self.weight[(co * self.in_channels + ci) * taps..][..taps];
                let ic = &input[ci * vol..][..vol];
                for dz in 0..kz {
                    // iz = z + dz - pz, skipped outside [0, nz).
                    let Some(iz) = (z + dz).checked_sub(pz).filter(|&iz| iz < nz) else { continue };
                    for y in 0..ny {
                        let out_row = &mut out_plane[y * nx..][..nx];
                        for dy in 0..ky {
                            let Some(iy) = (y + dy).checked_sub(py).filter(|&iy| iy < ny) else { continue };
                            let in_row = &ic[iz * plane + iy * nx..][..nx];
                            for dx in 0..kx {
                                let w = wc[(dz * ky + dy) * kx + dx];
                                // ix = x + dx - px in [0, nx)  <=>  x in [px - dx, nx + px - dx).
                                let x_lo = px.saturating_sub(dx);
                                let x_hi = (nx + px).saturating_sub(dx).min(nx);
                                if x_lo >= x_hi {
                                    continue;
                                }
                                let src = &in_row[x_lo + dx - px..x_hi + dx - px];
                                for (o, &v) in out_row[x_lo..x_hi].iter_mut().zip(src) {
                                    *o += w * v;
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok(out)
    }
}

/// ReLU in place: `x = if x > 0 { x } else { 0 }` (NaN → 0, as the kernel).
pub fn relu(x: &mut Tensor) {
    x.data_mut().par_iter_mut().for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 });
}

/// The deterministic exponential shared with the spiking models and `cuda/detmath.cuh`
/// (`neurotwin_models::detmath::exp`): separately rounded operations only, so host and device agree.
pub use neurotwin_models::detmath::exp as det_exp;

/// The logistic function of one value: `(1 / (1 + det_exp(-x)))` in f64, rounded once to f32; NaN is returned
/// unchanged (bit for bit, as the kernel does).
pub fn sigmoid_f32(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    (1.0 / (1.0 + det_exp(-f64::from(x)))) as f32
}

/// Sigmoid in place ([`sigmoid_f32`]).
pub fn sigmoid(x: &mut Tensor) {
    x.data_mut().par_iter_mut().for_each(|v| *v = sigmoid_f32(*v));
}

/// Max pooling with window = stride = `factor` (`[fz, fy, fx]`, e.g. `[1, 2, 2]` for anisotropic EM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool3d {
    /// Per-axis factor.
    pub factor: [usize; 3],
}

impl MaxPool3d {
    /// Pools `x`, whose dimensions must be multiples of the factors; each output is the maximum of its window
    /// scanned z, y, x from the window's first element with `if v > m { m = v }`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, CnnError> {
        let f = self.factor;
        let d = x.dims();
        if f.contains(&0) || (0..3).any(|a| !d[a].is_multiple_of(f[a])) {
            return Err(CnnError::Shape(format!("MaxPool3d factor {f:?} must be > 0 and divide the dims {d:?}")));
        }
        let od = [d[0] / f[0], d[1] / f[1], d[2] / f[2]];
        let c = x.channels();
        let mut out = Tensor::zeros([c, od[0], od[1], od[2]]);
        let orow = od[2];
        if out.data().is_empty() {
            return Ok(out);
        }
        let input = x.data();
        out.data_mut().par_chunks_mut(orow).enumerate().for_each(|(r, row)| {
            let (ch, z, y) = (r / (od[0] * od[1]), (r / od[1]) % od[0], r % od[1]);
            let base = |zz: usize, yy: usize| ((ch * d[0] + zz) * d[1] + yy) * d[2];
            for (x, o) in row.iter_mut().enumerate() {
                let mut m = input[base(z * f[0], y * f[1]) + x * f[2]];
                for dz in 0..f[0] {
                    for dy in 0..f[1] {
                        let b = base(z * f[0] + dz, y * f[1] + dy) + x * f[2];
                        for &v in &input[b..b + f[2]] {
                            if v > m {
                                m = v;
                            }
                        }
                    }
                }
                *o = m;
            }
        });
        Ok(out)
    }
}

/// Nearest-neighbour upsampling by a per-axis factor: `out(c, z, y, x) = in(c, z / fz, y / fy, x / fx)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsample {
    /// Per-axis factor.
    pub factor: [usize; 3],
}

impl Upsample {
    /// Upsamples `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, CnnError> {
        let f = self.factor;
        if f.contains(&0) {
            return Err(CnnError::Shape(format!("Upsample factor {f:?} must be > 0")));
        }
        let d = x.dims();
        let ud = [d[0] * f[0], d[1] * f[1], d[2] * f[2]];
        let c = x.channels();
        let mut out = Tensor::zeros([c, ud[0], ud[1], ud[2]]);
        if out.data().is_empty() {
            return Ok(out);
        }
        let input = x.data();
        out.data_mut().par_chunks_mut(ud[2]).enumerate().for_each(|(r, row)| {
            let (ch, z, y) = (r / (ud[0] * ud[1]), (r / ud[1]) % ud[0], r % ud[1]);
            let src = &input[((ch * d[0] + z / f[0]) * d[1] + y / f[1]) * d[2]..][..d[2]];
            for (x, o) in row.iter_mut().enumerate() {
                *o = src[x / f[2]];
            }
        });
        Ok(out)
    }
}

/// Concatenation along channels: `[a; b]` (same spatial dimensions).
pub fn concat(a: &Tensor, b: &Tensor) -> Result<Tensor, CnnError> {
    if a.dims() != b.dims() {
        return Err(CnnError::Shape(format!("concat of dims {:?} and {:?}", a.dims(), b.dims())));
    }
    let mut data = Vec::with_capacity(a.data().len() + b.data().len());
    data.extend_from_slice(a.data());
    data.extend_from_slice(b.data());
    let d = a.dims();
    Tensor::new([a.channels() + b.channels(), d[0], d[1], d[2]], data)
}
