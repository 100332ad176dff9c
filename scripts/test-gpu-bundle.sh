#!/usr/bin/env bash
# CI check of the GPU bundle (issue 14): builds it from the debug binaries `make test` just built
# (PROFILE=debug, no extra compilation), then runs `gpu-check.sh --cpu-only` from the bundle folder alone,
# outside the repository and without the repository's environment (no LD_LIBRARY_PATH, no NVRTC: the cubins
# in the bundle are what the CUDA backend would load). The shipped bundle is the release one
# (`scripts/gpu-bundle.sh`, README "If you have a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
PROFILE=debug ./scripts/gpu-bundle.sh "$tmp/bundle"
cd "$tmp"
env -u LD_LIBRARY_PATH -u NEUROTWIN_NVRTC_LIB_DIR OUT="$tmp/report" "$tmp/bundle/gpu-check.sh" --cpu-only >"$tmp/check.log" 2>&1 || {
  cat "$tmp/check.log"
  exit 1
}
sed -n '/^# neurotwin GPU check/,$p' "$tmp/check.log"
echo "test-gpu-bundle: passed ($(du -sh "$tmp/bundle" | cut -f1) debug bundle)"
