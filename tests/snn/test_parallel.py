"""Data parallelism: one device and two forced CPU devices give the same training step.

JAX fixes its device count at start-up, so the two-device run happens in a subprocess
(``tests/helpers/parallel_check.py``) with ``--xla_force_host_platform_device_count=2``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # the end-to-end tier: a second process with two devices


@pytest.fixture(scope="module")
def result():
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"
    )
    script = Path(__file__).parents[1] / "helpers" / "parallel_check.py"
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_batch_is_split_over_two_devices(result):
    assert result["input_sharded"]


def test_global_batch_statistics_make_one_and_two_devices_agree(result):
    loss_1, loss_2 = result["loss"]
    assert loss_2 == pytest.approx(loss_1, rel=1e-6)
    assert result["spikes_equal"]
    assert result["grad_norm"][1] == pytest.approx(result["grad_norm"][0], rel=1e-5)
    assert result["grads_maxrel"] < 1e-5  # every gradient leaf
    assert result["params_maxrel"] < 1e-5  # the updated parameters
    assert result["stats_moved"] and result["stats_maxrel"] < 1e-6  # the running statistics


def test_batch_that_does_not_divide_is_a_clear_error(result):
    assert "batch size 7 does not divide over the 2 devices" in result["odd_batch_error"]


def test_the_step_is_partitioned_not_gathered(result):
    assert result["all_gathers"] == 0 and result["custom_calls"] == 0
    assert result["conv_batches"] == [str(3 * 8 // 2)]  # T x B/2 images per device


def test_ttfs_step_is_the_same_on_one_and_two_devices(result):
    loss_1, loss_2 = result["ttfs_loss"]
    assert loss_2 == pytest.approx(loss_1, rel=1e-6)
    assert result["ttfs_same_relaxation"] and result["ttfs_spikes_equal"]
    assert result["ttfs_grad_norm"][1] == pytest.approx(result["ttfs_grad_norm"][0], rel=1e-5)
    assert result["ttfs_params_maxabs"] < 1e-4 and result["ttfs_stats_maxrel"] < 1e-5
