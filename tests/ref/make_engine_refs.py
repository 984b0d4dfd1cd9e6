#!/usr/bin/python3
"""Brian2 reference runs for the engine tests (tests/test_sim.c). Run with Debian's python3:
    /usr/bin/python3 tests/ref/make_engine_refs.py [cond|cuba|brunel]...
Writes tests/ref/cond_exp_brian2.h5, cuba_brian2.h5, brunel_small_brian2.h5 with attributes
source, version, script and the statistics the tests compare (rate per population in Hz,
mean ISI CV over neurons with >= 3 spikes, numpy std ddof=0)."""
import sys, os
import numpy as np
import h5py
import brian2
from brian2 import *

HERE = os.path.dirname(os.path.abspath(__file__))
prefs.codegen.target = 'numpy'

def attrs(f, what):
    f.attrs['source'] = 'Brian2 %s (Debian python3-brian), %s' % (brian2.__version__, what)
    f.attrs['version'] = brian2.__version__
    f.attrs['script'] = 'tests/ref/make_engine_refs.py'

def stats(sm, lo, hi, T):
    t = np.asarray(sm.t / ms); i = np.asarray(sm.i)
    sel = (i >= lo) & (i < hi)
    rate = sel.sum() / ((hi - lo) * T / 1000.0)
    cvs = []
    for k in range(lo, hi):
        tk = np.sort(t[i == k])
        if len(tk) >= 3:
            isi = np.diff(tk); cvs.append(isi.std() / isi.mean())
    return rate, float(np.mean(cvs)) if cvs else 0.0

def cond():
    # NEST iaf_cond_exp defaults; I_e = 300 pA; explicit exc (10 nS) and inh (15 nS) input spikes.
    defaultclock.dt = 0.001 * ms
    C = 250 * pF; gL = 16.6667 * nS; EL = -70 * mV; Eex = 0 * mV; Ein = -85 * mV
    taue = 0.2 * ms; taui = 2 * ms; Ie = 300 * pA
    eqs = '''dv/dt = (gL*(EL-v) + ge*(Eex-v) + gi*(Ein-v) + Ie)/C : volt (unless refractory)
             dge/dt = -ge/taue : siemens
             dgi/dt = -gi/taui : siemens'''
    G = NeuronGroup(1, eqs, threshold='v>=-55*mV', reset='v=-60*mV', refractory=2 * ms, method='rk4')
    G.v = EL
    ex = [13.7, 27.3, 51.9, 52.4, 80.1, 121.3, 150.05]
    inh = [35.5, 64.2, 90.0, 133.3]
    SE = SpikeGeneratorGroup(1, [0] * len(ex), ex * ms)
    SI = SpikeGeneratorGroup(1, [0] * len(inh), inh * ms)
    se = Synapses(SE, G, on_pre='ge += 10*nS', delay=1 * ms); se.connect()
    si = Synapses(SI, G, on_pre='gi += 15*nS', delay=1 * ms); si.connect()
    sm = SpikeMonitor(G)
    run(200 * ms)
    with h5py.File(os.path.join(HERE, 'cond_exp_brian2.h5'), 'w') as f:
        attrs(f, 'iaf_cond_exp-equivalent neuron, rk4 at dt=0.001 ms, inputs delayed 1 ms')
        f['spike_times'] = np.asarray(sm.t / ms)
        f['ex_times'] = np.array(ex); f['in_times'] = np.array(inh)

def cuba():
    # Brette et al. 2007 CUBA as in Brian2's example, with a 0.1 ms synaptic delay.
    seed(4321); defaultclock.dt = 0.1 * ms
    taum = 20 * ms; taue = 5 * ms; taui = 10 * ms; Vt = -50 * mV; Vr = -60 * mV; El = -49 * mV
    eqs = '''dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
             dge/dt = -ge/taue : volt
             dgi/dt = -gi/taui : volt'''
    P = NeuronGroup(4000, eqs, threshold='v>Vt', reset='v = Vr', refractory=5 * ms, method='exact')
    P.v = 'Vr + rand() * (Vt - Vr)'
    we = (60 * 0.27 / 10) * mV; wi = (-20 * 4.5 / 10) * mV
    Ce = Synapses(P, P, on_pre='ge += we', delay=0.1 * ms)
    Ci = Synapses(P, P, on_pre='gi += wi', delay=0.1 * ms)
    Ce.connect('i<3200', p=0.02); Ci.connect('i>=3200', p=0.02)
    sm = SpikeMonitor(P)
    T = 1000.0
    run(T * ms)
    re, ce = stats(sm, 0, 3200, T); ri, ci = stats(sm, 3200, 4000, T)
    print('cuba', re, ce, ri, ci)
    with h5py.File(os.path.join(HERE, 'cuba_brian2.h5'), 'w') as f:
        attrs(f, 'CUBA (Brette et al. 2007), 4000 neurons, exact integration, dt=0.1 ms, 1 s')
        f.attrs['t_stop'] = T
        f['rate_exc'] = re; f['cv_exc'] = ce; f['rate_inh'] = ri; f['cv_inh'] = ci

def brunel():
    # Brunel 2000 delta network scaled by 1/5 (NE=2000, NI=500, CE=200, CI=50) with J=0.5 mV so
    # that J*CE is that of NEST's brunel_delta (g=5, eta=2, D=1.5 ms); inputs during the
    # refractory period are discarded, as in NEST.
    seed(1234); defaultclock.dt = 0.1 * ms
    NE, NI, CE, CI = 2000, 500, 200, 50
    J = 0.5 * mV; g = 5.0; eta = 2.0; D = 1.5 * ms
    tau = 20 * ms; theta = 20 * mV; Vr = 10 * mV; tref = 2 * ms
    nu_th = theta / (J * CE * tau); nu_ext = eta * nu_th
    G = NeuronGroup(NE + NI, 'dv/dt = -v/tau : volt (unless refractory)', threshold='v>=theta',
                    reset='v=Vr', refractory=tref, method='exact')
    G.v = 'rand()*theta'
    rng = np.random.RandomState(1234)
    pre_e = np.concatenate([rng.randint(0, NE, CE) for _ in range(NE + NI)])
    pre_i = np.concatenate([rng.randint(NE, NE + NI, CI) for _ in range(NE + NI)])
    post_e = np.repeat(np.arange(NE + NI), CE); post_i = np.repeat(np.arange(NE + NI), CI)
    Se = Synapses(G, G, on_pre='v_post += J*int(not_refractory_post)', delay=D)
    Se.connect(i=pre_e, j=post_e)
    Si = Synapses(G, G, on_pre='v_post += -g*J*int(not_refractory_post)', delay=D)
    Si.connect(i=pre_i, j=post_i)
    ext = PoissonInput(G, 'v', N=CE, rate=nu_ext, weight='J*int(not_refractory)')
    sm = SpikeMonitor(G)
    T = 1000.0
    run(T * ms)
    re, ce = stats(sm, 0, NE, T); ri, ci = stats(sm, NE, NE + NI, T)
    print('brunel', re, ce, ri, ci)
    with h5py.File(os.path.join(HERE, 'brunel_small_brian2.h5'), 'w') as f:
        attrs(f, 'Brunel 2000 delta network scaled 1/5 (J=0.5 mV), dt=0.1 ms, 1 s')
        f.attrs['t_stop'] = T
        f['rate_exc'] = re; f['cv_exc'] = ce; f['rate_inh'] = ri; f['cv_inh'] = ci

which = sys.argv[1:] or ['cond', 'cuba', 'brunel']
for w in which:
    globals()[w]()
