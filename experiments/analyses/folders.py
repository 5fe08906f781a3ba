"""The analyses of finished runs, from their results folders: the networks a run holds (its
own; an ANN's conversion, rebuilt as the run's end built it), analysed and written beside the
run (:func:`run_analyses`, :func:`after_run`). ``python -m experiments.analyze`` is the
command line over this module."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from experiments import analyses
from experiments.analyses.subject import Subject
from experiments.ann import method as ann_method
from experiments.bntt import method as bntt_method
from experiments.core import folder as run_folder
from experiments.core.checkpoints import load_checkpoint
from experiments.core.config import ExperimentConfig
from experiments.core.data import load_config_data

#: The methods whose runs these analyses read.
ANALYSED_METHODS = ("bntt", "ann")


def subjects_of(
    run: Path,
    name: str,
    config: ExperimentConfig,
    paper: dict[str, Any],
    data: Any,
    checkpoint: str = "last",
) -> list[Subject]:
    """The networks of a finished run: its own, and for an ANN with ``conversion_steps`` its
    conversion, rebuilt as the run's end built it (same ANN, images and seed)."""
    net = load_checkpoint(run / "checkpoints" / checkpoint)
    if config.method != "ann":
        return [Subject(name, net, data, config, bntt_method.evaluate, paper)]
    out = [Subject(name, net, data, config, ann_method.evaluate, paper, kind="ann")]
    if config.options.conversion_steps:
        converted = ann_method.convert(net, data, config)
        _check_thresholds(run, config, converted, checkpoint)
        out.append(Subject(f"{name} converted", converted, data, config, _conversion, paper,
                           kind="conversion", source=net))  # fmt: skip
    return out


def _conversion(net: Any, data: Any, config: ExperimentConfig) -> dict[str, Any]:
    """A converted network's test; it has no loss (its readout is no calibrated logit)."""
    return {**ann_method.evaluate_conversion(net, data, config), "loss": None}


def _check_thresholds(run: Path, config: ExperimentConfig, converted: Any, checkpoint: str) -> None:
    """Warn if the conversion rebuilt from an unchanged config differs from the run's own
    (checked when the analysed checkpoint is the final network, which the run's end
    converted)."""
    folder = run_folder.inspect(run)
    saved = ExperimentConfig.from_dict(folder.config["experiment"])
    if saved.options != config.options:
        return  # converted differently on purpose
    manifest = folder.manifest or {}
    if checkpoint == "best" and (manifest.get("best") or {}).get("epoch") != manifest.get("epoch"):
        return  # the run's end converted its final network, the analyses its best
    metrics = run_folder.read_json(run / run_folder.METRICS).get("conversion") or {}
    for layer, value in metrics.get("thresholds", {}).items():
        rebuilt = float(converted.thresholds[layer])
        if abs(rebuilt - value) > 1e-4 * max(abs(value), 1.0):
            print(f"warning: the conversion rebuilt from {run} sets {layer}'s threshold to "
                  f"{rebuilt:.6g}, the run's end set {value:.6g} (another device or library "
                  "version?); the analyses use the rebuilt one.", file=sys.stderr)  # fmt: skip


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
    subjects = list(zip([r for r, _ in subjects],
                        with_transfer([s for _, s in subjects]), strict=True))  # fmt: skip
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
    if config.method not in ANALYSED_METHODS or not config.analysis.analyses:
        return []
    runs = [(Path(out), folder.config["name"], config, folder.config.get("paper", {}))]
    return run_analyses(runs, config.analysis.analyses, Path(out) / "analyses")
