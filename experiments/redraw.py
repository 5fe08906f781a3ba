"""Redraw a finished run's plots from its ``metrics.json``, or a finished sweep's figures from
its members' folders, without training.

    python -m experiments.redraw RESULTS_DIR

Exit codes: 0 done; 2 the folder holds no finished run or sweep (nothing is written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.core import lock, run_folder, sweeps
from experiments.core.exits import exit_with
from experiments.core.files import user_path
from experiments.core.methods import method_spec


def redraw(path: Path) -> list[Path]:
    """The figures of the finished run or sweep in ``path``, drawn again from its metrics;
    :class:`~experiments.core.run_folder.RunFolderError` if it holds neither."""
    if (path / sweeps.SWEEP).is_file():
        return sweeps.redraw(path)
    folder = run_folder.inspect(path)
    if folder.state != "finished":
        raise run_folder.RunFolderError(
            f"{path} holds no finished run or sweep ({folder.state}); finish it first "
            f"(python -m experiments.run --resume --out {path})."
        )
    metrics = run_folder.read_json(path / run_folder.METRICS)
    method = method_spec(folder.config["experiment"].get("method", "bntt")).load()
    return method.write_plots(path, metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.redraw",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=user_path, help="a finished run's or sweep's results folder")
    args = parser.parse_args(argv)
    try:
        lock.check_free(args.run)
        with lock.hold(args.run, create=False):
            written = redraw(args.run)
    except run_folder.RunFolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    exit_with(main, "run the same command again to redraw.")
