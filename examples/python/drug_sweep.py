"""Dose-response of an ACh receptor antagonist: the scenario's dose sweep × trials, AVA's mean rate during touch."""
from collections import defaultdict

import neurotwin

runs = neurotwin.run_all(neurotwin.Scenario.from_file("scenarios/celegans_ach_block.toml"))
during_touch = defaultdict(list)
for r in runs:
    ava = next(g for g in r.summary["readout"] if g["label"].startswith("AVA"))
    during_touch[r.sweep_value].append(dict(ava["windows_hz"])["touch"])
for dose, rates in during_touch.items():
    print(f"dose {dose:>4}: AVA {sum(rates) / len(rates):5.1f} Hz during touch ({len(rates)} trials)")
