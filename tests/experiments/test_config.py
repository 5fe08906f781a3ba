"""The nested config: its parts, its flat ``--set`` keys, and the flat ``config.json`` files of
the earlier version, which load (and resume) as they ran."""

from __future__ import annotations

import json
import shlex

import pytest

from experiments.core import record, registry, run_folder
from experiments.core.config import ConfigError, ExperimentConfig, key_names, show
from experiments.core.overrides import apply_overrides
from experiments.core.run_folder import new_run_command
from experiments.run import main
from tests.helpers.runs import metrics_without_timing, sets

#: ``config.json``'s "experiment" of a digits_bntt run written before the config was nested:
#: every key of every method, flat (as that version wrote it).
OLD_DIGITS_BNTT = {
    "method": "bntt",
    "dataset": "digits",
    "arch": "mlp",
    "norm": "bntt",
    "num_steps": 25,
    "leak": 0.95,
    "hidden": [256, 256],
    "encoder": "poisson",
    "optimizer": "sgd",
    "lr": 0.1,
    "lr_schedule": "step",
    "momentum": 0.9,
    "weight_decay": 0.0001,
    "epochs": 30,
    "batch_size": 32,
    "eval_batch_size": 360,
    "eval_every": 5,
    "seed": 0,
    "data_dir": "data",
    "exit_threshold": 0.1,
    "exit_relative": False,
    "noise_sigmas": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    "fgsm_epsilons": [0.0, 0.01, 0.02, 0.04, 0.08, 0.16],
    "analysis_images": None,
    "analyses": ["gamma", "activity", "energy", "robustness"],
    "conversion_steps": [100, 500, 1000],
    "conversion_percentile": 100.0,
    "conversion_reset": "subtract",
    "conversion_images": 256,
    "max_train_batches": None,
    "max_eval_batches": None,
    "normalize": True,
    "channels": None,
    "tau0": 10.0,
    "t_d0": 0.0,
    "rounding": "ceil",
    "input_coding": "ttfs",
    "pooling": "max",
    "dropout": 0.0,
    "target_epoch": 50,
    "lambda_tr": 1e-05,
    "lambda_tb": 1e-05,
    "kernel_train_start": 0,
    "snn_images": 1000,
}
OLD_DIGITS_TTFS = {
    **OLD_DIGITS_BNTT,
    "method": "ttfs",
    "num_steps": 32,
    "leak": None,
    "hidden": [128, 128],
    "optimizer": "adam",
    "lr": 0.001,
    "lr_schedule": "constant",
    "normalize": False,
    "target_epoch": 10,
    "snn_images": None,
}
OLD_DIGITS_ANN = {**OLD_DIGITS_BNTT, "method": "ann", "norm": "bn", "leak": None}


@pytest.mark.parametrize(
    "old,entry",
    [
        (OLD_DIGITS_BNTT, "digits_bntt"),
        (OLD_DIGITS_TTFS, "digits_ttfs"),
        (OLD_DIGITS_ANN, "digits_ann"),
    ],
)
def test_a_flat_config_of_the_earlier_version_is_the_run_it_was(old, entry):
    """The keys another method had (kept, unused, by that version) are dropped; the rest is
    the same run: the same config and the same network."""
    config = ExperimentConfig.from_dict(json.loads(json.dumps(old)))
    assert config == registry.get(entry).config
    assert len(old) == 44 and len(config.flat()) < 44  # only its method's keys are left


def test_every_entry_round_trips_through_json_and_through_set():
    for name in registry.names():
        entry = registry.lookup(name)
        if isinstance(entry, registry.Sweep):
            continue
        config = entry.config
        assert ExperimentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
        typed = [f"{k}={'none' if v is None else show(v)}" for k, v in config.flat().items()]
        assert apply_overrides(config, typed) == config, name


def test_the_parts_are_nested_and_each_key_has_one_flat_name():
    config = registry.get("digits_ann").config
    nested = config.to_dict()
    assert nested["network"] == {"arch": "mlp", "norm": "bn", "hidden": [256, 256], "plan": None}
    assert nested["options"]["conversion_steps"] == [100, 500, 1000]
    assert nested["analysis"]["analyses"] == ["gamma", "activity", "energy", "robustness"]
    assert set(config.flat()) <= set(key_names())
    assert {"num_steps", "tau0", "conversion_steps", "encoder"} <= set(key_names())


def test_a_key_of_another_method_is_refused_when_given_and_dropped_when_inherited():
    ttfs = registry.get("digits_ttfs").config
    with pytest.raises(ConfigError, match="norm is not a key of a ttfs run"):
        ttfs.replace(norm="bn")
    # digits_bntt's leak, T and encoder are not the ANN's: switching method drops them
    ann = registry.get("digits_bntt").config.replace(method="ann", norm="bn")
    assert ann.network_config.norm == "bn" and ann.network_config.hidden == (256, 256)
    assert "leak" not in ann.flat() and ann.options.conversion_steps == (100, 500, 1000)
    with pytest.raises(ConfigError, match="an ANN normalises with bn"):  # bntt's norm stays
        registry.get("digits_bntt").config.replace(method="ann")


