"""compare, fit, segment and to_nwb from Python against independent truth: the CLI's own output files for the same
arguments, a phantom whose cells are known, a run compared with its own simulated calcium, and the CLI's messages."""

import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

import neurotwin

# The bundled worm driven hard enough that most neurons spike (as tests/cli/compare.rs).
WORM = """name = "worm-short"
[network]
source = "celegans"
transmitters = "celegans"
weight_per_synapse = 2.0
default_delay_ms = 1.0
gap_per_junction_ns = 0.05
[model]
model = "lif_exp"
c_m = 50.0
tau_m = 20.0
e_l = -65.0
v_th = -50.0
v_reset = -65.0
t_ref = 2.0
tau_syn_ex = 5.0
tau_syn_in = 10.0
[run]
duration_ms = 8000.0
seed = 4
[[stimulus]]
kind = "poisson"
targets = { all = true }
rate_hz = 250.0
weight = 20.0
receptor = "ACh"
"""


def tiny_fit(repo: Path, dir: Path) -> Path:
    """A cross-validated atlas fit of the bundled worm small enough for a test (as tests/cli/fit.rs)."""
    atlas = repo / "data" / "celegans" / "funatlas_pairs.csv"
    text = f"""name = "tiny"
[network]
source = "celegans"
[fit]
model = "rate"
activation = "sigmoid"
dt_ms = 500.0
data = "propagation-atlas"
atlas = "{atlas}"
score_strains = ["unc31"]
stim_start_ms = 1000.0
stim_stop_ms = 3000.0
response_stop_ms = 6000.0
stim_amplitude = 5.0
folds = 2
checkpoint_every = 4
[fit.train]
epochs = 1
batch_size = 128
[fit.params.tau]
grouping = "cell_type"
init = 2000.0
lo = 500.0
[fit.params.theta]
init = 2.0
[fit.params.strength]
grouping = "receptor"
init = 0.01
lo = 0.0
"""
    p = dir / "tiny.toml"
    p.write_text(text)
    return p


