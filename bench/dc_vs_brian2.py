#!/usr/bin/python3
"""Benchmark: the Diehl & Cook 2015 network (784 Poisson inputs from Fashion-MNIST pixels, N
excitatory neurons with adaptive thresholds and STDP on the input weights, N inhibitory neurons,
weight normalisation before every showing, 350 ms + 150 ms rest, the < 5 spikes repeat rule):
wall time per training image in spikebridge (`spikebridge stdp-train`, event-driven, exact
integration; its own timer, data loading excluded) and in Brian2 2.5.1 (the same equations and
parameters as Diehl & Cook's Brian code, dt = 0.5 ms as theirs, runtime target --target,
default cython, compiled in a warm-up image that is not timed), on the same machine in the same
run, on the same first --images training images. Both single-threaded. Brian2's time is given
twice: in total (two run() calls per image as in Diehl & Cook's loop; Brian2 2.5.1 redoes its
set-up, including a sympy analysis of the event-driven traces, at every run()) and in its
compiled code objects alone (profile=True), i.e. without that per-run set-up. Prints each, the
medians over --reps and the ratios. Not a test.
    /usr/bin/python3 bench/dc_vs_brian2.py [--neurons 100] [--images 20] [--reps 3] [--target cython|numpy]"""
import argparse, gzip, os, statistics, subprocess, sys, tempfile, time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get('SB_DATA_DIR', '/usr/share/datasets/fashion-mnist')


