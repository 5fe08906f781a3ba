"""The BNTT papers' entries that need data this machine does not have, each driven through one
training epoch on tiny files written in the dataset's canonical format."""

from __future__ import annotations

import json

import pytest

from experiments.core import registry
from experiments.run import main
from tests.helpers.data import (
    write_fake_cifar,
    write_fake_dvs,
    write_fake_mnist,
    write_fake_tiny_imagenet,
)
from tests.helpers.runs import sets

pytestmark = pytest.mark.e2e  # the end-to-end tier


@pytest.mark.parametrize("name", ["smnist_bntt", "smnist_no_bntt"])
def test_sequential_mnist_entries_train_one_epoch(name, tmp_path):
    write_fake_mnist(tmp_path, n_train=256, n_test=100)
    out = tmp_path / "run"
    args = [
        name,
        "--set",
        f"data_dir={tmp_path}",
        "--set",
        "epochs=1",
        "--set",
        "max_train_batches=1",
        "--set",
        "eval_batch_size=100",
        "--set",
        "analyses=none",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and 0 <= metrics["test_accuracy"] <= 1
    config = json.loads((out / "config.json").read_text())["experiment"]
    assert (config["network"]["encoder"], config["network"]["num_steps"]) == ("sequential", 784)


# Every other entry of the BNTT tables at a scale that runs here (2 steps, batches of 4): the
# data path, the network and the whole run of each, one epoch.
SMALL = sets(
    "num_steps=2",
    "batch_size=4",
    "eval_batch_size=4",
    "epochs=1",
    "max_train_batches=1",
    "max_eval_batches=1",
    "analyses=none",
)
ENTRIES = [
    "cifar100_bntt",
    "cifar100_no_bntt",
    "cifar100_bn",
    "cifar100_tdbn",
    "tiny_imagenet_bntt",
    "tiny_imagenet_no_bntt",
    "tiny_imagenet_bn",
    "tiny_imagenet_tdbn",
    "cifar10_bn",
    "cifar10_tdbn",
    "cifar10_layernorm",
]


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_fake_cifar(folder / "cifar-10-python.tar.gz", "cifar10")
    write_fake_cifar(folder / "cifar-100-python.tar.gz", "cifar100")
    write_fake_tiny_imagenet(folder, per_class=3, n_val=8)
    write_fake_dvs(folder, indices=(0, 1, 100, 101, 102, 103))
    return folder


@pytest.mark.parametrize("name", ENTRIES)
def test_table_entries_train_one_epoch_on_tiny_files(name, fake_data, tmp_path, monkeypatch):
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main([name, "--set", f"data_dir={fake_data}", *SMALL, "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    entry = registry.get(name).config
    assert config["experiment"]["network"]["norm"] == entry.network.norm
    assert config["experiment"]["network"]["arch"] == entry.network.arch
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1


@pytest.mark.parametrize("name", ["dvs_cifar10_bntt", "dvs_cifar10_no_bntt"])
def test_dvs_entries_train_one_epoch_on_tiny_recordings(name, fake_data, tmp_path, monkeypatch):
    # the 20 frames of 42×42 one per step, through a smaller plan with the same two pools
    # (the second meets 21×21 and floors it to 10×10, as PyTorch's AvgPool2d(2) does)
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    i = SMALL.index("num_steps=2")
    small = SMALL[: i - 1] + SMALL[i + 1 :]  # the frames fix T = 20
    args = [
        name,
        "--set",
        f"data_dir={fake_data}",
        *small,
        "--set",
        "plan=c8,p,c8,p,f16",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["train"] == 40 and config["data"]["test"] == 20
    assert config["network"]["num_steps"] == 20
    # the report names the split, which the paper does not give
    assert "cifar10_dvs (test: recordings 0–99 of each class" in (out / "report.md").read_text()
