#!/usr/bin/python3
"""Brian2 reference for the plastic engine (tests/test_stdp_engine.c). Run with Debian's python3:
    /usr/bin/python3 tests/ref/make_stdp_brian2.py
Writes tests/ref/stdp_net.json (the spikebridge model) and tests/ref/stdp_brian2.h5 (Brian2's
final weights and output spikes of the same network).

Network: 30 input neurons fire deterministic spike trains (on a 0.4 ms grid, minimum ISI 3.2 ms;
with d = 1.5 ms no pre spike can coincide with a post arrival); three
output populations A, B, C of 3 iaf_psc_delta neurons (E_L = V_reset = -70 mV, V_th = -55 mV,
tau_m = 20 ms, t_ref = 2.05 ms) receive all 30 inputs through plastic synapses, delay d = 1.5 ms:
  A: stdp_synapse (all-to-all, multiplicative mu = 1)
  B: stdp_nn_symm_synapse (symmetric nearest-neighbour, additive mu = 0)
  C: stdp_triplet_synapse (all-to-all triplet)
Brian2 is set to NEST's convention (the whole delay dendritic): the 'pre' pathway (delay 0)
depresses and updates the pre traces at t_pre and stores the weight it sends; the 'effect'
pathway delivers that weight at t_pre + d; the post pathway (delay d) potentiates at
t_post + d. Event-driven traces are exact exponentials, so the only difference to the exact
engine is rounding."""
import os, json
import numpy as np
import h5py
import brian2
from brian2 import *

HERE = os.path.dirname(os.path.abspath(__file__))
prefs.codegen.target = 'numpy'
defaultclock.dt = 0.1 * ms

N_IN, N_OUT, D, T_STOP, T_IN = 30, 3, 1.5, 1000.0, 900.0
PAIR_A = dict(tau_plus=16.8, tau_minus=33.7, **{'lambda': 0.03}, alpha=1.05, mu_plus=1.0, mu_minus=1.0, Wmax=8.0)
PAIR_B = dict(tau_plus=20.0, tau_minus=20.0, **{'lambda': 0.02}, alpha=1.2, mu_plus=0.0, mu_minus=0.0, Wmax=8.0)
TRIP_C = dict(tau_plus=16.8, tau_minus=33.7, tau_plus_triplet=101.0, tau_minus_triplet=125.0,
              Aplus=0.005, Aminus=0.007, Aplus_triplet=0.006, Aminus_triplet=0.0002, Wmax=8.0)


def inputs(seed=5):
    """Spike steps (0.1 ms) per input: multiples of 4 steps, ISI >= 3.2 ms, ~15 Hz. With the
    delay d = 15 steps, a post arrival (input + 2 d = input + 30 steps) is never a multiple of 4
    steps away from an input spike, so no pre spike coincides with a post arrival."""
    rng = np.random.default_rng(seed)
    steps = []
    for i in range(N_IN):
        s, tr = [], 4 * (10 + int(rng.integers(0, 25)))
        while tr < int(T_IN * 10):
            s.append(tr)
            tr += 4 * (8 + int(rng.exponential(150)))
        steps.append(s)
    return steps


def w0(i, j):   # initial weights, exact in float32 (the engine stores them as float)
    return 3.5 + 0.25 * ((i + j) % 4)


def build(steps):
    idx = np.concatenate([[i] * len(s) for i, s in enumerate(steps)]).astype(int)
    tms = np.concatenate([np.array(s) for s in steps]) * 0.1
    G = SpikeGeneratorGroup(N_IN, idx, tms * ms)
    eqs = 'dv/dt = (-70*mV - v) / (20*ms) : volt (unless refractory)'
    pops, syns, mons = {}, {}, {}
    for name in 'ABC':
        P = NeuronGroup(N_OUT, eqs, threshold='v >= -55*mV', reset='v = -70*mV', refractory='(t - lastspike) < 2.05*ms',
                        method='exact', name='pop' + name)
        P.v = -70 * mV
        pops[name] = P
        if name in 'AB':
            prm = PAIR_A if name == 'A' else PAIR_B
            ns = {'taup': prm['tau_plus'] * ms, 'taum': prm['tau_minus'] * ms, 'lam': prm['lambda'],
                  'alpha': prm['alpha'], 'mup': prm['mu_plus'], 'mum': prm['mu_minus'], 'Wmax': prm['Wmax'] * mV}
            jump = '+= 1' if name == 'A' else '= 1'   # all-to-all vs nearest-neighbour traces
            model = '''w : volt
                       w_sent : volt
                       dapre/dt = -apre/taup : 1 (event-driven)
                       dapost/dt = -apost/taum : 1 (event-driven)'''
            on_pre = {'pre': 'w = clip(Wmax*(w/Wmax - alpha*lam*(w/Wmax)**mum*apost), 0*mV, Wmax)\n'
                             'apre %s\nw_sent = w' % jump,
                      'effect': 'v_post += w_sent * int(not_refractory_post)'}
            on_post = 'w = clip(Wmax*(w/Wmax + lam*(1 - w/Wmax)**mup*apre), 0*mV, Wmax)\napost %s' % jump
        else:
            p = TRIP_C
            ns = {'taup': p['tau_plus'] * ms, 'taum': p['tau_minus'] * ms, 'taux': p['tau_plus_triplet'] * ms,
                  'tauy': p['tau_minus_triplet'] * ms, 'Ap': p['Aplus'] * mV, 'Am': p['Aminus'] * mV,
                  'Ap3': p['Aplus_triplet'] * mV, 'Am3': p['Aminus_triplet'] * mV, 'Wmax': p['Wmax'] * mV}
            model = '''w : volt
                       w_sent : volt
                       dr1/dt = -r1/taup : 1 (event-driven)
                       dr2/dt = -r2/taux : 1 (event-driven)
                       do1/dt = -o1/taum : 1 (event-driven)
                       do2/dt = -o2/tauy : 1 (event-driven)'''
            on_pre = {'pre': 'w = clip(w - o1*(Am + Am3*r2), 0*mV, Wmax)\nr1 += 1\nr2 += 1\nw_sent = w',
                      'effect': 'v_post += w_sent * int(not_refractory_post)'}
            on_post = 'w = clip(w + r1*(Ap + Ap3*o2), 0*mV, Wmax)\no1 += 1\no2 += 1'
        S = Synapses(G, P, model=model, on_pre=on_pre, on_post=on_post, namespace=ns, name='syn' + name)
        S.connect()
        S.w = w0(np.asarray(S.i), np.asarray(S.j)) * mV
        S.pre.delay = 0 * ms
        S.post.delay = D * ms
        # The input must arrive before the threshold test of its time step, as in the exact
        # engine. A pathway scheduled before the thresholds sees the source's spikes one step
        # late, so its delay is d - dt (checked below: every output spike is at an arrival).
        S.effect.when = 'before_thresholds'
        S.effect.delay = D * ms - defaultclock.dt
        syns[name] = S
        mons[name] = SpikeMonitor(P)
    net = Network(G, *pops.values(), *syns.values(), *mons.values())
    return net, syns, mons


