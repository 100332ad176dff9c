"""Zero-copy result arrays, SONATA circuits, generated networks, and the pandas and tqdm paths, each against
independent truth: NumPy's own view of the memory, the SONATA files read with h5py, the generator's documented
construction rule, the bundled CSV, and the run's step count."""

import gc
import json

import h5py
import numpy as np
import pandas as pd
import pytest

import neurotwin
from conftest import short_touch


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def recorded_touch() -> neurotwin.RunResult:
    """A 50 ms touch run that also samples V_m of AVAL and AVAR every ms (rates in 10 ms bins)."""
    text = short_touch(50.0).replace(
        "rate_bin_ms = 10.0",
        'rate_bin_ms = 10.0\nstate = [{ var = "V_m", targets = { names = ["AVAL", "AVAR"] }, every_ms = 1.0 }]',
    )
    assert "every_ms" in text, "the scenario must record state"
    return neurotwin.run(neurotwin.Scenario.from_string(text))


def all_arrays(r: neurotwin.RunResult):
    """{label: array} of every array the result hands out."""
    times, neurons, values = r.state["V_m"]
    out = {
        "spike_times_ms": r.spike_times_ms,
        "spike_neurons": r.spike_neurons,
        "spike_steps": r.spike_steps,
        "spike_counts": r.spike_counts,
        "state.times_ms": times,
        "state.neurons": neurons,
        "state.values": values,
    }
    for group, (_, rate) in r.rates.items():
        out[f"rates.{group}"] = rate
    return out


def test_result_arrays_are_read_only_views_of_the_results_buffers():
    r = recorded_touch()
    first, second = all_arrays(r), all_arrays(r)
    assert len(r.spike_times_ms) > 10 and any(k.startswith("rates.") for k in first)
    for label, a in first.items():
        b = second[label]
        assert a is not b
        assert address(a) == address(b), f"{label}: a second read copied the data"
        assert a.base is r._inner, f"{label}: the array must keep the result alive"
        assert not a.flags.owndata and not a.flags.writeable, label
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 0
        with pytest.raises(ValueError):
            a.setflags(write=True)  # the base exposes no writable buffer
        assert a.copy().flags.writeable
    expected = {"spike_times_ms": np.float64, "spike_neurons": np.uint32, "spike_steps": np.uint64,
                "spike_counts": np.uint64, "state.times_ms": np.float64, "state.neurons": np.uint32,
                "state.values": np.float64}
    for label, dtype in expected.items():
        assert first[label].dtype == dtype, label
    times, neurons, values = r.state["V_m"]
    assert values.shape == (len(times), 2) == (50, 2) and values.flags.c_contiguous
    assert [r.neuron_names[i] for i in neurons] == ["AVAL", "AVAR"]
    assert first["spike_counts"].shape == (r.n_neurons,)
    for label in first:
        if label.startswith("rates."):
            assert first[label].shape == (5,) and first[label].dtype == np.float64


def test_result_arrays_stay_valid_and_unchanged_after_the_result_is_dropped():
    r = recorded_touch()
    arrays = all_arrays(r)
    copies = {k: v.copy() for k, v in arrays.items()}
    n, dt = r.n_neurons, r.dt_ms
    del r
    gc.collect()
    # Churn the allocator: freed buffers would now hold other data.
    junk = [np.full(4096, 7.0) for _ in range(200)]
    again = recorded_touch()
    for label, a in arrays.items():
        assert np.array_equal(a, copies[label]), f"{label} changed after the result was dropped"
    times, ids, steps, counts = (arrays[k] for k in ("spike_times_ms", "spike_neurons", "spike_steps",
                                                     "spike_counts"))
    assert np.allclose(times, (steps + 1) * dt)
    assert np.array_equal(np.bincount(ids, minlength=n), counts)
    assert np.array_equal(times, again.spike_times_ms), "same scenario, same seed"
    del junk


def sonata_truth(config):
    """(node names in config order, connections as sorted (pre name, post name, nsyns)) read with h5py."""
    cfg = json.loads(config.read_text())
    manifest = {k: v for k, v in cfg.get("manifest", {}).items()}

    def path(s):
        for k, v in manifest.items():
            s = s.replace(k, v)
        return config.parent / s

    names = []
    for entry in cfg["networks"]["nodes"]:
        with h5py.File(path(entry["nodes_file"]), "r") as f:
            for pop, g in f["nodes"].items():
                names += [f"{pop}:{i}" for i in sorted(g["node_id"][()].tolist())]
    edges = []
    for entry in cfg["networks"]["edges"]:
        with h5py.File(path(entry["edges_file"]), "r") as f:
            for g in f["edges"].values():
                src, trg = g["source_node_id"], g["target_node_id"]
                sp, tp = src.attrs["node_population"], trg.attrs["node_population"]
                assert set(g["edge_group_id"][()].tolist()) == {0}
                nsyns = g["0"]["nsyns"][()][g["edge_group_index"][()]]
                edges += [(f"{sp}:{s}", f"{tp}:{t}", float(c)) for s, t, c in zip(src[()], trg[()], nsyns)]
    return names, sorted(edges)


