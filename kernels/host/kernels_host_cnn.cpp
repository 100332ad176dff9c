// Host build of the U-Net inference kernels (`cuda/cnn.cu`): the shim, then the .cu source unchanged, then
// extern "C" entry points that launch each kernel with the sequential launcher. Linked by build.rs.
#include "shim.h"

#include "../cuda/cnn.cu"

extern "C" {

void nt_host_cnn_conv3d_same(unsigned int cin, unsigned int cout, unsigned int nz, unsigned int ny, unsigned int nx,
                             unsigned int kz, unsigned int ky, unsigned int kx, const float* in, const float* w,
                             const float* bias, float* out) {
    const unsigned long long n = (unsigned long long)cout * nz * ny * nx;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_conv3d_same(cin, cout, nz, ny, nx, kz, ky, kx, in, w, bias, out); });
}

void nt_host_cnn_relu(unsigned int n, float* x) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { cnn_relu(n, x); });
}

void nt_host_cnn_sigmoid(unsigned int n, float* x) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { cnn_sigmoid(n, x); });
}

void nt_host_cnn_maxpool3d(unsigned int c, unsigned int nz, unsigned int ny, unsigned int nx, unsigned int fz,
                           unsigned int fy, unsigned int fx, const float* in, float* out) {
    const unsigned long long n = (unsigned long long)c * (nz / fz) * (ny / fy) * (nx / fx);
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_maxpool3d(c, nz, ny, nx, fz, fy, fx, in, out); });
}

void nt_host_cnn_upsample_nearest3d(unsigned int c, unsigned int nz, unsigned int ny, unsigned int nx,
                                    unsigned int fz, unsigned int fy, unsigned int fx, const float* in, float* out) {
    const unsigned long long n = (unsigned long long)c * nz * fz * ny * fy * nx * fx;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_upsample_nearest3d(c, nz, ny, nx, fz, fy, fx, in, out); });
}

void nt_host_cnn_concat_channels(unsigned int ca, unsigned int cb, unsigned int nvox, const float* a,
                                 const float* b, float* out) {
    const unsigned long long n = (unsigned long long)(ca + cb) * nvox;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_concat_channels(ca, cb, nvox, a, b, out); });
}

}  // extern "C"
