"""Brunel (2000) sparse balanced network (model A, delta synapses) in BrainPy 2.8 (JAX, CPU): the network of
../shared/peers/brunel_brian2.py and NEST's brunel_delta_nest.py.

iaf_psc_delta semantics: V jumps by J on each input spike and inputs arriving while refractory are discarded
(LifRef's delta inputs are dropped with the membrane update during refractoriness); tau_m 20 ms, threshold
20 mV, reset 0 mV, refractory 2 ms, V(0) = 0; J = 0.1 mV, g = 5, eta = 2, delay D = 1.5 ms; fixed in-degree
C_E = 1000 excitatory and C_I = 250 inhibitory inputs per neuron (no multapses); the external drive is one
Poisson process of rate C_E * nu_ex per neuron (nu_ex = eta * theta / (J C_E tau_m)), drawn each step as a
binomial count of C_E inputs (the same law as Brian2's PoissonInput) and entering as a delta input.

usage: brunel_brainpy.py --scale 1 --T 1.0 --seed 1
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common_brainpy import emit, timed_runs  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--scale", type=float, default=1.0)
ap.add_argument("--T", type=float, default=1.0)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()

import brainpy as bp  # noqa: E402
import brainpy.math as bm  # noqa: E402

DT = 0.1  # ms
bm.set_platform("cpu")
bm.set_dt(DT)
bm.random.seed(a.seed)
t0 = time.time()
order = int(2500 * a.scale)
NE, NI = 4 * order, order
CE, CI = 1000, 250
TAU, THETA, J, G, ETA, D = 20.0, 20.0, 0.1, 5.0, 2.0, 1.5  # ms, mV, mV, -, -, ms
NU_EX = ETA * THETA / (J * CE * TAU)  # per ms, per input
P_EX = NU_EX * DT  # probability that one of the C_E external inputs fires in one step


class Brunel(bp.DynSysGroup):
    def __init__(self):
        super().__init__()
        lif = dict(V_rest=0.0, V_th=THETA, V_reset=0.0, tau=TAU, tau_ref=2.0,
                   V_initializer=bp.init.ZeroInit(), method="exp_auto")
        self.E = bp.dyn.LifRef(NE, **lif)
        self.I = bp.dyn.LifRef(NI, **lif)
        seed = [a.seed * 10 + k for k in range(4)]

        def proj(pre, post, k, w, s):
            conn = bp.conn.FixedPreNum(k, seed=s)
            return bp.dyn.FullProjDelta(pre=pre, delay=D, comm=bp.dnn.EventCSRLinear(conn(pre.num, post.num), w),
                                        post=post)

        self.E2E = proj(self.E, self.E, CE, J, seed[0])
        self.E2I = proj(self.E, self.I, CE, J, seed[1])
        self.I2E = proj(self.I, self.E, CI, -G * J, seed[2])
        self.I2I = proj(self.I, self.I, CI, -G * J, seed[3])
        for group in (self.E, self.I):
            group.add_inp_fun("poisson", lambda n=group.num: bm.random.binomial(CE, P_EX, n) * J, category="delta")

    def update(self):
        self.E2E()
        self.E2I()
        self.I2E()
        self.I2I()
        self.E()
        self.I()


net = Brunel()
n_syn = sum(p.comm.indices.size for p in (net.E2E, net.E2I, net.I2E, net.I2I))
build_s = time.time() - t0


def init():
    bm.random.seed(a.seed)


n_steps = int(round(a.T * 1000 / DT))
compile_s, sim_s, spikes = timed_runs(bp, bm, net, [net.E, net.I], n_steps, init)
n = NE + NI
emit(model="brunel_delta", peer="brainpy", version=bp.__version__, n_neurons=n, n_synapses=n_syn, t_bio_s=a.T,
     build_s=build_s, compile_s=compile_s, sim_s=sim_s, spikes=spikes, rate_hz=spikes / n / a.T)
