//! Training the U-Net on labelled EM: boundary targets from ground-truth labels, class-balanced binary
//! cross-entropy on the logits, backpropagation through every layer, Adam (Kingma & Ba 2015), random patches
//! with flips, in-plane transposition and intensity jitter — on the CPU (rayon, [`super::backward`]) or
//! through the host build of the CUDA kernels (`kernels/cuda/cnn_train.cu` and `cnn.cu`), which give the same
//! weights bit for bit.
//!
//! # One step sequence
//! [`train_step`] is the only description of a training step: forward with a tape, loss gradient, backward,
//! gradient accumulation over the batch, Adam. It is generic over [`TrainOps`], whose two implementations
//! ([`CpuOps`], [`HostKernelOps`]) each perform one layer operation, so the order and arguments of the
//! operations a GPU would launch are the ones the CPU runs.
//!
//! # Determinism
//! Patches, flips, transpositions and intensity factors come from a counter-based generator keyed on
//! (seed, step, patch, draw); every gradient sum has a fixed order (see [`super::backward`]); patches of a batch
//! are accumulated in patch order. Same data + configuration + seed → bit-identical weights for any thread
//! count and either backend.

use neurotwin_kernels::host as k;
use serde::{Deserialize, Serialize};

use super::backward::{
    add_inplace, conv_grad_input, conv_grad_params, maxpool_backward, relu_backward, split_channels, upsample_backward,
};
use super::layers::{Conv3d, MaxPool3d, Upsample, concat, relu, sigmoid_f32};
use super::unet::splitmix64;
use super::{CnnError, OutputKind, Tensor, UNet3d};
use crate::volume::Volume;

/// Adam's constants for one step: `lr_t = lr · sqrt(1 − β2^t) / (1 − β1^t)` (computed in f64, rounded once).
pub use neurotwin_kernels::host::AdamStep;

/// The layer operations a training step needs. [`CpuOps`] runs the Rust layers, [`HostKernelOps`] the CUDA C
/// kernels built for the host; both give bit-identical results.
pub trait TrainOps: Sync {
    /// Convolution (bias included, no activation).
    fn conv(&self, c: &Conv3d, x: &Tensor) -> Tensor;
    /// ReLU in place.
    fn relu(&self, x: &mut Tensor);
    /// Max pooling by `f`.
    fn maxpool(&self, f: [usize; 3], x: &Tensor) -> Tensor;
    /// Nearest upsampling by `f`.
    fn upsample(&self, f: [usize; 3], x: &Tensor) -> Tensor;
    /// Channel concatenation `[a; b]`.
    fn concat(&self, a: &Tensor, b: &Tensor) -> Tensor;
    /// `∂L/∂input` of a convolution.
    fn conv_grad_input(&self, c: &Conv3d, g: &Tensor) -> Tensor;
    /// Adds `∂L/∂weight`, `∂L/∂bias` of a convolution onto `gw`, `gb`.
    fn conv_grad_params(&self, c: &Conv3d, input: &Tensor, g: &Tensor, gw: &mut [f32], gb: &mut [f32]);
    /// ReLU backward in place (`y` = the ReLU's output).
    fn relu_backward(&self, y: &Tensor, g: &mut Tensor);
    /// Max-pool backward.
    fn maxpool_backward(&self, f: [usize; 3], input: &Tensor, g: &Tensor) -> Tensor;
    /// Upsampling backward.
    fn upsample_backward(&self, f: [usize; 3], g: &Tensor) -> Tensor;
    /// `dst += src`.
    fn add_inplace(&self, src: &Tensor, dst: &mut Tensor);
    /// `∂L/∂logit = ((sigmoid(s) − target) · weight) · scale`.
    fn bce_grad(&self, logits: &Tensor, target: &[f32], weight: &[f32], scale: f32) -> Tensor;
    /// One Adam update of `w` with gradient `g` and moments `m`, `v`.
    fn adam(&self, step: &AdamStep, g: &[f32], m: &mut [f32], v: &mut [f32], w: &mut [f32]);
}

/// The Rust layers (rayon).
pub struct CpuOps;

