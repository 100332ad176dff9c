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
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import _neurotwin
from ._neurotwin import CommandFailed, ScenarioError, SimulationError, __version__

__all__ = ["Connectome", "GeneratedNetwork", "Scenario", "RunResult", "run", "run_all", "compare", "fit", "segment",
           "segment_train", "segment_synthetic",
           "CommandResult", "ScenarioError", "SimulationError", "CommandFailed", "__version__"]


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

    @classmethod
    def from_sonata(cls, circuit_config: Union[str, Path]) -> "Connectome":
        """The circuit of a SONATA ``circuit_config.json``: every node and edge population it lists, as
        ``neurotwin inspect`` reads it. Neurons are named ``<population>:<node_id>`` and numbered in the order of
        the config's ``nodes`` list; one SONATA edge is one connection (``count`` = its ``nsyns``, 1 when absent;
        ``weight`` = ``syn_weight`` where given). Errors name the file (``ScenarioError``)."""
        return cls(_neurotwin.Connectome.from_sonata(Path(circuit_config)))

    @staticmethod
    def generate(kind: str, seed: int = 1, dt_ms: float = 0.1, **params: Any) -> "GeneratedNetwork":
        """A benchmark network built by generator ``kind``, exactly as a scenario's
        ``[network] generator = { kind = ..., ... }`` builds it: ``cuba`` (Vogels & Abbott 2005), ``coba`` (its
        conductance-based twin), ``brunel``
        (Brunel 2000, delta synapses), ``pd14`` (Potjans & Diesmann 2014) or ``flybrain`` (fly-brain statistics).
        ``params`` are that table's keys (e.g. ``order=50, g=5.0`` for brunel; every key has the published
        default); ``seed`` is the connectivity seed (a scenario's ``[network] seed``, default its ``run.seed``,
        1) and ``dt_ms`` the time step (ms) delays are rounded to. An unknown ``kind`` or key, or a value of the
        wrong type, raises ``ScenarioError`` naming it."""
        return GeneratedNetwork(_neurotwin.GeneratedNetwork.generate(kind, _json(f"generator {kind}", params),
                                                                     seed, dt_ms))

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


