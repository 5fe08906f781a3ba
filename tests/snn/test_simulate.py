"""simulate(): the notebook contract, early exit, and each documented bad input's error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bntt_jax as bj


@pytest.fixture(scope="module")
def vgg():
    return bj.init(jax.random.key(0), arch="vgg9", num_steps=5, img_size=8, in_channels=3)


@pytest.fixture(scope="module")
def vgg_spikes(vgg):
    x = jax.random.normal(jax.random.key(1), (3, 8, 8, 3))
    return bj.poisson_encode(jax.random.key(2), x, 5)


def test_outputs(vgg, vgg_spikes):
    out = bj.simulate(vgg, vgg_spikes, 5)
    assert out.logits.shape == (3, 10)
    assert list(out.spike_counts) == [
        "conv1",
        "conv2",
        "conv3",
        "conv4",
        "conv5",
        "conv6",
        "conv7",
        "fc1",
    ]
    for counts in out.spike_counts.values():
        assert counts.shape == (5, 3) and counts.dtype == jnp.int32
    assert out.batch_stats is None
    trained = bj.simulate(vgg, vgg_spikes, 5, train=True)
    assert jax.tree.structure(trained.batch_stats) == jax.tree.structure(vgg.batch_stats)
    assert not np.allclose(trained.batch_stats["norm_conv1"]["mean"], 0.0)
    updated = vgg.replace(batch_stats=trained.batch_stats)
    assert isinstance(updated, bj.NetworkParams)


def test_early_exit_is_the_first_T_steps(vgg, vgg_spikes):
    # Causality: running T = 3 gives exactly the first 3 steps of the full run, and the
    # readout averages over those 3 steps (so logits scale by 5/3 of the partial sum).
    full = bj.simulate(vgg, vgg_spikes, 5)
    early = bj.simulate(vgg, vgg_spikes, 3)
    for name, counts in early.spike_counts.items():
        assert counts.shape == (3, 3)
        np.testing.assert_array_equal(counts, full.spike_counts[name][:3])
    # Same input truncated to 3 steps: identical to passing T=3.
    np.testing.assert_allclose(bj.simulate(vgg, vgg_spikes[:3]).logits, early.logits, rtol=1e-6)
    # Running statistics in train mode: only rows 0..2 move.
    trained = bj.simulate(vgg, vgg_spikes, 3, train=True).batch_stats
    np.testing.assert_array_equal(trained["norm_fc1"]["var"][3:], 1.0)
    assert not np.allclose(trained["norm_fc1"]["var"][:3], 1.0)


def test_bool_and_numpy_spikes_accepted(vgg, vgg_spikes):
    binary = np.asarray(vgg_spikes) > 0
    a = bj.simulate(vgg, binary, 5)
    b = bj.simulate(vgg, jnp.asarray(binary, jnp.float32), 5)
    np.testing.assert_array_equal(a.logits, b.logits)


def test_jit_and_grad_through_simulate(vgg, vgg_spikes):
    def loss(p):
        return jnp.sum(bj.simulate(p, vgg_spikes, 5, train=True).logits ** 2)

    grads = jax.jit(jax.grad(loss))(vgg)
    assert float(jnp.abs(grads.params["conv1"]["kernel"]).sum()) > 0
    assert float(jnp.abs(grads.params["norm_conv1"]["gamma_t"]).sum()) > 0


def test_mlp_sequential_input():
    net = bj.init(jax.random.key(0), arch="mlp", num_steps=12, in_features=1, num_classes=4)
    seq = jax.random.uniform(jax.random.key(1), (12, 6, 1))
    out = bj.simulate(net, seq, 12)
    assert out.logits.shape == (6, 4) and set(out.spike_counts) == {"fc1", "fc2"}
    assert net.params["fc3"]["kernel"].shape == (256, 4)


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda s: s[0], ValueError, r"rank 5 \[T, B, H, W, C\], got rank 4.*spikes\[:, None\]"),
        (lambda s: s[..., None], ValueError, "rank 5"),
        (lambda s: s[:, :, :4], ValueError, r"samples of shape \(4, 8, 3\).*takes \(8, 8, 3\)"),
        (lambda s: s[..., :1], ValueError, "1 input channels, but the network has 3"),
        (lambda s: jnp.transpose(s, (0, 1, 4, 2, 3)), ValueError, "channels-first"),
        (lambda s: s.astype(jnp.int32), TypeError, "floating or bool, got dtype int32"),
    ],
    ids=["rank-4", "rank-6", "height", "channels", "channels-first", "int-dtype"],
)
def test_bad_spikes(vgg, vgg_spikes, make, error, match):
    with pytest.raises(error, match=match):
        bj.simulate(vgg, make(vgg_spikes), 5)


def test_bad_T(vgg, vgg_spikes):
    longer = jnp.concatenate([vgg_spikes, vgg_spikes])
    with pytest.raises(ValueError, match="T=6 is beyond the 5 time steps these parameters have"):
        bj.simulate(vgg, longer, 6)
    eight_steps = bj.init(jax.random.key(0), arch="vgg9", num_steps=8, img_size=8)
    with pytest.raises(ValueError, match="spikes hold only 5 time steps"):
        bj.simulate(eight_steps, vgg_spikes, 6)
    with pytest.raises(ValueError, match="T must be >= 1"):
        bj.simulate(vgg, vgg_spikes, 0)
    with pytest.raises(TypeError, match="T must be a Python int"):
        bj.simulate(vgg, vgg_spikes, 2.5)


def test_bad_params_and_batch(vgg, vgg_spikes):
    with pytest.raises(TypeError, match="raw Flax variables dict lacks the architecture"):
        bj.simulate({"params": vgg.params}, vgg_spikes, 5)
    with pytest.raises(TypeError, match="must be a bntt_jax.NetworkParams"):
        bj.simulate(None, vgg_spikes, 5)
    with pytest.raises(ValueError, match="batch of at least 2"):
        bj.simulate(vgg, vgg_spikes[:, :1], 5, train=True)
    bj.simulate(vgg, vgg_spikes[:, :1], 5)  # a single sample is fine in evaluation


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(arch="vg9"), r"unknown arch 'vg9'.*Did you mean 'vgg9'"),
        (dict(norm="bnt"), r"unknown norm 'bnt'.*Did you mean 'bntt'"),
        (dict(arch="vgg9", img_size=20), "multiple of 8"),
        (dict(arch="vgg11", img_size=24), "pools its input 4 times.*multiple of 16"),
        (dict(num_steps=0), "num_steps must be a positive int"),
        (dict(leak=1.5), r"leak must be in \(0, 1\]"),
        (dict(threshold=0.0), "threshold must be finite and > 0"),
        (dict(arch="mlp", img_size=32), "img_size applies to networks of images"),
        (dict(arch="vgg9", hidden=(10,)), "hidden applies to arch='mlp' only"),
        (dict(arch="mlp", hidden=()), "hidden must be a non-empty"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bj.NetworkConfig(**kwargs)


def test_config_defaults_and_round_trip():
    assert bj.NetworkConfig(arch="vgg9").leak == 0.95
    assert bj.NetworkConfig(arch="vgg11").leak == 0.99
    cfg = bj.NetworkConfig(arch="mlp", hidden=[8, 4], num_steps=9)
    assert cfg.hidden == (8, 4)
    assert bj.NetworkConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown key .layers.; the keys are arch"):
        bj.NetworkConfig.from_dict({"arch": "vgg9", "layers": 3})
    vgg9 = bj.NetworkConfig(arch="vgg9")
    assert vgg9.neurons_per_layer()["conv1"] == 64 * 32 * 32
    assert vgg9.neurons_per_layer()["conv7"] == 256 * 8 * 8
    assert vgg9.readout_name == "fc2"
    with pytest.raises(TypeError, match="not both"):
        bj.init(jax.random.key(0), vgg9, num_steps=3)


def test_all_zero_first_step_is_finite_through_the_network(vgg, vgg_spikes):
    # With no input at t = 0 every layer sees an all-zero step (σ = 0 in BNTT): logits,
    # running statistics and gradients must stay finite, and nothing fires at t = 0.
    spikes = vgg_spikes.at[0].set(0.0)
    out = bj.simulate(vgg, spikes, 5, train=True)
    assert np.isfinite(np.asarray(out.logits)).all()
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(out.batch_stats))
    assert all(int(c[0].sum()) == 0 for c in out.spike_counts.values())

    def loss(p, s):
        return jnp.sum(jax.nn.log_softmax(bj.simulate(p, s, 5, train=True).logits)[:, 0])

    g_params, g_spikes = jax.grad(loss, argnums=(0, 1))(vgg, spikes)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(g_params.params))
    assert np.isfinite(np.asarray(g_spikes)).all()
    assert float(jnp.abs(g_params.params["conv1"]["kernel"]).sum()) > 0


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf, -jnp.inf])
def test_non_finite_spikes_are_refused(vgg, vgg_spikes, bad):
    spikes = vgg_spikes.at[2, 1, 3, 4, 0].set(bad)
    with pytest.raises(ValueError, match=r"spikes holds .* values .*index \(2, 1, 3, 4, 0\)"):
        bj.simulate(vgg, spikes, 5)
    with pytest.raises(ValueError, match="spikes holds 1 NaN"):
        bj.simulate(vgg, np.asarray(vgg_spikes.at[0, 0, 0, 0, 0].set(jnp.nan)), 5, train=True)
    # Inside jit the values are unknown: no check runs and nothing is added to the program.
    jax.jit(lambda s: bj.simulate(vgg, s, 5).logits)(vgg_spikes)


def test_empty_batch_and_malformed_parameters_are_refused(vgg, vgg_spikes):
    with pytest.raises(ValueError, match="the batch is empty"):
        bj.simulate(vgg, vgg_spikes[:, :0], 5)
    stats = {k: dict(v) for k, v in vgg.batch_stats.items()}
    del stats["norm_conv4"]["var"]
    with pytest.raises(ValueError, match=r"batch_stats\['norm_conv4'\]\['var'\] is missing"):
        bj.simulate(vgg.replace(batch_stats=stats), vgg_spikes, 5)
    stats = {k: dict(v) for k, v in vgg.batch_stats.items()}
    stats["norm_fc1"]["mean"] = stats["norm_fc1"]["mean"][:3]
    with pytest.raises(
        ValueError, match=r"\['norm_fc1'\]\['mean'\] has shape \(3, 1024\).*\(5, 1024\)"
    ):
        bj.simulate(vgg.replace(batch_stats=stats), vgg_spikes, 5)
    params = dict(vgg.params, fc9={"kernel": jnp.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"params\['fc9'\]\['kernel'\] is not part of a vgg9"):
        bj.simulate(vgg.replace(params=params), vgg_spikes, 5)


def test_init_takes_a_seed_or_a_key_and_T():
    a = bj.init(3, arch="mlp", in_features=4, T=6)
    b = bj.init(jax.random.key(3), arch="mlp", in_features=4, num_steps=6)
    assert a.config == b.config and a.config.num_steps == 6
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(x, y)
    c = bj.init(4, arch="mlp", in_features=4, T=6)
    assert not np.array_equal(a.params["fc1"]["kernel"], c.params["fc1"]["kernel"])
    with pytest.raises(TypeError, match="T or num_steps"):
        bj.init(0, arch="mlp", T=3, num_steps=3)
    with pytest.raises(TypeError, match="key must be a jax.random key or an int seed"):
        bj.init("0", arch="mlp")


def test_init_is_xavier_uniform_gain_2_and_the_identity_statistics():
    """PyTorch's xavier_uniform_(gain=2): U(-b, b), b = 2·sqrt(6/(fan_in + fan_out)), with
    the 3×3 receptive field in both fans; γ = 1, μ = 0, σ² = 1."""
    net = bj.init(0, arch="vgg9", T=3, img_size=8)
    for name, fan_in, fan_out in [("conv2", 9 * 64, 9 * 64), ("fc1", 256, 1024), ("fc2", 1024, 10)]:
        w = np.asarray(net.params[name]["kernel"]).ravel()
        bound = 2 * np.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert abs(w.mean()) < 0.05 * bound and np.std(w) == pytest.approx(
            bound / np.sqrt(3), rel=0.05
        )
    np.testing.assert_array_equal(net.params["norm_conv1"]["gamma_t"], 1.0)
    np.testing.assert_array_equal(net.batch_stats["norm_conv1"]["mean"], 0.0)
    np.testing.assert_array_equal(net.batch_stats["norm_conv1"]["var"], 1.0)
    # The same shapes as Flax's own init of the module.
    flax_vars = jax.eval_shape(
        lambda k: bj.SpikingNetwork(net.config).init(k, jnp.zeros((1, 2, 8, 8, 3)), train=False),
        jax.random.key(0),
    )
    assert jax.tree.map(jnp.shape, flax_vars["params"]) == jax.tree.map(jnp.shape, net.params)
