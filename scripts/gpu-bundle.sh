#!/usr/bin/env bash
# Builds the folder to carry to a borrowed GPU machine (no Rust, no network, at most ~64 MiB of files):
#   bin/neurotwin     the CLI, release build, stripped
#   bin/sim-tests     the sim crate's test binary (GPU conformance suite), release build, stripped
#   bin/predictive-tests, bin/segment-tests  the predictive-coding and segmentation test binaries (their GPU tests)
#   lib/              shared libraries the binaries need beyond the C/C++ runtime (libhdf5, libsz, libaec, …)
#   kernels/          every CUDA kernel unit as a cubin for sm_80, sm_89, sm_90 (NVRTC here, none needed there)
#   gpu-check.sh      the check (see its header), run from this folder alone
# Usage: scripts/gpu-bundle.sh [OUT_DIR]   (default: gpu-bundle/, git-ignored). Fails above 60 MiB.
# Needs scripts/setup-cuda-tools.sh's NVRTC (for the cubins); run from the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-gpu-bundle}
LIMIT_MIB=60
CARGO=${CARGO:-cargo}
./scripts/setup-cuda-tools.sh >/dev/null
set -a
. .venv-cuda/env.sh
set +a
export LD_LIBRARY_PATH="$NEUROTWIN_NVRTC_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# test_binary PACKAGE < cargo JSON: the package's integration-test executable among cargo's JSON messages.
test_binary() {
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if (m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "integration"
            and m["package_id"].split("#")[-1].startswith(sys.argv[1] + "@")):
        print(m["executable"])' "$1" | head -n 1
}
TEST_PACKAGES="neurotwin-sim neurotwin-predictive neurotwin-segment"

if [ "${PROFILE:-release}" = debug ]; then
  # CI: the debug binaries `make test` just built (no extra compilation; no size limit, debug code is larger).
  echo "gpu-bundle: debug build (CI check of the bundle, not for shipping)" >&2
  $CARGO test --workspace --quiet --no-run --message-format=json >"${TMPDIR:-/tmp}/gpu-bundle-tests.json"
  neurotwin=target/debug/neurotwin
  LIMIT_MIB=1000
else
  echo "gpu-bundle: release build of neurotwin and of the sim, predictive and segment test binaries" >&2
  $CARGO build --release --quiet --bin neurotwin
  $CARGO test --release --quiet -p neurotwin-sim -p neurotwin-predictive -p neurotwin-segment --test integration \
    --no-run --message-format=json >"${TMPDIR:-/tmp}/gpu-bundle-tests.json"
  neurotwin=target/release/neurotwin
fi

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"
strip -o "$OUT/bin/neurotwin" "$neurotwin"
for pkg in $TEST_PACKAGES; do
  exe=$(test_binary "$pkg" <"${TMPDIR:-/tmp}/gpu-bundle-tests.json")
  [ -x "$exe" ] || { echo "gpu-bundle: no integration test binary of $pkg found" >&2; exit 1; }
  strip -o "$OUT/bin/${pkg#neurotwin-}-tests" "$exe"
done
cp scripts/gpu-check.sh "$OUT/gpu-check.sh"
# Inputs of the end-to-end checks that are not generated (the worm's wiring is built into the binary).
mkdir -p "$OUT/inputs"
cp scenarios/pc_celegans.toml "$OUT/inputs/"

# Libraries outside the C/C++ runtime that every Linux has (a GPU machine may lack HDF5 and its codecs).
base='^(linux-vdso|ld-linux|libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|libresolv|libutil)\.'
ldd "$OUT"/bin/* | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
  while read -r name path; do
    if ! [[ $name =~ $base ]]; then
      cp -L "$path" "$OUT/lib/$name"
    fi
  done

"$OUT/bin/neurotwin" kernels --cubin-dir "$OUT/kernels" --arch 80,89,90 >&2

size_kib=$(du -sk "$OUT" | cut -f1)
echo "gpu-bundle: $OUT is $((size_kib / 1024)) MiB ($(ls "$OUT/lib" | wc -l) libraries: $(ls "$OUT/lib" | tr '\n' ' '))" >&2
du -sh "$OUT"/* >&2
if [ "$size_kib" -gt $((LIMIT_MIB * 1024)) ]; then
  echo "gpu-bundle: $OUT exceeds $LIMIT_MIB MiB" >&2
  exit 1
fi
