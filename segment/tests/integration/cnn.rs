//! CNN inference (issue 5, acceptance 3): the CPU layers against independent references (direct scatter-form
//! convolution with f64 accumulation, hand-computed pooling/upsampling, a reference U-Net forward pass), the
//! CPU against the host build of the CUDA kernels (bit for bit), weights-file validation errors, and the
//! hand-designed edge detector on a synthetic volume with dark membranes.

use neurotwin_kernels::host as k;
use neurotwin_segment::cnn::{
    BackendKind, CnnError, Conv3d, MaxPool3d, NamedTensor, OutputKind, Tensor, UNet3d, UNetSpec, Upsample, concat,
    det_exp, edge_detector, relu, sigmoid, sigmoid_f32, weights_to_bytes, write_weights,
};

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` uniform values in [-1, 1), from a counter-based hash of (seed, i).
fn uniform(seed: u64, n: usize) -> Vec<f32> {
    (0..n as u64).map(|i| ((splitmix64(seed * 1_000_003 + i) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0).collect()
}

/// Direct 'same' convolution in scatter form (loops over input voxels, then output channels and taps; f64
/// accumulation): an independent reference for `Conv3d::forward`. Origin offset (k - 1) / 2 per axis.
fn reference_conv(
    cin: usize,
    cout: usize,
    d: [usize; 3],
    kern: [usize; 3],
    input: &[f32],
    w: &[f32],
    b: &[f32],
) -> Vec<f64> {
    let [nz, ny, nx] = d;
    let [kz, ky, kx] = kern;
    let p = [(kz - 1) / 2, (ky - 1) / 2, (kx - 1) / 2].map(|v| v as i64);
    let mut out = vec![0f64; cout * nz * ny * nx];
    for co in 0..cout {
        for v in 0..nz * ny * nx {
            out[co * nz * ny * nx + v] = b[co] as f64;
        }
    }
    for ci in 0..cin {
        for iz in 0..nz as i64 {
            for iy in 0..ny as i64 {
                for ix in 0..nx as i64 {
                    let v = input[((ci * nz + iz as usize) * ny + iy as usize) * nx + ix as usize] as f64;
                    for co in 0..cout {
                        for dz in 0..kz as i64 {
                            for dy in 0..ky as i64 {
                                for dx in 0..kx as i64 {
                                    // out(o) reads in(o + d - p), so in(i) feeds out(i - d + p).
                                    let (oz, oy, ox) = (iz - dz + p[0], iy - dy + p[1], ix - dx + p[2]);
                                    if oz < 0
                                        || oy < 0
                                        || ox < 0
                                        || oz >= nz as i64
                                        || oy >= ny as i64
                                        || ox >= nx as i64
                                    {
                                        continue;
                                    }
                                    let wi =
                                        (((co * cin + ci) * kz + dz as usize) * ky + dy as usize) * kx + dx as usize;
                                    let o = ((co * nz + oz as usize) * ny + oy as usize) * nx + ox as usize;
                                    out[o] += w[wi] as f64 * v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn max_diff64(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y).abs()).fold(0.0, f64::max)
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn conv3d_matches_direct_reference_and_host_kernel() {
    // (cin, cout, dims, kernel): cubic, anisotropic, kernels longer than the volume, even kernels, 1x1x1.
    let cases: &[(usize, usize, [usize; 3], [usize; 3])] = &[
        (1, 1, [5, 6, 7], [3, 3, 3]),
        (2, 3, [4, 5, 6], [1, 3, 3]),
        (3, 2, [3, 4, 9], [3, 5, 1]),
        (2, 2, [2, 3, 3], [5, 5, 5]),
        (1, 2, [4, 4, 5], [2, 2, 4]),
        (4, 3, [1, 8, 8], [1, 1, 1]),
        (5, 4, [6, 7, 5], [3, 3, 3]),
    ];
    let mut worst = 0f64;
    for (i, &(cin, cout, d, kern)) in cases.iter().enumerate() {
        let n_in = cin * d.iter().product::<usize>();
        let n_w = cout * cin * kern.iter().product::<usize>();
        let x = Tensor::new([cin, d[0], d[1], d[2]], uniform(10 + i as u64, n_in)).unwrap();
        let w = uniform(100 + i as u64, n_w);
        let b = uniform(200 + i as u64, cout);
        let conv = Conv3d::new(cin, cout, kern, w.clone(), b.clone()).unwrap();
        let y = conv.forward(&x).unwrap();
        assert_eq!(y.shape(), [cout, d[0], d[1], d[2]]);
        let r = reference_conv(cin, cout, d, kern, x.data(), &w, &b);
        let diff = max_diff64(y.data(), &r);
        assert!(diff <= 1e-5, "case {i} {:?}: CPU vs reference {diff:e}", (cin, cout, d, kern));
        worst = worst.max(diff);

        let mut host = vec![0f32; y.data().len()];
        k::cnn_conv3d_same(cin, cout, d, kern, x.data(), &w, &b, &mut host);
        let host_t = Tensor::new(y.shape(), host).unwrap();
        assert_eq!(bits(&y), bits(&host_t), "case {i}: CPU and host kernel differ");
    }
    println!("conv3d: max |CPU - f64 reference| = {worst:e}; CPU == host kernel bit for bit");
    // Channel mismatch is an error, not a panic.
    let conv = Conv3d::new(2, 1, [1, 1, 1], vec![1.0, 1.0], vec![0.0]).unwrap();
    assert!(matches!(conv.forward(&Tensor::zeros([1, 2, 2, 2])), Err(CnnError::Shape(_))));
    assert!(Conv3d::new(1, 1, [3, 3, 3], vec![0.0; 26], vec![0.0]).is_err());
}

#[test]
fn padding_zero_and_bias_by_hand() {
    // 1x1x3 volume [1, 2, 3], kernel [1, 1, 3] = [10, 100, 1000], bias 0.5:
    // out(x) = 10·in(x-1) + 100·in(x) + 1000·in(x+1) with zeros outside.
    let x = Tensor::from_volume([1, 1, 3], vec![1.0, 2.0, 3.0]).unwrap();
    let conv = Conv3d::new(1, 1, [1, 1, 3], vec![10.0, 100.0, 1000.0], vec![0.5]).unwrap();
    let y = conv.forward(&x).unwrap();
    assert_eq!(y.data(), &[2100.5, 3210.5, 320.5]);
}

#[test]
fn pooling_and_upsampling_by_hand() {
    // Anisotropic (1, 2, 2) pooling of a 2 x 2 x 4 volume.
    #[rustfmt::skip]
    let v = vec![
        1.0, 5.0, -2.0, -3.0,
        3.0, 2.0, -1.0, -7.0,
        0.0, 0.0, 9.0, 8.0,
        -1.0, 4.0, 8.5, 9.5,
    ];
    let x = Tensor::from_volume([2, 2, 4], v).unwrap();
    let p = MaxPool3d { factor: [1, 2, 2] }.forward(&x).unwrap();
    assert_eq!(p.shape(), [1, 2, 1, 2]);
    assert_eq!(p.data(), &[5.0, -1.0, 4.0, 9.5]);
    let p2 = MaxPool3d { factor: [2, 2, 2] }.forward(&x).unwrap();
    assert_eq!(p2.data(), &[5.0, 9.5]);
    // Two channels, all-negative window with -inf first.
    let x2 = Tensor::new([2, 1, 1, 2], vec![f32::NEG_INFINITY, -3.0, 7.0, 6.0]).unwrap();
    assert_eq!(MaxPool3d { factor: [1, 1, 2] }.forward(&x2).unwrap().data(), &[-3.0, 7.0]);
    assert!(matches!(MaxPool3d { factor: [1, 3, 2] }.forward(&x), Err(CnnError::Shape(_))));

    let u = Upsample { factor: [2, 1, 3] }.forward(&Tensor::from_volume([1, 1, 2], vec![1.0, 2.0]).unwrap()).unwrap();
    assert_eq!(u.shape(), [1, 2, 1, 6]);
    assert_eq!(u.data(), &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);

    let a = Tensor::new([1, 1, 1, 2], vec![1.0, 2.0]).unwrap();
    let b = Tensor::new([2, 1, 1, 2], vec![3.0, 4.0, 5.0, 6.0]).unwrap();
    let c = concat(&a, &b).unwrap();
    assert_eq!(c.shape(), [3, 1, 1, 2]);
    assert_eq!(c.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert!(concat(&a, &Tensor::zeros([1, 1, 2, 1])).is_err());

    // The host kernels agree with the CPU layers.
    let mut hp = vec![0f32; 4];
    k::cnn_maxpool3d(1, [2, 2, 4], [1, 2, 2], x.data(), &mut hp);
    assert_eq!(hp, p.data());
    let mut hu = vec![0f32; 12];
    k::cnn_upsample_nearest3d(1, [1, 1, 2], [2, 1, 3], &[1.0, 2.0], &mut hu);
    assert_eq!(hu, u.data());
    let mut hc = vec![0f32; 6];
    k::cnn_concat_channels(1, 2, 2, a.data(), b.data(), &mut hc);
    assert_eq!(hc, c.data());
}

#[test]
fn activations_match_libm_and_host_kernels() {
    let mut xs: Vec<f32> = uniform(7, 2000).iter().map(|v| v * 40.0).collect();
    xs.extend([0.0, -0.0, 1e-30, 88.0, -88.0, 200.0, -200.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
    let mut worst = 0f64;
    for &x in &xs {
        let s = sigmoid_f32(x);
        if x.is_nan() {
            assert!(s.is_nan());
            continue;
        }
        let want = 1.0 / (1.0 + (-(x as f64)).exp());
        worst = worst.max((s as f64 - want).abs());
        assert!((0.0..=1.0).contains(&s));
    }
    assert!(worst < 1e-7, "sigmoid vs libm {worst:e}");
    assert_eq!(sigmoid_f32(0.0), 0.5);
    for x in [-700.0, -3.3, 0.0, 1e-9, 0.7, 12.5, 700.0] {
        let (a, b) = (det_exp(x), f64::exp(x));
        assert!(((a - b) / b).abs() < 1e-15, "det_exp({x}) = {a}, exp = {b}");
    }

    let t = Tensor::new([1, 1, 1, xs.len()], xs.clone()).unwrap();
    let (mut s, mut r) = (t.clone(), t.clone());
    sigmoid(&mut s);
    relu(&mut r);
    let (mut hs, mut hr) = (xs.clone(), xs.clone());
    k::cnn_sigmoid(&mut hs);
    k::cnn_relu(&mut hr);
    let b = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(b(s.data()), b(&hs));
    assert_eq!(b(r.data()), b(&hr));
    assert_eq!(r.data()[xs.len() - 1], 0.0, "ReLU(NaN) = 0 on both");
}

fn spec_boundary() -> UNetSpec {
    UNetSpec {
        in_channels: 1,
        out_channels: 1,
        output: OutputKind::Boundary,
        base_channels: 4,
        channel_factor: 2,
        depth: 2,
        pool: vec![[1, 2, 2], [2, 2, 2]],
        kernels: vec![[1, 3, 3], [3, 3, 3], [3, 3, 3]],
        convs_per_block: 2,
    }
}

fn spec_affinities() -> UNetSpec {
    UNetSpec {
        in_channels: 2,
        out_channels: 3,
        output: OutputKind::Affinities,
        base_channels: 3,
        channel_factor: 3,
        depth: 1,
        pool: vec![[2, 2, 1]],
        kernels: vec![[3, 3, 3], [1, 3, 3]],
        convs_per_block: 1,
    }
}

/// An independent forward pass from the named tensors: the scatter-form f64 convolution above, and pooling,
/// upsampling and concatenation written out directly, in f64 throughout.
fn reference_unet(spec: &UNetSpec, tensors: &[NamedTensor], input: &Tensor) -> Vec<f64> {
    let get = |name: &str| tensors.iter().find(|t| t.name == name).unwrap();
    // (channels, dims, data)
    type T = (usize, [usize; 3], Vec<f64>);
    let conv = |name: &str, x: &T| -> T {
        let w = get(&format!("{name}.weight"));
        let b = get(&format!("{name}.bias"));
        let s = &w.shape;
        let xin: Vec<f32> = x.2.iter().map(|&v| v as f32).collect();
        // The reference conv takes f32 inputs; keep the activations in f64 by splitting x = hi + lo.
        let lo: Vec<f32> = x.2.iter().zip(&xin).map(|(&v, &h)| (v - h as f64) as f32).collect();
        let mut y = reference_conv(s[1], s[0], x.1, [s[2], s[3], s[4]], &xin, &w.data, &b.data);
        let y_lo = reference_conv(s[1], s[0], x.1, [s[2], s[3], s[4]], &lo, &w.data, &vec![0.0; s[0]]);
        y.iter_mut().zip(y_lo).for_each(|(a, b)| *a += b);
        (s[0], x.1, y)
    };
    let relu = |mut x: T| -> T {
        x.2.iter_mut().for_each(|v| *v = v.max(0.0));
        x
    };
    let block = |prefix: &str, mut x: T| -> T {
        for i in 0..spec.convs_per_block {
            x = relu(conv(&format!("{prefix}.conv.{i}"), &x));
        }
        x
    };
    let pool = |x: &T, f: [usize; 3]| -> T {
        let (c, d) = (x.0, x.1);
        let od = [d[0] / f[0], d[1] / f[1], d[2] / f[2]];
        let mut out = vec![f64::NEG_INFINITY; c * od.iter().product::<usize>()];
        for ch in 0..c {
            for z in 0..d[0] {
                for y in 0..d[1] {
                    for xx in 0..d[2] {
                        let o = ((ch * od[0] + z / f[0]) * od[1] + y / f[1]) * od[2] + xx / f[2];
                        out[o] = out[o].max(x.2[((ch * d[0] + z) * d[1] + y) * d[2] + xx]);
                    }
                }
            }
        }
        (c, od, out)
    };
    let upsample = |x: &T, f: [usize; 3]| -> T {
        let (c, d) = (x.0, x.1);
        let ud = [d[0] * f[0], d[1] * f[1], d[2] * f[2]];
        let mut out = Vec::new();
        for ch in 0..c {
            for z in 0..ud[0] {
                for y in 0..ud[1] {
                    for xx in 0..ud[2] {
                        out.push(x.2[((ch * d[0] + z / f[0]) * d[1] + y / f[1]) * d[2] + xx / f[2]]);
                    }
                }
            }
        }
        (c, ud, out)
    };
    let mut x: T = (input.channels(), input.dims(), input.data().iter().map(|&v| v as f64).collect());
    let mut skips = Vec::new();
    for l in 0..spec.depth {
        x = block(&format!("down.{l}"), x);
        skips.push(x.clone());
        x = pool(&x, spec.pool[l]);
    }
    x = block("bottom", x);
    for l in (0..spec.depth).rev() {
        let u = upsample(&x, spec.pool[l]);
        let s = &skips[l];
        let mut data = s.2.clone();
        data.extend(u.2);
        x = block(&format!("up.{l}"), (s.0 + u.0, s.1, data));
    }
    let y = conv("head", &x);
    y.2.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect()
}

#[test]
fn unet_from_file_cpu_equals_reference_and_host_kernels() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (spec, dims)) in
        [(spec_boundary(), [4usize, 12, 8]), (spec_affinities(), [4, 6, 5])].into_iter().enumerate()
    {
        let net = UNet3d::random(spec.clone(), 42 + i as u64).unwrap();
        let path = dir.path().join(format!("net{i}.safetensors"));
        net.save(&path).unwrap();
        let loaded = UNet3d::load(&path).unwrap();
        assert_eq!(loaded, net, "save/load round trip");
        assert_eq!(UNet3d::random(spec.clone(), 42 + i as u64).unwrap(), net, "deterministic init");

        let cin = spec.in_channels;
        let n = cin * dims.iter().product::<usize>();
        let input = Tensor::new([cin, dims[0], dims[1], dims[2]], uniform(900 + i as u64, n)).unwrap();
        let t0 = std::time::Instant::now();
        let cpu = loaded.predict(&input).unwrap();
        let t_cpu = t0.elapsed();
        let t0 = std::time::Instant::now();
        let host = loaded.predict_with(&input, BackendKind::CudaHost).unwrap();
        let t_host = t0.elapsed();
        assert_eq!(cpu.shape(), [spec.out_channels, dims[0], dims[1], dims[2]]);
        assert_eq!(bits(&cpu), bits(&host), "net {i}: CPU and host-built kernels differ");
        assert!(cpu.data().iter().all(|v| (0.0..=1.0).contains(v)));

        // Dims are multiples of the pool factors here, so no padding: compare with the f64 reference.
        let r = reference_unet(&spec, &net.named_tensors(), &input);
        let diff = max_diff64(cpu.data(), &r);
        let spread = cpu.data().iter().fold(0f32, |m, v| m.max((v - 0.5).abs()));
        println!(
            "U-Net {i}: max |CPU - f64 reference| = {diff:e}, CPU == host kernels bit for bit \
             (CPU {t_cpu:?}, host kernels {t_host:?}, output spread ±{spread})"
        );
        assert!(diff <= 1e-5, "net {i}: CPU vs reference {diff:e}");
        assert!(spread > 1e-3, "outputs must depend on the input");
    }

    // A volume that is not a multiple of the pool factors is padded and cropped back, on both backends.
    let net = UNet3d::random(spec_boundary(), 3).unwrap();
    let input = Tensor::from_volume([3, 9, 7], uniform(5, 3 * 9 * 7)).unwrap();
    let cpu = net.predict(&input).unwrap();
    let host = net.predict_with(&input, BackendKind::CudaHost).unwrap();
    assert_eq!(cpu.shape(), [1, 3, 9, 7]);
    assert_eq!(bits(&cpu), bits(&host));
    assert!(matches!(net.predict(&Tensor::zeros([2, 4, 4, 4])), Err(CnnError::Shape(_))));
}

fn expect_err(spec: &UNetSpec, tensors: &[NamedTensor]) -> CnnError {
    let bytes = weights_to_bytes(spec, tensors).unwrap();
    UNet3d::from_bytes(&bytes, "bad.safetensors").unwrap_err()
}

#[test]
fn weights_file_validation_names_the_tensor_and_the_fix() {
    let spec = spec_boundary();
    let good = UNet3d::random(spec.clone(), 1).unwrap().named_tensors();

    let missing: Vec<_> = good.iter().filter(|t| t.name != "up.0.conv.1.bias").cloned().collect();
    let e = expect_err(&spec, &missing);
    let msg = e.to_string();
    println!("{msg}");
    assert!(matches!(e, CnnError::MissingTensor { .. }));
    assert!(msg.contains("bad.safetensors") && msg.contains("`up.0.conv.1.bias`") && msg.contains("[4]"), "{msg}");

    let mut wrong = good.clone();
    let t = wrong.iter_mut().find(|t| t.name == "down.1.conv.0.weight").unwrap();
    t.shape = vec![8, 4, 1, 3, 9];
    let e = expect_err(&spec, &wrong);
    let msg = e.to_string();
    println!("{msg}");
    assert!(matches!(e, CnnError::WrongShape { .. }));
    assert!(
        msg.contains("`down.1.conv.0.weight`") && msg.contains("[8, 4, 1, 3, 9]") && msg.contains("[8, 4, 3, 3, 3]")
    );

    for (bad, shown) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let mut nan = good.clone();
        let t = nan.iter_mut().find(|t| t.name == "bottom.conv.1.weight").unwrap();
        t.data[17] = bad;
        t.data[40] = bad;
        let e = expect_err(&spec, &nan);
        let msg = e.to_string();
        println!("{msg}");
        assert!(matches!(e, CnnError::NonFinite { index: 17, count: 2, .. }), "{e:?}");
        assert!(msg.contains("`bottom.conv.1.weight`") && msg.contains(shown) && msg.contains("re-export"), "{msg}");
    }

    let mut extra = good.clone();
    extra.push(NamedTensor { name: "down.0.conv.0.weigth".into(), shape: vec![1], data: vec![0.0] });
    let msg = expect_err(&spec, &extra).to_string();
    assert!(msg.contains("unexpected tensor `down.0.conv.0.weigth`"), "{msg}");

    let mut bad_spec = spec.clone();
    bad_spec.pool.pop();
    let msg = expect_err(&bad_spec, &good).to_string();
    assert!(msg.contains("`pool` has 1 entries, depth is 2"), "{msg}");

    // Not a safetensors file; a safetensors file without the U-Net metadata; a missing file.
    let msg = UNet3d::from_bytes(b"definitely not weights", "junk.bin").unwrap_err().to_string();
    assert!(msg.contains("junk.bin") && msg.contains("not a valid safetensors file"), "{msg}");
    let data = [0u8; 4];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &data).unwrap();
    let plain = safetensors::serialize([("x", view)], None).unwrap();
    let msg = UNet3d::from_bytes(&plain, "plain.safetensors").unwrap_err().to_string();
    assert!(msg.contains("no `neurotwin.unet3d` metadata"), "{msg}");
    let dir = tempfile::tempdir().unwrap();
    let e = UNet3d::load(dir.path().join("absent.safetensors")).unwrap_err();
    assert!(matches!(e, CnnError::Io { .. }) && e.to_string().contains("absent.safetensors"));

    // F16 tensors are refused with the conversion hint.
    let half = [0u8; 2];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![1], &half).unwrap();
    let mut json = serde_json::to_value(&spec).unwrap();
    json.as_object_mut().unwrap().insert("format".into(), "unet3d-v1".into());
    let meta = std::collections::HashMap::from([("neurotwin.unet3d".to_string(), json.to_string())]);
    let f16 = safetensors::serialize([("head.bias", view)], Some(meta)).unwrap();
    let msg = UNet3d::from_bytes(&f16, "half.safetensors").unwrap_err().to_string();
    assert!(msg.contains("`head.bias` has dtype F16, expected F32"), "{msg}");

    // write_weights writes exactly weights_to_bytes.
    let p = dir.path().join("w.safetensors");
    write_weights(&p, &spec, &good).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), weights_to_bytes(&spec, &good).unwrap());
}

/// A synthetic EM-like volume: bright cells (0.8) separated by dark membranes (0.15) on the planes x = 11,
/// y = 20 and z = 7 (two voxels thick in x and y), plus small deterministic noise. Returns the volume and the
/// membrane mask.
fn membrane_volume(d: [usize; 3]) -> (Vec<f32>, Vec<bool>) {
    let noise = uniform(77, d.iter().product());
    let mut v = Vec::new();
    let mut mask = Vec::new();
    for z in 0..d[0] {
        for y in 0..d[1] {
            for x in 0..d[2] {
                let m = x == 11 || x == 12 || y == 20 || y == 21 || z == 7;
                mask.push(m);
                v.push(if m { 0.15 } else { 0.8 });
            }
        }
    }
    v.iter_mut().zip(noise).for_each(|(a, n)| *a += 0.03 * n);
    (v, mask)
}

#[test]
fn edge_detector_marks_membranes() {
    let d = [14, 32, 28];
    let (v, mask) = membrane_volume(d);
    let input = Tensor::from_volume(d, v).unwrap();
    let net = edge_detector([1.0, 1.0, 1.0], 40.0, 0.1).unwrap();
    // Through a file, as a user would.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edges.safetensors");
    net.save(&path).unwrap();
    let net = UNet3d::load(&path).unwrap();
    let t0 = std::time::Instant::now();
    let p = net.predict(&input).unwrap();
    let t = t0.elapsed();
    assert_eq!(bits(&p), bits(&net.predict_with(&input, BackendKind::CudaHost).unwrap()));

    // Interior: at least 3 voxels from every membrane plane and from the volume faces.
    let idx = |z: usize, y: usize, x: usize| (z * d[1] + y) * d[2] + x;
    let far = |a: usize, planes: &[usize], n: usize| planes.iter().all(|&p| a.abs_diff(p) >= 3) && a >= 3 && a + 3 < n;
    let (mut on, mut n_on, mut inside, mut n_in, mut inside_max) = (0f64, 0usize, 0f64, 0usize, 0f32);
    for z in 0..d[0] {
        for y in 0..d[1] {
            for x in 0..d[2] {
                let q = p.data()[idx(z, y, x)];
                if mask[idx(z, y, x)] {
                    on += q as f64;
                    n_on += 1;
                } else if far(x, &[11, 12], d[2]) && far(y, &[20, 21], d[1]) && far(z, &[7], d[0]) {
                    inside += q as f64;
                    n_in += 1;
                    inside_max = inside_max.max(q);
                }
            }
        }
    }
    let (on, inside) = (on / n_on as f64, inside / n_in as f64);
    println!(
        "edge detector ({t:?}): mean P(boundary) on membranes {on:.3} ({n_on} voxels), inside cells {inside:.3} (max {inside_max:.3}, {n_in} voxels)"
    );
    assert!(on > 0.75, "membranes: {on}");
    assert!(inside < 0.05 && inside_max < 0.2, "inside cells: {inside} (max {inside_max})");
}

/// Throughput of the CPU path on a larger volume (run with `--ignored --nocapture`; not part of the suite).
#[test]
#[ignore]
fn cpu_throughput() {
    let spec = UNetSpec { base_channels: 8, ..spec_boundary() };
    let net = UNet3d::random(spec, 9).unwrap();
    let d = [16, 96, 96];
    let input = Tensor::from_volume(d, uniform(1, d.iter().product())).unwrap();
    let t0 = std::time::Instant::now();
    let y = net.predict(&input).unwrap();
    let t = t0.elapsed();
    let t0 = std::time::Instant::now();
    let h = net.predict_with(&input, BackendKind::CudaHost).unwrap();
    let th = t0.elapsed();
    assert_eq!(bits(&y), bits(&h));
    let n = d.iter().product::<usize>() as f64;
    println!(
        "U-Net base 8, depth 2, {d:?}: CPU {t:?} ({:.0} voxels/s), host kernels (1 thread) {th:?}",
        n / t.as_secs_f64()
    );
}

/// Without a usable GPU, the `cuda` backend is refused with the device's one-line reason (not a panic) and `auto`
/// runs the U-Net on the CPU, bit for bit. Skipped (with a message) where a GPU is usable.
#[test]
fn cuda_backend_without_a_gpu_is_a_one_line_reason_and_auto_runs_on_the_cpu() {
    let Err(why) = neurotwin_kernels::device::device(0) else {
        eprintln!("SKIP: a CUDA device is usable here (the GPU test covers it)");
        return;
    };
    let net = UNet3d::random(spec_boundary(), 11).unwrap();
    let input = Tensor::from_volume([4, 12, 8], uniform(12, 4 * 12 * 8)).unwrap();
    match net.predict_with(&input, BackendKind::Cuda) {
        Err(CnnError::Backend(e)) => {
            assert!(e.contains("no usable GPU") && e.contains(&why) && !e.contains('\n'), "{e:?}");
            println!("cuda refused: {e}");
        }
        other => panic!("expected a backend refusal, got {other:?}"),
    }
    let auto = net.predict_with(&input, BackendKind::Auto).unwrap();
    assert_eq!(bits(&auto), bits(&net.predict(&input).unwrap()));
}

/// One network on every backend: `(cpu, cuda-host, cuda)` outputs as f32 bits.
fn on_all_backends(net: &UNet3d, input: &Tensor) -> [Vec<u32>; 3] {
    [BackendKind::Cpu, BackendKind::CudaHost, BackendKind::Cuda]
        .map(|b| bits(&net.predict_with(input, b).unwrap_or_else(|e| panic!("{b}: {e}"))))
}

/// The GPU forward pass (activations resident on the device) equals the cuda-host and cpu backends bit for bit:
/// both test architectures (boundary, depth 2 with anisotropic pooling; affinities, 2 input channels, depth 1),
/// a volume that needs padding, the edge detector (7×7×7 kernel) and `auto`, which must pick the GPU here.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_equals_cuda_host_and_cpu_bit_for_bit() {
    let dev = neurotwin_kernels::device::device(0).expect("a usable CUDA device");
    let cases = [(spec_boundary(), [4usize, 12, 8]), (spec_affinities(), [4, 6, 5]), (spec_boundary(), [3, 9, 7])];
    for (i, (spec, dims)) in cases.into_iter().enumerate() {
        let net = UNet3d::random(spec.clone(), 42 + i as u64).unwrap();
        let n = spec.in_channels * dims.iter().product::<usize>();
        let input = Tensor::new([spec.in_channels, dims[0], dims[1], dims[2]], uniform(900 + i as u64, n)).unwrap();
        let [cpu, host, gpu] = on_all_backends(&net, &input);
        assert_eq!(gpu.len(), spec.out_channels * dims.iter().product::<usize>());
        assert_eq!(cpu, host, "case {i}: cpu vs cuda-host");
        assert_eq!(gpu, cpu, "case {i}: GPU vs cpu");
        assert_eq!(bits(&net.predict_with(&input, BackendKind::Auto).unwrap()), gpu, "case {i}: auto");
    }
    let d = [14, 32, 28];
    let input = Tensor::from_volume(d, membrane_volume(d).0).unwrap();
    let net = edge_detector([1.0, 1.0, 1.0], 40.0, 0.1).unwrap();
    let [cpu, host, gpu] = on_all_backends(&net, &input);
    assert_eq!((&gpu, &host), (&cpu, &cpu), "edge detector");

    // Throughput on the larger volume of `cpu_throughput` (printed, not asserted).
    let net = UNet3d::random(UNetSpec { base_channels: 8, ..spec_boundary() }, 9).unwrap();
    let d = [16, 96, 96];
    let input = Tensor::from_volume(d, uniform(1, d.iter().product())).unwrap();
    let gpu = net.predict_with(&input, BackendKind::Cuda).unwrap(); // warm-up (module and stream set-up)
    let t0 = std::time::Instant::now();
    let again = net.predict_with(&input, BackendKind::Cuda).unwrap();
    let t_gpu = t0.elapsed();
    let t0 = std::time::Instant::now();
    let cpu = net.predict(&input).unwrap();
    let t_cpu = t0.elapsed();
    assert_eq!((bits(&gpu), bits(&again)), (bits(&cpu), bits(&cpu)), "{d:?}");
    println!("U-Net base 8, depth 2, {d:?} on {}: GPU {t_gpu:?}, CPU {t_cpu:?}, bit-identical", dev.name());
}
