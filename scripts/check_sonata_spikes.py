#!/usr/bin/env python3
"""Reads a SONATA spike file with h5py and prints a JSON summary (used by the Rust tests).

usage: check_sonata_spikes.py FILE
Checks the layout of the SONATA spike-report spec: /spikes/<population>/{timestamps,node_ids} of equal
length, a `sorting` attribute, timestamps in ms sorted when sorting == by_time.
"""
import json
import sys

import h5py
import numpy as np

path = sys.argv[1]
out = {}
with h5py.File(path, "r") as f:
    pops = list(f["spikes"].keys())
    for p in pops:
        g = f["spikes"][p]
        t = g["timestamps"][()]
        ids = g["node_ids"][()]
        assert t.shape == ids.shape, "timestamps and node_ids differ in length"
        sorting = g.attrs["sorting"]
        # h5py maps HDF5 enums to their integer value; resolve the name through the enum dtype
        enum = h5py.check_enum_dtype(g.attrs.get_id("sorting").dtype)
        name = {v: k for k, v in enum.items()}[int(sorting)] if enum else str(sorting)
        units = g["timestamps"].attrs.get("units")
        if isinstance(units, bytes):
            units = units.decode()
        if name == "by_time":
            assert np.all(np.diff(t) >= 0), "sorting=by_time but timestamps decrease"
        out[p] = {
            "n": int(t.size),
            "sorting": name,
            "units": units,
            "t_first": float(t[0]) if t.size else None,
            "t_last": float(t[-1]) if t.size else None,
            "ids_sum": int(ids.astype(np.int64).sum()),
            "t_sum": float(t.sum()),
            "id_dtype": str(ids.dtype),
            "t_dtype": str(t.dtype),
        }
print(json.dumps(out))
