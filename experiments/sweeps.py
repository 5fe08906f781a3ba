"""Sweeps: one figure of a paper drawn over a family of runs, as one resumable command.

``python -m experiments.run SWEEP`` trains each member (a registered experiment with some keys
changed) in a folder of its own under the sweep's folder, then draws the figure from the
members' ``metrics.json``. The same command with ``--resume --out DIR`` skips the members that
finished, resumes the one a kill interrupted from its last committed epoch, starts the rest,
and draws the figure. ``python -m experiments.report_ttfs DIR`` redraws a finished sweep's
figures without training. Layout::

    sweep.json           the sweep: its members and their resolved configs (written first;
                         rewritten with "complete": true once the figures are drawn)
    01_<key>/ 02_<key>/  one results folder per member (see :mod:`experiments.rundir`)
    report.md, *.png     the figures and the table of members

A ``--set`` on a new sweep applies to every member (e.g. ``--set epochs=5``). Besides its
members' own, a sweep marks four write boundaries with :func:`experiments.rundir.fault_point`:
``sweep_written@0``, ``member_finished@<member, 1-based>``, ``sweep_figures@<members>`` and
``sweep_completed@<members>``. This module does not import JAX.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path
from typing import Any

from experiments import rundir
from experiments.config import ConfigError, ExperimentConfig, parse_overrides
from experiments.rundir import RunFolderError

SWEEP = rundir.SWEEP  # the file that marks a folder as a sweep's
#: Version of the sweep folder's layout.
FORMAT = 1


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
    """A registered sweep: its members and the module that draws its figure.

    ``report_module`` has ``write_sweep(out_dir, record, members) -> list[Path]``, where
    ``members`` pairs each member's record in ``sweep.json`` with its final metrics.
    ``figure`` tells that function which figure to draw; ``paper`` holds the paper's values.
    """

    name: str
    summary: str
    members: tuple[Member, ...]
    figure: str
    report_module: str
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = [m.key for m in self.members]
        if len(set(keys)) != len(keys):
            raise ValueError(f"sweep {self.name!r} has two members with the same key")


#: What a member that changes its entry keeps of the entry's paper values: context, not cells.
CONTEXT_KEYS = ("energy_reference", "table2", "note")


def member_folder(index: int, member_key: str) -> str:
    return f"{index:02d}_{member_key}"


def resolve_new(sweep: Sweep, overrides: list[str]) -> dict[str, Any]:
    """The ``sweep.json`` record of a new sweep: every member's config with its changes and
    then ``overrides`` applied. Any bad value raises :class:`ConfigError` before anything is
    written."""
    from experiments import registry

    changes = parse_overrides(overrides)
    varied = sorted({key for m in sweep.members for key in m.changes} & set(changes))
    if varied:
        key = varied[0]
        raise ConfigError(
            key, changes[key], f"is what the sweep {sweep.name} varies across its members.",
            f"leave --set {key} out, or run one member with python -m experiments.run "
            f"{sweep.members[0].entry} --set {key}=...",
        )  # fmt: skip
    members = []
    for i, m in enumerate(sweep.members, 1):
        experiment = registry.get(m.entry)
        own = dataclasses.replace(experiment.config, **m.changes)
        config = dataclasses.replace(own, **changes)
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
        "report_module": sweep.report_module,
        "paper": sweep.paper,
        "overrides": overrides,
        "members": members,
        "complete": False,
    }


def read(path: Path) -> dict[str, Any] | None:
    """The ``sweep.json`` of ``path``, or ``None`` if it holds none."""
    file = Path(path) / SWEEP
    return rundir.read_json(file) if file.is_file() else None


def resolve_resume(path: Path, overrides: list[str]) -> dict[str, Any]:
    """The record of the unfinished sweep in ``path``, with only the keys a resume may change
    (:data:`experiments.config.RESUME_SAFE_KEYS`) taken from ``overrides``."""
    record = read(path)
    if record is None:
        raise RunFolderError(f"{path} holds no sweep (no {SWEEP}).")
    if record.get("format") != FORMAT:
        raise RunFolderError(f"{path} holds a sweep of another bntt-jax version; start anew.")
    if record.get("complete"):
        raise RunFolderError(
            f"{path} holds a finished sweep of {record['name']}; nothing is modified. Redraw "
            f"its figures with: python -m experiments.report_ttfs {path}"
        )
    changes = parse_overrides(overrides)
    for m in record["members"]:
        saved = ExperimentConfig.from_dict(m["experiment"])
        rundir.check_resume_changes(
            saved, dataclasses.replace(saved, **changes), path, record["name"]
        )
        m["experiment"] = dataclasses.replace(saved, **changes).to_dict()
    return record


def check_members(path: Path, record: dict[str, Any]) -> None:
    """Every member folder must be absent, empty, or a run of that member."""
    for m in record["members"]:
        folder = rundir.inspect(path / m["folder"])
        if folder.state in ("absent", "empty"):
            continue
        if folder.state in ("run", "finished") and folder.config["name"] == member_name(record, m):
            continue
        raise RunFolderError(
            f"{folder.path} should hold the sweep's member {m['label']!r} but holds something "
            "else; nothing is touched. Move it away and resume again."
        )


def member_name(record: dict[str, Any], member: dict[str, Any]) -> str:
    return f"{record['name']}/{member['key']}"


def run_sweep(
    path: Path,
    record: dict[str, Any],
    resume: bool,
    datasets: dict[tuple[str, str | None, bool], Any] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) every member of the sweep in ``path``, then draw its figures and mark
    it complete. Returns the members' final metrics. ``datasets``: the datasets already
    loaded, by ``(dataset, data_dir, normalize)``."""
    import jax

    from experiments.data import load_dataset
    from experiments.runner import run_experiment

    path = Path(path)
    primary = jax.process_index() == 0
    check_members(path, record)
    if primary:
        path.mkdir(parents=True, exist_ok=True)
        if not resume:
            rundir.write_json(path / SWEEP, record)
            rundir.fault_point("sweep_written", 0)
    loaded = dict(datasets or {})
    results = []
    count = len(record["members"])
    for i, m in enumerate(record["members"], 1):
        config = ExperimentConfig.from_dict(m["experiment"])
        out = path / m["folder"]
        folder = rundir.inspect(out)
        if folder.state == "finished":
            results.append(rundir.read_json(out / rundir.METRICS))
            _say(primary, f"[{i}/{count}] {m['label']}: finished, kept")
            continue
        source = (config.dataset, config.data_dir, config.normalize)
        if source not in loaded:
            loaded[source] = load_dataset(*source)
        going_on = folder.state == "run"
        _say(primary, f"[{i}/{count}] {m['label']}: {'resuming' if going_on else 'training'}")
        metrics = run_experiment(
            member_name(record, m), config, out, m["paper"], resume=going_on, data=loaded[source]
        )
        results.append(metrics)
        if primary:
            rundir.fault_point("member_finished", i)
    if primary and jax.process_count() == 1:
        _analyse_members(path, record)
    if primary:
        draw(path, record, results)
        rundir.fault_point("sweep_figures", count)
        rundir.write_json(path / SWEEP, {**record, "complete": True})
        rundir.fault_point("sweep_completed", count)
    return results