def run_cli(cli_path: Path, *args, cwd=None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(cli_path), *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r


def without_timings(v):
    """`v` with wall-clock fields (seconds, timings) removed, recursively."""
    if isinstance(v, dict):
        return {k: without_timings(x) for k, x in v.items() if k not in ("seconds", "timings", "wall_s", "total_s")}
    if isinstance(v, list):
        return [without_timings(x) for x in v]
    return v


def test_fit_equals_the_cli_and_does_not_depend_on_threads(cli, repo, tmp_path):
    s = tiny_fit(repo, tmp_path)
    run_cli(cli, "fit", s, "-o", tmp_path / "cli")
    r = neurotwin.fit(s, out=tmp_path / "py")
    assert r.command == "fit" and r.out_dir == tmp_path / "py"
    assert {f.name for f in r.files} == {"summary.json", "fitted_params.json", "fit_history.csv", "pairs.csv",
                                         "loss.png", "predicted_vs_measured.png"}
    assert all(f.is_file() and f.stat().st_size > 0 for f in r.files)
    # The report is what the folder's summary.json holds, and the CLI fitted the same numbers.
    assert r.report == json.loads((r.out_dir / "summary.json").read_text())
    assert (tmp_path / "py" / "fitted_params.json").read_bytes() == (tmp_path / "cli" / "fitted_params.json").read_bytes()
    assert without_timings(r.report) == without_timings(json.loads((tmp_path / "cli" / "summary.json").read_text()))
    one = neurotwin.fit(s, out=tmp_path / "one", threads=1)
    assert (tmp_path / "one" / "fitted_params.json").read_bytes() == (tmp_path / "cli" / "fitted_params.json").read_bytes()
    assert without_timings(one.report) == without_timings(r.report)


def test_segment_train_equals_the_cli_and_its_weights_segment(cli, tmp_path):
    vol = tmp_path / "ph.h5"
    phantom(vol)
    arch = tmp_path / "small.json"
    arch.write_text(json.dumps({"in_channels": 1, "out_channels": 1, "output": "boundary", "base_channels": 2,
                                "channel_factor": 2, "depth": 1, "pool": [[1, 2, 2]], "kernels": [[1, 3, 3], [3, 3, 3]],
                                "convs_per_block": 1}))
    opts = dict(ground_truth=vol, train_slices=16, arch=arch, steps=3, patch=[4, 16, 16], eval_every=3)
    r = neurotwin.segment_train(vol, tmp_path / "py", **opts)
    assert r.command == "segment train"
    assert {f.name for f in r.files} == {"unet.safetensors", "training.json", "loss.png"}
    assert [h["step"] for h in r.report["history"]] == [1, 2, 3]
    assert r.report["history"][2]["validation_loss"] > 0 and r.report["validation_slices"] == [16, 24]
    # The CLI with the same flags trains the same weights, bit for bit.
    run_cli(cli, "segment", "train", vol, "-o", tmp_path / "cli", "--ground-truth", vol, "--train-slices", "16",
            "--arch", arch, "--steps", "3", "--patch", "4,16,16", "--eval-every", "3")
    assert (tmp_path / "py" / "unet.safetensors").read_bytes() == (tmp_path / "cli" / "unet.safetensors").read_bytes()
    # The weights segment the volume.
    s = neurotwin.segment(vol, tmp_path / "seg", cnn=tmp_path / "py" / "unet.safetensors", thresholds=[0.5])
    assert {f.name for f in s.files} == {"segmentation.h5", "connectome.h5", "report.json"}
    # A bad flag is the CLI's error, raised.
    with pytest.raises(neurotwin.CommandFailed, match="larger than the training volume"):
        neurotwin.segment_train(vol, tmp_path / "bad", **dict(opts, patch=[32, 16, 16]))


def phantom(path: Path) -> np.ndarray:
    """Four cells (quadrants in y, x) through 24 sections, separated by dark 3-voxel membranes, with noise; returns
    the true labels (0 on membranes)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:64, 0:64]
    cells = (y >= 32).astype(np.uint64) * 2 + (x >= 32) + 1
    membrane = (np.abs(y - 32) <= 1) | (np.abs(x - 32) <= 1) | (y == 0) | (x == 0)
    labels = np.repeat(np.where(membrane, 0, cells)[None], 24, axis=0).astype(np.uint64)
    raw = np.where(membrane, 40.0, 190.0)[None].repeat(24, axis=0) + rng.normal(0, 8, (24, 64, 64))
    with h5py.File(path, "w") as f:
        f["volumes/raw"] = np.clip(raw, 0, 255).astype(np.uint8)
        f["volumes/raw"].attrs["resolution"] = [10.0, 10.0, 10.0]
        f["volumes/labels/neuron_ids"] = labels
    return labels


def test_segment_finds_the_phantoms_cells_and_equals_the_cli(cli, tmp_path):
    vol = tmp_path / "ph.h5"
    truth = phantom(vol)
    # The membrane filter: a synthetic phantom, not the FIB-SEM the shipped U-Net learned from.
    r = neurotwin.segment(vol, tmp_path / "py", ground_truth=vol, thresholds=[0.5, 0.6], boundary_source="sheetness")
    assert r.command == "segment"
    assert {f.name for f in r.files} == {"segmentation.h5", "connectome.h5", "report.json"}
    rep = r.report["report"]
    assert rep["neurons"] == 4
    scores = rep["thresholds"][0]["scores"]
    assert scores["voi_split"] + scores["voi_merge"] < 0.01, scores
    # Each true cell is one segment and no segment spans two cells.
    with h5py.File(r.out_dir / "segmentation.h5", "r") as f:
        seg = f["volumes/labels/neuron_ids"][()]
    inside = truth > 0
    pairs = set(zip(truth[inside].tolist(), seg[inside].tolist()))
    assert len(pairs) == 4 and len({t for t, _ in pairs}) == 4 and len({s for _, s in pairs}) == 4, pairs
    # The CLI with the same flags writes the same report.
    run_cli(
        cli, "segment", vol, "-o", tmp_path / "cli", "--ground-truth", vol, "--thresholds", "0.5,0.6",
        "--boundary-source", "sheetness",
    )
    on_disk = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert without_timings(r.report["report"]) == without_timings(on_disk["report"])
    assert r.report["segments"] == on_disk["segments"] and r.report["synapses"] == on_disk["synapses"]
    # The connectome it wrote reads back as a Connectome.
    c = neurotwin.Connectome.from_hdf5(r.out_dir / "connectome.h5")
    assert len(c.neurons["id"]) == 4


def test_a_run_compared_with_its_own_simulated_calcium_agrees_perfectly(cli, tmp_path):
    scenario = tmp_path / "worm.toml"
    scenario.write_text(WORM)
    run_dir = tmp_path / "run"
    run_cli(cli, "run", scenario, "-o", run_dir)
    result = neurotwin.run(neurotwin.Scenario.from_file(scenario))
    rec = tmp_path / "own.nwb"
    line = result.to_nwb(rec, indicator="GCaMP7f", frame_rate_hz=5.0)
    assert line.startswith(f"wrote {rec}: {result.n_neurons} units")
    # The Python export equals `neurotwin export nwb` of the CLI's run of the same scenario.
    run_cli(cli, "export", "nwb", run_dir, "-o", tmp_path / "cli.nwb", "--indicator", "GCaMP7f", "--frame-rate-hz", "5")
    with h5py.File(rec, "r") as a, h5py.File(tmp_path / "cli.nwb", "r") as b:
        for ds in ["units/spike_times", "units/spike_times_index", "processing/ophys/DfOverF/dff/data"]:
            assert np.array_equal(a[ds][()], b[ds][()]), ds
        assert a["processing/ophys/DfOverF/dff/data"].shape[1] == result.n_neurons
    # The CLI's run against the Python-written recording of the same activity: r = 1 at lag 0.
    r = neurotwin.compare(sim=run_dir, recording=rec, format="nwb", indicator="GCaMP7f", out=tmp_path / "cmp")
    assert r.command == "compare"
    assert r.report == json.loads((tmp_path / "cmp" / "compare_summary.json").read_text())
    neurons = r.report[0]["comparison"]["neurons"]
    assert len(neurons) >= 50, len(neurons)
    for n in neurons:
        assert n["r"] > 0.999999 and n["xcorr_lag_s"] == 0.0, n


def test_command_errors_carry_the_clis_message_and_write_nothing(repo, tmp_path):
    with pytest.raises(neurotwin.CommandFailed, match="folder does not exist"):
        neurotwin.compare(sim=tmp_path / "nowhere", recording=tmp_path / "r.csv", format="csv")
    s = tiny_fit(repo, tmp_path)
    with pytest.raises(ValueError, match="--bogus-flag"):
        neurotwin.fit(s, out=tmp_path / "x", bogus_flag=1)
    bad = tmp_path / "bad.toml"
    bad.write_text(s.read_text().replace("epochs = 1", "epochs = -1"))
    with pytest.raises(neurotwin.ScenarioError, match="bad.toml"):
        neurotwin.fit(bad, out=tmp_path / "y")
    edited = neurotwin.Scenario.from_file(repo / "scenarios" / "celegans_touch.toml").with_values(
        {"run.seed": 7})
    with pytest.raises(neurotwin.ScenarioError, match="write scenario.text"):
        neurotwin.compare(edited)
    vol = tmp_path / "ph.h5"
    phantom(vol)
    with pytest.raises(neurotwin.CommandFailed, match="`stack`"):
        neurotwin.segment(vol, tmp_path / "seg", raw_dataset="stack")
    for d in ["x", "y", "seg"]:
        assert not (tmp_path / d).exists(), d


def test_segment_out_of_core_from_python_equals_the_cli(cli, tmp_path):
    g = neurotwin.segment_synthetic(tmp_path / "gen", [16, 64, 64], cell_nm=250, membrane_nm=30, block=[16, 32, 32],
                                    chunk=[16, 32, 32])
    assert g.command == "segment synthetic" and g.files == [tmp_path / "gen" / "synthetic.zarr"]
    store = g.files[0]
    opts = dict(boundary=f"{store}:volumes/boundary", ground_truth=f"{store}:volumes/labels/neuron_ids",
                thresholds=[0.5], chunk=[16, 32, 32], block=[16, 32, 32])
    r = neurotwin.segment(store, tmp_path / "py", out_of_core=True, **opts)
    rep = r.report["report"]
    assert rep["blocks"] == 4 and rep["peak_rss_bytes"] > 0
    assert {f.name for f in r.files} == {"segmentation.zarr", "report.json"}
    assert (r.out_dir / "segmentation.zarr" / "volumes" / "segmentations" / "t0.5" / "zarr.json").is_file()
    run_cli(cli, "segment", store, "-o", tmp_path / "cli", "--out-of-core", "--boundary", opts["boundary"],
            "--ground-truth", opts["ground_truth"], "--thresholds", "0.5", "--chunk", "16,32,32", "--block", "16,32,32")
    on_disk = json.loads((tmp_path / "cli" / "report.json").read_text())["report"]
    assert rep["thresholds"] == on_disk["thresholds"] and rep["fragments"] == on_disk["fragments"]
    with pytest.raises(neurotwin.CommandFailed, match="--block"):
        neurotwin.segment(store, tmp_path / "bad", out_of_core=True)
