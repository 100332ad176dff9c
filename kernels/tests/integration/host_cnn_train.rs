//! The U-Net training kernels of `cuda/cnn_train.cu`, compiled for the host, against plain Rust written here:
//! naive nested loops in the kernels' documented summation order (so equal bit for bit) for the convolution's
//! input, weight and bias gradients (odd, even, anisotropic and larger-than-volume kernels, so boundary taps are
//! covered), the plane sums, ReLU / max pooling (with ties) / upsampling backward, gradient addition, the BCE
//! logit gradient (including ±0, ±inf and NaN) and two Adam steps; central finite differences of the forward
//! kernel `cnn_conv3d_same` for the convolution gradients; and the length checks of the safe wrappers.

use neurotwin_kernels::host::{
    AdamStep, cnn_adam, cnn_add_inplace, cnn_bce_logit_grad, cnn_bias_grad_planes, cnn_conv3d_grad_input,
    cnn_conv3d_grad_weight_planes, cnn_conv3d_same, cnn_maxpool3d, cnn_maxpool3d_backward, cnn_relu_backward,
    cnn_sigmoid, cnn_sum_planes_acc, cnn_upsample_nearest3d, cnn_upsample_nearest3d_backward,
};

fn values(seed: u64, n: usize) -> Vec<f32> {
    // Counter-based: x_i = frac(i · golden + seed · sqrt2) mapped to [-1, 1).
    (0..n)
        .map(|i| {
            ((i as f64 * 0.618_033_988_749_895 + seed as f64 * std::f64::consts::SQRT_2).fract() * 2.0 - 1.0) as f32
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn vol(d: [usize; 3]) -> usize {
    d[0] * d[1] * d[2]
}

/// Shapes (cin, cout, dims, kernel): odd cubic, anisotropic, even, and kernels larger than the volume.
const CASES: &[(usize, usize, [usize; 3], [usize; 3])] = &[
    (2, 3, [3, 5, 7], [1, 3, 3]),
    (2, 3, [3, 5, 7], [3, 3, 3]),
    (2, 3, [3, 5, 7], [2, 2, 2]),
    (1, 1, [1, 1, 1], [1, 1, 1]),
    (3, 2, [2, 6, 5], [1, 3, 5]),
    (1, 2, [2, 2, 3], [5, 7, 3]),
    (2, 2, [4, 3, 5], [2, 4, 2]),
];

/// Input gradient: for each (ci, z, y, x), sum over co, dz, dy, dx of w · gout at (z - dz + pz, …).
fn grad_input_ref(cin: usize, cout: usize, d: [usize; 3], k: [usize; 3], gout: &[f32], w: &[f32]) -> Vec<f32> {
    let (nz, ny, nx) = (d[0] as i64, d[1] as i64, d[2] as i64);
    let p = [(k[0] as i64 - 1) / 2, (k[1] as i64 - 1) / 2, (k[2] as i64 - 1) / 2];
    let mut gin = Vec::with_capacity(cin * vol(d));
    for ci in 0..cin {
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let mut acc = 0.0f32;
                    for co in 0..cout {
                        for dz in 0..k[0] {
                            let oz = z - dz as i64 + p[0];
                            if oz < 0 || oz >= nz {
                                continue;
                            }
                            for dy in 0..k[1] {
                                let oy = y - dy as i64 + p[1];
                                if oy < 0 || oy >= ny {
                                    continue;
                                }
                                for dx in 0..k[2] {
                                    let ox = x - dx as i64 + p[2];
                                    if ox < 0 || ox >= nx {
                                        continue;
                                    }
                                    let wv = w[(((co * cin + ci) * k[0] + dz) * k[1] + dy) * k[2] + dx];
                                    let g = gout[(((co as i64 * nz + oz) * ny + oy) * nx + ox) as usize];
                                    acc += wv * g;
                                }
                            }
                        }
                    }
                    gin.push(acc);
                }
            }
        }
    }
    gin
}

