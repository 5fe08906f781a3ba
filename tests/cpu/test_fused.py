"""The fused evaluation-mode layers against the Flax module's own evaluation forward.

Running statistics and γᵗ are randomised per step and per channel (so a wrong step or
channel index shows), and the networks fire at every layer.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bntt_jax as bj
from bntt_jax import models
from bntt_jax.cpu import choice, fused
from bntt_jax.models import SpikingNetwork
from bntt_jax.train import eval_step
from tests.helpers.choices import targets_with

CONFIGS = {
    "vgg9": (bj.NetworkConfig(arch="vgg9", num_steps=6, img_size=16), (5, 3, 16, 16, 3)),
    "vgg11": (bj.NetworkConfig(arch="vgg11", num_steps=6, img_size=16), (5, 3, 16, 16, 3)),
    "mlp": (
        bj.NetworkConfig(arch="mlp", num_steps=7, in_features=20, hidden=(48, 32)),
        (7, 4, 20),
    ),
}


def randomised(net, seed=0):
    """γᵗ, μᵗ and σᵗ² different for every step and channel, chosen so that layers fire."""
    rng = np.random.default_rng(seed)

    def norm_leaf(path, leaf):
        name = jax.tree_util.keystr(path)
        if "gamma_t" in name:
            return jnp.asarray(rng.uniform(0.5, 3.0, leaf.shape), leaf.dtype)
        if "'mean'" in name:
            return jnp.asarray(rng.normal(0.0, 0.3, leaf.shape), leaf.dtype)
        if "'var'" in name:
            return jnp.asarray(rng.uniform(0.2, 2.0, leaf.shape), leaf.dtype)
        return leaf

    return net.replace(
        params=jax.tree_util.tree_map_with_path(norm_leaf, net.params),
        batch_stats=jax.tree_util.tree_map_with_path(norm_leaf, net.batch_stats),
    )


def input_spikes(shape, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return jnp.asarray((rng.random(shape) < 0.35).astype(dtype))


@pytest.mark.kernels
@pytest.mark.parametrize(
    ("arch", "conv_layers"),
    [(arch, "compiled") for arch in sorted(CONFIGS)] + [("vgg9", "separate")],
)
def test_fused_forward_equals_the_module_in_float64(retrace, arch, conv_layers):
    """Every layer fused and compiled; then (as a target that sends dense inputs to XLA's
    convolution does) every convolutional layer as XLA's convolution, affine map and LIF."""
    forced = {
        "compiled": dict(dense_forward="kernel"),
        "separate": dict(dense_forward="xla", conv_rate=-1.0),
    }[conv_layers]
    retrace(choice, "TARGETS", targets_with(**forced))
    cfg, shape = CONFIGS[arch]
    with jax.enable_x64(True):
        net = randomised(bj.init(jax.random.key(0), cfg))
        variables = jax.tree.map(lambda a: a.astype(jnp.float64), net.variables())
        spikes = input_spikes(shape, np.float64)
        assert models.fusable(cfg, spikes)
        ref = SpikingNetwork(cfg).apply(variables, spikes, train=False)
        got = jax.jit(lambda v, s: models._fused_forward(v, cfg, s))(variables, spikes)
    for layer, counts in ref[1].items():
        assert int(counts.sum()) > 0, f"{layer} never fires: the test would not see its LIF"
        np.testing.assert_array_equal(got[1][layer], counts, err_msg=layer)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-12, atol=1e-12)


def test_float32_simulate_and_eval_step_use_the_fused_path_and_agree():
    cfg, shape = CONFIGS["vgg9"]
    net = randomised(bj.init(jax.random.key(0), cfg))
    spikes = input_spikes(shape, np.float32)
    out = bj.simulate(net, spikes)
    ref = SpikingNetwork(cfg).apply(net.variables(), spikes, train=False)
    total = sum(int(c.sum()) for c in ref[1].values())
    flips = sum(int(jnp.abs(out.spike_counts[k] - c).sum()) for k, c in ref[1].items())
    assert flips <= 1e-3 * total  # float32: rare threshold ties may flip a spike
    np.testing.assert_allclose(out.logits, ref[0], rtol=1e-4, atol=1e-4)

    images = np.random.default_rng(2).random((3, 16, 16, 3)).astype(np.float32)
    labels = jnp.array([0, 1, 2])
    key = jax.random.key(3)
    hlo = jax.jit(lambda n, x, y, k: eval_step(n, x, y, k)).lower(net, images, labels, key)
    assert "bntt_event_conv_lif_eval" in hlo.as_text()


def test_other_norms_keep_the_module_forward():
    cfg = bj.NetworkConfig(arch="vgg9", num_steps=2, img_size=8, norm="bn")
    spikes = jnp.zeros((2, 2, 8, 8, 3), jnp.float32)
    assert not models.fusable(cfg, spikes)
    net = bj.init(jax.random.key(0), cfg)
    hlo = jax.jit(lambda n, s: bj.simulate(n, s).logits).lower(net, spikes).as_text()
    assert "bntt_event_conv_lif_eval" not in hlo


def test_bad_layer_inputs_get_clear_errors():
    spikes = jnp.zeros((2, 3, 4, 4, 8), jnp.float32)
    stats = jnp.zeros((2, 16), jnp.float32)
    with pytest.raises(ValueError, match="kernel"):
        fused.bntt_lif_eval(spikes, jnp.zeros((8, 16)), stats, stats, leak=0.95, threshold=1.0)
    with pytest.raises(ValueError, match="mean_t must be"):
        fused.bntt_lif_eval(
            spikes, jnp.zeros((3, 3, 8, 16)), stats[:1], stats, leak=0.95, threshold=1.0
        )
