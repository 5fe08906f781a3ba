"""The spiking network of a TTFS surrogate (Eq. 1–3, Appendix A) is the surrogate: in float64
its spike times equal the surrogate's exactly, and its logits to rounding."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax import ttfs
from bntt_jax.ttfs.simulate import spike_times_of
from tests.helpers.ttfs_nets import NARROW_VGG16, trained_looking


def _compare(net, images, jit=False):
    # Called outside jit, the surrogate evaluates its thresholds op by op as simulate() does,
    # so even a neuron exactly on a boundary agrees (test_neurons_exactly_on_...). Under jit
    # (faster to compile for VGG-16) XLA may round a fused exp's last bit differently, which
    # could only move a neuron within one ulp of a boundary; none of these is.
    forward = jax.jit(ttfs.forward) if jit else ttfs.forward
    sur = forward(net, images)
    snn = ttfs.simulate(net, images)
    want = spike_times_of(sur, net.config)
    assert list(snn.spike_times) == list(net.config.kernel_names)  # in network order
    assert set(want) == set(snn.spike_times)
    window = net.config.time_window
    regions = np.zeros(3)
    for name, times in want.items():
        np.testing.assert_array_equal(np.asarray(snn.spike_times[name]), np.asarray(times), name)
        t = np.asarray(times)
        regions += [(t < 0).sum(), ((t > 0) & (t <= window)).sum(), (t == 0).sum()]
        counts = (t >= 0).reshape(t.shape[0], -1).sum(-1)
        np.testing.assert_array_equal(np.asarray(snn.spike_counts[name]), counts)
    np.testing.assert_allclose(snn.logits, sur.logits, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(snn.logits.argmax(-1), sur.logits.argmax(-1))
    return sur, snn, regions


@pytest.mark.parametrize("rounding", ["ceil", "round"])
def test_vgg16_shaped_network_equals_its_surrogate_in_float64(rounding):
    with jax.enable_x64(True):
        config = ttfs.TTFSConfig(**NARROW_VGG16, rounding=rounding)
        images = np.random.default_rng(1).uniform(0, 1, (6, 32, 32, 3))
        net = trained_looking(config, images)
        _, snn, regions = _compare(net, jnp.asarray(images), jit=True)
    # pruned, quantised and clipped neurons all occur, in every part of the network
    assert all(regions > 100), regions
    assert snn.latency == 17 * 32 == 544
    assert all(int(c.min()) > 0 for c in snn.spike_counts.values())


@pytest.mark.parametrize(
    "changes",
    [
        dict(arch="mlp", in_features=64, hidden=(48, 40, 32)),
        dict(arch="mlp", in_features=64, hidden=(48, 32), input_coding="analog", rounding="round"),
        dict(**NARROW_VGG16, pooling="avg", input_coding="analog", time_window=16),
    ],
    ids=["mlp", "mlp-analog-round", "vgg16-avgpool-analog-T16"],
)
def test_other_codings_poolings_and_windows_equal_their_surrogate(changes):
    with jax.enable_x64(True):
        config = ttfs.TTFSConfig(**changes)
        shape = config.input_shape
        images = np.random.default_rng(2).uniform(0, 1, (16 if len(shape) == 1 else 4, *shape))
        net = trained_looking(config, images, seed=3)
        _, _, regions = _compare(net, jnp.asarray(images), jit=True)
    assert all(regions > 0), regions


@pytest.mark.parametrize("rounding", ["ceil", "round"])
def test_neurons_exactly_on_quantisation_boundaries(rounding):
    # fc1's neurons get no input (zero weights) and a bias exactly on the threshold of step k
    # (fires at k), one ulp below it (fires at k + 1), exactly ẑ_m (kept, t = T: with 'ceil'),
    # just below ẑ_m (pruned) and above ẑ_M (clipped: fires at 0).
    with jax.enable_x64(True):
        T = 32
        config = ttfs.TTFSConfig(
            arch="mlp",
            in_features=4,
            hidden=(80,),
            time_window=T,
            rounding=rounding,
            bn_eps=2.0**-10,
        )
        net = jax.tree.map(lambda a: a.astype(jnp.float64), ttfs.init(0, config))
        tau, t_d = jnp.float64(7.3), jnp.float64(0.9)
        on = ttfs.threshold_table(tau, t_d, T, 1.0, rounding)[1 : T + 2]
        below = jnp.nextafter(on, 0.0)
        z_min, z_max = ttfs.representation_range(tau, t_d, T)
        bias = jnp.concatenate(
            [
                on,
                below,
                jnp.stack([z_min, jnp.nextafter(z_min, 0.0), 2 * z_max]),
                jnp.full(80 - 2 * (T + 1) - 3, -0.1),
            ]
        )
        p = net.params
        fc1 = {
            **p["fc1"],
            "dense": {"kernel": jnp.zeros((4, 80)), "bias": bias},
            "temporal": {"tau": tau, "t_d": t_d},
        }
        # the batch norm is the identity: γ = 1, β = 0, μ = 0, σ² + ε = 1
        stats = {"fc1": {"bn": {"mean": jnp.zeros(80), "var": jnp.full(80, 1 - 2.0**-10)}}}
        net = net.replace(params={**p, "fc1": fc1}, batch_stats=stats)
        images = jnp.full((1, 4), 0.5)
        sur = ttfs.forward(net, images)
        np.testing.assert_array_equal(sur.z["fc1"][0], bias)  # exactly on the boundaries
        snn = ttfs.simulate(net, images)
        got = np.asarray(snn.spike_times["fc1"][0])
        np.testing.assert_array_equal(got, np.asarray(spike_times_of(sur, config)["fc1"][0]))
    k = np.arange(T + 1)
    np.testing.assert_array_equal(got[: T + 1], k)
    np.testing.assert_array_equal(got[T + 1 : 2 * (T + 1)], np.where(k + 1 > T, -1, k + 1))
    assert got[2 * (T + 1)] == T  # ẑ_m = κ(T) is kept ('round': above the step-T threshold)
    assert got[2 * (T + 1) + 1] == (-1 if rounding == "ceil" else T)
    assert got[2 * (T + 1) + 2] == 0
    assert (got[2 * (T + 1) + 3 :] == -1).all()


def test_membrane_and_spike_times_by_hand():
    # One fc neuron, inputs spiking at t = 2 and t = 5 through weights 0.5 and 0.8 with the
    # input kernel τ = 10, t_d = 0: u = b + 0.5·e^{-0.2} + 0.8·e^{-0.5}; it fires at
    # ⌈-τ₁ ln(u) + t_d,1⌉ with its own kernel τ₁ = 4, t_d,1 = 1.
    with jax.enable_x64(True):
        config = ttfs.TTFSConfig(
            arch="mlp", in_features=2, hidden=(1,), num_classes=1, bn_eps=2.0**-10
        )
        net = jax.tree.map(lambda a: a.astype(jnp.float64), ttfs.init(0, config))
        p = net.params
        b = 0.05
        params = {
            "input": {"tau": jnp.float64(10.0), "t_d": jnp.float64(0.0)},
            "fc1": {
                **p["fc1"],
                "dense": {"kernel": jnp.array([[0.5], [0.8]]), "bias": jnp.array([b])},
                "temporal": {"tau": jnp.float64(4.0), "t_d": jnp.float64(1.0)},
            },
            "out": {"kernel": jnp.array([[2.0]]), "bias": jnp.array([0.25])},
        }
        stats = {"fc1": {"bn": {"mean": jnp.zeros(1), "var": jnp.full(1, 1 - 2.0**-10)}}}
        net = net.replace(params=params, batch_stats=stats)
        # input intensities that fire at exactly t = 2 and t = 5: e^{-0.2}, e^{-0.5}
        images = jnp.array([[math.exp(-0.2), math.exp(-0.5)]])
        snn = ttfs.simulate(net, images)
    u = b + 0.5 * math.exp(-0.2) + 0.8 * math.exp(-0.5)
    t = math.ceil(-4.0 * math.log(u) + 1.0)
    assert snn.spike_times["input"].tolist() == [[2, 5]]
    assert snn.spike_times["fc1"].tolist() == [[t]]
    assert float(snn.logits[0, 0]) == pytest.approx(0.25 + 2.0 * math.exp(-(t - 1.0) / 4.0))
    assert snn.spike_counts["fc1"].tolist() == [1] and snn.spike_counts["input"].tolist() == [2]
    assert snn.latency == 3 * 32


def test_simulate_refuses_bad_input():
    net = ttfs.init(0, arch="mlp", in_features=8, hidden=(4,))
    with pytest.raises(ValueError, match=r"shape \[batch, 8\].*\(3, 9\)"):
        ttfs.simulate(net, jnp.zeros((3, 9)))
    with pytest.raises(ValueError, match="NaN"):
        ttfs.simulate(net, jnp.full((2, 8), jnp.nan))
    other = ttfs.init(0, arch="mlp", in_features=8, hidden=(5,))
    with pytest.raises(ValueError, match="not those of the network"):
        ttfs.simulate(net.replace(params=other.params), jnp.zeros((2, 8)))
    bad = {
        **net.params,
        "fc1": {
            **net.params["fc1"],
            "temporal": {"tau": jnp.float32(-2.0), "t_d": jnp.float32(0.0)},
        },
    }
    with pytest.raises(ValueError, match="kernel of fc1 has τ = -2.0"):
        ttfs.simulate(net.replace(params=bad), jnp.zeros((2, 8)))
    with pytest.raises(ValueError, match="kernel of fc1 has τ = -2.0"):
        ttfs.forward(net.replace(params=bad), jnp.zeros((2, 8)))
    import bntt_jax as bj

    bntt = bj.init(0, arch="mlp", in_features=8, T=4)
    with pytest.raises(TypeError, match="bntt_jax.simulate"):
        ttfs.simulate(bntt, jnp.zeros((2, 8)))


def test_config_errors_name_the_field():
    for kwargs, field in [
        (dict(T=0), "time_window"),
        (dict(tau0=0.0), "tau0"),
        (dict(tau0=-1.0), "tau0"),
        (dict(arch="vgg11"), "arch"),
        (dict(arch="vgg16", img_size=48), "img_size"),
        (dict(arch="mlp"), "in_features"),
        (dict(rounding="floor"), "rounding"),
    ]:
        with pytest.raises(ValueError, match=field):
            ttfs.init(0, **kwargs)
    with pytest.raises(TypeError, match="T or time_window"):
        ttfs.init(0, T=4, time_window=4)
    assert dataclasses.replace(ttfs.TTFSConfig(), time_window=8).latency == 17 * 8


def test_folding_steps_in_chunks_changes_nothing(monkeypatch):
    # The window's steps are folded into the batch in chunks under a memory budget; the
    # membrane still adds them one step after the other, so the results are bit-identical.
    import importlib

    sim = importlib.import_module("bntt_jax.ttfs.simulate")
    config = ttfs.TTFSConfig(arch="mlp", in_features=16, hidden=(12, 8))
    images = np.random.default_rng(4).uniform(0, 1, (5, 16)).astype(np.float32)
    net = trained_looking(config, images, seed=5)
    whole = ttfs.simulate(net, images)
    monkeypatch.setattr(sim, "FOLD_BUDGET", 1)  # one step per synaptic call
    sim._simulate.clear_cache()
    try:
        stepwise = ttfs.simulate(net, images)
    finally:
        sim._simulate.clear_cache()
    np.testing.assert_array_equal(np.asarray(stepwise.logits), np.asarray(whole.logits))
    for name, times in whole.spike_times.items():
        np.testing.assert_array_equal(np.asarray(stepwise.spike_times[name]), np.asarray(times))
