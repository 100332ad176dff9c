"""Vogels & Abbott (2005) COBA benchmark (Brette et al. 2007, benchmark 1) in NEST: the CUBA wiring of
../shared/peers/cuba_nest.py (80 % excitatory, fixed in-degree K_E = 0.8 K, K_I = 0.2 K, default K = 80, or
--conn bernoulli p = K/N) with iaf_cond_exp neurons: C_m = 200 pF, g_L = 10 nS (tau_m = 20 ms), E_L = V_reset =
-60 mV, V_th = -50 mV, t_ref = 5 ms, E_ex = 0 mV, E_in = -80 mV, tau_syn_ex = 5 ms, tau_syn_in = 10 ms, constant
drive I_e = 200 pA; conductance jumps 6 nS (exc) and -67 nS (inh; NEST takes negative weights as inhibitory
conductance). Delay 0.1 ms. Parameters of the Brian2 benchmark version (neurotwin's
connectome/src/generators/coba.rs builds the same network).
usage: coba_nest.py --N 4000 --threads 2 --T 1.0 --seed 1
"""
import argparse, time, os, sys
sys.path.insert(0, os.environ.get("NEUROTWIN_PEERS", os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "peers")))
from common import emit
ap = argparse.ArgumentParser()
ap.add_argument("--N", type=int, default=4000)
ap.add_argument("--K", type=int, default=80)
ap.add_argument("--T", type=float, default=1.0)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--conn", default="indegree", choices=["indegree", "bernoulli"])
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
import nest
t0 = time.time()
nest.set_verbosity("M_WARNING")
nest.ResetKernel()
nest.local_num_threads = a.threads
nest.resolution = 0.1
nest.rng_seed = a.seed
N = a.N; NE = int(0.8 * N); NI = N - NE
params = dict(C_m=200.0, g_L=10.0, E_L=-60.0, V_th=-50.0, V_reset=-60.0, t_ref=5.0, E_ex=0.0, E_in=-80.0,
              tau_syn_ex=5.0, tau_syn_in=10.0, I_e=200.0)
pop = nest.Create("iaf_cond_exp", N, params=params)
pop.V_m = nest.random.uniform(-60.0, -50.0)
E = pop[:NE]; I = pop[NE:]
KE = int(round(0.8 * a.K)); KI = a.K - KE
we, wi = 6.0, -67.0
if a.conn == "indegree":
    nest.Connect(E, pop, {"rule": "fixed_indegree", "indegree": KE}, {"weight": we, "delay": 0.1})
    nest.Connect(I, pop, {"rule": "fixed_indegree", "indegree": KI}, {"weight": wi, "delay": 0.1})
else:
    p = a.K / N
    nest.Connect(E, pop, {"rule": "pairwise_bernoulli", "p": p}, {"weight": we, "delay": 0.1})
    nest.Connect(I, pop, {"rule": "pairwise_bernoulli", "p": p}, {"weight": wi, "delay": 0.1})
sr = nest.Create("spike_recorder")
nest.Connect(pop, sr)
nest.Prepare()   # builds presynaptic infrastructure: counted as build
t_built = time.time(); c_built = time.process_time()
nest.Run(a.T * 1000.0)
t_sim = time.time(); c_sim = time.process_time()
nest.Cleanup()
nsp = sr.n_events
emit(model="coba", peer="nest", mode="nest" + nest.__version__, conn=a.conn, n_neurons=N,
     n_synapses=nest.num_connections - N, threads=a.threads, t_bio_s=a.T,
     build_s=t_built - t0, sim_s=t_sim - t_built, sim_cpu_s=c_sim - c_built, spikes=nsp, rate_hz=nsp / N / a.T)
