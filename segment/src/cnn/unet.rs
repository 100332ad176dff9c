//! The U-Net: architecture description, assembly from named tensors, inference on the CPU, through the
//! host build of the CUDA kernels or on a GPU, deterministic random initialisation and the hand-designed edge detector.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Once;

use neurotwin_kernels::backend_kind::BackendKind;
use neurotwin_kernels::host as k;
use serde::{Deserialize, Serialize};

use super::cuda::{DevTensor, Gpu, gpu_device_name};
use super::layers::{Conv3d, MaxPool3d, Upsample, concat, relu, sigmoid};
use super::weights::{NamedTensor, read_weights, write_weights_with};
use super::{CnnError, Tensor};

/// What the output channels mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// One channel: probability that the voxel is a boundary (membrane).
    Boundary,
    /// Three channels: nearest-neighbour affinities along z, y, x.
    Affinities,
}

/// The architecture of a [`UNet3d`], stored as JSON in the weights file metadata (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetSpec {
    /// Input channels (1 for raw EM).
    pub in_channels: usize,
    /// Output channels: 1 for [`OutputKind::Boundary`], 3 for [`OutputKind::Affinities`].
    pub out_channels: usize,
    /// Meaning of the output.
    pub output: OutputKind,
    /// Channels at level 0.
    pub base_channels: usize,
    /// Channel multiplier per level.
    pub channel_factor: usize,
    /// Number of poolings (levels are `0..=depth`).
    pub depth: usize,
    /// Pool (and upsampling) factor `[z, y, x]` below each level `0..depth`.
    pub pool: Vec<[usize; 3]>,
    /// Convolution kernel `[kz, ky, kx]` of each level `0..=depth`.
    pub kernels: Vec<[usize; 3]>,
    /// Convolutions (each followed by ReLU) per block.
    pub convs_per_block: usize,
}

impl UNetSpec {
    /// Checks the description for consistency.
    pub fn validate(&self) -> Result<(), CnnError> {
        let bad = |m: String| Err(CnnError::Architecture(m));
        if self.in_channels == 0 || self.out_channels == 0 || self.base_channels == 0 {
            return bad("in_channels, out_channels and base_channels must be >= 1".into());
        }
        if self.channel_factor == 0 || self.convs_per_block == 0 {
            return bad("channel_factor and convs_per_block must be >= 1".into());
        }
        if self.depth > 8 {
            return bad(format!("depth {} > 8", self.depth));
        }
        if self.pool.len() != self.depth {
            return bad(format!(
                "`pool` has {} entries, depth is {} (one factor per pooling)",
                self.pool.len(),
                self.depth
            ));
        }
        if self.kernels.len() != self.depth + 1 {
            return bad(format!(
                "`kernels` has {} entries, expected depth + 1 = {}",
                self.kernels.len(),
                self.depth + 1
            ));
        }
        if self.pool.iter().chain(&self.kernels).any(|a| a.contains(&0)) {
            return bad("pool factors and kernel sizes must be >= 1".into());
        }
        let want = match self.output {
            OutputKind::Boundary => 1,
            OutputKind::Affinities => 3,
        };
        if self.out_channels != want {
            return bad(format!("output {:?} needs out_channels = {want}, got {}", self.output, self.out_channels));
        }
        let top = (0..self.depth).try_fold(self.base_channels, |c, _| c.checked_mul(self.channel_factor));
        if top.is_none_or(|c| c > 1 << 16) {
            return bad("more than 65536 channels at the bottom level".into());
        }
        Ok(())
    }

    /// Channels of level `l`.
    pub fn channels(&self, l: usize) -> usize {
        self.base_channels * self.channel_factor.pow(l as u32)
    }

    /// Product of the pool factors per axis: input dimensions are padded to a multiple of it.
    pub fn total_pool(&self) -> [usize; 3] {
        self.pool.iter().fold([1, 1, 1], |a, p| [a[0] * p[0], a[1] * p[1], a[2] * p[2]])
    }

