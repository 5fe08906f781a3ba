"""Crash-exact resume: a real run killed with SIGKILL at every write boundary of an epoch (and
at random instants), then resumed, ends exactly as an uninterrupted run.

The runner names its write boundaries (``experiments.faults.FAULT_POINTS``); with
``BNTT_JAX_FAULT=<point>@<epoch>`` the process kills itself there, as ``kill -9`` would, so
every boundary is hit deterministically. ``BNTT_JAX_FAULT_TRACE`` records the boundaries an
uninterrupted run meets, so the test knows it covers all of them.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments.core import faults, record, run_folder
from experiments.core.checkpoints import load_checkpoint
from experiments.run import main
from tests.helpers.runs import metrics_without_timing, sets

pytestmark = pytest.mark.e2e  # the end-to-end tier

ROOT = Path(__file__).parents[2]
# Three epochs, tested after each, so that epoch 1 (no earlier checkpoint), a middle epoch and
# the end of the run are all covered.
ARGS = [
    "digits_bntt",
    *sets("epochs=3", "max_train_batches=3", "num_steps=4", "eval_every=1", "analyses=none"),
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNTT_JAX_FAULT")}
    return {**env, "JAX_PLATFORMS": "cpu", "BNTT_JAX_HUGE_PAGES": "0", **CACHE, **extra}


# The runs share JAX's persistent compilation cache (the reference run fills it), so that
# each killed run spends its seconds on the run, not on compiling the same programs again.
CACHE: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    CACHE.update(
        JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("xla_cache")),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    yield
    CACHE.clear()


def _start(out: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *ARGS, "--out", str(out)],
        cwd=ROOT,
        env=_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _comparable(run: Path) -> dict:
    """Everything a run leaves that must not depend on interruptions: metrics.json without
    timing fields, the best record, the kept checkpoints, and the weights of last and best."""
    metrics = metrics_without_timing(run)
    manifest = run_folder.read_manifest(run)[0]
    arrays = {}
    for which in ("last", "best"):
        net = load_checkpoint(run / "checkpoints" / which)
        arrays[which] = jax.tree.map(np.asarray, {"p": net.params, "s": net.batch_stats})
    folders = sorted(
        f"{kind}/{p.name}" for kind in record.KINDS for p in (run / "checkpoints" / kind).iterdir()
    )
    return {
        "metrics": metrics,
        "best": manifest["best"],
        "complete": manifest["complete"],
        "checkpoints": sorted(manifest["checkpoints"]),
        "folders": folders,
        "arrays": arrays,
    }


def _assert_same(run: Path, reference: dict) -> None:
    got = _comparable(run)
    for key in ("metrics", "best", "complete", "checkpoints", "folders"):
        assert got[key] == reference[key], key
    for which in ("last", "best"):
        for a, b in zip(
            jax.tree.leaves(got["arrays"][which]),
            jax.tree.leaves(reference["arrays"][which]),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    leftovers = [p for p in run.rglob("*") if p.name.endswith(".tmp") or "tmp-" in p.name]
    assert not leftovers, leftovers


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, with the boundaries it met."""
    root = tmp_path_factory.mktemp("crash")
    trace = root / "trace.txt"
    proc = _start(root / "reference", BNTT_JAX_FAULT_TRACE=str(trace))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    boundaries = trace.read_text().split()
    return {"root": root, "boundaries": boundaries, **_comparable(root / "reference")}


def _kill_points(boundaries: list[str]) -> list[str]:
    """Every boundary once in the middle epoch (2) and at the end of the run; the commit
    boundaries of epoch 1 too (a kill there used to make every resume fail)."""
    epoch1 = [f"{p}@1" for p in ("best_saved", "committed", "metrics_written")]
    return ["config_written@0", *epoch1] + [
        b for b in boundaries if b.endswith("@2") or b.split("@")[0] in faults.FINAL_FAULT_POINTS
    ]


