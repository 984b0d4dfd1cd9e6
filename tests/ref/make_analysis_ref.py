#!/usr/bin/python3
"""Reference values for tests/test_analysis.c: a small nontrivial spike-train set and every
statistic of analysis/ computed independently with numpy/scipy.

Elephant (NeuralEnsemble) is not installed here, so its definitions are re-implemented below
from its source (elephant 0.11-1.0: statistics.py, conversion.py, spike_train_correlation.py,
spike_train_dissimilarity.py, utils.py), each function naming the Elephant function it mirrors.
Deliberately different algorithms from the C code where possible (O(n^2) double sums for van
Rossum instead of the Houghton-Kreuz recursion, np.corrcoef on dense binned arrays, Elephant's
searchsorted STTC, fftconvolve for the CCH and the instantaneous rate).

Writes tests/ref/analysis_ref.h5:
  /spikes/mixed/{timestamps,node_ids}   float64 ms / uint64, sorting by_time (the trains below)
  /spikes/shuffled/...                  the same spikes in random order, sorting none
  /spikes/mislabelled/...               the same random order, but labelled sorting by_time
  /ref/...                              expected values (see the datasets' names)
Run: /usr/bin/python3 tests/ref/make_analysis_ref.py   (numpy, scipy, h5py from Debian)
"""
import os
import sys

import h5py
import numpy as np
import scipy
import scipy.signal

T0, T1 = 0.0, 1000.0      # ms
BIN = 7.0                 # ms, deliberately not dividing 1000
SIGMA = 2 * BIN           # ms, Gaussian kernel of the instantaneous rate (summary default)
STTC_DT = 5.0             # ms
VR_TAU = 10.0             # ms
VP_Q = 0.1                # 1/ms
CCH_L = int(np.floor(50.0 / BIN))


def make_trains():
    rng = np.random.default_rng(20261129)
    trains = {}
    # 0: Poisson 20 Hz
    trains[3] = np.cumsum(rng.exponential(50.0, 40))
    # 1: gamma order 4, 15 Hz
    trains[7] = np.cumsum(rng.gamma(4.0, 1000.0 / 15 / 4, 30))
    # 2: regular 50 Hz with jitter, and a spike exactly on a bin edge (700 = 100 bins)
    reg = np.arange(10.0, 1000.0, 20.0) + rng.normal(0, 0.8, 50)
    reg[34] = 700.0
    trains[11] = reg
    # 3: bursty doublets
    starts = np.cumsum(rng.exponential(80.0, 14))
    trains[12] = np.sort(np.concatenate([starts, starts + rng.uniform(2.0, 4.0, 14)]))
    # 4: two spikes (CV, CV2, LV undefined), one at exactly t_stop
    trains[20] = np.array([412.25, 1000.0])
    # 5: one spike
    trains[21] = np.array([333.3])
    # 6: correlated with neuron 3: its spikes 1-3 ms later, some dropped, some extra
    src = trains[3][trains[3] < 990]
    keep = rng.uniform(size=src.size) < 0.8
    extra = rng.uniform(0, 1000, 5)
    trains[30] = np.sort(np.concatenate([src[keep] + rng.uniform(1.0, 3.0, keep.sum()), extra]))
    # a few spikes outside the analysis window [T0, T1] (ignored by every statistic)
    trains[7] = np.concatenate([trains[7][trains[7] < 990], [1003.5, 1250.0]])
    for k in trains:
        trains[k] = np.sort(trains[k])
    return trains


# ---- Elephant re-implementations -------------------------------------------------------

def window(t):
    return t[(t >= T0) & (t <= T1)]


def mean_firing_rate(t):           # elephant.statistics.mean_firing_rate (array input), Hz
    return np.sum((t >= T0) & (t <= T1)) / (T1 - T0) * 1000.0


def cv(isi):                       # elephant.statistics.cv = scipy.stats.variation (ddof 0);
    if isi.size < 2:               # NaN below 2 intervals (our stated convention, like cv2/lv)
        return np.nan
    return scipy.stats.variation(isi)


def cv2(isi):                      # elephant.statistics.cv2(with_nan=True)
    if isi.size < 2:
        return np.nan
    cv_i = np.diff(isi) / (isi[:-1] + isi[1:])
    return 2.0 * np.mean(np.abs(cv_i))


def lv(isi):                       # elephant.statistics.lv(with_nan=True)
    if isi.size < 2:
        return np.nan
    cv_i = np.diff(isi) / (isi[:-1] + isi[1:])
    return 3.0 * np.mean(np.power(cv_i, 2))


def round_binning_errors(values, tolerance=1e-8):   # elephant.utils.round_binning_errors
    values = np.array(values, dtype=float, ndmin=1)
    mask = 1 - tolerance <= values % 1
    values[mask] += 0.5
    return values.astype(np.int64)


