"""Thin Flax Linen modules over the pure functions: VGG9, VGG11 and the MLP.

Execution is **layer-major**: each layer computes its synaptic input for all T steps at once
(T folded into the batch of the conv/matmul), normalises every step vectorised over T, and
only the element-wise LIF recurrence is scanned. Because layer l at step t only reads the
spikes of layer l−1 at the same step t, this is exactly the authors' time-major loop
re-ordered (the tests check values, spike counts and gradients against a time-major loop).
On CPU, :func:`eval_apply` runs the evaluation forward through the fused layers of
:mod:`bntt_jax.cpu.fused` where the normalisation allows.

Parameter names follow the authors' ``model.py``: ``conv1`` … ``conv7`` (``conv8`` in VGG11),
``fc1`` and the readout ``fc2``; the normalisation after layer ``X`` is ``norm_X`` with
``gamma_t`` ``[T, C]`` (BNTT) and running statistics ``mean``/``var`` ``[T, C]`` in
``batch_stats``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from bntt_jax.config import NetworkConfig
from bntt_jax.cpu import ffi
from bntt_jax.cpu.convolution import conv3x3, spike_dense
from bntt_jax.cpu.fused import bntt_lif_eval
from bntt_jax.lif import lif_scan
from bntt_jax.norms import normalization
from bntt_jax.readout import readout_steps

#: The authors' ``xavier_uniform_(gain=2)``: variance scale gain² = 4, fan-average, uniform.
xavier_uniform_gain2 = nn.initializers.variance_scaling(4.0, "fan_avg", "uniform")


class TemporalNorm(nn.Module):
    """Normalisation of ``[T, B, ..., C]`` synaptic input by the :mod:`bntt_jax.norms` object
    named ``norm`` (BNTT: ``gamma_t`` and running ``mean``/``var``, ``[num_steps, C]``; a call
    with T ≤ num_steps uses and updates rows ``0 … T−1`` only)."""

    norm: str
    num_steps: int
    eps: float
    momentum: float

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        norm = normalization(self.norm)
        return norm(self, x, train, self.num_steps, self.eps, self.momentum)


class Conv3x3(nn.Module):
    """3×3 convolution, stride 1, padding 1, no bias (the authors' ``Conv2d``), kernel HWIO."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", xavier_uniform_gain2, (3, 3, x.shape[-1], self.features), jnp.float32
        )
        return conv3x3(x, kernel.astype(x.dtype))


