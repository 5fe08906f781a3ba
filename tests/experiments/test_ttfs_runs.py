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

from bntt_jax import ttfs
from experiments.core import registry
from experiments.core.checkpoints import load_checkpoint
from experiments.core.config import ExperimentConfig
from experiments.core.data.digits import load_digits
from experiments.core.overrides import apply_overrides
from experiments.core.runner import run_experiment
from experiments.run import main
from experiments.ttfs.config import TTFS_TABLE3
from tests.helpers.data import write_fake_cifar
from tests.helpers.runs import metrics_without_timing

ROOT = Path(__file__).parents[2]
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
    assert snn["images"] == 360 and snn["agreement"] == metrics["snn_agreement"] == 1.0
    assert snn["accuracy"] == metrics["test_accuracy"]
    assert snn["spikes_per_image"] == pytest.approx(metrics["spikes_per_image"], rel=1e-9)
    # S/(N·H) and S/N with N = 64 + 128 + 128 (input included) and H = (3 + 1)·32
    s = metrics["spikes_per_image"]
    assert metrics["neurons"] == 320 and metrics["latency_steps"] == 128
    assert metrics["spike_rate"] == pytest.approx(s / (320 * 128))
    assert metrics["sparsity"] == pytest.approx(s / 320)
    tn = metrics["energy"]["truenorth"]
    assert tn["raw"] == pytest.approx(0.4 * s + 0.6 * 352 * 128) and tn["normalized"] is None
    assert set(metrics["kernels"]) == {"input", "fc1", "fc2"}
    history = metrics["history"]
    assert len(history) == 30 and "train_tau/fc1" in history[0] and "train_p_tb" in history[0]
    assert history[0]["train_relaxed"] > history[-1]["train_relaxed"] == 0.0  # SR fades out
    for name in (
        "report.md",
        "curves.png",
        "accuracy_and_spikes.png",
        "spikes_per_layer.png",
        "kernels.png",
        "preactivations.png",
        "batch_norm.png",
        "log.txt",
    ):
        assert (out / name).stat().st_size > 0, name
    dist = metrics["distributions"]["fc2"]  # Fig. 7: z histogram with β, ẑ_m, ẑ_M
    width = np.diff(dist["z"]["edges"])
    assert np.sum(np.asarray(dist["z"]["density"]) * width) == pytest.approx(1.0)
    assert dist["z_min"] == metrics["kernels"]["fc2"]["z_min"]
    report = (out / "report.md").read_text()
    assert "| spike rate S/(N·H) |" in report and "360 test images through" in report


def test_plots_redraw_from_a_finished_folder_without_training(digits_run, tmp_path, capsys):
    from experiments import redraw, report_ttfs

    out, _ = digits_run
    (out / "preactivations.png").unlink()
    assert redraw.main([str(out)]) == 0
    assert (out / "preactivations.png").stat().st_size > 0
    (out / "kernels.png").unlink()
    assert report_ttfs.main([str(out)]) == 0  # the command's former name
    assert (out / "kernels.png").stat().st_size > 0
    assert redraw.main([str(tmp_path)]) == 2
    assert "holds no finished run or sweep" in capsys.readouterr().err


