#!/usr/bin/env bash
# Installs what building and testing neurotwin needs on a fresh Debian/Ubuntu machine:
#   - libhdf5-dev (+ pkg-config) for the `hdf5` crate (hdf5-metno), via apt-get;
#   - a Python venv in .venv with h5py/numpy, used by tests that check our HDF5 output with h5py.
# Idempotent: does nothing that is already done. Needs root (or sudo) only when apt packages are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
if ! { pkg-config --exists hdf5 2>/dev/null || [ -f /usr/include/hdf5/serial/hdf5.h ] || [ -f /usr/include/hdf5.h ]; }; then
  need_apt+=(libhdf5-dev)
fi
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (apt-get)" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import h5py, numpy' >/dev/null 2>&1; then
  echo "setup: creating .venv with h5py (pip)" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "h5py>=3.8" "numpy>=1.24"
fi
