//! The `cuda-host` backend: the shared kernel backend ([`KernelBackend`], `crate::launch`) on a launcher that
//! runs the CUDA C kernels of `neurotwin-kernels` compiled for the host (`neurotwin_kernels::host::raw`, one
//! simulated CUDA thread after another), with exactly the launches — order, grids and parameter packs — the
//! `cuda` backend issues on a GPU, captured and replayed as graphs the same way. It holds the state in the same
//! block-major layout as [`CpuBackend`] and is built from the same [`SimSetup`], so conformance tests can
//! require bit-identical results from both — which proves the kernel sources and the launch sequence (not a
//! Rust re-implementation) reproduce the CPU semantics.
//!
//! Spikes stay in the spike record (as on the GPU) until [`Backend::drain_spikes`]; the window is
//! [`HOST_SPIKE_WINDOW`] steps, so tests driving the engine exercise the same record path as the CUDA
//! backend.
//!
//! Supports every model: `lif_exp`, `lif_delta`, `izhikevich`, `adex`, `graded` and `lif_cond_exp`.
//!
//! [`CpuBackend`]: crate::cpu::CpuBackend
//! [`Backend::drain_spikes`]: crate::backend::Backend::drain_spikes

use std::any::TypeId;
use std::convert::Infallible;
use std::fmt;
use std::ops::Range;

use neurotwin_kernels::packs::{self, DeliverSpikesArgs, DevPtr, KernelArgs, KernelFn};

use crate::error::SimError;
use crate::launch::{Elem, Grid, KernelBackend, Launcher};
use crate::setup::SimSetup;

/// Steps of spikes the host spike record holds between drains.
pub const HOST_SPIKE_WINDOW: usize = 16;

/// The `cuda-host` backend (see the module documentation).
pub type HostKernelBackend = KernelBackend<HostLauncher>;

impl KernelBackend<HostLauncher> {
    /// Builds the backend; an invalid setup is a [`SimError::Setup`].
    pub fn new(setup: &SimSetup) -> Result<Self, SimError> {
        Self::with_launcher(HostLauncher::new(), setup)
    }

    /// The same backend with the deliberately broken delivery kernel (`NEUROTWIN_BREAK_FOR_TEST`: the last
    /// synapse of every segment is dropped). Exists only so that tests can prove the conformance comparison
    /// detects a broken kernel; never use it in a simulation.
    #[doc(hidden)]
    pub fn new_with_broken_delivery_for_test(setup: &SimSetup) -> Result<Self, SimError> {
        Self::with_launcher(HostLauncher { broken_delivery: true, ..HostLauncher::new() }, setup)
    }
}

/// One recorded operation of a host graph: a launch or a clear, with the addresses it had when recorded.
pub type HostOp = Box<dyn Fn() + Send>;

/// Runs each launch on the host: buffers are `Vec`s, kernels the host builds of the CUDA C sources, run
/// sequentially over the grid they are given. While capturing, launches and clears are recorded (with the
/// packs and addresses they were given) and a graph replays them in order — what a CUDA graph does.
#[derive(Default)]
pub struct HostLauncher {
    /// Launch `deliver_spikes` from the deliberately broken build.
    broken_delivery: bool,
    /// The operations recorded since `begin_capture`, while capturing.
    capture: Option<Vec<HostOp>>,
}

impl fmt::Debug for HostLauncher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostLauncher")
            .field("broken_delivery", &self.broken_delivery)
            .field("capturing", &self.capture.as_ref().map(Vec::len))
            .finish()
    }
}

impl HostLauncher {
    /// The launcher of the `cuda-host` backend (correct kernels).
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `op` now, or records it while capturing.
    fn run(&mut self, op: impl Fn() + Send + 'static) {
        match &mut self.capture {
            Some(ops) => ops.push(Box::new(op)),
            None => op(),
        }
    }
}

/// A host address that a recorded operation may carry to another thread (the backend owning the buffers moves
/// with its launcher).
#[derive(Clone, Copy)]
struct SendAddr(usize);

impl Launcher for HostLauncher {
    type Buf<T: Elem> = Vec<T>;
    type Error = Infallible;
    type Graph = Vec<HostOp>;
    const NAME: &'static str = "cuda-host";

    fn spike_window(&self, _n: usize) -> usize {
        HOST_SPIKE_WINDOW
    }

    fn upload<T: Elem>(&self, data: &[T]) -> Result<Vec<T>, Infallible> {
        Ok(if data.is_empty() { vec![T::default()] } else { data.to_vec() })
    }

    fn zeros<T: Elem>(&self, len: usize) -> Result<Vec<T>, Infallible> {
        Ok(vec![T::default(); len.max(1)])
    }

    fn write<T: Elem>(&mut self, src: &[T], dst: &mut Vec<T>) -> Result<(), Infallible> {
        debug_assert!(self.capture.is_none(), "write while capturing");
        dst[..src.len()].copy_from_slice(src);
        Ok(())
    }

    fn clear<T: Elem>(&mut self, buf: &mut Vec<T>) -> Result<(), Infallible> {
        let (at, len) = (SendAddr(buf.as_mut_ptr() as usize), buf.len());
        self.run(move || {
            // SAFETY: `at` is the start of a live `Vec<T>` of `len` elements owned by the backend, which outlives
            // its graphs and does not resize its buffers; all-zero bits are a valid `T` (`ValidAsZeroBits`).
            unsafe { std::ptr::write_bytes(at.0 as *mut T, 0, len) }
        });
        Ok(())
    }

    fn read<T: Elem>(&self, src: &Vec<T>, range: Range<usize>, dst: &mut [T]) -> Result<(), Infallible> {
        dst.copy_from_slice(&src[range]);
        Ok(())
    }

    fn ptr<T: Elem>(&self, buf: &mut Vec<T>) -> DevPtr<T> {
        DevPtr::host(buf.as_mut_ptr())
    }

    fn cptr<T: Elem>(&self, buf: &Vec<T>) -> DevPtr<T> {
        DevPtr::host(buf.as_ptr())
    }

    unsafe fn launch<P: KernelArgs>(&mut self, kernel: &KernelFn<P>, grid: Grid, args: &P) -> Result<(), Infallible> {
        let mut host = kernel.host;
        if self.broken_delivery
            && kernel.name == packs::DELIVER_SPIKES.name
            && TypeId::of::<P>() == TypeId::of::<DeliverSpikesArgs>()
        {
            let broken = packs::DELIVER_SPIKES_BROKEN_FOR_TEST.host;
            // SAFETY: P is DeliverSpikesArgs (checked above), so this is the identity on the function type.
            host = unsafe { std::mem::transmute::<packs::HostEntry<DeliverSpikesArgs>, packs::HostEntry<P>>(broken) };
        }
        let args = *args;
        self.run(move || {
            // SAFETY: the launch contract of `Launcher::launch`, which the caller guarantees; for a recorded
            // launch the buffers outlive the graph (they belong to the backend that owns the graph).
            unsafe { host(grid.blocks, grid.threads, &args) }
        });
        Ok(())
    }

    fn begin_capture(&mut self) -> Result<(), Infallible> {
        debug_assert!(self.capture.is_none(), "nested capture");
        self.capture = Some(Vec::new());
        Ok(())
    }

    fn end_capture(&mut self) -> Result<Vec<HostOp>, Infallible> {
        Ok(self.capture.take().unwrap_or_default())
    }

    fn launch_graph(&mut self, graph: &Vec<HostOp>) -> Result<(), Infallible> {
        debug_assert!(self.capture.is_none(), "graph launch while capturing");
        graph.iter().for_each(|op| op());
        Ok(())
    }
}
