"""Normalisation through time: BNTT and the baselines the papers compare it with.

All functions take time-major activations ``x`` of shape ``[T, B, ..., C]`` (channels last)
and are pure: statistics go in and out as arrays.

* ``bntt`` (Eq. 9, Algorithm 1): one batch norm per time-step. Step t has its own batch
  statistics μᵗ, σᵗ (over the batch and the spatial positions of that step only), its own
  running averages and its own learnable scale γᵗ. No shift β.
* ``bn``: one standard batch norm shared by all steps, as a single ``BatchNorm2d`` called at
  every step of the authors' time-major loop would be: in training each step is normalised
  with its own batch statistics, but γ (no β) and the running averages are shared, the
  running averages being updated once per step in step order; in evaluation every step uses
  the same running statistics. The "Baseline + standard BN" row of the journal paper's
  Table 1. (Statistics pooled over time × batch would be tdBN, a different method.)
* ``layernorm``: statistics per sample and per step over all features, one γ per channel
  shared over time, no β: the journal paper's Table 5 comparison (its exact affine form is
  not given there; we keep BNTT's γ-only form so that only the statistics differ).
* ``none``: identity, the plain surrogate-gradient baseline.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from jax import lax

from bntt_jax.constants import EPS, MOMENTUM, NORMS  # noqa: F401  (NORMS: re-exported)


def _per_step(stat: jax.Array, ndim: int) -> jax.Array:
    """Reshape a ``[T, C]`` statistic to broadcast against ``[T, B, ..., C]``."""
    return stat.reshape(stat.shape[:1] + (1,) * (ndim - 2) + stat.shape[-1:])


def bntt_batch_stats(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-time-step batch mean and (biased) variance, Algorithm 1 lines 1–2 / Eq. 1.

    Args:
      x: ``[T, B, ..., C]``.

    Returns:
      ``(μ, σ²)``, each ``[T, C]``: statistics over batch and space of each step.
    """
    axes = tuple(range(1, x.ndim - 1))
    mean = jnp.mean(x, axis=axes)
    var = jnp.mean(jnp.square(x - _per_step(mean, x.ndim)), axis=axes)
    return mean, var


def bntt_normalize(
    x: jax.Array,
    gamma_t: jax.Array,
    mean_t: jax.Array,
    var_t: jax.Array,
    eps: float = EPS,
) -> jax.Array:
    """BNTT of Eq. 9 / Algorithm 1 lines 3–4: ``γᵗ · (x − μᵗ) / sqrt((σᵗ)² + ε)``.

    Args:
      x: ``[T, B, ..., C]`` synaptic input of all steps.
      gamma_t, mean_t, var_t: ``[T, C]``: step t is normalised with row t only. In training
        pass the batch statistics of :func:`bntt_batch_stats`, in evaluation the running
        statistics of the same step.
      eps: ε for numerical stability (1e-4 as the authors).

    A step whose input is all zero (σ = 0, as in deep layers at t = 0) gives 0, finitely.
    """
    t, c = x.shape[0], x.shape[-1]
    chex.assert_shape(
        [gamma_t, mean_t, var_t],
        (t, c),
        custom_message=f"bntt_normalize(): gamma_t, mean_t, var_t must have shape {(t, c)}",
    )
    # The scale in the promoted dtype of activations and statistics: float32 running
    # statistics must not cap the precision of float64 activations.
    dtype = jnp.result_type(x, mean_t, var_t, gamma_t)
    gamma_t, mean_t, var_t = (a.astype(dtype) for a in (gamma_t, mean_t, var_t))
    inv = lax.rsqrt(var_t + eps) * gamma_t
    return (x - _per_step(mean_t, x.ndim)) * _per_step(inv, x.ndim)


def running_stats_update(
    running_mean: jax.Array,
    running_var: jax.Array,
    batch_mean: jax.Array,
    batch_var: jax.Array,
    count: int,
    momentum: float = MOMENTUM,
) -> tuple[jax.Array, jax.Array]:
    """Exponential moving average of the statistics, Algorithm 1 lines 6–7.

    As the authors' ``BatchNorm2d``: ``new = (1 − m)·old + m·batch`` with the *unbiased*
    variance ``σ²·n/(n − 1)`` (n = ``count`` values per statistic). Algorithm 1 prints the
    average of σ rather than σ²; the released code averages the variance, and so do we.
    No gradient flows into the running statistics.
    """
    if count < 2:
        raise ValueError(
            f"running statistics need at least 2 values per channel, got {count}: use a batch "
            "of at least 2 in training mode."
        )
    batch_mean, batch_var = lax.stop_gradient(batch_mean), lax.stop_gradient(batch_var)
    unbiased = batch_var * (count / (count - 1))
    new_mean = (1.0 - momentum) * running_mean + momentum * batch_mean
    new_var = (1.0 - momentum) * running_var + momentum * unbiased
    return new_mean, new_var


def sequential_running_update(
    running_mean: jax.Array,
    running_var: jax.Array,
    batch_mean_t: jax.Array,
    batch_var_t: jax.Array,
    count: int,
    momentum: float = MOMENTUM,
) -> tuple[jax.Array, jax.Array]:
    """Shared running statistics ``[C]`` updated by each step's ``[T, C]`` batch statistics
    in step order: :func:`running_stats_update` applied T times, as a BN module reused at
    every step of a time-major loop does (the ``bn`` baseline).
    """

    def step(carry, stats):
        return running_stats_update(*carry, *stats, count, momentum), None

    (mean, var), _ = lax.scan(step, (running_mean, running_var), (batch_mean_t, batch_var_t))
    return mean, var


def layer_norm(x: jax.Array, gamma: jax.Array, eps: float = EPS) -> jax.Array:
    """Layer normalisation per sample and per time-step over all features, γ only.

    Args:
      x: ``[T, B, ..., C]``; statistics over the ``...`` and ``C`` axes of each (t, b).
      gamma: ``[C]`` scale shared over time.
    """
    axes = tuple(range(2, x.ndim))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps) * gamma
