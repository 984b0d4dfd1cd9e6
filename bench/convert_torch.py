#!/usr/bin/python3
"""PyTorch implementation of spikebridge's clocked SNN evaluation (docs/convert.md), run on the
same converted-network file (HDF5, format spikebridge-snn): the peer of `spikebridge eval`.

Same semantics: dt = 1 ms steps; constant input current W_1' x + b_1' (computed once per batch);
layer by layer in the same step V += W s + b, V >= threshold -> spike, V -= threshold (or V = 0);
V0 = v_init * threshold; membrane (or spike-count) readout; accuracy after every step.
Dense products (F.linear / F.conv2d / F.avg_pool2d on the spike tensors), the natural PyTorch way.
Max-pool gates are not implemented here.

Usage: /usr/bin/python3 bench/convert_torch.py SNN.h5 [--steps T] [--limit N] [--threads K] [--batch B]
Prints accuracy at T, spikes per image per layer, and the wall time of the evaluation loop.
"""
import argparse
import gzip
import os
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

DATA = os.environ.get("SB_DATA_DIR", "/usr/share/datasets/fashion-mnist")


def idx(path):
    with gzip.open(path) as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("snn")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=500)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    f = h5py.File(a.snn, "r")
    reset_zero = text(f.attrs["reset"]) == "zero"
    v_init = float(f.attrs["v_init"])
    spike_readout = text(f.attrs["readout"]) == "spikes"
    layers = []
    for i in range(int(f.attrs["n_layers"])):
        g = f["layers/%03d" % i]
        L = {k: g.attrs[k] for k in g.attrs}
        L["kind"] = text(L["kind"])
        if L["kind"] == "maxpool":
            raise SystemExit("convert_torch.py: maxpool gates are not implemented in this peer")
        if "weight" in g:
            L["w"] = torch.from_numpy(g["weight"][:])
            L["b"] = torch.from_numpy(g["bias"][:])
        layers.append(L)
    x_all = idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"))[:a.limit]
    y_all = torch.from_numpy(idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"))[:a.limit].astype(np.int64))
    T, n = a.steps, len(x_all)
    correct = np.zeros(T, np.int64)
    spikes = np.zeros(len(layers))
    t0 = time.time()
    with torch.no_grad():
        for b0 in range(0, n, a.batch):
            x = torch.from_numpy(x_all[b0:b0 + a.batch].astype(np.float32) / np.float32(255))[:, None]
            y = y_all[b0:b0 + a.batch]
            nb = len(x)

            def op(L, s):
                if L["kind"] == "dense":
                    return F.linear(s.reshape(nb, -1), L["w"], L["b"])
                if L["kind"] == "conv":
                    return F.conv2d(s, L["w"], L["b"], stride=int(L["stride"]), padding=int(L["padding"]))
                return F.avg_pool2d(s, int(L["kernel"]), int(L["stride"])) * float(L["pool_weight"]) * int(L["kernel"]) ** 2

            z1 = op(layers[0], x)
            vs, cnt = [], []
            for L in layers:
                shape = (nb,) + tuple(int(v) for v in np.atleast_1d(L["out_shape"]))
                th = float(L["threshold"])
                vs.append(torch.full(shape, v_init * th if L["spiking"] else 0.0))
                cnt.append(torch.zeros(shape))
            for t in range(T):
                s = None
                for l, L in enumerate(layers):
                    v = vs[l]
                    v += z1 if l == 0 else op(L, s).reshape(v.shape)
                    if L["spiking"]:
                        th = float(L["threshold"])
                        s = (v >= th).float()
                        if reset_zero:
                            v.mul_(1 - s)
                        else:
                            v.sub_(s * th)
                        cnt[l] += s
                out = cnt[-1] if spike_readout else vs[-1]
                correct[t] += int((out.reshape(nb, -1).argmax(1) == y).sum())
            for l in range(len(layers)):
                spikes[l] += float(cnt[l].sum())
    wall = time.time() - t0
    print("torch: %d images, T = %d, accuracy %.2f%%, spikes/img %s, wall %.2f s (%d threads)" %
          (n, T, 100.0 * correct[-1] / n, " ".join("%.1f" % (s / n) for s in spikes), wall, a.threads))


if __name__ == "__main__":
    main()
