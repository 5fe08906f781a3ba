"""The Linen layers of :mod:`bntt_jax.layers`: a VGG9 written by hand from them computes what the
preset computes (forward, gradients, running statistics), a network of them trains, and the
LIF options (hard reset, surrogate width) against hand-worked values."""

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bntt_jax as bj
from bntt_jax.layers import (
    LIF,
    PoissonEncoder,
    Readout,
    SpikingConv,
    SpikingDense,
    TemporalNorm,
    avg_pool2,
)
from tests.helpers.reference import randomize_norm

T = 4


class HandVGG9(nn.Module):
    """VGG9 as a user writes it (BNTT paper Sec. 4; the authors' model.py): 3×3 convolutions
    64-64-P-128-128-P-256-256-256-P, a 1024 dense layer, BNTT and LIF after each, the
    accumulating readout. Layer names as the preset's, so the same variables apply."""

    num_steps: int
    leak: float = 0.95

    @nn.compact
    def __call__(self, spikes, train=False):
        def block(layer, name, x):
            x = layer(x)
            x = TemporalNorm("bntt", self.num_steps, name=f"norm_{name}")(x, train)
            return LIF(leak=self.leak)(x)

        x = spikes
        index = 0
        for width, pool in (
            (64, False),
            (64, True),
            (128, False),
            (128, True),
            (256, False),
            (256, False),
            (256, True),
        ):
            index += 1
            x = block(SpikingConv(width, name=f"conv{index}"), f"conv{index}", x)
            if pool:
                x = avg_pool2(x)
        x = block(SpikingDense(1024, name="fc1"), "fc1", x)
        return Readout(10, name="fc2")(x)[0]


@pytest.fixture(scope="module")
def vgg9_case():
    cfg = bj.NetworkConfig(arch="vgg9", num_steps=T, img_size=8, in_channels=3)
    net = randomize_norm(bj.init(1, cfg), seed=2)
    x = jax.random.normal(jax.random.key(3), (4, 8, 8, 3)) * 1.2
    spikes = bj.poisson_encode(jax.random.key(4), x, T)
    return net, spikes, jnp.arange(4) % 10


def _loss(apply, variables, spikes, labels):
    logits, updates = apply(variables, spikes)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (logits, updates["batch_stats"])


@partial(jax.jit, static_argnums=0)
def _grads(apply, variables, spikes, labels):
    return jax.value_and_grad(partial(_loss, apply), has_aux=True)(variables, spikes, labels)


def _hand(variables, spikes):
    return HandVGG9(T).apply(variables, spikes, train=True, mutable=["batch_stats"])


def _preset(config, variables, spikes):
    out, updates = bj.SpikingNetwork(config).apply(
        variables, spikes, train=True, mutable=["batch_stats"]
    )
    return out[0], updates


def test_hand_written_vgg9_equals_the_preset(vgg9_case, monkeypatch):
    net, spikes, labels = vgg9_case
    # Bit-equal to the preset's separate normalisation and LIF layers; its fused training
    # layer equals them up to summation order (tests/cpu/test_fused_train.py).
    monkeypatch.setattr(bj.models, "fused_training", lambda config: False)
    variables = net.variables()
    (loss, (logits, stats)), grads = _grads(_hand, variables, spikes, labels)
    (ref_loss, (ref_logits, ref_stats)), ref_grads = _grads(
        partial(_preset, net.config), variables, spikes, labels
    )
    # the same parameter tree: the hand-written network's init has the preset's shapes
    shapes = jax.eval_shape(lambda: HandVGG9(T).init(jax.random.key(0), spikes))
    assert jax.tree.map(lambda a: a.shape, shapes) == jax.tree.map(jnp.shape, variables)
    assert float(jnp.abs(ref_logits).max()) > 0  # not degenerate: spikes reach the readout
    np.testing.assert_array_equal(logits, ref_logits)
    np.testing.assert_array_equal(loss, ref_loss)
    for a, b in zip(jax.tree.leaves(stats), jax.tree.leaves(ref_stats), strict=True):
        np.testing.assert_array_equal(a, b)
    leaves = jax.tree_util.tree_leaves_with_path(grads["params"])
    for (path, a), b in zip(leaves, jax.tree.leaves(ref_grads["params"]), strict=True):
        assert float(jnp.abs(b).max()) > 0, f"no gradient reaches {jax.tree_util.keystr(path)}"
        np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))


def test_hand_written_vgg9_equals_the_preset_in_evaluation(vgg9_case):
    net, spikes, _ = vgg9_case
    logits = HandVGG9(T).apply(net.variables(), spikes)
    ref = bj.simulate(net, spikes)  # on CPU: the fused evaluation layers
    np.testing.assert_allclose(logits, ref.logits, rtol=1e-5, atol=1e-6)


class DigitsNet(nn.Module):
    """A small network of the layers, with hard reset and a wider surrogate."""

    @nn.compact
    def __call__(self, x, train=False):
        spikes = PoissonEncoder(num_steps=8)(x)
        h = SpikingDense(128)(spikes)
        h = TemporalNorm("bntt", num_steps=8)(h, train)
        h = LIF(leak=0.9, reset="hard", surrogate_width=0.5)(h)
        return Readout(10)(h)[0]


