"""The run ledger: how a run commits its progress to its results folder, epoch by epoch.

**Commit protocol.** Each epoch ends by (1) saving a new ``best`` checkpoint if the test
accuracy improved, (2) saving ``last/<E>``, (3) hashing every file of the new checkpoints,
(4) writing ``manifest.json`` (the history, the best record, the SHA-256 of every file of every
kept checkpoint) to a temporary file and renaming it into place: that rename is the commit.
Only then are ``metrics.json`` rewritten from the manifest and superseded checkpoints deleted.
A kill at any instant therefore leaves either the old or the new manifest, each describing
checkpoints that are complete on disk; ``--resume`` continues from the manifest, deletes what
no manifest refers to (partial or uncommitted writes) and rewrites ``metrics.json``. The
previous ``last`` checkpoint is kept, so a checkpoint found damaged on resume (its hash does
not match) falls back one epoch with a warning that names the damaged file.

:class:`Ledger` is that protocol for one leg of a run: :meth:`Ledger.begin` (a new run's
``config.json``, or a resumed run's recovery), :meth:`Ledger.commit_epoch` and
:meth:`Ledger.finish`; it owns the checkpoints, the manifest, the progress file, the deletion
of superseded checkpoints, ``log.txt`` and every fault point of the run
(:mod:`experiments.core.faults`). Under ``jax.distributed`` only process 0 writes; the other
processes keep the same record in memory.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments.core import checkpoints
from experiments.core.faults import fault_point
from experiments.core.folder import (
    CONFIG,
    FORMAT,
    KINDS,
    MANIFEST,
    METRICS,
    CheckpointDamagedError,
    verify,
    write_json,
)


# ------------------------------------------------------------------------- the manifest
def new_manifest() -> dict[str, Any]:
    """The commit record before epoch 1."""
    return {
        "format": FORMAT,
        "epoch": 0,
        "complete": False,
        "history": [],
        "best": None,  # {"epoch", "accuracy", "checkpoint": "best/<E>" or None}
        "checkpoints": {},  # "last/<E>" / "best/<E>" -> {file: sha256}
        "elapsed_s": 0.0,
        "legs": [],
    }


def commit(path: Path, manifest: dict[str, Any], epoch: int) -> None:
    """Write the manifest: staged to a temporary file, then renamed into place (the commit)."""
    file = path / MANIFEST
    tmp = file.with_name(file.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(manifest, indent=2, default=float))
        f.flush()
        os.fsync(f.fileno())
    fault_point("manifest_staged", epoch)
    os.replace(tmp, file)
    _fsync_dir(file.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def best_as_of(manifest: dict[str, Any], epoch: int) -> dict[str, Any] | None:
    """The best record after ``epoch``: the first epoch with the highest test accuracy."""
    best = None
    for record in manifest["history"]:
        if record["epoch"] > epoch or "test_accuracy" not in record:
            continue
        if best is None or record["test_accuracy"] > best["accuracy"]:
            best = {"epoch": record["epoch"], "accuracy": record["test_accuracy"]}
    if best is not None:
        key = f"best/{best['epoch']}"
        best["checkpoint"] = key if key in manifest["checkpoints"] else None
    return best


def truncate(manifest: dict[str, Any], epoch: int) -> dict[str, Any]:
    """The manifest as it was committed after ``epoch`` (for a fall-back)."""
    out = dict(manifest)
    out["epoch"] = epoch
    out["complete"] = False
    out["history"] = [h for h in manifest["history"] if h["epoch"] <= epoch]
    out["best"] = best_as_of(manifest, epoch)
    keep = {f"last/{epoch}"} | ({out["best"]["checkpoint"]} if out["best"] else set())
    out["checkpoints"] = {k: v for k, v in manifest["checkpoints"].items() if k in keep}
    return out


def kept(manifest: dict[str, Any]) -> set[str]:
    """The checkpoints a committed manifest keeps on disk."""
    return set(manifest["checkpoints"])


def collect(path: Path, keep: set[str]) -> None:
    """Delete every checkpoint folder that ``keep`` does not name: superseded ones, and
    partial or uncommitted writes of a killed run. Folders set aside as damaged stay."""
    for kind in KINDS:
        root = path / "checkpoints" / kind
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            if f"{kind}/{entry.name}" in keep or ".damaged" in entry.name:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def set_aside(path: Path, key: str) -> Path:
    """Rename a damaged checkpoint ``kind/<E>`` to ``kind/<E>.damaged-<n>`` (never deleted)."""
    source = path / "checkpoints" / key
    n = 1
    while (target := source.with_name(f"{source.name}.damaged-{n}")).exists():
        n += 1
    os.replace(source, target)
    return target


# --------------------------------------------------------------------------- resume
def recover(path: Path, manifest: dict[str, Any], warn: Any) -> dict[str, Any]:
    """Verify the committed checkpoints of ``manifest`` before a resume.

    A damaged or missing ``last`` checkpoint is set aside and the run falls back one epoch
    (to the previous ``last``, kept for this; from epoch 1 back to the start). A damaged
    best checkpoint is set aside and the run continues; it saves a best checkpoint again at
    the next improvement. Every such step is committed and reported through ``warn``.
    Raises :class:`CheckpointDamagedError` when no usable checkpoint is left.
    """
    epoch = int(manifest["epoch"])
    if epoch:
        key = f"last/{epoch}"
        problem = verify(path / "checkpoints" / key, manifest["checkpoints"].get(key, {}))
        if problem:
            previous = f"last/{epoch - 1}"
            fallback = None
            if epoch == 1:
                fallback = truncate(manifest, 0)
            elif previous in manifest["checkpoints"]:
                second = verify(path / "checkpoints" / previous, manifest["checkpoints"][previous])
                if second is None:
                    fallback = truncate(manifest, epoch - 1)
                else:
                    problem = f"{problem}; and {second}"
            if fallback is None:
                raise CheckpointDamagedError(
                    f"cannot resume {path}: {problem}. No intact checkpoint is left to "
                    "continue from; start a new run."
                )
            if (path / "checkpoints" / key).exists():
                set_aside(path, key)
            warn(
                f"WARNING: {problem}. It is set aside as {key}.damaged-*, and the run falls "
                f"back to epoch {epoch - 1} and trains epoch {epoch} again."
            )
            manifest = fallback
            commit(path, manifest, fallback["epoch"])
    best = manifest["best"]
    if best and best["checkpoint"]:
        key = best["checkpoint"]
        problem = verify(path / "checkpoints" / key, manifest["checkpoints"].get(key, {}))
        if problem:
            if (path / "checkpoints" / key).exists():
                set_aside(path, key)
            warn(
                f"WARNING: the best checkpoint (epoch {best['epoch']}, test accuracy "
                f"{best['accuracy']:.4f}) cannot be used: {problem}. It is set aside; the run "
                "continues and saves a best checkpoint again when test accuracy next improves."
            )
            manifest = {
                **manifest,
                "best": {**best, "checkpoint": None},
                "checkpoints": {k: v for k, v in manifest["checkpoints"].items() if k != key},
            }
            commit(path, manifest, manifest["epoch"])
    return manifest


# --------------------------------------------------------------------------- the ledger
class Ledger:
    """One leg of a run in its results folder ``out``: what is committed, and the protocol
    that commits more (module docstring)."""

    def __init__(self, out: Path, manifest: dict[str, Any], log: logging.Logger) -> None:
        self.out, self.manifest, self.log = Path(out), manifest, log
        self.primary = jax.process_index() == 0
        self.leg_start = time.perf_counter()
        self.elapsed_before = float(manifest["elapsed_s"])

    @classmethod
    def begin(
        cls,
        out: Path,
        *,
        record: dict[str, Any] | None,
        committed: dict[str, Any] | None,
        leg: dict[str, Any],
    ) -> Ledger:
        """Open the folder for a leg: a new run writes ``config.json`` (``record``) first, a
        resumed one (``record=None``) verifies the ``committed`` manifest and falls back past
        damaged checkpoints (:func:`recover`). Partial or uncommitted writes of a killed leg
        are deleted. ``leg`` (devices, processes, data_dir) is recorded in the manifest."""
        out = Path(out)
        primary = jax.process_index() == 0
        if primary:
            out.mkdir(parents=True, exist_ok=True)
            if record is not None:  # first, so that a folder with anything of ours holds a run
                write_json(out / CONFIG, record)
                fault_point("config_written", 0)
        log = _logger(out, primary)
        manifest = (committed if primary else None) or new_manifest()
        if record is None and primary:
            manifest = recover(out, manifest, log.warning)
        manifest["epoch"] = _agree(manifest["epoch"])
        if primary:
            collect(out, kept(manifest))
            if record is None:
                write_progress(out, manifest)
        started = datetime.datetime.now().isoformat(timespec="seconds")
        leg = {"from_epoch": manifest["epoch"], "started": started, **leg}
        return cls(out, {**manifest, "legs": [*manifest["legs"], leg]}, log)

    @property
    def epoch(self) -> int:
        """The last committed epoch (0 before the first)."""
        return int(self.manifest["epoch"])

    def elapsed(self) -> float:
        """The run's wall time: the earlier legs up to their last commit, and this one."""
        return self.elapsed_before + time.perf_counter() - self.leg_start

    def restore(self, state: Any) -> Any:
        """``state`` (a freshly initialised training state) as last committed, if any."""
        if not self.epoch:
            return state
        state = checkpoints.restore_state(self.out / "checkpoints" / f"last/{self.epoch}", state)
        self.log.info("resumed %s from epoch %d (step %d)", self.out, self.epoch, int(state.step))
        return state

    def commit_epoch(self, record: dict[str, Any], state: Any) -> None:
        """Commit the epoch of ``record`` (its history record; ``test_accuracy`` if it was
        tested) and ``state`` after it: a new best checkpoint if the accuracy improved, the
        last checkpoint, the manifest (the commit), the progress file, then the deletion of
        what the manifest no longer keeps."""
        epoch, best = record["epoch"], self.manifest["best"]
        new: dict[str, dict[str, str]] = {}
        accuracy = record.get("test_accuracy")
        if accuracy is not None and (best is None or accuracy > best["accuracy"]):
            best = {"epoch": epoch, "accuracy": accuracy, "checkpoint": f"best/{epoch}"}
            if self.primary:
                new[f"best/{epoch}"] = checkpoints.save(self.out, f"best/{epoch}", state)
                fault_point("best_saved", epoch)
        if self.primary:
            new[f"last/{epoch}"] = checkpoints.save(self.out, f"last/{epoch}", state)
            fault_point("last_saved", epoch)
        self.manifest = next_manifest(self.manifest, record, best, new, self.elapsed())
        if self.primary:
            commit(self.out, self.manifest, epoch)
            fault_point("committed", epoch)
            write_progress(self.out, self.manifest)
            fault_point("metrics_written", epoch)
            collect(self.out, kept(self.manifest))
            fault_point("collected", epoch)

    def finish(self, metrics: dict[str, Any], write_plots: Any, write_report: Any) -> None:
        """Write the finished run's plots, report and final ``metrics.json``, then commit it
        as complete: a finished run is never modified again."""
        if not self.primary:
            return
        epoch = self.epoch
        write_plots()
        fault_point("plots_written", epoch)
        write_report()
        fault_point("report_written", epoch)
        write_json(self.out / METRICS, metrics)
        fault_point("final_metrics_written", epoch)
        self.manifest = {**self.manifest, "complete": True, "elapsed_s": metrics["wall_time_s"]}
        commit(self.out, self.manifest, epoch)
        fault_point("completed", epoch)

    def last_checkpoint_state(self) -> str:
        """One sentence on the last committed checkpoint, verified (for a stopped run)."""
        if not self.primary:
            return "Process 0 reports what was kept."
        if not self.epoch:
            return "No epoch was committed, so no checkpoint exists."
        key = f"last/{self.epoch}"
        where = self.out / "checkpoints" / key
        problem = verify(where, self.manifest["checkpoints"][key])
        if problem is None:
            return f"The checkpoint of epoch {self.epoch} ({where}) is intact (verified)."
        return f"The checkpoint of epoch {self.epoch} cannot be verified: {problem}."


