"""Input gradients computed only where the spiking layer before them uses them.

A synaptic layer's input ``x`` is the spikes ``o_t`` of a LIF layer, and that layer's backward
multiplies their gradient by the surrogate of Eq. 8, ``α·max(0, 1 − |u_t/θ − 1|/w)``: zero
wherever ``|u_t/θ − 1|/w ≥ 1``. The batch norm's backward leaves no zeros in the gradient
reaching the layer's output, but its input gradient is needed only on the surrogate's
support, ~30 % of a freshly initialised BNTT VGG9's neurons (``python -m benchmarks.sparsity``).
:func:`conv3x3_on_support` and :func:`spike_dense_on_support` are
:func:`~bntt_jax.cpu.convolution.conv3x3` and :func:`~bntt_jax.cpu.convolution.spike_dense`
whose input gradient is zero off that support, given the layer's membrane ``u``. On CPU with
the compiled code they compute only the supported elements (one dot product each, at 51–68 %
of the dense kernel's rate per element) while the support covers at most the target's
crossover of the input, and the dense input gradient (compiled or XLA's) above that
(:func:`bntt_jax.cpu.choice.conv_input_grad_on_support`,
:func:`~bntt_jax.cpu.choice.dense_input_grad_on_support`). Off the support the result
differs from the true input gradient, but only where the layer before multiplies it by zero:
the gradients of every parameter are the same (the tests compare whole networks in float64).

This module imports nothing of the model: it is given arrays.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bntt_jax.cpu import choice, ffi
from bntt_jax.cpu.convolution import (
    conv3x3,
    conv_cpu_filter_grad,
    dense_cpu_weight_grad,
    dense_input_grad,
    one_after_another,
    spike_dense,
)


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


#: What falls back to XLA by itself where the masked kernels cannot run.
_FALLBACK = "conv3x3_on_support and spike_dense_on_support fall back by themselves"


def conv_input_grad_masked(
    g: jax.Array, kernel: jax.Array, membrane: jax.Array, *, threshold: float, width: float
) -> jax.Array:
    """The input gradient of the 3×3 "same" convolution
    (:func:`~bntt_jax.cpu.convolution.conv_input_grad`) for the output gradient ``g``
    ``[N, H, W, D]`` and ``kernel`` ``[3, 3, C, D]``, computed only where
    ``membrane`` ``[N, H, W, C]`` is in the surrogate's support (:func:`in_support`) and zero
    elsewhere. Needs :func:`bntt_jax.cpu.ffi.available`."""
    if (
        kernel.ndim != 4
        or kernel.shape[:2] != (3, 3)
        or g.ndim != 4
        or g.shape[3:] != kernel.shape[3:]
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
    ffi.require("conv_input_grad_masked", "g", g, _FALLBACK)
    wm = jnp.transpose(jnp.flip(kernel, 1), (2, 0, 1, 3))  # [C, 3, 3', D]
    return _input_grad_masked(g, wm, membrane, threshold, width)


def _input_grad_masked(g, wm, membrane, threshold, width):
    """The compiled kernel: ``g`` ``[N, H, W, D]``, ``wm`` ``[C, k, k, D]`` (``csrc/
    masked_input_grad.cc``), ``membrane`` ``[N, H, W, C]``; D padded to whole vectors."""
    lanes = 64 // g.dtype.itemsize
    d = g.shape[3]
    padded = -(-d // lanes) * lanes  # the dot products run over whole vectors of features
    g = jnp.pad(g, ((0, 0),) * 3 + ((0, padded - d),)) if padded != d else g
    wm = wm.astype(g.dtype)
    wm = jnp.pad(wm, ((0, 0),) * 3 + ((0, padded - d),)) if padded != d else wm
    out = jax.ShapeDtypeStruct(membrane.shape, g.dtype)
    call = jax.ffi.ffi_call("bntt_conv_input_grad_masked", out, vmap_method="sequential")
    return call(
        g, wm, membrane.astype(g.dtype), threshold=np.float64(threshold), width=np.float64(width)
    )


def dense_input_grad_masked(
    g: jax.Array, kernel: jax.Array, membrane: jax.Array, *, threshold: float, width: float
) -> jax.Array:
    """The input gradient ``g @ kernelᵀ`` of a dense layer for ``g`` ``[..., D]`` and ``kernel``
    ``[C, D]``, computed only where ``membrane`` ``[..., C]`` is in the surrogate's support
    (:func:`in_support`) and zero elsewhere. Needs :func:`bntt_jax.cpu.ffi.available`."""
    if (
        kernel.ndim != 2
        or g.shape[-1:] != kernel.shape[1:]
        or membrane.shape != g.shape[:-1] + kernel.shape[:1]
    ):
        raise ValueError(
            f"dense_input_grad_masked(): need g [..., D], kernel [C, D] and membrane [..., C], "
            f"got {g.shape}, {kernel.shape} and {membrane.shape}"
        )
    ffi.require("dense_input_grad_masked", "g", g, _FALLBACK)
    rows = membrane.size // kernel.shape[0]
    # rows as the pixels of images of r rows: a tile of the kernel shares each channel's
    # weight loads between its rows, and the threads split the images
    r = next(r for r in (32, 16, 8, 4, 2, 1) if rows % r == 0)
    dx = _input_grad_masked(
        g.reshape(rows // r, 1, r, -1),
        kernel[:, None, None, :],
        membrane.reshape(rows // r, 1, r, -1),
        threshold,
        width,
    )
    return dx.reshape(membrane.shape)


def _conv_dense_dx(g, kernel, membrane):
    return dense_input_grad(g, kernel)


def _conv_masked_dx(g, kernel, membrane, threshold, width):
    return conv_input_grad_masked(g, kernel, membrane, threshold=threshold, width=width)


def _dense_dense_dx(g, kernel, membrane):
    return g @ kernel.T


def _dense_masked_dx(g, kernel, membrane, threshold, width):
    return dense_input_grad_masked(g, kernel, membrane, threshold=threshold, width=width)


def _on_support(op, pick, dense_dx, masked_dx, weight_grad):
    """Decorator: ``f(x, kernel, membrane, threshold, width)`` computes ``op(x, kernel)``, and
    its VJP: off CPU or where ``pick(x, kernel)`` is None ``op``'s own; on CPU the input
    gradient the :class:`~bntt_jax.cpu.choice.Pick` names, ``masked_dx(g, kernel, membrane,
    threshold, width)`` ("support") or ``dense_dx(g, kernel, membrane)`` ("dense"), and
    ``weight_grad(x, kernel, g)``."""

    def decorate(documented):
        f = jax.custom_vjp(
            functools.wraps(documented)(
                lambda x, kernel, membrane, threshold, width: op(x, kernel)
            ),
            nondiff_argnums=(3, 4),
        )

        def forward(x, kernel, membrane, threshold, width):
            return op(x, kernel), (x, kernel, membrane)

        def backward(threshold, width, residuals, g):
            x, kernel, membrane = residuals
            chosen = pick(x, kernel)
            if chosen is None:
                dx, dkernel = jax.vjp(op, x, kernel)[1](g)
                return dx, dkernel, jnp.zeros_like(membrane)

            def cpu(x, kernel, membrane, g):
                g = g.astype(x.dtype)

                def input_grad(x, kernel, membrane, g):
                    forms = {
                        "support": functools.partial(masked_dx, threshold=threshold, width=width),
                        "dense": dense_dx,
                    }
                    return chosen.run(
                        forms,
                        lambda: _support_fraction(membrane, threshold, width),
                        g,
                        kernel.astype(x.dtype),
                        membrane.astype(x.dtype),
                    )

                def filter_grad(x, kernel, membrane, g):
                    return weight_grad(x, kernel, g)

                dkernel, dx = one_after_another(filter_grad, input_grad, x, kernel, membrane, g)
                return dx, dkernel

            def default(x, kernel, membrane, g):
                return jax.vjp(op, x, kernel)[1](g)

            dx, dkernel = lax.platform_dependent(x, kernel, membrane, g, cpu=cpu, default=default)
            return dx.astype(x.dtype), dkernel.astype(kernel.dtype), jnp.zeros_like(membrane)

        f.defvjp(forward, backward)
        return f

    return decorate


@_on_support(
    conv3x3,
    lambda x, kernel: choice.conv_input_grad_on_support(x),
    lambda *args: _conv_dense_dx(*args),
    lambda *args, **kw: _conv_masked_dx(*args, **kw),
    conv_cpu_filter_grad,
)
def conv3x3_on_support(
    x: jax.Array, kernel: jax.Array, membrane: jax.Array, threshold: float, width: float
) -> jax.Array:
    """:func:`~bntt_jax.cpu.convolution.conv3x3` of spikes ``x`` ``[N, H, W, C]`` from LIF
    neurons with pre-reset membrane ``membrane`` (``x``'s shape), threshold θ and surrogate
    half-width ``width``: the same values, and an input gradient that is zero off the
    surrogate's support (:func:`in_support`), which the neurons' backward multiplies by zero
    anyway. ``membrane`` gets no gradient."""


@_on_support(
    spike_dense,
    choice.dense_input_grad_on_support,
    lambda *args: _dense_dense_dx(*args),
    lambda *args, **kw: _dense_masked_dx(*args, **kw),
    dense_cpu_weight_grad,
)
def spike_dense_on_support(
    x: jax.Array, kernel: jax.Array, membrane: jax.Array, threshold: float, width: float
) -> jax.Array:
    """:func:`~bntt_jax.cpu.convolution.spike_dense` of spikes ``x`` ``[..., C]`` from LIF
    neurons with pre-reset membrane ``membrane`` (``x``'s shape): as
    :func:`conv3x3_on_support`, the input gradient is zero off the surrogate's support."""
