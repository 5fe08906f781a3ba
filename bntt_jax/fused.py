"""Evaluation-mode BNTT layers fused into the event-driven convolution (CPU kernels).

In evaluation mode, BNTT normalises step t with fixed running statistics (Eq. 9 with μᵗ, σᵗ
from training), so a whole layer is one pass over its input spikes: the event-driven
convolution (or dense layer), ``(y − μᵗ)·γᵗ/sqrt((σᵗ)² + ε)``, and the LIF update of Eq. 4
with soft reset. The kernel keeps the membrane of each sample in a buffer and writes only the
spikes and their counts. This module runs a whole network that way, as a second
implementation of :class:`bntt_jax.models.SpikingNetwork`'s evaluation forward, used on CPU
when the compiled kernels are available and the network uses BNTT (``tests/test_fused.py``
checks it against the module). Elsewhere :func:`eval_apply` is the module's own forward.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bntt_jax import kernels
from bntt_jax.config import NetworkConfig
from bntt_jax.models import SpikingNetwork, avg_pool2, global_avg_pool
from bntt_jax.readout import readout_steps


def bntt_lif_eval(
    spikes: jax.Array,
    kernel: jax.Array,
    mean_t: jax.Array,
    scale_t: jax.Array,
    *,
    leak: float,
    threshold: float,
) -> tuple[jax.Array, jax.Array]:
    """One evaluation-mode layer (Eq. 4, 8, 9): ``spikes`` ``[T, B, H, W, C]`` with a conv
    ``kernel`` ``[k, k, C, D]``, or ``[T, B, C]`` with a dense kernel ``[C, D]``; ``mean_t``
    and ``scale_t = γᵗ/sqrt((σᵗ)² + ε)`` ``[T, D]``.

    Returns the layer's spikes (``[T, B, H, W, D]`` or ``[T, B, D]``) and their count per
    step and sample ``[T, B]`` (int32).
    """
    t, b = spikes.shape[:2]
    dense = spikes.ndim == 3
    if (spikes.ndim, kernel.ndim) not in ((3, 2), (5, 4)) or kernel.shape[-2] != spikes.shape[-1]:
        raise ValueError(
            "bntt_lif_eval(): need spikes [T, B, C] with kernel [C, D], or [T, B, H, W, C] with "
            f"kernel [k, k, C, D]; got {spikes.shape} and {kernel.shape}"
        )
    for name, stat in (("mean_t", mean_t), ("scale_t", scale_t)):
        if stat.shape != (t, kernel.shape[-1]):
            raise ValueError(
                f"bntt_lif_eval(): {name} must be [T, D] = {(t, kernel.shape[-1])}, "
                f"got {stat.shape}"
            )
    if spikes.dtype not in (jnp.float32, jnp.float64):
        raise TypeError(f"bntt_lif_eval(): spikes must be float32 or float64, got {spikes.dtype}")
    if not kernels.available():
        raise RuntimeError(
            "bntt_lif_eval() needs the compiled CPU kernels, which are unavailable here (see the "
            "warning from bntt_jax.kernels); simulate() falls back to the module by itself."
        )
    images = spikes.reshape((t * b, 1, 1, -1) if dense else (t * b,) + spikes.shape[2:])
    kernel4 = kernel[None, None] if dense else kernel
    out = jax.ShapeDtypeStruct(images.shape[:3] + kernel4.shape[3:], spikes.dtype)
    counts = jax.ShapeDtypeStruct((t, b), jnp.int32)
    call = jax.ffi.ffi_call("bntt_sparse_conv_lif_eval", (out, counts), vmap_method="sequential")
    dtype = spikes.dtype
    o, n = call(
        images,
        kernel4.astype(dtype),
        mean_t.astype(dtype),
        scale_t.astype(dtype),
        steps=np.int64(t),
        leak=np.float64(leak),
        threshold=np.float64(threshold),
    )
    return o.reshape((t, b) + (o.shape[-1:] if dense else o.shape[1:])), n


def fusable(config: NetworkConfig, spikes: jax.Array) -> bool:
    """Whether :func:`eval_apply` runs the fused kernels for this network and input."""
    return config.norm == "bntt" and spikes.dtype in (jnp.float32, jnp.float64) and kernels.usable()


def _fused_forward(variables: dict[str, Any], config: NetworkConfig, spikes: jax.Array):
    params, stats = variables["params"], variables["batch_stats"]
    t, b = spikes.shape[:2]
    x = spikes
    counts: dict[str, jax.Array] = {}
    for spec in config.layers:
        norm = f"norm_{spec.name}"
        mean, var = stats[norm]["mean"][:t], stats[norm]["var"][:t]
        gamma = params[norm]["gamma_t"][:t]
        dtype = jnp.result_type(x, mean, var, gamma)  # as bntt_normalize
        scale = lax.rsqrt(var.astype(dtype) + config.eps) * gamma.astype(dtype)
        if spec.kind != "conv":
            x = x.reshape(t, b, -1)
        x, counts[spec.name] = bntt_lif_eval(
            x,
            params[spec.name]["kernel"],
            mean.astype(dtype),
            scale,
            leak=config.leak,
            threshold=config.threshold,
        )
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
