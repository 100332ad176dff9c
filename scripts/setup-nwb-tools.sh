#!/usr/bin/env bash
# Installs pynwb and nwbinspector (pip) into .venv-nwb, for the NWB output checks
# (scripts/check_nwb.py, run by imaging/tests/integration/nwb_write.rs and tests/cli/export.rs).
# Also used by scripts/make_test_nwb.py (pynwb, h5py, numpy). Idempotent: does nothing when the pinned
# versions are already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

V=.venv-nwb
PYNWB="pynwb==4.2.0"
INSPECTOR="nwbinspector==0.7.2"

have() {
  "$V/bin/python" - <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
ok = version("pynwb") == "4.2.0" and version("nwbinspector") == "0.7.2"
import pynwb, nwbinspector, h5py, numpy  # noqa: F401  (importable, not just installed)
sys.exit(0 if ok else 1)
PY
}

[ -x "$V/bin/python" ] || python3 -m venv "$V"
if ! have; then
  echo "setup-nwb-tools: installing $PYNWB $INSPECTOR into $V (pip)" >&2
  "$V/bin/pip" install --quiet --disable-pip-version-check "$PYNWB" "$INSPECTOR" "h5py>=3.8" "numpy>=1.24"
  have || { echo "setup-nwb-tools: $V still lacks $PYNWB / $INSPECTOR after pip install" >&2; exit 1; }
fi
echo "setup-nwb-tools: $("$V/bin/python" -c 'from importlib.metadata import version as v; print("pynwb", v("pynwb"), "hdmf", v("hdmf"), "nwbinspector", v("nwbinspector"))')"
