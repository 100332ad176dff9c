"""Vogels & Abbott (2005) COBA benchmark (Brette et al. 2007, benchmark 1) in Brian2, the network of
coba_nest.py: the CUBA wiring of ../shared/peers/cuba_brian2.py (fixed in-degree K_E = 0.8 K, K_I = 0.2 K
sampled without replacement, or --conn bernoulli) with conductance synapses in siemens:
  dv/dt  = (gL*(El - v) + ge*(Ee - v) + gi*(Ei - v) + Ie)/Cm : volt (unless refractory)
  dge/dt = -ge/taue : siemens
  dgi/dt = -gi/taui : siemens
Cm = 200 pF, gL = 10 nS, El = Vr = -60 mV, Vt = -50 mV, refractory 5 ms, Ee = 0 mV, Ei = -80 mV, taue = 5 ms,
taui = 10 ms, Ie = 200 pA; jumps ge += 6 nS, gi += 67 nS. --method picks the integrator (Brian2's choice for
these equations is exponential_euler, first order in the conductances' change over a step; rk4 for reference).
usage: coba_brian2.py --N 4000 --mode standalone|runtime --threads 1 --T 1.0 --seed 1
"""
import argparse, time, os, sys
sys.path.insert(0, os.environ.get("NEUROTWIN_PEERS", os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "peers")))
from common import emit, brian2_setup, brian2_finish
ap = argparse.ArgumentParser()
ap.add_argument("--N", type=int, default=4000)
ap.add_argument("--K", type=int, default=80)
ap.add_argument("--T", type=float, default=1.0)
ap.add_argument("--mode", default="standalone")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--conn", default="indegree", choices=["indegree", "bernoulli"])
ap.add_argument("--method", default="exponential_euler")
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
bdir = os.environ.get("PEERS_WORK", "peers-work") + f"/build/coba_b2_{a.N}_{a.mode}_{a.threads}_{a.method}"
b2 = brian2_setup(a.mode, a.threads, bdir)
from brian2 import *
t0 = time.time()
seed(a.seed)
defaultclock.dt = 0.1 * ms
Cm, gL = 200 * pF, 10 * nS
taue, taui = 5 * ms, 10 * ms
Vt, Vr, El = -50 * mV, -60 * mV, -60 * mV
Ee, Ei = 0 * mV, -80 * mV
Ie = 200 * pA
eqs = """
dv/dt  = (gL*(El - v) + ge*(Ee - v) + gi*(Ei - v) + Ie)/Cm : volt (unless refractory)
dge/dt = -ge/taue : siemens
dgi/dt = -gi/taui : siemens
"""
Ntot = a.N; NE = int(0.8 * Ntot); NI = Ntot - NE
P = NeuronGroup(Ntot, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method=a.method)
P.v = "Vr + rand() * (Vt - Vr)"
P.ge = 0 * nS; P.gi = 0 * nS
we, wi = 6 * nS, 67 * nS
Ce = Synapses(P, P, on_pre="ge += we")
Ci = Synapses(P, P, on_pre="gi += wi")
KE = int(round(0.8 * a.K)); KI = a.K - KE
if a.conn == "indegree":
    Ce.connect(i="k for k in sample(NE, size=KE)")
    Ci.connect(i="k for k in sample(NE, Ntot, size=KI)")
else:
    p = a.K / Ntot
    Ce.connect("i<NE", p=p)
    Ci.connect("i>=NE", p=p)
s_mon = SpikeMonitor(P)
t_built = time.time()
if a.mode == "standalone":
    run(a.T * second)
    r = brian2_finish(b2, a.mode, bdir, t_built)
    nsyn = len(Ce) + len(Ci)
    nsp = s_mon.num_spikes
    build_s = (t_built - t0) + r["codegen_s"] + r["make_s"] + (r["binary_s"] - r["loop_s"])
    emit(model="coba", peer="brian2", mode=a.mode, method=a.method, conn=a.conn, n_neurons=Ntot, n_synapses=nsyn,
         threads=a.threads, t_bio_s=a.T, build_s=build_s, sim_s=r["loop_s"],
         py_construct_s=t_built - t0, **{k: v for k, v in r.items() if k != "loop_s"},
         spikes=nsp, rate_hz=nsp / Ntot / a.T)
else:
    net = Network(collect())
    t1 = time.time()
    net.run(0 * ms)
    t2 = time.time()
    net.run(a.T * second)
    t3 = time.time()
    nsyn = len(Ce) + len(Ci)
    nsp = s_mon.num_spikes
    emit(model="coba", peer="brian2", mode=a.mode, method=a.method, conn=a.conn, n_neurons=Ntot, n_synapses=nsyn,
         threads=1, t_bio_s=a.T, build_s=(t2 - t0), sim_s=(t3 - t2), py_construct_s=t_built - t0,
         codegen_compile_s=t2 - t1, spikes=nsp, rate_hz=nsp / Ntot / a.T)
