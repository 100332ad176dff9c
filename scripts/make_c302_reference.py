#!/usr/bin/env python3
"""A c302 network (OpenWorm; Gleeson et al. 2018, Phil. Trans. R. Soc. B 373:20170379) and its reference membrane
traces from jNeuroML, for neurotwin's NeuroML import test (tests/cli/neuroml.rs).

c302 0.12.1, parameter set A (integrate-and-fire `iafCell` neurons, event-driven `expTwoSynapse` chemical synapses;
gap junctions as zero-conductance synapses), 10 neurons of the locomotion circuit with their connectome from the
C. elegans Connectome Toolbox (cect), PVCL, PVCR and AVBL stimulated by a 3 pA current from 20 to 270 ms (c302's
"unphysiological offset current", 0 pA by default), dt = 0.05 ms, 300 ms, simulated by jNeuroML (jLEMS, forward
Euler). The stimulated cells' recurrent excitation makes the six interneurons fire faster and faster until, from
about 140 ms, they fire in every step (the model's behaviour, not a numerical failure). Writes data/c302/:
SynsA.net.nml, LEMS_SynsA.xml, reference_v.csv (t_ms and every neuron's V in mV, every 0.25 ms up to 60 ms) and
reference_spikes.csv (neuron, t_ms: each reset — V falling by more than 10 mV from one step to the next — before
125 ms, before any cell spikes in consecutive steps, when a reset would no longer show in V).
Run: ./scripts/setup-neuroml.sh && .venv-neuroml/bin/python scripts/make_c302_reference.py
"""
import os
import shutil
import tempfile

import c302
import numpy as np
from c302 import parameters_A
from pyneuroml import pynml

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "c302")
CELLS = ["AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "PVCR", "DB1", "VB1", "DD1", "VD1"]
STIMULATED = ["PVCL", "PVCR", "AVBL"]


def main():
    params = parameters_A.ParameterisedModel()
    params.set_bioparameter("unphysiological_offset_current", "3pA", "neurotwin test stimulus", "0")
    params.set_bioparameter("unphysiological_offset_current_del", "20ms", "neurotwin test stimulus", "0")
    params.set_bioparameter("unphysiological_offset_current_dur", "250ms", "neurotwin test stimulus", "0")
    work = tempfile.mkdtemp()
    c302.generate("SynsA", params, cells=CELLS, cells_to_plot=CELLS, cells_to_stimulate=STIMULATED, duration=300,
                  dt=0.05, target_directory=work, verbose=False)
    lems = os.path.join(work, "LEMS_SynsA.xml")
    results = pynml.run_lems_with_jneuroml(lems, nogui=True, load_saved_data=True, exec_in_dir=work, verbose=False)
    t_ms = np.asarray(results["t"]) * 1e3
    columns = [np.asarray(results[f"{c}/0/generic_neuron_iaf_cell/v"]) * 1e3 for c in CELLS]
    keep = np.arange(0, len(t_ms), 5)  # every 0.25 ms
    keep = keep[t_ms[keep] <= 60.0 + 1e-9]
    os.makedirs(OUT, exist_ok=True)
    for name in ("SynsA.net.nml", "LEMS_SynsA.xml"):
        shutil.copy(os.path.join(work, name), os.path.join(OUT, name))
    with open(os.path.join(OUT, "reference_v.csv"), "w") as f:
        f.write("t_ms," + ",".join(CELLS) + "\n")
        for k in keep:
            f.write(f"{t_ms[k]:.4f}," + ",".join(f"{col[k]:.6f}" for col in columns) + "\n")
    counts = {}
    with open(os.path.join(OUT, "reference_spikes.csv"), "w") as f:
        f.write("neuron,t_ms\n")
        for c, col in zip(CELLS, columns):
            resets = np.flatnonzero(np.diff(col) < -10.0) + 1
            resets = resets[t_ms[resets] < 125.0]
            counts[c] = len(resets)
            for k in resets:
                f.write(f"{c},{t_ms[k]:.4f}\n")
    print("resets before 125 ms per neuron:", counts)


if __name__ == "__main__":
    main()
