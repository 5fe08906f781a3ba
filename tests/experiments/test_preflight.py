"""Every predictable failure before the work: the training step's memory against what there
is, float32 ranges, an unwritable ``--out``, ``--show`` without the data; and the one source
of the entries' time estimates."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import experiments  # noqa: F401  (registers the entries)
from benchmarks import timings
from benchmarks.memory import compiled_step, xla_bytes
from experiments.core import estimates, memory, registry
from experiments.core.config import ConfigError
from experiments.core.overrides import apply_overrides
from experiments.run import main

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    "name, sets",
    [
        ("digits_bntt", ["num_steps=12"]),
        ("digits_bntt", ["num_steps=6", "batch_size=64"]),
        ("digits_ttfs", []),
    ],
)
def test_the_estimate_bounds_xlas_own_memory_analysis(name, sets):
    config = apply_overrides(registry.get(name).config, sets)
    temp, state = xla_bytes(*compiled_step(config))
    estimate = memory.estimate_bytes(config)
    activations = estimate - memory.OVERHEAD
    assert temp <= activations <= 2.5 * temp  # an upper bound, and not a loose one
    assert temp + state <= estimate


def test_the_largest_t_and_batch_that_fit_do_fit():
    config = apply_overrides(registry.get("digits_bntt").config, ["num_steps=2000"])
    available = 600_000_000
    with pytest.raises(ConfigError) as err:
        memory.check_memory(config, 1, available, "this machine")
    message = str(err.value)
    # 6 × 2000 steps × 32 samples × (512 neurons + 64 inputs) × 4 bytes + 256 MiB
    assert "needs about 1.2 GB (T = 2000, batch 32 per device)" in message
    assert "this machine has 0.6 GB available" in message
    largest_t = int(re.search(r"--set num_steps=(\d+)", message).group(1))
    largest_batch = int(re.search(r"batch_size=(\d+)", message).group(1))
    fits = [config.replace(num_steps=largest_t), config.replace(num_steps=largest_t + 1)]
    assert [memory.estimate_bytes(c) <= available for c in fits] == [True, False]
    fits = [config.replace(batch_size=largest_batch), config.replace(batch_size=largest_batch + 1)]
    assert [memory.estimate_bytes(c) <= available for c in fits] == [True, False]


def test_a_step_too_large_for_this_machine_exits_2_before_the_folder(tmp_path, capsys):
    out = tmp_path / "huge"
    assert main(["digits_bntt", "--set", "num_steps=100000", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    # XLA asks for 40.6 GB for this step; the estimate bounds it
    assert err.startswith("error: num_steps=100000: the training step needs about 44.5 GB")
    assert "--set num_steps=" in err and "the largest that fit" in err
    assert not out.exists()


def test_floats_beyond_float32_and_an_unwritable_out_exit_2(tmp_path, capsys):
    for value in ("1e308", "1e-300", "-1e39"):
        assert main(["digits_bntt", "--set", f"lr={value}", "--out", str(tmp_path / "x")]) == 2
        assert "within float32's range" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "run"
    assert main(["digits_bntt", "--set", "epochs=1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the results folder {out}" in err and "Give --out a folder" in err
    assert blocker.read_text() == "not a folder"


def test_a_quoted_tilde_is_the_home_folder_in_every_command(tmp_path, monkeypatch, capsys):
    """``--out '~/x'`` (the shell leaves a quoted ``~``) means the home folder, as printed: no
    folder named ``~`` is made here."""
    from experiments import analyze, redraw

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["digits_bntt", "--set", "epochs=1", "--out", "~/a_file/run"]) == 2
    assert f"cannot write the results folder {blocker / 'run'}" in capsys.readouterr().err
    assert analyze.main(["~/nothing"]) == 2
    assert f"{tmp_path / 'nothing'} holds no finished run" in capsys.readouterr().err
    assert redraw.main(["~/nothing"]) == 2
    assert str(tmp_path / "nothing") in capsys.readouterr().err
    assert not (tmp_path / "~").exists()


def test_show_works_without_the_data(tmp_path, capsys):
    assert main(["cifar10_bntt", "--show", "--set", f"data_dir={tmp_path}"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["data"].startswith("missing: ") and "cifar-10" in shown["data"].lower()
    assert shown["experiment"]["network"]["arch"] == "vgg9"
    assert shown["time"].endswith(f"; {estimates.describe('cifar10_bntt')}")
    assert main(["cifar10_bntt", "--set", f"data_dir={tmp_path}"]) == 2  # running needs it
    assert "error:" in capsys.readouterr().err


def test_one_source_of_time_estimates():
    """Every digits entry's time is measured (benchmarks/timings.py), every other one derived
    from the measured rates; --list (as a user runs it) and the documentation's time table
    say the same."""
    listed = subprocess.run(
        [sys.executable, "-m", "experiments.run", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = dict(line.split(" ", 1) for line in listed.splitlines())
    record = json.loads(estimates.TIMINGS.read_text())
    table = (ROOT / "docs" / "experiments.md").read_text()
    assert len(lines) > 20
    for name, line in lines.items():
        if estimates.runs_here(name):
            assert name in record["measured"], f"{name}: run python -m benchmarks.timings {name}"
        assert "~" not in registry.summary(name)  # no estimate of its own in the summary
        assert line.endswith(f"; {estimates.describe(name)}")
        assert f"| `{name}` | {estimates.describe(name)} |" in table


def test_a_derived_estimate_is_steps_times_the_measured_rate():
    config = registry.get("cifar10_bntt").config
    rates = json.loads(estimates.TIMINGS.read_text())["rates"]["bntt"]
    size = 246784 + 3072  # VGG9's spiking neurons and the 32×32×3 input
    steps = config.epochs * (50000 // config.batch_size)
    tests = config.epochs + 1
    expected = (
        steps * config.batch_size * 25 * size / rates["train"]
        + tests * 10000 * 25 * size / rates["infer"]
    )
    assert np.isclose(estimates.derived_seconds(config), expected)
    # an MLP at the dense layers' own rate: FC(1,256)-FC(256,256), one pixel per step
    config = registry.get("smnist_bntt").config
    rates = json.loads(estimates.TIMINGS.read_text())["rates"]["bntt_mlp"]
    size, steps = 256 + 256 + 1, config.epochs * (60000 // config.batch_size)
    expected = (
        steps * config.batch_size * 784 * size / rates["train"]
        + (60 // 5 + 1) * 10000 * 784 * size / rates["infer"]
    )  # tested every 5 epochs
    assert np.isclose(estimates.derived_seconds(config), expected)


def test_a_time_measured_by_hand_is_recorded_and_a_bad_one_refused(tmp_path, monkeypatch):
    copy = tmp_path / "timings.json"
    copy.write_text(estimates.TIMINGS.read_text())
    monkeypatch.setattr(estimates, "TIMINGS", copy)
    before = json.loads(copy.read_text())
    assert timings.main(["--measured", "mnist5k_comparison=1234.56"]) == 0  # runs nothing
    after = json.loads(copy.read_text())
    assert after["measured"] == {**before["measured"], "mnist5k_comparison": 1234.6}
    assert after["rates"] == before["rates"]
    written = copy.read_text()
    for bad in ("cifar10_bntt=10", "mnist5k_bntt=-1", "mnist5k_bntt=soon", "nothing=3"):
        with pytest.raises(SystemExit):  # argparse's error: exit status 2, the file untouched
            timings.main(["--measured", bad])
        assert copy.read_text() == written
