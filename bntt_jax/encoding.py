"""Input encoders: signed Poisson rate coding (BNTT paper, Appendix B) and direct input.

Both return time-major spike trains ``[T, *x.shape]`` ready for :func:`bntt_jax.simulate`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: The authors' ``rescale_fac``: a pixel of normalised value x fires with probability |x|/2.
POISSON_SCALE = 2.0


def poisson_encode(
    key: jax.Array, x: jax.Array, num_steps: int, *, scale: float = POISSON_SCALE
) -> jax.Array:
    """Signed Poisson spikes ``s_t = sign(x) · 1[scale · U_t ≤ |x|]``, ``U_t ~ U[0, 1)`` (App. B).

    A fresh uniform draw is made for every step and every element, so each element spikes at
    each step independently with probability ``min(|x| / scale, 1)``, with the sign of ``x``;
    ``x = 0`` never spikes. The authors apply it to the normalised image, at train and test
    time alike, with ``scale = 2``.

    Args:
      key: a ``jax.random`` key.
      x: the (normalised) input, any shape, e.g. ``[B, H, W, C]``.
      num_steps: T, the number of steps to draw.
      scale: the comparison scale (``rescale_fac`` in the authors' code).

    Returns:
      ``[T, *x.shape]`` spikes in {−1, 0, 1}, with the floating dtype of ``x`` (float32 for
      integer input).
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    if int(num_steps) < 1:
        raise ValueError(f"poisson_encode(): num_steps must be >= 1, got {num_steps}.")
    if not scale > 0:
        raise ValueError(f"poisson_encode(): scale must be > 0, got {scale}.")
    u = jax.random.uniform(key, (int(num_steps),) + x.shape, dtype=x.dtype)
    fires = scale * u <= jnp.abs(x)
    return jnp.where(fires, jnp.sign(x), jnp.zeros((), x.dtype))


def direct_encode(x: jax.Array, num_steps: int) -> jax.Array:
    """Deterministic direct input: the analogue value ``x`` presented at every one of T steps.

    Returns ``[T, *x.shape]`` (a broadcast, no copy until used).
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    if int(num_steps) < 1:
        raise ValueError(f"direct_encode(): num_steps must be >= 1, got {num_steps}.")
    return jnp.broadcast_to(x, (int(num_steps),) + x.shape)


def sequential_encode(x: jax.Array) -> jax.Array:
    """Sequential input (Sequential MNIST, journal paper Sec. 4): one value per step.

    ``x`` ``[B, L]`` (e.g. 784 pixels) becomes ``[L, B, 1]``: step t presents value t of
    every sample as a direct input current.
    """
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"sequential_encode(): need [B, L], got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x.T[:, :, None]
