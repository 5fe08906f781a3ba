"""BNTT (Eq. 9–11, Algorithm 1) and the baseline normalisations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax import (
    TemporalNorm,
    bntt_batch_stats,
    bntt_normalize,
    layer_norm,
    running_stats_update,
)

EPS = 1e-4


def bntt_train(x, gamma_t, eps=EPS):
    mean, var = bntt_batch_stats(x)
    return bntt_normalize(x, gamma_t, mean, var, eps)


def make_case(seed=0, shape=(4, 6, 3, 3, 5), dtype=np.float32):
    """Per-step inputs with different means and scales, γᵗ away from 1, an upstream cotangent."""
    rng = np.random.default_rng(seed)
    t, c = shape[0], shape[-1]
    loc = rng.normal(0, 2, size=(t, 1, 1, 1, c))
    scale = rng.uniform(0.5, 3, size=(t, 1, 1, 1, c))
    x = (loc + scale * rng.normal(size=shape)).astype(dtype)
    gamma_t = rng.uniform(0.2, 2.0, size=(t, c)).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    return x, gamma_t, g


def eq10_numpy(x, gamma_t, g, eps=EPS):
    """∂L/∂x of Eq. 10 with ∂L/∂x̂ = γᵗ·g, written per step t and channel c with loops."""
    t_len, b = x.shape[:2]
    out = np.zeros_like(x, dtype=np.float64)
    for t in range(t_len):
        for c in range(x.shape[-1]):
            xs = x[t, ..., c].astype(np.float64).ravel()  # the m values of (t, c)
            m = xs.size
            mu, var = xs.mean(), xs.var()
            x_hat = (xs - mu) / np.sqrt(var + eps)
            d_xhat = gamma_t[t, c] * g[t, ..., c].astype(np.float64).ravel()
            dx = (m * d_xhat - d_xhat.sum() - x_hat * np.sum(d_xhat * x_hat)) / (
                m * np.sqrt(var + eps)
            )
            out[t, ..., c] = dx.reshape(x[t, ..., c].shape)
    return out


def test_forward_is_eq9_per_step():
    x, gamma_t, _ = make_case()
    y = np.asarray(bntt_train(jnp.asarray(x), jnp.asarray(gamma_t)))
    for t in range(x.shape[0]):  # each step alone, with its own statistics
        xt = x[t].astype(np.float64)
        mu, var = xt.mean(axis=(0, 1, 2)), xt.var(axis=(0, 1, 2))
        np.testing.assert_allclose(
            y[t], gamma_t[t] * (xt - mu) / np.sqrt(var + EPS), rtol=1e-4, atol=1e-5
        )


def test_steps_do_not_mix():
    # Changing the input of step 2 changes the output of step 2 only.
    x, gamma_t, _ = make_case()
    y = bntt_train(jnp.asarray(x), jnp.asarray(gamma_t))
    x2 = x.copy()
    x2[2] = 10 * x2[2] + 3
    y2 = bntt_train(jnp.asarray(x2), jnp.asarray(gamma_t))
    np.testing.assert_array_equal(np.delete(np.asarray(y), 2, 0), np.delete(np.asarray(y2), 2, 0))
    assert not np.allclose(y[2], y2[2])


def test_backward_matches_eq10_closed_form():
    x, gamma_t, g = make_case(1)
    grad = jax.grad(lambda v: jnp.sum(jnp.asarray(g) * bntt_train(v, jnp.asarray(gamma_t))))(
        jnp.asarray(x)
    )
    np.testing.assert_allclose(grad, eq10_numpy(x, gamma_t, g), rtol=2e-3, atol=2e-5)


def test_gamma_gradient_matches_eq11():
    # Eq. 11: ∂L/∂γᵗ = Σ_k ∂L/∂u_k · x̂_k (here ∂L/∂u = g), summed per channel.
    x, gamma_t, g = make_case(2)
    grad = jax.grad(lambda gm: jnp.sum(jnp.asarray(g) * bntt_train(jnp.asarray(x), gm)))(
        jnp.asarray(gamma_t)
    )
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=(1, 2, 3), keepdims=True)
    var = x64.var(axis=(1, 2, 3), keepdims=True)
    x_hat = (x64 - mu) / np.sqrt(var + EPS)
    np.testing.assert_allclose(grad, np.sum(g * x_hat, axis=(1, 2, 3)), rtol=1e-4, atol=1e-5)


def test_backward_matches_finite_differences():
    with jax.enable_x64(True):
        x, gamma_t, g = make_case(3, shape=(3, 4, 2, 2, 3), dtype=np.float64)
        f = lambda v: jnp.sum(jnp.asarray(g) * bntt_train(v, jnp.asarray(gamma_t)))  # noqa: E731
        grad = np.asarray(jax.grad(f)(jnp.asarray(x)))
        h = 1e-6
        numeric = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            plus, minus = x.copy(), x.copy()
            plus[idx] += h
            minus[idx] -= h
            numeric[idx] = (float(f(jnp.asarray(plus))) - float(f(jnp.asarray(minus)))) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_all_zero_step_is_finite():
    # Deep layers see no spikes at t = 0: σ = 0 there. Values and gradients must stay finite.
    x, gamma_t, g = make_case(4)
    x[0] = 0.0
    xj, gj = jnp.asarray(x), jnp.asarray(gamma_t)
    y = bntt_train(xj, gj)
    np.testing.assert_array_equal(y[0], 0.0)
    loss = lambda v, gm: jnp.sum(jnp.asarray(g) * bntt_train(v, gm))  # noqa: E731
    dx, dgamma = jax.grad(loss, argnums=(0, 1))(xj, gj)
    assert np.isfinite(np.asarray(dx)).all() and np.isfinite(np.asarray(dgamma)).all()
    # With σ = 0, x̂ = 0 and Eq. 10 reduces to (g·γ − mean(g·γ)) / sqrt(ε).
    d_xhat = gamma_t[0] * g[0]
    expected = (d_xhat - d_xhat.mean(axis=(0, 1, 2))) / np.sqrt(EPS)
    np.testing.assert_allclose(dx[0], expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(dgamma[0], 0.0, atol=1e-6)


def test_running_update_is_pytorch_ema_with_unbiased_variance():
    # Three training batches through the Flax module; expected values by hand, step by step.
    num_steps, t_used, momentum = 5, 3, 0.1
    module = TemporalNorm("bntt", num_steps, EPS, momentum)
    variables = module.init(jax.random.key(0), jnp.zeros((1, 2, 4)), train=False)
    stats = variables["batch_stats"]
    mean_ref = np.zeros((num_steps, 4))
    var_ref = np.ones((num_steps, 4))
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = (rng.normal(size=(t_used, 6, 4)) * rng.uniform(1, 3, (t_used, 1, 4)) + 1).astype(
            np.float32
        )
        _, upd = module.apply(
            {**variables, "batch_stats": stats}, jnp.asarray(x), train=True, mutable=["batch_stats"]
        )
        stats = upd["batch_stats"]
        n = x.shape[1]
        for t in range(t_used):
            mean_ref[t] = 0.9 * mean_ref[t] + 0.1 * x[t].mean(0)
            var_ref[t] = 0.9 * var_ref[t] + 0.1 * x[t].var(0) * n / (n - 1)
    np.testing.assert_allclose(stats["mean"], mean_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["var"], var_ref, rtol=1e-5, atol=1e-6)
    # Steps beyond the T that ran keep their initial statistics.
    np.testing.assert_array_equal(stats["mean"][t_used:], 0.0)
    np.testing.assert_array_equal(stats["var"][t_used:], 1.0)


def test_running_stats_update_function():
    mean, var = running_stats_update(
        jnp.array([1.0]), jnp.array([2.0]), jnp.array([3.0]), jnp.array([4.0]), count=5
    )
    np.testing.assert_allclose(mean, [0.9 * 1 + 0.1 * 3])
    np.testing.assert_allclose(var, [0.9 * 2 + 0.1 * 4 * 5 / 4])
    with pytest.raises(ValueError, match="at least 2"):
        running_stats_update(jnp.zeros(1), jnp.ones(1), jnp.zeros(1), jnp.ones(1), count=1)


def test_eval_uses_running_stats_of_the_same_step():
    num_steps = 4
    module = TemporalNorm("bntt", num_steps, EPS, 0.1)
    variables = module.init(jax.random.key(0), jnp.zeros((1, 2, 3)), train=False)
    rng = np.random.default_rng(6)
    mean = rng.normal(size=(num_steps, 3)).astype(np.float32)
    var = rng.uniform(0.5, 2, size=(num_steps, 3)).astype(np.float32)
    gamma_t = rng.uniform(0.5, 2, size=(num_steps, 3)).astype(np.float32)
    variables = {"params": {"gamma_t": gamma_t}, "batch_stats": {"mean": mean, "var": var}}
    x = rng.normal(size=(3, 5, 3)).astype(np.float32)  # T = 3 < num_steps: rows 0..2
    y = module.apply(variables, jnp.asarray(x), train=False)
    expected = gamma_t[:3, None] * (x - mean[:3, None]) / np.sqrt(var[:3, None] + EPS)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_shared_bn_is_one_bn_module_reused_at_every_step():
    # Training: each step normalised by its own batch statistics, one γ for all steps, and
    # the running averages updated once per step in step order. Evaluation: one set of
    # running statistics for every step.
    module = TemporalNorm("bn", 4, EPS, 0.1)
    x, _, _ = make_case(7, shape=(4, 3, 2, 2, 5))
    variables = module.init(jax.random.key(0), jnp.zeros((1, 2, 2, 2, 5)), train=False)
    gamma = np.linspace(0.5, 2.0, 5).astype(np.float32)
    variables = {"params": {"gamma": gamma}, "batch_stats": variables["batch_stats"]}
    y, upd = module.apply(variables, jnp.asarray(x), train=True, mutable=["batch_stats"])
    x64 = x.astype(np.float64)
    mean_ref, var_ref = np.zeros(5), np.ones(5)
    n = x[0, ..., 0].size
    for t in range(4):
        mu, var = x64[t].mean(axis=(0, 1, 2)), x64[t].var(axis=(0, 1, 2))
        np.testing.assert_allclose(
            y[t], gamma * (x64[t] - mu) / np.sqrt(var + EPS), rtol=1e-4, atol=1e-5
        )
        mean_ref = 0.9 * mean_ref + 0.1 * mu
        var_ref = 0.9 * var_ref + 0.1 * var * n / (n - 1)
    np.testing.assert_allclose(upd["batch_stats"]["mean"], mean_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(upd["batch_stats"]["var"], var_ref, rtol=1e-5)
    y_eval = module.apply({**variables, "batch_stats": upd["batch_stats"]}, jnp.asarray(x), False)
    np.testing.assert_allclose(
        y_eval, gamma * (x64 - mean_ref) / np.sqrt(var_ref + EPS), rtol=1e-4, atol=1e-5
    )


def test_layer_norm_per_sample_and_step():
    x, _, _ = make_case(8, shape=(3, 4, 2, 2, 5))
    gamma = np.linspace(0.5, 1.5, 5).astype(np.float32)
    y = layer_norm(jnp.asarray(x), jnp.asarray(gamma))
    for t, b in np.ndindex(3, 4):
        v = x[t, b].astype(np.float64)
        np.testing.assert_allclose(
            y[t, b], gamma * (v - v.mean()) / np.sqrt(v.var() + EPS), rtol=1e-4, atol=1e-5
        )


def test_normalize_shape_errors():
    x = jnp.zeros((3, 2, 4))
    with pytest.raises(AssertionError, match=r"gamma_t, mean_t, var_t must have shape \(3, 4\)"):
        bntt_normalize(x, jnp.ones((2, 4)), jnp.zeros((3, 4)), jnp.ones((3, 4)))


def test_float32_statistics_do_not_cap_float64_precision():
    # Evaluation with float32 running statistics and float64 activations: the scale
    # γ/sqrt(σ²+ε) must be computed in float64 (found by benchmarks.equivalence, where a
    # float32 scale moved a membrane potential by 2e-8 across the threshold).
    rng = np.random.default_rng(9)
    with jax.enable_x64(True):
        x = rng.normal(size=(3, 4, 5))
        mean = rng.normal(size=(3, 5)).astype(np.float32)
        var = rng.uniform(0.5, 2, size=(3, 5)).astype(np.float32)
        gamma = rng.uniform(0.5, 2, size=(3, 5)).astype(np.float32)
        y = bntt_normalize(jnp.asarray(x), jnp.asarray(gamma), jnp.asarray(mean), jnp.asarray(var))
        assert y.dtype == jnp.float64
    m, v, g = (a.astype(np.float64)[:, None] for a in (mean, var, gamma))
    np.testing.assert_allclose(y, g * (x - m) / np.sqrt(v + EPS), rtol=1e-13)


def test_tdbn_pools_time_batch_and_space_and_scales_to_the_threshold():
    # Zheng et al. 2020: y = γ·α·V_th·(x − μ)/√(σ² + ε) + β, μ and σ² over (T, B, H, W) per
    # channel; running statistics updated once per call (unbiased variance); evaluation uses
    # them. Here V_th = θ = 1.5, α = 1.
    module = TemporalNorm("tdbn", 4, EPS, 0.1, threshold=1.5)
    x, _, _ = make_case(8, shape=(4, 3, 2, 2, 5))
    rng = np.random.default_rng(8)
    gamma, beta = rng.uniform(0.5, 2, 5).astype(np.float32), rng.normal(size=5).astype(np.float32)
    init = module.init(jax.random.key(0), jnp.zeros((1, 2, 2, 2, 5)), train=False)
    assert set(init["params"]) == {"gamma", "beta"}  # γ and β, no per-step parameters
    variables = {"params": {"gamma": gamma, "beta": beta}, "batch_stats": init["batch_stats"]}
    y, upd = module.apply(variables, jnp.asarray(x), train=True, mutable=["batch_stats"])
    x64 = x.astype(np.float64)
    mu, var = x64.mean(axis=(0, 1, 2, 3)), x64.var(axis=(0, 1, 2, 3))
    np.testing.assert_allclose(
        y, gamma * 1.5 * (x64 - mu) / np.sqrt(var + EPS) + beta, rtol=1e-4, atol=1e-5
    )
    n = x[..., 0].size  # T·B·H·W values per channel
    np.testing.assert_allclose(upd["batch_stats"]["mean"], 0.1 * mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(upd["batch_stats"]["var"], 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)
    stats = upd["batch_stats"]
    y_eval = module.apply(
        {"params": variables["params"], "batch_stats": stats}, jnp.asarray(x), train=False
    )
    m, v = np.asarray(stats["mean"], np.float64), np.asarray(stats["var"], np.float64)
    np.testing.assert_allclose(
        y_eval, gamma * 1.5 * (x64 - m) / np.sqrt(v + EPS) + beta, rtol=1e-4, atol=1e-5
    )