/// Weight-gradient planes: at widx · nz + z, sum over y, x of gout(co, z, y, x) · in(ci, z + dz - pz, …).
fn grad_weight_planes_ref(
    cin: usize,
    cout: usize,
    d: [usize; 3],
    k: [usize; 3],
    input: &[f32],
    gout: &[f32],
) -> Vec<f32> {
    let (nz, ny, nx) = (d[0] as i64, d[1] as i64, d[2] as i64);
    let p = [(k[0] as i64 - 1) / 2, (k[1] as i64 - 1) / 2, (k[2] as i64 - 1) / 2];
    let at = |c: usize, z: i64, y: i64, x: i64| (((c as i64 * nz + z) * ny + y) * nx + x) as usize;
    let mut out = Vec::new();
    for co in 0..cout {
        for ci in 0..cin {
            for dz in 0..k[0] as i64 {
                for dy in 0..k[1] as i64 {
                    for dx in 0..k[2] as i64 {
                        for z in 0..nz {
                            let mut acc = 0.0f32;
                            let iz = z + dz - p[0];
                            if (0..nz).contains(&iz) {
                                for y in 0..ny {
                                    let iy = y + dy - p[1];
                                    if !(0..ny).contains(&iy) {
                                        continue;
                                    }
                                    for x in 0..nx {
                                        let ix = x + dx - p[2];
                                        if !(0..nx).contains(&ix) {
                                            continue;
                                        }
                                        acc += gout[at(co, z, y, x)] * input[at(ci, iz, iy, ix)];
                                    }
                                }
                            }
                            out.push(acc);
                        }
                    }
                }
            }
        }
    }
    out
}

fn bias_planes_ref(cout: usize, d: [usize; 3], gout: &[f32]) -> Vec<f32> {
    let mut out = Vec::new();
    for co in 0..cout {
        for z in 0..d[0] {
            let mut acc = 0.0f32;
            for y in 0..d[1] {
                for x in 0..d[2] {
                    acc += gout[((co * d[0] + z) * d[1] + y) * d[2] + x];
                }
            }
            out.push(acc);
        }
    }
    out
}

fn sum_planes_ref(nz: usize, partial: &[f32], out: &mut [f32]) {
    for (t, o) in out.iter_mut().enumerate() {
        for z in 0..nz {
            *o += partial[t * nz + z];
        }
    }
}

/// The logistic function as the Rust `sigmoid_f32` of `neurotwin_segment::cnn`.
fn sigmoid_ref(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    (1.0 / (1.0 + neurotwin_models::detmath::exp(-f64::from(x)))) as f32
}

#[test]
fn conv_grad_input_equals_rust_loops() {
    for (i, &(cin, cout, d, k)) in CASES.iter().enumerate() {
        let gout = values(i as u64 + 3, cout * vol(d));
        let w = values(i as u64 + 30, cout * cin * k.iter().product::<usize>());
        let mut gin = vec![f32::NAN; cin * vol(d)];
        cnn_conv3d_grad_input(cin, cout, d, k, &gout, &w, &mut gin);
        assert_eq!(bits(&gin), bits(&grad_input_ref(cin, cout, d, k, &gout, &w)), "case {i}");
    }
}

#[test]
fn conv_grad_weight_and_bias_planes_equal_rust_loops() {
    for (i, &(cin, cout, d, k)) in CASES.iter().enumerate() {
        let input = values(i as u64 + 5, cin * vol(d));
        let gout = values(i as u64 + 50, cout * vol(d));
        let nw = cout * cin * k.iter().product::<usize>();
        let mut partial = vec![f32::NAN; nw * d[0]];
        cnn_conv3d_grad_weight_planes(cin, cout, d, k, &input, &gout, &mut partial);
        let want = grad_weight_planes_ref(cin, cout, d, k, &input, &gout);
        assert_eq!(bits(&partial), bits(&want), "case {i}: weight planes");

        // Accumulated onto a non-zero running gradient, planes in z order.
        let start = values(i as u64 + 70, nw);
        let mut gw = start.clone();
        cnn_sum_planes_acc(d[0], &partial, &mut gw);
        let mut gw_ref = start;
        sum_planes_ref(d[0], &want, &mut gw_ref);
        assert_eq!(bits(&gw), bits(&gw_ref), "case {i}: weight sum");

        let mut bp = vec![f32::NAN; cout * d[0]];
        cnn_bias_grad_planes(cout, d, &gout, &mut bp);
        let bp_ref = bias_planes_ref(cout, d, &gout);
        assert_eq!(bits(&bp), bits(&bp_ref), "case {i}: bias planes");
        let mut gb = vec![0.0f32; cout];
        cnn_sum_planes_acc(d[0], &bp, &mut gb);
        let mut gb_ref = vec![0.0f32; cout];
        sum_planes_ref(d[0], &bp_ref, &mut gb_ref);
        assert_eq!(bits(&gb), bits(&gb_ref), "case {i}: bias sum");
    }
}