impl TrainOps for CpuOps {
    fn conv(&self, c: &Conv3d, x: &Tensor) -> Tensor {
        c.forward(x).expect("conv shapes are consistent in training")
    }
    fn relu(&self, x: &mut Tensor) {
        relu(x);
    }
    fn maxpool(&self, f: [usize; 3], x: &Tensor) -> Tensor {
        MaxPool3d { factor: f }.forward(x).expect("patch dims are multiples of the pool factors")
    }
    fn upsample(&self, f: [usize; 3], x: &Tensor) -> Tensor {
        Upsample { factor: f }.forward(x).expect("upsample factor > 0")
    }
    fn concat(&self, a: &Tensor, b: &Tensor) -> Tensor {
        concat(a, b).expect("skip and upsampled dims agree")
    }
    fn conv_grad_input(&self, c: &Conv3d, g: &Tensor) -> Tensor {
        conv_grad_input(c, g)
    }
    fn conv_grad_params(&self, c: &Conv3d, input: &Tensor, g: &Tensor, gw: &mut [f32], gb: &mut [f32]) {
        conv_grad_params(c, input, g, gw, gb);
    }
    fn relu_backward(&self, y: &Tensor, g: &mut Tensor) {
        relu_backward(y, g);
    }
    fn maxpool_backward(&self, f: [usize; 3], input: &Tensor, g: &Tensor) -> Tensor {
        maxpool_backward(f, input, g)
    }
    fn upsample_backward(&self, f: [usize; 3], g: &Tensor) -> Tensor {
        upsample_backward(f, g)
    }
    fn add_inplace(&self, src: &Tensor, dst: &mut Tensor) {
        add_inplace(src, dst);
    }
    fn bce_grad(&self, logits: &Tensor, target: &[f32], weight: &[f32], scale: f32) -> Tensor {
        use rayon::prelude::*;
        let data = logits
            .data()
            .par_iter()
            .zip(target.par_iter().zip(weight.par_iter()))
            .map(|(&s, (&y, &w))| ((sigmoid_f32(s) - y) * w) * scale)
            .collect();
        Tensor::new(logits.shape(), data).expect("same shape")
    }
    fn adam(&self, st: &AdamStep, g: &[f32], m: &mut [f32], v: &mut [f32], w: &mut [f32]) {
        use rayon::prelude::*;
        w.par_iter_mut().zip(m.par_iter_mut().zip(v.par_iter_mut())).zip(g.par_iter()).for_each(|((w, (m, v)), &g)| {
            let mm = st.beta1 * *m + st.one_minus_beta1 * g;
            let vv = st.beta2 * *v + st.one_minus_beta2 * (g * g);
            *w -= (st.lr_t * mm) / (vv.sqrt() + st.eps);
            *m = mm;
            *v = vv;
        });
    }
}

/// The CUDA C kernels of `cnn.cu` and `cnn_train.cu` built for the host, one launch per operation as a GPU
/// would run them.
pub struct HostKernelOps;

fn shaped(shape: [usize; 4], data: Vec<f32>) -> Tensor {
    Tensor::new(shape, data).expect("kernel output shape")
}