def ours(n, images):
    import h5py
    out = os.path.join(tempfile.mkdtemp(), 'dc.h5')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    subprocess.run([os.path.join(ROOT, 'spikebridge'), 'stdp-train', '--neurons', str(n), '--train', str(images),
                    '--label', '0', '--test', '0', '--threads', '1', '-o', out, '--quiet'], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    with h5py.File(out, 'r') as f:
        return float(np.ravel(f.attrs['seconds_per_train_image'])[0])


def load_images(k):
    with gzip.open(os.path.join(DATA, 'train-images-idx3-ubyte.gz')) as f:
        buf = f.read(16 + 784 * k)
    return np.frombuffer(buf, np.uint8, offset=16).reshape(k, 784).astype(float)


def brian(n_e, images, target):
    import brian2 as b2
    from brian2 import ms, mV, Hz
    b2.start_scope()
    b2.prefs.codegen.target = target
    b2.defaultclock.dt = 0.5 * ms
    n_input = 784
    ns = dict(v_rest_e=-65 * mV, v_rest_i=-60 * mV, v_reset_e=-65 * mV, v_reset_i=-45 * mV, v_thresh_e=-52 * mV,
              v_thresh_i=-40 * mV, offset=20 * mV, tc_theta=1e7 * ms, theta_plus_e=0.05 * mV, tc_pre=20 * ms,
              tc_post1=20 * ms, tc_post2=40 * ms, nu_pre=0.0001, nu_post=0.01, wmax=1.0)
    eqs_e = '''dv/dt = ((v_rest_e - v) + ge * -v + gi * (-100.*mV - v)) / (100*ms) : volt (unless refractory)
               dge/dt = -ge/(1.0*ms) : 1
               dgi/dt = -gi/(2.0*ms) : 1
               dtheta/dt = -theta/tc_theta : volt'''
    eqs_i = '''dv/dt = ((v_rest_i - v) + ge * -v + gi * (-85.*mV - v)) / (10*ms) : volt (unless refractory)
               dge/dt = -ge/(1.0*ms) : 1
               dgi/dt = -gi/(2.0*ms) : 1'''
    E = b2.NeuronGroup(n_e, eqs_e, threshold='v > (theta - offset + v_thresh_e)',
                       reset='v = v_reset_e; theta += theta_plus_e', refractory=5 * ms, method='euler', namespace=ns)
    I = b2.NeuronGroup(n_e, eqs_i, threshold='v > v_thresh_i', reset='v = v_reset_i', refractory=2 * ms,
                       method='euler', namespace=ns)
    E.v = ns['v_rest_e'] - 40 * mV
    I.v = ns['v_rest_i'] - 40 * mV
    E.theta = 20 * mV
    EI = b2.Synapses(E, I, 'w : 1', on_pre='ge_post += w', namespace=ns)
    EI.connect(j='i')
    EI.w = 10.4
    IE = b2.Synapses(I, E, 'w : 1', on_pre='gi_post += w', namespace=ns)
    IE.connect(condition='i != j')
    IE.w = 17.0
    P = b2.PoissonGroup(n_input, 0 * Hz)
    S = b2.Synapses(P, E, '''w : 1
                             post2before : 1
                             dpre/dt = -pre/tc_pre : 1 (event-driven)
                             dpost1/dt = -post1/tc_post1 : 1 (event-driven)
                             dpost2/dt = -post2/tc_post2 : 1 (event-driven)''',
                    on_pre='ge_post += w; pre = 1.; w = clip(w - nu_pre * post1, 0, wmax)',
                    on_post='post2before = post2; w = clip(w + nu_post * pre * post2before, 0, wmax); '
                            'post1 = 1.; post2 = 1.', namespace=ns)
    S.connect(True)
    rng = np.random.RandomState(1)
    S.w = rng.uniform(0, 0.3, n_input * n_e)
    S.delay = 'rand() * 10 * ms'
    cnt = b2.SpikeMonitor(E, record=False)
    net = b2.Network(E, I, EI, IE, P, S, cnt)
    si, sj = np.asarray(S.i[:]), np.asarray(S.j[:])
    imgs = load_images(images + 1)
    times, sims = [], []
    for k in range(images + 1):   # image 0 compiles (cython) and is not timed
        t0 = time.perf_counter()
        sim = 0.0
        intensity = 2.0
        for rep in range(11):
            wv = np.asarray(S.w[:])
            sums = np.bincount(sj, weights=wv, minlength=n_e)
            S.w = wv * (78.0 / sums[sj])
            before = cnt.count[:].copy()
            P.rates = imgs[k] / 8.0 * intensity * Hz
            net.run(350 * ms, profile=True)
            sim += sum(float(d) for _, d in net.profiling_info)
            spikes = int((cnt.count[:] - before).sum())
            P.rates = 0 * Hz
            net.run(150 * ms, profile=True)
            sim += sum(float(d) for _, d in net.profiling_info)
            if spikes >= 5:
                break
            intensity += 1
        if k:
            times.append(time.perf_counter() - t0)
            sims.append(sim)
    return sum(times) / len(times), sum(sims) / len(sims)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--neurons', type=int, default=100)
    ap.add_argument('--images', type=int, default=20)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--target', default='cython', choices=['cython', 'numpy'])
    a = ap.parse_args()
    import brian2
    print(f'Diehl & Cook 2015, {a.neurons} excitatory neurons, {a.images} training images per run, {a.reps} runs;'
          f' Brian2 {brian2.__version__} ({a.target}, dt 0.5 ms), spikebridge (event-driven); 1 thread each')
    o, b, bs = [], [], []
    for r in range(a.reps):
        o.append(ours(a.neurons, a.images))
        tb, sb = brian(a.neurons, a.images, a.target)
        b.append(tb)
        bs.append(sb)
        print(f'  run {r + 1}: spikebridge {o[-1]:.3f} s/image; Brian2 {b[-1]:.3f} s/image in total, of which '
              f'{bs[-1]:.3f} s in its compiled code objects', flush=True)
    mo, mb, ms_ = statistics.median(o), statistics.median(b), statistics.median(bs)
    print(f'median s per training image: spikebridge {mo:.3f}; Brian2 {mb:.3f} (ratio {mb / mo:.2f}) as Diehl & Cook '
          f'drive it (two run() calls per image, each re-running Brian2\'s set-up), {ms_:.3f} in its code objects '
          f'alone (ratio {ms_ / mo:.2f})')


if __name__ == '__main__':
    sys.exit(main())
