"""Run bntt-jax and the torch reference in alternation and print the ratio table.

    python -m benchmarks.compare                # every workload, 5 timed steps each
    python -m benchmarks.compare --only vgg9-T25-B32-train --steps 5
    python -m benchmarks.compare --json-out results/bench.jsonl

Every measurement is a fresh ``python -m benchmarks.step`` process (so peak RSS is per
workload and implementation); within a workload the two implementations run back to back,
alternating which goes first from round to round. The table gives the median over every timed
step of every round and, in brackets, the fastest and slowest step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

# (name, arch, T, batch, mode, implementations)
WORKLOADS = [
    ("vgg9-T25-B32-train", "vgg9", 25, 32, "train", ("jax", "torch")),
    ("vgg9-T25-B32-infer", "vgg9", 25, 32, "infer", ("jax", "torch")),
    ("vgg9-T10-B32-train", "vgg9", 10, 32, "train", ("jax", "torch")),
    ("vgg9-T10-B32-infer", "vgg9", 10, 32, "infer", ("jax", "torch")),
    ("vgg11-T25-B32-train", "vgg11", 25, 32, "train", ("jax", "torch")),
    ("vgg11-T25-B32-infer", "vgg11", 25, 32, "infer", ("jax", "torch")),
    ("mlp-T784-B128-train", "mlp", 784, 128, "train", ("jax", "torch")),
    ("vgg9-T25-B64-train", "vgg9", 25, 64, "train", ("jax",)),  # peak RSS
    # every layer firing at a trained BNTT VGG9's ~2 % (benchmarks/sparsity.py)
    ("vgg9-T25-B32-train-sparse", "vgg9", 25, 32, "train", ("jax", "torch")),
    ("vgg9-T25-B32-infer-sparse", "vgg9", 25, 32, "infer", ("jax", "torch")),
]


def run_one(
    arch: str, T: int, batch: int, mode: str, impl: str, steps: int, sparsity: str = "init"
) -> dict:
    cmd = [
        sys.executable, "-m", "benchmarks.step", "--arch", arch, "--T", str(T),
        "--batch", str(batch), "--mode", mode, "--impl", impl, "--steps", str(steps), "--json",
        "--sparsity", sparsity,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median_spread(runs: list[dict]) -> tuple[float, str] | tuple[None, str]:
    """The median seconds per step over every timed step of ``runs``, and their range."""
    times = [t for r in runs for t in r["seconds_all"]]
    if not times:
        return None, "–"
    return statistics.median(times), f"{min(times):.2f}–{max(times):.2f}"


def table(results: dict[str, dict[str, list[dict]]]) -> str:
    rows = [
        "| workload | bntt-jax s/step (range) | torch ref s/step (range) | speed-up | "
        "jax img·steps/s | jax GFLOP/s | jax first call s | jax peak RSS MB | torch peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, by_impl in results.items():
        jax_runs, torch_runs = by_impl.get("jax", []), by_impl.get("torch", [])
        j, j_range = _median_spread(jax_runs)
        t, t_range = _median_spread(torch_runs)
        first = jax_runs[0] if jax_runs else {}
        rows.append(
            f"| {name} | {j:.3f} ({j_range}) | "
            + (f"{t:.3f} ({t_range}) | {t / j:.2f}× |" if t else "– | – |")
            + f" {first.get('image_steps_per_s', 0):.0f} | {first.get('gflop_per_s', 0):.1f} | "
            f"{first.get('first_call_s', 0):.1f} | {first.get('peak_rss_mb', 0):.0f} | "
            + (f"{torch_runs[0]['peak_rss_mb']:.0f} |" if torch_runs else "– |")
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.compare", description=__doc__.split("\n")[0]
    )
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement (>= 5)")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds per workload")
    p.add_argument("--only", nargs="*", help="workload names (default: all)")
    p.add_argument("--json-out", type=Path, help="append every measurement as a JSON line")
    args = p.parse_args(argv)
    names = [w[0] for w in WORKLOADS]
    unknown = [n for n in args.only or [] if n not in names]
    if unknown:
        print(f"error: unknown workloads {unknown}; known: {names}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, list[dict]]] = {}
    for name, arch, T, batch, mode, impls in WORKLOADS:
        if args.only and name not in args.only:
            continue
        results[name] = {impl: [] for impl in impls}
        for r in range(args.rounds):
            order = impls if r % 2 == 0 else tuple(reversed(impls))
            for impl in order:
                steps = 1 if name.endswith("B64-train") else args.steps
                sparsity = "trained" if name.endswith("-sparse") else "init"
                out = run_one(arch, T, batch, mode, impl, steps, sparsity)
                results[name][impl].append(out)
                print(
                    f"{name} {impl}: {out['seconds_per_step']:.3f} s/step",
                    file=sys.stderr,
                    flush=True,
                )
                if args.json_out:
                    with args.json_out.open("a") as fh:
                        fh.write(json.dumps({"workload": name, **out}) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
