"""Sweeps: one figure of a paper drawn over a family of runs, as one resumable command.

``python -m experiments.run SWEEP`` trains each member (a registered experiment with some keys
changed) in a folder of its own under the sweep's folder, then draws the figure from the
members' ``metrics.json``. The same command with ``--resume --out DIR`` skips the members that
finished, resumes the one a kill interrupted from its last committed epoch, starts the rest,
and draws the figure. ``python -m experiments.redraw DIR`` redraws a finished sweep's figures
without training. Layout::

    sweep.json           the sweep: its members and their resolved configs (written first;
                         rewritten with "complete": true once the figures are drawn)
    01_<key>/ 02_<key>/  one results folder per member (see :mod:`experiments.core.run_folder`)
    report.md, *.png     the figures and the table of members

A ``--set`` on a new sweep applies to every member that has the key (e.g. ``--set
epochs=5``). Besides its members' own, a sweep marks the write boundaries
:data:`experiments.core.faults.SWEEP_FAULT_POINTS`. This module does not import JAX.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.core import registry, run_folder
from experiments.core.config import ConfigError, ExperimentConfig
from experiments.core.data import Dataset, data_source, load_dataset
from experiments.core.faults import fault_point
from experiments.core.files import write_json
from experiments.core.overrides import parse_overrides
from experiments.core.registry import Sweep
from experiments.core.run_folder import SWEEP, RunFolderError

#: Version of the sweep folder's layout.
FORMAT = 1

#: What a member that changes its entry keeps of the entry's paper values: context, not cells.
CONTEXT_KEYS = ("energy_reference", "table2", "note")


def member_folder(index: int, member_key: str) -> str:
    return f"{index:02d}_{member_key}"


def resolve_new(sweep: Sweep, overrides: list[str]) -> dict[str, Any]:
    """The ``sweep.json`` record of a new sweep: every member's config with its changes and
    then ``overrides`` applied. Any bad value raises :class:`ConfigError` before anything is
    written."""
    changes = parse_overrides(overrides)
    varied = sorted({key for m in sweep.members for key in m.changes} & set(changes))
    if varied:
        key = varied[0]
        raise ConfigError(
            key,
            changes[key],
            f"is what the sweep {sweep.name} varies across its members.",
            f"leave --set {key} out, or run one member with python -m experiments.run "
            f"{sweep.members[0].entry} --set {key}=...",
        )
    members = []
    owns = registry.member_configs(sweep)
    for name in changes:
        if not any(own.has_key(name) for own in owns):
            raise ConfigError(
                name,
                changes[name],
                f"is not a key of any member of the sweep {sweep.name}.",
                f"leave --set {name} out.",
            )
    for i, (m, own) in enumerate(zip(sweep.members, owns, strict=True), 1):
        experiment = registry.get(m.entry)
        config = own.replace(**{k: v for k, v in changes.items() if own.has_key(k)})
        # the entry's published values belong to the member only if it runs the entry as is;
        # a changed member keeps the context (e.g. the reference its energy is normalised to)
        paper = (
            experiment.paper
            if own == experiment.config
            else {k: v for k, v in experiment.paper.items() if k in CONTEXT_KEYS}
        )
        members.append(
            {
                "folder": member_folder(i, m.key),
                "key": m.key,
                "label": m.label,
                "entry": m.entry,
                "changes": m.changes,
                "series": m.series,
                "value": m.value,
                "experiment": config.to_dict(),
                "paper": paper,
            }
        )
    return {
        "format": FORMAT,
        "name": sweep.name,
        "summary": sweep.summary,
        "figure": sweep.figure,
        "paper": sweep.paper,
        "overrides": overrides,
        "members": members,
        "complete": False,
    }


def read(path: Path) -> dict[str, Any] | None:
    """The ``sweep.json`` of ``path``, or ``None`` if it holds none."""
    file = Path(path) / SWEEP
    return run_folder.read_json(file) if file.is_file() else None


def resolve_resume(path: Path, overrides: list[str]) -> dict[str, Any]:
    """The record of the unfinished sweep in ``path``, with only the keys a resume may change
    (:data:`experiments.core.config.RESUME_SAFE_KEYS`) taken from ``overrides``."""
    record = read(path)
    if record is None:
        raise RunFolderError(f"{path} holds no sweep (no {SWEEP}).")
    if record.get("format") != FORMAT:
        raise RunFolderError(f"{path} holds a sweep of another bntt-jax version; start anew.")
    if record.get("complete"):
        raise RunFolderError(
            f"{path} holds a finished sweep of {record['name']}; nothing is modified. Redraw "
            f"its figures with: python -m experiments.redraw {path}"
        )
    changes = parse_overrides(overrides)
    for m in record["members"]:
        saved = ExperimentConfig.from_dict(m["experiment"])
        requested = saved.replace(**{k: v for k, v in changes.items() if saved.has_key(k)})
        run_folder.check_resume_changes(saved, requested, path, record["name"])
        m["experiment"] = requested.to_dict()
    return record


def check_members(path: Path, record: dict[str, Any]) -> None:
    """Every member folder must be absent, empty, or a run of that member."""
    for m in record["members"]:
        folder = run_folder.inspect(path / m["folder"])
        if folder.state in ("absent", "empty"):
            continue
        if folder.state in ("run", "finished") and folder.config["name"] == member_name(record, m):
            continue
        raise RunFolderError(
            f"{folder.path} should hold the sweep's member {m['label']!r} but holds something "
            "else; nothing is touched. Move it away and resume again."
        )


def member_keys(member: dict[str, Any]) -> dict[str, Any]:
    """A member's config (nested in ``sweep.json``; flat in an earlier version's) as flat
    keys."""
    return ExperimentConfig.from_dict(member["experiment"]).flat()


def member_name(record: dict[str, Any], member: dict[str, Any]) -> str:
    return f"{record['name']}/{member['key']}"


def run_sweep(
    path: Path,
    record: dict[str, Any],
    resume: bool,
    run: Callable[..., dict[str, Any]],
    *,
    primary: bool = True,
    datasets: dict[tuple[str, str, bool], Dataset] | None = None,
    analyse: Callable[[Path], Any] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) every member of the sweep in ``path`` (the members were checked by
    :func:`check_members`), then draw its figures and mark it complete. Returns the members'
    final metrics.

    ``run(name, config, out, paper, resume, data)`` trains one member
    (:func:`experiments.core.runner.run_experiment`); ``primary``: this process writes the
    sweep's files (process 0); ``datasets``: the datasets already loaded, by their
    :func:`~experiments.core.data.data_source`; ``analyse(member_folder)``: each member's own
    analyses, run (in one process) where they are not written yet, so a resumed sweep redoes
    only those."""
    path = Path(path)
    if primary:
        path.mkdir(parents=True, exist_ok=True)
        if not resume:
            write_json(path / SWEEP, record)
            fault_point("sweep_written", 0)
    loaded = dict(datasets or {})
    results = []
    count = len(record["members"])
    for i, m in enumerate(record["members"], 1):
        config = ExperimentConfig.from_dict(m["experiment"])
        out = path / m["folder"]
        folder = run_folder.inspect(out)
        if folder.state == "finished":
            results.append(run_folder.read_json(out / run_folder.METRICS))
            _say(primary, f"[{i}/{count}] {m['label']}: finished, kept")
            continue
        source = data_source(config)
        if source not in loaded:
            loaded[source] = load_dataset(*source)
        going_on = folder.state == "run"
        _say(primary, f"[{i}/{count}] {m['label']}: {'resuming' if going_on else 'training'}")
        metrics = run(
            member_name(record, m), config, out, m["paper"], resume=going_on, data=loaded[source]
        )
        results.append(metrics)
        if primary:
            fault_point("member_finished", i)
    if primary and analyse is not None:
        for m in record["members"]:
            if not (path / m["folder"] / "analyses" / "report.md").is_file():
                analyse(path / m["folder"])
    if primary:
        draw(path, record, results)
        fault_point("sweep_figures", count)
        write_json(path / SWEEP, {**record, "complete": True})
        fault_point("sweep_completed", count)
    return results


