"""TTFS through the experiments runner: the registered digits default, crash-exact resume,
checkpoints that reload as TTFS networks, and config errors named before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from runs import metrics_without_timing

from bntt_jax import ttfs
from experiments import registry
from experiments.checkpoints import load_checkpoint
from experiments.config import TTFS_TABLE3, ExperimentConfig, apply_overrides
from experiments.data import load_digits
from experiments.run import main
from experiments.runner import run_experiment

ROOT = Path(__file__).parents[1]
TINY = ["epochs=3", "max_train_batches=3", "eval_every=1", "snn_images=64"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ttfs") / "digits_ttfs"
    metrics = run_experiment("digits_ttfs", registry.get("digits_ttfs").config, out)
    return out, metrics


def test_digits_ttfs_learns_and_its_spiking_network_agrees(digits_run):
    out, metrics = digits_run
    assert metrics["test_accuracy"] >= 0.95, metrics["test_accuracy"]  # chance: 0.10
    snn = metrics["snn"]
    assert snn["images"] == 360 and snn["agreement"] == 1.0
    assert snn["accuracy"] == metrics["test_accuracy"]
    assert snn["spikes_per_image"] == pytest.approx(metrics["spikes_per_image"], rel=1e-9)
    # S/(N·H) and S/N with N = 64 + 128 + 128 (input included) and H = (3 + 1)·32
    s = metrics["spikes_per_image"]
    assert metrics["neurons"] == 320 and metrics["latency"] == 128
    assert metrics["spike_rate"] == pytest.approx(s / (320 * 128))
    assert metrics["sparsity"] == pytest.approx(s / 320)
    assert metrics["energy"]["truenorth"] == pytest.approx(0.4 * s + 0.6 * 352 * 128)
    assert set(metrics["kernels"]) == {"input", "fc1", "fc2"}
    history = metrics["history"]
    assert len(history) == 30 and "train_tau/fc1" in history[0] and "train_p_tb" in history[0]
    assert history[0]["train_relaxed"] > history[-1]["train_relaxed"] == 0.0  # SR fades out
    for name in ("report.md", "curves.png", "accuracy_and_spikes.png", "spikes_per_layer.png",
                 "kernels.png", "log.txt"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "| spike rate S/(N·H) |" in report and "360 test images through" in report


def test_checkpoint_reloads_as_the_ttfs_network(digits_run):
    out, metrics = digits_run
    net = load_checkpoint(out / "checkpoints" / "last")
    assert isinstance(net, ttfs.TTFSParams) and net.config.arch == "mlp"
    data = load_digits(normalize=False)
    snn = ttfs.simulate(net, data.test_x)
    assert float(np.mean(np.asarray(snn.logits).argmax(-1) == data.test_y)) == pytest.approx(
        metrics["test_accuracy"]
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNTT_JAX_FAULT")}
    return {**env, "JAX_PLATFORMS": "cpu", "BNTT_JAX_HUGE_PAGES": "0", **extra}


def test_killed_ttfs_run_resumes_exactly(tmp_path):
    args = ["digits_ttfs", *[a for kv in TINY for a in ("--set", kv)]]
    reference = tmp_path / "reference"
    assert main([*args, "--out", str(reference)]) == 0
    killed = tmp_path / "killed"
    run = subprocess.run(
        [sys.executable, "-m", "experiments.run", *args, "--out", str(killed)],
        cwd=ROOT, env=_env(BNTT_JAX_FAULT="last_saved@2"), capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == -9, run.stderr[-2000:]
    assert main(["--resume", "--out", str(killed)]) == 0
    assert metrics_without_timing(killed) == metrics_without_timing(reference)
    for which in ("last", "best"):
        a = load_checkpoint(reference / "checkpoints" / which)
        b = load_checkpoint(killed / "checkpoints" / which)
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    "override,match",
    [
        ("arch=vgg9", "arch must be one of vgg16, mlp"),
        ("tau0=0", "tau0 must be a finite number in (0, ∞)"),
        ("num_steps=0", "num_steps must be an integer >= 1"),
        ("lambda_tb=-1", "lambda_tb must be a finite number in [0, ∞)"),
        ("channels=8,8", "the conv widths are for TTFS VGG-16"),
        ("target_epoch=0", "target_epoch must be an integer >= 1 (or none"),
        ("rounding=floor", "rounding must be one of ceil, round"),
    ],
)
def test_bad_ttfs_values_fail_before_anything_runs(override, match, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["digits_ttfs", "--set", override, "--out", str(out)]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_vgg16_config_is_checked_against_the_dataset():
    with pytest.raises(ValueError, match="convolutional network for images"):
        ExperimentConfig(method="ttfs", arch="vgg16", dataset="digits")
    cfg = ExperimentConfig(**TTFS_TABLE3)  # Table 3: Adam 1e-3, batch 512, T 32, e_tar 50
    assert (cfg.optimizer, cfg.lr, cfg.lr_schedule, cfg.batch_size) == (
        "adam",
        1e-3,
        "constant",
        512,
    )
    assert (cfg.target_epoch, cfg.lambda_tr, cfg.lambda_tb, cfg.epochs) == (50, 1e-5, 1e-5, 2000)
    net = cfg.network(10, (32, 32, 3))
    assert net.latency == 544 and net.num_neurons() == 280_576
    narrow = apply_overrides(cfg, ["channels=" + ",".join(["8"] * 13), "hidden=16,16"])
    assert narrow.network(10, (32, 32, 3)).channels == (8,) * 13
    with pytest.raises(ValueError, match="13 widths"):
        apply_overrides(cfg, ["channels=8,8"]).network(10, (32, 32, 3))
    shown = json.loads(json.dumps(cfg.to_dict()))
    assert ExperimentConfig.from_dict(shown) == cfg
