"""The run ledger: how a run commits its progress to its results folder, epoch by epoch.

**Commit protocol.** Each epoch ends by (1) saving a new ``best`` checkpoint if the test
accuracy improved, (2) saving ``last/<E>``, (3) hashing every file of the new checkpoints,
(4) writing ``manifest.json`` (the history, the best record, the SHA-256 of every file of every
kept checkpoint and of ``config.json``, in an envelope with the SHA-256 of the record itself)
to a temporary file and renaming it into place: that rename is the commit. The commit it
supersedes is written first to ``manifest.previous.json``, so that a manifest found damaged
falls back one commit (:mod:`experiments.core.manifest` holds these functions).
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
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments.core import checkpoints
from experiments.core.faults import fault_point
from experiments.core.folder import CONFIG, METRICS, read_manifest, sha256, verify, write_json
from experiments.core.manifest import (
    collect,
    commit,
    kept,
    new_manifest,
    next_manifest,
    recover,
    restore_hint,
    write_progress,
)


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
        leg: dict[str, Any],
    ) -> Ledger:
        """Open the folder for a leg: a new run writes ``config.json`` (``record``) first, a
        resumed one (``record=None``) reads its committed manifest (the previous commit if it
        is damaged, with a warning), verifies it and falls back past damaged checkpoints
        (:func:`recover`). Partial or uncommitted writes of a killed leg
        are deleted. ``leg`` (devices, processes, data_dir) is recorded in the manifest."""
        out = Path(out)
        primary = jax.process_index() == 0
        if primary:
            out.mkdir(parents=True, exist_ok=True)
            if record is not None:  # first, so that a folder with anything of ours holds a run
                write_json(out / CONFIG, record)
                fault_point("config_written", 0)
        log = _logger(out, primary)
        manifest = new_manifest()
        if record is None and primary:  # read again: it is the truth under the folder's lock
            committed, warning = read_manifest(out)
            manifest = committed or manifest
            if warning:
                log.warning("%s", warning)
                commit(out, manifest, manifest["epoch"])
            manifest = recover(out, manifest, log.warning)
        if primary and "config_sha256" not in manifest and (out / CONFIG).is_file():
            manifest["config_sha256"] = sha256(out / CONFIG)  # config.json is checked on resume
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
        previous = self.manifest
        self.manifest = next_manifest(self.manifest, record, best, new, self.elapsed())
        if self.primary:
            commit(self.out, self.manifest, epoch, previous)
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
        previous = self.manifest
        self.manifest = {**self.manifest, "complete": True, "elapsed_s": metrics["wall_time_s"]}
        commit(self.out, self.manifest, epoch, previous)
        best = self.manifest["best"]
        if best and best["checkpoint"] is None:
            self.log.warning(
                "WARNING: the best epoch's checkpoint (epoch %d) was set aside as damaged and "
                "no later epoch improved on it. %s",
                best["epoch"],
                restore_hint(best["epoch"]),
            )
        fault_point("completed", epoch)

    def log_failure(self, message: str) -> None:
        """``message`` on stdout and in ``log.txt``, with the current exception's traceback
        in ``log.txt`` only."""
        self.log.error("%s", message)
        if self.primary:
            with open(self.out / "log.txt", "a") as f:
                f.write(traceback.format_exc())

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
