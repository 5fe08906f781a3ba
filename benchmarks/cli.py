"""Wall time of the command line's fast paths, and of ``bntt_jax.init``, in fresh processes.

    python -m benchmarks.cli              # every case, 5 fresh processes each
    python -m benchmarks.cli --repeat 3

Every bad value must fail with one line and exit code 2 before JAX is imported; ``--list``,
``--help`` and ``--show`` import no JAX either. The ``init`` rows time ``bntt_jax.init`` of a
whole network in a fresh process, imports excluded. Nothing is written: every command's
``--out`` is a folder that the command refuses to create.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
BAD = [
    "norm=bntx",
    "num_steps=0",
    "leak=1.5",
    "seed=-1",
    "batch_size=1",
    "arch=vgg9",
    "encoder=sequential",
    "lr=nan",
    "eval_batch_size=1000",
]
INIT = """
import sys, time
import jax
import bntt_jax as bj
t0 = time.perf_counter()
net = bj.init(0, arch=sys.argv[1], T=25)
jax.block_until_ready(net.params)
print(time.perf_counter() - t0)
"""


def cases(out: Path) -> list[tuple[str, list[str], int]]:
    run = [sys.executable, "-m", "experiments.run"]
    rows = [(f"--set {b}", [*run, "digits_bntt", "--set", b, "--out", str(out)], 2) for b in BAD]
    rows += [
        ("cifar10_bntt, no archive", [*run, "cifar10_bntt", "--out", str(out)], 2),
        ("--list", [*run, "--list"], 0),
        ("--help", [*run, "--help"], 0),
        ("--show", [*run, "digits_bntt", "--show"], 0),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    print("| command | exit | stderr lines | median wall s | max wall s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "never_created"
        for label, cmd, expected in cases(out):
            times, lines = [], set()
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
                times.append(time.perf_counter() - t0)
                if proc.returncode != expected:
                    raise SystemExit(f"{label}: exit {proc.returncode}, expected {expected}")
                lines.add(len(proc.stderr.strip().splitlines()))
            assert not out.exists(), f"{label} created {out}"
            print(
                f"| `{label}` | {expected} | {'/'.join(map(str, sorted(lines)))} | "
                f"{statistics.median(times):.2f} | {max(times):.2f} |"
            )
        for arch in ("mlp", "vgg9", "vgg11"):
            times = []
            for _ in range(args.repeat):
                proc = subprocess.run(
                    [sys.executable, "-c", INIT, arch],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                times.append(float(proc.stdout.strip().splitlines()[-1]))
            print(
                f"| `bntt_jax.init(0, arch={arch!r}, T=25)` (fresh process, imports excluded) "
                f"| 0 | – | {statistics.median(times):.2f} | {max(times):.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
