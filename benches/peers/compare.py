#!/usr/bin/env python3
"""neurotwin against NEST 3.10, Brian2 2.11 and BrainPy 2.8, side by side, on this machine, in one run.

For each model, every simulator runs the same network (same parameters, its own random connectivity and
seeds) for 1 s of biological time at dt = 0.1 ms, once per seed; the table gives the mean simulate-phase
time (network construction excluded; Brian2's code generation and compilation and BrainPy's XLA tracing and
compilation excluded), the speed-up of
neurotwin over each peer, peak resident memory, and the mean rates with a check that neurotwin's mean rate
is within 2 % of each peer's mean rate. It also measures this machine's memory bandwidth (STREAM triad,
`cargo bench --bench stream`) and prints, per model, the bandwidth floor of neurotwin's simulate phase
(bytes it must move / bandwidth) next to the achieved time, and the compiled bytes per synapse.

Peer scripts: ../shared/peers (NEST and Brian2 implementations of the models with the parameters of
NEST's and Brian2's own examples; see its INSTALL.md) and benches/peers/brainpy (BrainPy's, written for this
comparison: CUBA and Brunel). Peers are installed into peers-work/venv and peers-work/venv-brainpy by
benches/peers/setup.sh (pip; Brian2 2.11 needs Python >= 3.13 from pyenv). Without ../shared/peers only
neurotwin's side is measured and the table says so.

Usage (from the repository root; `make peers` does the same):
  python3 benches/peers/compare.py                 # CUBA 4k and Brunel 12.5k (3 seeds each), COBA 4k (10 seeds)
  python3 benches/peers/compare.py --full          # + CUBA 100k, Brunel x4, PD14 at full scale (long)
  python3 benches/peers/compare.py --models cuba4k --seeds 1

Writes peers-work/results/compare-<date>.{json,md}. Standard library only.
"""

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.environ.get("PEERS_WORK", os.path.join(REPO, "peers-work"))
PEERS = os.environ.get("NEUROTWIN_PEERS", os.path.normpath(os.path.join(REPO, "..", "shared", "peers")))
NEUROTWIN = os.path.join(REPO, "target", "release", "neurotwin")

