"""The 3×3 "same" convolution of the VGGs (stride 1, padding 1, no bias), lowered for speed.

On XLA:CPU the library convolution is fast forward but slow backward (its filter gradient
runs at ~17 GFLOP/s against ~95 forward) and pathological for 2×2 feature maps (VGG11's
last block: 5.7 s for what a matmul does in 0.13 s). So on CPU:

* forward: ``lax.conv_general_dilated``, except for maps of at most 4 pixels, where the
  im2col form (9 shifted copies concatenated, one matmul) is used;
* backward: the vector-Jacobian product of the im2col form, whose filter gradient is one
  large matmul over all folded images and steps.

On GPU and TPU both directions use the library convolution. All forms compute the same
convolution; they differ only in floating-point summation order. ``benchmarks/README.md``
has the measurements.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

#: Feature maps with at most this many pixels use im2col forward on CPU.
SMALL_MAP = 4


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


def _cpu_forward(x, kernel):
    if x.shape[1] * x.shape[2] <= SMALL_MAP:
        return conv3x3_im2col(x, kernel)
    return conv3x3_reference(x, kernel)


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """3×3 convolution, stride 1, padding 1: ``x`` ``[N, H, W, C]``, ``kernel`` ``[3, 3, C, D]``."""
    return lax.platform_dependent(x, kernel, cpu=_cpu_forward, default=conv3x3_reference)


def _fwd(x, kernel):
    return conv3x3(x, kernel), (x, kernel)


def _bwd(residuals, g):
    x, kernel = residuals

    def cpu(x, kernel, g):
        return jax.vjp(conv3x3_im2col, x, kernel)[1](g)

    def default(x, kernel, g):
        return jax.vjp(conv3x3_reference, x, kernel)[1](g)

    return lax.platform_dependent(x, kernel, g, cpu=cpu, default=default)


conv3x3.defvjp(_fwd, _bwd)
