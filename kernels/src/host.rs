//! Safe wrappers over the host-compiled kernels (`host/kernels_host*.cpp`, built by `build.rs`). Each call
//! runs the CUDA C kernel sequentially on the calling thread, one simulated CUDA thread after another.
//! Lengths and indices are checked here, so the kernels never read or write out of bounds.

use std::ffi::c_uint;

/// Neurons per state block (the engine's `LANES`).
pub const LANES: usize = 64;

unsafe extern "C" {
    fn nt_host_philox_fill(
        seed: u64,
        stream: c_uint,
        step: u64,
        draw: c_uint,
        neuron0: c_uint,
        n: c_uint,
        out: *mut u32,
    );
    fn nt_host_philox_uniform2_fill(
        seed: u64,
        stream: c_uint,
        step: u64,
        draw: c_uint,
        neuron0: c_uint,
        n: c_uint,
        out: *mut f64,
    );
    fn nt_host_philox4x32_10(counter: *const u32, key: *const u32, out: *mut u32);
    fn nt_host_detmath_exp_fill(n: c_uint, x: *const f64, out: *mut f64);
    fn nt_host_lif_exp_update(
        n_neurons: c_uint,
        n_channels: c_uint,
        state: *mut f64,
        param_set: *const u16,
        p22: *const f64,
        p20: *const f64,
        e_l: *const f64,
        theta: *const f64,
        reset: *const f64,
        i_e: *const f64,
        refractory_steps: *const u32,
        p11: *const f64,
        p21: *const f64,
        syn: *const f64,
        i_ext: *const f64,
        forced: *const u64,
        spiked: *mut u8,
    );
    fn nt_host_lif_exp_update_broken(
        n_neurons: c_uint,
        n_channels: c_uint,
        state: *mut f64,
        param_set: *const u16,
        p22: *const f64,
        p20: *const f64,
        e_l: *const f64,
        theta: *const f64,
        reset: *const f64,
        i_e: *const f64,
        refractory_steps: *const u32,
        p11: *const f64,
        p21: *const f64,
        syn: *const f64,
        i_ext: *const f64,
        forced: *const u64,
        spiked: *mut u8,
    );
}

fn len_u32(n: usize) -> c_uint {
    c_uint::try_from(n).expect("more than 2^32 - 1 elements in one launch")
}

/// Philox4x32-10 of one 128-bit counter and 64-bit key (`nt_philox4x32_10` in `cuda/philox.cuh`).
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut out = [0u32; 4];
    // SAFETY: the three pointers address arrays of exactly 4, 2 and 4 u32, as the C function reads/writes.
    unsafe { nt_host_philox4x32_10(counter.as_ptr(), key.as_ptr(), out.as_mut_ptr()) };
    out
}

/// Kernel `philox_fill`: `out[j] = CounterRng::bits(neuron0 + j, step, draw)` for the generator with 64-bit
/// `seed` and stream word `stream` (stream id | sub-stream << 16). `draw` must be < 256.
pub fn philox_fill(seed: u64, stream: u32, step: u64, draw: u32, neuron0: u32, out: &mut [[u32; 4]]) {
    assert!(draw < 256, "draw {draw} >= 256");
    let n = len_u32(out.len());
    // SAFETY: `out` holds `n` contiguous [u32; 4], i.e. 4n u32; the kernel writes only indices < 4n.
    unsafe { nt_host_philox_fill(seed, stream, step, draw, neuron0, n, out.as_mut_ptr().cast()) };
}

/// Kernel `philox_uniform2_fill`: `out[j] = CounterRng::uniform2(neuron0 + j, step, draw)`, each in (0, 1).
pub fn philox_uniform2_fill(seed: u64, stream: u32, step: u64, draw: u32, neuron0: u32, out: &mut [[f64; 2]]) {
    assert!(draw < 256, "draw {draw} >= 256");
    let n = len_u32(out.len());
    // SAFETY: `out` holds `n` contiguous [f64; 2], i.e. 2n f64; the kernel writes only indices < 2n.
    unsafe { nt_host_philox_uniform2_fill(seed, stream, step, draw, neuron0, n, out.as_mut_ptr().cast()) };
}

/// Kernel `detmath_exp_fill`: `out[j] = exp(x[j])` with the deterministic exp of `cuda/detmath.cuh`.
pub fn detmath_exp_fill(x: &[f64], out: &mut [f64]) {
    assert_eq!(x.len(), out.len(), "x and out must have the same length");
    let n = len_u32(x.len());
    // SAFETY: both slices hold `n` f64; the kernel reads x[j] and writes out[j] for j < n only.
    unsafe { nt_host_detmath_exp_fill(n, x.as_ptr(), out.as_mut_ptr()) };
}

/// Compiled `lif_exp` parameter sets in the kernel's structure-of-arrays form (one entry per set; per-channel
/// arrays set-major: `p11[set * n_channels + channel]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LifExpTable {
    /// Receptor channels (same for every set).
    pub n_channels: usize,
    /// exp(−h/τ_m) (dimensionless).
    pub p22: Vec<f64>,
    /// Response of V to a constant current over one step (mV/pA).
    pub p20: Vec<f64>,
    /// Resting potential (mV).
    pub e_l: Vec<f64>,
    /// Threshold relative to E_L (mV).
    pub theta: Vec<f64>,
    /// Reset potential relative to E_L (mV).
    pub reset: Vec<f64>,
    /// Constant bias current (pA).
    pub i_e: Vec<f64>,
    /// Refractory period (steps).
    pub refractory_steps: Vec<u32>,
    /// Per (set, channel): exp(−h/τ_c) (dimensionless).
    pub p11: Vec<f64>,
    /// Per (set, channel): response of V after one step to a unit synaptic current (mV/pA).
    pub p21: Vec<f64>,
}