def n_bins():                      # BinnedSpikeTrain: n_bins from (t_stop - t_start)/bin_size
    return int(round_binning_errors((T1 - T0) / BIN)[0])


def binned(t):                     # elephant.conversion.BinnedSpikeTrain._create_sparse_matrix
    nb = n_bins()
    times = t[(t >= T0) & (t <= T1)] - T0
    bins = round_binning_errors(times * (1 / BIN))
    bins = bins[bins < nb]
    return np.bincount(bins, minlength=nb).astype(float)


def fanofactor(counts):            # elephant.statistics.fanofactor over the bins of one train
    if np.all(counts == 0):
        return np.nan
    return counts.var() / counts.mean()


def time_histogram_rate(trains):   # elephant.statistics.time_histogram(output='rate'), Hz
    h = sum(binned(t) for t in trains)
    return h / (len(trains) * BIN) * 1000.0


def instantaneous_rate(trains, dt, sigma, t0=T0, t1=T1, cutoff=5.0):
    """elephant.statistics.instantaneous_rate with GaussianKernel(sigma), center_kernel=True,
    trim=False; returns the mean over trains (Hz)."""
    nb = int((t1 - t0) / dt) + 1
    rates = []
    for t in trains:
        h, _ = np.histogram(t, bins=nb, range=(t0, t1 + dt))
        n_half = int(np.ceil(cutoff * sigma / dt))
        t_arr = np.linspace(-cutoff * sigma, cutoff * sigma, num=2 * n_half + 1, endpoint=True)
        k = np.exp(-t_arr ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma) * 1000.0  # Hz
        r = scipy.signal.fftconvolve(h.astype(float), k, mode='full')
        r = np.clip(r, 0, None)
        median_id = n_half        # GaussianKernel.median_index for a symmetric kernel
        r = r[median_id:-k.size + median_id]
        rates.append(r)
    return np.mean(rates, axis=0)


def corrcoef(trains):              # elephant.spike_train_correlation.correlation_coefficient
    x = np.array([binned(t) for t in trains])
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.corrcoef(x)


def cch(ti, tj, L):                # elephant cross_correlation_histogram, window=[-L, L] ('pad')
    a, b = binned(ti), binned(tj)
    b = np.pad(b, pad_width=L, mode='constant')
    return np.round(scipy.signal.fftconvolve(b, a[::-1], mode='valid'))


def sttc(a, b, dt):                # elephant.spike_train_correlation.spike_time_tiling_coefficient
    def run_P(x, y):
        n2 = len(y)
        ind = np.searchsorted(y, x)
        ind[ind == n2] = n2 - 1
        close_left = np.abs(y[ind - 1] - x) <= dt
        close_right = np.abs(y[ind] - x) <= dt
        return np.count_nonzero(close_left + close_right)

    def run_T(x):
        n = len(x)
        time_a = 2 * n * dt
        if n == 1:
            if x[0] - T0 < dt:
                time_a += -dt + x[0] - T0
            if x[0] + dt > T1:
                time_a += -dt - x[0] + T1
        else:
            diff = np.diff(x)
            ov = diff[diff < 2 * dt]
            time_a += -2 * dt * len(ov) + np.sum(ov)
            if x[0] - T0 < dt:
                time_a += x[0] - dt - T0
            if T1 - x[n - 1] < dt:
                time_a += -x[-1] - dt + T1
        return time_a / (T1 - T0)

    if len(a) == 0 or len(b) == 0:
        return np.nan
    TA, TB = run_T(a), run_T(b)
    PA, PB = run_P(a, b) / len(a), run_P(b, a) / len(b)
    if PA * TB == 1:
        return 1.0 if PB * TA == 1 else 0.5 + 0.5 * (PB - TA) / (1 - PB * TA)
    if PB * TA == 1:
        return 0.5 + 0.5 * (PA - TB) / (1 - PA * TB)
    return 0.5 * (PA - TB) / (1 - PA * TB) + 0.5 * (PB - TA) / (1 - PB * TA)


def van_rossum(a, b, tau):         # elephant van_rossum_distance, by the O(n^2) double sum
    def s(x, y):
        return np.sum(np.exp(-np.abs(x[:, None] - y[None, :]) / tau))
    return np.sqrt(max(s(a, a) + s(b, b) - 2 * s(a, b), 0.0))


def victor_purpura(a, b, q):       # elephant _victor_purpura_dist_for_st_pair_intuitive
    na, nb = len(a), len(b)
    scr = np.zeros((na + 1, nb + 1))
    scr[:, 0] = range(na + 1)
    scr[0, :] = range(nb + 1)
    for i in range(1, na + 1):
        for j in range(1, nb + 1):
            scr[i, j] = min(scr[i - 1, j] + 1, scr[i, j - 1] + 1, scr[i - 1, j - 1] + q * abs(a[i - 1] - b[j - 1]))
    return scr[na, nb]


