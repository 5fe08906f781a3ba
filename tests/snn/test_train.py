"""train_step / eval_step and the optimisers."""

import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bntt_jax as bj
from bntt_jax import train as tr
from tests.helpers.pages import run_block


def test_step_decay_follows_the_authors_epochs():
    # 100 epochs of 10 steps: lr/10 from epoch 51, 71 and 91 on (after epochs 50, 70, 90).
    sched = tr.step_decay_schedule(0.3, epochs=100, steps_per_epoch=10)
    for step, lr in [(0, 0.3), (509, 0.3), (510, 0.03), (709, 0.03), (710, 0.003), (910, 3e-4)]:
        assert float(sched(step)) == pytest.approx(lr, rel=1e-5), step
    # 25 epochs: 0.5·25 = 12.5 -> decay after epoch 12, 17, 22.
    sched = tr.step_decay_schedule(1.0, epochs=25, steps_per_epoch=1)
    assert [float(sched(s)) for s in (12, 13, 18, 23)] == pytest.approx([1, 0.1, 0.01, 0.001])


def test_sgd_is_pytorch_sgd_with_coupled_weight_decay():
    # PyTorch: d = g + wd·p; buf = μ·buf + d (buf = d at the first step); p -= lr·buf.
    tx = tr.make_optimizer("sgd", lr=0.5, epochs=10, steps_per_epoch=100, weight_decay=0.01)
    p = {"w": jnp.array([1.0, -2.0])}
    state = tx.init(p)
    p_ref, buf = np.array([1.0, -2.0]), np.zeros(2)
    for _ in range(3):
        g = {"w": 2 * p["w"]}  # gradient of |w|²
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
        buf = 0.9 * buf + (2 * p_ref + 0.01 * p_ref)
        p_ref = p_ref - 0.5 * buf
    np.testing.assert_allclose(p["w"], p_ref, rtol=1e-6)


def test_bad_optimizer_settings():
    with pytest.raises(ValueError, match="unknown optimizer 'sgdd'"):
        tr.make_optimizer("sgdd", epochs=1, steps_per_epoch=1)
    with pytest.raises(ValueError, match="lr > 0"):
        tr.make_optimizer("sgd", lr=0.0, epochs=1, steps_per_epoch=1)


@pytest.fixture(scope="module")
def small():
    cfg = bj.NetworkConfig(arch="mlp", in_features=12, hidden=(32,), num_steps=6, num_classes=3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 12)).astype(np.float32)
    y = (x[:, :3].argmax(1)).astype(np.int32)  # a learnable rule
    tx = tr.make_optimizer("sgd", lr=0.1, epochs=1, steps_per_epoch=100)
    return cfg, x, y, tx


@functools.cache
def jitted_train_step():
    return jax.jit(tr.train_step)


def run_steps(cfg, x, y, tx, seed, n):
    state = tr.TrainState.create(bj.init(jax.random.key(seed), cfg), tx)
    history = []
    for _ in range(n):
        state, m = jitted_train_step()(state, x, y, jax.random.key(seed))
        history.append({k: float(v) for k, v in m.items() if k != "finite"})
    return state, history


def test_loss_falls_on_a_fixed_batch(small):
    cfg, x, y, tx = small
    state, history = run_steps(cfg, x, y, tx, seed=0, n=40)
    assert int(state.step) == 40
    first, last = (
        np.mean([h["loss"] for h in history[:3]]),
        np.mean([h["loss"] for h in history[-3:]]),
    )
    assert last < 0.5 * first, (first, last)
    # Each step draws new Poisson spikes, so one step's accuracy is noisy: average three.
    assert np.mean([h["accuracy"] for h in history[-3:]]) > 0.9
    assert history[-1]["spikes/fc1"] > 0
    # The running statistics moved (train mode returned them into the state).
    assert not np.allclose(state.net.batch_stats["norm_fc1"]["var"], 1.0)


