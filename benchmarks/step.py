"""Time one workload: a training or inference step of a BNTT network, in bntt-jax or a peer.

    python -m benchmarks.step --arch vgg9 --T 25 --batch 32 --mode train --impl jax --json

Implementations: ``jax`` (bntt-jax as installed, with its compiled CPU code), ``xla`` (bntt-jax
with ``BNTT_JAX_FFI=0``: its pure-XLA paths), ``torch`` (the PyTorch reference,
:mod:`benchmarks.torch_ref`), ``snntorch`` and ``spikingjelly`` (the same VGG9 in those
libraries, :mod:`benchmarks.peers`).

prints one JSON line: the median seconds per step over ``--steps`` timed steps after a warm-up
call (``block_until_ready`` / torch's synchronous CPU ops), images×time-steps per second,
GFLOP/s (forward FLOPs of the dense network, training counted as 3× forward), the first
call's seconds (compile, for JAX) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from typing import Any

import numpy as np

from benchmarks import workloads
from benchmarks.sparsity import workload_network
from bntt_jax.cpu.huge_pages import huge_pages_on

IMPLEMENTATIONS = ("jax", "xla", "torch", "snntorch", "spikingjelly")


def _kernels(impl: str) -> str:
    """What ran the step: the compiled code's target, XLA, or the torch library's ISA."""
    if impl in ("jax", "xla"):
        from bntt_jax.cpu import ffi  # JAX: after the target and XLA flags are set

        return ffi.summary()
    import torch  # the bench extra, never a library dependency

    return f"torch {torch.__version__}, ATen {torch.backends.cpu.get_cpu_capability()}"


def _time(call, steps: int) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return first, times


def run_jax(cfg, mode: str, batch: int, steps: int, sparsity: str) -> tuple[float, list[float]]:
    import functools

    import jax  # JAX: after the target and XLA flags are set

    import bntt_jax as bj
    from bntt_jax import train as tr

    encoder = "sequential" if cfg.arch == "mlp" else "poisson"
    x, y = workloads.inputs(cfg, batch)
    net = workload_network(cfg, sparsity)
    key = jax.random.key(1)
    if mode == "train":
        tx = tr.make_optimizer("sgd", lr=0.1, epochs=1, steps_per_epoch=1000)
        step = jax.jit(functools.partial(tr.train_step, encoder=encoder), donate_argnums=0)
        holder = {"state": tr.TrainState.create(net, tx)}

        def call():
            holder["state"], metrics = step(holder["state"], x, y, key)
            jax.block_until_ready(metrics["loss"])
    else:
        infer = jax.jit(
            lambda net, x, key: bj.simulate(net, tr.encode(key, x, cfg.num_steps, encoder)).logits
        )

        def call():
            jax.block_until_ready(infer(net, x, key))

    return _time(call, steps)


def run_torch(
    cfg, mode: str, batch: int, steps: int, threads: int, sparsity: str, impl: str = "torch"
) -> tuple[float, list[float]]:
    import torch  # the bench extra, never a library dependency

    torch.set_num_threads(threads)
    if impl == "torch":
        from benchmarks.torch_ref import TorchBNTT

        model = TorchBNTT(workload_network(cfg, sparsity))
    else:
        from benchmarks import peers

        model = peers.build(impl, workload_network(cfg, sparsity))
    x, y = workloads.inputs(cfg, batch)
    x = torch.from_numpy(x if cfg.arch == "mlp" else np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(y).long()
    if mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

        def call():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def call():
            with torch.no_grad():
                model(x)

    return _time(call, steps)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if args.impl == "xla":
        os.environ["BNTT_JAX_FFI"] = "0"  # read once, at the first use of the compiled code
    cfg = workloads.network_config(args.arch, args.T, args.img_size)
    if args.impl in ("jax", "xla"):
        first, times = run_jax(cfg, args.mode, args.batch, args.steps, args.sparsity)
    else:
        first, times = run_torch(
            cfg, args.mode, args.batch, args.steps, args.threads, args.sparsity, args.impl
        )
    median = statistics.median(times)
    gflop = (
        workloads.forward_gflop_per_image_step(cfg)
        * args.batch
        * args.T
        * (3 if args.mode == "train" else 1)
    )
    import jax  # JAX: after the target and XLA flags are set

    return {
        "impl": args.impl,
        "arch": args.arch,
        "T": args.T,
        "batch": args.batch,
        "mode": args.mode,
        "sparsity": args.sparsity,
        "img_size": args.img_size if args.arch != "mlp" else None,
        "seconds_per_step": median,
        "seconds_all": times,
        "image_steps_per_s": args.batch * args.T / median,
        "gflop_per_s": gflop / median,
        "first_call_s": first,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": str(jax.devices()[0].platform) if args.impl in ("jax", "xla") else "cpu",
        "kernels": _kernels(args.impl),
        "huge_pages": huge_pages_on(),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.step", description=__doc__.split("\n")[0]
    )
    p.add_argument("--arch", choices=("vgg9", "vgg11", "mlp"), default="vgg9")
    p.add_argument("--T", type=int, default=25)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--impl", choices=IMPLEMENTATIONS, default="jax")
    p.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up call")
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument(
        "--sparsity",
        choices=("init", "trained"),
        default="init",
        help="init: freshly initialised (~26%% firing in training); trained: every layer's γᵗ "
        "scaled to fire at a trained BNTT network's ~2%% (benchmarks/sparsity.py)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument(
        "--no-huge-pages",
        action="store_true",
        help="keep glibc's default 4 KiB pages for large buffers (default: restart with "
        "GLIBC_TUNABLES=glibc.malloc.hugetlb=1, for both implementations; "
        "bntt_jax/cpu/huge_pages.py)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.steps < 1:
        print("error: --steps must be >= 1", file=sys.stderr)
        return 2
    result = measure(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['impl']:5s} {args.arch} T={args.T} B={args.batch} {args.mode}: "
            f"{result['seconds_per_step']:.3f} s/step, "
            f"{result['image_steps_per_s']:.0f} img·steps/s, "
            f"{result['gflop_per_s']:.1f} GFLOP/s, first call {result['first_call_s']:.1f} s, "
            f"peak RSS {result['peak_rss_mb']:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    from bntt_jax.cpu.huge_pages import restart_with_huge_pages

    if "--no-huge-pages" not in sys.argv:  # restart once with them, for jax and torch alike
        restart_with_huge_pages("benchmarks.step", sys.argv[1:])
    sys.exit(main())
