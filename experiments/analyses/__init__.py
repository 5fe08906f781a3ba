"""Analyses of a trained run of the BNTT paper's methods, computed from its results folder
without retraining: a BNTT-family spiking network (BNTT, or the surrogate-gradient baseline
without it), the non-spiking ANN, and that ANN converted to integrate-and-fire neurons.

``python -m experiments.analyze RUN [--only NAME,...] [--out DIR] [--set key=value]`` loads
the run's final network (verified against its hashes), its config and its data, and writes
each analysis into ``DIR/<name>/`` (default ``RUN/analyses``; nothing else in the run's
folder is touched): ``result.json`` with its numbers and its figures, plus ``DIR/report.md``.
The same functions run in-process on a live network (:func:`analyze`). Every analysis is
seeded from the run's seed, so it is reproducible.

* ``gamma``: histograms of γᵗ over the channels of chosen layers at every step (Fig. 5);
* ``activity``: spike rate per layer (Eq. 23, Fig. 4a) and spikes per layer per step (Fig. 1);
* ``energy``: FLOPs per layer (Eq. 22), SNN FLOPs (Eq. 24), 45 nm CMOS energy and
  ``E_ANN / E_SNN`` (Eq. 25–26, Table 3), TrueNorth energy (Table S1);
* ``robustness``: accuracy under Gaussian noise (Fig. 4b) and SNN-crafted FGSM (App. F).

A :class:`Subject` is one network of one of three kinds (``kind``): ``snn`` (a BNTT-family
network), ``ann`` or ``conversion`` (the run's ANN converted; ``source`` is that ANN). An
analysis that does not apply to a kind says why (``not_applicable``) and is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.analyses.subject import KINDS, Subject, evaluate_on, evaluation  # noqa: F401
from experiments.core.config import ANALYSIS_NAMES
from experiments.core.faults import fault_point
from experiments.core.files import read_json, write_json, write_text

#: The analyses, in the order they run: name -> module under ``experiments.analyses``.
ANALYSES = ANALYSIS_NAMES


def module(name: str) -> Any:
    """The module of the analysis ``name`` (``ValueError`` naming the choices otherwise)."""
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; choose from {', '.join(ANALYSES)}.")
    from experiments.analyses import (  # JAX: loaded once a command is checked
        activity,
        energy,
        gamma,
        robustness,
    )

    return {"gamma": gamma, "activity": activity, "energy": energy, "robustness": robustness}[name]


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


def analyze_reusing(subject: Subject, saved: Path, names: tuple[str, ...] = ANALYSES) -> dict:
    """:func:`analyze`, taking each result from ``saved/<name>/result.json`` (the folder
    :func:`write` wrote for this subject) where its module's ``reusable`` accepts it: the
    analyses are seeded, so recomputing would give the same numbers. Only FGSM transferred
    from the subject's ``transfer`` ANN, which a run's own analyses lack, is computed anew."""
    out = {}
    for name in names:
        file = Path(saved) / name / "result.json"
        result = read_json(file) if file.is_file() else None
        check = getattr(module(name), "reusable", lambda r, s: True)
        if result is None or "skipped" in result or not check(result, subject):
            out.update(analyze(subject, (name,)))
            continue
        if name == "robustness" and not result.get("fgsm_transfer"):
            result = {**result, "fgsm_transfer": module(name).compute_transfer(subject)}
        out[name] = result
    return out


def write(out_dir: Path, subject: Subject, results: dict[str, Any]) -> list[Path]:
    """Write each result's folder (``result.json`` and figures), then ``report.md`` over
    every analysis the folder holds: those of ``results`` and those written before (an
    ``--only`` run adds its sections to the report, never drops the others)."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    for index, (name, result) in enumerate(results.items(), 1):
        if index > 1:
            fault_point("analysis_written", index - 1)
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "result.json", result)
        written.append(folder / "result.json")
        if "skipped" not in result:
            written += module(name).draw(folder, result)
    fault_point("analysis_written", len(results))
    lines = [f"# Analyses of {subject.name}", ""]
    for name in ANALYSES:
        file = out_dir / name / "result.json"
        if name not in results and not file.is_file():
            continue
        result = results[name] if name in results else read_json(file)
        lines += [f"## {name}", ""]
        if "skipped" in result:
            lines += [f"*Not computed: {result['skipped']}*", ""]
            continue
        figures = sorted((out_dir / name).glob("*.png"))
        lines += module(name).report_lines(result)
        lines += [f"![{p.stem}]({name}/{p.name})" for p in figures] + [""]
    written.append(write_text(out_dir / "report.md", "\n".join(lines)))  # last: marks them done
    return written


def write_comparison(out_dir: Path, by_run: dict[str, dict[str, Any]]) -> list[Path]:
    """Draw the runs' results of each comparable analysis side by side (``draw_compare`` of
    its module) and write ``report.md``."""
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