def test_same_seed_same_run_other_seed_other_run(small):
    cfg, x, y, tx = small
    _, a = run_steps(cfg, x, y, tx, seed=3, n=4)
    _, b = run_steps(cfg, x, y, tx, seed=3, n=4)
    _, c = run_steps(cfg, x, y, tx, seed=4, n=4)
    assert a == b
    assert [h["loss"] for h in a] != [h["loss"] for h in c]


def test_eval_step_sums_and_early_exit(small):
    cfg, x, y, _ = small
    net = bj.init(jax.random.key(0), cfg)
    m = tr.eval_step(net, x, y, jax.random.key(1), exit_steps=(2, 6))
    assert int(m["count"]) == 24 and 0 <= int(m["correct"]) <= 24
    assert int(m["correct@6"]) == int(m["correct"])  # exit at T = the full run
    assert m["spikes/fc1"].shape == (6,)
    spikes = bj.poisson_encode(jax.random.key(1), x, 6)
    counts = bj.simulate(net, spikes, 6).spike_counts["fc1"]
    np.testing.assert_array_equal(m["spikes/fc1"], counts.sum(1))
    # An exit at t = 2 from the one full run equals simulating only 2 steps.
    early = bj.simulate(net, spikes, 2).logits
    assert int(m["correct@2"]) == int(jnp.sum(jnp.argmax(early, -1) == y))
    with pytest.raises(ValueError, match="unknown encoder 'rate'"):
        tr.eval_step(net, x, y, jax.random.key(1), encoder="rate")


def test_eval_step_refuses_exit_steps_outside_1_to_T(small):
    cfg, x, y, _ = small
    net = bj.init(0, cfg)
    for bad in [(0,), (cfg.num_steps + 1,), (2, -1), (2.5,)]:
        with pytest.raises(ValueError, match=rf"exit steps must be ints in 1..{cfg.num_steps}"):
            tr.eval_step(net, x, y, jax.random.key(1), exit_steps=bad)


def test_steps_refuse_non_finite_inputs_and_empty_batches(small):
    cfg, x, y, tx = small
    state = tr.TrainState.create(bj.init(0, cfg), tx)
    bad = x.copy()
    bad[3, 4] = np.inf
    with pytest.raises(
        ValueError, match=r"train_step\(\): inputs holds 0 NaN and 1 Inf .*\(3, 4\)"
    ):
        tr.train_step(state, bad, y, jax.random.key(0))
    with pytest.raises(ValueError, match=r"eval_step\(\): inputs holds"):
        tr.eval_step(state.net, bad, y, jax.random.key(0))
    with pytest.raises(ValueError, match="non-empty batch"):
        tr.train_step(state, x[:0], y[:0], jax.random.key(0))


def test_constant_and_step_learning_rates():
    constant = tr.lr_schedule(0.3, "constant")
    assert [float(constant(s)) for s in (0, 10, 10_000)] == pytest.approx([0.3] * 3)
    step = tr.lr_schedule(0.3, "step", epochs=20, steps_per_epoch=2)
    # ÷10 at the end of epochs 10, 14 and 18 (0-based ⌊f·epochs⌋): from steps 22, 30, 38.
    lrs = [float(step(s)) for s in (21, 22, 29, 30, 37, 38)]
    assert lrs == pytest.approx([0.3, 0.03, 0.03, 0.003, 0.003, 3e-4])
    with pytest.raises(ValueError, match="pass epochs= and steps_per_epoch="):
        tr.lr_schedule(0.3, "step")
    with pytest.raises(ValueError, match="unknown lr schedule 'cosine'"):
        tr.make_optimizer("sgd", schedule="cosine")
    # SGD without momentum or decay with a constant rate: each update is exactly −lr·g.
    tx = tr.make_optimizer("sgd", lr=0.5, momentum=0.0, weight_decay=0.0, schedule="constant")
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update({"w": jnp.full(3, 2.0)}, state, params)
        np.testing.assert_allclose(updates["w"], -1.0)
    with pytest.raises(ValueError, match="finite lr"):
        tr.make_optimizer("sgd", lr=float("nan"), schedule="constant")


