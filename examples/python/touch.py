"""Gentle touch on the C. elegans twin: run the bundled scenario and print the read-out table."""
import neurotwin

r = neurotwin.run(neurotwin.Scenario.from_file("scenarios/celegans_touch.toml"))
print(f"{r.n_neurons} neurons, {len(r.spike_times_ms)} spikes in {r.duration_ms:.0f} ms")
for group in r.summary["readout"]:
    rates = "  ".join(f"{w} {hz:5.1f}" for w, hz in group["windows_hz"])
    print(f"{group['label']:<22} {rates} Hz")
