//! Host builds of the U-Net training kernels of `cuda/cnn_train.cu` (f32 tensors, C × Z × Y × X, x fastest),
//! launched with a 1-D grid of one thread per output element as on a GPU: the backward passes of the layers of
//! [`super::cnn_conv3d_same`] & co., the weighted binary cross-entropy gradient and the Adam update. Every sum
//! starts at 0 (unless stated) and adds its terms one by one, each product and sum rounded to f32 separately
//! (no fused multiply–add), in the order each function documents, so a Rust loop in that order gives the same
//! bits. Every function checks the lengths of its slices against the dimensions it is given (and panics on a
//! mismatch), so the kernels stay in bounds.
//!
//! Notation: `dims = [nz, ny, nx]`, `kernel = [kz, ky, kx]`, origin offset `p = (k - 1) / 2` per axis ('same'
//! convolution, stride 1), weight index `(((co·cin + ci)·kz + dz)·ky + dy)·kx + dx`.

use std::ffi::c_uint;

use super::len_u32;

unsafe extern "C" {
    fn nt_host_cnn_conv3d_grad_input(
        cin: c_uint,
        cout: c_uint,
        nz: c_uint,
        ny: c_uint,
        nx: c_uint,
        kz: c_uint,
        ky: c_uint,
        kx: c_uint,
        gout: *const f32,
        weight: *const f32,
        gin: *mut f32,
    );
    fn nt_host_cnn_conv3d_grad_weight_planes(
        cin: c_uint,
        cout: c_uint,
        nz: c_uint,
        ny: c_uint,
        nx: c_uint,
        kz: c_uint,
        ky: c_uint,
        kx: c_uint,
        input: *const f32,
        gout: *const f32,
        partial: *mut f32,
    );
    fn nt_host_cnn_bias_grad_planes(
        cout: c_uint,
        nz: c_uint,
        ny: c_uint,
        nx: c_uint,
        gout: *const f32,
        partial: *mut f32,
    );
    fn nt_host_cnn_sum_planes_acc(n: c_uint, nz: c_uint, partial: *const f32, out: *mut f32);
    fn nt_host_cnn_relu_backward(n: c_uint, y: *const f32, g: *mut f32);
    fn nt_host_cnn_maxpool3d_backward(
        c: c_uint,
        nz: c_uint,
        ny: c_uint,
        nx: c_uint,
        fz: c_uint,
        fy: c_uint,
        fx: c_uint,
        input: *const f32,
        gout: *const f32,
        gin: *mut f32,
    );
    fn nt_host_cnn_upsample_nearest3d_backward(
        c: c_uint,
        nz: c_uint,
        ny: c_uint,
        nx: c_uint,
        fz: c_uint,
        fy: c_uint,
        fx: c_uint,
        gout: *const f32,
        gin: *mut f32,
    );
    fn nt_host_cnn_add_inplace(n: c_uint, src: *const f32, dst: *mut f32);
    fn nt_host_cnn_bce_logit_grad(
        n: c_uint,
        logits: *const f32,
        target: *const f32,
        weight: *const f32,
        scale: f32,
        grad: *mut f32,
    );
    fn nt_host_cnn_adam(
        n: c_uint,
        lr_t: f32,
        beta1: f32,
        one_minus_beta1: f32,
        beta2: f32,
        one_minus_beta2: f32,
        eps: f32,
        g: *const f32,
        m: *mut f32,
        v: *mut f32,
        w: *mut f32,
    );
}

/// The product of `factors`, checked not to overflow and to fit the kernels' 32-bit indexing.
fn elements(factors: &[usize]) -> usize {
    let n = factors.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).expect("tensor size overflows usize");
    len_u32(n);
    n
}

/// The dimensions and kernel sizes as the kernels' `unsigned int` arguments.
fn u32s(v: [usize; 3]) -> [c_uint; 3] {
    v.map(len_u32)
}

