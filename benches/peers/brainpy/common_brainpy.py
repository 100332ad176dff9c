"""Shared pieces of the BrainPy peer scripts (BrainPy 2.8 on JAX, CPU).

Each script prints one line starting with 'RESULT ' followed by JSON (the same keys as ../shared/peers'
NEST and Brian2 scripts): model, peer, n_neurons, n_synapses, t_bio_s, build_s, compile_s, sim_s, spikes,
rate_hz. sim_s is the wall time of a second, already compiled run of the whole simulated interval: the
first run traces and compiles the network's step loop (XLA), the state is reset and re-initialised from
the same seed, and the second run is timed — the same separation of code generation from simulation that
compare.py applies to Brian2's standalone mode.
"""
import json
import time


def emit(**kw):
    for k, v in list(kw.items()):
        if hasattr(v, "item"):
            kw[k] = v.item()
        if isinstance(kw[k], float):
            kw[k] = round(kw[k], 4)
    if kw.get("sim_s") is not None and kw.get("t_bio_s"):
        kw["rtf"] = round(kw["sim_s"] / kw["t_bio_s"], 4)
    print("RESULT " + json.dumps(kw), flush=True)


def timed_runs(bp, bm, net, groups, n_steps, init):
    """Compiles and runs `net` for n_steps, resets it, re-initialises it with init(), runs it again, timed.

    Returns (compile_and_first_run_s, sim_s, spikes of the timed run). Spikes are counted on the device
    inside the loop (one integer per step), so recording costs no host transfer of spike rasters.
    """
    import jax

    def step(i):
        net.step_run(i)
        return sum(bm.sum(g.spike.value) for g in groups)

    def run():
        counts = bm.for_loop(step, bm.arange(n_steps), jit=True)
        return jax.block_until_ready(bm.as_jax(counts))

    t0 = time.time()
    run()
    t1 = time.time()
    bp.reset_state(net)
    init()
    t2 = time.time()
    counts = run()
    t3 = time.time()
    return t1 - t0, t3 - t2, int(counts.sum())
