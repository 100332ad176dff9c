#!/usr/bin/env bash
# Installs what `cargo build --features mpi` and scripts/test-mpi.sh need on a Debian/Ubuntu machine:
#   - Open MPI (mpirun, libmpi, mpicc) for the `mpi` crate (rsmpi), via apt-get;
#   - libclang (+ clang), which rsmpi's build uses to generate the MPI bindings (bindgen).
# Idempotent: does nothing that is already installed. Needs root (or sudo) only when packages are missing.
set -euo pipefail

need_apt=()
command -v mpirun >/dev/null 2>&1 || need_apt+=(openmpi-bin)
{ command -v mpicc >/dev/null 2>&1 && { [ -f /usr/include/x86_64-linux-gnu/mpi/mpi.h ] || [ -n "$(find /usr/lib /usr/include -name mpi.h -path '*openmpi*' -print -quit 2>/dev/null)" ]; }; } ||
  need_apt+=(libopenmpi-dev)
ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v clang >/dev/null 2>&1 || need_apt+=(clang)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup-mpi: installing ${need_apt[*]} (apt-get)" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
