#!/usr/bin/env python3
"""Checks an NWB file written by neurotwin (imaging/src/nwb_write.rs) with pynwb and nwbinspector.

Usage: .venv-nwb/bin/python scripts/check_nwb.py FILE.nwb EXPECTED.json
       (.venv-nwb is made by scripts/setup-nwb-tools.sh)

1. pynwb schema validation (pynwb.validate) must report no error.
2. The file is read with NWBHDF5IO; its content is compared with EXPECTED.json, written independently by the
   test that wrote the file:

     {
       "units": {"names": [...], "spike_times_s": [[...], ...], "resolution_s": 0.0001},   # optional
       "dff": [                                                                                # optional
         {"name": "dff", "roi_names": [...], "rate_hz": 10.0, "start_s": 0.0, "indicator": "GCaMP6s",
          "shape": [frames, rois],                 # optional
          "data": [[...], ...]}                    # optional, frames x ROIs
       ],
       "atol": 0.0                                  # absolute tolerance for values (default 0: exact)
     }

   Every series in "dff" must be in /processing/ophys/DfOverF, with data frames x ROIs, rate, starting time,
   and rois pointing at PlaneSegmentation rows whose neuron_name column lists roi_names in order; the imaging
   plane's indicator must match.
3. nwbinspector (inspect_nwbfile, all checks, default importance) runs on the file; every message is printed,
   and any message of importance ERROR or CRITICAL is a failure.

Exit status 0 when everything passes, 1 otherwise (each failure is printed on a line starting "FAIL").
"""

import json
import sys
import warnings

import numpy as np


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, expected_path = argv[1], argv[2]
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    atol = float(expected.get("atol", 0.0))
    failures = []

    def fail(msg):
        failures.append(msg)
        print(f"FAIL {msg}")

    def close(a, b):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol))

    import pynwb
    from pynwb import NWBHDF5IO

    # 1. schema validation
    result = pynwb.validate(path=path)
    errors = result[0] if isinstance(result, tuple) else result
    print(f"pynwb {pynwb.__version__} validate: {len(errors)} error(s)")
    for e in errors:
        fail(f"pynwb validation: {e}")

    # 2. read back and compare
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with NWBHDF5IO(path, "r") as io:
            nwb = io.read()
            print(f"read: nwb_version {io.nwb_version if hasattr(io, 'nwb_version') else '?'}, "
                  f"identifier {nwb.identifier!r}, session_start_time {nwb.session_start_time}")
            units = expected.get("units")
            if units is not None:
                check_units(nwb, units, fail, close)
            for s in expected.get("dff", []):
                check_dff(nwb, s, fail, close)
    for w in caught:
        print(f"pynwb/hdmf warning: {w.category.__name__}: {w.message}")

    # 3. nwbinspector
    import nwbinspector
    from nwbinspector import inspect_nwbfile

    messages = [m for m in inspect_nwbfile(nwbfile_path=path) if m is not None]
    print(f"nwbinspector {nwbinspector.__version__ if hasattr(nwbinspector, '__version__') else ''}: "
          f"{len(messages)} message(s)")
    for m in messages:
        line = f"  {m.importance.name} {m.check_function_name} {m.location}: {m.message}"
        print(line)
        if m.importance.name in ("ERROR", "CRITICAL"):
            fail(f"nwbinspector {m.importance.name}: {m.check_function_name} at {m.location}: {m.message}")

    if failures:
        print(f"check_nwb: {len(failures)} failure(s) in {path}")
        return 1
    print(f"check_nwb: OK {path}")
    return 0


def check_units(nwb, units, fail, close):
    if nwb.units is None:
        fail("no units table")
        return
    table = nwb.units
    names = list(units["names"])
    if len(table) != len(names):
        fail(f"units: {len(table)} rows, expected {len(names)}")
        return
    got_names = [str(x) for x in table["neuron_name"][:]]
    if got_names != names:
        fail(f"units.neuron_name = {got_names[:5]}..., expected {names[:5]}...")
    for i, want in enumerate(units["spike_times_s"]):
        got = table["spike_times"][i]
        if not close(got, want):
            fail(f"units.spike_times[{i}] ({names[i]}) = {list(got)[:5]}..., expected {list(want)[:5]}...")
    res = units.get("resolution_s")
    if res is not None and not (table.resolution is not None and abs(table.resolution - res) <= 1e-15):
        fail(f"units resolution = {table.resolution}, expected {res}")
    total = sum(len(t) for t in units["spike_times_s"])
    print(f"units: {len(names)} units, {total} spikes, resolution {table.resolution} s")


def check_dff(nwb, s, fail, close):
    name = s["name"]
    try:
        series = nwb.processing["ophys"]["DfOverF"][name]
    except KeyError as e:
        fail(f"no /processing/ophys/DfOverF/{name} ({e})")
        return
    data = np.asarray(series.data[:])
    want_rois = list(s["roi_names"])
    shape = tuple(s.get("shape", (data.shape[0], len(want_rois))))
    if data.shape != shape or data.shape[1] != len(want_rois):
        fail(f"DfOverF/{name}: data shape {data.shape}, expected {shape} (frames x {len(want_rois)} ROIs)")
    if "data" in s and not close(data, s["data"]):
        diff = np.max(np.abs(data - np.asarray(s["data"], dtype=float))) if data.shape == np.shape(s["data"]) else "shape"
        fail(f"DfOverF/{name}: values differ from the expected ones (max |diff| {diff})")
    if not np.all(np.isfinite(data)):
        fail(f"DfOverF/{name}: non-finite values")
    if series.rate is None or abs(series.rate - s["rate_hz"]) > 1e-12:
        fail(f"DfOverF/{name}: rate {series.rate}, expected {s['rate_hz']} Hz")
    if series.starting_time is None or abs(series.starting_time - s.get("start_s", 0.0)) > 1e-12:
        fail(f"DfOverF/{name}: starting_time {series.starting_time}, expected {s.get('start_s', 0.0)} s")
    table = series.rois.table
    rows = list(series.rois.data[:])
    names = [str(table["neuron_name"][r]) for r in rows]
    if names != want_rois:
        fail(f"DfOverF/{name}: ROI names {names[:5]}..., expected {want_rois[:5]}...")
    indicator = table.imaging_plane.indicator
    if indicator != s["indicator"]:
        fail(f"DfOverF/{name}: indicator {indicator!r}, expected {s['indicator']!r}")
    print(f"DfOverF/{name}: {data.shape[0]} frames x {data.shape[1]} ROIs at {series.rate} Hz, "
          f"indicator {indicator}, ΔF/F range [{data.min():.4g}, {data.max():.4g}]")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
