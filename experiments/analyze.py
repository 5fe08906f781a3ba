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
import contextlib
import sys
from pathlib import Path
from typing import Any

from experiments import analyses
from experiments.core import lock, run_folder
from experiments.core.config import ConfigError, ExperimentConfig
from experiments.core.data import DataCorruptError, DataMissingError, check_available
from experiments.core.exits import exit_with
from experiments.core.files import user_path
from experiments.core.methods import analysed_methods, method_spec
from experiments.core.overrides import add_set_argument, parse_overrides

#: The config keys an analysis may change: its own, and where it reads the data from.
ANALYSIS_KEYS = (
    "noise_sigmas",
    "fgsm_epsilons",
    "analysis_images",
    "data_dir",
    "eval_batch_size",
    "conversion_steps",
    "conversion_percentile",
    "conversion_reset",
    "conversion_images",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.analyze",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=user_path, help="a finished BNTT-family or ANN run's folder")
    parser.add_argument(
        "--only",
        default=",".join(analyses.ANALYSES),
        help=f"comma-separated, from {', '.join(analyses.ANALYSES)}",
    )
    parser.add_argument("--out", type=user_path, help="where to write (default RUN/analyses)")
    parser.add_argument(
        "--checkpoint",
        choices=("last", "best"),
        default="last",
        help="the final network (default) or the best test epoch's",
    )
    parser.add_argument(
        "--compare",
        type=user_path,
        nargs="+",
        default=[],
        metavar="OTHER_RUN",
        help="finished runs on the same data to draw beside RUN (e.g. the "
        "surrogate baseline without BNTT), into OUT/comparison",
    )
    add_set_argument(parser, f"one of {', '.join(ANALYSIS_KEYS)}")
    return parser


def resolve(run: Path, overrides: list[str]) -> tuple[str, ExperimentConfig, dict[str, Any]]:
    """The name, config (with the analysis ``overrides``) and paper values of the finished
    BNTT-family run in ``run``."""
    folder = run_folder.inspect(run)
    if folder.state != "finished":
        why = f" {folder.warning}" if folder.warning else ""  # a damaged manifest fell back
        raise run_folder.RunFolderError(
            f"{run} holds no finished run ({folder.state}); analyses read a finished run's "
            f"checkpoints. Finish it first (python -m experiments.run --resume --out {run}).{why}"
        )
    config = ExperimentConfig.from_dict(folder.config["experiment"])
    if not method_spec(config.method).analysed:
        raise run_folder.RunFolderError(
            f"{run} is a {config.method} run; these analyses read runs of "
            f"{', '.join(analysed_methods())} (the {config.method} run's own report holds its "
            "analyses)."
        )
    changes = parse_overrides(overrides)
    for key in changes:
        if key not in ANALYSIS_KEYS:
            raise ConfigError(
                key,
                changes[key],
                "would change the trained run, not the analysis.",
                f"--set only {', '.join(ANALYSIS_KEYS)}.",
            )
    return folder.config["name"], config.replace(**changes), folder.config.get("paper", {})


def check_command(
    args: argparse.Namespace,
) -> list[tuple[Path, str, ExperimentConfig, dict[str, Any]]]:
    """Check the command before anything loads or is written: the run, then every run it is
    compared with (same dataset; the first run's analysis keys apply to all)."""
    lock.check_free(args.run)  # a command writing the run is named first
    name, config, paper = resolve(args.run, args.overrides)
    runs = [(args.run, name, config, paper)]
    # the robustness grids apply to all; each ANN keeps its own conversion settings
    analysis = {
        k: getattr(config.analysis, k) for k in ("noise_sigmas", "fgsm_epsilons", "analysis_images")
    }
    for other in args.compare:
        o_name, o_config, o_paper = resolve(other, [])
        if o_config.dataset != config.dataset:
            raise run_folder.RunFolderError(
                f"{other} was trained on {o_config.dataset}, {args.run} on {config.dataset}: "
                "a comparison needs the same test set."
            )
        runs.append((other, o_name, o_config.replace(**analysis), o_paper))
    for name in args.only.split(","):
        if name.strip():
            analyses.module(name.strip())  # an unknown name raises ValueError
    for _, _, c, _ in runs:
        check_available(c.dataset, c.data_dir)
    return runs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        runs = check_command(args)
    except (ConfigError, run_folder.RunFolderError, ValueError, DataMissingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    names = tuple(n.strip() for n in args.only.split(",") if n.strip())
    out = args.out or args.run / "analyses"
    from experiments.analyses.folders import run_analyses  # JAX: once the command is checked

    try:  # the analysed run's folder is held while they are written (and --out, if apart)
        with lock.hold(args.run, create=False), contextlib.ExitStack() as stack:
            if not out.absolute().is_relative_to(args.run.absolute()):
                stack.enter_context(lock.hold(out))
            for path in run_analyses(runs, names, out, args.checkpoint):
                print(path)
    except (DataMissingError, DataCorruptError, run_folder.RunFolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except run_folder.CheckpointDamagedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    exit_with(main, "run the same command again to finish the analyses.")
