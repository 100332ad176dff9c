"""The Python package against independent truth: the CLI's own outputs for the same scenario, NumPy's dtypes,
the documented exceptions, and the GIL."""

import gc
import subprocess
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import neurotwin
from conftest import short_touch


def cli_spikes(cli: Path, scenario: Path, out: Path, *extra: str):
    """(times_ms, node_ids) of the SONATA spike file the CLI writes for `scenario`."""
    subprocess.run([str(cli), "run", str(scenario), "-o", str(out), *extra], check=True, capture_output=True)
    with h5py.File(out / "spikes.h5", "r") as f:
        (pop,) = f["spikes"].keys()
        g = f["spikes"][pop]
        return g["timestamps"][()], g["node_ids"][()]


def test_scenario_file_gives_the_clis_spikes_bit_for_bit(cli, repo, tmp_path):
    path = tmp_path / "touch.toml"
    path.write_text(short_touch())
    times, ids = cli_spikes(cli, path, tmp_path / "cli")
    r = neurotwin.run(neurotwin.Scenario.from_file(path))
    assert len(r.spike_times_ms) > 100, "the scenario must spike"
    assert np.array_equal(r.spike_times_ms, times)  # exact: same engine, same seed
    assert np.array_equal(r.spike_neurons, ids.astype(np.uint32))
    assert r.summary["total_spikes"] == len(times)
    assert r.n_neurons == len(r.neuron_names) == len(r.spike_counts) == r.summary["neurons"]
    assert int(r.spike_counts.sum()) == len(times)
    assert r.steps == 2000 and r.dt_ms == 0.1 and r.duration_ms == 200.0


def test_to_sonata_writes_the_clis_file_content(cli, tmp_path):
    path = tmp_path / "touch.toml"
    path.write_text(short_touch(100.0))
    times, ids = cli_spikes(cli, path, tmp_path / "cli")
    r = neurotwin.run(neurotwin.Scenario.from_file(path))
    r.to_sonata(tmp_path / "py.h5")
    with h5py.File(tmp_path / "py.h5", "r") as f:
        (pop,) = f["spikes"].keys()
        assert np.array_equal(f["spikes"][pop]["timestamps"][()], times)
        assert np.array_equal(f["spikes"][pop]["node_ids"][()], ids)


def test_arrays_have_documented_dtypes_and_outlive_the_result():
    r = neurotwin.run(neurotwin.Scenario.from_string(short_touch(100.0)))
    times, ids, steps, counts = r.spike_times_ms, r.spike_neurons, r.spike_steps, r.spike_counts
    assert (times.dtype, ids.dtype, steps.dtype, counts.dtype) == (np.float64, np.uint32, np.uint64, np.uint64)
    assert times.shape == ids.shape == steps.shape and times.ndim == 1
    assert np.all(np.diff(times) >= 0), "spikes are in time order"
    assert np.allclose(times, (steps + 1) * r.dt_ms)
    expected = times.copy()
    del r
    gc.collect()
    assert np.array_equal(times, expected)  # NumPy owns its copy
    assert ids.max() < len(counts)


def test_from_dict_is_the_same_scenario_as_the_toml():
    toml = """
name = "cuba-small"
[network]
generator = { kind = "cuba", n = 400, k = 20 }
[run]
duration_ms = 50.0
dt_ms = 0.1
seed = 7
"""
    d = {
        "name": "cuba-small",
        "network": {"generator": {"kind": "cuba", "n": 400, "k": 20}},
        "run": {"duration_ms": 50.0, "dt_ms": 0.1, "seed": 7},
    }
    a = neurotwin.run(neurotwin.Scenario.from_string(toml))
    b = neurotwin.run(neurotwin.Scenario.from_dict(d))
    assert len(a.spike_times_ms) > 0
    assert np.array_equal(a.spike_times_ms, b.spike_times_ms)
    assert np.array_equal(a.spike_neurons, b.spike_neurons)


def test_bad_input_raises_scenario_error_with_the_location(tmp_path):
    bad = short_touch(100.0).replace("tau_m = 20.0", "tau_m = 20.0\ntau_mm = 3.0")
    with pytest.raises(neurotwin.ScenarioError) as e:
        neurotwin.Scenario.from_string(bad, tmp_path / "bad.toml")
    msg = str(e.value)
    line = next(i for i, x in enumerate(bad.splitlines(), 1) if x.startswith("tau_mm"))
    assert isinstance(e.value, ValueError)
    assert f"bad.toml:{line}:" in msg and "unknown field `tau_mm`" in msg, msg  # the CLI's located message
    with pytest.raises(neurotwin.ScenarioError, match="nope.toml"):
        neurotwin.Scenario.from_file(tmp_path / "nope.toml")
    with pytest.raises(neurotwin.ScenarioError, match="finite"):
        neurotwin.Scenario.from_dict({"run": {"duration_ms": float("nan")}})
    with pytest.raises(ValueError, match="cuda-host"):
        neurotwin.run(neurotwin.Scenario.from_string(short_touch(10.0)), backend="gpu")


