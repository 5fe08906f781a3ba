"""Spike forward (strict Heaviside) and the surrogate gradient of Eq. 8 against its closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax import spike, surrogate_grad


def closed_form(u, theta, alpha):
    """Eq. 8 written out: α·max(0, 1 − |u − θ|/θ)."""
    return alpha * np.maximum(0.0, 1.0 - np.abs(u - theta) / theta)


@pytest.mark.parametrize("theta", [1.0, 0.5, 2.0])
def test_forward_is_strict_heaviside(theta):
    u = jnp.array([-1.0, 0.0, theta - 1e-6 * theta, theta, theta + 1e-6 * theta * 2, 3 * theta])
    np.testing.assert_array_equal(spike(u, theta), [0, 0, 0, 0, 1, 1])


@pytest.mark.parametrize("theta", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_gradient_matches_eq8(theta, alpha):
    # A grid through the whole triangle, its peak u = θ, its feet u = 0 and u = 2θ, and outside.
    u = np.concatenate([np.linspace(-2 * theta, 4 * theta, 61), [0.0, theta, 2 * theta]])
    grad = jax.vmap(jax.grad(lambda x: spike(x, theta, alpha)))(jnp.asarray(u, jnp.float32))
    np.testing.assert_allclose(grad, closed_form(u, theta, alpha), atol=1e-6)


def test_gradient_at_threshold_is_alpha_and_zero_outside():
    g = jax.grad(lambda x: spike(x))
    assert float(g(1.0)) == pytest.approx(0.3)
    assert float(g(0.5)) == pytest.approx(0.15)
    assert float(g(1.5)) == pytest.approx(0.15)
    for outside in (-0.5, 0.0, 2.0, 2.5, 10.0):
        assert float(g(outside)) == 0.0


def test_surrogate_grad_function_is_eq8():
    u = np.linspace(-1, 3, 41, dtype=np.float32)
    np.testing.assert_allclose(surrogate_grad(u), closed_form(u, 1.0, 0.3), atol=1e-7)


def test_chain_rule_through_spike():
    # d/du sum(w * spike(u)) = w * surrogate(u): the incoming cotangent is multiplied.
    u = jnp.array([0.2, 0.9, 1.0, 1.7])
    w = jnp.array([2.0, -1.0, 3.0, 0.5])
    grad = jax.grad(lambda x: jnp.sum(w * spike(x)))(u)
    np.testing.assert_allclose(
        grad, np.asarray(w) * closed_form(np.asarray(u), 1.0, 0.3), rtol=1e-6
    )


def test_bad_inputs():
    with pytest.raises(TypeError, match="floating"):
        spike(jnp.array([1, 2]))
    with pytest.raises(ValueError, match="threshold must be > 0"):
        spike(jnp.ones(2), 0.0)
    with pytest.raises(TypeError, match="Python numbers"):
        jax.jit(lambda th: spike(jnp.ones(2), th))(1.0)