/// A plane whose iz lies outside the volume is exactly +0, not skipped (kernel 3 on 3 slices: dz = 0 at z = 0).
#[test]
fn weight_planes_outside_the_volume_are_zero() {
    let (cin, cout, d, k) = (1, 1, [3, 2, 2], [3, 1, 1]);
    let input = vec![1.0f32; vol(d)];
    let gout = vec![1.0f32; vol(d)];
    let mut partial = vec![f32::NAN; 3 * 3];
    cnn_conv3d_grad_weight_planes(cin, cout, d, k, &input, &gout, &mut partial);
    // widx = dz; rows z = 0, 1, 2: dz = 0 reads iz = z - 1, dz = 2 reads iz = z + 1.
    assert_eq!(bits(&partial), bits(&[0.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 0.0]));
}

/// Loss L = Σ r · conv(x, w, b) (r fixed): its gradients are grad_input(r), Σ_z grad_weight_planes(x, r) and
/// Σ_z bias_planes(r); central differences of the f32 forward kernel (L summed in f64) agree. L is linear in each
/// of x, w, b, so the differences are exact up to the rounding of the forward pass.
#[test]
fn conv_gradients_match_finite_differences() {
    let (cin, cout, d, k) = (2, 3, [3, 5, 7], [3, 3, 3]);
    let nw = cout * cin * k.iter().product::<usize>();
    let x = values(11, cin * vol(d));
    let w = values(12, nw);
    let b = values(13, cout);
    let r = values(14, cout * vol(d));
    let loss = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut out = vec![0f32; cout * vol(d)];
        cnn_conv3d_same(cin, cout, d, k, x, w, b, &mut out);
        out.iter().zip(&r).map(|(&o, &r)| f64::from(o) * f64::from(r)).sum::<f64>()
    };
    let eps = 1e-2f32;
    let fd = |f: &dyn Fn(f32) -> f64, v: f32| ((f(v + eps) - f(v - eps)) / f64::from(2.0 * eps)) as f32;
    let check = |what: &str, i: usize, analytic: f32, numeric: f32| {
        let tol = 1e-3 * analytic.abs().max(1.0); // observed: below 1e-4
        assert!((analytic - numeric).abs() <= tol, "{what}[{i}]: analytic {analytic}, finite difference {numeric}");
    };

    let mut gin = vec![0f32; x.len()];
    cnn_conv3d_grad_input(cin, cout, d, k, &r, &w, &mut gin);
    for i in 0..x.len() {
        let f = |v: f32| {
            let mut xp = x.clone();
            xp[i] = v;
            loss(&xp, &w, &b)
        };
        check("grad_input", i, gin[i], fd(&f, x[i]));
    }

    let mut partial = vec![0f32; nw * d[0]];
    cnn_conv3d_grad_weight_planes(cin, cout, d, k, &x, &r, &mut partial);
    let mut gw = vec![0f32; nw];
    cnn_sum_planes_acc(d[0], &partial, &mut gw);
    for i in 0..nw {
        let f = |v: f32| {
            let mut wp = w.clone();
            wp[i] = v;
            loss(&x, &wp, &b)
        };
        check("grad_weight", i, gw[i], fd(&f, w[i]));
    }

    let mut bp = vec![0f32; cout * d[0]];
    cnn_bias_grad_planes(cout, d, &r, &mut bp);
    let mut gb = vec![0f32; cout];
    cnn_sum_planes_acc(d[0], &bp, &mut gb);
    for i in 0..cout {
        let f = |v: f32| {
            let mut bp = b.clone();
            bp[i] = v;
            loss(&x, &w, &bp)
        };
        check("grad_bias", i, gb[i], fd(&f, b[i]));
    }
}

