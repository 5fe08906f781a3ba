"""The Flax (Linen) module of the network of a :class:`NetworkConfig` (VGG9, VGG11, the MLP,
a plan) from the layers of :mod:`bntt_jax.layers`; :mod:`bntt_jax.functional` is the
functional API over it (``init``, ``simulate``).

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

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from bntt_jax.config import NetworkConfig
from bntt_jax.cpu import choice
from bntt_jax.cpu.convolution import conv3x3
from bntt_jax.cpu.fused import bntt_lif_eval
from bntt_jax.layers import (
    LIF,
    Readout,
    SpikingConv,
    SpikingDense,
    TemporalNorm,
    avg_pool2,
    fold_time,
    global_avg_pool,
)
from bntt_jax.lif import lif_scan
from bntt_jax.readout import readout_steps


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
        support = None  # the previous LIF layer's (membrane, θ, width) for SpikingConv
        for spec, following in zip(cfg.layers, (*cfg.layers[1:], None), strict=True):
            synapses = SpikingConv if spec.kind == "conv" else SpikingDense
            current = synapses(spec.features, name=spec.name)(x, support=support)
            support = None
            norm = TemporalNorm(
                cfg.norm,
                cfg.num_steps,
                cfg.eps,
                cfg.momentum,
                cfg.threshold,
                name=f"norm_{spec.name}",
            )
            if train and not record and fused_training(cfg):
                # the synapses straight after take the membrane for their input gradient
                hand_on = spec.pool is None and following is not None and choice.support_gradients()
                fire = dict(
                    leak=cfg.leak,
                    threshold=cfg.threshold,
                    alpha=cfg.alpha,
                    width=1.0,
                    return_membrane=hand_on,
                )
                out = norm(current, train, fire=fire)
                if hand_on:
                    out, membrane = out
                    support = (membrane, cfg.threshold, 1.0)
            else:
                out = LIF(cfg.leak, cfg.threshold, cfg.reset, cfg.alpha, return_membrane=record)(
                    norm(current, train)
                )
            if record:
                out, recorded["membranes"][spec.name] = out
                recorded["spikes"][spec.name] = out
            counts[spec.name] = jnp.sum(out.reshape(t, b, -1), axis=-1).astype(jnp.int32)
            if spec.pool == "avg2":
                out = avg_pool2(out)
            elif spec.pool == "global":
                out = global_avg_pool(out)
            x = out
        logits, steps = Readout(cfg.num_classes, name=cfg.readout_name)(x)
        return (logits, counts, steps, recorded) if record else (logits, counts, steps)


def fused_training(config: NetworkConfig) -> bool:
    """Whether :class:`SpikingNetwork` trains each layer's normalisation and neurons as one
    operation (:func:`bntt_jax.layers.bntt_lif`: fused on CPU with the compiled code, XLA's
    composition of the same equations elsewhere): its normalisation has that form and its
    neurons reset softly. Recording membranes keeps the separate layers."""
    return config.normalization.fused_train and config.reset == "soft"


def fusable(config: NetworkConfig, spikes: jax.Array) -> bool:
    """Whether :func:`eval_apply` runs the fused CPU layers for this network and input: its
    normalisation evaluates as a per-step affine map, its neurons reset softly (the compiled
    layer's), and the compiled code is usable."""
    return (
        config.normalization.fused_eval and config.reset == "soft" and choice.fused_layers(spikes)
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
        kernel = params[spec.name]["kernel"]
        if spec.kind != "conv":
            x, counts[spec.name] = bntt_lif_eval(
                x.reshape(t, b, -1),
                kernel,
                mean,
                scale,
                leak=config.leak,
                threshold=config.threshold,
            )
        else:
            x, counts[spec.name] = _eval_conv_layer(x, kernel, mean, scale, config)
        if spec.pool == "avg2":
            x = avg_pool2(x)
        elif spec.pool == "global":
            x = global_avg_pool(x)
    kernel = params[config.readout_name]["kernel"]
    steps = readout_steps(x.reshape(t, b, -1), kernel.astype(x.dtype))
    return jnp.mean(steps, axis=0), counts, steps


def _eval_conv_layer(x, kernel, mean, scale, config: NetworkConfig):
    """One convolutional layer in evaluation on CPU (Eq. 4, 8, 9 with the running statistics):
    fused and event-driven (:func:`bntt_lif_eval`), unless the target's choices send inputs
    this dense to XLA's convolution (:func:`bntt_jax.cpu.choice.eval_conv`), which then runs
    before the affine map and the LIF neurons. Returns the spikes and their counts ``[T, B]``."""
    fused = functools.partial(bntt_lif_eval, leak=config.leak, threshold=config.threshold)

    def separate(x, kernel, mean, scale):
        y = fold_time(lambda v: conv3x3(v, kernel.astype(v.dtype)), x)
        current = (y - mean[:, None, None, None]) * scale[:, None, None, None]
        out = lif_scan(current, leak=config.leak, threshold=config.threshold)
        return out, jnp.sum(out.reshape(out.shape[:2] + (-1,)), axis=-1).astype(jnp.int32)

    forms = {"fused": fused, "xla": separate}
    fraction = functools.partial(choice.nonzero_fraction, x)
    return choice.eval_conv(x).run(forms, fraction, x, kernel, mean, scale)


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
