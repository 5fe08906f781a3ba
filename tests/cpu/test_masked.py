"""The input gradient computed only on the surrogate's support (:mod:`bntt_jax.cpu.masked`).

A convolution after LIF neurons needs its input gradient only where their surrogate (Eq. 8)
is non-zero. The compiled kernel must equal XLA's input gradient there, be exactly zero
elsewhere, select exactly the elements where the surrogate is non-zero (boundaries, NaN and
infinities included), and leave every parameter gradient of a whole network unchanged.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bntt_jax as bj
from bntt_jax import layers, models
from bntt_jax.cpu import choice, convolution, masked
from bntt_jax.cpu.convolution import conv3x3, conv3x3_reference
from bntt_jax.spike import surrogate_grad
from tests.helpers.choices import targets_with


def _reference_input_grad(g, kernel):
    x = jnp.zeros(g.shape[:3] + kernel.shape[2:3], g.dtype)
    return jax.vjp(conv3x3_reference, x, kernel)[1](g)[0]


@pytest.mark.parametrize(
    "shape",
    [
        (3, 6, 17, 20, 21),  # [N, H, W, C, D]: C, D not whole vectors; tiles across rows
        (2, 5, 5, 64, 64),  # one partial tile per image
        (1, 9, 9, 16, 8),  # 81 pixels: two whole tiles and a partial one
    ],
)
@pytest.mark.kernels
def test_it_is_the_input_gradient_on_the_support_and_zero_off_it(shape):
    n, h, w, c, d = shape
    rng = np.random.default_rng(sum(shape))
    with jax.enable_x64(True):
        for dtype, tol in ((jnp.float64, 1e-12), (jnp.float32, 2e-6)):
            g = jnp.asarray(rng.normal(size=(n, h, w, d)), dtype)
            kernel = jnp.asarray(rng.normal(size=(3, 3, c, d)), dtype)
            u = jnp.asarray(rng.normal(size=(n, h, w, c)) * 1.5 + 0.5, dtype)
            support = masked.in_support(u, 0.8, 0.9)
            assert 0.2 < float(support.mean()) < 0.8
            got = masked.conv_input_grad_masked(g, kernel, u, threshold=0.8, width=0.9)
            assert got.dtype == dtype
            ref = _reference_input_grad(g, kernel)
            scale = float(jnp.max(jnp.abs(ref)))
            np.testing.assert_allclose(got, jnp.where(support, ref, 0), rtol=0, atol=tol * scale)
            assert bool(jnp.all(jnp.where(support, True, got == 0)))


@pytest.mark.kernels
@pytest.mark.parametrize("rows", [(4, 8), (5, 7), (3, 64)])  # 32 rows per image, 1, 32
def test_the_dense_layers_input_gradient_on_the_support_and_zero_off_it(rows):
    rng = np.random.default_rng(sum(rows))
    with jax.enable_x64(True):
        for dtype, tol in ((jnp.float64, 1e-12), (jnp.float32, 2e-6)):
            g = jnp.asarray(rng.normal(size=(*rows, 40)), dtype)  # D = 40: padded to vectors
            kernel = jnp.asarray(rng.normal(size=(19, 40)), dtype)
            u = jnp.asarray(rng.normal(size=(*rows, 19)) * 1.5 + 0.5, dtype)
            support = masked.in_support(u, 1.0, 1.0)
            got = masked.dense_input_grad_masked(g, kernel, u, threshold=1.0, width=1.0)
            ref = np.asarray(g, np.float64) @ np.asarray(kernel, np.float64).T
            scale = float(np.max(np.abs(ref)))
            np.testing.assert_allclose(got, np.where(support, ref, 0), rtol=0, atol=tol * scale)
            assert bool(jnp.all(jnp.where(support, True, got == 0)))


@pytest.mark.kernels
def test_the_support_is_exactly_where_the_surrogate_is_non_zero():
    """Boundary values (|u/θ − 1|/w = 1 and the floats next to it), NaN and infinities: the
    kernel computes an element iff Eq. 8's surrogate is non-zero there."""
    threshold, width = 0.7, 0.5
    with jax.enable_x64(True):
        for dtype in (jnp.float32, jnp.float64):
            lo, hi = (
                np.asarray(v, dtype) for v in (threshold * (1 - width), threshold * (1 + width))
            )
            near = [np.nextafter(v, t, dtype=dtype) for v in (lo, hi) for t in (-np.inf, np.inf)]
            values = np.array(
                [lo, hi, *near, 0, threshold, 2 * threshold, np.nan, np.inf, -np.inf], dtype
            )
            u = jnp.asarray(np.resize(values, (2, 4, 5, 33)))
            ones = jnp.ones((2, 4, 5, 16), dtype)  # every dot product is positive
            dx = masked.conv_input_grad_masked(
                ones, jnp.ones((3, 3, 33, 16), dtype), u, threshold=threshold, width=width
            )
            surrogate = surrogate_grad(u, threshold, 0.3, width)
            np.testing.assert_array_equal(dx != 0, surrogate > 0)
            np.testing.assert_array_equal(masked.in_support(u, threshold, width), surrogate > 0)
            assert 0 < int(jnp.sum(dx != 0)) < u.size


