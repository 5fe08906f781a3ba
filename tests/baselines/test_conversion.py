"""ANN-to-SNN conversion (Sengupta et al. 2019): folding batch norm changes nothing, and the
converted integrate-and-fire network approaches its ANN as T grows."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bntt_jax.baselines import ann
from bntt_jax.baselines import conversion as cv
from bntt_jax.config import NetworkConfig
from bntt_jax.encoding import POISSON_SCALE
from bntt_jax.train import TrainState
from experiments.core.data.digits import load_digits


@pytest.fixture(scope="module")
def trained():
    """A small ReLU MLP with batch norm, trained on the digits for a few hundred steps."""
    data = load_digits()
    config = NetworkConfig(arch="mlp", in_features=64, hidden=(64, 32), num_classes=10, norm="bn")
    state = TrainState.create(ann.init(0, config), optax.sgd(0.1, momentum=0.9))
    step = jax.jit(ann.train_step)
    rng = np.random.default_rng(0)
    for _ in range(300):
        i = rng.choice(len(data.train_x), 64, replace=False)
        state, _ = step(state, data.train_x[i], data.train_y[i])
    return state.net, data


def test_folding_batch_norm_leaves_the_ann_unchanged(trained):
    net, data = trained
    weights, biases = cv.fold_batch_norm(net)
    x = jnp.asarray(data.test_x)
    for spec in net.config.layers:
        x = jnp.maximum(x @ weights[spec.name] + biases[spec.name], 0.0)
    logits = x @ weights[net.config.readout_name]
    np.testing.assert_allclose(logits, ann.forward(net, data.test_x), rtol=1e-4, atol=1e-4)


def test_the_converted_network_approaches_its_ann_as_t_grows(trained):
    net, data = trained
    logits = np.asarray(ann.forward(net, data.test_x))
    assert np.mean(logits.argmax(-1) == data.test_y) > 0.9
    snn = cv.convert(net, data.train_x[:256], 0, steps=100)
    # the readout accumulates z/c per step, c = 2·θ₁·θ₂ (the rate scale of the last layer)
    c = POISSON_SCALE * np.prod([float(t) for t in snn.thresholds.values()])
    errors, agreement = [], []
    for steps in (10, 100, 1000):
        readout, counts = cv.simulate_converted(snn, data.test_x, 1, steps)
        estimate = np.asarray(readout) * c / steps
        errors.append(np.mean(np.abs(estimate - logits)) / np.mean(np.abs(logits)))
        agreement.append(np.mean(estimate.argmax(-1) == logits.argmax(-1)))
        assert set(counts) == {"fc1", "fc2"} and counts["fc1"].shape == (steps,)
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.1, errors
    assert agreement[2] >= 0.97 and agreement[2] >= agreement[0], agreement
    # reset to zero loses the charge above threshold: still close at T = 1000
    zero = cv.convert(net, data.train_x[:256], 0, steps=100, reset="zero")
    readout, _ = cv.simulate_converted(zero, data.test_x, 1, 1000)
    assert np.mean(np.asarray(readout).argmax(-1) == logits.argmax(-1)) >= 0.9


def test_thresholds_are_the_largest_input_current(trained):
    net, data = trained
    images = data.train_x[:32]
    snn = cv.convert(net, images, 3, steps=20)
    # fc1's input current at a step is W'·s + b'/2 for that step's Poisson spikes s
    from bntt_jax.encoding import poisson_encode

    # ... and fc2's, with fc1 already converted: its IF neurons integrate over the steps,
    # fire at θ₁ and reset by subtraction; the bias enters at the rate scale 2·θ₁
    w1, b1, w2, b2 = (
        np.asarray(snn.weights["fc1"]),
        np.asarray(snn.biases["fc1"]),
        np.asarray(snn.weights["fc2"]),
        np.asarray(snn.biases["fc2"]),
    )
    theta1 = float(snn.thresholds["fc1"])
    largest, largest2, u = -np.inf, -np.inf, 0.0
    for t in range(20):
        s0 = np.asarray(poisson_encode(jax.random.fold_in(jax.random.key(3), t), images, 1)[0])
        current = s0 @ w1 + b1 / 2
        largest = max(largest, current.max())
        u = u + current
        s1 = (u >= theta1).astype(np.float32)
        u = u - theta1 * s1
        largest2 = max(largest2, (s1 @ w2 + b2 / (2 * theta1)).max())
    assert theta1 == pytest.approx(largest, rel=1e-5)
    assert float(snn.thresholds["fc2"]) == pytest.approx(largest2, rel=1e-4)
    lower = cv.convert(net, images, 3, steps=20, percentile=99.0)
    assert float(lower.thresholds["fc1"]) < largest


def test_bad_conversion_arguments(trained):
    net, data = trained
    for kwargs, match in [
        (dict(reset="soft"), "reset must be one of"),
        (dict(percentile=0.0), "percentile must be in"),
        (dict(steps=0), "steps must be >= 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            cv.convert(net, data.train_x[:8], **kwargs)


def test_one_long_simulation_read_at_every_step_equals_shorter_runs(trained):
    """evaluate_converted reads T = 1 … steps from one simulation: the reading at t is the
    run stopped after t steps (same draws), for accuracy and spikes alike."""
    net, data = trained
    snn = cv.convert(net, data.train_x[:64], 0, steps=30)
    x, y = data.test_x[:100], data.test_y[:100]
    trace = cv.evaluate_converted(snn, x, y, 5, 30)
    assert trace["correct"].shape == (30,) and trace["spikes/fc1"].shape == (30,)
    for t in (1, 7, 30):
        readout, counts = cv.simulate_converted(snn, x, 5, t)
        assert trace["correct"][t - 1] == np.sum(np.asarray(readout).argmax(-1) == y)
        for layer in ("fc1", "fc2"):
            np.testing.assert_array_equal(trace[f"spikes/{layer}"][:t], counts[layer])


def test_a_converted_vgg9_matches_a_plain_loop_with_the_library_convolution():
    """VGG9 (convs, 2×2 average pooling, the readout): the converted network's spikes and
    predictions equal a plain Python loop over steps and layers written from the module
    docstring with XLA's own convolution (the simulation uses the event-driven one on CPU)."""
    from bntt_jax.cpu.convolution import conv3x3_reference

    config = NetworkConfig(arch="vgg9", img_size=32, in_channels=3, num_classes=10, norm="bn")
    net = ann.init(0, config)
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    y = np.array([3, 7])
    snn = cv.convert(net, x, 0, steps=2)
    steps = 3
    trace = cv.evaluate_converted(snn, x, y, 4, steps)

    key = jax.random.key(4)
    c, scales = POISSON_SCALE, {}
    for spec in config.layers:
        scales[spec.name] = 1.0 / c
        c *= float(snn.thresholds[spec.name])
    u = {spec.name: 0.0 for spec in config.layers}
    readout = np.zeros((2, 10), np.float32)
    for t in range(steps):
        s = np.asarray(cv.poisson_encode(jax.random.fold_in(key, t), jnp.asarray(x), 1)[0])
        for spec in config.layers:
            w, b = snn.weights[spec.name], snn.biases[spec.name] * scales[spec.name]
            i = conv3x3_reference(s, w) if spec.kind == "conv" else s.reshape(2, -1) @ w
            u[spec.name] = u[spec.name] + np.asarray(i + b)
            theta = float(snn.thresholds[spec.name])
            s = (u[spec.name] >= theta).astype(np.float32)
            u[spec.name] = u[spec.name] - theta * s
            # equal here; float32 summation order may flip a rare spike on another CPU
            assert abs(trace[f"spikes/{spec.name}"][t] - s.sum()) <= 0.002 * s.sum()
            if spec.pool == "avg2":
                s = s.reshape(2, s.shape[1] // 2, 2, s.shape[2] // 2, 2, -1).mean(axis=(2, 4))
        readout = readout + s.reshape(2, -1) @ np.asarray(snn.weights[config.readout_name])
    assert trace["correct"][-1] == np.sum(readout.argmax(-1) == y)
    assert sum(trace["spikes/conv1"]) > 0
