//! Equation-defined models (`model = "equations"`) on the CPU backend: the model's native block function
//! (`neurotwin_models::equations::native_source`, a loop over a block's 64 lanes that the C++ compiler vectorises),
//! built once per process and model structure by the system C++ compiler
//! (`neurotwin_kernels::generated::native_build`) and run in place of the interpreter. It performs the
//! interpreter's operations in its order, so spikes and state are the same bits either way (tested).
//!
//! Which engine runs is chosen by `NEUROTWIN_EQUATIONS`: unset or `auto` — native, and the interpreter with a
//! one-line note on stderr when no C++ compiler works; `native` — native or an error; `interpreter` — always
//! the interpreter (for comparison or debugging).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use neurotwin_kernels::generated::{NativeBlockFn, NativeBuild, NativeRingFn, native_build};
use neurotwin_kernels::native_cache::NativeCache;
use neurotwin_models::equations::{self, Compiled};
use neurotwin_models::{BlockInput, BlockOutput, LANES};

use crate::error::SimError;

/// The environment variable choosing the engine of equation-defined models on the CPU.
pub const ENGINE_VAR: &str = "NEUROTWIN_EQUATIONS";

/// How equation-defined models run on the CPU backend (`NEUROTWIN_EQUATIONS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineChoice {
    /// Native when a C++ compiler works, else the interpreter with a note.
    Auto,
    /// Native, or an error.
    Native,
    /// Always the interpreter.
    Interpreter,
}

impl EngineChoice {
    /// The choice in `NEUROTWIN_EQUATIONS`, with an error naming the accepted values.
    pub fn from_env() -> Result<Self, SimError> {
        match std::env::var(ENGINE_VAR) {
            Err(_) => Ok(EngineChoice::Auto),
            Ok(v) => match v.as_str() {
                "" | "auto" => Ok(EngineChoice::Auto),
                "native" => Ok(EngineChoice::Native),
                "interpreter" => Ok(EngineChoice::Interpreter),
                other => Err(SimError::Setup(format!(
                    "{ENGINE_VAR}={other}: expected `auto` (the default), `native` or `interpreter`"
                ))),
            },
        }
    }
}

/// A native block function with the per-set constants of one run.
pub struct NativeModel {
    /// How it was built, in words (vector width, from the cache or the compiler).
    built: String,
    block: NativeBlockFn,
    ring: NativeRingFn,
    /// Per parameter set: the constant table the function reads (`equations::native_constants`).
    constants: Vec<Vec<f64>>,
    /// Per parameter set: the refractory period in steps.
    refractory: Vec<f64>,
    n_channels: usize,
    n_state: usize,
    /// Input channels of the model (`equations::n_inputs`).
    n_inputs: usize,
}

/// The most receptor channels the ring entry takes (the engine passes their rows on the stack).
pub const MAX_RING_CHANNELS: usize = 16;

impl NativeModel {
    /// Advances one block as `equations::update_block` does, with the native function.
    #[inline]
    pub fn update_block(&self, sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
        assert!(
            state.len() >= self.n_state * LANES
                && input.syn.len() >= self.n_channels * LANES
                && input.i_ext.len() >= LANES,
            "native block function: block buffers shorter than the model's"
        );
        equations::update_block_with(sets, state, input, out, |set, st| {
            debug_assert!(st.len() >= self.n_state * LANES);
            // SAFETY: the function reads `n_state` variables of 64 lanes from `st` and writes them back, reads
            // `n_channels * 64` inputs and 64 external currents (lengths asserted above; `update_block_with` passes
            // the block or a copy of it) and this set's constant table, which has the layout its source was
            // generated for (`native_model` builds both from the same model).
            unsafe {
                (self.block)(
                    st.as_mut_ptr(),
                    input.syn.as_ptr(),
                    input.i_ext.as_ptr(),
                    self.constants[set].as_ptr(),
                    self.refractory[set],
                    input.forced,
                )
            }
        })
    }
}

impl NativeModel {
    /// How the code was built, e.g. `8 lanes a vector (-mavx512f …), from the cache`.
    pub fn describe(&self) -> &str {
        &self.built
    }

