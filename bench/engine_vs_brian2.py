#!/usr/bin/python3
"""Engine benchmark: CUBA (Brette et al. 2007) and Brunel 2000 (NEST brunel_delta) in
spikebridge vs Brian2's C++ standalone mode, same thread count, same machine, same run.
Not a test. Usage (Debian python3 with python3-brian and g++):
    /usr/bin/python3 bench/engine_vs_brian2.py [--t-stop S] [--brunel-t-stop S] [--threads N] [--reps R]
        [--only cuba|brunel|brunel_w] [--base OLD_BINARY] [--paired R]
--only brunel_w (not in the default set) runs Brunel with per-synapse weights drawn from a normal
distribution (sd 10% of the mean) in both simulators.
--base also times another spikebridge binary (e.g. a build of an older commit) in the same loop,
for before/after figures on the same machine state.
--paired R (1 thread only) also runs R swapped pairs: Brian2's binary and ours at the same time,
each pinned to one of the two cores (taskset), then with the cores swapped. On this VM the two
vCPUs run at different speeds that change over minutes (the same binary: 0.85 s on one, 1.15 s
on the other, then the reverse), which sequential runs cannot separate from the simulators; a
swapped pair sees both cores, and sqrt(r1 r2) of its two ratios cancels their speeds.
Prints, per network: wall time per biological second for both (median of R runs): Brian2's
network.run (its own timing, results/last_run_info.txt) and whole binary, our simulation phase and
whole command, and the like-for-like ratios (run phase against simulation phase, whole against
whole; earlier sessions' headline, Brian2's whole binary against our simulation phase, follows on
its own line), also of the fastest runs; synaptic events per second, bytes per synapse and peak
RSS (ours from the summary, Brian2's from getrusage of the child), and the mean excitatory and
inhibitory rates of both. With 1 thread Brian2 runs its plain code (no OpenMP), with N > 1 OpenMP
with N threads."""
import argparse, os, re, resource, shutil, statistics, subprocess, sys, tempfile, time, warnings
import numpy as np

warnings.filterwarnings('ignore', category=FutureWarning)   # pythran's, when Brian2 loads

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.environ.get('SB_BENCH_BIN', os.path.join(ROOT, 'spikebridge'))


def brian_build(net, T, threads, d):
    import brian2
    from brian2 import (ms, mV, Hz, NeuronGroup, Synapses, PoissonInput, SpikeMonitor, run,
                        set_device, device, prefs, seed)
    set_device('cpp_standalone', directory=d, build_on_run=False)
    if threads > 1:   # 1 thread: Brian2's plain single-threaded code, without OpenMP
        prefs.devices.cpp_standalone.openmp_threads = threads
    seed(1)
    weighted = net == 'brunel_w'
    if net == 'cuba':
        taum = 20 * ms; taue = 5 * ms; taui = 10 * ms; Vt = -50 * mV; Vr = -60 * mV; El = -49 * mV
        eqs = '''dv/dt = (ge+gi-(v-El))/taum : volt (unless refractory)
                 dge/dt = -ge/taue : volt
                 dgi/dt = -gi/taui : volt'''
        P = NeuronGroup(4000, eqs, threshold='v>Vt', reset='v = Vr', refractory=5 * ms, method='exact')
        P.v = 'Vr + rand() * (Vt - Vr)'
        Ce = Synapses(P, P, on_pre='ge += 1.62*mV', delay=0.1 * ms)
        Ci = Synapses(P, P, on_pre='gi += -9*mV', delay=0.1 * ms)
        Ce.connect('i<3200', p=0.02); Ci.connect('i>=3200', p=0.02)
        mon, n_exc, n = SpikeMonitor(P), 3200, 4000
    else:
        NE, NI, CE, CI = 10000, 2500, 1000, 250
        J = 0.1 * mV; g = 5.0; D = 1.5 * ms; tau = 20 * ms; theta = 20 * mV
        G = NeuronGroup(NE + NI, 'dv/dt = -v/tau : volt (unless refractory)', threshold='v>=theta',
                        reset='v=0*mV', refractory=2 * ms, method='exact')
        G.v = 'rand()*theta'
        rng = np.random.RandomState(1)
        post = np.repeat(np.arange(NE + NI), CE)
        if weighted:   # per-synapse weights, normal with sd 10% of the mean
            Se = Synapses(G, G, 'w : volt', on_pre='v_post += w*int(not_refractory_post)', delay=D)
            Si = Synapses(G, G, 'w : volt', on_pre='v_post += w*int(not_refractory_post)', delay=D)
        else:
            Se = Synapses(G, G, on_pre='v_post += J*int(not_refractory_post)', delay=D)
            Si = Synapses(G, G, on_pre='v_post += -g*J*int(not_refractory_post)', delay=D)
        Se.connect(i=rng.randint(0, NE, (NE + NI) * CE), j=post)
        Si.connect(i=rng.randint(NE, NE + NI, (NE + NI) * CI), j=np.repeat(np.arange(NE + NI), CI))
        if weighted:
            Se.w = 'J*(1 + 0.1*randn())'
            Si.w = '-g*J*(1 + 0.1*randn())'
        # assigned: Brian2's magic network only runs objects that are still referenced (an
        # unassigned PoissonInput is garbage-collected at once and the network stays silent)
        ext = PoissonInput(G, 'v', N=CE, rate=20 * Hz, weight='J*int(not_refractory)')
        mon, n_exc, n = SpikeMonitor(G), NE, NE + NI
    run(T * 1000 * ms)
    device.build(directory=d, compile=True, run=False)
    return mon, n_exc, n