def next_manifest(
    manifest: dict[str, Any],
    record: dict[str, Any],
    best: dict[str, Any] | None,
    new_checkpoints: dict[str, dict[str, str]],
    elapsed: float,
) -> dict[str, Any]:
    """The commit record after ``record``'s epoch. It keeps the checkpoints a fall-back of one
    epoch needs: the last two epochs, and the best checkpoint of each."""
    epoch = record["epoch"]
    previous_best = manifest["best"]["checkpoint"] if manifest["best"] else None
    keep = {f"last/{epoch}", f"last/{epoch - 1}", best and best["checkpoint"], previous_best}
    merged = {**manifest["checkpoints"], **new_checkpoints}
    return {
        **manifest,
        "epoch": epoch,
        "history": [*manifest["history"], record],
        "best": best,
        "checkpoints": {k: v for k, v in merged.items() if k in keep},
        "elapsed_s": elapsed,
    }


def write_progress(out: Path, manifest: dict[str, Any]) -> None:
    """``metrics.json`` of an unfinished run: the committed history."""
    write_json(out / METRICS, {"history": manifest["history"], "complete": False})


def _agree(value: int) -> int:
    """Process 0's value on every process (it alone reads the folder's commit record)."""
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils  # only under jax.distributed

    return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def _logger(out: Path, primary: bool) -> logging.Logger:
    """The run's log: stdout, and ``log.txt`` (appended by every leg) on process 0; other
    processes print warnings only and write nothing."""
    log = logging.getLogger(f"experiments.{out}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in log.handlers:
        handler.close()
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if primary:
        handlers.append(logging.FileHandler(out / "log.txt"))
    else:
        handlers[0].setLevel(logging.WARNING)
    for handler in handlers:
        handler.setFormatter(fmt)
        log.addHandler(handler)
    return log
