"""The non-spiking ANN baseline (BNTT paper, Table 3): its forward against an independent numpy
computation, batch-norm statistics by hand, training through the runner, and config errors."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bntt_jax.baselines import ann
from bntt_jax.config import NetworkConfig
from bntt_jax.train import TrainState
from experiments.core.checkpoints import load_checkpoint
from experiments.core.data.digits import load_digits
from experiments.run import main


def _randomize(net: ann.ANNParams, seed: int = 1) -> ann.ANNParams:
    """Non-trivial γ, β and running statistics, so that every term of the forward shows."""
    rng = np.random.default_rng(seed)
    params = {k: dict(v) for k, v in net.params.items()}
    stats = {k: dict(v) for k, v in net.batch_stats.items()}
    for name in stats:
        c = stats[name]["mean"].shape
        params[name]["scale"] = jnp.asarray(rng.uniform(0.5, 1.5, c), jnp.float32)
        params[name]["bias"] = jnp.asarray(rng.normal(0, 0.2, c), jnp.float32)
        stats[name]["mean"] = jnp.asarray(rng.normal(0, 0.3, c), jnp.float32)
        stats[name]["var"] = jnp.asarray(rng.uniform(0.5, 2.0, c), jnp.float32)
    return net.replace(params=params, batch_stats=stats)


def _numpy_forward(net: ann.ANNParams, x: np.ndarray) -> np.ndarray:
    """The same network by hand: 3×3 'same' convs as sums of nine shifted matmuls."""
    c, p, s = net.config, net.params, net.batch_stats
    x = np.asarray(x, np.float64)
    if c.arch == "mlp":
        x = x.reshape(len(x), -1)
    for spec in c.layers:
        w = np.asarray(p[spec.name]["kernel"], np.float64)
        if spec.kind == "conv":
            h, wd = x.shape[1:3]
            pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            x = sum(pad[:, i : i + h, j : j + wd] @ w[i, j] for i in range(3) for j in range(3))
        else:
            x = x.reshape(len(x), -1) @ w
        if c.norm == "bn":
            n, st = p[f"norm_{spec.name}"], s[f"norm_{spec.name}"]
            x = (x - np.asarray(st["mean"])) / np.sqrt(np.asarray(st["var"]) + 1e-5)
            x = x * np.asarray(n["scale"]) + np.asarray(n["bias"])
        x = np.maximum(x, 0.0)
        if spec.pool == "avg2":
            b, h, wd, ch = x.shape
            x = x.reshape(b, h // 2, 2, wd // 2, 2, ch).mean(axis=(2, 4))
        elif spec.pool == "global":
            x = x.mean(axis=(1, 2))
    return x.reshape(len(x), -1) @ np.asarray(p[c.readout_name]["kernel"], np.float64)


@pytest.mark.parametrize(
    "kw",
    [
        dict(arch="mlp", in_features=6, hidden=(16, 8), num_classes=3, norm="bn"),
        dict(arch="mlp", in_features=6, hidden=(16,), num_classes=3, norm="none"),
        dict(arch="vgg9", img_size=8, in_channels=2, num_classes=4, norm="bn"),
    ],
    ids=["mlp-bn", "mlp-none", "vgg9-bn"],
)
def test_forward_equals_an_independent_numpy_network(kw):
    config = NetworkConfig(**kw)
    net = _randomize(ann.init(0, config))
    x = np.random.default_rng(2).normal(size=(3, *config.input_shape)).astype(np.float32)
    logits = np.asarray(ann.forward(net, x))
    expected = _numpy_forward(net, x)
    if config.arch == "mlp":  # images with in_features values are flattened
        np.testing.assert_array_equal(ann.forward(net, x.reshape(3, 2, 3)), logits)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_training_step_uses_batch_statistics_and_updates_the_running_ones():
    config = NetworkConfig(arch="mlp", in_features=6, hidden=(16,), num_classes=3, norm="bn")
    net = ann.init(0, config)
    x = np.random.default_rng(3).normal(size=(32, 6)).astype(np.float32)
    y = np.arange(32) % 3
    state = TrainState.create(net, optax.sgd(0.1))
    step = jax.jit(ann.train_step)
    state, m = step(state, x, y)
    assert bool(np.all(m["finite"])) and len(m["finite"]) == len(ann.finite_flag_names(net))
    # PyTorch's momentum 0.1: running = 0.9·running + 0.1·batch statistic (fc1's pre-BN input)
    h = x @ np.asarray(net.params["fc1"]["kernel"])
    stats = state.net.batch_stats["norm_fc1"]
    np.testing.assert_allclose(stats["mean"], 0.1 * h.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * h.var(0), rtol=1e-4)
    first = float(m["loss"])
    for _ in range(100):
        state, m = step(state, x, y)
    assert float(m["loss"]) < 0.5 * first  # it fits the fixed batch


def test_digits_ann_trains_through_the_runner_and_is_converted(tmp_path):
    out = tmp_path / "ann"
    short = ["--set", "conversion_steps=20,100", "--set", "analysis_images=120"]
    assert main(["digits_ann", *short, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # the converted network, read at T = 20 and 100 of one simulation (Table 3's rows)
    conversion = metrics["conversion"]
    assert set(conversion["accuracy_at"]) == {"20", "100"} and conversion["num_steps"] == 100
    assert conversion["accuracy_at"]["100"] >= 0.9
    assert conversion["accuracy_at"]["100"] == pytest.approx(conversion["accuracy"])
    spikes = conversion["spikes_per_image_at"]
    assert 0 < spikes["20"] < spikes["100"] == pytest.approx(conversion["spikes_per_image"])
    # Eq. 23 at T = 100: all spikes of a layer per neuron
    assert conversion["spike_rate"]["fc1"] == pytest.approx(
        sum(conversion["spikes_per_step"]["fc1"]) / 256, rel=1e-6
    )
    # the run's end analysed the ANN and its conversion and compared them
    analyses = out / "analyses"
    assert json.loads((analyses / "gamma" / "result.json").read_text())["skipped"]
    converted = json.loads((analyses / "conversion" / "activity" / "result.json").read_text())
    assert converted["num_steps"] == 100
    assert converted["spikes_per_image"] == pytest.approx(conversion["spikes_per_image"])
    assert (analyses / "comparison" / "robustness.png").is_file()
    assert metrics["method"] == "ann" and metrics["test_accuracy"] >= 0.95  # chance: 0.10
    # Eq. 22 and 25: 64·256 + 256·256 + 256·10 MACs at 4.6 pJ
    assert metrics["flops_per_layer"] == {"fc1": 64 * 256, "fc2": 256 * 256, "fc3": 2560}
    assert metrics["energy_pj"] == pytest.approx(4.6 * (64 * 256 + 256 * 256 + 2560))
    net = load_checkpoint(out / "checkpoints" / "last")
    assert isinstance(net, ann.ANNParams)
    data = load_digits()
    predicted = np.asarray(ann.forward(net, data.test_x)).argmax(-1)
    assert float(np.mean(predicted == data.test_y)) == pytest.approx(metrics["test_accuracy"])
    assert "| test accuracy (on 360 test images) |" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "override,match",
    [
        ("norm=bntt", "an ANN normalises with bn"),
        ("encoder=sequential", "encoder is not a key of a ann run"),
        ("conversion_steps=0", "integers >= 1"),
        ("conversion_percentile=0", "in (0, 100]"),
        ("conversion_reset=hard", "subtract, zero"),
        ("analyses=psd", "each analysis must be one of"),
    ],
)
def test_bad_ann_configs_fail_before_anything_runs(override, match, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["digits_ann", "--set", override, "--out", str(out)]) == 2
    assert match in capsys.readouterr().err and not out.exists()


def test_the_baselines_load_lazily_from_the_package():
    code = (
        "import sys, bntt_jax as bj; assert 'jax' not in sys.modules; "
        "assert {'ann', 'conversion', 'robustness'} <= set(dir(bj)); "
        "print(bj.ann.init.__name__, bj.conversion.convert.__name__, bj.robustness.fgsm.__name__)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["init", "convert", "fgsm"]
