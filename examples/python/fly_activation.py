"""A Shiu-style activation experiment, built in Python: drive a set of neurons of a generated fly-brain-scale
network and count the neurons that respond (the network and stimulus are a dict with the scenario schema)."""
import numpy as np

import neurotwin

scenario = neurotwin.Scenario.from_dict({
    "name": "fly-activation",
    "network": {"generator": {"kind": "flybrain", "scale": 0.02}},
    "run": {"duration_ms": 200.0, "dt_ms": 0.1, "seed": 3},
    "stimulus": [{"name": "drive", "kind": "activation", "targets": {"ids": list(range(50))},
                  "rate_hz": 150.0, "start_ms": 0.0, "stop_ms": 200.0}],
})
r = neurotwin.run(scenario)
counts = r.spike_counts
responders = np.flatnonzero(counts[50:] > 0) + 50
print(f"{r.n_neurons} neurons; driven 50 fired {int(counts[:50].sum())} spikes; "
      f"{len(responders)} others responded ({int(counts[50:].sum())} spikes)")
