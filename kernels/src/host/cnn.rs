//! Host builds of the U-Net inference kernels of `cuda/cnn.cu` (f32 tensors, C × Z × Y × X, x fastest), launched
//! with a 1-D grid of one thread per output element as on a GPU. Every function checks the lengths of its
//! slices against the dimensions it is given (and panics on a mismatch), so the kernels stay in bounds.

use std::ffi::c_uint;

use super::len_u32;

unsafe extern "C" {
    fn nt_host_cnn_conv3d_same(
        cin: c_uint,
        cout: c_uint,
        nz: c_uint,
        ny: c_uint,
        nx: c_uint,
        kz: c_uint,
        ky: c_uint,
        kx: c_uint,
        input: *const f32,
        weight: *const f32,
        bias: *const f32,
        out: *mut f32,
    );
    fn nt_host_cnn_relu(n: c_uint, x: *mut f32);
    fn nt_host_cnn_sigmoid(n: c_uint, x: *mut f32);
    fn nt_host_cnn_maxpool3d(
        c: c_uint,
        nz: c_uint,
        ny: c_uint,
        nx: c_uint,
        fz: c_uint,
        fy: c_uint,
        fx: c_uint,
        input: *const f32,
        out: *mut f32,
    );
    fn nt_host_cnn_upsample_nearest3d(
        c: c_uint,
        nz: c_uint,
        ny: c_uint,
        nx: c_uint,
        fz: c_uint,
        fy: c_uint,
        fx: c_uint,
        input: *const f32,
        out: *mut f32,
    );
    fn nt_host_cnn_concat_channels(ca: c_uint, cb: c_uint, nvox: c_uint, a: *const f32, b: *const f32, out: *mut f32);
}

/// Number of elements of a `c × dims` tensor, checked to fit the kernels' 32-bit indexing.
fn elements(c: usize, dims: [usize; 3]) -> usize {
    let n = [c, dims[0], dims[1], dims[2]]
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .expect("tensor size overflows usize");
    len_u32(n);
    n
}

/// `cnn_conv3d_same`: 'same' zero-padded 3D convolution, stride 1, of `input` (`cin × dims`) with `weight`
/// (`cout × cin × kernel`) plus `bias` (`cout`) into `out` (`cout × dims`). The kernel origin is offset by
/// `(k - 1) / 2` on each axis; terms are summed over in-channel, dz, dy, dx in this order (taps outside the
/// volume skipped), starting from the bias, each product and sum rounded separately.
///
/// # Panics
/// If a slice length does not match, a kernel size is 0, or a tensor has 2^32 elements or more.
#[allow(clippy::too_many_arguments)]
pub fn cnn_conv3d_same(
    cin: usize,
    cout: usize,
    dims: [usize; 3],
    kernel: [usize; 3],
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
    assert!(kernel.iter().all(|&k| k > 0), "kernel sizes must be > 0");
    assert_eq!(input.len(), elements(cin, dims), "input must be cin × nz × ny × nx");
    assert_eq!(out.len(), elements(cout, dims), "out must be cout × nz × ny × nx");
    assert_eq!(weight.len(), elements(cout * cin, kernel), "weight must be cout × cin × kz × ky × kx");
    assert_eq!(bias.len(), cout, "one bias per output channel");
    if out.is_empty() {
        return;
    }
    // SAFETY: input has cin·nz·ny·nx elements, weight cout·cin·kz·ky·kx, bias cout and out cout·nz·ny·nx (all
    // checked above, each < 2^32); the kernel reads only in-volume taps (0 <= iz < nz etc.) of channels ci < cin,
    // weights of co < cout, and writes out[t] for t < cout·nz·ny·nx.
    unsafe {
        nt_host_cnn_conv3d_same(
            len_u32(cin),
            len_u32(cout),
            len_u32(dims[0]),
            len_u32(dims[1]),
            len_u32(dims[2]),
            len_u32(kernel[0]),
            len_u32(kernel[1]),
            len_u32(kernel[2]),
            input.as_ptr(),
            weight.as_ptr(),
            bias.as_ptr(),
            out.as_mut_ptr(),
        );
    }
}

/// `cnn_relu` in place: `x = if x > 0 { x } else { 0 }`.
pub fn cnn_relu(x: &mut [f32]) {
    let n = len_u32(x.len());
    // SAFETY: the kernel touches x[t] for t < n = x.len() only.
    unsafe { nt_host_cnn_relu(n, x.as_mut_ptr()) }
}

