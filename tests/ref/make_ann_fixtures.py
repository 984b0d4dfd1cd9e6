#!/usr/bin/python3
"""Write tests/ref/ann_layers.h5: PyTorch forward and backward of every ANN layer kind, and
of a small whole model (exported with export_torch.py), for tests/test_ann.c.

Each group /<case> holds float32 datasets x (input), y (output), dy (upstream gradient, high
entropy), dx (input gradient) and, where the layer has them, w, b, dw, db (and batchnorm running
statistics before/after one training step), plus attributes with the layer's hyper-parameters.
Run: /usr/bin/python3 tests/ref/make_ann_fixtures.py   (Debian python3-torch, python3-h5py)
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torch import QCFS, demo_model, export  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20221)


def f32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def case(f, name, mod, x, attrs, train=True):
    g = f.create_group(name)
    for k, v in attrs.items():
        g.attrs[k] = v
    x = x.clone().requires_grad_(True)
    if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
        with torch.no_grad():
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.5, 0.5)
        g.create_dataset("running_mean0", data=f32(mod.running_mean))
        g.create_dataset("running_var0", data=f32(mod.running_var))
    mod.train(train)
    y = mod(x)
    dy = torch.randn_like(y) * 1.37 + 0.21
    (y * dy).sum().backward()
    for k, v in (("x", x), ("y", y), ("dy", dy), ("dx", x.grad)):
        g.create_dataset(k, data=f32(v))
    params = dict(mod.named_parameters())
    for k, key in (("w", "weight"), ("b", "bias"), ("w", "up")):
        if key in params:
            g.create_dataset(k, data=f32(params[key]))
            g.create_dataset("d" + k, data=f32(params[key].grad))
    if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
        g.create_dataset("running_mean", data=f32(mod.running_mean))
        g.create_dataset("running_var", data=f32(mod.running_var))


def main():
    out = os.path.join(HERE, "ann_layers.h5")
    with h5py.File(out, "w") as f:
        f.attrs["source"] = "PyTorch %s forward/backward (float32, CPU)" % str(torch.__version__)
        f.attrs["version"] = str(torch.__version__)
        f.attrs["script"] = "tests/ref/make_ann_fixtures.py"
        r = lambda *s: torch.randn(*s) * 1.3 + 0.1  # noqa: E731
        case(f, "dense", nn.Linear(7, 5), r(3, 7), {"kind": "dense", "N": 3, "IN": 7, "OUT": 5})
        for name, (N, C, H, OC, K, S, P) in {"conv_p1": (2, 3, 9, 4, 3, 1, 1), "conv_s2p2": (2, 2, 10, 3, 5, 2, 2),
                                             "conv_1x1": (2, 3, 6, 2, 1, 1, 0), "conv_k5p0": (3, 2, 11, 5, 5, 1, 0)}.items():
            case(f, name, nn.Conv2d(C, OC, K, stride=S, padding=P), r(N, C, H, H),
                 {"kind": "conv2d", "N": N, "C": C, "H": H, "W": H, "OC": OC, "K": K, "S": S, "P": P})
        for name, (N, C, H, K, S) in {"k2s2": (2, 3, 8, 2, 2), "k3s2": (2, 2, 9, 3, 2), "k2s1": (1, 2, 5, 2, 1)}.items():
            case(f, "avgpool_" + name, nn.AvgPool2d(K, S), r(N, C, H, H),
                 {"kind": "avgpool", "N": N, "C": C, "H": H, "W": H, "K": K, "S": S})
            case(f, "maxpool_" + name, nn.MaxPool2d(K, S), r(N, C, H, H),
                 {"kind": "maxpool", "N": N, "C": C, "H": H, "W": H, "K": K, "S": S})
        x = r(4, 13)
        case(f, "relu", nn.ReLU(), x, {"kind": "relu"})
        case(f, "leaky_relu", nn.LeakyReLU(0.2), x, {"kind": "leaky_relu", "alpha": 0.2})
        case(f, "sigmoid", nn.Sigmoid(), x * 3, {"kind": "sigmoid"})
        case(f, "tanh", nn.Tanh(), x, {"kind": "tanh"})
        # QCFS: inputs away from the floor's jumps by construction (float rounding at a jump
        # would make the reference ambiguous): centres of the quantisation cells plus +-0.3 cell
        lam, L = 1.7, 4
        cells = torch.randint(-3, 7, (5, 11)).float()
        xq = (cells + 0.5 + (torch.rand(5, 11) - 0.5) * 0.6) * lam / L - 0.5 * lam / L
        case(f, "qcfs", QCFS(lam, L), xq, {"kind": "qcfs", "levels": L, "lambda": lam})
        case(f, "batchnorm2d", nn.BatchNorm2d(3), r(4, 3, 5, 5), {"kind": "batchnorm", "N": 4, "C": 3, "HW": 25,
                                                                   "eps": 1e-5, "momentum": 0.1})
        case(f, "batchnorm1d", nn.BatchNorm1d(5), r(6, 5), {"kind": "batchnorm", "N": 6, "C": 5, "HW": 1,
                                                             "eps": 1e-5, "momentum": 0.1})
        case(f, "batchnorm2d_eval", nn.BatchNorm2d(3), r(2, 3, 4, 4), {"kind": "batchnorm", "N": 2, "C": 3,
                                                                        "HW": 16, "eps": 1e-5}, train=False)
        # whole model: the demo CNN of export_torch.py with trained-looking batchnorm statistics
        m = demo_model()
        with torch.no_grad():
            m[1].running_mean.uniform_(-0.2, 0.2)
            m[1].running_var.uniform_(0.5, 1.5)
            m[1].weight.uniform_(0.8, 1.2)
        x = torch.rand(5, 1, 16, 16)
        g = f.create_group("model")
        g.create_dataset("x", data=f32(x))
        m.eval()
        g.create_dataset("logits_eval", data=f32(m(x)))
        export(m, (1, 16, 16), os.path.join(HERE, "ann_torch_model.h5"), name="demo",
               meta={"source": "tests/ref/export_torch.py demo_model()", "torch_version": str(torch.__version__),
                     "script": "tests/ref/make_ann_fixtures.py"})
        # training-mode forward and backward of the whole model (batch statistics)
        m.train()
        xr = x.clone().requires_grad_(True)
        y = m(xr)
        dy = torch.randn_like(y)
        (y * dy).sum().backward()
        g.create_dataset("logits_train", data=f32(y))
        g.create_dataset("dy", data=f32(dy))
        g.create_dataset("dx", data=f32(xr.grad))
        grads = [f32(p.grad).ravel() for p in m.parameters()]
        g.create_dataset("grads", data=np.concatenate(grads))
        # losses: value and gradient of the mean
        g = f.create_group("loss")
        z = torch.randn(5, 7) * 2.1 + 0.3
        lab = torch.tensor([3, 0, 6, 2, 2])
        zz = z.clone().requires_grad_(True)
        l = nn.functional.cross_entropy(zz, lab)
        l.backward()
        g.create_dataset("xent_logits", data=f32(z))
        g.create_dataset("xent_labels", data=lab.numpy().astype(np.int32))
        g.attrs["xent_loss"] = float(l)
        g.create_dataset("xent_grad", data=f32(zz.grad))
        # the same logits with label smoothing (no new random draws, so later cases are unchanged)
        zz = z.clone().requires_grad_(True)
        l = nn.functional.cross_entropy(zz, lab, label_smoothing=0.1)
        l.backward()
        g.attrs["xent_ls_eps"] = 0.1
        g.attrs["xent_ls_loss"] = float(l)
        g.create_dataset("xent_ls_grad", data=f32(zz.grad))
        t = torch.rand(5, 7)
        for name, fn, inp in (("bce_logits", nn.functional.binary_cross_entropy_with_logits, z),
                              ("bce", nn.functional.binary_cross_entropy, torch.sigmoid(z)),
                              ("mse", nn.functional.mse_loss, z)):
            xx = inp.clone().requires_grad_(True)
            l = fn(xx, t)
            l.backward()
            g.create_dataset(name + "_x", data=f32(inp))
            g.create_dataset(name + "_t", data=f32(t))
            g.attrs[name + "_loss"] = float(l)
            g.create_dataset(name + "_grad", data=f32(xx.grad))
        # optimizers: 4 steps from p0 with a fixed gradient sequence
        p0 = torch.randn(9) * 0.7
        grads = torch.randn(4, 9) * 0.5 + 0.05
        for name, mk in (("sgd", lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)),
                         ("adam", lambda p: torch.optim.Adam([p], lr=0.01, weight_decay=0.01)),
                         ("adamw", lambda p: torch.optim.AdamW([p], lr=0.01, weight_decay=0.05))):
            p = p0.clone().requires_grad_(True)
            opt = mk(p)
            traj = []
            for k in range(4):
                opt.zero_grad()
                p.grad = grads[k].clone()
                opt.step()
                traj.append(f32(p).copy())
            g = f.create_group("optim_" + name)
            g.create_dataset("p0", data=f32(p0))
            g.create_dataset("grads", data=f32(grads))
            g.create_dataset("traj", data=np.stack(traj))
    print("wrote", out)


if __name__ == "__main__":
    main()