    /// Whether the ring entry can take a block of an engine with `n_channels` ring rows per slot: one per input
    /// channel of the model (so that every row is read and cleared).
    pub fn takes_ring(&self, n_channels: usize) -> bool {
        self.n_inputs == n_channels && n_channels <= MAX_RING_CHANNELS
    }

    /// The fused ring-to-spikes pass of one full block of parameter set `set`: `rings[c]` the 64 fixed-point sums
    /// of channel `c` (cleared), scaled by `inv_scale`, plus `extra` (channel-major, one term per lane) when given;
    /// no current, no forced lane. The same bits as gathering the rings into a [`BlockInput`] and
    /// [`NativeModel::update_block`].
    #[inline]
    pub fn update_ring(
        &self,
        set: usize,
        state: &mut [f64],
        rings: &[*mut i64],
        inv_scale: f64,
        extra: Option<&[f64]>,
    ) -> u64 {
        assert!(
            state.len() >= self.n_state * LANES
                && rings.len() == self.n_inputs
                && extra.is_none_or(|e| e.len() >= self.n_inputs * LANES),
            "native ring pass: buffers shorter than the model's"
        );
        // SAFETY: the function reads and writes `n_state * 64` values of `state`, reads and clears 64 entries
        // behind each of the `n_inputs` ring pointers (the caller's contract: each points to 64 entries this block
        // owns exclusively), reads `n_inputs * 64` extra terms (asserted) and this set's constant table.
        unsafe {
            (self.ring)(
                state.as_mut_ptr(),
                rings.as_ptr(),
                inv_scale,
                extra.map_or(std::ptr::null(), |e| e.as_ptr()),
                self.constants[set].as_ptr(),
                self.refractory[set],
            )
        }
    }
}

type Registry = Mutex<HashMap<String, Result<&'static NativeBuild, String>>>;

/// The native engine of the model with parameter sets `sets` (`n_channels` receptor channels), or `None` for the
/// interpreter (by choice, or, under [`EngineChoice::Auto`], when the build fails: with a note on stderr). Built on first use per model structure
/// and kept for the process.
pub fn native_model(
    sets: &[Compiled],
    n_channels: usize,
    choice: EngineChoice,
) -> Result<Option<Arc<NativeModel>>, SimError> {
    if choice == EngineChoice::Interpreter {
        return Ok(None);
    }
    let source = equations::native_source("nt_native_block", sets).map_err(|e| e.to_string());
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let build = match source {
        Err(e) => Err(format!("generating its code: {e}")),
        Ok(source) => {
            let mut map = REGISTRY.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
            map.entry(source.clone())
                .or_insert_with(|| {
                    let name = format!("nt_native_{}", NativeCache::key(&source));
                    let named = source.replace("nt_native_block", &name);
                    native_build(&name, &named).map(|b| &*Box::leak(Box::new(b)))
                })
                .clone()
        }
    };
    match build {
        Ok(b) => Ok(Some(Arc::new(NativeModel {
            built: format!(
                "{} lanes a vector, {}",
                b.lanes(),
                if b.cached { "loaded from the cache" } else { "compiled for this run" }
            ),
            block: b.block_fn(),
            ring: b.ring_fn(),
            n_inputs: equations::n_inputs(&sets[0]),
            constants: sets.iter().map(equations::native_constants).collect(),
            refractory: sets.iter().map(|c| c.refractory_steps as f64).collect(),
            n_channels,
            n_state: sets[0].names.len(),
        }))),
        Err(e) if choice == EngineChoice::Native => Err(SimError::Setup(format!(
            "{ENGINE_VAR}=native: building the native code of the equation-defined model: {e}"
        ))),
        Err(e) => {
            static NOTED: std::sync::Once = std::sync::Once::new();
            NOTED.call_once(|| {
                eprintln!(
                    "note: the equation-defined model runs interpreted (about 4x slower than native code): no native build ({e}); \
                     install a C++ compiler or set CXX"
                )
            });
            Ok(None)
        }
    }
}
