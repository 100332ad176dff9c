#!/usr/bin/env python3
"""Writes the small calcium-imaging test files of the `neurotwin-imaging` crate into data/imaging/.

  data/imaging/ophys_small.nwb   NWB 2.x file written with pynwb (optical physiology)
  data/imaging/traces_small.h5   neurotwin's plain HDF5 layout (h5py)

Both hold analytic signals so that the Rust tests can check exact values:

  ROI i (i = 0..4), frame k (k = 0..199), t_k = k / 10 Hz (seconds):
    dF/F[i, k]         = AMP[i] * sin(2 pi FREQ[i] t_k) + OFFSET[i]
    fluorescence[i, k] = 100 + 10 * i + cos(2 pi FREQ[i] t_k)

The NWB file has:
  processing/ophys/ImageSegmentation/PlaneSegmentation   5 ROIs (ids 10..14, image masks 8x8), `neuron_name`
                                                         column NAMES (the last ROI is unlabelled: "")
  processing/ophys/DfOverF/dff                           RoiResponseSeries, frames x ROIs, starting_time 0.0
                                                         with rate 10.0 Hz
  processing/ophys/Fluorescence/raw                      RoiResponseSeries, frames x ROIs, explicit timestamps
                                                         t_k + 5.0 s (to test the timestamps path)

The plain file has traces (neurons x frames, float64), timestamps (s), labels (UTF-8 strings), attributes
rate_hz = 10.0, kind = "dff", indicator = "GCaMP6s".

Usage: python3 -m venv .venv-nwb && .venv-nwb/bin/pip install pynwb h5py numpy
       .venv-nwb/bin/python scripts/make_test_nwb.py
"""

from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
from pynwb import NWBHDF5IO, NWBFile
from pynwb.device import Device
from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel, RoiResponseSeries

OUT = Path(__file__).resolve().parent.parent / "data" / "imaging"

N_FRAMES = 200
RATE_HZ = 10.0
NAMES = ["AVAL", "AVAR", "AIYL", "RIML", ""]
FREQ = [0.5, 0.25, 1.0, 0.1, 2.0]  # Hz
AMP = [1.0, 2.0, 0.5, 1.5, 0.25]
OFFSET = [0.0, 0.5, -0.25, 1.0, 0.0]


def signals():
    t = np.arange(N_FRAMES) / RATE_HZ
    dff = np.array([AMP[i] * np.sin(2 * np.pi * FREQ[i] * t) + OFFSET[i] for i in range(len(NAMES))])
    fluo = np.array([100.0 + 10.0 * i + np.cos(2 * np.pi * FREQ[i] * t) for i in range(len(NAMES))])
    return t, dff, fluo  # dff, fluo: ROIs x frames


def write_nwb(path, t, dff, fluo):
    nwb = NWBFile(
        session_description="neurotwin-imaging test file: analytic sines",
        identifier="neurotwin-imaging-ophys-small",
        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
    )
    device = Device(name="microscope", description="synthetic")
    nwb.add_device(device)
    channel = OpticalChannel(name="green", description="GCaMP emission", emission_lambda=510.0)
    plane = nwb.create_imaging_plane(
        name="plane0",
        optical_channel=channel,
        description="synthetic plane",
        device=device,
        excitation_lambda=488.0,
        imaging_rate=RATE_HZ,
        indicator="GCaMP6s",
        location="head",
    )
    ophys = nwb.create_processing_module(name="ophys", description="optical physiology")
    seg = ImageSegmentation()
    ophys.add(seg)
    ps = seg.create_plane_segmentation(name="PlaneSegmentation", description="ROIs", imaging_plane=plane)
    ps.add_column(name="neuron_name", description="NeuroPAL identity; empty = unlabelled")
    for i, name in enumerate(NAMES):
        mask = np.zeros((8, 8), dtype=np.float32)
        mask[i, i] = 1.0
        ps.add_roi(id=10 + i, image_mask=mask, neuron_name=name)
    region = ps.create_roi_table_region(region=list(range(len(NAMES))), description="all ROIs")

    dff_series = RoiResponseSeries(
        name="dff", data=dff.T.copy(), rois=region, unit="n.a.", starting_time=0.0, rate=RATE_HZ
    )
    ophys.add(DfOverF(roi_response_series=dff_series))
    region2 = ps.create_roi_table_region(region=list(range(len(NAMES))), description="all ROIs")
    raw = RoiResponseSeries(name="raw", data=fluo.T.copy(), rois=region2, unit="a.u.", timestamps=t + 5.0)
    ophys.add(Fluorescence(roi_response_series=raw))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb, cache_spec=False)  # no cached schema: keeps the file small


def write_plain(path, t, dff):
    with h5py.File(path, "w") as f:
        f.create_dataset("traces", data=dff)  # neurons x frames
        f.create_dataset("timestamps", data=t)
        f.create_dataset("labels", data=NAMES, dtype=h5py.string_dtype("utf-8"))
        f.attrs["rate_hz"] = RATE_HZ
        f.attrs["kind"] = "dff"
        f.attrs["indicator"] = "GCaMP6s"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    t, dff, fluo = signals()
    write_nwb(OUT / "ophys_small.nwb", t, dff, fluo)
    write_plain(OUT / "traces_small.h5", t, dff)
    for name in ("ophys_small.nwb", "traces_small.h5"):
        print(f"{OUT / name}: {(OUT / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
