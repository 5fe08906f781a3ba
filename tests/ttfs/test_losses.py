"""TTFS training terms: SR (Sec. 4), TR (Sec. 4), TB (Eq. 7–8, 14–16) and the total loss (Eq. 9)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax.ttfs.losses import kernel_regularization, tb_penalty, tb_probability, total_loss
from bntt_jax.ttfs.relaxation import relax, relaxation_probability, relaxed_layers


def test_relaxation_probability_is_linear_to_target_epoch():
    # p(e) = 1 - (e + 1)/e_tar: e_tar = 50 → 0.98 at epoch 0, 0.5 at 24, 0 from 49 on.
    assert float(relaxation_probability(0, 50)) == pytest.approx(0.98)
    assert float(relaxation_probability(24, 50)) == pytest.approx(0.5)
    assert float(relaxation_probability(49, 50)) == 0.0
    assert float(relaxation_probability(400, 50)) == 0.0
    assert float(relaxation_probability(3, None)) == 0.0


def test_relaxed_layers_draws_one_uniform_per_layer():
    # p(e) ≥ r^l: the fraction of relaxed layers over many draws is p(e).
    keys = jax.random.split(jax.random.key(0), 4000)
    draws = jax.vmap(lambda k: relaxed_layers(k, 24, 50, 15))(keys)
    assert draws.shape == (4000, 15)
    assert abs(float(draws.mean()) - 0.5) < 0.01
    # the layers are drawn independently: pairs relax together a quarter of the time
    assert abs(float((draws[:, 0] & draws[:, 1]).mean()) - 0.25) < 0.02
    assert not bool(jax.vmap(lambda k: relaxed_layers(k, 60, 50, 15))(keys).any())


def test_relax_takes_relu_path():
    z = jnp.array([-1.0, 0.3, 2.0])
    z_hat = jnp.array([0.0, 0.27, 1.0])
    np.testing.assert_array_equal(relax(z, z_hat, jnp.array(True)), jnp.array([0.0, 0.3, 2.0]))
    np.testing.assert_array_equal(relax(z, z_hat, jnp.array(False)), z_hat)


def test_kernel_regularization_by_hand():
    taus = [jnp.array(11.0), jnp.array(9.5)]
    t_ds = [jnp.array(0.5), jnp.array(-1.0)]
    # (1)² + (0.5)² + (0.5)² + (1)² = 2.5
    assert float(kernel_regularization(taus, t_ds, 10.0, 0.0)) == pytest.approx(2.5)
    assert float(kernel_regularization(taus, t_ds, [11.0, 9.0], [0.0, 0.0])) == pytest.approx(
        0.25 + 0.25 + 1.0
    )
    with pytest.raises(ValueError, match="one per layer"):
        kernel_regularization(taus, t_ds[:1], 10.0, 0.0)


def _integral(gamma, beta, z_min, n=200_001):
    """Eq. 8's integral ∫_β^{ẑ_m} (1 - ½(γx + β)²) dx, numerically (trapezoid)."""
    x = np.linspace(beta, z_min, n)
    return np.trapezoid(1 - 0.5 * (gamma * x + beta) ** 2, x)


@pytest.mark.parametrize(
    "gamma,beta,z_min", [(1.0, 0.0, 0.04), (0.8, -0.3, 0.0408), (1.3, 0.5, 0.2), (0.5, 1.2, 0.01)]
)
def test_tb_probability_is_the_integral_of_eq7(gamma, beta, z_min):
    got = float(tb_probability(gamma, beta, z_min))
    assert got == pytest.approx(_integral(gamma, beta, z_min), abs=1e-9)


@pytest.mark.parametrize("gamma,beta,z_min", [(1.0, 0.2, 0.04), (0.7, -0.4, 0.3), (1.5, 0.9, 0.1)])
def test_tb_gradients_are_eq16_and_corrected_eq15(gamma, beta, z_min):
    with jax.enable_x64(True):
        g, b, z = jnp.float64(gamma), jnp.float64(beta), jnp.float64(z_min)
        d_gamma, d_beta = jax.grad(tb_probability, (0, 1))(g, b, z)
    eq16 = -(z_min**3 - beta**3) * gamma / 3 - (z_min**2 - beta**2) * beta / 2
    eq15 = 1.5 * (gamma**2 / 3 + gamma + 1) * beta**2 - z_min * beta - 0.5 * (gamma * z_min**2 + 2)
    printed15 = 1.5 * (gamma**2 / 3 + gamma + 1) - z_min * beta - 0.5 * (gamma * z_min**2 + 2)
    assert float(d_gamma) == pytest.approx(eq16, rel=1e-12)
    assert float(d_beta) == pytest.approx(eq15, rel=1e-12)
    assert float(d_beta) != pytest.approx(printed15, rel=1e-3)  # as printed, it is wrong


def test_tb_penalty_sums_layers_and_channels_and_leaves_z_min_alone():
    gammas = [jnp.array([1.0, 0.5]), jnp.array([1.2])]
    betas = [jnp.array([0.1, -0.2]), jnp.array([0.3])]
    z_mins = [jnp.array(0.04), jnp.array(0.1)]
    want = sum(
        _integral(float(g), float(b), float(z))
        for gs, bs, z in zip(gammas, betas, z_mins, strict=True)
        for g, b in zip(gs, bs, strict=True)
    )
    assert float(tb_penalty(gammas, betas, z_mins)) == pytest.approx(want, abs=1e-6)
    grad_z = jax.grad(lambda zs: tb_penalty(gammas, betas, zs))(z_mins)
    assert all(float(v) == 0.0 for v in grad_z)


def test_total_loss_eq9():
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0]])
    labels = jnp.array([0, 1])
    ce = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0))) / 2
    loss, terms = total_loss(logits, labels, jnp.array(3.0), jnp.array(4.0), 1e-2, 1e-1)
    assert float(terms["loss_ce"]) == pytest.approx(ce, rel=1e-6)
    assert float(loss) == pytest.approx(ce + 0.03 - 0.4, rel=1e-6)