def test_a_network_of_the_layers_trains():
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = jnp.asarray(images / 16.0 * 2.0 - 1.0, jnp.float32)
    y = jnp.asarray(labels)
    x_train, y_train, x_test, y_test = x[:1500], y[:1500], x[1500:], y[1500:]
    model = DigitsNet()
    variables = model.init({"params": jax.random.key(0), "poisson": jax.random.key(1)}, x[:2])
    params, stats = variables["params"], variables["batch_stats"]
    optimizer = optax.adam(3e-3)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, stats, opt_state, xb, yb, key):
        def loss_fn(params):
            logits, updates = model.apply(
                {"params": params, "batch_stats": stats},
                xb,
                train=True,
                mutable=["batch_stats"],
                rngs={"poisson": key},
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
            return loss, updates["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    def accuracy(params, stats):
        logits = model.apply(
            {"params": params, "batch_stats": stats}, x_test, rngs={"poisson": jax.random.key(9)}
        )
        return float(jnp.mean(jnp.argmax(logits, -1) == y_test))

    untrained = accuracy(params, stats)
    key = jax.random.key(2)
    for _ in range(4):
        for i in range(0, 1500, 50):
            key, sub = jax.random.split(key)
            params, stats, opt_state, _ = step(
                params, stats, opt_state, x_train[i : i + 50], y_train[i : i + 50], sub
            )
    # chance is 0.1; four epochs of 30 batches reach about 0.83 on the 297 held-out digits
    assert untrained < 0.3 and accuracy(params, stats) > 0.75, (untrained, accuracy(params, stats))


def test_hard_and_soft_reset_by_hand():
    # λ = 0.5, θ = 1, input 0.8 every step. Soft: u = 0.8, 1.2 (fires, m = 0.2), 0.9,
    # 1.25 (fires, m = 0.25), 0.925. Hard: u = 0.8, 1.2 (fires, m = 0), 0.8, 1.2, 0.8.
    currents = jnp.full((5, 1), 0.8)
    soft, u_soft = LIF(leak=0.5, return_membrane=True).apply({}, currents)
    hard, u_hard = LIF(leak=0.5, reset="hard", return_membrane=True).apply({}, currents)
    np.testing.assert_allclose(u_soft[:, 0], [0.8, 1.2, 0.9, 1.25, 0.925], rtol=1e-6)
    np.testing.assert_array_equal(soft[:, 0], [0, 1, 0, 1, 0])
    np.testing.assert_allclose(u_hard[:, 0], [0.8, 1.2, 0.8, 1.2, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(hard[:, 0], [0, 1, 0, 1, 0])


@pytest.mark.parametrize("width", [1.0, 0.5, 2.0])
def test_surrogate_width_and_scale_against_the_closed_form(width):
    u = jnp.linspace(-1.5, 3.5, 41)
    grad = jax.vmap(jax.grad(lambda v: bj.spike(v, 1.5, 0.7, width)))(u)
    expected = 0.7 * np.maximum(0.0, 1.0 - np.abs(np.asarray(u) / 1.5 - 1.0) / width)
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    # through the layer: one step, no leak history, so ∂o/∂I is the surrogate at u = I
    lif = LIF(leak=0.9, threshold=1.5, surrogate_scale=0.7, surrogate_width=width)
    layer_grad = jax.grad(lambda i: lif.apply({}, i[None]).sum())(u)
    np.testing.assert_allclose(layer_grad, expected, atol=1e-6)


def test_poisson_encoder_rates_and_signs():
    # Appendix B: each step fires with probability min(|x|/2, 1), with the sign of x
    x = jnp.array([-2.5, -1.0, 0.0, 0.5, 1.5])
    spikes = PoissonEncoder(4000).apply({}, x, rngs={"poisson": jax.random.key(5)})
    assert spikes.shape == (4000, 5)
    np.testing.assert_allclose(spikes.mean(0), [-1.0, -0.5, 0.0, 0.25, 0.75], atol=0.03)
    assert set(np.unique(np.asarray(spikes * jnp.sign(x)))) <= {0.0, 1.0}
    other = PoissonEncoder(4000).apply({}, x, rngs={"poisson": jax.random.key(6)})
    assert not np.array_equal(spikes, other)  # the stream's key drives the draw


def test_layers_name_a_wrong_layout():
    with pytest.raises(ValueError, match=r"time-major input \[T, B, \.\.\.\] \(rank 5\)"):
        SpikingConv(4).init(jax.random.key(0), jnp.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="num_steps=6"):
        TemporalNorm("bntt", num_steps=4).init(jax.random.key(0), jnp.zeros((6, 2, 3)), True)
    with pytest.raises(ValueError, match="unknown reset 'zero'"):
        LIF(leak=0.9, reset="zero").apply({}, jnp.zeros((2, 3)))
    with pytest.raises(bj.NetworkConfigError, match="unknown reset"):
        bj.NetworkConfig(reset="hrad")
