#!/usr/bin/python3
"""numpy reference implementation of spikebridge's ANN->SNN conversion and clocked simulation
(docs/convert.md), written independently of the C code, for tests/test_convert.c.

Input: tests/ref/convert_tiny_cnn.h5 (conv 8x5x5 stride 2 pad 2 -> relu -> avgpool 2 -> flatten ->
dense 10, trained with bench/train_torch.py tiny, 2 epochs) and Fashion-MNIST
(/usr/share/datasets/fashion-mnist or $SB_DATA_DIR).
Conversion: lambda_l = 99.9th percentile (numpy default linear interpolation) of the positive
activations of each ReLU / avgpool output over training images k*60000//200, k = 0..199;
W_l' = W_l lambda_{l-1} / lambda_l, b_l' = b_l / lambda_l, threshold 1; avgpool weight
lambda_{l-1} / (lambda_l K^2); output layer W' = W lambda_{L-1}, b' = b (membrane readout).
Simulation (float32): constant input current W_0' x + b_0' each 1 ms step, layer by layer in the
same step, V >= 1 -> spike, V -= 1; output class = argmax of the accumulated output membrane.
Output: tests/ref/convert_tiny_ref.h5 with lambda (3), counts (N_IMG, 2) spikes per layer and
image after T steps, counts0 (N_IMG, 8, 14, 14) int8 per-neuron counts of layer 0, pred (N_IMG),
correct (T) images right after each step, vout (N_IMG, 10) output membrane after T.
"""
import gzip
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("SB_DATA_DIR", "/usr/share/datasets/fashion-mnist")
N_SAMPLES, N_IMG, T = 200, 40, 60


def idx(path):
    with gzip.open(path) as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def conv2d(x, w, b, stride, pad):
    """x (N, C, H, W), w (OC, C, K, K): cross-correlation as torch.nn.Conv2d, float32."""
    n, c, h, wd = x.shape
    oc, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    cols = np.empty((n, c, k, k, oh, ow), np.float32)
    for a in range(k):
        for bb in range(k):
            cols[:, :, a, bb] = xp[:, :, a:a + stride * oh:stride, bb:bb + stride * ow:stride]
    out = np.einsum("nckluv,ockl->nouv", cols, w, optimize=True).astype(np.float32)
    return out + b[None, :, None, None]


def avgpool(x, k):
    n, c, h, w = x.shape
    return x[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k).mean(axis=(3, 5))


def main():
    f = h5py.File(os.path.join(HERE, "convert_tiny_cnn.h5"), "r")
    w0, b0 = f["layers/000/weight"][:], f["layers/000/bias"][:]
    s0, p0 = int(f["layers/000"].attrs["stride"]), int(f["layers/000"].attrs["padding"])
    k1 = int(f["layers/002"].attrs["kernel"])
    w2, b2 = f["layers/004/weight"][:], f["layers/004/bias"][:]
    xtr = idx(os.path.join(DATA, "train-images-idx3-ubyte.gz"))
    xte = idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"))
    yte = idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"))
    sel = [k * len(xtr) // N_SAMPLES for k in range(N_SAMPLES)]
    xs = (xtr[sel].astype(np.float32) / np.float32(255))[:, None]
    a0 = np.maximum(conv2d(xs, w0, b0, s0, p0), 0)
    a1 = avgpool(a0, k1)
    lam = [float(np.percentile(a[a > 0], 99.9)) for a in (a0, a1)] + [1.0]
    w0n, b0n = (w0 / lam[0]).astype(np.float32), (b0 / lam[0]).astype(np.float32)
    pw = np.float32(lam[0] / (lam[1] * k1 * k1))
    w2n, b2n = (w2 * lam[1]).astype(np.float32), b2.astype(np.float32)

    x = (xte[:N_IMG].astype(np.float32) / np.float32(255))[:, None]
    z0 = conv2d(x, w0n, b0n, s0, p0)
    v0 = np.zeros_like(z0)
    v1 = np.zeros((N_IMG, 8, z0.shape[2] // k1, z0.shape[3] // k1), np.float32)
    vo = np.zeros((N_IMG, 10), np.float32)
    c0 = np.zeros(z0.shape, np.int64)
    c1 = np.zeros(v1.shape, np.int64)
    correct = np.zeros(T, np.int64)
    for t in range(T):
        v0 += z0
        s = v0 >= 1
        v0[s] -= 1
        c0 += s
        v1 += pw * avgpool(s.astype(np.float32), k1) * np.float32(k1 * k1)
        s1 = v1 >= 1
        v1[s1] -= 1
        c1 += s1
        vo += s1.reshape(N_IMG, -1).astype(np.float32) @ w2n.T + b2n
        correct[t] = int((vo.argmax(1) == yte[:N_IMG]).sum())
    with h5py.File(os.path.join(HERE, "convert_tiny_ref.h5"), "w") as g:
        g.attrs["source"] = "numpy %s reference conversion of convert_tiny_cnn.h5" % np.__version__
        g.attrs["version"] = np.int64(1)
        g.attrs["script"] = "tests/ref/make_convert_ref.py"
        g.attrs["n_samples"] = np.int64(N_SAMPLES)
        g.attrs["steps"] = np.int64(T)
        g["lambda"] = np.array(lam)
        g["counts"] = np.stack([c0.reshape(N_IMG, -1).sum(1), c1.reshape(N_IMG, -1).sum(1)], 1)
        g.create_dataset("counts0", data=c0.astype(np.int8), compression="gzip", compression_opts=9)
        g["pred"] = vo.argmax(1).astype(np.int64)
        g["correct"] = correct
        g["vout"] = vo
    print("lambda", lam, "accuracy after T", correct[-1] / N_IMG, "spikes/img", c0.sum() / N_IMG, c1.sum() / N_IMG)


if __name__ == "__main__":
    main()
