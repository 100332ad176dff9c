// Host build of the Izhikevich, AdEx, graded and lif_cond_exp kernels: the shim, then the .cu sources unchanged, then
// extern "C" entry points that launch each kernel with the sequential launcher. Linked by build.rs.
#include "shim.h"

#include "../cuda/adex.cu"
#include "../cuda/graded.cu"
#include "../cuda/izhikevich.cu"
#include "../cuda/lif_cond_exp.cu"

NT_HOST_ENTRY(izhikevich_update, nt_model_args)
NT_HOST_ENTRY(adex_update, nt_model_args)
NT_HOST_ENTRY(graded_update, nt_model_args)
NT_HOST_ENTRY(izhikevich_step, nt_neuron_step_args)
NT_HOST_ENTRY(adex_step, nt_neuron_step_args)
NT_HOST_ENTRY(graded_step, nt_neuron_step_args)
NT_HOST_ENTRY(lif_cond_exp_update, nt_model_args)
NT_HOST_ENTRY(lif_cond_exp_step, nt_neuron_step_args)
