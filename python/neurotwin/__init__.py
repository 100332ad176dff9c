"""neurotwin: connectome-constrained digital twins, from Python.

The Rust engine does the work; this package gives it a typed API with NumPy results::

    import neurotwin
    sc = neurotwin.Scenario.from_file("scenarios/celegans_touch.toml")
    r = neurotwin.run(sc)                       # releases the GIL while simulating
    r.spike_times_ms, r.spike_neurons           # NumPy arrays (float64 ms, uint32 neuron index)
    r.summary["mean_rate_hz"]                   # the run's summary.json as a dict

A scenario is the same TOML the CLI reads (``neurotwin run``), from a file, a string or a dict, validated with
the CLI's located messages (``ScenarioError``, a ``ValueError``). Results are bit-identical to the CLI's for the
same scenario, seed and backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from . import _neurotwin
from ._neurotwin import ScenarioError, SimulationError, __version__

__all__ = ["Connectome", "Scenario", "RunResult", "run", "run_all", "ScenarioError", "SimulationError",
           "__version__"]


def _table(columns: Dict[str, Any]):
    """A pandas DataFrame of `columns` when pandas is installed, else the dict of columns (NumPy arrays / lists)."""
    try:
        import pandas as pd
    except ImportError:
        return columns
    return pd.DataFrame(columns)


class Connectome:
    """A connectome as read from a source, before compilation: neurons and connections.

    ``neurons`` and ``connections`` are pandas DataFrames when pandas is installed, else dicts of columns.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: "_neurotwin.Connectome") -> None:
        self._inner = inner

    @classmethod
    def celegans(cls) -> "Connectome":
        """The C. elegans hermaphrodite connectome built into neurotwin (Cook et al. 2019, Nature 571:63)."""
        return cls(_neurotwin.Connectome.celegans())

    @classmethod
    def from_csv(cls, connections: Union[str, Path], neurons: Union[str, Path, None] = None,
                 layout: str = "auto") -> "Connectome":
        """A connections CSV (and optionally a neurons CSV): ``layout`` is ``auto``, ``generic``, ``flywire`` or
        ``neuprint``, as for ``neurotwin import``. Errors name the file and line (``ScenarioError``)."""
        return cls(_neurotwin.Connectome.from_csv(Path(connections), None if neurons is None else Path(neurons),
                                                  layout))

    @classmethod
    def from_hdf5(cls, path: Union[str, Path]) -> "Connectome":
        """A connectome in neurotwin's HDF5 format (``neurotwin import ... -o file.h5``)."""
        return cls(_neurotwin.Connectome.from_hdf5(Path(path)))

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def provenance(self) -> List[str]:
        """Where the data came from (papers, files, licences)."""
        return self._inner.provenance

    @property
    def neurons(self):
        """Columns ``id`` (uint64), ``name``, ``cell_type``, ``transmitter``, ``region`` (empty when unknown)."""
        return _table(self._inner.neuron_columns)

    @property
    def connections(self):
        """Columns ``pre``, ``post`` (uint64 ids), ``kind`` (chemical / electrical), ``count`` (synapses),
        ``weight`` (NaN where count × weight_per_synapse applies)."""
        return _table(self._inner.connection_columns)

    def hubs(self, k: int = 10, metric: str = "degree") -> List[Dict[str, Any]]:
        """The ``k`` top neurons by ``metric`` (``degree``, ``in_degree``, ``out_degree``, ``synapses``,
        ``in_synapses``, ``out_synapses``, ``gap_degree``; as ``neurotwin inspect --hub-metric``): rank, value and
        the neuron's degrees and synapse counts."""
        return json.loads(self._inner.hubs_json(k, metric))

    def path(self, sources: Union[str, List[str]], targets: Union[str, List[str]], metric: str = "hops",
             include_gap: bool = False) -> Optional[Dict[str, Any]]:
        """The shortest path from any of ``sources`` to any of ``targets`` (names or ids) by ``metric`` (``hops``
        or ``strongest``): hops, cost and the steps with the edge taken; None when there is none."""
        def as_list(x: Union[str, List[str]]) -> List[str]:
            return [x] if isinstance(x, str) else [str(v) for v in x]
        return json.loads(self._inner.path_json(as_list(sources), as_list(targets), metric, include_gap))

    def compile(self, transmitters: str, dt_ms: float = 0.1, weight_per_synapse: float = 1.0,
                default_delay_ms: float = 1.0, gap_per_junction_ns: float = 1.0,
                min_synapse_count: float = 0.0) -> Dict[str, Any]:
        """Compiles the connectome as a run does and returns the compile report: synapses, segments, bytes per
        synapse, weight encoding, max delay (steps), synapses per receptor class. ``transmitters`` is a preset
        (``fly``, ``celegans``, ``exc_inh``); weights are in the model's synaptic unit per synapse, delays in ms,
        gap conductance in nS per junction."""
        return json.loads(self._inner.compile_json(transmitters, dt_ms, weight_per_synapse, default_delay_ms,
                                                   gap_per_junction_ns, min_synapse_count))

    def to_hdf5(self, path: Union[str, Path]) -> None:
        """Writes the connectome in neurotwin's HDF5 format (atomically); a scenario's ``[network] source`` can
        name the file."""
        self._inner.to_hdf5(Path(path))

    def strongly_connected_components(self, include_gap: bool = False) -> Dict[str, Any]:
        """Count, largest size, singletons and the ten largest sizes of the strongly connected components."""
        return json.loads(self._inner.scc_json(include_gap))

    def __repr__(self) -> str:
        return repr(self._inner)


