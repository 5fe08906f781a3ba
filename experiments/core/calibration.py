"""This machine's speed against the reference machine's, for estimates true here.

The time estimates (:mod:`experiments.core.estimates`) are built from timings taken on one
reference machine (``experiments/timings.json``). A machine with other cores, another vector
ISA (the compiled kernels are built for it) or another load runs everything at another
speed, and start-up and compilation scale differently from the training steps. So the first
``--show`` on a machine measures, in a fresh process, four times that the reference machine
also recorded (``"calibration"`` in ``timings.json``):

* ``startup_s``: importing JAX and bntt-jax and running a first operation;
* ``compile_s``: compiling the digits MLP's training step (64-256-256-10, T = 25, batch 32);
* ``mlp_step_s``: one such training step, compiled (the median of a second of them);
* ``conv_step_s``: the forward and backward of one 3×3 convolution of spikes (64 → 64
  channels, 16×16 maps, 64 images), compiled, the median likewise.

The result is cached per machine (CPU model and flags, usable cores, JAX version, kernel
target, XLA flags) next to the compiled kernels (``$BNTT_JAX_CACHE``, default
``~/.cache/bntt_jax``); ``python -m experiments.run --calibrate`` measures again (after a
hardware change, or if the first measurement ran on a loaded machine). No JAX here: the
measurement runs in its own process (``python -m experiments.core.calibration``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bntt_jax.cpu.build import cache_dir, cpu_signature
from experiments.core.files import write_json

#: The measured times, in the order they are taken.
TIMES = ("startup_s", "compile_s", "mlp_step_s", "conv_step_s")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cache_file() -> Path:
    """Where this machine's calibration is kept: named by everything that changes its times."""
    try:
        jax_version = metadata.version("jax")
    except metadata.PackageNotFoundError:
        jax_version = "none"
    parts = (
        cpu_signature(),
        str(_cores()),
        jax_version,
        os.environ.get("BNTT_JAX_MARCH", "native"),
        os.environ.get("BNTT_JAX_FFI", "1"),
        os.environ.get("XLA_FLAGS", ""),
    )
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return cache_dir() / f"calibration-{key}.json"


def cached() -> dict[str, Any] | None:
    """This machine's calibration if it was measured (``None`` otherwise, or if unreadable)."""
    try:
        found = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and all(k in found for k in TIMES) else None


def calibrate(again: bool = False) -> dict[str, Any]:
    """This machine's calibration: the cached one, or (``again``, or none cached) measured now
    in a fresh process (a few seconds) and cached."""
    found = None if again else cached()
    if found is not None:
        return found
    print(
        "measuring this machine once for the time estimates (about 10 s; cached in "
        f"{cache_file()})",
        file=sys.stderr,
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "experiments.core.calibration"],
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    measured["startup_s"] = time.perf_counter() - start - measured.pop("work_s")
    measured |= {"cores": _cores(), "measured_at": time.strftime("%Y-%m-%d %H:%M")}
    try:  # an unwritable cache only means measuring again next time
        cache_file().parent.mkdir(parents=True, exist_ok=True)
        write_json(cache_file(), measured)
    except OSError:
        pass
    return measured


def factors(here: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """How many times longer each kind of work takes here than on the reference machine:
    ``base`` (start-up and compilation), ``mlp`` (a small network's step), ``conv`` (a
    convolution's)."""
    base = (here["startup_s"] + here["compile_s"]) / (
        reference["startup_s"] + reference["compile_s"]
    )
    return {
        "base": base,
        "mlp": here["mlp_step_s"] / reference["mlp_step_s"],
        "conv": here["conv_step_s"] / reference["conv_step_s"],
    }


def _median_seconds(fn: Any, *args: Any, budget: float = 1.0) -> float:
    import jax  # the measuring process only

    times = []
    spent = 0.0
    while spent < budget or len(times) < 5:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return sorted(times)[len(times) // 2]


def _measure() -> dict[str, float]:
    """The measuring process: its work's times (start-up is what its parent saw besides)."""
    import functools  # the measuring process only, as below

    import jax
    import jax.numpy as jnp
    import numpy as np

    import bntt_jax as bj
    from bntt_jax.cpu.convolution import conv3x3

    jnp.zeros(1).block_until_ready()
    work = time.perf_counter()
    rng = np.random.default_rng(0)
    net = bj.init(0, arch="mlp", in_features=64, hidden=(256, 256), num_classes=10, T=25)
    x = rng.random((32, 64), dtype=np.float32)
    y = rng.integers(0, 10, 32).astype(np.int32)
    state = bj.TrainState.create(net, bj.make_optimizer("sgd", lr=0.1, schedule="constant"))
    step = jax.jit(functools.partial(bj.train_step, encoder="poisson"))
    key = jax.random.key(0)
    t0 = time.perf_counter()
    compiled = step.lower(state, x, y, key).compile()
    compile_s = time.perf_counter() - t0
    mlp = _median_seconds(lambda: compiled(state, x, y, key)[1]["loss"])
    spikes = jnp.asarray(rng.random((64, 16, 16, 64)) < 0.25, jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 64, 64)) * 0.05, jnp.float32)
    grad = jax.jit(jax.grad(lambda x, k: jnp.sum(conv3x3(x, k) ** 2), argnums=(0, 1)))
    jax.block_until_ready(grad(spikes, kernel))
    conv = _median_seconds(grad, spikes, kernel)
    return {
        "compile_s": compile_s,
        "mlp_step_s": mlp,
        "conv_step_s": conv,
        "work_s": time.perf_counter() - work,
    }


if __name__ == "__main__":
    print(json.dumps(_measure()))
