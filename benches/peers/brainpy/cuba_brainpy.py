"""Vogels & Abbott (2005) CUBA benchmark in BrainPy 2.8 (JAX, CPU): the network of ../shared/peers/cuba_brian2.py.

Leaky integrate-and-fire neurons (tau_m 20 ms, rest -49 mV, threshold -50 mV, reset -60 mV, refractory 5 ms,
V(0) uniform in [reset, threshold)), exponential current synapses (tau 5 ms excitatory, 10 ms inhibitory;
jumps of 1.62 mV and -9 mV), fixed in-degree: every neuron receives 0.8 K excitatory and 0.2 K inhibitory
inputs, without multapses. Brette et al. (2007) benchmark 2 parameters, as in Brian2's docs example.
BrainPy's own idiom: two LifRef groups, projections aligned post-synaptically and merged
(FullProjAlignPostMg), event-driven CSR matrices (EventCSRLinear, brainevent), exponential Euler (exact
for these linear equations).

usage: cuba_brainpy.py --N 4000 --K 80 --T 1.0 --seed 1
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common_brainpy import emit, timed_runs  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--N", type=int, default=4000)
ap.add_argument("--K", type=int, default=80)
ap.add_argument("--T", type=float, default=1.0)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()

import brainpy as bp  # noqa: E402
import brainpy.math as bm  # noqa: E402

bm.set_platform("cpu")
bm.set_dt(0.1)  # ms
bm.random.seed(a.seed)
t0 = time.time()
NE = int(0.8 * a.N)
NI = a.N - NE
KE = int(round(0.8 * a.K))
KI = a.K - KE
WE, WI = 60 * 0.27 / 10, -20 * 4.5 / 10  # mV


class CUBA(bp.DynSysGroup):
    def __init__(self):
        super().__init__()
        lif = dict(V_rest=-49.0, V_th=-50.0, V_reset=-60.0, tau=20.0, tau_ref=5.0,
                   V_initializer=bp.init.Uniform(-60.0, -50.0), method="exp_auto")
        self.E = bp.dyn.LifRef(NE, **lif)
        self.I = bp.dyn.LifRef(NI, **lif)
        seed = [a.seed * 10 + k for k in range(4)]

        def proj(pre, post, k, w, tau, s):
            conn = bp.conn.FixedPreNum(k, seed=s)
            return bp.dyn.FullProjAlignPostMg(
                pre=pre, delay=None, comm=bp.dnn.EventCSRLinear(conn(pre.num, post.num), w),
                syn=bp.dyn.Expon.desc(post.num, tau=tau), out=bp.dyn.CUBA.desc(), post=post)

        self.E2E = proj(self.E, self.E, KE, WE, 5.0, seed[0])
        self.E2I = proj(self.E, self.I, KE, WE, 5.0, seed[1])
        self.I2E = proj(self.I, self.E, KI, WI, 10.0, seed[2])
        self.I2I = proj(self.I, self.I, KI, WI, 10.0, seed[3])

    def update(self):
        self.E2E()
        self.E2I()
        self.I2E()
        self.I2I()
        self.E()
        self.I()


net = CUBA()
n_syn = sum(p.comm.indices.size for p in (net.E2E, net.E2I, net.I2E, net.I2I))
build_s = time.time() - t0


def init():
    bm.random.seed(a.seed)
    net.E.V.value = bm.random.uniform(-60.0, -50.0, NE)
    net.I.V.value = bm.random.uniform(-60.0, -50.0, NI)


init()
n_steps = int(round(a.T * 1000 / 0.1))
compile_s, sim_s, spikes = timed_runs(bp, bm, net, [net.E, net.I], n_steps, init)
emit(model="cuba", peer="brainpy", version=bp.__version__, n_neurons=a.N, n_synapses=n_syn, t_bio_s=a.T,
     build_s=build_s, compile_s=compile_s, sim_s=sim_s, spikes=spikes, rate_hz=spikes / a.N / a.T)