def test_cuda_without_a_gpu_is_a_one_line_simulation_error():
    try:
        neurotwin.run(neurotwin.Scenario.from_string(short_touch(10.0)), backend="cuda")
    except neurotwin.SimulationError as e:
        assert isinstance(e, RuntimeError) and "\n" not in str(e) and "cuda" in str(e)
    else:
        pytest.skip("a CUDA GPU is usable here")


def test_cuda_host_gives_the_cpus_spikes():
    sc = neurotwin.Scenario.from_string(short_touch(50.0))
    a, b = neurotwin.run(sc), neurotwin.run(sc, backend="cuda-host")
    assert b.summary["backend"] == "cuda-host" and a.summary["backend"] == "cpu"
    assert np.array_equal(a.spike_times_ms, b.spike_times_ms) and np.array_equal(a.spike_neurons, b.spike_neurons)


def test_trials_run_with_run_all_and_differ_by_seed():
    text = short_touch(50.0).replace("seed = 1", "seed = 1\ntrials = 2")
    sc = neurotwin.Scenario.from_string(text)
    assert sc.n_runs == 2
    with pytest.raises(neurotwin.ScenarioError, match="run_all"):
        neurotwin.run(sc)
    r0, r1 = neurotwin.run_all(sc)
    assert (r0.trial, r1.trial) == (0, 1) and r0.seed == 1 and r1.seed != 1
    assert not np.array_equal(r0.spike_times_ms, r1.spike_times_ms)


def test_the_gil_is_released_while_simulating():
    sc = neurotwin.Scenario.from_string(short_touch(1000.0))
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    start = time.perf_counter()
    neurotwin.run(sc, threads=1)
    end = time.perf_counter()
    done.set()
    t.join()
    during = [x for x in ticks if start < x < end]
    # With the GIL held for the whole run the thread could not tick at all in between.
    assert end - start > 0.05
    assert len(during) >= 10, f"{len(during)} ticks in {end - start:.2f} s"


def test_the_package_is_the_installed_wheel_not_the_source_tree(repo):
    pkg = Path(neurotwin.__file__).resolve()
    assert repo.resolve() not in pkg.parents, pkg
    assert neurotwin.__version__


def test_sampled_state_is_a_time_by_neuron_array_matching_the_clis_report(cli, tmp_path):
    text = short_touch(50.0).replace(
        "rate_bin_ms = 10.0", 'rate_bin_ms = 10.0\nstate = [{ var = "V_m", targets = { names = ["AVAL", "AVAR"] }, every_ms = 1.0 }]'
    )
    path = tmp_path / "state.toml"
    path.write_text(text)
    r = neurotwin.run(neurotwin.Scenario.from_file(path))
    times, neurons, values = r.state["V_m"]
    assert values.shape == (len(times), 2) and values.dtype == np.float64
    assert [r.neuron_names[i] for i in neurons] == ["AVAL", "AVAR"]
    assert np.all(np.diff(times) > 0) and times[-1] <= 50.0
    assert np.all((values > -90.0) & (values < 0.0)), "V_m in mV"
    subprocess.run([str(cli), "run", str(path), "-o", str(tmp_path / "cli")], check=True, capture_output=True)
    with h5py.File(tmp_path / "cli" / "state.h5", "r") as f:
        assert np.array_equal(f["report"]["V_m"]["data"][()], values)
    bins, rate = r.rates[next(iter(r.rates))]
    assert bins == 10.0 and rate.shape == (5,)


