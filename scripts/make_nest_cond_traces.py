#!/usr/bin/env python3
"""Reference membrane traces of NEST 3.10's conductance-based neurons for neurotwin's tests
(models/tests/integration/nest_conductance.rs): iaf_cond_exp, iaf_cond_alpha and aeif_cond_exp, one neuron each,
driven by excitatory and inhibitory spike_generator events (delay 0.1 ms) and, in a second run, a constant current
that makes it fire. dt = 0.1 ms; V_m recorded every step (multimeter, interval 0.1 ms) for 60 ms.

Writes models/tests/data/nest_cond_<model>_<run>.csv with columns t_ms,V_m and
models/tests/data/nest_cond_<model>_<run>_spikes.csv with column t_ms.
Run with the peers' Python (`make peers` installs it): peers-work/venv/bin/python scripts/make_nest_cond_traces.py
"""
import os
import nest

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "tests", "data")
# (time of the spike_generator event in ms, weight in nS); NEST delivers it with the connection's 0.1 ms delay.
EVENTS = [(5.0, 30.0), (20.0, -40.0), (30.0, 60.0), (30.5, 45.0), (45.0, -25.0)]
MODELS = {
    "iaf_cond_exp": dict(tau_syn_ex=2.0, tau_syn_in=5.0),
    "iaf_cond_alpha": dict(tau_syn_ex=2.0, tau_syn_in=5.0),
    "aeif_cond_exp": dict(tau_syn_ex=2.0, tau_syn_in=5.0),
}
RUNS = {"events": 0.0, "firing": {"iaf_cond_exp": 300.0, "iaf_cond_alpha": 300.0, "aeif_cond_exp": 800.0}}


def simulate(model, params, i_e):
    nest.ResetKernel()
    nest.set_verbosity("M_WARNING")
    nest.resolution = 0.1
    n = nest.Create(model, params=dict(params, I_e=i_e))
    mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": 0.1})
    sr = nest.Create("spike_recorder")
    for t, w in EVENTS:
        g = nest.Create("spike_generator", params={"spike_times": [t]})
        nest.Connect(g, n, syn_spec={"weight": w, "delay": 0.1})
    nest.Connect(mm, n)
    nest.Connect(n, sr)
    nest.Simulate(60.0)
    ev = mm.get("events")
    return list(zip(ev["times"], ev["V_m"])), list(sr.get("events")["times"])


for model, params in MODELS.items():
    for run, i_e in RUNS.items():
        i = i_e if isinstance(i_e, float) else i_e[model]
        trace, spikes = simulate(model, params, i)
        name = os.path.join(OUT, "nest_cond_%s_%s" % (model, run))
        with open(name + ".csv", "w") as f:
            f.write("t_ms,V_m\n")
            f.writelines("%.1f,%.17g\n" % (t, v) for t, v in trace)
        with open(name + "_spikes.csv", "w") as f:
            f.write("t_ms\n")
            f.writelines("%.1f\n" % t for t in spikes)
        print(model, run, "I_e", i, "spikes", spikes[:8])
