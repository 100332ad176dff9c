#!/usr/bin/env bash
# The Python package's tests (issue 15), run by `make test`: builds the `neurotwin` wheel from python/ with
# maturin (dev profile: reuses the debug build of the workspace), installs it into a fresh venv outside the
# repository (with numpy, h5py, pandas, tqdm and pytest from the pip cache) and runs python/tests there with pytest,
# comparing with the CLI at NEUROTWIN_CLI (default target/debug/neurotwin).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# Cargo's target folder (CARGO_TARGET_DIR when set, as cargo and maturin use it).
T=${CARGO_TARGET_DIR:-$REPO/target}
./scripts/setup-python.sh >/dev/null
rm -rf "$T"/wheels/neurotwin-*.whl
# maturin's wheel repair patches the extension in place, and cargo hard-links it to its own artifact: remove both so
# cargo links a fresh one (otherwise a second build finds the renamed libhdf5 dependency and fails).
rm -f "$T"/maturin/lib_neurotwin.so "$T"/debug/deps/lib_neurotwin.so
PATH="$PWD/.venv-py/bin:$PATH" .venv-py/bin/maturin build --quiet --profile dev -m python/Cargo.toml -o "$T"/wheels >&2
wheel=$(ls "$T"/wheels/neurotwin-*.whl)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel" pytest numpy h5py pandas tqdm
cp -r python/tests "$tmp/tests"
cd "$tmp"
NEUROTWIN_REPO="$REPO" NEUROTWIN_CLI="${NEUROTWIN_CLI:-$T/debug/neurotwin}" \
  "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