def golomb_chi(trains):            # Golomb 2007 (Scholarpedia 2:1347) on binned counts
    x = np.array([binned(t) for t in trains])
    V = x.mean(axis=0)
    return np.sqrt(V.var() / x.var(axis=1).mean())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, 'analysis_ref.h5')
    trains = make_trains()
    ids = sorted(trains)
    wtr = [window(trains[k]) for k in ids]
    with h5py.File(out, 'w') as f:
        f.attrs['source'] = 'numpy %s / scipy %s re-implementation of Elephant definitions' % (np.__version__, scipy.__version__)
        f.attrs['version'] = '1'
        f.attrs['script'] = 'tests/ref/make_analysis_ref.py'
        f.attrs['magic'] = np.uint32(0x0A7A)
        allt = np.concatenate([trains[k] for k in ids])
        alln = np.concatenate([np.full(trains[k].size, k, dtype=np.uint64) for k in ids])
        o = np.argsort(allt, kind='stable')
        g = f.create_group('spikes/mixed')
        g.attrs['sorting'] = 'by_time'
        d = g.create_dataset('timestamps', data=allt[o])
        d.attrs['units'] = 'ms'
        g.create_dataset('node_ids', data=alln[o])
        rng = np.random.default_rng(7)
        p = rng.permutation(allt.size)
        g = f.create_group('spikes/shuffled')
        g.attrs['sorting'] = 'none'
        d = g.create_dataset('timestamps', data=allt[p])
        d.attrs['units'] = 'ms'
        g.create_dataset('node_ids', data=alln[p])
        # the same shuffled spikes under a wrong `sorting` attribute: readers must not trust it
        g = f.create_group('spikes/mislabelled')
        g.attrs['sorting'] = 'by_time'
        d = g.create_dataset('timestamps', data=allt[p])
        d.attrs['units'] = 'ms'
        g.create_dataset('node_ids', data=alln[p])

        r = f.create_group('ref')
        for k, v in dict(t_start=T0, t_stop=T1, bin=BIN, sigma=SIGMA, sttc_dt=STTC_DT, vr_tau=VR_TAU,
                         vp_q=VP_Q, cch_L=CCH_L).items():
            r.attrs[k] = v
        r['ids'] = np.array(ids, dtype=np.uint64)
        r['n'] = np.array([t.size for t in wtr], dtype=np.int64)
        r['rate'] = np.array([mean_firing_rate(trains[k]) for k in ids])
        isis = [np.diff(t) for t in wtr]
        r['cv'] = np.array([cv(i) for i in isis])
        r['cv2'] = np.array([cv2(i) for i in isis])
        r['lv'] = np.array([lv(i) for i in isis])
        r['fano'] = np.array([fanofactor(binned(t)) for t in wtr])
        r['n_bins'] = n_bins()
        r['psth_rate'] = time_histogram_rate(wtr)
        r['irate'] = instantaneous_rate(wtr, BIN, SIGMA)
        r['corrcoef'] = corrcoef(wtr)
        K = len(ids)
        r['sttc'] = np.array([[sttc(wtr[i], wtr[j], STTC_DT) for j in range(K)] for i in range(K)])
        r['van_rossum'] = np.array([[van_rossum(wtr[i], wtr[j], VR_TAU) for j in range(K)] for i in range(K)])
        r['victor_purpura'] = np.array([[victor_purpura(wtr[i], wtr[j], VP_Q) for j in range(K)] for i in range(K)])
        # CCH of the pair (id 3, id 30) and the CCH summed over pairs i<j ordered as the summary
        # orders neurons (spike count descending, then id ascending)
        i3, i30 = ids.index(3), ids.index(30)
        r['cch_3_30'] = cch(wtr[i3], wtr[i30], CCH_L)
        order = sorted(range(K), key=lambda i: (-wtr[i].size, ids[i]))
        tot = np.zeros(2 * CCH_L + 1)
        for a in range(K):
            for b in range(a + 1, K):
                tot += cch(wtr[order[a]], wtr[order[b]], CCH_L)
        r['cch_summed'] = tot
        r['chi'] = golomb_chi(wtr)
        # the ISI histogram (log bins, 10 per decade from 0.1 ms) over all neurons
        edges = 10.0 ** (-1 + np.arange(61) / 10.0)
        allisi = np.concatenate(isis)
        b = np.clip(np.floor((np.log10(np.maximum(allisi, 1e-300)) + 1) * 10).astype(int), 0, 59)
        b[allisi <= 0.1] = 0
        r['isi_hist'] = np.bincount(b, minlength=60).astype(float)
        r['isi_edges'] = edges
    print('wrote', out)


if __name__ == '__main__':
    sys.exit(main())
