"""Measure the wall time of every registered entry that runs on an embedded dataset (the
digits, mnist5k), as a user runs it (a fresh process, compilation and analyses included), and
write them to ``experiments/timings.json``: the one source of the time estimates that ``--list``,
``--show`` and the documentation's time table give (:mod:`experiments.core.estimates`).

    python -m benchmarks.timings               # every such entry and sweep
    python -m benchmarks.timings digits_bntt   # some of them
    python -m benchmarks.timings --measured mnist5k_comparison=3300
                                               # a time you measured yourself running the
                                               # command as above (a long sweep, timed once)

The full-scale entries are not run: their estimates are derived from the measured training
and inference rates of ``python -m benchmarks.compare`` kept in the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import experiments  # noqa: F401  (registers the entries)
from experiments.core import estimates, registry


def measure(name: str) -> float:
    """Seconds of ``python -m experiments.run NAME`` into a new folder."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "experiments.run", name, "--out", str(Path(tmp) / "run")],
            check=True,
            stdout=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timings", description=__doc__)
    parser.add_argument("names", nargs="*", help="entries to time (default: every digits one)")
    parser.add_argument(
        "--measured",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="record the wall time of python -m experiments.run NAME that you measured "
        "yourself (on 2 idle CPU cores), instead of running it again",
    )
    args = parser.parse_args(argv)
    given = {}
    for item in args.measured:
        name, _, seconds = item.partition("=")
        try:
            registry.lookup(name)
            given[name] = float(seconds)
        except (KeyError, ValueError):
            parser.error(
                f"--measured {item!r}: give a registered NAME=SECONDS, e.g. mnist5k_comparison=3300"
            )
        if not estimates.runs_here(name) or given[name] <= 0:
            parser.error(
                f"--measured {item!r}: only an entry on embedded data (digits, "
                "mnist5k) is measured, in positive seconds"
            )
    names = args.names or ([] if given else [n for n in registry.names() if estimates.runs_here(n)])
    record = json.loads(estimates.TIMINGS.read_text())
    for name, seconds in given.items():
        record["measured"][name] = round(seconds, 1)
    for name in names:
        seconds = measure(name)
        record["measured"][name] = round(seconds, 1)
        print(f"{name:28s} {seconds:7.1f} s", flush=True)
    record["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}"
    estimates.TIMINGS.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
