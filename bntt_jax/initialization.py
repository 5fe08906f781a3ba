"""Initial parameters from one random draw, shared by the BNTT and TTFS networks."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp


def xavier_bound(shape: tuple[int, ...], gain: float = 2.0) -> float:
    """``gain·sqrt(6 / (fan_in + fan_out))`` of a kernel ``[..., in, out]`` (conv: the
    receptive field multiplies both fans), as PyTorch's ``xavier_uniform_``."""
    receptive = math.prod(shape[:-2])
    return gain * math.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))


def variables_from_one_draw(
    key: jax.Array, shapes: dict[str, Any], *, gain: float, fill: dict[str, float], where: str
) -> dict[str, Any]:
    """``{'params', 'batch_stats'}`` for the shapes of ``shapes``: every ``kernel`` Xavier-
    uniform with ``gain`` (:func:`xavier_bound`), the weights being consecutive slices of one
    uniform draw from ``key`` (one small program, whatever the network); every other parameter
    the constant ``fill[name]``; running means 0 and variances 1. Used by both engines."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes["params"])
    names = [str(path[-1].key) for path, _ in leaves]
    sizes = [
        math.prod(leaf.shape) if name == "kernel" else 0
        for name, (_, leaf) in zip(names, leaves, strict=True)
    ]
    draw = jax.random.uniform(key, (sum(sizes),), jnp.float32, -1.0, 1.0)
    params, offset = [], 0
    for name, size, (path, leaf) in zip(names, sizes, leaves, strict=True):
        if name == "kernel":
            bound = xavier_bound(leaf.shape, gain)
            params.append(draw[offset : offset + size].reshape(leaf.shape) * bound)
            offset += size
        elif name in fill:
            params.append(jnp.full(leaf.shape, fill[name], leaf.dtype))
        else:  # a new kind of parameter must be given its initialisation here
            raise NotImplementedError(f"{where}: no initialisation for parameter {path}")
    stats = jax.tree_util.tree_map_with_path(
        lambda path, s: (jnp.zeros if path[-1].key == "mean" else jnp.ones)(s.shape, s.dtype),
        shapes.get("batch_stats", {}),
    )
    return {"params": jax.tree.unflatten(treedef, params), "batch_stats": stats}
