"""Independent reference implementations used by the tests (not part of the library).

``time_major_forward`` is the authors' forward loop (model.py) written step by step in JAX:
for t in 0..T−1, for each layer: conv/matmul of that step's input, that step's
normalisation, LIF with soft reset, pooling; then the readout accumulates ``W·o_t`` and is
divided by T at the end. It shares no code with the layer-major engine except ``spike``
(tested on its own).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from bntt_jax import NetworkParams, spike


def _norm_step(kind, z, t, params, stats, train, eps, momentum, threshold=1.0):
    """Normalise one step ``z`` ``[B, ..., C]``; update ``stats`` in place in train mode."""
    if kind == "none":
        return z
    if kind == "tdbn":  # Zheng et al.: γ·θ·(z − μ)/√(σ² + ε) + β, running statistics
        if train:  # its batch statistics pool all T steps: no step-by-step form exists
            raise NotImplementedError("tdBN trains on statistics over all steps")
        scale = params["gamma"] * threshold / jnp.sqrt(stats["var"] + eps)
        return (z - stats["mean"]) * scale + params["beta"]
    axes = tuple(range(z.ndim - 1))
    if kind == "layernorm":
        feat = tuple(range(1, z.ndim))
        mu = z.mean(axis=feat, keepdims=True)
        var = ((z - mu) ** 2).mean(axis=feat, keepdims=True)
        return params["gamma"] * (z - mu) / jnp.sqrt(var + eps)
    gamma = params["gamma_t"][t] if kind == "bntt" else params["gamma"]
    if train:
        mu = z.mean(axis=axes)
        var = ((z - mu) ** 2).mean(axis=axes)
        n = z.size // z.shape[-1]
        if kind == "bntt":
            stats["mean"] = (
                stats["mean"].at[t].set((1 - momentum) * stats["mean"][t] + momentum * mu)
            )
            stats["var"] = (
                stats["var"]
                .at[t]
                .set((1 - momentum) * stats["var"][t] + momentum * var * n / (n - 1))
            )
        else:
            stats["mean"] = (1 - momentum) * stats["mean"] + momentum * mu
            stats["var"] = (1 - momentum) * stats["var"] + momentum * var * n / (n - 1)
    elif kind == "bntt":
        mu, var = stats["mean"][t], stats["var"][t]
    else:
        mu, var = stats["mean"], stats["var"]
    return gamma * (z - mu) / jnp.sqrt(var + eps)


def time_major_forward(net: NetworkParams, spikes, train: bool):
    """Return ``(logits, counts {layer: [T, B]}, new batch_stats)`` computed step by step."""
    cfg = net.config
    p = net.params
    stats = {k: dict(v) for k, v in net.batch_stats.items()}
    num_t, b = spikes.shape[:2]
    mem = {}
    counts = {spec.name: [] for spec in cfg.layers}
    acc = 0.0
    for t in range(num_t):
        x = spikes[t]
        for spec in cfg.layers:
            kernel = p[spec.name]["kernel"]
            if spec.kind == "conv":
                z = lax.conv_general_dilated(
                    x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
                )
            else:
                z = x.reshape(b, -1) @ kernel
            key = f"norm_{spec.name}"
            z = _norm_step(
                cfg.norm,
                z,
                t,
                p.get(key),
                stats.get(key),
                train,
                cfg.eps,
                cfg.momentum,
                cfg.threshold,
            )
            u = cfg.leak * mem.get(spec.name, jnp.zeros_like(z)) + z
            o = spike(u, cfg.threshold, cfg.alpha)
            fired = lax.stop_gradient(o)  # soft: subtract θ; hard: back to 0
            soft = cfg.reset == "soft"
            mem[spec.name] = u - cfg.threshold * fired if soft else jnp.where(fired > 0, 0.0, u)
            counts[spec.name].append(o.reshape(b, -1).sum(-1))
            if spec.pool == "avg2":
                o = lax.reduce_window(o, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0
            elif spec.pool == "global":
                o = o.mean(axis=(1, 2))
            x = o
        acc = acc + x.reshape(b, -1) @ p[cfg.readout_name]["kernel"]
    counts = {k: jnp.stack(v) for k, v in counts.items()}
    return acc / num_t, counts, stats


def randomize_norm(net: NetworkParams, seed: int = 0) -> NetworkParams:
    """γ's and running statistics away from their init, different at every step."""
    rng = np.random.default_rng(seed)
    params = dict(net.params)
    stats = {}
    for name, leaves in net.params.items():
        if not name.startswith("norm_"):
            continue
        params[name] = {
            k: jnp.asarray(rng.uniform(0.6, 1.6, v.shape), jnp.float32) for k, v in leaves.items()
        }
    for name, leaves in net.batch_stats.items():
        stats[name] = {
            "mean": jnp.asarray(rng.normal(0, 0.3, leaves["mean"].shape), jnp.float32),
            "var": jnp.asarray(rng.uniform(0.5, 2.0, leaves["var"].shape), jnp.float32),
        }
    return net.replace(params=params, batch_stats=stats)
