#!/usr/bin/env python3
"""The feedforward network of Song, Miller & Abbott 2000 (Nat. Neurosci. 3:919, Fig. 1-2) for the STDP scenario
(scenarios/stdp_song2000.toml): 1000 excitatory inputs, each connected to each of 4 output neurons with a synapse
count drawn uniformly from 1..12 (weight = count x weight_per_synapse), so that initial weights are spread evenly
below the bound as in the paper. Writes data/song2000/neurons.csv and connections.csv (seed 2000; synthetic, no
licence restrictions). Run: python3 scripts/make_song2000_network.py
"""
import os
import random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "song2000")
N_IN, N_OUT = 1000, 4

rng = random.Random(2000)
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "neurons.csv"), "w") as f:
    f.write("id,name,cell_type\n")
    for i in range(N_IN):
        f.write(f"{i + 1},in{i:04d},input\n")
    for j in range(N_OUT):
        f.write(f"{N_IN + j + 1},out{j},output\n")
with open(os.path.join(OUT, "connections.csv"), "w") as f:
    f.write("pre,post,count\n")
    for j in range(N_OUT):
        for i in range(N_IN):
            f.write(f"{i + 1},{N_IN + j + 1},{rng.randint(1, 12)}\n")
