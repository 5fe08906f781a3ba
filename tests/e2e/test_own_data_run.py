"""A run on a dataset of your own (``--set dataset=PATH.npz``) and a network of your own
(``--set arch=custom --set plan=...``) through the whole runner: the network adapts to the
file's images and classes, an interrupted run resumes to
the uninterrupted run's metrics, the analyses run on it, and a changed file is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from experiments import analyze
from experiments.core import record
from experiments.core.checkpoints import load_checkpoint
from experiments.run import main
from tests.helpers.runs import metrics_without_timing, sets

pytestmark = pytest.mark.e2e  # the end-to-end tier

ARGS = [
    "digits_bntt",
    *sets(
        "arch=custom",
        "plan=c16,p,c32,p,f64",
        "epochs=2",
        "num_steps=4",
        "max_train_batches=4",
        "eval_batch_size=50",
        "eval_every=1",
        "analyses=none",
    ),
]


@pytest.fixture(scope="module")
def own_file(tmp_path_factory):
    """The digits as [N, 8, 8, 1] uint8 images, 8 classes only (labels 8, 9 dropped)."""
    digits = load_digits()
    keep = digits.target < 8
    x = (digits.images[keep] * 255 / 16).astype(np.uint8)[..., None]
    y = digits.target[keep]
    path = tmp_path_factory.mktemp("data") / "my_digits.npz"
    np.savez(path, x_train=x[:1200], y_train=y[:1200], x_test=x[1200:1400], y_test=y[1200:1400])
    return path


def test_own_data_runs_resumes_and_is_analysed(own_file, tmp_path, monkeypatch):
    data = ["--set", f"dataset={own_file}"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main([*ARGS, *data, "--out", str(whole)]) == 0
    config = json.loads((whole / "config.json").read_text())
    assert config["data"]["name"] == "my_digits.npz"
    assert config["experiment"]["dataset"] == str(own_file)
    assert "my_digits.npz" in (whole / "report.md").read_text()

    real = record.fault_point

    def stop_after_epoch_1(name: str, epoch: int) -> None:
        real(name, epoch)
        if (name, epoch) == ("committed", 1):
            raise KeyboardInterrupt

    monkeypatch.setattr(record, "fault_point", stop_after_epoch_1)
    assert main([*ARGS, *data, "--out", str(cut)]) != 0
    monkeypatch.setattr(record, "fault_point", real)
    assert main(["--resume", "--out", str(cut)]) == 0
    assert metrics_without_timing(cut) == metrics_without_timing(whole)
    net = load_checkpoint(whole)  # the network adapted to the file's images and classes
    assert (net.config.img_size, net.config.in_channels, net.config.num_classes) == (8, 1, 8)
    assert [spec.name for spec in net.config.layers] == ["conv1", "conv2", "fc1"]

    assert analyze.main([str(whole), "--only", "gamma,activity,energy"]) == 0
    energy = json.loads((whole / "analyses" / "energy" / "result.json").read_text())
    assert set(energy["snn_flops"]) == {"conv1", "conv2", "fc1", "fc2"}

    # the same path with other arrays: a resume or an analysis would mix two datasets
    x = np.load(own_file)
    np.savez(own_file, **{k: x[k] for k in x.files if k != "y_test"}, y_test=x["y_test"][::-1])
    assert main(["--resume", "--out", str(cut)]) == 2


def test_event_frames_train_and_are_analysed(tmp_path):
    """Event frames [N, T, H, W, C] (here Poisson events of the digits, two polarities)
    presented one frame per step; robustness, which perturbs images, says why it is skipped."""
    digits = load_digits()
    rng = np.random.default_rng(0)
    bright = digits.images[:, None, :, :, None] / 16
    shape = (len(bright), 5, 8, 8, 1)
    on, off = rng.poisson(0.8 * bright, shape), rng.poisson(0.1 * (1 - bright), shape)
    x, y = np.concatenate([on, off], -1).astype(np.uint16), digits.target
    path = tmp_path / "events.npz"
    np.savez(path, x_train=x[:1500], y_train=y[:1500], x_test=x[1500:1700], y_test=y[1500:1700])
    out = tmp_path / "run"
    args = [
        "digits_bntt",
        "--set",
        f"dataset={path}",
        "--set",
        "encoder=frames",
        "--set",
        "num_steps=5",
        "--set",
        "arch=custom",
        "--set",
        "plan=c8,p,f32",
        "--set",
        "epochs=2",
        "--set",
        "max_train_batches=8",
        "--set",
        "eval_batch_size=50",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    report = (out / "analyses" / "report.md").read_text()
    assert "frames input" in report and "event frames are event counts" in report
    energy = json.loads((out / "analyses" / "energy" / "result.json").read_text())
    assert energy["encoder"] == "frames"
    np.testing.assert_allclose(energy["input_rate"], 5 * np.mean(x[1500:1700] != 0), rtol=1e-6)
