"""The experiments CLI: listing, unknown names, and the embedded default end to end."""

import subprocess
import sys

import pytest

from experiments import registry
from experiments.run import main


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


def test_digits_default_runs_the_engine_on_real_data():
    metrics = registry.get("digits_bntt").run()
    assert metrics["num_test_images"] == 360  # 20% of 1,797, stratified
    assert set(metrics["spike_rate"]) == {"fc1", "fc2"}
    assert all(rate > 0 for rate in metrics["spike_rate"].values())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "experiments.run", "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "digits_bntt" in result.stdout
