"""Spiking layers fused into few passes of compiled CPU code.

* **Evaluation** (:func:`bntt_lif_eval`). With fixed statistics a normalisation is a
  per-step affine map (BNTT, Eq. 9 with the running μᵗ, σᵗ: ``(y − μᵗ)·γᵗ/sqrt((σᵗ)² + ε)``),
  so a whole layer is one pass over its input spikes: the convolution (or dense layer), that
  affine map, and the LIF update of Eq. 4 with soft reset. The compiled code keeps the
  membrane of each sample in a buffer and writes only the spikes and their counts.
  :func:`bntt_jax.models.eval_apply` runs a whole network this way on CPU.
* **Training** (:func:`bntt_lif_train`). The batch statistics of step t need the whole
  layer output first (Algorithm 1), so the convolution stays apart. The normalisation with
  those statistics and the LIF recurrence are one compiled pass forward (writing the spikes
  and the membrane, the backward's residual); backward, one pass runs the LIF's reverse
  recurrence with the surrogate of Eq. 8 and sums what the batch norm's gradient needs, and a
  second writes that gradient. XLA's composition of the same equations makes several more
  passes over every ``[T, B, H, W, C]`` tensor. :func:`bntt_jax.layers.bntt_lif` runs this
  on CPU and that composition elsewhere.

This module imports nothing of the model: it is given arrays.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bntt_jax.cpu import ffi


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
    ffi.require("bntt_lif_eval", "spikes", spikes, "simulate() falls back to the module by itself")
    images = spikes.reshape((t * b, 1, 1, -1) if dense else (t * b,) + spikes.shape[2:])
    kernel4 = kernel[None, None] if dense else kernel
    out = jax.ShapeDtypeStruct(images.shape[:3] + kernel4.shape[3:], spikes.dtype)
    counts = jax.ShapeDtypeStruct((t, b), jnp.int32)
    call = jax.ffi.ffi_call("bntt_event_conv_lif_eval", (out, counts), vmap_method="sequential")
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


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6))
def _lif_train_cpu(y, gamma_t, eps, leak, threshold, alpha, width):
    out, _ = _lif_train_fwd(y, gamma_t, eps, leak, threshold, alpha, width)
    return out


def _lif_train_fwd(y, gamma_t, eps, leak, threshold, alpha, width):
    dtype = y.dtype
    axes = tuple(range(1, y.ndim - 1))  # Algorithm 1, lines 1–2: per step, biased variance
    mean = jnp.mean(y, axis=axes)
    var = jnp.mean(
        jnp.square(y - mean.reshape((y.shape[0],) + (1,) * (y.ndim - 2) + (-1,))), axis=axes
    )
    inv = lax.rsqrt(var + eps)
    scale = inv * gamma_t.astype(dtype)
    flat = y.reshape(y.shape[0], -1, y.shape[-1])
    call = jax.ffi.ffi_call(
        "bntt_lif_train_fwd",
        (jax.ShapeDtypeStruct(flat.shape, dtype),) * 2,
        vmap_method="sequential",
    )
    spikes, membrane = call(
        flat, mean, scale, leak=np.float64(leak), threshold=np.float64(threshold)
    )
    outputs = (spikes.reshape(y.shape), mean, var, membrane.reshape(y.shape))
    return outputs, (flat, membrane, mean, inv, gamma_t)


def _lif_train_bwd(eps, leak, threshold, alpha, width, residuals, cotangents):
    flat, membrane, mean, inv, gamma_t = residuals
    dspikes = cotangents[0]  # μ, σ² and u are returned under stop_gradient: not differentiated
    stat = jax.ShapeDtypeStruct(mean.shape, flat.dtype)
    call = jax.ffi.ffi_call(
        "bntt_lif_train_bwd",
        (jax.ShapeDtypeStruct(flat.shape, flat.dtype), stat),
        vmap_method="sequential",
    )
    dy, dgamma = call(
        dspikes.reshape(flat.shape).astype(flat.dtype),
        membrane,
        flat,
        mean,
        inv,
        gamma_t.astype(flat.dtype),
        leak=np.float64(leak),
        threshold=np.float64(threshold),
        alpha=np.float64(alpha),
        width=np.float64(width),
    )
    return dy.reshape(dspikes.shape), dgamma.astype(gamma_t.dtype)


_lif_train_cpu.defvjp(_lif_train_fwd, _lif_train_bwd)


def bntt_lif_train(
    y: jax.Array,
    gamma_t: jax.Array,
    *,
    eps: float,
    leak: float,
    threshold: float,
    alpha: float,
    width: float = 1.0,
    return_membrane: bool = False,
) -> tuple:
    """A training-mode BNTT layer after its synapses, compiled: normalise ``y``
    ``[T, B, ..., C]`` with the batch statistics of each step and ``gamma_t`` ``[T, C]``
    (Eq. 9, Algorithm 1), then run the LIF neurons (Eq. 4, soft reset; backward, the
    surrogate of Eq. 8 with scale ``alpha`` and half-width ``width``·θ).

    Returns ``(spikes, μ, σ²)``, the statistics ``[T, C]`` for the running averages (no
    gradient flows through them); with ``return_membrane``, ``((spikes, u), μ, σ²)`` with the
    pre-reset membrane ``u`` (``y``'s shape, no gradient either). Needs the compiled code
    (float32/float64 on CPU); :func:`bntt_jax.layers.bntt_lif` chooses between it and XLA's
    composition.
    """
    t, c = y.shape[0], y.shape[-1]
    if y.ndim < 3 or gamma_t.shape != (t, c):
        raise ValueError(
            f"bntt_lif_train(): need y [T, B, ..., C] and gamma_t [T, C]; got {y.shape} and "
            f"{gamma_t.shape}"
        )
    ffi.require("bntt_lif_train", "y", y, "bntt_jax.layers.bntt_lif falls back by itself")
    spikes, mean, var, u = _lif_train_cpu(y, gamma_t, eps, leak, threshold, alpha, width)
    out = (spikes, lax.stop_gradient(u)) if return_membrane else spikes
    return out, lax.stop_gradient(mean), lax.stop_gradient(var)