def test_the_trace_meets_every_boundary_in_order(reference):
    names = [b.split("@")[0] for b in reference["boundaries"]]
    assert set(names) == set(faults.FAULT_POINTS)
    epoch2 = [b.split("@")[0] for b in reference["boundaries"] if b.endswith("@2")]
    # Epoch 2 meets each epoch boundary once, in protocol order (best only if it improved).
    expected = [
        p
        for p in faults.EPOCH_FAULT_POINTS
        if p != "best_saved" or "best_saved@2" in reference["boundaries"]
    ]
    assert epoch2 == expected


@pytest.fixture(scope="module")
def killed(reference):
    """One run killed at each boundary, all started at once (they are independent)."""
    points = _kill_points(reference["boundaries"])
    assert len(set(p.split("@")[0] for p in points)) == len(faults.FAULT_POINTS)
    for point in points:
        assert point in reference["boundaries"], point
    procs = {p: _start(reference["root"] / p, BNTT_JAX_FAULT=p) for p in points}
    out = {}
    for point, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        out[point] = (reference["root"] / point, proc.returncode, err)
    return out


def test_kill_at_every_boundary_then_resume_equals_the_uninterrupted_run(reference, killed):
    for point, (run, returncode, err) in killed.items():
        assert returncode == -signal.SIGKILL, (point, returncode, err[-2000:])
        if point == "completed@3":  # killed after the last write: the run is finished
            assert main(["--resume", "--out", str(run)]) == 2
        else:
            assert main(["--resume", "--out", str(run)]) == 0, point
        _assert_same(run, reference)
        committed = _committed_at(point)
        if committed and point != "completed@3":
            assert f"from epoch {committed} " in (run / "log.txt").read_text(), point


def _committed_at(point: str) -> int:
    """The last epoch committed when the run dies at ``point``."""
    name, epoch = point.split("@")
    before_commit = ("config_written", "best_saved", "last_saved", "manifest_staged")
    return int(epoch) - 1 if name in before_commit and int(epoch) else int(epoch)


def test_kill_while_resuming_then_resume_again(reference):
    """Killed in epoch 2, then killed again while the resumed run commits epoch 3."""
    run = reference["root"] / "twice"
    first = _start(run, BNTT_JAX_FAULT="last_saved@2")
    first.communicate(timeout=600)
    assert first.returncode == -signal.SIGKILL
    second = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", "--resume", "--out", str(run)],
        cwd=ROOT,
        env=_env(BNTT_JAX_FAULT="committed@3"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = second.communicate(timeout=600)
    assert second.returncode == -signal.SIGKILL, err[-2000:]
    assert main(["--resume", "--out", str(run)]) == 0
    _assert_same(run, reference)
    assert (run / "log.txt").read_text().count("resumed") == 2


def test_kill_at_random_instants_then_resume(reference):
    """Kills at random instants (seeded): a random short delay after a random boundary, so
    they land inside training, inside an orbax save, between files, wherever they fall."""
    rng = random.Random(8)
    anchors = [b for b in reference["boundaries"] if not b.startswith("completed")]
    runs = []
    for i in range(3):
        trace = reference["root"] / f"random{i}.trace"
        anchor, delay = rng.choice(anchors), rng.uniform(0.0, 0.3)
        runs.append((reference["root"] / f"random{i}", trace, anchor, delay))
    procs = [_start(run, BNTT_JAX_FAULT_TRACE=str(trace)) for run, trace, _, _ in runs]
    for proc, (_, trace, anchor, delay) in zip(procs, runs, strict=True):
        while proc.poll() is None and not (trace.exists() and anchor in trace.read_text()):
            time.sleep(0.005)
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=600)
    for proc, (run, _, anchor, delay) in zip(procs, runs, strict=True):
        if proc.returncode != 0:  # else it finished before its kill
            assert proc.returncode == -signal.SIGKILL, (anchor, delay)
            manifest = run_folder.read_manifest(run)[0]
            finished = bool(manifest and manifest["complete"])
            # Killed after its completion was committed (while exiting): a finished run.
            assert main(["--resume", "--out", str(run)]) == (2 if finished else 0)
        _assert_same(run, reference)