# name: (scenario file, generator overrides, {peer: (script, args)}, default seeds)
# Peer thread counts: NEST with 2 threads (OMP_WAIT_POLICY=PASSIVE); Brian2 standalone with 1 thread for
# the small CUBA (its faster setting on this 2-core machine), 2 otherwise; BrainPy (JAX/XLA on CPU) with
# XLA's own thread pool. BrainPy's scripts are this repository's (benches/peers/brainpy); PD14 has none.
MODELS = {
    "cuba4k": ("cuba.toml", None, {
        "nest": ("cuba_nest.py", ["--N", "4000", "--threads", "2"]),
        "brian2": ("cuba_brian2.py", ["--N", "4000", "--mode", "standalone", "--threads", "1"]),
        "brainpy": ("cuba_brainpy.py", ["--N", "4000"])}, 3),
    "coba4k": ("coba.toml", None, {
        "nest": ("coba/coba_nest.py", ["--N", "4000", "--threads", "2"]),
        "brian2": ("coba/coba_brian2.py", ["--N", "4000", "--mode", "standalone", "--threads", "1"])}, 10),
    "brunel12.5k": ("brunel.toml", None, {
        "nest": ("brunel_nest.py", ["--scale", "1", "--threads", "2"]),
        "brian2": ("brunel_brian2.py", ["--scale", "1", "--mode", "standalone", "--threads", "2"]),
        "brainpy": ("brunel_brainpy.py", ["--scale", "1"])}, 3),
    "cuba100k": ("cuba.toml", 'generator = { kind = "cuba", n = 100000, k = 80 }', {
        "nest": ("cuba_nest.py", ["--N", "100000", "--threads", "2"]),
        "brian2": ("cuba_brian2.py", ["--N", "100000", "--mode", "standalone", "--threads", "2"]),
        "brainpy": ("cuba_brainpy.py", ["--N", "100000"])}, 1),
    "brunel50k": ("brunel.toml", 'generator = { kind = "brunel", order = 10000, g = 5.0, eta = 2.0 }', {
        "nest": ("brunel_nest.py", ["--scale", "4", "--threads", "2"]),
        "brian2": ("brunel_brian2.py", ["--scale", "4", "--mode", "standalone", "--threads", "2"]),
        "brainpy": ("brunel_brainpy.py", ["--scale", "4"])}, 1),
    "pd14": ("pd14.toml", 'generator = { kind = "pd14", n_scaling = 1.0, k_scaling = 1.0 }', {
        "nest": ("pd14_nest.py", ["--N_scaling", "1.0", "--threads", "3"]),
        "brian2": ("pd14_brian2.py", ["--N_scaling", "1.0", "--mode", "standalone", "--threads", "2"])}, 1),
}
PEER_KEYS = ("nest", "brian2", "brainpy")
PEER_NAMES = {"nest": "NEST", "brian2": "Brian2", "brainpy": "BrainPy"}
BRAINPY_SCRIPTS = os.path.join(REPO, "benches", "peers", "brainpy")
DEFAULT = ["cuba4k", "coba4k", "brunel12.5k"]
FULL = ["cuba4k", "coba4k", "brunel12.5k", "cuba100k", "brunel50k", "pd14"]
# Peer scripts written for this comparison live beside this file (benches/peers/<script>: COBA, BrainPy's);
# the others in PEERS.
REPO_PEERS = os.path.join(REPO, "benches", "peers")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_timed(cmd, env=None, cwd=None):
    """Runs cmd under /usr/bin/time -v; returns (stdout, stderr, peak RSS MB, wall s)."""
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env, cwd=cwd)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", p.stderr)
    secs = None
    if wall:
        parts = [float(x) for x in wall.group(1).split(":")]
        secs = sum(x * 60 ** (len(parts) - 1 - i) for i, x in enumerate(parts))
    if p.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    return p.stdout, p.stderr, (int(rss.group(1)) / 1024 if rss else None), secs


def scenario_text(name, seed):
    file, override, _, _ = MODELS[name]
    text = open(os.path.join(REPO, "scenarios", file)).read()
    if override:
        text = re.sub(r"^generator = .*$", override, text, count=1, flags=re.M)
    text = re.sub(r"^seed = \d+", "seed = %d" % seed, text, count=1, flags=re.M)
    return re.sub(r"^\[record\][\s\S]*", "", text, flags=re.M)  # no rate traces: time the simulation only


def run_neurotwin(name, seed):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "%s.toml" % name)
        with open(path, "w") as f:
            f.write(scenario_text(name, seed))
        out, _, rss, wall = run_timed([NEUROTWIN, "run", path, "--json", "-o", os.path.join(d, "out")])
    s = json.loads(out)[0]
    return dict(sim_s=s["wall_s"], build_s=(wall or 0) - s["wall_s"], rate_hz=s["mean_rate_hz"], rss_mb=rss,
                neurons=s["neurons"], synapses=s["synapses"], spikes=s["total_spikes"],
                bytes_per_synapse=s["bytes_per_synapse"], model=s["model"], steps=s["steps"])


def run_peer(key, script, args, seed):
    brainpy = key == "brainpy"
    venv_py = os.path.join(WORK, "venv-brainpy" if brainpy else "venv", "bin", "python")
    script_path = os.path.join(BRAINPY_SCRIPTS if brainpy else PEERS, script)
    if not brainpy and os.path.exists(os.path.join(REPO_PEERS, script)):
        script_path = os.path.join(REPO_PEERS, script)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg", PEERS_WORK=WORK,
               TMPDIR=os.path.join(WORK, "tmp"), NEUROTWIN_PEERS=PEERS)
    os.makedirs(env["TMPDIR"], exist_ok=True)
    build = os.path.join(WORK, "build", "%s-%d" % (os.path.basename(script).replace(".py", ""), seed))
    os.makedirs(build, exist_ok=True)
    out, _, rss, _ = run_timed([venv_py, script_path] + args + ["--seed", str(seed)],
                               env=env, cwd=build)
    line = [l for l in out.splitlines() if l.startswith("RESULT ")]
    if not line:
        raise RuntimeError("%s printed no RESULT line" % script)
    r = json.loads(line[-1][len("RESULT "):])
    return dict(sim_s=r["sim_s"], build_s=r.get("build_s"), rate_hz=r["rate_hz"], rss_mb=rss)