def model_json(steps, path):
    stim = [{"model": "spike_generator", "target": "in", "node_ids": [i],
             "params": {"spike_times": [round(x * 0.1, 1) for x in s]}, "weight": 100.0} for i, s in enumerate(steps)]
    neuron = {"E_L": -70.0, "V_reset": -70.0, "V_th": -55.0, "tau_m": 20.0, "t_ref": 2.05}
    srcs = [i for i in range(N_IN) for j in range(N_OUT)]
    tgts = [j for i in range(N_IN) for j in range(N_OUT)]
    ws = [w0(i, j) for i, j in zip(srcs, tgts)]
    proj = []
    for name, sm, prm in [('A', 'stdp_synapse', PAIR_A), ('B', 'stdp_nn_symm_synapse', PAIR_B),
                          ('C', 'stdp_triplet_synapse', TRIP_C)]:
        proj.append({"source": "in", "target": name, "rule": "explicit", "sources": srcs, "targets": tgts,
                     "weights": ws, "delay": D, "synapse_model": sm, "synapse_params": prm,
                     "record_weights": {"interval": 100.0}})
    m = {"description": "Plastic test network (tests/ref/make_stdp_brian2.py): 30 relay inputs with fixed spike "
                        "trains onto three populations with stdp_synapse, stdp_nn_symm_synapse and stdp_triplet_synapse.",
         "simulation": {"t_stop": T_STOP, "seed": 1, "threads": 1},
         "populations": {"in": {"model": "iaf_psc_delta", "n": N_IN,
                                "params": {"E_L": -70.0, "V_reset": -70.0, "V_th": -55.0, "t_ref": 0.0}},
                         **{n: {"model": "iaf_psc_delta", "n": N_OUT, "params": neuron} for n in 'ABC'}},
         "stimuli": stim, "projections": proj}
    with open(path, 'w') as f:
        json.dump(m, f, indent=1)


def main():
    steps = inputs()
    net, syns, mons = build(steps)
    net.run(T_STOP * ms)
    arrivals = set(round(x * 0.1 + D, 6) for s in steps for x in s)
    with h5py.File(os.path.join(HERE, 'stdp_brian2.h5'), 'w') as f:
        f.attrs['source'] = ('Brian2 %s (Debian python3-brian), numpy target, dt 0.1 ms, event-driven traces; '
                             'NEST dendritic-delay convention via pathway delays' % brian2.__version__)
        f.attrs['version'] = brian2.__version__
        f.attrs['script'] = 'tests/ref/make_stdp_brian2.py'
        for name in 'ABC':
            S, M = syns[name], mons[name]
            W = np.zeros((N_IN, N_OUT))
            W[np.asarray(S.i), np.asarray(S.j)] = np.asarray(S.w / mV)
            g = f.create_group(name)
            g['weight'] = W   # (source, target) mV at t_stop
            g['spike_times'] = np.asarray(M.t / ms)
            g['spike_ids'] = np.asarray(M.i).astype(np.int64)
            bad = [t for t in np.asarray(M.t / ms) if round(t, 6) not in arrivals]
            assert not bad, 'output spikes off the input arrival times: %s' % bad[:5]
            print(name, 'spikes', len(M.t), 'mean |dw|', np.abs(W - np.fromfunction(w0, W.shape)).mean(),
                  'at bounds', int(((W == 0) | (W == 8)).sum()), 'off-arrival spikes', len(bad))
    model_json(steps, os.path.join(HERE, 'stdp_net.json'))


if __name__ == '__main__':
    main()
