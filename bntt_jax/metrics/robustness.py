"""Robustness of a BNTT network to noisy and adversarial inputs (BNTT paper, Sec. 4.4 and
Appendix F; journal version, Fig. 8).

* Gaussian noise (Fig. 4b / journal Fig. 8A): ``x + n``, ``n ~ N(0, σ²)``, added to the clean
  image as intensities in [0, 1], before the standardisation the network expects.
* FGSM (Appendix F, after Goodfellow et al. 2015): ``x_adv = x + ε·sign(∇ₓ L(x, y))``,
  clipped to [0, 1]. The gradient is crafted on the spiking network itself, as Sharmin et al.
  (2020) do: backpropagation through time with the surrogate of Eq. 8, with the running
  statistics of evaluation, and through the Poisson encoder taken as the identity in the
  backward pass (each step's spikes ``s_t`` pass ``∂L/∂s_t`` on to ``x``, so
  ``∂L/∂x = Σ_t ∂L/∂s_t``; the encoder's expectation is linear in ``x``), then through the
  standardisation to the intensities.
* FGSM crafted on the non-spiking ANN (:mod:`bntt_jax.baselines.ann`, exact gradient) and
  transferred to a spiking network: :func:`ann_input_gradient`, :func:`ann_fgsm`. A converted
  network is attacked this way (its integrate-and-fire neurons have no surrogate gradient here).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from bntt_jax.baselines.ann import forward
from bntt_jax.encoding import poisson_encode
from bntt_jax.functional import NetworkParams
from bntt_jax.models import SpikingNetwork
from bntt_jax.train import cross_entropy, encode


def gaussian_noise(key: jax.Array, images: jax.Array, sigma: float) -> jax.Array:
    """``images + N(0, σ²)``, element by element, for intensities in [0, 1] (Fig. 4b);
    not clipped, as the paper adds the noise to the image."""
    return images + sigma * jax.random.normal(key, images.shape, images.dtype)


@jax.custom_vjp
def _identity_backward(x: jax.Array, spikes: jax.Array) -> jax.Array:
    return spikes


def _identity_fwd(x: jax.Array, spikes: jax.Array) -> tuple[jax.Array, None]:
    return spikes, None


def _identity_bwd(_: None, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    return g.sum(axis=0), jnp.zeros_like(g)  # ∂s_t/∂x = 1 for every step t


_identity_backward.defvjp(_identity_fwd, _identity_bwd)


def poisson_identity_backward(key: jax.Array, x: jax.Array, num_steps: int) -> jax.Array:
    """Signed Poisson spikes (:func:`bntt_jax.poisson_encode`), exactly, whose backward pass
    is the identity for every step (Sharmin et al. 2020): ``∂L/∂x = Σ_t ∂L/∂s_t``."""
    return _identity_backward(x, poisson_encode(key, x, num_steps))


def snn_loss(
    net: NetworkParams, x: jax.Array, labels: jax.Array, key: jax.Array, encoder: str = "poisson"
) -> jax.Array:
    """Mean cross-entropy of the spiking network in evaluation mode on standardised inputs
    ``x``, differentiable in ``x`` (the Poisson encoder by :func:`poisson_identity_backward`)."""
    num_steps = net.config.num_steps
    if encoder == "poisson":
        spikes = poisson_identity_backward(key, x, num_steps)
    else:
        spikes = encode(key, x, num_steps, encoder)
    logits, _, _ = SpikingNetwork(net.config).apply(net.variables(), spikes, train=False)
    return cross_entropy(logits, labels)


def input_gradient(
    net: NetworkParams,
    images: jax.Array,
    labels: jax.Array,
    key: jax.Array,
    *,
    mean: Any = 0.0,
    std: Any = 1.0,
    encoder: str = "poisson",
) -> jax.Array:
    """``∇ L`` with respect to the intensities ``images`` (standardised inside as
    ``(images − mean) / std``)."""

    def loss(images):
        return snn_loss(net, (images - mean) / std, labels, key, encoder)

    return jax.grad(loss)(images)


def fgsm(
    net: NetworkParams,
    images: jax.Array,
    labels: jax.Array,
    key: jax.Array,
    epsilon: float,
    *,
    mean: Any = 0.0,
    std: Any = 1.0,
    encoder: str = "poisson",
) -> jax.Array:
    """SNN-crafted FGSM (Appendix F): ``clip(x + ε·sign(∇ₓ L(x, y)), 0, 1)`` for intensities
    ``images`` in [0, 1], the gradient by :func:`input_gradient` with encoder draw ``key``."""
    grad = input_gradient(net, images, labels, key, mean=mean, std=std, encoder=encoder)
    return jnp.clip(images + epsilon * jnp.sign(grad), 0.0, 1.0)


def ann_input_gradient(
    net: Any, images: jax.Array, labels: jax.Array, *, mean: Any = 0.0, std: Any = 1.0
) -> jax.Array:
    """``∇ L`` of the ANN ``net`` (:class:`bntt_jax.baselines.ann.ANNParams`, running
    statistics) with respect to the intensities ``images`` (standardised inside as
    ``(images − mean) / std``)."""

    def loss(images):
        return cross_entropy(forward(net, (images - mean) / std), labels)

    return jax.grad(loss)(images)


def ann_fgsm(
    net: Any,
    images: jax.Array,
    labels: jax.Array,
    epsilon: float,
    *,
    mean: Any = 0.0,
    std: Any = 1.0,
) -> jax.Array:
    """FGSM crafted on the ANN: ``clip(x + ε·sign(∇ₓ L_ANN(x, y)), 0, 1)``."""
    grad = ann_input_gradient(net, images, labels, mean=mean, std=std)
    return jnp.clip(images + epsilon * jnp.sign(grad), 0.0, 1.0)