STREAM_BIN = None  # the STREAM bench executable, built once by build_all()


def build_all():
    """Builds neurotwin and the STREAM bench once, before anything is measured: nothing is compiled during the
    run, so editing the tree while it runs cannot fail it or change what is measured."""
    global STREAM_BIN
    log("building neurotwin (release) and the STREAM bench")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    p = subprocess.run(["cargo", "bench", "--bench", "stream", "--no-run", "--message-format=json"],
                       capture_output=True, text=True, cwd=REPO)
    for line in p.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "stream" \
                and msg.get("executable"):
            STREAM_BIN = msg["executable"]
    if p.returncode != 0 or not STREAM_BIN:
        raise RuntimeError("cargo bench --bench stream --no-run failed:\n" + p.stderr[-2000:])


def stream_bandwidth(working_set_bytes=None):
    """STREAM copy/triad GB/s, over 768 MiB (DRAM) or over the given working set (cache-resident networks
    are held to the bandwidth of the cache level they fit in)."""
    env = dict(os.environ)
    if working_set_bytes:
        env["NEUROTWIN_STREAM_BYTES"] = str(int(working_set_bytes))
    p = subprocess.run([STREAM_BIN, "--bench"], capture_output=True, text=True, cwd=REPO, env=env)
    m = re.search(r"^STREAM (\{.*\})$", p.stdout, flags=re.M)
    if not m:
        raise RuntimeError("%s --bench printed no STREAM line:\n%s" % (STREAM_BIN, p.stderr[-2000:]))
    return json.loads(m.group(1))


def working_set_bytes(r):
    """Memory neurotwin's simulate phase touches: block-major state, a delay ring of 2 channels (16 slots
    assumed) and the compiled synapses."""
    n_state = {"lif_exp": 4, "lif_delta": 3, "lif_cond_exp": 4}.get(r["model"], 4)
    return r["neurons"] * (8 * n_state + 8 * 2 * 16) + r["synapses"] * r["bytes_per_synapse"]


def floor_bytes(r):
    """Bytes neurotwin's CPU backend must move in one simulated second (lower bound, streamed once):
    per neuron and step the block-major state (read + write), the delay-ring slot (read + clear) and the
    synaptic input buffer for 2 receptor channels, plus the parameter-set index; per synaptic event the
    compiled synapse (bytes_per_synapse: target + weight index/value, amortised segment headers) and a
    read-modify-write of one 8-byte ring entry."""
    n_state = {"lif_exp": 4, "lif_delta": 3, "lif_cond_exp": 4}.get(r["model"], 4)
    channels = 2
    per_neuron_step = 16 * n_state + 16 * channels + 2  # the synaptic input buffer stays in L1
    events = r["spikes"] * r["synapses"] / max(r["neurons"], 1)
    return r["neurons"] * r["steps"] * per_neuron_step + events * (r["bytes_per_synapse"] + 16), events


def save_partial(rows, bw):
    """The raw measurements so far, rewritten after every seed (peers-work/results/compare-partial.json), so that
    a run that fails late keeps what it measured."""
    os.makedirs(os.path.join(WORK, "results"), exist_ok=True)
    path = os.path.join(WORK, "results", "compare-partial.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"date": datetime.date.today().isoformat(), "stream": bw, "partial": True, "results": rows}, f,
                  indent=1)
    os.replace(path + ".tmp", path)


def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.mean(xs) if xs else None


