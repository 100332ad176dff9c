// Host build of the U-Net training kernels (`cuda/cnn_train.cu`): the shim, then the .cu source unchanged, then
// extern "C" entry points that launch each kernel with the sequential launcher. Linked by build.rs.
#include "shim.h"

#include "../cuda/cnn_train.cu"

extern "C" {

void nt_host_cnn_conv3d_grad_input(unsigned int cin, unsigned int cout, unsigned int nz, unsigned int ny,
                                   unsigned int nx, unsigned int kz, unsigned int ky, unsigned int kx,
                                   const float* gout, const float* w, float* gin) {
    const unsigned long long n = (unsigned long long)cin * nz * ny * nx;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_conv3d_grad_input(cin, cout, nz, ny, nx, kz, ky, kx, gout, w, gin); });
}

void nt_host_cnn_conv3d_grad_weight_planes(unsigned int cin, unsigned int cout, unsigned int nz, unsigned int ny,
                                           unsigned int nx, unsigned int kz, unsigned int ky, unsigned int kx,
                                           const float* in, const float* gout, float* partial) {
    const unsigned long long n = (unsigned long long)cout * cin * kz * ky * kx * nz;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_conv3d_grad_weight_planes(cin, cout, nz, ny, nx, kz, ky, kx, in, gout, partial); });
}

void nt_host_cnn_bias_grad_planes(unsigned int cout, unsigned int nz, unsigned int ny, unsigned int nx,
                                  const float* gout, float* partial) {
    const unsigned long long n = (unsigned long long)cout * nz;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_bias_grad_planes(cout, nz, ny, nx, gout, partial); });
}

void nt_host_cnn_sum_planes_acc(unsigned int n, unsigned int nz, const float* partial, float* out) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_sum_planes_acc(n, nz, partial, out); });
}

void nt_host_cnn_relu_backward(unsigned int n, const float* y, float* g) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { cnn_relu_backward(n, y, g); });
}

void nt_host_cnn_maxpool3d_backward(unsigned int c, unsigned int nz, unsigned int ny, unsigned int nx,
                                    unsigned int fz, unsigned int fy, unsigned int fx, const float* in,
                                    const float* gout, float* gin) {
    const unsigned long long n = (unsigned long long)c * nz * ny * nx;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_maxpool3d_backward(c, nz, ny, nx, fz, fy, fx, in, gout, gin); });
}

void nt_host_cnn_upsample_nearest3d_backward(unsigned int c, unsigned int nz, unsigned int ny, unsigned int nx,
                                             unsigned int fz, unsigned int fy, unsigned int fx, const float* gout,
                                             float* gin) {
    const unsigned long long n = (unsigned long long)c * nz * ny * nx;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_upsample_nearest3d_backward(c, nz, ny, nx, fz, fy, fx, gout, gin); });
}

void nt_host_cnn_add_inplace(unsigned int n, const float* src, float* dst) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { cnn_add_inplace(n, src, dst); });
}

void nt_host_cnn_bce_logit_grad(unsigned int n, const float* logits, const float* target, const float* weight,
                                float scale, float* grad) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_bce_logit_grad(n, logits, target, weight, scale, grad); });
}

void nt_host_cnn_adam(unsigned int n, float lr_t, float beta1, float one_minus_beta1, float beta2,
                      float one_minus_beta2, float eps, const float* g, float* m, float* v, float* w) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { cnn_adam(n, lr_t, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, g, m, v, w); });
}

}  // extern "C"