def draw(path: Path, record: dict[str, Any], results: list[dict[str, Any]]) -> list[Path]:
    """Draw the sweep's figures and ``report.md`` from its members' final metrics, with the
    registered sweep's ``draw``."""
    try:
        sweep = registry.lookup(record["name"])
    except KeyError:
        raise RunFolderError(
            f"{path} holds a sweep of {record['name']}, which this version does not register: "
            "its figures cannot be drawn (its members' folders are intact)."
        ) from None
    members = list(zip(record["members"], results, strict=True))
    return sweep.draw(Path(path), record, members)


def redraw(path: Path) -> list[Path]:
    """Redraw a sweep's figures from its members' folders, without training; every member
    must have finished (:class:`RunFolderError` names the first that has not)."""
    record = read(path)
    if record is None:
        raise RunFolderError(f"{path} holds no sweep (no {SWEEP}).")
    results = []
    for m in record["members"]:
        folder = run_folder.inspect(Path(path) / m["folder"])
        if folder.state != "finished":
            raise RunFolderError(
                f"the member {m['label']!r} of the sweep in {path} has not finished; finish the "
                f"sweep first: python -m experiments.run --resume --out {path}"
            )
        results.append(run_folder.read_json(folder.path / run_folder.METRICS))
    return draw(Path(path), record, results)


def _say(primary: bool, line: str) -> None:
    if primary:
        print(line, file=sys.stderr, flush=True)
