"""The run ledger: one leg of a run in its results folder, committing its progress epoch by
epoch through the folder's commit record (:mod:`experiments.core.record`, which owns the
commit order, the checksums and the fall-backs).

:class:`Ledger` holds what a leg adds to the record: the process's role (under
``jax.distributed`` only process 0 writes; the others keep the same record in memory), the
leg's wall time, ``log.txt``, and the training state restored from and saved to the
checkpoints (:mod:`experiments.core.checkpoints`): :meth:`Ledger.begin` (a new run's
``config.json``, or a resumed run's recovery), :meth:`Ledger.commit_epoch` and
:meth:`Ledger.finish`.
"""

from __future__ import annotations

import datetime
import functools
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments.core import checkpoints, record
from experiments.core.files import verify


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
        config: dict[str, Any] | None,
        leg: dict[str, Any],
    ) -> Ledger:
        """Open the folder for a leg: a new run writes ``config.json`` (``config``) first, a
        resumed one (``config=None``) reads its committed record, verified, past any damaged
        checkpoint (:func:`experiments.core.record.begin`). ``leg`` (devices, processes,
        data_dir) is recorded in the manifest."""
        out = Path(out)
        primary = jax.process_index() == 0
        if primary and config is not None:  # first: a folder with anything of ours holds a run
            record.write_config(out, config)
        log = _logger(out, primary)
        warn = functools.partial(log.warning, "%s")
        manifest = record.begin(out, config is None, warn) if primary else record.new_manifest()
        manifest["epoch"] = _agree(manifest["epoch"])
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

    def commit_epoch(self, epoch_record: dict[str, Any], state: Any) -> None:
        """Commit the epoch of ``epoch_record`` (its history record; ``test_accuracy`` if it
        was tested) and ``state`` after it (:func:`experiments.core.record.commit_epoch`)."""
        self.manifest = record.commit_epoch(
            self.out,
            self.manifest,
            epoch_record,
            lambda key: checkpoints.save(self.out, key, state),
            self.elapsed,
            self.primary,
        )

    def finish(self, metrics: dict[str, Any], write_plots: Any, write_report: Any) -> None:
        """Write the finished run's plots, report and final ``metrics.json``, then commit it
        as complete: a finished run is never modified again."""
        if self.primary:
            warn = functools.partial(self.log.warning, "%s")
            writes = [write_plots, write_report]
            self.manifest = record.commit_finished(self.out, self.manifest, metrics, writes, warn)

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
