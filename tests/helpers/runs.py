"""Helpers for tests that compare results folders."""

from __future__ import annotations

import json
from pathlib import Path

#: The fields of metrics.json that measure time, and so differ between equal runs.
TIMING = ("epoch_time_s", "wall_time_s")


def sets(*changes: str) -> list[str]:
    """The command-line arguments ``--set KEY=VALUE`` of each change."""
    return [arg for change in changes for arg in ("--set", change)]


def metrics_without_timing(run: Path) -> dict:
    """A results folder's metrics.json without its timing fields."""
    metrics = json.loads((Path(run) / "metrics.json").read_text())
    for key in TIMING:
        metrics.pop(key, None)
    for record in metrics["history"]:
        for key in TIMING:
            record.pop(key, None)
    return metrics
