"""Run a registered experiment and write its results folder.

python -m experiments.run NAME [--set key=value ...] [--out DIR] [--resume]
python -m experiments.run --list
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from experiments import registry
from experiments.config import apply_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.run",
        description="Run a registered bntt-jax experiment (one per table/figure of the papers).",
    )
    parser.add_argument("name", nargs="?", help="experiment name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the registered experiments")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field, e.g. --set epochs=5 --set lr=0.1 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="results folder (default results/NAME/TIME)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    args = parser.parse_args(argv)
    if args.list:
        for name in registry.names():
            print(f"{name:24s} {registry.get(name).summary}")
        return 0
    if not args.name:
        parser.error("give an experiment NAME, or --list to see them")
    try:
        experiment = registry.get(args.name)
        config = apply_overrides(experiment.config, args.overrides)
    except (KeyError, ValueError) as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    if args.resume and args.out is None:
        parser.error("--resume needs --out DIR, the folder of the run to continue")
    out = args.out or Path("results") / args.name / time.strftime("%Y%m%d-%H%M%S")

    from bntt_jax import parallel  # imports JAX: after the argument checks
    from experiments.runner import run_experiment

    try:
        mesh = parallel.data_mesh()
        parallel.check_batch_size(mesh, config.batch_size)
        parallel.check_batch_size(mesh, config.eval_batch_size)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        run_experiment(args.name, config, out, experiment.paper, resume=args.resume)
    except (FileExistsError, FileNotFoundError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    from bntt_jax.malloc import restart_with_huge_pages

    restart_with_huge_pages("experiments.run", sys.argv[1:])  # bntt_jax/malloc.py
    sys.exit(main())
