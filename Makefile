# The two commands of the README: `make demo` and `make test`. Both install what they need first.
CARGO ?= cargo

.PHONY: setup demo test bench clean

setup:
	@./scripts/setup.sh

## Run the bundled C. elegans gentle-touch scenario (release build).
demo: setup
	$(CARGO) run --release --quiet -- demo

## Build and run every test of the workspace.
test: setup
	$(CARGO) test --workspace

## Criterion micro-benchmarks and the full-size generator benchmarks.
bench: setup
	$(CARGO) bench --workspace

clean:
	$(CARGO) clean
