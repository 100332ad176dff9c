//! 3D convolutional boundary prediction: U-Net inference with weights from a safetensors file, on the CPU
//! (rayon) or through the CUDA kernels of `neurotwin-kernels` (`cuda/cnn.cu`): on a GPU (the "cuda" backend,
//! [`check_cnn_backend`]; activations stay on the device for a whole forward pass) or built for the host (the
//! "cuda-host" backend); all three are bit-identical.
//!
//! # Tensors and layers
//! [`Tensor`] is f32, laid out C × Z × Y × X (x fastest), contiguous. Layers: [`Conv3d`] (weights
//! `[out, in, kz, ky, kx]`, bias `[out]`, stride 1, 'same' zero padding with the kernel origin offset by
//! `(k - 1) / 2` on each axis), [`relu`], [`sigmoid`], [`MaxPool3d`] (window = stride = a per-axis factor, e.g.
//! `[1, 2, 2]` for anisotropic EM), [`Upsample`] (nearest, per-axis factor) and [`concat()`] (channels).
//!
//! Numerics: every convolution output is `bias + Σ w·x` summed over in-channel, dz, dy, dx in this nesting
//! order (taps outside the volume skipped), each product and sum rounded to f32 separately (no FMA); the
//! CUDA kernel sums in the same order with `__fmul_rn`/`__fadd_rn`, so the two agree bit for bit. The sigmoid
//! is `(1 / (1 + exp(-x)))` evaluated in f64 with the deterministic exponential [`det_exp`] (the port of
//! `kernels/cuda/detmath.cuh`), rounded once to f32.
//!
//! # Architecture ([`UNetSpec`])
//! Level `l = 0..=depth` has `c_l = base_channels · channel_factor^l` channels. A block is
//! `convs_per_block` convolutions with kernel `kernels[l]`, each followed by ReLU.
//! - encoder, `l = 0..depth`: block `down.l` (in: `in_channels` for `l = 0`, else `c_{l-1}`; out `c_l`), its
//!   output kept as the skip connection, then max pooling by `pool[l]`;
//! - `bottom`: block at level `depth` (in: `c_{depth-1}`, or `in_channels` when `depth = 0`; out `c_depth`);
//! - decoder, `l = depth-1 down to 0`: nearest upsampling by `pool[l]`, concatenation `[skip_l; upsampled]`
//!   (skip channels first), block `up.l` (in `c_l + c_{l+1}`, out `c_l`);
//! - `head`: 1×1×1 convolution `c_0 → out_channels`, then sigmoid: boundary probability (1 channel) or
//!   nearest-neighbour affinities (3 channels, z, y, x).
//!
//! [`UNet3d::predict`] pads the input by edge replication to a multiple of the product of the pool factors on
//! each axis and crops the output back, so any volume size works.
//!
//! # Weights file layout (safetensors)
//! A standard safetensors file (8-byte little-endian header length, JSON header, raw little-endian data).
//! - metadata (`__metadata__`): one key, `"neurotwin.unet3d"`, whose value is the [`UNetSpec`] as a JSON object
//!   plus `"format": "unet3d-v1"`, e.g.
//!   `{"format":"unet3d-v1","in_channels":1,"out_channels":1,"output":"boundary","base_channels":8,
//!   "channel_factor":2,"depth":2,"pool":[[1,2,2],[2,2,2]],"kernels":[[1,3,3],[3,3,3],[3,3,3]],
//!   "convs_per_block":2}` (`output`: `"boundary"` or `"affinities"`);
//! - tensors, all dtype `F32`, row-major (PyTorch `Conv3d` layout):
//!   - `down.{l}.conv.{i}.weight` `[c_l, cin, kz, ky, kx]` and `down.{l}.conv.{i}.bias` `[c_l]`,
//!     `l < depth`, `i < convs_per_block` (`cin` as above for `i = 0`, `c_l` after);
//!   - `bottom.conv.{i}.weight` / `.bias`;
//!   - `up.{l}.conv.{i}.weight` / `.bias`, `l < depth`;
//!   - `head.weight` `[out_channels, c_0, 1, 1, 1]`, `head.bias` `[out_channels]`.
//!
//! [`UNetSpec::expected_tensors`] lists every name with its shape. Loading checks the format tag, the
//! architecture, that every expected tensor is present with dtype F32 and its exact shape, that there is no
//! other tensor, and that every value is finite; each failure is a [`CnnError`] naming the tensor and the fix.
//! [`write_weights`] writes a file (used by tests and to export a network), [`UNet3d::random`] a
//! deterministic random initialisation and [`edge_detector`] a tiny hand-designed network (Laplacian of a
//! Gaussian, ReLU, scaled sigmoid) that marks dark membranes without training.

