// 3D U-Net inference layers (`neurotwin_segment::cnn`), one thread per output element, mirroring the Rust CPU
// layers bit for bit: f32 tensors laid out C x Z x Y x X (x fastest), every multiply and add a separately
// rounded __fmul_rn / __fadd_rn (never contracted into FMA) in the order of the Rust code, the sigmoid through
// the deterministic f64 exponential nt_exp (`detmath.cuh`). No shared memory, no warp intrinsics (the host
// build runs the very same code); naive direct convolution (no tiling). No system headers (NVRTC).
//
// Launch: 1-D grid, thread t = blockIdx.x * blockDim.x + threadIdx.x handles output element t < n (n < 2^32).
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "detmath.cuh"
#include "cnn_common.cuh"

// 'Same' 3D convolution, stride 1, zero padding: the kernel origin is offset by (k - 1) / 2 along each axis,
// so out(co, z, y, x) = bias[co] + sum over ci, dz, dy, dx (in this nesting order, taps outside the volume
// skipped) of w[co, ci, dz, dy, dx] * in(ci, z + dz - (kz - 1) / 2, y + dy - (ky - 1) / 2, x + dx - (kx - 1) / 2).
// in: cin x nz x ny x nx, w: cout x cin x kz x ky x kx, bias: cout, out: cout x nz x ny x nx.
NT_KERNEL void cnn_conv3d_same(unsigned int cin, unsigned int cout, unsigned int nz, unsigned int ny,
                               unsigned int nx, unsigned int kz, unsigned int ky, unsigned int kx,
                               const float* __restrict__ in, const float* __restrict__ w,
                               const float* __restrict__ bias, float* __restrict__ out) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int plane = ny * nx;
    const unsigned int vol = nz * plane;
    if (t >= cout * vol) {
        return;
    }
    const unsigned int co = t / vol;
    const unsigned int r = t - co * vol;
    const int z = (int)(r / plane);
    const int y = (int)((r - (unsigned int)z * plane) / nx);
    const int x = (int)(r - (unsigned int)z * plane - (unsigned int)y * nx);
    const int pz = (int)(kz - 1u) / 2;
    const int py = (int)(ky - 1u) / 2;
    const int px = (int)(kx - 1u) / 2;
    const unsigned int taps = kz * ky * kx;
    float acc = bias[co];
    for (unsigned int ci = 0; ci < cin; ++ci) {
        const float* wc = w + ((unsigned long long)co * cin + ci) * taps;
        const float* ic = in + (unsigned long long)ci * vol;
        for (int dz = 0; dz < (int)kz; ++dz) {
            const int iz = z + dz - pz;
            if (iz < 0 || iz >= (int)nz) {
                continue;
            }
            for (int dy = 0; dy < (int)ky; ++dy) {
                const int iy = y + dy - py;
                if (iy < 0 || iy >= (int)ny) {
                    continue;
                }
                const float* row = ic + ((unsigned int)iz * ny + (unsigned int)iy) * nx;
                const float* wr = wc + ((unsigned int)dz * ky + (unsigned int)dy) * kx;
                for (int dx = 0; dx < (int)kx; ++dx) {
                    const int ix = x + dx - px;
                    if (ix < 0 || ix >= (int)nx) {
                        continue;
                    }
                    acc = __fadd_rn(acc, __fmul_rn(wr[dx], row[ix]));
                }
            }
        }
    }
    out[t] = acc;
}

// In place: x = x > 0 ? x : 0 (NaN becomes 0, -0 becomes +0), as the Rust `relu`.
NT_KERNEL void cnn_relu(unsigned int n, float* x) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    // NVVM lowers this select to max.f32 (it does so even for an explicit bit-mask form of it, i.e. it treats
    // max.f32(v, +0) as v > 0 ? v : +0, including -0 -> +0 and NaN -> +0).
    const float v = x[t];
    x[t] = v > 0.0f ? v : 0.0f;
}

// In place: x = (float)(1 / (1 + nt_exp(-(double)x))) in f64, rounded once to f32 (NaN unchanged), as the Rust
// `sigmoid_f32`.
NT_KERNEL void cnn_sigmoid(unsigned int n, float* x) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    const float v = x[t];
    if (v != v) {
        return;  // NaN stays as it is (same bits as the Rust side)
    }
    x[t] = nt_sigmoid_f32(v);  // `cnn_common.cuh`, shared with cnn_bce_logit_grad
}

// Max pooling with window = stride = (fz, fy, fx) over an input of c x nz x ny x nx (each dimension a multiple
// of its factor): out(c, z, y, x) = max over the window, scanned dz, dy, dx with `if (v > m) m = v` from the
// window's first element. out: c x (nz / fz) x (ny / fy) x (nx / fx).
NT_KERNEL void cnn_maxpool3d(unsigned int c, unsigned int nz, unsigned int ny, unsigned int nx, unsigned int fz,
                             unsigned int fy, unsigned int fx, const float* __restrict__ in,
                             float* __restrict__ out) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int oz = nz / fz, oy = ny / fy, ox = nx / fx;
    const unsigned int oplane = oy * ox;
    const unsigned int ovol = oz * oplane;
    if (t >= c * ovol) {
        return;
    }
    const unsigned int ch = t / ovol;
    const unsigned int r = t - ch * ovol;
    const unsigned int z = r / oplane;
    const unsigned int y = (r - z * oplane) / ox;
    const unsigned int x = r - z * oplane - y * ox;
    const float* ic = in + (unsigned long long)ch * nz * ny * nx;
    float m = ic[((z * fz) * ny + y * fy) * nx + x * fx];
    for (unsigned int dz = 0; dz < fz; ++dz) {
        for (unsigned int dy = 0; dy < fy; ++dy) {
            const float* row = ic + ((z * fz + dz) * ny + (y * fy + dy)) * nx + x * fx;
            for (unsigned int dx = 0; dx < fx; ++dx) {
                const float v = row[dx];
                if (v > m) {
                    m = v;
                }
            }
        }
    }
    out[t] = m;
}

// Nearest-neighbour upsampling by (fz, fy, fx) of an input of c x nz x ny x nx:
// out(c, z, y, x) = in(c, z / fz, y / fy, x / fx), out: c x (nz * fz) x (ny * fy) x (nx * fx).
NT_KERNEL void cnn_upsample_nearest3d(unsigned int c, unsigned int nz, unsigned int ny, unsigned int nx,
                                      unsigned int fz, unsigned int fy, unsigned int fx,
                                      const float* __restrict__ in, float* __restrict__ out) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int uy = ny * fy, ux = nx * fx;
    const unsigned int uplane = uy * ux;
    const unsigned int uvol = nz * fz * uplane;
    if (t >= c * uvol) {
        return;
    }
    const unsigned int ch = t / uvol;
    const unsigned int r = t - ch * uvol;
    const unsigned int z = r / uplane;
    const unsigned int y = (r - z * uplane) / ux;
    const unsigned int x = r - z * uplane - y * ux;
    out[t] = in[(((unsigned long long)ch * nz + z / fz) * ny + y / fy) * nx + x / fx];
}

// Channel concatenation (skip connections): out = [a; b] with a: ca x nvox, b: cb x nvox.
NT_KERNEL void cnn_concat_channels(unsigned int ca, unsigned int cb, unsigned int nvox, const float* __restrict__ a,
                                   const float* __restrict__ b, float* __restrict__ out) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int na = ca * nvox;
    if (t >= na + cb * nvox) {
        return;
    }
    out[t] = t < na ? a[t] : b[t - na];
}
