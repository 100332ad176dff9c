// The delivery kernels built with NEUROTWIN_BREAK_FOR_TEST (deliver_spikes drops the last synapse of every
// segment), exposed as a separate entry point so that the backend conformance test can prove it detects a
// broken delivery. Never used in a simulation.
#define NEUROTWIN_BREAK_FOR_TEST 1
#include "shim.h"

// Only deliver_spikes is used from this build; the other kernels of the unit are unused copies.
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../cuda/spikes.cu"

NT_HOST_ENTRY_AS(nt_host_deliver_spikes_broken, deliver_spikes, nt_deliver_spikes_args)
