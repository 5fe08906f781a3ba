"""Analyse a finished run of the BNTT paper's methods from its results folder, without
retraining: a BNTT-family network (BNTT or the surrogate baseline without it), or an ANN and
its conversion to integrate-and-fire neurons.

    python -m experiments.analyze RUN [--only gamma,activity,energy,robustness] [--out DIR]
                                      [--set key=value ...] [--compare OTHER_RUN ...]

The network is the run's final one (``checkpoints/last``, the network its report and
metrics describe; ``--checkpoint best`` takes the best test epoch's), verified against its
committed hashes, with the run's config and data. ``--set`` may change the analysis keys
(``noise_sigmas``, ``fgsm_epsilons``, ``analysis_images``, ``data_dir``,
``eval_batch_size`` and, for an ANN, how it is converted: ``conversion_*``) and nothing
else. Results go to ``DIR`` (default ``RUN/analyses``), one folder per analysis; nothing
else in the run's folder is touched. An ANN run is analysed as the ANN (``DIR``) and as its
conversion (``DIR/conversion``: the ANN converted as the run's end did, at the longest
``conversion_steps``).

``--compare`` analyses other finished runs on the same data with the same noise and FGSM
grids and draws every network beside RUN's (Fig. 1, 4a, 4b and Table 3 compare BNTT with the
surrogate baseline, the ANN and conversion) into ``DIR/comparison``; nothing is written into
their folders. When an ANN is among them, FGSM is also crafted on it and transferred to every
other network. Exit codes: 0 done; 2 the command cannot start (nothing written); 1 a
checkpoint is damaged (its hash does not match).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from experiments import analyses, rundir
from experiments.config import ConfigError, ExperimentConfig, parse_overrides
from experiments.data import DataCorruptError, DataMissingError, check_available

#: The config keys an analysis may change: its own, and where it reads the data from.
ANALYSIS_KEYS = ("noise_sigmas", "fgsm_epsilons", "analysis_images", "data_dir",
                 "eval_batch_size", "conversion_steps", "conversion_percentile",
                 "conversion_reset", "conversion_images")  # fmt: skip
#: The methods whose runs these analyses read.
ANALYSED_METHODS = ("bntt", "ann")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.analyze",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, help="a finished BNTT-family or ANN run's folder")
    parser.add_argument("--only", default=",".join(analyses.ANALYSES),
                        help=f"comma-separated, from {', '.join(analyses.ANALYSES)}")  # fmt: skip
    parser.add_argument("--out", type=Path, help="where to write (default RUN/analyses)")
    parser.add_argument("--checkpoint", choices=("last", "best"), default="last",
                        help="the final network (default) or the best test epoch's")  # fmt: skip
    parser.add_argument("--compare", type=Path, nargs="+", default=[], metavar="OTHER_RUN",
                        help="finished runs on the same data to draw beside RUN (e.g. the "
                        "surrogate baseline without BNTT), into OUT/comparison")  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help=f"one of {', '.join(ANALYSIS_KEYS)}")  # fmt: skip
    return parser


def resolve(run: Path, overrides: list[str]) -> tuple[str, ExperimentConfig, dict[str, Any]]:
    """The name, config (with the analysis ``overrides``) and paper values of the finished
    BNTT-family run in ``run``."""
    folder = rundir.inspect(run)
    if folder.state != "finished":
        raise rundir.RunFolderError(
            f"{run} holds no finished run ({folder.state}); analyses read a finished run's "
            "checkpoints. Finish it first (python -m experiments.run --resume --out ...)."
        )
    config = ExperimentConfig.from_dict(folder.config["experiment"])
    if config.method not in ANALYSED_METHODS:
        raise rundir.RunFolderError(
            f"{run} is a {config.method} run; these analyses are for BNTT-family and ANN runs "
            "(the TTFS run's own report holds its spikes and energy)."
        )
    changes = parse_overrides(overrides)
    for key in changes:
        if key not in ANALYSIS_KEYS:
            raise ConfigError(key, changes[key], "would change the trained run, not the analysis.",
                              f"--set only {', '.join(ANALYSIS_KEYS)}.")  # fmt: skip
    return (
        folder.config["name"],
        dataclasses.replace(config, **changes),
        folder.config.get("paper", {}),
    )


def plan(args: argparse.Namespace) -> list[tuple[Path, str, ExperimentConfig, dict[str, Any]]]:
    """Check the command before anything loads or is written: the run, then every run it is
    compared with (same dataset; the first run's analysis keys apply to all)."""
    name, config, paper = resolve(args.run, args.overrides)
    runs = [(args.run, name, config, paper)]
    # the robustness grids apply to all; each ANN keeps its own conversion settings
    analysis = {k: getattr(config, k) for k in ("noise_sigmas", "fgsm_epsilons",
                                                "analysis_images")}  # fmt: skip
    for other in args.compare:
        o_name, o_config, o_paper = resolve(other, [])
        if o_config.dataset != config.dataset:
            raise rundir.RunFolderError(
                f"{other} was trained on {o_config.dataset}, {args.run} on {config.dataset}: "
                "a comparison needs the same test set."
            )
        runs.append((other, o_name, dataclasses.replace(o_config, **analysis), o_paper))
    for name in args.only.split(","):
        if name.strip():
            analyses.module(name.strip())  # an unknown name raises ValueError
    for _, _, c, _ in runs:
        check_available(c.dataset, c.data_dir)
    return runs


def subjects_of(
    run: Path,
    name: str,
    config: ExperimentConfig,
    paper: dict[str, Any],
    data: Any,
    checkpoint: str = "last",
) -> list[analyses.Subject]:
    """The networks of a finished run: its own, and for an ANN with ``conversion_steps`` its
    conversion, rebuilt as the run's end built it (same ANN, images and seed)."""
    from experiments.checkpoints import load_checkpoint
    from experiments.methods import convert_ann

    net = load_checkpoint(run / "checkpoints" / checkpoint)
    if config.method != "ann":
        return [analyses.Subject(name, net, data, config, paper)]
    out = [analyses.Subject(name, net, data, config, paper, kind="ann")]
    if config.conversion_steps:
        converted = convert_ann(net, data, config)
        _check_thresholds(run, config, converted, checkpoint)
        out.append(analyses.Subject(f"{name} converted", converted, data, config, paper,
                                    kind="conversion", source=net))  # fmt: skip
    return out


def _check_thresholds(run: Path, config: ExperimentConfig, converted: Any, checkpoint: str) -> None:
    """Warn if the conversion rebuilt from an unchanged config differs from the run's own
    (checked when the analysed checkpoint is the final network, which the run's end
    converted)."""
    folder = rundir.inspect(run)
    saved = ExperimentConfig.from_dict(folder.config["experiment"])
    keys = ("conversion_steps", "conversion_percentile", "conversion_reset", "conversion_images")
    if any(getattr(saved, k) != getattr(config, k) for k in keys):
        return  # converted differently on purpose
    manifest = folder.manifest or {}
    if checkpoint == "best" and (manifest.get("best") or {}).get("epoch") != manifest.get("epoch"):
        return  # the run's end converted its final network, the analyses its best
    metrics = rundir.read_json(run / rundir.METRICS).get("conversion") or {}
    for layer, value in metrics.get("thresholds", {}).items():
        rebuilt = float(converted.thresholds[layer])
        if abs(rebuilt - value) > 1e-4 * max(abs(value), 1.0):
            print(f"warning: the conversion rebuilt from {run} sets {layer}'s threshold to "
                  f"{rebuilt:.6g}, the run's end set {value:.6g} (another device or library "
                  "version?); the analyses use the rebuilt one.", file=sys.stderr)  # fmt: skip


def label_of(subject: analyses.Subject) -> str:
    if subject.kind == "ann":
        return f"{subject.name} (ANN)"
    if subject.kind == "conversion":
        return f"{subject.name} (conversion, T = {subject.num_steps})"
    return f"{subject.name} ({subject.config.norm}, T = {subject.num_steps})"


def with_transfer(subjects: list[analyses.Subject]) -> list[analyses.Subject]:
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        runs = plan(args)
    except (ConfigError, rundir.RunFolderError, ValueError, DataMissingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    names = tuple(n.strip() for n in args.only.split(",") if n.strip())
    out = args.out or args.run / "analyses"
    try:
        for path in run_analyses(runs, names, out, args.checkpoint):
            print(path)
    except (DataMissingError, DataCorruptError, rundir.RunFolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except rundir.CheckpointDamagedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def run_analyses(
    runs: list[tuple[Path, str, ExperimentConfig, dict[str, Any]]],
    names: tuple[str, ...],
    out: Path,
    checkpoint: str = "last",
) -> list[Path]:
    """Analyse the networks of ``runs`` (the first is the one analysed, the others compared
    with it) and write them into ``out``; every run's data and checkpoint load before anything
    is written. Returns the files written."""
    from experiments.data import load_dataset

    subjects: list[tuple[Path, analyses.Subject]] = []
    for run, name, config, paper in runs:
        data = load_dataset(config.dataset, config.data_dir, config.normalize)
        # the data must be those the run was trained and tested on
        rundir.check_same_data(rundir.inspect(run), data.fingerprint, config.data_dir)
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


if __name__ == "__main__":
    sys.exit(main())


def after_run(out: Path) -> list[Path]:
    """The analyses a finished run's config names (``analyses``), into ``out/analyses``, as
    ``python -m experiments.analyze out --only ...`` would write them; nothing for a TTFS run
    (its own report holds its analyses) or ``analyses=none``."""
    folder = rundir.inspect(out)
    config = ExperimentConfig.from_dict(folder.config["experiment"])
    if config.method not in ANALYSED_METHODS or not config.analyses:
        return []
    runs = [(Path(out), folder.config["name"], config, folder.config.get("paper", {}))]
    return run_analyses(runs, config.analyses, Path(out) / "analyses")
