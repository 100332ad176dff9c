// Host build of the rate-model fitting kernels (`cuda/fit_rate.cu`): the shim, then the .cu source unchanged,
// then extern "C" entry points that launch each kernel with the sequential launcher. Linked by build.rs.
//
// The same source is included a second time inside namespace nt_broken with NEUROTWIN_BREAK_FOR_TEST (one
// reordered sum in rate_step), exposed only as nt_host_rate_step_broken, so that the conformance test can prove
// it detects such a change (the kernels are `static` on the host, so both copies link side by side).
#include "shim.h"

#include "../cuda/fit_rate.cu"

namespace nt_broken {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#define NEUROTWIN_BREAK_FOR_TEST 1
#include "../cuda/fit_rate.cu"
#undef NEUROTWIN_BREAK_FOR_TEST
#pragma GCC diagnostic pop
}  // namespace nt_broken

#define NT_RATE_LAUNCH(n, call) \
    nt_launch(nt_grid_1d((n), NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { call; })

extern "C" {

void nt_host_rate_coeffs(unsigned int n, double dt, const double* tau, const unsigned long long* gap_ptr,
                         const double* e, double* alpha, double* c, double* d) {
    NT_RATE_LAUNCH(n, rate_coeffs(n, dt, tau, gap_ptr, e, alpha, c, d));
}

void nt_host_rate_pulse_input(unsigned int n, unsigned long long t, const unsigned long long* pulse_ptr,
                              const unsigned long long* start, const unsigned long long* stop, const double* amp,
                              double* u) {
    NT_RATE_LAUNCH(n, rate_pulse_input(n, t, pulse_ptr, start, stop, amp, u));
}

void nt_host_rate_activation(unsigned int n, int kind, const double* v, const double* theta, const double* slope,
                             double* fv) {
    NT_RATE_LAUNCH(n, rate_activation(n, kind, v, theta, slope, fv));
}

void nt_host_rate_step(unsigned int n, const unsigned long long* row_ptr, const unsigned int* pre, const double* w,
                       const unsigned long long* gap_ptr, const unsigned int* gap_nbr, const double* e,
                       const double* bias, const double* gain, const double* alpha, const double* d, const double* u,
                       const double* v, const double* fv, double* drive, double* v_next) {
    NT_RATE_LAUNCH(n,
                   rate_step(n, row_ptr, pre, w, gap_ptr, gap_nbr, e, bias, gain, alpha, d, u, v, fv, drive, v_next));
}

void nt_host_rate_step_broken(unsigned int n, const unsigned long long* row_ptr, const unsigned int* pre,
                              const double* w, const unsigned long long* gap_ptr, const unsigned int* gap_nbr,
                              const double* e, const double* bias, const double* gain, const double* alpha,
                              const double* d, const double* u, const double* v, const double* fv, double* drive,
                              double* v_next) {
    NT_RATE_LAUNCH(n, nt_broken::rate_step(n, row_ptr, pre, w, gap_ptr, gap_nbr, e, bias, gain, alpha, d, u, v, fv,
                                           drive, v_next));
}

void nt_host_rate_clamp(unsigned int n, const int* clamp_idx, const double* values, double* v) {
    NT_RATE_LAUNCH(n, rate_clamp(n, clamp_idx, values, v));
}

void nt_host_rate_adjoint_mu(unsigned int n, int kind, const int* clamp_idx, const double* alpha, const double* c,
                             const double* d, const double* drive, const double* v, const double* v_next,
                             const double* u, const double* theta, const double* slope, double* lambda, double* mu,
                             double* fv, double* g_alpha, double* g_bias, double* g_gain) {
    NT_RATE_LAUNCH(n, rate_adjoint_mu(n, kind, clamp_idx, alpha, c, d, drive, v, v_next, u, theta, slope, lambda, mu,
                                      fv, g_alpha, g_bias, g_gain));
}

void nt_host_rate_adjoint_lambda(unsigned int n, int kind, const unsigned long long* out_ptr,
                                 const unsigned int* out_conn, const unsigned int* out_post, const double* w,
                                 const unsigned long long* gap_ptr, const unsigned int* gap_nbr, const double* e,
                                 const double* d, const double* v, const double* theta, const double* slope,
                                 const double* lambda, const double* mu, double* g_theta, double* g_slope,
                                 double* lambda_prev) {
    NT_RATE_LAUNCH(n, rate_adjoint_lambda(n, kind, out_ptr, out_conn, out_post, w, gap_ptr, gap_nbr, e, d, v, theta,
                                          slope, lambda, mu, g_theta, g_slope, lambda_prev));
}

void nt_host_rate_grad_edges(unsigned int n, const unsigned long long* row_ptr, const unsigned int* pre,
                             const unsigned long long* gap_ptr, const unsigned int* gap_nbr, const double* mu,
                             const double* fv, const double* v, const double* v_next, double* g_w, double* g_e) {
    NT_RATE_LAUNCH(n, rate_grad_edges(n, row_ptr, pre, gap_ptr, gap_nbr, mu, fv, v, v_next, g_w, g_e));
}

void nt_host_rate_tau_grad(unsigned int n, const double* g_alpha, const double* alpha, const double* tau,
                           double* g_tau) {
    NT_RATE_LAUNCH(n, rate_tau_grad(n, g_alpha, alpha, tau, g_tau));
}

}  // extern "C"