pub mod backward;
mod cuda;
mod layers;
mod tensor;
pub mod train;
mod unet;
mod weights;

pub use layers::{Conv3d, MaxPool3d, Upsample, concat, det_exp, relu, sigmoid, sigmoid_f32};
pub use neurotwin_kernels::backend_kind::BackendKind;
pub use tensor::Tensor;
pub use unet::{OutputKind, UNet3d, UNetSpec, check_cnn_backend, edge_detector};
pub use weights::{
    FORMAT, NamedTensor, SPEC_KEY, weights_to_bytes, weights_to_bytes_with, write_weights, write_weights_with,
};

/// File name of the shipped boundary network (`segment/weights/`, with its model card `MODEL_CARD.md`).
pub const SHIPPED_WEIGHTS: &str = "unet-boundary-gala.safetensors";

/// The shipped boundary U-Net: trained by `neurotwin segment train` on FIB-SEM with ground truth (gala's
/// training crop, slices 0–24; the model card in `segment/weights/MODEL_CARD.md` gives the command, data and
/// scores), embedded in the binary.
pub fn shipped_boundary_net() -> Result<UNet3d, CnnError> {
    UNet3d::from_bytes(include_bytes!("../../weights/unet-boundary-gala.safetensors"), SHIPPED_WEIGHTS)
}

/// Errors of the CNN module: tensor shapes, architecture descriptions and weights files.
#[derive(Debug, thiserror::Error)]
pub enum CnnError {
    /// A tensor or layer was given inconsistent dimensions.
    #[error("shape error: {0}")]
    Shape(String),
    /// The architecture description is invalid.
    #[error("invalid U-Net architecture: {0}")]
    Architecture(String),
    /// The chosen backend cannot run the U-Net (the message names the ones that can).
    #[error("{0}")]
    Backend(String),
    /// Reading or writing the weights file failed.
    #[error("weights file {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file or lacks the U-Net metadata.
    #[error("weights file {path}: {message}")]
    Format {
        /// File path (or `<memory>`).
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An expected tensor is not in the file.
    #[error(
        "weights file {path}: missing tensor `{name}` (expected shape {expected:?}); every tensor listed by \
         UNetSpec::expected_tensors must be present — was the network exported with this architecture?"
    )]
    MissingTensor {
        /// File path.
        path: String,
        /// Tensor name.
        name: String,
        /// Shape the architecture requires.
        expected: Vec<usize>,
    },
    /// A tensor has a shape other than the architecture requires.
    #[error(
        "weights file {path}: tensor `{name}` has shape {found:?} but the architecture requires {expected:?}; \
         fix the architecture metadata or re-export the weights"
    )]
    WrongShape {
        /// File path.
        path: String,
        /// Tensor name.
        name: String,
        /// Shape the architecture requires.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is not F32.
    #[error("weights file {path}: tensor `{name}` has dtype {found}, expected F32; convert the weights to float32")]
    WrongDtype {
        /// File path.
        path: String,
        /// Tensor name.
        name: String,
        /// Dtype in the file.
        found: String,
    },
    /// A tensor holds NaN or ±Inf.
    #[error(
        "weights file {path}: tensor `{name}` has a non-finite value ({value}) at flat index {index} \
         ({count} non-finite in total); the weights are corrupt (diverged training?) — re-export finite weights"
    )]
    NonFinite {
        /// File path.
        path: String,
        /// Tensor name.
        name: String,
        /// Flat index of the first non-finite value.
        index: usize,
        /// That value.
        value: f32,
        /// Number of non-finite values in the tensor.
        count: usize,
    },
    /// The file has a tensor the architecture does not use (a misspelt name, or another architecture).
    #[error(
        "weights file {path}: unexpected tensor `{name}` not used by the architecture in the metadata; check the \
         tensor names against the documented layout"
    )]
    UnexpectedTensor {
        /// File path.
        path: String,
        /// Tensor name.
        name: String,
    },
}