def test_the_demo_is_built_in_and_runs_from_any_folder(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no repository here
    r = neurotwin.run(neurotwin.Scenario.demo())
    assert r.summary["scenario"] == "celegans-gentle-touch" and r.duration_ms == 1000.0
    out = subprocess.run([str(cli), "demo", "-o", str(tmp_path / "demo")], capture_output=True, text=True, check=True)
    with h5py.File(tmp_path / "demo" / "spikes.h5", "r") as f:
        (pop,) = f["spikes"].keys()
        assert np.array_equal(f["spikes"][pop]["timestamps"][()], r.spike_times_ms), out.stdout


def test_the_celegans_connectome_matches_its_bundled_csv(repo):
    c = neurotwin.Connectome.celegans()
    cols = c._inner.neuron_columns
    csv_rows = (repo / "data" / "celegans" / "neurons.csv").read_text().strip().splitlines()[1:]
    assert len(cols["name"]) == len(csv_rows) == 473
    assert "AVAL" in cols["name"] and cols["id"].dtype == np.uint64
    conn = c._inner.connection_columns
    assert conn["pre"].dtype == np.uint64 and conn["count"].dtype == np.float32
    kinds = set(conn["kind"])
    assert kinds == {"chemical", "electrical"}
    assert "Cook" in " ".join(c.provenance)


def test_csv_errors_name_the_file(tmp_path):
    bad = tmp_path / "conn.csv"
    bad.write_text("pre,post,count\n1,2,three\n")
    with pytest.raises(neurotwin.ScenarioError, match="conn.csv"):
        neurotwin.Connectome.from_csv(bad, layout="generic")


def test_ctrl_c_stops_a_run_and_raises_keyboard_interrupt():
    import _thread

    sc = neurotwin.Scenario.from_string(short_touch(60000.0))  # about 10 s of work when not interrupted
    timer = threading.Timer(0.3, _thread.interrupt_main)  # what Ctrl-C does to the main thread
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        neurotwin.run(sc, threads=1)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"the run went on for {elapsed:.1f} s after Ctrl-C"
    r = neurotwin.run(neurotwin.Scenario.from_string(short_touch(20.0)))  # the next run is unaffected
    assert r.steps == 200


def test_programmatic_edits_equal_the_same_edit_written_in_toml():
    base = neurotwin.Scenario.from_string(short_touch(100.0))
    edited = base.with_values({"run.duration_ms": 150.0, "model.tau_m": 15.0}).with_stimulus(
        name="extra", kind="activation", targets={"names": ["AVAL"]}, rate_hz=80.0, start_ms=10.0, stop_ms=90.0
    )
    by_hand = short_touch(100.0).replace("duration_ms = 100.0", "duration_ms = 150.0").replace(
        "tau_m = 20.0", "tau_m = 15.0"
    ) + '\n[[stimulus]]\nname = "extra"\nkind = "activation"\ntargets = { names = ["AVAL"] }\nrate_hz = 80.0\n' \
        "start_ms = 10.0\nstop_ms = 90.0\n"
    a, b = neurotwin.run(edited), neurotwin.run(neurotwin.Scenario.from_string(by_hand))
    assert a.duration_ms == 150.0
    assert np.array_equal(a.spike_times_ms, b.spike_times_ms) and np.array_equal(a.spike_neurons, b.spike_neurons)
    aval = a.neuron_names.index("AVAL")
    assert a.spike_counts[aval] > neurotwin.run(base).spike_counts[aval]
    assert base.text == short_touch(100.0), "the original scenario is unchanged"


def test_edits_are_validated_and_sweeps_multiply_runs(repo):
    base = neurotwin.Scenario.from_string(short_touch(50.0))
    with pytest.raises(neurotwin.ScenarioError, match="tau_mm"):
        base.with_values({"model.tau_mm": 3.0})
    with pytest.raises(neurotwin.ScenarioError, match="NaN|Out of range|nan"):
        base.with_values({"run.duration_ms": float("nan")})
    block = neurotwin.Scenario.from_file(repo / "scenarios" / "celegans_ach_block.toml")
    assert block.n_runs == 15
    assert block.with_sweep("perturbation.0.dose", [0.0, 1.0]).n_runs == 6
    assert block.with_values({"run.trials": 1}).with_sweep("perturbation.0.dose", np.array([0.5])).n_runs == 1


def test_progress_callback_counts_every_step_of_every_run():
    sc = neurotwin.Scenario.from_string(short_touch(3000.0)).with_values({"run.trials": 2})
    seen = []
    rs = neurotwin.run_all(sc, threads=1, progress=lambda done, total: seen.append((done, total)))
    total = 2 * 30000
    assert len(rs) == 2 and seen[-1] == (total, total)
    assert all(t == total for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) >= 3, "reported while running, not only at the end"


def test_an_exception_in_the_callback_stops_the_run():
    sc = neurotwin.Scenario.from_string(short_touch(60000.0))

    def stop(done, total):
        raise RuntimeError("enough")

    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="enough"):
        neurotwin.run(sc, threads=1, progress=stop)
    assert time.perf_counter() - start < 2.0


def test_graph_queries_equal_neurotwin_inspect(cli):
    out = subprocess.run([str(cli), "inspect", "celegans", "--json", "--hubs", "5", "--hub-metric", "synapses",
                          "--from", "ALML,ALMR", "--to", "AVAL", "--gap"], capture_output=True, text=True, check=True)
    import json

    expected = json.loads(out.stdout)
    c = neurotwin.Connectome.celegans()
    assert c.hubs(5, "synapses") == expected["hubs"]
    assert c.path(["ALML", "ALMR"], "AVAL", include_gap=True) == expected["path"]
    assert c.strongly_connected_components(include_gap=True) == expected["scc"]
    assert c.path("AVAL", "ALML")["steps"][0]["neuron"]["name"] == "AVAL"
    with pytest.raises(neurotwin.ScenarioError, match="NOPE"):
        c.path("NOPE", "AVAL")


