"""The compiled CPU kernels one layer at a time: seconds and useful GFLOP/s of each.

    python -m benchmarks.kernels                      # VGG9's unpooled layer shapes, N = 800
    python -m benchmarks.kernels --rate 0.02 --support 0.44   # a trained network's activity

For each layer shape (map, C → D) on N folded images (T·B: 25 × 32 = 800) it times, as jitted
JAX calls: the event-driven forward and the dense one, the event-driven filter gradient, and
the input gradient dense and on the surrogate's support (``bntt_jax.cpu.masked``). The inputs
are binary spikes firing at ``--rate``; the membrane lies in the surrogate's support
(``|u/θ − 1| < 1``) for a ``--support`` fraction of the elements. Useful GFLOP/s counts only
the work each kernel has to do: 2·N·H·W·9·C·D for the dense kernels, that times the input's
non-zero fraction for the event-driven ones, times the support for the masked input gradient.
This CPU's FP32 peak is what the dense input gradient reaches (214–216 GFLOP/s on 2 Zen 4
cores: one 512-bit FMA per cycle per core), so ``of peak`` is the rate over that kernel's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

#: VGG9's layers whose input is another layer's spikes, unpooled: (map side, C, D).
LAYERS = ((32, 64, 64), (16, 128, 128), (8, 256, 256))


def _time(fn: Any, *args: Any, repeats: int) -> float:
    fn(*args).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args).block_until_ready()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layer_rows(side: int, c: int, d: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per kernel for the layer shape: name, seconds, useful GFLOP/s."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bntt_jax.cpu import convolution as conv
    from bntt_jax.cpu import masked

    rng = np.random.default_rng(side * c + d)
    n = args.n
    x = jnp.asarray(rng.random((n, side, side, c)) < args.rate, jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, c, d)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(n, side, side, d)), jnp.float32)
    # |u/θ − 1| = |2U − 1| / support < 1 with probability `support` (θ = 1)
    u = jnp.asarray(1 + (2 * rng.random((n, side, side, c)) - 1) / args.support, jnp.float32)
    dense_flop = 2 * n * side * side * 9 * c * d / 1e9
    rate, support = float(jnp.mean(x)), float(jnp.mean(masked.in_support(u, 1.0, 1.0)))
    kernels = {
        "forward, event-driven": (conv.sparse_conv, (x, kernel), rate),
        "forward, dense": (conv.conv3x3_dense, (x, kernel), 1.0),
        "filter gradient, event-driven": (conv.sparse_conv_filter_grad, (x, kernel, g), rate),
        "input gradient, dense": (conv.conv_input_grad, (g, kernel), 1.0),
        "input gradient, on the support": (
            lambda g, k, u: masked.conv_input_grad_masked(g, k, u, threshold=1.0, width=1.0),
            (g, kernel, u),
            support,
        ),
    }
    rows = []
    for name, (fn, operands, fraction) in kernels.items():
        seconds = _time(jax.jit(fn), *operands, repeats=args.repeats)
        rows.append({"layer": f"{side}², {c} → {d}", "kernel": name, "seconds": seconds,
                     "gflops": dense_flop * fraction / seconds})  # fmt: skip
    peak = rows[3]["gflops"]
    for row in rows:
        row["of_peak"] = row["gflops"] / peak
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.kernels", description=__doc__.split("\n")[0]
    )
    p.add_argument("--n", type=int, default=800, help="folded images, T·B (default 800)")
    p.add_argument("--rate", type=float, default=0.26, help="the inputs' firing rate")
    p.add_argument("--support", type=float, default=0.31, help="the surrogate's support")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per kernel (median)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not (0 < args.rate <= 1 and 0 < args.support <= 1 and args.n >= 1 and args.repeats >= 1):
        print("error: need 0 < --rate, --support <= 1 and --n, --repeats >= 1", file=sys.stderr)
        return 2
    from bntt_jax.cpu import ffi

    if not ffi.available():
        print("error: the compiled CPU code is unavailable here (see the warning above)",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"N = {args.n}, inputs firing at {args.rate:.0%}, support {args.support:.0%}\n")
    print("| layer | kernel | s | useful GFLOP/s | of peak |\n|---|---|---|---|---|")
    for side, c, d in LAYERS:
        for row in layer_rows(side, c, d, args):
            print(f"| {row['layer']} | {row['kernel']} | {row['seconds']:.3f} | "
                  f"{row['gflops']:.0f} | {row['of_peak']:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    from bntt_jax.cpu.huge_pages import restart_with_huge_pages

    restart_with_huge_pages("benchmarks.kernels", sys.argv[1:])
    sys.exit(main())
