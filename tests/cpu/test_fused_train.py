"""The fused training-mode BNTT + LIF layer against XLA's composition of the same equations.

:func:`bntt_jax.layers.bntt_lif` (on CPU :func:`bntt_jax.cpu.fused.bntt_lif_train`) runs the
normalisation (Eq. 9 with the batch statistics of Algorithm 1) and the LIF neurons (Eq. 4,
soft reset) as one compiled pass forward, and the LIF's reverse recurrence (surrogate of
Eq. 8) with the batch norm's per-step sums as one pass backward. Its reference,
:func:`bntt_jax.layers.bntt_lif_reference`, is ``bntt_batch_stats`` → ``bntt_normalize`` →
``lif_scan``, differentiated by JAX: in float64 the two differ only in summation order.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bntt_jax as bj
from bntt_jax import layers, models
from bntt_jax.cpu import ffi, fused
from bntt_jax.layers import TemporalNorm

SHAPES = [
    (6, 3, 5, 4, 20),  # a conv layer: channels not a multiple of a vector, rows of 2048 / 20
    (7, 5, 33),  # a dense layer
    (3, 2, 2100),  # more channels than a block (one row per block)
    (1, 4, 3, 3, 8),  # one step
]


def layer_input(shape, seed):
    """Synaptic input whose normalised values spread over (0, 2θ) and beyond, so that the
    neurons fire, the surrogate is non-zero for part of them and zero for the rest."""
    rng = np.random.default_rng(seed)
    t, c = shape[0], shape[-1]
    y = rng.normal(size=shape) * rng.uniform(0.5, 3.0, (t,) + (1,) * (len(shape) - 2) + (c,))
    gamma = rng.uniform(0.5, 2.5, (t, c))
    return jnp.asarray(y + rng.normal(size=(t,) + (1,) * (len(shape) - 1))), jnp.asarray(gamma)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "options",
    [
        dict(eps=1e-4, leak=0.99, threshold=1.0, alpha=0.3, width=1.0),  # the papers'
        dict(eps=1e-3, leak=0.9, threshold=0.7, alpha=1.0, width=0.5),
    ],
)
@pytest.mark.kernels
def test_values_statistics_and_gradients_equal_xla_in_float64(shape, options):
    assert ffi.usable()
    with jax.enable_x64(True):
        y, gamma = layer_input(shape, seed=sum(shape))
        (spikes, mean, var), vjp = jax.vjp(
            lambda y, g: fused.bntt_lif_train(y, g, **options), y, gamma
        )
        (spikes_ref, mean_ref, var_ref), vjp_ref = jax.vjp(
            lambda y, g: layers.bntt_lif_reference(y, g, **options), y, gamma
        )
        rate = float(spikes.mean())
        assert 0.05 < rate < 0.6, rate  # the neurons fire, and not everywhere
        np.testing.assert_array_equal(np.asarray(spikes), np.asarray(spikes_ref))
        np.testing.assert_allclose(mean, mean_ref, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(var, var_ref, rtol=1e-13, atol=1e-13)
        dspikes = jnp.asarray(np.random.default_rng(3).normal(size=shape))
        zeros = jnp.zeros(gamma.shape)
        dy, dgamma = vjp((dspikes, zeros, zeros))
        dy_ref, dgamma_ref = vjp_ref((dspikes, zeros, zeros))
        assert float(jnp.abs(dy_ref).max()) > 0.1 and float(jnp.abs(dgamma_ref).max()) > 0.1
        np.testing.assert_allclose(dy, dy_ref, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(dgamma, dgamma_ref, rtol=1e-11, atol=1e-11)


def test_the_batch_norm_gradient_has_its_closed_form():
    """Through the normalisation the input gradient sums to zero over each step's batch and
    is orthogonal to the normalised input (the two constraints the batch statistics put on
    it), whatever the spikes' gradient. With ε = 0, so that the normalised input has unit
    variance exactly (with ε the second constraint holds up to a factor ε/(σ² + ε))."""
    with jax.enable_x64(True):
        y, gamma = layer_input((5, 4, 3, 3, 12), seed=7)
        opts = dict(eps=0.0, leak=0.99, threshold=1.0, alpha=0.3)
        _, vjp = jax.vjp(lambda y: layers.bntt_lif(y, gamma, **opts)[0], y)
        (dy,) = vjp(jnp.asarray(np.random.default_rng(0).normal(size=y.shape)))
        xhat = (y - y.mean(axis=(1, 2, 3), keepdims=True)) / y.std(axis=(1, 2, 3), keepdims=True)
        np.testing.assert_allclose(dy.sum(axis=(1, 2, 3)), 0.0, atol=1e-12)
        np.testing.assert_allclose((dy * xhat).sum(axis=(1, 2, 3)), 0.0, atol=1e-9)


@pytest.mark.kernels
def test_float32_agrees_with_xla_to_float32_rounding():
    y, gamma = layer_input((8, 6, 6, 6, 32), seed=2)
    y, gamma = y.astype(jnp.float32), gamma.astype(jnp.float32)
    opts = dict(eps=1e-4, leak=0.99, threshold=1.0, alpha=0.3)

    def loss(f):
        return lambda y, g: jnp.sum(f(y, g, **opts)[0] * jnp.arange(y.shape[-1]))

    spikes = layers.bntt_lif(y, gamma, **opts)[0]
    spikes_ref = layers.bntt_lif_reference(y, gamma, **opts)[0]
    assert float(jnp.mean(spikes != spikes_ref)) < 1e-4  # a value within rounding of θ may flip
    grads = jax.grad(loss(fused.bntt_lif_train), argnums=(0, 1))(y, gamma)
    grads_ref = jax.grad(loss(layers.bntt_lif_reference), argnums=(0, 1))(y, gamma)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(g, g_ref, rtol=2e-3, atol=2e-4 * float(jnp.abs(g_ref).max()))


def test_training_the_network_fused_equals_the_separate_layers(monkeypatch):
    """A whole VGG and MLP training forward and gradient, fused layers against the modules."""
    cases = [
        (bj.NetworkConfig(arch="vgg9", num_steps=4, img_size=8), (4, 3, 8, 8, 3)),
        (bj.NetworkConfig(arch="mlp", num_steps=5, in_features=10, hidden=(24,)), (5, 6, 10)),
    ]
    for cfg, shape in cases:
        assert models.fused_training(cfg)
        with jax.enable_x64(True):
            net = bj.init(jax.random.key(0), cfg)
            variables = jax.tree.map(lambda a: a.astype(jnp.float64), net.variables())
            x = jnp.asarray(np.random.default_rng(1).normal(size=shape))

            def loss(params, x=x, cfg=cfg, variables=variables):
                (logits, counts, _), stats = models.SpikingNetwork(cfg).apply(
                    {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
                )
                return jnp.sum(logits * jnp.arange(logits.shape[-1])), (counts, stats)

            grad = jax.jit(jax.grad(loss, has_aux=True))
            hlo = grad.lower(variables["params"]).as_text()
            assert "bntt_lif_train_fwd" in hlo and "bntt_lif_train_bwd" in hlo
            fused_out = grad(variables["params"])
            monkeypatch.setattr(models, "fused_training", lambda config: False)
            separate = jax.jit(jax.grad(loss, has_aux=True))
            assert "bntt_lif_train" not in separate.lower(variables["params"]).as_text()
            separate_out = separate(variables["params"])
            monkeypatch.undo()
        counts = fused_out[1][0]  # every layer fires (the leaves below include the counts)
        assert all(int(c.sum()) > 0 for c in counts.values())
        for a, b in zip(jax.tree.leaves(fused_out), jax.tree.leaves(separate_out), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_without_the_compiled_code_it_is_the_reference(monkeypatch):
    y, gamma = layer_input((4, 3, 5, 8), seed=4)
    opts = dict(eps=1e-4, leak=0.99, threshold=1.0, alpha=0.3)
    monkeypatch.setattr(ffi, "usable", lambda: False)
    f = jax.jit(lambda y, g: jax.grad(lambda y: layers.bntt_lif(y, g, **opts)[0].sum())(y))
    assert "bntt_lif_train" not in f.lower(y, gamma).as_text()
    reference = jax.jit(
        lambda y, g: jax.grad(lambda y: layers.bntt_lif_reference(y, g, **opts)[0].sum())(y)
    )
    np.testing.assert_array_equal(f(y, gamma), reference(y, gamma))


def test_only_a_normalisation_with_a_fused_training_forward_takes_fire():
    assert not models.fused_training(bj.NetworkConfig(arch="vgg9", norm="bn"))
    assert not models.fused_training(bj.NetworkConfig(arch="vgg9", reset="hard"))
    x = jnp.ones((2, 3, 4))
    fire = dict(leak=0.99, threshold=1.0, alpha=0.3, width=1.0)
    with pytest.raises(ValueError, match="'bn' normalisation has no fused training forward"):
        TemporalNorm("bn", 2).init(jax.random.key(0), x, True, fire=fire)
    with pytest.raises(ValueError, match=r"is for training \(train=True\)"):
        TemporalNorm("bntt", 2).init(jax.random.key(0), x, False, fire=fire)
    with pytest.raises(ValueError, match=r"gamma_t \[T, C\]"):
        fused.bntt_lif_train(x, jnp.ones((2, 5)), **fire, eps=1e-4)
    with pytest.raises(TypeError, match="float32 or float64"):
        fused.bntt_lif_train(x.astype(jnp.bfloat16), jnp.ones((2, 4)), **fire, eps=1e-4)
