"""The experiments CLI and runner: results folder, checkpoints, resume, errors, digits default."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from bntt_jax.early_exit import exit_step_from_means
from experiments.bntt.method import evaluate
from experiments.core import registry, run_folder
from experiments.core.checkpoints import load_checkpoint
from experiments.core.overrides import apply_overrides
from experiments.core.runner import run_experiment
from experiments.run import main
from tests.helpers.runs import sets

TINY = sets("epochs=2", "max_train_batches=3", "num_steps=4", "analyses=none")


def test_list(capsys):
    assert main(["--list"]) == 0
    assert "digits_bntt" in capsys.readouterr().out


def test_unknown_name_suggests_close_match(capsys):
    assert main(["digit_bntt"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'digit_bntt'" in err and "Did you mean 'digits_bntt'" in err
    with pytest.raises(KeyError, match="--list"):
        registry.get("zzz")


def test_no_name_is_a_usage_error():
    with pytest.raises(SystemExit):
        main([])


@pytest.mark.parametrize(
    "override,match",
    [
        ("epoch=3", "unknown config key. Fix: did you mean epochs"),
        ("epochs=abc", "expected int"),
        ("hidden=a,b", "expected comma-separated ints or none"),
        ("batch_size=0", "batch_size must be an integer >= 1"),
        ("optimizer=rmsprop", "optimizer must be one of sgd, adam"),
        ("lr", "expected key=value"),
    ],
)
def test_bad_set_says_which_and_why(override, match, capsys):
    assert main(["digits_bntt", "--set", override]) == 2
    assert match in capsys.readouterr().err


def test_set_parses_types():
    base = registry.get("digits_bntt").config
    cfg = apply_overrides(base, ["hidden=64,32", "leak=none", "lr=0.05", "max_eval_batches=2"])
    assert cfg.network.hidden == (64, 32) and cfg.network.leak is None and cfg.lr == 0.05
    assert cfg.max_eval_batches == 2 and cfg.network_config.leak == 0.99  # the MLP's default


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["digits_bntt", *TINY, "--out", str(out)]) == 0
    return out


def test_tiny_run_writes_the_whole_results_folder(tiny_run):
    for name in (
        "config.json",
        "metrics.json",
        "log.txt",
        "report.md",
        "curves.png",
        "spikes_per_step.png",
        "gamma.png",
        "exit_sweep.png",
        "accuracy_vs_T.png",
    ):
        assert (tiny_run / name).stat().st_size > 0, name
    for name in ("best", "last"):
        assert any((tiny_run / "checkpoints" / name).iterdir()), name
    manifest, warning = run_folder.read_manifest(tiny_run)
    assert warning is None
    assert manifest["complete"] and manifest["epoch"] == 2
    # Kept for a fall-back of one epoch: the last two epochs and the best (digits_bntt tests
    # every 5 epochs and after the last, so epoch 2 is the only test and the only best).
    assert manifest["best"]["epoch"] == 2
    assert set(manifest["checkpoints"]) == {"last/1", "last/2", "best/2"}
    assert {p.name for p in (tiny_run / "checkpoints" / "best").iterdir()} == {"2"}
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["complete"] and len(metrics["history"]) == 2
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["num_test_images"] == 360
    assert set(metrics["spike_rate"]) == {"fc1", "fc2"}
    assert metrics["wall_time_s"] > 0 and 1 <= metrics["early_exit"]["step"] <= 4
    # Fig. 6's sweep: each threshold's T_exit is the rule's, its accuracy that of T = T_exit
    means = np.stack([np.asarray(v) for v in metrics["gamma_means"].values()])
    for kind, rows in metrics["exit_sweep"].items():
        assert len(rows) == 20
        for row in rows:
            step = exit_step_from_means(means, row["threshold"], kind == "relative")
            assert row["step"] == step
            assert row["accuracy"] == metrics["accuracy_vs_T"][str(step)]
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["experiment"]["epochs"] == 2 and config["network"]["num_steps"] == 4
    assert "| test accuracy (T = 4, on 360 test images) |" in (tiny_run / "report.md").read_text()


def test_existing_results_are_never_overwritten(tiny_run, capsys):
    before = (tiny_run / "metrics.json").read_bytes()
    assert main(["digits_bntt", *TINY, "--out", str(tiny_run)]) == 2
    assert "already holds a finished run of digits_bntt" in capsys.readouterr().err
    assert (tiny_run / "metrics.json").read_bytes() == before


def test_checkpoint_reloads_to_the_same_network(tiny_run):
    # The final evaluation ran on the last state; the reloaded checkpoint gives the same
    # accuracy and the same spikes.
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    net = load_checkpoint(tiny_run / "checkpoints" / "last")
    config = apply_overrides(registry.get("digits_bntt").config, TINY[1::2])
    from experiments.core.data.digits import load_digits

    ev = evaluate(net, load_digits(), config)
    assert ev["accuracy"] == metrics["test_accuracy"]
    assert ev["spike_rate"] == pytest.approx(metrics["spike_rate"], rel=1e-6)
    best = load_checkpoint(tiny_run)  # the folder itself means its best checkpoint
    assert jax.tree.structure(best.params) == jax.tree.structure(net.params)


def _tiny_config(seed):
    return apply_overrides(
        registry.get("digits_bntt").config, [*TINY[1::2], f"seed={seed}", "epochs=1"]
    )


def test_same_seed_same_metrics_other_seed_other(tmp_path):
    a = run_experiment("a", _tiny_config(0), tmp_path / "a")
    b = run_experiment("b", _tiny_config(0), tmp_path / "b")
    c = run_experiment("c", _tiny_config(1), tmp_path / "c")
    assert a["history"][0]["train_loss"] == b["history"][0]["train_loss"]
    assert a["spike_rate"] == b["spike_rate"]
    assert a["history"][0]["train_loss"] != c["history"][0]["train_loss"]


@pytest.mark.e2e  # the whole main job, 30 epochs
def test_digits_default_reaches_97_percent(tmp_path):
    # The README's main job, as registered: real Poisson spikes, trained from scratch.
    metrics = run_experiment("digits_bntt", registry.get("digits_bntt").config, tmp_path / "d")
    assert metrics["test_accuracy"] >= 0.97, metrics["test_accuracy"]
    assert metrics["num_test_images"] == 360
    assert all(np.isfinite(list(metrics["spike_rate"].values())))


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "experiments.run", "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "digits_bntt" in result.stdout


def test_a_results_folders_network_saves_to_one_file_and_loads_the_same(tiny_run, tmp_path):
    import bntt_jax as bj

    net = load_checkpoint(tiny_run)
    back = bj.load(bj.save(tmp_path / "digits.npz", net))
    assert type(back) is type(net) is bj.NetworkParams and back.config == net.config
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(net), strict=True):
        np.testing.assert_array_equal(a, b)
