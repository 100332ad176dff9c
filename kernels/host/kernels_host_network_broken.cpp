// The network kernels built with NEUROTWIN_BREAK_FOR_TEST (deliver_spikes drops the last synapse of every
// segment), exposed as a separate entry point so that the backend conformance test can prove it detects a
// broken delivery. Never used in a simulation.
#define NEUROTWIN_BREAK_FOR_TEST 1
#include "shim.h"

// Only deliver_spikes is used from this build; the other kernels of the unit are unused copies.
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../cuda/network.cu"

extern "C" void nt_host_deliver_spikes_broken(unsigned int n_spikes, const unsigned int* spikes,
                                              const unsigned int* row_segments,
                                              const unsigned long long* segment_start,
                                              const unsigned short* segment_delay,
                                              const unsigned char* segment_receptor, const unsigned int* targets,
                                              const float* weights, const unsigned short* weight_index,
                                              const long long* fixed_table, double scale, unsigned long long step,
                                              unsigned int slots, unsigned int n_pad, long long* ring) {
    nt_launch(nt_grid_1d(n_spikes, NT_THREADS_PER_BLOCK), dim3(NT_THREADS_PER_BLOCK), [&] {
        deliver_spikes(n_spikes, spikes, row_segments, segment_start, segment_delay, segment_receptor, targets,
                       weights, weight_index, fixed_table, scale, step, slots, n_pad, ring);
    });
}
