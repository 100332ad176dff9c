//! The U-Net inference kernels of `cuda/cnn.cu`, compiled for the host, against plain Rust written here: the
//! 'same' convolution (a gather loop in the kernel's summation order, so equal bit for bit) for cubic,
//! anisotropic and larger-than-volume kernels; ReLU and sigmoid including ±0, ±inf and NaN; max pooling,
//! nearest upsampling and channel concatenation; and the length checks of the safe wrappers.

use neurotwin_kernels::host::{
    cnn_concat_channels, cnn_conv3d_same, cnn_maxpool3d, cnn_relu, cnn_sigmoid, cnn_upsample_nearest3d,
};

fn values(seed: u64, n: usize) -> Vec<f32> {
    // Counter-based: x_i = frac(i · golden + seed · sqrt2) mapped to [-1, 1).
    (0..n)
        .map(|i| {
            ((i as f64 * 0.618_033_988_749_895 + seed as f64 * std::f64::consts::SQRT_2).fract() * 2.0 - 1.0) as f32
        })
        .collect()
}

/// Gather-form convolution, terms in the kernel's order (ci, dz, dy, dx) with f32 products and sums.
fn conv_rust(cin: usize, cout: usize, d: [usize; 3], k: [usize; 3], x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let p = [(k[0] - 1) / 2, (k[1] - 1) / 2, (k[2] - 1) / 2];
    let mut out = Vec::with_capacity(cout * d.iter().product::<usize>());
    for co in 0..cout {
        for z in 0..d[0] {
            for y in 0..d[1] {
                for xx in 0..d[2] {
                    let mut acc = b[co];
                    for ci in 0..cin {
                        for dz in 0..k[0] {
                            for dy in 0..k[1] {
                                for dx in 0..k[2] {
                                    let (iz, iy, ix) = (z + dz, y + dy, xx + dx);
                                    if iz < p[0] || iy < p[1] || ix < p[2] {
                                        continue;
                                    }
                                    let (iz, iy, ix) = (iz - p[0], iy - p[1], ix - p[2]);
                                    if iz >= d[0] || iy >= d[1] || ix >= d[2] {
                                        continue;
                                    }
                                    let wv = w[(((co * cin + ci) * k[0] + dz) * k[1] + dy) * k[2] + dx];
                                    acc += wv * x[((ci * d[0] + iz) * d[1] + iy) * d[2] + ix];
                                }
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn conv3d_same_equals_rust_gather_loop() {
    let cases: &[(usize, usize, [usize; 3], [usize; 3])] = &[
        (1, 1, [1, 1, 1], [1, 1, 1]),
        (2, 3, [3, 5, 4], [3, 3, 3]),
        (3, 2, [2, 6, 7], [1, 3, 5]),
        (1, 2, [2, 2, 3], [5, 7, 3]),
        (2, 2, [4, 3, 5], [2, 4, 2]),
    ];
    for (i, &(cin, cout, d, k)) in cases.iter().enumerate() {
        let x = values(i as u64 + 1, cin * d.iter().product::<usize>());
        let w = values(i as u64 + 20, cout * cin * k.iter().product::<usize>());
        let b = values(i as u64 + 40, cout);
        let mut out = vec![0f32; cout * d.iter().product::<usize>()];
        cnn_conv3d_same(cin, cout, d, k, &x, &w, &b, &mut out);
        assert_eq!(bits(&out), bits(&conv_rust(cin, cout, d, k, &x, &w, &b)), "case {i}");
    }
}

#[test]
fn activations() {
    let xs = [0.0f32, -0.0, 2.5, -2.5, 1e-40, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 30.0, -120.0];
    let mut r = xs;
    cnn_relu(&mut r);
    assert_eq!(bits(&r), bits(&[0.0, 0.0, 2.5, 0.0, 1e-40, f32::INFINITY, 0.0, 0.0, 30.0, 0.0]));
    let mut s = xs;
    cnn_sigmoid(&mut s);
    assert_eq!(s[0], 0.5);
    assert_eq!(s[5], 1.0);
    assert_eq!(s[6], 0.0);
    assert_eq!(s[7].to_bits(), f32::NAN.to_bits(), "NaN passes through unchanged");
    for (x, y) in xs.iter().zip(&s) {
        if x.is_finite() {
            let want = (1.0 / (1.0 + (-(*x as f64)).exp())) as f32;
            assert!((y - want).abs() <= f32::EPSILON, "sigmoid({x}) = {y}, want {want}");
        }
    }
}

#[test]
fn pooling_upsampling_concat() {
    // 2 channels of 2 x 2 x 4, pooled by (1, 2, 2) and by (2, 1, 4).
    let x: Vec<f32> = (0..32).map(|i| ((i * 37) % 32) as f32 - 16.0).collect();
    let mut p = vec![0f32; 8]; // 2 channels x 2 x 1 x 2
    cnn_maxpool3d(2, [2, 2, 4], [1, 2, 2], &x, &mut p);
    let want: Vec<f32> = (0..8)
        .map(|o| {
            let (c, z, xb) = (o / 4, (o / 2) % 2, o % 2);
            let mut m = f32::NEG_INFINITY;
            for y in 0..2 {
                for dx in 0..2 {
                    m = m.max(x[((c * 2 + z) * 2 + y) * 4 + xb * 2 + dx]);
                }
            }
            m
        })
        .collect();
    assert_eq!(p, want);
    let mut q = vec![0f32; 4]; // 2 channels x 1 x 2 x 1
    cnn_maxpool3d(2, [2, 2, 4], [2, 1, 4], &x, &mut q);
    for (o, &v) in q.iter().enumerate() {
        let (c, y) = (o / 2, o % 2);
        let m = (0..2)
            .flat_map(|z| (0..4).map(move |xx| ((c * 2 + z) * 2 + y) * 4 + xx))
            .map(|i| x[i])
            .fold(f32::MIN, f32::max);
        assert_eq!(v, m);
    }

    let mut u = vec![0f32; 2 * 2 * 6 * 4];
    cnn_upsample_nearest3d(2, [1, 2, 2], [2, 3, 2], &x[..8], &mut u);
    for (i, &v) in u.iter().enumerate() {
        // i = ((c · 2 + z) · 6 + y) · 4 + x; z does not matter (one input slice).
        let (c, y, xx) = (i / 48, (i / 4) % 6, i % 4);
        assert_eq!(v, x[(c * 2 + y / 3) * 2 + xx / 2], "element {i}");
    }

    let mut cat = vec![0f32; 5 * 3];
    cnn_concat_channels(2, 3, 3, &x[..6], &x[10..19], &mut cat);
    assert_eq!(&cat[..6], &x[..6]);
    assert_eq!(&cat[6..], &x[10..19]);
}

#[test]
#[should_panic(expected = "weight must be cout × cin × kz × ky × kx")]
fn conv_checks_lengths() {
    let mut out = vec![0f32; 8];
    cnn_conv3d_same(1, 1, [2, 2, 2], [3, 3, 3], &[0.0; 8], &[0.0; 26], &[0.0], &mut out);
}

#[test]
#[should_panic(expected = "not divisible by the pool factors")]
fn pool_checks_divisibility() {
    let mut out = vec![0f32; 1];
    cnn_maxpool3d(1, [1, 3, 2], [1, 2, 2], &[0.0; 6], &mut out);
}
