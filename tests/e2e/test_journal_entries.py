"""The journal paper's entries that need data this machine does not have, each driven through
one training epoch on tiny files written in the dataset's canonical format."""

from __future__ import annotations

import json

import pytest

from experiments.run import main
from tests.helpers.data import write_fake_mnist

pytestmark = pytest.mark.e2e  # the end-to-end tier


@pytest.mark.parametrize("name", ["smnist_bntt", "smnist_no_bntt"])
def test_sequential_mnist_entries_train_one_epoch(name, tmp_path):
    write_fake_mnist(tmp_path, n_train=256, n_test=100)
    out = tmp_path / "run"
    args = [name, "--set", f"data_dir={tmp_path}", "--set", "epochs=1",
            "--set", "max_train_batches=1", "--set", "eval_batch_size=100",
            "--set", "analyses=none", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and 0 <= metrics["test_accuracy"] <= 1
    config = json.loads((out / "config.json").read_text())["experiment"]
    assert (config["network"]["encoder"], config["network"]["num_steps"]) == ("sequential", 784)