class Dense(nn.Module):
    """Fully connected layer, no bias (authors' ``Linear(bias=False)``), kernel ``[in, out]``."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", xavier_uniform_gain2, (x.shape[-1], self.features), jnp.float32
        )
        return spike_dense(x, kernel.astype(x.dtype))


class Readout(nn.Module):
    """Non-spiking accumulator ``(1/T)·Σ_t W·o_t`` (Eq. 5 with λ = 1), no bias, no norm.

    Returns ``(logits, steps)`` with ``steps`` the per-step terms ``W·o_t`` ``[T, B, classes]``.
    """

    num_classes: int

    @nn.compact
    def __call__(self, spikes: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", xavier_uniform_gain2, (spikes.shape[-1], self.num_classes), jnp.float32
        )
        steps = readout_steps(spikes, kernel.astype(spikes.dtype))
        return jnp.mean(steps, axis=0), steps


def avg_pool2(x: jax.Array) -> jax.Array:
    """2×2 average pooling with stride 2 of ``[T, B, H, W, C]`` (even H and W)."""
    t, b, h, w, c = x.shape
    return x.reshape(t, b, h // 2, 2, w // 2, 2, c).mean(axis=(3, 5))


def global_avg_pool(x: jax.Array) -> jax.Array:
    """Global average pooling ``[T, B, H, W, C] -> [T, B, C]`` (VGG11's adaptive pool)."""
    return x.mean(axis=(2, 3))


def fold_time(fn, x: jax.Array, batch_major: bool | None = None) -> jax.Array:
    """Apply a per-sample ``fn`` to ``[T, B, ...]`` with T folded into the batch.

    On one device the fold is time-major (a free reshape). With several devices the batch
    axis may be sharded, and a time-major fold would interleave the devices' rows, which
    XLA's SPMD partitioner can only handle by gathering the whole batch onto every device
    (and computing every convolution N times); so there (``batch_major``, default: more than
    one device) the fold is batch-major, one transpose each way, and each device convolves
    its own samples. Both orders compute the same values.
    """
    t, b = x.shape[:2]
    if batch_major is None:
        batch_major = jax.device_count() > 1
    if batch_major:
        y = fn(jnp.swapaxes(x, 0, 1).reshape((b * t,) + x.shape[2:]))
        return jnp.swapaxes(y.reshape((b, t) + y.shape[1:]), 0, 1)
    y = fn(x.reshape((t * b,) + x.shape[2:]))
    return y.reshape((t, b) + y.shape[1:])


class SpikingNetwork(nn.Module):
    """A feed-forward BNTT spiking network described by a :class:`NetworkConfig`.

    ``__call__(spikes, train)`` takes time-major input ``[T, B, H, W, C]`` (VGG) or
    ``[T, B, features]`` (MLP) and returns ``(logits [B, classes], spike_counts,
    readout_steps)`` where ``spike_counts[layer]`` is ``[T, B]`` (int32): spikes of each
    spiking layer per step and per sample, and ``readout_steps`` ``[T, B, classes]`` the
    per-step readout terms ``W·o_t``. With ``record=True`` a fourth element
    ``{"membranes": {layer: u}, "spikes": {layer: o}}`` holds every layer's pre-reset membrane
    potential ``u_t`` (Eq. 4) and spikes ``o_t``, each ``[T, B, ...]`` (before pooling).
    """

    config: NetworkConfig

    @nn.compact
    def __call__(self, spikes: jax.Array, train: bool = False, record: bool = False) -> tuple:
        cfg = self.config
        t, b = spikes.shape[:2]
        x = spikes
        counts: dict[str, jax.Array] = {}
        recorded: dict[str, dict[str, jax.Array]] = {"membranes": {}, "spikes": {}}
        for spec in cfg.layers:
            if spec.kind == "conv":
                conv = Conv3x3(spec.features, name=spec.name)
                current = fold_time(conv, x)
            else:
                x = x.reshape(t, b, -1)
                current = Dense(spec.features, name=spec.name)(x)
            current = TemporalNorm(
                cfg.norm, cfg.num_steps, cfg.eps, cfg.momentum, name=f"norm_{spec.name}"
            )(current, train)
            out = lif_scan(current, leak=cfg.leak, threshold=cfg.threshold, alpha=cfg.alpha,
                           return_membrane=record)  # fmt: skip
            if record:
                out, recorded["membranes"][spec.name] = out
                recorded["spikes"][spec.name] = out
            counts[spec.name] = jnp.sum(out.reshape(t, b, -1), axis=-1).astype(jnp.int32)
            if spec.pool == "avg2":
                out = avg_pool2(out)
            elif spec.pool == "global":
                out = global_avg_pool(out)
            x = out
        logits, steps = Readout(cfg.num_classes, name=cfg.readout_name)(x.reshape(t, b, -1))
        return (logits, counts, steps, recorded) if record else (logits, counts, steps)


def fusable(config: NetworkConfig, spikes: jax.Array) -> bool:
    """Whether :func:`eval_apply` runs the fused CPU layers for this network and input: its
    normalisation evaluates as a per-step affine map, and the compiled code is usable."""
    return (
        config.normalization.fused_eval
        and spikes.dtype in (jnp.float32, jnp.float64)
        and ffi.usable()
    )


def _fused_forward(variables: dict[str, Any], config: NetworkConfig, spikes: jax.Array):
    """:class:`SpikingNetwork`'s evaluation forward, each layer one fused CPU pass."""
    params, stats = variables["params"], variables["batch_stats"]
    t, b = spikes.shape[:2]
    x = spikes
    counts: dict[str, jax.Array] = {}
    for spec in config.layers:
        norm = f"norm_{spec.name}"
        mean, scale = config.normalization.eval_affine(
            params[norm], stats[norm], t, config.eps, x.dtype
        )
        if spec.kind != "conv":
            x = x.reshape(t, b, -1)
        x, counts[spec.name] = bntt_lif_eval(
            x, params[spec.name]["kernel"], mean, scale,
            leak=config.leak, threshold=config.threshold,
        )  # fmt: skip
        if spec.pool == "avg2":
            x = avg_pool2(x)
        elif spec.pool == "global":
            x = global_avg_pool(x)
    kernel = params[config.readout_name]["kernel"]
    steps = readout_steps(x.reshape(t, b, -1), kernel.astype(x.dtype))
    return jnp.mean(steps, axis=0), counts, steps


def eval_apply(
    variables: dict[str, Any], config: NetworkConfig, spikes: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
    """The evaluation forward of :class:`SpikingNetwork`: ``(logits, spike_counts,
    readout_steps)``, fused on CPU where :func:`fusable`, the module's own forward otherwise.
    """

    def module(variables, spikes):
        return SpikingNetwork(config).apply(variables, spikes, train=False)

    if not fusable(config, spikes):
        return module(variables, spikes)

    def cpu(variables, spikes):
        return _fused_forward(variables, config, spikes)

    return lax.platform_dependent(variables, spikes, cpu=cpu, default=module)
