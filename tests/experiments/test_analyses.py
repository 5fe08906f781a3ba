"""Analyses of a finished BNTT run from its folder: SNN-crafted FGSM against an independent
gradient and raising the loss, analyses equal to the run's own end-of-training evaluation,
energy recomputed by hand from the measured rates, reproducibility, and clear errors."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest

import bntt_jax as bj
from bntt_jax.encoding import poisson_encode
from bntt_jax.metrics import robustness as rb
from bntt_jax.models import SpikingNetwork
from bntt_jax.train import cross_entropy
from experiments import analyze
from experiments.core import run_folder
from experiments.core.data.digits import load_digits
from experiments.run import main

TINY = ["--set", "epochs=2", "--set", "max_train_batches=3", "--set", "num_steps=4"]


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def mlp():
    return bj.init(0, arch="mlp", in_features=64, hidden=(64,), num_classes=10, num_steps=8)


def test_fgsm_gradient_is_bptt_through_an_identity_poisson_encoder(digits, mlp):
    x, y = digits.to_intensities(digits.test_x[:32]), digits.test_y[:32]
    key = jax.random.key(1)
    grad = rb.input_gradient(mlp, x, y, key, mean=digits.mean, std=digits.std)
    # independently: the same Poisson draw as a leaf, BPTT to the spikes, summed over the
    # steps (the identity backward of the encoder) and divided by std (the standardisation)
    spikes = poisson_encode(key, digits.from_intensities(x), 8)

    def loss(s):
        logits, _, _ = SpikingNetwork(mlp.config).apply(mlp.variables(), s, train=False)
        return cross_entropy(logits, y)

    expected = jax.grad(loss)(spikes).sum(axis=0) / digits.std
    np.testing.assert_allclose(np.asarray(grad), np.asarray(expected), rtol=1e-5, atol=1e-9)
    assert np.count_nonzero(np.asarray(grad)) > 0.5 * grad.size
    # the forward pass sees exactly the encoder's spikes
    logits, _, _ = SpikingNetwork(mlp.config).apply(mlp.variables(), spikes, train=False)
    assert float(rb.snn_loss(mlp, digits.from_intensities(x), y, key)) == pytest.approx(
        float(cross_entropy(logits, y)), rel=1e-6
    )


def test_fgsm_raises_the_loss_more_than_a_random_sign_step(digits, mlp):
    x, y = digits.to_intensities(digits.test_x[:200]), digits.test_y[:200]
    adversarial = np.asarray(
        rb.fgsm(mlp, x, y, jax.random.key(1), 0.1, mean=digits.mean, std=digits.std)
    )
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert np.abs(adversarial - x).max() <= 0.1 + 1e-6
    rng = np.random.default_rng(0)
    random = np.clip(x + 0.1 * np.sign(rng.standard_normal(x.shape)), 0, 1).astype(x.dtype)

    def loss(images):  # the expectation over fresh encoder draws
        keys = [jax.random.key(100 + i) for i in range(4)]
        z = digits.from_intensities(images)
        return np.mean([float(rb.snn_loss(mlp, z, y, k)) for k in keys])

    clean, attacked, noise = loss(x), loss(adversarial), loss(random)
    assert attacked > clean + 0.3 and attacked > noise + 0.3, (clean, attacked, noise)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("analyses") / "run"
    assert main(["digits_bntt", *TINY, "--out", str(out)]) == 0  # analysed at its end
    assert (out / "analyses" / "report.md").is_file()
    return out


def _result(run, name):
    return json.loads((run / "analyses" / name / "result.json").read_text())


def test_analyses_from_the_folder_equal_the_runs_own_evaluation(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())  # best = last = epoch 2
    activity = _result(tiny_run, "activity")
    assert activity["accuracy"] == metrics["test_accuracy"]
    assert activity["spike_rate"] == metrics["spike_rate"]
    assert activity["spikes_per_step"] == metrics["spikes_per_step"]
    gamma = _result(tiny_run, "gamma")
    for layer, h in gamma["layers"].items():
        np.testing.assert_allclose(h["mean"], metrics["gamma_means"][layer], rtol=1e-6)
        assert max(max(row) for row in h["frequency"]) == 1.0
    # energy by hand from the measured rates (Eq. 22-26): MLP 64-256-256-10, T = 4
    energy = _result(tiny_run, "energy")
    x = load_digits().test_x
    rate_in = 4 * np.mean(np.minimum(np.abs(x) / 2, 1))
    flops = {"fc1": 64 * 256, "fc2": 256 * 256, "fc3": 256 * 10}
    rates = {
        "fc1": rate_in,
        "fc2": metrics["spike_rate"]["fc1"],
        "fc3": metrics["spike_rate"]["fc2"],
    }
    e_snn = 0.9 * sum(flops[k] * rates[k] for k in flops)
    assert energy["ann_flops"] == flops and energy["input_rate"] == pytest.approx(rate_in)
    assert energy["ratio_ann_to_snn"] == pytest.approx(4.6 * sum(flops.values()) / e_snn)
    spikes = metrics["spikes_per_image"]
    assert energy["truenorth"]["raw"] == pytest.approx(0.4 * spikes + 2 * 4 * 0.6)
    # robustness: σ = 0 and ε = 0 leave the images as they are
    robust = _result(tiny_run, "robustness")
    assert robust["images"] == 360
    assert robust["noise"][0]["accuracy"] == robust["fgsm"][0]["accuracy"]
    assert robust["noise"][0]["accuracy"] == metrics["test_accuracy"]
    assert robust["fgsm"][-1]["loss"] > robust["fgsm"][0]["loss"]
    report = (tiny_run / "analyses" / "report.md").read_text()
    for name in ("gamma_histograms", "spike_rate", "spikes_per_step", "flops", "robustness"):
        assert f"{name}.png" in report


def test_ann_fgsm_is_the_sign_of_finite_differences_and_raises_the_loss(digits):
    """On a tiny ReLU ANN the input gradient (through the standardisation) has the sign of
    central finite differences of the loss, and FGSM along it raises the loss."""
    from bntt_jax.baselines import ann

    net = ann.init(
        3, bj.NetworkConfig(arch="mlp", in_features=64, hidden=(12,), num_classes=10, norm="none")
    )
    x = digits.to_intensities(digits.test_x[:4]).astype(np.float64)
    y = digits.test_y[:4]
    mean, std = np.float32(digits.mean), np.float32(digits.std)

    def loss(images):
        z = (np.asarray(images, np.float32) - mean) / std
        return float(cross_entropy(ann.forward(net, z), y))

    grad = np.asarray(rb.ann_input_gradient(net, x.astype(np.float32), y, mean=mean, std=std))
    h, checked = 1e-2, 0
    for i, j in np.ndindex(4, 64):
        e = np.zeros_like(x)
        e[i, j] = h
        fd = (loss(x + e) - loss(x - e)) / (2 * h)
        if abs(fd) > 1e-4:
            assert np.sign(fd) == np.sign(grad[i, j]), (i, j, fd, grad[i, j])
            checked += 1
    assert checked > 100
    adversarial = rb.ann_fgsm(net, x.astype(np.float32), y, 0.05, mean=mean, std=std)
    assert loss(adversarial) > loss(x) + 0.05


def test_an_ann_run_is_compared_with_bntt_and_attacks_it_by_transfer(tiny_run, tmp_path):
    ann_run = tmp_path / "ann"
    assert (
        main(
            [
                "digits_ann",
                "--set",
                "epochs=3",
                "--set",
                "conversion_steps=8",
                "--set",
                "analyses=none",
                "--out",
                str(ann_run),
            ]
        )
        == 0
    )
    out = tmp_path / "compared"
    args = [str(tiny_run), "--only", "activity,energy,robustness", "--compare", str(ann_run)]
    assert analyze.main([*args, "--out", str(out)]) == 0
    assert not (ann_run / "analyses").exists()
    own = json.loads((out / "robustness" / "result.json").read_text())
    transfer = own["fgsm_transfer"]
    assert transfer["source"] == "digits_ann" and len(transfer["fgsm"]) == len(own["fgsm"])
    # ε = 0 is the clean test set whoever crafts the attack
    assert transfer["fgsm"][0]["accuracy"] == own["fgsm"][0]["accuracy"]
    report = (out / "comparison" / "report.md").read_text()
    for label in (
        "digits_bntt (bntt, T = 4)",
        "digits_ann (ANN)",
        "digits_ann converted (conversion, T = 8)",
    ):
        assert label in report
    assert "crafted on the ANN" in report and "| digits_ann (ANN) | 1 | 1.00x | – |" in report
    assert (out / "comparison" / "robustness_transfer.png").is_file()
    assert (out / "comparison" / "spikes_per_step.png").is_file()


def test_analyses_are_reproducible_and_leave_the_run_untouched(tiny_run, tmp_path):
    def run_files() -> dict:  # the lock file names its last holder: no part of the run
        return {
            p: p.read_bytes()
            for p in tiny_run.rglob("*")
            if p.is_file() and "analyses" not in p.parts and p.name != run_folder.LOCK
        }

    before = run_files()
    again = tmp_path / "again"
    assert analyze.main([str(tiny_run), "--only", "robustness,energy", "--out", str(again)]) == 0
    for name in ("robustness", "energy"):
        assert json.loads((again / name / "result.json").read_text()) == _result(tiny_run, name)
    assert not (again / "gamma").exists()
    assert run_files() == before


def test_bad_analysis_commands_fail_before_anything_is_written(tiny_run, tmp_path, capsys):
    out = tmp_path / "never"
    cases = [
        ([str(tiny_run), "--set", "epochs=5"], "would change the trained run"),
        ([str(tiny_run), "--only", "gamma,psd"], "unknown analysis 'psd'"),
        ([str(tmp_path)], "holds no finished run"),
    ]
    for args, match in cases:
        assert analyze.main([*args, "--out", str(out)]) == 2
        assert match in capsys.readouterr().err
    assert not out.exists()
    # a damaged checkpoint is named, and nothing is analysed from it
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_run, damaged, ignore=shutil.ignore_patterns("analyses"))
    final = run_folder.read_manifest(damaged)[0]["epoch"]  # what is analysed
    victim = max(
        (p for p in (damaged / "checkpoints" / "last" / str(final)).rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    victim.write_bytes(victim.read_bytes()[::-1])
    # the final network is damaged: the analyses fall back to the last intact checkpoint, and
    # say so naming the file
    with pytest.warns(UserWarning, match=f"{victim}.*Loading last/{final - 1}"):
        assert analyze.main([str(damaged), "--out", str(out), "--only", "gamma"]) == 0
    assert (out / "gamma" / "result.json").is_file()
    # ... and with both last checkpoints damaged nothing is analysed, exit 1 naming them
    other = max(
        (p for p in (damaged / "checkpoints" / "last" / str(final - 1)).rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    other.write_bytes(other.read_bytes()[:-3])
    shutil.rmtree(out)
    assert analyze.main([str(damaged), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert victim.name in err and f"last/{final - 1}" in err and not (out / "report.md").exists()


def test_a_network_without_gamma_has_no_early_exit_and_no_gamma_analysis(tiny_run, tmp_path):
    run = tmp_path / "none"
    assert (
        main(
            [
                "digits_bntt",
                *TINY,
                "--set",
                "norm=none",
                "--set",
                "analyses=none",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    assert not (run / "analyses").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["early_exit"] is None and metrics["exit_sweep"] is None
    assert metrics["gamma_means"] == {} and not (run / "gamma.png").exists()
    # the accuracy at every T still comes from the one evaluation pass; at T it is the test's
    assert sorted(metrics["accuracy_vs_T"], key=int) == ["1", "2", "3", "4"]
    assert metrics["accuracy_vs_T"]["4"] == metrics["test_accuracy"]
    report = (run / "report.md").read_text()
    assert "early exit" not in report.lower() and "γ" not in report
    assert analyze.main([str(run), "--only", "gamma"]) == 0
    assert "no γᵗ" in _result(run, "gamma")["skipped"]
    assert "Not computed" in (run / "analyses" / "report.md").read_text()

    # BNTT beside the baseline without it (Fig. 4a, 4b, Table 3): each column is that run's
    # own analysis, and nothing is written into the compared run's folder
    out = tmp_path / "compared"
    args = [str(tiny_run), "--only", "activity,robustness", "--compare", str(run)]
    assert analyze.main([*args, "--out", str(out)]) == 0
    assert not (run / "analyses" / "activity").exists()
    report = (out / "comparison" / "report.md").read_text()
    own = _result(tiny_run, "robustness")
    bntt, none = "digits_bntt (bntt, T = 4)", "digits_bntt (none, T = 4)"
    assert f"| | {bntt} | {none} |" in report
    sigma = own["noise"][2]
    assert f"| σ = {sigma['sigma']:g} | {100 * sigma['accuracy']:.2f}% |" in report
    assert f"| {none} | 4 | {100 * metrics['test_accuracy']:.2f}% |" in report
    assert (out / "comparison" / "spike_rate.png").stat().st_size > 0


@pytest.mark.e2e  # a real process killed with -9
def test_a_kill_during_the_analyses_leaves_the_run_finished_and_they_can_be_redone(tmp_path):
    """``kill -9`` after the run's second analysis: the run is complete, resume says so and
    names the command, and ``analyze`` writes them all."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNTT_JAX_FAULT")}
    env |= {"JAX_PLATFORMS": "cpu", "BNTT_JAX_FAULT": "analysis_written@2"}
    root = Path(__file__).parents[2]
    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.run",
            "digits_bntt",
            *TINY,
            "--set",
            "analyses=gamma,activity,energy",
            "--out",
            str(out),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr
    assert run_folder.inspect(out).state == "finished"
    assert (out / "analyses" / "activity" / "result.json").is_file()
    assert not (out / "analyses" / "energy").exists()
    assert not (out / "analyses" / "report.md").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "experiments.run", "--resume", "--out", str(out)],
        cwd=root,
        env={**env, "BNTT_JAX_FAULT": ""},
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 2
    assert f"python -m experiments.analyze {out}" in resumed.stderr
    assert analyze.main([str(out), "--only", "gamma,activity,energy"]) == 0
    assert (out / "analyses" / "report.md").is_file()
    assert (out / "analyses" / "energy" / "flops.png").is_file()


