"""Leaky integrate-and-fire dynamics with soft or hard reset (BNTT paper, Eq. 4 and Eq. 9).

At every time-step t, with the (normalised) synaptic input ``I_t``:

    u_t = λ · m_{t−1} + I_t          (Eq. 4; Eq. 9 when I_t = BNTT_γᵗ(W o_{t}))
    o_t = 1[u_t > θ]                 (Eq. 8 surrogate in the backward pass)
    m_t = u_t − θ · o_t              (soft reset, the papers' and the default)
    m_t = u_t · (1 − o_t)            (hard reset to 0, ``reset="hard"``)

Neither reset is differentiated through the spike (the authors' code detaches it). The hard
reset is what NIR's ``LIF`` and ``IF`` neurons do (reset to ``v_reset = 0``), so only a network
with it exports to NIR exactly (:func:`bntt_jax.to_nir`).

``m_0 = 0`` at the start of every forward pass. The membrane is explicit scan carry; nothing
is stored on a module between calls.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from bntt_jax.constants import RESETS
from bntt_jax.spike import SURROGATE_ALPHA, spike


def lif_step(
    membrane: jax.Array,
    current: jax.Array,
    *,
    leak: float,
    threshold: float = 1.0,
    alpha: float = SURROGATE_ALPHA,
    reset: str = "soft",
    width: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """One LIF update (Eq. 4/9).

    Args:
      membrane: ``m_{t−1}``, the membrane after the previous step's reset.
      current: ``I_t``, this step's synaptic input (same shape).
      leak: λ, the membrane leak factor.
      threshold: θ, the firing threshold.
      alpha: the surrogate's scale, the damping factor α (Eq. 8).
      reset: ``"soft"`` (subtract θ, the papers') or ``"hard"`` (to 0).
      width: the surrogate's half-width in units of θ (1 in Eq. 8).

    Returns:
      ``(m_t, o_t)``: the membrane after reset and the spikes of this step. The reset
      carries no gradient through the spike, as in the authors' code.
    """
    _check_reset(reset)
    m, o, _ = _lif_update(membrane, current, leak, threshold, alpha, reset, width)
    return m, o


def _check_reset(reset: str) -> None:
    if reset not in RESETS:
        raise ValueError(f"unknown reset {reset!r}; choose one of {RESETS}.")


def _lif_update(membrane, current, leak, threshold, alpha, reset="soft", width=1.0):
    u = leak * membrane + current
    o = spike(u, threshold, alpha, width)
    fired = lax.stop_gradient(o)
    m = u - threshold * fired if reset == "soft" else u * (1.0 - fired)
    return m, o, u


def lif_scan(
    currents: jax.Array,
    *,
    leak: float,
    threshold: float = 1.0,
    alpha: float = SURROGATE_ALPHA,
    reset: str = "soft",
    width: float = 1.0,
    return_membrane: bool = False,
    unroll: int = 1,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Run the LIF recurrence over the leading (time) axis with ``lax.scan`` (Eq. 4, 9).

    Args:
      currents: ``[T, ...]`` synaptic input for all T steps (time-major).
      leak: as in :func:`lif_step`.
      threshold: as in :func:`lif_step`.
      alpha: as in :func:`lif_step`.
      reset: as in :func:`lif_step`.
      width: as in :func:`lif_step`.
      return_membrane: also return the pre-reset membrane potentials ``u_t``.
      unroll: scan unroll factor (a speed knob; results are identical).

    Returns:
      Spikes ``[T, ...]``, and ``u`` ``[T, ...]`` when ``return_membrane``.
    """
    currents = jnp.asarray(currents)
    if currents.ndim < 1:
        raise ValueError("lif_scan(): currents need a leading time axis, got a scalar.")
    _check_reset(reset)

    def step(m, current):
        m_new, o, u = _lif_update(m, current, leak, threshold, alpha, reset, width)
        return m_new, ((o, u) if return_membrane else o)

    _, out = lax.scan(step, jnp.zeros_like(currents[0]), currents, unroll=unroll)
    return out
