#!/usr/bin/python3
"""Spike counts per population of every file in ../shared/data/spikes, read with h5py
(independently of our readers), for tests/test_analysis_files.c.
Writes tests/ref/shared_spike_counts.txt: one line per population,
  <file> <population> <n_spikes> <n_distinct_node_ids> <n_nodes or 0> <sum of spike times in ms>
Population names follow our reader: SONATA group names, 'default' for the legacy /spikes/gids
layout, 'units' for NWB units tables, the trial group for BMTK NWB-1 files, nodes files list
their node populations with 0 spikes.
Run: /usr/bin/python3 tests/ref/make_shared_counts.py [SHARED_DIR]   (default ../shared)"""
import os
import sys

import h5py
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, '..', '..', '..', 'shared')
d = os.path.join(shared, 'data', 'spikes')
lines = ['# file population n_spikes n_neurons n_nodes sum_t_ms  (made by tests/ref/make_shared_counts.py with h5py %s)' % h5py.__version__]
for fn in sorted(os.listdir(d)):
    if fn.endswith('.md'):
        continue
    f = h5py.File(os.path.join(d, fn), 'r')
    if 'spikes' in f:
        s = f['spikes']
        if 'timestamps' in s:
            ids = s['gids'][:] if 'gids' in s else s['node_ids'][:]
            lines.append('%s default %d %d 0 %.10e' % (fn, len(s['timestamps']), len(np.unique(ids)), np.sum(s['timestamps'][:])))
        else:
            for p in s:
                lines.append('%s %s %d %d 0 %.10e' % (fn, p, len(s[p]['timestamps']), len(np.unique(s[p]['node_ids'][:])), np.sum(s[p]['timestamps'][:])))
    elif 'units' in f and 'spike_times' in f['units']:
        u = f['units']
        idx = u['spike_times_index'][:]
        ids = u['id'][:]
        per = np.diff(np.concatenate([[0], idx]))
        lines.append('%s units %d %d %d %.10e' % (fn, len(u['spike_times']), int(np.sum(per > 0)), len(ids), 1000.0 * np.sum(u['spike_times'][:])))
    elif 'processing' in f:
        for trial in f['processing']:
            st = f['processing'][trial]['spike_train']
            n = sum(len(st[k]['data']) for k in st)
            nz = sum(1 for k in st if len(st[k]['data']) > 0)
            tsum = sum(float(np.sum(st[k]['data'][:])) for k in st)
            lines.append('%s %s %d %d %d %.10e' % (fn, trial, n, nz, len(st), tsum))
    elif 'nodes' in f:
        for p in f['nodes']:
            lines.append('%s %s 0 0 %d 0' % (fn, p, len(f['nodes'][p]['node_id'])))
open(os.path.join(here, 'shared_spike_counts.txt'), 'w').write('\n'.join(lines) + '\n')
print('\n'.join(lines))