    /// Every tensor of the weights file with its shape, in network order.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut v = Vec::new();
        let mut block = |prefix: &str, cin: usize, cout: usize, kern: [usize; 3]| {
            for i in 0..self.convs_per_block {
                let ci = if i == 0 { cin } else { cout };
                v.push((format!("{prefix}.conv.{i}.weight"), vec![cout, ci, kern[0], kern[1], kern[2]]));
                v.push((format!("{prefix}.conv.{i}.bias"), vec![cout]));
            }
        };
        for l in 0..self.depth {
            let cin = if l == 0 { self.in_channels } else { self.channels(l - 1) };
            block(&format!("down.{l}"), cin, self.channels(l), self.kernels[l]);
        }
        let cin = if self.depth == 0 { self.in_channels } else { self.channels(self.depth - 1) };
        block("bottom", cin, self.channels(self.depth), self.kernels[self.depth]);
        for l in 0..self.depth {
            block(&format!("up.{l}"), self.channels(l) + self.channels(l + 1), self.channels(l), self.kernels[l]);
        }
        v.push(("head.weight".into(), vec![self.out_channels, self.channels(0), 1, 1, 1]));
        v.push(("head.bias".into(), vec![self.out_channels]));
        v
    }
}

/// The backend [`UNet3d::predict_with`] runs for `kind`: [`BackendKind::Cpu`] (the Rust layers, rayon),
/// [`BackendKind::CudaHost`] (the CUDA C kernels of `kernels/cuda/cnn.cu` compiled for the host) or
/// [`BackendKind::Cuda`] (the same kernels on GPU 0, through `neurotwin_kernels::device`); all three give
/// bit-identical outputs. [`BackendKind::Cuda`] is accepted when device 0 opens with its kernels loaded, otherwise
/// refused with the device's one-line reason; [`BackendKind::Auto`] resolves to [`BackendKind::Cuda`] when it
/// opens, else to [`BackendKind::Cpu`] with a note on stderr (once per process).
pub fn check_cnn_backend(kind: BackendKind) -> Result<BackendKind, CnnError> {
    match kind {
        BackendKind::Cpu => Ok(BackendKind::Cpu),
        BackendKind::CudaHost => Ok(BackendKind::CudaHost),
        BackendKind::Cuda => match gpu_device_name() {
            Ok(_) => Ok(BackendKind::Cuda),
            Err(why) => Err(CnnError::Backend(format!(
                "--cnn-backend cuda: no usable GPU: {why} (use --cnn-backend cpu, cuda-host or auto)"
            ))),
        },
        BackendKind::Auto => match gpu_device_name() {
            Ok(_) => Ok(BackendKind::Cuda),
            Err(why) => {
                static NOTE: Once = Once::new();
                NOTE.call_once(|| eprintln!("note: CUDA unavailable for the U-Net ({why}); running it on the CPU"));
                Ok(BackendKind::Cpu)
            }
        },
    }
}

/// The convolutions of a [`UNet3d`] by block (training walks them forward and back).
pub(crate) struct Blocks<'a> {
    /// Encoder blocks by level.
    pub down: &'a [Vec<Conv3d>],
    /// The bottom block.
    pub bottom: &'a [Conv3d],
    /// Decoder blocks by level.
    pub up: &'a [Vec<Conv3d>],
    /// The 1×1×1 head.
    pub head: &'a Conv3d,
}

/// A 3D U-Net ready for inference.
#[derive(Clone, Debug, PartialEq)]
pub struct UNet3d {
    spec: UNetSpec,
    down: Vec<Vec<Conv3d>>,
    bottom: Vec<Conv3d>,
    up: Vec<Vec<Conv3d>>,
    head: Conv3d,
    /// The training record of the weights file (`neurotwin segment train`), if any.
    training: Option<serde_json::Value>,
}

pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl UNet3d {
    /// Assembles a network from named tensors (the layout of the module docs), checking names, shapes and
    /// finiteness; `source` names the origin in error messages.
    pub fn from_tensors(spec: UNetSpec, tensors: Vec<NamedTensor>, source: &str) -> Result<Self, CnnError> {
        spec.validate()?;
        let mut map: HashMap<String, NamedTensor> = HashMap::new();
        for t in tensors {
            map.insert(t.name.clone(), t);
        }
        let expected = spec.expected_tensors();
        let mut convs = Vec::new();
        for pair in expected.chunks(2) {
            let mut take = |(name, shape): &(String, Vec<usize>)| -> Result<Vec<f32>, CnnError> {
                let t = map.remove(name).ok_or_else(|| CnnError::MissingTensor {
                    path: source.into(),
                    name: name.clone(),
                    expected: shape.clone(),
                })?;
                if &t.shape != shape {
                    return Err(CnnError::WrongShape {
                        path: source.into(),
                        name: name.clone(),
                        expected: shape.clone(),
                        found: t.shape,
                    });
                }
                let mut bad = t.data.iter().enumerate().filter(|(_, v)| !v.is_finite());
                if let Some((index, &value)) = bad.next() {
                    let count = 1 + bad.count();
                    return Err(CnnError::NonFinite { path: source.into(), name: name.clone(), index, value, count });
                }
                Ok(t.data)
            };
            let w = take(&pair[0])?;
            let b = take(&pair[1])?;
            let s = &pair[0].1;
            convs.push(Conv3d::new(s[1], s[0], [s[2], s[3], s[4]], w, b)?);
        }
        if let Some(name) = map.keys().min() {
            return Err(CnnError::UnexpectedTensor { path: source.into(), name: name.clone() });
        }
        let n = spec.convs_per_block;
        let mut it = convs.into_iter();
        let down = (0..spec.depth).map(|_| it.by_ref().take(n).collect()).collect();
        let bottom = it.by_ref().take(n).collect();
        let up = (0..spec.depth).map(|_| it.by_ref().take(n).collect()).collect();
        let head = it.next().expect("expected_tensors ends with the head");
        Ok(Self { spec, down, bottom, up, head, training: None })
    }

    /// A network with deterministic pseudo-random weights: element `i` of tensor `j` (in
    /// [`UNetSpec::expected_tensors`] order) is a uniform value from `splitmix64` of a key derived from
    /// `(seed, j, i)` (counter-based, no shared generator), scaled to He-uniform `±sqrt(6 / fan_in)` for weights
    /// and `±0.1` for biases.
    pub fn random(spec: UNetSpec, seed: u64) -> Result<Self, CnnError> {
        spec.validate()?;
        let tensors = spec
            .expected_tensors()
            .into_iter()
            .enumerate()
            .map(|(j, (name, shape))| {
                let key = splitmix64(seed ^ splitmix64(j as u64 + 1));
                let bound = if shape.len() == 5 {
                    (6.0 / (shape[1] * shape[2] * shape[3] * shape[4]) as f64).sqrt()
                } else {
                    0.1
                };
                let n: usize = shape.iter().product();
                let data = (0..n as u64)
                    .map(|i| {
                        let u = (splitmix64(key.wrapping_add(i.wrapping_mul(0xD1B5_4A32_D192_ED03))) >> 11) as f64
                            / (1u64 << 53) as f64;
                        ((2.0 * u - 1.0) * bound) as f32
                    })
                    .collect();
                NamedTensor { name, shape, data }
            })
            .collect();
        Self::from_tensors(spec, tensors, "<random>")
    }

    /// Loads a safetensors weights file (layout in the module docs), validating everything.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CnnError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| CnnError::Io { path: path.display().to_string(), source })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Loads a weights file from memory; `source` names it in error messages.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self, CnnError> {
        let (spec, tensors, training) = read_weights(bytes, source)?;
        Ok(Self { training, ..Self::from_tensors(spec, tensors, source)? })
    }

    /// Writes the network as a safetensors weights file (with its training record, if any).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CnnError> {
        write_weights_with(path, &self.spec, &self.named_tensors(), self.training.as_ref())
    }

    /// The training record carried by the weights file (data, settings, losses), if any.
    pub fn training(&self) -> Option<&serde_json::Value> {
        self.training.as_ref()
    }

    /// Attaches a training record (written into the weights file by [`Self::save`]).
    pub fn set_training(&mut self, record: serde_json::Value) {
        self.training = Some(record);
    }

    /// The architecture.
    pub fn spec(&self) -> &UNetSpec {
        &self.spec
    }

    /// The convolutions in network order (down blocks, bottom, up blocks, head).
    pub fn convs(&self) -> impl Iterator<Item = &Conv3d> {
        self.down
            .iter()
            .flatten()
            .chain(&self.bottom)
            .chain(self.up.iter().flatten())
            .chain(std::iter::once(&self.head))
    }

    /// The convolutions, mutable, in [`Self::convs`] order (training).
    pub(crate) fn convs_mut(&mut self) -> impl Iterator<Item = &mut Conv3d> {
        self.down
            .iter_mut()
            .flatten()
            .chain(&mut self.bottom)
            .chain(self.up.iter_mut().flatten())
            .chain(std::iter::once(&mut self.head))
    }

    /// The blocks: down (by level), bottom, up (by level) and the head.
    pub(crate) fn blocks(&self) -> Blocks<'_> {
        Blocks { down: &self.down, bottom: &self.bottom, up: &self.up, head: &self.head }
    }

    /// Every tensor with its file name, in [`UNetSpec::expected_tensors`] order.
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let expected = self.spec.expected_tensors();
        self.convs()
            .zip(expected.chunks(2))
            .flat_map(|(c, names)| {
                [
                    NamedTensor { name: names[0].0.clone(), shape: names[0].1.clone(), data: c.weight().to_vec() },
                    NamedTensor { name: names[1].0.clone(), shape: names[1].1.clone(), data: c.bias().to_vec() },
                ]
            })
            .collect()
    }

    /// Boundary probabilities (1 channel) or affinities (3 channels) of `input` on the CPU.
    pub fn predict(&self, input: &Tensor) -> Result<Tensor, CnnError> {
        self.predict_with(input, BackendKind::Cpu)
    }

    /// [`UNet3d::predict`] on the chosen backend (see [`check_cnn_backend`]). The input is padded by edge replication to a multiple of
    /// [`UNetSpec::total_pool`] and the output cropped back to the input size.
    pub fn predict_with(&self, input: &Tensor, backend: BackendKind) -> Result<Tensor, CnnError> {
        let backend = check_cnn_backend(backend)?;
        if input.channels() != self.spec.in_channels {
            return Err(CnnError::Shape(format!(
                "the network takes {} input channel(s), the input has {}",
                self.spec.in_channels,
                input.channels()
            )));
        }
        let d = input.dims();
        if d.contains(&0) {
            return Err(CnnError::Shape(format!("empty input volume {d:?}")));
        }
        let m = self.spec.total_pool();
        let padded = [d[0].next_multiple_of(m[0]), d[1].next_multiple_of(m[1]), d[2].next_multiple_of(m[2])];
        let x = input.pad_replicate(padded);
        let y = match backend {
            BackendKind::CudaHost => self.forward_host(x),
            BackendKind::Cuda => self.forward_cuda(&x)?,
            BackendKind::Cpu | BackendKind::Auto => self.forward_cpu(x)?,
        };
        Ok(y.crop(d))
    }

    fn forward_cpu(&self, mut x: Tensor) -> Result<Tensor, CnnError> {
        let block = |convs: &[Conv3d], mut x: Tensor| -> Result<Tensor, CnnError> {
            for c in convs {
                x = c.forward(&x)?;
                relu(&mut x);
            }
            Ok(x)
        };
        let mut skips = Vec::with_capacity(self.spec.depth);
        for (l, convs) in self.down.iter().enumerate() {
            x = block(convs, x)?;
            let pooled = MaxPool3d { factor: self.spec.pool[l] }.forward(&x)?;
            skips.push(std::mem::replace(&mut x, pooled));
        }
        x = block(&self.bottom, x)?;
        for l in (0..self.spec.depth).rev() {
            let up = Upsample { factor: self.spec.pool[l] }.forward(&x)?;
            x = block(&self.up[l], concat(&skips[l], &up)?)?;
        }
        let mut y = self.head.forward(&x)?;
        sigmoid(&mut y);
        Ok(y)
    }

    /// The same network on GPU 0: the layer sequence of [`Self::forward_host`], launch for launch, with every
    /// activation resident on the device. The input block and the weights are uploaded once per call, only the
    /// output is downloaded.
    fn forward_cuda(&self, x: &Tensor) -> Result<Tensor, CnnError> {
        let gpu = Gpu::open()?;
        let upload = |convs: &[Conv3d]| convs.iter().map(|c| gpu.upload_conv(c)).collect::<Result<Vec<_>, _>>();
        let down = self.down.iter().map(|b| upload(b)).collect::<Result<Vec<_>, _>>()?;
        let bottom = upload(&self.bottom)?;
        let up = self.up.iter().map(|b| upload(b)).collect::<Result<Vec<_>, _>>()?;
        let head = gpu.upload_conv(&self.head)?;
        let block = |convs: &[super::cuda::DevConv], mut x: DevTensor| -> Result<DevTensor, CnnError> {
            for c in convs {
                x = gpu.conv(c, &x)?;
                gpu.relu(&mut x)?;
            }
            Ok(x)
        };
        let mut x = gpu.upload(x)?;
        let mut skips = Vec::with_capacity(self.spec.depth);
        for (l, convs) in down.iter().enumerate() {
            x = block(convs, x)?;
            let pooled = gpu.maxpool(self.spec.pool[l], &x)?;
            skips.push(std::mem::replace(&mut x, pooled));
        }
        x = block(&bottom, x)?;
        for l in (0..self.spec.depth).rev() {
            let upsampled = gpu.upsample(self.spec.pool[l], &x)?;
            x = block(&up[l], gpu.concat(&skips[l], &upsampled)?)?;
        }
        let mut y = gpu.conv(&head, &x)?;
        gpu.sigmoid(&mut y)?;
        gpu.download(&y)
    }

    /// The same network through the host build of the CUDA kernels (`cnn_*` of `neurotwin_kernels::host`),
    /// launch for launch as a GPU run would go (shapes are already consistent here).
    fn forward_host(&self, mut x: Tensor) -> Tensor {
        let conv = |c: &Conv3d, x: &Tensor| {
            let d = x.dims();
            let mut out = vec![0.0; c.out_channels() * x.voxels()];
            k::cnn_conv3d_same(
                c.in_channels(),
                c.out_channels(),
                d,
                c.kernel(),
                x.data(),
                c.weight(),
                c.bias(),
                &mut out,
            );
            Tensor::new([c.out_channels(), d[0], d[1], d[2]], out).expect("conv output shape")
        };
        let block = |convs: &[Conv3d], mut x: Tensor| {
            for c in convs {
                x = conv(c, &x);
                k::cnn_relu(x.data_mut());
            }
            x
        };
        let mut skips = Vec::with_capacity(self.spec.depth);
        for (l, convs) in self.down.iter().enumerate() {
            x = block(convs, x);
            let (f, d, c) = (self.spec.pool[l], x.dims(), x.channels());
            let od = [d[0] / f[0], d[1] / f[1], d[2] / f[2]];
            let mut out = vec![0.0; c * od[0] * od[1] * od[2]];
            k::cnn_maxpool3d(c, d, f, x.data(), &mut out);
            let pooled = Tensor::new([c, od[0], od[1], od[2]], out).expect("pool output shape");
            skips.push(std::mem::replace(&mut x, pooled));
        }
        x = block(&self.bottom, x);
        for l in (0..self.spec.depth).rev() {
            let (f, d, c) = (self.spec.pool[l], x.dims(), x.channels());
            let ud = [d[0] * f[0], d[1] * f[1], d[2] * f[2]];
            let mut up = vec![0.0; c * ud[0] * ud[1] * ud[2]];
            k::cnn_upsample_nearest3d(c, d, f, x.data(), &mut up);
            let skip = &skips[l];
            let (ca, nvox) = (skip.channels(), skip.voxels());
            let mut cat = vec![0.0; (ca + c) * nvox];
            k::cnn_concat_channels(ca, c, nvox, skip.data(), &up, &mut cat);
            x = block(&self.up[l], Tensor::new([ca + c, ud[0], ud[1], ud[2]], cat).expect("concat shape"));
        }
        let mut y = conv(&self.head, &x);
        k::cnn_sigmoid(y.data_mut());
        y
    }
}