/// `cnn_sigmoid` in place: `x = (1 / (1 + nt_exp(-(x as f64)))) as f32` with the deterministic exponential.
pub fn cnn_sigmoid(x: &mut [f32]) {
    let n = len_u32(x.len());
    // SAFETY: the kernel touches x[t] for t < n = x.len() only.
    unsafe { nt_host_cnn_sigmoid(n, x.as_mut_ptr()) }
}

/// `cnn_maxpool3d`: max pooling of `input` (`c × dims`, each dimension a multiple of its factor) with
/// window = stride = `factor` into `out` (`c × dims / factor`).
///
/// # Panics
/// If a factor is 0 or does not divide its dimension, or a slice length does not match.
pub fn cnn_maxpool3d(c: usize, dims: [usize; 3], factor: [usize; 3], input: &[f32], out: &mut [f32]) {
    assert!(factor.iter().all(|&f| f > 0), "pool factors must be > 0");
    assert!(
        (0..3).all(|a| dims[a].is_multiple_of(factor[a])),
        "dims {dims:?} not divisible by the pool factors {factor:?}"
    );
    assert_eq!(input.len(), elements(c, dims), "input must be c × nz × ny × nx");
    let od = [dims[0] / factor[0], dims[1] / factor[1], dims[2] / factor[2]];
    assert_eq!(out.len(), elements(c, od), "out must be c × (nz/fz) × (ny/fy) × (nx/fx)");
    if out.is_empty() {
        return;
    }
    // SAFETY: input has c·nz·ny·nx elements and out c·(nz/fz)·(ny/fy)·(nx/fx) (checked, < 2^32); with the factors
    // dividing the dims, every window of output element t < out.len() lies inside its input channel.
    unsafe {
        nt_host_cnn_maxpool3d(
            len_u32(c),
            len_u32(dims[0]),
            len_u32(dims[1]),
            len_u32(dims[2]),
            len_u32(factor[0]),
            len_u32(factor[1]),
            len_u32(factor[2]),
            input.as_ptr(),
            out.as_mut_ptr(),
        );
    }
}

/// `cnn_upsample_nearest3d`: nearest-neighbour upsampling of `input` (`c × dims`) by `factor` into `out`
/// (`c × dims · factor`).
///
/// # Panics
/// If a factor is 0 or a slice length does not match.
pub fn cnn_upsample_nearest3d(c: usize, dims: [usize; 3], factor: [usize; 3], input: &[f32], out: &mut [f32]) {
    assert!(factor.iter().all(|&f| f > 0), "upsampling factors must be > 0");
    assert_eq!(input.len(), elements(c, dims), "input must be c × nz × ny × nx");
    let ud = [dims[0] * factor[0], dims[1] * factor[1], dims[2] * factor[2]];
    assert_eq!(out.len(), elements(c, ud), "out must be c × (nz·fz) × (ny·fy) × (nx·fx)");
    if out.is_empty() {
        return;
    }
    // SAFETY: out has c·nz·fz·ny·fy·nx·fx elements (checked, < 2^32) and output element t reads input
    // (ch, z/fz, y/fy, x/fx) with z/fz < nz etc., inside input's c·nz·ny·nx elements.
    unsafe {
        nt_host_cnn_upsample_nearest3d(
            len_u32(c),
            len_u32(dims[0]),
            len_u32(dims[1]),
            len_u32(dims[2]),
            len_u32(factor[0]),
            len_u32(factor[1]),
            len_u32(factor[2]),
            input.as_ptr(),
            out.as_mut_ptr(),
        );
    }
}

/// `cnn_concat_channels`: `out = [a; b]` along channels, `a` holding `ca`, `b` `cb` channels of `nvox` voxels.
///
/// # Panics
/// If a slice length does not match.
pub fn cnn_concat_channels(ca: usize, cb: usize, nvox: usize, a: &[f32], b: &[f32], out: &mut [f32]) {
    assert_eq!(a.len(), elements(ca, [nvox, 1, 1]), "a must be ca × nvox");
    assert_eq!(b.len(), elements(cb, [nvox, 1, 1]), "b must be cb × nvox");
    assert_eq!(out.len(), elements(ca + cb, [nvox, 1, 1]), "out must be (ca + cb) × nvox");
    if out.is_empty() {
        return;
    }
    // SAFETY: a has ca·nvox, b cb·nvox and out (ca + cb)·nvox elements (checked, < 2^32); output element t reads
    // a[t] for t < ca·nvox, else b[t - ca·nvox] < cb·nvox.
    unsafe {
        nt_host_cnn_concat_channels(len_u32(ca), len_u32(cb), len_u32(nvox), a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
    }
}