def brian_rates(mon, n_exc, n, T):
    """Mean rates (Hz) of the excitatory and inhibitory neurons from the last run of the binary."""
    from brian2.devices.device import get_device
    get_device().has_been_run = True   # the timed ./main wrote the results; read them through the monitor
    i = np.asarray(mon.i[:])
    return np.sum(i < n_exc) / (n_exc * T), np.sum(i >= n_exc) / ((n - n_exc) * T)


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def brian_run_phase(d):
    """Brian2's own timing of network.run (results/last_run_info.txt: duration and completed fraction)."""
    with open(os.path.join(d, 'results', 'last_run_info.txt')) as f:
        return float(f.read().split()[0])


def brian_time(d):
    t0 = time.time()
    c0 = cpu_children()
    subprocess.run(['./main'], cwd=d, check=True, stdout=subprocess.DEVNULL)
    CPU['brian'] = cpu_children() - c0
    RUNPH['brian'] = brian_run_phase(d)
    return time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


CPU = {}
RATES = {}
RUNPH = {}


# brunel_w: the same normal weights as Brian2's (sd 10% of the mean)
WEIGHTED = [a for k, m in ((0, 0.1), (1, 0.1), (2, -0.5), (3, -0.5))
            for a in ('--set', 'projections[%d].weight={"distribution":"normal","mean":%g,"std":%g}' % (k, m, abs(m) / 10))]


def sim_seconds(out):
    """Our summary's simulation phase, s."""
    return float(re.search(r'simulation\s+([\d.]+) s', out).group(1))


def ours(model, T, threads, binary=BIN, extra=()):
    o = tempfile.mktemp(suffix='.h5')
    t0 = time.time()
    c0 = cpu_children()
    out = subprocess.run([binary, 'run', model, '--t-stop', str(T * 1000), '--threads', str(threads), '-o', o, '-q']
                         + list(extra), check=True, capture_output=True, text=True).stdout
    total = time.time() - t0
    CPU['ours'] = cpu_children() - c0
    os.unlink(o)
    sim = sim_seconds(out)
    syn = int(re.search(r'events\s+(\d+) synaptic, (\d+) stimulus', out).group(1))
    ext = int(re.search(r'events\s+(\d+) synaptic, (\d+) stimulus', out).group(2))
    bps = float(re.search(r'([\d.]+) bytes/synapse', out).group(1))
    rss = float(re.search(r'peak memory\s+([\d.]+) MB', out).group(1))
    RATES['ours'] = tuple(float(re.search(r'\n\s*%s\s+\d+\s+\d+\s+([\d.]+)' % p, out).group(1)) for p in ('exc', 'inh'))
    return sim, total, syn + ext, bps, rss


