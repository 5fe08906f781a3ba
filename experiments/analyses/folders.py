"""The analyses of finished runs, from their results folders: the networks a run holds (its
own; an ANN's conversion, rebuilt as the run's end built it), analysed and written beside the
run (:func:`run_analyses`, :func:`after_run`). ``python -m experiments.analyze`` is the
command line over this module."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from experiments import analyses
from experiments.analyses.subject import Subject
from experiments.core import run_folder
from experiments.core.checkpoints import load_checkpoint
from experiments.core.config import ExperimentConfig
from experiments.core.data import load_config_data
from experiments.core.methods import method_spec


def subjects_of(
    run: Path,
    name: str,
    config: ExperimentConfig,
    paper: dict[str, Any],
    data: Any,
    checkpoint: str = "last",
) -> list[Subject]:
    """The networks of a finished run that the analyses look at, as its method offers them
    (``Method.subjects``: its own network, and for an ANN with ``conversion_steps`` its
    conversion, rebuilt as the run's end built it)."""
    method = method_spec(config.method).load()
    if method.subjects is None:
        raise run_folder.RunFolderError(f"{run}: the analyses do not read {config.method} runs.")
    net = load_checkpoint(run / "checkpoints" / checkpoint)
    return method.subjects(run, name, net, data, config, paper, checkpoint)


def label_of(subject: Subject) -> str:
    if subject.kind == "ann":
        return f"{subject.name} (ANN)"
    if subject.kind == "conversion":
        return f"{subject.name} (conversion, T = {subject.num_steps})"
    return f"{subject.name} ({subject.config.network.norm}, T = {subject.num_steps})"


def with_transfer(subjects: list[Subject]) -> list[Subject]:
    """Every subject, with the first ANN among them as the source of transferred FGSM (not
    for that ANN, nor its own conversion, whose FGSM is already crafted on it)."""
    ann = next((s for s in subjects if s.kind == "ann"), None)
    if ann is None:
        return subjects
    source = {"name": ann.name, "net": ann.net}
    return [
        s if s is ann or s.source is ann.net else dataclasses.replace(s, transfer=source)
        for s in subjects
    ]


def run_analyses(
    runs: list[tuple[Path, str, ExperimentConfig, dict[str, Any]]],
    names: tuple[str, ...],
    out: Path,
    checkpoint: str = "last",
) -> list[Path]:
    """Analyse the networks of ``runs`` (the first is the one analysed, the others compared
    with it) and write them into ``out``; every run's data and checkpoint load before anything
    is written. Returns the files written."""
    subjects: list[tuple[Path, Subject]] = []
    for run, name, config, paper in runs:
        data = load_config_data(config)
        # the data must be those the run was trained and tested on
        run_folder.check_same_data(run_folder.inspect(run), data.fingerprint, config.data_dir)
        subjects += [(run, s) for s in subjects_of(run, name, config, paper, data, checkpoint)]
    subjects = list(
        zip([r for r, _ in subjects], with_transfer([s for _, s in subjects]), strict=True)
    )
    written: list[Path] = []
    by_run: dict[str, dict[str, Any]] = {}
    first = runs[0][0]
    for run, subject in subjects:
        results = analyses.analyze(subject, names)
        if run == first:
            folder = out / "conversion" if subject.kind == "conversion" else out
            written += analyses.write(folder, subject, results)
        label = label_of(subject)
        label = label if label not in by_run else f"{label} [{run.name}]"
        by_run[label] = results
    if len(by_run) > 1:
        written += analyses.write_comparison(out / "comparison", by_run)
    return written


def after_run(out: Path) -> list[Path]:
    """The analyses a finished run's config names (``analyses``), into ``out/analyses``, as
    ``python -m experiments.analyze out --only ...`` would write them; nothing for a TTFS run
    (its own report holds its analyses) or ``analyses=none``."""
    folder = run_folder.inspect(out)
    config = ExperimentConfig.from_dict(folder.config["experiment"])
    if not method_spec(config.method).analysed or not config.analysis.analyses:
        return []
    runs = [(Path(out), folder.config["name"], config, folder.config.get("paper", {}))]
    return run_analyses(runs, config.analysis.analyses, Path(out) / "analyses")
