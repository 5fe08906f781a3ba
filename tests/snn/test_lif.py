"""The LIF scan (Eq. 4, 9) against an explicit Python loop and a hand-worked gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax import lif_scan, lif_step, spike


def numpy_lif(currents, leak, theta):
    """The authors' loop in NumPy: u = λm + I; o = 1[u/θ − 1 > 0]; m = u − θ·o; m₀ = 0."""
    m = np.zeros_like(currents[0])
    spikes, potentials = [], []
    for current in currents:
        u = leak * m + current
        o = (u / theta - 1.0 > 0).astype(currents.dtype)
        m = u - theta * o
        spikes.append(o)
        potentials.append(u)
    return np.stack(spikes), np.stack(potentials)


def python_loop_lif(currents, leak, theta):
    """The same equations as an unrolled Python loop of JAX ops (no scan)."""
    m = jnp.zeros_like(currents[0])
    out = []
    for t in range(currents.shape[0]):
        u = leak * m + currents[t]
        o = spike(u, theta)
        m = u - theta * jax.lax.stop_gradient(o)
        out.append(o)
    return jnp.stack(out)


@pytest.mark.parametrize("leak,theta", [(0.95, 1.0), (0.99, 1.0), (0.8, 0.5), (1.0, 2.0)])
def test_scan_values_match_numpy_loop(leak, theta):
    rng = np.random.default_rng(0)
    currents = rng.normal(0.4 * theta, 0.8 * theta, size=(12, 5, 7)).astype(np.float32)
    spikes, u = lif_scan(jnp.asarray(currents), leak=leak, threshold=theta, return_membrane=True)
    ref_spikes, ref_u = numpy_lif(currents, leak, theta)
    np.testing.assert_array_equal(spikes, ref_spikes)
    np.testing.assert_allclose(u, ref_u, rtol=1e-6, atol=1e-6)
    assert 0 < ref_spikes.mean() < 1  # the case exercises both firing and silence


def test_scan_gradients_match_python_loop():
    rng = np.random.default_rng(1)
    currents = jnp.asarray(rng.normal(0.5, 0.7, size=(10, 4, 6)).astype(np.float32))
    weights = jnp.asarray(rng.normal(size=(10, 4, 6)).astype(np.float32))

    def loss_scan(c):
        return jnp.sum(weights * lif_scan(c, leak=0.9))

    def loss_loop(c):
        return jnp.sum(weights * python_loop_lif(c, 0.9, 1.0))

    g_scan, g_loop = jax.grad(loss_scan)(currents), jax.grad(loss_loop)(currents)
    np.testing.assert_allclose(g_scan, g_loop, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(g_scan).sum()) > 0


def test_two_step_gradient_by_hand_reset_not_differentiated():
    # u1 = I1, o1 = H(u1), m1 = u1 − θ·o1 (reset without gradient), u2 = λ m1 + I2, o2 = H(u2).
    # L = o1 + o2  ⇒  ∂L/∂I1 = s(u1) + λ·s(u2),  ∂L/∂I2 = s(u2)   with s of Eq. 8.
    # Differentiating the reset would add −θ·λ·s(u1)·s(u2) to ∂L/∂I1.
    leak, i1, i2 = 0.9, 1.2, 0.5
    u1 = i1
    u2 = leak * (u1 - 1.0) + i2  # o1 = 1
    s = lambda u: 0.3 * max(0.0, 1.0 - abs(u - 1.0))  # noqa: E731
    grad = jax.grad(lambda c: lif_scan(c, leak=leak).sum())(jnp.array([i1, i2]))
    np.testing.assert_allclose(grad, [s(u1) + leak * s(u2), s(u2)], rtol=1e-6)


def test_membrane_starts_at_zero_every_call():
    # Two calls on the same input give the same spikes: no hidden state survives a call.
    currents = jnp.full((5, 3), 0.6)
    first, second = lif_scan(currents, leak=0.95), lif_scan(currents, leak=0.95)
    np.testing.assert_array_equal(first, second)
    # u1 = 0.6 (no spike), u2 = 0.57 + 0.6 = 1.17 > 1 (spike): so m0 = 0 exactly.
    np.testing.assert_array_equal(first[:2, 0], [0.0, 1.0])


def test_lif_step_by_hand():
    m, o = lif_step(jnp.array([0.5, 0.9]), jnp.array([0.2, 0.3]), leak=0.5)
    np.testing.assert_allclose(m, [0.45, 0.75])  # u = λm + I, below θ: no reset
    np.testing.assert_array_equal(o, [0.0, 0.0])
    m, o = lif_step(jnp.array([2.0]), jnp.array([0.3]), leak=0.5)
    np.testing.assert_allclose(m, [0.3], rtol=1e-6)  # u = 1.3 > 1: fires and loses θ
    np.testing.assert_array_equal(o, [1.0])
