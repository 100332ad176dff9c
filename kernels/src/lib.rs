//! CUDA kernels of the GPU backend (issue "GPU backend"): CUDA C sources in this crate, compiled at run
//! time with NVRTC through cudarc, and for the host through a portability header for conformance tests.
//!
//! Nothing lives here yet: the CPU backend in `neurotwin-sim` defines the per-step semantics (block
//! update, fixed-point delay rings, counter-based random numbers) that the kernels will mirror.
