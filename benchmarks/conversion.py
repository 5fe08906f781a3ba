"""Speed and memory of ANN-to-SNN conversion's evaluation (BNTT paper, Table 3: VGG9 at
T = 100, 500, 1000) on this machine.

    python -m benchmarks.conversion [--arch vgg9] [--batch 32] [--steps 20,80] [--json]

Builds the VGG9 ANN (random weights, batch norm at its initial statistics), converts it with
thresholds set on ``--batch`` random inputs, then times
:func:`bntt_jax.baselines.conversion.evaluate_converted` (one simulation read at every step, what a
conversion run's end and its analyses call) at each of ``--steps``, after a warm-up call of
the same length: seconds, images × steps per second and the process's peak RSS after each.
Memory must not grow with T (the simulation carries one membrane per layer across steps).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import jax
import numpy as np


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(arch: str, batch: int, steps: list[int]) -> dict[str, Any]:
    from bntt_jax.baselines import ann, conversion  # JAX: after the XLA flags are set
    from bntt_jax.config import NetworkConfig

    shape = dict(img_size=32, in_channels=3) if arch != "mlp" else dict(in_features=3072)
    config = NetworkConfig(arch=arch, num_classes=10, norm="bn", **shape)
    net = ann.init(0, config)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *config.input_shape)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    t0 = time.perf_counter()
    converted = conversion.convert(net, x, 0, steps=4)
    convert_s = time.perf_counter() - t0
    rows = []
    for t in steps:
        t0 = time.perf_counter()
        jax.block_until_ready(conversion.evaluate_converted(converted, x, y, 1, t))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(conversion.evaluate_converted(converted, x, y, 2, t))
        seconds = time.perf_counter() - t0
        rows.append(
            {
                "steps": t,
                "seconds": seconds,
                "first_call_s": first,
                "img_steps_per_s": batch * t / seconds,
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
    return {"arch": arch, "batch": batch, "convert_s": convert_s, "runs": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.conversion", description=__doc__)
    p.add_argument("--arch", default="vgg9", choices=("vgg9", "vgg11", "mlp"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", default="20,80", help="comma-separated T values")
    p.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    args = p.parse_args(argv)
    result = measure(args.arch, args.batch, [int(s) for s in args.steps.split(",")])
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{args.arch}, batch {args.batch}, {jax.devices()[0].platform}; "
        f"conversion (thresholds) {result['convert_s']:.1f} s"
    )
    print("| T | seconds | img·steps/s | first call s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for r in result["runs"]:
        print(
            f"| {r['steps']} | {r['seconds']:.2f} | {r['img_steps_per_s']:.0f} | "
            f"{r['first_call_s']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
