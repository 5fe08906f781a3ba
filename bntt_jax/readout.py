"""The non-spiking accumulating readout (BNTT paper, Sec. 3.1 and Eq. 5).

The output layer has no threshold and no leak (λ = 1): it accumulates ``W·o_t`` over all
steps, and the authors divide by T, so the logits fed to the cross-entropy of Eq. 5 are

    logits = (1/T) · Σ_t W · o_t.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from bntt_jax.cpu.convolution import spike_dense


def readout_steps(spikes: jax.Array, kernel: jax.Array) -> jax.Array:
    """The per-step terms ``W·o_t`` of the accumulating readout (Eq. 5): ``[T, B, classes]``.

    Their running mean over the first t steps is the logits of an early exit at t, so one
    run gives the logits of every exit time.
    """
    message = f"readout_steps(): need spikes [T, B, F] and kernel [F, classes], got {spikes.shape} "
    message += f"and {kernel.shape}"
    chex.assert_rank([spikes, kernel], [3, 2], custom_message=message)
    chex.assert_equal(spikes.shape[-1], kernel.shape[0], custom_message=message)
    return spike_dense(spikes, kernel)


def readout(spikes: jax.Array, kernel: jax.Array) -> jax.Array:
    """Accumulating readout ``(1/T)·Σ_t W·o_t`` (Eq. 5 with λ = 1).

    Args:
      spikes: ``[T, B, F]`` spikes of the last hidden layer.
      kernel: ``[F, classes]`` readout weights (no bias, as in the authors' code).

    Returns:
      ``[B, classes]`` logits. Computed as ``mean_t(o_t) @ W``, equal by linearity and T
      times cheaper than one matmul per step.
    """
    message = f"readout(): need spikes [T, B, F] and kernel [F, classes], got {spikes.shape} "
    message += f"and {kernel.shape}"
    chex.assert_rank([spikes, kernel], [3, 2], custom_message=message)
    chex.assert_equal(spikes.shape[-1], kernel.shape[0], custom_message=message)
    return jnp.mean(spikes, axis=0) @ kernel
