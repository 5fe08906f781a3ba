"""Fault points: every write boundary of a run, by name, where a test can kill the process.

:func:`fault_point` marks a boundary. Setting ``BNTT_JAX_FAULT=<point>@<epoch>`` makes the
process SIGKILL itself there, as a ``kill -9`` would (``BNTT_JAX_FAULT_ACTION=stop``: SIGSTOP,
a frozen process that still holds its folder's lock; ``raise``: an unforeseen error;
``interrupt``: SIGINT, a Ctrl-C), and
``BNTT_JAX_FAULT_TRACE=<file>`` appends each boundary reached to a file: the crash tests use
these to kill a real run at every boundary deterministically. Unset, they cost one
environment lookup per boundary.
"""

from __future__ import annotations

import os
import signal

#: The write boundaries of a run, in the order one epoch (then the end of the run) meets them.
EPOCH_FAULT_POINTS = (
    "best_saved",  # a new best checkpoint is complete on disk, not yet committed
    "last_saved",  # the epoch's last checkpoint is complete on disk, not yet committed
    "manifest_staged",  # manifest.json.tmp written; the rename (the commit) is next
    "committed",  # the epoch is committed
    "metrics_written",  # metrics.json rewritten from the manifest
    "collected",  # superseded checkpoints deleted
)
FINAL_FAULT_POINTS = (
    "plots_written",
    "report_written",
    "final_metrics_written",  # metrics.json holds the final metrics
    "completed",  # the manifest says complete: the run is finished
)
FAULT_POINTS = ("config_written", *EPOCH_FAULT_POINTS, *FINAL_FAULT_POINTS)
#: After a finished run, once each of its analyses is written (``analysis_written@<i>``,
#: 1-based); the run itself is complete by then.
ANALYSIS_FAULT_POINTS = ("analysis_written",)
#: A sweep's own boundaries: its record written (``@0``), a member finished (``@<member>``,
#: 1-based), its figures drawn and the sweep marked complete (``@<members>``).
SWEEP_FAULT_POINTS = ("sweep_written", "member_finished", "sweep_figures", "sweep_completed")


def fault_point(name: str, epoch: int) -> None:
    """A write boundary: record it (``BNTT_JAX_FAULT_TRACE``) and die here if asked to
    (``BNTT_JAX_FAULT=name@epoch``), as a ``kill -9`` would."""
    trace = os.environ.get("BNTT_JAX_FAULT_TRACE")
    if trace:
        with open(trace, "a") as f:
            f.write(f"{name}@{epoch}\n")
    if os.environ.get("BNTT_JAX_FAULT") == f"{name}@{epoch}":
        action = os.environ.get("BNTT_JAX_FAULT_ACTION", "kill")
        if action == "raise":  # an error nobody foresaw, after the folder exists
            raise RuntimeError(f"fault injected at {name}@{epoch} (BNTT_JAX_FAULT)")
        if action == "interrupt":  # Ctrl-C, as the terminal sends it
            os.kill(os.getpid(), signal.SIGINT)
            return
        # "stop": frozen as a hung or suspended command is, holding what it holds
        os.kill(os.getpid(), signal.SIGSTOP if action == "stop" else signal.SIGKILL)