/// `cnn_conv3d_grad_input`: the gradient of [`super::cnn_conv3d_same`] with respect to its input. `gout`
/// (`cout × dims`) is the gradient of the output, `weight` (`cout × cin × kernel`) the convolution's weights and
/// `gin` (`cin × dims`) receives, for each (ci, z, y, x):
///
/// `acc = 0; for co in 0..cout { for dz in 0..kz { oz = z - dz + pz (skip if outside 0..nz); for dy { oy = y -
/// dy + py (skip if outside); for dx { ox = x - dx + px (skip if outside); acc = acc + w[co, ci, dz, dy, dx] ·
/// gout[co, oz, oy, ox] } } } }`.
///
/// # Panics
/// If a kernel size is 0, a slice length does not match, or a tensor has 2^32 elements or more.
#[allow(clippy::too_many_arguments)]
pub fn cnn_conv3d_grad_input(
    cin: usize,
    cout: usize,
    dims: [usize; 3],
    kernel: [usize; 3],
    gout: &[f32],
    weight: &[f32],
    gin: &mut [f32],
) {
    assert!(kernel.iter().all(|&k| k > 0), "kernel sizes must be > 0");
    let [nz, ny, nx] = dims;
    let [kz, ky, kx] = kernel;
    assert_eq!(gout.len(), elements(&[cout, nz, ny, nx]), "gout must be cout × nz × ny × nx");
    assert_eq!(weight.len(), elements(&[cout, cin, kz, ky, kx]), "weight must be cout × cin × kz × ky × kx");
    assert_eq!(gin.len(), elements(&[cin, nz, ny, nx]), "gin must be cin × nz × ny × nx");
    if gin.is_empty() {
        return;
    }
    let [nz, ny, nx] = u32s(dims);
    let [kz, ky, kx] = u32s(kernel);
    // SAFETY: gout has cout·nz·ny·nx elements, weight cout·cin·kz·ky·kx and gin cin·nz·ny·nx (all checked above,
    // each < 2^32); the kernel reads only in-volume output positions (0 <= oz < nz etc.) of channels co < cout,
    // weights of ci < cin, co < cout, and writes gin[t] for t < cin·nz·ny·nx.
    unsafe {
        nt_host_cnn_conv3d_grad_input(
            len_u32(cin),
            len_u32(cout),
            nz,
            ny,
            nx,
            kz,
            ky,
            kx,
            gout.as_ptr(),
            weight.as_ptr(),
            gin.as_mut_ptr(),
        );
    }
}

/// `cnn_conv3d_grad_weight_planes`: per-z-plane partial sums of the gradient of [`super::cnn_conv3d_same`] with
/// respect to its weights, from `input` (`cin × dims`, the convolution's input) and `gout` (`cout × dims`, the
/// gradient of its output). `partial` (`(cout·cin·kz·ky·kx) × nz`) receives at `widx · nz + z`, for weight
/// `widx = (co, ci, dz, dy, dx)` and output plane `z`:
///
/// `acc = 0; iz = z + dz - pz; if iz is inside 0..nz { for y in 0..ny { iy = y + dy - py (skip if outside); for
/// x in 0..nx { ix = x + dx - px (skip if outside); acc = acc + gout[co, z, y, x] · input[ci, iz, iy, ix] } } }`
/// (0 when `iz` is outside). [`cnn_sum_planes_acc`] then adds the planes, in z order, onto the weight gradient.
///
/// # Panics
/// If a kernel size is 0, a slice length does not match, or a tensor has 2^32 elements or more.
#[allow(clippy::too_many_arguments)]
pub fn cnn_conv3d_grad_weight_planes(
    cin: usize,
    cout: usize,
    dims: [usize; 3],
    kernel: [usize; 3],
    input: &[f32],
    gout: &[f32],
    partial: &mut [f32],
) {
    assert!(kernel.iter().all(|&k| k > 0), "kernel sizes must be > 0");
    let [nz, ny, nx] = dims;
    let [kz, ky, kx] = kernel;
    assert_eq!(input.len(), elements(&[cin, nz, ny, nx]), "input must be cin × nz × ny × nx");
    assert_eq!(gout.len(), elements(&[cout, nz, ny, nx]), "gout must be cout × nz × ny × nx");
    assert_eq!(
        partial.len(),
        elements(&[cout, cin, kz, ky, kx, nz]),
        "partial must be (cout × cin × kz × ky × kx) × nz"
    );
    if partial.is_empty() {
        return;
    }
    let [nz, ny, nx] = u32s(dims);
    let [kz, ky, kx] = u32s(kernel);
    // SAFETY: input has cin·nz·ny·nx elements, gout cout·nz·ny·nx and partial cout·cin·kz·ky·kx·nz (all checked
    // above, each < 2^32); thread t < partial.len() reads gout plane (co, z) with co < cout, z < nz and input
    // plane (ci, iz) with ci < cin, 0 <= iz < nz, only at in-volume rows and columns, and writes partial[t].
    unsafe {
        nt_host_cnn_conv3d_grad_weight_planes(
            len_u32(cin),
            len_u32(cout),
            nz,
            ny,
            nx,
            kz,
            ky,
            kx,
            input.as_ptr(),
            gout.as_ptr(),
            partial.as_mut_ptr(),
        );
    }
}