impl LifExpTable {
    /// Number of parameter sets; panics if the arrays disagree in length.
    pub fn n_sets(&self) -> usize {
        let n = self.p22.len();
        for (name, len) in [
            ("p20", self.p20.len()),
            ("e_l", self.e_l.len()),
            ("theta", self.theta.len()),
            ("reset", self.reset.len()),
            ("i_e", self.i_e.len()),
            ("refractory_steps", self.refractory_steps.len()),
        ] {
            assert_eq!(len, n, "LifExpTable::{name} has {len} entries, p22 has {n}");
        }
        assert_eq!(self.p11.len(), n * self.n_channels, "LifExpTable::p11 must have n_sets * n_channels entries");
        assert_eq!(self.p21.len(), n * self.n_channels, "LifExpTable::p21 must have n_sets * n_channels entries");
        n
    }
}

/// Per-step input of [`lif_exp_update`] for `n_neurons` neurons in `ceil(n_neurons / 64)` blocks.
#[derive(Clone, Copy, Debug)]
pub struct LifExpStepInput<'a> {
    /// Parameter set of each neuron (`n_neurons` entries).
    pub param_set: &'a [u16],
    /// Synaptic input arriving this step (pA), `[block][channel][lane]`: `n_blocks * n_channels * 64` entries.
    pub syn: &'a [f64],
    /// External current during this step (pA), one per neuron.
    pub i_ext: &'a [f64],
    /// Neurons forced to fire this step: bit `lane` of `forced[block]`, one word per block.
    pub forced: &'a [u64],
}

/// Which host build of the `lif_exp` kernel to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Correct,
    Broken,
}

/// Kernel `lif_exp_update`: advances `i_ext.len()` neurons by one step. `state` is block-major,
/// `state[(block * (2 + n_channels) + var) * 64 + lane]` with vars `V_m` (mV), `refractory` (steps),
/// `I_syn_<c>` (pA), and must hold whole blocks. `spiked[i]` is set to 1 if neuron `i` fired, else 0.
pub fn lif_exp_update(table: &LifExpTable, state: &mut [f64], input: &LifExpStepInput, spiked: &mut [u8]) {
    run_lif_exp(Variant::Correct, table, state, input, spiked);
}

/// The same kernel built with `NEUROTWIN_BREAK_FOR_TEST` (the constant-current term is added after the
/// synaptic terms instead of before). Exists only so that tests can prove the conformance check detects a
/// reordered sum; never use it in a simulation.
#[doc(hidden)]
pub fn lif_exp_update_broken_for_test(
    table: &LifExpTable,
    state: &mut [f64],
    input: &LifExpStepInput,
    spiked: &mut [u8],
) {
    run_lif_exp(Variant::Broken, table, state, input, spiked);
}

fn run_lif_exp(variant: Variant, t: &LifExpTable, state: &mut [f64], input: &LifExpStepInput, spiked: &mut [u8]) {
    let n_sets = t.n_sets();
    let n = input.i_ext.len();
    let n_blocks = n.div_ceil(LANES);
    let n_ch = t.n_channels;
    assert_eq!(input.param_set.len(), n, "param_set must have one entry per neuron");
    assert_eq!(spiked.len(), n, "spiked must have one entry per neuron");
    assert_eq!(state.len(), n_blocks * (2 + n_ch) * LANES, "state must hold whole blocks of 2 + n_channels vars");
    assert_eq!(input.syn.len(), n_blocks * n_ch * LANES, "syn must hold n_blocks * n_channels * 64 entries");
    assert_eq!(input.forced.len(), n_blocks, "forced must have one word per block");
    if let Some(&bad) = input.param_set.iter().find(|&&s| usize::from(s) >= n_sets) {
        panic!("parameter set {bad} out of range ({n_sets} sets)");
    }
    let f = match variant {
        Variant::Correct => nt_host_lif_exp_update,
        Variant::Broken => nt_host_lif_exp_update_broken,
    };
    // SAFETY: all lengths were checked above against what the kernel indexes: neurons i < n read
    // param_set[i], i_ext[i], forced[i / 64], syn and state within block i / 64 < n_blocks, per-set arrays at
    // param_set[i] < n_sets (and set * n_channels + c for the per-channel ones), and write state and
    // spiked[i]. The pointers come from live slices and `state`/`spiked` are exclusively borrowed.
    unsafe {
        f(
            len_u32(n),
            len_u32(n_ch),
            state.as_mut_ptr(),
            input.param_set.as_ptr(),
            t.p22.as_ptr(),
            t.p20.as_ptr(),
            t.e_l.as_ptr(),
            t.theta.as_ptr(),
            t.reset.as_ptr(),
            t.i_e.as_ptr(),
            t.refractory_steps.as_ptr(),
            t.p11.as_ptr(),
            t.p21.as_ptr(),
            input.syn.as_ptr(),
            input.i_ext.as_ptr(),
            input.forced.as_ptr(),
            spiked.as_mut_ptr(),
        )
    };
}
