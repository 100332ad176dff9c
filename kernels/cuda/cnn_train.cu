// 3D U-Net training (backward passes, loss gradient, Adam) for the layers of `cnn.cu`, one thread per output
// element, mirroring the Rust CPU training code bit for bit: f32 tensors laid out C x Z x Y x X (x fastest),
// every multiply, add, subtract, divide and square root a separately rounded __fmul_rn / __fadd_rn / __fsub_rn /
// __fdiv_rn / __fsqrt_rn (never contracted into FMA), each accumulator starting at 0 (unless stated) and adding
// its terms in the nesting order stated per kernel. Gradients are gathered (each thread owns its output, no
// atomics), so results do not depend on the launch. Weight and bias gradients come as per-z-plane partial sums
// (`*_planes`) that `cnn_sum_planes_acc` adds, in z order, onto the running gradient. No shared memory, no warp
// intrinsics (the host build runs the very same code); no system headers (NVRTC).
//
// Conventions as cnn.cu: 'same' convolution, stride 1, kernel kz x ky x kx with origin offset
// pz = (kz - 1) / 2 etc., weight index widx = (((co * cin + ci) * kz + dz) * ky + dy) * kx + dx; vol = nz*ny*nx.
// Launch: 1-D grid, thread t = blockIdx.x * blockDim.x + threadIdx.x handles output element t < n (n < 2^32).
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

#include "detmath.cuh"
#include "cnn_common.cuh"

// Gradient of the 'same' convolution with respect to its input: gin(ci, z, y, x) = sum over co, dz, dy, dx (in
// this nesting order, from 0; terms with an output position outside the volume skipped) of
// w[co, ci, dz, dy, dx] * gout(co, z - dz + pz, y - dy + py, x - dx + px).
// gout: cout x vol, w: cout x cin x kz x ky x kx, gin: cin x vol.
NT_KERNEL void cnn_conv3d_grad_input(unsigned int cin, unsigned int cout, unsigned int nz, unsigned int ny,
                                     unsigned int nx, unsigned int kz, unsigned int ky, unsigned int kx,
                                     const float* __restrict__ gout, const float* __restrict__ w,
                                     float* __restrict__ gin) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int plane = ny * nx;
    const unsigned int vol = nz * plane;
    if (t >= cin * vol) {
        return;
    }
    const unsigned int ci = t / vol;
    const unsigned int r = t - ci * vol;
    const int z = (int)(r / plane);
    const int y = (int)((r - (unsigned int)z * plane) / nx);
    const int x = (int)(r - (unsigned int)z * plane - (unsigned int)y * nx);
    const int pz = (int)(kz - 1u) / 2;
    const int py = (int)(ky - 1u) / 2;
    const int px = (int)(kx - 1u) / 2;
    const unsigned int taps = kz * ky * kx;
    float acc = 0.0f;
    for (unsigned int co = 0; co < cout; ++co) {
        const float* wc = w + ((unsigned long long)co * cin + ci) * taps;
        const float* gc = gout + (unsigned long long)co * vol;
        for (int dz = 0; dz < (int)kz; ++dz) {
            const int oz = z - dz + pz;
            if (oz < 0 || oz >= (int)nz) {
                continue;
            }
            for (int dy = 0; dy < (int)ky; ++dy) {
                const int oy = y - dy + py;
                if (oy < 0 || oy >= (int)ny) {
                    continue;
                }
                const float* row = gc + ((unsigned int)oz * ny + (unsigned int)oy) * nx;
                const float* wr = wc + ((unsigned int)dz * ky + (unsigned int)dy) * kx;
                for (int dx = 0; dx < (int)kx; ++dx) {
                    const int ox = x - dx + px;
                    if (ox < 0 || ox >= (int)nx) {
                        continue;
                    }
                    acc = __fadd_rn(acc, __fmul_rn(wr[dx], row[ox]));
                }
            }
        }
    }
    gin[t] = acc;
}

