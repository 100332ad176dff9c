#!/usr/bin/env python3
"""Reference STDP weight trajectories of NEST 3.10 for neurotwin's test (sim/tests/integration/stdp.rs).

Each case is one synapse from a presynaptic to a postsynaptic parrot_neuron, both replaying given spike trains
(spike_generator -> parrot, delay 0.1 ms); the plastic connection goes into the post parrot's receptor 1, whose
spikes are used for STDP but not repeated, so the post spikes are exactly its train. A weight_recorder records the
weight each pre spike transmits. dt = 0.1 ms. Cases: NEST `stdp_synapse` (all-to-all pairing) with additive
(mu = 0), multiplicative (mu = 1) and Guetig (mu = 0.4) weight dependence, and `stdp_nn_symm_synapse`
(nearest-neighbour pairing), each with delays of 1 and 15 steps. Trains: Poisson at 25 Hz for 2 s plus pairs placed
on the edges of the pairing windows (post spikes d - 1, d and d + 1 steps before a pre spike, coincident spikes).
Post trains start after the first pre spike (NEST's nearest-neighbour rule pairs earlier post spikes with a phantom
pre spike at t = 0, which neurotwin deliberately does not).

Writes sim/tests/data/nest_stdp_reference.json: a list of cases with the rule's parameters, `delay_steps`,
`w0`, `pre_steps`, `post_steps` (neurotwin's step of each spike; NEST stamps are those steps shifted by a constant)
and `weights` (the weight transmitted by each pre spike, in order).
Run with the peers' Python (`make peers` installs it): peers-work/venv/bin/python scripts/make_nest_stdp_reference.py
"""
import json
import os

import nest
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sim", "tests", "data", "nest_stdp_reference.json")
DT = 0.1
STEPS = 20000
# The generator's spike at time (step + OFFSET) * DT reaches the parrot after 1 step: a constant shift.
OFFSET = 10

RULES = {
    "additive": dict(model="stdp_synapse", lambda_=0.01, alpha=1.05, mu_plus=0.0, mu_minus=0.0, Wmax=100.0,
                     tau_plus=16.8, tau_minus=33.7),
    "multiplicative": dict(model="stdp_synapse", lambda_=0.02, alpha=0.9, mu_plus=1.0, mu_minus=1.0, Wmax=100.0,
                           tau_plus=20.0, tau_minus=20.0),
    "guetig": dict(model="stdp_synapse", lambda_=0.03, alpha=1.1, mu_plus=0.4, mu_minus=0.4, Wmax=80.0,
                   tau_plus=15.0, tau_minus=25.0),
    "nearest": dict(model="stdp_nn_symm_synapse", lambda_=0.02, alpha=1.0, mu_plus=0.0, mu_minus=0.0, Wmax=100.0,
                    tau_plus=20.0, tau_minus=20.0),
}


def trains(rng, delay):
    pre = set(np.flatnonzero(rng.random(STEPS) < 25.0 * DT * 1e-3).tolist())
    post = set(np.flatnonzero(rng.random(STEPS) < 25.0 * DT * 1e-3).tolist())
    first = min(pre)
    # Edge pairs: post spikes at p - d - 1, p - d, p - d + 1 before isolated pre spikes, and coincident spikes.
    for k, p in enumerate(range(first + 400, STEPS - 400, 1700)):
        pre.add(p)
        post.add(p - delay + (k % 3) - 1)
        if k % 4 == 0:
            post.add(p)
    post = sorted(s for s in post if s > first)
    return sorted(pre), post


def simulate(rule, delay, w0, pre, post):
    nest.ResetKernel()
    nest.set_verbosity("M_WARNING")
    nest.resolution = DT
    gens = nest.Create("spike_generator", 2)
    gens[0].spike_times = [round((s + OFFSET) * DT, 6) for s in pre]
    gens[1].spike_times = [round((s + OFFSET) * DT, 6) for s in post]
    parrots = nest.Create("parrot_neuron", 2)
    parrots[1].tau_minus = rule["tau_minus"]
    nest.Connect(gens[0], parrots[0], syn_spec={"delay": DT})
    nest.Connect(gens[1], parrots[1], syn_spec={"delay": DT})
    wr = nest.Create("weight_recorder")
    name = rule["model"] + "_rec"
    nest.CopyModel(rule["model"], name, {"weight_recorder": wr})
    syn = {"synapse_model": name, "weight": w0, "delay": delay * DT, "receptor_type": 1,
           "tau_plus": rule["tau_plus"], "lambda": rule["lambda_"], "alpha": rule["alpha"],
           "mu_plus": rule["mu_plus"], "mu_minus": rule["mu_minus"], "Wmax": rule["Wmax"]}
    nest.Connect(parrots[0], parrots[1], syn_spec=syn)
    spikes = nest.Create("spike_recorder")
    nest.Connect(parrots, spikes)
    nest.Simulate((STEPS + OFFSET + 50) * DT)
    ev = spikes.events
    for k, train in enumerate([pre, post]):
        got = np.round(ev["times"][ev["senders"] == parrots[k].global_id] / DT).astype(int) - OFFSET - 1
        assert got.tolist() == train, f"parrot {k} did not replay its train"
    w = wr.events
    order = np.argsort(w["times"], kind="stable")
    assert len(order) == len(pre), (len(order), len(pre))
    return [float(x) for x in np.asarray(w["weights"])[order]]


def main():
    rng = np.random.default_rng(20261207)
    cases = []
    for name, rule in RULES.items():
        for delay in (1, 15):
            pre, post = trains(rng, delay)
            w0 = 50.0 if name != "guetig" else 40.0
            weights = simulate(rule, delay, w0, pre, post)
            cases.append(dict(name=f"{name}-d{delay}", pairing="nearest" if name == "nearest" else "all_to_all",
                              tau_plus_ms=rule["tau_plus"], tau_minus_ms=rule["tau_minus"], lambda_=rule["lambda_"],
                              alpha=rule["alpha"], mu_plus=rule["mu_plus"], mu_minus=rule["mu_minus"],
                              w_max=rule["Wmax"], delay_steps=delay, w0=w0, pre_steps=pre, post_steps=post,
                              weights=weights))
            print(f"{name} d={delay}: {len(pre)} pre, {len(post)} post spikes, w {w0} -> {weights[-1]:.6f}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(dict(source=f"NEST {nest.__version__}, scripts/make_nest_stdp_reference.py", dt_ms=DT,
                       cases=cases), f, separators=(",", ":"))
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