class GeneratedNetwork:
    """A benchmark network from ``Connectome.generate``, already compiled (delays in whole steps of ``dt_ms``,
    receptor channels ``exc`` and ``inh``)."""

    __slots__ = ("_inner", "_meta")

    #: Largest synapse table ``synapses`` builds (bytes, estimated at 48 B per synapse); see ``synapse_table``.
    MAX_TABLE_BYTES = 4e9

    def __init__(self, inner: "_neurotwin.GeneratedNetwork") -> None:
        self._inner = inner
        self._meta: Dict[str, Any] = json.loads(inner.meta_json)

    @property
    def kind(self) -> str:
        """The generator (``cuba``, ``coba``, ``brunel``, ``pd14``, ``flybrain``)."""
        return self._inner.kind

    @property
    def seed(self) -> int:
        """The connectivity seed."""
        return self._inner.seed

    @property
    def dt_ms(self) -> float:
        """The time step (ms) the delays are whole multiples of."""
        return self._inner.dt_ms

    @property
    def n_neurons(self) -> int:
        return self._inner.n_neurons

    @property
    def n_synapses(self) -> int:
        """Chemical synapses (multapses counted one by one)."""
        return self._inner.n_synapses

    @property
    def populations(self) -> List[Dict[str, Any]]:
        """Populations in neuron order: ``name``, ``start``, ``stop`` (neuron indices ``start <= i < stop``),
        ``params`` (the neuron parameters as a dict: ``model`` and its fields, in the model's units: ms, mV, pA,
        pF, nS) and ``v_init`` (the initial-potential distribution, mV)."""
        return [dict(p) for p in self._meta["populations"]]

    @property
    def background(self) -> List[Dict[str, Any]]:
        """External input per population: ``poisson`` (``rate_hz``, ``weight`` in the model's synaptic unit,
        ``receptor``) or ``dc`` (``amplitude_pa``); ``population`` indexes ``populations``."""
        return [dict(b) for b in self._meta["background"]]

    @property
    def expected_rate_hz(self) -> Optional[float]:
        """Mean firing rate over all neurons (Hz) that peer simulators measured for this configuration, or None
        when none has (``expected_rate_source`` says where it comes from)."""
        e = self._meta["expected_rate_hz"]
        return None if e is None else float(e[0])

    @property
    def expected_rate_source(self) -> Optional[str]:
        """The source of ``expected_rate_hz`` (None with it)."""
        e = self._meta["expected_rate_hz"]
        return None if e is None else str(e[1])

    @property
    def synapses(self):
        """The synapse table (``synapse_table()`` with the default limit)."""
        return self.synapse_table()

    def synapse_table(self, max_bytes: float = MAX_TABLE_BYTES):
        """The synapses in matrix order (by presynaptic neuron): columns ``pre``, ``post`` (uint32 neuron index),
        ``weight`` (float32, signed, in the model's synaptic unit: mV for brunel's ``lif_delta``, pA for
        ``lif_exp``, nS for coba's ``lif_cond_exp``), ``delay_ms`` (float64) and ``receptor`` (``exc`` / ``inh``; a pandas categorical in a
        DataFrame, a NumPy str array in the dict). A pandas DataFrame when pandas is installed, else a dict of
        arrays. Raises ``ValueError`` with the estimate when the table would take more than ``max_bytes``
        (about 48 B per synapse)."""
        cols = self._inner.synapse_columns(float(max_bytes))
        codes, names = cols.pop("receptor_code"), cols.pop("receptors")
        try:
            import pandas as pd
        except ImportError:
            import numpy as np
            cols["receptor"] = np.asarray(names)[codes]
            return cols
        cols["receptor"] = pd.Categorical.from_codes(codes, categories=names)
        return pd.DataFrame(cols)

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
    """One finished run. Its arrays are read-only NumPy views of the result's own buffers (no copy; writing to one
    raises ``ValueError``, ``.copy()`` gives a writable array): each array keeps the buffers alive, so arrays stay
    valid after the result is dropped. Two reads of a property give two views of the same memory."""

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
        """Sampled state: ``{variable: (times_ms [T], neurons [K], values [T, K])}``: sample times (ms, float64),
        neuron indices (uint32) and values (float64, C order, in the variable's unit: mV for ``V_m``)."""
        return self._inner.state

    @property
    def rates(self):
        """Rate traces: ``{group: (bin_ms, rate_hz [bins])}`` (spikes per neuron per second per bin)."""
        return self._inner.rates

    @property
    def weights(self) -> Optional[Dict[str, Any]]:
        """Snapshots of the plastic synapses' weights (``[[plasticity]]``), or ``None`` without them:
        ``{"times_ms": [T], "weights": [T, S], "pre": [S], "post": [S], "projection": [S], "projections": [names]}``
        — snapshot times (ms), weights (float64, model's synaptic unit), each synapse's neuron indices (uint32) and
        group (uint8 index into ``projections``), as in the CLI's ``weights.h5``."""
        return self._inner.weights

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

    def to_nwb(self, path: Union[str, Path], indicator: str = "GCaMP6s", frame_rate_hz: float = 10.0,
               noise: bool = False, f0_photons: float = 1000.0, noise_seed: Optional[int] = None,
               species: Optional[str] = None, sex: Optional[str] = None) -> str:
        """Writes the run as an NWB 2.x file, as ``neurotwin export nwb`` writes a run folder: the spikes as the
        units table (seconds) and their simulated ΔF/F through the calcium forward model (``indicator``: GCaMP6s,
        GCaMP6f, GCaMP7f, GCaMP8m) at ``frame_rate_hz`` (Hz) in ``processing/ophys/DfOverF/dff``; with ``noise``,
        shot noise for ``f0_photons`` resting photons per frame (seed ``noise_seed``, default the run's seed).
        ``species`` (Latin binomial) and ``sex`` go to ``/general/subject``. Returns the CLI's one-line account."""
        return _neurotwin.write_nwb(self._inner, Path(path), indicator, float(frame_rate_hz), bool(noise),
                                    float(f0_photons), noise_seed, species, sex)

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
            progress: Union[bool, Callable[[int, int], Any]] = False, profile: bool = False) -> List[RunResult]:
    """Every sweep point × trial of ``scenario`` on ``backend`` (``cpu``, ``cuda``, ``auto``, ``cuda-host``), in
    (point, trial) order, with the GIL released while simulating. ``progress``: True for a progress bar (tqdm when
    installed, so it works in Jupyter), or a callable ``f(steps_done, steps_total)`` called from this thread about
    every 50 ms (an exception in it stops the runs and is raised). Ctrl-C stops the runs (``KeyboardInterrupt``).
    ``profile``: time each phase of the step loop (seconds) into ``summary["phases"]``, as ``neurotwin run
    --profile``; results do not change."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a neurotwin.Scenario, got {type(scenario).__name__}")
    bar, callback = _progress(progress)
    return [RunResult(r) for r in _neurotwin.run_all(scenario._inner, backend, threads, bar, callback, profile)]


def run(scenario: Scenario, backend: str = "cpu", threads: Optional[int] = None,
        progress: Union[bool, Callable[[int, int], Any]] = False, profile: bool = False) -> RunResult:
    """Runs a scenario without sweep or trials and returns its result (use ``run_all`` for sweeps and trials)."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a neurotwin.Scenario, got {type(scenario).__name__}")
    n = scenario.n_runs
    if n != 1:
        raise ScenarioError(f"{scenario.path}: the scenario makes {n} runs (sweep points × trials); "
                            "use neurotwin.run_all")
    return run_all(scenario, backend, threads, progress, profile)[0]


