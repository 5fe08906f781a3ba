"""An evaluation-mode spiking layer fused into one pass of the event-driven convolution.

In evaluation mode a normalisation with fixed statistics is a per-step affine map (BNTT, Eq. 9
with the running μᵗ, σᵗ: ``(y − μᵗ)·γᵗ/sqrt((σᵗ)² + ε)``), so a whole layer is one pass over
its input spikes: the convolution (or dense layer), that affine map, and the LIF update of
Eq. 4 with soft reset. The compiled code keeps the membrane of each sample in a buffer and
writes only the spikes and their counts. :func:`bntt_jax.models.eval_apply` runs a whole
network this way on CPU. This module imports nothing of the model: it is given arrays.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

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
    if spikes.dtype not in (jnp.float32, jnp.float64):
        raise TypeError(f"bntt_lif_eval(): spikes must be float32 or float64, got {spikes.dtype}")
    if not ffi.available():
        raise RuntimeError(
            "bntt_lif_eval() needs the compiled CPU code, which is unavailable here (see the "
            "warning from bntt_jax.cpu.ffi); simulate() falls back to the module by itself."
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
