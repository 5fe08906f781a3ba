"""Temporal early exit from the learnt γᵗ (BNTT paper, Sec. 3.4 and Fig. 3).

A low γᵗ raises the effective threshold of step t (Eq. 15), so once the layer-averaged γᵗ
of *every* layer stays below a threshold, later steps carry little information. The exit
time is chosen before any forward pass, from the parameters alone.
"""

from __future__ import annotations

import numpy as np

from bntt_jax.simulate import NetworkParams


def gamma_means(params: NetworkParams) -> dict[str, np.ndarray]:
    """Average γᵗ over the channels of each BNTT layer: ``{layer: [T]}`` (the curves of Fig. 3)."""
    if params.config.norm != "bntt":
        raise ValueError(
            f"early exit needs BNTT's per-step γᵗ; this network has norm={params.config.norm!r}."
        )
    return {
        spec.name: np.asarray(params.params[f"norm_{spec.name}"]["gamma_t"]).mean(axis=1)
        for spec in params.config.layers
    }


def early_exit_step(params: NetworkParams, threshold: float = 0.1) -> int:
    """The exit time ``T_exit`` of Sec. 3.4: the last step at which some layer's mean γᵗ is at
    least ``threshold``; from step ``T_exit + 1`` on, every layer's mean γᵗ is below it.

    Returns a step count in ``1 … T`` to pass as ``T`` to :func:`bntt_jax.simulate`.
    (Fig. 3: all means below 0.1 after t = 20 gives ``T_exit = 20``.)
    """
    means = np.stack(list(gamma_means(params).values()))  # [layers, T]
    active = np.nonzero((means >= threshold).any(axis=0))[0]
    return int(active[-1]) + 1 if active.size else 1
