"""The 3×3 "same" convolution of the VGGs and the dense layers, lowered for speed on CPU.

On GPU and TPU both directions use the library convolution / matmul. On XLA:CPU:

* with the compiled code (:mod:`bntt_jax.cpu.ffi`; float32/float64): the forward and the
  filter gradient are **event-driven**: they visit only the non-zero inputs, which are
  binary spikes (or their 2×2 averages) everywhere but in the first layer, and a trained BNTT
  network fires sparsely. An input with more non-zeros than the crossover, measured on every
  call, takes a dense form instead (the compiled one or XLA's). The input gradient, which is
  dense (the batch norm's backward makes every element of the output gradient non-zero), is a
  register-blocked compiled kernel or XLA's; after LIF neurons,
  :func:`bntt_jax.cpu.masked.conv3x3_on_support` computes it only where their surrogate is
  non-zero. The compiled passes use all cores.
* without it: the library convolution forward (im2col on the tiniest maps) and the
  vector-Jacobian product of the im2col form backward (XLA:CPU's own filter gradient runs at
  ~17 GFLOP/s against ~95 forward).

Which form runs where is :mod:`bntt_jax.cpu.choice`'s answer (per target, map size and the
inputs' density); this module holds the forms by name. All forms compute the same
convolution; they differ only in floating-point summation order (the tests compare them in
float64). ``benchmarks/README.md`` has the measurements.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bntt_jax.cpu import choice, ffi


def conv3x3_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The library convolution: ``x`` NHWC, ``kernel`` HWIO ``[3, 3, C, D]``."""
    return lax.conv_general_dilated(
        x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def conv3x3_im2col(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The same convolution as 9 shifted copies of the padded input and one matmul."""
    n, h, w, c = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = jnp.concatenate(
        [padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=-1
    )
    out = patches.reshape(n * h * w, 9 * c) @ kernel.reshape(9 * c, -1)
    return out.reshape(n, h, w, -1)


def _check_sparse_inputs(name: str, x: jax.Array, kernel: jax.Array) -> None:
    k = kernel.shape[0] if kernel.ndim == 4 else None
    if x.ndim != 4 or kernel.ndim != 4 or kernel.shape[1] != k or k % 2 != 1:
        raise ValueError(
            f"{name}(): need x [N, H, W, C] and kernel [k, k, C, D] with odd k, got "
            f"{x.shape} and {kernel.shape}"
        )
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"{name}(): kernel has {kernel.shape[2]} input channels but x has {x.shape[3]}"
        )
    ffi.require(name, "x", x, "conv3x3 and spike_dense fall back by themselves")


def sparse_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Event-driven "same" convolution on CPU: the synaptic input ``W·o_t`` of Eq. 4/9 summed
    over the non-zero inputs only. ``x`` ``[N, H, W, C]``, ``kernel`` ``[k, k, C, D]`` (odd k,
    stride 1, zero padding (k−1)/2). Needs :func:`bntt_jax.cpu.ffi.available`.
    """
    _check_sparse_inputs("sparse_conv", x, kernel)
    out = jax.ShapeDtypeStruct(x.shape[:3] + kernel.shape[3:], x.dtype)
    call = jax.ffi.ffi_call("bntt_event_conv_forward", out, vmap_method="sequential")
    return call(x, kernel.astype(x.dtype))


def sparse_conv_filter_grad(
    x: jax.Array, kernel: jax.Array, g: jax.Array, by_channel: bool = True
) -> jax.Array:
    """Filter gradient ``∂L/∂kernel`` of :func:`sparse_conv` for the output gradient ``g``,
    visiting only the non-zero inputs. Returned in the kernel's dtype.

    ``by_channel`` (the default) with a 3×3 kernel: each image's non-zeros listed per channel
    and the 9 taps' gradient rows summed in registers over a strip of the output gradient
    held in L1, where the image has enough non-zeros per channel for that to pay (kernel
    ``EventConvFilterGrad3x3``); otherwise, and for other kernels, output pixel by output
    pixel, each non-zero adding into the gradient rows in memory (``EventConvFilterGrad``).
    Both sum the same products (``benchmarks/README.md``).
    """
    _check_sparse_inputs("sparse_conv_filter_grad", x, kernel)
    if g.shape != x.shape[:3] + kernel.shape[3:]:
        raise ValueError(
            f"sparse_conv_filter_grad(): g must have the output shape "
            f"{x.shape[:3] + kernel.shape[3:]}, got {g.shape}"
        )
    out = jax.ShapeDtypeStruct(kernel.shape, x.dtype)
    per_channel = by_channel and kernel.shape[:2] == (3, 3)
    target = "bntt_event_conv_filter_grad_3x3" if per_channel else "bntt_event_conv_filter_grad"
    call = jax.ffi.ffi_call(target, out, vmap_method="sequential")
    dw = call(x, kernel.astype(x.dtype), g.astype(x.dtype), chunk=np.int64(4))
    return dw.astype(kernel.dtype)


def conv_input_grad(g: jax.Array, kernel: jax.Array) -> jax.Array:
    """Input gradient ``∂L/∂x`` of the 3×3 "same" convolution for the output gradient ``g``
    ``[N, H, W, D]`` and ``kernel`` ``[3, 3, C, D]``: dense, a register-blocked kernel on all
    cores (the transposed convolution). Needs :func:`bntt_jax.cpu.ffi.available`."""
    _check_sparse_inputs("conv_input_grad", jnp.zeros((1, 1, 1, kernel.shape[2]), g.dtype), kernel)
    if kernel.shape[:2] != (3, 3) or g.ndim != 4 or g.shape[3] != kernel.shape[3]:
        raise ValueError(
            f"conv_input_grad(): need g [N, H, W, D] and kernel [3, 3, C, D], got "
            f"{g.shape} and {kernel.shape}"
        )
    c = kernel.shape[2]
    lanes = 64 // g.dtype.itemsize  # 64 bytes: a whole number of vectors on every target
    padded = -(-c // lanes) * lanes
    wt = jnp.swapaxes(kernel.astype(g.dtype), 2, 3)  # [3, 3, D, C], channels contiguous
    wt = jnp.pad(wt, ((0, 0), (0, 0), (0, 0), (0, padded - c)))
    out = jax.ShapeDtypeStruct(g.shape[:3] + (c,), g.dtype)
    return jax.ffi.ffi_call("bntt_dense_input_grad", out, vmap_method="sequential")(g, wt)


def _lowered_on_cpu(cpu_forward, cpu_backward):
    """Decorator: the decorated ``f(x, kernel)`` (the reference) runs off CPU, both ways; on
    CPU the forward is ``cpu_forward(x, kernel)`` and the VJP ``cpu_backward(x, kernel, g)
    -> (dx, dkernel)``, which must compute the same function."""

    def decorate(reference):
        op = jax.custom_vjp(
            functools.wraps(reference)(
                lambda x, kernel: lax.platform_dependent(
                    x, kernel, cpu=cpu_forward, default=reference
                )
            )
        )

        def default_backward(x, kernel, g):
            return jax.vjp(reference, x, kernel)[1](g)

        def fwd(x, kernel):
            return op(x, kernel), (x, kernel)

        def bwd(residuals, g):
            x, kernel = residuals
            return lax.platform_dependent(x, kernel, g, cpu=cpu_backward, default=default_backward)

        op.defvjp(fwd, bwd)
        return op

    return decorate


def conv3x3_dense(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The 3×3 "same" convolution computed densely by :func:`conv_input_grad`'s kernel: the
    forward is the input gradient's transposed convolution with the kernel flipped in space and
    its channel axes swapped. Needs :func:`bntt_jax.cpu.ffi.available`."""
    flipped = jnp.swapaxes(jnp.flip(kernel, (0, 1)), 2, 3)  # [3, 3, D, C]
    return conv_input_grad(x, flipped.astype(x.dtype))


def _conv_cpu_forward(x, kernel):
    forms = {
        "event": sparse_conv,
        "kernel": conv3x3_dense,
        "xla": conv3x3_reference,
        "im2col": conv3x3_im2col,
    }
    if choice.conv_compiled(x):  # the compiled forms take the kernel in x's dtype, XLA's too
        kernel = kernel.astype(x.dtype)
    return choice.conv_forward(x).run(forms, lambda: choice.nonzero_fraction(x), x, kernel)


def _im2col_filter_grad(x, kernel, g):
    return jax.vjp(lambda k: conv3x3_im2col(x, k), kernel)[1](g)[0]


def _im2col_input_grad(g, kernel):
    x = jax.ShapeDtypeStruct(g.shape[:3] + kernel.shape[2:3], g.dtype)
    return jax.linear_transpose(lambda v: conv3x3_im2col(v, kernel), x)(g)[0]


def _flipped_input_grad(g, kernel):
    return conv3x3_reference(g, jnp.swapaxes(jnp.flip(kernel, (0, 1)), 2, 3))


def xla_input_grad(g: jax.Array, kernel: jax.Array) -> jax.Array:
    """:func:`conv3x3`'s input gradient by XLA's own operations, for the output gradient ``g``
    ``[N, H, W, D]``: the forward convolution of ``g`` with the kernel flipped in space and its
    channel axes swapped, which is what the transpose is (XLA:CPU runs the transposed
    convolution ``jax.linear_transpose`` emits for its convolution 4.4× slower inside a
    ``lax.cond``: 1.48 s against 0.34 s on VGG9's 8×8 layers; im2col's would hold a patch
    matrix 9× the input, 1.9 GB for VGG9's conv2 at T = 25, batch 32); im2col's transpose on
    small maps (:func:`bntt_jax.cpu.choice.xla_input_grad`)."""
    forms = {"im2col": _im2col_input_grad, "xla": _flipped_input_grad}
    return choice.xla_input_grad(g).run(forms, None, g, kernel.astype(g.dtype))


def dense_input_grad(g: jax.Array, kernel: jax.Array) -> jax.Array:
    """:func:`conv3x3`'s dense input gradient on CPU with the compiled code, for the output
    gradient ``g`` ``[N, H, W, D]``: the compiled kernel or :func:`xla_input_grad`, as
    :func:`bntt_jax.cpu.choice.conv_input_grad` says."""
    forms = {"xla": xla_input_grad, "kernel": conv_input_grad}
    return choice.conv_input_grad(g).run(forms, None, g, kernel.astype(g.dtype))


def conv_cpu_input_grad(x: jax.Array, kernel: jax.Array, g: jax.Array) -> jax.Array:
    """:func:`conv3x3`'s input gradient on CPU with the compiled code
    (:func:`bntt_jax.cpu.choice.conv_compiled`)."""
    return dense_input_grad(g.astype(x.dtype), kernel).astype(x.dtype)


def conv_cpu_filter_grad(x: jax.Array, kernel: jax.Array, g: jax.Array) -> jax.Array:
    """:func:`conv3x3`'s filter gradient on CPU with the compiled code
    (:func:`bntt_jax.cpu.choice.conv_compiled`): event-driven or im2col's matmul
    (:func:`bntt_jax.cpu.choice.conv_filter_grad`)."""
    forms = {"event": sparse_conv_filter_grad, "im2col": _im2col_filter_grad}
    return choice.conv_filter_grad(x).run(forms, lambda: choice.nonzero_fraction(x), x, kernel, g)


def one_after_another(first, then, *operands):
    """``(first(*operands), then(*operands))``, ``then`` not started before ``first`` ends.

    XLA:CPU runs independent operations at the same time; two compiled passes that each use
    every core (a layer's filter and input gradients) then share the cores with twice the
    threads and both slow down (VGG9's conv7 0.24 + 0.21 s together against 0.16 + 0.16 s
    alone). The barrier makes ``then``'s operands wait for ``first``'s result."""
    a = first(*operands)
    a, operands = lax.optimization_barrier((a, operands))
    return a, then(*operands)


def _conv_cpu_backward(x, kernel, g):
    if choice.conv_compiled(x):
        dkernel, dx = one_after_another(conv_cpu_filter_grad, conv_cpu_input_grad, x, kernel, g)
        return dx, dkernel
    return jax.vjp(conv3x3_im2col, x, kernel)[1](g)


@_lowered_on_cpu(_conv_cpu_forward, _conv_cpu_backward)
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """3×3 convolution, stride 1, padding 1: ``x`` ``[N, H, W, C]``, ``kernel`` ``[3, 3, C, D]``."""
    return conv3x3_reference(x, kernel)


def _dense_sparse_forward(x, kernel):
    y = sparse_conv(x.reshape(-1, 1, 1, x.shape[-1]), kernel[None, None])
    return y.reshape(x.shape[:-1] + kernel.shape[-1:])


def _dense_cpu_forward(x, kernel):
    forms = {"event": _dense_sparse_forward, "xla": jnp.matmul}
    if choice.dense_compiled(x, kernel):  # as in _conv_cpu_forward
        kernel = kernel.astype(x.dtype)
    pick = choice.dense_forward(x, kernel)
    return pick.run(forms, lambda: choice.nonzero_fraction(x), x, kernel)


def _xla_weight_grad(x, kernel, g):
    flat_x, flat_g = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
    return (flat_x.T @ flat_g.astype(x.dtype)).astype(kernel.dtype)


def _event_weight_grad(x, kernel, g):
    flat_x = x.reshape(-1, 1, 1, x.shape[-1])
    flat_g = g.reshape(-1, 1, 1, g.shape[-1])
    return sparse_conv_filter_grad(flat_x, kernel[None, None], flat_g)[0, 0]


def dense_cpu_weight_grad(x: jax.Array, kernel: jax.Array, g: jax.Array) -> jax.Array:
    """:func:`spike_dense`'s weight gradient on CPU with the compiled code
    (:func:`bntt_jax.cpu.choice.dense_compiled`): event-driven or XLA's matmul
    (:func:`bntt_jax.cpu.choice.dense_weight_grad`)."""
    forms = {"event": _event_weight_grad, "xla": _xla_weight_grad}
    return choice.dense_weight_grad(x, kernel).run(forms, None, x, kernel, g)


def _dense_cpu_backward(x, kernel, g):
    if choice.dense_compiled(x, kernel):
        return g @ kernel.T.astype(g.dtype), dense_cpu_weight_grad(x, kernel, g)
    return jax.vjp(jnp.matmul, x, kernel)[1](g)


@_lowered_on_cpu(_dense_cpu_forward, _dense_cpu_backward)
def spike_dense(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Dense layer without bias, ``x @ kernel`` for ``x`` ``[..., C]`` and ``kernel`` ``[C, D]``.

    On CPU with the compiled code, the forward and (for a layer of at most
    :data:`bntt_jax.cpu.choice.SPARSE_DENSE_GRAD_BYTES` of weights) the weight gradient visit
    only the non-zero inputs (spikes); the input gradient is ``g @ kernelᵀ``.
    """
    return x @ kernel
