"""NIR export: every network ``to_nir`` accepts, written to a file, read back with ``nir`` and
simulated by an independent NumPy simulator of NIR's equations (forward Euler, dt = 1),
gives the same spikes in every layer and the same outputs; every network it refuses is
refused with the reason and nothing written."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bntt_jax as bj
from bntt_jax.baselines import ann
from bntt_jax.baselines import conversion as cv
from bntt_jax.train import TrainState
from experiments.core.data.digits import load_digits
from tests.helpers import nir_sim
from tests.helpers.reference import randomize_norm

nir = pytest.importorskip("nir")


def _round_trip(network, tmp_path):
    path = tmp_path / "net.nir"
    bj.to_nir(network, path)
    return nir.read(path)


def _channels_first(x):
    return np.moveaxis(np.asarray(x), -1, 2) if x.ndim == 5 else np.asarray(x)


CASES = [
    ("vgg9-bn-lif", dict(arch="vgg9", img_size=8, in_channels=2, norm="bn", leak=0.9), 1.0),
    ("mlp-none-if", dict(arch="mlp", in_features=12, hidden=(24, 16), norm="none", leak=1.0), 2.0),
    (
        "custom-tdbn",
        dict(
            arch="custom",
            plan="c8,p,f16",
            img_size=8,
            in_channels=2,
            norm="tdbn",
            leak=0.8,
            threshold=0.7,
        ),
        1.0,
    ),
]


@pytest.mark.parametrize("kw,gain", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_exported_network_runs_the_same_in_nir(kw, gain, tmp_path):
    cfg = bj.NetworkConfig(num_steps=6, num_classes=5, reset="hard", **kw)
    net = randomize_norm(bj.init(1, cfg), seed=2)
    net = net.replace(params=jax.tree.map(lambda w: gain * w, net.params))
    x = jax.random.normal(jax.random.key(3), (3,) + cfg.input_shape) * 1.5
    spikes = bj.poisson_encode(jax.random.key(4), x, cfg.num_steps)
    ours = bj.simulate(net, spikes, record=True)

    graph = _round_trip(net, tmp_path)
    assert graph.metadata["discretisation"] == "forward Euler, dt = 1"
    theirs = nir_sim.simulate(graph, _channels_first(spikes))
    for spec in cfg.layers:
        expected = _channels_first(ours.spikes[spec.name])
        got = theirs[f"{spec.name}.neuron"]
        assert 0 < expected.sum() < expected.size, spec.name  # the layer fires, not always
        np.testing.assert_array_equal(got, expected, err_msg=spec.name)
    # the integrator's state after T steps is the accumulating readout (Eq. 5)
    np.testing.assert_allclose(theirs["output"][-1], ours.logits, rtol=1e-5, atol=1e-5)


def test_exported_lif_parameters_are_the_stated_mapping():
    cfg = bj.NetworkConfig(
        arch="mlp",
        in_features=3,
        hidden=(4,),
        leak=0.8,
        threshold=1.5,
        num_steps=5,
        reset="hard",
        norm="none",
    )
    graph = bj.to_nir(bj.init(0, cfg))
    lif = graph.nodes["fc1.neuron"]
    # τ = 1/(1 − λ), R = τ: forward Euler with dt = 1 gives v ← λ·v + I (Eq. 4)
    np.testing.assert_allclose(lif.tau, 5.0, rtol=1e-6)
    np.testing.assert_allclose(lif.r, 5.0, rtol=1e-6)
    np.testing.assert_array_equal(lif.v_leak, 0.0)
    np.testing.assert_array_equal(lif.v_threshold, 1.5)
    np.testing.assert_array_equal(lif.v_reset, 0.0)
    np.testing.assert_allclose(graph.nodes["readout"].r, 1 / 5)


@pytest.fixture(scope="module")
def converted():
    data = load_digits()
    config = bj.NetworkConfig(
        arch="mlp", in_features=64, hidden=(48, 32), num_classes=10, norm="bn"
    )
    state = TrainState.create(ann.init(0, config), optax.sgd(0.1, momentum=0.9))
    step = jax.jit(ann.train_step)
    rng = np.random.default_rng(0)
    for _ in range(100):
        i = rng.choice(len(data.train_x), 64, replace=False)
        state, _ = step(state, data.train_x[i], data.train_y[i])
    return state.net, data


def test_conversion_with_zero_reset_runs_the_same_in_nir(converted, tmp_path):
    net, data = converted
    snn = cv.convert(net, data.train_x[:128], 0, steps=40, reset="zero")
    images, steps, key = jnp.asarray(data.test_x[:32]), 40, jax.random.key(7)
    readout, counts = cv.simulate_converted(snn, images, key, steps)
    # the conversion draws step t's input spikes from fold_in(key, t) (its simulation)
    inputs = np.stack(
        [bj.poisson_encode(jax.random.fold_in(key, t), images, 1)[0] for t in range(steps)]
    )
    theirs = nir_sim.simulate(_round_trip(snn, tmp_path), inputs)
    for spec in net.config.layers:
        got = theirs[f"{spec.name}.neuron"].sum(axis=tuple(range(1, 3)))
        assert counts[spec.name].sum() > 0
        np.testing.assert_array_equal(got, counts[spec.name], err_msg=spec.name)
    np.testing.assert_allclose(theirs["output"][-1], readout, rtol=1e-5, atol=1e-4)


def _refusals(converted):
    net, data = converted
    mlp = dict(arch="mlp", in_features=3, hidden=(4,))
    return [
        (bj.init(0, **mlp), "soft reset"),
        (bj.init(0, **mlp, reset="hard"), "norm='bntt'"),
        (bj.init(0, **mlp, reset="hard", norm="layernorm"), "norm='layernorm'"),
        (bj.ttfs.init(0, bj.ttfs.TTFSConfig(arch="mlp", in_features=4, hidden=(3,))), "TTFS"),
        (net, "an ANN"),
        (cv.convert(net, data.train_x[:16], 0, steps=5), "subtractive reset"),
    ]


def test_networks_without_an_exact_nir_form_are_refused(converted, tmp_path):
    path = tmp_path / "refused.nir"
    for network, reason in _refusals(converted):
        with pytest.raises(ValueError, match=f"{reason}.*cannot be exported exactly"):
            bj.to_nir(network, path)
        assert not path.exists()
    with pytest.raises(TypeError, match="expected NetworkParams"):
        bj.to_nir({"params": {}})
    # both reasons of a soft-reset BNTT network at once, each with its fix
    both = bj.init(0, arch="mlp", in_features=3, hidden=(4,))
    with pytest.raises(
        ValueError,
        match=r"2 reasons.*\(1\) .*soft reset.*reset='hard'.*"
        r"\(2\) norm='bntt'.*norm='none'",
    ):
        bj.to_nir(both, path)
    assert not path.exists()
