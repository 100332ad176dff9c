#!/usr/bin/env python3
"""Builds a small SONATA network with BMTK's NetworkBuilder, simulates it with BMTK's BioNet (NEURON) and writes
network, inputs, configs and the reference spike report into OUT (default data/sonata/bmtk_intfire): the
independent truth for neurotwin's SONATA simulation test (scenarios/tests/integration/sonata_run.rs).

    python3 -m venv .venv-bmtk-sim
    .venv-bmtk-sim/bin/pip install bmtk==1.2.0 neuron==9.0.2
    .venv-bmtk-sim/bin/python scripts/make_bmtk_sim.py data/sonata/bmtk_intfire

Network: 100 NEURON IntFire1 cells (80 excitatory: tau 24 ms, 20 inhibitory: tau 7 ms, refrac 3 ms — bmtk's
IntFire1_exc_1.json / IntFire1_inh_1.json), 60 virtual input cells firing Poisson trains (seeded), random
connectivity with 1-4 synapses per connected pair, each synapse its own edge row (bmtk writes one row per synapse
when edges carry a per-synapse property) with a delay drawn from 1.0-3.0 ms (an edge-group dataset, unlike
300_intfire's per-type delays), weights per edge type. Without an `nsyns` column BioNet uses `syn_weight` as given
(no sign from the synaptic model), so inhibitory weights are negative here. Everything random is seeded, so the
files are reproducible with the same package versions.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from bmtk.builder import NetworkBuilder
from bmtk.utils.reports.spike_trains import PoissonSpikeGenerator

OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "data/sonata/bmtk_intfire")
TSTOP = 2000.0  # ms
DT = 0.1  # ms
rng = np.random.default_rng(20261123)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    net_dir = os.path.join(OUT, "network")
    comp = os.path.join(OUT, "components")
    os.makedirs(os.path.join(comp, "point_neuron_models"))
    os.makedirs(os.path.join(comp, "synaptic_models"))
    os.makedirs(os.path.join(OUT, "inputs"))
    write_json(os.path.join(comp, "point_neuron_models", "IntFire1_exc_1.json"),
               {"tau": 0.024, "type": "NEURON_IntFire1", "refrac": 0.003})
    write_json(os.path.join(comp, "point_neuron_models", "IntFire1_inh_1.json"),
               {"tau": 0.007, "type": "NEURON_IntFire1", "refrac": 0.003})
    write_json(os.path.join(comp, "synaptic_models", "instantaneousExc.json"),
               {"level_of_detail": "instantaneous", "sign": 1})
    write_json(os.path.join(comp, "synaptic_models", "instantaneousInh.json"),
               {"level_of_detail": "instantaneous", "sign": -1})

    cortex = NetworkBuilder("cortex")
    cortex.add_nodes(N=80, pop_name="Exc", ei="e", model_name="LIF_exc", model_type="point_process",
                     model_template="nrn:IntFire1", dynamics_params="IntFire1_exc_1.json")
    cortex.add_nodes(N=20, pop_name="Inh", ei="i", model_name="LIF_inh", model_type="point_process",
                     model_template="nrn:IntFire1", dynamics_params="IntFire1_inh_1.json")

    def random_syns(source, target, p, no_self=False):
        if no_self and source.node_id == target.node_id:
            return 0
        return int(rng.integers(1, 5)) if rng.random() < p else 0

    def delay_of(source, target):
        return float(np.round(rng.uniform(1.0, 3.0), 1))

    for src, trg, p, w, model in [
        ("e", "e", 0.10, 0.004, "instantaneousExc.json"),
        ("e", "i", 0.20, 0.012, "instantaneousExc.json"),
        ("i", "e", 0.25, -0.010, "instantaneousInh.json"),
        ("i", "i", 0.20, -0.004, "instantaneousInh.json"),
    ]:
        cm = cortex.add_edges(source={"ei": src}, target={"ei": trg}, connection_rule=random_syns,
                              connection_params={"p": p, "no_self": True}, syn_weight=w, weight_function="wmax",
                              dynamics_params=model, model_template="exp2syn")
        cm.add_properties("delay", rule=delay_of, dtypes=float)
    cortex.build()
    cortex.save_nodes(output_dir=net_dir)
    cortex.save_edges(output_dir=net_dir)

    ext = NetworkBuilder("ext")
    ext.add_nodes(N=60, model_type="virtual", pop_name="ext", ei="e")
    for trg, p, w in [("e", 0.3, 0.05), ("i", 0.3, 0.08)]:
        cm = ext.add_edges(source=ext.nodes(), target=cortex.nodes(ei=trg), connection_rule=random_syns,
                           connection_params={"p": p}, syn_weight=w, weight_function="wmax",
                           dynamics_params="instantaneousExc.json", model_template="exp2syn")
        cm.add_properties("delay", rule=delay_of, dtypes=float)
    ext.build()
    ext.save_nodes(output_dir=net_dir)
    ext.save_edges(output_dir=net_dir)

    psg = PoissonSpikeGenerator(population="ext", seed=7)
    psg.add(node_ids=range(60), firing_rate=12.0, times=(0.0, TSTOP / 1000.0))
    psg.to_sonata(os.path.join(OUT, "inputs", "ext_spikes.h5"))

    circuit = {
        "manifest": {"$NETWORK_DIR": "./network", "$COMPONENT_DIR": "./components"},
        "components": {"point_neuron_models_dir": "$COMPONENT_DIR/point_neuron_models",
                       "synaptic_models_dir": "$COMPONENT_DIR/synaptic_models"},
        "networks": {
            "nodes": [{"nodes_file": "$NETWORK_DIR/%s_nodes.h5" % n, "node_types_file": "$NETWORK_DIR/%s_node_types.csv" % n}
                      for n in ("cortex", "ext")],
            "edges": [{"edges_file": "$NETWORK_DIR/%s_edges.h5" % e, "edge_types_file": "$NETWORK_DIR/%s_edge_types.csv" % e}
                      for e in ("cortex_cortex", "ext_cortex")],
        },
    }
    write_json(os.path.join(OUT, "circuit_config.json"), circuit)
    simulation = {
        "manifest": {"$BASE_DIR": ".", "$OUTPUT_DIR": "$BASE_DIR/output", "$INPUT_DIR": "$BASE_DIR/inputs"},
        "target_simulator": "NEURON",
        "run": {"tstop": TSTOP, "dt": DT, "dL": 20.0, "spike_threshold": -15.0, "nsteps_block": 5000},
        "conditions": {"celsius": 34.0, "v_init": -80.0},
        "inputs": {"ext_spikes": {"input_type": "spikes", "module": "sonata",
                                  "input_file": "$INPUT_DIR/ext_spikes.h5", "node_set": "ext"}},
        "output": {"output_dir": "$OUTPUT_DIR", "log_file": "log.txt", "spikes_file": "spikes.h5",
                   "spikes_sort_order": "time", "overwrite_output_dir": True},
        "node_sets": {"ext": {"population": "ext"}, "cortex": {"population": "cortex"}},
        "network": "./circuit_config.json",
    }
    write_json(os.path.join(OUT, "simulation_config.json"), simulation)

    # BioNet (NEURON) run: the reference. Virtual cells need NEURON's VecStim (bmtk's vecevent.mod), compiled
    # with nrnivmodl into a temporary folder named only in a temporary copy of the simulation config.
    import bmtk
    mod = os.path.join(os.path.dirname(bmtk.__file__), "utils/scripts/bionet/mechanisms/modfiles/vecevent.mod")
    mech = tempfile.mkdtemp(prefix="bmtk-mech-")
    shutil.copy(mod, mech)
    nrnivmodl = os.path.join(os.path.dirname(sys.executable), "nrnivmodl")
    subprocess.run([nrnivmodl, "."], cwd=mech, check=True, stdout=subprocess.DEVNULL)
    run_cfg = dict(simulation, components={"mechanisms_dir": mech})
    write_json(os.path.join(OUT, "run_config.json"), run_cfg)
    import neuron
    if not neuron.load_mechanisms(mech):
        sys.exit("could not load the compiled vecevent.mod from " + mech)
    from bmtk.simulator import bionet
    os.chdir(OUT)  # bmtk resolves the configs' relative paths against the working directory
    conf = bionet.Config.from_json("run_config.json", validate=True)
    conf.build_env()
    net = bionet.BioNetwork.from_config(conf)
    sim = bionet.BioSimulator.from_config(conf, network=net)
    sim.run()

    # Keep the reference beside, not in output/ (which `neurotwin run` writes).
    os.makedirs(os.path.join(OUT, "expected_output"))
    shutil.move(os.path.join(OUT, "output", "spikes.h5"), os.path.join(OUT, "expected_output", "spikes.h5"))
    shutil.rmtree(os.path.join(OUT, "output"))
    os.remove(os.path.join(OUT, "run_config.json"))
    shutil.rmtree(mech)
    with h5py.File(os.path.join(OUT, "expected_output", "spikes.h5")) as f:
        n = len(f["spikes/cortex/timestamps"])
    print("reference spikes (cortex):", n)


if __name__ == "__main__":
    main()
