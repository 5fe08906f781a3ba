"""A registry of named experiments: a config plus the paper's reference values."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from experiments.config import ExperimentConfig

_REGISTRY: dict[str, Experiment] = {}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment.

    Attributes:
      name: the CLI name, e.g. ``digits_bntt``.
      summary: one line for ``--list``.
      config: the :class:`ExperimentConfig` it runs.
      paper: the paper's reference values for the table cells it reproduces (accuracy in %,
        ``source`` naming the table).
    """

    name: str
    summary: str
    config: ExperimentConfig
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)


def register(
    name: str, summary: str, config: ExperimentConfig, paper: dict[str, Any] | None = None
) -> Experiment:
    """Register an experiment under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"experiment {name!r} is registered twice")
    _REGISTRY[name] = Experiment(name, summary, config, dict(paper or {}))
    return _REGISTRY[name]


def names() -> list[str]:
    """All registered names, sorted."""
    _load_entries()
    return sorted(_REGISTRY)


def get(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name raises ``KeyError`` with close matches."""
    _load_entries()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(
            f"unknown experiment {name!r}.{hint} Run `python -m experiments.run --list` to see all."
        )
    return _REGISTRY[name]


def _load_entries() -> None:
    from experiments import entries, entries_ttfs  # noqa: F401  (they register on import)
