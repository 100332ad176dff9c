//! CPU gradients of the U-Net layers (rayon), in the summation order of `kernels/cuda/cnn_train.cu` so that
//! the CPU and the kernels give bit-identical gradients: every product and sum rounded to f32 separately (no
//! FMA), each accumulator starting at 0 and adding its terms in the order stated per function. Parallel work
//! is split only over outputs, never inside one sum, so results do not depend on the thread count.

use rayon::prelude::*;

use super::{Conv3d, Tensor};

/// `∂L/∂input` of a 'same' convolution from `∂L/∂output` (`gout`, `out_channels` channels):
/// `gin(ci, z, y, x) = Σ_co Σ_dz Σ_dy Σ_dx w[co, ci, dz, dy, dx] · gout(co, z − dz + pz, y − dy + py, x − dx + px)`
/// in this nesting order, terms outside the volume skipped (the kernel `cnn_conv3d_grad_input`).
pub fn conv_grad_input(conv: &Conv3d, gout: &Tensor) -> Tensor {
    let [nz, ny, nx] = gout.dims();
    let (cin, cout) = (conv.in_channels(), conv.out_channels());
    let plane = ny * nx;
    let vol = nz * plane;
    let mut gin = Tensor::zeros([cin, nz, ny, nx]);
    if vol == 0 {
        return gin;
    }
    let [kz, ky, kx] = conv.kernel();
    let (pz, py, px) = ((kz - 1) / 2, (ky - 1) / 2, (kx - 1) / 2);
    let taps = kz * ky * kx;
    let (w, g) = (conv.weight(), gout.data());
    gin.data_mut().par_chunks_mut(plane).enumerate().for_each(|(p, gin_plane)| {
        let (ci, z) = (p / nz, p % nz);
        for co in 0..cout {
            let wc = &w[(co * cin + ci) * taps..][..taps];
            let gc = &g[co * vol..][..vol];
            for dz in 0..kz {
                // oz = z − dz + pz in [0, nz).
                let Some(oz) = (z + pz).checked_sub(dz).filter(|&oz| oz < nz) else { continue };
                for y in 0..ny {
                    let gin_row = &mut gin_plane[y * nx..][..nx];
                    for dy in 0..ky {
                        let Some(oy) = (y + py).checked_sub(dy).filter(|&oy| oy < ny) else { continue };
                        let g_row = &gc[oz * plane + oy * nx..][..nx];
                        for dx in 0..kx {
                            let wv = wc[(dz * ky + dy) * kx + dx];
                            // ox = x − dx + px in [0, nx)  <=>  x in [dx − px, nx + dx − px).
                            let x_lo = dx.saturating_sub(px);
                            let x_hi = (nx + dx).saturating_sub(px).min(nx);
                            if x_lo >= x_hi {
                                continue;
                            }
                            let src = &g_row[x_lo + px - dx..x_hi + px - dx];
                            for (o, &v) in gin_row[x_lo..x_hi].iter_mut().zip(src) {
                                *o += wv * v;
                            }
                        }
                    }
                }
            }
        }
    });
    gin
}