def _analyse_members(path: Path, record: dict[str, Any]) -> None:
    """Each member's own analyses (its config's ``analyses``) where they are not written yet
    (a resumed sweep redoes only those that were interrupted)."""
    from experiments import analyze

    for m in record["members"]:
        out = path / m["folder"]
        if not (out / "analyses" / "report.md").is_file():
            analyze.after_run(out)


def draw(path: Path, record: dict[str, Any], results: list[dict[str, Any]]) -> list[Path]:
    """Draw the sweep's figures and ``report.md`` from its members' final metrics."""
    module = importlib.import_module(record["report_module"])
    members = list(zip(record["members"], results, strict=True))
    return module.write_sweep(Path(path), record, members)


def redraw(path: Path) -> list[Path]:
    """Redraw a sweep's figures from its members' folders, without training; every member
    must have finished (:class:`RunFolderError` names the first that has not)."""
    record = read(path)
    if record is None:
        raise RunFolderError(f"{path} holds no sweep (no {SWEEP}).")
    results = []
    for m in record["members"]:
        folder = rundir.inspect(Path(path) / m["folder"])
        if folder.state != "finished":
            raise RunFolderError(
                f"the member {m['label']!r} of the sweep in {path} has not finished; finish the "
                f"sweep first: python -m experiments.run --resume --out {path}"
            )
        results.append(rundir.read_json(folder.path / rundir.METRICS))
    return draw(Path(path), record, results)


def _say(primary: bool, line: str) -> None:
    if primary:
        print(line, file=sys.stderr, flush=True)
