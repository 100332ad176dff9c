#!/usr/bin/env bash
# Creates .venv-bmtk with the Brain Modeling Toolkit (pip `bmtk`, pinned): `make test` uses it to let BMTK's own
# SONATA reader read the circuits our writer makes (connectome/tests/integration/bmtk_crosscheck.rs, required there with
# NEUROTWIN_REQUIRE_BMTK=1), and scripts/make_bmtk_network.py uses it to regenerate connectome/tests/data/bmtk_small.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bmtk/bin/python ] || ! .venv-bmtk/bin/python -c 'import bmtk, h5py, numpy, pandas; assert bmtk.__version__ == "1.2.0"' >/dev/null 2>&1; then
  echo "setup-bmtk: creating .venv-bmtk with bmtk (pip)" >&2
  python3 -m venv .venv-bmtk
  .venv-bmtk/bin/pip install --quiet --disable-pip-version-check "bmtk==1.2.0"
fi
.venv-bmtk/bin/python -c 'import bmtk; print("bmtk", bmtk.__version__)'
