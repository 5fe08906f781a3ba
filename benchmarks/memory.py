"""The training step's memory: the estimate the runner checks before a run
(:mod:`experiments.core.memory`) against XLA's memory analysis of the compiled step and the
peak the device reports after running it.

    python -m benchmarks.memory                                # VGG9 T=25 batch 32 and 256
    python -m benchmarks.memory cifar10_bntt:num_steps=25,batch_size=64 digits_bntt:

Each case is ``ENTRY:key=value,...``. The step runs on random images of the entry's shape,
so no dataset is needed. The device's peak (``peak_bytes_in_use``) is reported where the
platform gives it (GPU, TPU); on CPU the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import experiments  # noqa: F401  (registers the entries)
from bntt_jax import train as tr
from experiments.core import memory, registry
from experiments.core.overrides import apply_overrides

CASES = ["cifar10_bntt:num_steps=25,batch_size=32", "cifar10_bntt:num_steps=25,batch_size=256"]


def compiled_step(config: Any) -> tuple[Any, tuple]:
    """The method's jitted training step for ``config`` and arguments to call it with: a
    fresh state and random images of the entry's shape."""
    method = config.spec.load()
    network = config.network_config
    tx = method.optimizer(config, 10)
    state = tr.TrainState.create(method.init(jax.random.key(0), network), tx)
    step = method.train_step(config)
    step = step if hasattr(step, "lower") else jax.jit(step)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((config.batch_size, *network.input_shape), np.float32))
    y = jnp.asarray(rng.integers(0, config.facts.num_classes, config.batch_size), jnp.int32)
    return step, (state, x, y, jax.random.key(0), jnp.int32(0))


def xla_bytes(step: Any, args: tuple) -> tuple[int, int]:
    """XLA's own account of ``step`` compiled for ``args``: its temporaries, and its
    arguments and outputs (the state in and out)."""
    analysis = step.lower(*args).compile().memory_analysis()
    inout = analysis.argument_size_in_bytes + analysis.output_size_in_bytes
    return analysis.temp_size_in_bytes, inout


def measure(case: str) -> dict[str, float]:
    name, _, sets = case.partition(":")
    config = apply_overrides(registry.get(name).config, [s for s in sets.split(",") if s])
    step, args = compiled_step(config)
    start = time.perf_counter()
    temp, state_bytes = xla_bytes(step, args)
    compile_s = time.perf_counter() - start
    out, _ = step(*args)
    jax.block_until_ready(out)
    start = time.perf_counter()
    out, _ = step(out, *args[1:])
    jax.block_until_ready(out)
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    if peak is None:  # CPU: the process's peak resident set
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "estimate": memory.estimate_bytes(config),
        "xla": temp + state_bytes,
        "peak": peak,
        "compile_s": compile_s,
        "step_s": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("cases", nargs="*", default=CASES)
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    print(f"{device.platform}: {device.device_kind}")
    print("| case | estimate GB | XLA analysis GB | measured peak GB | compile s | step s |")
    print("|---|---|---|---|---|---|")
    for case in args.cases:
        m = measure(case)
        gb = [f"{m[k] / 1e9:.2f}" for k in ("estimate", "xla", "peak")]
        print(
            f"| {case} | {' | '.join(gb)} | {m['compile_s']:.1f} | {m['step_s']:.3f} |", flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