/// Adds `∂L/∂weight` and `∂L/∂bias` of a 'same' convolution with input `input` and output gradient `gout` onto
/// `gw` (`[out, in, kz, ky, kx]`) and `gb` (`[out]`). Per weight and output plane z the partial sum runs over
/// y, then x (terms outside the volume skipped; the kernel `cnn_conv3d_grad_weight_planes`), per bias and plane
/// over y, x (`cnn_bias_grad_planes`); the planes are then added onto the gradient in z order
/// (`cnn_sum_planes_acc`).
pub fn conv_grad_params(conv: &Conv3d, input: &Tensor, gout: &Tensor, gw: &mut [f32], gb: &mut [f32]) {
    let [nz, ny, nx] = gout.dims();
    let (cin, cout) = (conv.in_channels(), conv.out_channels());
    let [kz, ky, kx] = conv.kernel();
    let taps = kz * ky * kx;
    assert_eq!(gw.len(), cout * cin * taps, "weight gradient length");
    assert_eq!(gb.len(), cout, "bias gradient length");
    assert_eq!(input.dims(), gout.dims(), "input and output gradient dims");
    let (pz, py, px) = ((kz - 1) / 2, (ky - 1) / 2, (kx - 1) / 2);
    let plane = ny * nx;
    let vol = nz * plane;
    if vol == 0 {
        return;
    }
    let (inp, g) = (input.data(), gout.data());
    // partial[((co·cin + ci)·nz + z)·taps + tap]: one task per (co, ci, z) holds all taps of that plane.
    let mut partial = vec![0f32; cout * cin * nz * taps];
    partial.par_chunks_mut(taps).enumerate().for_each(|(task, acc)| {
        let (pair, z) = (task / nz, task % nz);
        let (co, ci) = (pair / cin, pair % cin);
        let gp = &g[co * vol + z * plane..][..plane];
        let ic = &inp[ci * vol..][..vol];
        for dz in 0..kz {
            let Some(iz) = (z + dz).checked_sub(pz).filter(|&iz| iz < nz) else { continue };
            for y in 0..ny {
                let g_row = &gp[y * nx..][..nx];
                for dy in 0..ky {
                    let Some(iy) = (y + dy).checked_sub(py).filter(|&iy| iy < ny) else { continue };
                    let in_row = &ic[iz * plane + iy * nx..][..nx];
                    let a = &mut acc[(dz * ky + dy) * kx..][..kx];
                    grad_row(a, g_row, in_row, px);
                }
            }
        }
    });
    // Plane sums in z order, per weight.
    gw.par_iter_mut().enumerate().for_each(|(widx, o)| {
        let (pair, tap) = (widx / taps, widx % taps);
        let mut s = *o;
        for z in 0..nz {
            s += partial[(pair * nz + z) * taps + tap];
        }
        *o = s;
    });
    gb.par_iter_mut().enumerate().for_each(|(co, o)| {
        let mut s = *o;
        for z in 0..nz {
            let mut p = 0f32;
            for &v in &g[co * vol + z * plane..][..plane] {
                p += v;
            }
            s += p;
        }
        *o = s;
    });
}

/// One row's terms of the kx weight gradients of one (dz, dy): `a[dx] += g[x] · in[x + dx − px]` for x ascending
/// (terms with the input index outside the row skipped). The x loop is outermost so that the kx sums proceed
/// side by side, each still in x order.
#[inline]
fn grad_row(a: &mut [f32], g_row: &[f32], in_row: &[f32], px: usize) {
    let nx = g_row.len();
    let kx = a.len();
    // All taps are inside for x in [px, nx + px − (kx − 1)).
    let inner_lo = px.min(nx);
    let inner_hi = (nx + px).saturating_sub(kx - 1).max(inner_lo).min(nx);
    let edge = |a: &mut [f32], x: usize| {
        for (dx, ad) in a.iter_mut().enumerate() {
            if let Some(ix) = (x + dx).checked_sub(px).filter(|&ix| ix < nx) {
                *ad += g_row[x] * in_row[ix];
            }
        }
    };
    for x in 0..inner_lo {
        edge(a, x);
    }
    if kx == 3 {
        let (mut a0, mut a1, mut a2) = (a[0], a[1], a[2]);
        for x in inner_lo..inner_hi {
            let gv = g_row[x];
            let s = &in_row[x - px..x - px + 3];
            a0 += gv * s[0];
            a1 += gv * s[1];
            a2 += gv * s[2];
        }
        (a[0], a[1], a[2]) = (a0, a1, a2);
    } else {
        for x in inner_lo..inner_hi {
            let gv = g_row[x];
            let s = &in_row[x - px..x - px + kx];
            for (ad, &v) in a.iter_mut().zip(s) {
                *ad += gv * v;
            }
        }
    }
    for x in inner_hi.max(inner_lo)..nx {
        edge(a, x);
    }
}

/// ReLU backward in place: `g = if y > 0 { g } else { 0 }` with `y` the ReLU's output (`cnn_relu_backward`).
pub fn relu_backward(y: &Tensor, g: &mut Tensor) {
    g.data_mut().par_iter_mut().zip(y.data().par_iter()).for_each(|(gv, &yv)| {
        if yv.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            *gv = 0.0;
        }
    });
}