/// `cnn_bias_grad_planes`: per-z-plane partial sums of the bias gradient from `gout` (`cout × dims`). `partial`
/// (`cout × nz`) receives at `co · nz + z`: `acc = 0; for y in 0..ny { for x in 0..nx { acc = acc + gout[co, z,
/// y, x] } }`. [`cnn_sum_planes_acc`] then adds the planes, in z order, onto the bias gradient.
///
/// # Panics
/// If a slice length does not match or a tensor has 2^32 elements or more.
pub fn cnn_bias_grad_planes(cout: usize, dims: [usize; 3], gout: &[f32], partial: &mut [f32]) {
    let [nz, ny, nx] = dims;
    assert_eq!(gout.len(), elements(&[cout, nz, ny, nx]), "gout must be cout × nz × ny × nx");
    assert_eq!(partial.len(), elements(&[cout, nz]), "partial must be cout × nz");
    if partial.is_empty() {
        return;
    }
    let [nz, ny, nx] = u32s(dims);
    // SAFETY: gout has cout·nz·ny·nx elements and partial cout·nz (checked, < 2^32); thread t < cout·nz reads the
    // plane gout[t·ny·nx ..][.. ny·nx] and writes partial[t].
    unsafe { nt_host_cnn_bias_grad_planes(len_u32(cout), nz, ny, nx, gout.as_ptr(), partial.as_mut_ptr()) }
}

/// `cnn_sum_planes_acc`: adds per-plane partial sums onto a running gradient. With `n = out.len()` and `partial`
/// `n × nz`: `acc = out[t]; for z in 0..nz { acc = acc + partial[t · nz + z] }; out[t] = acc`. It accumulates
/// onto what is in `out`: zero it before the first patch of a batch.
///
/// # Panics
/// If `partial.len() != out.len() · nz` or it has 2^32 elements or more.
pub fn cnn_sum_planes_acc(nz: usize, partial: &[f32], out: &mut [f32]) {
    let n = out.len();
    assert_eq!(partial.len(), elements(&[n, nz]), "partial must be out.len() × nz");
    if out.is_empty() {
        return;
    }
    // SAFETY: partial has n·nz elements (checked, < 2^32); thread t < n reads partial[t·nz ..][.. nz] and updates
    // out[t].
    unsafe { nt_host_cnn_sum_planes_acc(len_u32(n), len_u32(nz), partial.as_ptr(), out.as_mut_ptr()) }
}

/// `cnn_relu_backward` in place: `g = if y > 0 { g } else { 0 }`, where `y` is the ReLU's OUTPUT (NaN or ±0 in `y`
/// gives +0).
///
/// # Panics
/// If `y` and `g` differ in length.
pub fn cnn_relu_backward(y: &[f32], g: &mut [f32]) {
    assert_eq!(y.len(), g.len(), "y and g must have the same length");
    if g.is_empty() {
        return;
    }
    let n = len_u32(g.len());
    // SAFETY: both slices have n elements; the kernel touches y[t] and g[t] for t < n only.
    unsafe { nt_host_cnn_relu_backward(n, y.as_ptr(), g.as_mut_ptr()) }
}