class CommandResult:
    """A finished ``compare``, ``fit`` or ``segment``: its report as a dict (what the CLI writes as JSON: ``fit``'s
    ``summary.json``, ``segment``'s ``report.json``, ``compare``'s ``atlas_summary.json`` or one entry per recording
    with its comparison), the output folder and the files written there."""

    __slots__ = ("command", "out_dir", "files", "report")

    def __init__(self, command: str, out_dir: Path, files: List[Path], report: Any) -> None:
        self.command = command
        self.out_dir = Path(out_dir)
        self.files = [Path(f) for f in files]
        self.report = report

    def __repr__(self) -> str:
        return f"CommandResult({self.command!r}, out_dir={str(self.out_dir)!r}, {len(self.files)} files)"


def _flag_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def _cli_args(command: str, positional: List[Any], options: Mapping[str, Any]) -> List[str]:
    """The CLI's argument list: ``key=value`` becomes ``--key value`` (underscores as dashes), True a bare flag,
    False or None nothing, a list ``a,b,c``."""
    args = [command] + [str(p) for p in positional if p is not None]
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        else:
            args += [flag, _flag_value(value)]
    return args


def _run_command(args: List[str]) -> CommandResult:
    command, out_dir, files, report = _neurotwin.run_cli_command(args)
    return CommandResult(command, out_dir, files, json.loads(report))


def _scenario_path(scenario: Union[str, Path, Scenario]) -> Path:
    """The file of ``scenario``: a path, or a ``Scenario`` read from a file whose text it still is."""
    if isinstance(scenario, Scenario):
        p = scenario.path
        if not p.is_file() or p.read_text() != scenario.text:
            raise ScenarioError(f"{p}: this command reads the scenario from its file, and the Scenario is not the "
                                "file's text (it was built or edited in Python): write scenario.text to a .toml file "
                                "beside the data it names and pass that path")
        return p
    return Path(scenario)


def compare(scenario: Union[str, Path, Scenario, None] = None, **options: Any) -> CommandResult:
    """``neurotwin compare``: the scenario's model against real data as its ``[compare]`` section says (a
    propagation atlas, or calcium recordings), or a finished run (``sim=RUN_FOLDER, recording=FILE``) against a
    recording. ``options`` are the CLI's flags as keywords (``out``, ``backend``, ``format``, ``series``,
    ``labels``, ``nan_policy``, ``indicator``, ``overwrite``; see ``neurotwin compare --help``). Writes the same
    output folder as the CLI and returns its report; errors carry the CLI's message (``ScenarioError`` for a
    located scenario error, ``ValueError`` for a flag, ``CommandFailed`` otherwise)."""
    positional = [] if scenario is None else [_scenario_path(scenario)]
    return _run_command(_cli_args("compare", positional, options))