def test_compile_report_equals_neurotwin_inspect(cli):
    import json

    out = subprocess.run([str(cli), "inspect", "celegans", "--json"], capture_output=True, text=True, check=True)
    report = neurotwin.Connectome.celegans().compile("celegans", dt_ms=0.1, gap_per_junction_ns=1.0)
    assert report == json.loads(out.stdout)["compiled"]
    assert report["bytes_per_synapse"] > 0 and report["synapses"] > 0
    with pytest.raises(ValueError, match="exc_inh"):
        neurotwin.Connectome.celegans().compile("mouse")


def test_a_connectome_written_from_python_runs_like_the_bundled_one(tmp_path):
    neurotwin.Connectome.celegans().to_hdf5(tmp_path / "worm.h5")
    text = short_touch(100.0)
    assert 'source = "celegans"' in text
    from_file = text.replace('source = "celegans"', 'file = "worm.h5"')
    a = neurotwin.run(neurotwin.Scenario.from_string(text))
    b = neurotwin.run(neurotwin.Scenario.from_string(from_file, tmp_path / "touch.toml"))
    assert b.neuron_names == a.neuron_names
    assert np.array_equal(a.spike_times_ms, b.spike_times_ms) and np.array_equal(a.spike_neurons, b.spike_neurons)


def test_a_rust_panic_arrives_as_a_runtime_error_and_the_module_keeps_working():
    from neurotwin import _neurotwin

    with pytest.raises(RuntimeError, match="internal error in neurotwin .*a bug.*: boom 42") as e:
        _neurotwin._panic_for_test("boom 42")
    assert not isinstance(e.value, neurotwin.SimulationError)
    assert neurotwin.run(neurotwin.Scenario.from_string(short_touch(10.0))).steps == 100


def test_profile_puts_the_phase_split_in_the_summary_and_changes_no_spike():
    sc = neurotwin.Scenario.from_string(short_touch(200.0))
    plain, timed = neurotwin.run(sc), neurotwin.run(sc, profile=True)
    assert "phases" not in plain.summary
    assert np.array_equal(plain.spike_times_ms, timed.spike_times_ms)
    p = timed.summary["phases"]
    parts = ["control_s", "update_s", "compaction_s", "delivery_s", "exchange_s", "backend_step_s", "recording_s",
             "other_s"]
    assert all(p[k] >= 0.0 for k in parts) and p["update_s"] > 0.0
    assert abs(sum(p[k] for k in parts) - p["total_s"]) <= 1e-3 * p["total_s"] + 1e-6
    # The touch scenario drives its receptors with Poisson input: external-input time is measured.
    assert p["inputs_cpu_s"] > 0.0
    # The CPU backend says how it ran the update (fused blocks, threads and the estimate behind the choice).
    assert p["strategy"].startswith("update: ") and "blocks on the fused ring-to-spikes pass" in p["strategy"]


def test_plastic_weights_are_the_clis_weights_h5(cli, repo, tmp_path):
    text = (repo / "scenarios" / "stdp_song2000.toml").read_text()
    text = text.replace("duration_ms = 300000.0", "duration_ms = 4000.0").replace("../data", str(repo / "data"))
    path = tmp_path / "stdp.toml"
    path.write_text(text)
    r = neurotwin.run(neurotwin.Scenario.from_file(path))
    w = r.weights
    assert w["weights"].shape == (3, 4000) and w["weights"].dtype == np.float64
    assert np.array_equal(w["times_ms"], [0.0, 2000.0, 4000.0])
    assert w["projections"] == ["input-to-output"] and set(w["projection"]) == {0}
    assert np.all(w["post"] >= 1000) and np.all(w["pre"] < 1000)
    assert not np.array_equal(w["weights"][0], w["weights"][-1]), "the weights learned"
    subprocess.run([str(cli), "run", str(path), "-o", str(tmp_path / "cli")], check=True, capture_output=True)
    with h5py.File(tmp_path / "cli" / "weights.h5", "r") as f:
        assert np.array_equal(f["weights"]["data"][()], w["weights"])
        assert np.array_equal(f["synapses"]["pre_node_id"][()], w["pre"].astype(np.uint64))
    plain = tmp_path / "plain.toml"
    plain.write_text(short_touch(20.0))
    assert neurotwin.run(neurotwin.Scenario.from_file(plain)).weights is None
