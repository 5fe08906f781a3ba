"""Analyse a finished BNTT-family run from its results folder, without retraining.

    python -m experiments.analyze RUN [--only gamma,activity,energy,robustness] [--out DIR]
                                      [--set key=value ...]

The network is the run's best checkpoint (verified against its committed hashes), with the
run's config and data; ``--set`` may change the analysis keys (``noise_sigmas``,
``fgsm_epsilons``, ``analysis_images``, ``data_dir``, ``eval_batch_size``) and nothing else.
Results go to ``DIR`` (default ``RUN/analyses``), one folder per analysis; nothing else in
the run's folder is touched. Exit codes: 0 done; 2 the command cannot start (nothing written).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

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
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help=f"one of {', '.join(ANALYSIS_KEYS)}")  # fmt: skip
    return parser


def plan(args: argparse.Namespace) -> tuple[str, ExperimentConfig, dict, tuple[str, ...]]:
    """Check the command before anything loads or is written."""
    folder = rundir.inspect(args.run)
    if folder.state != "finished":
        raise rundir.RunFolderError(
            f"{args.run} holds no finished run ({folder.state}); analyses read a finished run's "
            "best checkpoint. Finish it first (python -m experiments.run --resume --out ...)."
        )
    config = ExperimentConfig.from_dict(folder.config["experiment"])
    if config.method != "bntt":
        raise rundir.RunFolderError(
            f"{args.run} is a {config.method} run; these analyses are for BNTT-family runs "
            "(the TTFS run's own report holds its spikes and energy)."
        )
    changes = parse_overrides(args.overrides)
    for key in changes:
        if key not in ANALYSIS_KEYS:
            raise ConfigError(key, changes[key], "would change the trained run, not the analysis.",
                              f"--set only {', '.join(ANALYSIS_KEYS)}.")  # fmt: skip
    config = dataclasses.replace(config, **changes)
    names = tuple(n.strip() for n in args.only.split(",") if n.strip())
    for name in names:
        analyses.module(name)  # an unknown name raises ValueError
    check_available(config.dataset, config.data_dir)
    return folder.config["name"], config, folder.config.get("paper", {}), names


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        name, config, paper, names = plan(args)
    except (ConfigError, rundir.RunFolderError, ValueError, DataMissingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from experiments.checkpoints import load_checkpoint
    from experiments.data import load_dataset

    try:
        data = load_dataset(config.dataset, config.data_dir, config.normalize)
    except (DataMissingError, DataCorruptError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    net = load_checkpoint(args.run)
    subject = analyses.Subject(name, net, data, config, paper)
    results = analyses.analyze(subject, names)
    for path in analyses.write(args.out or args.run / "analyses", subject, results):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