# ------------------------------------------------------------------- honest reports
def test_analyze_only_merges_into_the_existing_report(tiny_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    sections = [f"## {name}" for name in ("gamma", "activity", "energy", "robustness")]
    report = run / "analyses" / "report.md"
    assert all(s in report.read_text() for s in sections)
    before = (run / "analyses" / "energy" / "result.json").read_bytes()
    assert analyze.main([str(run), "--only", "gamma"]) == 0
    text = report.read_text()
    assert [s for s in sections if s in text] == sections  # none vanished, in order
    assert "energy/" in text and "robustness/" in text  # their figures stay linked
    assert (run / "analyses" / "energy" / "result.json").read_bytes() == before


def _flat(metrics: dict, sweep_steps: dict) -> dict:
    """``metrics`` with γᵗ flat over 4 steps and the sweep exiting at the given steps."""
    rows = {
        kind: [{"threshold": t, "step": s, "accuracy": 0.5} for t, s in steps.items()]
        for kind, steps in sweep_steps.items()
    }
    return {**metrics, "gamma_means": {"fc1": [1.0, 1.0, 0.99, 0.98]}, "exit_sweep": rows}


def test_the_early_exit_note_agrees_with_its_table(tiny_run):
    from experiments.bntt.report import _flat_gamma_note

    metrics = json.loads((tiny_run / "metrics.json").read_text())
    none = _flat(metrics, {"absolute": {0.1: 4, 0.5: 4}, "relative": {0.1: 4, 1.0: 4}})
    assert (
        "no threshold of the table below, absolute or relative, exits early"
        in (_flat_gamma_note(none)[0])
    )
    some = _flat(metrics, {"absolute": {0.1: 4, 0.5: 4}, "relative": {0.95: 3, 1.0: 1}})
    (note, _) = _flat_gamma_note(some)
    assert "no threshold" not in note and "only these thresholds of the table below exit" in note
    assert "1 × the peak (T_exit = 1)" in note and "0.95 × the peak (T_exit = 3)" in note


def test_the_gamma_plot_shows_every_layer_above_the_max(tiny_run, tmp_path, monkeypatch):
    from experiments.bntt import report

    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig) or path)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    report._early_exit_plots(tmp_path, metrics)
    for ax in figures[0].axes:
        lines = {line.get_label(): line for line in ax.get_lines()}
        top = lines.pop("max over layers")
        layers = [line for label, line in lines.items() if label in metrics["gamma_means"]]
        assert len(layers) == len(metrics["gamma_means"])
        assert top.get_linestyle() == "--"
        for line in layers:  # drawn over the max, and wider: never hidden under it
            assert line.get_zorder() > top.get_zorder()
            assert line.get_linewidth() > top.get_linewidth()