def fit(scenario: Union[str, Path, Scenario], **options: Any) -> CommandResult:
    """``neurotwin fit``: calibrates a twin on data (a scenario with a ``[fit]`` section) by gradient descent,
    cross-validated against baselines. ``options`` are the CLI's flags as keywords (``out``, ``threads``,
    ``backend``, ``overwrite``). Returns the report (``summary.json``; ``fitted_params.json`` is in ``files``)."""
    return _run_command(_cli_args("fit", [_scenario_path(scenario)], options))


def segment(volume: Union[str, Path], out: Union[str, Path], **options: Any) -> CommandResult:
    """``neurotwin segment``: EM volume (HDF5 or Zarr) → boundary map → segmentation → synapses → connectome,
    scored with VOI, adapted Rand and synapse F1 when ``ground_truth`` is given. ``options`` are the CLI's flags as
    keywords (``raw_dataset``, ``boundary``, ``ground_truth``, ``thresholds=[0.3, 0.5]``, ``block``, ``chunk``,
    ``voxel_size``, ``synapses``, ``gt_synapses``, ``min_neuron_voxels``, ``synapse_radius`` (nm),
    ``boundary_source`` (``"unet"``: the shipped trained U-Net, the default; ``"sheetness"``: the membrane filter),
    ``cnn``, ``cnn_backend``, ``config``, ``overwrite``, ``out_of_core=True``). Returns the report (``report.json``:
    scores, segments, synapses); ``Connectome.from_hdf5(result.out_dir / "connectome.h5")`` reads the connectome it
    wrote. With ``out_of_core=True`` (a Zarr volume and ``block`` required) every stage runs block by block between
    Zarr arrays, for volumes larger than memory: ``segmentation.zarr`` (fragments, one segmentation per threshold)
    and ``report.json`` (with the peak resident memory), no synapses or connectome; the labels equal the in-memory
    run's voxel for voxel."""
    return _run_command(_cli_args("segment", [volume], dict(options, out=out)))


def segment_synthetic(out: Union[str, Path], shape: Sequence[int], **options: Any) -> CommandResult:
    """``neurotwin segment synthetic``: writes ``out/synthetic.zarr``, a synthetic EM volume of any size generated block
    by block (Voronoi cells of a jittered lattice): ``volumes/raw``, ``volumes/boundary`` (uint8) and
    ``volumes/labels/neuron_ids`` (uint64 ground truth). ``options``: ``voxel_size`` (nm, default 10,10,10),
    ``cell_nm`` (400), ``membrane_nm`` (40), ``noise`` (0.1), ``seed``, ``block``, ``chunk``, ``overwrite``."""
    return _run_command(_cli_args("segment", ["synthetic"], dict(options, out=out, shape=list(shape))))


def segment_train(volume: Union[str, Path], out: Union[str, Path], **options: Any) -> CommandResult:
    """``neurotwin segment train``: fits a boundary U-Net to raw EM with ground-truth labels, z-slices
    ``[0, train_slices)`` training and the rest giving the validation loss. ``options`` are the CLI's flags as
    keywords (``ground_truth`` (required), ``raw_dataset``, ``train_slices``, ``arch`` (a JSON file), ``init``,
    ``steps``, ``patch=[16, 64, 64]``, ``batch``, ``lr``, ``seed``, ``eval_every``, ``backend`` (``"cpu"`` or
    ``"cuda-host"``), ``overwrite``). Writes ``unet.safetensors`` (use as ``segment(..., cnn=...)``),
    ``training.json`` and ``loss.png``; returns what ``training.json`` holds (settings and the per-step
    ``history``)."""
    return _run_command(_cli_args("segment", ["train", volume], dict(options, out=out)))
