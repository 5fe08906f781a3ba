"""Input encoders: signed Poisson rate coding (BNTT paper, Appendix B), direct input, one value
per step (sequential), and pre-binned event frames (Appendix C).

Both return time-major spike trains ``[T, *x.shape]`` ready for :func:`bntt_jax.simulate`.
Called on concrete arrays (not under ``jax.jit``), they refuse NaN/Inf input
(:mod:`bntt_jax.checks`), and :func:`poisson_encode` warns once per process when its input
lies far outside the range it encodes.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from bntt_jax.checks import check_finite, is_traced

#: The authors' ``rescale_fac``: a pixel of normalised value x fires with probability |x|/2.
POISSON_SCALE = 2.0
#: ``poisson_encode`` warns when ``max |x|`` exceeds this many times its ``scale``: every
#: such value fires at every step, as raw 0–255 pixels do (normalised CIFAR stays below 1.4×).
FAR_OUT_OF_RANGE = 5.0


class InputRangeWarning(UserWarning):
    """An encoder's input lies far outside the range it encodes."""


_warned_range = [False]  # poisson_encode warns once per process


def _warn_if_far_out_of_range(x: jax.Array, scale: float) -> None:
    if _warned_range[0] or is_traced(x) or x.size == 0:
        return
    with jax.ensure_compile_time_eval():  # x is concrete, perhaps closed over in a trace
        peak = float(jnp.max(jnp.abs(x)))
        if peak <= FAR_OUT_OF_RANGE * scale:
            return
        saturated = float(jnp.mean(jnp.abs(x) >= scale))
    _warned_range[0] = True
    warnings.warn(
        f"poisson_encode(): max |x| is {peak:g}, over {FAR_OUT_OF_RANGE:g}× the scale "
        f"{scale:g}; {100 * saturated:.0f}% of the inputs fire at every step, so the spikes "
        "carry little information. It expects normalised images (e.g. (x/255 − mean)/std); "
        "raw 0–255 pixels need normalising first. (Shown once per process.)",
        InputRangeWarning,
        stacklevel=3,
    )


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
    check_finite("poisson_encode()", "x", x)
    _warn_if_far_out_of_range(x, scale)
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
    check_finite("direct_encode()", "x", x)
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
    check_finite("sequential_encode()", "x", x)
    return x.T[:, :, None]


def frames_encode(x: jax.Array, num_steps: int) -> jax.Array:
    """Pre-binned event frames (BNTT paper Appendix C: a recording's events accumulated into
    T intervals) as the input of T steps: ``x`` ``[B, T, H, W, C]`` becomes ``[T, B, H, W, C]``,
    frame t the input current of step t, its values (event counts) as they are."""
    x = jnp.asarray(x)
    if x.ndim < 3 or x.shape[1] != int(num_steps):
        raise ValueError(
            f"frames_encode(): need frames [B, T, ...] with T = num_steps = {num_steps}, got "
            f"shape {x.shape}; bin the events into {num_steps} frames, or set num_steps to "
            "the frames' count."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    check_finite("frames_encode()", "x", x)
    return jnp.swapaxes(x, 0, 1)