def sd(xs):
    xs = [x for x in xs if x is not None]
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def fmt(x, spec="%.3g"):
    return "–" if x is None else spec % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", help="subset of %s" % ", ".join(MODELS))
    ap.add_argument("--full", action="store_true", help="all models, including the long full-scale ones")
    ap.add_argument("--seeds", type=int, help="seeds per model (default: 3 for the small models, 10 for COBA, 1 for the large ones)")
    ap.add_argument("--no-peers", action="store_true", help="measure neurotwin only")
    ap.add_argument("--no-scaling", action="store_true", help="skip the neurotwin scaling series")
    args = ap.parse_args()
    names = args.models or (FULL if args.full else DEFAULT)
    for n in names:
        if n not in MODELS:
            sys.exit("unknown model %s (choose from %s)" % (n, ", ".join(MODELS)))

    build_all()
    global PEERS
    if "pd14" in names and not os.path.isdir(os.path.join(PEERS, "pd14_example")):
        # NEST's example modules the pd14 peer scripts import: a writable copy of the scripts with them beside.
        p = subprocess.run([os.path.join(REPO, "benches", "peers", "pd14-example.sh"), PEERS],
                           capture_output=True, text=True)
        if p.returncode == 0:
            PEERS = p.stdout.strip().splitlines()[-1]
        else:
            log("NOTE: %s" % p.stderr.strip())
    peers = not args.no_peers and os.path.isdir(PEERS)
    if not args.no_peers and not peers:
        log("NOTE: %s is absent: measuring neurotwin only (set NEUROTWIN_PEERS to the peer scripts)" % PEERS)
    if peers:
        subprocess.run([os.path.join(REPO, "benches", "peers", "setup.sh")], check=True)
    log("measuring memory bandwidth (cargo bench --bench stream)")
    bw = stream_bandwidth()
    log("STREAM: copy %.1f GB/s, triad %.1f GB/s (%d threads)" % (bw["copy_gbs"], bw["triad_gbs"], bw["threads"]))

    results = []
    for name in names:
        _, _, peer_scripts, default_seeds = MODELS[name]
        seeds = list(range(1, (args.seeds or default_seeds) + 1))
        row = {"model": name, "seeds": seeds, "neurotwin": [], "nest": [], "brian2": [], "brainpy": []}
        for s in seeds:
            log("%s seed %d: neurotwin" % (name, s))
            row["neurotwin"].append(run_neurotwin(name, s))
            if peers:
                for key, (script, a) in peer_scripts.items():
                    log("%s seed %d: %s" % (name, s, key))
                    try:
                        row[key].append(run_peer(key, script, a, s))
                    except Exception as e:  # a peer that cannot run this model is reported, not fatal
                        log("  %s failed: %s" % (key, str(e).splitlines()[0]))
            save_partial(results + [row], bw)
        results.append(row)

    date = datetime.date.today().isoformat()
    keys = ("neurotwin",) + PEER_KEYS
    names_ = " / ".join(["neurotwin"] + [PEER_NAMES[k] for k in PEER_KEYS])
    header = (["model", "neurons", "synapses", "B/syn", "neurotwin s"] + ["%s s" % PEER_NAMES[k] for k in PEER_KEYS]
              + ["× %s" % PEER_NAMES[k] for k in PEER_KEYS]
              + ["rate Hz: %s" % names_, "within 2 %", "peak RSS MB: %s" % names_, "working set MB", "floor GB/s",
                 "floor s", "achieved / floor"])
    lines = ["# neurotwin vs NEST 3.10 vs Brian2 2.11 vs BrainPy 2.8 — %s" % date, "",
             "Machine: %d cores (`nproc`), STREAM copy %.1f GB/s, triad %.1f GB/s. 1 s biological time, dt 0.1 ms; "
             "times are means over seeds of the simulate phase only." % (os.cpu_count(), bw["copy_gbs"], bw["triad_gbs"]),
             "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in results:
        nt = row["neurotwin"]
        t = {k: mean([r["sim_s"] for r in row[k]]) for k in keys}
        rate = {k: mean([r["rate_hz"] for r in row[k]]) for k in keys}
        rsd = {k: sd([r["rate_hz"] for r in row[k]]) for k in keys}
        rss = {k: max([r["rss_mb"] or 0 for r in row[k]], default=None) or None for k in keys}
        fb, events = floor_bytes(nt[0])
        ws = working_set_bytes(nt[0])
        bw_ws = stream_bandwidth(ws)["triad_gbs"] if ws < 256e6 else bw["triad_gbs"]
        floor_s = fb / (bw_ws * 1e9)
        agree = []
        for k in PEER_KEYS:
            if rate[k]:
                agree.append("%s %+.1f %%" % (PEER_NAMES[k], 100 * (rate["neurotwin"] - rate[k]) / rate[k]))
        ok = all(abs(rate["neurotwin"] - rate[k]) / rate[k] <= 0.02 for k in PEER_KEYS if rate[k])
        row.update(mean_sim_s=t, mean_rate_hz=rate, rate_sd_hz=rsd, peak_rss_mb=rss, floor_s=floor_s,
                   working_set_bytes=ws, floor_bandwidth_gbs=bw_ws,
                   floor_bytes=fb, synaptic_events=events, rates_within_2pct=ok if agree else None)
        ratio = lambda k: fmt(t[k] / t["neurotwin"], "%.1f×") if t[k] and t["neurotwin"] else "–"
        cells = [row["model"], "%d" % nt[0]["neurons"], "%d" % nt[0]["synapses"], "%.2f" % nt[0]["bytes_per_synapse"]]
        cells += [fmt(t[k]) for k in keys] + [ratio(k) for k in PEER_KEYS]
        cells.append(" / ".join("%s ± %s" % (fmt(rate[k], "%.2f"), fmt(rsd[k], "%.2f")) if rate[k] else "–"
                                for k in keys))
        cells.append(("yes" if ok else "no") + " (" + ", ".join(agree) + ")" if agree else "no peers")
        cells.append(" / ".join(fmt(rss[k], "%.0f") for k in keys))
        cells += [fmt(ws / 1e6, "%.1f"), fmt(bw_ws, "%.0f"), fmt(floor_s, "%.3f"),
                  fmt(t["neurotwin"] / floor_s if floor_s else None, "%.1f×")]
        lines.append("| " + " | ".join(cells) + " |")
    if not args.no_scaling:
        lines += ["", "Scaling (neurotwin, CUBA, K = 80, 1 s; cost should grow linearly with synaptic events):", "",
                  "| neurons | synapses | spikes | synaptic events | sim s | ns per event | ns per neuron-step |",
                  "|---|---|---|---|---|---|---|"]
        for n in (4000, 16000, 64000):
            MODELS["cuba_scaling"] = ("cuba.toml", 'generator = { kind = "cuba", n = %d, k = 80 }' % n, {}, 1)
            log("scaling: CUBA %d" % n)
            r = run_neurotwin("cuba_scaling", 1)
            events = r["spikes"] * r["synapses"] / r["neurons"]
            lines.append("| %d | %d | %d | %.3g | %.3f | %.2f | %.2f |" % (
                r["neurons"], r["synapses"], r["spikes"], events, r["sim_s"], 1e9 * r["sim_s"] / max(events, 1),
                1e9 * r["sim_s"] / (r["neurons"] * r["steps"])))
            results.append({"model": "cuba_scaling_%d" % n, "neurotwin": [r]})
    lines += ["", "Seeds per model: %s. Floor: bytes neurotwin must stream per simulated second "
              "(benches/peers/compare.py `floor_bytes`) / STREAM triad bandwidth measured over the network's working set "
              "(cache bandwidth for networks that fit in cache, DRAM otherwise)." %
              ", ".join("%s %d" % (r["model"], len(r["seeds"])) for r in results if "seeds" in r)]
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.join(WORK, "results"), exist_ok=True)
    base = os.path.join(WORK, "results", "compare-%s" % date)
    with open(base + ".json", "w") as f:
        json.dump({"date": date, "stream": bw, "results": results}, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(table + "\n")
    log("wrote %s.json and %s.md" % (base, base))


if __name__ == "__main__":
    main()
