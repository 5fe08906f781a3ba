"""The TTFS temporal kernel, encoder, decoder and quantiser (Park & Yoon, Eq. 3–6, 10–13)
against hand-worked values and closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax.ttfs.kernel import (
    decode,
    encode,
    encode_decode,
    kernel,
    kernel_errors,
    max_precision_error,
    quantize,
    representation_range,
    spike_times,
    threshold,
    threshold_table,
)

T, TAU, TD = 32, 10.0, 0.0


def test_kernel_and_range_by_hand():
    # Eq. 3 with t_r = 0: exp(-(t - t_d)/τ); Sec. 4: [ẑ_m, ẑ_M] = [exp(-T/τ), 1]·exp(t_d/τ).
    assert float(kernel(0.0, 10.0, 0.0)) == pytest.approx(1.0)
    assert float(kernel(10.0, 10.0, 0.0)) == pytest.approx(math.exp(-1))
    assert float(kernel(3.0, 5.0, 2.0)) == pytest.approx(math.exp(-0.2))
    z_min, z_max = representation_range(10.0, 0.0, 32)
    assert float(z_min) == pytest.approx(math.exp(-3.2)) and float(z_max) == pytest.approx(1.0)
    z_min, z_max = representation_range(8.0, 4.0, 32)
    assert float(z_max) == pytest.approx(math.exp(0.5))
    assert float(z_min) == pytest.approx(math.exp(-4.0) * math.exp(0.5))
    # ẑ_m and ẑ_M are the kernel at the window's two ends.
    assert float(z_min) == pytest.approx(float(kernel(32.0, 8.0, 4.0)))


@pytest.mark.parametrize("rounding", ["ceil", "round"])
def test_encoder_matches_eq4_in_closed_form(rounding):
    # Eq. 4: t = ⌈-τ·ln(z/θ0) + t_d⌉ (ceil), or ⌈x - 1/2⌉ (round, the authors' code).
    rng = np.random.default_rng(0)
    z = rng.uniform(0.02, 1.5, 2000)
    for tau, t_d, theta0 in [(10.0, 0.0, 1.0), (7.3, 1.7, 1.0), (12.0, -2.0, 0.8)]:
        x = t_d - tau * np.log(z / theta0)
        t = np.maximum(np.ceil(x - (0.5 if rounding == "round" else 0.0)), 0)
        want = np.where(t > T, T + 1, t)
        got = encode(jnp.asarray(z), tau, t_d, T, theta0, rounding)
        np.testing.assert_array_equal(np.asarray(got), want)


def test_encoder_regions_of_fig1b():
    z_min, z_max = (float(v) for v in representation_range(TAU, TD, T))
    z = jnp.array([-1.0, 0.0, 1e-35, 0.5 * z_min, 0.999 * z_min, 1.0001 * z_min, 0.5, z_max, 3.0])
    t = encode(z, TAU, TD, T)
    # z ≤ 0 and z < ẑ_m are pruned (T + 1); ẑ_m ≤ z ≤ ẑ_M quantised; above ẑ_M clipped at 0.
    np.testing.assert_array_equal(t, [33, 33, 33, 33, 33, 32, math.ceil(-10 * math.log(0.5)), 0, 0])
    z_hat = decode(t, TAU, TD, T)
    np.testing.assert_allclose(z_hat[:5], 0.0)
    assert float(z_hat[5]) == pytest.approx(z_min)  # t = T is inside the window
    assert float(z_hat[6]) == pytest.approx(math.exp(-7 / 10))
    np.testing.assert_allclose(z_hat[7:], z_max)
    np.testing.assert_array_equal(spike_times(t, T), [-1] * 5 + [32, 7, 0, 0])


@pytest.mark.parametrize("rounding", ["ceil", "round"])
def test_encoder_on_quantisation_boundaries(rounding):
    # A pre-activation exactly equal to the threshold of step k fires at k; one ulp below, at
    # k + 1. This is the comparison the spiking network makes (kernel.threshold).
    with jax.enable_x64(True):
        tau, t_d = jnp.float64(7.3), jnp.float64(1.7)
        ks = jnp.arange(0, T + 1, dtype=jnp.float64)
        on = threshold_table(tau, t_d, T, 1.0, rounding)[1 : T + 2]
        np.testing.assert_allclose(on, threshold(ks, tau, t_d, 1.0, rounding), rtol=1e-15)
        below = jnp.nextafter(on, 0.0)
        np.testing.assert_array_equal(encode(on, tau, t_d, T, 1.0, rounding), ks)
        want_below = np.where(np.asarray(ks) + 1 > T, T + 1, np.asarray(ks) + 1)
        np.testing.assert_array_equal(encode(below, tau, t_d, T, 1.0, rounding), want_below)


def test_round_pair_fires_at_round():
    # The code's pair: threshold half a step later, spike at round(x) (ties go down).
    tau, t_d = 10.0, 0.0
    x = jnp.array([0.2, 0.7, 1.49, 1.51, 4.0, 31.6])
    z = jnp.exp(-(x - t_d) / tau)
    np.testing.assert_array_equal(encode(z, tau, t_d, T, 1.0, "round"), [0, 1, 1, 2, 4, 32])
    np.testing.assert_array_equal(encode(z, tau, t_d, T, 1.0, "ceil"), [1, 1, 2, 2, 4, 32])


def test_decode_encode_is_identity_on_kernel_values():
    t = jnp.arange(0, T + 1, dtype=jnp.float32)
    z = kernel(t, TAU, TD)
    np.testing.assert_allclose(encode_decode(z, TAU, TD, T), z, rtol=1e-6)


def test_quantizer_is_straight_through():
    x = jnp.array([-0.7, 0.2, 1.0, 3.5])
    np.testing.assert_array_equal(quantize(x), [-0.0, 1.0, 1.0, 4.0])
    np.testing.assert_array_equal(jax.grad(lambda v: quantize(v).sum())(x), [1.0, 1.0, 1.0, 1.0])


def test_gradient_wrt_z_is_zhat_over_z_in_the_quantised_region():
    # d/dz κ(Q(t_d - τ ln z)) with the STE = (-ẑ/τ)·(-τ/z) = ẑ/z; 0 where clipped or pruned.
    z_min, z_max = (float(v) for v in representation_range(TAU, TD, T))
    z = jnp.array([0.3, 0.61, 0.9, 0.5 * z_min, 2.0])
    grad = jax.vmap(jax.grad(lambda v: encode_decode(v, TAU, TD, T)))(z)
    z_hat = encode_decode(z, TAU, TD, T)
    np.testing.assert_allclose(grad[:3], (z_hat / z)[:3], rtol=1e-5)
    np.testing.assert_array_equal(grad[3:], [0.0, 0.0])


def test_kernel_parameter_gradients_eq6_corrected():
    # Eq. 6: ∂ẑ/∂τ = ẑ·(t - t_d)/τ². For t_d, differentiating Eq. 3 gives ∂ẑ/∂t_d = ẑ/τ (the
    # paper prints ẑ·t_d/τ, which would vanish at the paper's own t_d,0 = 0).
    z = jnp.array([0.05, 0.3, 0.61, 0.9])
    for tau, t_d in [(10.0, 0.0), (7.0, 1.5), (12.0, -0.8)]:
        t = encode(z, tau, t_d, T)
        z_hat = decode(t, tau, t_d, T)
        d_tau = jax.vmap(jax.grad(lambda v, a, b: encode_decode(v, a, b, T), 1), (0, None, None))
        d_td = jax.vmap(jax.grad(lambda v, a, b: encode_decode(v, a, b, T), 2), (0, None, None))
        np.testing.assert_allclose(d_tau(z, tau, t_d), z_hat * (t - t_d) / tau**2, rtol=1e-5)
        np.testing.assert_allclose(d_td(z, tau, t_d), z_hat / tau, rtol=1e-5)
        # and against central finite differences of the decoder at the fixed spike times
        with jax.enable_x64(True):
            t64, h = t.astype(jnp.float64), 1e-5
            fd_tau = (decode(t64, tau + h, t_d, T) - decode(t64, tau - h, t_d, T)) / (2 * h)
            fd_td = (decode(t64, tau, t_d + h, T) - decode(t64, tau, t_d - h, T)) / (2 * h)
        np.testing.assert_allclose(d_tau(z, tau, t_d), fd_tau, rtol=1e-5)
        np.testing.assert_allclose(d_td(z, tau, t_d), fd_td, rtol=1e-5)


def test_kernel_errors_eq10_to_12():
    tau, t_d = 10.0, 0.0
    z_min, z_max = (float(v) for v in representation_range(tau, t_d, T))
    z = jnp.array([2.5, z_max, 0.5, 0.5 * z_min, -0.3])
    err = kernel_errors(z, tau, t_d, T)
    z_hat_05 = math.exp(-math.ceil(-10 * math.log(0.5)) / 10)
    np.testing.assert_allclose(err["max"], [2.5 - z_max, 0, 0, 0, 0], atol=1e-7)
    # z = -0.3 is 0 under both the kernel and the ReLU it stands for: no error
    np.testing.assert_allclose(err["min"], [0, 0, 0, 0.5 * z_min, 0], atol=1e-7)
    np.testing.assert_allclose(err["precision"], [0, 0, 0.5 - z_hat_05, 0, 0], atol=1e-6)
    # the precision error never exceeds the largest quantisation step, Eq. 13
    zs = jnp.linspace(z_min, z_max, 5001)
    worst = float(kernel_errors(zs, tau, t_d, T)["precision"].max())
    assert 0 < worst <= float(max_precision_error(tau, t_d)) + 1e-7


def test_max_precision_error_eq13():
    assert float(max_precision_error(10.0, 0.0)) == pytest.approx(1 - math.exp(-0.1))
    assert float(max_precision_error(5.0, 2.0)) == pytest.approx(math.exp(0.4) - math.exp(0.2))