def _json(where: str, v: Any) -> str:
    """`v` as JSON for the Rust side, refusing what TOML cannot hold (None, NaN, infinities)."""
    try:
        return json.dumps(v, allow_nan=False, default=_not_toml(where))
    except ValueError as e:
        raise ScenarioError(f"{where}: {e} (only finite numbers can be written)") from None


def _not_toml(where: str):
    def fail(o: Any):
        if hasattr(o, "tolist"):  # NumPy scalars and arrays
            return o.tolist()
        raise ScenarioError(f"{where}: a {type(o).__name__} cannot be written in a scenario")
    return fail


class Scenario:
    """A scenario (the TOML schema of ``neurotwin run``), validated when created.

    Relative paths inside it resolve against the folder of ``path``.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: "_neurotwin.Scenario") -> None:
        self._inner = inner

    @classmethod
    def demo(cls) -> "Scenario":
        """The demo built into neurotwin (what ``neurotwin demo`` runs): gentle touch on the C. elegans twin."""
        return cls(_neurotwin.Scenario.demo())

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "Scenario":
        """The scenario in the TOML file ``path``."""
        return cls(_neurotwin.Scenario.from_file(Path(path)))

    @classmethod
    def from_string(cls, text: str, path: Union[str, Path, None] = None) -> "Scenario":
        """The scenario in the TOML text ``text``; ``path`` (default ``scenario.toml``) names it in messages and
        anchors its relative paths."""
        return cls(_neurotwin.Scenario.from_string(text, None if path is None else Path(path)))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: Union[str, Path, None] = None) -> "Scenario":
        """The scenario given as a dict with the TOML schema (tables as dicts, arrays of tables as lists of dicts).
        Errors name the field as for a file (the line refers to ``scenario.text``)."""
        if not isinstance(d, Mapping):
            raise ScenarioError(f"a scenario is a dict, got {type(d).__name__}")
        return cls(_neurotwin.Scenario.from_json(_json("scenario", dict(d)), None if path is None else Path(path)))

    def with_values(self, values: Mapping[str, Any]) -> "Scenario":
        """A new scenario with keys set, by dotted path: ``{"run.duration_ms": 200.0, "model.tau_m": 10.0}``
        (tables are created as needed). Validated like any scenario; the original is unchanged."""
        return Scenario(self._inner.edited([(k, _json(k, v)) for k, v in values.items()], []))

    def _appended(self, array: str, table: Mapping[str, Any]) -> "Scenario":
        return Scenario(self._inner.edited([], [(array, _json(array, dict(table)))]))

    def with_stimulus(self, **fields: Any) -> "Scenario":
        """A new scenario with one more ``[[stimulus]]`` (``name``, ``kind`` = poisson / current / activation,
        ``targets``, ``rate_hz``, ``weight``, ``amplitude``, ``start_ms``, ``stop_ms``, ... as in the TOML)."""
        return self._appended("stimulus", fields)

    def with_perturbation(self, **fields: Any) -> "Scenario":
        """A new scenario with one more ``[[perturbation]]`` (receptor block, silencing, lesion, ... as in the
        TOML)."""
        return self._appended("perturbation", fields)

    def with_readout(self, label: str, targets: Mapping[str, Any]) -> "Scenario":
        """A new scenario with one more read-out group (``[[readout]]``)."""
        return self._appended("readout", {"label": label, "targets": dict(targets)})

    def with_sweep(self, param: str, values: List[Any]) -> "Scenario":
        """A new scenario sweeping ``param`` (a dotted key such as ``perturbation.0.dose``) over ``values``."""
        return self.with_values({"sweep.param": param, "sweep.values": list(values)})

    @property
    def text(self) -> str:
        """The TOML text."""
        return self._inner.text

    @property
    def path(self) -> Path:
        """The path that names the scenario and anchors its relative paths."""
        return Path(self._inner.path)

    @property
    def n_runs(self) -> int:
        """Runs the scenario makes: sweep points × trials."""
        return self._inner.n_runs

    def __repr__(self) -> str:
        return f"Scenario({str(self.path)!r})"


class RunResult:
    """One finished run. Arrays are NumPy copies owned by Python: they stay valid after the result is dropped."""

    __slots__ = ("_inner", "_summary")

    def __init__(self, inner: "_neurotwin.RunResult") -> None:
        self._inner = inner
        self._summary: Optional[Dict[str, Any]] = None

    @property
    def spike_times_ms(self):
        """Spike times (ms, float64); a spike detected in step s is stamped (s + 1) · dt, as in NEST."""
        return self._inner.spike_times_ms

    @property
    def spike_neurons(self):
        """The neuron of each spike (uint32 index into ``neuron_names``)."""
        return self._inner.spike_neurons

    @property
    def spike_steps(self):
        """The simulation step of each spike (uint64)."""
        return self._inner.spike_steps

    @property
    def spike_counts(self):
        """Spikes per neuron over the whole run (uint64, one per neuron)."""
        return self._inner.spike_counts

    @property
    def neuron_names(self) -> List[str]:
        """Neuron names (empty strings where the connectome has none)."""
        return self._inner.neuron_names

    @property
    def cell_types(self) -> List[str]:
        """Cell type of each neuron (empty where unknown)."""
        return self._inner.cell_types

    @property
    def n_neurons(self) -> int:
        return self._inner.n_neurons

    @property
    def dt_ms(self) -> float:
        """Time step (ms)."""
        return self._inner.dt_ms

    @property
    def steps(self) -> int:
        return self._inner.steps

    @property
    def duration_ms(self) -> float:
        """Simulated time (ms)."""
        return self._inner.duration_ms

    @property
    def seed(self) -> int:
        return self._inner.seed

    @property
    def trial(self) -> int:
        return self._inner.trial

    @property
    def sweep_value(self) -> Optional[str]:
        """The swept value of this run as written in the scenario (None without a sweep)."""
        return self._inner.sweep_value

    @property
    def state(self):
        """Sampled state: ``{variable: (times_ms [T], neurons [K], values [T, K])}``."""
        return self._inner.state

    @property
    def rates(self):
        """Rate traces: ``{group: (bin_ms, rate_hz [bins])}`` (spikes per neuron per second per bin)."""
        return self._inner.rates

    @property
    def summary(self) -> Dict[str, Any]:
        """The run's summary (the content of the CLI's ``summary.json``) as a dict."""
        if self._summary is None:
            self._summary = json.loads(self._inner.summary_json)
        return self._summary

    def spikes_by_neuron(self) -> Dict[str, Any]:
        """``{neuron name or index: spike times (ms)}`` for the neurons that spiked."""
        times, ids, names = self.spike_times_ms, self.spike_neurons, self.neuron_names
        out: Dict[str, Any] = {}
        for i in sorted(set(ids.tolist())):
            out[names[i] or str(i)] = times[ids == i]
        return out

    def to_sonata(self, path: Union[str, Path]) -> None:
        """Writes the spikes as a SONATA spike file (HDF5), as ``neurotwin run`` writes ``spikes.h5``."""
        self._inner.to_sonata(Path(path))

    def __repr__(self) -> str:
        return repr(self._inner)


def _progress(progress: Union[bool, Callable[[int, int], Any]]):
    """(terminal bar on stderr, callback) for ``progress``: a callable is called as ``progress(steps_done,
    steps_total)``; True gives a tqdm bar (``tqdm.auto``: a widget in Jupyter, text in a terminal) when tqdm is
    installed, else the terminal bar."""
    if callable(progress):
        return False, progress
    if not progress:
        return False, None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return True, None
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="step", unit_scale=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return False, update


def run_all(scenario: Scenario, backend: str = "cpu", threads: Optional[int] = None,
            progress: Union[bool, Callable[[int, int], Any]] = False) -> List[RunResult]:
    """Every sweep point × trial of ``scenario`` on ``backend`` (``cpu``, ``cuda``, ``auto``, ``cuda-host``), in
    (point, trial) order, with the GIL released while simulating. ``progress``: True for a progress bar (tqdm when
    installed, so it works in Jupyter), or a callable ``f(steps_done, steps_total)`` called from this thread about
    every 50 ms (an exception in it stops the runs and is raised). Ctrl-C stops the runs (``KeyboardInterrupt``)."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a neurotwin.Scenario, got {type(scenario).__name__}")
    bar, callback = _progress(progress)
    return [RunResult(r) for r in _neurotwin.run_all(scenario._inner, backend, threads, bar, callback)]


def run(scenario: Scenario, backend: str = "cpu", threads: Optional[int] = None,
        progress: Union[bool, Callable[[int, int], Any]] = False) -> RunResult:
    """Runs a scenario without sweep or trials and returns its result (use ``run_all`` for sweeps and trials)."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a neurotwin.Scenario, got {type(scenario).__name__}")
    n = scenario.n_runs
    if n != 1:
        raise ScenarioError(f"{scenario.path}: the scenario makes {n} runs (sweep points × trials); "
                            "use neurotwin.run_all")
    return run_all(scenario, backend, threads, progress)[0]