def test_failed_analyses_leave_their_traceback_in_the_log(tiny_run, tmp_path, monkeypatch, capsys):
    from experiments.analyses import folders
    from experiments.run import analyse_finished

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)

    def broken(out):
        raise ZeroDivisionError("an analysis divided by zero")

    monkeypatch.setattr(folders, "after_run", broken)
    assert analyse_finished(run) == 1
    err = capsys.readouterr().err
    assert "its analyses failed (ZeroDivisionError" in err and f"{run / 'log.txt'}" in err
    assert f"python -m experiments.analyze {run}" in err
    log = (run / "log.txt").read_text()
    assert "the analyses failed:\nTraceback" in log and "an analysis divided by zero" in log
    assert run_folder.inspect(run).state == "finished"  # the run itself is untouched


@pytest.mark.e2e  # real processes, interrupted by a real SIGINT
@pytest.mark.parametrize(
    "command, fault",
    [
        (["experiments.analyze", "{run}", "--out", "{tmp}/again"], "analysis_written@1"),
        (["experiments.run", "digits_bntt", *TINY, "--out", "{tmp}/new"], "collected@1"),
    ],
)
def test_ctrl_c_anywhere_exits_130_in_one_line(command, fault, tiny_run, tmp_path):
    """A real SIGINT (``BNTT_JAX_FAULT_ACTION=interrupt``) inside ``analyze``'s writes and
    inside a run's epoch: exit 130, one line on stderr, no traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("BNTT_JAX_FAULT")}
    env |= {"JAX_PLATFORMS": "cpu", "BNTT_JAX_FAULT": fault, "BNTT_JAX_FAULT_ACTION": "interrupt"}
    args = [a.format(run=tiny_run, tmp=tmp_path) for a in command]
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 130, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted"), done.stderr[-2000:]
