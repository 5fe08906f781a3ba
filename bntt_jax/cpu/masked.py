"""The input gradient of a convolution computed only where the spiking layer before it uses it.

A convolution's input ``x`` is the spikes ``o_t`` of a LIF layer, and that layer's backward
multiplies their gradient by the surrogate of Eq. 8, ``α·max(0, 1 − |u_t/θ − 1|/w)``: zero
wherever ``|u_t/θ − 1|/w ≥ 1``. The batch norm's backward leaves no zeros in the gradient
reaching the convolution's output, but the input gradient is needed only on the surrogate's
support, ~30 % of a freshly initialised BNTT VGG9's neurons (``python -m benchmarks.sparsity``).
:func:`conv3x3_on_support` is :func:`~bntt_jax.cpu.convolution.conv3x3` whose input gradient
is zero off that support, given the layer's membrane ``u``; on CPU with the compiled code it
computes only the supported elements (one dot product each, at 51–68 % of the dense kernel's
rate per element), while the support covers at most :data:`MASKED_INPUT_GRAD_RATE` of the
input, and the dense kernel above that. Off the support the result differs from the true
input gradient, but only where the layer before multiplies it by zero: the gradients of every
parameter are the same (the tests compare whole networks in float64).

This module imports nothing of the model: it is given arrays.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bntt_jax.cpu import ffi
from bntt_jax.cpu.convolution import (
    conv3x3,
    conv3x3_reference,
    conv_cpu_filter_grad,
    conv_input_grad,
    small,
    use_ffi,
)

#: Above this fraction of supported inputs the input gradient is the dense kernel's. On VGG9's
#: unpooled layers (N = 800) the two take the same time at 60–73 % support; at 36 % the
#: masked kernel takes 0.57–0.70 of the dense time, at 51 % 0.75–0.88.
MASKED_INPUT_GRAD_RATE = 0.6


def in_support(membrane: jax.Array, threshold: float, width: float) -> jax.Array:
    """Where the surrogate of Eq. 8 is non-zero: ``|u/θ − 1|/w < 1`` (boolean, ``u``'s shape),
    with the floating-point operations of the compiled LIF backward."""
    dtype = membrane.dtype
    distance = jnp.abs(membrane / jnp.asarray(threshold, dtype) - 1) / jnp.asarray(width, dtype)
    return distance < 1


def _support_fraction(membrane: jax.Array, threshold: float, width: float) -> jax.Array:
    """The fraction of :func:`in_support` on every k-th of ``membrane``'s N images (about 64)."""
    sample = membrane[:: max(1, membrane.shape[0] // 64)]
    return jnp.mean(in_support(sample, threshold, width), dtype=jnp.float32)


def conv_input_grad_masked(
    g: jax.Array, kernel: jax.Array, membrane: jax.Array, *, threshold: float, width: float
) -> jax.Array:
    """The input gradient of the 3×3 "same" convolution (:func:`conv_input_grad`) for the output
    gradient ``g`` ``[N, H, W, D]`` and ``kernel`` ``[3, 3, C, D]``, computed only where
    ``membrane`` ``[N, H, W, C]`` is in the surrogate's support (:func:`in_support`) and zero
    elsewhere. Needs :func:`bntt_jax.cpu.ffi.available`."""
    if (
        kernel.ndim != 4
        or kernel.shape[:2] != (3, 3)
        or g.ndim != 4
        or g.shape[3] != kernel.shape[3]
    ):
        raise ValueError(
            f"conv_input_grad_masked(): need g [N, H, W, D] and kernel [3, 3, C, D], got "
            f"{g.shape} and {kernel.shape}"
        )
    if membrane.shape != g.shape[:3] + kernel.shape[2:3]:
        raise ValueError(
            f"conv_input_grad_masked(): membrane must have the input's shape "
            f"{g.shape[:3] + kernel.shape[2:3]}, got {membrane.shape}"
        )
    if g.dtype not in (jnp.float32, jnp.float64):
        raise TypeError(f"conv_input_grad_masked(): g must be float32 or float64, got {g.dtype}")
    if not ffi.available():
        raise RuntimeError(
            "conv_input_grad_masked() needs the compiled CPU code, which is unavailable here "
            "(see the warning from bntt_jax.cpu.ffi); conv3x3_on_support falls back by itself."
        )
    lanes = 64 // g.dtype.itemsize
    d = g.shape[3]
    padded = -(-d // lanes) * lanes  # the dot products run over whole vectors of features
    g = jnp.pad(g, ((0, 0),) * 3 + ((0, padded - d),)) if padded != d else g
    wm = jnp.transpose(jnp.flip(kernel.astype(g.dtype), 1), (2, 0, 1, 3))  # [C, 3, 3', D]
    wm = jnp.pad(wm, ((0, 0),) * 3 + ((0, padded - d),)) if padded != d else wm
    out = jax.ShapeDtypeStruct(membrane.shape, g.dtype)
    call = jax.ffi.ffi_call("bntt_conv_input_grad_masked", out, vmap_method="sequential")
    return call(g, wm, membrane.astype(g.dtype), threshold=np.float64(threshold),
                width=np.float64(width))  # fmt: skip


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def conv3x3_on_support(
    x: jax.Array, kernel: jax.Array, membrane: jax.Array, threshold: float, width: float
) -> jax.Array:
    """:func:`~bntt_jax.cpu.convolution.conv3x3` of spikes ``x`` ``[N, H, W, C]`` from LIF
    neurons with pre-reset membrane ``membrane`` (``x``'s shape), threshold θ and surrogate
    half-width ``width``: the same values, and an input gradient that is zero off the
    surrogate's support (:func:`in_support`), which the neurons' backward multiplies by zero
    anyway. ``membrane`` gets no gradient."""
    return conv3x3(x, kernel)


def _forward(x, kernel, membrane, threshold, width):
    return conv3x3(x, kernel), (x, kernel, membrane)


def _backward(threshold, width, residuals, g):
    x, kernel, membrane = residuals
    if not use_ffi(x) or small(x):  # the convolution's own gradient
        dx, dkernel = jax.vjp(conv3x3, x, kernel)[1](g)
        return dx, dkernel, jnp.zeros_like(membrane)

    def cpu(x, kernel, membrane, g):
        g, kernel = g.astype(x.dtype), kernel.astype(x.dtype)
        dx = lax.cond(
            _support_fraction(membrane, threshold, width) <= MASKED_INPUT_GRAD_RATE,
            functools.partial(conv_input_grad_masked, threshold=threshold, width=width),
            lambda g, kernel, membrane: conv_input_grad(g, kernel),
            g, kernel, membrane.astype(x.dtype),
        )  # fmt: skip
        return dx, conv_cpu_filter_grad(x, kernel, g)

    def default(x, kernel, membrane, g):
        return jax.vjp(conv3x3_reference, x, kernel)[1](g)

    dx, dkernel = lax.platform_dependent(x, kernel, membrane, g, cpu=cpu, default=default)
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype), jnp.zeros_like(membrane)


conv3x3_on_support.defvjp(_forward, _backward)
