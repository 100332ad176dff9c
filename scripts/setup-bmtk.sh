#!/usr/bin/env bash
# Creates .venv-bmtk with the Brain Modeling Toolkit (pip `bmtk`), used only to regenerate the BMTK-built test
# network in connectome/tests/data/bmtk_small (scripts/make_bmtk_network.py). Idempotent. The Rust tests do not
# need it: the generated files are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bmtk/bin/python ] || ! .venv-bmtk/bin/python -c 'import bmtk, h5py, numpy, pandas' >/dev/null 2>&1; then
  echo "setup-bmtk: creating .venv-bmtk with bmtk (pip)" >&2
  python3 -m venv .venv-bmtk
  .venv-bmtk/bin/pip install --quiet --disable-pip-version-check "bmtk>=1.1"
fi
.venv-bmtk/bin/python -c 'import bmtk; print("bmtk", bmtk.__version__)'
