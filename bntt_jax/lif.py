"""Leaky integrate-and-fire dynamics with soft reset (BNTT paper, Eq. 4 and Eq. 9).

At every time-step t, with the (normalised) synaptic input ``I_t``:

    u_t = λ · m_{t−1} + I_t          (Eq. 4; Eq. 9 when I_t = BNTT_γᵗ(W o_{t}))
    o_t = 1[u_t > θ]                 (Eq. 8 surrogate in the backward pass)
    m_t = u_t − θ · o_t              (soft reset, not differentiated)

``m_0 = 0`` at the start of every forward pass. The membrane is explicit scan carry; nothing
is stored on a module between calls.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from bntt_jax.spike import SURROGATE_ALPHA, spike


def lif_step(
    membrane: jax.Array,
    current: jax.Array,
    *,
    leak: float,
    threshold: float = 1.0,
    alpha: float = SURROGATE_ALPHA,
) -> tuple[jax.Array, jax.Array]:
    """One LIF update (Eq. 4/9) with soft reset.

    Args:
      membrane: ``m_{t−1}``, the membrane after the previous step's reset.
      current: ``I_t``, this step's synaptic input (same shape).
      leak: λ, the membrane leak factor.
      threshold: θ, the firing threshold.
      alpha: surrogate damping factor (Eq. 8).

    Returns:
      ``(m_t, o_t)``: the membrane after reset and the spikes of this step. The reset
      ``θ·o_t`` carries no gradient, as in the authors' code.
    """
    m, o, _ = _lif_update(membrane, current, leak, threshold, alpha)
    return m, o


def _lif_update(membrane, current, leak, threshold, alpha):
    u = leak * membrane + current
    o = spike(u, threshold, alpha)
    m = u - threshold * lax.stop_gradient(o)
    return m, o, u


def lif_scan(
    currents: jax.Array,
    *,
    leak: float,
    threshold: float = 1.0,
    alpha: float = SURROGATE_ALPHA,
    return_membrane: bool = False,
    unroll: int = 1,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Run the LIF recurrence over the leading (time) axis with ``lax.scan`` (Eq. 4, 9).

    Args:
      currents: ``[T, ...]`` synaptic input for all T steps (time-major).
      leak, threshold, alpha: as in :func:`lif_step`.
      return_membrane: also return the pre-reset membrane potentials ``u_t``.
      unroll: scan unroll factor (a speed knob; results are identical).

    Returns:
      Spikes ``[T, ...]``, and ``u`` ``[T, ...]`` when ``return_membrane``.
    """
    currents = jnp.asarray(currents)
    if currents.ndim < 1:
        raise ValueError("lif_scan(): currents need a leading time axis, got a scalar.")

    def step(m, current):
        m_new, o, u = _lif_update(m, current, leak, threshold, alpha)
        return m_new, ((o, u) if return_membrane else o)

    _, out = lax.scan(step, jnp.zeros_like(currents[0]), currents, unroll=unroll)
    return out