impl TrainOps for HostKernelOps {
    fn conv(&self, c: &Conv3d, x: &Tensor) -> Tensor {
        let d = x.dims();
        let mut out = vec![0.0; c.out_channels() * x.voxels()];
        k::cnn_conv3d_same(c.in_channels(), c.out_channels(), d, c.kernel(), x.data(), c.weight(), c.bias(), &mut out);
        shaped([c.out_channels(), d[0], d[1], d[2]], out)
    }
    fn relu(&self, x: &mut Tensor) {
        k::cnn_relu(x.data_mut());
    }
    fn maxpool(&self, f: [usize; 3], x: &Tensor) -> Tensor {
        let (d, c) = (x.dims(), x.channels());
        let od = [d[0] / f[0], d[1] / f[1], d[2] / f[2]];
        let mut out = vec![0.0; c * od[0] * od[1] * od[2]];
        k::cnn_maxpool3d(c, d, f, x.data(), &mut out);
        shaped([c, od[0], od[1], od[2]], out)
    }
    fn upsample(&self, f: [usize; 3], x: &Tensor) -> Tensor {
        let (d, c) = (x.dims(), x.channels());
        let ud = [d[0] * f[0], d[1] * f[1], d[2] * f[2]];
        let mut out = vec![0.0; c * ud[0] * ud[1] * ud[2]];
        k::cnn_upsample_nearest3d(c, d, f, x.data(), &mut out);
        shaped([c, ud[0], ud[1], ud[2]], out)
    }
    fn concat(&self, a: &Tensor, b: &Tensor) -> Tensor {
        let d = a.dims();
        let mut out = vec![0.0; a.data().len() + b.data().len()];
        k::cnn_concat_channels(a.channels(), b.channels(), a.voxels(), a.data(), b.data(), &mut out);
        shaped([a.channels() + b.channels(), d[0], d[1], d[2]], out)
    }
    fn conv_grad_input(&self, c: &Conv3d, g: &Tensor) -> Tensor {
        let d = g.dims();
        let mut out = vec![0.0; c.in_channels() * g.voxels()];
        k::cnn_conv3d_grad_input(c.in_channels(), c.out_channels(), d, c.kernel(), g.data(), c.weight(), &mut out);
        shaped([c.in_channels(), d[0], d[1], d[2]], out)
    }
    fn conv_grad_params(&self, c: &Conv3d, input: &Tensor, g: &Tensor, gw: &mut [f32], gb: &mut [f32]) {
        let d = g.dims();
        let mut partial = vec![0.0; gw.len() * d[0]];
        k::cnn_conv3d_grad_weight_planes(
            c.in_channels(),
            c.out_channels(),
            d,
            c.kernel(),
            input.data(),
            g.data(),
            &mut partial,
        );
        k::cnn_sum_planes_acc(d[0], &partial, gw);
        let mut partial_b = vec![0.0; gb.len() * d[0]];
        k::cnn_bias_grad_planes(c.out_channels(), d, g.data(), &mut partial_b);
        k::cnn_sum_planes_acc(d[0], &partial_b, gb);
    }
    fn relu_backward(&self, y: &Tensor, g: &mut Tensor) {
        k::cnn_relu_backward(y.data(), g.data_mut());
    }
    fn maxpool_backward(&self, f: [usize; 3], input: &Tensor, g: &Tensor) -> Tensor {
        let mut out = vec![0.0; input.data().len()];
        k::cnn_maxpool3d_backward(input.channels(), input.dims(), f, input.data(), g.data(), &mut out);
        shaped(input.shape(), out)
    }
    fn upsample_backward(&self, f: [usize; 3], g: &Tensor) -> Tensor {
        let ud = g.dims();
        let d = [ud[0] / f[0], ud[1] / f[1], ud[2] / f[2]];
        let mut out = vec![0.0; g.channels() * d[0] * d[1] * d[2]];
        k::cnn_upsample_nearest3d_backward(g.channels(), d, f, g.data(), &mut out);
        shaped([g.channels(), d[0], d[1], d[2]], out)
    }
    fn add_inplace(&self, src: &Tensor, dst: &mut Tensor) {
        k::cnn_add_inplace(src.data(), dst.data_mut());
    }
    fn bce_grad(&self, logits: &Tensor, target: &[f32], weight: &[f32], scale: f32) -> Tensor {
        let mut out = vec![0.0; logits.data().len()];
        k::cnn_bce_logit_grad(logits.data(), target, weight, scale, &mut out);
        shaped(logits.shape(), out)
    }
    fn adam(&self, st: &AdamStep, g: &[f32], m: &mut [f32], v: &mut [f32], w: &mut [f32]) {
        k::cnn_adam(st, g, m, v, w);
    }
}

/// The activations of one forward pass that the backward pass needs: per block its input and the output of
/// each convolution (after ReLU); the head's logits.
struct Tape {
    down: Vec<Vec<Tensor>>,
    bottom: Vec<Tensor>,
    up: Vec<Vec<Tensor>>,
    logits: Tensor,
}

fn block_forward(ops: &dyn TrainOps, convs: &[Conv3d], x: Tensor) -> Vec<Tensor> {
    let mut acts = vec![x];
    for c in convs {
        let mut y = ops.conv(c, acts.last().expect("block input"));
        ops.relu(&mut y);
        acts.push(y);
    }
    acts
}

fn forward_tape(ops: &dyn TrainOps, net: &UNet3d, x: Tensor) -> Tape {
    let spec = net.spec();
    let super::unet::Blocks { down: down_convs, bottom: bottom_convs, up: up_convs, head } = net.blocks();
    let mut x = x;
    let mut down = Vec::with_capacity(spec.depth);
    for (l, convs) in down_convs.iter().enumerate() {
        let acts = block_forward(ops, convs, x);
        x = ops.maxpool(spec.pool[l], acts.last().expect("block output"));
        down.push(acts);
    }
    let bottom = block_forward(ops, bottom_convs, x);
    let mut x = bottom.last().expect("bottom output").clone();
    let mut up: Vec<Vec<Tensor>> = (0..spec.depth).map(|_| Vec::new()).collect();
    for l in (0..spec.depth).rev() {
        let u = ops.upsample(spec.pool[l], &x);
        let cat = ops.concat(down[l].last().expect("skip"), &u);
        up[l] = block_forward(ops, &up_convs[l], cat);
        x = up[l].last().expect("up output").clone();
    }
    let logits = ops.conv(head, &x);
    Tape { down, bottom, up, logits }
}

/// Gradients (or Adam moments) of every convolution, in [`UNet3d::convs`] order: `(weight, bias)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamBufs(pub Vec<(Vec<f32>, Vec<f32>)>);

impl ParamBufs {
    /// Zeros shaped like `net`'s parameters.
    pub fn zeros(net: &UNet3d) -> Self {
        Self(net.convs().map(|c| (vec![0.0; c.weight().len()], vec![0.0; c.bias().len()])).collect())
    }
    fn clear(&mut self) {
        for (w, b) in &mut self.0 {
            w.fill(0.0);
            b.fill(0.0);
        }
    }
}

