"""A registry of named experiments (a config plus the paper's reference values) and of
sweeps (a family of experiments drawn as one figure, :mod:`experiments.core.sweeps`).

Each method's ``entries`` module registers its experiments when ``experiments`` is imported;
this module imports none of them. The order they register in does not matter: an entry may be
another's config with keys changed (:class:`Derived`, by name) and a sweep names its members'
entries; both are resolved when first used."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.core.config import ExperimentConfig


@dataclasses.dataclass(frozen=True)
class Member:
    """One run of a sweep.

    Attributes:
      key: short name for its folder (``01_<key>``), unique in the sweep.
      label: the legend label, e.g. ``"SM (2)"`` as the paper writes it.
      entry: the registered experiment it runs.
      changes: the config keys it changes from the entry's config.
      series: which curve or panel of the figure it belongs to.
      value: its value of the swept parameter (the x of the figure), if any.
    """

    key: str
    label: str
    entry: str
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)
    series: str = ""
    value: float | None = None


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A registered sweep: its members and the function that draws its figure.

    ``draw(out_dir, record, members) -> list[Path]`` draws the figures and ``report.md``,
    where ``members`` pairs each member's record in ``sweep.json`` with its final metrics;
    ``figure`` tells it which figure to draw; ``paper`` holds the paper's values.
    """

    name: str
    summary: str
    members: tuple[Member, ...]
    figure: str
    draw: Callable[[Path, dict[str, Any], list[tuple[dict[str, Any], dict[str, Any]]]], list[Path]]
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = [m.key for m in self.members]
        if len(set(keys)) != len(keys):
            raise ValueError(f"sweep {self.name!r} has two members with the same key")


@dataclasses.dataclass(frozen=True)
class Derived:
    """An entry's config as another entry's (``entry``, by name) with ``changes`` (flat keys),
    e.g. an ANN of a spiking network's topology; resolved when the entry is first used."""

    entry: str
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment.

    Attributes:
      name: the CLI name, e.g. ``digits_bntt``.
      summary: one line for ``--list``.
      config: the :class:`ExperimentConfig` it runs (registered as one, or as a
        :class:`Derived` that :func:`get` resolves).
      paper: the paper's reference values for the table cells it reproduces (accuracy in %,
        ``source`` naming the table).
    """

    name: str
    summary: str
    config: ExperimentConfig | Derived
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)


_REGISTRY: dict[str, Experiment] = {}
_SWEEPS: dict[str, Sweep] = {}


def register(
    name: str,
    summary: str,
    config: ExperimentConfig | Derived,
    paper: dict[str, Any] | None = None,
) -> Experiment:
    """Register an experiment under ``name``: its config, or another entry's with some keys
    changed (:class:`Derived`)."""
    if name in _REGISTRY or name in _SWEEPS:
        raise ValueError(f"experiment {name!r} is registered twice")
    _REGISTRY[name] = Experiment(name, summary, config, dict(paper or {}))
    return _REGISTRY[name]


def register_sweep(sweep: Sweep) -> Sweep:
    """Register a sweep; its members name experiments registered before or after it
    (:func:`member_configs` resolves them)."""
    if sweep.name in _REGISTRY or sweep.name in _SWEEPS:
        raise ValueError(f"experiment {sweep.name!r} is registered twice")
    _SWEEPS[sweep.name] = sweep
    return sweep


def names() -> list[str]:
    """All registered names (experiments and sweeps), sorted."""
    return sorted([*_REGISTRY, *_SWEEPS])


def summary(name: str) -> str:
    """The one line of ``--list`` for an experiment or a sweep."""
    return lookup(name).summary


def get(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name raises ``KeyError`` with close matches."""
    if name not in _REGISTRY:
        _unknown(name, "a sweep, not one experiment" if name in _SWEEPS else None)
    entry = _REGISTRY[name]
    if isinstance(entry.config, Derived):
        base = get(entry.config.entry).config
        entry = _REGISTRY[name] = dataclasses.replace(
            entry, config=base.replace(**entry.config.changes)
        )
    return entry


def member_configs(sweep: Sweep) -> list[ExperimentConfig]:
    """Each member's config: its entry's, with the member's changes."""
    missing = [m.entry for m in sweep.members if m.entry not in _REGISTRY]
    if missing:
        raise KeyError(f"sweep {sweep.name!r}: no experiment {', '.join(map(repr, missing))}")
    return [get(m.entry).config.replace(**m.changes) for m in sweep.members]


def lookup(name: str) -> Experiment | Sweep:
    """The experiment or sweep called ``name`` (``KeyError`` with close matches if none)."""
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
