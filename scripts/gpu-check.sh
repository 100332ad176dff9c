#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU, run from the folder `scripts/gpu-bundle.sh` made (it needs
# nothing else: no Rust, no network, no repository). Steps, each timed and reported:
#   1. libraries  – the bundled binaries resolve every shared library (`ldd`, the bundle's lib/ first)
#   2. driver     – nvidia-smi: GPU, driver version, memory (skipped without nvidia-smi)
#   3. doctor     – `neurotwin doctor` (driver, devices, NVRTC, the bundle's precompiled cubins)
#   4. conformance – the GPU conformance suite (bit-identical spikes, CUDA vs CPU; `--ignored` tests of the sim
#                   test binary); CPU-only: the same suite on the `cuda-host` backend
#   5. pd14 / flybrain – full-scale Potjans & Diesmann 2014 and the fly-brain-scale network for 1 biological
#                   second on CUDA and CPU: spike counts compared, wall time split into setup and simulate;
#                   CPU-only: small copies on cpu vs cuda-host (must be identical)
#   6. graphs     – PD14 at 10 % scale for 1 biological second with each step replayed as a CUDA graph (the
#                   default) and with every kernel launched directly (NEUROTWIN_CUDA_GRAPHS=0): identical spikes,
#                   both times printed; CPU-only: CUBA 4000 on cuda-host, both ways
#   7. predictive – the bundled C. elegans predictive-coding scenario on cuda and cpu: every output file
#                   byte-identical; CPU-only: cuda-host and cpu
#   8. gpu-paths  – the GPU tests of predictive coding and of the segmentation U-Net (`--ignored`);
#                   CPU-only: their no-GPU tests
# Writes report.json and report.md into $OUT if set (else ./gpu-check-report) and prints the Markdown.
# Usage: gpu-check.sh [--cpu-only]     (--cpu-only: the parts that need no GPU; CI runs it from the bundle)
# Exit status: 0 when every step passed, 1 otherwise. Designed to finish in under 8 minutes on 16 cores.
set -uo pipefail

B=$(cd "$(dirname "$0")" && pwd)
MODE=gpu
[ "${1:-}" = "--cpu-only" ] && MODE=cpu
export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Precompiled cubins (the driver API loads them; no NVRTC needed). Unset it to compile with a local NVRTC.
export NEUROTWIN_KERNEL_DIR="${NEUROTWIN_KERNEL_DIR-$B/kernels}"
NT="$B/bin/neurotwin"
SIMT="$B/bin/sim-tests"
REPORT="${OUT:-$PWD/gpu-check-report}"
mkdir -p "$REPORT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
PY=$(command -v python3 || true)

# step NAME COMMAND...: runs it, keeps its output in $WORK/NAME.log, appends "name rc seconds" to $RESULTS.
step() {
  local name=$1
  shift
  local t0 t1 rc
  echo "== $name: $*" >&2
  t0=$(date +%s.%N)
  "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  tail -n 25 "$WORK/$name.log" >&2
  printf "%s\t%s\t%s\n" "$name" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" >>"$RESULTS"
  cp "$WORK/$name.log" "$REPORT/$name.log"
  return $rc
}

check_libraries() {
  local missing
  missing=$(ldd "$NT" "$SIMT" | grep "not found" || true)
  ldd "$NT"
  [ -z "$missing" ] || { echo "unresolved libraries:"; echo "$missing"; return 1; }
}

driver() {
  if ! command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi not found"
    [ "$MODE" = cpu ]
    return
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader
}

conformance() {
  if [ "$MODE" = gpu ]; then
    "$SIMT" --ignored gpu_conformance:: --test-threads 1
  else
    "$SIMT" conformance_host_kernels:: gpu_conformance::
  fi
}

# The GPU tests of predictive coding and of the segmentation U-Net (bit-identical to cpu and cuda-host);
# CPU-only: their tests that refuse `cuda` without a GPU and run `auto` on the CPU.
other_gpu_paths() {
  if [ "$MODE" = gpu ]; then
    "$B/bin/predictive-tests" --ignored backends::gpu_ --test-threads 1 &&
      "$B/bin/segment-tests" --ignored cnn::gpu_ --test-threads 1
  else
    "$B/bin/predictive-tests" backends:: && "$B/bin/segment-tests" cnn::cuda_backend_without_a_gpu
  fi
}