def paired_once(d, model, T, cores):
    """Brian2's binary on cores[0] and ours on cores[1], started together: (Brian2 wall s, Brian2's run
    phase s, our simulation s)."""
    o = tempfile.mktemp(suffix='.h5')
    t0 = time.time()
    pb = subprocess.Popen(['taskset', '-c', str(cores[0]), './main'], cwd=d, stdout=subprocess.DEVNULL)
    po = subprocess.Popen(['taskset', '-c', str(cores[1]), BIN, 'run', model, '--t-stop', str(T * 1000), '--threads', '1',
                           '-o', o, '-q'], stdout=subprocess.PIPE, text=True)
    end, ok = {}, True
    for _ in range(2):   # each child's own end time (our summary fits in the pipe's buffer)
        pid, status, _ru = os.wait4(-1, 0)
        end[pid] = time.time()
        ok = ok and status == 0
    pb.returncode = po.returncode = 0   # reaped above
    out = po.stdout.read()
    po.stdout.close()
    if not ok:
        sys.exit('paired run failed')
    wb = end[pb.pid] - t0
    os.unlink(o)
    return wb, brian_run_phase(d), sim_seconds(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--t-stop', type=float, default=10.0, help='CUBA biological seconds')
    ap.add_argument('--brunel-t-stop', type=float, default=10.0, help='Brunel biological seconds')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--only', choices=['cuba', 'brunel', 'brunel_w'])
    ap.add_argument('--base', help='another spikebridge binary to time in the same loop (before/after)')
    ap.add_argument('--paired', type=int, default=0, metavar='R',
                    help='also R swapped pairs of concurrent runs pinned to the two cores (1 thread only)')
    a = ap.parse_args()
    print('spikebridge engine vs Brian2 %s cpp_standalone, %d thread(s), OMP/OpenBLAS threads pinned; '
          'machine load at start: %s' % (__import__('brian2').__version__, a.threads, os.getloadavg()))
    for net, model, T in (('cuba', 'models/snn/cuba.json', a.t_stop),
                          ('brunel', 'models/snn/brunel_delta.json', a.brunel_t_stop),
                          ('brunel_w', 'models/snn/brunel_delta.json', a.brunel_t_stop)):
        if (a.only and a.only != net) or (not a.only and net == 'brunel_w'):
            continue
        extra = WEIGHTED if net == 'brunel_w' else ()
        d = tempfile.mkdtemp(prefix='sb_brian_%s_' % net)
        try:
            mon, n_exc, n = brian_build(net, T, a.threads, d)
            bt, ot, ots, old, bc, oc, brp = [], [], [], [], [], [], []
            for r in range(a.reps):
                w, brss = brian_time(d)
                bt.append(w); bc.append(CPU['brian']); brp.append(RUNPH['brian'])
                sim, total, ev, bps, rss = ours(os.path.join(ROOT, model), T, a.threads, extra=extra)
                ot.append(sim); ots.append(total); oc.append(CPU['ours'])
                if a.base:
                    old.append(ours(os.path.join(ROOT, model), T, a.threads, a.base, extra)[0])
            b, s, st = statistics.median(bt), statistics.median(ot), statistics.median(ots)
            rp = statistics.median(brp)
            # like for like: Brian2's network.run against our simulation phase, whole against whole
            print('%-7s T=%gs  Brian2 %.3f s/bio-s network.run (%.3f whole binary, peak RSS %.0f MB) | spikebridge %.3f '
                  's/bio-s simulation (%.3f whole command) | ratio Brian2/ours %.2f (run phases), %.2f (whole commands) | '
                  '%.3g events/s | %.2f bytes/synapse | peak RSS %.0f MB'
                  % (net, T, rp / T, b / T, brss / 1024.0, s / T, st / T, rp / s, b / st, ev / s, bps, rss))
            print('        Brian2 whole binary / our simulation phase (earlier sessions\' headline): %.2f' % (b / s))
            if a.base:
                o = statistics.median(old)
                print('%-7s base binary %s: %.3f s/bio-s simulation (ratio Brian2 run phase/base %.2f; base/now %.2f)'
                      % (net, a.base, o / T, rp / o, o / s))
            print('        CPU time (user+sys, whole commands; robust on a loaded machine): Brian2 %.3f s/bio-s, '
                  'ours %.3f s/bio-s, ratio %.2f' % (statistics.median(bc) / T, statistics.median(oc) / T,
                                                     statistics.median(bc) / statistics.median(oc)))
            be, bi = brian_rates(mon, n_exc, n, T)
            print('        rates (Hz): Brian2 exc %.2f inh %.2f | ours exc %.2f inh %.2f (over %g s)'
                  % (be, bi, RATES['ours'][0], RATES['ours'][1], T))
            # the machine's speed is bimodal (runs of one binary differ by up to 1.6x within minutes):
            # the fastest run of each is its time in the machine's fast state, a second estimate
            print('        fastest runs: Brian2 network.run %.3f s/bio-s, ours %.3f s/bio-s simulation, ratio %.2f%s'
                  % (min(brp) / T, min(ot) / T, min(brp) / min(ot),
                     ('; base %.3f s/bio-s, ratio Brian2/base %.2f' % (min(old) / T, min(brp) / min(old))) if a.base else ''))
            print('        runs (s): Brian2 network.run %s (whole %s) | ours sim %s%s' % (
                  ' '.join('%.2f' % x for x in brp), ' '.join('%.2f' % x for x in bt),
                  ' '.join('%.2f' % x for x in ot), (' | base sim ' + ' '.join('%.2f' % x for x in old)) if a.base else ''))
            if a.paired and a.threads == 1:
                g, gr, runs = [], [], []
                for r in range(a.paired):
                    b0, r0, o0 = paired_once(d, os.path.join(ROOT, model), T, (0, 1))
                    b1, r1, o1 = paired_once(d, os.path.join(ROOT, model), T, (1, 0))
                    g.append(((b0 / o0) * (b1 / o1)) ** 0.5)
                    gr.append(((r0 / o0) * (r1 / o1)) ** 0.5)
                    runs.append('%.2f(%.2f)/%.2f %.2f(%.2f)/%.2f' % (b0, r0, o0, b1, r1, o1))
                print('        paired (Brian2 and ours at the same time on the two cores, then swapped), ratio per swapped '
                      'pair: Brian2 network.run / our simulation %s, median %.2f (Brian2 whole binary / our simulation %s, '
                      'median %.2f)' % (' '.join('%.2f' % x for x in gr), statistics.median(gr),
                                        ' '.join('%.2f' % x for x in g), statistics.median(g)))
                print('        paired runs (s, Brian2 whole(run)/ours sim: cores 0/1, then 1/0): %s' % ' | '.join(runs))
            sys.stdout.flush()
        finally:
            shutil.rmtree(d, ignore_errors=True)
            from brian2 import device
            device.reinit(); device.activate()


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
    main()
