// The lif_exp kernel built with NEUROTWIN_BREAK_FOR_TEST (a deliberately reordered sum), exposed as a second
// entry point so that the conformance test can prove it detects such a change.
#define NEUROTWIN_BREAK_FOR_TEST 1
#include "shim.h"

// Only lif_exp_update is used from this build; the fused lif_exp_step is an unused copy.
#pragma GCC diagnostic ignored "-Wunused-function"

#include "../cuda/lif_exp.cu"

NT_HOST_ENTRY_AS(nt_host_lif_exp_update_broken, lif_exp_update, nt_model_args)