/// Max-pool backward: each window's gradient goes to the element the forward pass chose (the first maximum in
/// z, y, x scan order with `if v > m`); every other element gets 0 (`cnn_maxpool3d_backward`). `input` is the
/// pooled tensor (fine), `gout` the gradient of the pooled output (coarse).
pub fn maxpool_backward(factor: [usize; 3], input: &Tensor, gout: &Tensor) -> Tensor {
    let d = input.dims();
    let f = factor;
    let od = gout.dims();
    assert_eq!(od, [d[0] / f[0], d[1] / f[1], d[2] / f[2]], "pooled dims");
    let c = input.channels();
    let mut gin = Tensor::zeros([c, d[0], d[1], d[2]]);
    let (inp, g) = (input.data(), gout.data());
    if od.contains(&0) {
        return gin;
    }
    // One task per (channel, coarse z, coarse y) finds each window's chosen element; the gradients are then
    // placed there (every other element stays 0).
    let tasks = c * od[0] * od[1];
    let chosen: Vec<Vec<(usize, f32)>> = (0..tasks)
        .into_par_iter()
        .map(|r| {
            let (ch, z, y) = (r / (od[0] * od[1]), (r / od[1]) % od[0], r % od[1]);
            let base = |zz: usize, yy: usize| ((ch * d[0] + zz) * d[1] + yy) * d[2];
            let mut hits = Vec::with_capacity(od[2]);
            for x in 0..od[2] {
                let mut arg = base(z * f[0], y * f[1]) + x * f[2];
                let mut m = inp[arg];
                for dz in 0..f[0] {
                    for dy in 0..f[1] {
                        let b = base(z * f[0] + dz, y * f[1] + dy) + x * f[2];
                        for (i, &v) in inp[b..b + f[2]].iter().enumerate() {
                            if v > m {
                                m = v;
                                arg = b + i;
                            }
                        }
                    }
                }
                hits.push((arg, g[(r * od[2]) + x]));
            }
            hits
        })
        .collect();
    let out = gin.data_mut();
    for (i, v) in chosen.into_iter().flatten() {
        out[i] = v;
    }
    gin
}

/// Nearest-upsampling backward: each coarse element's gradient is the sum over its window of the fine
/// gradient, in dz, dy, dx order (`cnn_upsample_nearest3d_backward`). `gout` is fine, the result coarse.
pub fn upsample_backward(factor: [usize; 3], gout: &Tensor) -> Tensor {
    let f = factor;
    let ud = gout.dims();
    let d = [ud[0] / f[0], ud[1] / f[1], ud[2] / f[2]];
    let c = gout.channels();
    let mut gin = Tensor::zeros([c, d[0], d[1], d[2]]);
    if gin.data().is_empty() {
        return gin;
    }
    let g = gout.data();
    gin.data_mut().par_chunks_mut(d[2]).enumerate().for_each(|(r, row)| {
        let (ch, z, y) = (r / (d[0] * d[1]), (r / d[1]) % d[0], r % d[1]);
        for (x, o) in row.iter_mut().enumerate() {
            let mut s = 0f32;
            for dz in 0..f[0] {
                for dy in 0..f[1] {
                    let b = ((ch * ud[0] + z * f[0] + dz) * ud[1] + y * f[1] + dy) * ud[2] + x * f[2];
                    for &v in &g[b..b + f[2]] {
                        s += v;
                    }
                }
            }
            *o = s;
        }
    });
    gin
}

/// Splits a channel-concatenated gradient `[a; b]` into its first `ca` channels and the rest.
pub fn split_channels(g: &Tensor, ca: usize) -> (Tensor, Tensor) {
    let d = g.dims();
    let n = ca * g.voxels();
    let (a, b) = g.data().split_at(n);
    (
        Tensor::new([ca, d[0], d[1], d[2]], a.to_vec()).expect("split shape"),
        Tensor::new([g.channels() - ca, d[0], d[1], d[2]], b.to_vec()).expect("split shape"),
    )
}

/// `dst += src` elementwise (`cnn_add_inplace`).
pub fn add_inplace(src: &Tensor, dst: &mut Tensor) {
    assert_eq!(src.shape(), dst.shape(), "add shapes");
    dst.data_mut().par_iter_mut().zip(src.data().par_iter()).for_each(|(d, &s)| *d += s);
}
