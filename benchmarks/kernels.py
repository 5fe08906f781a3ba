"""The compiled CPU kernels one layer at a time, each beside XLA's path for the same operation.

    python -m benchmarks.kernels                      # VGG9's unpooled layer shapes, N = 800
    python -m benchmarks.kernels --isa avx2           # as an AVX2 machine (benchmarks/isa.py)
    python -m benchmarks.kernels --rate 0.02 --support 0.44   # a trained network's activity

For each layer shape (map, C → D) on N folded images (T·B: 25 × 32 = 800) it times, as jitted
JAX calls: the event-driven forward, the dense one and XLA's convolution; the event-driven
filter gradient and the pure-XLA path's (im2col's transpose); the input gradient dense, on the
surrogate's support (``bntt_jax.cpu.masked``) and the pure-XLA path's; and a BNTT layer's
normalisation + LIF neurons forward and backward, fused and as XLA composes them. The inputs
are binary spikes firing at ``--rate``; the membrane lies in the surrogate's support
(``|u/θ − 1| < 1``) for a ``--support`` fraction of the elements. Useful GFLOP/s counts only
the work each kernel has to do: 2·N·H·W·9·C·D for the dense ones and XLA's, that times the
input's non-zero fraction for the event-driven ones, times the support for the masked input
gradient. ``of peak`` is the rate over the dense input gradient's, which reaches this CPU's FP32
peak at the target's width (214–216 GFLOP/s on 2 Zen 4 cores with AVX-512); ``vs XLA`` is
XLA's seconds for the same operation over the row's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks import isa

#: VGG9's and VGG11's 3×3 layers whose input is another layer's spikes (map side, C, D): the
#: unpooled ones (C = D) and those after a pooling (C < D). VGG11's 2×2 maps take im2col.
LAYERS = (
    (32, 64, 64),
    (16, 64, 128),
    (16, 128, 128),
    (8, 128, 256),
    (8, 256, 256),
    (4, 256, 512),
    (4, 512, 512),
)


def _time(fn: Any, *args: Any, repeats: int) -> float:
    import jax  # JAX: after the target and XLA flags are set

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def operations(side: int, c: int, d: int, args: argparse.Namespace) -> list[tuple]:
    """(operation, implementation, function, operands, fraction of the dense work) per row."""
    import functools

    import jax  # JAX: after the target and XLA flags are set
    import jax.numpy as jnp
    import numpy as np

    from bntt_jax import layers
    from bntt_jax.cpu import convolution as conv
    from bntt_jax.cpu import fused, masked

    rng = np.random.default_rng(side * c + d)
    n = args.n
    x = jnp.asarray(rng.random((n, side, side, c)) < args.rate, jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, c, d)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(n, side, side, d)), jnp.float32)
    # |u/θ − 1| = |2U − 1| / support < 1 with probability `support` (θ = 1)
    u = jnp.asarray(1 + (2 * rng.random((n, side, side, c)) - 1) / args.support, jnp.float32)
    rate, support = float(jnp.mean(x)), float(jnp.mean(masked.in_support(u, 1.0, 1.0)))

    def xla_filter_grad(x, kernel, g):
        return jax.vjp(lambda k: conv.conv3x3_im2col(x, k), kernel)[1](g)[0]

    steps = 25 if n % 25 == 0 else 1
    y = jnp.asarray(rng.normal(size=(steps, n // steps, side, side, d)), jnp.float32)
    gamma = jnp.ones((steps, d), jnp.float32)
    options = dict(eps=1e-4, leak=0.95, threshold=1.0, alpha=0.3)

    def layer_grad(form):
        def loss(y, gamma):
            spikes, _, _ = form(y, gamma, **options)
            return jnp.sum(spikes * y)  # a cotangent that is neither zero nor uniform

        return jax.grad(loss, argnums=(0, 1))

    return [
        ("forward", "event-driven", conv.sparse_conv, (x, kernel), rate),
        ("forward", "dense", conv.conv3x3_dense, (x, kernel), 1.0),
        ("forward", "XLA", conv.conv3x3_reference, (x, kernel), 1.0),
        ("filter gradient", "event-driven", conv.sparse_conv_filter_grad, (x, kernel, g), rate),
        ("filter gradient", "XLA", xla_filter_grad, (x, kernel, g), 1.0),
        ("input gradient", "dense", conv.conv_input_grad, (g, kernel), 1.0),
        (
            "input gradient",
            "on the support",
            functools.partial(masked.conv_input_grad_masked, threshold=1.0, width=1.0),
            (g, kernel, u),
            support,
        ),
        ("input gradient", "XLA", conv.xla_input_grad, (g, kernel), 1.0),
        ("BNTT + LIF, fwd + bwd", "fused", layer_grad(fused.bntt_lif_train), (y, gamma), 0.0),
        ("BNTT + LIF, fwd + bwd", "XLA", layer_grad(layers.bntt_lif_reference), (y, gamma), 0.0),
    ]


def layer_rows(side: int, c: int, d: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per operation and implementation: seconds, useful GFLOP/s, of peak, vs XLA."""
    import jax  # JAX: after the target and XLA flags are set

    n = args.n
    dense_flop = 2 * n * side * side * 9 * c * d / 1e9
    rows = []
    for op, impl, fn, operands, fraction in operations(side, c, d, args):
        seconds = _time(jax.jit(fn), *operands, repeats=args.repeats)
        rows.append(
            {
                "layer": f"{side}², {c} → {d}",
                "operation": op,
                "implementation": impl,
                "seconds": seconds,
                "gflops": dense_flop * fraction / seconds,
            }
        )
    peak = next(
        r["gflops"]
        for r in rows
        if (r["operation"], r["implementation"]) == ("input gradient", "dense")
    )
    xla = {r["operation"]: r["seconds"] for r in rows if r["implementation"] == "XLA"}
    for row in rows:
        row["of_peak"] = row["gflops"] / peak
        row["vs_xla"] = xla[row["operation"]] / row["seconds"]
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.kernels", description=__doc__.split("\n")[0]
    )
    p.add_argument("--n", type=int, default=800, help="folded images, T·B (default 800)")
    p.add_argument("--rate", type=float, default=0.26, help="the inputs' firing rate")
    p.add_argument("--support", type=float, default=0.31, help="the surrogate's support")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per kernel (median)")
    p.add_argument(
        "--sides",
        type=int,
        nargs="*",
        choices=[s for s, _, _ in LAYERS],
        help="only the layers of these map sides (default: all)",
    )
    p.add_argument(
        "--isa",
        choices=sorted(isa.PROFILES),
        default="native",
        help="measure as a machine of this ISA would (benchmarks/isa.py)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not (0 < args.rate <= 1 and 0 < args.support <= 1 and args.n >= 1 and args.repeats >= 1):
        print("error: need 0 < --rate, --support <= 1 and --n, --repeats >= 1", file=sys.stderr)
        return 2
    if os.environ.get("BNTT_JAX_BENCH_ISA") != args.isa:  # limits set before JAX loads
        env = {**isa.environment(args.isa), "BNTT_JAX_BENCH_ISA": args.isa}
        argv = sys.argv[1:] if argv is None else argv
        return subprocess.run(
            [sys.executable, "-m", "benchmarks.kernels", *argv], env=env
        ).returncode
    from bntt_jax.cpu import ffi  # JAX: after the target and XLA flags are set

    if not ffi.available():
        print(
            "error: the compiled CPU code is unavailable here (see the warning above)",
            file=sys.stderr,
        )
        return 1
    print(isa.header(args.isa) + f" Kernels: {ffi.summary()}.\n")
    print(f"N = {args.n}, inputs firing at {args.rate:.0%}, support {args.support:.0%}\n")
    print(
        "| layer | operation | implementation | s | useful GFLOP/s | of peak | vs XLA |\n"
        "|---|---|---|---|---|---|---|"
    )
    for side, c, d in LAYERS:
        if args.sides and side not in args.sides:
            continue
        for row in layer_rows(side, c, d, args):
            flops = f"{row['gflops']:.0f}" if row["gflops"] else "–"
            peak = f"{row['of_peak']:.2f}" if row["gflops"] else "–"
            print(
                f"| {row['layer']} | {row['operation']} | {row['implementation']} | "
                f"{row['seconds']:.3f} | {flops} | {peak} | {row['vs_xla']:.2f}× |"
            )
    return 0


if __name__ == "__main__":
    from bntt_jax.cpu.huge_pages import restart_with_huge_pages

    restart_with_huge_pages("benchmarks.kernels", sys.argv[1:])
    sys.exit(main())
