// Rate-based hierarchical predictive coding (`neurotwin_predictive`): batched CSR products with the weights of
// one layer and their transpose, elementwise prediction errors and inference updates, the local learning rule
// on the existing CSR entries and column normalisation. f64 throughout, mirroring the Rust CPU backend bit for
// bit: every multiply and add a separately rounded __dmul_rn / __dadd_rn (never contracted into FMA), sums in the
// same order as the Rust code, no atomics (every output element is owned by one thread). No shared memory, no
// warp intrinsics (the host build runs the very same code). No system headers (NVRTC).
//
// Batches are sample-major: a batch of `batch` vectors of length n is an array of batch * n doubles, vector b
// at offset b * n. The CSR matrix W (rows x cols) is row_ptr (rows + 1), col_idx and vals (nnz); its transpose
// is given as t_ptr (cols + 1), t_row (original row of each transposed entry, ascending within a column) and
// t_perm (index of the entry in vals), so that learning can update vals in place and SpMV^T stays
// deterministic without atomics.
//
// Activation `kind`: 0 = linear f(x) = x, f'(x) = 1; 1 = ReLU f(x) = x > 0 ? x : 0, f'(x) = x > 0 ? 1 : 0.
//
// Launch: 1-D grid, thread t = blockIdx.x * blockDim.x + threadIdx.x handles output element t < n (n < 2^32).
#ifndef NT_KERNEL
#define NT_KERNEL extern "C" __global__
#endif

__device__ __forceinline__ double pc_f(int kind, double x) {
    if (kind == 1) {
        return x > 0.0 ? x : 0.0;
    }
    return x;
}

__device__ __forceinline__ double pc_fprime(int kind, double x) {
    if (kind == 1) {
        return x > 0.0 ? 1.0 : 0.0;
    }
    return 1.0;
}

// fr = f(r), elementwise over n values.
NT_KERNEL void pc_activate(unsigned int n, int kind, const double* __restrict__ r, double* __restrict__ fr) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    fr[t] = pc_f(kind, r[t]);
}

// y[b, i] = sum over k in row i (ascending) of vals[k] * x[b, col_idx[k]], starting from 0.
// x: batch x cols, y: batch x rows; one thread per (b, i), t = b * rows + i.
NT_KERNEL void pc_spmm(unsigned int rows, unsigned int cols, unsigned int batch,
                       const unsigned int* __restrict__ row_ptr, const unsigned int* __restrict__ col_idx,
                       const double* __restrict__ vals, const double* __restrict__ x, double* __restrict__ y) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= rows * batch) {
        return;
    }
    const unsigned int b = t / rows;
    const unsigned int i = t - b * rows;
    const double* xb = x + (unsigned long long)b * cols;
    double acc = 0.0;
    for (unsigned int k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
        acc = __dadd_rn(acc, __dmul_rn(vals[k], xb[col_idx[k]]));
    }
    y[t] = acc;
}

// y[b, j] = sum over transposed entries k of column j (ascending original row) of vals[t_perm[k]] *
// x[b, t_row[k]], starting from 0. x: batch x rows, y: batch x cols; one thread per (b, j), t = b * cols + j.
NT_KERNEL void pc_spmm_t(unsigned int rows, unsigned int cols, unsigned int batch,
                         const unsigned int* __restrict__ t_ptr, const unsigned int* __restrict__ t_row,
                         const unsigned int* __restrict__ t_perm, const double* __restrict__ vals,
                         const double* __restrict__ x, double* __restrict__ y) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= cols * batch) {
        return;
    }
    const unsigned int b = t / cols;
    const unsigned int j = t - b * cols;
    const double* xb = x + (unsigned long long)b * rows;
    double acc = 0.0;
    for (unsigned int k = t_ptr[j]; k < t_ptr[j + 1]; ++k) {
        acc = __dadd_rn(acc, __dmul_rn(vals[t_perm[k]], xb[t_row[k]]));
    }
    y[t] = acc;
}

// Precision-weighted prediction error e = precision * (r - mu), elementwise over n values.
NT_KERNEL void pc_error(unsigned int n, double precision, const double* __restrict__ r, const double* __restrict__ mu,
                        double* __restrict__ e) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    e[t] = __dmul_rn(precision, __dsub_rn(r[t], mu[t]));
}

// One Euler step of inference for a non-input layer: g = f'(r) * bu - e (bu = W_below^T e_below),
// v = r + dt * g, then (when l1 > 0) the proximal step of an L1 prior: soft threshold at dt * l1.
NT_KERNEL void pc_infer_update(unsigned int n, int kind, double dt, double l1, const double* __restrict__ e,
                               const double* __restrict__ bu, double* __restrict__ r) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) {
        return;
    }
    const double x = r[t];
    const double g = __dsub_rn(__dmul_rn(pc_fprime(kind, x), bu[t]), e[t]);
    double v = __dadd_rn(x, __dmul_rn(dt, g));
    if (l1 > 0.0) {
        const double thr = __dmul_rn(dt, l1);
        if (v > thr) {
            v = __dsub_rn(v, thr);
        } else if (v < -thr) {
            v = __dadd_rn(v, thr);
        } else {
            v = 0.0;
        }
    }
    r[t] = v;
}

// Local learning on the existing entries: for each entry k = (i, j) of row i,
// acc = sum over b (ascending) of e[b, i] * fr[b, j] from 0, then vals[k] = vals[k] + eta * acc.
// e: batch x rows, fr: batch x cols; one thread per row i.
NT_KERNEL void pc_learn(unsigned int rows, unsigned int cols, unsigned int batch,
                        const unsigned int* __restrict__ row_ptr, const unsigned int* __restrict__ col_idx,
                        double eta, const double* __restrict__ e, const double* __restrict__ fr,
                        double* __restrict__ vals) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows) {
        return;
    }
    for (unsigned int k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
        const unsigned int j = col_idx[k];
        double acc = 0.0;
        for (unsigned int b = 0; b < batch; ++b) {
            acc = __dadd_rn(acc, __dmul_rn(e[(unsigned long long)b * rows + i], fr[(unsigned long long)b * cols + j]));
        }
        vals[k] = __dadd_rn(vals[k], __dmul_rn(eta, acc));
    }
}

// Scales every non-empty column j to Euclidean norm `target`: ss = sum over the column's entries (ascending
// original row) of v * v from 0; if ss > 0, s = target / sqrt(ss) and each entry v = v * s. One thread per column.
NT_KERNEL void pc_col_normalize(unsigned int cols, const unsigned int* __restrict__ t_ptr,
                                const unsigned int* __restrict__ t_perm, double target, double* __restrict__ vals) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) {
        return;
    }
    double ss = 0.0;
    for (unsigned int k = t_ptr[j]; k < t_ptr[j + 1]; ++k) {
        const double v = vals[t_perm[k]];
        ss = __dadd_rn(ss, __dmul_rn(v, v));
    }
    if (ss > 0.0) {
        const double s = __ddiv_rn(target, __dsqrt_rn(ss));
        for (unsigned int k = t_ptr[j]; k < t_ptr[j + 1]; ++k) {
            vals[t_perm[k]] = __dmul_rn(vals[t_perm[k]], s);
        }
    }
}
