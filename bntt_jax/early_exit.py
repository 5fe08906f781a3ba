"""Temporal early exit from the learnt γᵗ (BNTT paper, Sec. 3.4 and Fig. 3).

A low γᵗ raises the effective threshold of step t (Eq. 15), so once the layer-averaged γᵗ
of *every* layer stays below a threshold, later steps carry little information. The exit
time is chosen before any forward pass, from the parameters alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bntt_jax.functional import NetworkParams


def gamma_means(params: NetworkParams) -> dict[str, np.ndarray]:
    """Average γᵗ over the channels of each BNTT layer: ``{layer: [T]}`` (the curves of Fig. 3)."""
    if not params.config.normalization.has_gamma_t:
        raise ValueError(
            f"early exit needs BNTT's per-step γᵗ; this network has norm={params.config.norm!r}."
        )
    return {
        spec.name: np.asarray(params.params[f"norm_{spec.name}"]["gamma_t"]).mean(axis=1)
        for spec in params.config.layers
    }


def exit_step_from_means(means: np.ndarray, threshold: float = 0.1, relative: bool = False) -> int:
    """The exit rule of Sec. 3.4 on the mean γᵗ of each layer, ``means`` ``[layers, T]``: the
    last step at which some layer's mean is at least the threshold, so that from the next
    step on every layer's mean is below it; 1 if no step reaches it.

    ``relative=False`` compares with ``threshold`` itself, as the paper does (0.1 in Fig. 3).
    ``relative=True`` is our addition: each layer is compared with ``threshold`` times its own
    peak over the steps, a rule that still picks a step when training leaves every γᵗ above
    any fixed threshold (short schedules keep γᵗ near its initial 1)."""
    means = np.asarray(means, np.float64)
    if means.ndim != 2 or not means.size:
        raise ValueError(f"means must be [layers, T] with T >= 1, got shape {means.shape}.")
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold}.")
    bound = threshold * means.max(axis=1, keepdims=True) if relative else threshold
    active = np.nonzero((means >= bound).any(axis=0))[0]
    return int(active[-1]) + 1 if active.size else 1


def early_exit_step(params: NetworkParams, threshold: float = 0.1, relative: bool = False) -> int:
    """The exit time ``T_exit`` of Sec. 3.4 for a BNTT network (:func:`exit_step_from_means`
    on :func:`gamma_means`).

    Returns a step count in ``1 … T`` to pass as ``T`` to :func:`bntt_jax.simulate`.
    (Fig. 3: all means below 0.1 after t = 20 gives ``T_exit = 20``.)
    """
    means = np.stack(list(gamma_means(params).values()))  # [layers, T]
    return exit_step_from_means(means, threshold, relative)


def exit_sweep(
    params: NetworkParams, thresholds: Sequence[float], relative: bool = False
) -> dict[float, int]:
    """``{threshold: T_exit}`` over ``thresholds`` (Fig. 6 / journal Fig. 7 pair each with the
    accuracy at its T_exit, which one evaluation at every T gives)."""
    means = np.stack(list(gamma_means(params).values()))
    return {float(t): exit_step_from_means(means, t, relative) for t in thresholds}
