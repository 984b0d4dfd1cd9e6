#!/usr/bin/python3
"""PyTorch peer of `spikebridge train mlp|cnn|gan` for bench/bench-ann: the same shapes,
initialisation family (PyTorch default), Adam, batch size and input scaling (pixel/255),
on the same Fashion-MNIST IDX files. Prints one line per epoch and a final JSON line.

Usage: bench_ann_torch.py {mlp|cnn|gan} EPOCHS [--limit N] [--threads T] [--batch B]
Thread settings: torch.set_num_threads(T) (default 2); run with OPENBLAS_NUM_THREADS=1 so
OpenBLAS (Debian's libblas.so.3 alternative) does not start threads on top of torch's.
"""
import argparse
import math
import gzip
import json
import os
import resource
import time

import numpy as np
import torch
import torch.nn as nn

DATA = os.environ.get("SB_DATA_DIR", "/usr/share/datasets/fashion-mnist")


def idx(name):
    for p in (os.path.join(DATA, name + ".gz"), os.path.join(DATA, name)):
        if os.path.exists(p):
            raw = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
            nd = raw[3]
            dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)
    raise SystemExit("missing %s in %s" % (name, DATA))


def model(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                             nn.Linear(256, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["mlp", "cnn", "gan"])
    ap.add_argument("epochs", type=int)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--cosine", action="store_true", help="per-epoch cosine lr schedule to 0, as spikebridge's")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr = torch.from_numpy(idx("train-images-idx3-ubyte").astype(np.float32) / 255.0).unsqueeze(1)
    ytr = torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
    xte = torch.from_numpy(idx("t10k-images-idx3-ubyte").astype(np.float32) / 255.0).unsqueeze(1)
    yte = torch.from_numpy(idx("t10k-labels-idx1-ubyte").astype(np.int64))
    if a.limit:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]
    n = len(xtr)
    times, acc = [], 0.0
    if a.kind == "gan":
        B = a.batch or 64
        G = nn.Sequential(nn.Linear(100, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
                          nn.Linear(512, 784), nn.Tanh())
        D = nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256), nn.LeakyReLU(0.2),
                          nn.Linear(256, 1))
        og = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        od = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        bce = nn.BCEWithLogitsLoss()
        xr_all = xtr.view(n, 784) * 2 - 1
        for ep in range(a.epochs):
            perm = torch.randperm(n)
            t0, c0 = time.perf_counter(), time.process_time()
            for b in range(n // B):
                xr = xr_all[perm[b * B:(b + 1) * B]]
                z = torch.randn(B, 100)
                fake = G(z)
                ld = bce(D(xr), torch.ones(B, 1)) + bce(D(fake.detach()), torch.zeros(B, 1))
                od.zero_grad()
                ld.backward()
                od.step()
                lg = bce(D(fake), torch.ones(B, 1))
                og.zero_grad()
                lg.backward()
                og.step()
            times.append(time.perf_counter() - t0)
            print("torch gan epoch %d: %.2f s (cpu %.2f s)  D loss %.4f  G loss %.4f"
                  % (ep + 1, times[-1], time.process_time() - c0, ld.item(), lg.item()), flush=True)
        torch.save(G.state_dict(), os.environ.get("SB_BENCH_GAN_OUT", "/tmp/sb_bench_torch_gan.pt"))
    else:
        B = a.batch or 128
        m = model(a.kind)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        lossf = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
        for ep in range(a.epochs):
            if a.cosine:  # lr of epoch ep (0-based), as learning/ann_optim.c
                for g in opt.param_groups:
                    g["lr"] = 1e-3 * 0.5 * (1.0 + math.cos(math.pi * ep / a.epochs))
            perm = torch.randperm(n)
            m.train()
            t0, c0 = time.perf_counter(), time.process_time()
            for b in range(0, n, B):
                i = perm[b:b + B]
                loss = lossf(m(xtr[i]), ytr[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t0)
            cpu = time.process_time() - c0
            m.eval()
            with torch.no_grad():
                acc = float((m(xte).argmax(1) == yte).float().mean())
            print("torch %s epoch %d: %.2f s (cpu %.2f s)  test acc %.2f%%" % (a.kind, ep + 1, times[-1], cpu, 100 * acc),
                  flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"kind": a.kind, "epoch_seconds": times, "test_acc": acc, "peak_rss_mb": rss,
                      "torch_threads": torch.get_num_threads(), "torch": str(torch.__version__)}))


if __name__ == "__main__":
    main()
