"""Where a training step's time goes: one step under ``jax.profiler``, its XLA:CPU operations
summed by kind.

    python -m benchmarks.profile --arch vgg9 --T 25 --batch 32 [--sparsity trained]

Runs a warm-up step, then traces ``--steps`` steps and reads the trace back
(``jax.profiler.ProfileData``): every XLA operation event on the CPU plane, its wall time
summed per pass (forward, backward), layer kind (conv, fc, norm, LIF, pool, readout, the
rest) and what computes it (the compiled kernels by their custom-call targets, XLA's
convolutions, XLA's other operations), from the compiled module's metadata, and divided by
the steps. A loop (a LIF scan) or a conditional (the dense-or-event-driven forward) is left
out: the operations inside it are events of their own. Operations that XLA runs at the same
time (a layer's input and filter gradients may) make the kinds' sum exceed the wall time.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import workloads
from benchmarks.sparsity import workload_network


def describe_instructions(hlo: str) -> dict[str, str]:
    """Each instruction's kind, from the compiled module's text: the custom call's target, or
    the JAX operation and layer its metadata names (a fusion's root operation)."""
    return {name: kind for name, (kind, _) in describe_layers(hlo).items()}


def describe_layers(hlo: str) -> dict[str, tuple[str, str]]:
    """Each instruction's kind (:func:`kind_of`) and the layer its metadata names
    (``"conv_1"``; empty outside the network)."""
    out = {}
    for line in hlo.splitlines():
        match = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = ", line)
        if not match or re.search(r" (?:conditional|while)\(", line):
            continue  # a container: the operations inside are events of their own
        target = re.search(r'custom_call_target="(\w+)"', line)
        op = re.search(r'op_name="([^"]+)"', line)
        op_name = op.group(1) if op else ""
        layer = re.search(r"SpikingNetwork/(\w+?)/", op_name + "/")
        out[match.group(1)] = (
            kind_of(target.group(1) if target else "", op_name),
            layer.group(1) if layer else "",
        )
    return out


def kind_of(target: str, op_name: str) -> str:
    """``"backward: conv (compiled filter gradient)"``, ``"forward: norm"``, ...: the pass, the
    layer kind (conv, fc, norm, LIF, pool, readout, loss/optimiser) and what computes it."""
    direction = (
        "backward" if "transpose(" in op_name else "forward" if "jvp(" in op_name else "update"
    )
    layer = re.search(r"SpikingNetwork/(\w+?)(?:_\d+)?/", op_name + "/")
    name = layer.group(1) if layer else ""
    part = (
        "norm"
        if name.startswith("norm")
        else "LIF"
        if name.startswith("LIF")
        else "conv"
        if name.startswith("conv")
        else "fc"
        if name.startswith("fc")
        else name or "loss, optimiser, encoder"
    )
    how = {
        "bntt_event_conv_filter_grad": "compiled filter gradient",
        "bntt_event_conv_filter_grad_3x3": "compiled filter gradient",
        "bntt_event_conv_forward": "compiled forward",
        "bntt_dense_input_grad": "compiled input gradient",
        "bntt_conv_input_grad_masked": "compiled input gradient on the support",
        "bntt_event_conv_lif_eval": "compiled fused layer",
        "bntt_lif_train_fwd": "compiled norm + LIF",
        "bntt_lif_train_bwd": "compiled norm + LIF",
    }.get(target, "XLA")
    if how == "compiled input gradient" and direction == "forward":
        how = "compiled dense forward"  # the same kernel, the kernel flipped
    if how == "XLA" and "conv_general_dilated" in op_name:
        how = "XLA convolution"
    return f"{direction}: {part} ({how})"


def step_profile(arch: str, T: int, batch: int, sparsity: str, steps: int) -> dict:
    import jax  # JAX: after the target and XLA flags are set

    from bntt_jax import train as tr

    cfg = workloads.network_config(arch, T, 32)
    encoder = "sequential" if arch == "mlp" else "poisson"
    x, y = workloads.inputs(cfg, batch)
    tx = tr.make_optimizer("sgd", lr=0.1, epochs=1, steps_per_epoch=1000)
    step = jax.jit(functools.partial(tr.train_step, encoder=encoder), donate_argnums=0)
    state = tr.TrainState.create(workload_network(cfg, sparsity), tx)
    key = jax.random.key(1)
    described = describe_layers(step.lower(state, x, y, key).compile().as_text())
    kinds = {name: kind for name, (kind, _) in described.items()}
    state, metrics = step(state, x, y, key)
    jax.block_until_ready(metrics["loss"])
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        with jax.profiler.trace(folder):
            for _ in range(steps):
                state, metrics = step(state, x, y, key)
                jax.block_until_ready(metrics["loss"])
        wall = (time.perf_counter() - start) / steps
        (path,) = Path(folder).rglob("*.xplane.pb")
        data = jax.profiler.ProfileData.from_file(str(path))
    seconds: dict[str, float] = collections.defaultdict(float)
    names: dict[str, float] = collections.defaultdict(float)
    for plane in data.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            for event in line.events:
                if event.name not in kinds:  # the module, thunks: not one operation
                    continue
                seconds[kinds[event.name]] += event.duration_ns / 1e9 / steps
                names[event.name] += event.duration_ns / 1e9 / steps
    return {
        "wall": wall,
        "kinds": dict(seconds),
        "operations": [
            (f"{described[name][1] or name}: {described[name][0]}", s)
            for name, s in sorted(names.items(), key=lambda kv: -kv[1])
        ],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.profile", description=__doc__.split("\n")[0]
    )
    p.add_argument("--arch", choices=("vgg9", "vgg11", "mlp"), default="vgg9")
    p.add_argument("--T", type=int, default=25)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--sparsity", choices=("init", "trained"), default="init")
    p.add_argument("--steps", type=int, default=2)
    args = p.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    out = step_profile(args.arch, args.T, args.batch, args.sparsity, args.steps)
    print(
        f"{args.arch} T={args.T} batch {args.batch} ({args.sparsity}): {out['wall']:.3f} s per "
        "traced step"
    )
    print("| kind | s per step |\n|---|---|")
    for kind, s in sorted(out["kinds"].items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {s:.3f} |")
    print("\nlargest operations:")
    for name, s in out["operations"][:20]:
        print(f"  {s:7.3f} s  {name}")
    return 0


if __name__ == "__main__":
    from bntt_jax.cpu.huge_pages import restart_with_huge_pages

    restart_with_huge_pages("benchmarks.profile", sys.argv[1:])
    raise SystemExit(main())
