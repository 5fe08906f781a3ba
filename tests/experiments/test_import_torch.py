"""The authors' PyTorch checkpoint (here written by ``to_torch`` as a ``.npz``) becomes a
finished results folder: the same network back, its report and its analyses."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import bntt_jax as bj
from experiments import import_torch
from experiments.core import run_folder
from experiments.core.checkpoints import load_checkpoint
from tests.helpers.data import write_fake_cifar


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("import")
    write_fake_cifar(root / "cifar-10-python.tar.gz", "cifar10", n_train=(8,) * 5, n_test=16)
    net = bj.init(
        0, arch="vgg9", num_steps=3, num_classes=10, img_size=32, in_channels=3, leak=0.95
    )
    np.savez(root / "ckpt.npz", **bj.to_torch(net))
    return root, net


def _args(root, out, *extra):
    return [
        str(root / "ckpt.npz"),
        "cifar10_bntt",
        "--set",
        f"data_dir={root}",
        "--set",
        "eval_batch_size=4",
        "--set",
        "analysis_images=8",
        *extra,
        "--out",
        str(out),
    ]


def test_a_checkpoint_becomes_a_finished_run_with_its_analyses(source):
    root, net = source
    out = root / "imported"
    assert import_torch.main(_args(root, out, "--set", "num_steps=3")) == 0
    assert run_folder.inspect(out).state == "finished"
    assert not list(root.glob(".*importing"))
    loaded = load_checkpoint(out)
    for a, b in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(net.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    config = json.loads((out / "config.json").read_text())
    assert config["imported"]["file"] == "ckpt.npz" and len(config["imported"]["sha256"]) == 64
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["imported"] == "ckpt.npz" and sorted(metrics["accuracy_vs_T"]) == ["1", "2", "3"]
    assert "imported from the checkpoint ckpt.npz" in (out / "report.md").read_text()
    # analysed at its end like a trained run, from the same network
    activity = json.loads((out / "analyses" / "activity" / "result.json").read_text())
    assert activity["spike_rate"] == metrics["spike_rate"]
    gamma = json.loads((out / "analyses" / "gamma" / "result.json").read_text())
    assert set(gamma["layers"]) == {"conv1", "conv4", "conv7"}


def test_a_checkpoint_of_another_network_or_a_used_folder_writes_nothing(source, capsys):
    root, _ = source
    out = root / "never"
    # the checkpoint has T = 3, cifar10_bntt's config T = 25
    assert import_torch.main(_args(root, out)) == 2
    assert "num_steps is 3, the config's 25" in capsys.readouterr().err
    assert not out.exists() and not list(root.glob(".*importing"))
    used = root / "used"
    used.mkdir()
    (used / "mine.txt").write_text("keep")
    assert import_torch.main(_args(root, used, "--set", "num_steps=3")) == 2
    assert [p.name for p in used.iterdir()] == ["mine.txt"]
    assert import_torch.main([str(root / "missing.npz"), "cifar10_bntt", "--out", str(out)]) == 2
    assert (
        import_torch.main(
            _args(root, out, "--set", "num_steps=3")[:1] + ["digits_bntt", "--out", str(out)]
        )
        == 2
    )
    assert not out.exists()


def test_an_import_that_fails_or_was_killed_leaves_nothing_at_out(source, monkeypatch):
    root, _ = source
    out = root / "failing"
    from experiments.bntt import method

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(method, "final_metrics", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            import_torch.main(_args(root, out, "--set", "num_steps=3", "--set", "analyses=none"))
    assert not out.exists() and not (root / ".failing.importing").exists()
    # what a kill -9 leaves (a half-built staging folder) is never a result: the next import
    # replaces it and completes
    (root / ".failing.importing").mkdir()
    (root / ".failing.importing" / "config.json").write_text("{half")
    assert (
        import_torch.main(_args(root, out, "--set", "num_steps=3", "--set", "analyses=none")) == 0
    )
    assert run_folder.inspect(out).state == "finished"
    assert not (root / ".failing.importing").exists()
