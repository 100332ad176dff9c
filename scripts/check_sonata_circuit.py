#!/usr/bin/env python3
"""Checks a SONATA circuit with h5py, independently of neurotwin's reader, and prints a JSON summary (used by
the Rust tests on circuits written by neurotwin's SONATA export).

usage: check_sonata_circuit.py CIRCUIT_CONFIG_JSON

Structural rules (SONATA developer guide, github.com/AllenInstitute/sonata docs/SONATA_DEVELOPER_GUIDE.md):
  - every HDF5 file has the root attributes magic = 0x0A7A and version = [0, 1] (uint32);
  - nodes: node_id, node_type_id, node_group_id, node_group_index are unsigned integers of equal length,
    node_id = 0..n, every node_group_index is a row of its group and every node_type_id is a row of the node
    types CSV;
  - edges: source_node_id / target_node_id are uint64 with a `node_population` string attribute naming a node
    population of the circuit and ids inside it; edge_type_id / edge_group_id / edge_group_index unsigned
    integers; each group's datasets have one row per edge of the group and the group indices of its edges are
    exactly 0..rows; syn_weight and delay are float64, nsyns uint32 or float32; edges sorted by target then
    source; every edge_type_id is a row of the edge types CSV;
  - indices/target_to_source and indices/source_to_target: node_id_to_ranges is uint64 [n_nodes, 2],
    range_to_edge_id uint64 [n_ranges, 2], and the ranges of each node cover exactly the edges of that node.
Exits non-zero with the failed rule on the first violation.
"""
import json
import os
import shlex
import sys

import h5py
import numpy as np