def test_from_sonata_reads_every_node_and_edge_of_the_bundled_circuit(repo):
    config = repo / "data" / "sonata" / "300_intfire" / "circuit_config.json"
    names, edges = sonata_truth(config)
    assert len(names) == 300 + 90 + 30 and len(edges) == 61560 + 17160 + 9000
    c = neurotwin.Connectome.from_sonata(config)
    neurons, conns = c._inner.neuron_columns, c._inner.connection_columns
    assert neurons["name"] == names
    name_of = dict(zip(neurons["id"].tolist(), neurons["name"]))
    got = sorted((name_of[p], name_of[q], float(k))
                 for p, q, k in zip(conns["pre"].tolist(), conns["post"].tolist(), conns["count"].tolist()))
    assert got == edges
    assert set(conns["kind"]) == {"chemical"}
    assert "300_intfire" in repr(c) and "87720 connections" in repr(c)
    with pytest.raises(neurotwin.ScenarioError, match="nope.json"):
        neurotwin.Connectome.from_sonata(config.parent / "nope.json")


def brunel(**kw):
    return neurotwin.Connectome.generate("brunel", **kw)


def test_brunel_has_five_order_neurons_and_the_configured_fixed_in_degree():
    net = brunel(order=50, indegree_scales_with_n=True, seed=3)
    ne, ni = 200, 50
    ce, ci = int(0.1 * ne), int(0.1 * ni)  # the example's CE = int(eps NE), CI = int(eps NI), eps = 0.1
    assert net.n_neurons == 5 * 50 == ne + ni
    assert net.n_synapses == net.n_neurons * (ce + ci)
    pops = net.populations
    assert [(p["name"], p["start"], p["stop"]) for p in pops] == [("E", 0, ne), ("I", ne, ne + ni)]
    assert pops[0]["params"]["model"] == "lif_delta"
    s = net.synapses
    assert isinstance(s, pd.DataFrame) and len(s) == net.n_synapses
    assert list(s.columns) == ["pre", "post", "weight", "delay_ms", "receptor"]
    assert (s["pre"].dtype, s["post"].dtype, s["weight"].dtype, s["delay_ms"].dtype) == (
        np.uint32, np.uint32, np.float32, np.float64)
    exc = s["pre"] < ne
    in_e = np.bincount(s["post"][exc], minlength=net.n_neurons)
    in_i = np.bincount(s["post"][~exc], minlength=net.n_neurons)
    assert np.all(in_e == ce) and np.all(in_i == ci)
    assert (s["receptor"] == np.where(exc, "exc", "inh")).all()
    assert np.allclose(s["weight"][exc], 0.1) and np.allclose(s["weight"][~exc], -0.5)  # J, -g J (mV)
    assert np.allclose(s["delay_ms"], 1.5)