// Per-z-plane partial sums of the gradient of the 'same' convolution with respect to its weights: thread
// t = widx * nz + z (widx = (((co * cin + ci) * kz + dz) * ky + dy) * kx + dx) writes
// partial[t] = sum over y, x (in this nesting order, from 0; input positions outside the volume skipped) of
// gout(co, z, y, x) * in(ci, z + dz - pz, y + dy - py, x + dx - px), and 0 when z + dz - pz is outside [0, nz).
// in: cin x vol, gout: cout x vol, partial: (cout * cin * kz * ky * kx) x nz.
NT_KERNEL void cnn_conv3d_grad_weight_planes(unsigned int cin, unsigned int cout, unsigned int nz, unsigned int ny,
                                             unsigned int nx, unsigned int kz, unsigned int ky, unsigned int kx,
                                             const float* __restrict__ in, const float* __restrict__ gout,
                                             float* __restrict__ partial) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= cout * cin * kz * ky * kx * nz) {
        return;
    }
    const unsigned int widx = t / nz;
    const int z = (int)(t - widx * nz);
    unsigned int q = widx;
    const int dx = (int)(q % kx);
    q /= kx;
    const int dy = (int)(q % ky);
    q /= ky;
    const int dz = (int)(q % kz);
    q /= kz;
    const unsigned int ci = q % cin;
    const unsigned int co = q / cin;
    const int pz = (int)(kz - 1u) / 2;
    const int py = (int)(ky - 1u) / 2;
    const int px = (int)(kx - 1u) / 2;
    const unsigned int plane = ny * nx;
    float acc = 0.0f;
    const int iz = z + dz - pz;
    if (iz >= 0 && iz < (int)nz) {
        const float* gp = gout + ((unsigned long long)co * nz + (unsigned int)z) * plane;
        const float* ip = in + ((unsigned long long)ci * nz + (unsigned int)iz) * plane;
        for (int y = 0; y < (int)ny; ++y) {
            const int iy = y + dy - py;
            if (iy < 0 || iy >= (int)ny) {
                continue;
            }
            const float* grow = gp + (unsigned int)y * nx;
            const float* irow = ip + (unsigned int)iy * nx;
            for (int x = 0; x < (int)nx; ++x) {
                const int ix = x + dx - px;
                if (ix < 0 || ix >= (int)nx) {
                    continue;
                }
                acc = __fadd_rn(acc, __fmul_rn(grow[x], irow[ix]));
            }
        }
    }
    partial[t] = acc;
}

// Per-z-plane partial sums of the bias gradient: thread t = co * nz + z writes partial[t] = sum over y, x (in this
// nesting order, from 0) of gout(co, z, y, x). gout: cout x vol, partial: cout x nz.
NT_KERNEL void cnn_bias_grad_planes(unsigned int cout, unsigned int nz, unsigned int ny, unsigned int nx,
                                    const float* __restrict__ gout, float* __restrict__ partial) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= cout * nz) {
        return;
    }
    const unsigned int plane = ny * nx;
    const float* gp = gout + (unsigned long long)t * plane;  // (co * nz + z) * plane
    float acc = 0.0f;
    for (unsigned int i = 0; i < plane; ++i) {  // y, then x: the plane in memory order
        acc = __fadd_rn(acc, gp[i]);
    }
    partial[t] = acc;
}

// Adds per-plane partial sums onto a running gradient: out[t] = out[t] + partial[t * nz] + ... +
// partial[t * nz + nz - 1], added one by one in z order starting from the value already in out (zero it before
// the first patch of a batch). partial: n x nz, out: n.
NT_KERNEL void cnn_sum_planes_acc(unsigned int n, unsigned int nz, const float* __restrict__ partial,
                                  float* __restrict__ out) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    const float* p = partial + (unsigned long long)t * nz;
    float acc = out[t];
    for (unsigned int z = 0; z < nz; ++z) {
        acc = __fadd_rn(acc, p[z]);
    }
    out[t] = acc;
}

// ReLU backward in place, from the ReLU's output y: g = y > 0 ? g : 0 (NaN or -0 in y gives +0). A select of g by
// a comparison of y, which NVVM cannot turn into max.f32 (the caveat of cnn_relu).
NT_KERNEL void cnn_relu_backward(unsigned int n, const float* __restrict__ y, float* __restrict__ g) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    g[t] = y[t] > 0.0f ? g[t] : 0.0f;
}

// Max pooling backward, one thread per FINE element (ch, z, y, x) of c x nz x ny x nx (each dimension a multiple
// of its factor): the window (z / fz, y / fy, x / fx) is scanned exactly as cnn_maxpool3d does (m = its first
// element, then dz, dy, dx with `if (v > m)` updating m and the arg position), so on ties the first maximum wins;
// gin = gout(ch, z / fz, y / fy, x / fx) at the arg position, 0 elsewhere. in, gin: c x nz x ny x nx (fine),
// gout: c x (nz / fz) x (ny / fy) x (nx / fx).
NT_KERNEL void cnn_maxpool3d_backward(unsigned int c, unsigned int nz, unsigned int ny, unsigned int nx,
                                      unsigned int fz, unsigned int fy, unsigned int fx,
                                      const float* __restrict__ in, const float* __restrict__ gout,
                                      float* __restrict__ gin) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int plane = ny * nx;
    const unsigned int vol = nz * plane;
    if (t >= c * vol) {
        return;
    }
    const unsigned int ch = t / vol;
    const unsigned int own = t - ch * vol;  // position within the channel
    const unsigned int z = own / plane;
    const unsigned int y = (own - z * plane) / nx;
    const unsigned int x = own - z * plane - y * nx;
    const unsigned int wz = z / fz, wy = y / fy, wx = x / fx;
    const unsigned int z0 = wz * fz, y0 = wy * fy, x0 = wx * fx;
    const float* ic = in + (unsigned long long)ch * vol;
    unsigned int arg = (z0 * ny + y0) * nx + x0;
    float m = ic[arg];
    for (unsigned int dz = 0; dz < fz; ++dz) {
        for (unsigned int dy = 0; dy < fy; ++dy) {
            const unsigned int row = ((z0 + dz) * ny + (y0 + dy)) * nx + x0;
            for (unsigned int dx = 0; dx < fx; ++dx) {
                const float v = ic[row + dx];
                if (v > m) {
                    m = v;
                    arg = row + dx;
                }
            }
        }
    }
    const unsigned int oz = nz / fz, oy = ny / fy, ox = nx / fx;
    gin[t] = arg == own ? gout[(((unsigned long long)ch * oz + wz) * oy + wy) * ox + wx] : 0.0f;
}