/// Backward through one block (convolutions with ReLU); `g` is the gradient of its output; returns the
/// gradient of its input (`None` when `need_input` is false: the network's input needs none).
fn block_backward(
    ops: &dyn TrainOps,
    convs: &[Conv3d],
    acts: &[Tensor],
    mut g: Tensor,
    grads: &mut [(Vec<f32>, Vec<f32>)],
    need_input: bool,
) -> Option<Tensor> {
    for i in (0..convs.len()).rev() {
        ops.relu_backward(&acts[i + 1], &mut g);
        let (gw, gb) = &mut grads[i];
        ops.conv_grad_params(&convs[i], &acts[i], &g, gw, gb);
        if i == 0 && !need_input {
            return None;
        }
        g = ops.conv_grad_input(&convs[i], &g);
    }
    Some(g)
}

/// Adds the gradient of one patch's loss (`∂L/∂logit` = [`TrainOps::bce_grad`] with `scale`) onto `grads`;
/// returns the logits.
fn accumulate_gradient(ops: &dyn TrainOps, net: &UNet3d, patch: &Patch, scale: f32, grads: &mut ParamBufs) -> Tensor {
    let spec = net.spec();
    let n = spec.convs_per_block;
    let depth = spec.depth;
    let tape = forward_tape(ops, net, patch.input.clone());
    let super::unet::Blocks { down: down_convs, bottom: bottom_convs, up: up_convs, head } = net.blocks();
    // Parameter slots in convs() order: down blocks, bottom, up blocks (by level), head.
    let (down_g, rest) = grads.0.split_at_mut(depth * n);
    let (bottom_g, rest) = rest.split_at_mut(n);
    let (up_g, head_g) = rest.split_at_mut(depth * n);
    let g_logits = ops.bce_grad(&tape.logits, &patch.target, &patch.weight, scale);
    let last = if depth > 0 { tape.up[0].last() } else { tape.bottom.last() }.expect("head input");
    let (hw, hb) = &mut head_g[0];
    ops.conv_grad_params(head, last, &g_logits, hw, hb);
    let mut g = ops.conv_grad_input(head, &g_logits);
    let mut skip_grads: Vec<Option<Tensor>> = (0..depth).map(|_| None).collect();
    for l in 0..depth {
        let gc = block_backward(ops, &up_convs[l], &tape.up[l], g, &mut up_g[l * n..(l + 1) * n], true)
            .expect("input gradient requested");
        let (g_skip, g_up) = split_channels(&gc, spec.channels(l));
        skip_grads[l] = Some(g_skip);
        // The gradient of what was upsampled: up[l + 1]'s output, or the bottom's when l is the deepest level.
        g = ops.upsample_backward(spec.pool[l], &g_up);
    }
    let need = depth > 0;
    let mut g = block_backward(ops, bottom_convs, &tape.bottom, g, bottom_g, need);
    for l in (0..depth).rev() {
        let skip = tape.down[l].last().expect("skip");
        let mut gs = ops.maxpool_backward(spec.pool[l], skip, &g.take().expect("bottom/down gradient"));
        ops.add_inplace(skip_grads[l].as_ref().expect("skip gradient"), &mut gs);
        g = block_backward(ops, &down_convs[l], &tape.down[l], gs, &mut down_g[l * n..(l + 1) * n], l > 0);
    }
    tape.logits
}

/// One patch of training data: input (1 channel, raw / 255 after augmentation), targets (0/1) and loss weights
/// per output channel and voxel (channel-major, as the network's output).
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    /// `[1, z, y, x]`.
    pub input: Tensor,
    /// Target per channel and voxel.
    pub target: Vec<f32>,
    /// Loss weight per channel and voxel (0: not learnt).
    pub weight: Vec<f32>,
}

/// Labelled training data: raw EM and the targets derived from ground-truth labels, with per-voxel loss weights.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingVolume {
    /// Raw EM, u8.
    pub raw: Volume<u8>,
    /// What the network learns: a boundary map (1 channel) or nearest-neighbour affinities (3 channels).
    pub output: OutputKind,
    /// Ground-truth labels (z-major), from which the affinity targets of each transformed patch are made.
    pub labels: Vec<u64>,
    /// Target per channel and voxel (channel-major, as the network's output): [`boundary_target`] or
    /// [`affinity_target`].
    pub target: Vec<f32>,
    /// Loss weight per channel and voxel: its class's weight, 0 where the target is undefined (the affinity to a
    /// voxel outside the volume).
    pub weight: Vec<f32>,
    /// Per channel, the weight of a positive (boundary / same body) and of a negative voxel: each class carries
    /// half of the channel's total weight.
    pub class_weight: Vec<[f32; 2]>,
}

