// Host portability header: lets the CUDA C kernels in ../cuda compile as plain C++17 for conformance tests.
// Compile with -ffp-contract=off so that no multiply-add is fused (the kernels also use __dmul_rn/__dadd_rn).
//
// Provides: __global__/__device__/__host__/__forceinline__/__restrict__/__ldg, dim3, thread-local
// threadIdx/blockIdx/blockDim/gridDim, round-to-nearest arithmetic and conversion intrinsics, bit casts,
// host atomicAdd/atomicOr and a sequential launcher. Cannot emulate __syncthreads, shared memory or warp
// intrinsics: kernels that need them must get a separate host path.
#ifndef NEUROTWIN_HOST_SHIM_H
#define NEUROTWIN_HOST_SHIM_H

#include <cmath>

#ifdef __CUDACC__
#error "shim.h is for host builds only"
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
// Read-only (non-coherent) loads are plain loads on the host.
#define __ldg(p) (*(p))

// On the host, kernels have internal linkage: each translation unit (the normal and the deliberately broken
// build) gets its own copy, and the extern "C" entry points are the launch wrappers.
#define NT_KERNEL static

using std::rint;

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;

// Per OS thread, so that Rust tests running in parallel can launch concurrently.
static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static thread_local dim3 blockDim;
static thread_local dim3 gridDim;

// IEEE-754 round-to-nearest operations; with -ffp-contract=off they are never fused.
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
// CUDA's __dsqrt_rn is the IEEE-754 correctly rounded square root, as std::sqrt (and Rust's f64::sqrt).
static inline double __dsqrt_rn(double a) { return std::sqrt(a); }
// Single precision (f32 kernels such as cnn.cu): x86-64 evaluates float arithmetic in float (SSE,
// FLT_EVAL_METHOD 0), so each operation is one IEEE-754 round-to-nearest f32 operation.
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
// IEEE-754 correctly rounded f32 division and square root, as CUDA's __fdiv_rn / __fsqrt_rn (and Rust's f32 `/`
// and f32::sqrt); std::sqrt(float) is the float overload of <cmath> (sqrtss), not a double round trip.
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return std::sqrt(a); }

// Conversions with round-to-nearest-even. llrint rounds in the current rounding mode, which is the IEEE
// default (to nearest, ties to even) unless a program changes it (nothing here does); for |x| < 2^63 this is
// Rust's `x.round_ties_even() as i64`.
static inline long long __double2ll_rn(double x) { return std::llrint(x); }
static inline double __ll2double_rn(long long x) { return (double)x; }

static inline double __longlong_as_double(long long v) {
    double d;
    __builtin_memcpy(&d, &v, sizeof d);
    return d;
}
static inline long long __double_as_longlong(double d) {
    long long v;
    __builtin_memcpy(&v, &d, sizeof v);
    return v;
}

// Bit counting as the CUDA integer intrinsics: set bits, and the 1-based position of the lowest set bit (0 if
// none).
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }

static inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long val) {
    return __atomic_fetch_add(address, val, __ATOMIC_RELAXED);
}
static inline unsigned int atomicAdd(unsigned int* address, unsigned int val) {
    return __atomic_fetch_add(address, val, __ATOMIC_RELAXED);
}
static inline unsigned long long atomicOr(unsigned long long* address, unsigned long long val) {
    return __atomic_fetch_or(address, val, __ATOMIC_RELAXED);
}

// Runs `kernel()` once per thread of the grid, sequentially (blocks in x-fastest order, threads likewise).
template <class F>
static void nt_launch(dim3 grid, dim3 block, F&& kernel) {
    gridDim = grid;
    blockDim = block;
    for (unsigned int bz = 0; bz < grid.z; ++bz)
        for (unsigned int by = 0; by < grid.y; ++by)
            for (unsigned int bx = 0; bx < grid.x; ++bx)
                for (unsigned int tz = 0; tz < block.z; ++tz)
                    for (unsigned int ty = 0; ty < block.y; ++ty)
                        for (unsigned int tx = 0; tx < block.x; ++tx) {
                            blockIdx = uint3(bx, by, bz);
                            threadIdx = uint3(tx, ty, tz);
                            kernel();
                        }
}

// A 1-D launch covering n threads with `threads_per_block` per block.
static inline dim3 nt_grid_1d(unsigned long long n, unsigned int threads_per_block) {
    return dim3((unsigned int)((n + threads_per_block - 1) / threads_per_block));
}

#define NT_THREADS_PER_BLOCK 128u

// The host entry point of a step kernel that takes one parameter pack (cuda/packs.cuh): launches `kernel` with
// `blocks` x `threads` and `*args` (`neurotwin_kernels::host::raw`, reached through `packs::KernelFn`).
#define NT_HOST_ENTRY_AS(entry, kernel, pack)                                                  \
    extern "C" void entry(unsigned int blocks, unsigned int threads, const pack* args) {       \
        nt_launch(dim3(blocks), dim3(threads), [&] { kernel(*args); });                        \
    }
#define NT_HOST_ENTRY(kernel, pack) NT_HOST_ENTRY_AS(nt_host_##kernel, kernel, pack)

#endif  // NEUROTWIN_HOST_SHIM_H
