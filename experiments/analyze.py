"""Analyse a finished BNTT-family run from its results folder, without retraining.

    python -m experiments.analyze RUN [--only gamma,activity,energy,robustness] [--out DIR]
                                      [--set key=value ...] [--compare OTHER_RUN ...]

The network is the run's best checkpoint (verified against its committed hashes), with the
run's config and data; ``--set`` may change the analysis keys (``noise_sigmas``,
``fgsm_epsilons``, ``analysis_images``, ``data_dir``, ``eval_batch_size``) and nothing else.
Results go to ``DIR`` (default ``RUN/analyses``), one folder per analysis; nothing else in
the run's folder is touched. ``--compare`` analyses other finished runs on the same data with
the same analysis keys and draws them beside RUN (Fig. 4a, 4b and Table 3 compare BNTT with
the surrogate baseline, the ANN and conversion) into ``DIR/comparison``; nothing is written
into their folders. Exit codes: 0 done; 2 the command cannot start (nothing written); 1 a
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
                 "eval_batch_size")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.analyze",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, help="a finished BNTT-family run's results folder")
    parser.add_argument("--only", default=",".join(analyses.ANALYSES),
                        help=f"comma-separated, from {', '.join(analyses.ANALYSES)}")  # fmt: skip
    parser.add_argument("--out", type=Path, help="where to write (default RUN/analyses)")
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
            "best checkpoint. Finish it first (python -m experiments.run --resume --out ...)."
        )
    config = ExperimentConfig.from_dict(folder.config["experiment"])
    if config.method != "bntt":
        raise rundir.RunFolderError(
            f"{run} is a {config.method} run; these analyses are for BNTT-family runs "
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
    analysis = {k: getattr(config, k) for k in ANALYSIS_KEYS if k != "eval_batch_size"}
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        runs = plan(args)
    except (ConfigError, rundir.RunFolderError, ValueError, DataMissingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from experiments.checkpoints import load_checkpoint
    from experiments.data import load_dataset

    names = tuple(n.strip() for n in args.only.split(",") if n.strip())
    out = args.out or args.run / "analyses"
    subjects = []
    try:  # every run's data and checkpoint before anything is written
        for run, name, config, paper in runs:
            data = load_dataset(config.dataset, config.data_dir, config.normalize)
            # the data must be those the run was trained and tested on
            rundir.check_same_data(rundir.inspect(run), data.fingerprint, config.data_dir)
            subjects.append((run, analyses.Subject(name, load_checkpoint(run), data, config,
                                                   paper)))  # fmt: skip
    except (DataMissingError, DataCorruptError, rundir.RunFolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except rundir.CheckpointDamagedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    by_run: dict[str, dict[str, Any]] = {}
    for run, subject in subjects:
        results = analyses.analyze(subject, names)
        if run == args.run:
            for path in analyses.write(out, subject, results):
                print(path)
        config = subject.config
        label = f"{subject.name} ({config.norm}, T = {config.num_steps})"
        label = label if label not in by_run else f"{label} [{run.name}]"
        by_run[label] = results
    if len(by_run) > 1:
        for path in analyses.write_comparison(out / "comparison", by_run):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
