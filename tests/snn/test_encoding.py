"""Signed Poisson encoder (Appendix B; the authors' PoissonGen), direct encoder, readout."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax import (
    direct_encode,
    frames_encode,
    poisson_encode,
    readout,
    readout_steps,
    sequential_encode,
)


@pytest.mark.parametrize("scale", [2.0, 1.0])
def test_poisson_rate_is_min_abs_x_over_scale_with_sign(scale):
    x = jnp.array([-3.0, -1.5, -0.4, 0.0, 0.3, 1.0, 1.9, 2.5])
    steps = 20000
    s = np.asarray(poisson_encode(jax.random.key(0), x, steps, scale=scale))
    assert s.shape == (steps, 8)
    assert set(np.unique(s)) <= {-1.0, 0.0, 1.0}
    p = np.minimum(np.abs(np.asarray(x)) / scale, 1.0)
    rate = np.abs(s).mean(axis=0)
    # 5 binomial standard errors (plus a floor for p in {0, 1}).
    tol = 5 * np.sqrt(p * (1 - p) / steps) + 1e-9
    np.testing.assert_array_less(np.abs(rate - p), tol + 1e-12)
    signs = np.sign(np.asarray(x))
    fired = s != 0
    np.testing.assert_array_equal(s[fired], np.broadcast_to(signs, s.shape)[fired])
    assert not fired[:, 3].any()  # x = 0 never fires


def test_poisson_is_fresh_every_step_and_keyed():
    x = jnp.full((4, 4), 1.0)  # p = 0.5
    a = np.asarray(poisson_encode(jax.random.key(1), x, 400))
    # Independent steps: the lag-1 correlation of one pixel's train is near 0.
    flat = a.reshape(400, -1)
    corr = np.mean([np.corrcoef(flat[:-1, i], flat[1:, i])[0, 1] for i in range(16)])
    assert abs(corr) < 0.05
    assert (a[0] != a[1]).any()
    np.testing.assert_array_equal(a, poisson_encode(jax.random.key(1), x, 400))
    assert (a != np.asarray(poisson_encode(jax.random.key(2), x, 400))).any()


def test_poisson_shape_and_errors():
    s = poisson_encode(jax.random.key(0), jnp.zeros((2, 8, 8, 3)), 5)
    assert s.shape == (5, 2, 8, 8, 3) and s.dtype == jnp.float32
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        poisson_encode(jax.random.key(0), jnp.zeros(3), 0)
    with pytest.raises(ValueError, match="scale must be > 0"):
        poisson_encode(jax.random.key(0), jnp.zeros(3), 2, scale=0.0)


def test_direct_encode_repeats_input():
    x = jnp.arange(6.0).reshape(2, 3)
    s = direct_encode(x, 4)
    assert s.shape == (4, 2, 3)
    for t in range(4):
        np.testing.assert_array_equal(s[t], x)


def test_readout_is_mean_over_steps_of_w_o():
    rng = np.random.default_rng(0)
    spikes = (rng.random((7, 3, 5)) < 0.3).astype(np.float32)
    kernel = rng.normal(size=(5, 4)).astype(np.float32)
    expected = sum(spikes[t] @ kernel for t in range(7)) / 7  # accumulate, then divide by T
    np.testing.assert_allclose(
        readout(jnp.asarray(spikes), jnp.asarray(kernel)), expected, rtol=1e-5
    )
    with pytest.raises(AssertionError, match=r"spikes \[T, B, F\]"):
        readout(jnp.zeros((3, 5)), jnp.zeros((5, 4)))
    with pytest.raises(AssertionError, match=r"kernel \[F, classes\]"):
        readout(jnp.zeros((3, 2, 5)), jnp.zeros((6, 4)))


def test_sequential_encode_presents_one_value_per_step():
    x = jnp.arange(12.0).reshape(3, 4)  # 3 samples of 4 values
    s = sequential_encode(x)
    assert s.shape == (4, 3, 1)
    for t in range(4):
        np.testing.assert_array_equal(s[t, :, 0], x[:, t])
    with pytest.raises(ValueError, match=r"need \[B, L\]"):
        sequential_encode(jnp.zeros((2, 3, 4)))


def test_frames_encode_presents_frame_t_at_step_t():
    x = np.arange(2 * 3 * 4 * 4 * 2, dtype=np.uint16).reshape(2, 3, 4, 4, 2)  # [B, T, H, W, C]
    s = frames_encode(x, 3)
    assert s.shape == (3, 2, 4, 4, 2) and s.dtype == jnp.float32
    for t in range(3):
        np.testing.assert_array_equal(s[t], x[:, t])  # the counts as they are
    with pytest.raises(ValueError, match=r"T = num_steps = 4, got shape \(2, 3, 4, 4, 2\)"):
        frames_encode(x, 4)


def test_readout_steps_are_w_o_t():
    rng = np.random.default_rng(1)
    spikes = (rng.random((4, 3, 5)) < 0.4).astype(np.float32)
    kernel = rng.normal(size=(5, 2)).astype(np.float32)
    steps = readout_steps(jnp.asarray(spikes), jnp.asarray(kernel))
    for t in range(4):
        np.testing.assert_allclose(steps[t], spikes[t] @ kernel, rtol=1e-6)
    np.testing.assert_allclose(
        steps.mean(0), readout(jnp.asarray(spikes), jnp.asarray(kernel)), rtol=1e-5
    )


def test_poisson_warns_once_on_raw_pixels(monkeypatch):
    from bntt_jax import encoding

    monkeypatch.setattr(encoding, "_warned_range", [False])
    raw = jnp.asarray(np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3)), jnp.float32)
    with pytest.warns(encoding.InputRangeWarning, match=r"max \|x\| is 25[0-9].*raw 0–255"):
        spikes = poisson_encode(jax.random.key(0), raw, 5)
    assert float(jnp.mean(jnp.abs(spikes))) > 0.95  # what the warning is about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        poisson_encode(jax.random.key(1), raw, 5)  # once per process
    monkeypatch.setattr(encoding, "_warned_range", [False])
    normalised = (raw / 255 - 0.47) / 0.2  # within ±2.7: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        poisson_encode(jax.random.key(2), normalised, 5)


@pytest.mark.parametrize("encode", ["poisson", "direct", "sequential", "frames"])
def test_encoders_refuse_non_finite_input(encode):
    x = jnp.zeros((3, 5)).at[1, 2].set(jnp.nan)
    call = {
        "poisson": lambda: poisson_encode(jax.random.key(0), x, 4),
        "direct": lambda: direct_encode(x, 4),
        "sequential": lambda: sequential_encode(x),
        "frames": lambda: frames_encode(x[..., None], 5),
    }[encode]
    with pytest.raises(ValueError, match=r"x holds 1 NaN and 0 Inf values .*index \(1, 2[,)]"):
        call()
