#!/bin/bash
# Installs the peer simulators, once:
#   peers-work/venv          NEST 3.10 and Brian2 2.11 (Brian2 2.11 needs Python >= 3.13: taken from pyenv,
#                            these machines have 3.13.0, else from python3.13 on the PATH);
#   peers-work/venv-brainpy  BrainPy 2.8 on JAX (CPU) with brainevent's numba kernels, in its own venv so that
#                            JAX's numpy pin cannot disturb NEST's and Brian2's.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${PEERS_WORK:-$repo/peers-work}
venv=$work/venv
venv_bp=$work/venv-brainpy
py=""
if command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[3-9]' | sort -rV); do
    py="$(pyenv root)/versions/$v/bin/python3"; break
  done
fi
if [ -z "$py" ] && command -v python3.13 >/dev/null 2>&1; then py=$(command -v python3.13); fi
if [ -z "$py" ]; then
  echo "benches/peers/setup.sh: no Python >= 3.13 found (pyenv or python3.13 on PATH); Brian2 2.11 needs one" >&2
  exit 1
fi
mkdir -p "$work"
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import nest, brian2" >/dev/null 2>&1; }; then
  echo "installing NEST 3.10 and Brian2 2.11 into $venv (Python: $py)" >&2
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q -U pip
  "$venv/bin/pip" install -q "brian2==2.11.0" "nest-simulator==3.10.0"
  "$venv/bin/python" -c "import nest, brian2; print('NEST', nest.__version__, 'Brian2', brian2.__version__)" 2>/dev/null | tail -1
fi
if ! { [ -x "$venv_bp/bin/python" ] && "$venv_bp/bin/python" -c "import brainpy, brainevent, numba" >/dev/null 2>&1; }; then
  echo "installing BrainPy 2.8.2 (JAX 0.12.1, CPU) into $venv_bp (Python: $py)" >&2
  "$py" -m venv "$venv_bp"
  "$venv_bp/bin/pip" install -q -U pip
  "$venv_bp/bin/pip" install -q "brainpy==2.8.2" "brainevent==0.3.0" "jax[cpu]==0.12.1" "numba==0.68.1"
  "$venv_bp/bin/python" -c "import brainpy; print('BrainPy', brainpy.__version__)" 2>/dev/null | tail -1
fi
