#!/usr/bin/env python3
"""Builds a small SONATA network with BMTK's NetworkBuilder and writes the numbers the Rust cross-check test
(connectome/tests/integration/bmtk_crosscheck.rs) compares our reader against.

usage: scripts/setup-bmtk.sh && .venv-bmtk/bin/python scripts/make_bmtk_network.py [OUT_DIR]
       (OUT_DIR defaults to connectome/tests/data/bmtk_small)

The network: two internal point-neuron populations `exc` (40 IntFire1 cells, two node types) and `inh`
(12 cells), and a virtual input population `input` (16 spike sources). Six edge populations
(exc→exc, exc→inh, inh→exc, inh→inh, input→exc, input→inh) are made with random connection rules that
return a synapse count (BMTK stores it as `nsyns`); exc→exc and input→exc also carry a per-edge `syn_weight`
(an edge-group dataset, via add_properties) that overrides the edge type's -- BMTK then writes one edge row
per synapse and no `nsyns` -- the others use the edge type's `syn_weight`. `delay` comes from the edge types. Synapse models are named
`instanteneousExc.json` / `instanteneousInh.json` (BMTK's IntFire examples), so the receptor class follows
from the presynaptic population.

bmtk's builder writes nodes, node types, edges and edge types but no circuit config: this script writes
`circuit_config.json`. `expected.json` is computed from BMTK's builder objects (node and edge counts) and
from the saved files read back with h5py/pandas (sums and explicit edges), independently of neurotwin.
"""
import json
import os
import sys

# BMTK orders the types-CSV columns by iterating sets of strings: fix the hash seed so reruns give equal files.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})

import h5py
import numpy as np
import pandas as pd
import bmtk
from bmtk.builder import NetworkBuilder

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "connectome", "tests", "data", "bmtk_small"))
NET = os.path.join(OUT, "network")
os.makedirs(NET, exist_ok=True)
for f in os.listdir(NET):
    os.remove(os.path.join(NET, f))

rng = np.random.RandomState(20261123)


def n_syns(p, lo, hi):
    """Connection rule: with probability p, a random synapse count in [lo, hi]; else no edge (None)."""

    def rule(source, target):
        if source.node_id == target.node_id and source.get("pop_name") == target.get("pop_name"):
            return None
        return int(rng.randint(lo, hi + 1)) if rng.rand() < p else None

    return rule


def weight_rule(scale):
    """Per-edge syn_weight: `scale` times a deterministic function of the two node ids."""

    def rule(source, target):
        return float(scale * (1.0 + 0.01 * ((source.node_id * 7 + target.node_id * 3) % 11)))

    return rule


exc = NetworkBuilder("exc")
exc.add_nodes(N=30, pop_name="Scnn1a", ei="e", location="VisL4", model_type="point_process",
              model_template="nrn:IntFire1", dynamics_params="IntFire1_exc_1.json", model_name="LIF_exc")
exc.add_nodes(N=10, pop_name="Rorb", ei="e", location="VisL5", model_type="point_process",
              model_template="nrn:IntFire1", dynamics_params="IntFire1_exc_2.json", model_name="LIF_exc2")
inh = NetworkBuilder("inh")
inh.add_nodes(N=12, pop_name="PV", ei="i", location="VisL4", model_type="point_process",
              model_template="nrn:IntFire1", dynamics_params="IntFire1_inh_1.json", model_name="LIF_inh")
inp = NetworkBuilder("input")
inp.add_nodes(N=16, pop_name="tON", ei="e", location="LGN", model_type="virtual", model_name="tON")

EXC, INH = "instanteneousExc.json", "instanteneousInh.json"
e2e = exc.add_edges(source=exc.nodes(), target=exc.nodes(), connection_rule=n_syns(0.15, 1, 4),
                    syn_weight=0.002, delay=2.0, dynamics_params=EXC, model_template="exp2syn")
e2e.add_properties("syn_weight", rule=weight_rule(0.003), dtypes=float)
exc.add_edges(source=exc.nodes(), target=inh.nodes(), connection_rule=n_syns(0.3, 1, 3),
              syn_weight=0.05, delay=1.5, dynamics_params=EXC, model_template="exp2syn")
inh.add_edges(source=inh.nodes(), target=exc.nodes(), connection_rule=n_syns(0.4, 2, 6),
              syn_weight=0.15, delay=1.0, dynamics_params=INH, model_template="exp2syn")
inh.add_edges(source=inh.nodes(), target=inh.nodes(), connection_rule=n_syns(0.3, 1, 2),
              syn_weight=0.01, delay=1.0, dynamics_params=INH, model_template="exp2syn")
i2e = inp.add_edges(source=inp.nodes(), target=exc.nodes(), connection_rule=n_syns(0.25, 1, 5),
                    syn_weight=0.0045, delay=2.0, dynamics_params=EXC, model_template="exp2syn")
i2e.add_properties("syn_weight", rule=weight_rule(0.004), dtypes=float)
inp.add_edges(source=inp.nodes(), target=inh.nodes(), connection_rule=n_syns(0.25, 1, 5),
              syn_weight=0.0015, delay=2.0, dynamics_params=EXC, model_template="exp2syn")

builders = [exc, inh, inp]
for b in builders:
    b.build()
    b.save(output_dir=NET, compression="none")