/// A hand-designed one-level "network" that marks dark membranes without training: a Laplacian-of-Gaussian
/// convolution (standard deviation `sigma` voxels per axis, `[z, y, x]`; 0 disables an axis; kernel size
/// `2·ceil(2σ) + 1`; zero sum; normalised so that its positive taps sum to 1), ReLU, then
/// `sigmoid(gain · (r - threshold))` through the 1×1×1 head. A dark sheet gives a positive LoG response on
/// it and ≈ 0 inside flat cells, so the output is high on membranes and `sigmoid(-gain·threshold)` inside.
/// It is a regular [`UNet3d`] (depth 0, one conv per block), so it can be saved and loaded like any other.
pub fn edge_detector(sigma: [f64; 3], gain: f32, threshold: f32) -> Result<UNet3d, CnnError> {
    if sigma.iter().any(|s| !s.is_finite() || *s < 0.0) || !gain.is_finite() || !threshold.is_finite() {
        return Err(CnnError::Architecture(format!(
            "edge detector: bad sigma {sigma:?}, gain {gain} or threshold {threshold}"
        )));
    }
    let size = sigma.map(|s| if s > 0.0 { 2 * (2.0 * s).ceil() as usize + 1 } else { 1 });
    let mut w = Vec::with_capacity(size.iter().product());
    for z in 0..size[0] {
        for y in 0..size[1] {
            for x in 0..size[2] {
                let mut g = 1.0;
                let mut lap = 0.0;
                let pos = [z, y, x];
                for a in 0..3 {
                    if sigma[a] == 0.0 {
                        continue;
                    }
                    let d = pos[a] as f64 - (size[a] / 2) as f64;
                    let s2 = sigma[a] * sigma[a];
                    g *= (-d * d / (2.0 * s2)).exp();
                    lap += d * d / (s2 * s2) - 1.0 / s2;
                }
                w.push(g * lap);
            }
        }
    }
    let mean = w.iter().sum::<f64>() / w.len() as f64;
    w.iter_mut().for_each(|v| *v -= mean);
    let pos: f64 = w.iter().filter(|v| **v > 0.0).sum();
    let scale = if pos > 0.0 { 1.0 / pos } else { 1.0 };
    let weight: Vec<f32> = w.iter().map(|v| (v * scale) as f32).collect();
    let spec = UNetSpec {
        in_channels: 1,
        out_channels: 1,
        output: OutputKind::Boundary,
        base_channels: 1,
        channel_factor: 1,
        depth: 0,
        pool: vec![],
        kernels: vec![size],
        convs_per_block: 1,
    };
    let mut shape = vec![1, 1];
    shape.extend(size);
    let tensors = vec![
        NamedTensor { name: "bottom.conv.0.weight".into(), shape, data: weight },
        NamedTensor { name: "bottom.conv.0.bias".into(), shape: vec![1], data: vec![0.0] },
        NamedTensor { name: "head.weight".into(), shape: vec![1, 1, 1, 1, 1], data: vec![gain] },
        NamedTensor { name: "head.bias".into(), shape: vec![1], data: vec![-gain * threshold] },
    ];
    UNet3d::from_tensors(spec, tensors, "<edge detector>")
}