// Nearest-neighbour upsampling backward, one thread per COARSE element (ch, z, y, x) of c x nz x ny x nx:
// gin = sum over dz, dy, dx (in this nesting order, from 0) of gout(ch, z * fz + dz, y * fy + dy, x * fx + dx).
// gout: c x (nz * fz) x (ny * fy) x (nx * fx) (fine), gin: c x nz x ny x nx (coarse).
NT_KERNEL void cnn_upsample_nearest3d_backward(unsigned int c, unsigned int nz, unsigned int ny, unsigned int nx,
                                               unsigned int fz, unsigned int fy, unsigned int fx,
                                               const float* __restrict__ gout, float* __restrict__ gin) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int plane = ny * nx;
    const unsigned int vol = nz * plane;
    if (t >= c * vol) {
        return;
    }
    const unsigned int ch = t / vol;
    const unsigned int r = t - ch * vol;
    const unsigned int z = r / plane;
    const unsigned int y = (r - z * plane) / nx;
    const unsigned int x = r - z * plane - y * nx;
    const unsigned int uz = nz * fz, uy = ny * fy, ux = nx * fx;
    const float* gc = gout + (unsigned long long)ch * uz * uy * ux;
    float acc = 0.0f;
    for (unsigned int dz = 0; dz < fz; ++dz) {
        for (unsigned int dy = 0; dy < fy; ++dy) {
            const float* row = gc + ((z * fz + dz) * uy + (y * fy + dy)) * ux + x * fx;
            for (unsigned int dx = 0; dx < fx; ++dx) {
                acc = __fadd_rn(acc, row[dx]);
            }
        }
    }
    gin[t] = acc;
}

// dst = dst + src, element-wise (gradient accumulation, e.g. of a skip connection).
NT_KERNEL void cnn_add_inplace(unsigned int n, const float* __restrict__ src, float* __restrict__ dst) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    dst[t] = __fadd_rn(dst[t], src[t]);
}

// Gradient of a weighted binary cross-entropy with respect to the logits: p = the sigmoid of logits[t] exactly as
// cnn_sigmoid (nt_sigmoid_f32; NaN stays NaN), grad[t] = ((p - target[t]) * weight[t]) * scale, each operation
// rounded to f32.
NT_KERNEL void cnn_bce_logit_grad(unsigned int n, const float* __restrict__ logits, const float* __restrict__ target,
                                  const float* __restrict__ weight, float scale, float* __restrict__ grad) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    const float p = nt_sigmoid_f32(logits[t]);
    grad[t] = __fmul_rn(__fmul_rn(__fsub_rn(p, target[t]), weight[t]), scale);
}

// One Adam step in place (bias correction folded into lr_t by the caller):
// m = beta1 * m + (1 - beta1) * g, v = beta2 * v + (1 - beta2) * (g * g), w = w - (lr_t * m) / (sqrt(v) + eps),
// with the new m and v, each operation rounded to f32 (sqrt and division correctly rounded).
NT_KERNEL void cnn_adam(unsigned int n, float lr_t, float beta1, float one_minus_beta1, float beta2,
                        float one_minus_beta2, float eps, const float* __restrict__ g, float* __restrict__ m,
                        float* __restrict__ v, float* __restrict__ w) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    const float gg = g[t];
    const float mm = __fadd_rn(__fmul_rn(beta1, m[t]), __fmul_rn(one_minus_beta1, gg));
    const float vv = __fadd_rn(__fmul_rn(beta2, v[t]), __fmul_rn(one_minus_beta2, __fmul_rn(gg, gg)));
    w[t] = __fsub_rn(w[t], __fdiv_rn(__fmul_rn(lr_t, mm), __fadd_rn(__fsqrt_rn(vv), eps)));
    m[t] = mm;
    v[t] = vv;
}
