#!/usr/bin/python3
"""Train spikebridge's built-in MLP and CNN (models/ann/arch.c) and small conversion fixtures
with PyTorch, and export them in the ANN model file format (docs/ann.md) with
tests/ref/export_torch.py. Used while `spikebridge train` is not available, and to make the
committed test fixture tests/ref/convert_tiny_cnn.h5.

Usage: /usr/bin/python3 bench/train_torch.py WHAT OUT.h5 [EPOCHS]
  WHAT: mlp | cnn | cnn_qcfs | tiny | tiny_qcfs
        (tiny = conv 8x5x5 s2 -> relu -> avgpool 2 -> dense 10; tiny_qcfs = conv 16x5x5 s2 -> qcfs ->
        avgpool 2 -> dense 64 -> qcfs -> dense 10, QCFS L = 8)
Adam lr 1e-3, batch 128, torch.manual_seed(1), one thread unless OMP_NUM_THREADS says otherwise.
"""
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from export_torch import QCFS, export  # noqa: E402

DATA = os.environ.get("SB_DATA_DIR", "/usr/share/datasets/fashion-mnist")


def idx(path):
    with gzip.open(path) as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def load(split):
    p = "train" if split == "train" else "t10k"
    x = idx(os.path.join(DATA, p + "-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = idx(os.path.join(DATA, p + "-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy(x[:, None]), torch.from_numpy(y)


def build(what):
    if what == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                             nn.Linear(256, 10))
    if what in ("cnn", "cnn_qcfs"):
        act = (lambda: QCFS(8.0, 8)) if what == "cnn_qcfs" else nn.ReLU
        return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), act(), nn.AvgPool2d(2),
                             nn.Conv2d(32, 64, 5, padding=2), act(), nn.AvgPool2d(2), nn.Flatten(),
                             nn.Linear(3136, 128), act(), nn.Linear(128, 10))
    if what == "tiny":
        return nn.Sequential(nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                             nn.Linear(392, 10))
    if what == "tiny_qcfs":
        return nn.Sequential(nn.Conv2d(1, 16, 5, stride=2, padding=2), QCFS(4.0, 8), nn.AvgPool2d(2), nn.Flatten(),
                             nn.Linear(784, 64), QCFS(4.0, 8), nn.Linear(64, 10))
    raise SystemExit("unknown model " + what)


def main():
    what, out = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    torch.manual_seed(1)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    xtr, ytr = load("train")
    xte, yte = load("test")
    m = build(what)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    for ep in range(epochs):
        t0 = time.time()
        m.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            j = perm[i:i + 128]
            opt.zero_grad()
            loss = lossf(m(xtr[j]), ytr[j])
            loss.backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            acc = sum((m(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, 10000, 1000))
        print("%s epoch %d loss %.4f test acc %.2f%% (%.0f s)" % (what, ep + 1, loss.item(), acc / 100, time.time() - t0),
              flush=True)
    export(m, (1, 28, 28), out, name=what,
           meta={"test_accuracy": "%.4f" % (acc / 10000), "epochs": str(epochs), "seed": "1",
                 "source": "PyTorch %s" % torch.__version__,
                 "script": "bench/train_torch.py %s OUT.h5 %d" % (what, epochs)})


if __name__ == "__main__":
    main()
