#!/bin/bash
# The peer scripts for the Potjans–Diesmann microcircuit (pd14_nest.py, pd14_brian2.py) take their parameters
# from NEST's own example modules (pynest/examples/Potjans_2014, removed from nest-simulator in Aug 2025 by
# commit 09c1a3ccf). This makes a writable copy of the peer scripts in peers-work/peers and puts the five
# modules from the parent commit beside them in pd14_example/ (downloaded from GitHub; nothing is committed
# to this repository). Prints the folder to use as NEUROTWIN_PEERS. Idempotent.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${PEERS_WORK:-$repo/peers-work}
src=${1:-$repo/../shared/peers}
dst=$work/peers
commit=e0a0745546eb75f7d50a7e433c32d0c2b7376513   # parent of 09c1a3ccf ("remove Potjans from examples")
files="helpers.py network.py network_params.py sim_params.py stimulus_params.py"
have() { for f in $files; do [ -s "$dst/pd14_example/$f" ] || return 1; done; }
if [ ! -f "$dst/pd14_nest.py" ]; then
  [ -d "$src" ] || { echo "pd14-example.sh: no peer scripts at $src" >&2; exit 1; }
  mkdir -p "$dst" && cp -r "$src"/. "$dst"/ && chmod -R u+w "$dst"
fi
if ! have; then
  mkdir -p "$dst/pd14_example"
  for f in $files; do
    curl -fsSL "https://raw.githubusercontent.com/nest/nest-simulator/$commit/pynest/examples/Potjans_2014/$f" \
      -o "$dst/pd14_example/$f" || {
      echo "pd14-example.sh: cannot download $f; put NEST's Potjans_2014 example modules (commit $commit) into $dst/pd14_example/" >&2
      exit 1
    }
  done
fi
echo "$dst"
