#!/usr/bin/python3
"""Benchmark: the Song, Miller & Abbott 2000 plastic network (examples/stdp_song2000.json: 1000
Poisson inputs at 15 Hz, additive STDP onto one conductance-based neuron) in spikebridge and in
Brian2 2.5.1 on the same machine in the same run; prints wall time per simulated second for
each, their medians over --reps runs and the ratio. Brian2 runs the same equations (its Song et
al. example, with NEST's dendritic delay convention as in tests/ref/make_stdp_brian2.py) with
the runtime target given by --target (numpy: no compiler; cython: compiled once, warm-up run
excluded). Both single-threaded (OMP_NUM_THREADS=1 for spikebridge). Not a test.
    /usr/bin/python3 bench/stdp_vs_brian2.py [--t-stop S] [--reps N] [--target numpy|cython]"""
import argparse, os, subprocess, sys, tempfile, time, statistics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ours(t_stop_s):
    out = os.path.join(tempfile.mkdtemp(), 'song.h5')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    t0 = time.perf_counter()
    subprocess.run([os.path.join(ROOT, 'spikebridge'), 'run', os.path.join(ROOT, 'examples/stdp_song2000.json'),
                    '--t-stop', str(t_stop_s * 1000), '-o', out, '--quiet'], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def brian(t_stop_s, target):
    from brian2 import (ms, mV, Hz, second, PoissonGroup, NeuronGroup, Synapses, Network, prefs, defaultclock,
                        start_scope)
    start_scope()
    prefs.codegen.target = target
    defaultclock.dt = 0.1 * ms
    taum, El, Ee, vt, vr, taue = 10 * ms, -74 * mV, 0 * mV, -54 * mV, -60 * mV, 5 * ms
    gmax, lam, alpha, tau = 0.01, 0.01, 1.05, 20 * ms
    inp = PoissonGroup(1000, rates=15 * Hz)
    post = NeuronGroup(1, 'dv/dt = (ge*(Ee - v) + El - v)/taum : volt\ndge/dt = -ge/taue : 1',
                       threshold='v > vt', reset='v = vr', method='euler')
    post.v = vr
    S = Synapses(inp, post, '''w : 1
                               dapre/dt = -apre/tau : 1 (event-driven)
                               dapost/dt = -apost/tau : 1 (event-driven)''',
                 on_pre={'pre': 'w = clip(w - alpha*lam*gmax*apost, 0, gmax)\napre += 1',
                         'effect': 'ge += w'},
                 on_post='w = clip(w + lam*gmax*apre, 0, gmax)\napost += 1')
    S.connect()
    S.w = 'rand()*gmax'
    S.effect.delay = 1 * ms
    S.post.delay = 1 * ms
    net = Network(inp, post, S)
    net.run(100 * ms)   # warm-up (code generation / compilation)
    t0 = time.perf_counter()
    net.run(t_stop_s * second)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--t-stop', type=float, default=10.0, help='simulated seconds per run')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--target', default='numpy')
    a = ap.parse_args()
    o, b = [], []
    for r in range(a.reps):
        o.append(ours(a.t_stop) / a.t_stop)
        b.append(brian(a.t_stop, a.target) / a.t_stop)
        print('rep %d: spikebridge %.3f s, Brian2 (%s) %.3f s per simulated second' % (r, o[-1], a.target, b[-1]),
              flush=True)
    mo, mb = statistics.median(o), statistics.median(b)
    print('Song et al. 2000 (1000 plastic synapses), wall s per simulated s, median of %d: spikebridge %.3f, '
          'Brian2 %s %.3f, ratio Brian2/spikebridge %.1f (1 thread each; machine may be shared)'
          % (a.reps, mo, a.target, mb, mb / mo))


if __name__ == '__main__':
    sys.exit(main())
