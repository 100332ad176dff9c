#!/usr/bin/env python3
"""Convert the C. elegans hermaphrodite connectome (Cook et al. 2019) into the small CSV files bundled in
`data/celegans/` (`neurons.csv`, `connections.csv`), read by neurotwin's generic CSV importer.

Sources (all under ../shared/data/celegans/ by default; see /work/shared/data/README.md):
  cook2019_herm.json              cect cache of Cook et al. 2019: 473 cells, Generic_CS / Generic_GJ matrices
  openworm_unified.json           cect OpenWormUnifiedReader: chemical synapses split by transmitter
  journal.pcbi.1007974.s003.xlsx  Fenyves et al. 2020 S3 table: neuron types, dominant transmitters,
                                  per-connection receptor matches (sign prediction)
  aconnectome_ids_ganglia.json    wormneuroatlas: ganglion of each neuron
  anatlas_neuron_positions.txt    wormneuroatlas: 3D neuron positions

Python 3 standard library only (the xlsx is read with zipfile + ElementTree). Deterministic output.

Usage: python3 scripts/convert_celegans.py [--src DIR] [--out DIR]
"""

import argparse
import collections
import csv
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_SRC = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "celegans"))
DEFAULT_OUT = os.path.join(REPO, "data", "celegans")

# openworm_unified connection-type keys -> short transmitter names (as `transmitter::canonical` knows them).
UNIFIED_NT = {"Acetylcholine": "ACh", "Glutamate": "Glu", "GABA": "GABA", "Betaine": "Betaine"}
# Last-resort tie-break between co-transmitters with equal synapse counts (after Fenyves' dominant NT).
NT_ORDER = ["ACh", "Glu", "GABA", "Betaine"]


# ---------------------------------------------------------------------------------------------- xlsx
XNS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RNS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _col(ref):
    n = 0
    for ch in re.match(r"[A-Z]+", ref).group(0):
        n = n * 26 + ord(ch) - 64
    return n - 1


def read_xlsx(path):
    """Returns {sheet name: [row dict {column index: text}]} (cached values, no formulas)."""
    z = zipfile.ZipFile(path)
    shared = []
    if "xl/sharedStrings.xml" in z.namelist():
        for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall(XNS + "si"):
            shared.append("".join(t.text or "" for t in si.iter(XNS + "t")))
    rels = {r.get("Id"): r.get("Target") for r in ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))}
    out = {}
    for s in ET.fromstring(z.read("xl/workbook.xml")).find(XNS + "sheets"):
        target = rels[s.get(RNS + "id")].lstrip("/")
        target = target if target.startswith("xl/") else "xl/" + target
        rows = []
        for row in ET.fromstring(z.read(target)).iter(XNS + "row"):
            r = {}
            for c in row.findall(XNS + "c"):
                v = c.find(XNS + "v")
                if c.get("t") == "s" and v is not None:
                    r[_col(c.get("r"))] = shared[int(v.text)]
                elif c.get("t") == "inlineStr":
                    r[_col(c.get("r"))] = "".join(t.text or "" for t in c.iter(XNS + "t"))
                elif v is not None:
                    r[_col(c.get("r"))] = v.text
            rows.append(r)
        out[s.get("name").strip()] = rows
    return out


# ---------------------------------------------------------------------------------------------- helpers
def fenyves_name(name):
    """Fenyves et al. zero-pad motor neuron numbers (VB01, DD01); Cook 2019 does not (VB1, DD1)."""
    m = re.match(r"^(AS|DA|DB|DD|VA|VB|VC|VD)0(\d)$", name)
    return m.group(1) + m.group(2) if m else name


def natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def non_neuron_type(name):
    """Cell type of the non-neuronal cells (end organs) of Cook et al. 2019, from their naming convention."""
    if re.match(r"^M[DV][LR]\d\d$", name):
        return "muscle"  # body-wall muscles
    if re.match(r"^(pm\d|um\d|vm\d|mu_)", name):
        return "muscle"  # pharyngeal, uterine, vulval, anal/intestinal/sphincter muscles
    if name.startswith("CEPsh"):
        return "glia"  # CEP sheath glia
    return "other"  # GLR cells, marginal/epithelial/gland cells, basement membrane, hypodermis, intestine, ...


def neuron_cell_type(fenyves_type):
    """One class per neuron from the Fenyves et al. 2020 type (some neurons have several): pharyngeal
    neurons -> `pharyngeal`; otherwise motor > sensory > interneuron; `Unknown` -> empty."""
    t = fenyves_type.lower()
    if "pharyngeal" in t:
        return "pharyngeal"
    for key, label in (("motor", "motor"), ("sensory", "sensory"), ("interneuron", "interneuron")):
        if key in t:
            return label
    return ""


