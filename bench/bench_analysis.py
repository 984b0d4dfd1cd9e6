#!/usr/bin/python3
"""Benchmark: `spikebridge analyze` (C, streaming) against a numpy/h5py implementation of the
same statistics, on a 10-million-spike SONATA file generated here (not committed).

  /usr/bin/python3 bench/bench_analysis.py [--spikes 10000000] [--repeat 3] [--gzip]

Prints the median wall time of each, the ratio, the peak RSS of each (ru_maxrss of the child
process), and checks that both computed the same numbers. Same statistics on both sides:
per-neuron counts, rates, CV, CV2, LV, Fano factor of 5 ms bin counts; PSTH; Gaussian-kernel
rate (sigma 10 ms); ISI histogram; Golomb's chi; and over the 20 most active neurons the
pairwise correlation coefficients, CCH (+-50 ms), STTC (5 ms), van Rossum (10 ms) and
Victor-Purpura (q = 0.1/ms) distances. Both run single-threaded on this (shared, noisy) machine.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np
import scipy.signal

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN, SIGMA, STTC_DT, VR_TAU, VP_Q, LAG = 5.0, 10.0, 5.0, 10.0, 0.1, 50.0
K = int(os.environ.get('SB_BENCH_PAIRS', '20'))


# ---- the test file ----------------------------------------------------------------------

def generate(path, n_spikes, gzip):
    """N neurons for 100 s, lognormal rates around 10 Hz, gamma ISIs of varied shape, sorted by
    time, written as our engine writes: /spikes/exc/{timestamps f64 ms, node_ids u64}."""
    rng = np.random.default_rng(1)
    T = 100_000.0
    N = max(1, n_spikes // 1000)
    rates = rng.lognormal(np.log(10.0), 0.5, N)
    shape = rng.choice([0.5, 1.0, 2.0, 4.0], N)
    exp_n = rates * T / 1000.0
    scale = exp_n / exp_n.sum() * n_spikes
    ts, ids = [], []
    for i in range(N):
        m = int(scale[i] * 1.3) + 20
        isi = rng.gamma(shape[i], 1000.0 / rates[i] / shape[i], m)
        t = np.cumsum(isi)
        t = t[t < T]
        ts.append(t)
        ids.append(np.full(t.size, i, dtype=np.uint64))
    t = np.concatenate(ts)
    ids = np.concatenate(ids)
    if t.size > n_spikes:
        keep = np.sort(rng.choice(t.size, n_spikes, replace=False))
        t, ids = t[keep], ids[keep]
    o = np.argsort(t, kind='stable')
    t, ids = t[o], ids[o]
    kw = dict(chunks=(65536,), compression='gzip', compression_opts=4) if gzip else dict(chunks=(min(1 << 20, t.size),))
    tmp = path + '.tmp'
    with h5py.File(tmp, 'w') as f:
        f.attrs['magic'] = np.uint32(0x0A7A)
        f.attrs['version'] = np.array([0, 1], dtype=np.uint32)
        g = f.create_group('spikes/exc')
        g.attrs['sorting'] = 'by_time'
        d = g.create_dataset('timestamps', data=t, **kw)
        d.attrs['units'] = 'ms'
        g.create_dataset('node_ids', data=ids, **kw)
    os.replace(tmp, path)
    return t.size, N


# ---- the numpy/h5py peer -----------------------------------------------------------------

def round_binning(v):                 # elephant.utils.round_binning_errors
    v = np.asarray(v, dtype=float)
    return (v + 0.5 * (v % 1 >= 1 - 1e-8)).astype(np.int64)


def numpy_analyze(path):
    out = {}
    with h5py.File(path, 'r') as f:
        for pop in f['spikes']:
            g = f['spikes'][pop]
            t = g['timestamps'][:]
            ids = g['node_ids'][:]
            t0, t1 = 0.0, float(t.max())
            m = (t >= t0) & (t <= t1)
            t, ids = t[m], ids[m]
            uid, inv = np.unique(ids, return_inverse=True)
            N = uid.size
            o = np.lexsort((t, inv))
            ts, k = t[o], inv[o]
            counts = np.bincount(k, minlength=N)
            rate = counts / (t1 - t0) * 1000.0
            isi = np.diff(ts)
            same = k[1:] == k[:-1]
            iv, ik = isi[same], k[1:][same]
            n_isi = np.bincount(ik, minlength=N)
            s1 = np.bincount(ik, iv, N)
            with np.errstate(invalid='ignore', divide='ignore'):
                mean = s1 / n_isi
                var = np.bincount(ik, (iv - mean[ik]) ** 2, N) / n_isi
                cv = np.where(n_isi >= 2, np.sqrt(var) / mean, np.nan)
                pair = same[1:] & same[:-1]
                a, b, kp = isi[:-1][pair], isi[1:][pair], k[2:][pair]
                r = (b - a) / (a + b)
                npair = np.bincount(kp, minlength=N)
                cv2 = np.where(npair >= 1, 2 * np.bincount(kp, np.abs(r), N) / npair, np.nan)
                lv = np.where(npair >= 1, 3 * np.bincount(kp, r * r, N) / npair, np.nan)
            B = int(round_binning((t1 - t0) / BIN))
            bins = round_binning((ts - t0) * (1 / BIN))
            ok = bins < B
            key = k[ok].astype(np.int64) * B + bins[ok]
            ukey, c = np.unique(key, return_counts=True)
            kn = ukey // B
            csum = np.bincount(kn, c, N)
            csq = np.bincount(kn, c.astype(float) ** 2, N)
            with np.errstate(invalid='ignore', divide='ignore'):
                cm = csum / B
                cvar = np.maximum(csq / B - cm * cm, 0)
                fano = np.where(csum > 0, cvar / cm, np.nan)
            hist = np.bincount(bins[ok], minlength=B).astype(float)
            psth = hist / (N * BIN) * 1000.0
            V = hist / N
            chi = np.sqrt(V.var() / (cvar.sum() / N))
            # Gaussian-kernel population rate (elephant instantaneous_rate, summed over trains)
            nb = int((t1 - t0) / BIN) + 1
            h, _ = np.histogram(ts, bins=nb, range=(t0, t1 + BIN))
            nh = int(np.ceil(5 * SIGMA / BIN))
            ta = np.linspace(-5 * SIGMA, 5 * SIGMA, 2 * nh + 1)
            kern = np.exp(-ta ** 2 / (2 * SIGMA ** 2)) / (np.sqrt(2 * np.pi) * SIGMA) * 1000.0
            irate = np.clip(scipy.signal.fftconvolve(h.astype(float), kern), 0, None)[nh:-kern.size + nh] / N
            isi_hist = np.bincount(np.clip(np.floor((np.log10(np.maximum(iv, 1e-300)) + 1) * 10), 0, 59).astype(int), minlength=60)
            # pairwise over the K most active
            top = sorted(range(N), key=lambda i: (-counts[i], uid[i]))[:K]
            starts = np.concatenate([[0], np.cumsum(counts)])
            tr = [ts[starts[i]:starts[i + 1]] for i in top]
            xb = np.zeros((len(top), B))
            for j, x in enumerate(tr):
                bb = round_binning((x - t0) * (1 / BIN))
                np.add.at(xb[j], bb[bb < B], 1)
            with np.errstate(invalid='ignore', divide='ignore'):
                cc = np.corrcoef(xb) if len(top) > 1 else np.full((len(top), len(top)), np.nan)
            L = int(np.floor(LAG / BIN))
            cch = np.zeros(2 * L + 1)
            for i in range(len(top)):
                for j in range(i + 1, len(top)):
                    cch += np.round(scipy.signal.fftconvolve(np.pad(xb[j], L), xb[i][::-1], mode='valid'))
            sttc_m, vr_m, vp_m = [], [], []
            kd = summed_dist_matrix(tr) if tr else None
            for i in range(len(top)):
                for j in range(i + 1, len(top)):
                    sttc_m.append(sttc(tr[i], tr[j], t0, t1))
                    vr_m.append(np.sqrt(max(kd[i, i] + kd[j, j] - 2 * kd[i, j], 0)))
                    vp_m.append(victor_purpura(tr[i], tr[j]))
            iu = np.triu_indices(len(top), 1)
            out[pop] = dict(n_spikes=int(t.size), n_neurons=int(N), mean_rate=float(np.mean(rate)),
                            mean_cv=float(np.nanmean(cv)), mean_cv2=float(np.nanmean(cv2)),
                            mean_lv=float(np.nanmean(lv)), mean_fano=float(np.nanmean(fano)), chi=float(chi),
                            psth_sum=float(psth.sum()), irate_sum=float(irate.sum()),
                            isi_hist_sum=float(isi_hist.sum()), mean_corrcoef=float(np.nanmean(cc[iu])) if len(top) > 1 else float('nan'),
                            mean_sttc=float(np.nanmean(sttc_m)) if sttc_m else float('nan'), cch_sum=float(cch.sum()),
                            vr_sum=float(np.sum(vr_m)), vp_sum=float(np.sum(vp_m)))
    return out


def sttc(a, b, t0, t1, dt=STTC_DT):     # elephant spike_time_tiling_coefficient
    def run_P(x, y):
        ind = np.searchsorted(y, x)
        ind[ind == len(y)] = len(y) - 1
        return np.count_nonzero((np.abs(y[ind - 1] - x) <= dt) + (np.abs(y[ind] - x) <= dt))

    def run_T(x):
        d = np.diff(x)
        ov = d[d < 2 * dt]
        ta = 2 * len(x) * dt - 2 * dt * len(ov) + np.sum(ov)
        if x[0] - t0 < dt:
            ta += x[0] - dt - t0
        if t1 - x[-1] < dt:
            ta += -x[-1] - dt + t1
        return ta / (t1 - t0)
    TA, TB = run_T(a), run_T(b)
    PA, PB = run_P(a, b) / len(a), run_P(b, a) / len(b)
    return 0.5 * (PA - TB) / (1 - PA * TB) + 0.5 * (PB - TA) / (1 - PB * TA)


def summed_dist_matrix(trains, tau=VR_TAU):
    """elephant.spike_train_dissimilarity._summed_dist_matrix (Houghton & Kreuz 2012), ported:
    D[u, v] = sum_ij exp(-|x_i - y_j| / tau), O(N^2 n)."""
    sizes = np.asarray([v.size for v in trains])
    values = np.full((len(trains), max(1, sizes.max())), np.nan)
    for i, v in enumerate(trains):
        values[i, :v.size] = v / tau
    exp_diffs = np.exp(values[:, :-1] - values[:, 1:])
    markage = np.zeros(values.shape)
    for u in range(len(trains)):
        for i in range(sizes[u] - 1):
            markage[u, i + 1] = (markage[u, i] + 1.0) * exp_diffs[u, i]
    D = np.empty((len(trains), len(trains)))
    D[np.diag_indices_from(D)] = sizes + 2.0 * np.sum(markage, axis=1)
    for u in range(D.shape[0]):
        all_ks = np.searchsorted(values[u], values, 'left') - 1
        for v in range(u):
            js = np.searchsorted(values[v], values[u], 'right') - 1
            ks = all_ks[v]
            slice_j = np.s_[np.searchsorted(js, 0):sizes[u]]
            slice_k = np.s_[np.searchsorted(ks, 0):sizes[v]]
            D[u, v] = np.sum(np.exp(values[v][js[slice_j]] - values[u][slice_j]) * (1.0 + markage[v][js[slice_j]]))
            D[u, v] += np.sum(np.exp(values[u][ks[slice_k]] - values[v][slice_k]) * (1.0 + markage[u][ks[slice_k]]))
            D[v, u] = D[u, v]
    return D


def victor_purpura_dp(a, b, q):
    """Victor-Purpura DP row by row, vectorised with a running minimum (the idea of Elephant's
    'fast' algorithm)."""
    nb = len(b)
    if len(a) == 0 or nb == 0:
        return max(len(a), nb)
    ar = np.arange(nb + 1, dtype=float)
    row = ar.copy()
    for i in range(1, len(a) + 1):
        cand = np.empty(nb + 1)
        cand[0] = i
        cand[1:] = np.minimum(row[1:] + 1, row[:-1] + q * np.abs(a[i - 1] - b))
        row = np.minimum.accumulate(cand - ar) + ar
    return row[nb]


def victor_purpura(a, b, q=VP_Q):
    """Same segmentation as the C code: split the merged trains at gaps >= 2/q (exact)."""
    u = np.concatenate([a, b])
    src = np.concatenate([np.zeros(len(a), bool), np.ones(len(b), bool)])
    o = np.argsort(u, kind='stable')
    u, src = u[o], src[o]
    cuts = np.flatnonzero(np.diff(u) >= 2 / q) + 1
    d = 0.0
    for seg_u, seg_s in zip(np.split(u, cuts), np.split(src, cuts)):
        d += victor_purpura_dp(seg_u[~seg_s], seg_u[seg_s], q)
    return d


# ---- the driver ---------------------------------------------------------------------------

def run_child(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1'))
    wall = time.perf_counter() - t
    if p.returncode:
        sys.exit('failed: %s\n%s' % (' '.join(cmd), p.stderr))
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max over children so far
    return wall, rss, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--spikes', type=int, default=10_000_000)
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--gzip', action='store_true', help='gzip-4 chunks of 65536 (as sb_h5_write_1d writes)')
    ap.add_argument('--pairs', type=int, default=20, help='neurons for pairwise measures (0: none)')
    ap.add_argument('--numpy-child', help=argparse.SUPPRESS)
    a = ap.parse_args()
    global K
    K = a.pairs
    os.environ['SB_BENCH_PAIRS'] = str(K)
    if a.numpy_child:
        print(json.dumps(numpy_analyze(a.numpy_child)))
        return
    os.makedirs(os.path.join(HERE, 'out'), exist_ok=True)
    path = os.path.join(HERE, 'out', 'spikes_%d%s.h5' % (a.spikes, '_gzip' if a.gzip else ''))
    if not os.path.exists(path):
        print('generating %s ...' % path, flush=True)
        n, N = generate(path, a.spikes, a.gzip)
        print('  %d spikes, %d neurons, %.0f MB' % (n, N, os.path.getsize(path) / 1e6))
    ours_cmd = [os.path.join(ROOT, 'spikebridge'), 'analyze', path, '--json', '--sigma', str(SIGMA),
                '--bin', str(BIN), '--pairs', str(K)]
    peer_cmd = [sys.executable, os.path.abspath(__file__), '--pairs', str(K), '--numpy-child', path]
    tw, pw = [], []
    ours_out = peer_out = None
    # the RSS of a child is only visible as a maximum over all children: measure each side in a
    # fresh python process so the two maxima do not mix
    for _ in range(a.repeat):
        w, _, ours_out = run_child(ours_cmd)
        tw.append(w)
        w, _, peer_out = run_child(peer_cmd)
        pw.append(w)
    rss_ours = int(subprocess.run([sys.executable, '-c', 'import resource,subprocess,sys;subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL);'
                                   'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)'] + ours_cmd,
                                  stdout=subprocess.PIPE, text=True).stdout)
    rss_peer = int(subprocess.run([sys.executable, '-c', 'import resource,subprocess,sys;subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL);'
                                   'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)'] + peer_cmd,
                                  stdout=subprocess.PIPE, text=True).stdout)
    ours = json.loads(ours_out)['populations'][0]
    peer = peer_out and json.loads(peer_out)['exc']
    # same numbers?
    ch = [('n_spikes', ours['n_spikes'], peer['n_spikes']), ('n_neurons', ours['n_neurons'], peer['n_neurons']),
          ('mean_rate', ours['mean_rate_hz'], peer['mean_rate']), ('mean_cv', ours['cv']['mean'], peer['mean_cv']),
          ('mean_cv2', ours['cv2']['mean'], peer['mean_cv2']), ('mean_lv', ours['lv']['mean'], peer['mean_lv']),
          ('mean_fano', ours['fano']['mean'], peer['mean_fano']), ('chi', ours['synchrony']['value'], peer['chi']),
          ('psth_sum', sum(ours['psth_rate_hz']), peer['psth_sum']),
          ('irate_sum', sum(ours['instantaneous_rate']['rate_hz']), peer['irate_sum']),
          ('isi_hist_sum', sum(ours['isi_histogram']['counts']), peer['isi_hist_sum']),
          ('mean_corrcoef', ours['pairs']['mean_corrcoef'], peer['mean_corrcoef']),
          ('mean_sttc', ours['pairs']['mean_sttc'], peer['mean_sttc']),
          ('cch_sum', sum(ours['pairs']['cch_summed']['counts']), peer['cch_sum']),
          ('vr_sum', sum(ours['pairs']['van_rossum']) / 2, peer['vr_sum']),
          ('vp_sum', sum(x for x in ours['pairs']['victor_purpura'] if x is not None) / 2, peer['vp_sum'])]
    ch = [(n, np.nan if x is None else x, y) for n, x, y in ch]
    bad = [(n, x, y) for n, x, y in ch if not np.isclose(x, y, rtol=1e-6, atol=1e-9, equal_nan=True)]
    print('file: %s (%d spikes, %d neurons, %s); pairwise measures over %d neurons' % (
        os.path.basename(path), ours['n_spikes_file'], ours['n_neurons'], 'gzip-4 chunks' if a.gzip else 'uncompressed chunks', K))
    print('statistics agree (rtol 1e-6): %s' % ('yes, %d checks' % len(ch) if not bad else 'NO: %s' % bad))
    print('spikebridge analyze : median %.2f s of %s   peak RSS %.0f MB   (window %d spikes, %d passes)' % (
        statistics.median(tw), ['%.2f' % x for x in tw], rss_ours / 1024, ours['peak_window_spikes'], ours['passes']))
    print('numpy/h5py          : median %.2f s of %s   peak RSS %.0f MB' % (
        statistics.median(pw), ['%.2f' % x for x in pw], rss_peer / 1024))
    print('ratio numpy/ours    : %.1fx' % (statistics.median(pw) / statistics.median(tw)))
    print('threads: 1 each (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1); machine shared with other jobs (noisy)')


if __name__ == '__main__':
    main()