def test_brunel_fixed_in_degree_from_ce_and_ci_and_the_dict_form(monkeypatch):
    net = brunel(order=20, ce=30, ci=7)  # more draws than the 20 I neurons: multapses are allowed by default
    assert net.n_neurons == 100 and net.n_synapses == 100 * 37
    df = net.synapses
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("no pandas here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    d = net.synapses
    assert isinstance(d, dict) and set(d) == {"pre", "post", "weight", "delay_ms", "receptor"}
    assert np.array_equal(d["pre"], df["pre"]) and np.array_equal(d["post"], df["post"])
    assert d["receptor"].tolist() == df["receptor"].astype(str).tolist()
    per_post = np.bincount(d["post"], minlength=100)
    assert np.all(per_post == 37)


def test_generated_networks_depend_on_the_seed_only():
    a = brunel(order=20, ce=20, ci=5, seed=11).synapses
    b = brunel(order=20, ce=20, ci=5, seed=11).synapses
    c = brunel(order=20, ce=20, ci=5, seed=12).synapses
    assert a.equals(b)
    assert not a.equals(c) and not np.array_equal(a["pre"], c["pre"])
    assert np.array_equal(np.sort(a["post"]), np.sort(c["post"])), "same in-degrees, other sources"


def test_unknown_generators_and_keys_raise_scenario_error_naming_them():
    with pytest.raises(neurotwin.ScenarioError, match="nope") as e:
        neurotwin.Connectome.generate("nope")
    assert "brunel" in str(e.value) and "pd14" in str(e.value)
    with pytest.raises(neurotwin.ScenarioError, match="unknown field `orderr`") as e:
        brunel(orderr=10)
    msg = str(e.value)
    # The scenario rejects the same key with the same serde message.
    toml = '[network]\ngenerator = { kind = "brunel", orderr = 10 }\n[run]\nduration_ms = 10.0\n'
    with pytest.raises(neurotwin.ScenarioError, match="unknown field `orderr`") as s:
        neurotwin.Scenario.from_string(toml)
    assert msg.split("unknown field")[1].split("`, expected")[0] in str(s.value)
    with pytest.raises(neurotwin.ScenarioError, match="invalid type"):
        brunel(order="ten")
    with pytest.raises(neurotwin.ScenarioError, match="dt_ms"):
        brunel(order=10, dt_ms=0.0)
    assert brunel(order=10, g=np.float64(4.0)).n_neurons == 50, "NumPy scalars are accepted"


def test_the_synapse_table_is_refused_beyond_its_memory_limit():
    net = neurotwin.Connectome.generate("cuba", n=400, k=20, seed=7)
    assert net.n_neurons == 400 and net.n_synapses == 400 * 20
    with pytest.raises(ValueError, match=r"about 0\.00 GB") as e:
        net.synapse_table(max_bytes=1000)
    assert "8000 synapses" in str(e.value)
    assert len(net.synapse_table(max_bytes=net.n_synapses * 48)) == 8000
    assert "cuba" in repr(net) and "8000 synapses" in repr(net)


def test_expected_rate_comes_with_its_source_only_for_measured_configurations():
    std = neurotwin.Connectome.generate("cuba")  # N = 4000, K = 80: measured by NEST and Brian2
    assert std.n_neurons == 4000 and std.expected_rate_hz == pytest.approx(5.17)
    assert "NEST" in std.expected_rate_source
    small = neurotwin.Connectome.generate("cuba", n=400)
    assert small.expected_rate_hz is None and small.expected_rate_source is None


def test_coba_is_the_cuba_wiring_with_conductance_weights():
    coba = neurotwin.Connectome.generate("coba", n=400, k=20, seed=7)
    cuba = neurotwin.Connectome.generate("cuba", n=400, k=20, seed=7)
    assert coba.kind == "coba" and coba.n_synapses == cuba.n_synapses == 8000
    a, b = coba.synapse_table(), cuba.synapse_table()
    for col in ["pre", "post", "delay_ms"]:
        assert np.array_equal(np.asarray(a[col]), np.asarray(b[col])), col
    w = np.asarray(a["weight"])
    pre = np.asarray(a["pre"])
    assert set(w[pre < 320].tolist()) == {6.0} and set(w[pre >= 320].tolist()) == {-67.0}  # nS
    assert neurotwin.Connectome.generate("coba").expected_rate_hz == pytest.approx(16.42)


def test_connectome_tables_are_dataframes_with_the_documented_columns(repo):
    c = neurotwin.Connectome.celegans()
    neurons, conns = c.neurons, c.connections
    raw_n, raw_c = c._inner.neuron_columns, c._inner.connection_columns
    assert isinstance(neurons, pd.DataFrame) and isinstance(conns, pd.DataFrame)
    assert list(neurons.columns) == ["id", "name", "cell_type", "transmitter", "region"]
    assert list(conns.columns) == ["pre", "post", "kind", "count", "weight"]
    assert neurons["id"].dtype == np.uint64
    assert all(pd.api.types.is_string_dtype(neurons[k]) for k in ["name", "cell_type", "transmitter", "region"])
    assert pd.api.types.is_string_dtype(conns["kind"])
    assert (conns["pre"].dtype, conns["post"].dtype, conns["count"].dtype, conns["weight"].dtype) == (
        np.uint64, np.uint64, np.float32, np.float32)
    assert len(neurons) == len(raw_n["id"]) == 473 and len(conns) == len(raw_c["pre"])
    csv = pd.read_csv(repo / "data" / "celegans" / "neurons.csv")
    assert sorted(neurons["name"]) == sorted(csv["name"])
    assert set(conns["kind"]) == {"chemical", "electrical"}
    assert np.array_equal(conns["count"].to_numpy(), raw_c["count"])
    rows = pd.read_csv(repo / "data" / "celegans" / "connections.csv")
    for kind in ["chemical", "electrical"]:
        assert (conns["kind"] == kind).sum() == (rows["type"] == kind).sum(), kind


def test_progress_true_drives_a_tqdm_bar_to_the_runs_step_count(monkeypatch):
    import tqdm.auto

    bars = []

    class Recording(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)
            self.seen = []

        def update(self, n=1):
            out = super().update(n)
            self.seen.append(self.n)
            return out

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    r = neurotwin.run(neurotwin.Scenario.from_string(short_touch(100.0)), progress=True)
    assert len(bars) == 1, "progress=True with tqdm installed uses tqdm.auto.tqdm"
    bar = bars[0]
    assert r.steps == 1000 and bar.total == r.steps and bar.n == r.steps
    assert bar.seen == sorted(bar.seen) and bar.seen[-1] == r.steps
    assert bar.disable, "the bar is closed at the end (tqdm disables a closed bar)"
