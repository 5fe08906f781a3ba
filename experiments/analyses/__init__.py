"""Analyses of a trained BNTT-family run, computed from its results folder without retraining.

``python -m experiments.analyze RUN [--only NAME,...] [--out DIR] [--set key=value]`` loads
the run's best checkpoint (verified against its hashes), its config and its data, and writes
each analysis into ``DIR/<name>/`` (default ``RUN/analyses``; nothing else in the run's
folder is touched): ``result.json`` with its numbers and its figures, plus ``DIR/report.md``.
The same functions run in-process on a live network (:func:`analyze`). Every analysis is
seeded from the run's seed, so it is reproducible.

* ``gamma``: histograms of γᵗ over the channels of chosen layers at every step (Fig. 5);
* ``activity``: spike rate per layer (Eq. 23, Fig. 4a) and spikes per layer per step (Fig. 1);
* ``energy``: FLOPs per layer (Eq. 22), SNN FLOPs (Eq. 24), 45 nm CMOS energy and
  ``E_ANN / E_SNN`` (Eq. 25–26, Table 3), TrueNorth energy (Table S1);
* ``robustness``: accuracy under Gaussian noise (Fig. 4b) and SNN-crafted FGSM (App. F).
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

from experiments.config import ExperimentConfig
from experiments.data import Dataset

#: The analyses, in the order they run: name -> module under ``experiments.analyses``.
ANALYSES = ("gamma", "activity", "energy", "robustness")


@dataclasses.dataclass(frozen=True)
class Subject:
    """What an analysis looks at: a trained network with its config, data and paper values."""

    name: str
    net: Any  # bntt_jax.NetworkParams
    data: Dataset
    config: ExperimentConfig
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: results shared between analyses of this subject (one evaluation pass serves several)
    cache: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)


def evaluation(subject: Subject) -> dict[str, Any]:
    """One evaluation of the test set (accuracy, spike rate per layer, spikes per step),
    shared by the analyses of ``subject``."""
    if "evaluation" not in subject.cache:
        from experiments.methods import evaluate

        subject.cache["evaluation"] = evaluate(subject.net, subject.data, subject.config)
    return subject.cache["evaluation"]


def module(name: str) -> Any:
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; choose from {', '.join(ANALYSES)}.")
    return importlib.import_module(f"experiments.analyses.{name}")


def applicable(name: str, subject: Subject) -> str | None:
    """Why ``name`` cannot analyse ``subject`` (``None`` if it can)."""
    return getattr(module(name), "not_applicable", lambda s: None)(subject)


def analyze(subject: Subject, names: tuple[str, ...] = ANALYSES) -> dict[str, Any]:
    """``{name: result}`` of each analysis (``{"skipped": why}`` where it does not apply)."""
    out = {}
    for name in names:
        why = applicable(name, subject)
        out[name] = {"skipped": why} if why else module(name).compute(subject)
    return out


def write(out_dir: Path, subject: Subject, results: dict[str, Any]) -> list[Path]:
    """Write each result's folder (``result.json`` and figures) and ``report.md``."""
    from experiments.report import write_text
    from experiments.rundir import write_json

    out_dir = Path(out_dir)
    written: list[Path] = []
    lines = [f"# Analyses of {subject.name}", ""]
    for name, result in results.items():
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "result.json", result)
        written.append(folder / "result.json")
        lines += [f"## {name}", ""]
        if "skipped" in result:
            lines += [f"*Not computed: {result['skipped']}*", ""]
            continue
        figures = module(name).draw(folder, result)
        written += figures
        lines += module(name).report_lines(result)
        lines += [f"![{p.stem}]({name}/{p.name})" for p in figures] + [""]
    written.append(write_text(out_dir / "report.md", "\n".join(lines)))
    return written


def write_comparison(out_dir: Path, by_run: dict[str, dict[str, Any]]) -> list[Path]:
    """Draw the runs' results of each comparable analysis side by side (``draw_compare`` of
    its module) and write ``report.md``."""
    from experiments.report import write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    runs = list(by_run)
    lines = [f"# Comparison of {', '.join(runs)}", ""]
    for name in ANALYSES:
        chosen = {
            run: results[name]
            for run, results in by_run.items()
            if name in results and "skipped" not in results[name]
        }
        draw = getattr(module(name), "draw_compare", None)
        if draw is None or len(chosen) < 2:
            continue
        figures = draw(out_dir, chosen)
        written += figures
        lines += [f"## {name}", "", *module(name).compare_lines(chosen)]
        lines += [f"![{p.stem}]({p.name})" for p in figures] + [""]
    written.append(write_text(out_dir / "report.md", "\n".join(lines)))
    return written
