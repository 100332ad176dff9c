// Host build of the predictive-coding kernels (`cuda/predictive.cu`): the shim, then the .cu source unchanged, then extern "C" entry points that launch each kernel with the
// sequential launcher. Linked by build.rs.
#include "shim.h"

#include "../cuda/predictive.cu"

extern "C" {

void nt_host_pc_activate(unsigned int n, int kind, const double* r, double* fr) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { pc_activate(n, kind, r, fr); });
}

void nt_host_pc_spmm(unsigned int rows, unsigned int cols, unsigned int batch, const unsigned int* row_ptr,
                     const unsigned int* col_idx, const double* vals, const double* x, double* y) {
    const unsigned long long n = (unsigned long long)rows * batch;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { pc_spmm(rows, cols, batch, row_ptr, col_idx, vals, x, y); });
}

void nt_host_pc_spmm_t(unsigned int rows, unsigned int cols, unsigned int batch, const unsigned int* t_ptr,
                       const unsigned int* t_row, const unsigned int* t_perm, const double* vals, const double* x,
                       double* y) {
    const unsigned long long n = (unsigned long long)cols * batch;
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { pc_spmm_t(rows, cols, batch, t_ptr, t_row, t_perm, vals, x, y); });
}

void nt_host_pc_error(unsigned int n, double precision, const double* r, const double* mu, double* e) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { pc_error(n, precision, r, mu, e); });
}

void nt_host_pc_infer_update(unsigned int n, int kind, double dt, double l1, const double* e, const double* bu,
                             double* r) {
    nt_launch(nt_grid_1d(n, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { pc_infer_update(n, kind, dt, l1, e, bu, r); });
}

void nt_host_pc_learn(unsigned int rows, unsigned int cols, unsigned int batch, const unsigned int* row_ptr,
                      const unsigned int* col_idx, double eta, const double* e, const double* fr, double* vals) {
    nt_launch(nt_grid_1d(rows, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { pc_learn(rows, cols, batch, row_ptr, col_idx, eta, e, fr, vals); });
}

void nt_host_pc_col_normalize(unsigned int cols, const unsigned int* t_ptr, const unsigned int* t_perm,
                              double target, double* vals) {
    nt_launch(nt_grid_1d(cols, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK),
              [&] { pc_col_normalize(cols, t_ptr, t_perm, target, vals); });
}

}  // extern "C"
