"""Several processes under ``jax.distributed``: two processes with one CPU device each run a
small experiment; only process 0 writes, and the metrics match one process with two devices.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.core import run_folder
from tests.helpers.runs import metrics_without_timing, sets

pytestmark = pytest.mark.e2e  # the end-to-end tier

ROOT = Path(__file__).parents[2]
ARGS = ["digits_bntt", *sets("epochs=2", "max_train_batches=4", "num_steps=4", "eval_every=1")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _close(a, b, path="") -> list[str]:
    """Paths where ``a`` and ``b`` differ beyond float32 rounding."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        return [d for k in a for d in _close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list):
        assert len(a) == len(b), path
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _close(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float):
        return [] if a == pytest.approx(b, rel=1e-5, abs=1e-7) else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a} vs {b}"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "BNTT_JAX_HUGE_PAGES": "0"}
    env.pop("XLA_FLAGS", None)
    port = _free_port()
    # Process 1 is given a folder of its own: it must not even create it.
    outs = [root / "two_processes", root / "process1_must_not_write"]
    cmds = [
        [
            sys.executable,
            "-m",
            "experiments.run",
            *ARGS,
            "--out",
            str(outs[i]),
            "--coordinator",
            f"localhost:{port}",
            "--num-processes",
            "2",
            "--process-id",
            str(i),
        ]
        for i in range(2)
    ]
    procs = [
        subprocess.Popen(
            c, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for c in cmds
    ]
    two_devices = root / "two_devices"
    single = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *ARGS, "--out", str(two_devices)],
        cwd=root,
        env={**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    logs = [p.communicate(timeout=600)[0] for p in (*procs, single)]
    for proc, log in zip((*procs, single), logs, strict=True):
        assert proc.returncode == 0, log[-3000:]
    return {"root": root, "outs": outs, "two_devices": two_devices, "logs": logs}


def test_two_processes_see_two_devices(runs):
    assert "2 device(s) in 2 process(es)" in runs["logs"][0]
    assert "2 device(s) in 1 process(es)" in runs["logs"][2]


def test_only_process_0_writes(runs):
    run, other = runs["outs"]
    assert not other.exists()
    assert sorted(p.name for p in runs["root"].iterdir()) == sorted(
        [run.name, runs["two_devices"].name]
    )
    manifest = run_folder.read_manifest(run)[0]
    assert manifest["complete"] and manifest["legs"][0]["processes"] == 2
    assert (run / "report.md").exists() and "results:" not in runs["logs"][1]


def test_metrics_match_one_process_with_two_devices(runs):
    two_processes = metrics_without_timing(runs["outs"][0])
    two_devices = metrics_without_timing(runs["two_devices"])
    assert _close(two_processes, two_devices) == []
