//! U-Net training (issue 17, acceptance 1): the gradient of every layer against central finite differences of
//! the loss, the adjoint identities of pooling and upsampling, bit-identical weights after several Adam steps on
//! the CPU (any thread count) and on the host build of the CUDA kernels, and learning on a phantom.

use neurotwin_segment::cnn::train::{
    AdamState, CpuOps, HostKernelOps, Patch, TrainConfig, TrainOps, TrainingVolume, gradient, logits, sample_patch,
    train_step, weighted_bce,
};
use neurotwin_segment::cnn::{OutputKind, Tensor, UNet3d, UNetSpec, backward};
use neurotwin_segment::phantom::{PhantomConfig, generate};

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` uniform values in [0, 1).
fn uniform01(seed: u64, n: usize) -> Vec<f32> {
    (0..n as u64).map(|i| (splitmix64(seed * 1_000_003 + i) >> 40) as f32 / (1u64 << 24) as f32).collect()
}

fn spec(depth: usize, pool: Vec<[usize; 3]>, kernels: Vec<[usize; 3]>, base: usize) -> UNetSpec {
    UNetSpec {
        in_channels: 1,
        out_channels: 1,
        output: OutputKind::Boundary,
        base_channels: base,
        channel_factor: 2,
        depth,
        pool,
        kernels,
        convs_per_block: 2,
    }
}

/// A random patch: input in [0, 1), targets 0/1, weights in [0.5, 1.5).
fn random_patch(dims: [usize; 3], seed: u64) -> Patch {
    let n = dims.iter().product();
    let input = Tensor::new([1, dims[0], dims[1], dims[2]], uniform01(seed, n)).unwrap();
    let target = uniform01(seed + 1, n).iter().map(|&u| if u < 0.3 { 1.0 } else { 0.0 }).collect();
    let weight = uniform01(seed + 2, n).iter().map(|&u| 0.5 + u).collect();
    Patch { input, target, weight }
}

fn loss_of(net: &UNet3d, p: &Patch) -> f64 {
    weighted_bce(logits(&CpuOps, net, &p.input).data(), &p.target, &p.weight)
}

/// Every parameter's analytic gradient against the central difference of the loss (f64 loss of f32 logits).
/// A step h crossing a ReLU kink or a max-pool switch, or too small for f32 rounding, spoils a difference, so
/// each parameter passes when one of h = 5e-4, 1e-3, 2.5e-4 agrees within 5e-3 relative + 5e-3 of the tensor's largest gradient
/// (the f32 noise measured on these networks is below 1e-6 at h = 5e-4), and 95 % must pass at h = 5e-4.
fn check_gradients(net: &UNet3d, p: &Patch) {
    let n = p.target.len();
    let (grads, _) = gradient(&CpuOps, net, p, (1.0 / n as f64) as f32);
    let names: Vec<String> = net.spec().expected_tensors().into_iter().map(|(name, _)| name).collect();
    let (mut checked, mut first_h) = (0, 0);
    for (ci, (gw, gb)) in grads.0.iter().enumerate() {
        for (which, g) in [(0, gw), (1, gb)] {
            let gmax = f64::from(g.iter().fold(0f32, |a, v| a.max(v.abs())));
            for (j, &gj) in g.iter().enumerate() {
                let eval = |delta: f32| {
                    let mut tensors = net.named_tensors();
                    tensors[2 * ci + which].data[j] += delta;
                    let moved = UNet3d::from_tensors(net.spec().clone(), tensors, "<fd>").unwrap();
                    loss_of(&moved, p)
                };
                let mut fds = Vec::new();
                let ok = [5e-4f32, 1e-3, 2.5e-4].iter().enumerate().any(|(k, &h)| {
                    let fd = (eval(h) - eval(-h)) / (2.0 * f64::from(h));
                    fds.push(fd);
                    let pass = (fd - f64::from(gj)).abs() <= 5e-3 * f64::from(gj.abs()) + 5e-3 * gmax + 1e-6;
                    if pass && k == 0 {
                        first_h += 1;
                    }
                    pass
                });
                assert!(ok, "{} [{j}]: analytic {gj:e}, finite differences {fds:?}", names[2 * ci + which]);
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} parameters checked");
    assert!(first_h * 100 >= checked * 95, "{first_h} of {checked} agree at h = 5e-4");
}

#[test]
fn every_layer_gradient_matches_finite_differences() {
    // Depth 1, anisotropic pooling and kernels: conv, ReLU, max pool, upsample, skip concatenation, head, loss.
    let net = UNet3d::random(spec(1, vec![[1, 2, 2]], vec![[1, 3, 3], [3, 3, 3]], 2), 7).unwrap();
    check_gradients(&net, &random_patch([3, 6, 8], 11));
    // Depth 2 with isotropic pooling and an even kernel (origin offset (k − 1) / 2 on the low side).
    let net = UNet3d::random(spec(2, vec![[2, 2, 2], [1, 2, 2]], vec![[2, 2, 2], [3, 3, 3], [1, 3, 3]], 2), 3).unwrap();
    check_gradients(&net, &random_patch([4, 8, 8], 5));
}

#[test]
fn pooling_and_upsampling_backward_are_the_adjoints_of_their_forward_passes() {
    // Upsampling is linear: <U x, g> = <x, Uᵀ g>.
    let f = [2, 1, 3];
    let x = Tensor::new([2, 2, 3, 2], uniform01(1, 24)).unwrap();
    let ux = neurotwin_segment::cnn::Upsample { factor: f }.forward(&x).unwrap();
    let g = Tensor::new(ux.shape(), uniform01(2, ux.data().len())).unwrap();
    let utg = backward::upsample_backward(f, &g);
    let lhs: f64 = ux.data().iter().zip(g.data()).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
    let rhs: f64 = x.data().iter().zip(utg.data()).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
    assert!((lhs - rhs).abs() < 1e-5 * lhs.abs(), "{lhs} vs {rhs}");
    // Max pooling routes each window's gradient to its (first) maximum: with ties the first one gets it all.
    let mut data = uniform01(3, 2 * 4 * 4);
    data[0] = 2.0;
    data[1] = 2.0; // a tie in the first window (x 0 and 1 of row 0)
    let x = Tensor::new([2, 1, 4, 4], data).unwrap();
    let pool = neurotwin_segment::cnn::MaxPool3d { factor: [1, 2, 2] };
    let y = pool.forward(&x).unwrap();
    let g = Tensor::new(y.shape(), uniform01(4, y.data().len())).unwrap();
    let gx = backward::maxpool_backward([1, 2, 2], &x, &g);
    assert_eq!(gx.data()[0], g.data()[0]);
    assert_eq!(gx.data()[1], 0.0);
    // Sum preserved, one non-zero per window, at the maximum.
    let total: f32 = gx.data().iter().sum();
    let want: f32 = g.data().iter().sum();
    assert!((total - want).abs() < 1e-5);
    assert_eq!(gx.data().iter().filter(|v| **v != 0.0).count(), y.data().len());
    for (i, &v) in gx.data().iter().enumerate() {
        if v != 0.0 {
            let (c, yy, xx) = (i / 16, (i / 4) % 4, i % 4);
            assert_eq!(x.data()[i], y.at(c, 0, yy / 2, xx / 2), "gradient at a non-maximum");
        }
    }
}

fn phantom_volume(seed: u64, noise: f64) -> TrainingVolume {
    let ph = generate(&PhantomConfig { shape: [8, 40, 40], cells: 6, noise, seed, ..PhantomConfig::default() });
    TrainingVolume::new(ph.raw, &ph.labels).unwrap()
}

fn small_config(steps: usize) -> TrainConfig {
    TrainConfig { patch: [4, 16, 16], batch: 2, steps, lr: 5e-3, seed: 9, ..TrainConfig::default() }
}

fn train(ops: &dyn TrainOps, net: &UNet3d, data: &TrainingVolume, cfg: &TrainConfig) -> (UNet3d, Vec<f64>) {
    let mut net = net.clone();
    let mut state = AdamState::new(&net);
    let losses = (0..cfg.steps).map(|_| train_step(ops, &mut net, &mut state, data, cfg)).collect();
    (net, losses)
}

fn bits(net: &UNet3d) -> Vec<u32> {
    net.named_tensors().iter().flat_map(|t| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()).collect()
}

#[test]
fn cpu_and_host_kernels_train_bit_identical_weights_for_any_thread_count() {
    let data = phantom_volume(3, 0.1);
    let cfg = small_config(3);
    let net = UNet3d::random(spec(1, vec![[1, 2, 2]], vec![[1, 3, 3], [3, 3, 3]], 4), 1).unwrap();
    let (cpu, cpu_losses) = train(&CpuOps, &net, &data, &cfg);
    let (host, host_losses) = train(&HostKernelOps, &net, &data, &cfg);
    assert_ne!(bits(&cpu), bits(&net), "training changed nothing");
    assert_eq!(bits(&cpu), bits(&host), "CPU and host-built kernels differ after {} steps", cfg.steps);
    assert_eq!(cpu_losses, host_losses);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (single, _) = one.install(|| train(&CpuOps, &net, &data, &cfg));
    let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    let (triple, _) = three.install(|| train(&CpuOps, &net, &data, &cfg));
    assert_eq!(bits(&cpu), bits(&single));
    assert_eq!(bits(&cpu), bits(&triple));
    // Another seed draws other patches: other weights.
    let (other, _) = train(&CpuOps, &net, &data, &TrainConfig { seed: 10, ..cfg });
    assert_ne!(bits(&cpu), bits(&other));
}

#[test]
fn augmented_patches_are_flips_and_transpositions_of_the_volume() {
    let data = phantom_volume(3, 0.1);
    let cfg = TrainConfig { patch: [4, 16, 16], ..TrainConfig::default() };
    let mut saw_transform = false;
    for t in 1..20 {
        let p = sample_patch(&data, &cfg, t, 0);
        // The multiset of targets must be that of some box of the volume, and every input value must be
        // gain · raw / 255 + offset for one (gain, offset): the target and input come from the same voxels.
        let ones = p.target.iter().filter(|v| **v > 0.5).count();
        assert!(ones < p.target.len());
        let same = sample_patch(&data, &cfg, t, 0);
        assert_eq!(p, same, "patch sampling is deterministic");
        let plain = sample_patch(
            &data,
            &TrainConfig {
                augment: neurotwin_segment::cnn::train::Augment {
                    flips: false,
                    transpose: false,
                    scale: 0.0,
                    shift: 0.0,
                },
                ..cfg.clone()
            },
            t,
            0,
        );
        let mut a: Vec<u32> = p.target.iter().map(|v| v.to_bits()).collect();
        let mut b: Vec<u32> = plain.target.iter().map(|v| v.to_bits()).collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "augmentation moves voxels, it does not change them");
        saw_transform |= p.target != plain.target;
    }
    assert!(saw_transform, "no patch was flipped or transposed in 19 draws");
}

#[test]
fn training_on_a_phantom_lowers_the_loss_on_another_phantom() {
    let train_data = phantom_volume(3, 0.1);
    let held_out = phantom_volume(4, 0.1);
    let net = UNet3d::random(spec(1, vec![[1, 2, 2]], vec![[1, 3, 3], [3, 3, 3]], 4), 1).unwrap();
    let eval = |net: &UNet3d| {
        let x = Tensor::from_volume(held_out.raw.shape, held_out.raw.data.iter().map(|&v| v as f32 / 255.0).collect())
            .unwrap();
        weighted_bce(logits(&CpuOps, net, &x).data(), &held_out.target, &held_out.weight)
    };
    let before = eval(&net);
    let (trained, losses) = train(&CpuOps, &net, &train_data, &TrainConfig { lr: 2e-3, ..small_config(250) });
    let after = eval(&trained);
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[240..].iter().sum::<f64>() / 10.0;
    println!("training loss {first:.3} -> {last:.3}, held-out {before:.3} -> {after:.3}");
    // Chance level of the class-balanced loss is ln 2 = 0.693.
    assert!(last < 0.75 * first && last < 0.6, "training loss {first} -> {last}");
    assert!(after < 0.8 * before && after < 0.6, "held-out loss {before} -> {after}");
}

#[test]
fn affinity_targets_pair_each_voxel_with_its_lower_neighbour() {
    use neurotwin_segment::cnn::train::affinity_target;
    // 2 × 3 × 3 labels: body 1 and body 2 side by side in x, a 0 (membrane) voxel, body 2 continuing in z.
    let labels: Vec<u64> = vec![
        1, 1, 2, //
        1, 0, 2, //
        1, 1, 2, //
        1, 1, 2, //
        3, 3, 2, //
        1, 1, 2,
    ];
    let shape = [2, 3, 3];
    let (t, valid) = affinity_target(&labels, shape);
    let n = 18;
    let at =
        |c: usize, z: usize, y: usize, x: usize| (t[c * n + (z * 3 + y) * 3 + x], valid[c * n + (z * 3 + y) * 3 + x]);
    // z channel: voxel (1, y, x) against (0, y, x).
    assert_eq!(at(0, 1, 0, 0), (1.0, true)); // 1 – 1
    assert_eq!(at(0, 1, 1, 0), (0.0, true)); // 3 – 1
    assert_eq!(at(0, 1, 1, 1), (0.0, true)); // 3 – 0
    assert_eq!(at(0, 1, 2, 2), (1.0, true)); // 2 – 2
    assert_eq!(at(0, 0, 1, 1), (0.0, false)); // no neighbour below z = 0
    // y channel: (z, y, x) against (z, y − 1, x).
    assert_eq!(at(1, 0, 1, 1), (0.0, true)); // 0 – 1: a 0 label has no affinity
    assert_eq!(at(1, 0, 2, 1), (0.0, true)); // 1 – 0
    assert_eq!(at(1, 0, 1, 0), (1.0, true));
    assert_eq!(at(1, 0, 0, 2), (0.0, false));
    // x channel: (z, y, x) against (z, y, x − 1).
    assert_eq!(at(2, 0, 0, 1), (1.0, true));
    assert_eq!(at(2, 0, 0, 2), (0.0, true)); // 2 – 1
    assert_eq!(at(2, 1, 1, 1), (1.0, true)); // 3 – 3
    assert_eq!(at(2, 1, 1, 0), (0.0, false));
    assert_eq!(valid.iter().filter(|v| !**v).count(), 9 + 6 + 6);
}

fn affinity_volume(seed: u64) -> TrainingVolume {
    let ph = generate(&PhantomConfig { shape: [8, 40, 40], cells: 6, noise: 0.1, seed, ..PhantomConfig::default() });
    TrainingVolume::for_output(OutputKind::Affinities, ph.raw, &ph.labels).unwrap()
}

fn affinity_spec() -> UNetSpec {
    UNetSpec {
        output: OutputKind::Affinities,
        out_channels: 3,
        ..spec(1, vec![[1, 2, 2]], vec![[1, 3, 3], [3, 3, 3]], 4)
    }
}

#[test]
fn affinity_patches_without_augmentation_are_crops_of_the_volume_targets() {
    let data = affinity_volume(3);
    let cfg = TrainConfig {
        patch: [4, 16, 16],
        augment: neurotwin_segment::cnn::train::Augment { flips: false, transpose: false, scale: 0.0, shift: 0.0 },
        ..TrainConfig::default()
    };
    let [nz, ny, nx] = data.raw.shape;
    let n = nz * ny * nx;
    let pn = 4 * 16 * 16;
    for t in 1..6 {
        let p = sample_patch(&data, &cfg, t, 0);
        assert_eq!(p.target.len(), 3 * pn);
        // Locate the patch: its input is raw / 255 of a box; find the origin by matching the first row.
        let first: Vec<f32> = p.input.data()[..16].to_vec();
        let mut origin = None;
        'find: for z in 0..=nz - 4 {
            for y in 0..=ny - 16 {
                for x in 0..=nx - 16 {
                    let i = (z * ny + y) * nx + x;
                    if (0..16).all(|k| data.raw.data[i + k] as f32 / 255.0 == first[k])
                        && (0..pn).all(|q| {
                            let (qz, qy, qx) = (q / 256, (q / 16) % 16, q % 16);
                            data.raw.data[((z + qz) * ny + y + qy) * nx + x + qx] as f32 / 255.0 == p.input.data()[q]
                        })
                    {
                        origin = Some([z, y, x]);
                        break 'find;
                    }
                }
            }
        }
        let [oz, oy, ox] = origin.expect("the patch is a box of the volume");
        for c in 0..3 {
            for q in 0..pn {
                let (qz, qy, qx) = (q / 256, (q / 16) % 16, q % 16);
                let v = ((oz + qz) * ny + oy + qy) * nx + ox + qx;
                let first_plane = [qz, qy, qx][c] == 0;
                if first_plane {
                    assert_eq!(p.weight[c * pn + q], 0.0, "the neighbour is outside the patch: not learnt");
                } else {
                    assert_eq!(p.target[c * pn + q], data.target[c * n + v]);
                    assert_eq!(p.weight[c * pn + q], data.weight[c * n + v]);
                }
            }
        }
    }
}

#[test]
fn affinity_networks_have_exact_gradients_and_train_identically_on_cpu_and_host_kernels() {
    let net = UNet3d::random(affinity_spec(), 5).unwrap();
    // Three output channels: targets and weights per channel.
    let dims = [3, 6, 8];
    let one = random_patch(dims, 21);
    let two = random_patch(dims, 31);
    let three = random_patch(dims, 41);
    let p = Patch {
        input: one.input,
        target: [one.target, two.target, three.target].concat(),
        weight: [one.weight, two.weight, three.weight].concat(),
    };
    check_gradients(&UNet3d::random(UNetSpec { base_channels: 2, ..affinity_spec() }, 5).unwrap(), &p);
    let data = affinity_volume(3);
    let cfg = small_config(2);
    let (cpu, _) = train(&CpuOps, &net, &data, &cfg);
    let (host, _) = train(&HostKernelOps, &net, &data, &cfg);
    assert_eq!(bits(&cpu), bits(&host));
    // It learns: held-out loss on another phantom falls.
    let held_out = affinity_volume(4);
    let before = neurotwin_segment::cnn::train::volume_loss(&net, &held_out);
    let (trained, _) = train(&CpuOps, &net, &data, &TrainConfig { lr: 2e-3, ..small_config(150) });
    let after = neurotwin_segment::cnn::train::volume_loss(&trained, &held_out);
    println!("affinities: held-out loss {before:.3} -> {after:.3}");
    assert!(after < 0.8 * before && after < 0.6, "held-out loss {before} -> {after}");
}