#[test]
fn relu_backward_selects_by_the_output() {
    let y = [2.0f32, 0.0, -0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40];
    let g0 = [-0.0f32, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, -9.0];
    let mut g = g0;
    cnn_relu_backward(&y, &mut g);
    assert_eq!(bits(&g), bits(&[-0.0, 0.0, 0.0, 0.0, 0.0, 7.0, 0.0, -9.0]));
    let mut e: [f32; 0] = [];
    cnn_relu_backward(&[], &mut e);
}

/// Max pooling backward against a scatter from each window's first maximum (found with its own scan), on random
/// data and on data with ties; also that pooling's output equals gout at the chosen positions.
#[test]
fn maxpool_backward_routes_to_the_first_maximum() {
    let naive = |c: usize, d: [usize; 3], f: [usize; 3], x: &[f32], gout: &[f32]| {
        let od = [d[0] / f[0], d[1] / f[1], d[2] / f[2]];
        let mut gin = vec![0.0f32; x.len()];
        for ch in 0..c {
            for (o, &g) in gout[ch * vol(od)..(ch + 1) * vol(od)].iter().enumerate() {
                let (wz, wy, wx) = (o / (od[1] * od[2]), (o / od[2]) % od[1], o % od[2]);
                let mut best: Option<(usize, f32)> = None;
                for dz in 0..f[0] {
                    for dy in 0..f[1] {
                        for dx in 0..f[2] {
                            let i = ((ch * d[0] + wz * f[0] + dz) * d[1] + wy * f[1] + dy) * d[2] + wx * f[2] + dx;
                            if best.is_none_or(|(_, m)| x[i] > m) {
                                best = Some((i, x[i]));
                            }
                        }
                    }
                }
                gin[best.unwrap().0] = g;
            }
        }
        gin
    };
    let cases: &[(usize, [usize; 3], [usize; 3])] =
        &[(2, [2, 4, 6], [1, 2, 2]), (3, [4, 2, 6], [2, 1, 3]), (1, [3, 5, 7], [1, 1, 1]), (2, [2, 2, 2], [2, 2, 2])];
    for (i, &(c, d, f)) in cases.iter().enumerate() {
        let nout = c * vol(d) / (f[0] * f[1] * f[2]);
        let gout = values(i as u64 + 90, nout);
        let random = values(i as u64 + 80, c * vol(d));
        // Few distinct values: most windows hold ties (also of their maximum).
        let ties: Vec<f32> = (0..c * vol(d)).map(|j| ((j * 7 + i) % 3) as f32).collect();
        for (kind, x) in [("random", random), ("ties", ties)] {
            let mut gin = vec![f32::NAN; x.len()];
            cnn_maxpool3d_backward(c, d, f, &x, &gout, &mut gin);
            let want = naive(c, d, f, &x, &gout);
            assert_eq!(bits(&gin), bits(&want), "case {i} ({kind})");
            // A fine element that carries gradient holds its window's maximum (pooled, then upsampled back).
            let mut pooled = vec![0f32; nout];
            cnn_maxpool3d(c, d, f, &x, &mut pooled);
            let mut up = vec![0f32; x.len()];
            cnn_upsample_nearest3d(c, [d[0] / f[0], d[1] / f[1], d[2] / f[2]], f, &pooled, &mut up);
            for (j, &g) in gin.iter().enumerate() {
                if g.to_bits() != 0 {
                    assert_eq!(x[j], up[j], "case {i} ({kind}): gradient at a non-maximum {j}");
                }
            }
        }
    }
    // All equal: the gradient goes to the window's first element only.
    let x = [1.5f32; 8];
    let mut gin = [f32::NAN; 8];
    cnn_maxpool3d_backward(1, [2, 2, 2], [2, 2, 2], &x, &[3.0], &mut gin);
    assert_eq!(gin, [3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    // A tie of the maximum later in the window: only its first occurrence (index 1 of 1 x 1 x 4).
    let x = [1.0f32, 3.0, 2.0, 3.0];
    let mut gin = [f32::NAN; 4];
    cnn_maxpool3d_backward(1, [1, 1, 4], [1, 1, 4], &x, &[-2.0], &mut gin);
    assert_eq!(gin, [0.0, -2.0, 0.0, 0.0]);
}

#[test]
fn upsample_backward_sums_each_block() {
    let cases: &[(usize, [usize; 3], [usize; 3])] =
        &[(2, [1, 2, 3], [1, 2, 2]), (3, [2, 3, 1], [2, 1, 3]), (1, [2, 2, 2], [1, 1, 1]), (2, [1, 1, 1], [3, 2, 2])];
    for (i, &(c, d, f)) in cases.iter().enumerate() {
        let ud = [d[0] * f[0], d[1] * f[1], d[2] * f[2]];
        let gout = values(i as u64 + 100, c * vol(ud));
        let mut gin = vec![f32::NAN; c * vol(d)];
        cnn_upsample_nearest3d_backward(c, d, f, &gout, &mut gin);
        let mut want = Vec::new();
        for ch in 0..c {
            for z in 0..d[0] {
                for y in 0..d[1] {
                    for x in 0..d[2] {
                        let mut acc = 0.0f32;
                        for dz in 0..f[0] {
                            for dy in 0..f[1] {
                                for dx in 0..f[2] {
                                    acc += gout[((ch * ud[0] + z * f[0] + dz) * ud[1] + y * f[1] + dy) * ud[2]
                                        + x * f[2]
                                        + dx];
                                }
                            }
                        }
                        want.push(acc);
                    }
                }
            }
        }
        assert_eq!(bits(&gin), bits(&want), "case {i}");
    }
}

#[test]
fn add_inplace_adds() {
    let src = values(1, 37);
    let dst0 = values(2, 37);
    let mut dst = dst0.clone();
    cnn_add_inplace(&src, &mut dst);
    let want: Vec<f32> = dst0.iter().zip(&src).map(|(d, s)| d + s).collect();
    assert_eq!(bits(&dst), bits(&want));
}

#[test]
fn bce_logit_grad_uses_the_forward_sigmoid() {
    let mut logits = vec![0.0f32, -0.0, 2.5, -2.5, 1e-40, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 30.0, -120.0];
    logits.extend(values(7, 40).iter().map(|v| v * 12.0));
    let n = logits.len();
    let target: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    let weight: Vec<f32> = values(8, n).iter().map(|v| v.abs() + 0.25).collect();
    let scale = 1.0f32 / 3.0;
    let mut grad = vec![f32::NAN; n];
    cnn_bce_logit_grad(&logits, &target, &weight, scale, &mut grad);
    let want: Vec<f32> = (0..n).map(|i| ((sigmoid_ref(logits[i]) - target[i]) * weight[i]) * scale).collect();
    assert_eq!(bits(&grad), bits(&want));
    assert!(grad[7].is_nan());
    // With target 0, weight 1 and scale 1 the gradient is the forward kernel's sigmoid, bit for bit.
    let mut g1 = vec![0f32; n];
    cnn_bce_logit_grad(&logits, &vec![0.0; n], &vec![1.0; n], 1.0, &mut g1);
    let mut s = logits.clone();
    cnn_sigmoid(&mut s);
    assert_eq!(bits(&g1), bits(&s));
}

/// Two Adam steps from m = v = 0 against the formula written out here; the first step moves each weight with a
/// non-zero gradient by about -lr · sign(g), as Adam does.
#[test]
fn adam_two_steps() {
    let (lr, beta1, beta2, eps) = (1e-3f32, 0.9f32, 0.999f32, 1e-8f32);
    let step = |t: i32| AdamStep {
        lr_t: lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t)),
        beta1,
        one_minus_beta1: 1.0 - beta1,
        beta2,
        one_minus_beta2: 1.0 - beta2,
        eps,
    };
    let w0 = [1.0f32, -2.0, 0.5, 0.0, 3.0];
    let grads = [[0.5f32, -0.25, 0.0, 3.0, -1e-3], [-0.5, 0.75, 2.0, 3.0, 1e-3]];
    let (mut m, mut v, mut w) = ([0.0f32; 5], [0.0f32; 5], w0);
    let (mut mr, mut vr, mut wr) = (m, v, w);
    for (t, g) in grads.iter().enumerate() {
        let s = step(t as i32 + 1);
        cnn_adam(&s, g, &mut m, &mut v, &mut w);
        for i in 0..5 {
            mr[i] = s.beta1 * mr[i] + s.one_minus_beta1 * g[i];
            vr[i] = s.beta2 * vr[i] + s.one_minus_beta2 * (g[i] * g[i]);
            wr[i] -= (s.lr_t * mr[i]) / (vr[i].sqrt() + s.eps);
        }
        assert_eq!((bits(&m), bits(&v), bits(&w)), (bits(&mr), bits(&vr), bits(&wr)), "step {}", t + 1);
        if t == 0 {
            for i in 0..5 {
                let want = w0[i] - lr * grads[0][i].signum() * f32::from(grads[0][i] != 0.0);
                assert!((w[i] - want).abs() < 1e-5, "w[{i}] = {} after one step, want about {want}", w[i]);
            }
        }
    }
    // Element 3 (g = 3 twice): m = 0.1·3·(0.9 + 1) = 0.57, v = 0.001·9·(0.999 + 1) = 0.017991; with
    // lr_2 = 1e-3·sqrt(1 - 0.999²)/(1 - 0.9²) the second step moves w by -lr_2·m/sqrt(v) = -0.001 again
    // (m̂/sqrt(v̂) = 1 for a constant gradient), so w = -0.002.
    // (1 - 0.999 is 0.0010000467 in f32, hence the relative tolerance.)
    assert!((m[3] - 0.57).abs() < 1e-4 * 0.57 && (v[3] - 0.017_991).abs() < 1e-4 * 0.017_991, "m {} v {}", m[3], v[3]);
    assert!((w[3] + 2e-3).abs() < 1e-6, "w[3] = {}", w[3]);
}

