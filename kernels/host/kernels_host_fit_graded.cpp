// Host build of the graded-model fitting kernels (`cuda/fit_graded.cu`): the shim, then the .cu source
// unchanged, then extern "C" entry points that launch each kernel with the sequential launcher. Linked by
// build.rs.
//
// The same source is included a second time inside namespace nt_graded_broken with NEUROTWIN_BREAK_FOR_TEST
// (one reordered sum in the step terms), exposed only as nt_host_graded_fit_step_broken, so that the
// conformance test can prove it detects such a change (the kernels are `static` on the host, so both copies
// link side by side).
#include "shim.h"

#include "../cuda/fit_graded.cu"

namespace nt_graded_broken {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#define NEUROTWIN_BREAK_FOR_TEST 1
#include "../cuda/fit_graded.cu"
#undef NEUROTWIN_BREAK_FOR_TEST
#pragma GCC diagnostic pop
}  // namespace nt_graded_broken

#define NT_GRADED_LAUNCH(n, call) \
    nt_launch(nt_grid_1d((n), NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] { call; })

extern "C" {

void nt_host_graded_fit_pulse_input(unsigned int n, unsigned long long t, const unsigned long long* pulse_ptr,
                                    const unsigned long long* start, const unsigned long long* stop,
                                    const double* amp, double* u) {
    NT_GRADED_LAUNCH(n, graded_fit_pulse_input(n, t, pulse_ptr, start, stop, amp, u));
}

void nt_host_graded_fit_clamp(unsigned int n, const int* clamp_idx, const double* values, double* v) {
    NT_GRADED_LAUNCH(n, graded_fit_clamp(n, clamp_idx, values, v));
}

void nt_host_graded_fit_activation(unsigned int n, const double* v, const double* theta, const double* slope,
                                   double* s) {
    NT_GRADED_LAUNCH(n, graded_fit_activation(n, v, theta, slope, s));
}

void nt_host_graded_fit_step(unsigned int n, unsigned int n_ch, double minus_h_over_c,
                             const unsigned char* excitatory, const unsigned long long* ch_ptr,
                             const unsigned int* ch_conn, const unsigned int* pre, const double* w,
                             const unsigned long long* gap_ptr, const unsigned int* gap_nbr, const double* e,
                             const double* g_l, const double* e_l, const double* bias, const double* gain,
                             const double* e_exc, const double* e_inh, const double* u, const double* v,
                             const double* s, double* gch, double* v_next) {
    NT_GRADED_LAUNCH(n, graded_fit_step(n, n_ch, minus_h_over_c, excitatory, ch_ptr, ch_conn, pre, w, gap_ptr, gap_nbr,
                                        e, g_l, e_l, bias, gain, e_exc, e_inh, u, v, s, gch, v_next));
}

void nt_host_graded_fit_step_broken(unsigned int n, unsigned int n_ch, double minus_h_over_c,
                                    const unsigned char* excitatory, const unsigned long long* ch_ptr,
                                    const unsigned int* ch_conn, const unsigned int* pre, const double* w,
                                    const unsigned long long* gap_ptr, const unsigned int* gap_nbr, const double* e,
                                    const double* g_l, const double* e_l, const double* bias, const double* gain,
                                    const double* e_exc, const double* e_inh, const double* u, const double* v,
                                    const double* s, double* gch, double* v_next) {
    NT_GRADED_LAUNCH(n, nt_graded_broken::graded_fit_step(n, n_ch, minus_h_over_c, excitatory, ch_ptr, ch_conn, pre, w,
                                                          gap_ptr, gap_nbr, e, g_l, e_l, bias, gain, e_exc, e_inh, u,
                                                          v, s, gch, v_next));
}

void nt_host_graded_fit_adjoint_terms(unsigned int n, unsigned int n_ch, double minus_h_over_c,
                                      const unsigned char* excitatory, const unsigned long long* row_ptr,
                                      const unsigned int* pre, const unsigned char* receptor,
                                      const unsigned long long* ch_ptr, const unsigned int* ch_conn, const double* w,
                                      const unsigned long long* gap_ptr, const unsigned int* gap_nbr, const double* e,
                                      const double* g_l, const double* e_l, const double* bias, const double* gain,
                                      const double* e_exc, const double* e_inh, const int* clamp_idx, const double* u,
                                      const double* v, const double* s, double* lambda, double* gch, double* a_d,
                                      double* a_g, double* x, double* rho, double* grad_g_l, double* grad_e_l,
                                      double* grad_bias, double* grad_gain, double* grad_e_exc, double* grad_e_inh,
                                      double* grad_w, double* grad_e) {
    NT_GRADED_LAUNCH(n, graded_fit_adjoint_terms(n, n_ch, minus_h_over_c, excitatory, row_ptr, pre, receptor, ch_ptr,
                                                 ch_conn, w, gap_ptr, gap_nbr, e, g_l, e_l, bias, gain, e_exc, e_inh,
                                                 clamp_idx, u, v, s, lambda, gch, a_d, a_g, x, rho, grad_g_l, grad_e_l,
                                                 grad_bias, grad_gain, grad_e_exc, grad_e_inh, grad_w, grad_e));
}

void nt_host_graded_fit_adjoint_lambda(unsigned int n, const unsigned long long* out_ptr, const unsigned int* out_conn,
                                       const unsigned int* out_slot, const double* w, const unsigned long long* gap_ptr,
                                       const unsigned int* gap_nbr, const double* e, const double* theta,
                                       const double* slope, const double* v, const double* s, const double* lambda,
                                       const double* rho, const double* a_d, const double* x, double* grad_theta,
                                       double* grad_slope, double* lambda_prev) {
    NT_GRADED_LAUNCH(n, graded_fit_adjoint_lambda(n, out_ptr, out_conn, out_slot, w, gap_ptr, gap_nbr, e, theta, slope,
                                                  v, s, lambda, rho, a_d, x, grad_theta, grad_slope, lambda_prev));
}

void nt_host_graded_fit_initial_grad(unsigned int n, const int* clamp_idx, double* lambda, double* grad_e_l) {
    NT_GRADED_LAUNCH(n, graded_fit_initial_grad(n, clamp_idx, lambda, grad_e_l));
}

}  // extern "C"
