"""Sweeps: the TTFS paper's figure families as one command that runs or resumes its members
and draws the figure; a kill inside a member resumes to the same results; a finished sweep
redraws without training; bad commands fail before anything is written."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import redraw
from experiments.core import registry, run_folder, sweeps
from experiments.core.config import ExperimentConfig
from experiments.core.files import write_json
from experiments.core.registry import Member, Sweep
from experiments.core.runner import run_experiment
from experiments.run import main
from experiments.ttfs import figures
from tests.helpers.runs import metrics_without_timing

ROOT = Path(__file__).parents[2]
TINY = ["max_train_batches=3", "eval_every=1", "snn_images=40"]
# Two members of different lengths, so that a kill at `last_saved@3` can only happen in the
# second, after its epoch-3 checkpoint is written and before it is committed.
TINY_SWEEP = Sweep(
    "tiny_fig8",
    "two tiny TTFS runs",
    (
        Member("tb0", "λ_TB = 0", "digits_ttfs", {"lambda_tb": 0.0, "epochs": 2}, "λ_TB", 0.0),
        Member("tb1", "λ_TB = 0.1", "digits_ttfs", {"lambda_tb": 0.1, "epochs": 4}, "λ_TB", 0.1),
    ),
    "fig8",
    figures.write_sweep,
)
registry.register_sweep(TINY_SWEEP)  # a resume draws a sweep's figures by its registered name
SCRIPT = """
import sys
from experiments.core import sweeps
from experiments.core.runner import run_experiment
from tests.experiments.test_sweeps import TINY, TINY_SWEEP
sweeps.run_sweep(sys.argv[1], sweeps.resolve_new(TINY_SWEEP, TINY), False, run_experiment)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNTT_JAX_FAULT")}
    return {**env, "JAX_PLATFORMS": "cpu", "BNTT_JAX_HUGE_PAGES": "0", **extra}


@pytest.mark.e2e  # a real process killed with -9
def test_a_sweep_killed_inside_a_member_resumes_to_the_same_results(tmp_path):
    killed = tmp_path / "killed"
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(killed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(BNTT_JAX_FAULT="last_saved@3", PYTHONPATH=str(ROOT)),
    )
    assert run.returncode == -9, run.stderr[-2000:]
    assert run_folder.inspect(killed / "01_tb0").state == "finished"
    second = run_folder.inspect(killed / "02_tb1")
    assert second.state == "run" and second.epoch == 2  # epoch 3 was not committed
    assert not (killed / "report.md").exists() and not sweeps.read(killed)["complete"]
    first = (killed / "01_tb0" / "metrics.json").read_bytes()

    assert main(["--resume", "--out", str(killed)]) == 0  # the CLI finds the sweep
    assert (killed / "01_tb0" / "metrics.json").read_bytes() == first  # kept as it was
    # the interrupted member ends as the same run never interrupted
    record = sweeps.read(killed)
    assert record["complete"]
    member = record["members"][1]
    reference = run_experiment(
        sweeps.member_name(record, member),
        ExperimentConfig.from_dict(member["experiment"]),
        tmp_path / "reference",
        member["paper"],
    )
    resumed = metrics_without_timing(killed / "02_tb1")
    assert resumed == metrics_without_timing(tmp_path / "reference")
    assert len(resumed["history"]) == 4 and resumed["snn"]["images"] == 40
    assert reference["spikes_per_image"] == resumed["spikes_per_image"]
    # our numbers in the table are the members' own
    report = (killed / "report.md").read_text()
    for name in ("01_tb0", "02_tb1"):
        m = json.loads((killed / name / "metrics.json").read_text())
        assert f"| {100 * m['test_accuracy']:.2f}% | {m['spikes_per_image']:,.1f} |" in report

    # a finished sweep is never modified; its figures are redrawn without training
    assert main(["--resume", "--out", str(killed)]) == 2
    (killed / "fig8.png").unlink()
    assert redraw.main([str(killed)]) == 0
    assert (killed / "fig8.png").stat().st_size > 0
    assert (killed / "report.md").read_text() == report


