"""The layer-major network against the authors' time-major loop: values, spike counts,
running statistics and gradients, for every architecture and normalisation."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bntt_jax as bj
from tests.helpers.reference import randomize_norm, time_major_forward


def _inputs(cfg, batch, seed=0):
    key_x, key_s = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(key_x, (batch,) + cfg.input_shape) * 1.2
    return bj.poisson_encode(key_s, x, cfg.num_steps)


def _layer_major(net, spikes, train):
    out = bj.simulate(net, spikes, spikes.shape[0], train=train)
    return out.logits, out.spike_counts, out.batch_stats


def _loss_and_outputs(forward, net, spikes, labels, train):
    logits, counts, stats = forward(net, spikes, train)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (logits, counts, stats)


@partial(jax.jit, static_argnums=(0, 4))
def _value_and_grads(forward, net, spikes, labels, train):
    """Loss, forward outputs and gradients w.r.t. parameters and input spikes, in one pass."""
    fn = jax.value_and_grad(partial(_loss_and_outputs, forward), argnums=(0, 1), has_aux=True)
    return fn(net, spikes, labels, train)


def _case(arch, norm, kw, batch=4, seed=0):
    cfg = bj.NetworkConfig(arch=arch, norm=norm, num_classes=5, **kw)
    net = randomize_norm(bj.init(jax.random.key(1), cfg), seed=2)
    if norm == "none":  # without normalisation deep layers are silent at init: drive them
        net = net.replace(params=jax.tree.map(lambda w: 3.0 * w, net.params))
    return cfg, net, _inputs(cfg, batch, seed)


def _assert_same_forward(cfg, layer, time, batch):
    (logits, counts, _), (ref_logits, ref_counts, _) = layer, time
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-4, atol=1e-5)
    assert list(counts) == [spec.name for spec in cfg.layers]
    for name in ref_counts:
        np.testing.assert_array_equal(counts[name], ref_counts[name], err_msg=name)
    for spec in cfg.layers:  # not degenerate: every layer fires, and not everywhere
        total = int(counts[spec.name].sum())
        assert 0 < total < cfg.neurons_per_layer()[spec.name] * cfg.num_steps * batch, spec.name


TRAIN_CASES = [
    ("vgg9", "bntt", dict(img_size=8, in_channels=3, num_steps=4)),
    # two steps show what the other norms tie or keep apart over time (the unrolled reference
    # compiles in proportion to T)
    ("vgg9", "bn", dict(img_size=8, in_channels=2, num_steps=2)),
    ("vgg9", "layernorm", dict(img_size=8, in_channels=2, num_steps=2)),
    ("vgg9", "none", dict(img_size=8, in_channels=2, num_steps=2, leak=0.9)),
    ("vgg11", "bntt", dict(img_size=16, in_channels=3, num_steps=3)),
    ("mlp", "bntt", dict(in_features=5, hidden=(32, 16), num_steps=7)),
    ("mlp", "bn", dict(in_features=5, hidden=(32, 16), num_steps=7, reset="hard")),
    ("custom", "bntt", dict(plan="c8,p,c16,g,f32", img_size=8, in_channels=2, num_steps=3)),
]


@pytest.mark.parametrize("arch,norm,kw", TRAIN_CASES, ids=[f"{a}-{n}" for a, n, _ in TRAIN_CASES])
def test_train_mode_layer_major_equals_time_major(arch, norm, kw):
    cfg, net, spikes = _case(arch, norm, kw)
    labels = jnp.arange(4) % 5
    (loss, out), (g_net, g_spikes) = _value_and_grads(_layer_major, net, spikes, labels, True)
    (ref_loss, ref), (r_net, r_spikes) = _value_and_grads(
        time_major_forward, net, spikes, labels, True
    )

    _assert_same_forward(cfg, out, ref, batch=4)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    if norm in ("bntt", "bn"):  # the running statistics after one training call
        for name, leaves in ref[2].items():
            for k in ("mean", "var"):
                np.testing.assert_allclose(out[2][name][k], leaves[k], rtol=1e-4, atol=1e-6)
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(g_net.params),
        jax.tree_util.tree_leaves(r_net.params),
        strict=True,
    ):
        name = jax.tree_util.keystr(path)
        scale = float(jnp.abs(b).max())
        assert scale > 0, f"no gradient reaches {name}"
        np.testing.assert_allclose(
            np.asarray(a) / scale, np.asarray(b) / scale, atol=2e-4, err_msg=name
        )
    scale = float(jnp.abs(r_spikes).max())
    assert scale > 0
    np.testing.assert_allclose(g_spikes / scale, r_spikes / scale, atol=2e-4)


EVAL_CASES = [
    ("vgg9", "bntt", dict(img_size=8, in_channels=3, num_steps=4)),
    ("vgg9", "bn", dict(img_size=8, in_channels=2, num_steps=3)),
    ("mlp", "bntt", dict(in_features=5, hidden=(32, 16), num_steps=7)),
    ("vgg9", "none", dict(img_size=8, in_channels=2, num_steps=3, reset="hard")),
    # tdBN trains on statistics pooled over all steps (no time-major form; tests/snn/
    # test_norms.py checks it against its formula): evaluation, with θ ≠ 1 (it scales to θ)
    ("vgg9", "tdbn", dict(img_size=8, in_channels=2, num_steps=3, threshold=0.8)),
]


@pytest.mark.parametrize("arch,norm,kw", EVAL_CASES, ids=[f"{a}-{n}" for a, n, _ in EVAL_CASES])
def test_eval_mode_layer_major_equals_time_major(arch, norm, kw):
    # Evaluation normalises step t with the running statistics of step t (BNTT) or the
    # shared ones (bn); randomize_norm makes them differ per step so a wrong index shows.
    cfg, net, spikes = _case(arch, norm, kw)
    out = bj.simulate(net, spikes, cfg.num_steps)
    assert out.batch_stats is None
    ref = jax.jit(time_major_forward, static_argnums=2)(net, spikes, False)
    _assert_same_forward(cfg, out, ref, batch=4)


def test_batch_major_fold_computes_the_same_as_time_major():
    """The fold used with several devices (batch-major) against the one-device fold."""
    from bntt_jax.cpu.convolution import conv3x3_reference
    from bntt_jax.layers import fold_time

    x = jax.random.normal(jax.random.key(0), (3, 5, 6, 6, 4))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 4, 7))
    conv = partial(conv3x3_reference, kernel=kernel)
    a = fold_time(conv, x, batch_major=False)
    b = fold_time(conv, x, batch_major=True)
    assert a.shape == (3, 5, 6, 6, 7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[2, 4], conv(x[2, 4][None])[0], rtol=1e-6, atol=1e-6)