/// The boundary target of a label volume: 1 where the label is 0 (unlabelled / membrane, CREMI and gala
/// convention) or differs from a 6-neighbour, else 0. The boundary is therefore two voxels wide between touching
/// bodies, as a membrane is in most ground truths.
pub fn boundary_target(labels: &Volume<u64>) -> Vec<f32> {
    let [nz, ny, nx] = labels.shape;
    let l = &labels.data;
    let mut t = vec![0f32; l.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = (z * ny + y) * nx + x;
                let v = l[i];
                let differs = |j: usize| l[j] != v;
                let b = v == 0
                    || (z > 0 && differs(i - ny * nx))
                    || (z + 1 < nz && differs(i + ny * nx))
                    || (y > 0 && differs(i - nx))
                    || (y + 1 < ny && differs(i + nx))
                    || (x > 0 && differs(i - 1))
                    || (x + 1 < nx && differs(i + 1));
                t[i] = if b { 1.0 } else { 0.0 };
            }
        }
    }
    t
}

/// Nearest-neighbour affinity targets of labels of `shape` (z-major): channel c ∈ {z, y, x} at voxel v is 1 when
/// v and its neighbour v − e_c carry the same non-zero label, else 0 (Lee et al. 2017 / Turaga et al. 2010
/// convention: offsets (−1, 0, 0), (0, −1, 0), (0, 0, −1)); `valid` is false where v − e_c lies outside (the
/// first plane along c), whose target is 0 and must not be learnt. Both channel-major, `3 · n` long.
pub fn affinity_target(labels: &[u64], shape: [usize; 3]) -> (Vec<f32>, Vec<bool>) {
    let [nz, ny, nx] = shape;
    let n = nz * ny * nx;
    let strides = [ny * nx, nx, 1];
    let mut t = vec![0f32; 3 * n];
    let mut valid = vec![false; 3 * n];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = (z * ny + y) * nx + x;
                for (c, &coord) in [z, y, x].iter().enumerate() {
                    if coord == 0 {
                        continue;
                    }
                    valid[c * n + i] = true;
                    let (a, b) = (labels[i], labels[i - strides[c]]);
                    t[c * n + i] = if a != 0 && a == b { 1.0 } else { 0.0 };
                }
            }
        }
    }
    (t, valid)
}

/// Class weights per channel (`[positive, negative]`, each class half the channel's weight over its valid
/// voxels) and the per-voxel weights (0 where not valid). Fails when a channel lacks a class.
fn class_weights(target: &[f32], valid: &[bool], channels: usize) -> Result<(Vec<[f32; 2]>, Vec<f32>), CnnError> {
    let n = target.len() / channels;
    let mut class_weight = Vec::with_capacity(channels);
    for c in 0..channels {
        let (t, v) = (&target[c * n..(c + 1) * n], &valid[c * n..(c + 1) * n]);
        let total = v.iter().filter(|&&b| b).count();
        let pos = t.iter().zip(v).filter(|&(&x, &b)| b && x > 0.5).count();
        if pos == 0 || pos == total {
            return Err(CnnError::Shape(format!(
                "the ground truth gives {pos} positive targets of {total} in output channel {c}: nothing to learn \
                 from (labels all one body, or all 0)"
            )));
        }
        let frac = pos as f64 / total as f64;
        class_weight.push([(0.5 / frac) as f32, (0.5 / (1.0 - frac)) as f32]);
    }
    let weight = voxel_weights(target, valid, &class_weight);
    Ok((class_weight, weight))
}

/// The loss weight of every channel and voxel: its class's weight from `class_weight` (per channel), 0 where
/// the target is not `valid`.
fn voxel_weights(target: &[f32], valid: &[bool], class_weight: &[[f32; 2]]) -> Vec<f32> {
    let n = target.len() / class_weight.len();
    (0..target.len())
        .map(|i| {
            let cw = class_weight[i / n];
            if !valid[i] {
                0.0
            } else if target[i] > 0.5 {
                cw[0]
            } else {
                cw[1]
            }
        })
        .collect()
}

impl TrainingVolume {
    /// Raw EM with its ground-truth labels (same shape) for a boundary network; fails on a shape mismatch or
    /// when either class is absent.
    pub fn new(raw: Volume<u8>, labels: &Volume<u64>) -> Result<Self, CnnError> {
        Self::for_output(OutputKind::Boundary, raw, labels)
    }