def test_steps_refuse_wrong_labels_layouts_weights_and_statistics(small):
    cfg, x, y, tx = small
    state = tr.TrainState.create(bj.init(0, cfg), tx)
    key = jax.random.key(0)
    classes = cfg.num_classes
    for labels, match in [
        (
            np.where(np.arange(len(y)) == 5, classes, y),
            f"labels must lie in 0..{classes - 1}.*1 do not, the first at index 5 \\({classes}\\)",
        ),
        (np.where(np.arange(len(y)) == 2, -1, y), r"the first at index 2 \(-1\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            bj.train_step(state, x, labels.astype(np.int32), key)
        with pytest.raises(ValueError, match=match):
            bj.eval_step(state.net, x, labels.astype(np.int32), key)
    with pytest.raises(TypeError, match="labels must be integer class indices"):
        bj.train_step(state, x, y.astype(np.float32), key)
    # time-major spikes where a batch belongs
    spikes = np.stack([x] * cfg.num_steps)
    with pytest.raises(ValueError, match=r"rank 2 .*\(time-major spikes\?"):
        bj.train_step(state, spikes, y, key)
    # NaN weights and negative running variances, named by their path
    layer = cfg.layers[0].name
    w = state.net.params[layer]["kernel"]
    broken = state.net.replace(
        params={**state.net.params, layer: {"kernel": w.at[1, 2].set(jnp.nan)}}
    )
    with pytest.raises(ValueError, match=rf"params\['{layer}'\]\['kernel'\] holds 1 NaN"):
        bj.eval_step(broken, x, y, key)
    stats = state.net.batch_stats[f"norm_{layer}"]
    negative = {
        **state.net.batch_stats,
        f"norm_{layer}": {**stats, "var": stats["var"].at[0, 3].set(-0.5)},
    }
    with pytest.raises(
        ValueError, match=r"1 negative running variances \(the first at index \(0, 3\): -0.5\)"
    ):
        bj.simulate(state.net.replace(batch_stats=negative), np.stack([x] * cfg.num_steps))
    # labels of the wrong shape: a column, one-hot rows, a scalar, one label too many; under
    # jit too (shapes are known at trace time)
    one_hot = np.eye(classes, dtype=np.int32)[y]
    for labels, match in [
        (y[:, None], r"shape \(24,\); got shape \(24, 1\) \(a column: pass labels.reshape"),
        (one_hot, r"got shape \(24, 3\) \(one-hot rows\? pass labels.argmax\(-1\)\)"),
        (y[0], r"got shape \(\) \(a single label: pass a vector \[24\]"),
        (np.append(y, 0), r"got shape \(25,\) \(25 labels for 24 samples"),
    ]:
        for step in (bj.train_step, jax.jit(bj.train_step)):
            with pytest.raises(ValueError, match=r"train_step\(\): labels must be one .*" + match):
                step(state, x, labels, key)
        with pytest.raises(ValueError, match=r"eval_step\(\): labels must be one"):
            bj.eval_step(state.net, x, labels, key)
    # under jit only the dtype is checked: no host sync inside the compiled step
    jax.jit(bj.train_step)(state, x, y, key)


def test_simulate_refuses_batch_major_spikes_where_the_shapes_tell():
    net = bj.init(0, arch="mlp", in_features=6, num_classes=3, hidden=(8,), T=4)
    batch_major = np.zeros((10, 4, 6), np.float32)  # [B, T, features]
    with pytest.raises(ValueError, match=r"look batch-major \[B, T, \.\.\.\].*swapaxes"):
        bj.simulate(net, batch_major, 4)
    with pytest.raises(ValueError, match=r"look batch-major"):
        bj.simulate(net, batch_major)
    bj.simulate(net, np.swapaxes(batch_major, 0, 1), 4)  # time-major: fine


def test_ttfs_refuses_intensities_outside_0_1():
    from bntt_jax import ttfs

    net = ttfs.init(0, arch="mlp", in_features=6, num_classes=3, hidden=(8,), T=8)
    pixels = np.full((2, 6), 0.5, np.float32)
    pixels[1, 2] = 255.0
    with pytest.raises(
        ValueError, match=r"intensities in \[0, 1\].*from 0.5 to 255.*divide by 255"
    ):
        ttfs.forward(net, pixels)
    with pytest.raises(ValueError, match=r"images must be intensities in \[0, 1\]"):
        ttfs.eval_step(net, pixels, np.zeros(2, np.int32))


def test_the_readme_training_block_runs_on_its_own_and_learns():
    namespace = run_block("bj.TrainState.create")  # its own imports: nothing else
    assert namespace["accuracy"] >= 0.8  # chance: 0.57 (the larger class of the test split)


def test_fit_is_the_documented_loop_of_train_step():
    rng = np.random.default_rng(0)
    x = rng.random((70, 6), dtype=np.float32)
    y = (x[:, :3].sum(1) > x[:, 3:].sum(1)).astype(np.int32)
    net = bj.init(0, arch="mlp", in_features=6, num_classes=2, hidden=(16,), T=4)
    trained, history = bj.fit(
        net, x[:50], y[:50], epochs=2, batch_size=16, lr=1e-2, seed=3, x_test=x[50:], y_test=y[50:]
    )
    # by hand: epoch e shuffles with default_rng(seed + e), full batches, key(seed) folded
    state = bj.TrainState.create(net, bj.make_optimizer("adam", lr=1e-2, schedule="constant"))
    step = jax.jit(bj.train_step, static_argnames="encoder")
    for epoch in (1, 2):
        order = np.random.default_rng(3 + epoch).permutation(50)
        losses = []
        for i in range(3):  # 50 // 16 full batches
            idx = order[i * 16 : (i + 1) * 16]
            state, metrics = step(state, x[idx], y[idx], jax.random.key(3))
            losses.append(float(metrics["loss"]))
        assert history[epoch - 1]["loss"] == pytest.approx(np.mean(losses), rel=1e-6)
    for a, b in zip(jax.tree.leaves(trained), jax.tree.leaves(state.net), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r["epoch"] for r in history] == [1, 2] and 0 <= history[-1]["test_accuracy"] <= 1
    with pytest.raises(ValueError, match="make no full batch of 64"):
        bj.fit(net, x[:50], y[:50], epochs=1, batch_size=64)


def test_fit_refuses_mismatched_arrays_before_the_first_step(monkeypatch):
    """Arrays that cannot be a training set are refused before anything is compiled: the
    step is replaced by one that fails the test if it is ever called."""
    rng = np.random.default_rng(1)
    x = rng.random((40, 6), dtype=np.float32)
    y = (np.arange(40) % 2).astype(np.int32)
    net = bj.init(0, arch="mlp", in_features=6, num_classes=2, hidden=(8,), T=3)

    def never(*args, **kwargs):
        raise AssertionError("fit() started training on bad arrays")

    monkeypatch.setattr(sys.modules["bntt_jax.fit"], "train_step", never)
    bad_x = x.copy()
    bad_x[7, 1] = np.nan
    for kwargs, match in [
        (dict(x_train=x[:32], y_train=y[:33]), r"y_train must be one .*\(33 labels for 32"),
        (dict(x_train=x[:32], y_train=y[:31]), r"\(31 labels for 32 samples"),
        (dict(x_train=x, y_train=y[:, None]), r"y_train .* got shape \(40, 1\)"),
        (dict(x_train=x, y_train=y, x_test=x), "x_test given without y_test; pass both"),
        (dict(x_train=x, y_train=y, y_test=y), "y_test given without x_test"),
        (dict(x_train=x, y_train=y, x_test=x, y_test=y[:5]), r"\(5 labels for 40 samples"),
        (dict(x_train=x, y_train=y + 1), r"fit\(\): y_train: labels must lie in 0..1"),
        (dict(x_train=x, y_train=y, x_test=x, y_test=y * 3), r"y_test: labels must lie in"),
        (dict(x_train=bad_x, y_train=y), r"x_train holds 1 NaN"),
    ]:
        with pytest.raises(ValueError, match=match):
            bj.fit(net, epochs=1, batch_size=8, **kwargs)
