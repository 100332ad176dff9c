#!/usr/bin/env bash
# The NeuroML tools that regenerate data/c302 (scripts/make_c302_reference.py): c302 and pyNeuroML (with its
# bundled jNeuroML, which needs a Java runtime) in .venv-neuroml. Not needed by the tests, which use the committed
# files.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-neuroml/bin/python ]; then
  python3 -m venv .venv-neuroml
fi
.venv-neuroml/bin/pip install --quiet --disable-pip-version-check c302==0.12.1 pyneuroml==1.3.22 numpy
command -v java >/dev/null || echo "setup-neuroml: jNeuroML needs Java (e.g. apt-get install default-jre-headless)" >&2
.venv-neuroml/bin/python -c "import c302, pyneuroml; print('setup-neuroml: c302', c302.__version__)"
