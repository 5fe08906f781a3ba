"""The spike non-linearity and its triangular surrogate gradient (BNTT paper, Eq. 8).

Forward, a LIF neuron fires when its membrane potential is strictly above the threshold:
``o = 1[u > θ]``. Backward, the Heaviside step is replaced by the triangle of Eq. 8,

    ∂o/∂u = α · max(0, 1 − |u − θ| / θ) = α · max(0, 1 − |u/θ − 1|),

with the damping factor α = 0.3. The authors' code evaluates the same triangle on the
normalised variable ``u/θ − 1`` and lets autograd multiply by ``1/θ``; the two agree at the
θ = 1.0 that every one of their networks uses. We implement Eq. 8 as printed.

The triangle's half-width, 1 in units of θ in Eq. 8, is an argument (``width``): with width
w the surrogate is ``α·max(0, 1 − |u/θ − 1|/w)``, non-zero for ``|u − θ| < w·θ``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from bntt_jax.constants import SURROGATE_ALPHA


def surrogate_grad(
    u: jax.Array, threshold: float = 1.0, alpha: float = SURROGATE_ALPHA, width: float = 1.0
) -> jax.Array:
    """Triangular surrogate ``∂o/∂u = α·max(0, 1 − |u/θ − 1|/w)`` (Eq. 8, where w = 1).

    It peaks at ``α`` for ``u = θ`` and vanishes outside ``(1 − w)·θ < u < (1 + w)·θ``.
    """
    distance = jnp.abs(u / threshold - 1.0)
    if width != 1.0:
        distance = distance / width
    return alpha * jnp.maximum(0.0, 1.0 - distance).astype(u.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _spike(u: jax.Array, threshold: float, alpha: float, width: float) -> jax.Array:
    return (u > threshold).astype(u.dtype)


def _spike_fwd(u, threshold, alpha, width):
    return _spike(u, threshold, alpha, width), u


def _spike_bwd(threshold, alpha, width, u, g):
    return (g * surrogate_grad(u, threshold, alpha, width),)


_spike.defvjp(_spike_fwd, _spike_bwd)


def spike(
    u: jax.Array, threshold: float = 1.0, alpha: float = SURROGATE_ALPHA, width: float = 1.0
) -> jax.Array:
    """Spike ``o = 1[u > θ]`` with the surrogate gradient of Eq. 8.

    Args:
      u: membrane potential (any shape, floating dtype).
      threshold: firing threshold θ > 0. Fixed (not trained) as in the BNTT papers, so it
        must be a Python number, not a traced array.
      alpha: damping factor α of the surrogate (Eq. 8), 0.3 in the papers: its scale.
      width: the triangle's half-width in units of θ (1 in Eq. 8).

    Returns:
      Binary spikes with the dtype of ``u``.
    """
    u = jnp.asarray(u)
    if not jnp.issubdtype(u.dtype, jnp.floating):
        raise TypeError(
            f"spike() needs a floating membrane potential, got dtype {u.dtype}; "
            "cast it with u.astype(jnp.float32)."
        )
    try:
        threshold, alpha, width = float(threshold), float(alpha), float(width)
    except TypeError as err:  # a tracer: the threshold is a fixed hyper-parameter here
        raise TypeError(
            "spike(): threshold, alpha and width are fixed hyper-parameters and must be Python "
            "numbers, not traced arrays."
        ) from err
    if not threshold > 0.0:
        raise ValueError(f"spike(): threshold must be > 0, got {threshold}.")
    if not width > 0.0:
        raise ValueError(f"spike(): the surrogate's width must be > 0, got {width}.")
    return _spike(u, threshold, alpha, width)
