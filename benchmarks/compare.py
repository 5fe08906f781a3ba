"""Run bntt-jax, its pure-XLA paths and the torch reference in alternation; print the table.

    python -m benchmarks.compare                # every workload, 5 timed steps each
    python -m benchmarks.compare --isa avx2     # as an AVX2 machine would (benchmarks/isa.py)
    python -m benchmarks.compare --peers        # snnTorch and SpikingJelly on the VGG9 rows too
    python -m benchmarks.compare --only vgg9-T25-B32-train --steps 5
    python -m benchmarks.compare --json-out results/bench.jsonl

Every measurement is a fresh ``python -m benchmarks.step`` process (so peak RSS is per
workload and implementation), under the ISA profile's limits; within a workload the
implementations run back to back, the order reversed from round to round. The table gives the
median over every timed step of every round and, in brackets, the fastest and slowest step,
under a line naming the CPU, the profile, the limits read back from each party, and the
compiled code's choices for that target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks import isa

BOTH = ("jax", "xla", "torch")
PEERS = ("snntorch", "spikingjelly")
# (name, arch, T, batch, mode, implementations); --peers adds PEERS to the VGG9 T=25 rows
WORKLOADS = [
    ("vgg9-T25-B32-train", "vgg9", 25, 32, "train", BOTH),
    ("vgg9-T25-B32-infer", "vgg9", 25, 32, "infer", BOTH),
    ("vgg9-T10-B32-train", "vgg9", 10, 32, "train", BOTH),
    ("vgg9-T10-B32-infer", "vgg9", 10, 32, "infer", BOTH),
    ("vgg11-T25-B32-train", "vgg11", 25, 32, "train", BOTH),
    ("vgg11-T25-B32-infer", "vgg11", 25, 32, "infer", BOTH),
    ("mlp-T784-B128-train", "mlp", 784, 128, "train", BOTH),
    ("vgg9-T25-B64-train", "vgg9", 25, 64, "train", ("jax",)),  # peak RSS
    # every layer firing at a trained BNTT VGG9's ~2 % (benchmarks/sparsity.py)
    ("vgg9-T25-B32-train-sparse", "vgg9", 25, 32, "train", BOTH),
    ("vgg9-T25-B32-infer-sparse", "vgg9", 25, 32, "infer", BOTH),
]
PEER_ROWS = ("vgg9-T25-B32-train", "vgg9-T25-B32-infer")


def run_one(
    arch: str,
    T: int,
    batch: int,
    mode: str,
    impl: str,
    steps: int,
    sparsity: str = "init",
    profile: str = "native",
) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.step",
        "--arch",
        arch,
        "--T",
        str(T),
        "--batch",
        str(batch),
        "--mode",
        mode,
        "--impl",
        impl,
        "--steps",
        str(steps),
        "--json",
        "--sparsity",
        sparsity,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=isa.environment(profile))
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median_spread(runs: list[dict]) -> tuple[float, str] | tuple[None, str]:
    """The median seconds per step over every timed step of ``runs``, and their range."""
    times = [t for r in runs for t in r["seconds_all"]]
    if not times:
        return None, "–"
    return statistics.median(times), f"{min(times):.2f}–{max(times):.2f}"


def _cell(runs: list[dict]) -> str:
    median, spread = _median_spread(runs)
    return "–" if median is None else f"{median:.3f} ({spread})"


def table(results: dict[str, dict[str, list[dict]]]) -> str:
    """One row per workload: seconds per step of every implementation measured, bntt-jax's
    speed-up over the torch reference and over its own pure-XLA paths, and its rates."""
    impls = [i for i in (*BOTH, *PEERS) if any(i in r for r in results.values())]
    names = {
        "jax": "bntt-jax",
        "xla": "bntt-jax pure XLA",
        "torch": "torch ref",
        "snntorch": "snnTorch",
        "spikingjelly": "SpikingJelly",
    }
    rows = [
        "| workload | "
        + " | ".join(f"{names[i]} s/step (range)" for i in impls)
        + " | vs torch | vs pure XLA | jax img·steps/s | jax first call s | jax peak RSS MB |",
        "|---|" + "---|" * (len(impls) + 5),
    ]
    for name, by_impl in results.items():
        j = _median_spread(by_impl.get("jax", []))[0]
        ratios = []
        for other in ("torch", "xla"):
            o = _median_spread(by_impl.get(other, []))[0]
            ratios.append(f"{o / j:.2f}×" if o and j else "–")
        first = by_impl["jax"][0] if by_impl.get("jax") else {}
        rows.append(
            f"| {name} | "
            + " | ".join(_cell(by_impl.get(i, [])) for i in impls)
            + f" | {' | '.join(ratios)} | {first.get('image_steps_per_s', 0):.0f} | "
            f"{first.get('first_call_s', 0):.1f} | {first.get('peak_rss_mb', 0):.0f} |"
        )
    return "\n".join(rows)


def choices(profile: str) -> str:
    """The compiled code's target and its kernel-or-XLA choices under the profile, from a
    fresh process (``bntt_jax.cpu.choice``)."""
    code = "from bntt_jax.cpu import choice, ffi; print(ffi.summary()); print(choice.describe())"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=isa.environment(profile)
    )
    return proc.stdout.strip() if proc.returncode == 0 else f"(failed: {proc.stderr[-300:]})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.compare", description=__doc__.split("\n")[0]
    )
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement (>= 5)")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds per workload")
    p.add_argument("--only", nargs="*", help="workload names (default: all)")
    p.add_argument("--json-out", type=Path, help="append every measurement as a JSON line")
    p.add_argument(
        "--isa",
        choices=sorted(isa.PROFILES),
        default="native",
        help="measure as a machine of this ISA would (benchmarks/isa.py)",
    )
    p.add_argument(
        "--peers",
        action="store_true",
        help=f"also time snnTorch and SpikingJelly on {', '.join(PEER_ROWS)}",
    )
    p.add_argument(
        "--impls",
        nargs="*",
        choices=(*BOTH, *PEERS),
        help="only these implementations (default: all of each row's)",
    )
    args = p.parse_args(argv)
    names = [w[0] for w in WORKLOADS]
    unknown = [n for n in args.only or [] if n not in names]
    if unknown:
        print(f"error: unknown workloads {unknown}; known: {names}", file=sys.stderr)
        return 2
    if args.peers:
        from importlib.util import find_spec  # only with --peers

        missing = [p for p in PEERS if find_spec(p) is None]
        if missing:
            from benchmarks.peers import INSTALL

            print(f"error: --peers needs {', '.join(missing)}: {INSTALL}", file=sys.stderr)
            return 2
    print(isa.header(args.isa, isa.check(args.isa)), flush=True)
    print(f"\n{choices(args.isa)}\n", flush=True)
    results: dict[str, dict[str, list[dict]]] = {}
    for name, arch, T, batch, mode, impls in WORKLOADS:
        if args.only and name not in args.only:
            continue
        if args.peers and name in PEER_ROWS:
            impls = (*impls, *PEERS)
        if args.impls:
            impls = tuple(i for i in impls if i in args.impls)
        results[name] = _measure(args, name, (arch, T, batch, mode), impls)
    print(table(results))
    return 0


def _measure(
    args: argparse.Namespace, name: str, workload: tuple, impls: tuple[str, ...]
) -> dict[str, list[dict]]:
    """Every implementation of one workload, in alternating order over ``--rounds``."""
    arch, T, batch, mode = workload
    results: dict[str, list[dict]] = {impl: [] for impl in impls}
    for r in range(args.rounds):
        for impl in impls if r % 2 == 0 else tuple(reversed(impls)):
            steps = 1 if name.endswith("B64-train") else args.steps
            sparsity = "trained" if name.endswith("-sparse") else "init"
            out = run_one(arch, T, batch, mode, impl, steps, sparsity, args.isa)
            results[impl].append(out)
            print(
                f"{name} {impl}: {out['seconds_per_step']:.3f} s/step", file=sys.stderr, flush=True
            )
            if args.json_out:
                with args.json_out.open("a") as fh:
                    fh.write(json.dumps({"workload": name, "isa": args.isa, **out}) + "\n")
    return results


if __name__ == "__main__":
    sys.exit(main())