    /// Raw EM with its ground-truth labels for a network with `output` (boundary or affinities).
    pub fn for_output(output: OutputKind, raw: Volume<u8>, labels: &Volume<u64>) -> Result<Self, CnnError> {
        if raw.shape != labels.shape {
            return Err(CnnError::Shape(format!(
                "raw volume {:?} and ground-truth labels {:?} (z, y, x) differ in shape",
                raw.shape, labels.shape
            )));
        }
        let (target, valid, channels) = match output {
            OutputKind::Boundary => {
                let t = boundary_target(labels);
                let v = vec![true; t.len()];
                (t, v, 1)
            }
            OutputKind::Affinities => {
                let (t, v) = affinity_target(&labels.data, labels.shape);
                (t, v, 3)
            }
        };
        let (class_weight, weight) = class_weights(&target, &valid, channels)?;
        Ok(Self { raw, output, labels: labels.data.clone(), target, weight, class_weight })
    }

    /// Fraction of positive targets (boundary, or same body) per channel over its valid voxels.
    pub fn positive_fraction(&self) -> Vec<f64> {
        let channels = self.class_weight.len();
        let n = self.target.len() / channels;
        (0..channels)
            .map(|c| {
                let w = &self.weight[c * n..(c + 1) * n];
                let t = &self.target[c * n..(c + 1) * n];
                let valid = w.iter().filter(|&&x| x > 0.0).count();
                t.iter().zip(w).filter(|&(&x, &wv)| wv > 0.0 && x > 0.5).count() as f64 / valid as f64
            })
            .collect()
    }

    /// Fraction of boundary voxels: boundary targets, or for affinities the voxels with no affinity to any
    /// neighbour.
    pub fn boundary_fraction(&self) -> f64 {
        let n = self.raw.data.len();
        let count = match self.output {
            OutputKind::Boundary => self.target.iter().filter(|&&v| v > 0.5).count(),
            OutputKind::Affinities => (0..n).filter(|&i| (0..3).all(|c| self.target[c * n + i] < 0.5)).count(),
        };
        count as f64 / n as f64
    }
}

/// Augmentation settings (each draw per patch from the counter-based generator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    /// Random flips along z, y and x.
    pub flips: bool,
    /// Random exchange of y and x (with the flips: the eight in-plane 90° rotations and reflections); only when
    /// the patch is square in y, x.
    pub transpose: bool,
    /// Intensity scale drawn from `1 ± scale`.
    pub scale: f32,
    /// Intensity shift drawn from `± shift` (in units of the full range, raw / 255).
    pub shift: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Self { flips: true, transpose: true, scale: 0.1, shift: 0.1 }
    }
}

/// Training settings. The defaults are the recipe of the shipped network (`segment/weights/MODEL_CARD.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Patch size (voxels, z y x); each a multiple of the network's total pool factor.
    pub patch: [usize; 3],
    /// Patches per step (gradients summed in patch order).
    pub batch: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam β1, β2, ε (Kingma & Ba 2015 defaults 0.9, 0.999, 1e-8).
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Seed of patch positions, augmentation (and of the initial weights when none are given).
    pub seed: u64,
    pub augment: Augment,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            patch: [16, 64, 64],
            batch: 2,
            steps: 800,
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            seed: 1,
            augment: Augment::default(),
        }
    }
}

impl TrainConfig {
    /// Checks the settings against the network and the training volume.
    pub fn validate(&self, net: &UNet3d, data: &TrainingVolume) -> Result<(), CnnError> {
        let m = net.spec().total_pool();
        let bad = |s: String| Err(CnnError::Architecture(s));
        if self.patch.contains(&0) || (0..3).any(|a| !self.patch[a].is_multiple_of(m[a])) {
            return bad(format!(
                "training patch {:?} (z, y, x) must be a positive multiple of the network's pool product {m:?} per axis",
                self.patch
            ));
        }
        if (0..3).any(|a| self.patch[a] > data.raw.shape[a]) {
            return bad(format!(
                "training patch {:?} is larger than the training volume {:?} (z, y, x); choose a smaller --patch",
                self.patch, data.raw.shape
            ));
        }
        if self.batch == 0 || self.steps == 0 {
            return bad("batch and steps must be >= 1".into());
        }
        let in01 = |v: f64| v > 0.0 && v < 1.0;
        let adam_ok = self.lr.is_finite() && self.lr > 0.0 && in01(self.beta1) && in01(self.beta2) && self.eps > 0.0;
        if !adam_ok {
            return bad(format!(
                "Adam needs lr > 0, 0 < beta1, beta2 < 1, eps > 0 (got lr {}, beta1 {}, beta2 {}, eps {})",
                self.lr, self.beta1, self.beta2, self.eps
            ));
        }
        if net.spec().in_channels != 1 {
            return bad(format!(
                "training takes raw EM: the network needs 1 input channel, not {}",
                net.spec().in_channels
            ));
        }
        if net.spec().output != data.output {
            return bad(format!(
                "the network predicts {:?} but the training targets are {:?}; prepare the data for the network's output",
                net.spec().output,
                data.output
            ));
        }
        Ok(())
    }