def fmt(x):
    return ("%.4f" % x).rstrip("0").rstrip(".") if x is not None else ""


# ---------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=DEFAULT_SRC, help="folder with the shared C. elegans datasets")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (data/celegans)")
    args = ap.parse_args()
    src = lambda f: os.path.join(args.src, f)  # noqa: E731

    cook = json.load(open(src("cook2019_herm.json")))
    names = cook["nodes"]
    n = len(names)
    cidx = {x: i for i, x in enumerate(names)}
    cs = cook["connections"]["Generic_CS"]
    gj = cook["connections"]["Generic_GJ"]
    asym = [(names[i], names[j]) for i in range(n) for j in range(i + 1, n) if gj[i][j] != gj[j][i]]
    if asym:
        sys.exit("Generic_GJ is not symmetric (%d pairs, e.g. %s): decide how to emit junctions" % (len(asym), asym[:3]))

    # Per-connection transmitters from openworm_unified (its own node order).
    uni = json.load(open(src("openworm_unified.json")))
    unames = uni["nodes"]
    uidx = {x: i for i, x in enumerate(unames)}
    conn_nt = {}  # (pre, post) -> {nt: count}
    for key, nt in UNIFIED_NT.items():
        m = uni["connections"][key]
        for i, a in enumerate(unames):
            row = m[i]
            for j, v in enumerate(row):
                if v > 0:
                    conn_nt.setdefault((a, unames[j]), {})[nt] = v
    assert set(unames) == set(names), "openworm_unified and Cook 2019 name different cells"
    # openworm_unified is Cook 2019 with transmitter labels: every count it gives equals Cook's count.
    for (a, b), d in conn_nt.items():
        assert all(v == cs[cidx[a]][cidx[b]] for v in d.values()), "unified count differs for %s -> %s" % (a, b)
    ugj = uni["connections"]["Generic_GJ"]
    assert all(ugj[uidx[a]][uidx[b]] == gj[cidx[a]][cidx[b]] for a in names for b in names), "GJ differ"

    # Fenyves et al. 2020 S3 table.
    xl = read_xlsx(src("journal.pcbi.1007974.s003.xlsx"))
    fen_nt = {}  # neuron -> (dominant, alternative)
    for r in xl["1. NT expr"][1:]:
        if r.get(0):
            fen_nt[fenyves_name(r[0])] = (r.get(1) or "", r.get(2) or "")
    fen_type = {}
    for r in xl["4. Receptor type expression"][2:]:
        if r.get(0) and r.get(7):
            fen_type[fenyves_name(r[0])] = r[7].strip()
    # Sheet 5 columns: 0 source, 1 primary NT, 2 secondary NT, 3 target, 4 edge weight, 5 edge type,
    # 6/7 Glu receptor match +/-, 8/9 ACh +/-, 10/11 GABA +/-, 16 predicted polarity (+, -, complex, no pred).
    sheet5 = xl["5. Sign prediction"]
    assert sheet5[1].get(6) == "Glu" and sheet5[1].get(7) == "Glu" and sheet5[0].get(6) == "+" and sheet5[0].get(7) == "-"
    fen_glu = {}  # (pre, post) -> (glu_plus, glu_minus)
    for r in sheet5[2:]:
        if r.get(0) and r.get(3):
            fen_glu[(fenyves_name(r[0]), fenyves_name(r[3]))] = (r.get(6) == "1", r.get(7) == "1")
    unknown = sorted({x for k in fen_glu for x in k if x not in cidx} | {x for x in fen_type if x not in cidx})
    assert not unknown, "Fenyves names not in Cook 2019: %s" % unknown

    # Ganglia (wormneuroatlas). Its list names RMHL twice and RMHR never: the second entry is RMHR.
    gang = json.load(open(src("aconnectome_ids_ganglia.json")))
    region = {}
    for g, members in gang.items():
        if g in ("head", "pharynx"):
            continue
        for x in members:
            if x in region and x == "RMHL":
                region["RMHR"] = g
            region[x] = g

    # Positions (wormneuroatlas anatlas): first line lists names in row order (PVCL appears twice, same row).
    lines = open(src("anatlas_neuron_positions.txt")).read().split("\n")
    pnames = lines[0].lstrip("#").split()
    prow = [list(map(float, ln.split())) for ln in lines[1:] if ln.strip()]
    assert len(prow) == len(pnames)
    pos = {}
    for x, p in zip(pnames, prow):
        pos.setdefault(x, p)

    # Neuron transmitter: majority (by synapse count) of the unified per-connection transmitters of its
    # outgoing chemical synapses; ties (co-transmitting neurons: unified repeats the full count under each
    # transmitter) go to Fenyves' dominant NT, then NT_ORDER. Without unified annotation: Fenyves' dominant NT.
    def majority(votes, name):
        if not votes:
            return ""
        best = max(votes.values())
        tied = [nt for nt, v in votes.items() if v == best]
        if len(tied) == 1:
            return tied[0]
        dom = fen_nt.get(name, ("", ""))[0]
        if dom in tied:
            return dom
        return min(tied, key=NT_ORDER.index)

    out_votes = collections.defaultdict(collections.Counter)
    for (a, b), d in conn_nt.items():
        for nt, v in d.items():
            out_votes[a][nt] += v
    order = sorted(names, key=natural_key)
    nid = {x: k + 1 for k, x in enumerate(order)}
    neurons = []
    stats = collections.Counter()
    for x in order:
        is_neuron = x in fen_type
        ctype = neuron_cell_type(fen_type[x]) if is_neuron else non_neuron_type(x)
        nt = majority(out_votes.get(x), x)
        nt_src = "openworm_unified" if nt else ""
        if not nt and is_neuron and fen_nt.get(x, ("", ""))[0]:
            nt, nt_src = fen_nt[x][0], "fenyves2020"
        all_nt = "|".join(sorted(out_votes.get(x, {}), key=NT_ORDER.index))
        p = pos.get(x)
        neurons.append(
            dict(
                id=nid[x],
                name=x,
                cell_type=ctype,
                transmitter=nt,
                region=region.get(x, ""),
                x=fmt(p[0]) if p else "",
                y=fmt(p[1]) if p else "",
                z=fmt(p[2]) if p else "",
                fenyves_type=fen_type.get(x, ""),
                transmitter_source=nt_src,
                all_transmitters=all_nt,
            )
        )
        stats["neurons" if is_neuron else "non_neurons"] += 1
        stats["cell_type:" + (ctype or "<empty>")] += 1
        stats["transmitter:" + (nt or "<none>") + (" (fenyves)" if nt_src == "fenyves2020" else "")] += 1 if is_neuron else 0
        stats["with_position"] += 1 if p else 0
        stats["with_region"] += 1 if x in region else 0
        if len(out_votes.get(x, {})) > 1:
            stats["cotransmitting"] += 1
    neuron_nt = {r["name"]: r["transmitter"] for r in neurons}

    rows = []
    for a in order:
        i = cidx[a]
        for b in order:
            j = cidx[b]
            v = cs[i][j]
            if v > 0:
                votes = conn_nt.get((a, b), {})
                nt = ""
                if votes:
                    best = max(votes.values())
                    tied = [t for t, c in votes.items() if c == best]
                    nt = neuron_nt[a] if neuron_nt[a] in tied else min(tied, key=NT_ORDER.index)
                receptor = ""
                if (nt or neuron_nt[a]) == "Glu":
                    stats["glu_connections"] += 1
                    stats["glu_synapses"] += int(v)
                    g = fen_glu.get((a, b))
                    if g is None:
                        stats["glu_not_in_fenyves"] += 1
                    elif g == (True, False):
                        receptor = "Glu_exc"
                    elif g == (False, True):
                        receptor = "Glu_inh"
                    else:
                        stats["glu_complex" if g == (True, True) else "glu_no_prediction"] += 1
                    if receptor:
                        stats["receptor:" + receptor] += 1
                        stats["receptor_synapses:" + receptor] += int(v)
                rows.append((a, b, "chemical", int(v), nt, receptor))
                stats["chemical_connections"] += 1
                stats["chemical_synapses"] += int(v)
                stats["chemical_with_transmitter"] += 1 if nt else 0
    # Gap junctions: Generic_GJ is symmetric, so each undirected junction is written once (pre <= post in
    # the neuron order); diagonal entries (junctions of a cell with itself) are kept as given.
    for ka, a in enumerate(order):
        i = cidx[a]
        for b in order[ka:]:
            v = gj[i][cidx[b]]
            if v > 0:
                rows.append((a, b, "electrical", int(v), "", ""))
                stats["electrical_connections"] += 1
                stats["gap_junctions"] += int(v)
                stats["electrical_self"] += 1 if a == b else 0

    os.makedirs(args.out, exist_ok=True)
    cols = ["id", "name", "cell_type", "transmitter", "region", "x", "y", "z", "fenyves_type", "transmitter_source", "all_transmitters"]
    with open(os.path.join(args.out, "neurons.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(neurons)
    with open(os.path.join(args.out, "connections.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["pre_name", "post_name", "type", "count", "transmitter", "receptor"])
        w.writerows(rows)
    for k in sorted(stats):
        print("%-40s %d" % (k, stats[k]))


if __name__ == "__main__":
    main()