# model NAME GENERATOR DURATION_MS BACKEND_A BACKEND_B: runs the generated network on two backends and requires
# identical spike counts and per-population rates; prints setup (process wall - simulation wall) and simulate.
# A backend named <kind>-nographs is <kind> with NEUROTWIN_CUDA_GRAPHS=0 (every kernel launched directly).
model() {
  local name=$1 generator=$2 duration=$3 a=$4 b=$5
  local toml="$WORK/$name.toml"
  printf 'name = "%s"\n[network]\ngenerator = %s\n[run]\nduration_ms = %s\ndt_ms = 0.1\nseed = 1\n' \
    "$name" "$generator" "$duration" >"$toml"
  local backend t0 t1
  for backend in "$a" "$b"; do
    t0=$(date +%s.%N)
    NEUROTWIN_CUDA_GRAPHS=$([ "${backend%-nographs}" = "$backend" ] && echo 1 || echo 0) \
      "$NT" run "$toml" -o "$WORK/$name-$backend" --backend "${backend%-nographs}" --json \
      >"$WORK/$name-$backend.json" || return 1
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >"$WORK/$name-$backend.process_s"
  done
  "$PY" - "$WORK" "$name" "$a" "$b" <<'PY'
import json, sys
work, name, a, b = sys.argv[1:]
runs = {}
for backend in (a, b):
    s = json.load(open(f"{work}/{name}-{backend}.json"))[0]
    total = float(open(f"{work}/{name}-{backend}.process_s").read())
    runs[backend] = s
    print(f"{name} on {backend}: {s['neurons']} neurons, {s['synapses']} synapses, {s['total_spikes']} spikes, "
          f"setup {total - s['wall_s']:.2f} s, simulate {s['wall_s']:.2f} s "
          f"(real-time factor {s['wall_s'] / (s['duration_ms'] / 1000):.3f})")
same = runs[a]["total_spikes"] == runs[b]["total_spikes"] and \
    runs[a]["rate_by_cell_type_hz"] == runs[b]["rate_by_cell_type_hz"]
print(f"{name}: spike counts {'identical' if same else 'DIFFER'} ({a} vs {b})")
sys.exit(0 if same else 1)
PY
}

# outputs_identical NAME BACKEND_A BACKEND_B COMMAND...: runs COMMAND with `--backend X -o DIR` for both backends
# and requires every data file byte-identical (not the JSON summaries, which name the backend and its wall time).
outputs_identical() {
  local name=$1 a=$2 b=$3
  shift 3
  local backend
  for backend in "$a" "$b"; do
    "$@" --backend "$backend" -o "$WORK/$name-$backend" --overwrite >/dev/null || return 1
  done
  local f bad=0
  for f in $(cd "$WORK/$name-$a" && find . -type f ! -name '*.json' | sort); do
    if cmp -s "$WORK/$name-$a/$f" "$WORK/$name-$b/$f"; then echo "identical: $f"; else echo "DIFFER: $f"; bad=1; fi
  done
  return $bad
}

report() {
  "$PY" - "$RESULTS" "$REPORT" "$MODE" "$WORK" <<'PY'
import json, os, sys
results, out, mode, work = sys.argv[1:]
steps = []
for line in open(results):
    name, rc, secs = line.rstrip("\n").split("\t")
    log = open(f"{work}/{name}.log", errors="replace").read().strip().splitlines()
    steps.append({"step": name, "passed": rc == "0", "exit_status": int(rc), "seconds": round(float(secs), 2),
                  "summary": [l for l in log if l][-6:]})
doc = {"mode": mode, "passed": all(s["passed"] for s in steps), "steps": steps}
json.dump(doc, open(f"{out}/report.json", "w"), indent=2)
md = [f"# neurotwin GPU check ({mode})", "", "| step | result | seconds |", "|---|---|---|"]
md += [f"| {s['step']} | {'pass' if s['passed'] else 'FAIL'} | {s['seconds']} |" for s in steps]
for s in steps:
    md += ["", f"## {s['step']}", "```", *s["summary"], "```"]
open(f"{out}/report.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
}

[ -x "$NT" ] && [ -x "$SIMT" ] || { echo "gpu-check: $B is not a bundle (bin/neurotwin, bin/sim-tests)" >&2; exit 1; }
[ -n "$PY" ] || { echo "gpu-check: python3 is needed for the report" >&2; exit 1; }
step libraries check_libraries
step driver driver
step doctor "$NT" doctor
step conformance conformance
step gpu-paths other_gpu_paths
if [ "$MODE" = gpu ]; then
  step pd14 model pd14 '{ kind = "pd14", n_scaling = 1.0, k_scaling = 1.0 }' 1000.0 cuda cpu
  step flybrain model flybrain '{ kind = "flybrain" }' 1000.0 cuda cpu
  step graphs model graphs '{ kind = "pd14", n_scaling = 0.1, k_scaling = 1.0 }' 1000.0 cuda cuda-nographs
  step predictive outputs_identical predictive cuda cpu "$NT" pc "$B/inputs/pc_celegans.toml"
else
  step pd14 model pd14 '{ kind = "pd14", n_scaling = 0.02, k_scaling = 1.0 }' 100.0 cuda-host cpu
  step flybrain model flybrain '{ kind = "flybrain", scale = 0.01 }' 100.0 cuda-host cpu
  step graphs model graphs '{ kind = "cuba", n = 4000, k = 80 }' 100.0 cuda-host cuda-host-nographs
  step predictive outputs_identical predictive cuda-host cpu "$NT" pc "$B/inputs/pc_celegans.toml" --batches 3
fi
report
awk -F'\t' '$2 != 0 { bad = 1 } END { exit bad }' "$RESULTS"
