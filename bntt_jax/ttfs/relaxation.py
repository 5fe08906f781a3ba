"""Stochastic relaxation (SR), Sec. 4 of the TTFS paper (Park & Yoon).

Early in training a layer takes, with probability ``p(e) = 1 − (e + 1)/e_tar``, the ReLU path
instead of the temporal kernel, so that pruned and clipped activations do not starve it of
gradients; ``p`` falls linearly to 0 at the target epoch ``e_tar``. One uniform ``r^l`` is drawn
per layer and training step and the layer is relaxed when ``p(e) ≥ r^l``; never at evaluation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def relaxation_probability(epoch: jax.Array | int, target_epoch: int | None) -> jax.Array:
    """``p(e) = 1 − (e + 1)/e_tar`` (Sec. 4), clipped to ``[0, 1]``; ``e`` counts from 0.
    ``target_epoch=None`` (or 0) turns SR off: ``p = 0``."""
    if not target_epoch:
        return jnp.zeros((), jnp.float32)
    p = 1.0 - (jnp.asarray(epoch, jnp.float32) + 1.0) / target_epoch
    return jnp.clip(p, 0.0, 1.0)


def relaxed_layers(
    key: jax.Array, epoch: jax.Array | int, target_epoch: int | None, num_layers: int
) -> jax.Array:
    """Which of ``num_layers`` layers take the ReLU path this step: ``p(e) ≥ r^l`` with one
    ``r^l ~ U(0, 1)`` per layer (Sec. 4). A ``[num_layers]`` bool vector."""
    r = jax.random.uniform(key, (num_layers,))
    return relaxation_probability(epoch, target_epoch) >= r


def relax(z: jax.Array, z_hat: jax.Array, relaxed: jax.Array) -> jax.Array:
    """The layer's activation: ``ReLU(z)`` if ``relaxed`` (SR's path), else ``z_hat``."""
    return jnp.where(relaxed, jax.nn.relu(z), z_hat)
