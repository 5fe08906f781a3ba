"""Trained-sparsity workloads: each spiking layer's firing rate, and the fraction of its
neurons where the surrogate gradient is non-zero, at initialisation and once the layers fire
as sparsely as a trained BNTT network.

    python -m benchmarks.sparsity --arch vgg9 --T 25          # the table, both networks

A trained BNTT VGG9 fires near 2 % per neuron and step (BNTT paper, Fig. 4a and Table S1); a
freshly initialised one, in training mode, near 26 %. No trained CIFAR-10 network can be
trained on this machine, so the trained-sparsity network is the initialised one with each
layer's γᵗ scaled by one factor, found layer by layer (in order, as a layer's rate depends on
the layers before it) by bisection on a calibration batch, until the layer fires at the
target rate in training mode. Scaling γᵗ scales the normalised input current of Eq. 9 and
so the membrane potential: it is the same as raising that layer's threshold, and what
training itself does to γᵗ (Fig. 3). The factors are cached under ``$BNTT_JAX_CACHE``.

The surrogate (Eq. 11, width 1) is non-zero where ``|u/θ − 1| < 1``: only there does a layer's
output gradient reach its input current, so only there is the previous convolution's input
gradient needed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import workloads

#: Firing rate per neuron and step of a trained BNTT VGG9 (BNTT paper, Table S1, Fig. 4a).
TRAINED_RATE = 0.02
#: Calibration: this many images, and bisection steps over log2(factor) in [-LOW, 0].
CALIBRATION_BATCH, BISECTIONS, LOW = 8, 7, 8.0


def activity(net: Any, x: np.ndarray, key: Any, encoder: str) -> dict[str, tuple[float, float]]:
    """``{layer: (firing rate, surrogate non-zero fraction)}`` of ``net`` in training mode
    (batch statistics) on images ``x``, over all neurons and steps."""
    import jax.numpy as jnp  # JAX: after the target and XLA flags are set

    import bntt_jax as bj
    from bntt_jax import train as tr

    spikes = tr.encode(key, x, net.config.num_steps, encoder)
    out = bj.simulate(net, spikes, train=True, record=True)
    theta = net.config.threshold
    return {
        name: (
            float(jnp.mean(out.spikes[name])),
            float(jnp.mean(jnp.abs(out.membranes[name] / theta - 1.0) < 1.0)),
        )
        for name in out.spikes
    }


def scale_gamma(net: Any, factors: dict[str, float]) -> Any:
    """``net`` with each named layer's γᵗ multiplied by its factor."""
    params = dict(net.params)
    for name, factor in factors.items():
        norm = dict(params[f"norm_{name}"])
        norm["gamma_t"] = norm["gamma_t"] * factor
        params[f"norm_{name}"] = norm
    return net.replace(params=params)


def calibrate(net: Any, x: np.ndarray, key: Any, encoder: str, target: float) -> dict[str, float]:
    """Each spiking layer's γᵗ factor (≤ 1) for a training-mode firing rate of ``target``."""
    factors: dict[str, float] = {}
    for name in (spec.name for spec in net.config.layers):
        low, high = -LOW, 0.0  # log2 of the factor
        if activity(scale_gamma(net, {**factors, name: 1.0}), x, key, encoder)[name][0] <= target:
            factors[name] = 1.0  # already as sparse
            continue
        for _ in range(BISECTIONS):
            mid = (low + high) / 2
            rate = activity(scale_gamma(net, {**factors, name: 2.0**mid}), x, key, encoder)[name][0]
            low, high = (mid, high) if rate < target else (low, mid)
        factors[name] = 2.0 ** ((low + high) / 2)
    return factors


def trained_sparsity(net: Any, encoder: str, target: float = TRAINED_RATE) -> Any:
    """``net`` with its γᵗ scaled so that every layer fires at ``target`` (module docstring);
    the factors cached per configuration."""
    import jax  # JAX: after the target and XLA flags are set

    cfg = net.config
    key = f"{cfg.arch}-T{cfg.num_steps}-{cfg.img_size}-{cfg.norm}-{target}"
    cache = Path(os.environ.get("BNTT_JAX_CACHE", Path.home() / ".cache" / "bntt_jax"))
    path = cache / "benchmarks" / f"gamma-factors-{key}.json"
    if path.exists():
        factors = json.loads(path.read_text())
    else:
        x, _ = workloads.inputs(cfg, CALIBRATION_BATCH, seed=7)
        factors = calibrate(net, x, jax.random.key(2), encoder, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(factors, indent=1))
    return scale_gamma(net, factors)


def workload_network(cfg, sparsity: str):
    """The benchmarked parameters: freshly initialised, or with every layer firing at a trained
    BNTT network's rate (:func:`trained_sparsity`)."""
    import jax  # JAX: after the target and XLA flags are set

    import bntt_jax as bj

    net = bj.init(jax.random.key(0), cfg)
    if sparsity == "trained":
        net = trained_sparsity(net, "sequential" if cfg.arch == "mlp" else "poisson")
    return net


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.sparsity", description=__doc__.split("\n")[0]
    )
    p.add_argument("--arch", choices=("vgg9", "vgg11"), default="vgg9")
    p.add_argument("--T", type=int, default=25)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--target", type=float, default=TRAINED_RATE)
    args = p.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax  # JAX: after the target and XLA flags are set

    import bntt_jax as bj

    cfg = workloads.network_config(args.arch, args.T, 32)
    net = bj.init(jax.random.key(0), cfg)
    x, _ = workloads.inputs(cfg, args.batch)
    sparse = trained_sparsity(net, "poisson", args.target)
    rows = {
        "init": activity(net, x, jax.random.key(1), "poisson"),
        "trained": activity(sparse, x, jax.random.key(1), "poisson"),
    }
    print(f"{args.arch} T={args.T}, batch {args.batch}, training mode")
    print(
        "| layer | γ factor | rate at init | surrogate ≠ 0 at init | rate trained-sparse | "
        "surrogate ≠ 0 trained-sparse |"
    )
    print("|---|---|---|---|---|---|")
    factors = {
        n: float(
            np.mean(sparse.params[f"norm_{n}"]["gamma_t"] / net.params[f"norm_{n}"]["gamma_t"])
        )
        for n in rows["init"]
    }
    for name in rows["init"]:
        (r0, s0), (r1, s1) = rows["init"][name], rows["trained"][name]
        print(f"| {name} | {factors[name]:.3f} | {r0:.1%} | {s0:.1%} | {r1:.1%} | {s1:.1%} |")
    print(json.dumps({k: {n: list(v) for n, v in r.items()} for k, r in rows.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