def _network_gradient(cfg, variables, x):
    def loss(params):
        (logits, counts, _), stats = models.SpikingNetwork(cfg).apply(
            {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
        )
        return jnp.sum(logits * jnp.arange(logits.shape[-1])), (counts, stats)

    grad = jax.jit(jax.grad(loss, has_aux=True))
    return grad.lower(variables["params"]).as_text(), grad(variables["params"])


NETWORKS = [  # masked: conv2 and conv4 (conv7's 2×2 maps keep im2col); the MLP's fc2
    (bj.NetworkConfig(arch="vgg9", num_steps=4, img_size=8), (4, 3, 8, 8, 3), "conv", 2),
    (
        bj.NetworkConfig(arch="mlp", num_steps=5, in_features=10, hidden=(24, 32)),
        (5, 7, 10),
        "dense",
        1,
    ),
]


@pytest.mark.parametrize(("cfg", "shape", "layer", "masked_layers"), NETWORKS)
def test_a_network_has_the_same_gradients_with_either_input_gradient(
    retrace, monkeypatch, cfg, shape, layer, masked_layers
):
    """VGG9 (T = 4, 8×8 images) and an MLP in float64: the masked kernel (forced: the dense
    input gradient would return NaN), the dense one (forced likewise), and the separate layers,
    which pass no membrane, give the same parameter gradients, spike counts and statistics."""
    with jax.enable_x64(True):
        variables = jax.tree.map(
            lambda a: a.astype(jnp.float64), bj.init(jax.random.key(0), cfg).variables()
        )
        x = jnp.asarray(np.random.default_rng(1).normal(size=shape))

        def nan(g, kernel, membrane, **kwargs):
            return jnp.full(membrane.shape, jnp.nan, g.dtype)

        retrace(choice, "TARGETS", targets_with(masked_rate=1.0))
        retrace(masked, f"_{layer}_dense_dx", nan)
        hlo, on_support = _network_gradient(cfg, variables, x)
        assert hlo.count("bntt_conv_input_grad_masked") == masked_layers
        monkeypatch.undo()
        retrace(choice, "TARGETS", targets_with(masked_rate=-1.0))
        retrace(masked, f"_{layer}_masked_dx", nan)
        dense = _network_gradient(cfg, variables, x)[1]
        monkeypatch.undo()
        retrace(models, "fused_training", lambda config: False)
        hlo, separate = _network_gradient(cfg, variables, x)
        assert "bntt_conv_input_grad_masked" not in hlo
    assert all(int(c.sum()) > 0 for c in separate[1][0].values())
    for ours in (on_support, dense):
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(separate), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_without_the_compiled_code_it_is_the_convolutions_own_gradient(retrace):
    retrace(convolution.ffi, "available", lambda: False)
    rng = np.random.default_rng(7)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.integers(0, 2, (3, 6, 6, 8)).astype(np.float64))
        kernel, g = (
            jnp.asarray(rng.normal(size=(3, 3, 8, 5))),
            jnp.asarray(rng.normal(size=(3, 6, 6, 5))),
        )
        u = jnp.asarray(rng.normal(size=x.shape))
        ours = jax.vjp(lambda x, k: masked.conv3x3_on_support(x, k, u, 1.0, 1.0), x, kernel)
        ref = jax.vjp(conv3x3, x, kernel)
        np.testing.assert_array_equal(ours[0], ref[0])
        for a, b in zip(ours[1](g), ref[1](g), strict=True):
            np.testing.assert_array_equal(a, b)


def test_spiking_conv_checks_the_support_and_folds_it_like_its_input():
    rng = np.random.default_rng(8)
    x = jnp.asarray(rng.integers(0, 2, (3, 2, 5, 5, 4)).astype(np.float32))
    conv = layers.SpikingConv(6)
    params = conv.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="support's membrane must have the input's shape"):
        conv.apply(params, x, support=(jnp.zeros((3, 2, 5, 5, 3)), 1.0, 1.0))
    u = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    np.testing.assert_array_equal(
        conv.apply(params, x, support=(u, 1.0, 1.0)), conv.apply(params, x)
    )
    for batch_major in (False, True):  # both folds pair each input with its own membrane
        pairs = layers.fold_time(lambda v, m: v * 10 + m, x, u, batch_major=batch_major)
        np.testing.assert_array_equal(pairs, x * 10 + u)
