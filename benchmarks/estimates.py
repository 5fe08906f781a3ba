"""How true ``--show``'s time estimate is: small runs estimated, then timed as a user runs them.

    python -m benchmarks.estimates                 # this machine, as it is
    python -m benchmarks.estimates --isa avx2 sse  # and as an AVX2 / 16-byte machine would

For every ISA profile (``benchmarks/isa.py``: the compiled kernels built for that target, XLA
limited to it) and every command below, in fresh processes with the profile's environment:
``--show``'s estimate for this machine (which calibrates the profile once, a few seconds,
cached apart from the others), then the command's wall time into a new folder. The ratio is
wall time over estimate; the goal is within 2× either way.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import isa

#: Small runs a user starts first: a custom plan of their own, the defaults of both methods.
COMMANDS = (
    ("digits_bntt", "--set", "arch=custom", "--set", "plan=f128,f64", "--set", "epochs=5"),
    ("digits_bntt", "--set", "epochs=5"),
    ("digits_ttfs", "--set", "epochs=5"),
    ("digits_bntt",),
)
_UNITS = {"s": 1, "min": 60, "hours": 3600, "days": 86400}


def estimate(command: tuple[str, ...], env: dict[str, str]) -> float:
    """``--show``'s estimate for this machine, in seconds."""
    shown = subprocess.run(
        [sys.executable, "-m", "experiments.run", *command, "--show"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    text = json.loads(shown.stdout)["time"]
    value, unit = re.match(r"about (\d+) (s|min|hours|days) on this machine", text).groups()
    return float(value) * _UNITS[unit]


def wall(command: tuple[str, ...], env: dict[str, str]) -> float:
    """The command's wall time into a new folder, as a user runs it."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "experiments.run", *command, "--out", str(Path(tmp) / "r")],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.estimates", description=__doc__)
    p.add_argument("--isa", nargs="+", default=["native"], choices=sorted(isa.PROFILES))
    args = p.parse_args(argv)
    for profile in args.isa:
        print(isa.header(profile))
    print("\n| profile | command | estimate (s) | wall (s) | wall / estimate |")
    print("|---|---|---|---|---|")
    for profile in args.isa:
        env = isa.environment(profile)
        for command in COMMANDS:
            guess = estimate(command, env)
            took = wall(command, env)
            shown = " ".join(command)
            print(f"| {profile} | `{shown}` | {guess:.0f} | {took:.1f} | {took / guess:.2f} |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
