#!/usr/bin/env python3
"""Convert the C. elegans neural signal propagation atlas (Randi, Sharma, Dvali & Leifer 2023, Nature
623:406) into `data/celegans/funatlas_pairs.csv`, read by `neurotwin compare` (scenario
`[compare] kind = "propagation-atlas"`).

Source: `funatlas.h5` of the `wormneuroatlas` 0.0.7.3 package (../shared/data/celegans/funatlas.h5; see
/work/shared/data/README.md). For each strain (`wt`, `unc31`) and each measured (responder, stimulated)
pair — a finite `dFF` — one row: strain, stimulated neuron, responding neuron, mean ΔF/F of the response,
its q-value, and the number of observations (`occ1`). Unmeasured pairs (NaN) are left out. The per-pair
kernels and individual responses (HDF5 object references) are not converted.

Needs h5py (scripts/setup.sh puts it in .venv). Deterministic output (rows in strain, stimulated,
responder order; %.6g values).

Usage: .venv/bin/python scripts/convert_funatlas.py [--src FILE] [--out FILE]
"""

import argparse
import math
import os

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_SRC = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "celegans", "funatlas.h5"))
DEFAULT_OUT = os.path.join(REPO, "data", "celegans", "funatlas_pairs.csv")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=DEFAULT_SRC)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    with h5py.File(args.src, "r") as f:
        ids = [x.decode() for x in f["neuron_ids"][:]]
        rows = []
        for strain in ("wt", "unc31"):
            dff = f[strain + "/dFF"][:]
            q = f[strain + "/q"][:]
            occ = f[strain + "/occ1"][:]
            n = len(ids)
            # dFF[i, j]: response of neuron i when neuron j is stimulated.
            for j in range(n):
                for i in range(n):
                    d = dff[i, j]
                    if not math.isfinite(d):
                        continue
                    qq = q[i, j]
                    qs = "%.6g" % qq if math.isfinite(qq) else "nan"
                    rows.append("%s,%s,%s,%.6g,%s,%d" % (strain, ids[j], ids[i], d, qs, int(occ[i, j])))
    tmp = args.out + ".tmp"
    with open(tmp, "w") as out:
        out.write("strain,stimulated,responder,dff,q,n_obs\n")
        out.write("\n".join(rows) + "\n")
    os.replace(tmp, args.out)
    print("wrote %d pairs to %s" % (len(rows), args.out))


if __name__ == "__main__":
    main()
