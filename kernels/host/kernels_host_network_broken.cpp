// The delivery kernels built with NEUROTWIN_BREAK_FOR_TEST (deliver_spikes drops the last synapse of every
// segment), exposed as a separate entry point so that the backend conformance test can prove it detects a
// broken delivery. Never used in a simulation.
#define NEUROTWIN_BREAK_FOR_TEST 1
#include "shim.h"

// Only deliver_spikes is used from this build; the other kernels of the unit are unused copies.
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../cuda/spikes.cu"

extern "C" void nt_host_deliver_spikes_broken(
    unsigned int blocks, unsigned int threads, const unsigned long long* rec_base, unsigned int k,
    const unsigned int* rec_spikes, const unsigned long long* work_start, const unsigned long long* work_total,
    const unsigned int* row_segments, const unsigned long long* seg_piece, const unsigned long long* segment_start,
    const unsigned short* segment_delay, const unsigned char* segment_receptor, const unsigned int* targets,
    const float* weights, const unsigned short* weight_index, const long long* fixed_table, double scale,
    unsigned long long step, unsigned int slots, unsigned int n_pad, long long* ring) {
    nt_launch(dim3(blocks), dim3(threads), [&] {
        deliver_spikes(rec_base, k, rec_spikes, work_start, work_total, row_segments, seg_piece, segment_start,
                       segment_delay, segment_receptor, targets, weights, weight_index, fixed_table, scale, step,
                       slots, n_pad, ring);
    });
}
