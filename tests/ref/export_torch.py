#!/usr/bin/python3
"""Export a PyTorch nn.Sequential into spikebridge's ANN model file format (docs/ann.md).

Usage as a library:
    from export_torch import export, QCFS
    export(model, (1, 28, 28), "model.h5", name="mine")
Usage from the shell (a state_dict saved with torch.save of one of the layer kinds below):
    /usr/bin/python3 tests/ref/export_torch.py --demo out.h5   # writes a small random CNN
    /usr/bin/python3 tests/ref/export_torch.py --gan G.pt gan.h5  # generator state_dict -> GAN file
                                               # (the discriminator is left untrained)

Supported modules: nn.Linear, nn.Conv2d (square kernel, equal stride/padding, zero padding),
nn.AvgPool2d, nn.MaxPool2d (padding 0), nn.Flatten, nn.ReLU, nn.LeakyReLU, nn.Sigmoid,
nn.Tanh, nn.BatchNorm1d/2d, and QCFS below (clipped + quantised ReLU, Bu et al. 2022).
Needs Debian's python3-torch and python3-h5py. Weights keep PyTorch's layouts.
"""
import json
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn


class GradFloor(torch.autograd.Function):
    """floor with a straight-through gradient (Bu et al. 2022, SNN_conversion_QCFS)."""

    @staticmethod
    def forward(ctx, x):
        return x.floor()

    @staticmethod
    def backward(ctx, g):
        return g


class QCFS(nn.Module):
    """y = lambda * clamp(floor(x L / lambda + 0.5) / L, 0, 1), lambda trainable."""

    def __init__(self, threshold=8.0, levels=8):
        super().__init__()
        self.up = nn.Parameter(torch.tensor([float(threshold)]))
        self.levels = levels

    def forward(self, x):
        x = x / self.up
        x = GradFloor.apply(x * self.levels + 0.5) / self.levels
        x = torch.clamp(x, 0, 1)
        return x * self.up


def _pair(v):
    return v if isinstance(v, int) else (v[0] if v[0] == v[1] else None)


def describe(model, input_shape):
    """Layer list (architecture JSON objects) and per-layer datasets, with shapes traced."""
    x = torch.zeros((1,) + tuple(input_shape))
    layers, data = [], []
    for mod in model:
        ins = list(x.shape[1:])
        d = {}
        if isinstance(mod, nn.Linear):
            o = {"kind": "dense", "in": mod.in_features, "out": mod.out_features}
            d = {"weight": mod.weight, "bias": mod.bias}
        elif isinstance(mod, nn.Conv2d):
            k, s, p = _pair(mod.kernel_size), _pair(mod.stride), _pair(mod.padding)
            if None in (k, s, p) or mod.groups != 1 or _pair(mod.dilation) != 1 or mod.padding_mode != "zeros":
                raise ValueError("conv2d: only square kernels, equal stride/padding, zero padding, groups=1")
            o = {"kind": "conv2d", "in": mod.in_channels, "out": mod.out_channels, "kernel": k, "stride": s, "padding": p}
            d = {"weight": mod.weight, "bias": mod.bias}
        elif isinstance(mod, (nn.AvgPool2d, nn.MaxPool2d)):
            k, s = _pair(mod.kernel_size), _pair(mod.stride or mod.kernel_size)
            if _pair(mod.padding) != 0 or getattr(mod, "ceil_mode", False):
                raise ValueError("pooling: padding 0 and floor mode only")
            o = {"kind": "avgpool" if isinstance(mod, nn.AvgPool2d) else "maxpool", "kernel": k, "stride": s}
        elif isinstance(mod, nn.Flatten):
            o = {"kind": "flatten"}
        elif isinstance(mod, nn.ReLU):
            o = {"kind": "relu"}
        elif isinstance(mod, nn.LeakyReLU):
            o = {"kind": "leaky_relu", "alpha": mod.negative_slope}
        elif isinstance(mod, nn.Sigmoid):
            o = {"kind": "sigmoid"}
        elif isinstance(mod, nn.Tanh):
            o = {"kind": "tanh"}
        elif isinstance(mod, QCFS):
            o = {"kind": "qcfs", "levels": mod.levels, "threshold": float(mod.up.item())}
            d = {"threshold": mod.up}
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            o = {"kind": "batchnorm", "eps": mod.eps, "momentum": mod.momentum}
            d = {"weight": mod.weight, "bias": mod.bias, "running_mean": mod.running_mean,
                 "running_var": mod.running_var}
        else:
            raise ValueError("unsupported module %s" % type(mod).__name__)
        with torch.no_grad():
            was = mod.training
            mod.eval()
            x = mod(x)
            mod.train(was)
        layers.append(o)
        data.append((o, ins, list(x.shape[1:]), {k: v.detach().cpu().numpy().astype(np.float32) for k, v in d.items()}))
    return layers, data


