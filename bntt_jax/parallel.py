"""Data parallelism over all devices with ``jax.jit`` and ``NamedSharding`` (GUIDE §2).

A 1-D ``data`` mesh: batches are split over it, parameters and statistics are replicated.
The compiler turns the batch means of BNTT into all-reduces, so the statistics (and hence the
loss, the gradients and the running averages) are those of the *global* batch: one device and
N devices compute the same numbers. Multi-host runs call ``jax.distributed.initialize()``
first and use the same code.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def data_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over ``devices`` (default: all devices).

    Its axis is ``Auto``: sharding propagates through the layer-major reshapes without
    annotations.
    """
    devices = list(jax.devices() if devices is None else devices)
    return jax.make_mesh(
        (len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices
    )


def check_batch_size(mesh: Mesh, batch_size: int) -> None:
    """A clear error when a batch does not split evenly over the devices."""
    n = mesh.shape[DATA_AXIS]
    if batch_size % n:
        raise ValueError(
            f"batch size {batch_size} does not divide over the {n} devices of the data mesh; "
            f"use a multiple of {n} (e.g. {batch_size - batch_size % n or n})."
        )


def shard_batch(mesh: Mesh, *arrays: np.ndarray | jax.Array) -> tuple[jax.Array, ...]:
    """Place arrays split along their leading (batch) axis over the ``data`` mesh."""
    out = []
    for a in arrays:
        check_batch_size(mesh, a.shape[0])
        out.append(jax.device_put(a, NamedSharding(mesh, PartitionSpec(DATA_AXIS))))
    return tuple(out)


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Place a pytree (parameters, optimiser state) replicated on every device of the mesh."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
