"""The BNTT VGG9 in the libraries our users would pick instead: snnTorch and SpikingJelly.

Installed only for the benchmark, without their declared dependencies (SpikingJelly's would
pull a CUDA build of torch, torchvision and torchaudio):

    pip install --no-deps snntorch==1.0.0 spikingjelly==2.0.0 && pip install loguru

Both networks are built from a bntt-jax :class:`~bntt_jax.NetworkParams` (the same weights and
γᵗ as ours and the PyTorch reference), with each library's own layers, and run as their
tutorials do. How each library's parts map onto the BNTT paper's network:

* **snnTorch 1.0** (time-major loop, one step at a time, like the authors' code): ``nn.Conv2d``,
  ``snntorch.BatchNormTT2d`` (a ``BatchNorm2d`` per step without β, as the paper's;
  ε = 1e-4, momentum 0.1), ``snntorch.Leaky(beta=leak, threshold=1,
  reset_mechanism="subtract")``. snnTorch's subtract reset is **not decayed**:
  ``u_t = λ·u_{t−1} + I_t − θ·o_{t−1}`` where the paper's is ``λ·(u_{t−1} − θ·o_{t−1}) + I_t``,
  so its spikes differ from ours (the work per step is the same). Its
  ``surrogate.triangular`` is a step (±θ), not Eq. 8's triangle, so ``spike_grad`` is given
  Eq. 8 (``0.3·max(0, 1 − |u − θ|)``, the same autograd function as the reference's).
* **SpikingJelly 2.0** (multi-step mode: each layer over all T at once, convolutions with T
  folded into the batch): ``layer.Conv2d``, ``layer.BatchNormThroughTime2d`` (without β
  either), ``neuron.LIFNode(tau=1/(1−leak), decay_input=False, v_reset=None,
  detach_reset=True)``, which is exactly Eq. 4 with a soft reset that is decayed, as the paper's
  (``H = (1 − 1/τ)·V + X``); none of its built-in surrogates is Eq. 8's triangle, so it is given
  as a Python callable (on CPU SpikingJelly runs its PyTorch reference path with any surrogate).

Both: Poisson inputs drawn as the authors' ``PoissonGen``, 2×2 average pooling on spikes, the
readout ``(1/T)·Σ_t W·o_t``; 2 intra-op threads.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import bntt_jax as bj
from benchmarks.torch_ref import _Spike, _tensor

INSTALL = "pip install --no-deps snntorch==1.0.0 spikingjelly==2.0.0 && pip install loguru"


def triangle(x: torch.Tensor) -> torch.Tensor:
    """Eq. 8's surrogate on the shifted membrane ``u − θ`` (θ = 1): ``1[x > 0]`` forward,
    ``0.3·max(0, 1 − |x|)`` backward."""
    return _Spike.apply(x + 1.0, 1.0, 0.3)


def _weights(net: bj.NetworkParams) -> tuple[list, list, np.ndarray]:
    """The synapses' kernels (torch layout), each layer's (γᵗ, μᵗ, σᵗ²), the readout."""
    cfg = net.config
    if cfg.arch != "vgg9" or cfg.norm != "bntt":
        raise ValueError("the peers' networks are the BNTT VGG9 (arch='vgg9', norm='bntt')")
    sd = bj.to_torch(net)
    kernels = [sd[f"{s.name}.weight"] for s in cfg.layers]
    norms = [
        tuple(
            np.asarray(tree[f"norm_{s.name}"][k])
            for tree, k in (
                (net.params, "gamma_t"),
                (net.batch_stats, "mean"),
                (net.batch_stats, "var"),
            )
        )
        for s in cfg.layers
    ]
    return kernels, norms, sd[f"{cfg.readout_name}.weight"]


def _bntt_norm(bns, norm: tuple) -> None:
    """Each step's BatchNorm2d/1d takes γ, the running mean and variance of step t (both
    libraries drop β already)."""
    gamma, mean, var = norm
    with torch.no_grad():
        for t, bn in enumerate(bns):
            assert bn.bias is None, "a BNTT layer has no β"
            bn.weight.copy_(_tensor(gamma[t], torch.float32))
            bn.running_mean.copy_(_tensor(mean[t], torch.float32))
            bn.running_var.copy_(_tensor(var[t], torch.float32))


def _poisson(inputs: torch.Tensor) -> torch.Tensor:
    rand = torch.rand_like(inputs)
    return torch.le(rand * 2.0, torch.abs(inputs)).to(inputs.dtype) * torch.sign(inputs)


class SnnTorchVGG9(torch.nn.Module):
    """The BNTT VGG9 in snnTorch, time-major."""

    def __init__(self, net: bj.NetworkParams):
        import snntorch  # optional peer library

        super().__init__()
        cfg = net.config
        kernels, norms, readout = _weights(net)
        self.cfg = cfg
        self.synapses = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        self.neurons = torch.nn.ModuleList()
        for spec, kernel, stats in zip(cfg.layers, kernels, norms, strict=True):
            w = _tensor(kernel, torch.float32)
            if spec.kind == "conv":
                synapse = torch.nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1, bias=False)
                norm = snntorch.BatchNormTT2d(
                    w.shape[0], cfg.num_steps, eps=cfg.eps, momentum=cfg.momentum
                )
            else:
                synapse = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
                norm = snntorch.BatchNormTT1d(
                    w.shape[0], cfg.num_steps, eps=cfg.eps, momentum=cfg.momentum
                )
            with torch.no_grad():
                synapse.weight.copy_(w)
            _bntt_norm(norm, stats)
            self.synapses.append(synapse)
            self.norms.append(norm)
            self.neurons.append(
                snntorch.Leaky(
                    beta=cfg.leak,
                    threshold=cfg.threshold,
                    spike_grad=triangle,
                    reset_mechanism="subtract",
                )
            )
        self.readout = torch.nn.Linear(readout.shape[1], readout.shape[0], bias=False)
        with torch.no_grad():
            self.readout.weight.copy_(_tensor(readout, torch.float32))

    def forward(self, inputs: torch.Tensor, spikes: torch.Tensor | None = None) -> torch.Tensor:
        """``inputs`` NCHW images, or fixed input ``spikes`` ``[T, B, C, H, W]``."""
        cfg = self.cfg
        mems = [neuron.reset_mem() for neuron in self.neurons]
        acc = 0.0
        for t in range(cfg.num_steps):
            x = _poisson(inputs) if spikes is None else spikes[t]
            for i, spec in enumerate(cfg.layers):
                z = self.synapses[i](x if spec.kind == "conv" else x.flatten(1))
                o, mems[i] = self.neurons[i](self.norms[i][t](z), mems[i])
                x = F.avg_pool2d(o, 2) if spec.pool == "avg2" else o
            acc = acc + self.readout(x.flatten(1))
        return acc / cfg.num_steps


class SpikingJellyVGG9(torch.nn.Module):
    """The BNTT VGG9 in SpikingJelly, multi-step."""

    def __init__(self, net: bj.NetworkParams):
        from spikingjelly.activation_based import layer, neuron  # optional peer library

        super().__init__()
        cfg = net.config
        kernels, norms, readout = _weights(net)
        self.cfg = cfg
        blocks = []
        for spec, kernel, stats in zip(cfg.layers, kernels, norms, strict=True):
            w = _tensor(kernel, torch.float32)
            if spec.kind == "conv":
                synapse = layer.Conv2d(
                    w.shape[1], w.shape[0], 3, padding=1, bias=False, step_mode="m"
                )
                norm = layer.BatchNormThroughTime2d(
                    cfg.num_steps, w.shape[0], eps=cfg.eps, momentum=cfg.momentum, step_mode="m"
                )
            else:
                blocks.append(layer.Flatten(step_mode="m"))
                synapse = layer.Linear(w.shape[1], w.shape[0], bias=False, step_mode="m")
                norm = layer.BatchNormThroughTime1d(
                    cfg.num_steps, w.shape[0], eps=cfg.eps, momentum=cfg.momentum, step_mode="m"
                )
            with torch.no_grad():
                synapse.weight.copy_(w)
            _bntt_norm(norm.bn_list, stats)
            lif = neuron.LIFNode(
                tau=1.0 / (1.0 - cfg.leak),
                decay_input=False,
                v_threshold=cfg.threshold,
                v_reset=None,
                surrogate_function=triangle,
                detach_reset=True,
                step_mode="m",
            )
            blocks += [synapse, norm, lif]
            if spec.pool == "avg2":
                blocks.append(layer.AvgPool2d(2, step_mode="m"))
        self.body = torch.nn.Sequential(*blocks)
        self.readout = layer.Linear(readout.shape[1], readout.shape[0], bias=False, step_mode="m")
        with torch.no_grad():
            self.readout.weight.copy_(_tensor(readout, torch.float32))

    def forward(self, inputs: torch.Tensor, spikes: torch.Tensor | None = None) -> torch.Tensor:
        """``inputs`` NCHW images, or fixed input ``spikes`` ``[T, B, C, H, W]``."""
        from spikingjelly.activation_based import functional  # optional peer library

        functional.reset_net(self)
        if spikes is None:
            spikes = torch.stack([_poisson(inputs) for _ in range(self.cfg.num_steps)])
        return self.readout(self.body(spikes)).mean(0)


PEERS = {"snntorch": SnnTorchVGG9, "spikingjelly": SpikingJellyVGG9}


def build(name: str, net: bj.NetworkParams) -> torch.nn.Module:
    """The peer ``name``'s VGG9, or ``RuntimeError`` saying how to install it."""
    try:
        return PEERS[name](net)
    except ImportError as err:
        raise RuntimeError(
            f"{name} is not installed ({err}); install the peers with: {INSTALL}"
        ) from err