def export(model, input_shape, path, name="torch", meta=None):
    """Write `model` (an nn.Sequential) for inputs of per-sample shape `input_shape` to `path`."""
    layers, data = describe(model, input_shape)
    arch = {"name": name, "input": list(input_shape), "layers": layers}
    n_params = sum(int(np.prod(v.shape)) for o, _, _, d in data for k, v in d.items()
                   if k not in ("running_mean", "running_var"))
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "spikebridge-ann"
        f.attrs["version"] = np.int64(1)
        f.attrs["name"] = name
        f.attrs["architecture"] = json.dumps(arch)
        f.attrs["input_shape"] = np.array(input_shape, dtype=np.int64)
        f.attrs["n_layers"] = np.int64(len(layers))
        f.attrs["n_params"] = np.int64(n_params)
        for key, val in (meta or {}).items():
            f.attrs[key] = val
        act = ("relu", "leaky_relu", "sigmoid", "tanh", "qcfs")
        for i, (o, ins, outs, d) in enumerate(data):
            g = f.create_group("layers/%03d" % i)
            g.attrs["kind"] = o["kind"]
            g.attrs["activation"] = o["kind"] if o["kind"] in act else "linear"
            g.attrs["index"] = np.int64(i)
            g.attrs["in_shape"] = np.array(ins, dtype=np.int64)
            g.attrs["out_shape"] = np.array(outs, dtype=np.int64)
            for k in ("kernel", "stride", "padding", "levels"):
                if k in o:
                    g.attrs[k] = np.int64(o[k])
            for k in ("alpha", "eps", "momentum"):
                if k in o:
                    g.attrs[k] = np.float64(o[k])
            for k, v in d.items():
                g.create_dataset(k, data=v)


def export_gan(G, D, path, z_dim=100, image_shape=(784,), meta=None):
    """Write a GAN file (docs/ann.md): root format "spikebridge-gan", groups /generator
    (input (z_dim,)) and /discriminator (input image_shape), each in the model file format."""
    import tempfile
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "spikebridge-gan"
        f.attrs["version"] = np.int64(1)
        for key, val in (meta or {}).items():
            f.attrs[key] = val
        for name, net, shape in (("generator", G, (z_dim,)), ("discriminator", D, tuple(image_shape))):
            with tempfile.NamedTemporaryFile(suffix=".h5") as tmp:
                export(net, shape, tmp.name, name=name)
                with h5py.File(tmp.name, "r") as src:
                    g = f.create_group(name)
                    for k, v in src.attrs.items():
                        g.attrs[k] = v
                    src.copy("layers", g)


def demo_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, stride=2, padding=1), QCFS(2.0, 4), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(24, 16), nn.LeakyReLU(0.1), nn.Linear(16, 12), nn.Tanh(),
                         nn.Linear(12, 10), nn.Sigmoid())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--demo":
        export(demo_model().eval(), (1, 16, 16), sys.argv[2], name="demo")
    elif len(sys.argv) == 4 and sys.argv[1] == "--gan":
        # a generator state_dict saved by bench/bench_ann_torch.py gan (same shapes as ours)
        G = nn.Sequential(nn.Linear(100, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
                          nn.Linear(512, 784), nn.Tanh())
        G.load_state_dict(torch.load(sys.argv[2]))
        D = nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256), nn.LeakyReLU(0.2),
                          nn.Linear(256, 1))
        export_gan(G, D, sys.argv[3], meta={"source": "PyTorch GAN (bench/bench_ann_torch.py gan)"})
    else:
        print(__doc__)
        sys.exit(2)