/// `cnn_maxpool3d_backward`: the gradient of [`super::cnn_maxpool3d`] (window = stride = `factor`) with respect to
/// its `input` (`c × dims`, FINE dims, each a multiple of its factor), from `gout` (`c × dims / factor`). Each
/// window is scanned as the forward pass does (m = its first element, then dz, dy, dx with `if v > m` moving m
/// and the arg position), so on ties only the first maximum gets the gradient: `gin` (`c × dims`) is
/// `gout[ch, z / fz, y / fy, x / fx]` at the arg position of its window and 0 elsewhere.
///
/// # Panics
/// If a factor is 0 or does not divide its dimension, or a slice length does not match.
pub fn cnn_maxpool3d_backward(
    c: usize,
    dims: [usize; 3],
    factor: [usize; 3],
    input: &[f32],
    gout: &[f32],
    gin: &mut [f32],
) {
    assert!(factor.iter().all(|&f| f > 0), "pool factors must be > 0");
    assert!(
        (0..3).all(|a| dims[a].is_multiple_of(factor[a])),
        "dims {dims:?} not divisible by the pool factors {factor:?}"
    );
    let [nz, ny, nx] = dims;
    assert_eq!(input.len(), elements(&[c, nz, ny, nx]), "input must be c × nz × ny × nx");
    assert_eq!(gin.len(), input.len(), "gin must be c × nz × ny × nx");
    assert_eq!(
        gout.len(),
        elements(&[c, nz / factor[0], ny / factor[1], nx / factor[2]]),
        "gout must be c × (nz/fz) × (ny/fy) × (nx/fx)"
    );
    if gin.is_empty() {
        return;
    }
    let [nz, ny, nx] = u32s(dims);
    let [fz, fy, fx] = u32s(factor);
    // SAFETY: input and gin have c·nz·ny·nx elements and gout c·(nz/fz)·(ny/fy)·(nx/fx) (checked, < 2^32); with
    // the factors dividing the dims, the window of fine element t < gin.len() lies inside its channel of input and
    // its coarse index inside gout.
    unsafe {
        nt_host_cnn_maxpool3d_backward(
            len_u32(c),
            nz,
            ny,
            nx,
            fz,
            fy,
            fx,
            input.as_ptr(),
            gout.as_ptr(),
            gin.as_mut_ptr(),
        );
    }
}

/// `cnn_upsample_nearest3d_backward`: the gradient of [`super::cnn_upsample_nearest3d`] by `factor` with respect
/// to its input, from `gout` (`c × dims · factor`, fine). `dims` are the COARSE dims; `gin` (`c × dims`) receives
/// `acc = 0; for dz in 0..fz { for dy in 0..fy { for dx in 0..fx { acc = acc + gout[ch, z·fz + dz, y·fy + dy,
/// x·fx + dx] } } }`.
///
/// # Panics
/// If a factor is 0, a slice length does not match, or a tensor has 2^32 elements or more.
pub fn cnn_upsample_nearest3d_backward(c: usize, dims: [usize; 3], factor: [usize; 3], gout: &[f32], gin: &mut [f32]) {
    assert!(factor.iter().all(|&f| f > 0), "upsampling factors must be > 0");
    let [nz, ny, nx] = dims;
    let [fz, fy, fx] = factor;
    assert_eq!(gin.len(), elements(&[c, nz, ny, nx]), "gin must be c × nz × ny × nx");
    assert_eq!(gout.len(), elements(&[c, nz, fz, ny, fy, nx, fx]), "gout must be c × (nz·fz) × (ny·fy) × (nx·fx)");
    if gin.is_empty() {
        return;
    }
    let [nz, ny, nx] = u32s(dims);
    let [fz, fy, fx] = u32s(factor);
    // SAFETY: gin has c·nz·ny·nx elements and gout c·nz·fz·ny·fy·nx·fx (checked, < 2^32); coarse element
    // t < gin.len() reads gout at (ch, z·fz + dz, y·fy + dy, x·fx + dx) with dz < fz etc., inside gout.
    unsafe {
        nt_host_cnn_upsample_nearest3d_backward(len_u32(c), nz, ny, nx, fz, fy, fx, gout.as_ptr(), gin.as_mut_ptr());
    }
}