def test_a_run_folder_of_the_earlier_version_resumes_to_the_same_end(tmp_path, monkeypatch):
    """A run killed after epoch 1 whose config.json is the earlier version's flat form resumes
    to the metrics of the run never interrupted."""
    tiny = [
        *sets("epochs=2", "max_train_batches=3", "num_steps=4", "eval_every=1", "analyses=none")
    ]
    assert main(["digits_bntt", *tiny, "--out", str(tmp_path / "whole")]) == 0
    real = record.fault_point

    def interrupt(name: str, epoch: int) -> None:
        real(name, epoch)
        if f"{name}@{epoch}" == "collected@1":
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(record, "fault_point", interrupt)
        assert main(["digits_bntt", *tiny, "--out", str(tmp_path / "old")]) == 130
    config_file = tmp_path / "old" / "config.json"
    saved = json.loads(config_file.read_text())
    old = {
        **OLD_DIGITS_BNTT,
        "epochs": 2,
        "max_train_batches": 3,
        "num_steps": 4,
        "eval_every": 1,
        "analyses": None,
    }
    config_file.write_text(json.dumps({**saved, "experiment": old}))
    # ... and its manifest the earlier form too: no checksum, no config hash, no previous commit
    manifest = run_folder.read_manifest(tmp_path / "old")[0]
    del manifest["config_sha256"]
    (tmp_path / "old" / record.MANIFEST).write_text(json.dumps(manifest))
    (tmp_path / "old" / record.PREVIOUS).unlink()
    assert main(["--resume", "--out", str(tmp_path / "old")]) == 0
    assert metrics_without_timing(tmp_path / "old") == metrics_without_timing(tmp_path / "whole")


REGISTRY_DUMP = """
import importlib, json, sys
for method in sys.argv[1:]:
    importlib.import_module(f"experiments.{method}.entries")
from experiments.core import registry
out = {}
for name in registry.names():
    entry = registry.lookup(name)
    configs = (registry.member_configs(entry) if isinstance(entry, registry.Sweep)
               else [entry.config])
    out[name] = [c.to_dict() for c in configs]
print(json.dumps(out, sort_keys=True, default=str))
"""


def test_the_entries_register_the_same_experiments_in_any_order():
    """Each method's entries alone, in two orders: the same registry (an ANN built on a BNTT
    entry, a sweep with members of another method, resolve when used)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[2]

    def dump(*order: str) -> dict:
        # each order in a fresh process: registration happens once per process
        command = [sys.executable, "-c", REGISTRY_DUMP, *order]
        run = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)
        return json.loads(run.stdout)

    forward, backward = dump("ann", "bntt", "ttfs"), dump("ttfs", "bntt", "ann")
    assert forward == backward
    assert forward["cifar10_ann"] == [
        registry.get("cifar10_bntt").config.replace(method="ann", norm="bn", lr=0.1).to_dict()
    ]
    assert len(forward["mnist5k_comparison"]) == 11


def test_a_sweep_member_of_no_experiment_is_named_when_the_sweep_is_used():
    sweep = registry.Sweep("x", "x", (registry.Member("a", "a", "no_such_entry"),), "f", print)
    with pytest.raises(KeyError, match="no_such_entry"):
        registry.member_configs(sweep)


def test_the_suggested_new_run_keeps_everything_of_the_run():
    """A refused resume suggests a new run with every key in which the run differs from its
    entry (its data and network, not only the change): parsed back through ``--set``, the
    command gives the run's config with the change."""
    entry = registry.get("digits_bntt").config
    run = entry.replace(epochs=3, num_steps=4, hidden=(32, 32), lr=0.05)
    command = new_run_command("digits_bntt", run)
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "experiments.run", "digits_bntt"]
    assert words[-2:] == ["--out", "NEW_FOLDER"]
    sets = words[5:-2:2]
    assert sorted(sets) == ["epochs=3", "hidden=32,32", "lr=0.05", "num_steps=4"]
    assert apply_overrides(entry, sets) == run


def test_a_folder_of_a_newer_version_says_newer(tmp_path, capsys):
    """A results folder whose format is newer than this version's is not called earlier: the
    message names both formats and says to update."""
    out = tmp_path / "newer"
    out.mkdir()
    config = registry.get("digits_bntt").config.to_dict()
    newer = {"format": record.FORMAT + 1, "name": "digits_bntt", "experiment": config}
    (out / "config.json").write_text(json.dumps(newer))
    assert main(["--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    formats = f"results-folder format {record.FORMAT + 1}; this one reads format {record.FORMAT}"
    assert formats in err
    assert "Update bntt-jax" in err and "earlier" not in err
    assert main(["digits_bntt", "--out", str(out)]) == 2
    assert "from a newer bntt-jax" in capsys.readouterr().err
