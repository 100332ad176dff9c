#!/usr/bin/env python3
"""A NeuroML 2 network of Izhikevich neurons and its jNeuroML reference, for neurotwin's NeuroML import test
(tests/cli/neuroml.rs): two `izhikevich2007Cell` types (regular spiking, Izhikevich 2007 ch. 8: C 100 pF, k 0.7 nS/mV,
v_r -60 mV, v_t -40 mV, v_peak 35 mV, a 0.03/ms, b -2 nS, c -50 mV, d 100 pA; and a faster-adapting variant), 6 + 3
cells, excitatory and inhibitory `expTwoSynapse` projections with weights and delays of 1 and 2 ms, and pulse currents
of 100-200 pA into the regular-spiking cells. 200 ms at dt = 0.025 ms with jNeuroML (forward Euler). Writes
data/neuroml_izh/: IzhNet.net.nml, LEMS_IzhNet.xml, reference_v.csv (t_ms and every cell's V in mV every 0.25 ms) and
reference_spikes.csv (cell, t_ms of each reset).
Run: ./scripts/setup-neuroml.sh && .venv-neuroml/bin/python scripts/make_izh_reference.py
"""
import os
import shutil
import tempfile

import neuroml
import neuroml.writers as writers
import numpy as np
from pyneuroml import pynml
from pyneuroml.lems import LEMSSimulation

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "neuroml_izh")
DT, LENGTH = 0.025, 200.0


def main():
    doc = neuroml.NeuroMLDocument(id="IzhNet")
    doc.izhikevich2007_cells.append(neuroml.Izhikevich2007Cell(
        id="izh_rs", C="100pF", v0="-60mV", k="0.7nS_per_mV", vr="-60mV", vt="-40mV", vpeak="35mV",
        a="0.03per_ms", b="-2nS", c="-50mV", d="100pA"))
    doc.izhikevich2007_cells.append(neuroml.Izhikevich2007Cell(
        id="izh_fast", C="50pF", v0="-60mV", k="1.0nS_per_mV", vr="-60mV", vt="-42mV", vpeak="30mV",
        a="0.1per_ms", b="0.5nS", c="-55mV", d="20pA"))
    doc.exp_two_synapses.append(neuroml.ExpTwoSynapse(id="ampa", gbase="6nS", erev="0mV", tau_rise="0.5ms",
                                                      tau_decay="5ms"))
    doc.exp_two_synapses.append(neuroml.ExpTwoSynapse(id="gaba", gbase="2nS", erev="-75mV", tau_rise="1ms",
                                                      tau_decay="10ms"))
    net = neuroml.Network(id="IzhNet")
    doc.networks.append(net)
    rs = neuroml.Population(id="RS", component="izh_rs", size=6, type="populationList")
    fs = neuroml.Population(id="FS", component="izh_fast", size=3, type="populationList")
    for pop in (rs, fs):
        for i in range(pop.size):
            pop.instances.append(neuroml.Instance(id=i, location=neuroml.Location(x=i, y=0, z=0)))
        net.populations.append(pop)
    ee = neuroml.Projection(id="RS_FS", presynaptic_population="RS", postsynaptic_population="FS", synapse="ampa")
    ii = neuroml.Projection(id="FS_RS", presynaptic_population="FS", postsynaptic_population="RS", synapse="gaba")
    rng = np.random.default_rng(7)
    k = 0
    for i in range(6):
        for j in range(3):
            if rng.random() < 0.7:
                ee.connection_wds.append(neuroml.ConnectionWD(
                    id=k, pre_cell_id=f"../RS/{i}/izh_rs", post_cell_id=f"../FS/{j}/izh_fast",
                    weight=float(round(rng.uniform(0.5, 2.0), 3)), delay="1ms"))
                k += 1
    for j in range(3):
        for i in range(6):
            if rng.random() < 0.7:
                ii.connection_wds.append(neuroml.ConnectionWD(
                    id=k, pre_cell_id=f"../FS/{j}/izh_fast", post_cell_id=f"../RS/{i}/izh_rs",
                    weight=float(round(rng.uniform(0.5, 2.0), 3)), delay="2ms"))
                k += 1
    net.projections.extend([ee, ii])
    for i in range(6):
        pg = neuroml.PulseGenerator(id=f"pulse{i}", delay=f"{10 + 5 * i}ms", duration="150ms",
                                    amplitude=f"{100 + 20 * i}pA")
        doc.pulse_generators.append(pg)
        il = neuroml.InputList(id=f"in{i}", populations="RS", component=pg.id)
        il.input.append(neuroml.Input(id=0, target=f"../RS/{i}/izh_rs", destination="synapses"))
        net.input_lists.append(il)
    work = tempfile.mkdtemp()
    nml = os.path.join(work, "IzhNet.net.nml")
    writers.NeuroMLWriter.write(doc, nml)
    sim = LEMSSimulation("sim_IzhNet", LENGTH, DT, "IzhNet")
    sim.include_neuroml2_file("IzhNet.net.nml", relative_to_dir=work)
    cells = [f"RS/{i}/izh_rs" for i in range(6)] + [f"FS/{j}/izh_fast" for j in range(3)]
    names = [f"RS_{i}" for i in range(6)] + [f"FS_{j}" for j in range(3)]
    sim.create_output_file("v", "IzhNet.v.dat")
    for name, c in zip(names, cells):
        sim.add_column_to_output_file("v", name, f"{c}/v")
    os.chdir(work)
    lems = sim.save_to_file("LEMS_IzhNet.xml")
    lems = os.path.join(work, lems)
    results = pynml.run_lems_with_jneuroml(lems, nogui=True, load_saved_data=True, exec_in_dir=work, verbose=False)
    t_ms = np.asarray(results["t"]) * 1e3
    columns = [np.asarray(results[f"{c}/v"]) * 1e3 for c in cells]
    os.makedirs(OUT, exist_ok=True)
    for name in ("IzhNet.net.nml", "LEMS_IzhNet.xml"):
        shutil.copy(os.path.join(work, name), os.path.join(OUT, name))
    keep = np.arange(0, len(t_ms), 10)  # every 0.25 ms
    with open(os.path.join(OUT, "reference_v.csv"), "w") as f:
        f.write("t_ms," + ",".join(names) + "\n")
        for i in keep:
            f.write(f"{t_ms[i]:.4f}," + ",".join(f"{col[i]:.6f}" for col in columns) + "\n")
    with open(os.path.join(OUT, "reference_spikes.csv"), "w") as f:
        f.write("neuron,t_ms\n")
        for name, col in zip(names, columns):
            for i in np.flatnonzero(np.diff(col) < -20.0) + 1:
                f.write(f"{name},{t_ms[i]:.4f}\n")
    print("spikes:", {n: int((np.diff(c) < -20.0).sum()) for n, c in zip(names, columns)})


if __name__ == "__main__":
    main()