/// `cnn_add_inplace`: `dst = dst + src`, element-wise.
///
/// # Panics
/// If `src` and `dst` differ in length.
pub fn cnn_add_inplace(src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "src and dst must have the same length");
    if dst.is_empty() {
        return;
    }
    let n = len_u32(dst.len());
    // SAFETY: both slices have n elements; the kernel touches src[t] and dst[t] for t < n only.
    unsafe { nt_host_cnn_add_inplace(n, src.as_ptr(), dst.as_mut_ptr()) }
}

/// `cnn_bce_logit_grad`: the gradient of a weighted binary cross-entropy with respect to the logits,
/// `grad = ((p - target) · weight) · scale` with `p` the sigmoid of the logit exactly as
/// [`super::cnn_sigmoid`] computes it (`(1 / (1 + nt_exp(-(x as f64)))) as f32`; NaN stays NaN), each operation
/// rounded to f32.
///
/// # Panics
/// If `logits`, `target`, `weight` and `grad` differ in length.
pub fn cnn_bce_logit_grad(logits: &[f32], target: &[f32], weight: &[f32], scale: f32, grad: &mut [f32]) {
    let n = grad.len();
    assert_eq!(logits.len(), n, "logits must have grad.len() elements");
    assert_eq!(target.len(), n, "target must have grad.len() elements");
    assert_eq!(weight.len(), n, "weight must have grad.len() elements");
    if n == 0 {
        return;
    }
    // SAFETY: all four slices have n elements (< 2^32 by len_u32); the kernel touches index t < n only.
    unsafe {
        nt_host_cnn_bce_logit_grad(
            len_u32(n),
            logits.as_ptr(),
            target.as_ptr(),
            weight.as_ptr(),
            scale,
            grad.as_mut_ptr(),
        );
    }
}

/// The scalars of one Adam step ([`cnn_adam`]); the caller folds the bias correction into `lr_t` and passes
/// `1 - beta` precomputed, so that every backend uses the very same f32 values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// Step size of this step, bias correction included.
    pub lr_t: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// `1 - beta1`.
    pub one_minus_beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// `1 - beta2`.
    pub one_minus_beta2: f32,
    /// Added to the square root of the second moment.
    pub eps: f32,
}

/// `cnn_adam`: one Adam step in place, each operation rounded to f32 (square root and division correctly
/// rounded): `m = beta1·m + one_minus_beta1·g; v = beta2·v + one_minus_beta2·(g·g); w = w - (lr_t·m) / (sqrt(v) +
/// eps)` with the new `m` and `v`.
///
/// # Panics
/// If `g`, `m`, `v` and `w` differ in length.
pub fn cnn_adam(step: &AdamStep, g: &[f32], m: &mut [f32], v: &mut [f32], w: &mut [f32]) {
    let n = w.len();
    assert_eq!(g.len(), n, "g must have w.len() elements");
    assert_eq!(m.len(), n, "m must have w.len() elements");
    assert_eq!(v.len(), n, "v must have w.len() elements");
    if n == 0 {
        return;
    }
    // SAFETY: all four slices have n elements (< 2^32 by len_u32) and m, v, w are distinct exclusive borrows; the
    // kernel touches index t < n only.
    unsafe {
        nt_host_cnn_adam(
            len_u32(n),
            step.lr_t,
            step.beta1,
            step.one_minus_beta1,
            step.beta2,
            step.one_minus_beta2,
            step.eps,
            g.as_ptr(),
            m.as_mut_ptr(),
            v.as_mut_ptr(),
            w.as_mut_ptr(),
        );
    }
}