    /// Adam's constants of step `t` (1-based).
    pub fn adam_step(&self, t: u64) -> AdamStep {
        let lr_t = self.lr * (1.0 - self.beta2.powi(t as i32)).sqrt() / (1.0 - self.beta1.powi(t as i32));
        AdamStep {
            lr_t: lr_t as f32,
            beta1: self.beta1 as f32,
            one_minus_beta1: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            eps: self.eps as f32,
        }
    }
}

/// Uniform in [0, 1) of draw `k` of patch `b` at step `t` (counter-based: splitmix64 of a key).
fn uniform(seed: u64, t: u64, b: u64, k: u64) -> f64 {
    let key = splitmix64(seed ^ splitmix64(t.wrapping_mul(0x9E37_79B9).wrapping_add(b) ^ (k << 48)));
    (splitmix64(key) >> 11) as f64 / (1u64 << 53) as f64
}

/// Patch `b` of step `t`: a random box of the training volume, flipped / transposed and intensity-jittered as
/// drawn; target and weights go through the same geometric transform.
pub fn sample_patch(data: &TrainingVolume, cfg: &TrainConfig, t: u64, b: u64) -> Patch {
    let s = data.raw.shape;
    let p = cfg.patch;
    let u = |k: u64| uniform(cfg.seed, t, b, k);
    let origin: [usize; 3] = [0, 1, 2].map(|a| ((u(a as u64) * (s[a] - p[a] + 1) as f64) as usize).min(s[a] - p[a]));
    let a = &cfg.augment;
    let flip: [bool; 3] = [3, 4, 5].map(|k| a.flips && u(k) < 0.5);
    let transpose = a.transpose && p[1] == p[2] && u(6) < 0.5;
    let gain = (1.0 + f64::from(a.scale) * (2.0 * u(7) - 1.0)) as f32;
    let offset = (f64::from(a.shift) * (2.0 * u(8) - 1.0)) as f32;
    let n = p[0] * p[1] * p[2];
    // Source voxel of every patch voxel (z, y, x) after the transform.
    let mut src = Vec::with_capacity(n);
    for z in 0..p[0] {
        for y in 0..p[1] {
            for x in 0..p[2] {
                let (mut qy, mut qx) = if transpose { (x, y) } else { (y, x) };
                let mut qz = z;
                if flip[0] {
                    qz = p[0] - 1 - qz;
                }
                if flip[1] {
                    qy = p[1] - 1 - qy;
                }
                if flip[2] {
                    qx = p[2] - 1 - qx;
                }
                src.push(data.raw.idx(origin[0] + qz, origin[1] + qy, origin[2] + qx));
            }
        }
    }
    let input = src.iter().map(|&i| crate::volume::unit_intensity(data.raw.data[i]) * gain + offset).collect();
    let (target, weight) = match data.output {
        // The boundary target is symmetric: moved with its voxel.
        OutputKind::Boundary => {
            (src.iter().map(|&i| data.target[i]).collect(), src.iter().map(|&i| data.weight[i]).collect())
        }
        // Affinities point to the neighbour at −1 along an axis of the patch: made from the moved labels.
        OutputKind::Affinities => {
            let labels: Vec<u64> = src.iter().map(|&i| data.labels[i]).collect();
            let (target, valid) = affinity_target(&labels, p);
            let weight = voxel_weights(&target, &valid, &data.class_weight);
            (target, weight)
        }
    };
    Patch { input: Tensor::new([1, p[0], p[1], p[2]], input).expect("patch shape"), target, weight }
}

/// Class-weighted binary cross-entropy of logits per voxel, `Σ w·(softplus(s) − y·s) / N` in f64 (the loss whose
/// gradient [`train_step`] follows; reported, not differentiated).
pub fn weighted_bce(logits: &[f32], target: &[f32], weight: &[f32]) -> f64 {
    let mut num = 0.0f64;
    for ((&s, &y), &w) in logits.iter().zip(target).zip(weight) {
        let s = f64::from(s);
        let softplus = if s > 0.0 { s + (-s).exp().ln_1p() } else { s.exp().ln_1p() };
        num += f64::from(w) * (softplus - f64::from(y) * s);
    }
    num / logits.len().max(1) as f64
}