def test_the_papers_sweeps_are_registered_with_their_grids(capsys):
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("fig3_ttfs", "fig8_ttfs", "fig2_ttfs"):
        assert f"\n{name} " in listed and f"\n{name}_small " in listed

    fig3 = sweeps.resolve_new(registry.lookup("fig3_ttfs"), [])
    for m in fig3["members"]:
        c = sweeps.member_keys(m)
        assert (c["dataset"], c["arch"], c["epochs"], c["lambda_tr"]) == (
            "cifar10",
            "vgg16",
            2000,
            0.0,
        )
        if m["series"].startswith("(a)"):  # SM without SR: ẑ_M,0 = exp(t_d,0/τ₀)
            assert c["target_epoch"] is None and c["tau0"] == 10.0
            assert math.exp(c["t_d0"] / c["tau0"]) == pytest.approx(m["value"])
        else:  # SM+SR at ẑ_M,0 = 1 with τ₀ swept
            assert c["target_epoch"] == 50 and c["t_d0"] == 0.0 and c["tau0"] == m["value"]
    # the paper's Table 1 value goes with the member that runs that row unchanged only
    papers = {m["label"]: m["paper"].get("accuracy") for m in fig3["members"]}
    assert papers["SM (2)"] == 87.43 and papers["SM (1)"] is None
    assert papers["SM+SR (1), τ₀ = 10"] == 91.05 and papers["SM+SR (1), τ₀ = 20"] is None

    fig8 = sweeps.resolve_new(registry.lookup("fig8_ttfs_small"), [])
    tr = [sweeps.member_keys(m) for m in fig8["members"] if m["series"].startswith("λ_TR")]
    tb = [sweeps.member_keys(m) for m in fig8["members"] if m["series"].startswith("λ_TB")]
    assert (
        [c["lambda_tr"] for c in tr]
        == [c["lambda_tb"] for c in tb]
        == [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    )
    assert {c["lambda_tb"] for c in tr} == {0.0} and {c["lambda_tr"] for c in tb} == {1e-5}
    assert {(c["dataset"], c["arch"]) for c in tr + tb} == {("digits", "mlp")}

    ablation = sweeps.resolve_new(registry.lookup("fig2_ttfs"), ["epochs=10"])
    assert [m["label"] for m in ablation["members"]] == [
        "SM (1)",
        "SM (2)",
        "SM (3)",
        "SM+SR (1)",
        "SM+SR+TR (1)",
        "SM+SR+TR+TB (1e-5)",
        "SM+SR+TR+TB (1e-4)",
    ]
    assert [m["paper"].get("accuracy") for m in ablation["members"]] == [
        None,
        87.43,
        None,
        91.05,
        91.83,
        91.90,
        91.49,
    ]
    assert {m["experiment"]["epochs"] for m in ablation["members"]} == {10}  # --set: all


def test_bad_sweep_commands_fail_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["fig8_ttfs_small", "--set", "lambda_tb=0.1", "--out", str(out)]) == 2
    assert "is what the sweep fig8_ttfs_small varies" in capsys.readouterr().err
    assert main(["fig8_ttfs_small", "--set", "epochs=0", "--out", str(out)]) == 2
    assert "epochs must be an integer >= 1" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(KeyError, match="a sweep, not one experiment"):
        registry.get("fig3_ttfs")

    # a sweep's folder is never reused for a new sweep or run
    existing = tmp_path / "sweep"
    existing.mkdir()
    record = sweeps.resolve_new(registry.lookup("fig3_ttfs_small"), [])
    write_json(existing / sweeps.SWEEP, record)
    for name in ("fig3_ttfs_small", "digits_ttfs"):
        assert main([name, "--out", str(existing)]) == 2
        assert "already holds a sweep" in capsys.readouterr().err
    # resuming keeps the sweep's own configs, and touches no folder that is not a member's
    assert main(["--resume", "--out", str(existing), "--set", "epochs=5"]) == 2
    assert "would change the run" in capsys.readouterr().err
    assert main(["fig8_ttfs_small", "--resume", "--out", str(existing)]) == 2
    assert "holds a sweep of fig3_ttfs_small, not fig8_ttfs_small" in capsys.readouterr().err
    (existing / "01_z1").mkdir()
    (existing / "01_z1" / "notes.txt").write_text("mine")
    assert main(["--resume", "--out", str(existing)]) == 2
    assert "should hold the sweep's member 'SM (1)'" in capsys.readouterr().err
    assert (existing / "01_z1" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in existing.iterdir()) == ["01_z1", "sweep.json"]
    assert main(["--resume", "--out", str(existing), "--show"]) == 2  # checked before --show
