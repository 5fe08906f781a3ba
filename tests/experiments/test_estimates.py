"""Estimates true on the machine that runs the command: the reference machine's timings,
each part scaled by this machine's calibration (measured once, cached per machine)."""

from __future__ import annotations

import json
import subprocess

import pytest

from experiments.core import calibration, estimates, registry
from experiments.run import main

RECORD = json.loads(estimates.TIMINGS.read_text())
REFERENCE = RECORD["calibration"]


def _times(base=1.0, mlp=1.0, conv=1.0):
    """A calibration whose start-up and compilation take ``base`` times the reference's, its
    MLP step ``mlp`` times, its convolution ``conv`` times."""
    return {
        "startup_s": REFERENCE["startup_s"] * base,
        "compile_s": REFERENCE["compile_s"] * base,
        "mlp_step_s": REFERENCE["mlp_step_s"] * mlp,
        "conv_step_s": REFERENCE["conv_step_s"] * conv,
    }


def test_on_the_reference_machine_a_measured_entry_is_its_measurement():
    measured = RECORD["measured"]["digits_bntt"]
    assert estimates.here("digits_bntt", calibration=_times()) == pytest.approx(measured)
    # a machine twice as slow at everything takes twice as long
    slow = _times(2, 2, 2)
    assert estimates.here("digits_bntt", calibration=slow) == pytest.approx(2 * measured)


def test_each_part_scales_with_its_own_factor():
    """digits_bntt by hand: 30 epochs of 1437 // 32 = 44 steps, tested every 5 epochs and
    once more (eval batch 360: one batch of the 360 test images): 1,327 batches.
    Its fixed cost is its measured time less its steps; only that part doubles when start-up
    and compilation take twice as long."""
    config = registry.get("digits_bntt").config
    assert (config.epochs, config.eval_every, config.eval_batch_size) == (30, 5, 360)
    batches = 30 * 44 + 7 * 1
    compute = 32 * 25 * (256 + 256 + 10 + 64) / RECORD["rates"]["bntt_mlp"]["train"]
    dispatch = batches * (REFERENCE["mlp_step_s"] - compute)
    steps = estimates.derived_seconds(config) + dispatch
    fixed = RECORD["measured"]["digits_bntt"] - steps
    slow_start = estimates.here("digits_bntt", calibration=_times(base=2))
    assert slow_start == pytest.approx(2 * fixed + steps)
    slow_steps = estimates.here("digits_bntt", calibration=_times(mlp=3))
    assert slow_steps == pytest.approx(fixed + 3 * steps)
    # a convolutional network's steps follow the convolution's factor, not the MLP's
    on_conv = estimates.here("cifar10_bntt", calibration=_times(conv=2))
    assert on_conv > 1.9 * estimates.here("cifar10_bntt", calibration=_times(mlp=2))


def test_a_changed_run_keeps_its_entrys_fixed_cost():
    """A small custom plan trains in a second, but starts, compiles and analyses like its
    entry: its estimate is the entry's fixed cost plus its own steps (no longer ~1 s)."""
    entry = registry.get("digits_bntt").config
    small = entry.replace(arch="custom", plan=("f128", "f64"), epochs=5)
    whole = estimates.here("digits_bntt", calibration=_times())
    estimate = estimates.here("digits_bntt", small, calibration=_times())
    assert estimates.derived_seconds(small) < 1.5 < 0.5 * whole < estimate < whole


def test_the_reference_estimate_is_this_machines_on_the_reference_machine():
    """``--show`` prints both; on a machine calibrated as the reference they are one number,
    for a changed run (whose fixed cost is its entry's) and for a derived full-scale entry
    (start-up and compilation counted, not only its steps)."""
    small = registry.get("digits_bntt").config.replace(
        arch="custom", plan=("f128", "f64"), epochs=5
    )
    for name, config in (("digits_bntt", small), ("cifar10_bntt", None)):
        reference, how = estimates.seconds(name, config)
        assert how == "derived"
        assert reference == pytest.approx(estimates.here(name, config, calibration=_times()))
    floor = REFERENCE["startup_s"] + REFERENCE["compile_s"]
    assert estimates.seconds("digits_bntt", small)[0] > floor  # never the steps alone


def test_the_calibration_is_cached_per_machine_and_measured_once(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real cache file, in a cache folder of this test's own
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path))
    first = calibration.cache_file()
    assert first.parent == tmp_path and calibration.cached() is None
    monkeypatch.setenv("BNTT_JAX_MARCH", "x86-64-v3")  # kernels for another target: apart
    assert calibration.cache_file() != first
    monkeypatch.delenv("BNTT_JAX_MARCH")
    first.write_text("not json")
    assert calibration.cached() is None  # a damaged cache is measured again
    first.write_text(json.dumps({**_times(), "measured_at": "then"}))

    def never(*args, **kwargs):
        raise AssertionError("a cached calibration is not measured again")

    monkeypatch.setattr(subprocess, "run", never)
    assert calibration.calibrate() == {**_times(), "measured_at": "then"}
    with pytest.raises(AssertionError, match="not measured again"):
        calibration.calibrate(again=True)


def test_show_says_this_machine_and_the_reference(capsys):
    assert main(["digits_bntt", "--set", "epochs=5", "--show"]) == 0
    shown = json.loads(capsys.readouterr().out)["time"]
    assert shown.startswith("about ") and " on this machine (start-up, compilation" in shown
    assert "measured on the reference machine" in shown
    config = registry.get("digits_bntt").config.replace(epochs=5)
    assert shown.endswith(f"; {estimates.describe('digits_bntt', config)}")


def test_a_machine_that_cannot_be_measured_still_gets_the_reference_estimate(tmp_path, monkeypatch):
    monkeypatch.undo()
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path))

    def broken(*args, **kwargs):
        raise subprocess.CalledProcessError(1, args[0], stderr="no JAX here")

    monkeypatch.setattr(subprocess, "run", broken)
    shown = estimates.describe_here("digits_bntt")
    assert shown.startswith(estimates.describe("digits_bntt") + "; this machine's speed could")