/// One optimiser step: the batch's gradients accumulated in patch order (each patch's loss scaled by
/// `1 / (batch · patch voxels)`), then Adam on every tensor. Returns the batch's mean weighted BCE.
pub fn train_step(
    ops: &dyn TrainOps,
    net: &mut UNet3d,
    state: &mut AdamState,
    data: &TrainingVolume,
    cfg: &TrainConfig,
) -> f64 {
    let t = state.t + 1;
    state.grads.clear();
    let scale = (1.0 / (cfg.batch * cfg.patch.iter().product::<usize>()) as f64) as f32;
    let mut loss = 0.0;
    for b in 0..cfg.batch as u64 {
        let patch = sample_patch(data, cfg, t, b);
        let logits = accumulate_gradient(ops, net, &patch, scale, &mut state.grads);
        loss += weighted_bce(logits.data(), &patch.target, &patch.weight);
    }
    let step = cfg.adam_step(t);
    for ((conv, (gw, gb)), ((mw, mb), (vw, vb))) in
        net.convs_mut().zip(&state.grads.0).zip(state.m.0.iter_mut().zip(state.v.0.iter_mut()))
    {
        let (w, bias) = conv.params_mut();
        ops.adam(&step, gw, mw, vw, w);
        ops.adam(&step, gb, mb, vb, bias);
    }
    state.t = t;
    loss / cfg.batch as f64
}

/// Adam's moments, the step count and the gradient buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamState {
    /// Steps taken.
    pub t: u64,
    /// First moments.
    pub m: ParamBufs,
    /// Second moments.
    pub v: ParamBufs,
    /// The last step's gradients.
    pub grads: ParamBufs,
}

impl AdamState {
    /// A fresh state for `net`.
    pub fn new(net: &UNet3d) -> Self {
        Self { t: 0, m: ParamBufs::zeros(net), v: ParamBufs::zeros(net), grads: ParamBufs::zeros(net) }
    }
}

/// The gradient of the loss of `patch` (scaled by `scale`) with respect to every parameter, without updating
/// anything (for gradient checks).
pub fn gradient(ops: &dyn TrainOps, net: &UNet3d, patch: &Patch, scale: f32) -> (ParamBufs, f64) {
    let mut grads = ParamBufs::zeros(net);
    let logits = accumulate_gradient(ops, net, patch, scale, &mut grads);
    (grads, weighted_bce(logits.data(), &patch.target, &patch.weight))
}

/// The logits of `net` on `input` through `ops` (the training forward pass).
pub fn logits(ops: &dyn TrainOps, net: &UNet3d, input: &Tensor) -> Tensor {
    forward_tape(ops, net, input.clone()).logits
}

/// The weighted BCE of `net` over a whole labelled volume (validation): the volume padded by edge replication
/// to a multiple of the pool product, logits on the CPU layers, the loss over the original voxels.
pub fn volume_loss(net: &UNet3d, data: &TrainingVolume) -> f64 {
    let s = data.raw.shape;
    let m = net.spec().total_pool();
    let padded = [s[0].next_multiple_of(m[0]), s[1].next_multiple_of(m[1]), s[2].next_multiple_of(m[2])];
    let x =
        Tensor::new([1, s[0], s[1], s[2]], data.raw.data.iter().map(|&v| crate::volume::unit_intensity(v)).collect())
            .expect("volume shape")
            .pad_replicate(padded);
    let y = logits(&CpuOps, net, &x).crop(s);
    weighted_bce(y.data(), &data.target, &data.weight)
}

/// One entry of the training history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Optimiser step (1-based).
    pub step: u64,
    /// The step's batch loss (weighted BCE per voxel).
    pub train_loss: f64,
    /// Loss over the whole validation volume, at evaluation steps.
    pub validation_loss: Option<f64>,
    /// Seconds since the start of training.
    pub seconds: f64,
}

/// Trains `net` for `cfg.steps` steps on `data`, evaluating the loss on `validation` every `eval_every` steps
/// and after the last; `on_step` sees each entry as it is made (progress). Returns the history.
pub fn train(
    ops: &dyn TrainOps,
    net: &mut UNet3d,
    data: &TrainingVolume,
    validation: Option<&TrainingVolume>,
    cfg: &TrainConfig,
    eval_every: usize,
    on_step: &mut dyn FnMut(&HistoryEntry),
) -> Result<Vec<HistoryEntry>, CnnError> {
    cfg.validate(net, data)?;
    let start = std::time::Instant::now();
    let mut state = AdamState::new(net);
    let mut history = Vec::with_capacity(cfg.steps);
    for s in 1..=cfg.steps {
        let train_loss = train_step(ops, net, &mut state, data, cfg);
        if !train_loss.is_finite() {
            return Err(CnnError::Architecture(format!(
                "training diverged at step {s} (loss {train_loss}); lower --lr (now {})",
                cfg.lr
            )));
        }
        let eval = eval_every > 0 && (s % eval_every == 0 || s == cfg.steps);
        let validation_loss = validation.filter(|_| eval).map(|v| volume_loss(net, v));
        let e = HistoryEntry { step: s as u64, train_loss, validation_loss, seconds: start.elapsed().as_secs_f64() };
        on_step(&e);
        history.push(e);
    }
    Ok(history)
}