def fail(msg):
    print(f"check_sonata_circuit: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def types_csv(path, id_col):
    rows = {}
    with open(path) as fh:
        lines = [l for l in fh.read().splitlines() if l.strip()]
    header = shlex.split(lines[0])
    check(id_col in header, f"{path}: no {id_col} column")
    for k, line in enumerate(lines[1:], start=2):
        f = shlex.split(line)  # the SONATA dialect: spaces, "quoted fields"
        check(len(f) == len(header), f"{path}:{k}: {len(f)} fields, header has {len(header)}")
        row = dict(zip(header, f))
        rows[int(row[id_col])] = row
    return header, rows


def root_attrs(f, path):
    check(int(f.attrs.get("magic", -1)) == 0x0A7A, f"{path}: root attribute magic is not 0x0A7A")
    v = np.asarray(f.attrs.get("version", []))
    check(v.dtype == np.uint32 and list(v) == [0, 1], f"{path}: root attribute version is not uint32 [0, 1]")


def unsigned(ds, what):
    check(ds.dtype.kind == "u", f"{what}: dtype {ds.dtype} is not an unsigned integer")
    return ds[()]


def attr_str(ds, name, what):
    check(name in ds.attrs, f"{what}: no `{name}` attribute")
    v = ds.attrs[name]
    return v.decode() if isinstance(v, bytes) else str(v)


def index_ok(g, what, ids, n_nodes):
    check("node_id_to_ranges" in g and "range_to_edge_id" in g, f"{what}: node_id_to_ranges / range_to_edge_id missing")
    n2r, r2e = g["node_id_to_ranges"], g["range_to_edge_id"]
    for ds, nm in [(n2r, "node_id_to_ranges"), (r2e, "range_to_edge_id")]:
        check(ds.dtype == np.uint64 and ds.ndim == 2 and ds.shape[1] == 2, f"{what}/{nm}: must be uint64 [n, 2]")
    n2r, r2e = n2r[()], r2e[()]
    check(n2r.shape[0] == n_nodes, f"{what}/node_id_to_ranges: {n2r.shape[0]} rows for {n_nodes} nodes")
    covered = np.zeros(len(ids), dtype=np.int64)
    for node in range(n_nodes):
        a, b = n2r[node]
        check(a <= b <= len(r2e), f"{what}: node {node} has range rows [{a}, {b}) outside range_to_edge_id")
        for s, e in r2e[a:b]:
            check(s < e <= len(ids), f"{what}: empty or out-of-bounds edge range [{s}, {e})")
            check(np.all(ids[s:e] == node), f"{what}: edges [{s}, {e}) listed for node {node} belong to other nodes")
            covered[s:e] += 1
    check(np.all(covered == 1), f"{what}: the ranges do not cover every edge exactly once")


def main():
    cfg_path = sys.argv[1]
    base = os.path.dirname(os.path.abspath(cfg_path))
    cfg = json.load(open(cfg_path))
    manifest = cfg.get("manifest", {})

    def resolve(p):
        for _ in range(8):
            for k, v in manifest.items():
                p = p.replace(k, v)
        return p if os.path.isabs(p) else os.path.join(base, p)

    out = {"nodes": {}, "edges": {}}
    sizes = {}
    for entry in cfg["networks"]["nodes"]:
        path = resolve(entry["nodes_file"])
        _, types = types_csv(resolve(entry["node_types_file"]), "node_type_id")
        with h5py.File(path, "r") as f:
            root_attrs(f, path)
            for pop, g in f["nodes"].items():
                what = f"{path}:/nodes/{pop}"
                cols = {c: unsigned(g[c], f"{what}/{c}") for c in ["node_id", "node_type_id", "node_group_id", "node_group_index"]}
                n = len(cols["node_id"])
                check(all(len(v) == n for v in cols.values()), f"{what}: datasets differ in length")
                check(np.array_equal(cols["node_id"], np.arange(n)), f"{what}/node_id is not 0..{n}")
                for gid in np.unique(cols["node_group_id"]):
                    grp = g[str(gid)]
                    idx = cols["node_group_index"][cols["node_group_id"] == gid]
                    for name, ds in grp.items():
                        if isinstance(ds, h5py.Dataset):
                            check(ds.shape[0] == len(idx), f"{what}/{gid}/{name}: {ds.shape[0]} rows for {len(idx)} nodes")
                    check(np.array_equal(np.sort(idx), np.arange(len(idx))), f"{what}: group {gid} indices are not 0..rows")
                missing = set(cols["node_type_id"].tolist()) - set(types)
                check(not missing, f"{what}: node types {sorted(missing)} not in the node types CSV")
                model_types = sorted({types[t].get("model_type", "NULL") for t in cols["node_type_id"].tolist()})
                sizes[pop] = n
                out["nodes"][pop] = {"count": n, "model_types": model_types, "node_types": len(set(cols["node_type_id"].tolist()))}
    for entry in cfg["networks"].get("edges", []):
        path = resolve(entry["edges_file"])
        header, types = types_csv(resolve(entry["edge_types_file"]), "edge_type_id")
        with h5py.File(path, "r") as f:
            root_attrs(f, path)
            for pop, g in f["edges"].items():
                what = f"{path}:/edges/{pop}"
                src, trg = g["source_node_id"], g["target_node_id"]
                check(src.dtype == np.uint64 and trg.dtype == np.uint64, f"{what}: source/target_node_id must be uint64")
                sp = attr_str(src, "node_population", f"{what}/source_node_id")
                tp = attr_str(trg, "node_population", f"{what}/target_node_id")
                check(sp in sizes and tp in sizes, f"{what}: node populations {sp}/{tp} not in the circuit")
                s, t = src[()], trg[()]
                n = len(s)
                check(len(t) == n, f"{what}: source and target lengths differ")
                check(n == 0 or (s.max() < sizes[sp] and t.max() < sizes[tp]), f"{what}: node id out of range")
                et = unsigned(g["edge_type_id"], f"{what}/edge_type_id")
                gid = unsigned(g["edge_group_id"], f"{what}/edge_group_id")
                gix = unsigned(g["edge_group_index"], f"{what}/edge_group_index")
                check(len(et) == n and len(gid) == n and len(gix) == n, f"{what}: edge datasets differ in length")
                order = np.lexsort((s, t))
                check(np.array_equal(order, np.arange(n)), f"{what}: edges are not sorted by target then source")
                missing = set(et.tolist()) - set(types)
                check(not missing, f"{what}: edge types {sorted(missing)} not in the edge types CSV")
                nsyns_total = 0.0
                for g_id in np.unique(gid):
                    grp = g[str(g_id)]
                    sel = gid == g_id
                    idx = gix[sel]
                    check(np.array_equal(np.sort(idx), np.arange(len(idx))), f"{what}: group {g_id} indices are not 0..rows")
                    for name, ds in grp.items():
                        check(ds.shape == (len(idx),), f"{what}/{g_id}/{name}: {ds.shape} rows for {len(idx)} edges")
                        if name in ("syn_weight", "delay"):
                            check(ds.dtype == np.float64, f"{what}/{g_id}/{name}: dtype {ds.dtype}, expected float64")
                        if name == "nsyns":
                            check(ds.dtype in (np.uint32, np.float32), f"{what}/{g_id}/nsyns: dtype {ds.dtype}")
                    nsyns_total += float(grp["nsyns"][()].sum()) if "nsyns" in grp else float(len(idx))
                check("indices" in g, f"{what}: no indices group")
                index_ok(g["indices"]["target_to_source"], f"{what}/indices/target_to_source", t, sizes[tp])
                index_ok(g["indices"]["source_to_target"], f"{what}/indices/source_to_target", s, sizes[sp])
                gap = "is_gap_junction" in header and all(types[x].get("is_gap_junction") == "True" for x in set(et.tolist()))
                models = sorted({types[x].get("dynamics_params", "NULL") for x in set(et.tolist())})
                out["edges"][pop] = {"source": sp, "target": tp, "edges": n, "nsyns": nsyns_total,
                                     "gap_junction": gap, "dynamics_params": models}
    print(json.dumps(out))


main()
