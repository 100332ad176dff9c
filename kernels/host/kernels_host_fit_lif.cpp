// Host build of the LIF fitting kernels (`cuda/fit_lif.cu`): the shim, then the .cu source unchanged, then
// extern "C" entry points that launch each kernel with the sequential launcher. Linked by build.rs.
//
// The same source is included a second time inside namespace nt_broken with NEUROTWIN_BREAK_FOR_TEST (one
// reordered sum in lif_step), exposed only as nt_host_lif_step_broken, so that the conformance test can prove
// it detects such a change (the kernels are `static` on the host, so both copies link side by side).
#include "shim.h"

#include "../cuda/fit_lif.cu"

namespace nt_broken_lif {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#define NEUROTWIN_BREAK_FOR_TEST 1
#include "../cuda/fit_lif.cu"
#undef NEUROTWIN_BREAK_FOR_TEST
#pragma GCC diagnostic pop
}  // namespace nt_broken_lif

#define NT_LIF_LAUNCH(n, call) \
    nt_launch(nt_grid_1d((n), NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { call; })

extern "C" {

void nt_host_lif_alpha(unsigned int n, double dt, const double* tau, double* alpha) {
    NT_LIF_LAUNCH(n, lif_alpha(n, dt, tau, alpha));
}

void nt_host_lif_pulse_input(unsigned int n, unsigned long long t, const unsigned long long* pulse_ptr,
                             const unsigned long long* start, const unsigned long long* stop, const double* amp,
                             double* u) {
    NT_LIF_LAUNCH(n, lif_pulse_input(n, t, pulse_ptr, start, stop, amp, u));
}

void nt_host_lif_spike(unsigned int n, int kind, double kappa, const double* v, const double* theta, double* s) {
    NT_LIF_LAUNCH(n, lif_spike(n, kind, kappa, v, theta, s));
}

void nt_host_lif_step(unsigned int n, double beta, const unsigned long long* row_ptr, const unsigned int* pre,
                      const double* w, const unsigned long long* gap_ptr, const unsigned int* gap_nbr,
                      const double* e, const double* bias, const double* gain, const double* theta,
                      const double* alpha, const double* u, const double* v, const double* i_syn, const double* s,
                      double* drive, double* v_next, double* i_next) {
    NT_LIF_LAUNCH(n, lif_step(n, beta, row_ptr, pre, w, gap_ptr, gap_nbr, e, bias, gain, theta, alpha, u, v, i_syn, s,
                              drive, v_next, i_next));
}

void nt_host_lif_step_broken(unsigned int n, double beta, const unsigned long long* row_ptr, const unsigned int* pre,
                             const double* w, const unsigned long long* gap_ptr, const unsigned int* gap_nbr,
                             const double* e, const double* bias, const double* gain, const double* theta,
                             const double* alpha, const double* u, const double* v, const double* i_syn,
                             const double* s, double* drive, double* v_next, double* i_next) {
    NT_LIF_LAUNCH(n, nt_broken_lif::lif_step(n, beta, row_ptr, pre, w, gap_ptr, gap_nbr, e, bias, gain, theta, alpha,
                                             u, v, i_syn, s, drive, v_next, i_next));
}

void nt_host_lif_adjoint_final(unsigned int n, double kappa, const double* v, const double* theta, const double* d_s,
                               double* lambda, double* g_theta) {
    NT_LIF_LAUNCH(n, lif_adjoint_final(n, kappa, v, theta, d_s, lambda, g_theta));
}

void nt_host_lif_adjoint_mu(unsigned int n, int kind, double kappa, const double* alpha, const double* theta,
                            const double* v, const double* drive, const double* u, const double* lambda, double* s,
                            double* mu, double* g_alpha, double* g_bias, double* g_gain) {
    NT_LIF_LAUNCH(n, lif_adjoint_mu(n, kind, kappa, alpha, theta, v, drive, u, lambda, s, mu, g_alpha, g_bias, g_gain));
}

void nt_host_lif_adjoint_lambda(unsigned int n, double kappa, double beta, const unsigned long long* out_ptr,
                                const unsigned int* out_conn, const unsigned int* out_post, const double* w,
                                const unsigned long long* gap_ptr, const unsigned int* gap_nbr, const double* e,
                                const double* theta, const double* v, const double* s, const double* d_s,
                                const double* lambda, const double* nu, const double* mu, double* g_theta,
                                double* lambda_prev, double* nu_prev) {
    NT_LIF_LAUNCH(n, lif_adjoint_lambda(n, kappa, beta, out_ptr, out_conn, out_post, w, gap_ptr, gap_nbr, e, theta, v,
                                        s, d_s, lambda, nu, mu, g_theta, lambda_prev, nu_prev));
}

void nt_host_lif_grad_edges(unsigned int n, const unsigned long long* row_ptr, const unsigned int* pre,
                            const unsigned long long* gap_ptr, const unsigned int* gap_nbr, const double* nu,
                            const double* mu, const double* s, const double* v, double* g_w, double* g_e) {
    NT_LIF_LAUNCH(n, lif_grad_edges(n, row_ptr, pre, gap_ptr, gap_nbr, nu, mu, s, v, g_w, g_e));
}

void nt_host_lif_tau_grad(unsigned int n, const double* g_alpha, const double* alpha, const double* tau,
                          double* g_tau) {
    NT_LIF_LAUNCH(n, lif_tau_grad(n, g_alpha, alpha, tau, g_tau));
}

}  // extern "C"
