# The two commands of the README: `make demo` and `make test`. Both install what they need first.
CARGO ?= cargo

.PHONY: setup demo test bench peers clean

setup:
	@./scripts/setup.sh

## Run the bundled C. elegans gentle-touch scenario (release build).
demo: setup
	$(CARGO) run --release --quiet -- demo

## Build and run every test of the workspace; NVRTC (pip wheels in .venv-cuda) compiles the CUDA kernels, and the
## ptxas register/spill report of kernels/tests/integration/nvrtc_compile.rs is printed to the log.
## pynwb + nwbinspector (pip, in .venv-nwb) check the NWB files the tests write (NEUROTWIN_REQUIRE_NWB=1: no skipping);
## BMTK's SONATA reader (pip, in .venv-bmtk) reads the circuits our writer makes (NEUROTWIN_REQUIRE_BMTK=1).
## Then the GPU bundle is built from the debug binaries and its CPU-only check runs outside the repository
## (scripts/test-gpu-bundle.sh), the Python package is built into a wheel (maturin, pip in .venv-py), installed into
## a fresh venv and tested with pytest (scripts/test-python.sh), and `mpirun -np 2 neurotwin run` must give the
## spikes of one process (Open MPI via scripts/setup-mpi.sh).
test: setup
	./scripts/setup-cuda-tools.sh
	./scripts/setup-nwb-tools.sh
	./scripts/setup-bmtk.sh
	set -a; . .venv-cuda/env.sh; set +a; \
	export LD_LIBRARY_PATH="$$NEUROTWIN_NVRTC_LIB_DIR$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}" NEUROTWIN_REQUIRE_NVRTC=1 NEUROTWIN_REQUIRE_NWB=1 NEUROTWIN_REQUIRE_BMTK=1; \
	$(CARGO) test --workspace -- --skip nvrtc_compile:: && \
	$(CARGO) test -p neurotwin-kernels --test integration -- --nocapture nvrtc_compile::
	CARGO="$(CARGO)" ./scripts/test-gpu-bundle.sh
	./scripts/test-python.sh
	./scripts/setup-mpi.sh && CARGO="$(CARGO)" ./scripts/test-mpi.sh

## Criterion micro-benchmarks and the full-size generator benchmarks.
bench: setup
	$(CARGO) bench --workspace

## neurotwin vs NEST 3.10, Brian2 2.11 and BrainPy 2.8 on this machine (installs the peers into peers-work/venv and
## peers-work/venv-brainpy); add
## PEERS_ARGS=--full for the full-scale models. Writes peers-work/results/compare-<date>.{md,json}.
peers: setup
	python3 benches/peers/compare.py $(PEERS_ARGS)

clean:
	$(CARGO) clean
