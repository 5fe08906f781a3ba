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

from bntt_jax.cpu.huge_pages import huge_pages_on

IMPLEMENTATIONS = ("jax", "xla", "torch", "snntorch", "spikingjelly")


def _kernels(impl: str) -> str:
    """What ran the step: the compiled code's target, XLA, or the torch library's ISA."""
    if impl in ("jax", "xla"):
        from bntt_jax.cpu import ffi

        return ffi.summary()
    import torch

    return f"torch {torch.__version__}, ATen {torch.backends.cpu.get_cpu_capability()}"


def network_config(arch: str, num_steps: int, img_size: int):
    import bntt_jax as bj

    if arch == "mlp":  # Sequential MNIST: FC(1,256)-FC(256,256)-FC(256,10), one pixel per step
        return bj.NetworkConfig(arch="mlp", num_steps=num_steps, in_features=1, hidden=(256, 256))
    return bj.NetworkConfig(arch=arch, num_steps=num_steps, img_size=img_size)


def forward_gflop_per_image_step(cfg) -> float:
    """Dense forward FLOPs (2 per multiply-add) of one image at one step: convs, fcs, readout.

    VGG9 on 32×32: 0.389 GFLOP.
    """
    flops = 0.0
    channels = cfg.in_channels if cfg.arch != "mlp" else None
    fan_in = cfg.in_features if cfg.arch == "mlp" else None
    for spec in cfg.layers:
        if spec.kind == "conv":
            flops += 2 * 9 * channels * spec.features * spec.size**2
            channels = spec.features
            side = {"avg2": spec.size // 2, "global": 1}.get(spec.pool, spec.size)
            fan_in = channels * side * side
        else:
            flops += 2 * fan_in * spec.features
            fan_in = spec.features
    return (flops + 2 * fan_in * cfg.num_classes) / 1e9


def _inputs(cfg, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if cfg.arch == "mlp":
        x = rng.random((batch, cfg.num_steps), dtype=np.float32)  # pixel intensities
    else:
        x = rng.normal(0, 1, (batch, cfg.img_size, cfg.img_size, cfg.in_channels)).astype(
            np.float32
        )
    return x, (np.arange(batch) % cfg.num_classes).astype(np.int32)


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


def network(cfg, sparsity: str):
    """The benchmarked parameters: freshly initialised, or with every layer firing at a trained
    BNTT network's rate (:mod:`benchmarks.sparsity`)."""
    import jax

    import bntt_jax as bj

    net = bj.init(jax.random.key(0), cfg)
    if sparsity == "trained":
        from benchmarks.sparsity import trained_sparsity

        net = trained_sparsity(net, "sequential" if cfg.arch == "mlp" else "poisson")
    return net


def run_jax(cfg, mode: str, batch: int, steps: int, sparsity: str) -> tuple[float, list[float]]:
    import functools

    import jax

    import bntt_jax as bj
    from bntt_jax import train as tr

    encoder = "sequential" if cfg.arch == "mlp" else "poisson"
    x, y = _inputs(cfg, batch)
    net = network(cfg, sparsity)
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
    import torch

    torch.set_num_threads(threads)
    if impl == "torch":
        from benchmarks.torch_ref import TorchBNTT

        model = TorchBNTT(network(cfg, sparsity))
    else:
        from benchmarks import peers

        model = peers.build(impl, network(cfg, sparsity))
    x, y = _inputs(cfg, batch)
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
    cfg = network_config(args.arch, args.T, args.img_size)
    if args.impl in ("jax", "xla"):
        first, times = run_jax(cfg, args.mode, args.batch, args.steps, args.sparsity)
    else:
        first, times = run_torch(cfg, args.mode, args.batch, args.steps, args.threads,
                                 args.sparsity, args.impl)  # fmt: skip
    median = statistics.median(times)
    gflop = (
        forward_gflop_per_image_step(cfg) * args.batch * args.T * (3 if args.mode == "train" else 1)
    )
    import jax

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
        "--sparsity", choices=("init", "trained"), default="init",
        help="init: freshly initialised (~26%% firing in training); trained: every layer's γᵗ "
        "scaled to fire at a trained BNTT network's ~2%% (benchmarks/sparsity.py)",
    )  # fmt: skip
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
