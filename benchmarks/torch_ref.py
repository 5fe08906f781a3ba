"""A PyTorch reference of the BNTT networks, written from the equations of the BNTT paper and
the semantics of the authors' released code (the table of docs/reproducing/fidelity.md).

Eager, time-major like the authors' ``model.py``: for every step, every layer runs its conv or
linear map, that step's ``BatchNorm`` (γᵗ, no β, ε = 1e-4, momentum 0.1), the LIF update
with a non-differentiated soft reset, and 2×2 average pooling; the readout accumulates and
is divided by T. It exists only to be measured against (``python -m benchmarks.step --impl
torch``) and to show that both compute the same logits. Torch is a benchmark extra, never a
dependency of the library.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import bntt_jax as bj


class _Spike(torch.autograd.Function):
    """Heaviside ``1[u > θ]`` forward, Eq. 8's triangle backward."""

    @staticmethod
    def forward(ctx, u, threshold: float, alpha: float):
        ctx.save_for_backward(u)
        ctx.threshold, ctx.alpha = threshold, alpha
        return (u > threshold).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        surrogate = ctx.alpha * torch.clamp(1.0 - torch.abs(u / ctx.threshold - 1.0), min=0.0)
        return grad * surrogate, None, None


def _tensor(array, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(np.array(array), dtype=dtype)


class TorchBNTT(torch.nn.Module):
    """VGG9, VGG11 or the MLP with BNTT, from a bntt-jax :class:`NetworkParams`."""

    def __init__(self, net: bj.NetworkParams, dtype: torch.dtype = torch.float32):
        super().__init__()
        cfg = net.config
        if cfg.norm != "bntt":
            raise ValueError("the torch reference implements norm='bntt' only")
        self.cfg = cfg
        self.specs = cfg.layers
        self.weights = torch.nn.ParameterList()
        self.gammas = torch.nn.ParameterList()
        self.running_means: list[torch.Tensor] = []
        self.running_vars: list[torch.Tensor] = []
        if cfg.arch == "mlp":
            kernels = [np.asarray(net.params[s.name]["kernel"]).T for s in self.specs]
            readout = np.asarray(net.params[cfg.readout_name]["kernel"]).T
        else:
            sd = bj.to_torch(net)
            kernels = [sd[f"{s.name}.weight"] for s in self.specs]
            readout = sd[f"{cfg.readout_name}.weight"]
        for spec, kernel in zip(self.specs, kernels, strict=True):
            norm = f"norm_{spec.name}"
            self.weights.append(torch.nn.Parameter(_tensor(kernel, dtype)))
            self.gammas.append(torch.nn.Parameter(_tensor(net.params[norm]["gamma_t"], dtype)))
            self.running_means.append(_tensor(net.batch_stats[norm]["mean"], dtype))
            self.running_vars.append(_tensor(net.batch_stats[norm]["var"], dtype))
        self.readout = torch.nn.Parameter(_tensor(readout, dtype))

    def encode(self, inputs: torch.Tensor, t: int) -> torch.Tensor:
        """The authors' ``PoissonGen`` for images; pixel t for sequential input."""
        if self.cfg.arch == "mlp" and self.cfg.in_features == 1:
            return inputs[:, t : t + 1]
        rand = torch.rand_like(inputs)
        return torch.le(rand * 2.0, torch.abs(inputs)).to(inputs.dtype) * torch.sign(inputs)

    def forward(self, inputs: torch.Tensor, spikes: torch.Tensor | None = None) -> torch.Tensor:
        """``inputs`` NCHW images or ``[B, L]`` sequences; or fixed ``spikes`` ``[T, B, ...]``."""
        cfg = self.cfg
        num_steps = cfg.num_steps if spikes is None else spikes.shape[0]
        mems: list[torch.Tensor | None] = [None] * len(self.specs)
        acc = 0.0
        for t in range(num_steps):
            x = self.encode(inputs, t) if spikes is None else spikes[t]
            for i, spec in enumerate(self.specs):
                if spec.kind == "conv":
                    z = F.conv2d(x, self.weights[i], padding=1)
                else:
                    z = F.linear(x.reshape(x.shape[0], -1), self.weights[i])
                z = F.batch_norm(
                    z,
                    self.running_means[i][t],
                    self.running_vars[i][t],
                    self.gammas[i][t],
                    None,
                    self.training,
                    cfg.momentum,
                    cfg.eps,
                )
                u = z if mems[i] is None else cfg.leak * mems[i] + z
                o = _Spike.apply(u, cfg.threshold, cfg.alpha)
                mems[i] = u - cfg.threshold * o.detach()
                if spec.pool == "avg2":
                    o = F.avg_pool2d(o, 2)
                elif spec.pool == "global":
                    o = o.mean(dim=(2, 3))
                x = o
            acc = acc + F.linear(x.reshape(x.shape[0], -1), self.readout)
        return acc / num_steps
