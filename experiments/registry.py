"""A registry of named experiments (configs as code, a decorator to add one)."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

_REGISTRY: dict[str, Experiment] = {}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named, runnable experiment.

    Attributes:
      name: the CLI name, e.g. ``digits_bntt``.
      summary: one line for ``--list``.
      run: ``run() -> dict`` does the work and returns its metrics.
      paper: the paper's reference values for the cells this entry reproduces.
    """

    name: str
    summary: str
    run: Callable[..., dict[str, Any]]
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)


def register(name: str, summary: str, paper: dict[str, Any] | None = None):
    """Decorator: register ``run() -> metrics`` under ``name``."""

    def wrap(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        if name in _REGISTRY:
            raise ValueError(f"experiment {name!r} is registered twice")
        _REGISTRY[name] = Experiment(name, summary, fn, dict(paper or {}))
        return fn

    return wrap


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
    from experiments import digits  # noqa: F401  (registers its entries on import)
