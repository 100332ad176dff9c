#!/usr/bin/env bash
# Installs NVRTC (libnvrtc.so.12) and ptxas from NVIDIA's pip wheels into .venv-cuda, for the NVRTC compile
# test of the kernels crate (kernels/tests/integration/nvrtc_compile.rs). Needs no GPU and no CUDA installation.
# Idempotent. Writes .venv-cuda/env.sh with NEUROTWIN_NVRTC_LIB_DIR and NEUROTWIN_PTXAS.
set -euo pipefail
cd "$(dirname "$0")/.."

V=.venv-cuda
NVRTC_PKG="nvidia-cuda-nvrtc-cu12==12.9.86"
NVCC_PKG="nvidia-cuda-nvcc-cu12==12.9.86"

find_paths() {
  "$V/bin/python" - <<'PY'
import glob, os, sys
import nvidia.cuda_nvrtc as r, nvidia.cuda_nvcc as c
lib = os.path.join(list(r.__path__)[0], "lib")
ptxas = os.path.join(list(c.__path__)[0], "bin", "ptxas")
if not glob.glob(os.path.join(lib, "libnvrtc.so.12*")) or not os.access(ptxas, os.X_OK):
    sys.exit(1)
print(os.path.realpath(lib))
print(os.path.realpath(ptxas))
PY
}

[ -x "$V/bin/python" ] || python3 -m venv "$V"
if ! paths=$(find_paths 2>/dev/null); then
  echo "setup-cuda-tools: installing $NVRTC_PKG $NVCC_PKG into $V (pip)" >&2
  "$V/bin/pip" install --quiet --disable-pip-version-check "$NVRTC_PKG" "$NVCC_PKG"
  paths=$(find_paths)
fi

lib_dir=$(sed -n 1p <<<"$paths")
ptxas=$(sed -n 2p <<<"$paths")
printf 'export NEUROTWIN_NVRTC_LIB_DIR=%q\nexport NEUROTWIN_PTXAS=%q\n' "$lib_dir" "$ptxas" >"$V/env.sh"
echo "setup-cuda-tools: NVRTC lib dir: $lib_dir"
echo "setup-cuda-tools: ptxas: $ptxas"
