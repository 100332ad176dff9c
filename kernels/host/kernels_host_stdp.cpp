// Host build of the plasticity kernels (cuda/stdp.cu): the shim, the .cu source unchanged, then the extern "C"
// entry points that launch each kernel with the sequential launcher. Linked into the crate by build.rs.
#include "shim.h"

#include "../cuda/stdp.cu"

NT_HOST_ENTRY(stdp_post_spikes, nt_stdp_args)
NT_HOST_ENTRY(stdp_potentiate, nt_stdp_args)
NT_HOST_ENTRY(stdp_depress_deliver, nt_stdp_args)
NT_HOST_ENTRY(stdp_dop_arrivals, nt_stdp_args)
NT_HOST_ENTRY(stdp_dop_count, nt_stdp_args)
NT_HOST_ENTRY(stdp_dop_update_all, nt_stdp_args)
NT_HOST_ENTRY(stdp_dop_restart, nt_stdp_args)