#[test]
#[should_panic(expected = "weight must be cout × cin × kz × ky × kx")]
fn grad_input_checks_lengths() {
    let mut gin = vec![0f32; 8];
    cnn_conv3d_grad_input(1, 1, [2, 2, 2], [3, 3, 3], &[0.0; 8], &[0.0; 26], &mut gin);
}

#[test]
#[should_panic(expected = "partial must be (cout × cin × kz × ky × kx) × nz")]
fn grad_weight_checks_lengths() {
    let mut partial = vec![0f32; 27];
    cnn_conv3d_grad_weight_planes(1, 1, [2, 2, 2], [3, 3, 3], &[0.0; 8], &[0.0; 8], &mut partial);
}

#[test]
#[should_panic(expected = "partial must be out.len() × nz")]
fn sum_planes_checks_lengths() {
    cnn_sum_planes_acc(3, &[0.0; 5], &mut [0.0; 2]);
}

#[test]
#[should_panic(expected = "not divisible by the pool factors")]
fn maxpool_backward_checks_divisibility() {
    cnn_maxpool3d_backward(1, [2, 3, 2], [1, 2, 2], &[0.0; 12], &[0.0; 2], &mut [0.0; 12]);
}

#[test]
#[should_panic(expected = "gout must be c × (nz·fz) × (ny·fy) × (nx·fx)")]
fn upsample_backward_checks_lengths() {
    cnn_upsample_nearest3d_backward(1, [1, 2, 2], [1, 2, 2], &[0.0; 15], &mut [0.0; 4]);
}

#[test]
#[should_panic(expected = "v must have w.len() elements")]
fn adam_checks_lengths() {
    let s = AdamStep { lr_t: 1.0, beta1: 0.9, one_minus_beta1: 0.1, beta2: 0.999, one_minus_beta2: 0.001, eps: 1e-8 };
    cnn_adam(&s, &[0.0; 3], &mut [0.0; 3], &mut [0.0; 2], &mut [0.0; 3]);
}
