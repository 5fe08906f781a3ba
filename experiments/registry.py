"""A registry of named experiments (a config plus the paper's reference values) and of
sweeps (a family of experiments drawn as one figure, :mod:`experiments.sweeps`)."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from experiments.config import ExperimentConfig
from experiments.sweeps import Sweep

_REGISTRY: dict[str, Experiment] = {}
_SWEEPS: dict[str, Sweep] = {}


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
    if name in _REGISTRY or name in _SWEEPS:
        raise ValueError(f"experiment {name!r} is registered twice")
    _REGISTRY[name] = Experiment(name, summary, config, dict(paper or {}))
    return _REGISTRY[name]


def register_sweep(sweep: Sweep) -> Sweep:
    """Register a sweep; its members must name registered experiments."""
    if sweep.name in _REGISTRY or sweep.name in _SWEEPS:
        raise ValueError(f"experiment {sweep.name!r} is registered twice")
    for member in sweep.members:
        if member.entry not in _REGISTRY:
            raise ValueError(f"sweep {sweep.name!r}: no experiment {member.entry!r}")
    _SWEEPS[sweep.name] = sweep
    return sweep


def names() -> list[str]:
    """All registered names (experiments and sweeps), sorted."""
    _load_entries()
    return sorted([*_REGISTRY, *_SWEEPS])


def summary(name: str) -> str:
    """The one line of ``--list`` for an experiment or a sweep."""
    return lookup(name).summary


def get(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name raises ``KeyError`` with close matches."""
    _load_entries()
    if name not in _REGISTRY:
        _unknown(name, "a sweep, not one experiment" if name in _SWEEPS else None)
    return _REGISTRY[name]


def lookup(name: str) -> Experiment | Sweep:
    """The experiment or sweep called ``name`` (``KeyError`` with close matches if none)."""
    _load_entries()
    if name in _SWEEPS:
        return _SWEEPS[name]
    return get(name)


def _unknown(name: str, why: str | None) -> None:
    if why:
        raise KeyError(f"{name!r} is {why}.")
    close = difflib.get_close_matches(name, [*_REGISTRY, *_SWEEPS], n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise KeyError(
        f"unknown experiment {name!r}.{hint} Run `python -m experiments.run --list` to see all."
    )


def _load_entries() -> None:
    from experiments import entries, entries_ttfs  # noqa: F401  (they register on import)