# The circuit config (BMTK's builder writes none).
config = {
    "manifest": {"$NETWORK_DIR": "./network"},
    "components": {"point_neuron_models_dir": "./components/point_neuron_models",
                   "synaptic_models_dir": "./components/synaptic_models"},
    "networks": {
        "nodes": [{"nodes_file": f"$NETWORK_DIR/{b.name}_nodes.h5",
                   "node_types_file": f"$NETWORK_DIR/{b.name}_node_types.csv"} for b in builders],
        "edges": [],
    },
}
edge_files = sorted(f for f in os.listdir(NET) if f.endswith("_edges.h5"))
for f in edge_files:
    stem = f[: -len("_edges.h5")]
    config["networks"]["edges"].append({"edges_file": f"$NETWORK_DIR/{f}",
                                        "edge_types_file": f"$NETWORK_DIR/{stem}_edge_types.csv"})
with open(os.path.join(OUT, "circuit_config.json"), "w") as fh:
    json.dump(config, fh, indent=2)
    fh.write("\n")

# Expected numbers: node counts from the builders, everything else from the saved files (h5py + pandas).
expected = {"bmtk_version": bmtk.__version__, "populations": [], "edge_populations": [], "edges": []}
for b in builders:
    with h5py.File(os.path.join(NET, f"{b.name}_nodes.h5"), "r") as h:
        n_file = int(h["nodes"][b.name]["node_type_id"].shape[0])
    n_builder = len(list(b.nodes()))
    assert n_file == n_builder, (b.name, n_file, n_builder)
    types = pd.read_csv(os.path.join(NET, f"{b.name}_node_types.csv"), sep=" ")
    expected["populations"].append({
        "name": b.name, "count": n_builder,
        "virtual": bool((types["model_type"] == "virtual").all()),
        "model_names": sorted(set(types["model_name"])),
    })
n_builder_edges = int(sum(b.nedges for b in builders))
ei_of = {"exc": "e", "inh": "i", "input": "e"}
explicit_per_pop = 3
for f in edge_files:
    stem = f[: -len("_edges.h5")]
    et = pd.read_csv(os.path.join(NET, f"{stem}_edge_types.csv"), sep=" ").set_index("edge_type_id")
    with h5py.File(os.path.join(NET, f), "r") as h:
        for pop, g in h["edges"].items():
            src = g["source_node_id"][()]
            trg = g["target_node_id"][()]
            spop = g["source_node_id"].attrs["node_population"]
            tpop = g["target_node_id"].attrs["node_population"]
            spop = spop.decode() if isinstance(spop, bytes) else str(spop)
            tpop = tpop.decode() if isinstance(tpop, bytes) else str(tpop)
            tid = g["edge_type_id"][()]
            gid = g["edge_group_id"][()]
            gix = g["edge_group_index"][()]
            n = len(src)
            nsyns = np.ones(n)
            weight = np.array([float(et.loc[t, "syn_weight"]) for t in tid])
            delay = np.array([float(et.loc[t, "delay"]) for t in tid])
            for k in range(n):
                grp = g[str(gid[k])]
                if "nsyns" in grp:
                    nsyns[k] = grp["nsyns"][gix[k]]
                if "syn_weight" in grp:
                    weight[k] = grp["syn_weight"][gix[k]]
                if "delay" in grp:
                    delay[k] = grp["delay"][gix[k]]
            receptor = ["inh" if "inh" in str(et.loc[t, "dynamics_params"]).lower() else "exc" for t in tid]
            # Independent of the file's synapse model names: the receptor sign follows the source population.
            assert all(r == ("inh" if ei_of[spop] == "i" else "exc") for r in receptor), pop
            expected["edge_populations"].append({
                "name": pop, "file": f, "source": spop, "target": tpop, "edges": n,
                "nsyns": int(nsyns.sum()), "weight_times_nsyns": float((weight * nsyns).sum()),
                "delay_sum": float(delay.sum()),
                "per_edge_weight": bool("syn_weight" in g["0"]),
            })
            for k in np.linspace(0, n - 1, explicit_per_pop).astype(int) if n else []:
                expected["edges"].append({
                    "population": pop, "index": int(k), "source_population": spop, "source": int(src[k]),
                    "target_population": tpop, "target": int(trg[k]), "nsyns": int(nsyns[k]),
                    "syn_weight": float(weight[k]), "delay": float(delay[k]), "receptor": receptor[k],
                    "edge_type_id": int(tid[k]),
                })
expected["total_edges"] = int(sum(p["edges"] for p in expected["edge_populations"]))
expected["total_nsyns"] = int(sum(p["nsyns"] for p in expected["edge_populations"]))
# BMTK's own count: NetworkBuilder.nedges is the number of synapses (connection-rule counts) it built.
assert expected["total_nsyns"] == n_builder_edges, (expected["total_nsyns"], n_builder_edges)
with open(os.path.join(OUT, "expected.json"), "w") as fh:
    json.dump(expected, fh, indent=1)
    fh.write("\n")
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
print(f"bmtk {bmtk.__version__}: wrote {OUT} ({expected['total_edges']} edges, {expected['total_nsyns']} synapses, "
      f"{size} bytes)")