def test_checkpoint_reloads_as_the_ttfs_network(digits_run):
    out, metrics = digits_run
    net = load_checkpoint(out / "checkpoints" / "last")
    assert isinstance(net, ttfs.TTFSParams) and net.config.arch == "mlp"
    # the history's γ and β percentiles (Fig. 14-15) are those of the epoch's parameters
    last = metrics["history"][-1]
    for name, bn_key in (("gamma", "scale"), ("beta", "bias")):
        values = np.concatenate([np.ravel(net.params[k]["bn"][bn_key]) for k in ("fc1", "fc2")])
        for q in (5, 50, 95):
            assert last[f"bn_{name}/p{q}"] == pytest.approx(np.percentile(values, q), rel=1e-6)
    data = load_digits(normalize=False)
    snn = ttfs.simulate(net, data.test_x)
    assert float(np.mean(np.asarray(snn.logits).argmax(-1) == data.test_y)) == pytest.approx(
        metrics["test_accuracy"]
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNTT_JAX_FAULT")}
    return {**env, "JAX_PLATFORMS": "cpu", "BNTT_JAX_HUGE_PAGES": "0", **extra}


@pytest.mark.e2e  # a real process killed with -9
def test_killed_ttfs_run_resumes_exactly(tmp_path):
    args = ["digits_ttfs", *[a for kv in TINY for a in ("--set", kv)]]
    reference = tmp_path / "reference"
    assert main([*args, "--out", str(reference)]) == 0
    assert metrics_without_timing(reference)["snn"]["images"] == 64  # snn_images, not a batch
    killed = tmp_path / "killed"
    run = subprocess.run(
        [sys.executable, "-m", "experiments.run", *args, "--out", str(killed)],
        cwd=ROOT,
        env=_env(BNTT_JAX_FAULT="last_saved@2"),
        capture_output=True,
        text=True,
    )
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
        ExperimentConfig.from_flat(dict(method="ttfs", arch="vgg16", dataset="digits"))
    cfg = ExperimentConfig.from_flat(TTFS_TABLE3)  # Table 3: Adam 1e-3, batch 512, T 32, e_tar 50
    assert (cfg.optimizer, cfg.lr, cfg.lr_schedule, cfg.batch_size) == (
        "adam",
        1e-3,
        "constant",
        512,
    )
    options = cfg.options
    assert (options.target_epoch, options.lambda_tr, options.lambda_tb) == (50, 1e-5, 1e-5)
    assert cfg.epochs == 2000
    net = cfg.network_config
    assert net.latency == 544 and net.num_neurons() == 280_576
    narrow = apply_overrides(cfg, ["channels=" + ",".join(["8"] * 13), "hidden=16,16"])
    assert narrow.network_config.channels == (8,) * 13
    with pytest.raises(ValueError, match="13 widths"):
        apply_overrides(cfg, ["channels=8,8"])
    shown = json.loads(json.dumps(cfg.to_dict()))
    assert ExperimentConfig.from_dict(shown) == cfg


def test_a_disagreeing_spiking_network_is_reported_loudly():
    from experiments.ttfs.method import energy_report
    from experiments.ttfs.report import warnings

    snn = {"images": 360, "agreement": 359 / 360, "max_logit_difference": 0.5}
    (warning,) = warnings({"snn": snn})
    assert warning.startswith("BUG:") and "on 1 of 360 test images" in warning
    assert warnings({"snn": {**snn, "agreement": 1.0}}) == []
    # energy normalised to a reference method as Table 2 does (TSC: 0.193e6 spikes, 512 steps)
    e = energy_report(0.067e6, 544, {"name": "TSC", "spikes": 0.193e6, "steps": 512})
    assert e["truenorth"]["normalized"] == pytest.approx(0.78, rel=0.04)
    assert e["spinnaker"]["normalized"] == pytest.approx(0.60, rel=0.04)


def test_every_ttfs_table_entry_is_registered_with_the_papers_settings():
    names = registry.names()
    rows = {
        "cifar10_ttfs_sm": (2.0, None, 0.0, 0.0, 87.43),
        "cifar10_ttfs_sm_sr": (1.0, 50, 0.0, 0.0, 91.05),
        "cifar10_ttfs_sm_sr_tr": (1.0, 50, 1e-5, 0.0, 91.83),
        "cifar10_ttfs": (1.0, 50, 1e-5, 1e-5, 91.90),
        "cifar10_ttfs_tb_1e-4": (1.0, 50, 1e-5, 1e-4, 91.49),
        "cifar100_ttfs": (1.0, 500, 1e-5, 1e-5, 65.98),
    }
    for name, (z_max0, e_tar, l_tr, l_tb, accuracy) in rows.items():
        entry = registry.get(name)
        c = entry.config.flat()  # every key by its --set name
        assert (c["method"], c["arch"], c["num_steps"], c["batch_size"], c["lr"]) == (
            "ttfs",
            "vgg16",
            32,
            512,
            1e-3,
        )
        assert np.exp(c["t_d0"] / c["tau0"]) == pytest.approx(z_max0)  # ẑ_M,0 = exp(t_d,0/τ₀)
        assert (c["target_epoch"], c["lambda_tr"], c["lambda_tb"]) == (e_tar, l_tr, l_tb)
        assert entry.paper["accuracy"] == accuracy and entry.paper["table2"]
        small = registry.get(f"{name}_small").config.flat()
        assert f"{name}_small" in names and (small["dataset"], small["arch"]) == ("digits", "mlp")
        assert (small["lambda_tr"], small["lambda_tb"], small["t_d0"]) == (l_tr, l_tb, c["t_d0"])
        assert (small["target_epoch"] is None) == (e_tar is None)
    assert registry.get("cifar10_ttfs").paper["energy_reference"]["spikes"] == 0.193e6


# CIFAR-100's VGG-16 differs from CIFAR-10's in its last layer only: its entry runs as a small
# MLP here, which still goes through its archive, its 100 classes and its Table 2 report.
VGG16_TINY = ["channels=" + ",".join(["4"] * 13), "hidden=8,8"]


@pytest.mark.e2e  # whole entries through the runner on their archives
@pytest.mark.parametrize(
    "entry,archive,network,paper_accuracy,context",
    [
        ("cifar10_ttfs", "cifar-10-python.tar.gz", VGG16_TINY, "91.90%", "Han & Roy 2020"),
        (
            "cifar100_ttfs",
            "cifar-100-python.tar.gz",
            ["arch=mlp", "hidden=8"],
            "65.98%",
            "619",
        ),  # Kim et al.'s TrueNorth cell for CIFAR-100
    ],
)
def test_cifar_ttfs_entries_run_on_the_archive(
    entry, archive, network, paper_accuracy, context, tmp_path
):
    write_fake_cifar(tmp_path / archive, entry.split("_")[0])
    out = tmp_path / "run"
    tiny = [
        "epochs=1",
        "num_steps=4",
        "batch_size=4",
        "eval_batch_size=4",
        "max_train_batches=1",
        "max_eval_batches=1",
        "snn_images=4",
        *network,
    ]
    args = [entry, "--set", f"data_dir={tmp_path}", "--out", str(out)]
    for item in tiny:
        args += ["--set", item]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    layers = 17 if network is VGG16_TINY else 3  # (kernel layers + output) · T
    assert metrics["latency_steps"] == layers * 4 and metrics["snn_agreement"] == 1.0
    assert metrics["energy"]["truenorth"]["normalized"] > 0  # normalised to TSC, as Table 2
    report = (out / "report.md").read_text()
    assert "| test accuracy (on " in report and paper_accuracy in report  # the paper's beside ours
    assert context in report  # Table 2's published rows for context


def test_raw_energy_is_never_placed_beside_the_papers_normalised_one(digits_run, tmp_path):
    from experiments.ttfs.report import write_report

    out, metrics = digits_run
    config = registry.get("digits_ttfs").config
    paper = {"accuracy": 91.9, "energy_truenorth": 0.78, "energy_spinnaker": 0.6}
    text = write_report(tmp_path, "x", config, {**metrics, "paper": paper}).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| energy on")]
    assert len(rows) == 2 and all(row.endswith("| – |") and "raw" in row for row in rows)
    assert "0.78" not in "".join(rows) and "(TrueNorth 0.78, SpiNNaker 0.6)" in text
    assert "not comparable" in text
    # normalised to the reference, it stands beside the paper's normalised value
    e = metrics["energy"]
    normalised = {p: {**e[p], "normalized": 0.5} for p in ("truenorth", "spinnaker")}
    energy = {**e, **normalised, "reference": {"name": "TSC"}}
    text = write_report(tmp_path, "x", config, {**metrics, "paper": paper, "energy": energy})
    row = next(line for line in text.read_text().splitlines() if "TrueNorth ÷ TSC" in line)
    assert row.endswith("| 0.78 |") and "| 0.50 (" in row
    assert "not comparable" not in text.read_text()
