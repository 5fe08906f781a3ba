"""Smoke runs of the benchmark commands (the measurements themselves are not tests)."""

import json

import pytest

from benchmarks import step

pytestmark = pytest.mark.e2e  # the end-to-end tier


def test_step_command_prints_one_json_line(capsys):
    args = [
        "--arch",
        "vgg9",
        "--T",
        "2",
        "--batch",
        "2",
        "--img-size",
        "8",
        "--mode",
        "train",
        "--steps",
        "1",
        "--json",
    ]
    assert step.main(args) == 0
    result = json.loads(capsys.readouterr().out.strip())
    assert result["impl"] == "jax" and result["seconds_per_step"] > 0
    assert result["image_steps_per_s"] == pytest.approx(4 / result["seconds_per_step"])
    assert result["first_call_s"] > 0 and result["peak_rss_mb"] > 0


def test_flop_count_of_vgg9_is_0_389_gflop_per_image_step():
    assert step.forward_gflop_per_image_step(step.network_config("vgg9", 25, 32)) == pytest.approx(
        0.389, abs=5e-4
    )


def test_torch_reference_computes_the_same_logits():
    pytest.importorskip("torch")  # a benchmark extra, never a library dependency
    from benchmarks import equivalence

    for cfg in equivalence.CASES[::2]:  # VGG9 and the MLP
        for train in (False, True):
            diff, same, size = equivalence.compare(cfg, train, batch=4)
            assert size > 0 and same and diff < 1e-9, (cfg.arch, train, diff)
